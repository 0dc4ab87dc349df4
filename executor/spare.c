/* SPDX-License-Identifier: Apache-2.0 */
/* executor/spare.c - `berth-executor --spare net|host`: an executor the agent starts ahead
 * of any launch (agentd/spare.c; issue #18), born as a launch's executor is - pid 1 of its
 * own pid namespace, with its own IPC and UTS namespaces and, for "net", its own network
 * namespace, in the agent's supervisor cgroup - with its status pipe on fd 3. Its exec, its
 * start-up and its namespaces' creation are then off the launch's path. It brings up lo in
 * its own network namespace and waits on fd 0, a SOCK_SEQPACKET socket, for a launch: one
 * message of a flags byte and the container's runtime dir, with three fds (SCM_RIGHTS):
 * executor.log, the sandbox template and stdin (the network's go pipe or /dev/null;
 * isolator.h, ISO_SPARE_TEMPLATE). It then names its container in its command line, as
 * `--runtime-dir DIR` would (the agent's orphan sweep and ps find executors by it), and goes on as
 * that would. EOF instead: the agent dropped it or is gone; it exits. */
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "executor/executor.h"

/* Our memory map's fields as the kernel has them (/proc/self/stat), for PR_SET_MM_MAP: the
 * one way to move the command line that needs no CAP_SYS_RESOURCE (which the machines we
 * run on may withhold from root). */
static int mm_map_now(struct prctl_mm_map *m)
{
    unsigned long long v[52];
    int r = proc_stat_fields(0, v, 52);
    if (r < 52)
        return r < 0 ? r : -EIO;
    *m = (struct prctl_mm_map){.start_code = v[26],
                               .end_code = v[27],
                               .start_stack = v[28],
                               .start_data = v[45],
                               .end_data = v[46],
                               .start_brk = v[47],
                               .brk = (uint64_t) syscall(SYS_brk, 0),
                               .arg_start = v[48],
                               .arg_end = v[49],
                               .env_start = v[50],
                               .env_end = v[51],
                               .exe_fd = (uint32_t) -1};
    return 0;
}

/* Our command line to be, in anonymous memory of ours (the kernel reads a command line from
 * anonymous mappings only: not from .bss's first page, which is the file's): "ARGV0\0
 * --runtime-dir\0" here, the launch's message received right after it; *ret_at is where
 * the message's first byte goes, the prefix's last NUL. */
static char *cmdline_page(const char *argv0, size_t size, size_t *ret_at)
{
    char *page = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return NULL;
    int n = snprintf(page, size, "%s%c--runtime-dir", argv0, 0);
    if (n < 0 || (size_t) n + PATH_MAX + 2 > size) {
        munmap(page, size);
        return NULL;
    }
    *ret_at = (size_t) n;
    return page;
}

int exe_spare(struct exe *e, const char *argv0, bool own_net)
{
    /* the kernel must let us rename ourselves, or we would be an executor the orphan sweep
     * cannot find: not a spare then (the agent stops making them); the map is kept for the
     * rename */
    struct prctl_mm_map m;
    int r = mm_map_now(&m);
    if (r < 0 || prctl(PR_SET_MM, PR_SET_MM_MAP, &m, sizeof(m), 0) < 0) {
        log_msg(LOG_ERR, r < 0 ? -r : errno, "PR_SET_MM_MAP: cannot be a spare executor");
        return EXE_LAUNCH_FAILED;
    }
    if (own_net) { /* a launch's step 5, ahead: the namespace starts with lo down */
        _cleanup_berr_ struct berr *err = NULL;
        if (iso_net_lo_up(&err) < 0) {
            log_error("%s", berr_msg(err)); /* the agent learns it at the launch: EOF */
            return EXE_LAUNCH_FAILED;
        }
        e->lo_up = true;
    }
    size_t at, size = PATH_MAX + 4096;
    char *page = cmdline_page(argv0, size, &at);
    if (!page) {
        log_msg(LOG_ERR, errno ? errno : ENAMETOOLONG, "the command line's page");
        return EXE_LAUNCH_FAILED;
    }
    union {
        char buf[CMSG_SPACE(3 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {.iov_base = page + at, .iov_len = PATH_MAX + 1};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = u.buf,
                        .msg_controllen = sizeof(u.buf)};
    ssize_t n;
    while ((n = recvmsg(0, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
    int fds[3] = {-1, -1, -1};
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len == CMSG_LEN(sizeof(fds)))
        memcpy(fds, CMSG_DATA(c), sizeof(fds));
    if (n < 2 || fds[2] < 0 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
        return 0; /* EOF (or not the agent's message): no launch for us */
    unsigned flags = (unsigned char) page[at];
    page[at] = 0; /* the prefix's NUL again; the runtime dir follows, NUL-terminated */
    page[at + (size_t) n] = 0;
    e->runtime_dir = page + at + 1;
    m.brk = (uint64_t) syscall(SYS_brk, 0); /* what moved since the probe: the heap's end */
    m.arg_start = (uint64_t) (uintptr_t) page;
    m.arg_end = (uint64_t) (uintptr_t) (page + at + (size_t) n + 1);
    if (prctl(PR_SET_MM, PR_SET_MM_MAP, &m, sizeof(m), 0) < 0)
        log_msg(LOG_WARNING, errno, "name the container in the command line");
    /* what `--runtime-dir` is spawned with: 0 the go pipe or /dev/null, 1 and 2 the log,
     * 4 the template; the socket goes with the dup2 onto 0 */
    if (dup2(fds[0], 1) < 0 || dup2(fds[0], 2) < 0 || dup2(fds[2], 0) < 0) {
        log_msg(LOG_ERR, errno, "take the launch's fds");
        return EXE_LAUNCH_FAILED;
    }
    close(fds[0]);
    close(fds[2]);
    if (flags & ISO_SPARE_TEMPLATE)
        e->template_fd = fds[1];
    else
        close(fds[1]);
    return exe_run(e);
}
