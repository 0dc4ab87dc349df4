/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/health.c - health checks (issue #16, docs/api.md "Health checks"): while a task is
 * RUNNING the agent checks it every interval - TCP (a connection to 127.0.0.1:port is
 * accepted), HTTP (GET path answers 200-399, through libevent's HTTP client) or COMMAND
 * (`berth-executor --exec-pid` runs it inside the task's namespaces and cgroups, as exec.c
 * does, and it exits 0) - keeps `healthy` and the failures in a row, and kills the task with
 * reason HEALTH_CHECK_FAILED after consecutive_failures of them outside the grace period.
 *
 * Cost (docs/design.md "Health checks"): a TCP check is socket, connect, one epoll wake-up,
 * getsockopt and close on the loop; an HTTP check adds evhttp's request and one read; a task
 * in a network namespace of its own adds two setns(2) calls around the socket's creation. A
 * COMMAND check spawns a process (the executor in exec mode), charged to the task's cgroup.
 * Nothing here blocks: every wait is an event on the loop.
 *
 * One struct health per checked container, owned by it (c->health), created when it is
 * RUNNING and freed, with every event, fd and connection it holds, when it no longer is.
 * lifecycle.c tells us of transitions through the watcher we register; we tell the link of a
 * change of `healthy` through ctr_notify. */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "agentd/agent.h"

#define HTTP_MAX_HEADERS 16384
#define HTTP_MAX_BODY (1u << 20) /* read and dropped chunk by chunk; a larger answer fails */

struct health {
    struct agent *a;
    char id[17];
    const struct ml_health_check *hc; /* c->spec.health_check: lives as long as c */
    bool own_netns;                   /* connect from inside the task's network namespace */
    bool in_flight;
    uint16_t port;        /* TCP, HTTP: where the check in flight connects */
    bool result_ready;    /* an HTTP answer arrived inside evhttp_make_request: see on_http */
    bool http_pending;    /* a request is out on evcon */
    bool in_make_request; /* the loop's thread may be in the task's network namespace */
    bool result_ok;
    bool succeeded_once;   /* the grace period ended at the first success */
    uint64_t due_ns;       /* when the check in flight (or the next) was due, monotonic */
    struct event *ev_tick; /* the next check, or the timeout of the one in flight */
    struct event *ev_done; /* an answer that came inside evhttp_make_request is handled here */
    struct event *ev_io;   /* TCP: the socket's connect; COMMAND: the helper's pidfd */
    int fd;                /* TCP socket, or COMMAND helper's pidfd */
    /* HTTP: one connection object per task, reused by every check (each check still makes
     * a new TCP connection: the request says Connection: close) */
    struct evhttp_connection *evcon;
    char result_msg[128];
    char http_error[40];
};

static void tick_in(struct health *h, uint64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t) (ms / 1000),
                         .tv_usec = (suseconds_t) (ms % 1000) * 1000};
    evtimer_add(h->ev_tick, &tv);
}

/* A SIGKILLed COMMAND helper's pidfd became readable: reap it (it is our child). */
static void reap_once(evutil_socket_t fd, short what, void *arg)
{
    (void) what, (void) arg;
    siginfo_t si = {0};
    (void) waitid(P_PIDFD, (id_t) fd, &si, WEXITED | WNOHANG);
    close(fd);
}

/* Drop whatever the check in flight holds (its socket, connection or helper). A COMMAND
 * helper still running is SIGKILLed and reaped once it is gone, without waiting on the loop;
 * its command, told by SIGTERM before (on the timeout), ends with it or with the task. */
static void check_abort(struct health *h)
{
    if (h->ev_io) {
        event_free(h->ev_io);
        h->ev_io = NULL;
    }
    if (h->fd >= 0 && h->hc->type == ML_HEALTH_COMMAND) {
        (void) syscall(SYS_pidfd_send_signal, h->fd, SIGKILL, NULL, 0);
        if (event_base_once(h->a->base, h->fd, EV_READ, reap_once, NULL, NULL) == 0)
            h->fd = -1; /* reap_once closes it */
    }
    closep(&h->fd);
    h->fd = -1;
    if (h->evcon && h->http_pending) {
        /* a request still out (the timeout): it goes without its callback, and the next
         * check makes a new connection */
        evhttp_connection_free(h->evcon);
        h->evcon = NULL;
        h->http_pending = false;
    }
    h->in_flight = false;
    h->result_ready = false;
}

static void health_free(struct health *h)
{
    if (!h)
        return;
    check_abort(h);
    if (h->ev_tick)
        event_free(h->ev_tick);
    if (h->ev_done)
        event_free(h->ev_done);
    if (h->evcon)
        evhttp_connection_free(h->evcon); /* idle: no request is out */
    free(h);
}

/* ---- entering the task's network namespace ---------------------------------------------- */

/* Run while the loop's thread is in the task's network namespace: only socket creation
 * (socket(2), or evhttp_make_request, which creates and connects its socket synchronously for
 * a numeric address). setns(2) changes the calling thread only: libcurl's resolver threads
 * stay where they are. A failure to come back is fatal: every later socket would be made in
 * the task's network. */
static int netns_enter(struct health *h, struct container *c)
{
    if (!h->own_netns)
        return 0;
    if (setns(c->pidfd, CLONE_NEWNET) < 0)
        return -errno;
    return 0;
}

static void netns_leave(struct health *h)
{
    if (!h->own_netns)
        return;
    if (setns(h->a->netns_fd, CLONE_NEWNET) < 0) {
        log_msg(LOG_ERR, errno, "health check: cannot return to the agent's network namespace");
        abort();
    }
}

/* 1 when the executor (pid) lives in another network namespace than the agent; 0 when not
 * or when it cannot be told (then the agent's own namespace is used, as for host tasks). */
static bool in_other_netns(pid_t pid)
{
    char path[64];
    struct stat self, task;
    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int) pid);
    return stat("/proc/self/ns/net", &self) == 0 && stat(path, &task) == 0 &&
           (self.st_ino != task.st_ino || self.st_dev != task.st_dev);
}

/* ---- results ------------------------------------------------------------------------------ */

static void health_set(struct agent *a, struct container *c, enum ml_health v)
{
    if (c->healthy == v)
        return;
    c->healthy = v;
    log_info("container '%s' (%s): %s", c->id, c->spec.name,
             v == ML_HEALTHY ? "healthy" : "unhealthy");
    ctr_notify(a, c); /* the link sends a RUNNING update saying so */
}

/* The next check is due interval after this one was due (not after it started: timer
 * latency must not stretch the interval), moved to the nearest point of a grid of a tenth of
 * the interval (at most 100 ms) on the monotonic clock: checks of many tasks then start in
 * the same turns of the loop, and the agent wakes a few times a second for all of them
 * instead of once per check (fewer wake-ups and context switches: docs/design.md). A check
 * that took longer than the interval is followed at once. */
static void schedule_next(struct health *h)
{
    uint64_t now = now_monotonic_ns();
    uint64_t due = h->due_ns + h->hc->interval_ms * 1000000ULL;
    uint64_t grid = (h->hc->interval_ms < 1000 ? h->hc->interval_ms / 10 : 100) * 1000000ULL;
    if (grid)
        due = (due + grid / 2) / grid * grid;
    if (due < now)
        due = now;
    h->due_ns = due;
    tick_in(h, (due - now) / 1000000);
}

/* One check ended: count it, and kill the task after too many failures outside the grace. */
static void check_done(struct health *h, bool ok, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void check_done(struct health *h, bool ok, const char *fmt, ...)
{
    struct agent *a = h->a;
    struct container *c = ctr_find_id(a, h->id);
    h->in_flight = false;
    h->result_ready = false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->result_msg, sizeof(h->result_msg), fmt, ap);
    va_end(ap);
    if (!c || c->kill_requested)
        return; /* a kill is under way: nothing to count */
    c->health_checks++;
    a->health_checks_total++;
    c->health_checked_at = now_realtime();
    free(c->health_message);
    c->health_message = xstrdup(h->result_msg);
    if (ok) {
        h->succeeded_once = true;
        c->health_failures = 0;
        health_set(a, c, ML_HEALTHY);
        schedule_next(h);
        return;
    }
    bool in_grace = !h->succeeded_once &&
                    now_realtime() < c->started_at + (double) h->hc->grace_ms / 1000.0;
    if (in_grace) {
        log_debug("container '%s': health check failed in the grace period: %s", c->id,
                  h->result_msg);
        schedule_next(h);
        return;
    }
    c->health_failures++;
    health_set(a, c, ML_UNHEALTHY);
    if (c->health_failures < h->hc->consecutive_failures) {
        schedule_next(h);
        return;
    }
    log_warning("container '%s' (%s): %llu health checks failed in a row (%s): killing it", c->id,
                c->spec.name, (unsigned long long) c->health_failures, h->result_msg);
    free(c->message);
    c->message = xasprintf("%s health check failed %llu times in a row: %s",
                           ml_health_type_name(h->hc->type),
                           (unsigned long long) c->health_failures, h->result_msg);
    c->limitation = ML_REASON_HEALTH_CHECK_FAILED; /* recorded with the kill (ctr_kill) */
    _cleanup_berr_ struct berr *err = NULL;
    if (ctr_kill(a, c, SIGTERM, a->cfg.kill_grace_ms, &err) < 0)
        log_warning("container '%s': kill after failed health checks: %s", c->id, berr_msg(err));
    /* no more checks: the kill is recorded (kill_requested), and ctr_kill's watchers run
     * again when it ends */
}

/* ---- TCP ---------------------------------------------------------------------------------- */

static void on_tcp(evutil_socket_t fd, short what, void *arg)
{
    (void) what;
    struct health *h = arg;
    int e = 0;
    socklen_t len = sizeof(e);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
        e = errno;
    uint16_t port = h->port;
    check_abort(h);
    if (e)
        check_done(h, false, "connect to port %u: %s", port, strerror(e));
    else
        check_done(h, true, "port %u accepted a connection", port);
}

static struct sockaddr_in loopback(uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

static void start_tcp(struct health *h, struct container *c, uint16_t port)
{
    int r = netns_enter(h, c);
    int fd = r < 0 ? -1 : socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int e = fd < 0 ? (r < 0 ? -r : errno) : 0;
    netns_leave(h);
    if (fd < 0)
        return check_done(h, false, "socket in the task's network: %s", strerror(e));
    /* close with RST: no TIME_WAIT per check left in the agent's (or the task's) network */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    (void) setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    struct sockaddr_in sa = loopback(port);
    if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0) {
        close(fd);
        return check_done(h, true, "port %u accepted a connection", port);
    }
    if (errno != EINPROGRESS) {
        e = errno;
        close(fd);
        return check_done(h, false, "connect to port %u: %s", port, strerror(e));
    }
    h->fd = fd;
    h->ev_io = event_new(h->a->base, fd, EV_WRITE, on_tcp, h);
    event_add(h->ev_io, NULL);
}

/* ---- HTTP --------------------------------------------------------------------------------- */

/* Body chunks are dropped as they come: only the status matters. */
static void on_http_chunk(struct evhttp_request *req, void *arg)
{
    (void) arg;
    struct evbuffer *b = evhttp_request_get_input_buffer(req);
    evbuffer_drain(b, evbuffer_get_length(b));
}

/* Why libevent gave up on the request: kept for the result's message. */
static void on_http_error(enum evhttp_request_error e, void *arg)
{
    struct health *h = arg;
    const char *what = e == EVREQ_HTTP_TIMEOUT          ? "timed out"
                       : e == EVREQ_HTTP_EOF            ? "connection refused or closed"
                       : e == EVREQ_HTTP_INVALID_HEADER ? "malformed answer"
                       : e == EVREQ_HTTP_DATA_TOO_LONG  ? "answer too large"
                                                        : "request failed";
    snprintf(h->http_error, sizeof(h->http_error), "%s", what);
}

/* The answer, or libevent giving up (req NULL or code 0). Called from inside libevent: the
 * connection object must not be freed here, and nothing here frees it (check_done may kill
 * the task, which ends the checks only at a later transition). When it comes from inside
 * evhttp_make_request (an immediate failure), the loop's thread may still be in the task's
 * network namespace: the result is then handled on the next turn (ev_done), where no socket
 * the agent makes for itself can land in the task's network. */
static void on_http(struct evhttp_request *req, void *arg)
{
    struct health *h = arg;
    if (!h->http_pending)
        return;
    h->http_pending = false;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    bool ok = code >= 200 && code < 400;
    char msg[sizeof(h->result_msg)];
    if (code > 0)
        snprintf(msg, sizeof(msg), "GET %s: HTTP %d", h->hc->path, code);
    else
        snprintf(msg, sizeof(msg), "GET %s: no answer (%s)", h->hc->path,
                 h->http_error[0] ? h->http_error : "connection refused or closed");
    if (!h->in_make_request)
        return check_done(h, ok, "%s", msg);
    h->result_ok = ok;
    snprintf(h->result_msg, sizeof(h->result_msg), "%s", msg);
    h->result_ready = true;
    event_active(h->ev_done, EV_READ, 0);
}

static void on_http_done(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct health *h = arg;
    if (!h->in_flight || !h->result_ready)
        return;
    char msg[sizeof(h->result_msg)];
    snprintf(msg, sizeof(msg), "%s", h->result_msg);
    check_done(h, h->result_ok, "%s", msg);
}

static void start_http(struct health *h, struct container *c, uint16_t port)
{
    if (!h->evcon) {
        h->evcon = evhttp_connection_base_new(h->a->base, NULL, "127.0.0.1", port);
        if (!h->evcon)
            return check_done(h, false, "no memory for an HTTP connection");
        evhttp_connection_set_max_headers_size(h->evcon, HTTP_MAX_HEADERS);
        evhttp_connection_set_max_body_size(h->evcon, HTTP_MAX_BODY);
        evhttp_connection_set_retries(h->evcon, 0);
    }
    struct evhttp_request *req = evhttp_request_new(on_http, h);
    evhttp_request_set_chunked_cb(req, on_http_chunk);
    evhttp_request_set_error_cb(req, on_http_error);
    h->http_error[0] = 0;
    struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);
    char host[32];
    snprintf(host, sizeof(host), "127.0.0.1:%u", port);
    evhttp_add_header(hdr, "Host", host);
    evhttp_add_header(hdr, "User-Agent", "berth-agent health check");
    evhttp_add_header(hdr, "Connection", "close");
    int r = netns_enter(h, c);
    if (r < 0) {
        evhttp_request_free(req);
        return check_done(h, false, "enter the task's network: %s", strerror(-r));
    }
    /* for "127.0.0.1" and no evdns base, libevent resolves, creates the socket and connects
     * before this returns: the socket is the task network's */
    h->http_pending = true;
    h->in_make_request = true;
    r = evhttp_make_request(h->evcon, req, EVHTTP_REQ_GET, h->hc->path);
    h->in_make_request = false;
    netns_leave(h);
    if (r < 0 && h->http_pending) { /* the request was freed by libevent */
        h->http_pending = false;
        evhttp_connection_free(h->evcon);
        h->evcon = NULL;
        check_done(h, false, "GET %s: cannot start the request", h->hc->path);
    }
}

/* ---- COMMAND ------------------------------------------------------------------------------ */

static void on_command(evutil_socket_t fd, short what, void *arg)
{
    (void) what;
    struct health *h = arg;
    siginfo_t si = {0};
    if (waitid(P_PIDFD, (id_t) fd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
        return;
    event_free(h->ev_io);
    h->ev_io = NULL;
    closep(&h->fd);
    h->fd = -1;
    if (!h->in_flight)
        return; /* it had timed out and was counted then */
    if (si.si_code == CLD_EXITED && si.si_status == 0)
        check_done(h, true, "command exited 0");
    else if (si.si_code == CLD_EXITED)
        check_done(h, false, "command exited %d", si.si_status);
    else
        check_done(h, false, "command killed by signal %d", si.si_status);
}

static void start_command(struct health *h, struct container *c)
{
    struct agent *a = h->a;
    _cleanup_free_ char *rdir = xasprintf("%s/%s", a->runtime_root, c->id);
    char pidbuf[16];
    snprintf(pidbuf, sizeof(pidbuf), "%d", (int) c->pid);
    _cleanup_free_ char **args = agent_exec_argv(a, rdir, pidbuf, h->hc->command.argv);
    _cleanup_close_ int devnull = agent_dup_high(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (devnull < 0)
        return check_done(h, false, "open '/dev/null': %s", strerror(errno));
    struct spawn sp = {
            .path = a->executor_path,
            .argv = args,
            .fd = {devnull, devnull, devnull, -1},
            .cg = c->cg, /* charged to the task, like `berthctl exec` */
    };
    _cleanup_berr_ struct berr *err = NULL;
    pid_t pid;
    int pidfd;
    if (agent_spawn(a, &sp, &pid, &pidfd, &err) < 0)
        return check_done(h, false, "start the command: %s", berr_msg(err));
    h->fd = pidfd;
    h->ev_io = event_new(a->base, pidfd, EV_READ | EV_PERSIST, on_command, h);
    event_add(h->ev_io, NULL);
}

/* ---- the schedule ------------------------------------------------------------------------- */

/* The port a check connects to: its number, or the task's port at port_index as the agent
 * assigned it (ports.c): inside the task's own network namespace (bridge, none) the port the
 * task listens on there, its container port (PORTn); on the host's network its host port
 * (the same number there). 0 when it has none. */
static uint16_t check_port(const struct health *h, const struct container *c)
{
    const struct ml_health_check *hc = h->hc;
    if (hc->port)
        return hc->port;
    if (hc->port_index < 0 || (size_t) hc->port_index >= c->spec.n_ports)
        return 0;
    const struct ml_port *p = &c->spec.ports[hc->port_index];
    uint16_t inside = p->container_port ? p->container_port : p->host_port;
    return h->own_netns ? inside : p->host_port ? p->host_port : inside;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct health *h = arg;
    struct container *c = ctr_find_id(h->a, h->id);
    if (!c)
        return;
    /* a check that ended before its timeout moved this timer on to the next check (evtimer_add
     * of a pending timer reschedules it) */
    if (h->in_flight) {
        /* the timeout: a COMMAND is told first (its helper forwards SIGTERM to the command
         * and ends the way it does), and SIGKILLed if it has not ended by the next check */
        if (h->hc->type == ML_HEALTH_COMMAND && h->fd >= 0) {
            (void) syscall(SYS_pidfd_send_signal, h->fd, SIGTERM, NULL, 0);
            h->in_flight = false;
            return check_done(h, false, "timed out after %gs", (double) h->hc->timeout_ms / 1000);
        }
        check_abort(h);
        return check_done(h, false, "timed out after %gs", (double) h->hc->timeout_ms / 1000);
    }
    if (c->state != ML_RUNNING || c->kill_requested)
        return;
    check_abort(h); /* a COMMAND that outlived its timeout and the interval */
    h->in_flight = true;
    tick_in(h, h->hc->timeout_ms);
    uint16_t port = h->port = check_port(h, c);
    switch (h->hc->type) {
    case ML_HEALTH_TCP:
    case ML_HEALTH_HTTP:
        if (!port)
            return check_done(h, false, "the task has no port %d", h->hc->port_index);
        if (h->hc->type == ML_HEALTH_TCP)
            return start_tcp(h, c, port);
        return start_http(h, c, port);
    case ML_HEALTH_COMMAND:
    default:
        return start_command(h, c);
    }
}

static void health_begin(struct agent *a, struct container *c)
{
    struct health *h = xzalloc(sizeof(*h));
    h->a = a;
    snprintf(h->id, sizeof(h->id), "%s", c->id);
    h->hc = c->spec.health_check;
    h->fd = -1;
    h->own_netns = c->pid > 0 && in_other_netns(c->pid);
    h->ev_tick = evtimer_new(a->base, on_tick, h);
    h->ev_done = event_new(a->base, -1, 0, on_http_done, h);
    c->health = h;
    h->due_ns = now_monotonic_ns() + h->hc->delay_ms * 1000000ULL;
    tick_in(h, h->hc->delay_ms);
    log_debug("container '%s': %s health check every %gs%s", c->id,
              ml_health_type_name(h->hc->type), (double) h->hc->interval_ms / 1000,
              h->own_netns ? ", from inside its network namespace" : "");
}

void health_end(struct container *c)
{
    health_free(c->health);
    c->health = NULL;
}

/* A watcher of transitions (lifecycle.c): checks run while the task is RUNNING and no kill
 * is under way. */
static void health_on_transition(struct agent *a, struct container *c)
{
    bool want = c->spec.health_check && c->state == ML_RUNNING && !c->kill_requested;
    if (want && !c->health)
        health_begin(a, c);
    else if (!want && c->health)
        health_end(c);
}

int health_start(struct agent *a, struct berr **err)
{
    a->netns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (a->netns_fd < 0)
        return berr_set(err, errno, "open '/proc/self/ns/net'");
    a->netns_fd = agent_dup_high(a->netns_fd);
    ctr_watch_add(a, health_on_transition);
    for (struct container *c = a->containers; c; c = c->next)
        health_on_transition(a, c); /* re-adopted RUNNING tasks */
    return 0;
}

void health_stop(struct agent *a)
{
    for (struct container *c = a->containers; c; c = c->next)
        health_end(c);
    if (a->netns_fd > 2)
        close(a->netns_fd);
    a->netns_fd = -1;
}

void health_gen(const struct container *c, yajl_gen g)
{
    if (!c->spec.health_check)
        return;
    ml_health_gen(g, "healthy", c->healthy);
    json_str(g, "health");
    yajl_gen_map_open(g);
    json_kv_u64(g, "checks", c->health_checks);
    json_kv_u64(g, "consecutive_failures", c->health_failures);
    if (c->health_checked_at > 0)
        json_kv_double(g, "last_checked_at", c->health_checked_at);
    else
        json_kv_null(g, "last_checked_at");
    json_kv_str(g, "last_result", c->health_message);
    yajl_gen_map_close(g);
}
