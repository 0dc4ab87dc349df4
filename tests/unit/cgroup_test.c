/* tests/unit/cgroup_test.c - isolator cgroups (cgroup.c, cgroup-v1.c, cgroup-v2.c) against
 * fake cgroupfs trees in a temp dir: detection, parent paths, the values written for the
 * seed's tasks, read-back, stats parsing, OOM fds, kill and errors; the v2 device program
 * (cgroup-v2-devices.c) run through a tiny eBPF interpreter. No root needed. */
#include <fcntl.h>
#include <linux/bpf.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
/* cmocka.h needs these four first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "common/common.h"
#include "isolator/cgroup-internal.h"
#include "isolator/isolator.h"

#define GIB (UINT64_C(1) << 30)
#define ALL_CG (ISO_CG_CPU | ISO_CG_MEM | ISO_CG_PIDS | ISO_CG_DEVICES)

/* ---- fake tree helpers ---------------------------------------------------------------- */

static char *mktree(void)
{
    char *t = xstrdup("/tmp/berth-cgtest-XXXXXX");
    assert_non_null(mkdtemp(t));
    return t;
}

/* Create root/rel (and its directories) with content. */
static void put(const char *root, const char *rel, const char *content)
{
    char *p = xasprintf("%s/%s", root, rel);
    char *slash = strrchr(p, '/');
    *slash = 0;
    assert_int_equal(mkdir_p(p, 0755), 0);
    *slash = '/';
    FILE *f = fopen(p, "we");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    free(p);
}

static void mkd(const char *root, const char *rel)
{
    char *p = xasprintf("%s/%s", root, rel);
    assert_int_equal(mkdir_p(p, 0755), 0);
    free(p);
}

/* Contents of root/rel (static buffer; "<missing>" if absent). */
static const char *get(const char *root, const char *rel)
{
    static char buf[4096];
    char *p = xasprintf("%s/%s", root, rel);
    if (read_file_at(AT_FDCWD, p, buf, sizeof(buf)) < 0)
        snprintf(buf, sizeof(buf), "<missing>");
    free(p);
    return buf;
}

static bool exists(const char *root, const char *rel)
{
    char *p = xasprintf("%s/%s", root, rel);
    bool r = access(p, F_OK) == 0;
    free(p);
    return r;
}

static const char *value_of(struct iso_cgroup *cg, const char *file)
{
    const struct iso_cg_value *v;
    size_t n = iso_cgroup_values(cg, &v);
    for (size_t i = 0; i < n; i++)
        if (streq(v[i].file, file))
            return v[i].value;
    return "<none>";
}

struct paths {
    char buf[2048];
};

static void collect(const char *ctrl, const char *path, void *arg)
{
    struct paths *p = arg;
    size_t l = strlen(p->buf);
    snprintf(p->buf + l, sizeof(p->buf) - l, "%s=%s;", ctrl, path);
}

/* ---- v1 ------------------------------------------------------------------------------- */

static const char v1_self[] = "9:name=systemd:/\n8:pids:/\n6:freezer:/\n5:devices:/\n"
                              "4:memory:/process_api/x\n2:cpuacct:/\n1:cpu:/\n0::/\n";

static char *v1_tree(void)
{
    char *t = mktree();
    const char *dirs[] = {"cpu", "cpuacct", "pids", "devices", "freezer", "memory/process_api/x"};
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
        mkd(t, dirs[i]);
    return t;
}

/* The files a v1 container's apply writes, as the kernel would show them. */
static void v1_populate(const char *t, const char *parent_cpu, const char *parent_mem,
                        const char *name)
{
    char rel[512];
#define P(dir, file, val)                                                                          \
    do {                                                                                           \
        snprintf(rel, sizeof(rel), "%s/%s/%s", dir, name, file);                                   \
        put(t, rel, val);                                                                          \
    } while (0)
    P(parent_cpu, "cpu.cfs_period_us", "100000");
    P(parent_cpu, "cpu.cfs_quota_us", "-1");
    P(parent_cpu, "cpu.shares", "1024");
    P(parent_mem, "memory.limit_in_bytes", "9223372036854771712");
    P(parent_mem, "memory.memsw.limit_in_bytes", "9223372036854771712");
    P(parent_mem, "memory.swappiness", "60");
    P("pids/berth-test-1", "pids.max", "max");
    P("devices/berth-test-1", "devices.allow", "");
    P("devices/berth-test-1", "devices.deny", "");
    P("freezer/berth-test-1", "freezer.state", "THAWED");
    P("freezer/berth-test-1", "cgroup.procs", "");
#undef P
}

static void test_v1_apply(void **state)
{
    (void) state;
    _cleanup_free_ char *t = v1_tree();
    _cleanup_berr_ struct berr *err = NULL;
    struct iso_host *h = NULL;
    assert_int_equal(iso_host_open(t, "/berth-test-1", ALL_CG, v1_self, &h, &err), 0);
    assert_int_equal(iso_host_version(h), ISO_CG_V1);
    assert_int_equal(iso_host_flags(h), ALL_CG);

    /* The parent nests under our own cgroup of each hierarchy. */
    struct paths p = {{0}};
    iso_host_foreach_path(h, collect, &p);
    char *want = xasprintf("cpu=%s/cpu/berth-test-1;cpuacct=%s/cpuacct/berth-test-1;"
                           "memory=%s/memory/process_api/x/berth-test-1;"
                           "pids=%s/pids/berth-test-1;devices=%s/devices/berth-test-1;"
                           "freezer=%s/freezer/berth-test-1;",
                           t, t, t, t, t, t);
    assert_string_equal(p.buf, want);
    free(want);

    /* task 1: 2 CPUs / 1 GiB, pids 1024 */
    struct iso_cgroup *cg = NULL;
    assert_int_equal(iso_cgroup_create(h, "c1", &cg, &err), 0);
    assert_int_equal(iso_cgroup_clone_fd(cg), -1);
    v1_populate(t, "cpu/berth-test-1", "memory/process_api/x/berth-test-1", "c1");
    struct iso_limits l1 = {
            .cpus_millis = 2000, .cpu_limit_millis = 2000, .mem_bytes = GIB, .pids_max = 1024};
    assert_int_equal(iso_cgroup_apply(cg, &l1, &err), 0);
    assert_string_equal(get(t, "cpu/berth-test-1/c1/cpu.cfs_period_us"), "100000");
    assert_string_equal(get(t, "cpu/berth-test-1/c1/cpu.cfs_quota_us"), "200000");
    assert_string_equal(get(t, "cpu/berth-test-1/c1/cpu.shares"), "2048");
    const char *mem = "memory/process_api/x/berth-test-1/c1/";
    char rel[256];
    snprintf(rel, sizeof(rel), "%smemory.limit_in_bytes", mem);
    assert_string_equal(get(t, rel), "1073741824");
    snprintf(rel, sizeof(rel), "%smemory.memsw.limit_in_bytes", mem);
    assert_string_equal(get(t, rel), "1073741824");
    snprintf(rel, sizeof(rel), "%smemory.swappiness", mem);
    assert_string_equal(get(t, rel), "0");
    assert_string_equal(get(t, "pids/berth-test-1/c1/pids.max"), "1024");
    assert_string_equal(get(t, "devices/berth-test-1/c1/devices.deny"), "a");
    assert_string_equal(get(t, "devices/berth-test-1/c1/devices.allow"), "b *:* m"); /* last */
    assert_string_equal(value_of(cg, "cpu.cfs_period_us"), "100000");
    assert_string_equal(value_of(cg, "cpu.cfs_quota_us"), "200000");
    assert_string_equal(value_of(cg, "cpu.shares"), "2048");
    assert_string_equal(value_of(cg, "memory.limit_in_bytes"), "1073741824");
    assert_string_equal(value_of(cg, "memory.memsw.limit_in_bytes"), "1073741824");
    assert_string_equal(value_of(cg, "pids.max"), "1024");

    /* Re-applying replaces entries instead of growing the list. */
    const struct iso_cg_value *vals;
    size_t n = iso_cgroup_values(cg, &vals);
    assert_int_equal(iso_cgroup_apply(cg, &l1, &err), 0);
    assert_int_equal(iso_cgroup_values(cg, &vals), n);

    /* Container paths */
    struct paths cp = {{0}};
    iso_cgroup_foreach_path(cg, collect, &cp);
    assert_non_null(strstr(cp.buf, "/memory/process_api/x/berth-test-1/c1;"));

    /* Same name again: EEXIST, and the existing cgroup is untouched. */
    struct iso_cgroup *dup = NULL;
    assert_int_equal(iso_cgroup_create(h, "c1", &dup, &err), -EEXIST);
    assert_null(dup);
    berr_free(&err);
    assert_true(exists(t, "cpu/berth-test-1/c1/cpu.shares"));

    /* task 2: 1 CPU / 2 GiB, no pids limit */
    struct iso_cgroup *cg2 = NULL;
    assert_int_equal(iso_cgroup_create(h, "c2", &cg2, &err), 0);
    v1_populate(t, "cpu/berth-test-1", "memory/process_api/x/berth-test-1", "c2");
    struct iso_limits l2 = {.cpus_millis = 1000, .cpu_limit_millis = 1000, .mem_bytes = 2 * GIB};
    assert_int_equal(iso_cgroup_apply(cg2, &l2, &err), 0);
    assert_string_equal(get(t, "cpu/berth-test-1/c2/cpu.cfs_quota_us"), "100000");
    assert_string_equal(get(t, "cpu/berth-test-1/c2/cpu.shares"), "1024");
    assert_string_equal(value_of(cg2, "memory.limit_in_bytes"), "2147483648");
    assert_string_equal(get(t, "pids/berth-test-1/c2/pids.max"), "max");

    /* cpus_limit none: weight only */
    struct iso_limits l3 = {.cpus_millis = 2000, .cpu_limit_millis = 0, .mem_bytes = GIB};
    assert_int_equal(iso_cgroup_apply(cg2, &l3, &err), 0);
    assert_string_equal(get(t, "cpu/berth-test-1/c2/cpu.cfs_quota_us"), "-1");
    assert_string_equal(value_of(cg2, "cpu.cfs_quota_us"), "-1");
    assert_string_equal(get(t, "cpu/berth-test-1/c2/cpu.shares"), "2048");

    /* A container whose files are missing: the error names file, value and cause. */
    struct iso_cgroup *cg3 = NULL;
    assert_int_equal(iso_cgroup_create(h, "c3", &cg3, &err), 0);
    assert_int_equal(iso_cgroup_apply(cg3, &l1, &err), -ENOENT);
    assert_string_equal(berr_msg(err),
                        "write 'cpu.cfs_period_us' = '100000': No such file or directory");
    berr_free(&err);
    /* Destroy removes every hierarchy's dir; a second destroy is fine (ENOENT). */
    assert_int_equal(iso_cgroup_destroy(cg3, &err), 0);
    assert_false(exists(t, "cpu/berth-test-1/c3"));
    assert_false(exists(t, "memory/process_api/x/berth-test-1/c3"));
    assert_int_equal(iso_cgroup_destroy(cg3, &err), 0);
    iso_cgroup_free(cg3);

    /* Reopen after a restart; a name that never existed is ENOENT. */
    struct iso_cgroup *re = NULL;
    assert_int_equal(iso_cgroup_open(h, "c2", &re, &err), 0);
    iso_cgroup_free(re);
    assert_int_equal(iso_cgroup_open(h, "nope", &re, &err), -ENOENT);
    berr_free(&err);
    assert_int_equal(iso_cgroup_create(h, "../x", &re, &err), -EINVAL);
    berr_free(&err);

    iso_cgroup_free(cg);
    iso_cgroup_free(cg2);
    iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);
}

static void test_v1_host_limits(void **state)
{
    (void) state;
    _cleanup_free_ char *t = v1_tree();
    _cleanup_berr_ struct berr *err = NULL;
    struct iso_host *h = NULL;
    assert_int_equal(iso_host_open(t, "auto", ISO_CG_CPU | ISO_CG_MEM, v1_self, &h, &err), 0);
    /* auto = <own>/berth */
    assert_true(exists(t, "memory/process_api/x/berth"));
    assert_true(exists(t, "cpu/berth"));
    assert_false(exists(t, "pids/berth")); /* not asked for */
    put(t, "cpu/berth/cpu.cfs_period_us", "100000");
    put(t, "cpu/berth/cpu.cfs_quota_us", "-1");
    put(t, "cpu/berth/cpu.shares", "1024");
    put(t, "memory/process_api/x/berth/memory.limit_in_bytes", "9223372036854771712");
    /* allocatable 3.5 CPUs / 4 GiB; cpus 0 leaves the parent's weight alone */
    struct iso_limits l = {.cpu_limit_millis = 3500, .mem_bytes = 4 * GIB};
    assert_int_equal(iso_host_set_limits(h, &l, &err), 0);
    assert_string_equal(get(t, "cpu/berth/cpu.cfs_quota_us"), "350000");
    assert_string_equal(get(t, "cpu/berth/cpu.shares"), "1024");
    assert_string_equal(get(t, "memory/process_api/x/berth/memory.limit_in_bytes"), "4294967296");
    assert_false(exists(t, "memory/process_api/x/berth/memory.memsw.limit_in_bytes"));
    iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);
}

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

static void test_v1_stats_oom_kill(void **state)
{
    (void) state;
    _cleanup_free_ char *t = v1_tree();
    _cleanup_berr_ struct berr *err = NULL;
    struct iso_host *h = NULL;
    assert_int_equal(iso_host_open(t, "berth-test-1", ALL_CG, v1_self, &h, &err), 0);
    struct iso_cgroup *cg = NULL;
    assert_int_equal(iso_cgroup_create(h, "c", &cg, &err), 0);
    const char *m = "memory/process_api/x/berth-test-1/c/";
    char rel[256];
#define PM(file, val)                                                                              \
    do {                                                                                           \
        snprintf(rel, sizeof(rel), "%s%s", m, file);                                               \
        put(t, rel, val);                                                                          \
    } while (0)
    put(t, "cpuacct/berth-test-1/c/cpuacct.usage", "123456789\n");
    put(t, "cpuacct/berth-test-1/c/cpuacct.stat", "user 100\nsystem 50\n");
    put(t, "cpu/berth-test-1/c/cpu.stat",
        "nr_periods 10\nnr_throttled 3\nthrottled_time 5000\nnr_bursts 0\n");
    PM("memory.usage_in_bytes", "1000000\n");
    PM("memory.stat", "cache 1\nrss 2\ninactive_file 3\nhierarchical_memory_limit 9\n"
                      "total_cache 300000\ntotal_rss 600000\ntotal_inactive_file 200000\n");
    PM("memory.max_usage_in_bytes", "2000000\n");
    PM("memory.limit_in_bytes", "1073741824\n");
    PM("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
    PM("cgroup.event_control", "");
    put(t, "pids/berth-test-1/c/pids.current", "3\n");
#undef PM
    struct iso_stats s;
    assert_int_equal(iso_cgroup_stats(cg, &s), 0);
    long hz = sysconf(_SC_CLK_TCK);
    assert_int_equal(s.cpu_usage_ns, 123456789);
    assert_int_equal(s.cpu_user_ns, 100 * (1000000000 / hz));
    assert_int_equal(s.cpu_system_ns, 50 * (1000000000 / hz));
    assert_int_equal(s.nr_periods, 10);
    assert_int_equal(s.nr_throttled, 3);
    assert_int_equal(s.throttled_ns, 5000);
    assert_int_equal(s.mem_usage, 1000000);
    assert_int_equal(s.mem_working_set, 800000); /* usage - total_inactive_file */
    assert_int_equal(s.mem_rss, 600000);
    assert_int_equal(s.mem_cache, 300000);
    assert_int_equal(s.mem_peak, 2000000);
    assert_int_equal(s.mem_limit, GIB);
    assert_int_equal(s.oom_kills, 2);
    assert_int_equal(s.pids, 3);

    /* working set floors at 0; an unlimited v1 limit reads as 0 (no limit) */
    snprintf(rel, sizeof(rel), "%smemory.stat", m);
    put(t, rel, "total_inactive_file 5000000\n");
    snprintf(rel, sizeof(rel), "%smemory.limit_in_bytes", m);
    put(t, rel, "9223372036854771712\n");
    assert_int_equal(iso_cgroup_stats(cg, &s), 0);
    assert_int_equal(s.mem_working_set, 0);
    assert_int_equal(s.mem_limit, 0);

    /* OOM: eventfd registered as "<efd> <fd of memory.oom_control>" */
    int fd = iso_cgroup_oom_fd(cg, &err);
    assert_true(fd >= 0);
    assert_int_equal(iso_cgroup_oom_fd(cg, &err), fd); /* same fd on the second call */
    snprintf(rel, sizeof(rel), "%scgroup.event_control", m);
    char want[32];
    snprintf(want, sizeof(want), "%d ", fd);
    assert_true(str_has_prefix(get(t, rel), want));
    assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    assert_int_equal(iso_cgroup_oom_kills(cg), 2);
    assert_int_equal(iso_cgroup_oom_ack(cg), 2);

    /* Kill on an empty cgroup: finds nobody, leaves the freezer alone. */
    put(t, "freezer/berth-test-1/c/freezer.state", "THAWED");
    const char *dirs[] = {"cpu", "cpuacct", "pids", "devices", "freezer"};
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
        snprintf(rel, sizeof(rel), "%s/berth-test-1/c/cgroup.procs", dirs[i]);
        put(t, rel, "");
    }
    snprintf(rel, sizeof(rel), "%scgroup.procs", m);
    put(t, rel, "");
    assert_false(iso_cgroup_populated(cg));
    assert_int_equal(iso_cgroup_kill(cg, &err), 0);
    assert_string_equal(get(t, "freezer/berth-test-1/c/freezer.state"), "THAWED");
    put(t, "pids/berth-test-1/c/tasks", "1\n"); /* never killed: just looked at */
    assert_true(iso_cgroup_populated(cg));

    iso_cgroup_free(cg);
    iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);
}

/* ---- v2 ------------------------------------------------------------------------------- */

static char *v2_tree(void)
{
    char *t = mktree();
    put(t, "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
    put(t, "x/cgroup.controllers", "cpu io memory pids\n");
    put(t, "x/cgroup.subtree_control", "");
    put(t, "x/cgroup.procs", "4242\n4243\n");
    put(t, "x/agent/cgroup.procs", ""); /* the fake kernel's leaf */
    put(t, "x/berth/cgroup.controllers", "cpu memory pids\n");
    put(t, "x/berth/cgroup.subtree_control", "");
    return t;
}

static void v2_populate(const char *t, const char *name)
{
    const char *files[][2] = {
            {"cpu.max", "max 100000"}, {"cpu.weight", "100"},
            {"memory.max", "max"},     {"memory.swap.max", "max"},
            {"pids.max", "max"},       {"cgroup.procs", ""},
            {"cgroup.kill", ""},       {"cgroup.events", "populated 0\nfrozen 0\n"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        char *rel = xasprintf("x/berth/%s/%s", name, files[i][0]);
        put(t, rel, files[i][1]);
        free(rel);
    }
}

static void test_v2_host_and_apply(void **state)
{
    (void) state;
    _cleanup_free_ char *t = v2_tree();
    _cleanup_berr_ struct berr *err = NULL;
    struct iso_host *h = NULL;
    /* Without cgroups/devices: a fake tree is no cgroup2 dir a BPF program can attach to
     * (test_v2_devices_need_a_real_cgroup). */
    assert_int_equal(iso_host_open(t, "auto", ALL_CG & ~ISO_CG_DEVICES, "0::/x\n", &h, &err), 0);
    assert_int_equal(iso_host_version(h), ISO_CG_V2);
    /* Our processes went to the leaf before controllers were enabled down the path. */
    assert_string_equal(get(t, "x/agent/cgroup.procs"), "4243"); /* last write of a fake */
    assert_string_equal(get(t, "x/cgroup.subtree_control"), "+cpu +memory +pids");
    assert_string_equal(get(t, "x/berth/cgroup.subtree_control"), "+cpu +memory +pids");
    struct paths p = {{0}};
    iso_host_foreach_path(h, collect, &p);
    char *want = xasprintf("unified=%s/x/berth;", t);
    assert_string_equal(p.buf, want);
    free(want);

    struct iso_cgroup *cg = NULL;
    assert_int_equal(iso_cgroup_create(h, "c1", &cg, &err), 0);
    assert_true(iso_cgroup_clone_fd(cg) >= 0);
    v2_populate(t, "c1");
    struct iso_limits l1 = {
            .cpus_millis = 2000, .cpu_limit_millis = 2000, .mem_bytes = GIB, .pids_max = 1024};
    assert_int_equal(iso_cgroup_apply(cg, &l1, &err), 0);
    assert_string_equal(get(t, "x/berth/c1/cpu.max"), "200000 100000");
    assert_string_equal(get(t, "x/berth/c1/cpu.weight"), "79"); /* 1 + (2046*9999)/262142 */
    assert_string_equal(get(t, "x/berth/c1/memory.max"), "1073741824");
    assert_string_equal(get(t, "x/berth/c1/memory.swap.max"), "0");
    assert_string_equal(get(t, "x/berth/c1/pids.max"), "1024");
    assert_string_equal(value_of(cg, "cpu.max"), "200000 100000");
    assert_string_equal(value_of(cg, "memory.max"), "1073741824");
    assert_string_equal(value_of(cg, "memory.swap.max"), "0");

    struct iso_cgroup *cg2 = NULL;
    assert_int_equal(iso_cgroup_create(h, "c2", &cg2, &err), 0);
    v2_populate(t, "c2");
    struct iso_limits l2 = {.cpus_millis = 1000, .cpu_limit_millis = 1000, .mem_bytes = 2 * GIB};
    assert_int_equal(iso_cgroup_apply(cg2, &l2, &err), 0);
    assert_string_equal(get(t, "x/berth/c2/cpu.max"), "100000 100000");
    assert_string_equal(get(t, "x/berth/c2/cpu.weight"), "39"); /* the 1024 -> 39 mapping */
    assert_string_equal(get(t, "x/berth/c2/memory.max"), "2147483648");
    assert_string_equal(get(t, "x/berth/c2/pids.max"), "max");
    struct iso_limits l3 = {.cpus_millis = 500};
    assert_int_equal(iso_cgroup_apply(cg2, &l3, &err), 0);
    assert_string_equal(get(t, "x/berth/c2/cpu.max"), "max 100000");

    /* Missing file error on v2 */
    struct iso_cgroup *cg3 = NULL;
    assert_int_equal(iso_cgroup_create(h, "c3", &cg3, &err), 0);
    assert_int_equal(iso_cgroup_apply(cg3, &l1, &err), -ENOENT);
    assert_string_equal(berr_msg(err),
                        "write 'cpu.max' = '200000 100000': No such file or directory");
    berr_free(&err);
    assert_int_equal(iso_cgroup_destroy(cg3, &err), 0);
    assert_false(exists(t, "x/berth/c3"));
    iso_cgroup_free(cg3);

    /* Kill with cgroup.kill: writes 1, then sees populated 0. */
    assert_int_equal(iso_cgroup_kill(cg, &err), 0);
    assert_string_equal(get(t, "x/berth/c1/cgroup.kill"), "1");
    assert_false(iso_cgroup_populated(cg));

    /* Parent limits */
    put(t, "x/berth/cpu.max", "max 100000");
    put(t, "x/berth/memory.max", "max");
    struct iso_limits hl = {.cpu_limit_millis = 1500, .mem_bytes = 3 * GIB};
    assert_int_equal(iso_host_set_limits(h, &hl, &err), 0);
    assert_string_equal(get(t, "x/berth/cpu.max"), "150000 100000");
    assert_string_equal(get(t, "x/berth/memory.max"), "3221225472");
    assert_false(exists(t, "x/berth/memory.swap.max"));

    iso_cgroup_free(cg);
    iso_cgroup_free(cg2);
    iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);
}

static void test_v2_stats_oom(void **state)
{
    (void) state;
    _cleanup_free_ char *t = v2_tree();
    _cleanup_berr_ struct berr *err = NULL;
    struct iso_host *h = NULL;
    assert_int_equal(iso_host_open(t, "berth", ISO_CG_CPU | ISO_CG_MEM, "0::/x\n", &h, &err), 0);
    assert_string_equal(get(t, "x/cgroup.subtree_control"), "+cpu +memory");
    struct iso_cgroup *cg = NULL;
    assert_int_equal(iso_cgroup_create(h, "c", &cg, &err), 0);
    put(t, "x/berth/c/cpu.stat",
        "usage_usec 1000\nuser_usec 600\nsystem_usec 400\n"
        "nr_periods 5\nnr_throttled 1\nthrottled_usec 7\n");
    put(t, "x/berth/c/memory.current", "500000\n");
    put(t, "x/berth/c/memory.stat",
        "anon 300000\nfile 150000\nkernel 1\n"
        "active_file 50000\ninactive_file 100000\n");
    put(t, "x/berth/c/memory.max", "max\n");
    put(t, "x/berth/c/memory.peak", "700000\n");
    put(t, "x/berth/c/memory.events", "low 0\nhigh 0\nmax 1\noom 1\noom_kill 1\n");
    put(t, "x/berth/c/pids.current", "2\n");
    struct iso_stats s;
    assert_int_equal(iso_cgroup_stats(cg, &s), 0);
    assert_int_equal(s.cpu_usage_ns, 1000000);
    assert_int_equal(s.cpu_user_ns, 600000);
    assert_int_equal(s.cpu_system_ns, 400000);
    assert_int_equal(s.nr_periods, 5);
    assert_int_equal(s.nr_throttled, 1);
    assert_int_equal(s.throttled_ns, 7000);
    assert_int_equal(s.mem_usage, 500000);
    assert_int_equal(s.mem_working_set, 400000);
    assert_int_equal(s.mem_rss, 300000);
    assert_int_equal(s.mem_cache, 150000);
    assert_int_equal(s.mem_peak, 700000);
    assert_int_equal(s.mem_limit, 0); /* "max" */
    assert_int_equal(s.oom_kills, 1);
    assert_int_equal(s.pids, 2);

    /* inotify on memory.events fires when the file is modified */
    int fd = iso_cgroup_oom_fd(cg, &err);
    assert_true(fd >= 0);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 0), 0);
    char *path = xasprintf("%s/x/berth/c/memory.events", t);
    assert_int_equal(write_file_at(AT_FDCWD, path, "low 0\nhigh 0\nmax 2\noom 2\noom_kill 2\n"), 0);
    free(path);
    assert_int_equal(poll(&pfd, 1, 1000), 1);
    assert_int_equal(iso_cgroup_oom_ack(cg), 2);
    assert_int_equal(poll(&pfd, 1, 0), 0); /* drained */

    iso_cgroup_free(cg);
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

/* ---- the v2 device program, run by a tiny interpreter of the eBPF subset it uses -------- */

/* Run prog on one access as the kernel would (struct bpf_cgroup_dev_ctx); returns r0, or -1
 * for an instruction outside the subset, a jump out of range or no exit. */
static int bpf_run(const struct bpf_insn *prog, int len, unsigned type, unsigned access,
                   unsigned major, unsigned minor)
{
    const uint32_t ctx[3] = {(access << 16) | type, major, minor};
    uint64_t r[11] = {0};
    bool r1_is_ctx = true;
    for (int pc = 0, steps = 0; pc >= 0 && pc < len && steps < 1000; pc++, steps++) {
        const struct bpf_insn *i = &prog[pc];
        uint64_t k = (uint64_t) (int64_t) i->imm;
        switch (i->code) {
        case BPF_LDX | BPF_W | BPF_MEM:
            if (i->src_reg != BPF_REG_1 || !r1_is_ctx || i->off < 0 || i->off > 8 || i->off % 4)
                return -1;
            r[i->dst_reg] = ctx[i->off / 4];
            break;
        case BPF_ALU | BPF_AND | BPF_K:
            r[i->dst_reg] = (uint32_t) (r[i->dst_reg] & k);
            break;
        case BPF_ALU | BPF_RSH | BPF_K:
            r[i->dst_reg] = (uint32_t) r[i->dst_reg] >> i->imm;
            break;
        case BPF_ALU | BPF_MOV | BPF_X:
            r[i->dst_reg] = (uint32_t) r[i->src_reg];
            break;
        case BPF_ALU64 | BPF_MOV | BPF_K:
            r[i->dst_reg] = k;
            break;
        case BPF_JMP | BPF_JNE | BPF_K:
            if (i->off < 0)
                return -1; /* forward only: the verifier refuses loops */
            if (r[i->dst_reg] != k)
                pc += i->off;
            break;
        case BPF_JMP | BPF_EXIT:
            return (int) r[BPF_REG_0];
        default:
            return -1;
        }
        if (i->dst_reg == BPF_REG_1)
            r1_is_ctx = false;
    }
    return -1;
}

static void test_v2_device_program(void **state)
{
    (void) state;
    struct bpf_insn prog[128];
    int len = cg2_devices_program(prog, ARRAY_SIZE(prog));
    assert_true(len > 10 && len < 128);
    assert_int_equal(cg2_devices_program(prog, 5), -ENOSPC);
    len = cg2_devices_program(prog, ARRAY_SIZE(prog));
    const unsigned C = BPF_DEVCG_DEV_CHAR, B = BPF_DEVCG_DEV_BLOCK;
    const unsigned R = BPF_DEVCG_ACC_READ, W = BPF_DEVCG_ACC_WRITE, M = BPF_DEVCG_ACC_MKNOD;
    const struct {
        unsigned type, access, major, minor;
        int allow;
    } cases[] = {
            /* the sandbox's /dev, as v1's devices.allow list: rwm */
            {C, R | W, 1, 3, 1},
            {C, R | W | M, 1, 3, 1},
            {C, R, 1, 5, 1},
            {C, W, 1, 7, 1},
            {C, R, 1, 8, 1},
            {C, R, 1, 9, 1},
            {C, R | W, 5, 0, 1},
            {C, R | W, 5, 2, 1},
            {C, R | W, 136, 0, 1},
            {C, R | W, 136, 7, 1},
            /* mknod of anything is allowed, opening it is not */
            {B, M, 254, 0, 1},
            {C, M, 1, 1, 1},
            {B, R, 254, 0, 0},
            {B, W, 254, 0, 0},
            {B, R | W | M, 8, 0, 0},
            {B, R, 7, 0, 0},
            /* near misses: other type, major or minor */
            {B, R, 1, 3, 0},
            {C, R, 1, 1, 0},
            {C, R, 1, 2, 0},
            {C, R, 1, 4, 0},
            {C, R | W, 5, 1, 0},
            {C, R, 4, 1, 0},
            {C, R, 10, 200, 0},
            {C, R, 137, 0, 0},
            {C, R, 3, 3, 0},
            {C, R, 0, 0, 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        int got =
                bpf_run(prog, len, cases[i].type, cases[i].access, cases[i].major, cases[i].minor);
        if (got != cases[i].allow)
            fail_msg("%c %u:%u access %u: program returned %d, want %d",
                     cases[i].type == B ? 'b' : 'c', cases[i].major, cases[i].minor,
                     cases[i].access, got, cases[i].allow);
    }
}

/* cgroups/devices on v2 attaches a BPF program, which needs a real cgroup2 directory (and
 * root): against a fake tree apply must fail and say so, never skip the filter silently. */
static void test_v2_devices_need_a_real_cgroup(void **state)
{
    (void) state;
    _cleanup_free_ char *t = v2_tree();
    _cleanup_berr_ struct berr *err = NULL;
    struct iso_host *h = NULL;
    assert_int_equal(iso_host_open(t, "berth", ALL_CG, "0::/x\n", &h, &err), 0);
    struct iso_cgroup *cg = NULL;
    assert_int_equal(iso_cgroup_create(h, "c", &cg, &err), 0);
    v2_populate(t, "c");
    struct iso_limits l = {.cpus_millis = 1000, .mem_bytes = GIB};
    assert_true(iso_cgroup_apply(cg, &l, &err) < 0);
    assert_true(strncmp(berr_msg(err), "device filter: ", 15) == 0);
    assert_string_equal(get(t, "x/berth/c/memory.max"), "1073741824"); /* limits came first */
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
            cmocka_unit_test(test_v1_apply),
            cmocka_unit_test(test_v1_host_limits),
            cmocka_unit_test(test_v1_remove_and_errors),
            cmocka_unit_test(test_v1_joint_cpu_cpuacct),
            cmocka_unit_test(test_v1_stats_oom_kill),
            cmocka_unit_test(test_v2_host_and_apply),
            cmocka_unit_test(test_v2_stats_oom),
            cmocka_unit_test(test_v2_no_memory_controller),
            cmocka_unit_test(test_v2_device_program),
            cmocka_unit_test(test_v2_devices_need_a_real_cgroup),
            cmocka_unit_test(test_v2_stats_pressure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
