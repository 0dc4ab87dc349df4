/* SPDX-License-Identifier: Apache-2.0 */
/* sched/sched.c - the scheduler library's protocol (docs/protocol.md, "The scheduler API"):
 * SUBSCRIBE and the event stream (RecordIO, masterlink/recordio.c) decoded into the caller's
 * callbacks, automatic ACKNOWLEDGE of status updates, the calls, and keeping the stream: one
 * that ends, is refused with a 5xx, or brings no byte for three heartbeats is subscribed again
 * with capped, jittered backoff as the same framework (its id); a refusal that cannot change
 * (the framework was removed, the token may not subscribe) stops it, through a fatal error.
 * http.c carries the requests. */
#include <string.h>

#include "sched/sched-internal.h"

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 10000
#define SUBSCRIBE_TIMEOUT_NS 15000000000ULL

static void schedule_reconnect(struct sched *s);

static void subscribe(struct sched *s)
{
    if (s->stream || s->stopped)
        return;
    ml_reader_free(&s->rd);
    ml_reader_init(&s->rd, ML_MAX_MESSAGE);
    s->subscribed = false;
    s->stream_id[0] = 0;
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_kv_str(g, "name", s->cfg.name);
    json_kv_strv(g, "roles", s->roles);
    if (s->cfg.failover_timeout >= 0)
        json_kv_double(g, "failover_timeout", s->cfg.failover_timeout);
    yajl_gen_map_close(g);
    _cleanup_free_ char *payload = json_gen_take(g);
    s->subscribes++;
    s->last_rx_ns = now_monotonic_ns();
    s->stream = sched_req_start(s, SCHED_REQ_STREAM, ML_SCHED_SUBSCRIBE,
                                ml_sched_call_encode(ML_SCHED_SUBSCRIBE, s->framework_id, payload));
    if (!s->stream)
        schedule_reconnect(s);
}

static void on_reconnect(evutil_socket_t fd, short kind, void *arg)
{
    (void) fd, (void) kind;
    subscribe(arg);
}

static void schedule_reconnect(struct sched *s)
{
    if (s->stopped)
        return;
    unsigned d = s->backoff_ms ? s->backoff_ms : BACKOFF_MIN_MS;
    char hex[9];
    unsigned r = random_hex(hex, 8) == 0 ? (unsigned) strtoul(hex, NULL, 16) : 0;
    unsigned wait = d / 2 + (d / 2 ? r % (d / 2 + 1) : 0);
    s->backoff_ms = d * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d * 2;
    struct timeval tv = {.tv_sec = wait / 1000, .tv_usec = (wait % 1000) * 1000};
    evtimer_add(s->ev_reconnect, &tv);
}

/* The stream is gone (ended, silent, undecodable): tell the caller, subscribe again. */
static void stream_lost(struct sched *s, const char *why)
{
    bool was = s->subscribed;
    s->subscribed = false;
    s->stream_id[0] = 0;
    if (s->stream)
        sched_req_drop(s, s->stream);
    if (was && s->cb.disconnected)
        s->cb.disconnected(s, why, s->arg);
    schedule_reconnect(s);
}

static void stop(struct sched *s, const char *call, enum berr_code code, const char *msg)
{
    s->stopped = true;
    s->subscribed = false;
    evtimer_del(s->ev_reconnect);
    if (s->cb.error)
        s->cb.error(s, call, code, msg, true, s->arg);
}

static void on_status(struct sched *s, yajl_val v)
{
    struct sched_status st = {
            .task_id = json_get_str(v, "task_id"),
            .name = json_get_str(v, "name"),
            .state = json_get_str(v, "state"),
            .reason = json_get_str(v, "reason"),
            .message = json_get_str(v, "message"),
            .agent_id = json_get_str(v, "agent_id"),
            .container_id = json_get_str(v, "container_id"),
            .uuid = json_get_str(v, "uuid"),
    };
    if (!ml_id_valid(st.task_id) || !st.state)
        return;
    st.has_exit_code = json_get_i64(v, "exit_code", &st.exit_code);
    (void) json_get_i64(v, "signal", &st.signal);
    yajl_val rec = json_get(v, "reconciliation");
    st.reconciliation = rec && YAJL_IS_TRUE(rec);
    (void) json_get_double(v, "timestamp", &st.timestamp);
    st.healthy = ml_health_get(v, "healthy");
    _cleanup_free_ char *task = xstrdup(st.task_id), *uuid = st.uuid ? xstrdup(st.uuid) : NULL;
    if (s->cb.update)
        s->cb.update(s, &st, s->arg);
    /* acknowledged once the caller has seen it: a crash before this line gets it again */
    if (!s->cfg.manual_ack && uuid && ml_uuid_valid(uuid))
        (void) sched_acknowledge(s, task, uuid);
}

static void on_offers(struct sched *s, yajl_val list)
{
    size_t n = list && YAJL_IS_ARRAY(list) ? list->u.array.len : 0, k = 0;
    struct ml_offer *offers = xcalloc(n + 1, sizeof(*offers));
    for (size_t i = 0; i < n; i++) {
        _cleanup_berr_ struct berr *err = NULL;
        if (ml_offer_decode(list->u.array.values[i], &offers[k], &err) == 0)
            k++;
        else
            log_debug("scheduler library: an offer dropped: %s", berr_msg(err));
    }
    if (k && s->cb.offers)
        s->cb.offers(s, offers, k, s->arg);
    for (size_t i = 0; i < k; i++)
        ml_offer_done(&offers[i]);
    free(offers);
}

/* One event; false when the stream must be dropped. */
static bool on_event(struct sched *s, const char *rec, size_t len)
{
    struct ml_sched_event ev;
    _cleanup_berr_ struct berr *err = NULL;
    if (ml_sched_event_decode(rec, len, &ev, &err) < 0) {
        log_debug("scheduler library: bad event: %s", berr_msg(err));
        return false;
    }
    yajl_val p = ev.payload;
    if (!s->subscribed && ev.type != ML_SCHED_SUBSCRIBED && ev.type != ML_SCHED_ERROR) {
        ml_sched_event_done(&ev);
        return false; /* SUBSCRIBED comes first */
    }
    switch (ev.type) {
    case ML_SCHED_SUBSCRIBED: {
        const char *id = json_get_str(p, "framework_id"), *sid = json_get_str(p, "stream_id");
        if (!ml_id_valid(id) || !sid || strlen(sid) >= sizeof(s->stream_id))
            break;
        bool again = s->framework_id && streq(s->framework_id, id);
        free(s->framework_id);
        s->framework_id = xstrdup(id);
        snprintf(s->stream_id, sizeof(s->stream_id), "%s", sid);
        double hb = 5;
        s->heartbeat_s = json_get_double(p, "heartbeat_interval_seconds", &hb) && hb > 0 ? hb : 5;
        s->subscribed = true;
        s->backoff_ms = 0;
        if (s->cb.subscribed)
            s->cb.subscribed(s, id, again, s->arg);
        break;
    }
    case ML_SCHED_OFFERS:
        on_offers(s, json_get(p, "offers"));
        break;
    case ML_SCHED_RESCIND:
        if (s->cb.rescind && json_get_str(p, "offer_id"))
            s->cb.rescind(s, json_get_str(p, "offer_id"), s->arg);
        break;
    case ML_SCHED_UPDATE:
        on_status(s, json_get(p, "status"));
        break;
    case ML_SCHED_ERROR: {
        /* the master ends the stream after it: the framework was removed, or another
         * instance of it subscribed; neither changes by subscribing again */
        enum berr_code code = berr_code_from_name(json_get_str(p, "code"));
        const char *msg = json_get_str(p, "message");
        stop(s, "stream", (int) code < 0 ? BERR_CODE_NONE : code, msg ? msg : "error");
        ml_sched_event_done(&ev);
        return false;
    }
    default: /* HEARTBEAT: only proves the stream lives */
        break;
    }
    ml_sched_event_done(&ev);
    return true;
}

static bool stream_data(struct sched *s, const char *data, size_t len)
{
    s->last_rx_ns = now_monotonic_ns();
    ml_reader_feed(&s->rd, data, len);
    for (;;) {
        const char *rec;
        size_t n;
        _cleanup_berr_ struct berr *err = NULL;
        int r = ml_reader_next(&s->rd, &rec, &n, &err);
        if (r < 0) {
            log_debug("scheduler library: bad event stream: %s", berr_msg(err));
            return false;
        }
        if (r == 0)
            return true;
        if (!on_event(s, rec, n) || s->stopped)
            return false;
    }
}

/* The error of a refused request: its API code and message. */
static enum berr_code answer_error(const struct sched_req *r, long status, char *msg, size_t len)
{
    yajl_val v = r->answer ? json_parse(r->answer, r->answer_len, NULL) : NULL;
    yajl_val e = json_get(v, "error");
    enum berr_code code = berr_code_from_name(json_get_str(e, "code"));
    snprintf(msg, len, "%s", json_get_str(e, "message") ? json_get_str(e, "message") : "");
    if (!msg[0])
        snprintf(msg, len, "HTTP %ld", status);
    yajl_tree_free(v);
    return (int) code < 0 ? BERR_CODE_NONE : code;
}

static void accept_done(struct sched *s, struct sched_req *r, const struct berr *err)
{
    if (!r->accept_cb)
        return;
    yajl_val v = !err && r->answer ? json_parse(r->answer, r->answer_len, NULL) : NULL;
    yajl_val tasks = json_get(v, "tasks");
    size_t n = tasks && YAJL_IS_ARRAY(tasks) ? tasks->u.array.len : 0;
    char **ids = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        ids[i] = (char *) json_get_str(tasks->u.array.values[i], "task_id");
    r->accept_cb(s, err, ids, n, r->accept_arg);
    free(ids);
    yajl_tree_free(v);
}

static void on_done(struct sched *s, struct sched_req *r, CURLcode rc, long status)
{
    char msg[512];
    if (r->kind == SCHED_REQ_STREAM) {
        if (s->stopped)
            return;
        if (rc == CURLE_OK && status >= 400 && status < 500) {
            enum berr_code code = answer_error(r, status, msg, sizeof(msg));
            stop(s, "SUBSCRIBE", code, msg);
            return;
        }
        snprintf(msg, sizeof(msg), "%s",
                 rc == CURLE_OK ? "the master ended the stream" : curl_easy_strerror(rc));
        stream_lost(s, msg);
        return;
    }
    const char *call = ml_sched_call_name(r->call);
    struct berr *err = NULL;
    if (rc != CURLE_OK) {
        berr_setx(&err, EIO, "%s: %s", call, curl_easy_strerror(rc));
        if (s->cb.error)
            s->cb.error(s, call, BERR_CODE_NONE, berr_msg(err), false, s->arg);
    } else if (status < 200 || status >= 300) {
        enum berr_code code = answer_error(r, status, msg, sizeof(msg));
        berr_setc(&err, EIO, code, "%s", msg);
        if (s->cb.error)
            s->cb.error(s, call, code, msg, false, s->arg);
    }
    if (r->call == ML_SCHED_ACCEPT)
        accept_done(s, r, err);
    berr_free(&err);
    sched_teardown_if_idle(s);
}

/* A silent stream (no HEARTBEAT for three intervals), or no SUBSCRIBED in time: drop it. */
static void on_watchdog(evutil_socket_t fd, short kind, void *arg)
{
    (void) fd, (void) kind;
    struct sched *s = arg;
    uint64_t now = now_monotonic_ns(), silent = now - s->last_rx_ns;
    if (s->subscribed && silent > (uint64_t) ((3 * s->heartbeat_s + 2) * 1e9))
        stream_lost(s, "no event for three heartbeat intervals");
    else if (!s->subscribed && s->stream && silent > SUBSCRIBE_TIMEOUT_NS)
        stream_lost(s, "no SUBSCRIBED within 15 s");
}

int sched_new(struct event_base *base, const struct sched_config *cfg,
              const struct sched_callbacks *cb, void *arg, struct sched **ret, struct berr **err)
{
    if (!cfg->master ||
        (!str_has_prefix(cfg->master, "https://") && !str_has_prefix(cfg->master, "http://")))
        return berr_setx(err, EINVAL, "scheduler: master must be an http:// or https:// URL");
    if (!cfg->token || !cfg->token[0] || !cfg->name || !cfg->name[0])
        return berr_setx(err, EINVAL, "scheduler: a token and a name are needed");
    for (const char *const *r = cfg->roles; r && *r; r++)
        if (!ml_role_valid(*r))
            return berr_setx(err, EINVAL, "scheduler: '%s' is not a role name", *r);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return berr_setx(err, EIO, "scheduler: cannot initialise libcurl");
    struct sched *s = xzalloc(sizeof(*s));
    s->base = base;
    s->cfg = *cfg;
    s->cfg.master =
            xstrndup(cfg->master, strlen(cfg->master) - (str_has_suffix(cfg->master, "/") ? 1 : 0));
    s->cfg.token = xstrdup(cfg->token);
    s->cfg.cacert = cfg->cacert ? xstrdup(cfg->cacert) : NULL;
    s->cfg.name = xstrdup(cfg->name);
    s->cfg.framework_id = NULL;
    s->framework_id = cfg->framework_id ? xstrdup(cfg->framework_id) : NULL;
    size_t n = 0;
    while (cfg->roles && cfg->roles[n])
        n++;
    s->roles = xcalloc(n + 2, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        s->roles[i] = xstrdup(cfg->roles[i]);
    if (!n)
        s->roles[0] = xstrdup("*");
    s->cfg.roles = NULL;
    if (cb)
        s->cb = *cb;
    s->arg = arg;
    s->on_stream_data = stream_data;
    s->on_done = on_done;
    ml_reader_init(&s->rd, ML_MAX_MESSAGE);
    s->ev_reconnect = evtimer_new(base, on_reconnect, s);
    s->ev_watchdog = event_new(base, -1, EV_PERSIST, on_watchdog, s);
    if (!s->ev_reconnect || !s->ev_watchdog || sched_http_init(s, err) < 0) {
        sched_free(s);
        return berr_setx(err, ENOMEM, "scheduler: out of memory");
    }
    *ret = s;
    return 0;
}

int sched_start(struct sched *s)
{
    if (s->started)
        return 0;
    s->started = true;
    struct timeval tv = {.tv_sec = 1};
    event_add(s->ev_watchdog, &tv);
    subscribe(s);
    return 0;
}

/* sched_free: each ACCEPT still on its way gets its answer now, ECANCELED (sched.h), with
 * calls refused from then on; its arg would otherwise be lost with the request. */
static void cancel_accepts(struct sched *s)
{
    s->stopped = true;
    s->subscribed = false;
    struct berr e = {.errnum = ECANCELED, .code = BERR_CODE_NONE};
    snprintf(e.msg, sizeof(e.msg), "ACCEPT: the scheduler client was freed before the answer");
    for (struct sched_req *r = s->reqs; r; r = r->next) {
        if (r->call == ML_SCHED_ACCEPT && r->accept_cb) {
            accept_done(s, r, &e);
            r->accept_cb = NULL;
        }
    }
}

void sched_free(struct sched *s)
{
    if (!s)
        return;
    cancel_accepts(s);
    sched_http_free(s);
    if (s->ev_reconnect)
        event_free(s->ev_reconnect);
    if (s->ev_watchdog)
        event_free(s->ev_watchdog);
    ml_reader_free(&s->rd);
    for (char **r = s->roles; r && *r; r++)
        free(*r);
    free(s->roles);
    free((char *) s->cfg.master);
    free((char *) s->cfg.token);
    free((char *) s->cfg.cacert);
    free((char *) s->cfg.name);
    free(s->framework_id);
    free(s);
    curl_global_cleanup();
}

const char *sched_framework_id(const struct sched *s)
{
    return s->framework_id;
}

bool sched_connected(const struct sched *s)
{
    return s->subscribed;
}
