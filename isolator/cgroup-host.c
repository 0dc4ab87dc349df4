/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/cgroup-host.c - the host (iso_host_*): detect v1 or v2 once, find the agent's own
 * cgroup (libcgroup, or /proc/self/cgroup text), make the parent of all tasks (per version:
 * cg_ops host_setup), read the agent's own limits, remove the parent at stop. cgroup.c
 * makes containers under that parent; cgroup-util.c holds the shared helpers. */
#include <fcntl.h>
#include <libcgroup.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "isolator/cgroup-internal.h"
#include "isolator/isolator.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

/* ---- discovery ------------------------------------------------------------------------------ */

/* Find the agent's own cgroup for ctrl (NULL: the v2 "0::" line) in /proc/self/cgroup text:
 * "id:ctrl,ctrl:/path" lines. */
static int cg_parse_self(const char *text, const char *ctrl, char **ret)
{
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        size_t ll = strcspn(p, "\n");
        const char *c1 = memchr(p, ':', ll);
        if (!c1)
            continue;
        const char *c2 = memchr(c1 + 1, ':', ll - (size_t) (c1 + 1 - p));
        if (!c2)
            continue;
        const char *list = c1 + 1, *path = c2 + 1;
        size_t listl = (size_t) (c2 - list), pathl = ll - (size_t) (path - p);
        bool match = false;
        if (!ctrl) {
            match = listl == 0 && c1 - p == 1 && p[0] == '0';
        } else {
            for (const char *q = list; q < c2;) {
                size_t wl = strcspn(q, ",:");
                if (wl == strlen(ctrl) && strncmp(q, ctrl, wl) == 0)
                    match = true;
                q += wl + 1;
            }
        }
        if (match) {
            *ret = pathl ? xstrndup(path, pathl) : xstrdup("/");
            return 0;
        }
    }
    return -ENOENT;
}

/* libcgroup for the real host (the brief asks for it where it serves): mount point and our
 * own cgroup of one v1 controller. Returns -ENOENT when it cannot tell; we then parse. */
static int cg_libcgroup_lookup(const char *ctrl, char **ret_mount, char **ret_own)
{
    char *mnt = NULL, *own = NULL;
    if (cgroup_get_subsys_mount_point(ctrl, &mnt) != 0 || !mnt)
        goto fail;
    if (cgroup_get_current_controller_path(getpid(), ctrl, &own) != 0 || !own)
        goto fail;
    *ret_mount = mnt;
    *ret_own = own;
    return 0;
fail:
    free(mnt);
    free(own);
    return -ENOENT;
}

static bool cg_rel_valid(const char *rel)
{
    if (!*rel || strlen(rel) > 512)
        return false;
    for (const char *p = rel; *p;) {
        size_t l = strcspn(p, "/");
        if (l == 0 || (l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += l;
        if (*p == '/')
            p++;
    }
    return rel[strlen(rel) - 1] != '/';
}

/* Join a hierarchy mount, a cgroup path ("/..." or "/") and an optional relative path. */
static char *cg_join(const char *mount, const char *own, const char *rel)
{
    while (*own == '/')
        own++;
    return xasprintf("%s%s%s%s%s", mount, *own ? "/" : "", own, rel && *rel ? "/" : "",
                     rel ? rel : "");
}

/* Add controller c to the layout: open its mount, and merge it with a hierarchy already
 * seen at the same dev+ino (joint "cpu,cpuacct" mounts, or symlinks to them). */
static int cg_add_ctrl(struct iso_host *h, enum cg_ctrl c, bool required, bool use_lib,
                       const char *self_text, struct berr **err)
{
    const char *name = cg_ctrl_name(c);
    _cleanup_free_ char *mount = NULL, *own = NULL;
    if (use_lib && cg_libcgroup_lookup(name, &mount, &own) < 0)
        log_debug("cgroup: libcgroup does not know '%s', parsing /proc/self/cgroup", name);
    else if (use_lib)
        log_debug("cgroup: libcgroup: '%s' mounted at '%s', ours is '%s'", name, mount, own);
    if (!mount)
        mount = xasprintf("%s/%s", h->root, name);
    _cleanup_close_ int fd = open(mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        if (!required && errno == ENOENT)
            return 0;
        return berr_set(err, errno, "controller '%s': open '%s'", name, mount);
    }
    if (!own && cg_parse_self(self_text, name, &own) < 0)
        return berr_setx(err, ENOENT, "controller '%s': not in our /proc/self/cgroup", name);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return berr_set(err, errno, "controller '%s': stat '%s'", name, mount);
    for (size_t i = 0; i < h->lay.n_hier; i++) {
        struct stat o;
        _cleanup_close_ int ofd = open(h->mount[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (ofd >= 0 && fstat(ofd, &o) == 0 && o.st_dev == st.st_dev && o.st_ino == st.st_ino) {
            struct cg_hier *hi = &h->lay.hier[i];
            size_t l = strlen(hi->name);
            snprintf(hi->name + l, sizeof(hi->name) - l, ",%s", name);
            hi->ctrls |= 1u << c;
            h->lay.ctrl_hier[c] = (int) i;
            return 0;
        }
    }
    size_t i = h->lay.n_hier++;
    snprintf(h->lay.hier[i].name, sizeof(h->lay.hier[i].name), "%s", name);
    h->lay.hier[i].ctrls = 1u << c;
    h->lay.ctrl_hier[c] = (int) i;
    h->mount[i] = TAKE_PTR(mount);
    h->own[i] = TAKE_PTR(own);
    return 0;
}

/* mkdir -p rel under the agent's own cgroup of hierarchy i with openat, remembering the
 * first component we created (iso_host_remove takes away what we made, no more). */
static int cg_make_parent(struct iso_host *h, size_t i, struct berr **err)
{
    _cleanup_free_ char *own_path = cg_join(h->mount[i], h->own[i], NULL);
    int cur = open(own_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cur < 0)
        return berr_set(err, errno, "open own cgroup '%s'", own_path);
    h->created[i] = -1;
    int depth = 0;
    for (const char *p = h->rel; *p; depth++) {
        size_t l = strcspn(p, "/");
        char comp[256];
        snprintf(comp, sizeof(comp), "%.*s", (int) l, p);
        if (mkdirat(cur, comp, 0755) == 0) {
            if (h->created[i] < 0)
                h->created[i] = depth;
        } else if (errno != EEXIST) {
            int e = errno;
            close(cur);
            return berr_set(err, e, "mkdir '%s/%s'", own_path, h->rel);
        }
        int next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int e = errno;
        close(cur);
        if (next < 0)
            return berr_set(err, e, "open '%s/%s'", own_path, h->rel);
        cur = next;
        p += l;
        if (*p == '/')
            p++;
    }
    h->parent.fd[i] = cur;
    h->parent.path[i] = cg_join(h->mount[i], h->own[i], h->rel);
    return 0;
}

/* Fill h (zeroed, ctrl_hier -1) for iso_host_open; returns -errno with err set. */
static int cg_host_build(struct iso_host *h, const char *root, const char *parent, unsigned flags,
                         const char *self_cgroup, struct berr **err)
{
    int r;
    h->lay.flags = flags;
    h->root = xstrdup(root);
    while (*parent == '/')
        parent++;
    h->rel = xstrdup(streq(parent, "auto") ? "berth" : parent);
    if (!cg_rel_valid(h->rel))
        return berr_setx(err, EINVAL, "cgroup_parent '%s': not a relative path", parent);

    /* v2 when root itself is cgroup2 (real host) or, for fake trees, has cgroup.controllers
     * at its top. A hybrid host (tmpfs with an "unified" dir) counts as v1. */
    struct statfs sfs;
    if (statfs(root, &sfs) < 0)
        return berr_set(err, errno, "statfs '%s'", root);
    _cleanup_free_ char *ctl = xasprintf("%s/cgroup.controllers", root);
    bool v2 = (uint64_t) sfs.f_type == (uint64_t) CGROUP2_SUPER_MAGIC || access(ctl, F_OK) == 0;
    h->lay.version = v2 ? ISO_CG_V2 : ISO_CG_V1;
    h->lay.ops = v2 ? &cg2_ops : &cg1_ops;

    _cleanup_free_ char *self_text = NULL;
    if (self_cgroup)
        self_text = xstrdup(self_cgroup);
    else if ((r = read_file_alloc("/proc/self/cgroup", 65536, &self_text, NULL)) < 0)
        return berr_set(err, -r, "read '/proc/self/cgroup'");

    if (v2) {
        size_t i = h->lay.n_hier++;
        snprintf(h->lay.hier[i].name, sizeof(h->lay.hier[i].name), "unified");
        static const struct {
            unsigned flag;
            enum cg_ctrl c;
        } map[] = {{ISO_CG_CPU, CG_CPU}, {ISO_CG_MEM, CG_MEMORY}, {ISO_CG_PIDS, CG_PIDS}};
        for (size_t k = 0; k < ARRAY_SIZE(map); k++)
            if (flags & map[k].flag) {
                h->lay.hier[i].ctrls |= 1u << map[k].c;
                h->lay.ctrl_hier[map[k].c] = (int) i;
            }
        h->mount[i] = xstrdup(root);
        if (cg_parse_self(self_text, NULL, &h->own[i]) < 0)
            return berr_setx(err, ENOENT, "no '0::' line in our /proc/self/cgroup");
    } else {
        /* libcgroup only for the real host; fake trees and failures parse the text. */
        bool use_lib = streq(root, "/sys/fs/cgroup") && !self_cgroup && cgroup_init() == 0;
        const struct {
            enum cg_ctrl c;
            bool want, required;
        } want[] = {
                {CG_CPU, flags & ISO_CG_CPU, true},
                {CG_CPUACCT, true, false}, /* stats only */
                {CG_MEMORY, flags & ISO_CG_MEM, true},
                {CG_PIDS, flags & ISO_CG_PIDS, true},
                {CG_DEVICES, flags & ISO_CG_DEVICES, true},
                {CG_FREEZER, true, false}, /* race-free kill when mounted */
        };
        for (size_t k = 0; k < ARRAY_SIZE(want); k++)
            if (want[k].want &&
                (r = cg_add_ctrl(h, want[k].c, want[k].required, use_lib, self_text, err)) < 0)
                return r;
    }
    if (h->lay.n_hier == 0)
        return berr_setx(err, ENOENT, "no cgroup controller to use under '%s'", root);

    for (size_t i = 0; i < h->lay.n_hier; i++) {
        if (cg_make_parent(h, i, err) < 0)
            return berr_wrap(err, "cgroup parent in '%s'", h->lay.hier[i].name);
        log_debug("cgroup: parent '%s'", h->parent.path[i]);
    }
    _cleanup_free_ char *own_path = cg_join(h->mount[0], h->own[0], NULL);
    _cleanup_close_ int own_fd = open(own_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (own_fd < 0)
        return berr_set(err, errno, "open own cgroup '%s'", own_path);
    bool own_is_root = h->own[0][strspn(h->own[0], "/")] == 0;
    r = h->lay.ops->host_setup(&h->lay, own_fd, own_is_root, h->rel, &h->parent, err);
    if (r < 0)
        return berr_wrap(err, "set up cgroup parent '%s'", h->parent.path[0]);
    /* what the kernel's cgroups have is learned here, once, not looked up per launch */
    if (h->lay.ops->probe)
        h->lay.ops->probe(&h->lay, &h->parent);
    return 0;
}

int iso_host_open(const char *root, const char *parent, unsigned flags, const char *self_cgroup,
                  struct iso_host **ret, struct berr **err)
{
    struct iso_host *h = xzalloc(sizeof(*h));
    cg_node_init(&h->parent);
    for (size_t c = 0; c < _CG_CTRL_MAX; c++)
        h->lay.ctrl_hier[c] = -1;
    for (size_t i = 0; i < CG_MAX_HIER; i++)
        h->created[i] = -1;
    int r = cg_host_build(h, root, parent, flags, self_cgroup, err);
    if (r < 0) {
        (void) iso_host_remove(h); /* leave nothing behind that we created */
        iso_host_free(h);
        return r;
    }
    *ret = h;
    return 0;
}

/* Walk from the agent's own cgroup in hierarchy idx up to the mount point, calling fn on
 * each directory fd; fn keeps the minimum in *acc. */
static void walk_up(const struct iso_host *h, int idx, void (*fn)(int dfd, uint64_t *acc),
                    uint64_t *acc)
{
    if (idx < 0 || !h->mount[idx] || !h->own[idx])
        return;
    char path[4096];
    snprintf(path, sizeof(path), "%s%s", h->mount[idx], streq(h->own[idx], "/") ? "" : h->own[idx]);
    size_t floor = strlen(h->mount[idx]);
    for (;;) {
        _cleanup_close_ int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
            fn(dfd, acc);
        char *slash = strrchr(path, '/');
        if (!slash || (size_t) (slash - path) < floor)
            break;
        *slash = 0;
    }
}

static void keep_min(uint64_t *acc, uint64_t v)
{
    if (v && (*acc == 0 || v < *acc))
        *acc = v;
}

static void cpu_quota_v1(int dfd, uint64_t *acc)
{
    char q[32], p[32];
    int64_t quota;
    uint64_t period;
    if (read_file_at(dfd, "cpu.cfs_quota_us", q, sizeof(q)) > 0 &&
        read_file_at(dfd, "cpu.cfs_period_us", p, sizeof(p)) > 0 && parse_i64(q, &quota) == 0 &&
        parse_u64(p, &period) == 0 && quota > 0 && period > 0)
        keep_min(acc, (uint64_t) quota * 1000 / period);
}

static void cpu_quota_v2(int dfd, uint64_t *acc)
{
    char buf[64];
    uint64_t quota, period;
    if (read_file_at(dfd, "cpu.max", buf, sizeof(buf)) <= 0)
        return;
    char *sp = strchr(buf, ' ');
    if (!sp)
        return;
    *sp = 0;
    if (parse_u64(buf, &quota) == 0 && parse_u64(sp + 1, &period) == 0 && period > 0)
        keep_min(acc, quota * 1000 / period);
}

static void mem_limit_v1(int dfd, uint64_t *acc)
{
    uint64_t v;
    /* "unlimited" reads as PAGE_COUNTER_MAX pages: 9223372036854771712 */
    if (cg_read_u64(dfd, "memory.limit_in_bytes", &v) == 0 && v < (1ULL << 62))
        keep_min(acc, v);
}

static void mem_limit_v2(int dfd, uint64_t *acc)
{
    uint64_t v;
    if (cg_read_u64(dfd, "memory.max", &v) == 0 && v != UINT64_MAX)
        keep_min(acc, v);
}

void iso_host_own_limits(const struct iso_host *h, uint64_t *ret_cpu_millis, uint64_t *ret_mem)
{
    /* the only version switch outside the backends: two files read once at start-up */
    bool v2 = h->lay.version == ISO_CG_V2;
    uint64_t cpu = 0, mem = 0;
    walk_up(h, h->lay.ctrl_hier[CG_CPU], v2 ? cpu_quota_v2 : cpu_quota_v1, &cpu);
    walk_up(h, h->lay.ctrl_hier[CG_MEMORY], v2 ? mem_limit_v2 : mem_limit_v1, &mem);
    *ret_cpu_millis = cpu;
    *ret_mem = mem;
}

int iso_host_set_limits(struct iso_host *h, const struct iso_limits *l, struct berr **err)
{
    return h->lay.ops->apply(&h->lay, &h->parent, l, true, err);
}

int iso_host_remove(struct iso_host *h)
{
    if (!h)
        return 0;
    int ret = 0;
    if (h->lay.ops && h->lay.ops->host_remove)
        h->lay.ops->host_remove(&h->lay, &h->parent);
    for (size_t i = 0; i < h->lay.n_hier; i++) {
        if (!h->parent.path[i])
            continue;
        /* The parent leaf always goes (it is ours); its ancestors only if we made them. One
         * rmdir each, no retry: this runs at the agent's stop, and a busy parent stays. */
        _cleanup_free_ char *p = xstrdup(h->parent.path[i]);
        int depth = 0;
        for (const char *q = h->rel; *q; q++)
            depth += *q == '/';
        for (;; depth--) {
            if (rmdir(p) < 0 && errno != ENOENT) {
                if (ret == 0)
                    ret = -errno;
                break;
            }
            if (h->created[i] < 0 || depth <= h->created[i])
                break;
            char *slash = strrchr(p, '/');
            if (!slash)
                break;
            *slash = 0;
        }
    }
    return ret;
}

struct iso_host *iso_host_free(struct iso_host *h)
{
    if (!h)
        return NULL;
    cg_node_done(&h->parent);
    for (size_t i = 0; i < CG_MAX_HIER; i++) {
        free(h->mount[i]);
        free(h->own[i]);
    }
    free(h->root);
    free(h->rel);
    free(h);
    return NULL;
}

enum iso_cg_version iso_host_version(const struct iso_host *h)
{
    return h->lay.version;
}

unsigned iso_host_flags(const struct iso_host *h)
{
    return h->lay.flags;
}

void iso_host_foreach_path(const struct iso_host *h,
                           void (*fn)(const char *ctrl, const char *path, void *arg), void *arg)
{
    cg_foreach_path(&h->lay, &h->parent, fn, arg);
}
