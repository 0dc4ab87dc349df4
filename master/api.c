/* SPDX-License-Identifier: Apache-2.0 */
/* master/api.c - berth-master's HTTP server (libevent): routing, bearer-token auth, the
 * task, agent and token API for users and tools (docs/api.md, "berth-master") and /health.
 * reply.c reads bodies and sends answers and errors; the agent protocol's endpoint is handed
 * to link.c, the scheduler API's to sched.c, /v1/frameworks, /v1/offers and /v1/roles to
 * api-sched.c, /metrics to metrics.c; builtin.c, tasks.c and agents.c do the work behind
 * /v1/tasks and /v1/agents. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <string.h>

#include "master/master.h"

/* POST /v1/tasks: the body is parsed and checked here, once, by the schema the agent's
 * POST /v1/containers uses (masterlink/spec.c); the built-in framework (builtin.c) queues
 * the parsed spec until an offer places it. */
static void submit(struct master *m, struct evhttp_request *req, const struct m_token *caller,
                   const char *body, size_t len, yajl_gen g)
{
    _cleanup_berr_ struct berr *err = NULL;
    struct ml_task_spec spec;
    struct m_task *t = NULL;
    yajl_val v = json_parse(body, len, &err);
    if (!v || ml_task_spec_parse(v, 0, &spec, &err) < 0) {
        yajl_tree_free(v);
        master_reply_error(m, req, err);
        return;
    }
    yajl_tree_free(v);
    const char *role = spec.role ? spec.role : "*";
    if (!master_token_may(caller, M_RIGHTS_SUBMIT, role)) {
        master_refuse(m, req, BERR_FORBIDDEN, "token '%s' (%s) may not submit in role '%s'",
                      caller->id, caller->name, role);
    } else if (master_builtin_submit(m, &spec, &t, &err) < 0) {
        master_reply_error(m, req, err);
    } else {
        master_task_json(m, t, g, false);
        master_reply_json(req, 201, g);
    }
    ml_task_spec_done(&spec);
}

static void serve_tasks(struct master *m, struct evhttp_request *req, const struct m_token *caller,
                        const char *rest, enum evhttp_cmd_type cmd, const char *body, size_t len)
{
    _cleanup_berr_ struct berr *err = NULL;
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!rest[0]) {
        if (cmd == EVHTTP_REQ_GET) {
            yajl_gen_map_open(g);
            json_str(g, "tasks");
            yajl_gen_array_open(g);
            for (struct m_task *t = m->tasks; t; t = t->next)
                master_task_json(m, t, g, false);
            yajl_gen_array_close(g);
            yajl_gen_map_close(g);
            master_reply_json(req, 200, g);
        } else if (cmd == EVHTTP_REQ_POST) {
            submit(m, req, caller, body, len, g);
        } else {
            master_refuse(m, req, BERR_METHOD_NOT_ALLOWED, "GET or POST /v1/tasks");
        }
        yajl_gen_free(g);
        return;
    }
    _cleanup_free_ char *ref = xstrndup(rest, strcspn(rest, "/"));
    const char *verb = rest + strlen(ref);
    struct m_task *t = master_task_lookup(m, ref, &err);
    if (!t) {
        master_reply_error(m, req, err);
    } else if (!verb[0] && cmd == EVHTTP_REQ_GET) {
        master_task_json(m, t, g, true);
        master_reply_json(req, 200, g);
    } else if (!verb[0] && cmd == EVHTTP_REQ_DELETE) {
        if (!master_token_may(caller, M_RIGHTS_SUBMIT, t->role))
            master_refuse(m, req, BERR_FORBIDDEN, "token '%s' may not remove tasks of role '%s'",
                          caller->id, t->role);
        else if (master_task_remove(m, t, &err) < 0)
            master_reply_error(m, req, err);
        else
            evhttp_send_reply(req, 204, "No Content", NULL);
    } else if (streq(verb, "/kill") && cmd == EVHTTP_REQ_POST) {
        if (!master_token_may(caller, M_RIGHTS_SUBMIT, t->role)) {
            master_refuse(m, req, BERR_FORBIDDEN, "token '%s' may not kill tasks of role '%s'",
                          caller->id, t->role);
        } else if (master_task_kill(m, t, -1, &err) < 0) {
            master_reply_error(m, req, err);
        } else {
            master_task_json(m, t, g, false);
            master_reply_json(req, 202, g);
        }
    } else {
        master_refuse(m, req, BERR_NOT_FOUND,
                      "no such call: GET or DELETE /v1/tasks/ID, POST /v1/tasks/ID/kill");
    }
    yajl_gen_free(g);
}

/* DELETE /v1/agents/ID: the agent goes (not while it is connected), and its live tasks
 * end LOST/AGENT_REMOVED. */
static int agent_remove(struct master *m, struct m_agent *ag, struct berr **err)
{
    char id[sizeof(ag->id)];
    snprintf(id, sizeof(id), "%s", ag->id);
    if (ag->stream)
        return master_agent_remove(m, ag, err); /* refused: it is connected */
    /* a pass has rescinded them already (it went when its stream did); none may outlive it */
    master_offers_rescind_agent(m, ag, "the agent was removed");
    int r = master_agent_remove(m, ag, err);
    if (r < 0)
        return r;
    master_tasks_lose_on(m, id, ML_REASON_AGENT_REMOVED, "its agent was removed from the registry");
    return 0;
}

static void serve_agents(struct master *m, struct evhttp_request *req, const struct m_token *caller,
                         const char *rest, enum evhttp_cmd_type cmd)
{
    if (rest[0] && cmd == EVHTTP_REQ_DELETE) {
        _cleanup_berr_ struct berr *err = NULL;
        struct m_agent *ag = master_agent_find(m, rest);
        if (caller->rights != M_RIGHTS_ADMIN)
            master_refuse(m, req, BERR_FORBIDDEN, "agents are removed with the admin token");
        else if (!ag)
            master_refuse(m, req, BERR_NOT_FOUND, "no agent '%.64s'", rest);
        else if (agent_remove(m, ag, &err) < 0)
            master_reply_error(m, req, err);
        else
            evhttp_send_reply(req, 204, "No Content", NULL);
        return;
    }
    if (cmd != EVHTTP_REQ_GET) {
        master_refuse(m, req, BERR_METHOD_NOT_ALLOWED, "GET /v1/agents[/ID], DELETE /v1/agents/ID");
        return;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!rest[0]) {
        yajl_gen_map_open(g);
        json_str(g, "agents");
        yajl_gen_array_open(g);
        for (struct m_agent *ag = m->agents; ag; ag = ag->next)
            master_agent_json(ag, g);
        yajl_gen_array_close(g);
        yajl_gen_map_close(g);
        master_reply_json(req, 200, g);
    } else {
        struct m_agent *ag = master_agent_find(m, rest);
        if (!ag) {
            master_refuse(m, req, BERR_NOT_FOUND, "no agent '%.64s'", rest);
        } else {
            master_agent_json(ag, g);
            master_reply_json(req, 200, g);
        }
    }
    yajl_gen_free(g);
}

/* /v1/tokens: admin only. POST {"name", "rights", "roles"} answers the token's text, once. */
static void serve_tokens(struct master *m, struct evhttp_request *req, const char *rest,
                         enum evhttp_cmd_type cmd, const char *body, size_t len)
{
    _cleanup_berr_ struct berr *err = NULL;
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!rest[0] && cmd == EVHTTP_REQ_GET) {
        yajl_gen_map_open(g);
        json_str(g, "tokens");
        yajl_gen_array_open(g);
        for (struct m_token *t = m->tokens; t; t = t->next)
            master_token_json(t, g);
        yajl_gen_array_close(g);
        yajl_gen_map_close(g);
        master_reply_json(req, 200, g);
    } else if (!rest[0] && cmd == EVHTTP_REQ_POST) {
        yajl_val v = json_parse(body, len, &err);
        const char *name = json_get_str(v, "name"), *rights = json_get_str(v, "rights");
        yajl_val roles = json_get(v, "roles");
        enum m_rights r = master_rights_from_name(rights);
        _cleanup_free_ char *csv = NULL;
        bool ok = v && YAJL_IS_OBJECT(v) && (int) r >= 0 && r != M_RIGHTS_ADMIN &&
                  (!name || strlen(name) <= 64);
        if (ok && roles && !YAJL_IS_NULL(roles)) {
            size_t n = YAJL_IS_ARRAY(roles) ? roles->u.array.len : 0;
            ok = YAJL_IS_ARRAY(roles) && n > 0 && n <= 64;
            for (size_t i = 0; ok && i < n; i++) {
                yajl_val x = roles->u.array.values[i];
                const char *role = YAJL_IS_STRING(x) ? x->u.string : NULL;
                ok = role && role[0] && strlen(role) <= 64 &&
                     (streq(role, "*") ||
                      strspn(role, "abcdefghijklmnopqrstuvwxyz0123456789_-") == strlen(role));
                char *next = xasprintf("%s%s%s", csv ? csv : "", csv ? "," : "", role ? role : "");
                free(csv);
                csv = next;
            }
        }
        struct m_token *t = NULL;
        _cleanup_free_ char *text = NULL;
        if (!v) {
            master_reply_error(m, req, err);
        } else if (!ok) {
            master_refuse(m, req, BERR_INVALID_ARGUMENT,
                          "a token needs \"rights\": read, submit or join, and may have \"name\" "
                          "(up to 64 chars) and \"roles\" (submit: role names, or \"*\")");
        } else if (master_token_create(m, name ? name : "", r, csv ? csv : "*", &text, &t, &err) <
                   0) {
            master_reply_error(m, req, err);
        } else {
            log_info("token '%s' (%s, %s) created", t->id, t->name, master_rights_name(r));
            yajl_gen_map_open(g);
            json_kv_str(g, "token", text);
            json_str(g, "info");
            master_token_json(t, g);
            yajl_gen_map_close(g);
            master_reply_json(req, 201, g);
            explicit_bzero(text, strlen(text));
        }
        yajl_tree_free(v);
    } else if (rest[0] && !strchr(rest, '/') && cmd == EVHTTP_REQ_DELETE) {
        if (master_token_remove(m, rest, &err) < 0) {
            master_reply_error(m, req, err);
        } else {
            log_info("token '%s' removed", rest);
            evhttp_send_reply(req, 204, "No Content", NULL);
        }
    } else {
        master_refuse(m, req, BERR_METHOD_NOT_ALLOWED,
                      "GET or POST /v1/tokens, DELETE /v1/tokens/ID");
    }
    yajl_gen_free(g);
}

static void route_one(struct master *m, struct evhttp_request *req)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd == EVHTTP_REQ_CONNECT) {
        master_refuse(m, req, BERR_METHOD_NOT_ALLOWED, "CONNECT is not a method of this API");
        return;
    }
    if (!path) {
        master_refuse(m, req, BERR_NOT_FOUND, "no path");
        return;
    }
    if (streq(path, "/health")) {
        yajl_gen g = yajl_gen_alloc(NULL);
        yajl_gen_map_open(g);
        json_kv_str(g, "status", "ok");
        yajl_gen_map_close(g);
        master_reply_json(req, 200, g);
        yajl_gen_free(g);
        return;
    }
    if (streq(path, "/metrics")) {
        master_serve_metrics(m, req);
        return;
    }
    const char *body;
    size_t len;
    if (master_read_body(m, req, &body, &len) < 0)
        return;
    if (streq(path, ML_SCHED_PATH)) {
        if (cmd != EVHTTP_REQ_POST)
            master_refuse(m, req, BERR_METHOD_NOT_ALLOWED, "POST %s", ML_SCHED_PATH);
        else
            master_sched_serve(m, req, body, len);
        return;
    }
    if (streq(path, ML_AGENT_PATH)) {
        /* agents prove their key in the handshake and sign their calls; a bearer token here
         * is a client's (or a stolen one) trying to act as an agent */
        if (evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization"))
            master_refuse(m, req, BERR_UNAUTHORIZED,
                          "the agent protocol takes no bearer token (docs/protocol.md)");
        else if (cmd != EVHTTP_REQ_POST)
            master_refuse(m, req, BERR_METHOD_NOT_ALLOWED, "POST %s", ML_AGENT_PATH);
        else
            master_link_serve(m, req, body, len);
        return;
    }
    struct m_token *caller = master_auth_client(m, req);
    if (!caller)
        return;
    if (streq(path, "/v1/tasks") || str_has_prefix(path, "/v1/tasks/")) {
        serve_tasks(m, req, caller, path[9] ? path + 10 : "", cmd, body, len);
    } else if (streq(path, "/v1/events")) {
        master_events_serve(m, req); /* any client token may read */
    } else if (streq(path, "/v1/agents") || str_has_prefix(path, "/v1/agents/")) {
        serve_agents(m, req, caller, path[10] ? path + 11 : "", cmd);
    } else if (streq(path, "/v1/tokens") || str_has_prefix(path, "/v1/tokens/")) {
        if (caller->rights != M_RIGHTS_ADMIN)
            master_refuse(m, req, BERR_FORBIDDEN, "tokens are managed with the admin token");
        else
            serve_tokens(m, req, path[10] ? path + 11 : "", cmd, body, len);
    } else if (master_api_sched(m, req, caller, path, cmd, body, len)) {
        /* frameworks, offers, roles */
    } else {
        master_refuse(m, req, BERR_NOT_FOUND, "no such path '%.200s'", path);
    }
}

static void route(struct evhttp_request *req, void *arg)
{
    struct master *m = arg;
    route_one(m, req);
    master_check(m, "request"); /* test mode: the books after every call */
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    evconnlistener_enable(arg);
}

/* accept() failed (EMFILE...): pause the listener a quarter second instead of letting
 * libevent retry at once, forever, logging each time (review H4: 2.5 GB of log, no token
 * needed). */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    (void) arg;
    int e = EVUTIL_SOCKET_ERROR();
    evconnlistener_disable(lev);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 250000};
    event_base_once(evconnlistener_get_base(lev), -1, EV_TIMEOUT, on_accept_resume, lev, &tv);
    log_limited("master-accept", LOG_WARNING, e, "accept failed; pausing the listener 250 ms");
}

/* The pid whose socket of inode ino is, by its fds, or 0. */
static pid_t socket_owner(unsigned long ino)
{
    _cleanup_closedir_ DIR *proc = opendir("/proc");
    char want[64];
    snprintf(want, sizeof(want), "socket:[%lu]", ino);
    for (struct dirent *d; proc && (d = readdir(proc));) {
        uint64_t pid;
        if (parse_u64(d->d_name, &pid) < 0)
            continue;
        char dir[64];
        snprintf(dir, sizeof(dir), "/proc/%llu/fd", (unsigned long long) pid);
        _cleanup_closedir_ DIR *fds = opendir(dir);
        for (struct dirent *f; fds && (f = readdir(fds));) {
            char link[400], target[64];
            snprintf(link, sizeof(link), "%s/%s", dir, f->d_name);
            ssize_t n = readlink(link, target, sizeof(target) - 1);
            if (n > 0 && (target[n] = 0, streq(target, want)))
                return (pid_t) pid;
        }
    }
    return 0;
}

/* Who listens on TCP port: " (held by pid N 'COMM', uid U)" into buf, or "" when that cannot
 * be told. A restart that finds its port taken says by whom: possibly a task that bound it
 * while the master was away (docs/security.md). */
static void port_holder(unsigned port, char *buf, size_t len)
{
    buf[0] = 0;
    static const char *const tables[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    for (size_t t = 0; t < ARRAY_SIZE(tables); t++) {
        _cleanup_fclose_ FILE *f = fopen(tables[t], "re");
        char line[512];
        while (f && fgets(line, sizeof(line), f)) {
            char local[128];
            unsigned st, uid;
            unsigned long ino;
            if (sscanf(line, " %*s %127s %*s %x %*s %*s %*s %u %*s %lu", local, &st, &uid, &ino) !=
                        4 ||
                st != 0x0A)
                continue;
            const char *colon = strrchr(local, ':');
            if (!colon || strtoul(colon + 1, NULL, 16) != port)
                continue;
            pid_t pid = socket_owner(ino);
            char comm[64] = "?", path[64];
            snprintf(path, sizeof(path), "/proc/%d/comm", (int) pid);
            if (pid > 0)
                (void) read_file_at(AT_FDCWD, path, comm, sizeof(comm));
            snprintf(buf, len, " (held by %s%d '%s', uid %u)", pid > 0 ? "pid " : "pid ?", pid,
                     comm, uid);
            return;
        }
    }
}

int master_api_start(struct master *m, struct berr **err)
{
    int r = master_tls_init(m, err);
    if (r < 0)
        return r;
    if (!m->tls)
        log_warning("plain_http = true: agents and clients talk to '%s' without TLS; a peer "
                    "on the path can read and change what they say (docs/security.md)",
                    m->cfg.listen);
    m->http = evhttp_new(m->base);
    if (!m->http)
        return berr_setx(err, ENOMEM, "evhttp_new failed");
    /* bodies above the protocol's limit get our JSON 413; far larger ones are cut by
     * libevent before they are buffered */
    /* libevent 2.1 has no hook between a request's headers and its body (2.2's
     * evhttp_set_newreqcb): the token is checked once the body is in, so what a caller can
     * make us hold is bounded here. Up to twice the protocol's limit the caller gets our
     * JSON 413; beyond it libevent ends the connection. */
    evhttp_set_max_body_size(m->http, 2 * ML_MAX_MESSAGE);
    if (m->tls)
        evhttp_set_bevcb(m->http, master_tls_bev, m);
    evhttp_set_max_headers_size(m->http, 16384);
    /* every method reaches the router, which answers a JSON 405 (libevent's own refusal is
     * an HTML 501: review L1) */
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                                EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                                EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                                EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
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
    struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(m->http, h, (uint16_t) port);
    if (!bound) {
        int e = errno ? errno : EADDRINUSE;
        char who[160] = "";
        if (e == EADDRINUSE)
            port_holder((unsigned) port, who, sizeof(who));
        return berr_set(err, e, "bind '%s'%s", m->cfg.listen, who);
    }
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(bound), on_accept_error);
    return 0;
}

void master_api_stop(struct master *m)
{
    if (m->http)
        evhttp_free(m->http);
    m->http = NULL;
    master_tls_free(m);
}
