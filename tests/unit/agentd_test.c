/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/agentd_test.c - the agent's pure decisions, without root or a running agent:
 * how a task ended (decide.c ctr_decide_end, its whole table), which status updates the
 * master still needs (decide.c link_catch_up_states), and resource admission by role
 * (resources.c resources_admit), and a limit's ending (PORTS_LIMITATION). Changing a row of
 * any of these fails a test. net_test.c covers ports.c, ipam.c and net-files.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/wait.h>
/* clang-format off: cmocka.h needs setjmp.h, stdarg.h and stddef.h before it */
#include <cmocka.h>
/* clang-format on */

#include "agentd/agent.h"

/* ---- how a task ended -------------------------------------------------------------------- */

enum fact_status {
    ST_NONE,     /* no status.json */
    ST_EXIT0,    /* {"exit_code": 0} */
    ST_EXIT3,    /* {"exit_code": 3} */
    ST_SIG9,     /* {"signal": 9} */
    ST_LAUNCHED, /* {"launch_error": "exec: No such file"} */
};

enum fact_wait {
    W_UNKNOWN, /* not our child (re-adopted) */
    W_EXIT0,
    W_EXIT7,
    W_KILLED, /* SIGKILL */
};

struct end_row {
    enum fact_status status;
    bool pipe_error;
    enum fact_wait wait;
    bool kill_requested;
    uint64_t ooms;
    /* expected */
    enum ml_state state;
    enum ml_reason reason;
    int exit_code;
    int signal;
    const char *message; /* a part of it, or "" for none */
};

#define NONE ML_REASON_NONE
static const struct end_row end_table[] = {
        /* the executor wrote how the task ended */
        {ST_EXIT0, false, W_EXIT0, false, 0, ML_FINISHED, ML_REASON_EXITED, 0, 0, ""},
        {ST_EXIT3, false, W_EXIT0, false, 0, ML_FAILED, ML_REASON_EXITED, 3, 0, ""},
        {ST_SIG9, false, W_EXIT0, false, 0, ML_FAILED, ML_REASON_SIGNALED, -1, 9, ""},
        {ST_EXIT0, false, W_UNKNOWN, false, 0, ML_FINISHED, ML_REASON_EXITED, 0, 0, ""},
        {ST_EXIT3, false, W_UNKNOWN, false, 0, ML_FAILED, ML_REASON_EXITED, 3, 0, ""},
        /* a kill we asked for wins over how it ended */
        {ST_EXIT0, false, W_EXIT0, true, 0, ML_KILLED, ML_REASON_KILLED_BY_REQUEST, 0, 0, ""},
        {ST_SIG9, false, W_EXIT0, true, 0, ML_KILLED, ML_REASON_KILLED_BY_REQUEST, -1, 9, ""},
        {ST_NONE, false, W_KILLED, true, 0, ML_KILLED, ML_REASON_KILLED_BY_REQUEST, -1, 9, ""},
        {ST_NONE, false, W_UNKNOWN, true, 0, ML_KILLED, ML_REASON_KILLED_BY_REQUEST, -1, 0, ""},
        /* OOM kills: the reason unless the task still exited 0 */
        {ST_SIG9, false, W_EXIT0, false, 1, ML_FAILED, ML_REASON_MEMORY_LIMIT, -1, 9,
         "OOM-killed 1"},
        {ST_EXIT3, false, W_EXIT0, false, 2, ML_FAILED, ML_REASON_MEMORY_LIMIT, 3, 0,
         "OOM-killed 2"},
        {ST_EXIT0, false, W_EXIT0, false, 1, ML_FINISHED, ML_REASON_EXITED, 0, 0, ""},
        {ST_NONE, false, W_UNKNOWN, false, 1, ML_FAILED, ML_REASON_MEMORY_LIMIT, -1, 0, "OOM"},
        {ST_NONE, false, W_KILLED, false, 1, ML_FAILED, ML_REASON_MEMORY_LIMIT, -1, 9, "OOM"},
        /* a launch error, from status.json or the pipe, beats everything */
        {ST_LAUNCHED, false, W_EXIT0, false, 0, ML_FAILED, ML_REASON_LAUNCH_FAILED, -1, 0, "exec"},
        {ST_LAUNCHED, false, W_EXIT0, true, 3, ML_FAILED, ML_REASON_LAUNCH_FAILED, -1, 0, "exec"},
        {ST_NONE, true, W_EXIT7, false, 0, ML_FAILED, ML_REASON_LAUNCH_FAILED, -1, 0, "pipe says"},
        {ST_EXIT0, true, W_EXIT0, false, 0, ML_FAILED, ML_REASON_LAUNCH_FAILED, -1, 0, "pipe says"},
        /* no word from the executor */
        {ST_NONE, false, W_EXIT7, false, 0, ML_FAILED, ML_REASON_EXITED, 7, 0,
         "without a status (exit 7)"},
        {ST_NONE, false, W_EXIT0, false, 0, ML_FINISHED, ML_REASON_EXITED, 0, 0,
         "without a status (exit 0)"},
        {ST_NONE, false, W_KILLED, false, 0, ML_FAILED, ML_REASON_SIGNALED, -1, 9,
         "without a status (signal 9)"},
        {ST_NONE, false, W_UNKNOWN, false, 0, ML_LOST, ML_REASON_AGENT_RESTARTED_LOST, -1, 0,
         "unknown"},
};

static void test_end_table(void **state)
{
    (void) state;
    for (size_t i = 0; i < ARRAY_SIZE(end_table); i++) {
        const struct end_row *r = &end_table[i];
        struct iso_status st = {0};
        switch (r->status) {
        case ST_EXIT0:
            st = (struct iso_status){.kind = ISO_STATUS_EXITED, .code = 0};
            break;
        case ST_EXIT3:
            st = (struct iso_status){.kind = ISO_STATUS_EXITED, .code = 3};
            break;
        case ST_SIG9:
            st = (struct iso_status){.kind = ISO_STATUS_SIGNALED, .code = 9};
            break;
        case ST_LAUNCHED:
            st = (struct iso_status){.kind = ISO_STATUS_LAUNCH_ERROR,
                                     .code = ENOENT,
                                     .message = (char *) "exec: No such file"};
            break;
        case ST_NONE:
            break;
        }
        static const int waits[] = {
                [W_UNKNOWN] = -1, [W_EXIT0] = 0, [W_EXIT7] = 7 << 8, [W_KILLED] = SIGKILL};
        struct ctr_end_facts f = {
                .status = r->status == ST_NONE ? NULL : &st,
                .pipe_error = r->pipe_error ? "pipe says no" : NULL,
                .wstatus = waits[r->wait],
                .kill_requested = r->kill_requested,
                .oom_kills = r->ooms,
        };
        struct ctr_outcome o;
        ctr_decide_end(&f, &o);
        if (o.state != r->state || o.reason != r->reason || o.exit_code != r->exit_code ||
            o.signal != r->signal || (r->message[0] && !strstr(o.message, r->message)) ||
            (!r->message[0] && o.message[0]))
            fail_msg("row %zu: got %s/%s exit %d signal %d '%s'", i, ml_state_name(o.state),
                     ml_reason_name(o.reason) ? ml_reason_name(o.reason) : "-", o.exit_code,
                     o.signal, o.message);
    }
}

/* A limit's kill (enforce_ports) ends KILLED with the limit as its reason, whatever the task
 * did meanwhile; a launch error still wins (the task never ran). */
static void test_limitation(void **state)
{
    (void) state;
    struct iso_status exit0 = {.kind = ISO_STATUS_EXITED, .code = 0};
    struct ctr_end_facts f = {.status = &exit0,
                              .wstatus = -1,
                              .kill_requested = true,
                              .limitation = ML_REASON_PORTS_LIMITATION};
    struct ctr_outcome o;
    ctr_decide_end(&f, &o);
    assert_int_equal(o.state, ML_KILLED);
    assert_int_equal(o.reason, ML_REASON_PORTS_LIMITATION);
    assert_string_equal(o.message, ""); /* the container keeps the limit's message */
    f.status = NULL;
    f.wstatus = SIGKILL;
    ctr_decide_end(&f, &o);
    assert_int_equal(o.reason, ML_REASON_PORTS_LIMITATION);
    assert_int_equal(o.signal, SIGKILL);
    f.pipe_error = "exec 'x': No such file or directory";
    ctr_decide_end(&f, &o);
    assert_int_equal(o.reason, ML_REASON_LAUNCH_FAILED);
    assert_string_equal(ml_reason_name(ML_REASON_PORTS_LIMITATION), "PORTS_LIMITATION");
    assert_int_equal(ml_reason_from_name("PORTS_LIMITATION"), ML_REASON_PORTS_LIMITATION);
}

/* A kill the health checks asked for (issue #16) ends KILLED with their reason, however the
 * task ended; a launch error still wins. */
static void test_end_health_kill(void **state)
{
    (void) state;
    struct iso_status sig = {.kind = ISO_STATUS_SIGNALED, .code = 15};
    struct iso_status exit0 = {.kind = ISO_STATUS_EXITED, .code = 0};
    const struct iso_status *sts[] = {&sig, &exit0, NULL};
    for (size_t i = 0; i < ARRAY_SIZE(sts); i++) {
        struct ctr_end_facts f = {.status = sts[i],
                                  .wstatus = sts[i] ? 0 : SIGKILL,
                                  .kill_requested = true,
                                  .limitation = ML_REASON_HEALTH_CHECK_FAILED};
        struct ctr_outcome o;
        ctr_decide_end(&f, &o);
        assert_int_equal(o.state, ML_KILLED);
        assert_int_equal(o.reason, ML_REASON_HEALTH_CHECK_FAILED);
    }
    struct iso_status launch = {.kind = ISO_STATUS_LAUNCH_ERROR, .message = (char *) "exec"};
    struct ctr_end_facts f = {
            .status = &launch, .kill_requested = true, .limitation = ML_REASON_HEALTH_CHECK_FAILED};
    struct ctr_outcome o;
    ctr_decide_end(&f, &o);
    assert_int_equal(o.reason, ML_REASON_LAUNCH_FAILED);
}

/* ---- the master's catch-up ------------------------------------------------------------- */

struct catch_row {
    int last; /* -1: nothing sent yet */
    enum ml_state now;
    bool has_pid, has_started;
    enum ml_state want[3];
    size_t n;
};

static const struct catch_row catch_table[] = {
        {-1, ML_STAGING, false, false, {0}, 0},
        {-1, ML_STARTING, true, false, {ML_STARTING}, 1},
        {-1, ML_RUNNING, true, true, {ML_STARTING, ML_RUNNING}, 2},
        {-1, ML_FINISHED, true, true, {ML_STARTING, ML_RUNNING, ML_FINISHED}, 3},
        /* a launch that failed before any executor ran never started */
        {-1, ML_FAILED, false, false, {ML_FAILED}, 1},
        /* started, never ran */
        {-1, ML_FAILED, true, false, {ML_STARTING, ML_FAILED}, 2},
        {ML_STARTING, ML_RUNNING, true, true, {ML_RUNNING}, 1},
        {ML_STARTING, ML_KILLED, true, true, {ML_RUNNING, ML_KILLED}, 2},
        {ML_RUNNING, ML_LOST, true, true, {ML_LOST}, 1},
        {ML_RUNNING, ML_RUNNING, true, true, {0}, 0},
        /* after the end nothing follows */
        {ML_FINISHED, ML_FINISHED, true, true, {0}, 0},
        {ML_FAILED, ML_LOST, true, true, {0}, 0},
        /* never backwards */
        {ML_RUNNING, ML_STARTING, true, false, {0}, 0},
};

static void test_catch_up_table(void **state)
{
    (void) state;
    for (size_t i = 0; i < ARRAY_SIZE(catch_table); i++) {
        const struct catch_row *r = &catch_table[i];
        enum ml_state out[3] = {0};
        size_t n = link_catch_up_states(r->last, r->now, r->has_pid, r->has_started, out);
        if (n != r->n)
            fail_msg("row %zu: %zu updates, want %zu", i, n, r->n);
        for (size_t k = 0; k < n; k++)
            if (out[k] != r->want[k])
                fail_msg("row %zu: update %zu is %s, want %s", i, k, ml_state_name(out[k]),
                         ml_state_name(r->want[k]));
    }
}

/* ---- admission --------------------------------------------------------------------------- */

static struct container *add(struct agent *a, const char *role, uint64_t cpus, uint64_t mem,
                             enum ml_state st)
{
    struct container *c = xzalloc(sizeof(*c));
    c->spec.role = (char *) role;
    c->spec.cpus_millis = cpus;
    c->spec.mem_bytes = mem;
    c->spec.pids = 10;
    c->state = st;
    c->next = a->containers;
    a->containers = c;
    if (!ml_state_terminal(st)) /* as ctr_link counts it */
        res_hold(a, c, 1);
    return c;
}

/* what ctr_set_state does for admission, for a change between live and ended */
static void set_state(struct agent *a, struct container *c, enum ml_state st)
{
    if (ml_state_terminal(c->state) != ml_state_terminal(st))
        res_hold(a, c, ml_state_terminal(st) ? -1 : 1);
    c->state = st;
}

static int admit(struct agent *a, const char *role, uint64_t cpus, uint64_t mem, uint64_t cpu_limit)
{
    struct container c = {0};
    c.spec.role = (char *) role;
    c.spec.cpus_millis = cpus;
    c.spec.mem_bytes = mem;
    c.spec.pids = 10;
    c.spec.cpus_limit = cpu_limit ? ML_CPUS_LIMIT_SET : ML_CPUS_LIMIT_NONE;
    c.spec.cpus_limit_millis = cpu_limit;
    struct berr *err = NULL;
    int r = resources_admit(a, &c, &err);
    if (r < 0)
        assert_int_equal(err->code, BERR_INSUFFICIENT_RESOURCES);
    berr_free(&err);
    return r;
}

#define GIB (1ull << 30)

static void test_admission(void **state)
{
    (void) state;
    /* 4 cpus and 8 GiB allocatable; role "web" reserves 2 cpus and 2 GiB */
    struct cfg_role roles[] = {{.name = (char *) "web", .cpus_millis = 2000, .mem_bytes = 2 * GIB}};
    struct agent a = {0};
    a.cfg.roles = roles;
    a.cfg.n_roles = 1;
    a.allocatable.v[RES_CPUS] = 4000;
    a.allocatable.v[RES_MEM] = 8 * GIB;
    a.allocatable.v[RES_PIDS] = 100;
    /* the unreserved pool is 2 cpus / 6 GiB: "*" may not take web's reservation */
    assert_int_equal(admit(&a, "*", 2000, GIB, 0), 0);
    assert_int_equal(admit(&a, "*", 2001, GIB, 0), -ENOSPC);
    assert_int_equal(admit(&a, "*", 1000, 6 * GIB, 0), 0);
    assert_int_equal(admit(&a, "*", 1000, 6 * GIB + 1, 0), -ENOSPC);
    /* web has its reservation plus the pool */
    assert_int_equal(admit(&a, "web", 4000, 8 * GIB, 0), 0);
    assert_int_equal(admit(&a, "web", 4001, GIB, 0), -ENOSPC);
    /* "*" uses 1.5 cpus of the pool: 0.5 left for it, 2.5 for web */
    add(&a, "*", 1500, GIB, ML_RUNNING);
    assert_int_equal(admit(&a, "*", 500, GIB, 0), 0);
    assert_int_equal(admit(&a, "*", 501, GIB, 0), -ENOSPC);
    assert_int_equal(admit(&a, "web", 2500, GIB, 0), 0);
    assert_int_equal(admit(&a, "web", 2501, GIB, 0), -ENOSPC);
    /* web beyond its reservation eats the pool too */
    add(&a, "web", 3000, GIB, ML_STARTING);
    assert_int_equal(admit(&a, "*", 1, GIB, 0), -ENOSPC);
    assert_int_equal(admit(&a, "web", 1, GIB, 0), -ENOSPC);
    /* ended containers hold nothing */
    add(&a, "*", 4000, 8 * GIB, ML_FINISHED);
    set_state(&a, a.containers->next, ML_KILLED); /* the web task ended */
    assert_int_equal(admit(&a, "web", 2500, GIB, 0), 0);
    /* pids come from the node only */
    struct container *p = add(&a, "*", 1, 1, ML_RUNNING);
    res_hold(&a, p, -1);
    p->spec.pids = 85; /* 10 + 85 live: 5 left */
    res_hold(&a, p, 1);
    assert_int_equal(admit(&a, "web", 1, 1, 0), -ENOSPC);
    set_state(&a, p, ML_FAILED); /* an end gives them back, a restart takes them again */
    assert_int_equal(admit(&a, "web", 1, 1, 0), 0);
    set_state(&a, p, ML_RUNNING);
    assert_int_equal(admit(&a, "web", 1, 1, 0), -ENOSPC);
    res_hold(&a, p, -1);
    p->spec.pids = 80;
    res_hold(&a, p, 1);
    assert_int_equal(admit(&a, "web", 1, 1, 0), 0);
    /* a CPU limit above allocatable cannot be written under the parent's quota */
    assert_int_equal(admit(&a, "web", 100, 1, 4000), 0);
    assert_int_equal(admit(&a, "web", 100, 1, 4001), -ENOSPC);
    while (a.containers) {
        struct container *c = a.containers;
        a.containers = c->next;
        free(c);
    }
    free(a.role_use);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_end_table),       cmocka_unit_test(test_limitation),
            cmocka_unit_test(test_end_health_kill), cmocka_unit_test(test_catch_up_table),
            cmocka_unit_test(test_admission),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
