/* SPDX-License-Identifier: Apache-2.0 */
/* master/placement.h - private header of berth-master's placement (placement.c): where the
 * builtin framework's tasks go, over plain numbers. Included by master.h. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* placement.c: where a task goes, decided over plain numbers (tests/unit/master_test.c).
 * One candidate agent: */
struct m_place_agent {
    bool reachable, connected;        /* REACHABLE, and its event stream is open */
    uint64_t alloc_cpus, alloc_mem;   /* allocatable (millicores, bytes) */
    uint64_t placed_cpus, placed_mem; /* what the master's live tasks hold there */
    unsigned placed_tasks;
};
/* May a task go to a at all: reachable, connected, some allocatable cpus and mem? */
bool master_place_eligible(const struct m_place_agent *a);
/* The index of the agent a task of cpus (millicores) and mem (bytes) goes to, or -1 when it
 * fits on none that is eligible. spread: the agent left with the largest free share (the
 * smaller of its free cpu and mem fractions after the task); binpack: the smallest share
 * that still fits. Equal shares: fewer tasks, then the earlier agent. */
int master_place(const struct m_place_agent *agents, size_t n, uint64_t cpus, uint64_t mem,
                 bool binpack);
