/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/api.c - the local HTTP API (docs/api.md) on libevent's evhttp: the unix socket
 * listener, routing by method and path, and the handlers. Each handler ends in exactly one
 * reply, errors through api_reply_error(). Launch/kill/remove are lifecycle.c's; logs are
 * logs.c's; this file turns HTTP into calls and calls into JSON. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "agentd/agent.h"

#define API_HARD_MAX_BODY (2u << 20) /* beyond this evhttp ends the connection (review M12) */

static void reply_container(struct agent *a, struct evhttp_request *req, int status,
                            struct container *c)
{
    /* inspect (200) shows usage now, not a second ago; a 201's task has barely begun and a
     * 202's is being killed: their answers take the last sample (reading the stat files
     * for them was 4% of the loop's CPU during 1,000 launches and kills) */
    if (status == 200 && c->cg && !ml_state_terminal(c->state))
        sampler_sample(a, c);
    yajl_gen g = yajl_gen_alloc(NULL);
    ctr_gen(a, c, g, CTR_GEN_USAGE);
    api_reply_json(req, status, g);
    yajl_gen_free(g);
}

/* An answer that announces a change (201 launched, 202 kill under way, 204 removed) goes out
 * once the change is committed (store.c's group commit): nothing is said before it is
 * stored. The request waits in the loop meanwhile; a client gone by then is freed. */
struct committed_reply {
    struct evhttp_request *req;
    char id[17];
    int status;
};

static void reply_committed(struct agent *a, int r, void *arg)
{
    struct committed_reply *d = arg;
    struct container *c = d->status == 204 ? NULL : ctr_find_id(a, d->id);
    if (r == -ECANCELED)
        api_fail(d->req, BERR_UNAVAILABLE, "the agent is stopping");
    else if (d->status == 204 && r < 0)
        api_fail(d->req, BERR_INTERNAL, "cannot remove the record of '%s' from state.db", d->id);
    else if (d->status == 204)
        evhttp_send_reply(d->req, 204, "No Content", NULL);
    else if (!c)
        api_fail(d->req, BERR_NOT_FOUND, "no container '%s'", d->id);
    else
        reply_container(a, d->req, d->status, c);
    free(d);
}

static void reply_after(struct agent *a, struct evhttp_request *req, int status, const char *id,
                        bool write_only)
{
    struct committed_reply *d = xzalloc(sizeof(*d));
    d->req = req;
    d->status = status;
    snprintf(d->id, sizeof(d->id), "%s", id);
    (write_only ? store_after_write : store_after_commit)(a, reply_committed, d);
}

void api_reply_after_commit(struct agent *a, struct evhttp_request *req, int status, const char *id)
{
    reply_after(a, req, status, id, false);
}

static void handle_health(struct agent *a, struct evhttp_request *req)
{
    (void) a;
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_kv_str(g, "status", "ok");
    yajl_gen_map_close(g);
    api_reply_json(req, 200, g);
    yajl_gen_free(g);
}

static void handle_list(struct agent *a, struct evhttp_request *req)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_str(g, "containers");
    yajl_gen_array_open(g);
    for (struct container *c = a->containers; c; c = c->next) {
        if (c->cg && !c->has_usage)
            sampler_sample(a, c); /* new since the last pass */
        ctr_gen(a, c, g, CTR_GEN_USAGE);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    api_reply_json(req, 200, g);
    yajl_gen_free(g);
}

static void handle_stats(struct agent *a, struct evhttp_request *req, struct container *c)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_kv_str(g, "id", c->id);
    json_kv_str(g, "name", c->spec.name);
    json_kv_str(g, "state", ml_state_name(c->state));
    if (c->cg && !ml_state_terminal(c->state))
        sampler_sample(a, c);
    ctr_usage_gen(c, g);
    json_str(g, "limits");
    ml_resources_gen(g, &c->spec);
    yajl_gen_map_close(g);
    api_reply_json(req, 200, g);
    yajl_gen_free(g);
}

static int signal_from(yajl_val v, int *ret)
{
    static const struct {
        const char *name;
        int sig;
    } sigs[] = {{"TERM", SIGTERM}, {"KILL", SIGKILL}, {"INT", SIGINT},  {"HUP", SIGHUP},
                {"QUIT", SIGQUIT}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}};
    if (YAJL_IS_INTEGER(v)) {
        long long n = YAJL_GET_INTEGER(v);
        for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
            if (sigs[i].sig == n) {
                *ret = (int) n;
                return 0;
            }
        return -EINVAL;
    }
    if (!YAJL_IS_STRING(v))
        return -EINVAL;
    const char *s = v->u.string;
    if (str_has_prefix(s, "SIG"))
        s += 3;
    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
        if (strcasecmp(sigs[i].name, s) == 0) {
            *ret = sigs[i].sig;
            return 0;
        }
    return -EINVAL;
}

static void handle_kill(struct agent *a, struct evhttp_request *req, struct container *c)
{
    size_t len;
    _cleanup_free_ char *body = api_read_body(req, &len);
    if (!body)
        return;
    int sig = SIGTERM;
    uint64_t grace_ms = a->cfg.kill_grace_ms;
    _cleanup_berr_ struct berr *err = NULL;
    if (len > 0) {
        yajl_val v = json_parse(body, len, &err);
        if (!v) {
            api_reply_error(req, err);
            return;
        }
        yajl_val s = json_get(v, "signal"), gr = json_get(v, "grace_seconds");
        bool bad = !YAJL_IS_OBJECT(v);
        if (!bad && s && !YAJL_IS_NULL(s) && signal_from(s, &sig) < 0)
            bad = true;
        if (!bad && gr && !YAJL_IS_NULL(gr)) {
            double d = YAJL_IS_NUMBER(gr) ? YAJL_GET_DOUBLE(gr) : -1;
            if (!(d >= 0 && d <= 86400))
                bad = true;
            else
                grace_ms = (uint64_t) (d * 1000);
        }
        yajl_tree_free(v);
        if (bad) {
            api_fail(req, BERR_INVALID_ARGUMENT,
                     "kill takes {\"signal\": TERM|KILL|INT|HUP|QUIT|USR1|USR2, "
                     "\"grace_seconds\": 0-86400}");
            return;
        }
    }
    if (ctr_kill(a, c, sig, grace_ms, &err) < 0) {
        api_reply_error(req, err);
        return;
    }
    reply_after(a, req, 202, c->id, true); /* a kill's record promises nothing of the disk */
}

/* /v1/containers/{ref}[/{sub}]; returns -EINVAL when the method does not fit. */
static int route_container(struct agent *a, struct evhttp_request *req, const char *ref,
                           const char *sub, enum evhttp_cmd_type m)
{
    bool get = m == EVHTTP_REQ_GET, post = m == EVHTTP_REQ_POST, del = m == EVHTTP_REQ_DELETE;
    _cleanup_berr_ struct berr *err = NULL;
    if (sub && !streq(sub, "stats") && !streq(sub, "wait") && !streq(sub, "logs") &&
        !streq(sub, "kill") && !streq(sub, "exec")) {
        api_fail(req, BERR_NOT_FOUND, "no such endpoint '%s'", sub);
        return 0;
    }
    struct container *c = ctr_find(a, ref, &err);
    if (!c) {
        api_reply_error(req, err);
        return 0;
    }
    if (!sub && get)
        reply_container(a, req, 200, c);
    else if (!sub && del) {
        char id[17];
        snprintf(id, sizeof(id), "%s", c->id);
        if (ctr_remove(a, c, &err) < 0) /* c is freed on success */
            api_reply_error(req, err);
        else
            api_reply_after_commit(a, req, 204, id);
    } else if (sub && streq(sub, "stats") && get)
        handle_stats(a, req, c);
    else if (sub && streq(sub, "wait") && get)
        ctr_add_waiter(a, c, req);
    else if (sub && streq(sub, "logs") && get)
        logs_serve(a, c, req);
    else if (sub && streq(sub, "kill") && post)
        handle_kill(a, req, c);
    else if (sub && streq(sub, "exec") && post)
        exec_serve(a, c, req);
    else
        return -EINVAL;
    return 0;
}

static void route(struct evhttp_request *req, void *arg);

/* Constant-time comparison, so the reply time says nothing about the token. */
static bool token_equal(const char *given, const char *want)
{
    size_t gl = strlen(given), wl = strlen(want);
    unsigned char diff = (unsigned char) (gl != wl);
    for (size_t i = 0; i < wl; i++)
        diff |= (unsigned char) (want[i] ^ (i < gl ? given[i] : 0));
    return diff == 0;
}

/* The TCP listener: like the unix socket, but with token_file set every path except
 * /metrics and /health needs "Authorization: Bearer <token>". */
static void route_tcp(struct evhttp_request *req, void *arg)
{
    struct agent *a = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (a->token && path && !streq(path, "/metrics") && !streq(path, "/health")) {
        const char *auth =
                evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
        if (!auth || !str_has_prefix(auth, "Bearer ") || !token_equal(auth + 7, a->token)) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
            api_fail(req, BERR_UNAUTHORIZED, "a valid bearer token is required");
            return;
        }
    }
    route(req, arg);
}

static void route(struct evhttp_request *req, void *arg)
{
    struct agent *a = arg;
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (m == EVHTTP_REQ_CONNECT) {
        api_reply_connect(req);
        return;
    }
    if (!path) {
        api_fail(req, BERR_INVALID_ARGUMENT, "bad request URI");
        return;
    }
    char seg[4][API_SEG_MAX];
    int n = api_split_path(path, seg, 4);
    if (n < 0)
        goto notfound;
    bool get = m == EVHTTP_REQ_GET, post = m == EVHTTP_REQ_POST;
    if (n == 1 && streq(seg[0], "health")) {
        if (get)
            return handle_health(a, req);
        goto method;
    }
    if (n == 1 && streq(seg[0], "metrics")) {
        if (get)
            return metrics_serve(a, req);
        goto method;
    }
    if (n < 2 || !streq(seg[0], "v1"))
        goto notfound;
    if (n == 2 && streq(seg[1], "node")) {
        if (get)
            return api_serve_node(a, req);
        goto method;
    }
    if (!streq(seg[1], "containers"))
        goto notfound;
    if (n == 2) {
        if (get)
            return handle_list(a, req);
        if (post)
            return api_launch(a, req);
        goto method;
    }
    if (route_container(a, req, seg[2], n == 4 ? seg[3] : NULL, m) == 0)
        return;
    goto method;
notfound:
    api_fail(req, BERR_NOT_FOUND, "no such endpoint '%s'", path);
    return;
method:
    api_fail(req, BERR_METHOD_NOT_ALLOWED, "method not allowed on '%s'", path);
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg);

/* How long the listener pauses after a failed accept: 10 ms while fds come free between
 * pauses, doubling to 250 ms while none does. */
static unsigned accept_pause_ms = 10;

static void accept_pause(struct evconnlistener *lev)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = (suseconds_t) accept_pause_ms * 1000};
    event_base_once(evconnlistener_get_base(lev), -1, EV_TIMEOUT, on_accept_resume, lev, &tv);
}

/* Accept again once an fd is free (a dup of the listener's says so); else wait longer,
 * accepting nothing. The connections a round accepted (clients that went: their EOF is
 * read at once) free their fds within the pause, so the next round takes the next few of
 * the backlog: with 250 ms every round the agent took ~6 s to serve again after 120
 * connections had waited at an fd limit its own fds left 5 of (test_hostile.py). */
static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct evconnlistener *lev = arg;
    int t = fcntl(evconnlistener_get_fd(lev), F_DUPFD_CLOEXEC, 0);
    if (t < 0) {
        accept_pause_ms = accept_pause_ms * 2 > 250 ? 250 : accept_pause_ms * 2;
        accept_pause(lev);
        return;
    }
    close(t);
    accept_pause_ms = 10;
    evconnlistener_enable(lev);
}

/* accept() failed (EMFILE, ENFILE, ENOMEM...): libevent would retry at once, forever, and log
 * each time (review H4: 100% CPU, 16 million lines). Stop accepting on this listener for a
 * while (above) and say so, rate-limited. (Its callback data is evhttp's, so the resume
 * timer carries the listener itself.) */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    (void) arg;
    int e = EVUTIL_SOCKET_ERROR();
    evconnlistener_disable(lev);
    accept_pause(lev);
    log_limited("agent-accept", LOG_WARNING, e, "API: accept failed; pausing the listener");
}

/* Create the unix socket: 0660, group "berth" when that group exists. */
static int listen_unix(const char *path, struct berr **err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return berr_setx(err, ENAMETOOLONG, "socket path '%s' is too long", path);
    strcpy(sa.sun_path, path);
    _cleanup_free_ char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        if (mkdir_p(dir, 0755) < 0)
            return berr_set(err, errno, "create '%s'", dir);
    }
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return berr_set(err, errno, "socket");
    /* a socket someone still accepts on is another agent's (review M10): never take it */
    _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0 && connect(probe, (struct sockaddr *) &sa, sizeof(sa)) == 0)
        return berr_setx(err, EADDRINUSE,
                         "'%s' is the live socket of another process (a second agent?): not "
                         "taking it over",
                         path);
    if (unlink(path) < 0 && errno != ENOENT)
        return berr_set(err, errno, "remove stale socket '%s'", path);
    mode_t old = umask(0117);
    int r = bind(fd, (struct sockaddr *) &sa, sizeof(sa));
    umask(old);
    if (r < 0)
        return berr_set(err, errno, "bind '%s'", path);
    struct group *gr = getgrnam("berth");
    if (gr && chown(path, 0, gr->gr_gid) < 0)
        log_warning("chown '%s' to group berth: %m", path);
    if (listen(fd, 128) < 0)
        return berr_set(err, errno, "listen '%s'", path);
    return TAKE_FD(fd);
}

/* Remove our socket at exit, but only if the path still is ours (the inode we bound). */
static void unlink_own_socket(struct agent *a)
{
    struct stat st;
    if (stat(a->socket_path, &st) == 0 && st.st_ino == a->socket_ino && st.st_dev == a->socket_dev)
        unlink(a->socket_path);
}

static struct evhttp *new_http(struct agent *a, void (*cb)(struct evhttp_request *, void *))
{
    struct evhttp *h = evhttp_new(a->base);
    if (!h)
        return NULL;
    evhttp_set_max_body_size(h, API_HARD_MAX_BODY);
    evhttp_set_max_headers_size(h, 64 * 1024);
    /* every method reaches the router, which answers a JSON 405: libevent's own refusal is
     * an HTML 501 (review L1) */
    evhttp_set_allowed_methods(h, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                          EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                          EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    /* an idle connection, a request that stops arriving, or a reader that stops reading an
     * answer is closed after http_timeout (review H4). Long polls (/wait) and a follower's
     * quiet stream are neither reading nor writing, so the timeout does not touch them. */
    struct timeval tv = {.tv_sec = (time_t) (a->cfg.http_timeout_ms / 1000),
                         .tv_usec = (suseconds_t) (a->cfg.http_timeout_ms % 1000) * 1000};
    evhttp_set_timeout_tv(h, &tv);
    evhttp_set_gencb(h, cb, a);
    return h;
}

/* The TCP API's own token: never the master link's join token or key, so a client of this
 * API cannot act as the agent at the master (docs/security.md). */
static int read_token(struct agent *a, struct berr **err)
{
    if (!a->cfg.api_token_file[0])
        return 0;
    _cleanup_free_ char *text = NULL;
    int r = read_file_alloc(a->cfg.api_token_file, 4096, &text, NULL);
    if (r < 0)
        return berr_set(err, -r, "api_token_file '%s'", a->cfg.api_token_file);
    text[strcspn(text, "\r\n")] = 0;
    if (strlen(text) < 16)
        return berr_setx(err, EINVAL,
                         "api_token_file '%s': the token must be at least 16 characters",
                         a->cfg.api_token_file);
    a->token = TAKE_PTR(text);
    return 0;
}

/* tcp:HOST:PORT ("tcp:127.0.0.1:5051", "tcp:[::1]:5051") */
static int listen_tcp(struct agent *a, const char *spec, struct berr **err)
{
    if (a->http_tcp)
        return berr_setx(err, EINVAL, "listen: only one tcp: listener is supported");
    /* A task on the host's network could reach this listener and, without a token, launch
     * a task with the host's root as a volume; tasks in their own namespaces (bridge, none)
     * cannot reach the host's ports at all (docs/design/network.md). */
    if (!a->token && a->cfg.allow_host_network)
        return berr_setx(err, EINVAL,
                         "listen: 'tcp:%s' needs api_token_file (tasks may share the host's "
                         "network and could reach it), or allow_host_network = false",
                         spec);
    _cleanup_free_ char *host = NULL;
    const char *colon = strrchr(spec, ':');
    uint64_t port;
    if (!colon || colon == spec || parse_u64(colon + 1, &port) < 0 || port == 0 || port > 65535)
        return berr_setx(err, EINVAL, "listen: 'tcp:%s' is not tcp:HOST:PORT", spec);
    if (spec[0] == '[' && colon[-1] == ']')
        host = xstrndup(spec + 1, (size_t) (colon - spec - 2));
    else
        host = xstrndup(spec, (size_t) (colon - spec));
    a->http_tcp = new_http(a, route_tcp);
    struct evhttp_bound_socket *bound =
            a->http_tcp ? evhttp_bind_socket_with_handle(a->http_tcp, host, (uint16_t) port) : NULL;
    if (!bound)
        return berr_set(err, errno ? errno : EADDRINUSE, "listen on tcp '%s' port %llu", host,
                        (unsigned long long) port);
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(bound), on_accept_error);
    return 0;
}

int api_start(struct agent *a, struct berr **err)
{
    if (read_token(a, err) < 0)
        return -EINVAL;
    /* listen = unix:PATH[,tcp:HOST:PORT] */
    _cleanup_free_ char *spec = xstrdup(a->cfg.listen);
    a->http = new_http(a, route);
    if (!a->http)
        return berr_setx(err, ENOMEM, "evhttp_new failed");
    char *save = NULL;
    for (char *tok = strtok_r(spec, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (str_has_prefix(tok, "unix:")) {
            if (a->socket_path)
                return berr_setx(err, EINVAL, "listen: only one unix socket is supported");
            int fd = listen_unix(tok + 5, err);
            if (fd < 0)
                return fd;
            a->socket_path = xstrdup(tok + 5);
            struct stat st;
            if (stat(a->socket_path, &st) == 0) {
                a->socket_ino = st.st_ino;
                a->socket_dev = st.st_dev;
            }
            a->listener = evconnlistener_new(a->base, NULL, NULL,
                                             LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
            if (!a->listener) {
                close(fd);
                return berr_setx(err, EIO, "evconnlistener_new failed");
            }
            if (!evhttp_bind_listener(a->http, a->listener))
                return berr_setx(err, EIO, "evhttp_bind_listener failed");
            evconnlistener_set_error_cb(a->listener, on_accept_error);
        } else if (str_has_prefix(tok, "tcp:")) {
            if (listen_tcp(a, tok + 4, err) < 0)
                return -EINVAL;
        } else {
            return berr_setx(err, EINVAL, "listen: '%s' is neither unix:PATH nor tcp:HOST:PORT",
                             tok);
        }
    }
    if (!a->socket_path)
        return berr_setx(err, EINVAL, "listen: no unix: socket given");
    return 0;
}

void api_stop(struct agent *a)
{
    api_launch_stop(a); /* before the servers go: their requests are answered */
    if (a->http_tcp) {
        evhttp_free(a->http_tcp);
        a->http_tcp = NULL;
    }
    free(a->token);
    a->token = NULL;
    if (a->http) {
        evhttp_free(a->http); /* frees the bound listener too */
        a->http = NULL;
        a->listener = NULL;
    }
    if (a->socket_path) {
        unlink_own_socket(a);
        free(a->socket_path);
        a->socket_path = NULL;
    }
}
