/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/trash.c - removing a container's directories without blocking the loop. A sandbox
 * can hold millions of files; rm_rf on the loop stalled every client for as long. Instead
 * the tree is renamed into work_dir/trash (atomic and instant: the container's paths are
 * free at once, DELETE can answer) and removed there off the loop: by a thread of the
 * agent's (common/util.c's rm_rf_here: by fds, bounded depth, one file system) and, for
 * what that leaves (a tree deeper than its bound, an error), by `rm -rf --one-file-system`
 * in a child process, whose pidfd tells the loop when it is done. The trees moved during one
 * turn go to the thread together in the next turn. Before the thread every batch was an rm:
 * 308-333 of them for 1,000 DELETEs, ~0.5 s of CPU, most of it each rm's start-up (glibc's CPUID
 * probes trap to the hypervisor on this machine kind; issue #18). What a crash leaves in
 * the trash is removed the same way at the next start (trash_init). lifecycle.c (DELETE,
 * GC) calls trash_move; orphans.c sweeps dirs at start, before the loop runs. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
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
    /* the thread's, from its queue to its done list (the loop leaves the job alone
     * meanwhile): the first `left` paths are those it could not remove (err: the first
     * failure's -errno) */
    size_t left;
    int err;
    struct trash_job *qnext; /* the thread's queue */
    struct trash_job *next;
};

/* The removal thread: its queue and what it finished (under lock); the eventfd wakes the
 * loop for those. The thread keeps a table of open files of its own (as the sync thread:
 * common/syncer.c), holding the eventfd only; it calls rm_rf_here, the mutex and write(2):
 * nothing the loop's spawned children take before their exec. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool started, failed;
    atomic_bool stopping;
    struct trash_job *todo, **todo_tail, *done;
    int efd;
    struct event *ev;
} tq = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, .efd = -1};

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

static void *remover_main(void *arg)
{
    (void) arg;
    thread_own_files(tq.efd, tq.efd);
    pthread_mutex_lock(&tq.lock);
    for (;;) {
        while (!tq.todo && !atomic_load(&tq.stopping))
            pthread_cond_wait(&tq.wake, &tq.lock);
        struct trash_job *j = tq.todo;
        if (!j || atomic_load(&tq.stopping))
            break; /* what is queued stays in the trash for the next start */
        if (!(tq.todo = j->qnext))
            tq.todo_tail = &tq.todo;
        pthread_mutex_unlock(&tq.lock);
        size_t left = 0;
        for (size_t i = 0; i < j->n; i++) {
            int r = rm_rf_here(j->paths[i], &tq.stopping);
            if (r < 0) {
                char *p = j->paths[left];
                j->paths[left++] = j->paths[i];
                j->paths[i] = p;
                if (!j->err)
                    j->err = r;
            }
        }
        j->left = left;
        pthread_mutex_lock(&tq.lock);
        j->qnext = tq.done;
        tq.done = j;
        uint64_t one = 1;
        (void) !write(tq.efd, &one, sizeof(one));
    }
    pthread_mutex_unlock(&tq.lock);
    return NULL;
}

/* What the thread finished: done, or what it left to an rm. */
static void on_removed(evutil_socket_t fd, short what, void *arg)
{
    (void) what;
    struct agent *a = arg;
    uint64_t v;
    (void) !read(fd, &v, sizeof(v));
    pthread_mutex_lock(&tq.lock);
    struct trash_job *j = tq.done;
    tq.done = NULL;
    pthread_mutex_unlock(&tq.lock);
    while (j) {
        struct trash_job *next = j->qnext;
        if (j->left) {
            log_debug("trash: '%s'%s: %s: to rm", j->paths[0], j->left > 1 ? " and more" : "",
                      strerror(-j->err));
            j->n = j->left;
            remove_async(a, j);
        } else {
            job_free(a, j);
        }
        j = next;
    }
}

static bool remover_ready(struct agent *a)
{
    if (tq.started || tq.failed)
        return tq.started;
    tq.failed = true;
    tq.todo_tail = &tq.todo;
    atomic_store(&tq.stopping, false);
    if ((tq.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
        !(tq.ev = event_new(a->base, tq.efd, EV_READ | EV_PERSIST, on_removed, a)) ||
        event_add(tq.ev, NULL) < 0) {
        log_warning("trash: no eventfd for the removal thread: rm removes every tree");
        return false;
    }
    int r = thread_start_quiet(&tq.thread, "berth-trash", remover_main, NULL);
    if (r != 0) {
        log_warning("trash: start the removal thread: %s: rm removes every tree", strerror(r));
        return false;
    }
    tq.started = true;
    tq.failed = false;
    return true;
}

/* The batch to the thread (an rm when it has none: one at a time, on_done starts the next) */
static void dispatch(struct agent *a, struct trash_job *j)
{
    if (a->trash_batch == j)
        a->trash_batch = NULL;
    if (!remover_ready(a)) {
        remove_async(a, j);
        return;
    }
    pthread_mutex_lock(&tq.lock);
    *tq.todo_tail = j;
    tq.todo_tail = &j->qnext;
    pthread_cond_signal(&tq.wake);
    pthread_mutex_unlock(&tq.lock);
}

/* The next turn: the batch to the thread; without one, to an rm unless one runs: then when
 * it is done (on_done). */
static void on_batch(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct agent *a = arg;
    struct trash_job *j = a->trash_batch;
    if (!j || (!tq.started && rm_running(a)))
        return;
    dispatch(a, j);
}

/* Into the batch the next turn removes (a full one goes at once). The job is on a->trash
 * from now on: GC counts the space as on its way back. */
static void batch_add(struct agent *a, const char *path)
{
    struct trash_job *j = a->trash_batch;
    if (j && j->n == TRASH_BATCH_MAX) {
        dispatch(a, j);
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
    /* The thread stops at its next entry (what it leaves stays in the trash); a stopped
     * agent leaves no process behind: its rm children are killed and reaped (each dies at
     * once). The next start removes what they leave. */
    if (tq.started) {
        pthread_mutex_lock(&tq.lock);
        atomic_store(&tq.stopping, true);
        pthread_cond_signal(&tq.wake);
        pthread_mutex_unlock(&tq.lock);
        pthread_join(tq.thread, NULL);
    }
    if (tq.ev)
        event_free(tq.ev);
    closep(&tq.efd);
    tq.ev = NULL;
    tq.todo = tq.done = NULL;
    tq.started = tq.failed = false;
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
