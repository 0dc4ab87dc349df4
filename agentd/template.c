/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/template.c - the agent's sandbox template (docs/design/sandbox.md, "The template"):
 * a mount namespace holding the read-only host view with the agent's dirs masked and a
 * minimal /dev, built by `berth-executor --template work_dir/template` (isolator/
 * mount-template.c) and handed back as an fd, which every executor gets as its fd 4 and
 * copies (setns + unshare) instead of mounting all of that again. The view is a snapshot of
 * the host's mounts: when they change (POLLPRI on /proc/self/mountinfo, looked at every
 * 100 ms by a timer, never by a launch) a new one is built, so a later host mount is seen
 * and an unmounted filesystem is not held. Built before the loop runs (template_init, blocking);
 * afterwards off the launch path: the builder is spawned, its answer read by an event on the
 * loop and its end reaped through its pidfd; launches meanwhile get the old template, which
 * the new one replaces when it arrives (issue #18: a rebuild inside a launch held the loop
 * for the builder's spawn, ~20 mounts and its end). One build at a time: a change during a
 * build makes one more after it. A failed build keeps the old template (logged once until a
 * build succeeds again). */
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "agentd/agent.h"

/* The builder's spec: the agent's flags and masks; sandbox_dir names the dir the sandboxes
 * live in (a mount point is made for it inside the mask over work_dir). */
static int write_template_spec(struct agent *a, const char *dir, struct berr **err)
{
    char *argv[] = {(char *) "template", NULL};
    char *none[] = {NULL};
    struct iso_spec s = {
            .id = (char *) "template",
            .flags = a->iso_flags & ~(unsigned) ISO_NS_NET,
            .sandbox_dir = a->sandboxes_dir,
            .runtime_dir = (char *) dir,
            .mask_dirs = a->masks,
            .user = (char *) "root",
            .argv = argv,
            .env = none,
            .cgroup_join = none,
    };
    _cleanup_free_ char *json = iso_spec_to_json(&s);
    _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return berr_set(err, errno, "open '%s'", dir);
    int r = write_file_replace(dfd, "spec.json", json, strlen(json), 0600);
    return r < 0 ? berr_set(err, -r, "write '%s/spec.json'", dir) : 0;
}

/* One builder: its answer (sock, ev_answer) and its end (pidfd, ev_exit), each dropped when
 * seen; the struct goes when both are. */
struct tpl_build {
    struct agent *a;
    struct tpl_build *next;
    int sock, pidfd;
    struct event *ev_answer, *ev_exit;
};

/* The builder's answer, once its socket is readable: "OK" with the namespace's fd, or
 * "ERROR <errno> <message>"; EOF (it ended without one) is an error too. */
static int recv_template(int sock, int *ret_fd, struct berr **err)
{
    char buf[1024];
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf) - 1};
    struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u)};
    ssize_t len = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (len < 0)
        return berr_set(err, errno, "read the template builder's answer");
    buf[len] = 0;
    int fd = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(&fd, CMSG_DATA(c), sizeof(int));
    if (len >= 2 && memcmp(buf, "OK", 2) == 0 && fd >= 0) {
        *ret_fd = agent_dup_high(fd);
        return *ret_fd < 0 ? berr_set(err, errno, "duplicate fd") : 0;
    }
    if (fd >= 0)
        close(fd);
    int e = EIO;
    const char *msg = "the template builder ended without an answer";
    if (len > 6 && memcmp(buf, "ERROR ", 6) == 0) {
        char *end;
        e = (int) strtol(buf + 6, &end, 10);
        msg = *end == ' ' ? end + 1 : end;
    }
    return berr_setx(err, e > 0 ? e : EIO, "%s", msg);
}

/* Write the spec and spawn the builder (in a new mount namespace, in the supervisor cgroup):
 * returns our end of its socket and its pidfd. */
static int spawn_builder(struct agent *a, int *ret_sock, int *ret_pidfd, struct berr **err)
{
    _cleanup_free_ char *dir = xasprintf("%s/template", a->cfg.work_dir);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return berr_set(err, errno, "create '%s'", dir);
    int r = write_template_spec(a, dir, err);
    if (r < 0)
        return r;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return berr_set(err, errno, "socketpair");
    _cleanup_close_ int mine = agent_dup_high(sv[0]), theirs = agent_dup_high(sv[1]);
    _cleanup_close_ int devnull = agent_dup_high(open("/dev/null", O_RDWR | O_CLOEXEC));
    _cleanup_close_ int errfd = agent_dup_high(fcntl(2, F_DUPFD_CLOEXEC, 4));
    if (mine < 0 || theirs < 0 || devnull < 0 || errfd < 0)
        return berr_set(err, errno, "duplicate fds");
    char *argv[] = {a->executor_path, (char *) "--template", dir, NULL};
    struct spawn sp = {
            .path = a->executor_path,
            .argv = argv,
            .ns_flags = CLONE_NEWNS,
            .fd = {devnull, errfd, errfd, theirs},
            .cg = a->supervisor,
    };
    pid_t pid = 0;
    if (agent_spawn(a, &sp, &pid, ret_pidfd, err) < 0)
        return berr_wrap(err, "template");
    *ret_sock = TAKE_FD(mine);
    return 0;
}

/* At start, before the loop runs: spawn the builder, wait for its answer and its end. */
static int build_now(struct agent *a, int *ret_fd, struct berr **err)
{
    _cleanup_close_ int sock = -1, pidfd = -1;
    int r = spawn_builder(a, &sock, &pidfd, err);
    if (r < 0)
        return r;
    /* bounded: the builder makes some 20 mounts (seconds only under emulation) */
    struct pollfd p = {.fd = sock, .events = POLLIN};
    int n = poll(&p, 1, 60000);
    if (n <= 0)
        r = n == 0 ? berr_setx(err, ETIMEDOUT, "no answer from the template builder in 60 s")
                   : berr_set(err, errno, "wait for the template builder");
    else
        r = recv_template(sock, ret_fd, err);
    if (r < 0)
        (void) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    siginfo_t si;
    while (waitid(P_PIDFD, (id_t) pidfd, &si, WEXITED) < 0 && errno == EINTR)
        ;
    if (r < 0)
        return berr_wrap(err, "sandbox template");
    a->template_builds++;
    return 0;
}

static void start_build(struct agent *a);

static void build_free_if_done(struct tpl_build *b)
{
    if (b->sock >= 0 || b->pidfd >= 0)
        return;
    for (struct tpl_build **p = &b->a->tpl_builds; *p; p = &(*p)->next)
        if (*p == b) {
            *p = b->next;
            break;
        }
    free(b);
}

/* The builder's socket is readable (or 60 s passed): take the new template, or keep the old
 * one; then the build that changes during this one asked for, if any. */
static void on_answer(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    struct tpl_build *b = arg;
    struct agent *a = b->a;
    _cleanup_berr_ struct berr *err = NULL;
    int tfd = -1;
    int r = (what & EV_TIMEOUT)
                    ? berr_setx(&err, ETIMEDOUT, "no answer from the template builder in 60 s")
                    : recv_template(b->sock, &tfd, &err);
    if (r < 0 && berr_errno(err) == EAGAIN)
        return; /* spurious: still waiting (the event persists) */
    event_free(b->ev_answer);
    b->ev_answer = NULL;
    closep(&b->sock);
    a->tpl_pending = NULL;
    if (r < 0) {
        if (b->pidfd >= 0)
            (void) syscall(SYS_pidfd_send_signal, b->pidfd, SIGKILL, NULL, 0);
        if (!a->template_failed) /* once until a build succeeds */
            log_error("the host's mounts changed, keeping the old sandbox template: %s",
                      berr_msg(err));
        a->template_failed = true;
    } else {
        closep(&a->template_fd);
        a->template_fd = tfd;
        a->template_builds++;
        a->template_failed = false;
        log_debug("the host's mounts changed: new sandbox template (build %llu)",
                  (unsigned long long) a->template_builds);
    }
    build_free_if_done(b);
    if (a->template_again) {
        a->template_again = false;
        start_build(a);
    }
}

/* The builder ended: reap it. */
static void on_builder_exit(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    struct tpl_build *b = arg;
    siginfo_t si = {0};
    if (waitid(P_PIDFD, (id_t) b->pidfd, &si, WEXITED | WNOHANG) < 0 ? errno == EINTR
                                                                     : si.si_pid == 0)
        return; /* not yet */
    event_free(b->ev_exit);
    b->ev_exit = NULL;
    closep(&b->pidfd);
    build_free_if_done(b);
}

/* Spawn a builder whose answer the loop takes (on_answer); with one under way already, ask
 * for one more after it. */
static void start_build(struct agent *a)
{
    if (a->tpl_pending) {
        a->template_again = true;
        return;
    }
    _cleanup_berr_ struct berr *err = NULL;
    int sock = -1, pidfd = -1;
    if (spawn_builder(a, &sock, &pidfd, &err) < 0) {
        if (!a->template_failed)
            log_error("the host's mounts changed, keeping the old sandbox template: %s",
                      berr_msg(err));
        a->template_failed = true;
        return;
    }
    struct tpl_build *b = xmalloc(sizeof(*b));
    *b = (struct tpl_build){.a = a, .next = a->tpl_builds, .sock = sock, .pidfd = pidfd};
    b->ev_answer = event_new(a->base, sock, EV_READ | EV_PERSIST, on_answer, b);
    b->ev_exit = event_new(a->base, pidfd, EV_READ | EV_PERSIST, on_builder_exit, b);
    a->tpl_builds = b;
    a->tpl_pending = b;
    struct timeval limit = {.tv_sec = 60};
    event_add(b->ev_answer, &limit);
    event_add(b->ev_exit, NULL);
}

/* Did the host's mounts change since we last looked? Then build anew (off the loop). */
static void check_mounts(struct agent *a)
{
    struct pollfd p = {.fd = a->mounts_fd, .events = POLLPRI};
    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLPRI | POLLERR)))
        start_build(a);
}

/* libevent cannot wait for POLLPRI (epoll reports /proc/self/mountinfo readable always):
 * a look every 100 ms, one poll() each. */
static void on_mounts_tick(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    check_mounts(arg);
}

int template_init(struct agent *a, struct berr **err)
{
    if (!(a->iso_flags & ISO_NS_MOUNT))
        return 0;
    /* first the watch, then the build: a change in between makes the first tick build */
    a->mounts_fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    if (a->mounts_fd < 0)
        return berr_set(err, errno, "open /proc/self/mountinfo");
    int r = build_now(a, &a->template_fd, err);
    if (r < 0)
        return r;
    a->ev_mounts = event_new(a->base, -1, EV_PERSIST, on_mounts_tick, a);
    struct timeval every = {.tv_usec = 100000};
    event_add(a->ev_mounts, &every);
    return 0;
}

int template_fd(struct agent *a)
{
    return a->template_fd; /* the timer looks for changes: a launch spawns no builder */
}

void template_free(struct agent *a)
{
    if (a->ev_mounts)
        event_free(a->ev_mounts);
    a->ev_mounts = NULL;
    while (a->tpl_builds) {
        struct tpl_build *b = a->tpl_builds;
        a->tpl_builds = b->next;
        if (b->ev_answer)
            event_free(b->ev_answer);
        if (b->ev_exit)
            event_free(b->ev_exit);
        closep(&b->sock);
        if (b->pidfd >= 0) { /* the builder makes mounts only in its own namespace */
            (void) syscall(SYS_pidfd_send_signal, b->pidfd, SIGKILL, NULL, 0);
            siginfo_t si;
            while (waitid(P_PIDFD, (id_t) b->pidfd, &si, WEXITED) < 0 && errno == EINTR)
                ;
            closep(&b->pidfd);
        }
        free(b);
    }
    a->tpl_pending = NULL;
    closep(&a->template_fd);
    closep(&a->mounts_fd);
}
