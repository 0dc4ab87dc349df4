/* master/agents.c - the master's side of the agent protocol (docs/protocol.md) on
 * POST /api/v1/agent: SUBSCRIBE registers the agent, opens its event stream (a chunked reply
 * of RecordIO records that stays open) and reconciles its tasks; HEARTBEAT takes usage;
 * UPDATE applies a status and sends ACKNOWLEDGE on the stream. A one-second tick PINGs the
 * streams, marks silent agents unreachable and, after the grace period, their tasks LOST.
 * An agent is freed while the loop runs only by master_agent_remove, and only when it has no
 * stream: the one callback that carries its pointer is its stream's close callback. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <string.h>

#include "master/master.h"

static const double hb_bounds[7] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1};

static void send_on(struct evhttp_request *req, enum ml_event_type t, const char *payload)
{
    _cleanup_free_ char *ev = ml_event_encode(t, payload);
    size_t len;
    _cleanup_free_ char *frame = ml_frame(ev, strlen(ev), &len);
    struct evbuffer *buf = evbuffer_new();
    evbuffer_add(buf, frame, len);
    evhttp_send_reply_chunk(req, buf);
    evbuffer_free(buf);
}

/* "ADDRESS:PORT" of the peer of req, for log lines about refused callers. */
static const char *peer_of(struct evhttp_request *req, char *buf, size_t len)
{
    struct evhttp_connection *c = evhttp_request_get_connection(req);
    char *addr = NULL;
    ev_uint16_t port = 0;
    if (c)
        evhttp_connection_get_peer(c, &addr, &port);
    snprintf(buf, len, "%s:%u", addr ? addr : "?", (unsigned) port);
    return buf;
}

bool master_link_send(struct master *m, struct m_agent *ag, enum ml_event_type t,
                      const char *payload)
{
    (void) m;
    if (!ag->stream)
        return false;
    send_on(ag->stream, t, payload);
    return true;
}

static void stream_closed(struct evhttp_connection *conn, void *arg)
{
    struct m_agent *ag = arg;
    if (ag->stream_conn != conn)
        return; /* an older stream of an agent that has subscribed again */
    log_info("agent '%s' (%s): event stream closed", ag->id, ag->hostname);
    /* libevent detaches a request whose reply we had not finished when the peer goes
     * (EOF, timeout) and leaves it to us: ending it frees it. One still attached is freed
     * with the connection. */
    if (!evhttp_request_get_connection(ag->stream))
        evhttp_send_reply_end(ag->stream);
    ag->stream = NULL;
    ag->stream_conn = NULL;
}

/* End ag's stream (a newer SUBSCRIBE, unreachable, shutdown): the agent sees the reply end. */
static void stream_end(struct m_agent *ag)
{
    if (!ag->stream)
        return;
    evhttp_connection_set_closecb(ag->stream_conn, NULL, NULL);
    evhttp_send_reply_end(ag->stream);
    ag->stream = NULL;
    ag->stream_conn = NULL;
}

void master_link_close_all(struct master *m)
{
    /* at shutdown the loop no longer runs to flush a reply's end: free the connections
     * (and their pending stream requests) outright; the agents see the streams drop */
    for (struct m_agent *ag = m->agents; ag; ag = ag->next) {
        if (!ag->stream)
            continue;
        evhttp_connection_set_closecb(ag->stream_conn, NULL, NULL);
        evhttp_connection_free(ag->stream_conn);
        ag->stream = NULL;
        ag->stream_conn = NULL;
    }
}

void master_agents_free(struct master *m)
{
    while (m->agents) {
        struct m_agent *ag = m->agents;
        m->agents = ag->next;
        free(ag->hostname);
        free(ag);
    }
    ml_table_free(&m->agents_by_id);
}

/* An agent's row: what a restarted master needs before the agent subscribes again. */
static char *agent_row_json(const struct m_agent *ag)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_kv_u64(g, "total_cpus", ag->total_cpus);
    json_kv_u64(g, "total_mem", ag->total_mem);
    json_kv_u64(g, "reserved_cpus", ag->reserved_cpus);
    json_kv_u64(g, "reserved_mem", ag->reserved_mem);
    json_kv_u64(g, "alloc_cpus", ag->alloc_cpus);
    json_kv_u64(g, "alloc_mem", ag->alloc_mem);
    json_kv_str(g, "state", ag->state == M_AGENT_REACHABLE ? "REACHABLE" : "UNREACHABLE");
    json_kv_bool(g, "lost_done", ag->lost_done);
    json_kv_double(g, "last_seen_at", ag->last_seen_at);
    if (ag->has_key) {
        char hex[ML_HEX_LEN + 1];
        ml_hex(ag->key, ML_KEY_LEN, hex);
        json_kv_str(g, "key", hex);
    }
    yajl_gen_map_close(g);
    return json_gen_take(g);
}

int master_agent_save(struct master *m, const struct m_agent *ag)
{
    _cleanup_free_ char *json = agent_row_json(ag);
    return master_store_agent_put(m, ag->id, ag->hostname, json, ag->registered_at);
}

/* master_store_agents_load's callback: one row back into the registry (a bad row is
 * skipped). */
static int load_row(struct master *m, const char *id, const char *host, const char *json,
                    double registered_at)
{
    if (!ml_id_valid(id) || master_agent_find(m, id))
        return 0;
    yajl_val v = json ? yajl_tree_parse(json, NULL, 0) : NULL;
    struct m_agent *ag = xzalloc(sizeof(*ag));
    snprintf(ag->id, sizeof(ag->id), "%s", id);
    ag->hostname = xstrdup(host ? host : "");
    (void) json_get_u64(v, "total_cpus", &ag->total_cpus);
    (void) json_get_u64(v, "total_mem", &ag->total_mem);
    (void) json_get_u64(v, "reserved_cpus", &ag->reserved_cpus);
    (void) json_get_u64(v, "reserved_mem", &ag->reserved_mem);
    (void) json_get_u64(v, "alloc_cpus", &ag->alloc_cpus);
    (void) json_get_u64(v, "alloc_mem", &ag->alloc_mem);
    (void) json_get_double(v, "last_seen_at", &ag->last_seen_at);
    const char *state = json_get_str(v, "state");
    ag->state = state && streq(state, "UNREACHABLE") ? M_AGENT_UNREACHABLE : M_AGENT_REACHABLE;
    yajl_val ld = json_get(v, "lost_done");
    ag->lost_done = ld && YAJL_IS_TRUE(ld);
    ag->has_key = ml_unhex(json_get_str(v, "key"), ag->key, ML_KEY_LEN) == 0;
    ag->registered_at = registered_at;
    /* the timers count from the master's start: agents get agent_timeout to come back */
    ag->last_seen_ns = now_monotonic_ns();
    ag->unreachable_ns = ag->last_seen_ns;
    yajl_tree_free(v);
    ag->next = m->agents;
    m->agents = ag;
    m->n_agents++;
    ml_table_put(&m->agents_by_id, ag->id, ag);
    return 0;
}

int master_agents_load(struct master *m, struct berr **err)
{
    return master_store_agents_load(m, load_row, err);
}

static void read_amounts(yajl_val res, const char *key, uint64_t *cpus, uint64_t *mem)
{
    yajl_val v = json_get(res, key);
    double c;
    if (json_get_double(v, "cpus", &c) && c >= 0 && c < 1e6)
        *cpus = (uint64_t) (c * 1000 + 0.5);
    (void) json_get_u64(v, "mem", mem);
}

static void kill_payload_send(struct master *m, struct m_agent *ag, const char *task_id)
{
    _cleanup_free_ char *p = xasprintf("{\"task_id\": \"%s\"}", task_id);
    master_link_send(m, ag, ML_EVENT_KILL, p);
}

/* SUBSCRIBE's task list against the master's view (docs/protocol.md, Reconciliation). */
static void reconcile(struct master *m, struct m_agent *ag, yajl_val tasks)
{
    struct ml_table listed = {0};
    size_t n = tasks && YAJL_IS_ARRAY(tasks) ? tasks->u.array.len : 0;
    for (size_t i = 0; i < n; i++) {
        yajl_val e = tasks->u.array.values[i];
        const char *id = json_get_str(e, "task_id");
        enum ml_state st = ml_state_from_name(json_get_str(e, "state"));
        if (!ml_id_valid(id))
            continue;
        ml_table_put(&listed, id, e);
        struct m_task *t = master_task_find(m, id);
        bool alive_there = (int) st >= 0 && !ml_state_terminal(st);
        if (!alive_there)
            continue;
        if (!t || !streq(t->agent_id, ag->id) || ml_state_terminal(t->state)) {
            /* the agent runs what the master dropped (LOST while it was away, or unknown) */
            if (m->cfg.reconcile_kill) {
                log_info("agent '%s': task '%s' runs there but is %s here: killing it", ag->id, id,
                         t ? ml_state_name(t->state) : "unknown");
                kill_payload_send(m, ag, id);
                m->kills_reconciled_total++;
            }
        } else if (t->kill_requested) {
            kill_payload_send(m, ag, id);
        }
    }
    for (struct m_task *t = m->tasks; t; t = t->next) {
        if (ml_state_terminal(t->state) || !streq(t->agent_id, ag->id) ||
            ml_table_get(&listed, t->id))
            continue;
        if (t->state == ML_STAGING && t->kill_requested) {
            master_task_end(m, t, ML_KILLED, ML_REASON_KILLED_BY_REQUEST,
                            "killed before the agent received it");
        } else if (t->state == ML_STAGING) {
            /* LAUNCH may have been lost with the previous stream or master: send it again
             * (the agent ignores a task id it already has) */
            _cleanup_free_ char *p = master_task_launch_payload(t);
            if (master_link_send(m, ag, ML_EVENT_LAUNCH, p))
                m->launches_sent_total++;
        } else {
            master_task_end(m, t, ML_LOST, ML_REASON_RECONCILED_LOST,
                            "the agent subscribed again without this task");
        }
    }
    ml_table_free(&listed);
}

/* ---- the handshake (docs/protocol.md, Authentication) ----------------------------------- */

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

static struct m_pending *pending_free(struct m_pending *p)
{
    if (p->body)
        explicit_bzero(p->body, p->len);
    explicit_bzero(p->key, sizeof(p->key));
    free(p->body);
    free(p);
    return NULL;
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
        pending_free(p);
        return;
    }
}

/* End an unproven stream from our side (refused, expired, shutdown). */
static void pending_drop(struct master *m, struct m_pending *p)
{
    evhttp_connection_set_closecb(p->conn, NULL, NULL);
    evhttp_send_reply_end(p->req);
    pending_unlink(m, p);
    pending_free(p);
}

void master_pending_free_all(struct master *m)
{
    while (m->pending) {
        struct m_pending *p = m->pending;
        evhttp_connection_set_closecb(p->conn, NULL, NULL);
        evhttp_connection_free(p->conn);
        pending_unlink(m, p);
        pending_free(p);
    }
}

/* A SUBSCRIBE: check its shape and which key it claims, open its stream and send the
 * CHALLENGE. Nothing of the registry changes until AUTHENTICATE proves the key (a second
 * SUBSCRIBE for a live agent's id must not even end that agent's stream). */
static void subscribe_start(struct master *m, struct evhttp_request *req, struct ml_call *call,
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
                        call->agent_id, peer_of(req, peer, sizeof(peer)));
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
        pending_free(pd);
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
    send_on(req, ML_EVENT_CHALLENGE, ch);
}

/* The proven SUBSCRIBE: register or update the agent, make the pending stream its stream,
 * SUBSCRIBED, then reconcile. */
static void subscribe_apply(struct master *m, struct m_pending *pd, struct ml_call *call)
{
    yajl_val p = call->payload;
    const char *host = json_get_str(p, "hostname");
    yajl_val res = json_get(p, "resources");
    struct m_agent *ag = master_agent_find(m, call->agent_id);
    bool is_new = !ag;
    if (!ag) {
        ag = xzalloc(sizeof(*ag));
        snprintf(ag->id, sizeof(ag->id), "%s", call->agent_id);
        ag->registered_at = now_realtime();
        ag->next = m->agents;
        m->agents = ag;
        m->n_agents++;
        ml_table_put(&m->agents_by_id, ag->id, ag);
    }
    if (pd->join) {
        ml_auth_agent_key(pd->key, &pd->hs, ag->key);
        ag->has_key = true;
        log_info("agent '%s' (%s) registered with join token '%s'", ag->id, host, pd->join_id);
    }
    ml_auth_session_key(ag->key, &pd->hs, ag->session);
    free(ag->hostname);
    ag->hostname = xstrdup(host);
    read_amounts(res, "total", &ag->total_cpus, &ag->total_mem);
    read_amounts(res, "reserved", &ag->reserved_cpus, &ag->reserved_mem);
    read_amounts(res, "allocatable", &ag->alloc_cpus, &ag->alloc_mem);
    bool was_unreachable = ag->state == M_AGENT_UNREACHABLE;
    ag->state = M_AGENT_REACHABLE;
    ag->lost_done = false;
    ag->last_seen_ns = now_monotonic_ns();
    ag->last_seen_at = now_realtime();
    (void) master_agent_save(m, ag);
    stream_end(ag); /* the agent restarted, or its old connection is half dead */
    snprintf(ag->stream_id, sizeof(ag->stream_id), "%s", pd->hs.stream_id);
    m->subscribes_total++;
    ag->stream = pd->req;
    ag->stream_conn = pd->conn;
    evhttp_connection_set_closecb(ag->stream_conn, stream_closed, ag);
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_kv_str(g, "agent_id", ag->id);
    json_kv_str(g, "stream_id", ag->stream_id);
    json_kv_double(g, "heartbeat_interval_seconds", (double) m->cfg.heartbeat_interval_ms / 1000);
    yajl_gen_map_close(g);
    _cleanup_free_ char *sub = json_gen_take(g);
    master_link_send(m, ag, ML_EVENT_SUBSCRIBED, sub);
    log_info("agent '%s' (%s) %s", ag->id, ag->hostname,
             is_new            ? "registered"
             : was_unreachable ? "is back"
                               : "subscribed again");
    reconcile(m, ag, json_get(p, "tasks"));
}

/* AUTHENTICATE: the agent's proof for the challenge of its pending stream. */
static void authenticate(struct master *m, struct evhttp_request *req, struct ml_call *call)
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
        return;
    }
    char want[ML_HEX_LEN + 1];
    ml_auth_proof(pd->key, &pd->hs, false, want);
    if (!ml_hex_equal(json_get_str(call->payload, "proof"), want)) {
        m->auth_failures_total++;
        char peer[96];
        log_warning("agent '%s': AUTHENTICATE from %s with a wrong proof (%s): refused, its "
                    "stream closed",
                    call->agent_id, peer_of(req, peer, sizeof(peer)),
                    pd->join ? "not the join token" : "not the agent's key");
        pending_drop(m, pd);
        master_refuse(m, req, BERR_UNAUTHORIZED, "wrong proof for agent '%s'", call->agent_id);
        return;
    }
    struct ml_call sub;
    _cleanup_berr_ struct berr *err = NULL;
    if (ml_call_decode(pd->body, pd->len, &sub, &err) < 0) { /* decoded once already */
        pending_drop(m, pd);
        master_refuse(m, req, BERR_INTERNAL, "%s", berr_msg(err));
        return;
    }
    pending_unlink(m, pd);
    evhttp_connection_set_closecb(pd->conn, NULL, NULL);
    subscribe_apply(m, pd, &sub);
    ml_call_done(&sub);
    pending_free(pd);
    master_reply_accepted(req);
}

static void heartbeat(struct master *m, struct m_agent *ag, struct ml_call *call)
{
    yajl_val usage = json_get(call->payload, "usage");
    yajl_val node = json_get(usage, "node"), used = json_get(usage, "used");
    ag->has_usage = true;
    ag->usage_at = now_realtime();
    (void) json_get_double(node, "cpus", &ag->node_cpus);
    (void) json_get_u64(node, "mem", &ag->node_mem);
    (void) json_get_double(used, "cpus", &ag->used_cpus);
    (void) json_get_u64(used, "mem", &ag->used_mem);
    yajl_val tasks = json_get(usage, "tasks");
    for (size_t i = 0; tasks && YAJL_IS_ARRAY(tasks) && i < tasks->u.array.len; i++) {
        yajl_val e = tasks->u.array.values[i];
        struct m_task *t = master_task_find(m, json_get_str(e, "task_id"));
        if (!t || !streq(t->agent_id, ag->id) || ml_state_terminal(t->state))
            continue;
        bool c = json_get_double(e, "cpus", &t->usage_cpus);
        bool mm = json_get_u64(e, "mem", &t->usage_mem);
        t->has_usage = c || mm;
    }
    ag->heartbeats++;
    m->heartbeats_total++;
}

/* 1 when acknowledged (applied, a duplicate, or news of a task that is not ours to keep). */
static int update(struct master *m, struct evhttp_request *req, struct m_agent *ag,
                  struct ml_call *call)
{
    struct ml_status s;
    _cleanup_berr_ struct berr *err = NULL;
    if (ml_status_decode(json_get(call->payload, "status"), &s, &err) < 0) {
        master_refuse(m, req, BERR_INVALID_ARGUMENT, "UPDATE: %s", berr_msg(err));
        return 0;
    }
    struct m_task *t = master_task_find(m, s.task_id);
    m->updates_total++;
    if (!t || !streq(t->agent_id, ag->id)) {
        log_info("agent '%s': update %s of task '%s', which is not placed there: acknowledged "
                 "and dropped",
                 ag->id, ml_state_name(s.state), s.task_id);
    } else {
        int r = master_task_apply(m, t, &s, "agent");
        if (r < 0) {
            ml_status_done(&s);
            master_refuse(m, req, BERR_INTERNAL, "cannot record the update in master.db");
            return 0;
        }
        if (r == 0)
            m->updates_duplicate_total++;
    }
    _cleanup_free_ char *ack =
            xasprintf("{\"task_id\": \"%s\", \"uuid\": \"%s\"}", s.task_id, s.uuid);
    master_link_send(m, ag, ML_EVENT_ACKNOWLEDGE, ack);
    ml_status_done(&s);
    return 1;
}

void master_link_serve(struct master *m, struct evhttp_request *req, const char *body, size_t len)
{
    uint64_t t0 = now_monotonic_ns();
    struct ml_call call;
    _cleanup_berr_ struct berr *err = NULL;
    if (ml_call_decode(body, len, &call, &err) < 0) {
        master_refuse(m, req, BERR_INVALID_ARGUMENT, "%s", berr_msg(err));
        return;
    }
    if (call.type == ML_CALL_SUBSCRIBE) {
        subscribe_start(m, req, &call, body, len);
        ml_call_done(&call);
        return;
    }
    if (call.type == ML_CALL_AUTHENTICATE) {
        authenticate(m, req, &call);
        ml_call_done(&call);
        return;
    }
    struct m_agent *ag = master_agent_find(m, call.agent_id);
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *sid = evhttp_find_header(in, ML_STREAM_HEADER);
    const char *sig = evhttp_find_header(in, ML_SIGNATURE_HEADER);
    char want[ML_HEX_LEN + 1];
    if (!ag) {
        master_refuse(m, req, BERR_UNKNOWN_AGENT, "agent '%s' is not registered: SUBSCRIBE first",
                      call.agent_id);
    } else if (!sid || !ag->stream_id[0] || !streq(sid, ag->stream_id)) {
        /* an old stream's call (replayed, or from before a newer SUBSCRIBE) */
        master_refuse(m, req, BERR_STALE_STREAM,
                      "%s of agent '%s' does not carry its current %s: SUBSCRIBE again",
                      ml_call_name(call.type), call.agent_id, ML_STREAM_HEADER);
    } else if (ml_auth_sign(ag->session, body, len, want), !ml_hex_equal(sig, want)) {
        m->auth_failures_total++;
        char peer[96];
        log_warning("agent '%s': %s from %s with a wrong or missing %s: refused", ag->id,
                    ml_call_name(call.type), peer_of(req, peer, sizeof(peer)), ML_SIGNATURE_HEADER);
        master_refuse(m, req, BERR_UNAUTHORIZED, "%s of agent '%s': bad %s",
                      ml_call_name(call.type), call.agent_id, ML_SIGNATURE_HEADER);
    } else {
        ag->last_seen_ns = now_monotonic_ns();
        ag->last_seen_at = now_realtime();
        if (call.type == ML_CALL_HEARTBEAT) {
            heartbeat(m, ag, &call);
            master_reply_accepted(req);
            double d = (double) (now_monotonic_ns() - t0) / 1e9;
            size_t i = 0;
            while (i < ARRAY_SIZE(hb_bounds) && d > hb_bounds[i])
                i++;
            m->hb_buckets[i]++;
            m->hb_count++;
            m->hb_sum += d;
        } else if (update(m, req, ag, &call) > 0) {
            master_reply_accepted(req);
        }
    }
    ml_call_done(&call);
}

void master_link_tick(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct master *m = arg;
    uint64_t now = now_monotonic_ns();
    uint64_t hb_ns = m->cfg.heartbeat_interval_ms * 1000000ULL;
    bool ping = now - m->last_ping_ns >= hb_ns;
    if (ping)
        m->last_ping_ns = now;
    /* ended tasks: once a minute, or twice per task_gc_delay when that is shorter */
    uint64_t gc_every = m->cfg.task_gc_delay_ms / 2 * 1000000ULL;
    if (gc_every > 60000000000ULL)
        gc_every = 60000000000ULL;
    if (now - m->last_gc_ns >= gc_every) {
        m->last_gc_ns = now;
        master_tasks_gc(m);
    }
    for (struct m_pending *p = m->pending, *next; p; p = next) {
        next = p->next;
        if (now - p->created_ns > PENDING_TIMEOUT_NS) {
            log_info("agent '%s': no AUTHENTICATE within 10s: stream closed", p->hs.agent_id);
            pending_drop(m, p);
        }
    }
    for (struct m_agent *ag = m->agents; ag; ag = ag->next) {
        if (ag->state == M_AGENT_REACHABLE &&
            now - ag->last_seen_ns > m->cfg.agent_timeout_ms * 1000000ULL) {
            ag->state = M_AGENT_UNREACHABLE;
            ag->unreachable_ns = now;
            log_warning("agent '%s' (%s): no heartbeat for %llu ms: unreachable", ag->id,
                        ag->hostname, (unsigned long long) m->cfg.agent_timeout_ms);
            /* its calls are refused from now on (STALE_STREAM), so it subscribes again and
             * the two reconcile */
            stream_end(ag);
            ag->stream_id[0] = 0;
            (void) master_agent_save(m, ag);
        }
        if (ag->state == M_AGENT_UNREACHABLE && !ag->lost_done &&
            now - ag->unreachable_ns >= m->cfg.lost_grace_ms * 1000000ULL) {
            ag->lost_done = true;
            unsigned n = master_tasks_lose_on(m, ag->id, ML_REASON_AGENT_UNREACHABLE,
                                              "the agent was unreachable for longer than "
                                              "lost_grace");
            (void) master_agent_save(m, ag);
            log_warning("agent '%s' (%s): unreachable past lost_grace: %u task(s) LOST", ag->id,
                        ag->hostname, n);
        }
        if (ping && ag->stream)
            master_link_send(m, ag, ML_EVENT_PING, NULL);
    }
}

void master_hb_histogram(struct master *m, struct evbuffer *out)
{
    uint64_t cum = 0;
    for (size_t i = 0; i < ARRAY_SIZE(hb_bounds); i++) {
        cum += m->hb_buckets[i];
        evbuffer_add_printf(out, "berth_master_heartbeat_duration_seconds_bucket{le=\"%g\"} %llu\n",
                            hb_bounds[i], (unsigned long long) cum);
    }
    evbuffer_add_printf(out,
                        "berth_master_heartbeat_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
                        "berth_master_heartbeat_duration_seconds_sum %.6f\n"
                        "berth_master_heartbeat_duration_seconds_count %llu\n",
                        (unsigned long long) m->hb_count, m->hb_sum,
                        (unsigned long long) m->hb_count);
}
