/* isolator/cgroup.c - the cgroup half of isolator.h: detect v1 or v2 once, find the agent's
 * own cgroup (libcgroup on the real host, /proc/self/cgroup text otherwise), create the
 * parent of all tasks and the containers' cgroups, and dispatch everything that differs
 * to struct cg_ops (cgroup-v1.c, cgroup-v2.c). Also holds the openat helpers both share.
 * All file I/O goes through O_DIRECTORY fds so unit tests can point root at a temp dir. */
#include <fcntl.h>
#include <libcgroup.h>
#include <linux/magic.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>

#include "isolator/cgroup-internal.h"
#include "isolator/isolator.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

static const char *const cg_ctrl_names[_CG_CTRL_MAX] = {
        [CG_CPU] = "cpu",   [CG_CPUACCT] = "cpuacct", [CG_MEMORY] = "memory",
        [CG_PIDS] = "pids", [CG_DEVICES] = "devices", [CG_FREEZER] = "freezer",
};

struct iso_host {
    struct cg_layout lay;
    char *root;
    char *rel;                /* parent path relative to the agent's own cgroup: "berth" */
    char *mount[CG_MAX_HIER]; /* hierarchy mount point: "/sys/fs/cgroup/memory" */
    char *own[CG_MAX_HIER];   /* agent's own cgroup in it: "/" or "/system.slice/x" */
    int created[CG_MAX_HIER]; /* index of the first component of rel we created, -1 none */
    struct cg_node parent;
};

struct iso_cgroup {
    struct cg_layout lay; /* a copy: the container never points into the host */
    char *name;
    /* No fd on the parent: rmdir goes through the node's "..", so a container costs one fd
     * per hierarchy, not two (an agent with 1000 containers stays under 20000 fds). */
    struct cg_node node;
};

/* ---- shared helpers ---------------------------------------------------------------------- */

void cg_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int cg_fd(const struct cg_layout *lay, const struct cg_node *n, enum cg_ctrl c)
{
    int i = lay->ctrl_hier[c];
    return i < 0 ? -1 : n->fd[i];
}

bool cg_has(int dirfd, const char *file)
{
    return dirfd >= 0 && faccessat(dirfd, file, F_OK, 0) == 0;
}

static void cg_record(struct cg_node *n, const char *file, const char *value)
{
    size_t i;
    for (i = 0; i < n->n_values; i++)
        if (streq(n->values[i].file, file))
            break;
    if (i == n->n_values) {
        if (n->n_values == ISO_CG_MAX_VALUES)
            return; /* the list is for inspect; the write itself succeeded */
        n->n_values++;
    }
    snprintf(n->values[i].file, sizeof(n->values[i].file), "%s", file);
    snprintf(n->values[i].value, sizeof(n->values[i].value), "%s", value);
}

int cg_write_quiet(struct cg_node *n, int dirfd, const char *file, const char *value)
{
    if (dirfd < 0)
        return -EBADF;
    int r = write_file_at(dirfd, file, value);
    if (r < 0)
        return r;
    /* Read back what the kernel kept (memory limits are rounded to pages). */
    char buf[sizeof(n->values[0].value)];
    ssize_t len = read_file_at(dirfd, file, buf, sizeof(buf));
    if (len < 0)
        snprintf(buf, sizeof(buf), "%s", value);
    buf[strcspn(buf, "\n")] = 0;
    cg_record(n, file, buf);
    return 0;
}

int cg_write(struct cg_node *n, int dirfd, const char *file, const char *value, struct berr **err)
{
    int r = cg_write_quiet(n, dirfd, file, value);
    if (r < 0)
        return berr_set(err, -r, "write '%s' = '%s'", file, value);
    log_debug("cgroup: wrote '%s' = '%s'", file, value);
    return 0;
}

int cg_read_u64(int dirfd, const char *file, uint64_t *ret)
{
    char buf[64];
    ssize_t len = read_file_at(dirfd, file, buf, sizeof(buf));
    if (len < 0)
        return (int) len;
    buf[strcspn(buf, " \n")] = 0;
    if (streq(buf, "max") || streq(buf, "-1")) {
        *ret = UINT64_MAX;
        return 0;
    }
    return parse_u64(buf, ret);
}

ssize_t cg_stat_read(struct cg_node *n, unsigned slot, int dirfd, const char *file, char *buf,
                     size_t len)
{
    if (slot >= CG_MAX_STAT_FILES || len == 0 || dirfd < 0)
        return -EINVAL;
    if (n->stat_missing & (1u << slot))
        return -ENOENT;
    if (n->stat_fd[slot] < 0) {
        n->stat_fd[slot] = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
        if (n->stat_fd[slot] < 0) {
            int e = errno;
            if (e == ENOENT)
                n->stat_missing |= 1u << slot;
            return -e;
        }
    }
    /* cgroupfs regenerates the whole text on a read at offset 0 */
    ssize_t r = pread(n->stat_fd[slot], buf, len - 1, 0);
    if (r < 0)
        return -errno;
    buf[r] = 0;
    if (r > 0 && buf[r - 1] == '\n')
        buf[--r] = 0;
    return r;
}

int cg_stat_u64(struct cg_node *n, unsigned slot, int dirfd, const char *file, uint64_t *ret)
{
    char buf[64];
    ssize_t len = cg_stat_read(n, slot, dirfd, file, buf, sizeof(buf));
    if (len < 0)
        return (int) len;
    buf[strcspn(buf, " \n")] = 0;
    if (streq(buf, "max") || streq(buf, "-1")) {
        *ret = UINT64_MAX;
        return 0;
    }
    return parse_u64(buf, ret);
}

int cg_keyed(const char *text, const char *key, uint64_t *ret)
{
    size_t kl = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, kl) != 0 || p[kl] != ' ')
            continue;
        const char *v = p + kl + 1;
        char num[32];
        size_t vl = strcspn(v, " \n");
        if (vl == 0 || vl >= sizeof(num))
            return -EINVAL;
        memcpy(num, v, vl);
        num[vl] = 0;
        return parse_u64(num, ret);
    }
    return -ENOENT;
}

unsigned cg_keyed_many(const char *text, const char *const *keys, uint64_t *const *rets, size_t n)
{
    unsigned found = 0, all = n >= 32 ? ~0u : (1u << n) - 1;
    for (const char *p = text; p && *p && found != all;) {
        const char *sp = strchr(p, ' ');
        const char *nl = strchr(p, '\n');
        if (sp && (!nl || sp < nl)) {
            size_t kl = (size_t) (sp - p);
            for (size_t i = 0; i < n && i < 32; i++) {
                if ((found & (1u << i)) || strncmp(p, keys[i], kl) != 0 || keys[i][kl])
                    continue;
                /* digits only: the kernel writes plain decimals here */
                uint64_t v = 0;
                const char *d = sp + 1;
                while (*d >= '0' && *d <= '9')
                    v = v * 10 + (uint64_t) (*d++ - '0');
                if (d != sp + 1) {
                    *rets[i] = v;
                    found |= 1u << i;
                }
                break;
            }
        }
        p = nl ? nl + 1 : NULL;
    }
    return found;
}

int cg_foreach_pid(int dirfd, int (*fn)(pid_t pid, void *arg), void *arg)
{
    _cleanup_close_ int fd = openat(dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[4096];
    size_t have = 0;
    int count = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        have += (size_t) n;
        buf[have] = 0;
        bool eof = n == 0;
        char *line = buf, *nl;
        /* Whole lines only; a partial last line waits for the next read (or EOF). */
        while ((nl = strchr(line, '\n')) || (eof && *line)) {
            if (nl)
                *nl = 0;
            uint64_t v;
            if (parse_u64(line, &v) == 0 && v > 0 && v <= INT32_MAX) {
                int r = fn ? fn((pid_t) v, arg) : 0;
                if (r < 0)
                    return r;
                count++;
            }
            line = nl ? nl + 1 : line + strlen(line);
        }
        have = strlen(line);
        memmove(buf, line, have);
        if (eof)
            break;
        if (have == sizeof(buf) - 1)
            return -EINVAL; /* a 4 KiB "line" is not a pid */
    }
    return count;
}

static int cg_kill_one(pid_t pid, void *arg)
{
    int *seen = arg;
    if (pid == getpid())
        return 0; /* never ourselves, whatever the cgroup says */
    (*seen)++;
    if (kill(pid, SIGKILL) < 0 && errno != ESRCH)
        return -errno;
    return 0;
}

static int cg_count_one(pid_t pid, void *arg)
{
    (void) pid;
    (*(int *) arg)++;
    return 0;
}

int cg_kill_loop(const struct cg_layout *lay, struct cg_node *n,
                 int (*freeze)(const struct cg_layout *, struct cg_node *, bool frozen),
                 struct berr **err)
{
    /* The usual case at a task's end: pid 1 of the sandbox is gone and the kernel has
     * already killed the rest. Then one read of each cgroup.procs is all it costs. */
    int present = 0;
    for (size_t i = 0; i < lay->n_hier; i++)
        if (n->fd[i] >= 0)
            (void) cg_foreach_pid(n->fd[i], cg_count_one, &present);
    if (present == 0)
        return 0;
    /* As systemd's cg_kill_items: re-read cgroup.procs after each round, because a process
     * may fork between our read and its death; stop once a read finds nobody. Frozen, no
     * one can fork; we thaw after each round so the SIGKILLs get delivered. */
    for (unsigned round = 0; round < 200; round++) {
        if (freeze)
            (void) freeze(lay, n, true); /* a failed freeze still leaves kill-and-retry */
        int seen = 0, r = 0;
        for (size_t i = 0; i < lay->n_hier && r >= 0; i++)
            if (n->fd[i] >= 0)
                r = cg_foreach_pid(n->fd[i], cg_kill_one, &seen);
        int t = freeze ? freeze(lay, n, false) : 0; /* always thaw */
        if (r < 0 && r != -ENOENT)
            return berr_set(err, -r, "kill processes");
        if (t < 0)
            return berr_set(err, -t, "thaw");
        if (seen == 0)
            return 0;
        cg_sleep_ms(round < 20 ? 1 : 10);
    }
    return berr_setx(err, EBUSY, "processes remain in the cgroup after SIGKILL");
}

/* ---- nodes -------------------------------------------------------------------------------- */

static void cg_node_init(struct cg_node *n)
{
    memset(n, 0, sizeof(*n));
    for (size_t i = 0; i < CG_MAX_HIER; i++)
        n->fd[i] = -1;
    for (size_t i = 0; i < CG_MAX_STAT_FILES; i++)
        n->stat_fd[i] = -1;
    long hz = sysconf(_SC_CLK_TCK);
    n->tick_ns = 1000000000ull / (uint64_t) (hz > 0 ? hz : 100);
    n->oom_fd = -1;
    n->oom_ctl_fd = -1;
}

static void cg_node_done(struct cg_node *n)
{
    for (size_t i = 0; i < CG_MAX_HIER; i++) {
        closep(&n->fd[i]);
        n->fd[i] = -1;
        free(n->path[i]);
        n->path[i] = NULL;
    }
    for (size_t i = 0; i < CG_MAX_STAT_FILES; i++) {
        closep(&n->stat_fd[i]);
        n->stat_fd[i] = -1;
    }
    n->stat_missing = 0;
    closep(&n->oom_fd);
    closep(&n->oom_ctl_fd);
    n->oom_fd = n->oom_ctl_fd = -1;
}

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
    const char *name = cg_ctrl_names[c];
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
        if ((r = cg_make_parent(h, i, err)) < 0)
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
    for (size_t i = 0; i < h->lay.n_hier; i++) {
        if (!h->parent.path[i])
            continue;
        /* The parent leaf always goes (it is ours); its ancestors only if we made them. */
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

/* v1: one call per controller (a joint hierarchy is named once per controller, so API
 * clients can look up "cpu" and "cpuacct" alike); v2: one call, "unified". */
static void cg_foreach(const struct cg_layout *lay, const struct cg_node *n,
                       void (*fn)(const char *ctrl, const char *path, void *arg), void *arg)
{
    if (lay->version == ISO_CG_V2) {
        if (n->path[0])
            fn(lay->hier[0].name, n->path[0], arg);
        return;
    }
    for (size_t c = 0; c < _CG_CTRL_MAX; c++) {
        int i = lay->ctrl_hier[c];
        if (i >= 0 && n->path[i])
            fn(cg_ctrl_names[c], n->path[i], arg);
    }
}

void iso_host_foreach_path(const struct iso_host *h,
                           void (*fn)(const char *ctrl, const char *path, void *arg), void *arg)
{
    cg_foreach(&h->lay, &h->parent, fn, arg);
}

/* ---- containers ------------------------------------------------------------------------------ */

static bool cg_name_valid(const char *name)
{
    return *name && strlen(name) < 128 && !strchr(name, '/') && !streq(name, ".") &&
           !streq(name, "..");
}

static struct iso_cgroup *cg_new(struct iso_host *h, const char *name)
{
    struct iso_cgroup *cg = xzalloc(sizeof(*cg));
    cg->lay = h->lay;
    cg->name = xstrdup(name);
    cg_node_init(&cg->node);
    for (size_t i = 0; i < CG_MAX_HIER; i++)
        if (i < h->lay.n_hier && h->parent.fd[i] >= 0)
            cg->node.path[i] = xasprintf("%s/%s", h->parent.path[i], name);
    return cg;
}

static int cg_open_or_create(struct iso_host *h, const char *name, bool create,
                             struct iso_cgroup **ret, struct berr **err)
{
    if (!cg_name_valid(name))
        return berr_setx(err, EINVAL, "cgroup name '%s' is not a single path component", name);
    struct iso_cgroup *cg = cg_new(h, name);
    bool made[CG_MAX_HIER] = {false};
    size_t found = 0;
    int r = 0;
    for (size_t i = 0; i < cg->lay.n_hier; i++) {
        if (h->parent.fd[i] < 0) {
            r = berr_set(err, EBADF, "cgroup parent in '%s'", cg->lay.hier[i].name);
            goto fail;
        }
        if (create) {
            if (mkdirat(h->parent.fd[i], name, 0755) < 0) {
                r = berr_set(err, errno, "mkdir '%s'", cg->node.path[i]);
                goto fail;
            }
            made[i] = true;
        }
        cg->node.fd[i] = openat(h->parent.fd[i], name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cg->node.fd[i] < 0) {
            if (!create && errno == ENOENT)
                continue; /* reopen after restart: a missing hierarchy is tolerated */
            r = berr_set(err, errno, "open '%s'", cg->node.path[i]);
            goto fail;
        }
        found++;
    }
    if (found == 0) {
        r = berr_setx(err, ENOENT, "no cgroup '%s' under the parent", name);
        goto fail;
    }
    *ret = cg;
    return 0;
fail:
    /* Undo this call's mkdirs only; an EEXIST dir belongs to someone else. */
    for (size_t i = 0; i < cg->lay.n_hier; i++)
        if (made[i])
            (void) unlinkat(h->parent.fd[i], name, AT_REMOVEDIR);
    iso_cgroup_free(cg);
    return r;
}

int iso_cgroup_create(struct iso_host *h, const char *name, struct iso_cgroup **ret,
                      struct berr **err)
{
    return cg_open_or_create(h, name, true, ret, err);
}

int iso_cgroup_open(struct iso_host *h, const char *name, struct iso_cgroup **ret,
                    struct berr **err)
{
    return cg_open_or_create(h, name, false, ret, err);
}

int iso_cgroup_apply(struct iso_cgroup *cg, const struct iso_limits *l, struct berr **err)
{
    return cg->lay.ops->apply(&cg->lay, &cg->node, l, false, err);
}

size_t iso_cgroup_values(const struct iso_cgroup *cg, const struct iso_cg_value **ret)
{
    *ret = cg->node.values;
    return cg->node.n_values;
}

int iso_cgroup_attach(struct iso_cgroup *cg, pid_t pid, struct berr **err)
{
    /* The same on both versions: the pid goes to cgroup.procs of every hierarchy we use
     * (v2 has one). The kernel moves the whole thread group. */
    char buf[32];
    snprintf(buf, sizeof(buf), "%d", (int) pid);
    for (size_t i = 0; i < cg->lay.n_hier; i++) {
        if (cg->node.fd[i] < 0)
            continue;
        int r = write_file_at(cg->node.fd[i], "cgroup.procs", buf);
        if (r < 0)
            return berr_set(err, -r, "write '%s' to '%s/cgroup.procs'", buf, cg->node.path[i]);
    }
    return 0;
}

size_t iso_cgroup_self_attach_fds(const struct iso_cgroup *cg, int *fds, size_t max)
{
    if (iso_cgroup_clone_fd(cg) >= 0)
        return 0; /* v2: born in the cgroup */
    size_t n = 0;
    for (size_t i = 0; i < cg->lay.n_hier && n < max; i++)
        if (cg->node.fd[i] >= 0)
            fds[n++] = cg->node.fd[i];
    return n;
}

int iso_cgroup_clone_fd(const struct iso_cgroup *cg)
{
    return cg->lay.ops->clone_fd(&cg->lay, &cg->node);
}

int iso_cgroup_oom_fd(struct iso_cgroup *cg, struct berr **err)
{
    if (cg->node.oom_fd >= 0)
        return cg->node.oom_fd;
    if (cg_fd(&cg->lay, &cg->node, CG_MEMORY) < 0)
        return berr_setx(err, ENOTSUP, "no memory controller for OOM events");
    int r = cg->lay.ops->oom_open(&cg->lay, &cg->node, err);
    return r < 0 ? r : cg->node.oom_fd;
}

int64_t iso_cgroup_oom_ack(struct iso_cgroup *cg)
{
    if (cg->node.oom_fd < 0)
        return -EBADF;
    /* Both eventfd (8-byte counter) and inotify (events) are drained by reading until
     * EAGAIN; the fd is non-blocking. */
    char buf[4096];
    for (;;) {
        ssize_t n = read(cg->node.oom_fd, buf, sizeof(buf));
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN)
            return -errno;
        break;
    }
    return (int64_t) iso_cgroup_oom_kills(cg);
}

uint64_t iso_cgroup_oom_kills(struct iso_cgroup *cg)
{
    return cg->lay.ops->oom_kills(&cg->lay, &cg->node);
}

int iso_cgroup_stats(struct iso_cgroup *cg, struct iso_stats *ret)
{
    memset(ret, 0, sizeof(*ret));
    return cg->lay.ops->stats(&cg->lay, &cg->node, ret);
}

static int cg_found(pid_t pid, void *arg)
{
    (void) pid;
    (void) arg;
    return -ECANCELED; /* one is enough */
}

bool iso_cgroup_populated(struct iso_cgroup *cg)
{
    for (size_t i = 0; i < cg->lay.n_hier; i++)
        if (cg->node.fd[i] >= 0 && cg_foreach_pid(cg->node.fd[i], cg_found, NULL) == -ECANCELED)
            return true;
    return false;
}

int iso_cgroup_kill(struct iso_cgroup *cg, struct berr **err)
{
    return cg->lay.ops->kill(&cg->lay, &cg->node, err);
}

/* TODO(#13): non-blocking cgroup.kill / one kill round; these wrap the blocking kill. */
int iso_cgroup_kill_wait(struct iso_cgroup *cg, unsigned timeout_ms, struct berr **err)
{
    (void) timeout_ms;
    return cg->lay.ops->kill(&cg->lay, &cg->node, err);
}

char *iso_cgroup_events_path(const struct iso_cgroup *cg)
{
    if (cg->lay.ops->version != ISO_CG_V2 || !cg->node.path[0])
        return NULL;
    return xasprintf("%s/cgroup.events", cg->node.path[0]);
}

int iso_cgroup_destroy(struct iso_cgroup *cg, struct berr **err)
{
    /* A cgroup that just emptied can still be busy while the kernel frees its css
     * asynchronously (the last task is a zombie until reaped): retry EBUSY briefly. */
    int ret = 0;
    for (size_t i = 0; i < cg->lay.n_hier; i++) {
        if (cg->node.fd[i] < 0)
            continue; /* never existed in this hierarchy */
        _cleanup_close_ int pfd = openat(cg->node.fd[i], "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int r = pfd < 0 ? -errno : 0;
        for (unsigned tries = 0; pfd >= 0 && tries < 50; tries++) {
            r = unlinkat(pfd, cg->name, AT_REMOVEDIR) < 0 ? -errno : 0;
            if (r != -EBUSY)
                break;
            cg_sleep_ms(tries < 10 ? 2 : 20);
        }
        if (r == -ENOENT)
            r = 0;
        if (r < 0 && ret == 0)
            ret = berr_set(err, -r, "rmdir '%s'", cg->node.path[i]);
    }
    return ret;
}

void iso_cgroup_foreach_path(const struct iso_cgroup *cg,
                             void (*fn)(const char *ctrl, const char *path, void *arg), void *arg)
{
    cg_foreach(&cg->lay, &cg->node, fn, arg);
}

struct iso_cgroup *iso_cgroup_free(struct iso_cgroup *cg)
{
    if (!cg)
        return NULL;
    cg_node_done(&cg->node);
    free(cg->name);
    free(cg);
    return NULL;
}
