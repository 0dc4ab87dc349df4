/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/common_test.c - common/: the quantity parsers and formatters (parse.c), the error
 * object's message composition (error.c) and the file helpers (util.c). No root needed;
 * file tests work in a temp dir. config_test.c covers config/ on top of these. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
/* clang-format off: cmocka.h needs setjmp.h, stdarg.h and stddef.h before it */
#include <cmocka.h>
/* clang-format on */

#include "common/common.h"

/* ---- parse_u64 / parse_i64 -------------------------------------------------------------- */

static void test_parse_u64(void **state)
{
    (void) state;
    uint64_t v = 7;
    assert_int_equal(parse_u64("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(parse_u64("42", &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(parse_u64("18446744073709551615", &v), 0);
    assert_true(v == UINT64_MAX);
    v = 7;
    assert_int_equal(parse_u64("18446744073709551616", &v), -ERANGE);
    assert_int_equal(parse_u64("99999999999999999999999", &v), -ERANGE);
    assert_int_equal(parse_u64("", &v), -EINVAL);
    assert_int_equal(parse_u64(NULL, &v), -EINVAL);
    assert_int_equal(parse_u64("-1", &v), -EINVAL);
    assert_int_equal(parse_u64("+1", &v), -EINVAL);
    assert_int_equal(parse_u64(" 1", &v), -EINVAL);
    assert_int_equal(parse_u64("1 ", &v), -EINVAL);
    assert_int_equal(parse_u64("0x10", &v), -EINVAL);
    assert_int_equal(parse_u64("1.0", &v), -EINVAL);
    assert_int_equal(v, 7); /* untouched on failure */
}

static void test_parse_i64(void **state)
{
    (void) state;
    int64_t v = 7;
    assert_int_equal(parse_i64("-1", &v), 0);
    assert_int_equal(v, -1);
    assert_int_equal(parse_i64("123", &v), 0);
    assert_int_equal(v, 123);
    assert_int_equal(parse_i64("9223372036854775807", &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(parse_i64("-9223372036854775808", &v), 0);
    assert_true(v == INT64_MIN);
    v = 7;
    assert_int_equal(parse_i64("9223372036854775808", &v), -ERANGE);
    assert_int_equal(parse_i64("-9223372036854775809", &v), -ERANGE);
    assert_int_equal(parse_i64("", &v), -EINVAL);
    assert_int_equal(parse_i64("-", &v), -EINVAL);
    assert_int_equal(parse_i64("--1", &v), -EINVAL);
    assert_int_equal(parse_i64("1a", &v), -EINVAL);
    assert_int_equal(v, 7);
}

/* ---- parse_size ------------------------------------------------------------------------- */

static void test_parse_size_units(void **state)
{
    (void) state;
    static const struct {
        const char *s;
        uint64_t want;
    } ok[] = {
            {"0", 0},
            {"123", 123},
            {"123B", 123},
            {"1K", 1024},
            {"1KiB", 1024},
            {"1KB", 1000},
            {"1M", 1ULL << 20},
            {"2MiB", 2ULL << 20},
            {"1MB", 1000000},
            {"1G", 1ULL << 30},
            {"1GiB", 1ULL << 30},
            {"3GB", 3000000000ULL},
            {"1T", 1ULL << 40},
            {"1TiB", 1ULL << 40},
            {"1TB", 1000000000000ULL},
            {"1.5GiB", 3ULL << 29},
            {"0.5KiB", 512},
            {"1.5KB", 1500},
            {"2.25MiB", 9ULL << 18},
            {"1gib", 1ULL << 30}, /* units are case-insensitive */
            {" 1GiB ", 1ULL << 30},
            {"1 GiB", 1ULL << 30},
            {"16777215TiB", 16777215ULL << 40},
            {"18446744073709551615", UINT64_MAX},
    };
    for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
        uint64_t v = 0;
        int r = parse_size(ok[i].s, &v);
        if (r != 0 || v != ok[i].want)
            fail_msg("parse_size('%s') = %d, %llu; want %llu", ok[i].s, r, (unsigned long long) v,
                     (unsigned long long) ok[i].want);
    }
}

static void test_parse_size_errors(void **state)
{
    (void) state;
    static const char *const bad[] = {"",      "12XB", "-1",  "0.3B", "1.",  ".",      "GiB",
                                      "1GiBs", "1e3",  "1.5", "nan",  "1 2", "1,5GiB", "0x10"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        uint64_t v = 7;
        int r = parse_size(bad[i], &v);
        if (r != -EINVAL || v != 7)
            fail_msg("parse_size('%s') = %d, want -EINVAL", bad[i], r);
    }
    uint64_t v = 7;
    assert_int_equal(parse_size(NULL, &v), -EINVAL);
    assert_int_equal(parse_size("18446744073709551616", &v), -ERANGE);
    assert_int_equal(parse_size("16777216TiB", &v), -ERANGE);
    assert_int_equal(parse_size("99999999999999999999GiB", &v), -ERANGE);
    assert_int_equal(v, 7);
}

/* ---- parse_cpus ------------------------------------------------------------------------- */

static void test_parse_cpus(void **state)
{
    (void) state;
    static const struct {
        const char *s;
        uint64_t want;
    } ok[] = {
            {"0.5", 500},  {"2", 2000},     {"1.25", 1250}, {"0.001", 1},
            {".5", 500},   {"0.5000", 500}, {"64", 64000},  {"1000000", 1000000000ULL},
            {"3.1", 3100}, {"0.010", 10},
    };
    for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
        uint64_t v = 0;
        int r = parse_cpus(ok[i].s, &v);
        if (r != 0 || v != ok[i].want)
            fail_msg("parse_cpus('%s') = %d, %llu; want %llu", ok[i].s, r, (unsigned long long) v,
                     (unsigned long long) ok[i].want);
    }
    static const char *const bad[] = {"0",       "0.0",    "-1",  "nan", "inf", "1e3",
                                      "1.0001",  "",       "1.",  "2 ",  " 2",  "1000000.5",
                                      "1000001", "0.0004", "1/2", "two"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        uint64_t v = 7;
        int r = parse_cpus(bad[i], &v);
        if (r >= 0 || v != 7)
            fail_msg("parse_cpus('%s') = %d (%llu), want an error", bad[i], r,
                     (unsigned long long) v);
    }
    uint64_t v;
    assert_int_equal(parse_cpus(NULL, &v), -EINVAL);
}

static void test_parse_bool(void **state)
{
    (void) state;
    bool b = false;
    static const char *const yes[] = {"1", "yes", "true", "on", "TRUE", "Yes"};
    static const char *const no[] = {"0", "no", "false", "off", "OFF"};
    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        b = false;
        assert_int_equal(parse_bool(yes[i], &b), 0);
        assert_true(b);
    }
    for (size_t i = 0; i < ARRAY_SIZE(no); i++) {
        b = true;
        assert_int_equal(parse_bool(no[i], &b), 0);
        assert_false(b);
    }
    assert_int_equal(parse_bool("", &b), -EINVAL);
    assert_int_equal(parse_bool("2", &b), -EINVAL);
    assert_int_equal(parse_bool(NULL, &b), -EINVAL);
}

/* ---- formatters ------------------------------------------------------------------------- */

static void test_format_size(void **state)
{
    (void) state;
    char buf[32];
    static const struct {
        uint64_t v;
        const char *want;
    } cases[] = {
            {0, "0B"},
            {123, "123B"},
            {1024, "1KiB"},
            {1536, "1536B"},
            {1ULL << 30, "1GiB"},
            {3ULL << 29, "1536MiB"},
            {1ULL << 40, "1TiB"},
            {5ULL << 40, "5TiB"},
            {1000000000, "1000000000B"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        format_size(cases[i].v, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].want);
        uint64_t back;
        assert_int_equal(parse_size(buf, &back), 0); /* round trip */
        assert_true(back == cases[i].v);
    }
}

static void test_format_cpus(void **state)
{
    (void) state;
    char buf[32];
    static const struct {
        uint64_t v;
        const char *want;
    } cases[] = {
            {2000, "2"},  {500, "0.5"},    {1250, "1.25"}, {1, "0.001"},
            {10, "0.01"}, {1005, "1.005"}, {0, "0"},       {100, "0.1"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        format_cpus(cases[i].v, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].want);
        uint64_t back;
        if (cases[i].v > 0) {
            assert_int_equal(parse_cpus(buf, &back), 0);
            assert_true(back == cases[i].v);
        }
    }
}

/* ---- struct berr ------------------------------------------------------------------------ */

static int inner(struct berr **err)
{
    return berr_set(err, EINVAL, "c");
}

static void test_berr_compose(void **state)
{
    (void) state;
    _cleanup_berr_ struct berr *err = NULL;
    int r = inner(&err);
    assert_int_equal(r, -EINVAL);
    assert_int_equal(berr_wrap(&err, "b"), -EINVAL);
    assert_int_equal(berr_wrap(&err, "%s", "a"), -EINVAL);
    assert_string_equal(berr_msg(err), "a: b: c: Invalid argument");
    assert_int_equal(berr_errno(err), EINVAL);
    assert_int_equal(err->code, BERR_CODE_NONE);

    /* first failure wins */
    assert_int_equal(berr_set(&err, ENOENT, "later"), -ENOENT);
    assert_string_equal(berr_msg(err), "a: b: c: Invalid argument");
    berr_free(&err);
    assert_null(err);
    berr_free(&err); /* harmless */
}

/* The one table of API codes: every code has a name that reads back as itself and a 4xx/5xx
 * status; the statuses the API documents (docs/api.md) are these. */
static void test_api_codes(void **state)
{
    (void) state;
    static const struct {
        enum berr_code code;
        const char *name;
        int status;
    } want[] = {
            {BERR_INVALID_ARGUMENT, "INVALID_ARGUMENT", 400},
            {BERR_UNAUTHORIZED, "UNAUTHORIZED", 401},
            {BERR_UNKNOWN_AGENT_KEY, "UNKNOWN_AGENT_KEY", 401},
            {BERR_FORBIDDEN, "FORBIDDEN", 403},
            {BERR_NOT_FOUND, "NOT_FOUND", 404},
            {BERR_UNKNOWN_AGENT, "UNKNOWN_AGENT", 404},
            {BERR_METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", 405},
            {BERR_CONFLICT, "CONFLICT", 409},
            {BERR_STALE_STREAM, "STALE_STREAM", 409},
            {BERR_INSUFFICIENT_RESOURCES, "INSUFFICIENT_RESOURCES", 409},
            {BERR_BODY_TOO_LARGE, "BODY_TOO_LARGE", 413},
            {BERR_INTERNAL, "INTERNAL", 500},
            {BERR_UNAVAILABLE, "UNAVAILABLE", 503},
    };
    assert_int_equal(ARRAY_SIZE(want), _BERR_CODE_MAX - 1);
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        assert_string_equal(berr_code_name(want[i].code), want[i].name);
        assert_int_equal(berr_code_from_name(want[i].name), want[i].code);
        assert_int_equal(berr_code_http_status(want[i].code), want[i].status);
    }
    assert_null(berr_code_name(BERR_CODE_NONE));
    assert_int_equal(berr_code_http_status(BERR_CODE_NONE), 500);
    assert_int_equal(berr_code_from_name("NOPE"), _BERR_CODE_INVALID);
    assert_int_equal(berr_code_from_name(NULL), _BERR_CODE_INVALID);
}

static void test_berr_variants(void **state)
{
    (void) state;
    _cleanup_berr_ struct berr *err = NULL;
    assert_int_equal(berr_setx(&err, ENOENT, "no '%s'", "x"), -ENOENT);
    assert_string_equal(berr_msg(err), "no 'x'");
    berr_free(&err);

    assert_int_equal(berr_setc(&err, EINVAL, BERR_INVALID_ARGUMENT, "bad %d", 5), -EINVAL);
    assert_int_equal(err->code, BERR_INVALID_ARGUMENT);
    assert_string_equal(berr_msg(err), "bad 5");
    berr_free(&err);

    /* negative errno and 0 are normalised */
    assert_int_equal(berr_setx(&err, -EPERM, "x"), -EPERM);
    assert_int_equal(berr_errno(err), EPERM);
    berr_free(&err);
    assert_int_equal(berr_setx(&err, 0, "x"), -EIO);
    berr_free(&err);

    /* NULL err: only the return value */
    assert_int_equal(berr_set(NULL, EACCES, "x"), -EACCES);
    assert_int_equal(berr_wrap(NULL, "x"), -EIO);
    assert_int_equal(berr_errno(NULL), 0);
    assert_string_equal(berr_msg(NULL), "");

    /* very long context is truncated at the end, never overflows */
    assert_int_equal(berr_set(&err, EIO, "cause"), -EIO);
    char big[2000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    for (int i = 0; i < 5; i++)
        berr_wrap(&err, "%s", big);
    assert_int_equal(strlen(berr_msg(err)), sizeof(err->msg) - 1);
}

/* ---- files ------------------------------------------------------------------------------ */

struct tmp {
    char dir[64];
    int fd;
};

static int tmp_setup(void **state)
{
    struct tmp *t = xzalloc(sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "/tmp/berth-commontest-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    t->fd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(t->fd >= 0);
    *state = t;
    return 0;
}

static int tmp_teardown(void **state)
{
    struct tmp *t = *state;
    close(t->fd);
    assert_int_equal(rm_rf(t->dir), 0);
    struct stat st;
    assert_int_equal(stat(t->dir, &st), -1);
    free(t);
    return 0;
}

static void test_write_file_atomic(void **state)
{
    struct tmp *t = *state;
    char buf[64];
    assert_int_equal(write_file_atomic(t->fd, "state", "one\n", 4, 0640), 0);
    assert_int_equal(read_file_at(t->fd, "state", buf, sizeof(buf)), 3);
    assert_string_equal(buf, "one");
    assert_int_equal(write_file_atomic(t->fd, "state", "second", 6, 0640), 0);
    assert_int_equal(read_file_at(t->fd, "state", buf, sizeof(buf)), 6);
    assert_string_equal(buf, "second");
    struct stat st;
    assert_int_equal(fstatat(t->fd, "state", &st, 0), 0);
    assert_int_equal(st.st_mode & 0777, 0640);                 /* main() sets umask 022 */
    assert_int_equal(fstatat(t->fd, "state.tmp", &st, 0), -1); /* renamed away */
    assert_int_equal(write_file_atomic(t->fd, "nodir/state", "x", 1, 0600), -ENOENT);
}

/* write_file_replace takes the .tmp that is there (ready.c makes them empty, a crash can
 * leave a longer one): the same inode, cut to the new contents, renamed into place. */
static void test_write_file_replace_reuses_the_tmp(void **state)
{
    struct tmp *t = *state;
    char buf[64];
    struct stat before, after;
    int fd = openat(t->fd, "spec.json.tmp", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "a stale and much longer text", 28), 28);
    close(fd);
    assert_int_equal(fstatat(t->fd, "spec.json.tmp", &before, 0), 0);
    assert_int_equal(write_file_replace(t->fd, "spec.json", "{}", 2, 0600), 0);
    assert_int_equal(read_file_at(t->fd, "spec.json", buf, sizeof(buf)), 2);
    assert_string_equal(buf, "{}");
    assert_int_equal(fstatat(t->fd, "spec.json", &after, 0), 0);
    assert_int_equal(after.st_ino, before.st_ino);
    assert_int_equal(after.st_size, 2);
    assert_int_equal(fstatat(t->fd, "spec.json.tmp", &after, 0), -1);
    /* an empty one made ahead, and empty contents over a stale one */
    fd = openat(t->fd, "hosts.tmp", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(write_file_replace(t->fd, "hosts", "127.0.0.1 x\n", 12, 0644), 0);
    assert_int_equal(read_file_at(t->fd, "hosts", buf, sizeof(buf)), 11);
    assert_string_equal(buf, "127.0.0.1 x");
    fd = openat(t->fd, "e.tmp", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "old", 3), 3);
    close(fd);
    assert_int_equal(write_file_replace(t->fd, "e", "", 0, 0644), 0);
    assert_int_equal(fstatat(t->fd, "e", &after, 0), 0);
    assert_int_equal(after.st_size, 0);
}

static void test_read_file_at(void **state)
{
    struct tmp *t = *state;
    char buf[8];
    assert_int_equal(read_file_at(t->fd, "missing", buf, sizeof(buf)), -ENOENT);
    assert_int_equal(write_file_atomic(t->fd, "f", "max\n\n", 5, 0644), 0);
    /* only one trailing newline is stripped */
    assert_int_equal(read_file_at(t->fd, "f", buf, sizeof(buf)), 4);
    assert_string_equal(buf, "max\n");
    /* bounded: at most max-1 bytes */
    assert_int_equal(write_file_atomic(t->fd, "long", "0123456789", 10, 0644), 0);
    assert_int_equal(read_file_at(t->fd, "long", buf, sizeof(buf)), 7);
    assert_string_equal(buf, "0123456");
    assert_int_equal(read_file_at(t->fd, "long", buf, 0), -EINVAL);
    /* AT_FDCWD and absolute paths */
    _cleanup_free_ char *abs = xasprintf("%s/long", t->dir);
    assert_int_equal(read_file_at(AT_FDCWD, abs, buf, 4), 3);
    assert_string_equal(buf, "012");
    /* empty file */
    assert_int_equal(write_file_atomic(t->fd, "empty", "", 0, 0644), 0);
    assert_int_equal(read_file_at(t->fd, "empty", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
}

static void test_write_file_at(void **state)
{
    struct tmp *t = *state;
    char buf[32];
    assert_int_equal(write_file_at(t->fd, "nofile", "1"), -ENOENT); /* never creates */
    assert_int_equal(write_file_atomic(t->fd, "ctl", "long old value", 14, 0644), 0);
    assert_int_equal(write_file_at(t->fd, "ctl", "42"), 0);
    assert_int_equal(read_file_at(t->fd, "ctl", buf, sizeof(buf)), 2); /* truncated */
    assert_string_equal(buf, "42");
}

static void test_read_file_alloc(void **state)
{
    struct tmp *t = *state;
    char data[10000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char) ('a' + i % 26);
    assert_int_equal(write_file_atomic(t->fd, "big", data, sizeof(data), 0644), 0);
    _cleanup_free_ char *path = xasprintf("%s/big", t->dir);
    _cleanup_free_ char *s = NULL;
    size_t len = 0;
    assert_int_equal(read_file_alloc(path, 1 << 20, &s, &len), 0);
    assert_int_equal(len, sizeof(data));
    assert_memory_equal(s, data, sizeof(data));
    assert_int_equal(s[len], 0);
    char *small = NULL;
    assert_int_equal(read_file_alloc(path, 4096, &small, NULL), -EFBIG);
    assert_null(small);
}

static void test_mkdir_p_rm_rf(void **state)
{
    struct tmp *t = *state;
    _cleanup_free_ char *deep = xasprintf("%s/a/b/c", t->dir);
    assert_int_equal(mkdir_p(deep, 0755), 0);
    assert_int_equal(mkdir_p(deep, 0755), 0); /* exists: fine */
    struct stat st;
    assert_int_equal(stat(deep, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(mkdir_p("", 0755), -EINVAL);
    _cleanup_free_ char *file = xasprintf("%s/a/b/c/f", t->dir);
    assert_int_equal(write_file_atomic(AT_FDCWD, file, "x", 1, 0644), 0);
    _cleanup_free_ char *top = xasprintf("%s/a", t->dir);
    assert_int_equal(rm_rf(top), 0);
    assert_int_equal(stat(top, &st), -1);
    assert_int_equal(rm_rf(top), 0); /* missing: fine */
}

/* A task can leave a tree far deeper than rm_rf's own recursion goes: it must still go. */
static void test_rm_rf_deep_tree(void **state)
{
    struct tmp *t = *state;
    _cleanup_free_ char *top = xasprintf("%s/deep", t->dir);
    assert_int_equal(mkdir(top, 0755), 0);
    int fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    for (int i = 0; i < 2000; i++) {
        assert_int_equal(mkdirat(fd, "d", 0755), 0);
        int nfd = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(nfd >= 0);
        close(fd);
        fd = nfd;
    }
    close(fd);
    assert_int_equal(rm_rf(top), 0);
    assert_int_equal(access(top, F_OK), -1);
}

static void test_random_hex(void **state)
{
    (void) state;
    char a[65], b[65];
    assert_int_equal(random_hex(a, 64), 0);
    assert_int_equal(strlen(a), 64);
    assert_int_equal(strspn(a, "0123456789abcdef"), 64);
    assert_int_equal(random_hex(b, 64), 0);
    assert_string_not_equal(a, b);
    char odd[8];
    assert_int_equal(random_hex(odd, 7), 0);
    assert_int_equal(strlen(odd), 7);
    assert_int_equal(strspn(odd, "0123456789abcdef"), 7);
    char none[1];
    assert_int_equal(random_hex(none, 0), 0);
    assert_string_equal(none, "");
    assert_int_equal(random_hex(a, 65), -EINVAL);
}

static void test_strings_and_alloc(void **state)
{
    (void) state;
    assert_true(str_has_prefix("cgroups/cpu", "cgroups/"));
    assert_false(str_has_prefix("cg", "cgroups/"));
    assert_true(str_has_prefix("x", ""));
    _cleanup_free_ char *s = xasprintf("%s-%d", "a", 1);
    assert_string_equal(s, "a-1");
    _cleanup_free_ char *n = xstrndup("abcdef", 3);
    assert_string_equal(n, "abc");
    _cleanup_free_ char *z = xzalloc(16);
    for (int i = 0; i < 16; i++)
        assert_int_equal(z[i], 0);
    uint64_t t1 = now_monotonic_ns(), t2 = now_monotonic_ns();
    assert_true(t2 >= t1);
    assert_true(now_realtime() > 1.6e9);
}

/* the daemons' log_level key: a name to a priority, anything unknown is info */
static void test_log_level_name(void **state)
{
    (void) state;
    const struct {
        const char *name;
        int prio;
    } cases[] = {{"debug", LOG_DEBUG}, {"warning", LOG_WARNING}, {"error", LOG_ERR},
                 {"info", LOG_INFO},   {"Debug", LOG_INFO},      {"", LOG_INFO}};
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        log_set_level(LOG_EMERG);
        log_set_level_name(cases[i].name);
        assert_int_equal(log_get_level(), cases[i].prio);
    }
    log_set_level(LOG_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_u64),
            cmocka_unit_test(test_parse_i64),
            cmocka_unit_test(test_parse_size_units),
            cmocka_unit_test(test_parse_size_errors),
            cmocka_unit_test(test_parse_cpus),
            cmocka_unit_test(test_parse_bool),
            cmocka_unit_test(test_format_size),
            cmocka_unit_test(test_format_cpus),
            cmocka_unit_test(test_berr_compose),
            cmocka_unit_test(test_berr_variants),
            cmocka_unit_test(test_api_codes),
            cmocka_unit_test_setup_teardown(test_write_file_atomic, tmp_setup, tmp_teardown),
            cmocka_unit_test_setup_teardown(test_write_file_replace_reuses_the_tmp, tmp_setup,
                                            tmp_teardown),
            cmocka_unit_test_setup_teardown(test_read_file_at, tmp_setup, tmp_teardown),
            cmocka_unit_test_setup_teardown(test_write_file_at, tmp_setup, tmp_teardown),
            cmocka_unit_test_setup_teardown(test_read_file_alloc, tmp_setup, tmp_teardown),
            cmocka_unit_test_setup_teardown(test_mkdir_p_rm_rf, tmp_setup, tmp_teardown),
            cmocka_unit_test_setup_teardown(test_rm_rf_deep_tree, tmp_setup, tmp_teardown),
            cmocka_unit_test(test_random_hex),
            cmocka_unit_test(test_strings_and_alloc),
            cmocka_unit_test(test_log_level_name),
    };
    umask(022);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
