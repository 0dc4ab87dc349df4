/* SPDX-License-Identifier: Apache-2.0 */
/* master/handshake.c - the first two calls of the agent protocol (docs/protocol.md,
 * Authentication): SUBSCRIBE opens a pending event stream and gets a CHALLENGE with the
 * master's proof; AUTHENTICATE proves the agent's key (or its join token) and hands the
 * proven SUBSCRIBE to link.c, which registers the agent. Unproven subscriptions are bounded
 * in number, bytes and time. Keys come from agents.c's records and auth.c's join tokens. */
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <string.h>

#include "master/master.h"

/* A host name (RFC 1123 letters, digits, '-', '.', '_'): it goes to logs and tables, where a
 * newline would forge lines (review L5). */
static bool hostname_ok(const char *h)
{
    size_t n = strlen(h);
    return n > 0 && n <= 253 &&
           strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == n;
}

#define PENDING_MAX 256               /* unproven SUBSCRIBEs held at once */
#define PENDING_MAX_BYTES (16u << 20) /* ... and their bodies together */
#define PENDING_TIMEOUT_NS 10000000000ULL

static size_t pending_bytes(struct master *m)
{
    size_t n = 0;
    for (struct m_pending *p = m->pending; p; p = p->next)
        n += p->len;
    return n;
}

static void pending_unlink(struct master *m, struct m_pending *p)
{
    for (struct m_pending **pp = &m->pending; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            m->n_pending--;
            break;
        }
    }
}

void master_pending_free(struct m_pending *p)
{
    if (p->body)
        explicit_bzero(p->body, p->len);
    explicit_bzero(p->key, sizeof(p->key));
    free(p->body);
    free(p);
}

static void pending_closed(struct evhttp_connection *conn, void *arg)
{
    struct master *m = arg;
    for (struct m_pending *p = m->pending; p; p = p->next) {
        if (p->conn != conn)
            continue;
        if (!evhttp_request_get_connection(p->req))
            evhttp_send_reply_end(p->req);
        pending_unlink(m, p);
        master_pending_free(p);
        return;
    }
}

/* End an unproven stream from our side (refused, expired, shutdown). */
static void pending_drop(struct master *m, struct m_pending *p)
{
    evhttp_connection_set_closecb(p->conn, NULL, NULL);
    evhttp_send_reply_end(p->req);
    pending_unlink(m, p);
    master_pending_free(p);
}

void master_pending_free_all(struct master *m)
{
    while (m->pending) {
        struct m_pending *p = m->pending;
        evhttp_connection_set_closecb(p->conn, NULL, NULL);
        evhttp_connection_free(p->conn);
        pending_unlink(m, p);
        master_pending_free(p);
    }
}

/* Nothing of the registry changes until AUTHENTICATE proves the key: a second SUBSCRIBE
 * for a live agent's id must not even end that agent's stream. */
void master_handshake_start(struct master *m, struct evhttp_request *req, struct ml_call *call,
                            const char *body, size_t len)
{
    yajl_val p = call->payload;
    const char *host = json_get_str(p, "hostname");
    yajl_val res = json_get(p, "resources");
    yajl_val auth = json_get(p, "auth");
    const char *method = json_get_str(auth, "method"), *nonce = json_get_str(auth, "nonce");
    if (!host || !hostname_ok(host) || !res || !YAJL_IS_OBJECT(res)) {
        master_refuse(m, req, BERR_INVALID_ARGUMENT,
                      "SUBSCRIBE needs \"hostname\" (a host name: letters, digits, '-', '.', "
                      "up to 253) and \"resources\" {total, reserved, allocatable}");
        return;
    }
    struct ml_attr *attrs = NULL;
    size_t n_attrs = 0;
    _cleanup_berr_ struct berr *aerr = NULL;
    if (ml_attrs_decode(json_get(p, "attributes"), &attrs, &n_attrs, &aerr) < 0) {
        master_refuse(m, req, BERR_INVALID_ARGUMENT, "SUBSCRIBE: %s", berr_msg(aerr));
        return;
    }
    ml_attrs_free(attrs, n_attrs);
    const char *address = json_get_str(p, "address");
    if (address && address[0] && !ml_address_valid(address)) {
        master_refuse(m, req, BERR_INVALID_ARGUMENT,
                      "SUBSCRIBE: \"address\" is an IPv4 or IPv6 address");
        return;
    }
    if (!method || !ml_nonce_valid(nonce) ||
        (!streq(method, "agent-key") && !streq(method, "join"))) {
        master_refuse(m, req, BERR_UNAUTHORIZED,
                      "SUBSCRIBE needs \"auth\": {\"method\": \"agent-key\" or \"join\", "
                      "\"nonce\": 64 hex digits} (docs/protocol.md)");
        return;
    }
    if (m->n_pending >= PENDING_MAX || pending_bytes(m) + len > PENDING_MAX_BYTES) {
        master_refuse(m, req, BERR_UNAVAILABLE, "too many subscriptions waiting to authenticate");
        return;
    }
    struct m_agent *ag = master_agent_find(m, call->agent_id);
    if (!ag && m->n_agents >= m->cfg.max_agents) {
        master_refuse(m, req, BERR_UNAVAILABLE,
                      "the registry holds max_agents (%llu) agents: remove gone ones "
                      "(berthctl --master URL agent rm ID)",
                      (unsigned long long) m->cfg.max_agents);
        return;
    }
    struct m_pending *pd = xzalloc(sizeof(*pd));
    if (streq(method, "agent-key")) {
        if (!ag || !ag->has_key) {
            free(pd);
            master_refuse(m, req, BERR_UNKNOWN_AGENT_KEY,
                          "agent '%s' has no key at this master: register with a join token",
                          call->agent_id);
            return;
        }
        memcpy(pd->key, ag->key, ML_KEY_LEN);
    } else {
        const char *kid = json_get_str(auth, "key_id");
        struct m_token *t = kid ? master_join_token_by_id(m, kid) : NULL;
        if (!t) {
            free(pd);
            m->auth_failures_total++;
            master_refuse(m, req, BERR_UNAUTHORIZED, "no join token '%.16s' at this master",
                          kid ? kid : "");
            return;
        }
        if (ag && ag->has_key) {
            free(pd);
            m->auth_failures_total++;
            char peer[96];
            log_warning("agent '%s': a join SUBSCRIBE from %s for an id that is registered "
                        "with its own key: refused",
                        call->agent_id, master_peer(req, peer, sizeof(peer)));
            master_refuse(m, req, BERR_UNAUTHORIZED,
                          "agent '%s' is registered with its own key: a join token cannot take "
                          "it over",
                          call->agent_id);
            return;
        }
        memcpy(pd->key, t->key, ML_KEY_LEN);
        pd->join = true;
        snprintf(pd->join_id, sizeof(pd->join_id), "%s", t->id);
    }
    snprintf(pd->hs.agent_id, sizeof(pd->hs.agent_id), "%s", call->agent_id);
    snprintf(pd->hs.nonce_agent, sizeof(pd->hs.nonce_agent), "%s", nonce);
    if (random_hex(pd->hs.nonce_master, ML_HEX_LEN) < 0 || random_hex(pd->hs.stream_id, 32) < 0) {
        master_pending_free(pd);
        master_refuse(m, req, BERR_INTERNAL, "no randomness for a challenge");
        return;
    }
    pd->body = xstrndup(body, len);
    pd->len = len;
    pd->req = req;
    pd->conn = evhttp_request_get_connection(req);
    pd->created_ns = now_monotonic_ns();
    pd->next = m->pending;
    m->pending = pd;
    m->n_pending++;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/recordio");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_send_reply_start(req, 200, "OK");
    evhttp_connection_set_closecb(pd->conn, pending_closed, m);
    char proof[ML_HEX_LEN + 1];
    ml_auth_proof(pd->key, &pd->hs, true, proof);
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_kv_str(g, "stream_id", pd->hs.stream_id);
    json_kv_str(g, "nonce", pd->hs.nonce_master);
    json_kv_str(g, "proof", proof);
    yajl_gen_map_close(g);
    _cleanup_free_ char *ch = json_gen_take(g);
    master_stream_send(req, ML_EVENT_CHALLENGE, ch);
}

struct m_pending *master_handshake_prove(struct master *m, struct evhttp_request *req,
                                         struct ml_call *call, struct ml_call *ret_sub)
{
    const char *sid = evhttp_find_header(evhttp_request_get_input_headers(req), ML_STREAM_HEADER);
    struct m_pending *pd = NULL;
    for (struct m_pending *x = m->pending; sid && x; x = x->next)
        if (streq(x->hs.stream_id, sid) && streq(x->hs.agent_id, call->agent_id))
            pd = x;
    if (!pd) {
        master_refuse(m, req, BERR_STALE_STREAM,
                      "no subscription of agent '%s' waits for this %s: SUBSCRIBE again",
                      call->agent_id, ML_STREAM_HEADER);
        return NULL;
    }
    char want[ML_HEX_LEN + 1];
    ml_auth_proof(pd->key, &pd->hs, false, want);
    if (!ml_hex_equal(json_get_str(call->payload, "proof"), want)) {
        m->auth_failures_total++;
        char peer[96];
        log_warning("agent '%s': AUTHENTICATE from %s with a wrong proof (%s): refused, its "
                    "stream closed",
                    call->agent_id, master_peer(req, peer, sizeof(peer)),
                    pd->join ? "not the join token" : "not the agent's key");
        pending_drop(m, pd);
        master_refuse(m, req, BERR_UNAUTHORIZED, "wrong proof for agent '%s'", call->agent_id);
        return NULL;
    }
    _cleanup_berr_ struct berr *err = NULL;
    if (ml_call_decode(pd->body, pd->len, ret_sub, &err) < 0) { /* decoded once already */
        pending_drop(m, pd);
        master_reply_error(m, req, err);
        return NULL;
    }
    pending_unlink(m, pd);
    evhttp_connection_set_closecb(pd->conn, NULL, NULL);
    return pd;
}

void master_handshake_expire(struct master *m, uint64_t now_ns)
{
    for (struct m_pending *p = m->pending, *next; p; p = next) {
        next = p->next;
        if (now_ns - p->created_ns > PENDING_TIMEOUT_NS) {
            log_info("agent '%s': no AUTHENTICATE within 10s: stream closed", p->hs.agent_id);
            pending_drop(m, p);
        }
    }
}
