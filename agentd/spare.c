/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/spare.c - spare executors (issue #18): SPARES executors spawned ahead of any
 * launch (by the spawner thread, spawner.c), each in the namespaces a launch's executor is
 * born in and in the supervisor cgroup, each waiting on a SOCK_SEQPACKET socket for its
 * launch (executor/spare.c). A launch that comes when no other is being spawned sends one
 * its runtime dir, executor.log, the template and stdin, and has an executor at once: the
 * clone with its namespaces, the exec and the executor's start-up (0.5-1 ms on this
 * machine kind) were before the POST. The spare named its container in its command line
 * before anything else, so the orphan sweep and recovery know it as any executor; one that
 * was never sent a launch exits at the EOF of its socket, when the agent drops it or ends
 * (crash included). The pool follows the launches' namespace set (a launch in host
 * network mode and one in none differ by CLONE_NEWNET): a launch that finds no spare of
 * its set replaces one of another set. Spares that fail (a kernel that does not let them
 * rename themselves, PR_SET_MM_MAP) end the spares after SPARE_FAILURES_MAX in a row.
 * docs/design.md, "The launch path"; the message: docs/design/sandbox.md, "Contract with
 * the agent". */
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "agentd/agent.h"

#define SPARES 2
#define SPARE_FAILURES_MAX 3 /* spawns failed in a row: no more spares (the log says why) */

static struct spare {
    enum {
        SPARE_NONE,
        SPARE_SPAWNING,
        SPARE_MADE
    } state;
    uint64_t ns;
    int ctl; /* the agent's end of the socket */
    pid_t pid;
    uint64_t pid_start;
    int pidfd, status_fd;
} pool[SPARES];
static bool enabled, stopping;
static unsigned failures;

static void reap(int pidfd)
{
    siginfo_t si;
    while (waitid(P_PIDFD, (id_t) pidfd, &si, WEXITED | WNOHANG) < 0 && errno == EINTR)
        ;
    close(pidfd);
}

static void on_dropped_exit(evutil_socket_t fd, short what, void *arg)
{
    (void) what;
    event_free(arg);
    reap(fd);
}

/* SIGKILLed (its socket's EOF would end it too) and reaped: now if it is gone, else when
 * it is (a frozen cgroup holds a SIGKILLed process), and at the stop within a second. */
static void spare_drop(struct agent *a, struct spare *s)
{
    closep(&s->ctl);
    closep(&s->status_fd);
    s->state = SPARE_NONE;
    if (s->pidfd < 0)
        return;
    (void) syscall(SYS_pidfd_send_signal, s->pidfd, SIGKILL, NULL, 0);
    struct pollfd p = {.fd = s->pidfd, .events = POLLIN};
    struct event *ev = NULL;
    if (poll(&p, 1, stopping ? 1000 : 0) == 1 || stopping)
        reap(s->pidfd);
    else if ((ev = event_new(a->base, s->pidfd, EV_READ, on_dropped_exit, event_self_cbarg())) &&
             event_add(ev, NULL) == 0)
        ; /* on_dropped_exit reaps it */
    else {
        if (ev)
            event_free(ev);
        reap(s->pidfd); /* its zombie, if any, goes with the agent */
    }
    s->pidfd = -1;
}

static void spare_spawned(struct agent *a, const char *id, int r, const struct spawned *sp,
                          const struct berr *err)
{
    struct spare *s = &pool[id[1] - '0'];
    s->pid = sp->pid;
    s->pid_start = sp->pid_start;
    s->pidfd = sp->pidfd;
    s->status_fd = sp->status_fd;
    if (r < 0 || !enabled) {
        if (r < 0 && ++failures == SPARE_FAILURES_MAX)
            log_warning("spare executors: %s; %u spawns failed, no more spares", berr_msg(err),
                        failures);
        spare_drop(a, s);
        return;
    }
    failures = 0;
    s->state = SPARE_MADE;
}

/* Spawn a spare of namespace set ns into every empty place. */
static void spare_fill(struct agent *a, uint64_t ns)
{
    for (size_t i = 0; i < SPARES && enabled && failures < SPARE_FAILURES_MAX; i++) {
        struct spare *s = &pool[i];
        if (s->state != SPARE_NONE)
            continue;
        int sv[2];
        _cleanup_berr_ struct berr *err = NULL;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
            log_msg(LOG_WARNING, errno, "spare executors: socketpair");
            return;
        }
        s->ctl = agent_dup_high(sv[0]);
        int child = agent_dup_high(sv[1]);
        char id[3] = {'s', (char) ('0' + i), 0};
        s->ns = ns;
        s->state = SPARE_SPAWNING;
        if (s->ctl < 0 || child < 0)
            berr_set(&err, errno, "duplicate fds");
        else
            (void) agent_spawn_spare(a, id, ns, TAKE_FD(child), spare_spawned, &err);
        if (err) {
            log_warning("spare executors: %s", berr_msg(err));
            closep(&child);
            closep(&s->ctl);
            s->state = SPARE_NONE;
            return;
        }
    }
}

void spare_start(struct agent *a, uint64_t ns)
{
    for (size_t i = 0; i < SPARES; i++)
        pool[i] = (struct spare){.ctl = -1, .pidfd = -1, .status_fd = -1};
    stopping = false;
    const char *v = getenv("BERTH_SPARES");
    enabled = !v || !streq(v, "0");
    if (!enabled) /* tests that hold a launch's spawn (tests/system/test_spawn.py) */
        log_warning("BERTH_SPARES=0: no spare executors; this is a test hook");
    spare_fill(a, ns);
}

int spare_launch(struct agent *a, uint64_t ns, const char *rdir, int logfd, int tpl, int in,
                 struct spawned *ret)
{
    struct spare *other = NULL;
    for (size_t i = 0; i < SPARES && enabled; i++) {
        struct spare *s = &pool[i];
        if (s->state != SPARE_MADE)
            continue;
        if (s->ns != ns) {
            other = s;
            continue;
        }
        char msg[PATH_MAX + 2];
        int n = snprintf(msg, sizeof(msg), "%c%s", tpl >= 0 ? ISO_SPARE_TEMPLATE : 0, rdir);
        int fds[3] = {logfd, tpl >= 0 ? tpl : agent_spawn_null(), in};
        union {
            char buf[CMSG_SPACE(sizeof(fds))];
            struct cmsghdr align;
        } u = {0};
        struct iovec iov = {.iov_base = msg, .iov_len = (size_t) n};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = u.buf,
                            .msg_controllen = sizeof(u.buf)};
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(fds));
        memcpy(CMSG_DATA(c), fds, sizeof(fds));
        if (n < 0 || (size_t) n >= sizeof(msg) ||
            sendmsg(s->ctl, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
            log_msg(LOG_WARNING, errno, "spare executor pid %d", (int) s->pid);
            spare_drop(a, s); /* gone (killed from outside? failed?): a spawn instead */
            if (++failures == SPARE_FAILURES_MAX)
                log_warning("spare executors: %u lost in a row, no more spares", failures);
            continue;
        }
        *ret = (struct spawned){.pid = s->pid,
                                .pid_start = s->pid_start,
                                .pidfd = TAKE_FD(s->pidfd),
                                .status_fd = TAKE_FD(s->status_fd)};
        closep(&s->ctl);
        s->state = SPARE_NONE;
        spare_fill(a, ns);
        return 0;
    }
    if (other) /* the launches' namespaces changed: the next one finds a spare of theirs */
        spare_drop(a, other);
    spare_fill(a, ns);
    return -1;
}

void spare_stop(struct agent *a)
{
    enabled = false;
    stopping = true;
    for (size_t i = 0; i < SPARES; i++)
        if (pool[i].state == SPARE_MADE)
            spare_drop(a, &pool[i]);
}
