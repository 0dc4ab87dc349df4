/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/lifecycle.c - the container state machine: admit and launch (STAGING -> STARTING),
 * learn from the executor's status pipe that the task runs (RUNNING), and from the pidfd
 * that the executor ended (FINISHED/FAILED/KILLED with a reason: decide.c); kill.c kills and
 * removes. Every transition goes through ctr_set_state, which stores it before anyone hears
 * of it. sandbox.c prepares a launch, launch.c spawns, release.c and trash.c clean up,
 * waiters.c answers waits. Async callbacks carry the container id, never a pointer. */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "agentd/agent.h"
#include "agentd/ready.h"

/* After the commit of a container's end: only now does anyone hear of it. */
static void ended_committed(struct agent *a, int r, void *arg)
{
    (void) r; /* not stored (logged): the next start derives the end again */
    _cleanup_free_ char *id = arg;
    struct container *removed = NULL, *c = ctr_find_id(a, id);
    if (!c) /* removed meanwhile (ctr_remove): out of the limbo, freed at the end */
        c = removed = ctr_limbo_take(a, id);
    if (!c)
        return;
    c->end_unannounced = false;
    /* the end is recorded before the cgroups go: a crash in between leaves a terminal
     * record and cgroups no live container holds, which the next start removes */
    agent_fault(a, "finish-after-record");
    release_start(a, c);
    ctr_answer_waiters(a, c);
    logs_container_ended(a, c->id);
    ctr_free(removed);
}

void ctr_set_state(struct agent *a, struct container *c, enum ml_state st, enum ml_reason reason)
{
    if (c->pprev && ml_state_terminal(c->state) != ml_state_terminal(st))
        res_hold(a, c, ml_state_terminal(st) ? -1 : 1); /* what it holds (admission) */
    c->state = st;
    c->reason = reason;
    if (st == ML_RUNNING && c->started_at <= 0)
        c->started_at = now_realtime();
    if (ml_state_terminal(st) && c->finished_at <= 0)
        c->finished_at = now_realtime();
    ctr_save(a, c);
    /* its ports and address are free with its end: the mappings go now, before another task
     * could be given the same host port (the commit comes later, and the sweep at the next
     * start removes what a crash in between leaves) */
    if (ml_state_terminal(st))
        net_release(a, c);
    /* the watchers' own writes (the link's updates) join the same commit, and what they
     * send goes after it */
    for (unsigned i = 0; i < a->n_watchers; i++)
        a->watchers[i](a, c);
    if (ml_state_terminal(st) && !c->end_unannounced) {
        c->end_unannounced = true;
        store_after_commit(a, ended_committed, xstrdup(c->id));
    }
}

static void set_message(struct container *c, const char *msg)
{
    free(c->message);
    c->message = msg ? xstrdup(msg) : NULL;
}

/* The executor is gone (or never ran): drop its events and fds, take the last sample, and
 * make the outcome the container's end. */
static void ctr_end(struct agent *a, struct container *c, const struct ctr_outcome *o)
{
    if (!c->unrecorded) { /* else the pidfd stays, to reap the killed executor (on_exit_ev) */
        ctr_event_free(&c->ev_exit);
        closep(&c->pidfd);
        c->pidfd = -1;
    }
    ctr_event_free(&c->ev_status);
    ctr_event_free(&c->ev_oom);
    ctr_event_free(&c->ev_backstop);
    ctr_event_free(&c->ev_grace);
    closep(&c->status_fd);
    c->status_fd = -1;
    sampler_sample(a, c); /* the final figures (an OOM kill, the last CPU seconds) */
    c->exit_code = o->exit_code;
    c->signal = o->signal;
    if (o->message[0])
        set_message(c, o->message);
    ctr_set_state(a, c, o->state, o->reason);
    log_info("container '%s' (%s): %s%s%s%s%s", c->id, c->spec.name, ml_state_name(o->state),
             o->reason ? "/" : "", o->reason ? ml_reason_name(o->reason) : "",
             c->message && c->message[0] ? ": " : "", c->message ? c->message : "");
}

static void launch_failed(struct agent *a, struct container *c, const char *msg)
{
    struct ctr_outcome o = {.state = ML_FAILED, .reason = ML_REASON_LAUNCH_FAILED, .exit_code = -1};
    snprintf(o.message, sizeof(o.message), "%s", msg);
    ctr_end(a, c, &o);
}

/* The executor's status.json (isolator/status.c), or -ENOENT / -EINVAL. */
static int read_exit_status(struct agent *a, struct container *c, struct iso_status *ret)
{
    char path[4096];
    runtime_path(a, c->id, path, sizeof(path));
    strncat(path, "/status.json", sizeof(path) - strlen(path) - 1);
    _cleanup_free_ char *text = NULL;
    if (read_file_alloc(path, 65536, &text, NULL) < 0)
        return -ENOENT;
    _cleanup_berr_ struct berr *err = NULL;
    return iso_status_from_json(text, ret, &err);
}

/* The executor is gone: gather what is known and let decide.c say how the task ended.
 * wstatus is its wait status, or -1 when unknown (an executor re-adopted after a restart is
 * not our child). */
static void executor_ended(struct agent *a, struct container *c, int wstatus)
{
    struct iso_status st = {0}, line = {0};
    bool have = read_exit_status(a, c, &st) == 0;
    bool pipe_error =
            iso_status_from_line(c->status_buf, &line) == 0 && line.kind == ISO_STATUS_LAUNCH_ERROR;
    struct ctr_end_facts f = {
            .status = have ? &st : NULL,
            .pipe_error = pipe_error ? line.message : NULL,
            .wstatus = wstatus,
            .kill_requested = c->kill_requested,
            .limitation = c->limitation,
            .oom_kills = c->cg ? iso_cgroup_oom_kills(c->cg) : 0,
    };
    struct ctr_outcome o;
    ctr_decide_end(&f, &o);
    iso_status_done(&st);
    iso_status_done(&line);
    ctr_end(a, c, &o);
}

static void on_status(evutil_socket_t fd, short what, void *arg)
{
    (void) what;
    struct ctr_ref *r = arg;
    struct container *c = ctr_find_id(r->a, r->id);
    if (!c)
        return;
    size_t room = sizeof(c->status_buf) - 1 - c->status_len;
    ssize_t n = room ? read(fd, c->status_buf + c->status_len, room) : 0;
    if (n > 0) {
        c->status_len += (size_t) n;
        c->status_buf[c->status_len] = 0;
        struct iso_status line = {0};
        bool running = c->state == ML_STARTING && iso_status_from_line(c->status_buf, &line) == 0 &&
                       line.kind == ISO_STATUS_RUNNING;
        iso_status_done(&line); /* an ERROR line is read again when the executor ends */
        if (running) {
            if (c->launched_at_ns)
                sampler_note_launch(r->a, (double) (now_monotonic_ns() - c->launched_at_ns) / 1e9);
            ctr_set_state(r->a, c, ML_RUNNING, ML_REASON_NONE);
            agent_fault(r->a, "launch-after-running");
            /* nothing follows RUNNING on the pipe (ERROR only comes before the task's
             * exec): free the fd, a thousand containers need every one */
            ctr_event_free(&c->ev_status);
            closep(&c->status_fd);
            c->status_fd = -1;
        }
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    /* EOF: the executor closed its status fd; the pidfd tells us when it is gone */
    ctr_event_free(&c->ev_status);
    closep(&c->status_fd);
    c->status_fd = -1;
}

static void on_exit_ev(evutil_socket_t fd, short what, void *arg);

static void on_exit_retry(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct ctr_ref *r = arg;
    struct container *c = ctr_find_id(r->a, r->id);
    if (c && c->ev_exit && c->pidfd >= 0)
        on_exit_ev(c->pidfd, EV_READ, event_get_callback_arg(c->ev_exit));
    free(r);
}

static void on_exit_ev(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct ctr_ref *r = arg;
    struct container *c = ctr_find_id(r->a, r->id);
    if (!c)
        return;
    int wstatus = -1;
    siginfo_t si = {0};
    /* P_PIDFD reaps exactly this child, never another one that reused its pid */
    int w = waitid(P_PIDFD, (id_t) c->pidfd, &si, WEXITED | WNOHANG);
    if (w == 0 && si.si_pid == 0) {
        /* a wake-up before it can be reaped: a tracer (strace) is told of its exit first,
         * we once it let go. The event is not persistent and the pidfd stays readable:
         * look again in 10 ms (returning here left the container live for good) */
        static const struct timeval again = {0, 10000};
        event_base_once(r->a->base, -1, EV_TIMEOUT, on_exit_retry, ctr_ref_new(r->a, c->id),
                        &again);
        return;
    }
    if (w < 0 && errno != ECHILD)
        return;
    if (ml_state_terminal(c->state)) { /* ended already (unrecorded): only the reaping was left */
        ctr_event_free(&c->ev_exit);
        closep(&c->pidfd);
        c->pidfd = -1;
        return;
    }
    /* ECHILD: an executor adopted after an agent restart is not our child; its status file
     * says how the task ended (wstatus stays unknown) */
    if (w == 0 && si.si_code == CLD_EXITED)
        wstatus = W_EXITCODE(si.si_status, 0);
    else if (w == 0 && (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED))
        wstatus = si.si_status & 0x7f;
    /* drain a status line written just before exit */
    if (c->status_fd >= 0)
        on_status(c->status_fd, EV_READ, c->ev_status ? event_get_callback_arg(c->ev_status) : r);
    executor_ended(r->a, c, wstatus);
}

static void on_oom(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct ctr_ref *r = arg;
    struct container *c = ctr_find_id(r->a, r->id);
    if (!c || !c->cg)
        return;
    int64_t n = iso_cgroup_oom_ack(c->cg);
    if (n > 0)
        log_info("container '%s': the kernel OOM-killed in the task (%lld so far)", c->id,
                 (long long) n);
}

static void watch_oom(struct agent *a, struct container *c)
{
    if (!c->cg || !(a->iso_flags & ISO_CG_MEM))
        return;
    _cleanup_berr_ struct berr *err = NULL;
    int ofd = iso_cgroup_oom_fd(c->cg, &err);
    if (ofd >= 0)
        c->ev_oom = ctr_event_new(a, c, ofd, EV_READ | EV_PERSIST, on_oom);
    else
        log_debug("container '%s': no OOM notification: %s", c->id, berr_msg(err));
}

/* After the commit of STARTING: the 201 may go out (the API answers after this). */
static void launch_committed(struct agent *a, int r, void *arg)
{
    _cleanup_free_ char *id = arg;
    struct container *c = ctr_find_id(a, id);
    /* RUNNING already, maybe: the executor's report can come while the sync runs */
    if (!c || ml_state_terminal(c->state))
        return;
    if (r < 0) {
        /* the 201 would promise a container the next start cannot know: undo it (the
         * executor's end is only reaped, through its pidfd, in on_exit_ev) */
        _cleanup_berr_ struct berr *kerr = NULL;
        c->unrecorded = true;
        (void) iso_cgroup_kill(c->cg, &kerr);
        launch_failed(a, c, "cannot record the launch in state.db");
        return;
    }
    agent_fault(a, "launch-after-starting");
}

/* Whoever waits for the launch (ctr_launch's launched: the 201) hears of it now: it is
 * STARTING, or FAILED. */
static void launch_told(struct agent *a, struct container *c)
{
    void (*fn)(struct agent *, const char *, void *) = c->launched;
    c->launched = NULL;
    if (fn)
        fn(a, c->id, c->launched_arg);
}

/* The executor's go: its cgroups are made (and in bridge mode its network); it closes the
 * pipe. 0, or -errno with err. */
static int launch_go(int go_wr, struct berr **err)
{
    if (write(go_wr, "1", 1) != 1)
        return berr_set(err, errno, "tell berth-executor its cgroups are made");
    return 0;
}

/* The executor exec'd (or failed to): the launch goes on in the loop (spawn.h). */
static void launch_spawned(struct agent *a, const char *id, int r, const struct spawned *sp,
                           const struct berr *serr)
{
    struct container *c = ctr_find_id(a, id);
    int pidfd = sp->pidfd, status_fd = sp->status_fd;
    if (!c || c->state != ML_STAGING) { /* cannot be (nothing else ends a STAGING one) */
        if (pidfd >= 0)
            (void) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
        closep(&pidfd);
        closep(&status_fd);
        return;
    }
    _cleanup_close_ int go_wr = TAKE_FD(c->go_wr); /* bridge mode: the go is said here */
    _cleanup_berr_ struct berr *err = NULL;
    if (r < 0 && c->kill_requested) { /* killed while spawned: its executor never ran */
        struct ctr_outcome o = {
                .state = ML_KILLED, .reason = ML_REASON_KILLED_BY_REQUEST, .exit_code = -1};
        ctr_end(a, c, &o);
        launch_told(a, c);
        return;
    }
    if (r < 0) {
        launch_failed(a, c, c->launch_error ? c->launch_error : berr_msg(serr));
        launch_told(a, c);
        return;
    }
    c->pid = sp->pid;
    c->pid_start = sp->pid_start; /* how to recognise it after a restart (the thread read it) */
    agent_fault(a, "launch-after-exec");
    c->pidfd = pidfd;
    c->status_fd = status_fd;
    c->ev_status = ctr_event_new(a, c, status_fd, EV_READ | EV_PERSIST, on_status);
    c->ev_exit = ctr_event_new(a, c, pidfd, EV_READ, on_exit_ev);
    if (!c->launch_error && go_wr >= 0 &&
        (net_connect(a, c, &err) < 0 || launch_go(go_wr, &err) < 0))
        c->launch_error = xstrdup(berr_msg(err));
    if (c->launch_error) {
        /* the executor waits for a go that never comes (its cgroups or its network could not
         * be made): kill it (it lives in the supervisor cgroup, the task's is still empty);
         * on_exit_ev reaps it */
        c->unrecorded = true;
        (void) syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0);
        launch_failed(a, c, c->launch_error);
    } else {
        ctr_set_state(a, c, ML_STARTING, ML_REASON_NONE);
        store_after_commit(a, launch_committed, xstrdup(c->id));
        /* killed while it was spawned (kill_committed found no executor): the task has not
         * begun; its executor's end is the container's, KILLED (on_exit_ev) */
        if (c->kill_requested)
            (void) syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0);
    }
    launch_told(a, c);
}

/* The dirs and spec.json, then the executor, spawned off the loop or a spare given the
 * launch (launch_spawned goes on). It builds the sandbox while this turn makes the cgroups,
 * and in bridge mode while launch_spawned makes the network, and waits for the go on a pipe
 * before its task (docs/design.md, "The launch path"). A failure after it was given the
 * launch is the launch's end in launch_spawned, which kills it. */
static int launch_sandbox(struct agent *a, struct container *c, struct berr **err)
{
    int go[2] = {-1, -1};
    int r = sandbox_prepare(a, c, err);
    if (r == 0 && (r = agent_pipe_high(go)) < 0)
        berr_set(err, -r, "go pipe");
    c->go_rd = go[0];
    c->go_wr = go[1];
    if (r == 0)
        r = agent_spawn_executor(a, c, launch_spawned, err); /* takes go_rd */
    ready_refill(); /* the executor has its CPU now: the next dirs, in the idle time */
    if (r < 0) {
        closep(&c->go_wr);
        return r;
    }
    _cleanup_berr_ struct berr *cerr = NULL;
    if (sandbox_cgroups(a, c, &cerr) < 0) {
        c->launch_error = xstrdup(berr_msg(cerr));
        closep(&c->go_wr); /* its EOF: the executor gives up too */
        return 0;
    }
    watch_oom(a, c);
    if (ctr_net_mode(c) != ISO_NET_BRIDGE) {
        _cleanup_close_ int go_wr = TAKE_FD(c->go_wr);
        if (launch_go(go_wr, &cerr) < 0)
            c->launch_error = xstrdup(berr_msg(cerr));
    }
    return 0;
}

/* The agent's defaults for what the spec left out. */
static void fill_defaults(struct agent *a, struct container *c)
{
    struct ml_task_spec *s = &c->spec;
    if (!s->name)
        s->name = c->task_id[0] ? xstrdup(c->task_id) : xasprintf("c-%.8s", c->id);
    if (!s->user)
        s->user = xstrdup(a->cfg.task_user);
    if (!s->role)
        s->role = xstrdup("*");
    if (!s->pids)
        s->pids = a->cfg.pids_max;
    if (s->cpus_limit == ML_CPUS_LIMIT_DEFAULT) {
        bool burst = streq(a->cfg.cpu_limit, "burst");
        s->cpus_limit = burst ? ML_CPUS_LIMIT_NONE : ML_CPUS_LIMIT_SET;
        s->cpus_limit_millis = burst ? 0 : s->cpus_millis;
    }
}

/* Checks that need the table and the host: a free name, the policy, resources, the network
 * (mode, ports, an address), a user namespace slice. */
static int admit(struct agent *a, struct container *c, enum ctr_origin origin, struct berr **err)
{
    struct container *o = ctr_find_name(a, c->spec.name);
    if (o)
        return berr_setc(err, EEXIST, BERR_CONFLICT, "name '%s' is used by container '%s'",
                         c->spec.name, o->id);
    int r;
    if ((r = policy_check(a, c, origin == CTR_ORIGIN_MASTER, err)) < 0 ||
        (r = resources_admit(a, c, err)) < 0 || (r = net_admit(a, c, err)) < 0 ||
        (r = policy_userns_pick(a, c, err)) < 0)
        return r;
    return 0;
}

int ctr_launch(struct agent *a, enum ctr_origin origin, struct ml_task_spec *spec,
               const char *task_id, void (*launched)(struct agent *a, const char *id, void *arg),
               void *arg, struct container **ret, struct berr **err)
{
    struct container *c = ctr_new();
    c->spec = *spec;
    memset(spec, 0, sizeof(*spec)); /* taken */
    snprintf(c->task_id, sizeof(c->task_id), "%s", task_id ? task_id : "");
    do {
        if (random_hex(c->id, 16) < 0) {
            ctr_free(c);
            return berr_setc(err, EIO, BERR_INTERNAL, "no randomness for an id");
        }
    } while (ctr_find_id(a, c->id));
    fill_defaults(a, c);
    int r = admit(a, c, origin, err);
    if (r < 0) {
        ctr_free(c);
        return r;
    }
    c->created_at = now_realtime();
    c->launched_at_ns = now_monotonic_ns();
    c->state = ML_STAGING;
    /* the record is queued before any side effect (dirs, cgroups, processes) and committed
     * with this turn, STARTING once the executor is spawned: a crash before the first commit
     * leaves dirs, cgroups or an executor without a record, and one before STARTING's a
     * STAGING record, which the next start drops; the sweep removes the rest (recover.c,
     * orphans.c) */
    ctr_save(a, c);
    ctr_link(a, c);
    a->launches_total++;
    for (unsigned i = 0; i < a->n_watchers; i++)
        a->watchers[i](a, c); /* the link binds the task to the container now */
    agent_fault(a, "launch-after-record");
    _cleanup_berr_ struct berr *lerr = NULL;
    c->launched = launched;
    c->launched_arg = arg;
    *ret = c;
    if (launch_sandbox(a, c, &lerr) < 0) {
        launch_failed(a, c, berr_msg(lerr));
        launch_told(a, c);
    }
    return 0;
}

/* Take over a container that was live (STARTING or RUNNING) when the agent last stopped:
 * re-adopt its executor when it still runs (the same process: pid, start time, cgroup),
 * else learn how the task ended from the status.json the executor left, else LOST. */
int ctr_adopt(struct agent *a, struct container *c, struct berr **ret_err)
{
    /* Every "cannot tell" (EMFILE, EACCES...) stops here: concluding "gone" from an error
     * would make the sweep kill a running task. */
    _cleanup_berr_ struct berr *err = NULL;
    int r = iso_cgroup_open(a->host, c->id, &c->cg, &err);
    if (r < 0 && r != -ENOENT)
        return berr_setx(ret_err, -r, "container '%s': reopen cgroups: %s", c->id, berr_msg(err));
    if (r < 0)
        c->cg = NULL;
    berr_free(&err);
    /* pidfd first, then the checks (proc_is_executor says why) */
    int pidfd = c->pid > 0 ? (int) syscall(SYS_pidfd_open, c->pid, 0) : -1;
    if (c->pid > 0 && pidfd < 0 && errno != ESRCH)
        return berr_set(ret_err, errno, "container '%s': pidfd_open(%d)", c->id, (int) c->pid);
    if (pidfd >= 0 && (r = proc_is_executor(a, c, pidfd)) <= 0) {
        close(pidfd);
        pidfd = -1;
        if (r < 0)
            return berr_set(ret_err, -r, "container '%s': check executor pid %d in /proc", c->id,
                            (int) c->pid);
    }
    if (pidfd < 0) {
        /* gone: status.json says how, or a kill we had recorded, or an OOM kill; else LOST */
        executor_ended(a, c, -1);
        return 0;
    }
    c->pidfd = pidfd;
    bool changed = false;
    if (!c->pid_start) {
        c->pid_start = proc_start_time(c->pid); /* a record of an older agent */
        changed = true;
    }
    if (c->state != ML_RUNNING) {
        /* STARTING: the RUNNING line went to the old agent's pipe; the executor's start is
         * the closest truthful time we have */
        if (c->started_at <= 0)
            c->started_at = proc_ticks_to_realtime(c->pid_start);
        ctr_set_state(a, c, ML_RUNNING, ML_REASON_NONE);
    } else if (changed) {
        ctr_save(a, c);
    }
    c->ev_exit = ctr_event_new(a, c, pidfd, EV_READ, on_exit_ev);
    watch_oom(a, c);
    /* debug: with a thousand containers, recover.c's one summary line is what helps */
    log_debug("container '%s' (%s): re-adopted executor pid %d", c->id, c->spec.name, (int) c->pid);
    if (c->kill_requested) {
        /* a kill was under way when the agent stopped; its grace period has had the
         * restart's time: finish it with SIGKILL (the end comes through the pidfd) */
        log_info("container '%s': completing the kill requested before the restart", c->id);
        if (c->cg ? iso_cgroup_kill(c->cg, &err) < 0
                  : syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) < 0)
            log_warning("container '%s': kill: %s", c->id, err ? berr_msg(err) : strerror(errno));
    }
    return 0;
}
