/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/allocator_test.c - master/allocator.c, the DRF core, without a master: the DRF
 * paper's example (A ends with 3 tasks, B with 2, both at a dominant share of 2/3), role
 * weights 2:1 over 30 one-CPU slots, suppressed and inactive frameworks and agents get
 * nothing, DECLINE filters (until they expire, or more is free), static role reservations
 * offered only to their role, quota guarantees kept as headroom against greedy roles, quota
 * limits capping offers, and charges that release back to zero. Frameworks are simulated:
 * each allocation is an offer from which they launch what they want and return the rest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
/* clang-format off: cmocka.h needs setjmp.h, stdarg.h and stddef.h before it */
#include <cmocka.h>
/* clang-format on */

#include "common/common.h"
#include "master/drf.h"

#define GiB (1024ULL * 1024 * 1024)
#define MiB (1024ULL * 1024)

/* One allocation the pass made. */
struct grant {
    struct drf_agent *a;
    struct drf_client *c;
    struct drf_res q, resv;
};

struct sim {
    struct drf d;
    struct grant g[4096];
    size_t n;
};

static void on_offer(void *arg, struct drf_agent *a, struct drf_client *c, struct drf_res q,
                     struct drf_res resv)
{
    struct sim *s = arg;
    assert_true(s->n < ARRAY_SIZE(s->g));
    s->g[s->n++] = (struct grant){a, c, q, resv};
}

static void sim_init(struct sim *s)
{
    memset(s, 0, sizeof(*s));
    drf_init(&s->d);
    s->d.offer = on_offer;
    s->d.arg = s;
}

static struct drf_agent *agent(struct sim *s, const char *id, uint64_t cpus, uint64_t mem)
{
    struct drf_agent *a = drf_agent_add(&s->d, id, NULL);
    drf_agent_set(&s->d, a, (struct drf_res){cpus, mem}, NULL, NULL, 0);
    drf_agent_activate(&s->d, a, true);
    return a;
}

static struct drf_client *framework(struct sim *s, const char *id, const char *role)
{
    struct drf_fw *fw = drf_fw_add(&s->d, id, NULL);
    fw->active = true;
    return drf_client(&s->d, fw, drf_role(&s->d, role));
}

/* The task size each client launches from an offer, one task per offer (0: none). */
struct want {
    struct drf_client *c;
    struct drf_res task;
    unsigned launched;
};

/* Passes until nothing more is offered: each offer launches one task of its client's size when
 * it fits and returns the rest (a DECLINE without filter). Returns the number of passes. */
static unsigned run(struct sim *s, struct want *w, size_t nw)
{
    unsigned passes = 0;
    for (;;) {
        s->n = 0;
        size_t made = drf_allocate(&s->d, 1000);
        passes++;
        assert_int_equal(made, s->n);
        if (!made)
            return passes;
        for (size_t i = 0; i < s->n; i++) {
            struct grant *g = &s->g[i];
            struct want *x = NULL;
            for (size_t k = 0; k < nw; k++)
                if (w[k].c == g->c)
                    x = &w[k];
            assert_non_null(x);
            struct drf_res back = g->q;
            if (x->task.cpus <= g->q.cpus && x->task.mem <= g->q.mem && x->task.cpus) {
                back.cpus -= x->task.cpus;
                back.mem -= x->task.mem;
                x->launched++;
            }
            drf_charge(&s->d, g->a, g->c->role, g->c, back, -1);
        }
        assert_true(passes < 1000);
    }
}

static void test_drf_paper_example(void **state)
{
    (void) state;
    struct sim s;
    sim_init(&s);
    agent(&s, "node", 9000, 18 * GiB);
    struct want w[] = {{framework(&s, "A", "*"), {1000, 4 * GiB}, 0},
                       {framework(&s, "B", "*"), {3000, 1 * GiB}, 0}};
    run(&s, w, 2);
    assert_int_equal(w[0].launched, 3);
    assert_int_equal(w[1].launched, 2);
    /* both dominant shares 2/3: A's mem 12/18, B's cpus 6/9 */
    assert_true(w[0].c->alloc.mem == 12 * GiB && w[1].c->alloc.cpus == 6000);
    assert_true(drf_share(&s.d, w[0].c->alloc) > 0.666 && drf_share(&s.d, w[0].c->alloc) < 0.667);
    assert_true(drf_share(&s.d, w[1].c->alloc) > 0.666 && drf_share(&s.d, w[1].c->alloc) < 0.667);
    drf_free(&s.d);
}

static void test_weights_two_to_one(void **state)
{
    (void) state;
    struct sim s;
    sim_init(&s);
    for (int i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof(id), "n%d", i);
        agent(&s, id, 10000, 64 * GiB);
    }
    drf_role_set(drf_role(&s.d, "heavy"), 2, (struct drf_res){0, 0},
                 (struct drf_res){DRF_UNLIMITED, DRF_UNLIMITED});
    struct want w[] = {{framework(&s, "H", "heavy"), {1000, 64 * MiB}, 0},
                       {framework(&s, "L", "light"), {1000, 64 * MiB}, 0}};
    run(&s, w, 2);
    assert_int_equal(w[0].launched + w[1].launched, 30);
    assert_true(w[0].launched >= 19 && w[0].launched <= 21);
    assert_true(w[1].launched >= 9 && w[1].launched <= 11);
    drf_free(&s.d);
}

static void test_suppressed_inactive_and_filtered(void **state)
{
    (void) state;
    struct sim s;
    sim_init(&s);
    struct drf_agent *a = agent(&s, "a", 4000, 8 * GiB);
    struct drf_agent *off = agent(&s, "off", 4000, 8 * GiB);
    drf_agent_activate(&s.d, off, false);
    struct drf_client *c1 = framework(&s, "one", "*"), *c2 = framework(&s, "two", "*");
    drf_suppress(c1->fw, NULL, true);
    c2->fw->active = false;
    assert_int_equal(drf_allocate(&s.d, 0), 0); /* one suppressed, two gone */
    drf_suppress(c1->fw, NULL, false);
    assert_int_equal(drf_allocate(&s.d, 0), 1); /* the whole active agent, to one */
    assert_ptr_equal(s.g[0].a, a);
    assert_ptr_equal(s.g[0].c, c1);
    assert_true(s.g[0].q.cpus == 4000 && s.g[0].q.mem == 8 * GiB);
    /* one declines it for 5 s: not offered to it again, but to two at once */
    drf_charge(&s.d, a, c1->role, c1, s.g[0].q, -1);
    drf_filter_add(&s.d, a, c1->fw, NULL, s.g[0].q, 5000);
    c2->fw->active = true;
    s.n = 0;
    assert_int_equal(drf_allocate(&s.d, 1000), 1);
    assert_ptr_equal(s.g[0].c, c2);
    drf_charge(&s.d, a, c2->role, c2, s.g[0].q, -1);
    drf_suppress(c2->fw, NULL, true);
    s.n = 0;
    assert_int_equal(drf_allocate(&s.d, 4999), 0); /* still filtered for one */
    assert_int_equal(drf_allocate(&s.d, 5000), 1); /* expired */
    assert_ptr_equal(s.g[0].c, c1);
    /* a filter holds only up to what was declined: a task ending frees more, which is
     * offered even while the filter runs */
    drf_charge(&s.d, a, c1->role, c1, (struct drf_res){3000, 4 * GiB}, -1);
    drf_filter_add(&s.d, a, c1->fw, NULL, (struct drf_res){3000, 4 * GiB}, 99999);
    s.n = 0;
    assert_int_equal(drf_allocate(&s.d, 6000), 0);
    drf_charge(&s.d, a, c1->role, c1, (struct drf_res){1000, 4 * GiB}, -1);
    assert_int_equal(drf_allocate(&s.d, 6000), 1);
    assert_true(s.g[0].q.cpus == 4000);
    /* REVIVE clears the filters */
    drf_charge(&s.d, a, c1->role, c1, s.g[0].q, -1);
    drf_filter_add(&s.d, a, c1->fw, NULL, s.g[0].q, 99999);
    assert_int_equal(c1->fw->n_filters, 1);
    drf_filters_clear(&s.d, c1->fw);
    assert_int_equal(c1->fw->n_filters, 0);
    s.n = 0;
    assert_int_equal(drf_allocate(&s.d, 6000), 1);
    drf_free(&s.d);
}

static void test_reservations_only_for_their_role(void **state)
{
    (void) state;
    struct sim s;
    sim_init(&s);
    struct drf_agent *a = drf_agent_add(&s.d, "a", NULL);
    const char *roles[] = {"analytics"};
    struct drf_res resv[] = {{2000, 4 * GiB}};
    drf_agent_set(&s.d, a, (struct drf_res){4000, 8 * GiB}, roles, resv, 1);
    drf_agent_activate(&s.d, a, true);
    struct drf_client *web = framework(&s, "web", "*");
    assert_int_equal(drf_allocate(&s.d, 0), 1);
    assert_true(s.g[0].q.cpus == 2000 && s.g[0].q.mem == 4 * GiB); /* the pool only */
    assert_true(s.g[0].resv.cpus == 0);
    struct drf_client *an = framework(&s, "an", "analytics");
    s.n = 0;
    assert_int_equal(drf_allocate(&s.d, 0), 1);
    assert_ptr_equal(s.g[0].c, an);
    assert_true(s.g[0].q.cpus == 2000 && s.g[0].resv.cpus == 2000);
    /* everything released: the analytics framework alone gets reservation and pool */
    drf_charge(&s.d, a, an->role, an, s.g[0].q, -1);
    drf_charge(&s.d, a, web->role, web, (struct drf_res){2000, 4 * GiB}, -1);
    assert_true(a->pool_used.cpus == 0 && a->resv[0].used.cpus == 0);
    web->fw->active = false;
    s.n = 0;
    assert_int_equal(drf_allocate(&s.d, 0), 1);
    assert_true(s.g[0].q.cpus == 4000 && s.g[0].resv.cpus == 2000);
    /* released in another order than charged, it still comes back to zero */
    drf_charge(&s.d, a, an->role, an, (struct drf_res){3000, 1 * GiB}, -1);
    drf_charge(&s.d, a, an->role, an, (struct drf_res){1000, 7 * GiB}, -1);
    assert_true(a->pool_used.cpus == 0 && a->pool_used.mem == 0);
    assert_true(a->resv[0].used.cpus == 0 && an->alloc.cpus == 0 && an->role->alloc.mem == 0);
    drf_free(&s.d);
}

static void test_quota_guarantee_and_limit(void **state)
{
    (void) state;
    struct sim s;
    sim_init(&s);
    for (int i = 0; i < 4; i++) {
        char id[8];
        snprintf(id, sizeof(id), "n%d", i);
        agent(&s, id, 2000, 8 * GiB);
    }
    /* batch is guaranteed 4 cpus; greedy grabs all it is offered */
    drf_role_set(drf_role(&s.d, "batch"), 1, (struct drf_res){4000, 0},
                 (struct drf_res){DRF_UNLIMITED, DRF_UNLIMITED});
    struct want w[] = {{framework(&s, "G", "greedy"), {1000, 64 * MiB}, 0}};
    run(&s, w, 1);
    assert_int_equal(w[0].launched, 4); /* 8 cpus, 4 held back for batch */
    struct want w2[] = {w[0], {framework(&s, "B", "batch"), {1000, 64 * MiB}, 0}};
    run(&s, w2, 2);
    assert_int_equal(w2[1].launched, 4);
    assert_int_equal(w2[0].launched, 4);
    /* a limit caps what a role is offered */
    struct sim t;
    sim_init(&t);
    agent(&t, "big", 16000, 64 * GiB);
    drf_role_set(drf_role(&t.d, "capped"), 1, (struct drf_res){0, 0},
                 (struct drf_res){3000, DRF_UNLIMITED});
    struct want w3[] = {{framework(&t, "C", "capped"), {1000, 64 * MiB}, 0}};
    run(&t, w3, 1);
    assert_int_equal(w3[0].launched, 3);
    t.n = 0;
    assert_int_equal(drf_allocate(&t.d, 0), 0);
    drf_free(&s.d);
    drf_free(&t.d);
}

static void test_fair_among_many(void **state)
{
    (void) state;
    struct sim s;
    sim_init(&s);
    for (int i = 0; i < 100; i++) {
        char id[8];
        snprintf(id, sizeof(id), "n%d", i);
        agent(&s, id, 4000, 16 * GiB);
    }
    struct drf_client *c[10];
    for (int i = 0; i < 10; i++) {
        char id[8];
        snprintf(id, sizeof(id), "f%d", i);
        c[i] = framework(&s, id, "*");
    }
    /* one pass over idle agents: every framework gets a tenth of them */
    assert_int_equal(drf_allocate(&s.d, 0), 100);
    for (int i = 0; i < 10; i++)
        assert_int_equal(c[i]->alloc.cpus, 40000);
    /* removing a framework keeps its role's charges (tasks still ending) */
    struct drf_role *star = c[0]->role;
    drf_fw_remove(&s.d, c[0]->fw);
    assert_int_equal(star->n_clients, 9);
    assert_int_equal(star->alloc.cpus, 400000);
    drf_free(&s.d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_drf_paper_example),
            cmocka_unit_test(test_weights_two_to_one),
            cmocka_unit_test(test_suppressed_inactive_and_filtered),
            cmocka_unit_test(test_reservations_only_for_their_role),
            cmocka_unit_test(test_quota_guarantee_and_limit),
            cmocka_unit_test(test_fair_among_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
