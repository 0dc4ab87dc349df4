/* executor/exec.c - `berth-executor --exec-pid PID -- ARGV`, behind `berthctl exec`: join
 * the namespaces of a running sandbox (through a pidfd of its executor), fork so the child
 * lands in its pid namespace, and run ARGV there as the task's user with the task's
 * capabilities and seccomp filter. The agent already put us in the sandbox's cgroups. */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/pidfd.h>
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

__attribute__((noreturn)) static void exec_child(struct exe *e, int pidfd, char **argv)
{
    struct berr *err = NULL;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++)
        (void) signal(sig, SIG_DFL);
    setsid();
    int ns = exec_other_ns(e);
    /* setns with a pidfd joins several namespaces at once (5.8+); joining the mount
     * namespace also moves root and cwd to the sandbox's root. */
    if (ns && setns(pidfd, ns) < 0) {
        berr_set(&err, errno, "join the namespaces of the sandbox");
    } else if (chdir(e->spec.sandbox_dir) < 0) {
        berr_set(&err, errno, "chdir '%s'", e->spec.sandbox_dir);
    } else if (iso_task_prepare(&e->spec, &e->user, &err) == 0) {
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
    _cleanup_close_ int own = -1;
    if (newpid) {
        own = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
        if (own < 0)
            return berr_set(err, errno, "open /proc/self/ns/pid");
        if (setns(pidfd, CLONE_NEWPID) < 0)
            return berr_set(err, errno, "join the pid namespace of pid %d", (int) pid);
    }
    pid_t child = fork();
    if (child == 0)
        exec_child(e, pidfd, argv);
    int fork_errno = errno;
    if (newpid && setns(own, CLONE_NEWPID) < 0)
        log_msg(LOG_WARNING, errno, "exec: return to our pid namespace");
    if (child < 0)
        return berr_set(err, fork_errno, "fork");
    return child;
}

int exe_exec(struct exe *e, pid_t pid, char **argv)
{
    _cleanup_berr_ struct berr *err = NULL;
    if (exe_load(e, &err) < 0) {
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
            return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
    }
}
