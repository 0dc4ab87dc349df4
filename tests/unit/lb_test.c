/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/lb_test.c - berth-lb's pure parts: the SSE parser (split anywhere, \r\n, comments,
 * multi-line data, the size bound), the endpoint table from events (snapshot replaces,
 * instances serve only RUNNING + healthy + not killing), backends and slots (lowest free slot,
 * drain then maint after the timeout, stable slots, the commands sent), and haproxy.cfg (the
 * same apps render the same text whatever the instances; the shape changes only with the
 * frontends). No I/O; tests/system/test_lb.py runs berth-lb with HAProxy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
/* clang-format off: cmocka.h needs setjmp.h, stdarg.h and stddef.h before it */
#include <cmocka.h>
/* clang-format on */
#include <string.h>

#include "lb/lb.h"

struct got {
    char names[8][32], ids[8][32], data[8][256];
    int n;
};

static void on_ev(void *arg, const char *name, const char *id, const char *data, size_t len)
{
    struct got *g = arg;
    assert_true(g->n < 8);
    snprintf(g->names[g->n], 32, "%s", name);
    snprintf(g->ids[g->n], 32, "%s", id);
    snprintf(g->data[g->n], 256, "%.*s", (int) len, data);
    g->n++;
}

static void test_sse_parser(void **state)
{
    (void) state;
    const char *text = ": hello\n\nid: 5-1\nevent: snapshot\ndata: {\"a\":\ndata: 1}\n\n"
                       "id:5-2\r\nevent: x\r\ndata:two\r\n\r\n: keepalive\n\n"
                       "event: y\rdata: z\r\r";
    /* every split point gives the same events */
    for (size_t cut = 0; cut <= strlen(text); cut++) {
        struct lb_sse_parser p = {.max = 1024};
        struct got g = {0};
        assert_int_equal(lb_sse_feed(&p, text, cut, on_ev, &g), 0);
        assert_int_equal(lb_sse_feed(&p, text + cut, strlen(text) - cut, on_ev, &g), 0);
        assert_int_equal(g.n, 3);
        assert_string_equal(g.names[0], "snapshot");
        assert_string_equal(g.ids[0], "5-1");
        assert_string_equal(g.data[0], "{\"a\":\n1}");
        assert_string_equal(g.names[1], "x");
        assert_string_equal(g.ids[1], "5-2");
        assert_string_equal(g.data[1], "two");
        assert_string_equal(g.names[2], "y");
        assert_string_equal(g.data[2], "z");
        assert_string_equal(p.last_id, "5-2"); /* an event without id keeps the last */
        lb_sse_done(&p);
    }
    struct lb_sse_parser p = {.max = 16};
    struct got g = {0};
    assert_int_equal(lb_sse_feed(&p, "data: 0123456789abcdefghij\n\n", 28, on_ev, &g), -E2BIG);
    lb_sse_done(&p);
}

#define APP(id, vhost, sp)                                                                         \
    "{\"id\":\"" id "\",\"labels\":{" vhost "},\"ports\":[{\"name\":\"http\",\"service_port\":" sp \
    "}]"
#define INST(id, port, state, healthy, killing)                                                    \
    "{\"id\":\"" id "\",\"app_id\":\"web\",\"address\":\"127.0.0.1\",\"ports\":[" port             \
    "],\"state\":\"" state "\",\"healthy\":" healthy ",\"killing\":" killing "}"

static int apply(struct lb_table *t, const char *name, const char *data)
{
    struct berr *err = NULL;
    int r = lb_table_apply(t, name, data, strlen(data), &err);
    if (r < 0)
        fail_msg("%s", berr_msg(err));
    return r;
}

static const char snap[] = "{\"time\":1,\"apps\":[" APP(
        "web", "\"lb.vhost\":\"Web.Example\"",
        "10000") ",\"tasks\":[" INST("web_b", "31002", "RUNNING", "true",
                                     "false") "," INST("web_a", "31001", "RUNNING", "true",
                                                       "false") "," INST("web_c", "31003",
                                                                         "STAGING", "false",
                                                                         "false") "]}]}";

static void test_table(void **state)
{
    (void) state;
    struct lb_table t = {0};
    assert_int_equal(apply(&t, "snapshot", snap), 1);
    assert_true(t.loaded);
    assert_int_equal(t.n_apps, 1);
    assert_string_equal(t.apps[0]->vhost, "web.example");
    assert_int_equal(t.apps[0]->service_ports[0], 10000);
    assert_int_equal(t.n_insts, 3);
    assert_string_equal(t.insts[0]->id, "web_a"); /* sorted */
    assert_true(t.insts[0]->serving && t.insts[1]->serving && !t.insts[2]->serving);
    /* the same instance again: no change; killing: no longer serving */
    assert_int_equal(apply(&t, "instance_changed",
                           "{\"instance\":" INST("web_a", "31001", "RUNNING", "true", "false") "}"),
                     0);
    assert_int_equal(apply(&t, "instance_changed",
                           "{\"instance\":" INST("web_a", "31001", "RUNNING", "true", "true") "}"),
                     1);
    assert_false(t.insts[0]->serving);
    assert_int_equal(apply(&t, "instance_removed",
                           "{\"instance\":" INST("web_a", "31001", "KILLED", "false", "true") "}"),
                     1);
    assert_int_equal(t.n_insts, 2);
    assert_int_equal(apply(&t, "deployment_added", "{\"deployment\":{}}"), 0);
    assert_int_equal(apply(&t, "app_removed", "{\"app\":{\"id\":\"web\"}}"), 1);
    assert_int_equal(t.n_apps, 0);
    /* a snapshot replaces everything */
    assert_int_equal(apply(&t, "snapshot", snap), 1);
    assert_int_equal(t.n_insts, 3);
    struct berr *err = NULL;
    assert_true(lb_table_apply(&t, "snapshot", "{", 1, &err) < 0);
    berr_free(&err);
    assert_int_equal(t.n_insts, 3); /* kept */
    lb_table_clear(&t);
}

static void test_slots(void **state)
{
    (void) state;
    struct lb_table t = {0};
    apply(&t, "snapshot", snap);
    struct lb_backends bs = {0};
    assert_true(lb_backends_update(&bs, &t, 4));
    assert_false(lb_backends_update(&bs, &t, 4));
    assert_int_equal(bs.n, 1);
    struct lb_backend *b = bs.v[0];
    assert_string_equal(b->name, "b_web_0");
    assert_true(b->http);
    lb_slots_assign(b, &t, 1000, 500);
    assert_int_equal(lb_backend_serving(b), 2);
    assert_string_equal(b->slots[0].inst, "web_a");
    assert_string_equal(b->slots[1].inst, "web_b");
    char *cmds = NULL;
    assert_int_equal(lb_slots_commands(b, &cmds), 4);
    assert_non_null(strstr(cmds, "set server b_web_0/s1 addr 127.0.0.1 port 31001;"
                                 "set server b_web_0/s1 state ready"));
    assert_non_null(strstr(cmds, "set server b_web_0/s4 state maint"));
    free(cmds);
    cmds = NULL;
    assert_int_equal(lb_slots_commands(b, &cmds), 0);
    /* web_c turns healthy: the lowest free slot, one command pair */
    apply(&t, "instance_changed",
          "{\"instance\":" INST("web_c", "31003", "RUNNING", "true", "false") "}");
    lb_slots_assign(b, &t, 1100, 500);
    assert_string_equal(b->slots[2].inst, "web_c");
    assert_int_equal(lb_slots_commands(b, &cmds), 1);
    assert_string_equal(cmds, "set server b_web_0/s3 addr 127.0.0.1 port 31003;"
                              "set server b_web_0/s3 state ready");
    free(cmds);
    cmds = NULL;
    /* web_a is killed: drain, then maint after the timeout, then its slot is free */
    apply(&t, "instance_changed",
          "{\"instance\":" INST("web_a", "31001", "RUNNING", "true", "true") "}");
    lb_slots_assign(b, &t, 1200, 500);
    assert_int_equal(b->slots[0].want.st, LB_SLOT_DRAINING);
    lb_slots_commands(b, &cmds);
    assert_string_equal(cmds, "set server b_web_0/s1 state drain");
    free(cmds);
    cmds = NULL;
    lb_slots_assign(b, &t, 1699, 500);
    assert_int_equal(b->slots[0].want.st, LB_SLOT_DRAINING);
    lb_slots_assign(b, &t, 1700, 500);
    assert_int_equal(b->slots[0].want.st, LB_SLOT_FREE);
    lb_slots_commands(b, &cmds);
    assert_string_equal(cmds, "set server b_web_0/s1 state maint");
    free(cmds);
    cmds = NULL;
    /* the others kept their slots; a new one takes slot 1 */
    assert_string_equal(b->slots[1].inst, "web_b");
    assert_string_equal(b->slots[2].inst, "web_c");
    apply(&t, "instance_added",
          "{\"instance\":" INST("web_d", "31004", "RUNNING", "true", "false") "}");
    lb_slots_assign(b, &t, 1800, 500);
    assert_string_equal(b->slots[0].inst, "web_d");
    /* forgetting HAProxy's state sends every slot again */
    lb_backends_forget(&bs);
    assert_int_equal(lb_slots_commands(b, &cmds), 4);
    free(cmds);
    /* a new service port changes the shape, keeping the slots */
    apply(&t, "app_changed", "{\"app\":" APP("web", "\"lb.vhost\":\"web.example\"", "10001") "}}");
    assert_true(lb_backends_update(&bs, &t, 4));
    assert_string_equal(bs.v[0]->slots[1].inst, "web_b");
    lb_backends_free(&bs);
    lb_table_clear(&t);
}

static void test_render(void **state)
{
    (void) state;
    struct lb_cfg c = {.run_dir = "/run/x",
                       .bind = "*",
                       .http_port = 8080,
                       .slots = 8,
                       .retries = 3,
                       .drain_timeout_ms = 5000,
                       .connect_timeout_ms = 2000,
                       .idle_timeout_ms = 60000};
    struct lb_table t = {0};
    apply(&t, "snapshot", snap);
    apply(&t, "app_added", "{\"app\":" APP("db", "", "5432") "}}");
    struct lb_backends bs = {0};
    lb_backends_update(&bs, &t, 8);
    char *a = lb_render(&c, &bs);
    assert_non_null(strstr(a, "frontend f_10000\n    mode http\n    bind :10000\n"
                              "    default_backend b_web_0\n"));
    assert_non_null(strstr(a, "frontend f_5432\n    mode tcp\n"));
    assert_non_null(strstr(a, "bind :8080\n"));
    assert_non_null(strstr(a, "use_backend b_web_0 if { var(txn.vhost) -m str web.example }"));
    assert_non_null(
            strstr(a, "server-template s 1-8 slot.invalid:1 disabled init-addr last,127.0.0.1"));
    assert_non_null(strstr(a, "hard-stop-after 5000ms"));
    assert_non_null(strstr(a, "option redispatch 1"));
    assert_true(strstr(a, "backend b_db_0") < strstr(a, "backend b_web_0"));
    /* instances change nothing; the same table from another order renders the same */
    for (size_t i = 0; i < bs.n; i++)
        lb_slots_assign(bs.v[i], &t, 1, 1);
    apply(&t, "instance_removed",
          "{\"instance\":" INST("web_b", "1", "KILLED", "false", "false") "}");
    assert_false(lb_backends_update(&bs, &t, 8));
    char *b = lb_render(&c, &bs);
    assert_string_equal(a, b);
    free(b);
    struct lb_table t2 = {0};
    apply(&t2, "app_added", "{\"app\":" APP("db", "", "5432") "}}");
    apply(&t2, "app_added", "{\"app\":" APP("web", "\"lb.vhost\":\"web.example\"", "10000") "}}");
    struct lb_backends bs2 = {0};
    lb_backends_update(&bs2, &t2, 8);
    b = lb_render(&c, &bs2);
    assert_string_equal(a, b);
    free(a);
    free(b);
    lb_backends_free(&bs);
    lb_backends_free(&bs2);
    lb_table_clear(&t);
    lb_table_clear(&t2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_sse_parser),
            cmocka_unit_test(test_table),
            cmocka_unit_test(test_slots),
            cmocka_unit_test(test_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
