/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/spawner.c - the executors of launches, spawned by a thread of the agent's, so that
 * the one waiting for their exec is not the loop (spawn.h; docs/design.md, departure 22):
 * the loop prepares a job's fds (spawn_prepare) and queues it, the thread spawns it
 * (launch.c's agent_spawn), the loop goes on with its outcome (on_spawned). A launch that
 * comes when no other is being spawned takes a spare executor instead (spare.c), which
 * was spawned the same way ahead of it. */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>

#include "agentd/agent.h"

struct spawn_job {
    char id[17];
    char *argv[4];
    struct spawn sp;
    int logfd, st_rd, st_wr, go_rd, tpl; /* the job's; tpl: a dup of the template */
    spawn_done_fn *done;
    int r; /* the outcome: r, the pid, its start time, pidfd (st_rd goes with it), err */
    pid_t pid;
    uint64_t pid_start;
    int pidfd;
    struct berr *err;
    bool spare;         /* a spare executor's (spare.c): no launch's, not in in_flight */
    bool spawned;       /* under the lock: agent_spawn_kill */
    atomic_bool cancel; /* killed while spawned: the child reads it before its exec too */
    struct spawn_job *next;
};

/* The queue and the outcomes between the loop and the thread (under lock); the eventfd
 * wakes the loop for the outcomes. The thread shares the fd table (the loop's fds are what
 * it passes on), which the loop's table grows then wait for (an RCU grace period per
 * growth while two threads share it): spawner_start grows it first (agent_grow_fd_table). */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool started, stopping;
    struct spawn_job *todo, **todo_tail, *done, *current;
    int efd;
    struct event *ev;
    unsigned in_flight; /* the loop's: queued, outcome not yet handled */
} sq = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, .efd = -1};

unsigned agent_spawns_in_flight(void)
{
    return sq.in_flight;
}

/* The loop's kill of a launch whose executor is being spawned (cancel): on v1 the child
 * gives up before its exec, else the thread kills it as soon as its clone returns; spawned
 * already, it dies now. The launch's outcome in the loop (launch_spawned) kills it too, but
 * the executor runs meanwhile: a loop that came to it late (a loaded machine) found its
 * task begun (test_spawn.py). */
void agent_spawn_kill(const char *id)
{
    pthread_mutex_lock(&sq.lock);
    struct spawn_job *lists[] = {sq.todo, sq.current, sq.done};
    for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
        for (struct spawn_job *j = lists[i]; j; j = i == 1 ? NULL : j->next) {
            if (!streq(j->id, id))
                continue;
            if (!j->spawned)
                atomic_store(&j->cancel, true);
            else if (j->r == 0)
                (void) syscall(SYS_pidfd_send_signal, j->pidfd, SIGKILL, NULL, 0);
        }
    }
    pthread_mutex_unlock(&sq.lock);
}

static void job_free(struct spawn_job *j)
{
    int *fds[] = {&j->logfd, &j->st_rd, &j->st_wr, &j->go_rd, &j->tpl, &j->pidfd};
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
        closep(fds[i]);
    free(j->argv[2]);
    berr_free(&j->err);
    free(j);
}

static void *spawner_main(void *arg)
{
    struct agent *a = arg;
    pthread_mutex_lock(&sq.lock);
    for (;;) {
        while (!sq.todo && !sq.stopping)
            pthread_cond_wait(&sq.wake, &sq.lock);
        struct spawn_job *j = sq.todo;
        if (!j)
            break; /* stopping, and every queued spawn made */
        if (!(sq.todo = j->next))
            sq.todo_tail = &sq.todo;
        sq.current = j;
        pthread_mutex_unlock(&sq.lock);
        j->r = agent_spawn(a, &j->sp, &j->pid, &j->pidfd, &j->err);
        pthread_mutex_lock(&sq.lock);
        j->spawned = true;
        bool kill = atomic_load(&j->cancel);
        pthread_mutex_unlock(&sq.lock);
        if (kill && j->r == 0) /* killed while it was spawned: before it can begin its task */
            (void) syscall(SYS_pidfd_send_signal, j->pidfd, SIGKILL, NULL, 0);
        if (j->r == 0) /* how to recognise it after a restart (pids get reused) */
            j->pid_start = proc_start_time(j->pid);
        /* the child has its copies: what stays is the status pipe's read end */
        int *fds[] = {&j->logfd, &j->st_wr, &j->go_rd, &j->tpl};
        for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
            closep(fds[i]);
        pthread_mutex_lock(&sq.lock);
        sq.current = NULL;
        j->next = sq.done;
        sq.done = j;
        uint64_t one = 1;
        (void) !write(sq.efd, &one, sizeof(one));
    }
    pthread_mutex_unlock(&sq.lock);
    return NULL;
}

/* The outcomes, in the order queued (the thread keeps it; the list is newest first). */
static void on_spawned(evutil_socket_t fd, short what, void *arg)
{
    (void) what;
    struct agent *a = arg;
    uint64_t n;
    (void) !read(fd, &n, sizeof(n));
    pthread_mutex_lock(&sq.lock);
    struct spawn_job *list = sq.done, *rev = NULL;
    sq.done = NULL;
    pthread_mutex_unlock(&sq.lock);
    while (list) {
        struct spawn_job *j = list;
        list = j->next;
        j->next = rev;
        rev = j;
    }
    while (rev) {
        struct spawn_job *j = rev;
        rev = j->next;
        struct spawned sp = {
                .pid = j->pid, .pid_start = j->pid_start, .pidfd = -1, .status_fd = -1};
        if (j->r == 0) {
            sp.pidfd = TAKE_FD(j->pidfd);
            sp.status_fd = TAKE_FD(j->st_rd);
        }
        if (!j->spare)
            sq.in_flight--;
        j->done(a, j->id, j->r, &sp, j->err);
        job_free(j);
    }
}

static int spawner_start(struct agent *a, struct berr **err)
{
    if (sq.started)
        return 0;
    sq.todo_tail = &sq.todo;
    sq.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (sq.efd < 0)
        return berr_set(err, errno, "eventfd");
    sq.ev = event_new(a->base, sq.efd, EV_READ | EV_PERSIST, on_spawned, a);
    if (!sq.ev || event_add(sq.ev, NULL) < 0) {
        closep(&sq.efd);
        return berr_setx(err, ENOMEM, "spawner event");
    }
    agent_grow_fd_table();
    /* every signal stays the loop's: the thread (and the child, until its exec) blocks all
     * but SIGCHLD. The executors are the thread's children: their SIGCHLD goes to it, and
     * ignored by default it is dropped; blocked, it would be queued for the process and
     * interrupt the loop's thread instead (EINTR from a memory.limit_in_bytes write) */
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, SIGCHLD);
    /* its children carry its name until their exec */
    int r = thread_start(&sq.thread, "berth-spawner", &all, spawner_main, a);
    if (r != 0) {
        event_free(sq.ev);
        sq.ev = NULL;
        closep(&sq.efd);
        return berr_set(err, r, "start the spawner thread");
    }
    sq.started = true;
    return 0;
}

void agent_spawner_stop(struct agent *a)
{
    if (!sq.started)
        return;
    pthread_mutex_lock(&sq.lock);
    sq.stopping = true;
    pthread_cond_signal(&sq.wake);
    pthread_mutex_unlock(&sq.lock);
    pthread_join(sq.thread, NULL);
    on_spawned(sq.efd, EV_READ, a);
    event_free(sq.ev);
    sq.ev = NULL;
    closep(&sq.efd);
    sq.started = sq.stopping = false;
}

uint64_t agent_launch_ns(const struct agent *a, enum iso_net_mode net)
{
    uint64_t ns = 0;
    if (a->iso_flags & ISO_NS_PID)
        ns |= CLONE_NEWPID;
    if (a->iso_flags & ISO_NS_IPC)
        ns |= CLONE_NEWIPC;
    if (a->iso_flags & ISO_NS_UTS)
        ns |= CLONE_NEWUTS;
    if (net != ISO_NET_HOST) /* none, bridge: its own (net.c) */
        ns |= CLONE_NEWNET;
    return ns;
}

/* The job's fds and argv for c's executor (the loop's part of the spawn). */
static int spawn_prepare(struct agent *a, struct container *c, struct spawn_job *j,
                         struct berr **err)
{
    j->argv[0] = a->executor_path;
    j->argv[1] = (char *) "--runtime-dir";
    j->argv[2] = xasprintf("%s/%s", a->runtime_root, c->id);
    _cleanup_free_ char *logpath = xasprintf("%s/executor.log", j->argv[2]);
    j->logfd = agent_dup_high(open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (j->logfd < 0)
        return berr_set(err, errno, "open '%s'", logpath);
    uint64_t ns = agent_launch_ns(a, ctr_net_mode(c));
    c->pid1_executor = a->iso_flags & ISO_NS_PID;
    /* no CLONE_NEWNS: the executor takes what it needs of the host's view, then enters a
     * copy of the agent's sandbox template (fd 4) */
    if ((a->iso_flags & ISO_NS_MOUNT) && template_fd(a) < 0)
        return berr_setx(err, EBADF, "no sandbox template (see the agent's log at its start)");
    j->sp = (struct spawn){
            .path = a->executor_path,
            .argv = j->argv,
            .ns_flags = ns,
            /* stdin: the go pipe the executor waits on before its task */
            .fd = {j->go_rd >= 0 ? j->go_rd : agent_spawn_null(), j->logfd, j->logfd, -1},
            .cg = a->supervisor, /* the task joins c->cg itself, before its execve */
            .cancel = &j->cancel,
    };
    return 0;
}

/* The pipe the executor reports on (its fd 3; the agent keeps the read end). */
static int status_pipe(struct spawn_job *j, struct berr **err)
{
    int p[2];
    int r = agent_pipe_high(p);
    if (r < 0)
        return berr_set(err, -r, "status pipe");
    j->st_rd = p[0];
    j->sp.fd[3] = j->st_wr = p[1];
    fcntl(j->st_rd, F_SETFL, O_NONBLOCK);
    return 0;
}

static struct spawn_job *job_new(const char *id, spawn_done_fn *done)
{
    struct spawn_job *j = xzalloc(sizeof(*j));
    j->logfd = j->st_rd = j->st_wr = j->tpl = j->pidfd = j->go_rd = -1;
    snprintf(j->id, sizeof(j->id), "%s", id);
    j->done = done;
    return j;
}

static void job_queue(struct spawn_job *j)
{
    pthread_mutex_lock(&sq.lock);
    *sq.todo_tail = j;
    sq.todo_tail = &j->next;
    pthread_cond_signal(&sq.wake);
    pthread_mutex_unlock(&sq.lock);
}

int agent_spawn_executor(struct agent *a, struct container *c, spawn_done_fn *done,
                         struct berr **err)
{
    struct spawn_job *j = job_new(c->id, done);
    j->go_rd = TAKE_FD(c->go_rd);
    int r = spawn_prepare(a, c, j, err);
    if (r < 0 || (r = spawner_start(a, err)) < 0) {
        job_free(j);
        return r;
    }
    sq.in_flight++;
    struct spawned sp;
    /* a spare executor, when no other launch is being spawned (their outcomes stay in
     * order); its outcome is the next turn's, as a spawned one's */
    if (sq.in_flight == 1 &&
        spare_launch(a, j->sp.ns_flags, j->argv[2], j->logfd,
                     a->iso_flags & ISO_NS_MOUNT ? template_fd(a) : -1, j->sp.fd[0], &sp) == 0) {
        agent_fault(a, "spawn-after-clone"); /* the step a spawn's clone is */
        j->pid = sp.pid;
        j->pid_start = sp.pid_start;
        j->pidfd = sp.pidfd;
        j->st_rd = sp.status_fd;
        pthread_mutex_lock(&sq.lock);
        j->spawned = true;
        j->next = sq.done;
        sq.done = j;
        pthread_mutex_unlock(&sq.lock);
        event_active(sq.ev, EV_READ, 0);
        return 0;
    }
    /* spawned by the thread: its status pipe, and a dup of the template, which a rebuild
     * may replace meanwhile */
    if ((r = status_pipe(j, err)) == 0 && (a->iso_flags & ISO_NS_MOUNT) &&
        (j->sp.template_fd = j->tpl = fcntl(template_fd(a), F_DUPFD_CLOEXEC, 5)) < 0)
        r = berr_set(err, errno, "duplicate the sandbox template's fd");
    if (r < 0) {
        sq.in_flight--;
        job_free(j);
        return r;
    }
    job_queue(j);
    return 0;
}

int agent_spawn_spare(struct agent *a, const char *id, uint64_t ns, int ctl, spawn_done_fn *done,
                      struct berr **err)
{
    struct spawn_job *j = job_new(id, done);
    j->spare = true;
    j->go_rd = ctl; /* taken */
    j->argv[0] = a->executor_path;
    j->argv[1] = (char *) "--spare";
    j->argv[2] = xstrdup(ns & CLONE_NEWNET ? "net" : "host");
    j->sp = (struct spawn){.path = a->executor_path,
                           .argv = j->argv,
                           .ns_flags = ns,
                           .fd = {ctl, agent_spawn_null(), agent_spawn_null(), -1},
                           .cg = a->supervisor,
                           .cancel = &j->cancel,
                           .spare = true};
    int r = status_pipe(j, err);
    if (r < 0 || (r = spawner_start(a, err)) < 0) {
        job_free(j);
        return r;
    }
    job_queue(j);
    return 0;
}
