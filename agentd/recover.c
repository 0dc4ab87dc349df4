/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/recover.c - rebuilds the container table from state.db when the agent starts, and
 * makes what is on the host agree with it. With [agent] recover = reconnect (the default):
 * records whose launch never finished (STAGING: no client was told of them) are dropped;
 * live containers are re-adopted when their executor is still there (lifecycle.c
 * ctr_adopt: same pid, same start time, in the container's cgroups), else finished from
 * the status.json the executor left, else LOST/AGENT_RESTARTED_LOST; then orphans.c removes
 * whatever no record owns. With cleanup, every record is dropped and everything swept.
 * A state.db that is missing while a task may still run (an executor, a cgroup holding a
 * process), or that SQLite cannot read, stops the start before anything is touched: running
 * tasks are never killed because their records could not be read. Missing next to leftovers
 * without a process (a fresh work_dir beside empty cgroups), it starts and sweeps them. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "agentd/agent.h"

/* One row of state.db into the table. A row that does not parse stops the start: its task
 * may be running, and without the record the sweep would take it for an orphan. */
static int load_one(struct agent *a, const char *id, const char *json, uint64_t pid_start,
                    const char *boot_id, struct berr **err)
{
    struct container *c = ctr_new();
    if (ctr_record_decode(id, json, c, err) < 0) {
        ctr_free(c);
        return -EBADMSG;
    }
    c->pid_start = pid_start;
    if (boot_id && !streq(boot_id, a->boot_id)) {
        /* recorded before the machine rebooted: that pid is someone else now */
        c->pid = 0;
        c->pid_start = 0;
    }
    ctr_link(a, c);
    return 0;
}

/* The record of a launch that never reached STARTING: the client got no 201, the executor
 * (if one was cloned) may be running. Forget it; the sweep kills and removes the rest. */
static void drop_unfinished(struct agent *a, struct container *c)
{
    log_info("container '%s' (%s): its launch never finished, removing it", c->id, c->spec.name);
    store_drop(a, c->id);
    ctr_unlink(a, c);
    ctr_free(c);
}

/* Move state.db (and its -wal and -shm) aside as state.db.corrupt-TIME, for a post mortem. */
static void quarantine(struct agent *a)
{
    char suffix[32];
    snprintf(suffix, sizeof(suffix), "corrupt-%lld", (long long) now_realtime());
    static const char *const parts[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
        _cleanup_free_ char *from = xasprintf("%s/state.db%s", a->cfg.work_dir, parts[i]);
        _cleanup_free_ char *to = xasprintf("%s/state.db.%s%s", a->cfg.work_dir, suffix, parts[i]);
        if (rename(from, to) == 0)
            log_warning("moved '%s' aside to '%s'", from, to);
    }
}

static const char fix_hint[] =
        "running tasks are left alone. Restore it, or start once with --recover=cleanup to "
        "kill every task of this agent and start empty";

/* Open state.db. Missing: fine on a first start, and next to what an earlier agent left
 * that holds no process (empty cgroups, dirs, mounts: the sweep after the load removes them,
 * with a warning here); refused (err) while an executor runs or a cgroup of the parent
 * holds a process, unless cleanup: without the records, a live task would be taken for an
 * orphan and killed. Unreadable: refused unless cleanup, which moves it aside. */
static int open_state(struct agent *a, bool cleanup, struct berr **err)
{
    _cleanup_berr_ struct berr *oerr = NULL;
    int r = store_open(a, false, &oerr);
    if (r == 0)
        return 0;
    if (r == -ENOENT) {
        struct orphan_counts n;
        orphans_sweep(a, true, &n); /* the table is empty: everything counts */
        if ((n.executors || n.busy_cgroups) && !cleanup)
            return berr_setx(err, ENOENT,
                             "state.db: '%s/state.db' is missing, but %u executor(s) and %u "
                             "cgroup(s) with processes of this agent are still there (and %u "
                             "container dir(s)): refusing to start, so they are not taken for "
                             "orphans; %s",
                             a->cfg.work_dir, n.executors, n.busy_cgroups, n.dirs, fix_hint);
        if (n.executors || n.busy_cgroups)
            log_warning("state.db is missing: --recover=cleanup removes %u executor(s), %u "
                        "cgroup(s) and %u container dir(s)",
                        n.executors, n.cgroups, n.dirs);
        else if (n.cgroups || n.dirs || n.mounts)
            log_warning("state.db: '%s/state.db' is missing; removing what an earlier agent "
                        "left without a process: %u empty cgroup(s), %u container dir(s), %u "
                        "mount(s)",
                        a->cfg.work_dir, n.cgroups, n.dirs, n.mounts);
        return store_open(a, true, err);
    }
    if (r == -EBADMSG && cleanup) {
        log_warning("state.db: %s", berr_msg(oerr));
        quarantine(a);
        return store_open(a, true, err);
    }
    if (r == -EBADMSG)
        return berr_setx(err, EBADMSG, "state.db: %s; refusing to start: %s", berr_msg(oerr),
                         fix_hint);
    return berr_setx(err, berr_errno(oerr) ? berr_errno(oerr) : EIO, "state.db: %s",
                     berr_msg(oerr));
}

int agent_recover(struct agent *a, struct berr **err)
{
    uint64_t t0 = now_monotonic_ns();
    bool cleanup = streq(a->cfg.recover, "cleanup");
    if (read_file_at(AT_FDCWD, "/proc/sys/kernel/random/boot_id", a->boot_id, sizeof(a->boot_id)) <
        0)
        a->boot_id[0] = 0;
    int r = open_state(a, cleanup, err);
    if (r < 0)
        return r;
    store_checkpoints_start(a); /* checkpoint.c: off the loop from here on */
    /* cleanup does not need to read the records (they may be what is broken) */
    _cleanup_berr_ struct berr *lerr = NULL;
    int n = cleanup ? store_clear(a) : store_load(a, load_one, &lerr);
    if (n < 0) {
        ctr_free_all(a);
        if (cleanup)
            return berr_setx(err, EIO, "state.db: cannot remove the records");
        return berr_setx(err, berr_errno(lerr), "state.db: %s; refusing to start: %s",
                         berr_msg(lerr), fix_hint);
    }
    agent_fault(a, "recover-after-load");
    unsigned adopted = 0, ended = 0, lost = 0, dropped = cleanup ? (unsigned) n : 0;
    /* every change below is queued, and committed at once by the store_flush after them */
    for (struct container *c = a->containers, *next; c; c = next) {
        next = c->next;
        if (c->state == ML_STAGING) {
            drop_unfinished(a, c);
            dropped++;
        } else if (!ml_state_terminal(c->state)) {
            _cleanup_berr_ struct berr *aerr = NULL;
            if (ctr_adopt(a, c, &aerr) < 0) {
                /* nothing is committed or swept: the next start finds everything as it was */
                store_discard(a);
                ctr_free_all(a);
                return berr_setx(err, berr_errno(aerr),
                                 "%s; refusing to start: running tasks are left alone (raise "
                                 "LimitNOFILE if that is the cause)",
                                 berr_msg(aerr));
            }
            if (!ml_state_terminal(c->state))
                adopted++;
            else if (c->reason == ML_REASON_AGENT_RESTARTED_LOST)
                lost++;
            else
                ended++;
        }
    }
    if (store_flush(a) < 0)
        return berr_setx(err, EIO, "state.db: cannot write");
    agent_fault(a, "recover-before-sweep");
    struct orphan_counts o;
    orphans_sweep(a, false, &o);
    log_info("recovered %u record(s) in %.1f ms (%s): %u re-adopted, %u ended while the agent "
             "was down, %u lost, %u %s; orphans removed: %u executor(s), %u cgroup(s), %u "
             "mount(s), %u dir(s), %u veth(s), %u port mapping(s)",
             (unsigned) n, (double) (now_monotonic_ns() - t0) / 1e6,
             cleanup ? "cleanup" : "reconnect", adopted, ended, lost, dropped,
             cleanup ? "dropped" : "unfinished launch(es) dropped", o.executors, o.cgroups,
             o.mounts, o.dirs, o.links, o.rules);
    return 0;
}
