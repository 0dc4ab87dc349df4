/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/masterlink_sched_test.c - masterlink/sched.c, the scheduler API's shapes shared by
 * berth-master and the scheduler library: the call envelope (framework_id, required after
 * SUBSCRIBE), what a bad call is refused with, the event envelope, the offer's JSON both ways
 * (with the agent's attributes, and the attribute object's rules),
 * and port ranges (counting, containing, malformed ones). masterlink_test.c covers the agent
 * link's shapes; this binary keeps both files short. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
/* clang-format off: cmocka.h needs setjmp.h, stdarg.h and stddef.h before it */
#include <cmocka.h>
/* clang-format on */

#include "masterlink/masterlink.h"

static void test_call_envelope(void **state)
{
    (void) state;
    char *body = ml_sched_call_encode(ML_SCHED_DECLINE, "f-1", "{\"offer_ids\": [\"o-1\"]}");
    assert_string_equal(body, "{\"type\":\"DECLINE\",\"framework_id\":\"f-1\",\"decline\":{"
                              "\"offer_ids\":[\"o-1\"]}}");
    struct ml_sched_call c;
    struct berr *err = NULL;
    assert_int_equal(ml_sched_call_decode(body, strlen(body), &c, &err), 0);
    assert_int_equal(c.type, ML_SCHED_DECLINE);
    assert_string_equal(c.framework_id, "f-1");
    assert_non_null(json_get(c.payload, "offer_ids"));
    ml_sched_call_done(&c);
    free(body);
    /* a first SUBSCRIBE has no framework_id; NULL payload becomes {} */
    body = ml_sched_call_encode(ML_SCHED_SUBSCRIBE, NULL, NULL);
    assert_string_equal(body, "{\"type\":\"SUBSCRIBE\",\"subscribe\":{}}");
    assert_int_equal(ml_sched_call_decode(body, strlen(body), &c, &err), 0);
    assert_null(c.framework_id);
    ml_sched_call_done(&c);
    free(body);
    const struct {
        const char *body, *msg;
    } bad[] = {
            {"{\"type\": \"LAUNCH\", \"framework_id\": \"f\"}", "unknown call type"},
            {"{\"framework_id\": \"f\"}", "no \"type\""},
            {"{\"type\": \"ACCEPT\"}", "ACCEPT needs \"framework_id\""},
            {"{\"type\": \"KILL\", \"framework_id\": \"../x\"}", "framework_id"},
            {"{\"type\": \"KILL\", \"framework_id\": \"f\", \"kill\": []}", "object"},
            {"[]", "object"},
            {"{\"type\": ", "malformed"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        assert_int_equal(ml_sched_call_decode(bad[i].body, strlen(bad[i].body), &c, &err), -EINVAL);
        assert_non_null(strstr(berr_msg(err), bad[i].msg));
        assert_int_equal(err->code, BERR_INVALID_ARGUMENT);
        berr_free(&err);
    }
}

static void test_names(void **state)
{
    (void) state;
    for (int t = 0; t < _ML_SCHED_CALL_MAX; t++)
        assert_int_equal(ml_sched_call_from_name(ml_sched_call_name(t)), t);
    for (int t = 0; t < _ML_SCHED_EVENT_MAX; t++)
        assert_int_equal(ml_sched_event_from_name(ml_sched_event_name(t)), t);
    assert_string_equal(ml_sched_call_name(ML_SCHED_RECONCILE), "RECONCILE");
    assert_string_equal(ml_sched_event_name(ML_SCHED_RESCIND), "RESCIND");
    assert_int_equal(ml_sched_call_from_name("HEARTBEAT"), -EINVAL);
    assert_string_equal(ml_reason_name(ML_REASON_UNKNOWN_TASK), "UNKNOWN_TASK");
}

static void test_offer_round_trip(void **state)
{
    (void) state;
    struct ml_offer o = {.hostname = "node1",
                         .role = "analytics",
                         .cpus_millis = 3500,
                         .mem_bytes = 1ULL << 31,
                         .reserved_cpus_millis = 2000,
                         .reserved_mem_bytes = 1ULL << 30,
                         .ports = "[31000-31009]"};
    struct ml_attr attrs[] = {{"rack", "r1"}, {"zone.name", "eu-1 a"}, {"empty", ""}};
    o.attrs = attrs;
    o.n_attrs = ARRAY_SIZE(attrs);
    o.address = "198.18.0.7";
    snprintf(o.id, sizeof(o.id), "o-0123456789abcdef");
    snprintf(o.agent_id, sizeof(o.agent_id), "agent-1");
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_array_open(g);
    ml_offer_gen(g, &o);
    yajl_gen_array_close(g);
    char *text = json_gen_take(g);
    assert_non_null(strstr(
            text, "\"attributes\":{\"rack\":\"r1\",\"zone.name\":\"eu-1 a\",\"empty\":\"\"}"));
    char *ev = ml_sched_event_encode(ML_SCHED_OFFERS, "{}");
    struct ml_sched_event e;
    struct berr *err = NULL;
    assert_int_equal(ml_sched_event_decode(ev, strlen(ev), &e, &err), 0);
    assert_int_equal(e.type, ML_SCHED_OFFERS);
    ml_sched_event_done(&e);
    free(ev);
    yajl_val v = json_parse(text, strlen(text), &err);
    struct ml_offer back;
    assert_int_equal(ml_offer_decode(v->u.array.values[0], &back, &err), 0);
    assert_string_equal(back.id, o.id);
    assert_string_equal(back.agent_id, "agent-1");
    assert_string_equal(back.hostname, "node1");
    assert_string_equal(back.role, "analytics");
    assert_int_equal(back.cpus_millis, 3500);
    assert_int_equal(back.mem_bytes, 1ULL << 31);
    assert_int_equal(back.reserved_cpus_millis, 2000);
    assert_int_equal(back.reserved_mem_bytes, 1ULL << 30);
    assert_string_equal(back.ports, "[31000-31009]");
    assert_int_equal(back.n_attrs, 3);
    assert_true(ml_attrs_equal(back.attrs, back.n_attrs, attrs, ARRAY_SIZE(attrs)));
    assert_string_equal(back.address, "198.18.0.7");
    ml_offer_done(&back);
    assert_null(back.address);
    assert_null(back.attrs);
    assert_int_equal(back.n_attrs, 0);
    yajl_tree_free(v);
    free(text);
    /* an offer of an older master has no attributes: none */
    const char *old = "{\"id\": \"o-1\", \"agent_id\": \"a\", \"role\": \"*\", "
                      "\"resources\": {\"cpus\": 1, \"mem\": 1}}";
    v = json_parse(old, strlen(old), &err);
    assert_int_equal(ml_offer_decode(v, &back, &err), 0);
    assert_null(back.attrs);
    assert_int_equal(back.n_attrs, 0);
    assert_null(back.address);
    ml_offer_done(&back);
    yajl_tree_free(v);
    /* an address that is none (issue #17): none, not an error */
    const char *badaddr = "{\"id\": \"o-1\", \"agent_id\": \"a\", \"role\": \"*\", "
                          "\"resources\": {\"cpus\": 1, \"mem\": 1}, \"address\": \"node1\"}";
    v = json_parse(badaddr, strlen(badaddr), &err);
    assert_int_equal(ml_offer_decode(v, &back, &err), 0);
    assert_null(back.address);
    ml_offer_done(&back);
    yajl_tree_free(v);
    assert_true(ml_address_valid("127.0.0.1"));
    assert_true(ml_address_valid("::1"));
    assert_true(ml_address_valid("fd00::1:2"));
    assert_false(ml_address_valid(""));
    assert_false(ml_address_valid("localhost"));
    assert_false(ml_address_valid("10.0.0.256"));
    assert_false(ml_address_valid(NULL));
    /* what an offer without a role, resources or a good id is, or with bad attributes */
#define RES "\"resources\": {\"cpus\": 1, \"mem\": 1}"
    const char *bad[] = {"{\"id\": \"o/1\", \"agent_id\": \"a\", \"role\": \"*\"}",
                         "{\"id\": \"o-1\", \"agent_id\": \"a\", \"role\": \"Bad\"}",
                         "{\"id\": \"o-1\", \"agent_id\": \"a\", \"role\": \"*\"}",
                         "{\"id\": \"o-1\", \"agent_id\": \"a\", \"role\": \"*\", " RES
                         ", \"attributes\": [\"rack\"]}",
                         "{\"id\": \"o-1\", \"agent_id\": \"a\", \"role\": \"*\", " RES
                         ", \"attributes\": {\"rack\": 1}}",
                         "{\"id\": \"o-1\", \"agent_id\": \"a\", \"role\": \"*\", " RES
                         ", \"attributes\": {\"ra ck\": \"r1\"}}"};
#undef RES
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        v = json_parse(bad[i], strlen(bad[i]), &err);
        assert_int_equal(ml_offer_decode(v, &back, &err), -EINVAL);
        assert_int_equal(err->code, BERR_INVALID_ARGUMENT);
        berr_free(&err);
        yajl_tree_free(v);
    }
}

/* The attribute object's rules, as SUBSCRIBE and the offers carry it. */
static void test_attrs(void **state)
{
    (void) state;
    assert_true(ml_attr_name_valid("rack"));
    assert_true(ml_attr_name_valid("a.B-c_9"));
    assert_false(ml_attr_name_valid(""));
    assert_false(ml_attr_name_valid(NULL));
    assert_false(ml_attr_name_valid("ra ck"));
    assert_false(ml_attr_name_valid("r/1"));
    assert_false(ml_attr_name_valid("r\xc3\xa4"
                                    "ck"));
    char name[65];
    memset(name, 'n', 64);
    name[64] = 0;
    assert_false(ml_attr_name_valid(name));
    name[63] = 0;
    assert_true(ml_attr_name_valid(name));
    assert_true(ml_attr_value_valid(""));
    assert_true(ml_attr_value_valid("eu west ~1!"));
    assert_false(ml_attr_value_valid("a\nb"));
    assert_false(ml_attr_value_valid("\x1b[31m"));
    assert_false(ml_attr_value_valid("Z\xc3\xbc"
                                     "rich"));
    char value[257];
    memset(value, 'v', 256);
    value[256] = 0;
    assert_false(ml_attr_value_valid(value));
    value[255] = 0;
    assert_true(ml_attr_value_valid(value));

    struct berr *err = NULL;
    struct ml_attr *a = (struct ml_attr *) 1;
    size_t n = 1;
    assert_int_equal(ml_attrs_decode(NULL, &a, &n, &err), 0);
    assert_null(a);
    assert_int_equal(n, 0);
    const char *good = "{\"zone\": \"z1\", \"rack\": \"r1\"}";
    yajl_val v = json_parse(good, strlen(good), &err);
    assert_int_equal(ml_attrs_decode(v, &a, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(a[0].name, "zone"); /* the object's order */
    assert_string_equal(a[1].value, "r1");
    struct ml_attr *d = ml_attrs_dup(a, n);
    assert_true(ml_attrs_equal(a, n, d, n));
    free(d[1].value);
    d[1].value = xstrdup("r2");
    assert_false(ml_attrs_equal(a, n, d, n));
    assert_false(ml_attrs_equal(a, n, d, 1));
    yajl_gen g = yajl_gen_alloc(NULL);
    ml_attrs_gen(g, a, n);
    char *text = json_gen_take(g);
    assert_string_equal(text, "{\"zone\":\"z1\",\"rack\":\"r1\"}");
    free(text);
    ml_attrs_free(d, n);
    ml_attrs_free(a, n);
    ml_attrs_free(NULL, 0);
    yajl_tree_free(v);

    const struct {
        const char *json, *msg;
    } bad[] = {
            {"[]", "object"},
            {"\"rack=r1\"", "object"},
            {"{\"\": \"x\"}", "bad name"},
            {"{\"a b\": \"x\"}", "bad name 'a b'"},
            {"{\"rack\": 1}", "bad value of 'rack'"},
            {"{\"rack\": null}", "bad value of 'rack'"},
            {"{\"rack\": \"a\\nb\"}", "bad value of 'rack'"},
            {"{\"rack\": \"r1\", \"rack\": \"r2\"}", "'rack' twice"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        v = json_parse(bad[i].json, strlen(bad[i].json), &err);
        assert_non_null(v);
        assert_int_equal(ml_attrs_decode(v, &a, &n, &err), -EINVAL);
        if (!strstr(berr_msg(err), bad[i].msg))
            fail_msg("%s: '%s' does not say '%s'", bad[i].json, berr_msg(err), bad[i].msg);
        assert_int_equal(err->code, BERR_INVALID_ARGUMENT);
        berr_free(&err);
        yajl_tree_free(v);
    }
    /* at most ML_MAX_ATTRS */
    for (int k = ML_MAX_ATTRS; k <= ML_MAX_ATTRS + 1; k++) {
        g = yajl_gen_alloc(NULL);
        yajl_gen_map_open(g);
        for (int i = 0; i < k; i++) {
            char key[16];
            snprintf(key, sizeof(key), "a%d", i);
            json_kv_str(g, key, "x");
        }
        yajl_gen_map_close(g);
        text = json_gen_take(g);
        v = json_parse(text, strlen(text), &err);
        if (k == ML_MAX_ATTRS) {
            assert_int_equal(ml_attrs_decode(v, &a, &n, &err), 0);
            assert_int_equal(n, ML_MAX_ATTRS);
            ml_attrs_free(a, n);
        } else {
            assert_int_equal(ml_attrs_decode(v, &a, &n, &err), -EINVAL);
            assert_non_null(strstr(berr_msg(err), "at most 64"));
            berr_free(&err);
        }
        yajl_tree_free(v);
        free(text);
    }
}

static void test_port_ranges(void **state)
{
    (void) state;
    assert_int_equal(ml_ports_count("[31000-32000]"), 1001);
    assert_int_equal(ml_ports_count("[80,443,8000-8009]"), 12);
    assert_int_equal(ml_ports_count("[]"), 0);
    assert_int_equal(ml_ports_count(NULL), 0);
    assert_int_equal(ml_ports_count("31000-32000"), 0);   /* no brackets */
    assert_int_equal(ml_ports_count("[32000-31000]"), 0); /* backwards */
    assert_int_equal(ml_ports_count("[1-70000]"), 0);
    assert_int_equal(ml_ports_count("[80,]"), 0);
    assert_true(ml_ports_contain("[80,443,8000-8009]", 8005));
    assert_true(ml_ports_contain("[80,443,8000-8009]", 443));
    assert_false(ml_ports_contain("[80,443,8000-8009]", 8010));
    assert_false(ml_ports_contain("[80,443,8000-8009]", 0));
    assert_false(ml_ports_contain(NULL, 80));
    assert_false(ml_ports_contain("[80,bad]", 80)); /* malformed: holds none */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_call_envelope),    cmocka_unit_test(test_names),
            cmocka_unit_test(test_offer_round_trip), cmocka_unit_test(test_attrs),
            cmocka_unit_test(test_port_ranges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
