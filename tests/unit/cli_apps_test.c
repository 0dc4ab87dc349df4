/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/cli_apps_test.c - unit tests of the pure half of `berthctl --apps URL app ...`
 * (cli/apps-render.c): the instance count of `app scale`, the id of an app file (the PUT
 * after a 409 CONFLICT), paths, the tables of `app ls` and `app tasks` and the lines
 * `app inspect` prints for what waits, from canned berth-apps answers (docs/apps.md).
 * tests/system/test_apps_cli.py drives the verbs against a real berth-apps. */
/* cmocka.h needs these first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include "cli/apps-render.c"
#include "cli/format.c"
#include "cli/json.c"

static yajl_val parse(const char *text)
{
    char ebuf[256];
    yajl_val v = yajl_tree_parse(text, ebuf, sizeof(ebuf));
    if (!v)
        fail_msg("bad test JSON: %s", ebuf);
    return v;
}

/* The table as printed, in a malloc'd string. */
static char *table_text(const struct ctl_table *t)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    ctl_table_print(t, f);
    fclose(f);
    return buf;
}

static void test_parse_instances(void **state)
{
    (void) state;
    uint64_t n = 99;
    assert_int_equal(ctl_app_parse_instances("0", &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(ctl_app_parse_instances("6", &n), 0);
    assert_int_equal(n, 6);
    assert_int_equal(ctl_app_parse_instances("1000", &n), 0);
    assert_int_equal(n, 1000);
    const char *bad[] = {"1001", "-1", "+3",  "",   "3.5",
                         "x",    "3x", "1e3", " 3", "99999999999999999999999"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        n = 7;
        assert_int_equal(ctl_app_parse_instances(bad[i], &n), -EINVAL);
        assert_int_equal(n, 7); /* untouched on failure */
    }
    assert_int_equal(ctl_app_parse_instances(NULL, &n), -EINVAL);
    _cleanup_free_ char *body = ctl_app_scale_body(6);
    assert_string_equal(body, "{\"instances\": 6}");
}

static void test_file_id(void **state)
{
    (void) state;
    _cleanup_berr_ struct berr *err = NULL;
    char *id = NULL;
    assert_int_equal(ctl_app_file_id("{\"id\": \"web\", \"instances\": 3}", &id, &err), 0);
    assert_string_equal(id, "web");
    free(id);
    id = NULL;
    assert_true(ctl_app_file_id("{\"instances\": 3}", &id, &err) < 0);
    assert_null(id);
    assert_non_null(strstr(berr_msg(err), "no \"id\""));
    berr_free(&err);
    assert_true(ctl_app_file_id("[\"web\"]", &id, &err) < 0);
    berr_free(&err);
    assert_true(ctl_app_file_id("{\"id\": 3}", &id, &err) < 0);
    berr_free(&err);
    assert_true(ctl_app_file_id("{\"id\": \"\"}", &id, &err) < 0);
    berr_free(&err);
    assert_true(ctl_app_file_id("{\"id\": \"web\"", &id, &err) < 0);
    assert_non_null(strstr(berr_msg(err), "not JSON"));
    assert_null(id);
}

static void test_paths(void **state)
{
    (void) state;
    _cleanup_free_ char *a = ctl_app_path("web", NULL);
    _cleanup_free_ char *b = ctl_app_path("web", "/tasks");
    _cleanup_free_ char *c = ctl_app_path("a b/../x", "/restart");
    assert_string_equal(a, "/v1/apps/web");
    assert_string_equal(b, "/v1/apps/web/tasks");
    /* an id is one path segment whatever is typed */
    assert_string_equal(c, "/v1/apps/a%20b%2F..%2Fx/restart");
}

static void test_apps_table(void **state)
{
    (void) state;
    yajl_val v = parse(
            "{\"apps\": ["
            "{\"id\": \"web\", \"instances\": 3, \"running\": 2, \"healthy\": 1, \"staged\": 1,"
            " \"version\": \"2026-12-06T06:40:00Z\", \"deployments\": [\"d1\", \"d2\"],"
            " \"waiting\": [{\"instances\": 1, \"reason\": \"CONSTRAINT\", \"message\": \"x\"},"
            "               {\"instances\": 2, \"reason\": \"BACKOFF\"}]},"
            "{\"id\": \"db\", \"instances\": 0, \"running\": 0, \"healthy\": 0,"
            " \"version\": \"2026-12-06T06:41:00Z\", \"deployments\": [], \"waiting\": []},"
            "{\"id\": \"odd\"}]}");
    struct ctl_table t;
    ctl_apps_table(v, &t);
    _cleanup_free_ char *text = table_text(&t);
    assert_string_equal(
            text,
            "ID    INSTANCES   RUNNING   HEALTHY   VERSION                WAITING   DEPLOYMENTS\n"
            "web   3           2         1         2026-12-06T06:40:00Z   3         d1,d2\n"
            "db    0           0         0         2026-12-06T06:41:00Z   0         -\n"
            "odd   -           -         -         -                      0         -\n");
    ctl_table_free(&t);
    yajl_tree_free(v);

    /* no apps, or an answer without the list: the header alone */
    v = parse("{\"apps\": []}");
    ctl_apps_table(v, &t);
    _cleanup_free_ char *empty = table_text(&t);
    assert_string_equal(empty, "ID   INSTANCES   RUNNING   HEALTHY   VERSION   WAITING   "
                               "DEPLOYMENTS\n");
    ctl_table_free(&t);
    yajl_tree_free(v);
}

static void test_task_address(void **state)
{
    (void) state;
    yajl_val v = parse("[{\"host\": \"10.0.0.5\", \"hostname\": \"n1\", \"ports\": [31000, 31001]},"
                       " {\"hostname\": \"n2\", \"ports\": [{\"host_port\": 31002}]},"
                       " {\"host\": \"::1\", \"ports\": [31003]},"
                       " {\"host\": \"10.0.0.6\", \"ports\": []},"
                       " {\"ports\": [31004]}]");
    const char *want[] = {"10.0.0.5:31000,31001", "n2:31002", "[::1]:31003", "10.0.0.6", "-:31004"};
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        _cleanup_free_ char *a = ctl_app_task_address(v->u.array.values[i]);
        assert_string_equal(a, want[i]);
    }
    yajl_tree_free(v);
}

static void test_tasks_table(void **state)
{
    (void) state;
    yajl_val v =
            parse("{\"tasks\": ["
                  "{\"id\": \"web.1\", \"app_id\": \"web\", \"version\": \"v1\", \"agent_id\": "
                  "\"0123456789abcdef\", \"hostname\": \"node-a\", \"host\": \"127.0.0.1\","
                  " \"ports\": [31000], \"state\": \"RUNNING\", \"healthy\": true},"
                  "{\"id\": \"web.2\", \"version\": \"v1\", \"agent_id\": \"fedcba9876543210\","
                  " \"host\": \"127.0.0.2\", \"ports\": [31005, 31006], \"state\": \"RUNNING\","
                  " \"healthy\": false},"
                  "{\"id\": \"web.3\", \"version\": \"v2\", \"state\": \"STAGING\"}]}");
    struct ctl_table t;
    ctl_app_tasks_table(v, &t);
    _cleanup_free_ char *text = table_text(&t);
    assert_string_equal(
            text, "ID      AGENT          ADDRESS                 STATE     HEALTHY   VERSION\n"
                  "web.1   node-a         127.0.0.1:31000         RUNNING   yes       v1\n"
                  "web.2   fedcba987654   127.0.0.2:31005,31006   RUNNING   no        v1\n"
                  "web.3   -              -                       STAGING   -         v2\n");
    ctl_table_free(&t);
    yajl_tree_free(v);
}

static void test_waiting_lines(void **state)
{
    (void) state;
    yajl_val v =
            parse("{\"id\": \"web\", \"waiting\": ["
                  "{\"instances\": 2, \"reason\": \"CONSTRAINT\", \"message\": \"hostname UNIQUE: "
                  "every agent (2) has an instance\"},"
                  "{\"instances\": 1, \"reason\": \"BACKOFF\", \"message\": \"until "
                  "2026-12-06T06:50:03Z (4 ends in a row)\"},"
                  "{\"instances\": 1, \"reason\": \"NO_OFFERS\"},"
                  "{\"reason\": \"ROLE\", \"message\": \"no offers in role 'web'\"},"
                  "{\"instances\": 3}]}");
    _cleanup_free_ char *text = ctl_app_waiting_text(v);
    assert_string_equal(text,
                        "2 instances wait: CONSTRAINT hostname UNIQUE: every agent (2) has an "
                        "instance\n"
                        "1 instance waits: BACKOFF until 2026-12-06T06:50:03Z (4 ends in a row)\n"
                        "1 instance waits: NO_OFFERS\n"
                        "instances wait: ROLE no offers in role 'web'\n"
                        "3 instances wait: UNKNOWN\n");
    yajl_tree_free(v);
    /* nothing waits: nothing printed */
    v = parse("{\"id\": \"web\", \"waiting\": []}");
    _cleanup_free_ char *none = ctl_app_waiting_text(v);
    assert_string_equal(none, "");
    yajl_tree_free(v);
    v = parse("{\"id\": \"web\"}");
    _cleanup_free_ char *absent = ctl_app_waiting_text(v);
    assert_string_equal(absent, "");
    yajl_tree_free(v);
}

/* `app endpoints`: a row per port and serving instance (RUNNING, healthy, not killing);
 * the address, else the host; "#INDEX" for a port without a service port. */
static void test_endpoints(void **state)
{
    (void) state;
    yajl_val app = parse("{\"app\": {\"id\": \"web\", \"ports\": [{\"name\": \"http\", "
                         "\"service_port\": 10000}, {\"name\": \"admin\"}]}}");
    yajl_val tasks = parse(
            "{\"tasks\": ["
            "{\"id\": \"web_1\", \"state\": \"RUNNING\", \"healthy\": true, \"host\": \"n1\","
            " \"address\": \"198.18.0.1\", \"ports\": [31000, 31001]},"
            "{\"id\": \"web_2\", \"state\": \"RUNNING\", \"healthy\": true, \"host\": \"n2\","
            " \"ports\": [31002, 31003]},"
            "{\"id\": \"web_3\", \"state\": \"RUNNING\", \"healthy\": true, \"killing\": true,"
            " \"address\": \"198.18.0.3\", \"ports\": [31004, 31005]},"
            "{\"id\": \"web_4\", \"state\": \"RUNNING\", \"healthy\": false,"
            " \"address\": \"198.18.0.4\", \"ports\": [31006, 31007]},"
            "{\"id\": \"web_5\", \"state\": \"STAGING\", \"address\": \"198.18.0.5\","
            " \"ports\": [31008, 31009]},"
            "{\"id\": \"web_6\", \"state\": \"RUNNING\", \"healthy\": true,"
            " \"address\": \"fd00::6\", \"ports\": [31010, 31011]}]}");
    struct ctl_table t;
    ctl_app_endpoints_table(app, tasks, &t);
    _cleanup_free_ char *text = table_text(&t);
    assert_string_equal(text, "SERVICE_PORT   ADDRESS:PORT       TASK_ID\n"
                              "10000          198.18.0.1:31000   web_1\n"
                              "10000          n2:31002           web_2\n"
                              "10000          [fd00::6]:31010    web_6\n"
                              "#1             198.18.0.1:31001   web_1\n"
                              "#1             n2:31003           web_2\n"
                              "#1             [fd00::6]:31011    web_6\n");
    ctl_table_free(&t);
    _cleanup_free_ char *json = ctl_app_endpoints_json(app, tasks);
    assert_non_null(strstr(json, "{\"service_port\":10000,\"port_index\":0,\"address\":"
                                 "\"198.18.0.1\",\"port\":31000,\"task_id\":\"web_1\"}"));
    assert_non_null(strstr(json, "{\"service_port\":null,\"port_index\":1,"));
    assert_null(strstr(json, "web_3"));
    assert_null(strstr(json, "web_4"));
    assert_null(strstr(json, "web_5"));
    yajl_tree_free(app);
    yajl_tree_free(tasks);
    /* an app without ports, or no tasks: the header alone */
    app = parse("{\"app\": {\"id\": \"x\", \"ports\": []}}");
    tasks = parse("{\"tasks\": []}");
    ctl_app_endpoints_table(app, tasks, &t);
    _cleanup_free_ char *empty = table_text(&t);
    assert_string_equal(empty, "SERVICE_PORT   ADDRESS:PORT   TASK_ID\n");
    ctl_table_free(&t);
    yajl_tree_free(app);
    yajl_tree_free(tasks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_instances), cmocka_unit_test(test_file_id),
            cmocka_unit_test(test_paths),           cmocka_unit_test(test_apps_table),
            cmocka_unit_test(test_task_address),    cmocka_unit_test(test_tasks_table),
            cmocka_unit_test(test_waiting_lines),   cmocka_unit_test(test_endpoints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
