/* SPDX-License-Identifier: Apache-2.0 */
/* executor/exec.c - `berth-executor --exec-pid PID -- ARGV`, behind `berthctl exec`: join
 * the namespaces of a running sandbox (through a pidfd of its executor), fork so the child
 * lands in its pid namespace, and run ARGV there as the task's user with the task's
 * capabilities and seccomp filter. The agent already put us in the sandbox's cgroups. */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "executor/executor.h"

/* Namespaces of the sandbox other than pid; joined by the child only, so the parent keeps
 * the host's mount namespace (and its /proc) for its own bookkeeping. */
static int exec_other_ns(const struct exe *e)
{
    unsigned f = e->spec.flags;
    return (f & ISO_NS_MOUNT ? CLONE_NEWNS : 0) | (f & ISO_NS_IPC ? CLONE_NEWIPC : 0) |
           (f & ISO_NS_UTS ? CLONE_NEWUTS : 0) | (f & ISO_NS_NET ? CLONE_NEWNET : 0);
}

/* iso_task_prepare's enter_userns: join the task's user namespace (an fd of it). */
static int exec_enter_userns(void *arg, struct berr **err)
{
    int fd = *(int *) arg;
    if (fd < 0 || setns(fd, CLONE_NEWUSER) < 0)
        return berr_set(err, fd < 0 ? ENOENT : errno, "join the task's user namespace");
    return 0;
}

/* The user namespace of the sandbox's task: the executor's (first) child holds it, the
 * executor itself stays in the host's. An O_RDONLY fd of it, or -errno. */
static int exec_open_userns(pid_t executor, struct berr **err)
{
    char path[96], buf[64];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int) executor, (int) executor);
    ssize_t n = read_file_at(AT_FDCWD, path, buf, sizeof(buf));
    uint64_t child;
    buf[n > 0 ? strcspn(buf, " ") : 0] = 0;
    if (n <= 0 || parse_u64(buf, &child) < 0)
        return berr_setx(err, ESRCH, "the sandbox's task is gone (no child in '%s')", path);
    snprintf(path, sizeof(path), "/proc/%llu/ns/user", (unsigned long long) child);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return berr_set(err, errno, "open '%s'", path);
    return fd;
}

__attribute__((noreturn)) static void exec_child(struct exe *e, int pidfd, int userns_fd,
                                                 char **argv)
{
    struct berr *err = NULL;
    exe_signals_default();
    setsid();
    int ns = exec_other_ns(e);
    /* setns with a pidfd joins several namespaces at once (5.8+); joining the mount
     * namespace also moves root and cwd to the sandbox's root. */
    if (ns && setns(pidfd, ns) < 0) {
        berr_set(&err, errno, "join the namespaces of the sandbox");
    } else if (chdir(e->spec.sandbox_dir) < 0) {
        berr_set(&err, errno, "chdir '%s'", e->spec.sandbox_dir);
    } else if (iso_task_prepare(&e->spec, &e->plan, exec_enter_userns, &userns_fd, &err) == 0) {
        environ = e->envp;
        execvpe(argv[0], argv, e->envp);
        berr_set(&err, errno, "exec '%s'", argv[0]);
    }
    /* stderr is the agent's pipe: the message goes straight to the user */
    dprintf(STDERR_FILENO, "berth-executor: %s\n", berr_msg(err));
    _exit(EXE_LAUNCH_FAILED);
}

/* Fork the child into the sandbox's pid namespace: setns(CLONE_NEWPID) only changes where
 * our children are born, and we switch back right after the fork. Returns the child's
 * pid or -errno with err set. */
static pid_t exec_spawn(struct exe *e, pid_t pid, char **argv, struct berr **err)
{
    _cleanup_close_ int pidfd = pidfd_open(pid, 0);
    if (pidfd < 0)
        return berr_set(err, errno, "pidfd_open %d", (int) pid);
    bool newpid = e->spec.flags & ISO_NS_PID;
    _cleanup_close_ int own = -1, userns = -1;
    if (e->spec.userns_base && (userns = exec_open_userns(pid, err)) < 0)
        return userns;
    if (newpid) {
        own = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
        if (own < 0)
            return berr_set(err, errno, "open /proc/self/ns/pid");
        if (setns(pidfd, CLONE_NEWPID) < 0)
            return berr_set(err, errno, "join the pid namespace of pid %d", (int) pid);
    }
    pid_t child = fork();
    if (child == 0)
        exec_child(e, pidfd, userns, argv);
    int fork_errno = errno;
    if (newpid && setns(own, CLONE_NEWPID) < 0)
        log_msg(LOG_WARNING, errno, "exec: return to our pid namespace");
    if (child < 0)
        return berr_set(err, fork_errno, "fork");
    return child;
}

/* End the way the command ended: by its signal (so the agent reports a signal, not an exit
 * code 128+N that a command may also exit with: review L7), else with its exit code. */
static int exec_end_like(int st)
{
    if (!WIFSIGNALED(st))
        return WEXITSTATUS(st);
    int sig = WTERMSIG(st);
    struct rlimit none = {0, 0};
    (void) setrlimit(RLIMIT_CORE, &none);
    signal(sig, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    raise(sig);
    return 128 + sig; /* a signal that does not end a process (SIGCHLD...) */
}

int exe_exec(struct exe *e, pid_t pid, char **argv)
{
    /* First, before we hold anything of the sandbox: not dumpable, so no process of the
     * task (same uid, its own capabilities) can ptrace us or the child we fork into its
     * namespaces before that child's seccomp filter is loaded (review H1). execve resets it
     * for the command. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
        log_msg(LOG_ERR, errno, "exec: PR_SET_DUMPABLE");
        return EXE_LAUNCH_FAILED;
    }
    _cleanup_berr_ struct berr *err = NULL;
    if (exe_load(e, &err) < 0 || iso_task_plan_build(&e->spec, &e->plan, &err) < 0) {
        log_error("exec: %s", berr_msg(err));
        return EXE_LAUNCH_FAILED;
    }
    sigset_t mask;
    sigemptyset(&mask);
    const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
        sigaddset(&mask, sigs[i]);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    pid_t child = exec_spawn(e, pid, argv, &err);
    if (child < 0) {
        log_error("exec: %s", berr_msg(err));
        return EXE_LAUNCH_FAILED;
    }

    /* Forward the agent's signals to the command's session until it ends. */
    for (;;) {
        siginfo_t si;
        if (sigwaitinfo(&mask, &si) < 0)
            continue;
        if (si.si_signo != SIGCHLD) {
            (void) kill(-child, si.si_signo);
            continue;
        }
        int st;
        pid_t r = waitpid(child, &st, WNOHANG);
        if (r == child)
            return exec_end_like(st);
    }
}
