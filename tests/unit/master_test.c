/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/master_test.c - master/placement.c: where the master puts a task. spread takes
 * the agent left with the largest free share (the smaller of its cpu and mem fractions),
 * binpack the smallest that still fits; equal shares go to the agent with fewer tasks, then
 * to the earlier one; full, unreachable, disconnected and empty agents are never chosen.
 * Each rule has a case that fails when the rule changes. No I/O, no root; test_master.py
 * drives the daemon. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
/* clang-format off: cmocka.h needs setjmp.h, stdarg.h and stddef.h before it */
#include <cmocka.h>
/* clang-format on */

#include "master/master.h"

#define GiB (1024ULL * 1024 * 1024)
#define MiB (1024ULL * 1024)

/* An eligible agent: allocatable cpus (millicores) and mem, and what is placed there. */
static struct m_place_agent agent(uint64_t cpus, uint64_t mem, uint64_t pcpus, uint64_t pmem,
                                  unsigned tasks)
{
    return (struct m_place_agent){.reachable = true,
                                  .connected = true,
                                  .alloc_cpus = cpus,
                                  .alloc_mem = mem,
                                  .placed_cpus = pcpus,
                                  .placed_mem = pmem,
                                  .placed_tasks = tasks};
}

static int spread(const struct m_place_agent *a, size_t n, uint64_t cpus, uint64_t mem)
{
    return master_place(a, n, cpus, mem, false);
}

static int binpack(const struct m_place_agent *a, size_t n, uint64_t cpus, uint64_t mem)
{
    return master_place(a, n, cpus, mem, true);
}

static void test_spread_and_binpack_by_free_share(void **state)
{
    (void) state;
    /* half used, empty, three quarters used: after 1 cpu / 1 GiB the shares are 1/4, 3/4, 0 */
    struct m_place_agent a[] = {
            agent(4000, 4 * GiB, 2000, 2 * GiB, 2),
            agent(4000, 4 * GiB, 0, 0, 0),
            agent(4000, 4 * GiB, 3000, 3 * GiB, 3),
    };
    assert_int_equal(spread(a, 3, 1000, 1 * GiB), 1);
    assert_int_equal(binpack(a, 3, 1000, 1 * GiB), 2);
    /* the order of the array does not matter, only the shares */
    struct m_place_agent b[] = {a[2], a[0], a[1]};
    assert_int_equal(spread(b, 3, 1000, 1 * GiB), 2);
    assert_int_equal(binpack(b, 3, 1000, 1 * GiB), 0);
    /* the share is a fraction of each agent's own size: a big agent half full is as free
     * as a small one half full, and an emptier small one wins over a fuller big one */
    struct m_place_agent c[] = {
            agent(64000, 64 * GiB, 48000, 48 * GiB, 9), /* after: 15/64 */
            agent(2000, 2 * GiB, 0, 0, 0),              /* after: 1/2 */
    };
    assert_int_equal(spread(c, 2, 1000, 1 * GiB), 1);
    assert_int_equal(binpack(c, 2, 1000, 1 * GiB), 0);
}

static void test_share_is_the_scarcer_resource(void **state)
{
    (void) state;
    /* agent 0: CPU nearly idle but memory nearly full; agent 1: both half used. After
     * 1 cpu / 512 MiB: agent 0 keeps 7/8 of its cpus but 1/16 of its mem (share 1/16),
     * agent 1 keeps 1/4 and 3/8 (share 1/4). The mean or the cpu fraction alone would pick
     * agent 0 for spread. */
    struct m_place_agent a[] = {
            agent(8000, 8 * GiB, 0, 7 * GiB, 1),
            agent(4000, 4 * GiB, 2000, 2 * GiB, 4),
    };
    assert_int_equal(spread(a, 2, 1000, 512 * MiB), 1);
    assert_int_equal(binpack(a, 2, 1000, 512 * MiB), 0);
    /* the same with cpu the scarce one */
    struct m_place_agent b[] = {
            agent(8000, 8 * GiB, 7000, 0, 1),
            agent(4000, 4 * GiB, 2000, 2 * GiB, 4),
    };
    assert_int_equal(spread(b, 2, 500, 1 * GiB), 1);
    assert_int_equal(binpack(b, 2, 500, 1 * GiB), 0);
}

static void test_ties_go_to_fewer_tasks_then_the_earlier_agent(void **state)
{
    (void) state;
    /* equal shares, different task counts: fewer tasks wins, in both modes and wherever it
     * stands in the array */
    struct m_place_agent a[] = {
            agent(4000, 4 * GiB, 1000, 1 * GiB, 5),
            agent(4000, 4 * GiB, 1000, 1 * GiB, 1),
            agent(4000, 4 * GiB, 1000, 1 * GiB, 3),
    };
    assert_int_equal(spread(a, 3, 1000, 1 * GiB), 1);
    assert_int_equal(binpack(a, 3, 1000, 1 * GiB), 1);
    struct m_place_agent b[] = {a[1], a[0], a[2]};
    assert_int_equal(spread(b, 3, 1000, 1 * GiB), 0);
    assert_int_equal(binpack(b, 3, 1000, 1 * GiB), 0);
    /* all equal: the earlier agent */
    struct m_place_agent c[] = {agent(2000, 2 * GiB, 0, 0, 0), agent(2000, 2 * GiB, 0, 0, 0)};
    assert_int_equal(spread(c, 2, 1000, 1 * GiB), 0);
    assert_int_equal(binpack(c, 2, 1000, 1 * GiB), 0);
    /* a better share beats fewer tasks */
    struct m_place_agent d[] = {
            agent(4000, 4 * GiB, 2000, 2 * GiB, 0),
            agent(4000, 4 * GiB, 0, 0, 7),
    };
    assert_int_equal(spread(d, 2, 1000, 1 * GiB), 1);
    assert_int_equal(binpack(d, 2, 1000, 1 * GiB), 0);
}

static void test_full_agents_are_skipped(void **state)
{
    (void) state;
    /* agent 0 lacks cpus, agent 1 lacks mem, agent 2 fits exactly (share 0 after) */
    struct m_place_agent a[] = {
            agent(4000, 8 * GiB, 3500, 0, 1),
            agent(8000, 4 * GiB, 0, 3500 * MiB, 1),
            agent(4000, 4 * GiB, 3000, 3 * GiB, 3),
    };
    assert_int_equal(spread(a, 3, 1000, 1 * GiB), 2);
    assert_int_equal(binpack(a, 3, 1000, 1 * GiB), 2);
    /* one millicore or one byte more fits nowhere */
    assert_int_equal(spread(a, 3, 1001, 1 * GiB), -1);
    assert_int_equal(binpack(a, 3, 1000, 1 * GiB + 1), -1);
    /* binpack takes the fullest agent that still fits, not one it does not fit on */
    struct m_place_agent b[] = {
            agent(4000, 4 * GiB, 3500, 3 * GiB, 4), /* the fullest: 1 cpu does not fit */
            agent(4000, 4 * GiB, 2000, 2 * GiB, 2),
            agent(4000, 4 * GiB, 0, 0, 0),
    };
    assert_int_equal(binpack(b, 3, 1000, 1 * GiB), 1);
    /* more placed than allocatable (an agent back with less than before): nothing fits,
     * and no unsigned wrap makes it look empty */
    struct m_place_agent c[] = {agent(2000, 2 * GiB, 3000, 1 * GiB, 2),
                                agent(2000, 2 * GiB, 1000, 3 * GiB, 2)};
    assert_int_equal(spread(c, 2, 1, 1), -1);
    assert_int_equal(binpack(c, 2, 1, 1), -1);
}

static void test_unreachable_and_disconnected_agents_get_nothing(void **state)
{
    (void) state;
    struct m_place_agent a[] = {
            agent(64000, 64 * GiB, 0, 0, 0), /* the best for spread, but unreachable */
            agent(2000, 2 * GiB, 1000, 1 * GiB, 1),
            agent(64000, 64 * GiB, 0, 0, 0), /* as good, but its stream is down */
            agent(4000, 4 * GiB, 2000, 2 * GiB, 2),
    };
    a[0].reachable = false;
    a[2].connected = false;
    assert_false(master_place_eligible(&a[0]));
    assert_false(master_place_eligible(&a[2]));
    assert_true(master_place_eligible(&a[1]));
    assert_int_equal(spread(a, 4, 1000, 1 * GiB), 3);
    assert_int_equal(binpack(a, 4, 1000, 1 * GiB), 1);
    /* reachable but not connected, or connected but marked unreachable: still nothing */
    a[1].connected = false;
    a[3].reachable = false;
    assert_int_equal(spread(a, 4, 1000, 1 * GiB), -1);
    assert_int_equal(binpack(a, 4, 1000, 1 * GiB), -1);
}

static void test_zero_allocatable_and_no_agents(void **state)
{
    (void) state;
    /* an agent whose reservations take everything (allocatable 0 cpus or 0 mem) takes no
     * task and counts as unable to (and is no division by zero) */
    struct m_place_agent a[] = {
            agent(0, 4 * GiB, 0, 0, 0),
            agent(4000, 0, 0, 0, 0),
            agent(0, 0, 0, 0, 0),
    };
    for (size_t i = 0; i < 3; i++)
        assert_false(master_place_eligible(&a[i]));
    assert_int_equal(spread(a, 3, 1, 1), -1);
    assert_int_equal(binpack(a, 3, 1, 1), -1);
    struct m_place_agent b[] = {a[0], agent(1000, 1 * GiB, 0, 0, 5), a[1]};
    assert_int_equal(spread(b, 3, 1000, 1 * GiB), 1);
    assert_int_equal(binpack(b, 3, 1000, 1 * GiB), 1);
    assert_int_equal(spread(NULL, 0, 1000, 1 * GiB), -1);
    assert_int_equal(binpack(NULL, 0, 1000, 1 * GiB), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_spread_and_binpack_by_free_share),
            cmocka_unit_test(test_share_is_the_scarcer_resource),
            cmocka_unit_test(test_ties_go_to_fewer_tasks_then_the_earlier_agent),
            cmocka_unit_test(test_full_agents_are_skipped),
            cmocka_unit_test(test_unreachable_and_disconnected_agents_get_nothing),
            cmocka_unit_test(test_zero_allocatable_and_no_agents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
