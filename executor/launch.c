/* SPDX-License-Identifier: Apache-2.0 */
/* executor/launch.c - berth-executor's setup, in the order docs/design/sandbox.md gives:
 * read the spec, shield itself from the OOM killer, resolve the user, prepare the output
 * files, enter the sandbox (isolator/mount.c), then fork the task child, which finishes
 * with iso_task_prepare and execve and reports failures over a CLOEXEC pipe.
 * supervise.c takes over once the task runs; status.c writes the reports. */
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "executor/executor.h"

#define EXE_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static bool env_has(char **env, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
            return true;
    return false;
}

/* spec env plus PATH and HOME when the spec does not set them. HOME is the home the agent
 * found in the host's passwd, "/" for users without an entry. */
static char **exe_build_env(const struct iso_spec *s)
{
    size_t n = 0;
    while (s->env && s->env[n])
        n++;
    char **env = xcalloc(n + 3, sizeof(char *));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        env[k++] = xstrdup(s->env[i]);
    if (!env_has(env, "PATH"))
        env[k++] = xstrdup(EXE_PATH);
    if (!env_has(env, "HOME"))
        env[k++] = xasprintf("HOME=%s", s->home && *s->home ? s->home : "/");
    return env;
}

int exe_load(struct exe *e, struct berr **err)
{
    _cleanup_free_ char *path = xasprintf("%s/spec.json", e->runtime_dir);
    _cleanup_free_ char *json = NULL;
    int r = read_file_alloc(path, 1 << 20, &json, NULL);
    if (r < 0)
        return berr_set(err, -r, "read '%s'", path);
    if (iso_spec_from_json(json, &e->spec, err) < 0)
        return berr_wrap(err, "'%s'", path);
    e->user = e->spec.ids; /* resolved by the agent: no NSS here */
    e->envp = exe_build_env(&e->spec);
    return 0;
}

/* The task writes its output straight into the sandbox, so it survives an agent restart
 * and needs no copying by us. */
static int exe_open_output(struct exe *e, const char *name, struct berr **err)
{
    _cleanup_free_ char *p = xasprintf("%s/%s", e->spec.sandbox_dir, name);
    _cleanup_close_ int fd =
            open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0640);
    if (fd < 0)
        return berr_set(err, errno, "open '%s'", p);
    if (fchown(fd, iso_host_id(&e->spec, e->user.uid), iso_host_id(&e->spec, e->user.gid)) < 0)
        return berr_set(err, errno, "chown '%s'", p);
    return TAKE_FD(fd);
}

/* "<parent>/<container>/<file>": where "<container>/<file>" begins, or NULL. */
static const char *join_rel(const char *path)
{
    const char *file = strrchr(path, '/'), *ctr = file;
    while (ctr && ctr > path && *--ctr != '/')
        ;
    return ctr && ctr > path && *ctr == '/' ? ctr + 1 : NULL;
}

/* The agent makes the task's cgroups (and in bridge mode the veth, address and route, from
 * outside) while we build the sandbox, and says "go" on fd 0 (a pipe) once they are there,
 * so the task never starts without them. EOF instead means the agent gave up (it kills us
 * then anyway, or is gone). Then the cgroup files, under the parents opened before. */
static int exe_wait_go(struct exe *e, struct berr **err)
{
    char c;
    ssize_t n;
    while ((n = read(0, &c, 1)) < 0 && errno == EINTR)
        ;
    if (n != 1)
        return berr_setx(err, n < 0 ? errno : ECANCELED,
                         "the agent did not make the task's cgroups%s",
                         e->spec.net == ISO_NET_BRIDGE ? " and network" : "");
    for (size_t i = 0; i < e->n_join; i++) {
        const char *rel = join_rel(e->spec.cgroup_join[i]);
        int fd = openat(e->join_fd[i], rel, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            return berr_set(err, errno, "open '%s'", e->spec.cgroup_join[i]);
        close(e->join_fd[i]);
        e->join_fd[i] = fd;
    }
    return 0;
}

/* Everything up to the fork: steps 2-6. Errors leave err set. */
static int exe_setup(struct exe *e, struct berr **err)
{
    /* 2. Remember the agent's oom_score_adj for the task, then protect ourselves: an OOM in
     * the sandbox must kill the task, not the process that reports its end. */
    ssize_t n = read_file_at(AT_FDCWD, "/proc/self/oom_score_adj", e->oom_adj, sizeof(e->oom_adj));
    if (n <= 0)
        snprintf(e->oom_adj, sizeof(e->oom_adj), "0");
    int r = write_file_at(AT_FDCWD, "/proc/self/oom_score_adj", "-999");
    if (r == -EACCES || r == -EPERM) /* lowering needs CAP_SYS_RESOURCE: degrade, warn */
        log_msg(LOG_WARNING, -r, "cannot protect the executor with oom_score_adj -999");
    else if (r < 0)
        return berr_set(err, -r, "set oom_score_adj");

    /* 3 was exe_load. 4. The sandbox belongs to the task's user (on the host: the uid its
     * user namespace maps it to). */
    if (chown(e->spec.sandbox_dir, iso_host_id(&e->spec, e->user.uid),
              iso_host_id(&e->spec, e->user.gid)) < 0)
        return berr_set(err, errno, "chown '%s'", e->spec.sandbox_dir);
    if ((e->out_fd = exe_open_output(e, "stdout", err)) < 0)
        return e->out_fd;
    if ((e->err_fd = exe_open_output(e, "stderr", err)) < 0)
        return e->err_fd;
    if ((r = exe_relay_setup(e, err)) < 0)
        return r;

    /* The parents of the task's cgroups, while the host's cgroupfs is still ours to open
     * (the agent may still be making the cgroups: exe_wait_go): the executor itself lives
     * in the agent's supervisor cgroup (issue #18), its work and its end are not the task's;
     * the task child joins through these before anything else. */
    e->n_join = 0;
    for (size_t i = 0; e->spec.cgroup_join && e->spec.cgroup_join[i]; i++) {
        const char *p = e->spec.cgroup_join[i], *rel = join_rel(p);
        if (e->n_join == ARRAY_SIZE(e->join_fd))
            return berr_setx(err, E2BIG, "more than %zu cgroup hierarchies", e->n_join);
        if (!rel)
            return berr_setx(err, EINVAL, "cgroup file '%s' is not <parent>/<container>/<file>", p);
        _cleanup_free_ char *dir = xstrndup(p, (size_t) (rel - 1 - p));
        int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return berr_set(err, errno, "open '%s'", dir);
        e->join_fd[e->n_join++] = fd;
    }

    /* 5. The task's own network namespace (none, bridge) starts with lo down. */
    if (e->spec.net != ISO_NET_HOST && !e->lo_up && (r = iso_net_lo_up(err)) < 0)
        return r;
    r = iso_sandbox_enter(&e->spec, e->template_fd, err);
    closep(&e->template_fd); /* nothing of it may reach the task */
    if (r < 0)
        return r;
    if ((r = exe_wait_go(e, err)) < 0)
        return r;

    /* 6. Signals arrive through a signalfd so the loop handles them in order. */
    sigset_t mask;
    sigemptyset(&mask);
    const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
        sigaddset(&mask, sigs[i]);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        return berr_set(err, errno, "block signals");
    if ((e->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
        return berr_set(err, errno, "signalfd");
    /* Not dumpable: a task cannot ptrace us or read our memory even with matching uid. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        return berr_set(err, errno, "PR_SET_DUMPABLE");
    e->pid1 = getpid() == 1;
    if (!e->pid1 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        return berr_set(err, errno, "PR_SET_CHILD_SUBREAPER");
    return 0;
}

/* Child side: report errnum + message on the error pipe and die. Single-threaded process,
 * so the message may be formatted with stdio. */
__attribute__((noreturn)) static void child_fail(int fd, int errnum, const char *msg)
{
    (void) !write(fd, &errnum, sizeof(errnum));
    (void) !write(fd, msg, strlen(msg));
    _exit(EXE_LAUNCH_FAILED);
}

/* The two pipes of the user namespace handshake: the child says it has unshared, the parent
 * that the maps are written. */
struct userns_sync {
    int ready[2], go[2];
};

/* Task child side (iso_task_prepare's enter_userns). */
static int child_enter_userns(void *arg, struct berr **err)
{
    struct userns_sync *u = arg;
    char c = 1;
    if (unshare(CLONE_NEWUSER) < 0)
        return berr_set(err, errno, "unshare(CLONE_NEWUSER)");
    if (write(u->ready[1], &c, 1) != 1)
        return berr_set(err, errno, "tell the executor");
    if (read(u->go[0], &c, 1) != 1)
        return berr_setx(err, EIO, "the executor did not write the uid and gid maps");
    return 0;
}

__attribute__((noreturn)) static void exe_task_child(struct exe *e, int errfd,
                                                     struct userns_sync *us)
{
    exe_signals_default();
    setsid(); /* its own session: kill(-pgid) reaches the task when we are not pid 1 */

    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0)
        child_fail(errfd, errno, "open /dev/null");
    /* the files, or the relay's pipes when the output is capped (relay.c) */
    int out = e->relay[0].wr >= 0 ? e->relay[0].wr : e->out_fd;
    int errout = e->relay[1].wr >= 0 ? e->relay[1].wr : e->err_fd;
    if (dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(errout, 2) < 0)
        child_fail(errfd, errno, "set up stdio");
    if (write_file_at(AT_FDCWD, "/proc/self/oom_score_adj", e->oom_adj) < 0)
        child_fail(errfd, errno, "restore oom_score_adj");

    /* the parent's ends: holding them would hide the parent's death from our read */
    if (us->ready[0] >= 0)
        close(us->ready[0]);
    if (us->go[1] >= 0)
        close(us->go[1]);
    struct berr *err = NULL;
    if (iso_task_prepare(&e->spec, &e->plan, child_enter_userns, us, &err) < 0)
        child_fail(errfd, berr_errno(err), berr_msg(err));
    /* last, just before the execve: the task's cgroups, so what it costs to get here is
     * the executor's (issue #18: a 0.001-CPU task waited out periods of its quota for it).
     * Writing "0" moves the writer; one thread, so "tasks" on v1 moves it whole, without
     * the RCU grace period a write of a pid to cgroup.procs waits for. The fds were opened
     * by the executor as root, which is what the kernel checks: the user switch, dropped
     * capabilities and seccomp filter above do not stand in the way. */
    for (size_t i = 0; i < e->n_join; i++)
        if (write(e->join_fd[i], "0", 1) != 1)
            child_fail(errfd, errno, "join the task's cgroups");
    /* execvpe searches the caller's PATH, not envp's: make them the same. */
    environ = e->envp;
    execvpe(e->spec.argv[0], e->spec.argv, e->envp);
    int errnum = errno;
    char msg[512];
    snprintf(msg, sizeof(msg), "exec '%s': %s", e->spec.argv[0], strerror(errnum));
    child_fail(errfd, errnum, msg);
}

struct task_arg {
    struct exe *e;
    int *pfd; /* the error pipe: the child writes pfd[1] */
    struct userns_sync *us;
};

static int task_child_main(void *arg)
{
    const struct task_arg *ta = arg;
    close(ta->pfd[0]);
    exe_task_child(ta->e, ta->pfd[1], ta->us);
}

#define TASK_STACK (256u << 10)

/* The task child, sharing our memory until its execve (CLONE_VM | CLONE_VFORK, as
 * posix_spawn does; we are stopped meanwhile): no copy of our address space is made, to be
 * faulted in page by page and torn down again by its exec, a teardown the task's cgroups,
 * joined just before the exec, were charged for (issue #18). Its stack is a mapping of
 * ours with a guard page; its fd table, signal handlers, credentials and limits are its
 * own. environ, which it sets for execvpe, is ours again after. With a user namespace the
 * child waits for us to write its maps: fork() then. Returns its pid, or -1 (errno). */
static pid_t spawn_task(struct task_arg *ta)
{
    if (ta->e->spec.userns_base) {
        pid_t pid = fork();
        if (pid == 0)
            task_child_main(ta);
        return pid;
    }
    void *stack = stack_map(TASK_STACK);
    if (!stack)
        return -1;
    char **env = environ;
    pid_t pid = clone(task_child_main, stack, CLONE_VM | CLONE_VFORK | SIGCHLD, ta);
    int saved = errno;
    environ = env;
    stack_unmap(stack, TASK_STACK);
    errno = saved;
    return pid;
}

/* Wait for the child's exec: EOF on the CLOEXEC pipe means execve succeeded. Returns 0,
 * or -errno with *ret_msg (malloc'd) saying why. */
static int exe_wait_exec(int fd, char **ret_msg)
{
    char buf[1024 + sizeof(int)];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t) n;
        if (len == sizeof(buf) - 1)
            break;
    }
    if (len == 0)
        return 0;
    int errnum = EIO;
    if (len >= sizeof(int))
        memcpy(&errnum, buf, sizeof(int));
    buf[len] = 0;
    *ret_msg = xstrdup(len > sizeof(int) ? buf + sizeof(int) : "launch failed");
    return -(errnum > 0 ? errnum : EIO);
}

static int exe_fail(struct exe *e, struct berr *err)
{
    exe_report_launch_error(e, berr_errno(err), berr_msg(err));
    return EXE_LAUNCH_FAILED;
}

int exe_run(struct exe *e)
{
    _cleanup_berr_ struct berr *err = NULL;
    e->runtime_fd = open(e->runtime_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (e->runtime_fd < 0) {
        berr_set(&err, errno, "open runtime dir '%s'", e->runtime_dir);
        return exe_fail(e, err);
    }
    if (exe_load(e, &err) < 0 || exe_setup(e, &err) < 0 ||
        iso_task_plan_build(&e->spec, &e->plan, &err) < 0)
        return exe_fail(e, err);

    /* 7. */
    int pfd[2];
    struct userns_sync us = {{-1, -1}, {-1, -1}};
    if (pipe2(pfd, O_CLOEXEC) < 0 ||
        (e->spec.userns_base && (pipe2(us.ready, O_CLOEXEC) < 0 || pipe2(us.go, O_CLOEXEC) < 0))) {
        berr_set(&err, errno, "pipe");
        return exe_fail(e, err);
    }
    /* the task's bounding set and seccomp filter, on us (we mount, join and exec nothing
     * from here on) so the child inherits them instead of paying for them in its cgroup */
    if (iso_task_plan_enter(&e->spec, &e->plan, &err) < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return exe_fail(e, err);
    }
    struct task_arg ta = {e, pfd, &us};
    pid_t pid = spawn_task(&ta);
    if (pid < 0) {
        berr_set(&err, errno, "fork");
        close(pfd[0]);
        close(pfd[1]);
        return exe_fail(e, err);
    }
    close(pfd[1]);
    e->task_pid = pid;
    for (size_t i = 0; i < e->n_join; i++)
        closep(&e->join_fd[i]);
    for (int i = 0; i < 2; i++) /* only the task writes them: EOF once it is gone */
        closep(&e->relay[i].wr);
    if (e->spec.userns_base) {
        /* the child unshares its user namespace, we map it: EOF instead of its byte means
         * it failed before, and its error is on pfd */
        char c;
        close(us.ready[1]);
        close(us.go[0]);
        if (read(us.ready[0], &c, 1) == 1) {
            _cleanup_berr_ struct berr *merr = NULL;
            if (iso_userns_map(pid, e->spec.userns_base, &merr) < 0)
                log_error("task child: %s", berr_msg(merr)); /* the child then fails */
            else if (write(us.go[1], &c, 1) != 1)
                log_msg(LOG_ERR, errno, "task child: cannot release it");
        }
        close(us.ready[0]);
        close(us.go[1]);
    }

    /* 8. */
    _cleanup_free_ char *msg = NULL;
    int r = exe_wait_exec(pfd[0], &msg);
    close(pfd[0]);
    if (r < 0) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        exe_report_launch_error(e, -r, msg);
        return EXE_LAUNCH_FAILED;
    }
    log_info("task '%s' running as pid %d (uid %u)", e->spec.argv[0], (int) pid,
             (unsigned) e->user.uid);
    exe_report_running(e);
    /* The executor stays for the task's whole life: give back what the set-up touched
     * (libseccomp's compile, yajl's tree) so each sandbox keeps ~100 kB less private heap */
    iso_task_plan_done(&e->plan);
    malloc_trim(0);
    return exe_supervise(e);
}
