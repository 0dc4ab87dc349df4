/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/kill.c - the kill and the removal of a container (lifecycle.c's state machine has
 * the rest): a kill is recorded, then delivered to the executor (SI_QUEUE with the grace
 * period), with a backstop that kills the cgroup if the executor has not ended the task by
 * then; a removal drops the record, then moves the dirs to the trash. The end itself comes
 * through the executor's pidfd (lifecycle.c). Async callbacks carry the id, never a pointer. */
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>

#include "agentd/agent.h"

/* A task being SIGKILLed dies at once only without its CPU quota: its exit (unmapping its
 * memory, closing its files) is charged to its cgroup, and a 0.001-CPU task waited out
 * periods of its quota, 100 ms and more (issue #18). The quota is lifted right before the
 * SIGKILL (the parent's still bounds it), not before: the grace period is the task's own
 * time, under its own limits. */
static void unthrottle(struct container *c)
{
    _cleanup_berr_ struct berr *err = NULL;
    if (c->cg && iso_cgroup_unthrottle(c->cg, &err) < 0)
        log_debug("container '%s': lift the CPU quota: %s", c->id, berr_msg(err));
}

static void on_backstop(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct ctr_ref *r = arg;
    struct container *c = ctr_find_id(r->a, r->id);
    if (!c || !c->cg || ml_state_terminal(c->state))
        return;
    /* the executor should have SIGKILLed the sandbox by now; do it from outside, the task
     * through its cgroup and the executor (in the supervisor cgroup) through its pidfd */
    log_warning("container '%s': still alive after the grace period, killing its cgroup", c->id);
    unthrottle(c);
    _cleanup_berr_ struct berr *err = NULL;
    if (iso_cgroup_kill(c->cg, &err) < 0)
        log_warning("container '%s': kill: %s", c->id, berr_msg(err));
    if (c->pidfd >= 0)
        (void) syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0);
}

/* Signals that end a task: the executor gives SIGTERM/INT/HUP/QUIT a grace period, then
 * SIGKILL. Any other signal (USR1, USR2) is only passed on (review M2). */
static bool ends_task(int sig)
{
    return sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT || sig == SIGKILL;
}

static int send_to_executor(struct container *c, int sig, uint64_t grace_ms, struct berr **err)
{
    /* SI_QUEUE carries the grace period to the executor, which escalates to SIGKILL */
    siginfo_t si = {0};
    si.si_signo = sig;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    si.si_value.sival_int = (int) (grace_ms > INT32_MAX ? INT32_MAX : grace_ms);
    if (syscall(SYS_pidfd_send_signal, c->pidfd, sig, &si, 0) < 0 && errno != ESRCH)
        return berr_set(err, errno, "signal berth-executor of '%s'", c->id);
    return 0;
}

static void on_grace_over(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct ctr_ref *r = arg;
    struct container *c = ctr_find_id(r->a, r->id);
    if (c && !ml_state_terminal(c->state))
        unthrottle(c); /* the executor SIGKILLs the task now */
}

/* A later kill may shorten the grace, never lengthen it (review L7): the executor keeps its
 * earlier deadline too. The backstop kills the cgroup if the executor has not by then (its
 * handlers may not be installed yet, or it may be stuck). */
static void arm_backstop(struct agent *a, struct container *c, uint64_t grace_ms)
{
    struct timeval tv = {.tv_sec = (time_t) (grace_ms / 1000) + 2,
                         .tv_usec = (suseconds_t) (grace_ms % 1000) * 1000};
    struct timeval due, now, left;
    if (c->ev_backstop && evtimer_pending(c->ev_backstop, &due)) {
        event_base_gettimeofday_cached(a->base, &now);
        timersub(&due, &now, &left);
        if (timercmp(&left, &tv, <))
            return;
    }
    ctr_event_free(&c->ev_backstop);
    c->ev_backstop = ctr_event_new(a, c, -1, 0, on_backstop);
    evtimer_add(c->ev_backstop, &tv);
    struct timeval g = {.tv_sec = (time_t) (grace_ms / 1000),
                        .tv_usec = (suseconds_t) (grace_ms % 1000) * 1000};
    ctr_event_free(&c->ev_grace);
    c->ev_grace = ctr_event_new(a, c, -1, 0, on_grace_over);
    evtimer_add(c->ev_grace, &g);
}

struct kill_order {
    char id[17];
    int sig;
    uint64_t grace_ms;
};

static void kill_committed(struct agent *a, int r, void *arg)
{
    (void) r; /* not stored (logged): the kill still goes out */
    struct kill_order *k = arg;
    struct container *c = ctr_find_id(a, k->id);
    _cleanup_berr_ struct berr *err = NULL;
    if (c && !ml_state_terminal(c->state)) {
        agent_fault(a, "kill-after-record");
        if (k->sig == SIGKILL || k->grace_ms == 0)
            unthrottle(c);
        if (k->sig == SIGKILL || c->pidfd < 0) {
            /* the executor through its pidfd (it lives in the supervisor cgroup): the end
             * comes through the pidfd. When it is pid 1 of the sandbox's pid namespace, its
             * death kills every process of the sandbox, and the kernel has reaped them before
             * the pidfd tells (zap_pid_ns_processes): no cgroup kill (on v1 a freeze, a kill
             * round over six cgroup.procs and a thaw; issue #18's kill burst). Otherwise one
             * write of cgroup.kill or one kill round too. No executor yet (STAGING, its spawn
             * under way): the spawner thread kills it as its clone returns (launch.c
             * agent_spawn_kill), before its task can have begun */
            bool ns_dies = c->pid1_executor && c->pidfd >= 0;
            if (c->cg && !ns_dies && iso_cgroup_kill(c->cg, &err) < 0)
                log_warning("container '%s': kill: %s", c->id, berr_msg(err));
            if (c->pidfd >= 0)
                (void) syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0);
            else if (c->state == ML_STAGING)
                agent_spawn_kill(c->id);
        } else if (send_to_executor(c, k->sig, k->grace_ms, &err) < 0) {
            log_warning("container '%s': kill: %s", c->id, berr_msg(err));
        } else {
            arm_backstop(a, c, k->grace_ms);
        }
        agent_fault(a, "kill-after-signal");
    }
    free(k);
}

int ctr_kill(struct agent *a, struct container *c, int sig, uint64_t grace_ms, struct berr **err)
{
    if (ml_state_terminal(c->state))
        return berr_setc(err, EINVAL, BERR_CONFLICT, "container '%s' is already %s", c->id,
                         ml_state_name(c->state));
    if (!ends_task(sig)) {
        if (c->pidfd < 0)
            return berr_setc(err, ESRCH, BERR_CONFLICT, "container '%s' has no executor to signal",
                             c->id);
        return send_to_executor(c, sig, 0, err);
    }
    /* recorded first, delivered once committed: an agent that dies before the task does
     * finishes the kill when it re-adopts the executor (ctr_adopt), and reports KILLED */
    c->kill_requested = true;
    ctr_save(a, c);
    struct kill_order *k = xzalloc(sizeof(*k));
    snprintf(k->id, sizeof(k->id), "%s", c->id);
    k->sig = sig;
    k->grace_ms = grace_ms;
    store_after_write(a, kill_committed, k); /* not behind the syncs: store.c */
    return 0;
}

static void remove_committed(struct agent *a, int r, void *arg)
{
    _cleanup_free_ char *id = arg;
    if (r < 0)
        return; /* the record is still there: its dirs stay with it (logged) */
    agent_fault(a, "remove-after-record");
    char path[4096];
    for (int i = 0; i < 2; i++) {
        (i == 0 ? sandbox_path : runtime_path)(a, id, path, sizeof(path));
        int t = trash_move(a, path);
        if (t < 0 && t != -ENOENT)
            log_warning("container '%s': remove '%s': %s (the next start retries)", id, path,
                        strerror(-t));
    }
}

int ctr_remove(struct agent *a, struct container *c, struct berr **err)
{
    if (!ml_state_terminal(c->state))
        return berr_setc(err, EBUSY, BERR_CONFLICT, "container '%s' is %s: kill it first", c->id,
                         ml_state_name(c->state));
    /* the record goes first, the dirs once that is committed: a crash halfway leaves dirs
     * without a record, which the next start removes (orphans.c); the other order would
     * leave a record of a container whose sandbox is gone */
    store_drop(a, c->id);
    store_after_commit(a, remove_committed, xstrdup(c->id));
    ctr_unlink(a, c);
    if (c->end_unannounced) /* its end is not on disk yet: ended_committed, first, frees it */
        ctr_limbo_add(a, c);
    else
        ctr_free(c);
    return 0;
}
