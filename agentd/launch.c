/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/launch.c - starts berth-executor as pid 1 of a new sandbox (and the agent's other
 * children: `exec`'s executor, the trash's rm, the template's builder): a clone with the
 * namespace flags and CLONE_PIDFD, so the executor is born in its namespaces - all but the
 * mount namespace, which it makes as a copy of the agent's sandbox template (template.c),
 * passed as its fd 4. Where no cgroup v2 has to be entered at birth the clone shares the
 * agent's memory and the agent waits for the exec (CLONE_VM | CLONE_VFORK, as posix_spawn
 * does): nothing of the agent's memory is copied, and nothing torn down again at the exec
 * (issue #18: 1 ms of each launch). On v2 a clone3 with CLONE_INTO_CGROUP, which glibc's
 * clone() cannot pass, copies it. Everything the child needs is prepared before the clone;
 * the child only calls async-signal-safe functions and writes nothing but its own stack
 * (STYLE.md: curl resolver threads may hold malloc locks). The child shares the agent's fd
 * table (CLONE_FILES) only until its first call, which unshares it keeping the low fds alone
 * (close_range CLOSE_RANGE_UNSHARE): the fds it needs were put into a few low slots reserved
 * at start (agent_spawn_init). Without that the child copied the agent's table, 17 fds per
 * live task, and closed each of them at its execve while the agent waited: with 1,000 tasks
 * a third of the agent's CPU and most of a launch's time on the loop (issue #18). The
 * executors of launches are spawned by a thread of their own (spawner.c), so that the one
 * waiting for their exec is not the loop; the loop's other spawns take turns with it. lifecycle.c
 * decides when to launch; the executor does the rest. */
#include <fcntl.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "agentd/agent.h"

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* fds the child dup2()s into 0..4 (3 and 4 may be -1); all CLOEXEC and >= 4, so that a
 * dup2 never clobbers one not yet taken (4 is taken last, and may be 4 itself) */
struct child_fds {
    int fd[5];
    int err_wr;
    int cg_fds[16]; /* v1: hierarchies to join by writing "0" to "tasks" */
    size_t n_cg;
    unsigned keep_below;       /* > 0: the fd table is shared; unshare it with fds < this only */
    const atomic_bool *cancel; /* struct spawn's, with CLONE_VM only */
    const char *path;
    char *const *argv, *const *envp;
};

/* The slots: low fds holding /dev/null (hold) but while a spawn puts its child's fds there
 * (5 + err_wr + 16 cgroup fds). Reserved before the agent opens much (setup's start). */
#define SPAWN_SLOTS 24
static int slot_fd[SPAWN_SLOTS], slot_hold = -1;
static unsigned slots_end; /* every slot is below it */

int agent_spawn_init(struct berr **err)
{
    slot_hold = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (slot_hold < 0)
        return berr_set(err, errno, "open '/dev/null'");
    for (int i = 0; i < SPAWN_SLOTS; i++) {
        slot_fd[i] = fcntl(slot_hold, F_DUPFD_CLOEXEC, 5);
        if (slot_fd[i] < 0)
            return berr_set(err, errno, "reserve fds");
        if ((unsigned) slot_fd[i] >= slots_end)
            slots_end = (unsigned) slot_fd[i] + 1;
    }
    return 0;
}

/* Put *fd into the next free slot (*used counts them); -1 stays -1. */
static int to_slot(int *fd, size_t *used)
{
    if (*fd < 0)
        return 0;
    if (*used >= SPAWN_SLOTS)
        return -(errno = EMFILE);
    if (dup3(*fd, slot_fd[*used], O_CLOEXEC) < 0)
        return -errno;
    *fd = slot_fd[(*used)++];
    return 0;
}

/* Back to /dev/null: the files go when their owners close them. */
static void slots_release(size_t used)
{
    for (size_t i = 0; i < used; i++)
        (void) dup3(slot_hold, slot_fd[i], O_CLOEXEC);
}

static void __attribute__((noreturn)) child_fail(int err_wr, int e)
{
    (void) !write(err_wr, &e, sizeof(e));
    _exit(127);
}

/* Runs in the cloned child: async-signal-safe calls only. Sharing the agent's memory, it
 * writes nothing but its own stack and errno (the suspended thread's, which the agent does
 * not read after a clone that succeeded). */
static int child_exec(void *arg)
{
    const struct child_fds *f = arg;
    thread_priority_restore(); /* not the loop's raised priority: the process's */
    /* first: our own fd table, with the low fds alone (the slots, 0..4) */
    if (f->keep_below && syscall(SYS_close_range, f->keep_below, ~0U, CLOSE_RANGE_UNSHARE) < 0)
        child_fail(f->err_wr, errno);
    for (size_t i = 0; i < f->n_cg; i++) {
        /* v1: move ourselves (one thread) before exec; see iso_cgroup_self_attach_fds */
        int t = openat(f->cg_fds[i], "tasks", O_WRONLY | O_CLOEXEC);
        if (t < 0 || write(t, "0", 1) != 1)
            child_fail(f->err_wr, errno);
        close(t);
    }
    /* Every disposition back to the default: an ignored signal survives execve (ours:
     * SIGPIPE; a shell's: dash hands its children 32 and 33 ignored). The system call, not
     * sigaction(), which refuses glibc's own two (32, 33). The kernel's struct sigaction
     * all zero is SIG_DFL, no flags, an empty mask, whatever its layout. */
    static const unsigned long dfl[4];
    for (int s = 1; s <= 64; s++)
        (void) syscall(SYS_rt_sigaction, s, dfl, NULL, 8);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int i = 0; i < 5; i++) {
        if (f->fd[i] < 0)
            continue;
        /* dup2 onto itself would leave it close-on-exec */
        if (f->fd[i] == i ? fcntl(i, F_SETFD, 0) < 0 : dup2(f->fd[i], i) < 0)
            child_fail(f->err_wr, errno);
    }
    /* everything else the agent holds must not leak into the sandbox */
    for (unsigned i = 3; i < 5; i++)
        if (f->fd[i] < 0)
            syscall(SYS_close_range, i, i, CLOSE_RANGE_CLOEXEC);
    syscall(SYS_close_range, 5U, ~0U, CLOSE_RANGE_CLOEXEC);
    if (f->cancel && atomic_load(f->cancel)) /* killed while it was spawned (a frozen cgroup) */
        child_fail(f->err_wr, ECANCELED);
    execve(f->path, (char *const *) f->argv, (char *const *) f->envp);
    child_fail(f->err_wr, errno);
}

/* The child's stack for the shared-memory clone: one, reused (the agent waits for each
 * child's exec before the next clone), with a guard page below it. */
#define CHILD_STACK (64u << 10)
static void *child_stack_top(void)
{
    static void *top;
    if (!top)
        top = stack_map(CHILD_STACK);
    return top;
}

int agent_dup_high(int fd)
{
    if (fd < 0)
        return fd;
    int r = fcntl(fd, F_DUPFD_CLOEXEC, 4);
    int saved = errno;
    close(fd);
    errno = saved;
    return r;
}

int agent_pipe_high(int ret[2])
{
    int p[2];
    ret[0] = ret[1] = -1;
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    ret[0] = agent_dup_high(p[0]);
    ret[1] = agent_dup_high(p[1]);
    if (ret[0] >= 0 && ret[1] >= 0)
        return 0;
    int e = errno;
    closep(&ret[0]);
    closep(&ret[1]);
    return -e;
}

/* The slots and the child's stack are the spawn's: one at a time, the spawner thread's
 * (the executors of launches) or the loop's (the other children). */
static pthread_mutex_t spawn_lock = PTHREAD_MUTEX_INITIALIZER;

static int spawn_locked(struct agent *a, const struct spawn *sp, pid_t *ret_pid, int *ret_pidfd,
                        struct berr **err)
{
    char *envp[] = {(char *) "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    NULL};
    _cleanup_close_ int err_rd = -1, err_wr = -1, pidfd = -1;
    int p[2];
    int r = agent_pipe_high(p);
    if (r < 0)
        return berr_set(err, -r, "exec pipe");
    err_rd = p[0];
    err_wr = p[1];
    int cgfd = sp->cg ? iso_cgroup_clone_fd(sp->cg) : -1;
    struct child_fds cf = {.fd = {sp->fd[0], sp->fd[1], sp->fd[2], sp->fd[3],
                                  sp->template_fd > 0 ? sp->template_fd : -1},
                           .err_wr = err_wr,
                           .path = sp->path,
                           .argv = sp->argv,
                           .envp = envp};
    if (sp->cg && cgfd < 0)
        cf.n_cg = iso_cgroup_self_attach_fds(sp->cg, cf.cg_fds, ARRAY_SIZE(cf.cg_fds));
    /* the child's fds into the slots, and the child shares our table till it unshares it */
    size_t used = 0;
    if (slot_hold >= 0) {
        for (int i = 0; i < 5 && r == 0; i++)
            r = to_slot(&cf.fd[i], &used);
        if (r == 0)
            r = to_slot(&cf.err_wr, &used);
        for (size_t i = 0; i < cf.n_cg && r == 0; i++)
            r = to_slot(&cf.cg_fds[i], &used);
        if (r < 0) {
            slots_release(used);
            return berr_set(err, -r, "put fds into the spawn slots");
        }
        cf.keep_below = slots_end;
    }
    uint64_t share = cf.keep_below ? CLONE_FILES : 0;

    long pid;
    void *stack = cgfd < 0 ? child_stack_top() : NULL;
    cf.cancel = stack ? sp->cancel : NULL;
    if (stack) {
        /* returns once the child exec'd or died: its error, if any, is in the pipe now */
        pid = clone(child_exec, stack,
                    CLONE_VM | CLONE_VFORK | CLONE_PIDFD | (int) (sp->ns_flags | share) | SIGCHLD,
                    &cf, &pidfd);
    } else {
        /* CLONE_VFORK with the shared table: we touch it only after the child's exec */
        struct clone_args ca = {
                .flags = CLONE_PIDFD | sp->ns_flags | (cgfd >= 0 ? CLONE_INTO_CGROUP : 0) |
                         (share ? share | CLONE_VFORK : 0),
                .pidfd = (uint64_t) (uintptr_t) &pidfd,
                .exit_signal = SIGCHLD,
                .cgroup = cgfd >= 0 ? (uint64_t) cgfd : 0,
        };
        pid = syscall(SYS_clone3, &ca, sizeof(ca));
        if (pid == 0)
            child_exec(&cf);
    }
    int clone_errno = errno;
    /* the child exec'd, died or was never born: its table is its own; the slots' copy of
     * err_wr must go before we wait for its EOF */
    slots_release(used);
    if (pid < 0)
        return berr_set(err, clone_errno, "clone '%s'", sp->path);

    closep(&err_wr);
    if (!(sp->ns_flags & CLONE_NEWNS) && !sp->spare) /* the template's builder: not a launch */
        agent_fault(a, "spawn-after-clone");
    /* EOF means execve succeeded (the pipe is CLOEXEC); an int is the child's errno */
    int e = 0;
    ssize_t n;
    while ((n = read(err_rd, &e, sizeof(e))) < 0 && errno == EINTR)
        ;
    if (n == (ssize_t) sizeof(e)) {
        pid_t failed = (pid_t) pid;
        killp(&failed); /* it never ran: kill and reap it */
        return berr_set(err, e, "start '%s' (join its cgroups, exec)", sp->path);
    }
    *ret_pid = (pid_t) pid;
    *ret_pidfd = TAKE_FD(pidfd);
    return 0;
}

int agent_spawn(struct agent *a, const struct spawn *sp, pid_t *ret_pid, int *ret_pidfd,
                struct berr **err)
{
    pthread_mutex_lock(&spawn_lock);
    int r = spawn_locked(a, sp, ret_pid, ret_pidfd, err);
    pthread_mutex_unlock(&spawn_lock);
    return r;
}

/* Grow the fd table to the agent's fd limit (at most 64k slots: 512 kB of the kernel's) now,
 * while one thread holds it: the kernel frees an outgrown table only after an RCU grace
 * period when threads share it, and the loop would wait for one at each doubling (10-17 ms
 * turns under load: docs/design.md, departure 21). */
void agent_grow_fd_table(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < 64)
        return;
    int top = (int) (rl.rlim_cur < 65536 ? rl.rlim_cur : 65536) - 1;
    int fd = slot_hold >= 0 ? fcntl(slot_hold, F_DUPFD_CLOEXEC, top) : -1;
    if (fd >= 0)
        close(fd);
}

/* /dev/null, opened once: what a spawned child's unused stdio gets. */
int agent_spawn_null(void)
{
    return slot_hold;
}
