/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/cgroup_test.c - isolator's cgroups against fake cgroupfs trees (cgroup-fake.h),
 * no root: what means the same on v1 and v2 (limits, parent limits, stats, OOM counters,
 * names and paths) runs once per layout from one table; then what one version has alone.
 * The v2 device program is in cgroup_devices_test.c, the kill contract in cgroup_kill_test.c. */
#include <poll.h>
/* cmocka.h needs these four first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "tests/unit/cgroup-fake.h"

/* ---- the same on both versions: one table, run per layout ----------------------------- */

#define MAX_WANT 10

/* Limits of one container and what each layout's files hold afterwards ([0] v1, [1] v2).
 * A file listed as untouched was not written: it keeps the fresh cgroup's value. */
static const struct apply_case {
    const char *what;
    struct iso_limits l;
    struct {
        const char *file, *value;
    } want[2][MAX_WANT];
    const char *untouched[2][4];
} apply_cases[] = {
        {
                "seed task 1: 2 CPUs, 1 GiB, 1024 pids",
                {.cpus_millis = 2000, .cpu_limit_millis = 2000, .mem_bytes = GIB, .pids_max = 1024},
                {{{"cpu.cfs_period_us", "100000"},
                  {"cpu.cfs_quota_us", "200000"},
                  {"cpu.shares", "2048"},
                  {"memory.limit_in_bytes", "1073741824"},
                  {"memory.memsw.limit_in_bytes", "1073741824"},
                  {"memory.swappiness", "0"},
                  {"pids.max", "1024"},
                  {"devices.deny", "a"},
                  /* one fd, one write per rule: the fake's plain file keeps them all */
                  {"devices.allow", "c 1:3 rwmc 1:5 rwmc 1:7 rwmc 1:8 rwmc 1:9 rwmc 5:0 rwm"
                                    "c 5:2 rwmc 136:* rwmc *:* mb *:* m"}},
                 {{"cpu.max", "200000 100000"},
                  {"cpu.weight", "79"}, /* 1 + (2046 * 9999) / 262142 */
                  {"memory.max", "1073741824"},
                  {"memory.swap.max", "0"},
                  {"pids.max", "1024"}}},
                {{NULL}, {NULL}},
        },
        {
                "seed task 2: 1 CPU, 2 GiB, no pids limit",
                {.cpus_millis = 1000, .cpu_limit_millis = 1000, .mem_bytes = 2 * GIB},
                {{{"cpu.cfs_quota_us", "100000"},
                  {"cpu.shares", "1024"},
                  {"memory.limit_in_bytes", "2147483648"},
                  {"pids.max", "max"}},
                 {{"cpu.max", "100000 100000"},
                  {"cpu.weight", "39"}, /* the 1024 -> 39 mapping (docs/design/cgroups.md) */
                  {"memory.max", "2147483648"},
                  {"pids.max", "max"}}},
                {{NULL}, {NULL}},
        },
        {
                "cpus_limit none: weight only",
                {.cpus_millis = 2000, .mem_bytes = GIB},
                {{{"cpu.cfs_quota_us", "-1"}, {"cpu.shares", "2048"}},
                 {{"cpu.max", "max 100000"}, {"cpu.weight", "79"}}},
                {{NULL}, {NULL}},
        },
        {
                "no share, no memory limit, a quota under the kernel's 1 ms floor",
                {.cpu_limit_millis = 5},
                {{{"cpu.cfs_quota_us", "1000"}, {"pids.max", "max"}},
                 {{"cpu.max", "1000 100000"}, {"pids.max", "max"}}},
                {{"cpu.shares", "memory.limit_in_bytes"}, {"cpu.weight", "memory.max"}},
        },
        {
                "the smallest share",
                {.cpus_millis = 1, .cpu_limit_millis = 1},
                {{{"cpu.shares", "2"}, {"cpu.cfs_quota_us", "1000"}},
                 {{"cpu.weight", "1"}, {"cpu.max", "1000 100000"}}},
                {{NULL}, {NULL}},
        },
        {
                "a share above the kernel's maximum",
                {.cpus_millis = 512000},
                {{{"cpu.shares", "262144"}, {"cpu.cfs_quota_us", "-1"}},
                 {{"cpu.weight", "10000"}, {"cpu.max", "max 100000"}}},
                {{NULL}, {NULL}},
        },
};

static void test_apply(void **state)
{
    const struct layout *L = *state;
    size_t li = L->version == ISO_CG_V1 ? 0 : 1;
    _cleanup_free_ char *t = L->tree();
    /* v1: a host with swap accounting (its parent has memsw, probed at open) */
    host_files(L, t);
    struct iso_host *h = host_open(L, t, "/berth"); /* a leading '/' is ignored */
    assert_int_equal(iso_host_version(h), L->version);
    assert_int_equal(iso_host_flags(h), L->flags);
    for (size_t k = 0; k < ARRAY_SIZE(apply_cases); k++) {
        const struct apply_case *c = &apply_cases[k];
        _cleanup_berr_ struct berr *err = NULL;
        char name[16];
        snprintf(name, sizeof(name), "c%zu", k);
        struct iso_cgroup *cg = ctr_create(L, h, t, name, true);
        if (iso_cgroup_apply(cg, &c->l, &err) < 0)
            fail_msg("%s: %s: apply: %s", L->name, c->what, berr_msg(err));
        for (size_t i = 0; i < MAX_WANT && c->want[li][i].file; i++) {
            const char *file = c->want[li][i].file, *want = c->want[li][i].value;
            const char *got = getc_(L, t, name, file);
            if (!streq(got, want))
                fail_msg("%s: %s: '%s' holds '%s', want '%s'", L->name, c->what, file, got, want);
            /* read back for inspect; the device rules are a list, not a value */
            if (!str_has_prefix(file, "devices.") && !streq(value_of(cg, file), want))
                fail_msg("%s: %s: read back '%s' = '%s', want '%s'", L->name, c->what, file,
                         value_of(cg, file), want);
        }
        for (size_t i = 0; i < 4 && c->untouched[li][i]; i++)
            if (!streq(value_of(cg, c->untouched[li][i]), "<none>"))
                fail_msg("%s: %s: '%s' written", L->name, c->what, c->untouched[li][i]);
        /* applying again replaces the recorded values instead of adding to them */
        const struct iso_cg_value *vals;
        size_t n = iso_cgroup_values(cg, &vals);
        assert_int_equal(iso_cgroup_apply(cg, &c->l, &err), 0);
        assert_int_equal(iso_cgroup_values(cg, &vals), n);
        iso_cgroup_free(cg);
    }
    iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);
}

/* Where things are, names, reopening, a failed apply, and removal. */
static void test_container_lifecycle(void **state)
{
    const struct layout *L = *state;
    _cleanup_free_ char *t = L->tree();
    _cleanup_berr_ struct berr *err = NULL;
    struct iso_host *h = host_open(L, t, "berth");
    struct paths p = {{0}};
    iso_host_foreach_path(h, collect, &p);
    _cleanup_free_ char *want = expand(L->host_paths, t);
    assert_string_equal(p.buf, want);

    /* the files its task joins through, named before the cgroups exist (spec.json is
     * written before they are made) */
    char **join = iso_host_join_files(h, "c1");
    struct iso_cgroup *cg = ctr_create(L, h, t, "c1", true);
    struct paths cp = {{0}};
    iso_cgroup_foreach_path(cg, collect, &cp);
    _cleanup_free_ char *cwant = expand(L->host_paths, t);
    for (char *s; (s = strstr(cwant, "/berth;"));) { /* each parent path + "/c1" */
        char *next = xasprintf("%.*s/berth/c1;%s", (int) (s - cwant), cwant, s + 7);
        free(cwant);
        cwant = next;
    }
    assert_string_equal(cp.buf, cwant);
    size_t nj = 0;
    for (; join[nj]; nj++) { /* one per hierarchy, in the container's dir there */
        const char *file = strrchr(join[nj], '/');
        assert_string_equal(file + 1, L->version == ISO_CG_V2 ? "cgroup.procs" : "tasks");
        _cleanup_free_ char *needle = xasprintf("=%.*s;", (int) (file - join[nj]), join[nj]);
        assert_non_null(strstr(cp.buf, needle));
        _cleanup_free_ char *dir = xstrndup(join[nj], (size_t) (file - join[nj]));
        struct stat st;
        assert_int_equal(stat(dir, &st), 0);
    }
    assert_int_equal(nj, L->n_dirs);
    strv_free(join);
    /* v2: born in the cgroup by clone3; v1: the child writes itself to each tasks file */
    int fds[8];
    if (L->version == ISO_CG_V2) {
        assert_true(iso_cgroup_clone_fd(cg) >= 0);
        assert_int_equal(iso_cgroup_self_attach_fds(cg, fds, ARRAY_SIZE(fds)), 0);
    } else {
        assert_int_equal(iso_cgroup_clone_fd(cg), -1);
        assert_int_equal(iso_cgroup_self_attach_fds(cg, fds, ARRAY_SIZE(fds)), L->n_dirs);
    }

    /* Same name again: EEXIST, and the existing cgroup is untouched. */
    struct iso_cgroup *dup = NULL;
    assert_int_equal(iso_cgroup_create(h, "c1", &dup, &err), -EEXIST);
    assert_null(dup);
    berr_free(&err);
    assert_true(existsc(L, t, "c1", "pids.max"));
    assert_int_equal(iso_cgroup_create(h, "../x", &dup, &err), -EINVAL);
    berr_free(&err);
    assert_int_equal(iso_cgroup_create(h, ".", &dup, &err), -EINVAL);
    berr_free(&err);

    /* A container whose files are missing: the error names the file, value and cause of
     * the first write (the cpu controller's period or max). */
    struct iso_cgroup *c3 = ctr_create(L, h, t, "c3", false);
    struct iso_limits l = {.cpus_millis = 2000, .cpu_limit_millis = 2000, .mem_bytes = GIB};
    assert_int_equal(iso_cgroup_apply(c3, &l, &err), -ENOENT);
    assert_string_equal(berr_msg(err), L->version == ISO_CG_V1
                                               ? "write 'cpu.cfs_period_us' = '100000': No "
                                                 "such file or directory"
                                               : "write 'cpu.max' = '200000 100000': No such "
                                                 "file or directory");
    berr_free(&err);
    /* Destroy removes every hierarchy's dir; again is fine (ENOENT counts as done). */
    assert_dirs(L, t, "c3", true);
    assert_int_equal(iso_cgroup_destroy(c3, &err), 0);
    assert_dirs(L, t, "c3", false);
    assert_int_equal(iso_cgroup_destroy(c3, &err), 0);
    assert_null(err);
    iso_cgroup_free(c3);

    /* Reopen after a restart; a name that never existed is ENOENT. */
    struct iso_cgroup *re = NULL;
    assert_int_equal(iso_cgroup_open(h, "c1", &re, &err), 0);
    iso_cgroup_free(re);
    assert_int_equal(iso_cgroup_open(h, "nope", &re, &err), -ENOENT);
    berr_free(&err);

    iso_cgroup_free(cg);
    iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);
}

/* Aggregate limits on the parent: only the non-zero fields, never swap or devices. */
static void test_host_limits(void **state)
{
    const struct layout *L = *state;
    _cleanup_free_ char *t = L->tree();
    _cleanup_berr_ struct berr *err = NULL;
    struct iso_host *h = host_open(L, t, "auto"); /* <own cgroup>/berth */
    assert_true(existsc(L, t, NULL, "cpu:"));
    assert_true(existsc(L, t, NULL, "memory:")); /* v1: under our nested memory cgroup */
    for (size_t i = 0; i < L->n_files; i++)
        if (!str_has_prefix(L->files[i][0], "memory.swap") &&
            !str_has_prefix(L->files[i][0], "memory.memsw"))
            putc_(L, t, NULL, L->files[i][0], L->files[i][1]);
    /* allocatable 3.5 CPUs / 4 GiB; cpus 0 leaves the parent's weight alone */
    struct iso_limits l = {.cpu_limit_millis = 3500, .mem_bytes = 4 * GIB};
    assert_int_equal(iso_host_set_limits(h, &l, &err), 0);
    static const char *const want[2][3][2] = {
            {{"cpu.cfs_quota_us", "350000"},
             {"cpu.shares", "1024"},
             {"memory.limit_in_bytes", "4294967296"}},
            {{"cpu.max", "350000 100000"}, {"cpu.weight", "100"}, {"memory.max", "4294967296"}},
    };
    size_t li = L->version == ISO_CG_V1 ? 0 : 1;
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(getc_(L, t, NULL, want[li][i][0]), want[li][i][1]);
    assert_false(existsc(L, t, NULL, li ? "memory.swap.max" : "memory.memsw.limit_in_bytes"));
    assert_string_equal(getc_(L, t, NULL, "pids.max"), "max"); /* 0: left alone */
    iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);
}

/* The kernel's files for the same usage on each version, and what iso_cgroup_stats makes
 * of them (one expectation for both). */
static const char *const stats_files[2][11][2] = {
        {
                {"cpuacct.usage", "123456000\n"},
                {"cpuacct.stat", "user 100\nsystem 50\n"}, /* USER_HZ ticks */
                {"cpu.stat",
                 "nr_periods 10\nnr_throttled 3\nthrottled_time 5000000\nnr_bursts 0\n"},
                {"memory.usage_in_bytes", "1000000\n"},
                /* total_* (the subtree) win over the cgroup's own keys */
                {"memory.stat",
                 "cache 1\nrss 2\ninactive_file 3\nhierarchical_memory_limit 9\n"
                 "total_cache 300000\ntotal_rss 600000\ntotal_inactive_file 200000\n"},
                {"memory.max_usage_in_bytes", "2000000\n"},
                {"memory.limit_in_bytes", "1073741824\n"},
                {"memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"},
                {"memory:cgroup.event_control", ""},
                {"pids.current", "3\n"},
        },
        {
                {"cpu.stat", "usage_usec 123456\nuser_usec 1000000\nsystem_usec 500000\n"
                             "nr_periods 10\nnr_throttled 3\nthrottled_usec 5000\n"},
                {"memory.current", "1000000\n"},
                {"memory.stat", "anon 600000\nfile 300000\nkernel 1\nactive_file 50000\n"
                                "inactive_file 200000\n"},
                {"memory.peak", "2000000\n"},
                {"memory.max", "1073741824\n"},
                {"memory.events", "low 0\nhigh 0\nmax 1\noom 2\noom_kill 2\n"},
                {"pids.current", "3\n"},
        },
};
/* Then: working set floors at 0, and an unlimited limit reads as 0 ("no limit"). */
static const char *const stats_files2[2][2][2] = {
        {{"memory.stat", "total_inactive_file 5000000\n"},
         {"memory.limit_in_bytes", "9223372036854771712\n"}},
        {{"memory.stat", "inactive_file 5000000\n"}, {"memory.max", "max\n"}},
};

static void test_stats_oom(void **state)
{
    const struct layout *L = *state;
    size_t li = L->version == ISO_CG_V1 ? 0 : 1;
    /* USER_HZ is 100 on every architecture Debian builds for but alpha */
    assert_int_equal(sysconf(_SC_CLK_TCK), 100);
    _cleanup_free_ char *t = L->tree();
    _cleanup_berr_ struct berr *err = NULL;
    struct iso_host *h = host_open(L, t, "berth");
    struct iso_cgroup *cg = ctr_create(L, h, t, "c", false);
    for (size_t i = 0; i < ARRAY_SIZE(stats_files[li]) && stats_files[li][i][0]; i++)
        putc_(L, t, "c", stats_files[li][i][0], stats_files[li][i][1]);
    struct iso_stats s;
    assert_int_equal(iso_cgroup_stats(cg, &s), 0);
    assert_int_equal(s.cpu_usage_ns, 123456000);
    assert_int_equal(s.cpu_user_ns, 1000000000);
    assert_int_equal(s.cpu_system_ns, 500000000);
    assert_int_equal(s.nr_periods, 10);
    assert_int_equal(s.nr_throttled, 3);
    assert_int_equal(s.throttled_ns, 5000000);
    assert_int_equal(s.mem_usage, 1000000);
    assert_int_equal(s.mem_working_set, 800000); /* usage - inactive_file */
    assert_int_equal(s.mem_rss, 600000);
    assert_int_equal(s.mem_cache, 300000);
    assert_int_equal(s.mem_peak, 2000000);
    assert_int_equal(s.mem_limit, GIB);
    assert_int_equal(s.oom_kills, 2);
    assert_int_equal(s.pids, 3);
    assert_false(s.has_pressure);

    for (size_t i = 0; i < 2; i++)
        putc_(L, t, "c", stats_files2[li][i][0], stats_files2[li][i][1]);
    assert_int_equal(iso_cgroup_stats(cg, &s), 0);
    assert_int_equal(s.mem_working_set, 0);
    assert_int_equal(s.mem_limit, 0);

    /* OOM: one fd, close-on-exec, the same on the second call; the count from the kernel */
    int fd = iso_cgroup_oom_fd(cg, &err);
    assert_true(fd >= 0);
    assert_int_equal(iso_cgroup_oom_fd(cg, &err), fd);
    assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    assert_int_equal(iso_cgroup_oom_kills(cg), 2);
    assert_int_equal(iso_cgroup_oom_ack(cg), 2);
    if (L->version == ISO_CG_V1) {
        /* an eventfd registered as "<efd> <fd of memory.oom_control>" */
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "%d ", fd);
        assert_true(str_has_prefix(getc_(L, t, "c", "memory:cgroup.event_control"), prefix));
    } else {
        /* inotify on memory.events fires when the kernel modifies it */
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&pfd, 1, 0), 0);
        putc_(L, t, "c", "memory.events", "low 0\nhigh 0\nmax 3\noom 3\noom_kill 3\n");
        assert_int_equal(poll(&pfd, 1, 1000), 1);
        assert_int_equal(iso_cgroup_oom_ack(cg), 3);
        assert_int_equal(poll(&pfd, 1, 0), 0); /* drained */
    }
    iso_cgroup_free(cg);
    iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);
}

/* ---- v1 only -------------------------------------------------------------------------- */

static void test_v1_remove_and_errors(void **state)
{
    (void) state;
    _cleanup_free_ char *t = v1_tree();
    _cleanup_berr_ struct berr *err = NULL;
    struct iso_host *h = NULL;
    /* Nested relative parent: remove takes away what open created, and nothing more. */
    mkd(t, "cpu/keep");
    assert_int_equal(iso_host_open(t, "keep/a/b", ISO_CG_CPU, v1_self, &h, &err), 0);
    assert_true(exists(t, "cpu/keep/a/b"));
    assert_true(exists(t, "cpuacct/keep/a/b"));
    assert_int_equal(iso_host_remove(h), 0);
    assert_false(exists(t, "cpu/keep/a"));
    assert_true(exists(t, "cpu/keep"));
    assert_false(exists(t, "cpuacct/keep"));
    h = iso_host_free(h);

    assert_int_equal(iso_host_open(t, "../up", ISO_CG_CPU, v1_self, &h, &err), -EINVAL);
    assert_null(h);
    berr_free(&err);
    /* A controller asked for but not mounted fails and names it; nothing is left behind. */
    assert_int_equal(rm_rf(t), 0);
    assert_int_equal(mkdir(t, 0700), 0);
    mkd(t, "cpu");
    assert_int_equal(iso_host_open(t, "p", ISO_CG_CPU | ISO_CG_PIDS, v1_self, &h, &err), -ENOENT);
    assert_non_null(strstr(berr_msg(err), "controller 'pids'"));
    berr_free(&err);
    assert_false(exists(t, "cpu/p"));
    assert_int_equal(rm_rf(t), 0);
}

static void test_v1_joint_cpu_cpuacct(void **state)
{
    (void) state;
    _cleanup_free_ char *t = mktree();
    _cleanup_berr_ struct berr *err = NULL;
    mkd(t, "cpu,cpuacct/a");
    char *l1 = xasprintf("%s/cpu", t), *l2 = xasprintf("%s/cpuacct", t);
    assert_int_equal(symlink("cpu,cpuacct", l1), 0);
    assert_int_equal(symlink("cpu,cpuacct", l2), 0);
    free(l1);
    free(l2);
    struct iso_host *h = NULL;
    assert_int_equal(iso_host_open(t, "auto", ISO_CG_CPU, "3:cpu,cpuacct:/a\n", &h, &err), 0);
    assert_true(exists(t, "cpu,cpuacct/a/berth"));
    struct iso_cgroup *cg = NULL;
    assert_int_equal(iso_cgroup_create(h, "c", &cg, &err), 0);
    put(t, "cpu,cpuacct/a/berth/c/cpuacct.usage", "42");
    put(t, "cpu,cpuacct/a/berth/c/cpu.stat", "nr_periods 7\nnr_throttled 2\nthrottled_time 99\n");
    struct iso_stats s;
    assert_int_equal(iso_cgroup_stats(cg, &s), 0);
    assert_int_equal(s.cpu_usage_ns, 42);
    assert_int_equal(s.nr_periods, 7);
    assert_int_equal(s.throttled_ns, 99);
    struct paths p = {{0}};
    iso_cgroup_foreach_path(cg, collect, &p);
    char *want = xasprintf("cpu=%s/cpu/a/berth/c;cpuacct=%s/cpu/a/berth/c;", t, t);
    assert_string_equal(p.buf, want); /* one hierarchy, named for both controllers */
    free(want);
    iso_cgroup_free(cg);
    iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);
}

/* ---- v2 only -------------------------------------------------------------------------- */

static void test_v2_delegation(void **state)
{
    (void) state;
    _cleanup_free_ char *t = v2_tree();
    _cleanup_berr_ struct berr *err = NULL;
    struct iso_host *h = NULL;
    assert_int_equal(iso_host_open(t, "auto", ALL_CG & ~ISO_CG_DEVICES, "0::/x\n", &h, &err), 0);
    /* Our processes went to the leaf before controllers were enabled down the path. */
    assert_string_equal(get(t, "x/agent/cgroup.procs"), "4243"); /* last write of a fake */
    assert_string_equal(get(t, "x/cgroup.subtree_control"), "+cpu +memory +pids");
    assert_string_equal(get(t, "x/berth/cgroup.subtree_control"), "+cpu +memory +pids");
    h = iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);

    /* only the controllers asked for */
    free(t);
    t = v2_tree();
    assert_int_equal(iso_host_open(t, "berth", ISO_CG_CPU | ISO_CG_MEM, "0::/x\n", &h, &err), 0);
    assert_string_equal(get(t, "x/cgroup.subtree_control"), "+cpu +memory");
    iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);
}

static void test_v2_no_memory_controller(void **state)
{
    (void) state;
    _cleanup_free_ char *t = v2_tree();
    _cleanup_berr_ struct berr *err = NULL;
    struct iso_host *h = NULL;
    /* Root cgroup: never evacuated (it may hold kernel threads), controllers still enabled. */
    put(t, "cgroup.subtree_control", "cpu\n");
    put(t, "cgroup.procs", "1\n");
    assert_int_equal(iso_host_open(t, "b", ISO_CG_CPU | ISO_CG_PIDS, "0::/\n", &h, &err), 0);
    assert_string_equal(get(t, "cgroup.subtree_control"), "+pids"); /* cpu was on already */
    assert_false(exists(t, "agent"));
    struct iso_cgroup *cg = NULL;
    assert_int_equal(iso_cgroup_create(h, "c", &cg, &err), 0);
    assert_int_equal(iso_cgroup_oom_fd(cg, &err), -ENOTSUP);
    berr_free(&err);
    iso_cgroup_free(cg);
    iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);
}

/* Pressure files (PSI) fill has_pressure and the avg10/total fields; without them the
 * fields stay 0 and has_pressure false. */
static void test_v2_stats_pressure(void **state)
{
    (void) state;
    _cleanup_free_ char *t = v2_tree();
    _cleanup_berr_ struct berr *err = NULL;
    struct iso_host *h = NULL;
    assert_int_equal(iso_host_open(t, "berth", ISO_CG_CPU | ISO_CG_MEM, "0::/x\n", &h, &err), 0);
    struct iso_cgroup *cg = NULL;
    assert_int_equal(iso_cgroup_create(h, "c", &cg, &err), 0);
    put(t, "x/berth/c/cpu.stat", "usage_usec 5\n");
    struct iso_stats s;
    assert_int_equal(iso_cgroup_stats(cg, &s), 0);
    assert_false(s.has_pressure);
    assert_int_equal(s.cpu_some_us, 0);
    iso_cgroup_free(cg);

    assert_int_equal(iso_cgroup_open(h, "c", &cg, &err), 0);
    put(t, "x/berth/c/cpu.pressure",
        "some avg10=12.34 avg60=1.00 avg300=0.00 total=5000000\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    put(t, "x/berth/c/memory.current", "100\n");
    put(t, "x/berth/c/memory.pressure",
        "some avg10=0.50 avg60=0.10 avg300=0.00 total=250\n"
        "full avg10=0.25 avg60=0.00 avg300=0.00 total=125\n");
    put(t, "x/berth/c/io.pressure",
        "some avg10=100.00 avg60=0.00 avg300=0.00 total=7\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=3\n");
    assert_int_equal(iso_cgroup_stats(cg, &s), 0);
    assert_true(s.has_pressure);
    assert_true(s.cpu_some_avg10 > 12.339 && s.cpu_some_avg10 < 12.341);
    assert_int_equal(s.cpu_some_us, 5000000);
    assert_true(s.mem_some_avg10 > 0.499 && s.mem_some_avg10 < 0.501);
    assert_int_equal(s.mem_some_us, 250);
    assert_int_equal(s.mem_full_us, 125);
    assert_true(s.io_some_avg10 > 99.99 && s.io_some_avg10 < 100.01);
    assert_int_equal(s.io_some_us, 7);
    assert_int_equal(s.io_full_us, 3);
    /* kept open: a rewritten file is read again through the same fd on the next pass */
    put(t, "x/berth/c/memory.pressure", "garbage\n");
    assert_int_equal(iso_cgroup_stats(cg, &s), 0);
    assert_true(s.has_pressure); /* cpu and io still parse */
    iso_cgroup_free(cg);
    iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            PER_LAYOUT(test_apply),
            PER_LAYOUT(test_container_lifecycle),
            PER_LAYOUT(test_host_limits),
            PER_LAYOUT(test_stats_oom),
            cmocka_unit_test(test_v1_remove_and_errors),
            cmocka_unit_test(test_v1_joint_cpu_cpuacct),
            cmocka_unit_test(test_v2_delegation),
            cmocka_unit_test(test_v2_no_memory_controller),
            cmocka_unit_test(test_v2_stats_pressure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
