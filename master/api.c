/* master/api.c - berth-master's HTTP server (libevent): routing, bearer-token auth, body
 * limits, JSON replies and errors, the task and agent API for users and tools (docs/api.md,
 * "berth-master"), /health and /metrics. The agent protocol's endpoint is handed to
 * agents.c; tasks.c does the work behind /v1/tasks. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <string.h>

#include "master/master.h"

static const struct {
    const char *code;
    int status;
} statuses[] = {
        {"INVALID_ARGUMENT", 400}, {"UNAUTHORIZED", 401},           {"NOT_FOUND", 404},
        {"UNKNOWN_AGENT", 404},    {"METHOD_NOT_ALLOWED", 405},     {"CONFLICT", 409},
        {"STALE_STREAM", 409},     {"INSUFFICIENT_RESOURCES", 409}, {"BODY_TOO_LARGE", 413},
        {"INTERNAL", 500},
};

static int status_for(const char *code)
{
    for (size_t i = 0; i < ARRAY_SIZE(statuses); i++)
        if (streq(statuses[i].code, code))
            return statuses[i].status;
    return 500;
}

void master_reply_json(struct evhttp_request *req, int status, yajl_gen g)
{
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, buf, len);
    evbuffer_add(b, "\n", 1);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, status, status < 300 ? "OK" : "Error", b);
    evbuffer_free(b);
}

static void reply_error(struct evhttp_request *req, const char *code, const char *msg)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    ml_str(g, "error");
    yajl_gen_map_open(g);
    ml_kv_str(g, "code", code);
    ml_kv_str(g, "message", msg);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    master_reply_json(req, status_for(code), g);
    yajl_gen_free(g);
}

void master_reply_error(struct evhttp_request *req, struct berr *err)
{
    reply_error(req, err && err->code[0] ? err->code : "INTERNAL",
                err ? berr_msg(err) : "unknown error");
}

void master_refuse(struct master *m, struct evhttp_request *req, const char *code, const char *fmt,
                   ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    m->refused_total++;
    log_debug("refused %s: %s", code, msg);
    reply_error(req, code, msg);
}

/* Constant-time comparison, so the reply time says nothing about the token. */
static bool token_equal(const char *given, const char *want)
{
    size_t gl = strlen(given), wl = strlen(want);
    unsigned char d = gl != wl;
    for (size_t i = 0; i < wl; i++)
        d |= (unsigned char) (given[i < gl ? i : 0] ^ want[i]);
    return d == 0;
}

static struct m_task *find_task(struct master *m, const char *ref, struct berr **err)
{
    struct m_task *t = master_task_find(m, ref), *hit = NULL;
    if (t)
        return t;
    unsigned n = 0;
    size_t rl = strlen(ref);
    for (t = m->tasks; t; t = t->next) {
        if (strncmp(t->id, ref, rl) == 0 || streq(t->name, ref)) {
            hit = hit ? hit : t;
            n++;
        }
    }
    if (n == 1)
        return hit;
    if (n > 1)
        berr_setc(err, EINVAL, "CONFLICT", "'%s' names %u tasks: give the task id", ref, n);
    else
        berr_setc(err, ENOENT, "NOT_FOUND", "no task '%s'", ref);
    return NULL;
}

static void serve_tasks(struct master *m, struct evhttp_request *req, const char *rest,
                        enum evhttp_cmd_type cmd, const char *body, size_t len)
{
    _cleanup_berr_ struct berr *err = NULL;
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!rest[0]) {
        if (cmd == EVHTTP_REQ_GET) {
            yajl_gen_map_open(g);
            ml_str(g, "tasks");
            yajl_gen_array_open(g);
            for (struct m_task *t = m->tasks; t; t = t->next)
                master_task_json(m, t, g, false);
            yajl_gen_array_close(g);
            yajl_gen_map_close(g);
            master_reply_json(req, 200, g);
        } else if (cmd == EVHTTP_REQ_POST) {
            struct m_task *t = NULL;
            if (master_task_submit(m, body, len, &t, &err) < 0) {
                m->refused_total++;
                master_reply_error(req, err);
            } else {
                master_task_json(m, t, g, false);
                master_reply_json(req, 201, g);
            }
        } else {
            master_refuse(m, req, "METHOD_NOT_ALLOWED", "GET or POST /v1/tasks");
        }
        yajl_gen_free(g);
        return;
    }
    _cleanup_free_ char *ref = xstrndup(rest, strcspn(rest, "/"));
    const char *verb = rest + strlen(ref);
    struct m_task *t = find_task(m, ref, &err);
    if (!t) {
        master_reply_error(req, err);
    } else if (!verb[0] && cmd == EVHTTP_REQ_GET) {
        master_task_json(m, t, g, true);
        master_reply_json(req, 200, g);
    } else if (streq(verb, "/kill") && cmd == EVHTTP_REQ_POST) {
        if (master_task_kill(m, t, &err) < 0) {
            master_reply_error(req, err);
        } else {
            master_task_json(m, t, g, false);
            master_reply_json(req, 202, g);
        }
    } else {
        master_refuse(m, req, "NOT_FOUND", "no such call: GET /v1/tasks/ID, POST .../kill");
    }
    yajl_gen_free(g);
}

static void serve_agents(struct master *m, struct evhttp_request *req, const char *rest,
                         enum evhttp_cmd_type cmd)
{
    if (cmd != EVHTTP_REQ_GET) {
        master_refuse(m, req, "METHOD_NOT_ALLOWED", "GET only");
        return;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!rest[0]) {
        yajl_gen_map_open(g);
        ml_str(g, "agents");
        yajl_gen_array_open(g);
        for (struct m_agent *ag = m->agents; ag; ag = ag->next)
            master_agent_json(m, ag, g);
        yajl_gen_array_close(g);
        yajl_gen_map_close(g);
        master_reply_json(req, 200, g);
    } else {
        struct m_agent *ag = master_agent_find(m, rest);
        if (!ag) {
            master_refuse(m, req, "NOT_FOUND", "no agent '%.64s'", rest);
        } else {
            master_agent_json(m, ag, g);
            master_reply_json(req, 200, g);
        }
    }
    yajl_gen_free(g);
}

static void serve_metrics(struct master *m, struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();
    unsigned st[2] = {0}, streams = 0, tasks[_ML_STATE_MAX] = {0};
    for (struct m_agent *ag = m->agents; ag; ag = ag->next) {
        st[ag->state == M_AGENT_UNREACHABLE]++;
        streams += ag->stream != NULL;
    }
    for (struct m_task *t = m->tasks; t; t = t->next)
        tasks[t->state]++;
    evbuffer_add_printf(b,
                        "# HELP berth_master_agents Registered agents by state.\n"
                        "# TYPE berth_master_agents gauge\n"
                        "berth_master_agents{state=\"REACHABLE\"} %u\n"
                        "berth_master_agents{state=\"UNREACHABLE\"} %u\n"
                        "# HELP berth_master_streams Open agent event streams.\n"
                        "# TYPE berth_master_streams gauge\n"
                        "berth_master_streams %u\n"
                        "# HELP berth_master_tasks Tasks by state.\n"
                        "# TYPE berth_master_tasks gauge\n",
                        st[0], st[1], streams);
    for (int i = 0; i < _ML_STATE_MAX; i++)
        evbuffer_add_printf(b, "berth_master_tasks{state=\"%s\"} %u\n", ml_state_name(i), tasks[i]);
    const struct {
        const char *name, *help;
        uint64_t v;
    } counters[] = {
            {"berth_master_subscribes_total", "SUBSCRIBE calls accepted.", m->subscribes_total},
            {"berth_master_heartbeats_total", "HEARTBEAT calls accepted.", m->heartbeats_total},
            {"berth_master_updates_total", "UPDATE calls received.", m->updates_total},
            {"berth_master_updates_duplicate_total",
             "Updates acknowledged without a change (retried or stale).",
             m->updates_duplicate_total},
            {"berth_master_refused_total", "Calls refused with an error.", m->refused_total},
            {"berth_master_launches_sent_total", "LAUNCH events sent.", m->launches_sent_total},
            {"berth_master_tasks_lost_total", "Tasks the master declared LOST.",
             m->tasks_lost_total},
            {"berth_master_reconcile_kills_total",
             "KILLs sent for tasks an agent ran that the master had dropped.",
             m->kills_reconciled_total},
    };
    for (size_t i = 0; i < ARRAY_SIZE(counters); i++)
        evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counters[i].name,
                            counters[i].help, counters[i].name, counters[i].name,
                            (unsigned long long) counters[i].v);
    evbuffer_add_printf(b, "# HELP berth_master_heartbeat_duration_seconds Time to handle a "
                           "HEARTBEAT in the master.\n"
                           "# TYPE berth_master_heartbeat_duration_seconds histogram\n");
    master_hb_histogram(m, b);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void route(struct evhttp_request *req, void *arg)
{
    struct master *m = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (!path) {
        master_refuse(m, req, "NOT_FOUND", "no path");
        return;
    }
    if (streq(path, "/health")) {
        yajl_gen g = yajl_gen_alloc(NULL);
        yajl_gen_map_open(g);
        ml_kv_str(g, "status", "ok");
        yajl_gen_map_close(g);
        master_reply_json(req, 200, g);
        yajl_gen_free(g);
        return;
    }
    if (streq(path, "/metrics")) {
        serve_metrics(m, req);
        return;
    }
    if (m->token) {
        const char *auth =
                evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
        if (!auth) {
            master_refuse(m, req, "UNAUTHORIZED",
                          "no bearer token: send \"Authorization: Bearer <token>\"");
            return;
        }
        if (!str_has_prefix(auth, "Bearer ") || !token_equal(auth + 7, m->token)) {
            master_refuse(m, req, "UNAUTHORIZED", "wrong bearer token");
            return;
        }
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > ML_MAX_MESSAGE) {
        master_refuse(m, req, "BODY_TOO_LARGE", "the body has %zu bytes, the limit is %d", len,
                      ML_MAX_MESSAGE);
        return;
    }
    const char *body = len ? (const char *) evbuffer_pullup(in, -1) : "";
    if (streq(path, ML_AGENT_PATH)) {
        if (cmd != EVHTTP_REQ_POST)
            master_refuse(m, req, "METHOD_NOT_ALLOWED", "POST %s", ML_AGENT_PATH);
        else
            master_link_serve(m, req, body, len);
    } else if (streq(path, "/v1/tasks") || str_has_prefix(path, "/v1/tasks/")) {
        serve_tasks(m, req, path[9] ? path + 10 : "", cmd, body, len);
    } else if (streq(path, "/v1/agents") || str_has_prefix(path, "/v1/agents/")) {
        serve_agents(m, req, path[10] ? path + 11 : "", cmd);
    } else {
        master_refuse(m, req, "NOT_FOUND", "no such path '%.200s'", path);
    }
}

static int read_token(struct master *m, struct berr **err)
{
    if (!m->cfg.token_file[0]) {
        log_warning("no token_file: anyone who can reach '%s' can register agents and submit "
                    "tasks",
                    m->cfg.listen);
        return 0;
    }
    char *text = NULL;
    int r = read_file_alloc(m->cfg.token_file, 4096, &text, NULL);
    if (r < 0)
        return berr_set(err, -r, "token_file '%s'", m->cfg.token_file);
    text[strcspn(text, "\r\n")] = 0;
    if (strlen(text) < 16) {
        free(text);
        return berr_setx(err, EINVAL, "token_file '%s': the token must be at least 16 characters",
                         m->cfg.token_file);
    }
    m->token = text;
    return 0;
}

int master_api_start(struct master *m, struct berr **err)
{
    if (read_token(m, err) < 0)
        return -EINVAL;
    m->http = evhttp_new(m->base);
    if (!m->http)
        return berr_setx(err, ENOMEM, "evhttp_new failed");
    /* bodies above the protocol's limit get our JSON 413; far larger ones are cut by
     * libevent before they are buffered */
    evhttp_set_max_body_size(m->http, 4 * ML_MAX_MESSAGE);
    evhttp_set_max_headers_size(m->http, 16384);
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE);
    /* event streams are long-lived and quiet between PINGs: the idle timeout must exceed
     * the PING period by far, yet still reap connections of vanished peers */
    evhttp_set_timeout(m->http, (int) (m->cfg.heartbeat_interval_ms / 1000) * 6 + 30);
    evhttp_set_gencb(m->http, route, m);
    _cleanup_free_ char *host = xstrdup(m->cfg.listen);
    char *colon = strrchr(host, ':');
    *colon = 0;
    uint64_t port = 0;
    (void) parse_u64(colon + 1, &port);
    const char *h = host[0] == '[' ? host + 1 : host;
    if (host[0] == '[' && h[strlen(h) - 1] == ']')
        ((char *) h)[strlen(h) - 1] = 0;
    if (!evhttp_bind_socket_with_handle(m->http, h, (uint16_t) port))
        return berr_set(err, errno ? errno : EADDRINUSE, "bind '%s'", m->cfg.listen);
    return 0;
}

void master_api_stop(struct master *m)
{
    if (m->http)
        evhttp_free(m->http);
    m->http = NULL;
    free(m->token);
    m->token = NULL;
}
