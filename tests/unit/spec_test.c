/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/spec_test.c - the sandbox spec's JSON codec (isolator/spec.c): round trips
 * with every member and awkward strings, defaults for absent members, and errors on bad
 * JSON or wrong types. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
/* clang-format off: cmocka.h needs the headers above first */
#include <cmocka.h>
/* clang-format on */

#include "isolator/isolator.h"

static void strv_eq(char **a, char **b)
{
    size_t i = 0;
    for (; a[i] && b[i]; i++)
        assert_string_equal(a[i], b[i]);
    assert_null(a[i]);
    assert_null(b[i]);
}

static void test_round_trip(void **state)
{
    (void) state;
    char *argv[] = {"/bin/sh", "-c", "echo \"hi\" \\ 'x'\n\ttab é ☃", NULL};
    char *env[] = {"A=1", "B=with = sign", "C=\"quoted\"", "D=", NULL};
    char *masks[] = {"/var/lib/berth", "/run/berth", NULL};
    char *join[] = {"/sys/fs/cgroup/cpu/berth/3f2a9c0d1e2b4a5f/tasks",
                    "/sys/fs/cgroup/memory/berth/3f2a9c0d1e2b4a5f/tasks", NULL};
    struct iso_volume vols[] = {
            {.host = "/data", .container = "/data", .readonly = true},
            {.host = "/srv/x y", .container = "rel/dir", .readonly = false},
    };
    struct iso_spec in = {
            .id = "3f2a9c0d1e2b4a5f",
            .hostname = "web",
            .flags = ISO_NS_PID | ISO_NS_MOUNT | ISO_CAPS | ISO_SECCOMP | ISO_NS_NET,
            .sandbox_dir = "/var/lib/berth/sandboxes/3f2a9c0d1e2b4a5f",
            .runtime_dir = "/var/lib/berth/containers/3f2a9c0d1e2b4a5f",
            .mask_dirs = masks,
            .user = "nobody",
            .argv = argv,
            .env = env,
            .volumes = vols,
            .n_volumes = 2,
            .nofile = 4096,
            .grace_ms = 10000,
            .cgroup_join = join,
            .ids = {.uid = 65534, .gid = 65533, .groups = {65533, 100}, .n_groups = 2},
            .home = "/nonexistent",
    };
    char *json = iso_spec_to_json(&in);
    assert_non_null(json);
    struct iso_spec out;
    struct berr *err = NULL;
    assert_int_equal(iso_spec_from_json(json, &out, &err), 0);
    assert_null(err);
    assert_string_equal(out.id, in.id);
    assert_string_equal(out.hostname, in.hostname);
    assert_int_equal(out.flags, in.flags);
    assert_string_equal(out.sandbox_dir, in.sandbox_dir);
    assert_string_equal(out.runtime_dir, in.runtime_dir);
    assert_string_equal(out.user, in.user);
    strv_eq(out.argv, in.argv);
    strv_eq(out.env, in.env);
    strv_eq(out.mask_dirs, in.mask_dirs);
    strv_eq(out.cgroup_join, in.cgroup_join);
    assert_memory_equal(&out.ids, &in.ids, sizeof(in.ids));
    assert_string_equal(out.home, in.home);
    assert_int_equal(out.n_volumes, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(out.volumes[i].host, vols[i].host);
        assert_string_equal(out.volumes[i].container, vols[i].container);
        assert_int_equal(out.volumes[i].readonly, vols[i].readonly);
    }
    assert_int_equal(out.nofile, 4096);
    assert_int_equal(out.grace_ms, 10000);

    /* and once more: to_json of the parsed spec is byte-identical */
    char *json2 = iso_spec_to_json(&out);
    assert_string_equal(json, json2);
    free(json2);
    free(json);
    iso_spec_done(&out);
    iso_spec_done(&out); /* twice is fine */
}

static void test_minimal_and_isolation_string(void **state)
{
    (void) state;
    const char *json = "{\"id\":\"a\",\"sandbox_dir\":\"/s\",\"runtime_dir\":\"/r\","
                       "\"uid\":65534,\"gid\":65534,\"argv\":[\"true\"],\"isolation\":\"namespaces/"
                       "pid,linux/seccomp\","
                       "\"future_member\":{\"x\":[1,2]}}";
    struct iso_spec s;
    assert_int_equal(iso_spec_from_json(json, &s, NULL), 0);
    assert_int_equal(s.flags, ISO_NS_PID | ISO_SECCOMP);
    assert_null(s.user);
    assert_null(s.hostname);
    assert_non_null(s.env);
    assert_null(s.env[0]);
    assert_non_null(s.mask_dirs);
    assert_null(s.mask_dirs[0]);
    assert_int_equal(s.n_volumes, 0);
    assert_int_equal(s.nofile, 0);
    assert_int_equal(s.ids.uid, 65534);
    assert_int_equal(s.ids.gid, 65534);
    assert_int_equal(s.ids.n_groups, 0);
    assert_null(s.home);
    iso_spec_done(&s);
}

static void expect_error(const char *json, const char *needle)
{
    struct iso_spec s;
    struct berr *err = NULL;
    int r = iso_spec_from_json(json, &s, &err);
    if (r != -EINVAL)
        fail_msg("accepted: %s", json);
    assert_non_null(err);
    if (!strstr(berr_msg(err), needle))
        fail_msg("'%s' does not contain '%s'", berr_msg(err), needle);
    assert_int_equal(err->code, BERR_INVALID_ARGUMENT);
    berr_free(&err);
    assert_null(s.id); /* emptied on failure */
    assert_null(s.argv);
}

#define BASE "\"id\":\"a\",\"sandbox_dir\":\"/s\",\"runtime_dir\":\"/r\",\"uid\":1,\"gid\":2"

static void test_errors(void **state)
{
    (void) state;
    expect_error("", "malformed JSON");
    expect_error("{\"id\": ", "malformed JSON");
    expect_error("{\"id\":\"a\",}", "malformed JSON");
    expect_error("[1,2]", "not a JSON object");
    expect_error("{" BASE "}", "'argv'");
    expect_error("{" BASE ",\"argv\":[]}", "'argv'");
    expect_error("{" BASE ",\"argv\":\"true\"}", "'argv'");
    expect_error("{" BASE ",\"argv\":[\"a\",1]}", "'argv'");
    /* the user's ids are required: a spec without them must not run the task as root */
    expect_error("{\"id\":\"a\",\"sandbox_dir\":\"/s\",\"runtime_dir\":\"/r\",\"argv\":[\"x\"]}",
                 "'uid'");
    expect_error("{\"id\":\"a\",\"sandbox_dir\":\"/s\",\"runtime_dir\":\"/r\",\"uid\":0,"
                 "\"argv\":[\"x\"]}",
                 "'gid'");
    expect_error("{\"id\":\"a\",\"sandbox_dir\":\"/s\",\"runtime_dir\":\"/r\",\"uid\":-1,\"gid\":1,"
                 "\"argv\":[\"x\"]}",
                 "'uid'");
    expect_error("{" BASE ",\"argv\":[\"x\"],\"groups\":[1,\"x\"]}", "'groups'");
    expect_error("{" BASE ",\"argv\":[\"x\"],\"groups\":[4294967296]}", "'groups'");
    expect_error("{\"id\":\"a\",\"sandbox_dir\":\"rel\",\"runtime_dir\":\"/r\",\"uid\":1,\"gid\":1,"
                 "\"argv\":[\"x\"]}",
                 "'sandbox_dir'");
    expect_error("{\"sandbox_dir\":\"/s\",\"runtime_dir\":\"/r\",\"uid\":1,\"gid\":1,"
                 "\"argv\":[\"x\"]}",
                 "'id'");
    expect_error("{\"id\":5,\"sandbox_dir\":\"/s\",\"runtime_dir\":\"/r\",\"uid\":1,\"gid\":1,"
                 "\"argv\":[\"x\"]}",
                 "'id'");
    expect_error("{" BASE ",\"argv\":[\"x\"],\"nofile\":-1}", "'nofile'");
    expect_error("{" BASE ",\"argv\":[\"x\"],\"grace_ms\":1.5}", "'grace_ms'");
    expect_error("{" BASE
                 ",\"argv\":[\"x\"],\"volumes\":[{\"host\":\"rel\",\"container\":\"/c\"}]}",
                 "'volumes.host'");
    expect_error("{" BASE ",\"argv\":[\"x\"],\"volumes\":[{\"host\":\"/h\"}]}",
                 "'volumes.container'");
    expect_error("{" BASE ",\"argv\":[\"x\"],\"volumes\":[{\"host\":\"/h\",\"container\":\"c\","
                 "\"readonly\":\"yes\"}]}",
                 "'volumes.readonly'");
    expect_error("{" BASE ",\"argv\":[\"x\"],\"mask_dirs\":[\"relative\"]}", "'mask_dirs'");
    expect_error("{" BASE ",\"argv\":[\"x\"],\"isolation\":\"linux/bogus\"}", "'linux/bogus'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_round_trip),
            cmocka_unit_test(test_minimal_and_isolation_string),
            cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
