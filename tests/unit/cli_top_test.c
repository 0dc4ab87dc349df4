/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/cli_top_test.c - unit tests of the text of berthctl's live views
 * (cli/top-render.c): CPU rates measured between frames, the limit a CPU% is taken
 * against, and a whole frame from canned agent answers. cli_test.c covers the other pure
 * helpers; the terminal itself is tested in tests/system/test_top.py (tmux). */
/* cmocka.h needs these first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include "cli/format.c"
#include "cli/json.c"
#include "cli/top-render.c"

static yajl_val parse(const char *text)
{
    char ebuf[256];
    yajl_val v = yajl_tree_parse(text, ebuf, sizeof(ebuf));
    if (!v)
        fail_msg("bad test JSON: %s", ebuf);
    return v;
}

/* A container object with the given usage figures. */
static yajl_val ctr(const char *id, double cpu_seconds, double sampled_at, double cpu_cores)
{
    char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"id\": \"%s\", \"name\": \"n-%s\", \"state\": \"RUNNING\", "
             "\"resources\": {\"cpus\": 0.5, \"cpus_limit\": 2, \"mem\": 67108864}, "
             "\"usage\": {\"cpu_seconds\": %.6f, \"sampled_at\": %.6f, \"cpu_cores\": %.6f, "
             "\"memory_bytes\": 2097152, \"working_set_bytes\": 1048576, \"pids\": 3}}",
             id, id, cpu_seconds, sampled_at, cpu_cores);
    return parse(buf);
}

static void test_cores_between_frames(void **state)
{
    (void) state;
    struct ctl_top_state s = {0};
    /* first sight: the agent's own figure */
    yajl_val a = ctr("aaaa", 10.0, 1000.0, 0.25);
    assert_true(fabs(ctl_top_cores(&s, a) - 0.25) < 1e-9);
    /* 2 s later, 3 CPU-seconds more: 1.5 cores, whatever the agent's window said */
    yajl_val b = ctr("aaaa", 13.0, 1002.0, 0.1);
    assert_true(fabs(ctl_top_cores(&s, b) - 1.5) < 1e-9);
    /* the same sample again (the agent has not sampled since): the same rate, same base */
    yajl_val c = ctr("aaaa", 13.0, 1002.01, 0.1);
    assert_true(fabs(ctl_top_cores(&s, c) - 1.5) < 1e-9);
    yajl_val d = ctr("aaaa", 14.0, 1003.0, 0.9);
    assert_true(fabs(ctl_top_cores(&s, d) - 1.0) < 1e-9);
    /* a counter that went back (a new cgroup under the same id): trust the agent */
    yajl_val e = ctr("aaaa", 1.0, 1004.0, 0.75);
    assert_true(fabs(ctl_top_cores(&s, e) - 0.75) < 1e-9);
    /* another container has its own base */
    yajl_val f = ctr("bbbb", 5.0, 1004.0, 0.5);
    assert_true(fabs(ctl_top_cores(&s, f) - 0.5) < 1e-9);
    assert_int_equal(s.nrates, 2);
    /* forgetting keeps only the containers still listed */
    ctl_top_forget(&s, &f, 1);
    assert_int_equal(s.nrates, 1);
    assert_string_equal(s.rates[0].id, "bbbb");
    /* no usage at all: unknown */
    yajl_val g = parse("{\"id\": \"cccc\", \"usage\": null}");
    assert_true(ctl_top_cores(&s, g) < 0);
    ctl_top_state_free(&s);
    assert_null(s.rates);
    yajl_val all[] = {a, b, c, d, e, f, g};
    for (size_t i = 0; i < ARRAY_SIZE(all); i++)
        yajl_tree_free(all[i]);
}

static void test_limit_cores(void **state)
{
    (void) state;
    static const struct {
        const char *json;
        double want;
    } cases[] = {
            {"{\"resources\": {\"cpus\": 0.5, \"cpus_limit\": 2}}", 2},
            {"{\"resources\": {\"cpus\": 0.5, \"cpus_limit\": \"none\"}}", 0.5},
            {"{\"resources\": {\"cpus\": \"1.5\"}}", 1.5},
            {"{\"limits\": {\"cpus\": 1, \"cpus_limit\": \"3\"}}", 3}, /* a /stats answer */
            {"{\"resources\": {}}", -1},
            {"{}", -1},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        yajl_val v = parse(cases[i].json);
        double got = ctl_top_limit_cores(v);
        if (fabs(got - cases[i].want) > 1e-9)
            fail_msg("%s: got %g, want %g", cases[i].json, got, cases[i].want);
        yajl_tree_free(v);
    }
}

static void test_frame(void **state)
{
    (void) state;
    struct ctl_top_state s = {0};
    yajl_val node = parse("{\"resources\": {\"total\": {\"cpus\": 4, \"mem\": 4294967296}},"
                          " \"node\": {\"cpu_cores\": 1.5, \"memory_used_bytes\": 1073741824}}");
    yajl_val list =
            parse("{\"containers\": ["
                  "{\"id\": \"0123456789abcdef\", \"name\": \"web\", \"state\": \"RUNNING\","
                  " \"resources\": {\"cpus\": 1, \"cpus_limit\": \"none\", \"mem\": 134217728},"
                  " \"usage\": {\"cpu_seconds\": 3, \"cpu_cores\": 0.5, \"memory_bytes\": 67108864,"
                  " \"working_set_bytes\": 33554432, \"pids\": 7}},"
                  "{\"id\": \"fedcba9876543210\", \"name\": \"done\", \"state\": \"FINISHED\","
                  " \"resources\": {\"cpus\": 1, \"mem\": 134217728}, \"usage\": null},"
                  "{\"id\": \"1111222233334444\", \"name\": \"new\", \"state\": \"STARTING\","
                  " \"resources\": {\"cpus\": 2, \"cpus_limit\": 2, \"mem\": 1073741824},"
                  " \"usage\": null}]}");
    yajl_val arr = json_get(list, "containers");
    _cleanup_free_ char *text = ctl_top_frame(&s, "berthctl top 12:00:00", node,
                                              arr->u.array.values, arr->u.array.len, false);
    const char *want =
            "berthctl top 12:00:00 - 2 containers\n"
            "node:  CPU 1.50 of 4 cores (37.5%)   MEM 1.0GiB of 4.0GiB (25.0%)\n"
            "\n"
            "ID             NAME   STATE      CPU%    CPU% HOST   MEM USAGE / LIMIT   MEM%    "
            "PIDS\n"
            "0123456789ab   web    RUNNING    50.0%   12.5%       32.0MiB / 128MiB    25.0%   7\n"
            "111122223333   new    STARTING   -       -           - / 1.0GiB          -       -\n";
    assert_string_equal(text, want);
    /* all: the ended one too (live `stats ID` of a container that ended) */
    _cleanup_free_ char *all = ctl_top_frame(&s, "t", node, arr->u.array.values + 1, 1, true);
    assert_non_null(strstr(all, "t - 1 container\n"));
    assert_non_null(strstr(all, "fedcba987654   done   FINISHED   -"));
    /* a node that reports nothing still renders */
    yajl_val empty = parse("{}");
    _cleanup_free_ char *bare = ctl_top_frame(&s, "t", empty, NULL, 0, false);
    assert_string_equal(bare, "t - 0 containers\nnode:  CPU -   MEM -\n\n"
                              "ID   NAME   STATE   CPU%   CPU% HOST   MEM USAGE / LIMIT   "
                              "MEM%   PIDS\n");
    ctl_top_state_free(&s);
    yajl_tree_free(node);
    yajl_tree_free(list);
    yajl_tree_free(empty);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_cores_between_frames),
            cmocka_unit_test(test_limit_cores),
            cmocka_unit_test(test_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
