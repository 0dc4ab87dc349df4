/* SPDX-License-Identifier: Apache-2.0 */
/* apps/plan.c - the deployment step plan (docs/apps.md "upgrade_strategy"): given an app's
 * instances (of the version kept or of others, running, healthy, being killed), how many of
 * the kept version to launch now and which to kill, so that at least ceil(mhc × N) stay
 * healthy and at most floor((1 + moc) × N) occupy resources. The same plan scales (no other
 * version: launch the missing, kill the extras newest and unhealthy first), replaces ended
 * instances and rolls updates. Pure: tests/unit/apps_test.c. */
#include <math.h>
#include <string.h>

#include "apps/apps.h"

unsigned app_plan_min_healthy(unsigned target, double mhc)
{
    return (unsigned) ceil(mhc * target - 1e-9);
}

unsigned app_plan_max_running(unsigned target, double moc, double mhc)
{
    unsigned max = (unsigned) floor((1 + moc) * target + 1e-9);
    /* with both bounds tight nothing could move: one more may run (Marathon does the same) */
    if (max <= target && app_plan_min_healthy(target, mhc) >= target && target > 0)
        max = target + 1;
    return max;
}

/* Kill order among candidates: not running, then unhealthy, then the newest. */
static const struct plan_inst *sort_base;
static int kill_cmp(const void *a, const void *b)
{
    const struct plan_inst *x = &sort_base[*(const size_t *) a],
                           *y = &sort_base[*(const size_t *) b];
    if (x->running != y->running)
        return x->running ? 1 : -1;
    if (x->healthy != y->healthy)
        return x->healthy ? 1 : -1;
    return x->started > y->started ? -1 : x->started < y->started ? 1 : 0;
}

static void sort_kill(const struct plan_inst *in, size_t *idx, size_t n)
{
    sort_base = in;
    if (n > 1)
        qsort(idx, n, sizeof(*idx), kill_cmp);
}

void app_plan(const struct plan_inst *in, size_t n, unsigned target, double mhc, double moc,
              bool hold, struct plan *p)
{
    *p = (struct plan){.kill = xcalloc(n ? n : 1, sizeof(size_t))};
    size_t *cur = xcalloc(n ? n : 1, sizeof(size_t)), *old = xcalloc(n ? n : 1, sizeof(size_t));
    size_t n_cur = 0, n_old = 0, occupying = 0, healthy = 0, cur_healthy = 0, old_all = 0;
    for (size_t i = 0; i < n; i++) {
        occupying++;
        if (!in[i].current)
            old_all++;
        if (in[i].killing)
            continue;
        if (in[i].healthy)
            healthy++;
        if (in[i].current) {
            cur[n_cur++] = i;
            cur_healthy += in[i].healthy;
        } else {
            old[n_old++] = i;
        }
    }
    if (hold) { /* replace only */
        size_t live = n_cur + n_old;
        p->launch = live < target ? (unsigned) (target - live) : 0;
        goto out;
    }
    /* current ones beyond target: the worst and newest go */
    sort_kill(in, cur, n_cur);
    size_t extra = n_cur > target ? n_cur - target : 0;
    for (size_t k = 0; k < extra; k++) {
        p->kill[p->n_kill++] = cur[k];
        healthy -= in[cur[k]].healthy;
        cur_healthy -= in[cur[k]].healthy;
    }
    n_cur -= extra;
    /* old ones: the unhealthy at once (they serve no one), the healthy while enough stay */
    unsigned min_h = app_plan_min_healthy(target, mhc);
    sort_kill(in, old, n_old);
    for (size_t k = 0; k < n_old; k++) {
        const struct plan_inst *x = &in[old[k]];
        if (x->healthy && healthy < (size_t) min_h + 1)
            continue;
        p->kill[p->n_kill++] = old[k];
        healthy -= x->healthy;
    }
    unsigned max = app_plan_max_running(target, moc, mhc);
    if (n_cur < target && occupying < max) {
        size_t want = target - n_cur, room = max - occupying;
        p->launch = (unsigned) (want < room ? want : room);
    }
    p->done = old_all == 0 && n_cur == target && cur_healthy == target && occupying == target;
out:
    free(cur);
    free(old);
}
