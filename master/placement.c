/* SPDX-License-Identifier: Apache-2.0 */
/* master/placement.c - where the master puts a task: a pure decision over a small array of
 * candidate agents (what each may hold and what the master already placed there), with no
 * registry, sockets or SQLite behind it, so tests/unit/master_test.c checks every rule.
 * agents.c builds the array from its records and maps the answer back; tasks.c asks it for a
 * submitted task. The agent still admits the task itself (its role reservations). */
#include <limits.h>

#include "master/master.h"

bool master_place_eligible(const struct m_place_agent *a)
{
    return a->reachable && a->connected && a->alloc_cpus > 0 && a->alloc_mem > 0;
}

/* The free share of a once (cpus, mem) are placed on it: the smaller of its cpu and mem
 * fractions, or -1 when the task does not fit. placed may exceed alloc (an agent that came
 * back with less than before): then nothing fits. */
static double free_share_after(const struct m_place_agent *a, uint64_t cpus, uint64_t mem)
{
    if (a->placed_cpus > a->alloc_cpus || cpus > a->alloc_cpus - a->placed_cpus ||
        a->placed_mem > a->alloc_mem || mem > a->alloc_mem - a->placed_mem)
        return -1;
    double fc = (double) (a->alloc_cpus - a->placed_cpus - cpus) / (double) a->alloc_cpus;
    double fm = (double) (a->alloc_mem - a->placed_mem - mem) / (double) a->alloc_mem;
    return fc < fm ? fc : fm;
}

int master_place(const struct m_place_agent *agents, size_t n, uint64_t cpus, uint64_t mem,
                 bool binpack)
{
    int best = -1;
    double best_share = 0;
    for (size_t i = 0; i < n && i < INT_MAX; i++) {
        const struct m_place_agent *a = &agents[i];
        if (!master_place_eligible(a))
            continue;
        double s = free_share_after(a, cpus, mem);
        if (s < 0)
            continue;
        /* equal shares are common (identical agents, both empty): fewer tasks first, so
         * spread spreads even when the shares cannot tell the agents apart */
        bool better = best < 0 || (binpack ? s < best_share : s > best_share) ||
                      (s == best_share && a->placed_tasks < agents[best].placed_tasks);
        if (better) {
            best = (int) i;
            best_share = s;
        }
    }
    return best;
}
