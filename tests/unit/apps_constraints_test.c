/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/apps_constraints_test.c - apps/constraints.c, berth-apps' placement constraints:
 * parsing (every op, the values each takes, what is refused and why), the generator's round
 * trip, and the decisions of UNIQUE, CLUSTER (with and without a value), MAX_PER, LIKE and
 * UNLIKE over hostnames and agent attributes, agents without the attribute, and the why-lines
 * `app inspect` shows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
/* clang-format off: cmocka.h needs setjmp.h, stdarg.h and stddef.h before it */
#include <cmocka.h>
/* clang-format on */

#include "apps/constraints.h"

/* Parse the JSON text of one constraint; asserts success. */
static void parse_ok(const char *json, struct app_constraint *c)
{
    struct berr *err = NULL;
    yajl_val v = json_parse(json, strlen(json), &err);
    assert_non_null(v);
    int r = app_constraint_parse(v, c, &err);
    if (r < 0)
        fail_msg("%s: %s", json, berr_msg(err));
    assert_null(err);
    yajl_tree_free(v);
}

/* The generator's text of c. */
static char *gen_text(const struct app_constraint *c)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    app_constraint_gen(g, c);
    const unsigned char *buf;
    size_t len;
    assert_int_equal(yajl_gen_get_buf(g, &buf, &len), yajl_gen_status_ok);
    char *s = xstrndup((const char *) buf, len);
    yajl_gen_free(g);
    return s;
}

static void test_parse_each_op(void **state)
{
    (void) state;
    const struct {
        const char *json, *gen;
        enum app_constraint_op op;
        const char *field, *value;
        long max_per;
        bool has_re;
    } ok[] = {
            {"[\"hostname\", \"UNIQUE\"]", "[\"hostname\",\"UNIQUE\"]", APP_UNIQUE, "hostname",
             NULL, 0, false},
            {"[\"rack\", \"CLUSTER\"]", "[\"rack\",\"CLUSTER\"]", APP_CLUSTER, "rack", NULL, 0,
             false},
            {"[\"rack\", \"CLUSTER\", \"r1\"]", "[\"rack\",\"CLUSTER\",\"r1\"]", APP_CLUSTER,
             "rack", "r1", 0, false},
            {"[\"rack\", \"MAX_PER\", \"2\"]", "[\"rack\",\"MAX_PER\",\"2\"]", APP_MAX_PER, "rack",
             "2", 2, false},
            {"[\"zone.a-b_c\", \"MAX_PER\", 3]", "[\"zone.a-b_c\",\"MAX_PER\",\"3\"]", APP_MAX_PER,
             "zone.a-b_c", "3", 3, false},
            {"[\"rack\", \"LIKE\", \"r[12]\"]", "[\"rack\",\"LIKE\",\"r[12]\"]", APP_LIKE, "rack",
             "r[12]", 0, true},
            {"[\"hostname\", \"UNLIKE\", \"db-.*\"]", "[\"hostname\",\"UNLIKE\",\"db-.*\"]",
             APP_UNLIKE, "hostname", "db-.*", 0, true},
    };
    for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
        struct app_constraint c;
        parse_ok(ok[i].json, &c);
        assert_int_equal(c.op, ok[i].op);
        assert_string_equal(c.field, ok[i].field);
        if (ok[i].value)
            assert_string_equal(c.value, ok[i].value);
        else
            assert_null(c.value);
        assert_int_equal(c.max_per, ok[i].max_per);
        assert_int_equal(c.has_re, ok[i].has_re);
        char *g = gen_text(&c);
        assert_string_equal(g, ok[i].gen);
        /* the generated text parses back to the same */
        struct app_constraint c2;
        parse_ok(g, &c2);
        assert_int_equal(c2.op, c.op);
        free(g);
        app_constraint_done(&c2);
        app_constraint_done(&c);
        assert_null(c.field);
        app_constraint_done(&c); /* twice is harmless */
    }
}

static void test_parse_errors(void **state)
{
    (void) state;
    const struct {
        const char *json, *msg;
    } bad[] = {
            {"{}", "array"},
            {"\"hostname\"", "array"},
            {"[\"hostname\"]", "array"},
            {"[\"rack\", \"LIKE\", \"a\", \"b\"]", "array"},
            {"[1, \"UNIQUE\"]", "field"},
            {"[\"\", \"UNIQUE\"]", "field"},
            {"[\"ra ck\", \"UNIQUE\"]", "field"},
            {"[\"a/b\", \"UNIQUE\"]", "field"},
            {"[\"x123456789x123456789x123456789x123456789x123456789x123456789xxxx\", "
             "\"UNIQUE\"]",
             "field"},
            {"[\"rack\", 7]", "op is a string"},
            {"[\"rack\", \"SAME\"]", "unknown op 'SAME'"},
            {"[\"rack\", \"unique\"]", "unknown op 'unique'"},
            {"[\"rack\", \"UNIQUE\", \"r1\"]", "takes no value"},
            {"[\"rack\", \"CLUSTER\", 1]", "value is a string"},
            {"[\"rack\", \"MAX_PER\"]", "positive integer"},
            {"[\"rack\", \"MAX_PER\", \"0\"]", "positive integer"},
            {"[\"rack\", \"MAX_PER\", 0]", "positive integer"},
            {"[\"rack\", \"MAX_PER\", -1]", "positive integer"},
            {"[\"rack\", \"MAX_PER\", \"two\"]", "positive integer"},
            {"[\"rack\", \"MAX_PER\", 1.5]", "positive integer"},
            {"[\"rack\", \"LIKE\"]", "needs a regex"},
            {"[\"rack\", \"UNLIKE\", 3]", "needs a regex"},
            {"[\"rack\", \"LIKE\", \"r[12\"]", "bad regex 'r[12'"},
            {"[\"rack\", \"LIKE\", \"(r1\"]", "bad regex"},
            /* would close the anchoring group and leave "|(b" unanchored */
            {"[\"rack\", \"UNLIKE\", \"a)|(b\"]", "bad regex"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct berr *err = NULL;
        yajl_val v = json_parse(bad[i].json, strlen(bad[i].json), &err);
        assert_non_null(v);
        struct app_constraint c = {.field = (char *) "untouched"};
        assert_int_equal(app_constraint_parse(v, &c, &err), -EINVAL);
        assert_non_null(err);
        if (!strstr(berr_msg(err), bad[i].msg))
            fail_msg("%s: '%s' does not say '%s'", bad[i].json, berr_msg(err), bad[i].msg);
        assert_int_equal(err->code, BERR_INVALID_ARGUMENT);
        assert_string_equal(c.field, "untouched"); /* ret written only on success */
        berr_free(&err);
        yajl_tree_free(v);
    }
}

static const struct ml_attr attrs_a[] = {{(char *) "rack", (char *) "r1"},
                                         {(char *) "zone", (char *) "z1"}};
static const struct ml_attr attrs_b[] = {{(char *) "rack", (char *) "r2"},
                                         {(char *) "zone", (char *) "z1"}};
static const struct ml_attr attrs_c[] = {{(char *) "rack", (char *) "r3"}};
/* agent-a rack r1 zone z1, agent-b rack r2 zone z1, agent-c rack r3, agent-d nothing */
static const struct app_place A = {"agent-a", attrs_a, 2};
static const struct app_place B = {"agent-b", attrs_b, 2};
static const struct app_place C = {"agent-c", attrs_c, 1};
static const struct app_place D = {"agent-d", NULL, 0};

static void test_place_value(void **state)
{
    (void) state;
    assert_string_equal(app_place_value(&A, "hostname"), "agent-a");
    assert_string_equal(app_place_value(&A, "rack"), "r1");
    assert_string_equal(app_place_value(&B, "zone"), "z1");
    assert_null(app_place_value(&C, "zone"));
    assert_null(app_place_value(&D, "rack"));
    assert_null(app_place_value(&A, "Rack")); /* names are case-sensitive */
    struct app_place nohost = {NULL, attrs_c, 1};
    assert_null(app_place_value(&nohost, "hostname"));
}

/* Asserts the decision of the constraint in json for cand given placed, and (when refused)
 * that the why-line is exactly want_why. */
static void check(const char *json, const struct app_place *cand, const struct app_place *placed,
                  size_t n_placed, const char *want_why)
{
    struct app_constraint c;
    parse_ok(json, &c);
    char why[256] = "";
    bool ok = app_constraint_ok(&c, cand, placed, n_placed, why, sizeof(why));
    if (want_why && ok)
        fail_msg("%s on %s: allowed, want refused: %s", json, cand->hostname, want_why);
    if (!want_why && !ok)
        fail_msg("%s on %s: refused (%s), want allowed", json, cand->hostname, why);
    if (want_why)
        assert_string_equal(why, want_why);
    /* the decision is the same without a why buffer */
    assert_int_equal(app_constraint_ok(&c, cand, placed, n_placed, NULL, 0), ok);
    app_constraint_done(&c);
}

static void test_unique(void **state)
{
    (void) state;
    const char *h = "[\"hostname\", \"UNIQUE\"]";
    check(h, &A, NULL, 0, NULL);
    check(h, &B, (struct app_place[]){A}, 1, NULL);
    check(h, &B, (struct app_place[]){A, B}, 2,
          "hostname UNIQUE: an instance already runs on agent-b");
    const char *z = "[\"zone\", \"UNIQUE\"]";
    check(z, &A, NULL, 0, NULL);
    check(z, &B, (struct app_place[]){A}, 1, "zone UNIQUE: an instance already runs on zone=z1");
    /* C has no zone: refused even with nothing placed */
    check(z, &C, NULL, 0, "zone UNIQUE: agent-c has no zone");
    /* placed instances without the attribute take no value */
    check(z, &A, (struct app_place[]){C, D}, 2, NULL);
}

static void test_cluster(void **state)
{
    (void) state;
    const char *v = "[\"rack\", \"CLUSTER\", \"r1\"]";
    check(v, &A, NULL, 0, NULL);
    check(v, &A, (struct app_place[]){A, A}, 2, NULL);
    check(v, &B, NULL, 0, "rack CLUSTER r1: agent-b has rack=r2");
    check(v, &D, NULL, 0, "rack CLUSTER r1: agent-d has no rack");
    const char *h = "[\"hostname\", \"CLUSTER\", \"agent-c\"]";
    check(h, &C, NULL, 0, NULL);
    check(h, &A, NULL, 0, "hostname CLUSTER agent-c: agent-a has hostname=agent-a");
    /* without a value: wherever the first one went */
    const char *f = "[\"zone\", \"CLUSTER\"]";
    check(f, &C, NULL, 0, "zone CLUSTER: agent-c has no zone");
    check(f, &A, NULL, 0, NULL);
    check(f, &B, (struct app_place[]){A}, 1, NULL); /* same zone z1 */
    const char *fr = "[\"rack\", \"CLUSTER\"]";
    check(fr, &B, (struct app_place[]){A}, 1,
          "rack CLUSTER: instances run on rack=r1, agent-b has rack=r2");
    check(fr, &A, (struct app_place[]){A, A}, 2, NULL);
    /* the first placed one that has the attribute decides */
    check(fr, &C, (struct app_place[]){D, C}, 2, NULL);
    check(fr, &A, (struct app_place[]){D, C}, 2,
          "rack CLUSTER: instances run on rack=r3, agent-a has rack=r1");
}

static void test_max_per(void **state)
{
    (void) state;
    const char *m = "[\"zone\", \"MAX_PER\", 2]";
    check(m, &A, NULL, 0, NULL);
    check(m, &A, (struct app_place[]){B}, 1, NULL);
    check(m, &A, (struct app_place[]){B, A}, 2,
          "zone MAX_PER 2: 2 instances already run on zone=z1");
    check(m, &A, (struct app_place[]){C, D, C}, 3, NULL); /* they have no zone z1 */
    check(m, &C, NULL, 0, "zone MAX_PER 2: agent-c has no zone");
    const char *h = "[\"hostname\", \"MAX_PER\", \"1\"]";
    check(h, &A, (struct app_place[]){B, C}, 2, NULL);
    check(h, &A, (struct app_place[]){B, A}, 2,
          "hostname MAX_PER 1: 1 instance already runs on agent-a");
}

static void test_like_unlike(void **state)
{
    (void) state;
    const char *l = "[\"rack\", \"LIKE\", \"r[12]\"]";
    check(l, &A, NULL, 0, NULL);
    check(l, &B, NULL, 0, NULL);
    check(l, &C, NULL, 0, "rack LIKE r[12]: agent-c has rack=r3");
    check(l, &D, NULL, 0, "rack LIKE r[12]: agent-d has no rack");
    /* anchored at both ends: "r1" does not match "r" or "1" or "r1x" patterns partially */
    check("[\"rack\", \"LIKE\", \"r\"]", &A, NULL, 0, "rack LIKE r: agent-a has rack=r1");
    check("[\"rack\", \"LIKE\", \"1\"]", &A, NULL, 0, "rack LIKE 1: agent-a has rack=r1");
    check("[\"rack\", \"LIKE\", \"r1|x\"]", &A, NULL, 0, NULL);
    check("[\"rack\", \"LIKE\", \"x|r\"]", &A, NULL, 0, "rack LIKE x|r: agent-a has rack=r1");
    /* extended syntax: + and {} without backslashes */
    check("[\"hostname\", \"LIKE\", \"agent-[a-c]+\"]", &B, NULL, 0, NULL);
    check("[\"hostname\", \"LIKE\", \"agent-[a-c]{2}\"]", &B, NULL, 0,
          "hostname LIKE agent-[a-c]{2}: agent-b has hostname=agent-b");
    const char *u = "[\"rack\", \"UNLIKE\", \"r[12]\"]";
    check(u, &C, NULL, 0, NULL);
    check(u, &A, NULL, 0, "rack UNLIKE r[12]: agent-a has rack=r1");
    /* an agent without the attribute satisfies UNLIKE, and UNLIKE only */
    check(u, &D, NULL, 0, NULL);
    check("[\"hostname\", \"UNLIKE\", \"agent-d\"]", &D, NULL, 0,
          "hostname UNLIKE agent-d: agent-d has hostname=agent-d");
    check("[\"hostname\", \"UNLIKE\", \"agent-d\"]", &C, (struct app_place[]){D}, 1, NULL);
}

static void test_all(void **state)
{
    (void) state;
    struct app_constraint cs[3];
    parse_ok("[\"hostname\", \"UNIQUE\"]", &cs[0]);
    parse_ok("[\"rack\", \"LIKE\", \"r[12]\"]", &cs[1]);
    parse_ok("[\"zone\", \"MAX_PER\", 1]", &cs[2]);
    char why[256] = "";
    assert_true(app_constraints_ok(cs, 3, &A, NULL, 0, why, sizeof(why)));
    assert_true(app_constraints_ok(cs, 0, &D, (struct app_place[]){D}, 1, why, sizeof(why)));
    /* the first refusing one's why */
    assert_false(app_constraints_ok(cs, 3, &A, (struct app_place[]){A}, 1, why, sizeof(why)));
    assert_string_equal(why, "hostname UNIQUE: an instance already runs on agent-a");
    assert_false(app_constraints_ok(cs, 3, &C, (struct app_place[]){A}, 1, why, sizeof(why)));
    assert_string_equal(why, "rack LIKE r[12]: agent-c has rack=r3");
    assert_false(app_constraints_ok(cs, 3, &B, (struct app_place[]){A}, 1, why, sizeof(why)));
    assert_string_equal(why, "zone MAX_PER 1: 1 instance already runs on zone=z1");
    /* a short buffer is cut, not overrun */
    char small[8];
    assert_false(app_constraints_ok(cs, 3, &B, (struct app_place[]){A}, 1, small, sizeof(small)));
    assert_string_equal(small, "zone MA");
    for (size_t i = 0; i < ARRAY_SIZE(cs); i++)
        app_constraint_done(&cs[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_each_op), cmocka_unit_test(test_parse_errors),
            cmocka_unit_test(test_place_value),   cmocka_unit_test(test_unique),
            cmocka_unit_test(test_cluster),       cmocka_unit_test(test_max_per),
            cmocka_unit_test(test_like_unlike),   cmocka_unit_test(test_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
