/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/template.c - the agent's sandbox template (docs/design/sandbox.md, "The template"):
 * a mount namespace holding the read-only host view with the agent's dirs masked and a
 * minimal /dev, built by `berth-executor --template work_dir/template` (isolator/
 * mount-template.c) and handed back as an fd, which every executor gets as its fd 4 and
 * copies (setns + unshare) instead of mounting all of that again. The view is a snapshot of
 * the host's mounts: when they change (poll on /proc/self/mountinfo says so) the next launch
 * builds a new one first, so a later host mount is seen and an unmounted filesystem is not
 * held. Built before the loop runs (template_init); rebuilt on the loop, a few ms. */
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

/* The builder's answer: "OK" with the namespace's fd, or "ERROR <errno> <message>". */
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
    /* bounded: the builder makes some 20 mounts (seconds only under emulation) */
    struct pollfd p = {.fd = sock, .events = POLLIN};
    int n = poll(&p, 1, 60000);
    if (n == 0)
        return berr_setx(err, ETIMEDOUT, "no answer from the template builder in 60 s");
    ssize_t len = n < 0 ? -1 : recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
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

/* Spawn the builder, wait for its answer and its end. Blocks: at start, and on the loop
 * when the host's mounts changed (one spawn and ~20 mounts). */
static int build(struct agent *a, int *ret_fd, struct berr **err)
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
    _cleanup_close_ int pidfd = -1;
    if ((r = agent_spawn(a, &sp, &pid, &pidfd, err)) < 0)
        return berr_wrap(err, "template");
    closep(&theirs);
    r = recv_template(mine, ret_fd, err);
    if (r < 0)
        (void) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    siginfo_t si;
    while (waitid(P_PIDFD, (id_t) pidfd, &si, WEXITED) < 0 && errno == EINTR)
        ;
    return r < 0 ? berr_wrap(err, "sandbox template") : 0;
}

int template_init(struct agent *a, struct berr **err)
{
    if (!(a->iso_flags & ISO_NS_MOUNT))
        return 0;
    /* first the watch, then the build: a change in between makes the next launch rebuild */
    a->mounts_fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    if (a->mounts_fd < 0)
        return berr_set(err, errno, "open /proc/self/mountinfo");
    return build(a, &a->template_fd, err);
}

int template_fd(struct agent *a)
{
    if (a->mounts_fd < 0)
        return a->template_fd;
    struct pollfd p = {.fd = a->mounts_fd, .events = POLLPRI};
    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLPRI | POLLERR)))
        a->template_stale = true;
    if (!a->template_stale)
        return a->template_fd;
    _cleanup_berr_ struct berr *err = NULL;
    int fd = -1;
    if (build(a, &fd, &err) < 0) {
        /* the old view still holds everything a sandbox needs: keep it, retry next time */
        log_error("the host's mounts changed, keeping the old template: %s", berr_msg(err));
        return a->template_fd;
    }
    log_debug("the host's mounts changed: new sandbox template");
    a->template_stale = false;
    closep(&a->template_fd);
    a->template_fd = fd;
    return fd;
}

void template_free(struct agent *a)
{
    closep(&a->template_fd);
    closep(&a->mounts_fd);
}
