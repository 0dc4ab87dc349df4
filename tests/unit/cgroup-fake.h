/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/cgroup-fake.h - the fake cgroupfs trees of the cgroup unit tests (cgroup_test.c:
 * limits, stats, host; cgroup_kill_test.c: populated, kill, kill_wait, destroy): temp-dir
 * helpers and the two layouts, v1 with a hierarchy per controller and v2 unified, that the
 * tables run against. Include after cmocka.h. */
#pragma once

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"
#include "isolator/cgroup-internal.h"
#include "isolator/isolator.h"

#define GIB (UINT64_C(1) << 30)
#define ALL_CG (ISO_CG_CPU | ISO_CG_MEM | ISO_CG_PIDS | ISO_CG_DEVICES)

/* The trees made, removed at exit: a failed assertion leaves its test before the test's own
 * rm_rf (cmocka goes on with the next), and the tree would stay in /tmp. */
static char *fake_trees[64];
static size_t n_fake_trees;

static inline void fake_trees_remove(void)
{
    for (size_t i = 0; i < n_fake_trees; i++) {
        (void) rm_rf(fake_trees[i]); /* gone already when its test passed */
        free(fake_trees[i]);
    }
    n_fake_trees = 0;
}

static inline char *mktree(void)
{
    char *t = xstrdup("/tmp/berth-cgtest-XXXXXX");
    assert_non_null(mkdtemp(t));
    if (n_fake_trees == 0)
        atexit(fake_trees_remove);
    if (n_fake_trees < ARRAY_SIZE(fake_trees))
        fake_trees[n_fake_trees++] = xstrdup(t);
    return t;
}

/* Create root/rel (and its directories) with content. */
static inline void put(const char *root, const char *rel, const char *content)
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

static inline void mkd(const char *root, const char *rel)
{
    char *p = xasprintf("%s/%s", root, rel);
    assert_int_equal(mkdir_p(p, 0755), 0);
    free(p);
}

/* Contents of root/rel (static buffer; "<missing>" if absent). */
static inline const char *get(const char *root, const char *rel)
{
    static char buf[4096];
    char *p = xasprintf("%s/%s", root, rel);
    if (read_file_at(AT_FDCWD, p, buf, sizeof(buf)) < 0)
        snprintf(buf, sizeof(buf), "<missing>");
    free(p);
    return buf;
}

static inline bool exists(const char *root, const char *rel)
{
    char *p = xasprintf("%s/%s", root, rel);
    bool r = access(p, F_OK) == 0;
    free(p);
    return r;
}

static inline const char *value_of(struct iso_cgroup *cg, const char *file)
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

static inline void collect(const char *ctrl, const char *path, void *arg)
{
    struct paths *p = arg;
    size_t l = strlen(p->buf);
    snprintf(p->buf + l, sizeof(p->buf) - l, "%s=%s;", ctrl, path);
}

/* fmt with every "{t}" replaced by t (malloc'd). */
static inline char *expand(const char *fmt, const char *t)
{
    char *out = xstrdup("");
    for (const char *p = fmt; *p;) {
        const char *q = strstr(p, "{t}");
        size_t l = q ? (size_t) (q - p) : strlen(p);
        char *next = xasprintf("%s%.*s%s", out, (int) l, p, q ? t : "");
        free(out);
        out = next;
        p += l + (q ? 3 : 0);
    }
    return out;
}

static inline uint64_t ms_since(uint64_t t0)
{
    return (now_monotonic_ns() - t0) / 1000000;
}

/* ---- the two layouts ------------------------------------------------------------------ */

/* v1 as on our CI host: one hierarchy per controller, our memory cgroup nested. */
static const char v1_self[] = "9:name=systemd:/\n8:pids:/\n6:freezer:/\n5:devices:/\n"
                              "4:memory:/process_api/x\n2:cpuacct:/\n1:cpu:/\n0::/\n";
static const char *const v1_hiers[] = {"cpu", "cpuacct", "memory", "pids", "devices", "freezer"};

static inline char *v1_tree(void)
{
    char *t = mktree();
    const char *dirs[] = {"cpu", "cpuacct", "pids", "devices", "freezer", "memory/process_api/x"};
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
        mkd(t, dirs[i]);
    return t;
}

/* v2: the agent in cgroup /x (which holds two processes) of a unified tree. */
static inline char *v2_tree(void)
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

/* A file of the parent "berth" (ctr NULL) or of container ctr, relative to the tree. file
 * is "hier:name" or, when the name starts with its controller ("cpu.max"), just the name;
 * v2 ignores the hierarchy. */
static inline char *v1_path(const char *ctr, const char *file)
{
    const char *colon = strchr(file, ':');
    size_t hl = colon ? (size_t) (colon - file) : strcspn(file, ".");
    char hier[32];
    snprintf(hier, sizeof(hier), "%.*s", (int) hl, file);
    return xasprintf("%s/berth%s%s%s%s", streq(hier, "memory") ? "memory/process_api/x" : hier,
                     ctr ? "/" : "", ctr ? ctr : "", *file ? "/" : "", colon ? colon + 1 : file);
}

static inline char *v2_path(const char *ctr, const char *file)
{
    const char *colon = strchr(file, ':');
    return xasprintf("x/berth%s%s%s%s", ctr ? "/" : "", ctr ? ctr : "", *file ? "/" : "",
                     colon ? colon + 1 : file);
}

/* The files a container's cgroup has, as a kernel with nothing written yet shows them. */
static const char *const v1_files[][2] = {
        {"cpu.cfs_period_us", "100000"},
        {"cpu.cfs_quota_us", "-1"},
        {"cpu.shares", "1024"},
        {"memory.limit_in_bytes", "9223372036854771712"},
        {"memory.memsw.limit_in_bytes", "9223372036854771712"},
        {"memory.swappiness", "60"},
        {"pids.max", "max"},
        {"devices.allow", ""},
        {"devices.deny", ""},
        {"freezer.state", "THAWED"},
};
/* The optional files iso_host_open probes in the parent once (v1: struct cg_layout has); a
 * kernel has them in every non-root cgroup, the parent included, so a fake host with them
 * puts them in the parent before iso_host_open (host_files). */
static const char *const v1_host_files[][2] = {
        {"memory.memsw.limit_in_bytes", "9223372036854771712"},
        {"memory.swappiness", "60"},
};
static const char *const v2_files[][2] = {
        {"cpu.max", "max 100000"},
        {"cpu.weight", "100"},
        {"memory.max", "max"},
        {"memory.swap.max", "max"},
        {"pids.max", "max"},
        {"cgroup.procs", ""},
        {"cgroup.kill", ""},
        {"cgroup.freeze", "0"},
        {"cgroup.events", "populated 0\nfrozen 0\n"},
};

struct layout {
    const char *name;
    enum iso_cg_version version;
    char *(*tree)(void);
    const char *self; /* /proc/self/cgroup */
    unsigned flags;   /* what a fake tree can do: a v2 device filter needs a real cgroup2 dir */
    char *(*path)(const char *ctr, const char *file);
    const char *const (*files)[2];
    size_t n_files;
    const char *const (*host_files)[2]; /* in the parent "berth" before iso_host_open */
    size_t n_host_files;
    size_t n_dirs;          /* a container's directories: one per hierarchy */
    const char *host_paths; /* iso_host_foreach_path, {t} = the tree */
    const char *freezer;    /* the freezer's file and its thawed value */
    const char *thawed;
    const char *pids_file;  /* where a pid makes iso_cgroup_populated true */
    const char *procs_file; /* where the kill round reads pids */
};

static const struct layout layouts[] = {
        {
                .name = "v1",
                .version = ISO_CG_V1,
                .tree = v1_tree,
                .self = v1_self,
                .flags = ALL_CG,
                .path = v1_path,
                .files = v1_files,
                .n_files = ARRAY_SIZE(v1_files),
                .host_files = v1_host_files,
                .n_host_files = ARRAY_SIZE(v1_host_files),
                .n_dirs = ARRAY_SIZE(v1_hiers),
                .host_paths = "cpu={t}/cpu/berth;cpuacct={t}/cpuacct/berth;"
                              "memory={t}/memory/process_api/x/berth;pids={t}/pids/berth;"
                              "devices={t}/devices/berth;freezer={t}/freezer/berth;",
                .freezer = "freezer.state",
                .thawed = "THAWED",
                .pids_file = "freezer:tasks",
                .procs_file = "freezer:cgroup.procs",
        },
        {
                .name = "v2",
                .version = ISO_CG_V2,
                .tree = v2_tree,
                .self = "0::/x\n",
                .flags = ALL_CG & ~ISO_CG_DEVICES,
                .path = v2_path,
                .files = v2_files,
                .n_files = ARRAY_SIZE(v2_files),
                .n_dirs = 1,
                .host_paths = "unified={t}/x/berth;",
                .freezer = "cgroup.freeze",
                .thawed = "0",
                .pids_file = "cgroup.events",
                .procs_file = "cgroup.procs",
        },
};

/* Write a container's file (ctr NULL: the parent's). */
static inline void putc_(const struct layout *L, const char *t, const char *ctr, const char *file,
                         const char *content)
{
    char *rel = L->path(ctr, file);
    put(t, rel, content);
    free(rel);
}

static inline const char *getc_(const struct layout *L, const char *t, const char *ctr,
                                const char *file)
{
    char *rel = L->path(ctr, file);
    const char *r = get(t, rel);
    free(rel);
    return r;
}

static inline bool existsc(const struct layout *L, const char *t, const char *ctr, const char *file)
{
    char *rel = L->path(ctr, file);
    bool r = exists(t, rel);
    free(rel);
    return r;
}

/* Every hierarchy's directory of ctr exists (all true) or none does (all false). */
static inline void assert_dirs(const struct layout *L, const char *t, const char *ctr, bool want)
{
    for (size_t i = 0; i < L->n_dirs; i++) {
        char *f = xasprintf("%s:", L->version == ISO_CG_V1 ? v1_hiers[i] : "unified");
        if (existsc(L, t, ctr, f) != want)
            fail_msg("%s: '%s' in '%s' %s", L->name, ctr, f, want ? "missing" : "left behind");
        free(f);
    }
}

/* Give container ctr the files of a fresh cgroup, cgroup.procs and tasks in each dir. */
static inline void populate(const struct layout *L, const char *t, const char *ctr)
{
    for (size_t i = 0; i < L->n_files; i++)
        putc_(L, t, ctr, L->files[i][0], L->files[i][1]);
    for (size_t i = 0; L->version == ISO_CG_V1 && i < ARRAY_SIZE(v1_hiers); i++) {
        char f[64];
        snprintf(f, sizeof(f), "%s:cgroup.procs", v1_hiers[i]);
        putc_(L, t, ctr, f, "");
        snprintf(f, sizeof(f), "%s:tasks", v1_hiers[i]);
        putc_(L, t, ctr, f, "");
    }
}

/* Give the parent "berth" the files a kernel's parent has before iso_host_open probes it. */
static inline void host_files(const struct layout *L, const char *t)
{
    for (size_t i = 0; i < L->n_host_files; i++)
        putc_(L, t, NULL, L->host_files[i][0], L->host_files[i][1]);
}

static inline struct iso_host *host_open(const struct layout *L, const char *t, const char *parent)
{
    _cleanup_berr_ struct berr *err = NULL;
    struct iso_host *h = NULL;
    if (iso_host_open(t, parent, L->flags, L->self, &h, &err) < 0)
        fail_msg("%s: iso_host_open: %s", L->name, berr_msg(err));
    return h;
}

static inline struct iso_cgroup *ctr_create(const struct layout *L, struct iso_host *h,
                                            const char *t, const char *ctr, bool files)
{
    _cleanup_berr_ struct berr *err = NULL;
    struct iso_cgroup *cg = NULL;
    if (iso_cgroup_create(h, ctr, &cg, &err) < 0)
        fail_msg("%s: create '%s': %s", L->name, ctr, berr_msg(err));
    if (files)
        populate(L, t, ctr);
    return cg;
}

/* Two cmocka tests of f, one per layout: "f/v1", "f/v2" (the layout is *state). */
#define PER_LAYOUT(f)                                                                              \
    {.name = #f "/v1", .test_func = f, .initial_state = (void *) &layouts[0]},                     \
    {                                                                                              \
        .name = #f "/v2", .test_func = f, .initial_state = (void *) &layouts[1]                    \
    }
