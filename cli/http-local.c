/* SPDX-License-Identifier: Apache-2.0 */
/* cli/http-local.c - berthctl's transport to the agent: HTTP/1.1 on the agent's unix socket
 * with libevent's HTTP client (evhttp_connection), one connection kept open for the whole
 * process (run --wait: POST, then GET .../wait on it). http.c turns the answers into JSON or
 * errors; http-curl.c is the --master transport.
 *
 * Why libevent and not libcurl here: libcurl and the 33 libraries it pulls in (OpenSSL,
 * GnuTLS, Kerberos, LDAP, ssh2, ...) cost about 4 ms of dynamic loading at every start, 5x
 * what the rest of berthctl costs; libevent's client is already a dependency (the agent's
 * server), has no dependencies of its own, and the Makefile links it in statically, so a
 * local call maps libc alone. A hand-written HTTP parser was ruled out (issue #18).
 *
 * libevent 2.1 (Debian 12, RHEL 9) cannot point an evhttp_connection at a unix socket: it
 * closes whatever socket the bufferevent holds and connects by host name through
 * bufferevent_socket_connect_hostname(); unix sockets arrived in 2.2
 * (evhttp_connection_base_bufferevent_unix_new). So berthctl connects the socket itself,
 * names it in the connection's address as "adopt-fd:N", and the linker redirects libevent's
 * one call to bufferevent_socket_connect_hostname() to __wrap_...() below (-Wl,--wrap in the
 * Makefile, which works because libevent is linked statically): it hands socket N to the
 * bufferevent as already connecting (bufferevent_socket_connect() with no address, documented
 * to report BEV_EVENT_CONNECTED once the socket is writable), and evhttp goes on as after any
 * connect. Connecting ourselves also gives the errors their reason (ENOENT, ECONNREFUSED,
 * EACCES) and bounds a wait on a full backlog. Rejected: a filter or pair bufferevent in
 * front of the socket (evhttp still resolves and connects by name); an evdns_base left
 * pending so that the socket could be swapped in (relies on far more of libevent's
 * internals than the one documented call wrapped here). */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cli/cli.h"

#define CONNECT_TIMEOUT_MS 10000L /* a full listen backlog: how long connect() waits */
#define ADOPT_PREFIX "adopt-fd:"  /* a connection's address that names our connected socket */
#define MAX_HEADERS (1u << 20)

struct ctl_local {
    struct event_base *base;
    struct evhttp_connection *evcon; /* NULL until connected, and after a closed one is freed */
    int fd;                          /* connected, not yet handed to evcon (adopted); else -1 */
};

/* One request in flight. libevent frees the evhttp_request: req is NULL once it may have. */
struct call {
    struct ctl_sink *sink;
    struct evhttp_request *req;
    bool done;      /* nothing more will come */
    bool stopped;   /* the sink stopped the transfer (write error, answer too big) */
    bool timed_out; /* ctl->timeout_ms passed */
    bool failed;    /* no complete answer: libevent reported an error or the connect failed */
    bool has_error; /* error and sys_errno are libevent's report */
    enum evhttp_request_error error;
    int sys_errno;
};

int __real_bufferevent_socket_connect_hostname(struct bufferevent *bev, struct evdns_base *dns,
                                               int family, const char *hostname, int port);
int __wrap_bufferevent_socket_connect_hostname(struct bufferevent *bev, struct evdns_base *dns,
                                               int family, const char *hostname, int port);

/* evhttp_connection_connect_() calls this with the connection's address; "adopt-fd:N" hands
 * our connected socket N to bev (see the top of this file), any other address is libevent's
 * own name lookup and TCP connect (nothing in berthctl makes one). */
int __wrap_bufferevent_socket_connect_hostname(struct bufferevent *bev, struct evdns_base *dns,
                                               int family, const char *hostname, int port)
{
    uint64_t fd;
    if (!hostname || !str_has_prefix(hostname, ADOPT_PREFIX))
        return __real_bufferevent_socket_connect_hostname(bev, dns, family, hostname, port);
    if (parse_u64(hostname + strlen(ADOPT_PREFIX), &fd) < 0 || fd > INT_MAX)
        return -1;
    if (bufferevent_setfd(bev, (evutil_socket_t) fd) < 0)
        return -1;
    return bufferevent_socket_connect(bev, NULL, 0);
}

/* libevent's own warnings ("[warn] ...") would be a second line on stderr: debug only. */
static void on_libevent_log(int severity, const char *msg)
{
    (void) severity;
    log_debug("libevent: %s", msg);
}

/* Connect to the agent's socket, blocking: an AF_UNIX connect completes at once, or fails at
 * once, or waits while the listener's backlog is full, at most SO_SNDTIMEO
 * (unix_stream_connect), then fails with EAGAIN. */
static int connect_socket(const char *path, long timeout_ms, int *ret_fd, struct berr **err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len >= sizeof(sa.sun_path))
        return berr_setx(err, ENAMETOOLONG,
                         "cannot connect to the agent at '%s': a socket path has at most %zu bytes",
                         path, sizeof(sa.sun_path) - 1);
    memcpy(sa.sun_path, path, len + 1);
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return berr_set(err, errno, "cannot connect to the agent at '%s': socket", path);
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    socklen_t salen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len + 1);
    if (connect(fd, (struct sockaddr *) &sa, salen) < 0) {
        if (errno == EAGAIN)
            return berr_setx(err, ETIMEDOUT,
                             "cannot connect to the agent at '%s': its backlog stayed full for "
                             "%ld ms",
                             path, timeout_ms);
        return berr_set(err, errno, "cannot connect to the agent at '%s'", path);
    }
    if (evutil_make_socket_nonblocking(fd) < 0)
        return berr_set(err, errno, "cannot connect to the agent at '%s': O_NONBLOCK", path);
    *ret_fd = TAKE_FD(fd);
    return 0;
}

/* A new connection in l->evcon; the socket is adopted by the first request made on it. */
static int local_connect(struct ctl_local *l, const char *path, long timeout_ms, struct berr **err)
{
    int r = connect_socket(path, timeout_ms, &l->fd, err);
    if (r < 0)
        return r;
    char addr[32];
    snprintf(addr, sizeof(addr), ADOPT_PREFIX "%d", l->fd);
    struct bufferevent *bev = bufferevent_socket_new(l->base, -1, 0);
    if (bev)
        l->evcon = evhttp_connection_base_bufferevent_new(l->base, NULL, bev, addr, 80);
    if (!l->evcon) {
        if (bev)
            bufferevent_free(bev);
        closep(&l->fd);
        return berr_setx(err, ENOMEM, "cannot set up the connection to the agent at '%s'", path);
    }
    /* evhttp's default read and write timeouts (50 s) would end a quiet `logs -f` and a long
     * `wait`: none of its own, ctl->timeout_ms bounds a whole call instead */
    struct timeval forever = {.tv_sec = 365 * 86400};
    evhttp_connection_set_timeout_tv(l->evcon, &forever);
    evhttp_connection_set_max_headers_size(l->evcon, MAX_HEADERS);
    /* an answer sent before the agent stopped reading our body (413) is still read */
    evhttp_connection_set_flags(l->evcon, EVHTTP_CON_READ_ON_WRITE_ERROR);
    return 0;
}

/* The evcon of a connection that closed (the agent closed it, or a failed call reset it) has
 * no socket any more: free it, so that the next request connects anew (evhttp itself would
 * reconnect by name). */
static bool local_alive(struct ctl_local *l)
{
    if (!l->evcon)
        return false;
    if (bufferevent_getfd(evhttp_connection_get_bufferevent(l->evcon)) < 0) {
        evhttp_connection_free(l->evcon);
        l->evcon = NULL;
        return false;
    }
    return true;
}

static void call_stop(struct call *c)
{
    struct evhttp_request *req = c->req;
    c->req = NULL;
    c->done = true;
    if (req)
        evhttp_cancel_request(req); /* frees req; allowed from the chunk callback */
}

/* Move the body bytes evhttp holds for req into the sink. Returns -1 when the sink stopped
 * the transfer. */
static int take_body(struct call *c, struct evhttp_request *req)
{
    if (!c->sink->status)
        c->sink->status = evhttp_request_get_response_code(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n;
    while ((n = evbuffer_get_contiguous_space(in)) > 0) {
        if (ctl_sink_put(c->sink, evbuffer_pullup(in, (ev_ssize_t) n), n) < 0) {
            c->stopped = true;
            return -1;
        }
        evbuffer_drain(in, n);
    }
    return 0;
}

/* Body bytes as they arrive (every answer, chunked or not). */
static void on_chunk(struct evhttp_request *req, void *arg)
{
    struct call *c = arg;
    if (!c->done && take_body(c, req) < 0)
        call_stop(c);
}

/* Before the completion callback when a request fails; errno is libevent's socket error. */
static void on_error(enum evhttp_request_error error, void *arg)
{
    struct call *c = arg;
    if (c->failed || c->stopped || c->timed_out)
        return; /* our own cancel */
    c->failed = true;
    c->has_error = true;
    c->error = error;
    c->sys_errno = errno;
}

/* The answer is complete (req, with its status), or the request failed (req NULL, or a
 * connect that failed: status 0). */
static void on_done(struct evhttp_request *req, void *arg)
{
    struct call *c = arg;
    c->req = NULL; /* evhttp frees it when we return */
    if (c->done)
        return;
    c->done = true;
    if (!req || evhttp_request_get_response_code(req) <= 0)
        c->failed = true;
    else
        (void) take_body(c, req); /* what evhttp kept (nothing, with a chunk callback) */
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    struct call *c = arg;
    c->timed_out = true;
    call_stop(c);
}

static int method_type(const char *method, enum evhttp_cmd_type *ret)
{
    static const struct {
        const char *name;
        enum evhttp_cmd_type type;
    } methods[] = {
            {"GET", EVHTTP_REQ_GET},         {"POST", EVHTTP_REQ_POST}, {"PUT", EVHTTP_REQ_PUT},
            {"DELETE", EVHTTP_REQ_DELETE},   {"HEAD", EVHTTP_REQ_HEAD}, {"PATCH", EVHTTP_REQ_PATCH},
            {"OPTIONS", EVHTTP_REQ_OPTIONS},
    };
    for (size_t i = 0; i < ARRAY_SIZE(methods); i++)
        if (streq(methods[i].name, method)) {
            *ret = methods[i].type;
            return 0;
        }
    return -EINVAL;
}

/* What went wrong with a request that got no complete answer. */
static int call_error(const struct call *c, const char *method, const char *path, const char *sock,
                      long timeout_ms, struct berr **err)
{
    if (c->stopped)
        return ctl_sink_error(c->sink, "the agent", method, path, err);
    if (c->timed_out)
        return berr_setx(err, ETIMEDOUT, "the agent at '%s' did not answer %s %s within %.1f s",
                         sock, method, path, (double) timeout_ms / 1000.0);
    const char *what = "the agent closed the connection";
    if (c->has_error && c->error == EVREQ_HTTP_INVALID_HEADER)
        what = "the agent's answer is not valid HTTP";
    else if (c->has_error && c->error == EVREQ_HTTP_DATA_TOO_LONG)
        what = "the agent's answer is malformed";
    if (c->has_error && c->error == EVREQ_HTTP_EOF && c->sys_errno > 0)
        return berr_set(err, c->sys_errno, "%s %s on '%s': %s", method, path, sock, what);
    return berr_setx(err, EPROTO, "%s %s on '%s': %s", method, path, sock, what);
}

/* A request that failed before any answer came, on a connection that closed under it (as
 * opposed to a garbled answer), may be sent again on a new connection. */
static bool call_retriable(const struct call *c)
{
    return c->failed && !c->stopped && !c->timed_out && c->sink->status == 0 && c->sink->len == 0 &&
           (!c->has_error || c->error == EVREQ_HTTP_EOF || c->error == EVREQ_HTTP_BUFFER_ERROR);
}

/* Send one request on l->evcon and run the loop until its answer is in. Returns 0 (the
 * answer in sink), -errno with err set, or with may_retry 1 when call_retriable(). */
static int local_call(struct ctl_local *l, enum evhttp_cmd_type type, const char *method,
                      const char *path, const char *body, uint64_t deadline_ns, const char *sock,
                      long timeout_ms, bool may_retry, struct ctl_sink *sink, struct berr **err)
{
    struct call c = {.sink = sink};
    struct evhttp_request *req = evhttp_request_new(on_done, &c);
    if (!req)
        return berr_setx(err, ENOMEM, "%s %s: cannot make the request", method, path);
    evhttp_request_set_chunked_cb(req, on_chunk);
    evhttp_request_set_error_cb(req, on_error);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", "localhost");
    evhttp_add_header(h, "Accept", "application/json");
    evhttp_add_header(h, "User-Agent", "berthctl/" BERTH_VERSION);
    if (body) {
        char len[24];
        snprintf(len, sizeof(len), "%zu", strlen(body));
        evhttp_add_header(h, "Content-Type", "application/json");
        evhttp_add_header(h, "Content-Length", len);
        evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    }
    c.req = req;
    /* connects (adopting l->fd) when the connection is new; libevent frees req on failure */
    if (evhttp_make_request(l->evcon, req, type, path) < 0) {
        closep(&l->fd); /* not adopted: it fails before connecting */
        return berr_setx(err, ENOMEM, "%s %s: cannot send the request", method, path);
    }
    l->fd = -1;
    struct event *timer = NULL;
    if (deadline_ns && !c.done) {
        uint64_t now = now_monotonic_ns(), left = deadline_ns > now ? deadline_ns - now : 0;
        struct timeval tv = {.tv_sec = (time_t) (left / 1000000000u),
                             .tv_usec = (suseconds_t) (left % 1000000000u / 1000)};
        timer = evtimer_new(l->base, on_timeout, &c);
        if (!timer || evtimer_add(timer, &tv) < 0)
            abort();
    }
    while (!c.done)
        if (event_base_loop(l->base, EVLOOP_ONCE) != 0) {
            call_stop(&c); /* nothing left to wait for: cannot happen with a request out */
            c.failed = true;
        }
    if (timer)
        event_free(timer);
    if (!c.stopped && !c.timed_out && !c.failed && sink->status > 0)
        return 0;
    if (may_retry && call_retriable(&c))
        return 1;
    return call_error(&c, method, path, sock, timeout_ms, err);
}

int ctl_local_request(struct ctl *ctl, const char *method, const char *path, const char *body,
                      struct ctl_sink *sink, struct berr **err)
{
    enum evhttp_cmd_type type;
    if (method_type(method, &type) < 0)
        return berr_setx(err, EINVAL, "%s %s: no such HTTP method", method, path);
    if (!ctl->local) {
        event_set_log_callback(on_libevent_log);
        struct ctl_local *l = xmalloc(sizeof(*l));
        *l = (struct ctl_local){.base = event_base_new(), .fd = -1};
        if (!l->base) {
            free(l);
            return berr_setx(err, ENOMEM, "cannot set up an event loop");
        }
        ctl->local = l;
    }
    struct ctl_local *l = ctl->local;
    uint64_t deadline =
            ctl->timeout_ms > 0 ? now_monotonic_ns() + (uint64_t) ctl->timeout_ms * 1000000u : 0;
    long connect_ms = ctl->timeout_ms > 0 && ctl->timeout_ms < CONNECT_TIMEOUT_MS
                              ? ctl->timeout_ms
                              : CONNECT_TIMEOUT_MS;
    for (int attempt = 0;; attempt++) {
        /* a close the agent sent while we were idle (its http_timeout, a restart) is seen
         * by evhttp only when the loop runs */
        if (l->evcon)
            event_base_loop(l->base, EVLOOP_NONBLOCK);
        bool reused = local_alive(l);
        if (!reused) {
            int r = local_connect(l, ctl->socket, connect_ms, err);
            if (r < 0)
                return r;
        }
        /* a kept connection that died before any answer (the agent closed it as we sent)
         * gets the request once more on a new one, as curl does */
        int r = local_call(l, type, method, path, body, deadline, ctl->socket, ctl->timeout_ms,
                           reused && attempt == 0, sink, err);
        if (r <= 0)
            return r;
    }
}

void ctl_local_free(struct ctl_local *l)
{
    if (!l)
        return;
    if (l->evcon)
        evhttp_connection_free(l->evcon);
    closep(&l->fd);
    if (l->base)
        event_base_free(l->base);
    free(l);
}
