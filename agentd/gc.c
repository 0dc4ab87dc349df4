/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/gc.c - sandbox garbage collection. A container that ended keeps its sandbox (its
 * output and files), its runtime dir and its record for [agent] gc_delay, then it is removed
 * as DELETE would (lifecycle.c ctr_remove). When the file system of work_dir is used above
 * gc_disk_watermark, ended containers go sooner, oldest end first, until it is below again.
 * A live container is never a candidate, nor, for the watermark, one that ended less than
 * gc_min_age ago: a live task filling the disk must not make every other container vanish
 * the moment it ends, with its logs and its reason (review M3). One timer drives it: the next
 * due removal, at most gc_interval away for the watermark check, and at once when a task
 * ends with the disk above the watermark (the disk is looked at at every end).
 *
 * Rejected: Mesos's scheme (shorten every sandbox's age by the disk usage) - it removes
 * sandboxes a bit earlier everywhere even when one more removal would do; oldest-first to a
 * watermark keeps as much as fits and is easy to predict. */
#include <string.h>
#include <sys/statvfs.h>

#include "agentd/agent.h"

/* Percent of the file system used, as df counts it (blocks reserved for root excluded). */
static int disk_used_pct(struct agent *a, double *ret)
{
    struct statvfs sv;
    if (statvfs(a->cfg.work_dir, &sv) < 0)
        return -errno;
    double used = (double) (sv.f_blocks - sv.f_bfree), avail = (double) sv.f_bavail;
    *ret = used + avail > 0 ? 100.0 * used / (used + avail) : 0;
    return 0;
}

static double ended_at(const struct container *c)
{
    return c->finished_at > 0 ? c->finished_at : c->created_at;
}

static void gc_remove(struct agent *a, struct container *c, const char *why)
{
    char id[17];
    snprintf(id, sizeof(id), "%s", c->id);
    _cleanup_free_ char *name = xstrdup(c->spec.name);
    _cleanup_berr_ struct berr *err = NULL;
    if (ctr_remove(a, c, &err) < 0)
        log_warning("gc: container '%s' (%s): %s", id, name, berr_msg(err));
    else
        log_info("gc: removed container '%s' (%s): %s", id, name, why);
}

/* The container that ended first, at least gc_min_age ago; *ret_young counts the ended ones
 * too recent to go. */
static struct container *oldest_ended(struct agent *a, double now, unsigned *ret_young)
{
    struct container *best = NULL;
    double min_age = (double) a->cfg.gc_min_age_ms / 1000.0;
    *ret_young = 0;
    for (struct container *c = a->containers; c; c = c->next) {
        if (!ml_state_terminal(c->state))
            continue;
        if (ended_at(c) + min_age > now)
            (*ret_young)++;
        else if (!best || ended_at(c) < ended_at(best))
            best = c;
    }
    return best;
}

static void gc_schedule(struct agent *a, double seconds)
{
    if (!a->ev_gc)
        return;
    if (seconds < 0)
        seconds = 0;
    time_t whole = (time_t) seconds;
    struct timeval tv = {.tv_sec = whole,
                         .tv_usec = (suseconds_t) ((seconds - (double) whole) * 1e6)};
    evtimer_add(a->ev_gc, &tv);
}

static void gc_pass(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct agent *a = arg;
    double now = now_realtime(), delay = (double) a->cfg.gc_delay_ms / 1000.0;
    /* by age: removing unlinks the container, so restart the walk after each */
    for (bool again = true; again;) {
        again = false;
        for (struct container *c = a->containers; c; c = c->next) {
            if (ml_state_terminal(c->state) && ended_at(c) + delay <= now) {
                gc_remove(a, c, "older than gc_delay");
                again = true;
                break;
            }
        }
    }
    /* by disk use, one removal at a time: its space only comes back once trash.c's `rm`
     * is done, and until then the disk would look as full as before (removing on would
     * take every ended container, the newest too) */
    double pct = 0;
    unsigned removed = 0;
    bool pending = a->trash != NULL;
    while (!pending && disk_used_pct(a, &pct) == 0 && pct >= (double) a->cfg.gc_disk_watermark) {
        unsigned young;
        struct container *c = oldest_ended(a, now, &young);
        if (!c) {
            if (!a->gc_full_warned)
                log_warning("gc: '%s' is %.0f%% used (gc_disk_watermark %llu%%) and no ended "
                            "container is left to remove (%u ended less than gc_min_age ago "
                            "are kept: the space is held by live tasks or recent ones)",
                            a->cfg.work_dir, pct, (unsigned long long) a->cfg.gc_disk_watermark,
                            young);
            a->gc_full_warned = true;
            break;
        }
        char why[96];
        snprintf(why, sizeof(why), "'%s' %.0f%% used, above gc_disk_watermark", a->cfg.work_dir,
                 pct);
        gc_remove(a, c, why);
        removed++;
        pending = true; /* its dirs go to the trash once the removal is committed */
    }
    if (removed ||
        (!pending && disk_used_pct(a, &pct) == 0 && pct < (double) a->cfg.gc_disk_watermark))
        a->gc_full_warned = false;
    /* next: the next ended container's due time, or the watermark check */
    double next = (double) a->cfg.gc_interval_ms / 1000.0;
    for (struct container *c = a->containers; c; c = c->next)
        if (ml_state_terminal(c->state) && ended_at(c) + delay - now < next)
            next = ended_at(c) + delay - now;
    /* at least 1 s: a removal that keeps failing must not spin the loop; 50 ms while a
     * removal is under way, to look at the disk again soon after it */
    gc_schedule(a, pending ? 0.05 : next < 1.0 ? 1.0 : next);
}

/* A watcher of transitions (lifecycle.c): a task that ended may make room now. The disk is
 * looked at (one statvfs) and a pass runs at once only when it is above the watermark;
 * else the timer is brought forward to this container's own due time when that is sooner.
 * A pass at every end walked every container twice (with 1,000 ends, 2% of the agent's CPU
 * while they were killed; issue #18). */
static void gc_on_transition(struct agent *a, struct container *c)
{
    if (!ml_state_terminal(c->state))
        return;
    double pct = 0;
    if (disk_used_pct(a, &pct) == 0 && pct >= (double) a->cfg.gc_disk_watermark) {
        gc_schedule(a, 0);
        return;
    }
    double due = ended_at(c) + (double) a->cfg.gc_delay_ms / 1000.0 - now_realtime();
    struct timeval at, now, left;
    if (a->ev_gc && evtimer_pending(a->ev_gc, &at)) {
        event_base_gettimeofday_cached(a->base, &now);
        timersub(&at, &now, &left);
        if ((double) left.tv_sec + (double) left.tv_usec / 1e6 <= due)
            return;
    }
    gc_schedule(a, due);
}

void gc_start(struct agent *a)
{
    a->ev_gc = evtimer_new(a->base, gc_pass, a);
    ctr_watch_add(a, gc_on_transition);
    gc_schedule(a, 0);
}

void gc_stop(struct agent *a)
{
    if (a->ev_gc)
        event_free(a->ev_gc);
    a->ev_gc = NULL;
}
