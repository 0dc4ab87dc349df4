/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/trash.c - removing a container's directories without blocking the loop. A sandbox
 * can hold millions of files; rm_rf on the loop stalled every client for as long. Instead
 * the tree is renamed into work_dir/trash (atomic and instant: the container's paths are
 * free at once, DELETE can answer) and `rm -rf --one-file-system` removes it there in a
 * child process, whose pidfd tells the loop when it is done. The trees moved meanwhile go to
 * one `rm` in the next turn, or once the running one is done (a DELETE moves two; a burst
 * of 1,000 spawned 2,000 rm, each a clone the loop waits for and an exec: issue #18). What
 * a crash leaves in the trash is removed the same way at the next start (trash_init).
 * lifecycle.c (DELETE, GC) calls trash_move; orphans.c sweeps dirs at start, before the
 * loop runs. */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "agentd/agent.h"

/* paths an `rm` takes at most (its argv) */
#define TRASH_BATCH_MAX 256

struct trash_job {
    struct agent *a;
    pid_t pid;
    int pidfd; /* -1 until its rm runs */
    struct event *ev;
    char **paths; /* NULL-terminated */
    size_t n;
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
    if (a->trash_batch == j)
        a->trash_batch = NULL;
    if (j->ev)
        event_free(j->ev);
    closep(&j->pidfd);
    strv_free(j->paths);
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
        log_warning("trash: 'rm -rf %s'%s failed (%s %d): the next start retries", j->paths[0],
                    j->n > 1 ? " and more" : "", si.si_code == CLD_EXITED ? "exit" : "signal",
                    si.si_status);
    struct agent *a = j->a;
    job_free(a, j);
    static const struct timeval now = {0, 0};
    if (a->trash_batch && a->ev_trash) /* what came meanwhile: its rm now (on_batch) */
        evtimer_add(a->ev_trash, &now);
}

/* An rm is running: the next batch waits for it (and grows meanwhile). */
static bool rm_running(const struct agent *a)
{
    for (const struct trash_job *j = a->trash; j; j = j->next)
        if (j->pidfd >= 0)
            return true;
    return false;
}

/* Start `rm -rf` of the job's paths. */
static void remove_async(struct agent *a, struct trash_job *j)
{
    _cleanup_close_ int devnull = agent_dup_high(open("/dev/null", O_RDWR | O_CLOEXEC));
    _cleanup_free_ char **argv = xcalloc(j->n + 5, sizeof(char *));
    argv[0] = (char *) "rm";
    argv[1] = (char *) "-rf";
    argv[2] = (char *) "--one-file-system";
    argv[3] = (char *) "--";
    for (size_t i = 0; i < j->n; i++)
        argv[4 + i] = j->paths[i];
    struct spawn sp = {.path = "/bin/rm", .argv = argv, .fd = {devnull, devnull, devnull, -1}};
    _cleanup_berr_ struct berr *err = NULL;
    if (devnull < 0 || agent_spawn(a, &sp, &j->pid, &j->pidfd, &err) < 0) {
        log_warning("trash: %s: the next start retries",
                    err ? berr_msg(err) : "cannot open /dev/null");
        j->pidfd = -1;
        job_free(a, j);
        return;
    }
    a->trash_rm_total++;
    j->ev = event_new(a->base, j->pidfd, EV_READ | EV_PERSIST, on_done, j);
    event_add(j->ev, NULL);
}

/* The next turn: the batch's paths to their rm, unless one runs: then when it is done
 * (on_done). One rm at a time: under 1,000 removals a turn rarely had more than one DELETE,
 * and each batch cost a spawn the loop waited for and an exec (issue #18). */
static void on_batch(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct agent *a = arg;
    struct trash_job *j = a->trash_batch;
    if (!j || rm_running(a))
        return;
    a->trash_batch = NULL;
    remove_async(a, j);
}

/* Into the batch the next turn removes (a full one goes at once). The job is on a->trash
 * from now on: GC counts the space as on its way back. */
static void batch_add(struct agent *a, const char *path)
{
    struct trash_job *j = a->trash_batch;
    if (j && j->n == TRASH_BATCH_MAX) {
        a->trash_batch = NULL;
        remove_async(a, j);
        j = NULL;
    }
    if (!j) {
        j = xzalloc(sizeof(*j));
        j->a = a;
        j->pidfd = -1;
        j->paths = xcalloc(TRASH_BATCH_MAX + 1, sizeof(char *));
        j->next = a->trash;
        a->trash = a->trash_batch = j;
        static const struct timeval next_turn = {0, 0};
        if (a->ev_trash)
            evtimer_add(a->ev_trash, &next_turn);
    }
    j->paths[j->n++] = xstrdup(path);
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
        batch_add(a, path);
        return 0;
    }
    batch_add(a, to);
    return 0;
}

int trash_init(struct agent *a, struct berr **err)
{
    a->trash_dir = xasprintf("%s/trash", a->cfg.work_dir);
    a->ev_trash = evtimer_new(a->base, on_batch, a);
    if (!a->ev_trash)
        return berr_setx(err, ENOMEM, "cannot make the trash's timer");
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
        batch_add(a, p);
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
    if (a->ev_trash)
        event_free(a->ev_trash);
    a->ev_trash = NULL;
    free(a->trash_dir);
    a->trash_dir = NULL;
}
