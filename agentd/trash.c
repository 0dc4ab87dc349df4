/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/trash.c - removing a container's directories without blocking the loop. A sandbox
 * can hold millions of files; rm_rf on the loop stalled every client for as long. Instead
 * the tree is renamed into work_dir/trash (atomic and instant: the container's paths are
 * free at once, DELETE can answer) and `rm -rf --one-file-system` removes it there in a
 * child process, whose pidfd tells the loop when it is done. What a crash leaves in the
 * trash is removed the same way at the next start (trash_init). lifecycle.c (DELETE, GC)
 * calls trash_move; orphans.c sweeps dirs at start, before the loop runs. */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "agentd/agent.h"

struct trash_job {
    struct agent *a;
    pid_t pid;
    int pidfd;
    struct event *ev;
    char *path;
    struct trash_job *next;
};

static void job_free(struct agent *a, struct trash_job *j)
{
    for (struct trash_job **p = &a->trash; *p; p = &(*p)->next) {
        if (*p == j) {
            *p = j->next;
            break;
        }
    }
    if (j->ev)
        event_free(j->ev);
    closep(&j->pidfd);
    free(j->path);
    free(j);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void) what;
    struct trash_job *j = arg;
    siginfo_t si = {0};
    if (waitid(P_PIDFD, (id_t) fd, &si, WEXITED | WNOHANG) == 0 && si.si_pid == 0)
        return; /* not yet */
    if (si.si_code != CLD_EXITED || si.si_status != 0)
        log_warning("trash: 'rm -rf %s' failed (%s %d): the next start retries", j->path,
                    si.si_code == CLD_EXITED ? "exit" : "signal", si.si_status);
    job_free(j->a, j);
}

/* Start `rm -rf` of a path in the trash. */
static int remove_async(struct agent *a, const char *path)
{
    _cleanup_close_ int devnull = agent_dup_high(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (devnull < 0)
        return -errno;
    char *argv[] = {(char *) "rm", (char *) "-rf", (char *) "--one-file-system",
                    (char *) "--", (char *) path,  NULL};
    struct spawn sp = {.path = "/bin/rm", .argv = argv, .fd = {devnull, devnull, devnull, -1}};
    struct trash_job *j = xzalloc(sizeof(*j));
    j->a = a;
    j->path = xstrdup(path);
    _cleanup_berr_ struct berr *err = NULL;
    if (agent_spawn(a, &sp, &j->pid, &j->pidfd, &err) < 0) {
        log_warning("trash: %s: the next start retries", berr_msg(err));
        j->pidfd = -1;
        job_free(a, j);
        return -EIO;
    }
    j->ev = event_new(a->base, j->pidfd, EV_READ | EV_PERSIST, on_done, j);
    event_add(j->ev, NULL);
    j->next = a->trash;
    a->trash = j;
    return 0;
}

int trash_move(struct agent *a, const char *path)
{
    const char *base = strrchr(path, '/');
    char suffix[9];
    if (random_hex(suffix, 8) < 0)
        snprintf(suffix, sizeof(suffix), "%08x", (unsigned) now_monotonic_ns());
    _cleanup_free_ char *to = xasprintf("%s/%s.%s", a->trash_dir, base ? base + 1 : path, suffix);
    if (rename(path, to) < 0) {
        if (errno == ENOENT)
            return -ENOENT;
        /* another file system (a work_dir split by mounts): remove it where it is */
        int e = errno;
        log_debug("trash: rename '%s': %s: removing it in place", path, strerror(e));
        return remove_async(a, path);
    }
    return remove_async(a, to);
}

int trash_init(struct agent *a, struct berr **err)
{
    a->trash_dir = xasprintf("%s/trash", a->cfg.work_dir);
    if (mkdir(a->trash_dir, 0700) < 0 && errno != EEXIST)
        return berr_set(err, errno, "create '%s'", a->trash_dir);
    /* what a crash left in the trash */
    _cleanup_closedir_ DIR *d = opendir(a->trash_dir);
    if (!d)
        return berr_set(err, errno, "open '%s'", a->trash_dir);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
            continue;
        _cleanup_free_ char *p = xasprintf("%s/%s", a->trash_dir, de->d_name);
        (void) remove_async(a, p);
    }
    return 0;
}

void trash_free(struct agent *a)
{
    /* A stopped agent leaves no process behind: its rm children are killed and reaped
     * (each dies at once), and the next start removes what they leave. */
    while (a->trash) {
        struct trash_job *j = a->trash;
        if (j->pidfd >= 0) {
            siginfo_t si;
            (void) syscall(SYS_pidfd_send_signal, j->pidfd, SIGKILL, NULL, 0);
            while (waitid(P_PIDFD, (id_t) j->pidfd, &si, WEXITED) < 0 && errno == EINTR)
                ;
        }
        job_free(a, j);
    }
    free(a->trash_dir);
    a->trash_dir = NULL;
}
