/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/cli_test.c - unit tests of berthctl's pure helpers: ages, sizes, CPU percent,
 * truncation, URL escaping, end status, the table printer, JSON helpers, `ps --filter` and
 * `run`/`exec` request building. The cli/ files have no library of their own, so they are
 * compiled in. */
/* cmocka.h needs these first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include "cli/format.c"
#include "cli/json.c"
#include "cli/ps-filter.c"
#include "cli/run-request.c"

static void test_age(void **state)
{
    (void) state;
    char b[16];
    ctl_format_age(5.9, b, sizeof(b));
    assert_string_equal(b, "5s");
    ctl_format_age(-3, b, sizeof(b));
    assert_string_equal(b, "0s");
    ctl_format_age(0.0 / 0.0, b, sizeof(b));
    assert_string_equal(b, "0s");
    ctl_format_age(59, b, sizeof(b));
    assert_string_equal(b, "59s");
    ctl_format_age(60, b, sizeof(b));
    assert_string_equal(b, "1m");
    ctl_format_age(3599, b, sizeof(b));
    assert_string_equal(b, "59m");
    ctl_format_age(7300, b, sizeof(b));
    assert_string_equal(b, "2h");
    ctl_format_age(90000, b, sizeof(b));
    assert_string_equal(b, "1d");
}

static void test_human(void **state)
{
    (void) state;
    char b[32];
    ctl_format_human(0, b, sizeof(b));
    assert_string_equal(b, "0B");
    ctl_format_human(1023, b, sizeof(b));
    assert_string_equal(b, "1023B");
    ctl_format_human(1024, b, sizeof(b));
    assert_string_equal(b, "1.0KiB");
    ctl_format_human(12897484, b, sizeof(b));
    assert_string_equal(b, "12.3MiB");
    ctl_format_human(512.0 * 1024 * 1024, b, sizeof(b));
    assert_string_equal(b, "512MiB");
    ctl_format_human(1073741824, b, sizeof(b));
    assert_string_equal(b, "1.0GiB");
    ctl_format_human(-5, b, sizeof(b));
    assert_string_equal(b, "0B");
}

static void test_cores_and_percent(void **state)
{
    (void) state;
    char b[32];
    ctl_format_cores(2, b, sizeof(b));
    assert_string_equal(b, "2");
    ctl_format_cores(0.5, b, sizeof(b));
    assert_string_equal(b, "0.5");
    ctl_format_cores(0.4321, b, sizeof(b));
    assert_string_equal(b, "0.432");
    ctl_format_cores(1.25, b, sizeof(b));
    assert_string_equal(b, "1.25");
    assert_true(ctl_cpu_percent(1, 0) < 0);
    assert_true(ctl_cpu_percent(-1, 10) < 0);
    assert_true(ctl_cpu_percent(31, 124) > 24.99 && ctl_cpu_percent(31, 124) < 25.01);
    assert_true(ctl_cpu_percent(2, 1) > 199.9); /* two cores busy */
}

static void test_truncate(void **state)
{
    (void) state;
    char b[64];
    ctl_truncate("short", 30, b, sizeof(b));
    assert_string_equal(b, "short");
    ctl_truncate("python3 -m http.server 8080 --bind 127.0.0.1", 30, b, sizeof(b));
    assert_string_equal(b, "python3 -m http.server 8080...");
    assert_int_equal(strlen(b), 30);
    ctl_truncate("abcdef", 6, b, sizeof(b));
    assert_string_equal(b, "abcdef");
    ctl_truncate("abcdef", 3, b, sizeof(b));
    assert_string_equal(b, "abc");
    ctl_truncate("abcdef", 30, b, 4); /* buffer bound wins */
    assert_string_equal(b, "abc");
}

static void test_url_escape(void **state)
{
    (void) state;
    char *s = ctl_url_escape("web-1_a.b~");
    assert_string_equal(s, "web-1_a.b~");
    free(s);
    s = ctl_url_escape("a b/c?d&e%");
    assert_string_equal(s, "a%20b%2Fc%3Fd%26e%25");
    free(s);
    s = ctl_ctr_path("x y", "/wait");
    assert_string_equal(s, "/v1/containers/x%20y/wait");
    free(s);
    s = ctl_ctr_path("3f2a", NULL);
    assert_string_equal(s, "/v1/containers/3f2a");
    free(s);
}

static void test_end_status(void **state)
{
    (void) state;
    struct ctl_end e = {.state = "FINISHED", .reason = "EXITED", .has_exit_code = true};
    assert_int_equal(ctl_end_status(&e), 0);
    e = (struct ctl_end){
            .state = "FAILED", .reason = "EXITED", .has_exit_code = true, .exit_code = 3};
    assert_int_equal(ctl_end_status(&e), 3);
    e = (struct ctl_end){.state = "FAILED", .reason = "SIGNALED", .has_signal = true, .signal = 15};
    assert_int_equal(ctl_end_status(&e), 143);
    e = (struct ctl_end){.state = "FAILED", .reason = "MEMORY_LIMIT"};
    assert_int_equal(ctl_end_status(&e), 137);
    e = (struct ctl_end){.state = "FAILED", .reason = "LAUNCH_FAILED", .message = "exec 'x': nope"};
    assert_int_equal(ctl_end_status(&e), 1);
    char b[128];
    ctl_end_describe(&e, b, sizeof(b));
    assert_string_equal(b, "FAILED (LAUNCH_FAILED): exec 'x': nope");
    e = (struct ctl_end){
            .state = "FAILED", .reason = "EXITED", .has_exit_code = true, .exit_code = 3};
    ctl_end_describe(&e, b, sizeof(b));
    assert_string_equal(b, "FAILED (EXITED, exit code 3)");
    e = (struct ctl_end){
            .state = "KILLED", .reason = "KILLED_BY_REQUEST", .has_signal = true, .signal = 9};
    assert_int_equal(ctl_end_status(&e), 137);
    e = (struct ctl_end){.state = "LOST"};
    assert_int_equal(ctl_end_status(&e), 1);
    ctl_end_describe(&e, b, sizeof(b));
    assert_string_equal(b, "LOST");
    assert_true(ctl_state_terminal("KILLED"));
    assert_false(ctl_state_terminal("RUNNING"));
    assert_false(ctl_state_terminal(NULL));
}

static void test_table(void **state)
{
    (void) state;
    static const char *const header[] = {"ID", "NAME", "COMMAND"};
    static const char *const row1[] = {"3f2a9c0d1e2b", "web", "sleep 30"};
    static const char *const row2[] = {"aa", NULL, "true"};
    struct ctl_table t;
    ctl_table_init(&t, 3, header);
    ctl_table_add(&t, row1);
    ctl_table_add(&t, row2);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    ctl_table_print(&t, f);
    fclose(f);
    assert_string_equal(out, "ID             NAME   COMMAND\n"
                             "3f2a9c0d1e2b   web    sleep 30\n"
                             "aa             -      true\n");
    free(out);
    ctl_table_free(&t);
    ctl_table_free(&t); /* tolerated twice */
}

static void test_json_helpers(void **state)
{
    (void) state;
    char ebuf[128];
    yajl_val v = yajl_tree_parse("{\"a\": \"x\", \"n\": 2.5, \"i\": 7, \"z\": null, "
                                 "\"cmd\": {\"argv\": [\"sleep\", \"30\"]}, "
                                 "\"big\": 123456789012345678901234567890}",
                                 ebuf, sizeof(ebuf));
    assert_non_null(v);
    assert_string_equal(json_get_str(v, "a"), "x");
    assert_null(json_get_str(v, "n"));
    assert_null(json_get(v, "z"));
    assert_null(json_get(v, "missing"));
    double d = 0;
    assert_true(json_get_double(v, "n", &d));
    assert_true(d == 2.5);
    assert_true(json_get_double(v, "i", &d));
    assert_true(d == 7);
    assert_false(json_get_double(v, "z", &d));
    assert_false(json_get_double(v, "a", &d));
    char *cmd = ctl_command_text(json_get(v, "cmd"));
    assert_string_equal(cmd, "sleep 30");
    free(cmd);
    cmd = ctl_command_text(NULL);
    assert_string_equal(cmd, "");
    free(cmd);

    /* regenerate: numbers keep their text, null stays null */
    char *text = json_to_text(v);
    assert_string_equal(text, "{\"a\":\"x\",\"n\":2.5,\"i\":7,\"z\":null,\"cmd\":{\"argv\":"
                              "[\"sleep\",\"30\"]},\"big\":123456789012345678901234567890}");
    free(text);
    yajl_tree_free(v);
}

static void test_run_parse_and_body(void **state)
{
    (void) state;
    char *argv[] = {"run",   "--name", "web",       "--cpus", "0.5",         "--cpus-limit",
                    "none",  "--mem",  "1GiB",      "--pids", "64",          "-e",
                    "A=1",   "--env",  "B=x=y",     "-v",     "/data:/d:ro", "--volume",
                    "/h:/c", "--",     "/bin/echo", "hi",     NULL};
    int argc = (int) ARRAY_SIZE(argv) - 1;
    struct ctl_run_opts o;
    _cleanup_berr_ struct berr *err = NULL;
    assert_int_equal(ctl_run_parse(argc, argv, &o, &err), 0);
    assert_int_equal(o.argc, 2);
    assert_string_equal(o.argv[0], "/bin/echo");
    assert_int_equal(o.nenv, 2);
    assert_int_equal(o.nvolumes, 2);
    char *body = NULL;
    assert_int_equal(ctl_run_body(&o, &body, &err), 0);
    assert_string_equal(body,
                        "{\"name\":\"web\",\"command\":{\"argv\":[\"/bin/echo\",\"hi\"]},"
                        "\"resources\":{\"cpus\":\"0.5\",\"cpus_limit\":\"none\",\"mem\":\"1GiB\","
                        "\"pids\":64},\"env\":{\"A\":\"1\",\"B\":\"x=y\"},\"volumes\":["
                        "{\"host\":\"/data\",\"container\":\"/d\",\"readonly\":true},"
                        "{\"host\":\"/h\",\"container\":\"/c\",\"readonly\":false}]}");
    free(body);
    ctl_run_opts_free(&o);

    /* the command's own options are not berthctl's */
    char *argv2[] = {"run", "--cpus", "1", "--mem", "64MiB", "ls", "-l", "--help", NULL};
    assert_int_equal(ctl_run_parse(8, argv2, &o, &err), 0);
    assert_false(o.help);
    assert_int_equal(o.argc, 3);
    ctl_run_opts_free(&o);

    char *argv3[] = {"run", "--cpus", "1", "--mem", "64MiB", "--shell", "echo $HOME", NULL};
    assert_int_equal(ctl_run_parse(7, argv3, &o, &err), 0);
    assert_int_equal(ctl_run_body(&o, &body, &err), 0);
    assert_string_equal(body, "{\"command\":{\"shell\":\"echo $HOME\"},\"resources\":{\"cpus\":"
                              "\"1\",\"mem\":\"64MiB\"}}");
    free(body);
    ctl_run_opts_free(&o);

    char *argv4[] = {"run", "--help", NULL};
    assert_int_equal(ctl_run_parse(2, argv4, &o, &err), 0);
    assert_true(o.help);
    ctl_run_opts_free(&o);
}

/* --ports, -p, --network (issue #15): a count alone, or the named ports then N more. */
static void test_run_ports_and_network(void **state)
{
    (void) state;
    struct ctl_run_opts o;
    _cleanup_berr_ struct berr *err = NULL;
    char *body = NULL;
    char *argv[] = {"run", "--cpus", "1", "--mem", "64MiB", "--ports", "2", "--", "x", NULL};
    assert_int_equal(ctl_run_parse(9, argv, &o, &err), 0);
    assert_int_equal(ctl_run_body(&o, &body, &err), 0);
    assert_non_null(strstr(body, ",\"ports\":2}"));
    free(body);
    ctl_run_opts_free(&o);
    char *argv2[] = {"run",    "--cpus",  "1",       "--mem",     "64MiB", "--network",
                     "bridge", "-p",      "8080:80", "--publish", ":53",   "-p",
                     "9000",   "--ports", "1",       "x",         NULL};
    assert_int_equal(ctl_run_parse(16, argv2, &o, &err), 0);
    assert_int_equal(o.npublish, 3);
    assert_int_equal(ctl_run_body(&o, &body, &err), 0);
    assert_non_null(strstr(body, "\"network\":\"bridge\",\"ports\":[{\"host_port\":8080,"
                                 "\"container_port\":80},{\"container_port\":53},{\"host_port\":"
                                 "9000},{}]"));
    free(body);
    ctl_run_opts_free(&o);
}

static void test_ports_text(void **state)
{
    (void) state;
    static const struct {
        const char *json, *want;
    } rows[] = {
            {"{\"ports\": [{\"host_port\": 31000, \"container_port\": 31000}, "
             "{\"host_port\": 31001, \"container_port\": 31001}], \"net\": null}",
             "31000,31001"},
            {"{\"ports\": [{\"host_port\": 31000, \"container_port\": 8080}], "
             "\"net\": {\"address\": \"198.18.0.2\"}}",
             "198.18.0.2 31000->8080"},
            {"{\"net\": {\"address\": \"198.18.0.3\"}}", "198.18.0.3"},
            {"{\"network\": \"none\"}", "none"},
            {"{}", "-"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        yajl_val v = yajl_tree_parse(rows[i].json, NULL, 0);
        char *t = ctl_ports_text(v);
        assert_string_equal(t, rows[i].want);
        free(t);
        yajl_tree_free(v);
    }
}

/* Parse argv (NULL-terminated) and expect a usage error whose message contains want. */
static void expect_run_error(char **argv, const char *want)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    struct ctl_run_opts o;
    _cleanup_berr_ struct berr *err = NULL;
    int r = ctl_run_parse(argc, argv, &o, &err);
    char *body = NULL;
    if (r == 0)
        r = ctl_run_body(&o, &body, &err);
    ctl_run_opts_free(&o);
    free(body);
    assert_int_equal(r, -EINVAL);
    assert_non_null(err);
    if (!strstr(berr_msg(err), want))
        fail_msg("'%s' does not contain '%s'", berr_msg(err), want);
}

static void test_run_errors(void **state)
{
    (void) state;
    expect_run_error((char *[]){"run", "--mem", "1G", "x", NULL}, "--cpus is required");
    expect_run_error((char *[]){"run", "--cpus", "1", "x", NULL}, "--mem is required");
    expect_run_error((char *[]){"run", "--cpus", "1", "--mem", "1G", NULL}, "no command");
    expect_run_error((char *[]){"run", "--cpus", "1", "--mem", "1G", "--shell", "a", "b", NULL},
                     "not both");
    expect_run_error((char *[]){"run", "--cpus", "-1", "--mem", "1G", "x", NULL}, "--cpus '-1'");
    expect_run_error(
            (char *[]){"run", "--cpus", "2", "--cpus-limit", "1", "--mem", "1G", "x", NULL},
            "below");
    expect_run_error((char *[]){"run", "--cpus", "1", "--mem", "lots", "x", NULL}, "--mem 'lots'");
    expect_run_error((char *[]){"run", "--cpus", "1", "--mem", "1G", "--pids", "0", "x", NULL},
                     "--pids '0'");
    expect_run_error((char *[]){"run", "--cpus", "1", "--mem", "1G", "-e", "=v", "x", NULL},
                     "KEY=VALUE");
    expect_run_error((char *[]){"run", "--cpus", "1", "--mem", "1G", "-v", "/a:/b:rx", "x", NULL},
                     "HOST:CONTAINER");
    expect_run_error((char *[]){"run", "--cpus", "1", "--mem", "1G", "-v", "/a:", "x", NULL},
                     "HOST:CONTAINER");
    expect_run_error((char *[]){"run", "--cpus", "1", "--mem", "1G", "--ports", "65", "x", NULL},
                     "--ports '65'");
    expect_run_error((char *[]){"run", "--cpus", "1", "--mem", "1G", "-p", "1:2:3", "x", NULL},
                     "-p '1:2:3'");
    expect_run_error((char *[]){"run", "--cpus", "1", "--mem", "1G", "-p", "70000", "x", NULL},
                     "-p '70000'");
    expect_run_error((char *[]){"run", "--cpus", "1", "--mem", "1G", "-p", ":", "x", NULL},
                     "-p ':'");
    expect_run_error((char *[]){"run", "--cpus", "1", "--mem", "1G", "--network", "nat", "x", NULL},
                     "--network 'nat'");
    expect_run_error((char *[]){"run", "--frob", NULL}, "unknown option '--frob'");
    expect_run_error((char *[]){"run", "--cpus", NULL}, "needs a value");
    expect_run_error((char *[]){"run", "-o", "yaml", NULL}, "'yaml'");
}

static void test_exec_body(void **state)
{
    (void) state;
    char *argv[] = {"cat", "/etc/hostname"};
    char *b = ctl_exec_body(2, argv, NULL);
    assert_string_equal(b, "{\"argv\":[\"cat\",\"/etc/hostname\"]}");
    free(b);
    b = ctl_exec_body(0, NULL, "echo \"hi\"");
    assert_string_equal(b, "{\"shell\":\"echo \\\"hi\\\"\"}");
    free(b);
}

static yajl_val ctr_json(const char *id, const char *name, const char *state, const char *reason)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "{\"id\": \"%s\", \"name\": \"%s\", \"state\": \"%s\"%s%s%s}", id,
             name, state, reason ? ", \"reason\": \"" : "", reason ? reason : "",
             reason ? "\"" : "");
    yajl_val v = yajl_tree_parse(buf, NULL, 0);
    assert_non_null(v);
    return v;
}

static void test_ps_filter(void **state)
{
    (void) state;
    yajl_val web = ctr_json("0123456789abcdef", "web-1", "RUNNING", NULL);
    yajl_val job = ctr_json("fedcba9876543210", "batch", "FAILED", "MEMORY_LIMIT");
    yajl_val old = ctr_json("00aa00aa00aa00aa", "web-old", "FINISHED", "EXITED");
    struct ctl_ps_filter f = {0};
    struct berr *err = NULL;

    /* no filter: everything */
    assert_true(ctl_ps_filter_match(&f, web) && ctl_ps_filter_match(&f, job));
    /* state, any case; one key twice: either */
    assert_int_equal(ctl_ps_filter_add(&f, "state=running", &err), 0);
    assert_true(ctl_ps_filter_match(&f, web));
    assert_false(ctl_ps_filter_match(&f, job));
    assert_int_equal(ctl_ps_filter_add(&f, "state=FAILED", &err), 0);
    assert_true(ctl_ps_filter_match(&f, job));
    assert_false(ctl_ps_filter_match(&f, old));
    /* different keys: both */
    assert_int_equal(ctl_ps_filter_add(&f, "name=web", &err), 0);
    assert_true(ctl_ps_filter_match(&f, web));
    assert_false(ctl_ps_filter_match(&f, job)); /* FAILED but not named web */
    ctl_ps_filter_free(&f);

    /* docker's status words */
    assert_int_equal(ctl_ps_filter_add(&f, "status=exited", &err), 0);
    assert_false(ctl_ps_filter_match(&f, web));
    assert_true(ctl_ps_filter_match(&f, job) && ctl_ps_filter_match(&f, old));
    assert_int_equal(f.n[CTL_FILTER_STATE], 4);
    ctl_ps_filter_free(&f);
    assert_int_equal(ctl_ps_filter_add(&f, "status=running", &err), 0);
    assert_true(ctl_ps_filter_match(&f, web));
    assert_false(ctl_ps_filter_match(&f, old));
    ctl_ps_filter_free(&f);
    assert_int_equal(ctl_ps_filter_add(&f, "status=LOST", &err), 0); /* ours work too */
    assert_int_equal(f.n[CTL_FILTER_STATE], 1);
    ctl_ps_filter_free(&f);

    /* id: a prefix; name: a part; reason: exactly */
    assert_int_equal(ctl_ps_filter_add(&f, "id=0123", &err), 0);
    assert_true(ctl_ps_filter_match(&f, web));
    assert_false(ctl_ps_filter_match(&f, old));
    ctl_ps_filter_free(&f);
    assert_int_equal(ctl_ps_filter_add(&f, "name=eb-o", &err), 0);
    assert_true(ctl_ps_filter_match(&f, old));
    assert_false(ctl_ps_filter_match(&f, web));
    ctl_ps_filter_free(&f);
    assert_int_equal(ctl_ps_filter_add(&f, "reason=memory_limit", &err), 0);
    assert_true(ctl_ps_filter_match(&f, job));
    assert_false(ctl_ps_filter_match(&f, web)); /* no reason at all */
    ctl_ps_filter_free(&f);

    /* errors: one line naming what is accepted */
    assert_int_equal(ctl_ps_filter_add(&f, "label=x", &err), -EINVAL);
    assert_string_equal(berr_msg(err),
                        "ps: unknown filter 'label' (state, status, name, id, reason)");
    berr_free(&err);
    assert_int_equal(ctl_ps_filter_add(&f, "state=paused", &err), -EINVAL);
    assert_non_null(strstr(berr_msg(err), "no such state"));
    berr_free(&err);
    assert_int_equal(ctl_ps_filter_add(&f, "running", &err), -EINVAL);
    assert_non_null(strstr(berr_msg(err), "expected KEY=VALUE"));
    berr_free(&err);
    assert_int_equal(ctl_ps_filter_add(&f, "name=", &err), -EINVAL);
    berr_free(&err);
    ctl_ps_filter_free(&f);

    yajl_tree_free(web);
    yajl_tree_free(job);
    yajl_tree_free(old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_age),
            cmocka_unit_test(test_human),
            cmocka_unit_test(test_cores_and_percent),
            cmocka_unit_test(test_truncate),
            cmocka_unit_test(test_url_escape),
            cmocka_unit_test(test_end_status),
            cmocka_unit_test(test_table),
            cmocka_unit_test(test_json_helpers),
            cmocka_unit_test(test_run_parse_and_body),
            cmocka_unit_test(test_run_errors),
            cmocka_unit_test(test_run_ports_and_network),
            cmocka_unit_test(test_ports_text),
            cmocka_unit_test(test_exec_body),
            cmocka_unit_test(test_ps_filter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
