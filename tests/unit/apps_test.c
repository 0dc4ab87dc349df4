/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/apps_test.c - berth-apps' pure decisions: an app definition's parse (defaults,
 * refusals naming the field), what makes a version, the backoff delay, the port pick and the
 * deployment step plan (scale up and down, replacement, rolling updates within the bounds of
 * the upgrade strategy, rolling back, hold). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
/* clang-format off: cmocka.h needs setjmp.h, stdarg.h and stddef.h before it */
#include <cmocka.h>
/* clang-format on */

#include "apps/apps.h"

static int parse(const char *text, struct app_def *d, struct berr **err)
{
    yajl_val v = json_parse(text, strlen(text), err);
    if (!v)
        return -EINVAL;
    int r = app_def_parse(v, d, err);
    yajl_tree_free(v);
    return r;
}

static void test_parse_defaults(void **state)
{
    (void) state;
    struct app_def d;
    struct berr *err = NULL;
    assert_int_equal(parse("{\"id\": \"web\", \"command\": \"python3 -m http.server $PORT0\","
                           " \"instances\": 3, \"cpus\": 0.25, \"mem\": \"64MiB\","
                           " \"ports\": [{\"name\": \"http\"}],"
                           " \"health_checks\": [{\"type\": \"http\", \"port_index\": 0}],"
                           " \"constraints\": [[\"hostname\", \"UNIQUE\"]],"
                           " \"labels\": {\"lb.vhost\": \"web.example\"}}",
                           &d, &err),
                     0);
    assert_string_equal(d.id, "web");
    assert_int_equal(d.instances, 3);
    assert_int_equal(d.cpus_millis, 250);
    assert_int_equal(d.mem_bytes, 64 << 20);
    assert_int_equal(d.n_ports, 1);
    assert_non_null(d.hc);
    assert_int_equal(d.n_cons, 1);
    assert_string_equal(d.role, "*");
    assert_true(d.mhc == 1 && d.moc == 1);
    assert_true(d.bo_seconds == 1 && d.bo_factor == 1.15 && d.bo_max == 300 && d.bo_reset == 60);
    char *a = app_def_encode(&d, true), *full = app_def_encode(&d, false);
    assert_null(strstr(a, "\"instances\""));
    assert_non_null(strstr(full, "\"instances\":3"));
    assert_non_null(strstr(full, "\"lb.vhost\":\"web.example\""));
    /* the encoded definition parses to the same: a stored version reads back */
    struct app_def again;
    assert_int_equal(parse(full, &again, &err), 0);
    char *b = app_def_encode(&again, true);
    assert_string_equal(a, b);
    free(a), free(b), free(full);
    app_def_done(&again);
    app_def_done(&d);
}

static void test_parse_refusals(void **state)
{
    (void) state;
    const struct {
        const char *body, *field;
    } bad[] = {
            {"{\"command\": \"x\", \"cpus\": 1, \"mem\": 4096}", "id:"},
            {"{\"id\": \"Web\", \"command\": \"x\", \"cpus\": 1, \"mem\": 4096}", "id:"},
            {"{\"id\": \"w\", \"cpus\": 1, \"mem\": 4096}", "command:"},
            {"{\"id\": \"w\", \"command\": \"x\", \"args\": [\"y\"], \"cpus\": 1, \"mem\": 4096}",
             "command, args"},
            {"{\"id\": \"w\", \"command\": \"x\", \"mem\": 4096}", "cpus:"},
            {"{\"id\": \"w\", \"command\": \"x\", \"cpus\": 0, \"mem\": 4096}", "cpus:"},
            {"{\"id\": \"w\", \"command\": \"x\", \"cpus\": 1}", "mem:"},
            {"{\"id\": \"w\", \"command\": \"x\", \"cpus\": 1, \"mem\": 4096, \"instances\": 1001}",
             "instances:"},
            {"{\"id\": \"w\", \"command\": \"x\", \"cpus\": 1, \"mem\": 4096, \"bogus\": 1}",
             "bogus:"},
            {"{\"id\": \"w\", \"command\": \"x\", \"cpus\": 1, \"mem\": 4096,"
             " \"upgrade_strategy\": {\"minimum_health_capacity\": 2}}",
             "upgrade_strategy.minimum_health_capacity"},
            {"{\"id\": \"w\", \"command\": \"x\", \"cpus\": 1, \"mem\": 4096,"
             " \"backoff\": {\"factor\": 0.5}}",
             "backoff.factor"},
            {"{\"id\": \"w\", \"command\": \"x\", \"cpus\": 1, \"mem\": 4096,"
             " \"health_checks\": [{\"type\": \"http\", \"port_index\": 0}]}",
             "health_checks[0]"},
            {"{\"id\": \"w\", \"command\": \"x\", \"cpus\": 1, \"mem\": 4096,"
             " \"constraints\": [[\"hostname\", \"NEAR\"]]}",
             "constraints[0]"},
            {"{\"id\": \"w\", \"command\": \"x\", \"cpus\": 1, \"mem\": 4096,"
             " \"ports\": [{\"service_port\": 70000}]}",
             "ports[0].service_port"},
            {"{\"id\": \"w\", \"command\": \"x\", \"cpus\": 1, \"mem\": 4096,"
             " \"env\": {\"A=B\": \"c\"}}",
             "env."},
            {"{\"id\": \"w\", \"command\": \"x\", \"cpus\": 1, \"mem\": 4096, \"network\": \"x\"}",
             "network:"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct app_def d;
        struct berr *err = NULL;
        assert_int_equal(parse(bad[i].body, &d, &err), -EINVAL);
        assert_int_equal(err->code, BERR_INVALID_ARGUMENT);
        if (!strstr(berr_msg(err), bad[i].field))
            fail_msg("%s: '%s' does not name '%s'", bad[i].body, berr_msg(err), bad[i].field);
        berr_free(&err);
    }
}

static void test_backoff(void **state)
{
    (void) state;
    struct app_def d = {.bo_seconds = 0.5, .bo_factor = 2, .bo_max = 3};
    assert_true(app_backoff_delay(&d, 1) == 0.5);
    assert_true(app_backoff_delay(&d, 2) == 1);
    assert_true(app_backoff_delay(&d, 3) == 2);
    assert_true(app_backoff_delay(&d, 4) == 3); /* capped */
    assert_true(app_backoff_delay(&d, 100000) == 3);
    assert_true(app_backoff_delay(&d, 0) == 0);
}

static void test_ports_pick(void **state)
{
    (void) state;
    uint16_t out[3], used[] = {31001};
    assert_int_equal(app_ports_pick("[31000-31002,31010-31010]", used, 1, 3, out), 0);
    assert_int_equal(out[0], 31000);
    assert_int_equal(out[1], 31002);
    assert_int_equal(out[2], 31010);
    assert_int_equal(app_ports_pick("[31000-31001]", used, 1, 2, out), -ENOSPC);
    assert_int_equal(app_ports_pick(NULL, NULL, 0, 1, out), -ENOSPC);
}

#define I(cur, run, h, kill, t)                                                                    \
    {                                                                                              \
        .current = cur, .running = run, .healthy = h, .killing = kill, .started = t                \
    }

static void test_plan_scale(void **state)
{
    (void) state;
    struct plan p;
    /* nothing yet: launch them all */
    app_plan(NULL, 0, 3, 1, 1, false, &p);
    assert_int_equal(p.launch, 3);
    assert_false(p.done);
    free(p.kill);
    /* 6 -> 2: the 4 newest go, the 2 oldest stay */
    struct plan_inst six[] = {I(1, 1, 1, 0, 1), I(1, 1, 1, 0, 2), I(1, 1, 1, 0, 3),
                              I(1, 1, 1, 0, 4), I(1, 1, 1, 0, 5), I(1, 1, 1, 0, 6)};
    app_plan(six, 6, 2, 1, 1, false, &p);
    assert_int_equal(p.launch, 0);
    assert_int_equal(p.n_kill, 4);
    for (size_t k = 0; k < 4; k++)
        assert_true(p.kill[k] >= 2);
    free(p.kill);
    /* an unhealthy one goes before a newer healthy one */
    struct plan_inst three[] = {I(1, 1, 0, 0, 1), I(1, 1, 1, 0, 2), I(1, 1, 1, 0, 3)};
    app_plan(three, 3, 2, 1, 1, false, &p);
    assert_int_equal(p.n_kill, 1);
    assert_int_equal(p.kill[0], 0);
    free(p.kill);
    /* all there and healthy: done; one being killed still occupies */
    app_plan(three + 1, 2, 2, 1, 1, false, &p);
    assert_true(p.done);
    free(p.kill);
    struct plan_inst k[] = {I(1, 1, 1, 0, 1), I(1, 1, 1, 1, 2)};
    app_plan(k, 2, 1, 1, 1, false, &p);
    assert_false(p.done);
    assert_int_equal(p.n_kill, 0);
    free(p.kill);
}

/* Simulate a rolling update of n instances step by step: the new ones turn healthy at once
 * once launched, killed ones end at once; check the bounds at every step. */
static void roll(unsigned n, double mhc, double moc, unsigned max_running, unsigned min_healthy)
{
    struct plan_inst in[64];
    size_t cnt = n;
    for (size_t i = 0; i < n; i++)
        in[i] = (struct plan_inst) I(0, 1, 1, 0, (double) i);
    double t = 100;
    for (int steps = 0; steps < 100; steps++) {
        struct plan p;
        app_plan(in, cnt, n, mhc, moc, false, &p);
        if (p.done) {
            free(p.kill);
            for (size_t i = 0; i < cnt; i++)
                assert_true(in[i].current);
            assert_int_equal(cnt, n);
            return;
        }
        for (size_t k = 0; k < p.n_kill; k++)
            in[p.kill[k]].killing = true;
        size_t healthy = 0;
        for (size_t i = 0; i < cnt; i++)
            healthy += in[i].healthy && !in[i].killing;
        assert_true(healthy >= min_healthy);
        for (unsigned l = 0; l < p.launch; l++) /* staged: not healthy yet */
            in[cnt++] = (struct plan_inst) I(1, 0, 0, 0, t++);
        assert_true(cnt <= max_running);
        free(p.kill);
        /* the world moves: killed ones end, staged ones run healthy */
        size_t w = 0;
        for (size_t i = 0; i < cnt; i++) {
            if (in[i].killing)
                continue;
            in[i].running = in[i].healthy = true;
            in[w++] = in[i];
        }
        cnt = w;
    }
    fail_msg("the rolling update of %u (mhc %g, moc %g) did not end", n, mhc, moc);
}

static void test_plan_rolling(void **state)
{
    (void) state;
    assert_int_equal(app_plan_max_running(3, 0.34, 1), 4);
    assert_int_equal(app_plan_min_healthy(3, 1), 3);
    assert_int_equal(app_plan_max_running(3, 0, 1), 4); /* both tight: one more may run */
    assert_int_equal(app_plan_max_running(3, 0, 0.5), 3);
    roll(3, 1, 0.34, 4, 3);
    roll(3, 1, 0, 4, 3);
    roll(10, 0.5, 0, 10, 5);
    roll(10, 0.8, 0.2, 12, 8);
    roll(5, 0, 1, 10, 0);
    /* the first step of 3 with moc 0.34: one new, no kill */
    struct plan_inst old3[] = {I(0, 1, 1, 0, 1), I(0, 1, 1, 0, 2), I(0, 1, 1, 0, 3)};
    struct plan p;
    app_plan(old3, 3, 3, 1, 0.34, false, &p);
    assert_int_equal(p.launch, 1);
    assert_int_equal(p.n_kill, 0);
    free(p.kill);
    /* a new one that never turns healthy: no old one is killed */
    struct plan_inst stuck[] = {I(0, 1, 1, 0, 1), I(0, 1, 1, 0, 2), I(0, 1, 1, 0, 3),
                                I(1, 1, 0, 0, 4)};
    app_plan(stuck, 4, 3, 1, 0.34, false, &p);
    assert_int_equal(p.launch, 0);
    assert_int_equal(p.n_kill, 0);
    free(p.kill);
    /* rolling back (the old version kept again): the unhealthy others go at once */
    struct plan_inst back[] = {I(1, 1, 1, 0, 1), I(1, 1, 1, 0, 2), I(1, 1, 1, 0, 3),
                               I(0, 1, 0, 0, 4)};
    app_plan(back, 4, 3, 1, 0.34, false, &p);
    assert_int_equal(p.n_kill, 1);
    assert_int_equal(p.kill[0], 3);
    free(p.kill);
    /* hold: replace only, kill nothing */
    app_plan(back, 3, 4, 1, 0.34, true, &p);
    assert_int_equal(p.launch, 1);
    assert_int_equal(p.n_kill, 0);
    free(p.kill);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_defaults), cmocka_unit_test(test_parse_refusals),
            cmocka_unit_test(test_backoff),        cmocka_unit_test(test_ports_pick),
            cmocka_unit_test(test_plan_scale),     cmocka_unit_test(test_plan_rolling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
