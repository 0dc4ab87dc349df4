/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/link.c - the agent's side of the master link protocol (docs/protocol.md). One
 * long-lived SUBSCRIBE stream carries the master's events (CHALLENGE, SUBSCRIBED, LAUNCH,
 * KILL, ACKNOWLEDGE, PING) as RecordIO records; HEARTBEAT (usage) and UPDATE (one status)
 * are separate calls. Status updates are written to state.db before they are sent and sent
 * again until the master acknowledges them, one at a time per task, in order; each has a
 * uuid so the master recognises a retry. The link watches the container transitions
 * lifecycle.c stores (ctr_watch_add) and binds them to tasks by the task id the container
 * record keeps; lifecycle.c does the launching and killing. link-db.c keeps the tables,
 * link-http.c runs the calls, decide.c says which updates a task still needs. */
#include <fcntl.h>
#include <signal.h>
#include <string.h>

#include "agentd/link-internal.h"

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 10000

/* ---- the stream -------------------------------------------------------------------------- */

static char *subscribe_body(struct link *l)
{
    struct agent *a = l->a;
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_kv_str(g, "hostname", a->hostname);
    if (a->cfg.address && a->cfg.address[0]) /* else the master takes our peer address */
        json_kv_str(g, "address", a->cfg.address);
    json_kv_str(g, "version", BERTH_VERSION);
    json_str(g, "attributes"); /* [attributes]: the master puts them on every offer */
    yajl_gen_map_open(g);
    for (size_t i = 0; i < a->cfg.n_attrs; i++)
        json_kv_str(g, a->cfg.attrs[i].name, a->cfg.attrs[i].value);
    yajl_gen_map_close(g);
    json_str(g, "auth");
    yajl_gen_map_open(g);
    json_kv_str(g, "method", l->use_join ? "join" : "agent-key");
    if (l->use_join)
        json_kv_str(g, "key_id", l->join_id);
    json_kv_str(g, "nonce", l->hs.nonce_agent);
    yajl_gen_map_close(g);
    json_str(g, "resources");
    yajl_gen_map_open(g);
    res_amounts_gen(g, "total", &a->total);
    res_amounts_gen(g, "reserved", &a->reserved);
    res_amounts_gen(g, "allocatable", &a->allocatable);
    /* the master offers a role's reservation only to that role, and ports by range */
    res_roles_gen(g, a);
    json_kv_str(g, "ports", a->cfg.ports ? a->cfg.ports : "");
    yajl_gen_map_close(g);
    /* the ranges the offers may carry, and what the live tasks hold of them */
    uint64_t used[1024];
    ports_used(a, used);
    _cleanup_free_ char *held = ports_ranges_text(used);
    json_kv_str(g, "ports", a->cfg.ports);
    json_kv_str(g, "ports_allocated", held);
    json_str(g, "tasks");
    yajl_gen_array_open(g);
    for (struct link_task *t = l->tasks; t; t = t->next) {
        struct container *c = t->container_id[0] ? ctr_find_id(a, t->container_id) : NULL;
        int st = c ? (int) c->state : t->last_state >= 0 ? t->last_state : ML_STAGING;
        yajl_gen_map_open(g);
        json_kv_str(g, "task_id", t->task_id);
        json_kv_str(g, "container_id", t->container_id[0] ? t->container_id : NULL);
        json_kv_str(g, "state", ml_state_name((enum ml_state) st));
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    _cleanup_free_ char *payload = json_gen_take(g);
    return ml_call_encode(ML_CALL_SUBSCRIBE, a->node_id, payload);
}

static void schedule_reconnect(struct link *l);

static void subscribe(struct link *l)
{
    if (l->stream)
        return;
    ml_reader_free(&l->rd);
    l->subscribed = false;
    l->proven = false;
    l->stream_header[0] = 0;
    memset(&l->hs, 0, sizeof(l->hs));
    snprintf(l->hs.agent_id, sizeof(l->hs.agent_id), "%s", l->a->node_id);
    if (random_hex(l->hs.nonce_agent, ML_HEX_LEN) < 0) {
        log_error("master link: no randomness for a nonce");
        schedule_reconnect(l);
        return;
    }
    l->connects++;
    l->stream = link_call_start(l, CALL_STREAM, subscribe_body(l));
    if (!l->stream)
        log_error("master link: cannot start a SUBSCRIBE call");
}

static void on_reconnect(evutil_socket_t fd, short kind, void *arg)
{
    (void) fd, (void) kind;
    subscribe(arg);
}

/* Capped exponential backoff with jitter: wait a random time in [d/2, d], then double d. */
static void schedule_reconnect(struct link *l)
{
    unsigned d = l->backoff_ms ? l->backoff_ms : BACKOFF_MIN_MS;
    unsigned r = 0;
    char hex[9];
    if (random_hex(hex, 8) == 0)
        r = (unsigned) strtoul(hex, NULL, 16);
    unsigned wait = d / 2 + (d / 2 ? r % (d / 2 + 1) : 0);
    l->backoff_ms = d * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d * 2;
    struct timeval tv = {.tv_sec = wait / 1000, .tv_usec = (wait % 1000) * 1000};
    evtimer_add(l->ev_reconnect, &tv);
}

static void stream_lost(struct link *l, const char *why)
{
    l->proven = false;
    explicit_bzero(l->session, sizeof(l->session));
    if (l->subscribed)
        log_warning("master link: stream to '%s' ended: %s; reconnecting", l->url, why);
    else
        log_info("master link: cannot subscribe at '%s': %s; retrying", l->url, why);
    l->subscribed = false;
    l->stream_header[0] = 0;
    for (struct link_update *u = l->updates; u; u = u->next)
        u->sent_ns = 0; /* everything unacknowledged goes again on the next stream */
    schedule_reconnect(l);
}

/* Drop the stream from our side (watchdog, a refused call) and subscribe again. */
static void stream_abort(struct link *l, const char *why)
{
    struct link_call *c = l->stream;
    if (!c)
        return;
    link_call_drop(l, c);
    stream_lost(l, why);
}

/* ---- events ------------------------------------------------------------------------------- */

static void send_heartbeat(struct link *l);

static void on_launch(struct link *l, yajl_val p)
{
    struct agent *a = l->a;
    const char *id = json_get_str(p, "task_id");
    yajl_val spec = json_get(p, "container");
    if (!ml_id_valid(id) || !spec || !YAJL_IS_OBJECT(spec)) {
        log_warning("master link: LAUNCH without a valid task_id and container: ignored");
        return;
    }
    if (ml_table_get(&l->by_task, id)) {
        log_debug("master link: LAUNCH of task '%s' again: it is already here", id);
        return;
    }
    struct link_task *t = link_task_new(l, id, NULL, -1);
    if (link_db_task_save(l, t) < 0) {
        link_task_end(l, t, ML_FAILED, ML_REASON_LAUNCH_FAILED, "cannot record the task");
        return;
    }
    /* parsed here, once, by the schema the master checked it with (masterlink/spec.c); the
     * container is bound to the task by the id its record keeps (on_transition) */
    struct ml_task_spec parsed;
    struct container *c = NULL;
    _cleanup_berr_ struct berr *err = NULL;
    int r = ml_task_spec_parse(spec, 0, &parsed, &err);
    if (r == 0)
        r = ctr_launch(a, CTR_ORIGIN_MASTER, &parsed, t->task_id, NULL, NULL, &c, &err);
    if (r < 0) {
        log_info("task '%s' from the master: launch refused: %s", id, berr_msg(err));
        enum ml_reason why = err->code == BERR_INSUFFICIENT_RESOURCES
                                     ? ML_REASON_INSUFFICIENT_RESOURCES
                             : err->code == BERR_FORBIDDEN ? ML_REASON_POLICY_DENIED
                                                           : ML_REASON_LAUNCH_FAILED;
        link_task_end(l, t, ML_FAILED, why, berr_msg(err));
        return;
    }
    log_info("task '%s' from the master: container '%s'", id, c->id);
}

static void on_kill(struct link *l, yajl_val p)
{
    struct agent *a = l->a;
    const char *id = json_get_str(p, "task_id");
    if (!ml_id_valid(id))
        return;
    struct link_task *t = ml_table_get(&l->by_task, id);
    if (!t) {
        /* the master thinks it runs here; it does not: say so */
        t = link_task_new(l, id, NULL, -1);
        link_task_end(l, t, ML_LOST, ML_REASON_UNKNOWN_TO_AGENT,
                      "the agent has no such task (KILL)");
        return;
    }
    struct container *c = t->container_id[0] ? ctr_find_id(a, t->container_id) : NULL;
    if (!c || ml_state_terminal(c->state))
        return; /* its end is queued already */
    double grace_s;
    uint64_t grace_ms = a->cfg.kill_grace_ms;
    if (json_get_double(p, "grace_seconds", &grace_s) && grace_s >= 0 && grace_s < 86400)
        grace_ms = (uint64_t) (grace_s * 1000);
    _cleanup_berr_ struct berr *err = NULL;
    if (ctr_kill(a, c, SIGTERM, grace_ms, &err) < 0)
        log_warning("task '%s': kill from the master: %s", id, berr_msg(err));
    else
        log_info("task '%s' (container '%s'): killed by the master", id, c->id);
}

/* The master's CHALLENGE: its proof that it knows our key (or the join token). Only then
 * do we prove ours, on an AUTHENTICATE call: a peer that is not the master learns a nonce
 * and nothing it can use. */
static void on_challenge(struct link *l, yajl_val p)
{
    const char *sid = json_get_str(p, "stream_id"), *nonce = json_get_str(p, "nonce");
    const char *proof = json_get_str(p, "proof");
    if (l->proven || !ml_id_valid(sid) || strlen(sid) >= sizeof(l->hs.stream_id) ||
        !ml_nonce_valid(nonce)) {
        log_warning("master link: a bad CHALLENGE: dropping the stream");
        l->stream->abort = true;
        return;
    }
    snprintf(l->hs.stream_id, sizeof(l->hs.stream_id), "%s", sid);
    snprintf(l->hs.nonce_master, sizeof(l->hs.nonce_master), "%s", nonce);
    const uint8_t *k = l->use_join ? l->join_key : l->key;
    char want[ML_HEX_LEN + 1];
    ml_auth_proof(k, &l->hs, true, want);
    if (!ml_hex_equal(proof, want)) {
        log_error("master link: the peer at '%s' did not prove it knows %s: it is not our "
                  "master (or not the one that registered us); nothing sent, retrying",
                  l->url, l->use_join ? "the join token" : "this agent's key");
        l->stream->abort = true;
        return;
    }
    l->proven = true;
    if (l->use_join) {
        uint8_t agent_key[ML_KEY_LEN];
        ml_auth_agent_key(l->join_key, &l->hs, agent_key);
        int r = link_key_save(l, agent_key);
        if (r < 0) {
            log_msg(LOG_ERR, -r, "master link: cannot keep the agent key in '%s'", l->key_path);
            explicit_bzero(agent_key, sizeof(agent_key));
            l->stream->abort = true;
            return;
        }
        memcpy(l->key, agent_key, ML_KEY_LEN);
        explicit_bzero(agent_key, sizeof(agent_key));
        l->has_key = true;
        l->use_join = false;
        log_info("master link: registering with join token '%s'; our key is in '%s'", l->join_id,
                 l->key_path);
    }
    ml_auth_session_key(l->key, &l->hs, l->session);
    snprintf(l->stream_header, sizeof(l->stream_header), "%s: %s", ML_STREAM_HEADER, sid);
    /* we prove with the key the master proved: a join handshake with the join token (the
     * master derives our key once it has checked it) */
    char mine[ML_HEX_LEN + 1];
    ml_auth_proof(k, &l->hs, false, mine);
    _cleanup_free_ char *payload = xasprintf("{\"proof\": \"%s\"}", mine);
    /* curl refuses new transfers from inside its write callback: the kick sends it */
    free(l->auth_body);
    l->auth_body = ml_call_encode(ML_CALL_AUTHENTICATE, l->a->node_id, payload);
    link_kick(l);
}

static void handle_event(struct link *l, const char *rec, size_t len)
{
    struct ml_event ev;
    _cleanup_berr_ struct berr *err = NULL;
    if (ml_event_decode(rec, len, &ev, &err) < 0) {
        log_warning("master link: bad event: %s", berr_msg(err));
        return;
    }
    if (ev.type != ML_EVENT_CHALLENGE && ev.type != ML_EVENT_PING &&
        (!l->proven || (ev.type != ML_EVENT_SUBSCRIBED && !l->subscribed))) {
        /* nothing from a peer that has not proven it knows our key, and nothing but
         * SUBSCRIBED before it */
        log_warning("master link: %s before the handshake ended: dropping the stream",
                    ml_event_name(ev.type));
        l->stream->abort = true;
        ml_event_done(&ev);
        return;
    }
    switch (ev.type) {
    case ML_EVENT_CHALLENGE:
        on_challenge(l, ev.payload);
        break;
    case ML_EVENT_SUBSCRIBED: {
        const char *sid = json_get_str(ev.payload, "stream_id");
        double hb = 5;
        (void) json_get_double(ev.payload, "heartbeat_interval_seconds", &hb);
        hb = hb >= 0.1 && hb <= 3600 ? hb : 5; /* and so logged (review L8) */
        if (!sid || !streq(sid, l->hs.stream_id)) {
            log_warning("master link: SUBSCRIBED for another stream than the challenge's");
            l->stream->abort = true;
            break;
        }
        l->hb_interval_ms = (uint64_t) (hb * 1000);
        l->subscribed = true;
        l->backoff_ms = 0;
        log_info("master link: subscribed to '%s' as '%s' (heartbeat every %.1fs)", l->url,
                 l->a->node_id, hb);
        l->last_hb_ns = 0; /* the kick sends the first heartbeat now */
        link_kick(l);
        break;
    }
    case ML_EVENT_LAUNCH:
        on_launch(l, ev.payload);
        break;
    case ML_EVENT_KILL:
        on_kill(l, ev.payload);
        break;
    case ML_EVENT_ACKNOWLEDGE:
        link_updates_ack(l, json_get_str(ev.payload, "uuid"));
        break;
    case ML_EVENT_PING:
    default:
        break;
    }
    ml_event_done(&ev);
}

/* ---- calls ---------------------------------------------------------------------------------- */

static char *heartbeat_body(struct link *l)
{
    struct agent *a = l->a;
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_str(g, "usage");
    yajl_gen_map_open(g);
    json_str(g, "node");
    yajl_gen_map_open(g);
    json_kv_double(g, "cpus", a->node_cpu_cores);
    json_kv_u64(g, "mem", a->node_mem_used);
    yajl_gen_map_close(g);
    json_str(g, "tasks");
    yajl_gen_array_open(g);
    for (struct container *c = a->containers; c; c = c->next) {
        struct link_task *t = ml_table_get(&l->by_container, c->id);
        if (ml_state_terminal(c->state) || !c->has_usage || !t)
            continue;
        yajl_gen_map_open(g);
        json_kv_str(g, "task_id", t->task_id);
        json_kv_double(g, "cpus", ctr_cpu_cores(c));
        json_kv_u64(g, "mem", c->usage.mem_usage);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    double used_cpus;
    uint64_t used_mem;
    resources_used(a, &used_cpus, &used_mem);
    json_str(g, "used");
    yajl_gen_map_open(g);
    json_kv_double(g, "cpus", used_cpus);
    json_kv_u64(g, "mem", used_mem);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    /* ports come and go with tasks the master did not place too (local launches) */
    struct res_amounts allocated;
    resources_allocated(a, &allocated);
    uint64_t ports[1024];
    ports_used(a, ports);
    _cleanup_free_ char *held = ports_ranges_text(ports);
    json_str(g, "ports");
    yajl_gen_map_open(g);
    json_kv_u64(g, "allocated", allocated.v[RES_PORTS]);
    json_kv_u64(g, "free", a->allocatable.v[RES_PORTS] - allocated.v[RES_PORTS]);
    json_kv_str(g, "ranges", a->cfg.ports);
    json_kv_str(g, "allocated_ranges", held);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    _cleanup_free_ char *payload = json_gen_take(g);
    return ml_call_encode(ML_CALL_HEARTBEAT, a->node_id, payload);
}

static void send_heartbeat(struct link *l)
{
    if (!l->subscribed || l->hb_calling)
        return;
    if (link_call_start(l, CALL_HEARTBEAT, heartbeat_body(l)))
        l->hb_calling = true;
    l->last_hb_ns = now_monotonic_ns();
}

/* Calls that cannot start inside curl's callbacks: AUTHENTICATE, the first heartbeat of a
 * stream, and the updates queued meanwhile. */
static void on_kick(evutil_socket_t fd, short kind, void *arg)
{
    (void) fd, (void) kind;
    struct link *l = arg;
    if (l->auth_body) {
        char *body = TAKE_PTR(l->auth_body);
        if (l->stream && l->proven && !l->subscribed) {
            if (!link_call_start(l, CALL_AUTHENTICATE, body))
                stream_abort(l, "cannot start AUTHENTICATE");
        } else {
            free(body);
        }
    }
    if (l->subscribed && l->last_hb_ns == 0)
        send_heartbeat(l);
    link_updates_flush(l);
}

/* The code of an answer of the master's error JSON, or BERR_CODE_NONE. */
static enum berr_code answer_code(struct link_call *c)
{
    yajl_val v = c->answer ? json_parse(c->answer, c->answer_len, NULL) : NULL;
    enum berr_code code = berr_code_from_name(json_get_str(json_get(v, "error"), "code"));
    yajl_tree_free(v);
    return code < 0 ? BERR_CODE_NONE : code;
}

/* An answer of the master's error JSON: its message, else the body's start. */
static void answer_message(struct link_call *c, char *buf, size_t len)
{
    yajl_val v = c->answer ? json_parse(c->answer, c->answer_len, NULL) : NULL;
    const char *msg = json_get_str(json_get(v, "error"), "message");
    snprintf(buf, len, "%s", msg ? msg : c->answer ? c->answer : "");
    yajl_tree_free(v);
}

/* The stream's bytes: RecordIO records, each an event. false drops the stream. */
static bool on_stream_data(struct link *l, struct link_call *c, const char *data, size_t len)
{
    l->last_rx_ns = now_monotonic_ns();
    ml_reader_feed(&l->rd, data, len);
    for (;;) {
        const char *rec;
        size_t rlen;
        _cleanup_berr_ struct berr *err = NULL;
        int r = ml_reader_next(&l->rd, &rec, &rlen, &err);
        if (r == 0)
            break;
        if (r < 0) {
            log_warning("master link: bad event stream: %s", berr_msg(err));
            c->abort = true;
            return false;
        }
        handle_event(l, rec, rlen);
        if (c->abort)
            return false;
    }
    return true;
}

static void call_done(struct link *l, struct link_call *c, CURLcode rc)
{
    long status = 0;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    char why[512];
    if (rc != CURLE_OK && !(c->kind == CALL_STREAM && c->abort))
        snprintf(why, sizeof(why), "%s", curl_easy_strerror(rc));
    else if (status >= 300 || status < 200)
        answer_message(c, why, sizeof(why));
    else
        why[0] = 0;
    if (c->kind == CALL_STREAM) {
        if (status == 401 && l->has_join && !l->use_join && c->answer &&
            answer_code(c) == BERR_UNKNOWN_AGENT_KEY) {
            /* the master does not know our key (its state was lost, or our key was kept
             * but its registration did not go through): register again with the join token */
            log_warning("master link: the master does not know this agent's key: registering "
                        "with the join token '%s'",
                        l->join_id);
            l->use_join = true;
        }
        char full[640];
        if (status && status != 200)
            snprintf(full, sizeof(full), "HTTP %ld: %s", status, why);
        else
            snprintf(full, sizeof(full), "%s", why[0] ? why : "the master ended it");
        stream_lost(l, c->abort ? "bad data on the stream" : full);
        return;
    }
    if (c->kind == CALL_AUTHENTICATE) {
        if (rc != CURLE_OK || status != 202) {
            log_warning("master link: AUTHENTICATE %s (HTTP %ld: %s)",
                        rc != CURLE_OK ? "failed" : "refused", status, why);
            stream_abort(l, "the master did not accept our proof");
        }
        return;
    }
    if (c->kind == CALL_HEARTBEAT)
        l->hb_calling = false;
    struct link_update *u = c->kind == CALL_UPDATE ? link_update_find(l, c->uuid) : NULL;
    if (u) {
        u->calling = false;
        if (rc != CURLE_OK || status >= 500 || status == 0)
            u->sent_ns = 0; /* not delivered: the next tick sends it again */
    }
    if (rc == CURLE_OK && (status == 404 || status == 409 || status == 401)) {
        /* UNKNOWN_AGENT / STALE_STREAM: the master lost us or we hold an old stream */
        log_warning("master link: %s refused (HTTP %ld: %s): subscribing again",
                    c->kind == CALL_UPDATE ? "UPDATE" : "HEARTBEAT", status, why);
        if (u)
            u->sent_ns = 0;
        stream_abort(l, "a call was refused");
    } else if (rc == CURLE_OK && status == 400 && u) {
        /* the master cannot read it: retrying cannot help; drop it loudly */
        log_error("task '%s': the master refused update %s: %s", u->task_id, u->uuid, why);
        link_updates_ack(l, u->uuid);
    }
}

static void on_tick(evutil_socket_t fd, short kind, void *arg)
{
    (void) fd, (void) kind;
    struct link *l = arg;
    uint64_t now = now_monotonic_ns();
    uint64_t hb_ns = (l->hb_interval_ms ? l->hb_interval_ms : 5000) * 1000000ULL;
    if (l->stream && l->subscribed && now - l->last_rx_ns > 3 * hb_ns + 2000000000ULL) {
        stream_abort(l, "no PING from the master for 3 heartbeat intervals");
        return;
    }
    if (l->stream && !l->subscribed && now - l->stream->started_ns > 15000000000ULL) {
        stream_abort(l, "no SUBSCRIBED within 15s");
        return;
    }
    if (l->subscribed && now - l->last_hb_ns >= hb_ns)
        send_heartbeat(l);
    link_updates_flush(l);
}

/* ---- start and stop -------------------------------------------------------------------------- */

int link_start(struct agent *a, struct berr **err)
{
    if (!a->cfg.master || !a->cfg.master[0])
        return 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return berr_setx(err, ENOMEM, "cannot initialise libcurl");
    struct link *l = xzalloc(sizeof(*l));
    l->a = a;
    a->link = l;
    l->on_stream_data = on_stream_data;
    l->on_call_done = call_done;
    int r = link_db_init(l, err);
    if (r < 0)
        return r;
    size_t n = strlen(a->cfg.master);
    while (n > 0 && a->cfg.master[n - 1] == '/')
        n--;
    l->url = xasprintf("%.*s%s", (int) n, a->cfg.master, ML_AGENT_PATH);
    if ((r = link_keys_load(l, err)) < 0)
        return r;
    ml_reader_init(&l->rd, ML_MAX_MESSAGE);
    if (link_http_init(l, err) < 0)
        return -ENOMEM;
    l->ev_tick = event_new(a->base, -1, EV_PERSIST, on_tick, l);
    l->ev_kick = event_new(a->base, -1, 0, on_kick, l);
    l->ev_reconnect = evtimer_new(a->base, on_reconnect, l);
    if (!l->ev_tick || !l->ev_kick || !l->ev_reconnect)
        return berr_setx(err, ENOMEM, "master link: out of memory");
    if ((r = link_updates_load(l, err)) < 0)
        return r;
    ctr_watch_add(a, link_on_transition);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 250000};
    event_add(l->ev_tick, &tv);
    if (str_has_prefix(l->url, "http://"))
        log_warning("master link: '%s' is plain HTTP (master_plain_http): the handshake keeps "
                    "our key secret, but what the link carries can be read and changed on the "
                    "way (docs/security.md)",
                    l->url);
    subscribe(l);
    return 0;
}

void link_stop(struct agent *a)
{
    struct link *l = a->link;
    if (!l)
        return;
    link_http_free(l);
    struct event *evs[] = {l->ev_tick, l->ev_kick, l->ev_reconnect};
    for (size_t i = 0; i < ARRAY_SIZE(evs); i++)
        if (evs[i])
            event_free(evs[i]);
    link_updates_free(l);
    ml_reader_free(&l->rd);
    free(l->url);
    free(l->key_path);
    free(l->auth_body);
    explicit_bzero(l->key, sizeof(l->key));
    explicit_bzero(l->join_key, sizeof(l->join_key));
    explicit_bzero(l->session, sizeof(l->session));
    free(l);
    a->link = NULL;
    curl_global_cleanup();
}
