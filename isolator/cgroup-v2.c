/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/cgroup-v2.c - the cgroup v2 (unified) backend of struct cg_ops: delegation to the
 * parent ("no internal processes"), limits, usage with PSI, OOM (inotify on memory.events),
 * kill (cgroup.kill), emptiness (cgroup.events). cgroup.c owns the dir fd; cgroup-v1.c is
 * the per-controller twin; cgroup-v2-devices.c builds the device filter. */
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "isolator/cgroup-internal.h"

#define CG2_PERIOD_US 100000
#define CG2_MIN_QUOTA_US 1000
#define CG2_MAX_MOVED 256

static const char *const cg2_ctrl_names[_CG_CTRL_MAX] = {
        [CG_CPU] = "cpu",
        [CG_MEMORY] = "memory",
        [CG_PIDS] = "pids",
};

/* True if word appears as a whole space-separated word in list. */
static bool cg2_has_word(const char *list, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = list; *p;) {
        p += strspn(p, " \n");
        size_t l = strcspn(p, " \n");
        if (l == wl && strncmp(p, word, wl) == 0)
            return true;
        p += l;
    }
    return false;
}

/* Build "+cpu +memory" for the controllers of the layout that dirfd offers to its children
 * (cgroup.controllers) and has not enabled yet (cgroup.subtree_control). */
static void cg2_missing(const struct cg_layout *lay, int dirfd, char *out, size_t len)
{
    char avail[512], enabled[512];
    out[0] = 0;
    if (read_file_at(dirfd, "cgroup.controllers", avail, sizeof(avail)) < 0)
        return;
    if (read_file_at(dirfd, "cgroup.subtree_control", enabled, sizeof(enabled)) < 0)
        enabled[0] = 0;
    for (size_t c = 0; c < _CG_CTRL_MAX; c++) {
        const char *name = cg2_ctrl_names[c];
        if (!name || !(lay->hier[0].ctrls & (1u << c)) || !cg2_has_word(avail, name) ||
            cg2_has_word(enabled, name))
            continue;
        size_t l = strlen(out);
        snprintf(out + l, len - l, "%s+%s", l ? " " : "", name);
    }
}

struct cg2_move {
    int to_fd;
    pid_t moved[CG2_MAX_MOVED];
    size_t n_moved;
    size_t new_this_pass;
};

static int cg2_move_one(pid_t pid, void *arg)
{
    struct cg2_move *m = arg;
    for (size_t i = 0; i < m->n_moved; i++)
        if (m->moved[i] == pid)
            return 0;
    char buf[32];
    snprintf(buf, sizeof(buf), "%d", (int) pid);
    int r = write_file_at(m->to_fd, "cgroup.procs", buf);
    if (r < 0 && r != -ESRCH) /* ESRCH: it exited meanwhile */
        return r;
    if (m->n_moved < CG2_MAX_MOVED)
        m->moved[m->n_moved++] = pid;
    m->new_this_pass++;
    return 0;
}

/* The kernel refuses to enable controllers in subtree_control of a non-root cgroup that
 * has processes ("no internal processes"). When the agent runs in its own cgroup (a
 * systemd unit with Delegate=yes), move everything in it to the leaf <own>/agent first,
 * re-reading until no new pid appears (a process may fork while we move). */
static int cg2_evacuate(int own_fd, struct berr **err)
{
    if (mkdirat(own_fd, "agent", 0755) < 0 && errno != EEXIST)
        return berr_set(err, errno, "mkdir leaf 'agent' for our own processes");
    _cleanup_close_ int leaf = openat(own_fd, "agent", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (leaf < 0)
        return berr_set(err, errno, "open leaf 'agent'");
    struct cg2_move m = {.to_fd = leaf};
    for (unsigned pass = 0; pass < 10; pass++) {
        m.new_this_pass = 0;
        int r = cg_foreach_pid(own_fd, "cgroup.procs", cg2_move_one, &m);
        if (r < 0)
            return berr_set(err, -r, "move our processes to leaf 'agent'");
        if (m.new_this_pass == 0)
            break;
    }
    log_debug("cgroup: moved %zu of our processes to leaf 'agent'", m.n_moved);
    return 0;
}

static int cg2_enable(const struct cg_layout *lay, int dirfd, const char *where, struct berr **err)
{
    char want[64];
    cg2_missing(lay, dirfd, want, sizeof(want));
    if (!want[0])
        return 0;
    int r = write_file_at(dirfd, "cgroup.subtree_control", want);
    if (r < 0)
        return berr_set(err, -r, "write 'cgroup.subtree_control' = '%s' in '%s'", want, where);
    return 0;
}

static int cg2_host_setup(const struct cg_layout *lay, int own_fd, bool own_is_root,
                          const char *rel, struct cg_node *parent, struct berr **err)
{
    (void) parent;
    char want[64];
    cg2_missing(lay, own_fd, want, sizeof(want));
    if (want[0] && !own_is_root && cg_lists_pid(own_fd, "cgroup.procs")) {
        int r = cg2_evacuate(own_fd, err);
        if (r < 0)
            return r;
    }
    int r = cg2_enable(lay, own_fd, "own cgroup", err);
    if (r < 0)
        return r;
    /* Then every level down to the parent, which hands them to the containers. */
    _cleanup_close_ int cur = fcntl(own_fd, F_DUPFD_CLOEXEC, 3);
    if (cur < 0)
        return berr_set(err, errno, "dup");
    for (const char *p = rel; *p;) {
        size_t l = strcspn(p, "/");
        char comp[256];
        snprintf(comp, sizeof(comp), "%.*s", (int) l, p);
        int next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (next < 0)
            return berr_set(err, errno, "open '%s'", comp);
        close(cur);
        cur = next;
        if ((r = cg2_enable(lay, cur, comp, err)) < 0)
            return r;
        p += l;
        if (*p == '/')
            p++;
    }
    return 0;
}

/* The OCI/systemd-era linear map of shares [2, 262144] onto weight [1, 10000]; see
 * docs/design/cgroups.md for why, and for the 1024 -> 39 problem it has. */
static uint64_t cg2_weight(uint64_t cpus_millis)
{
    uint64_t shares = cpus_millis * 1024 / 1000;
    shares = shares < 2 ? 2 : shares > 262144 ? 262144 : shares;
    return 1 + ((shares - 2) * 9999) / 262142;
}

static int cg2_apply(const struct cg_layout *lay, struct cg_node *n, const struct iso_limits *l,
                     bool parent, struct berr **err)
{
    char buf[48];
    int r, fd = n->fd[0];

    if ((lay->flags & ISO_CG_CPU) && fd >= 0) {
        if (!parent || l->cpu_limit_millis) {
            if (l->cpu_limit_millis) {
                uint64_t q = l->cpu_limit_millis * (CG2_PERIOD_US / 1000);
                snprintf(buf, sizeof(buf), "%" PRIu64 " %d",
                         q < CG2_MIN_QUOTA_US ? CG2_MIN_QUOTA_US : q, CG2_PERIOD_US);
            } else {
                snprintf(buf, sizeof(buf), "max %d", CG2_PERIOD_US);
            }
            if ((r = cg_write(n, fd, "cpu.max", buf, err)) < 0)
                return r;
        }
        if (l->cpus_millis) {
            snprintf(buf, sizeof(buf), "%" PRIu64, cg2_weight(l->cpus_millis));
            if ((r = cg_write(n, fd, "cpu.weight", buf, err)) < 0)
                return r;
        }
    }
    if ((lay->flags & ISO_CG_MEM) && fd >= 0) {
        if (l->mem_bytes) {
            snprintf(buf, sizeof(buf), "%" PRIu64, l->mem_bytes);
            if ((r = cg_write(n, fd, "memory.max", buf, err)) < 0)
                return r;
        }
        /* No swap at all for tasks (absent when the kernel has no swap accounting). */
        if (!parent && cg_has(fd, "memory.swap.max") &&
            (r = cg_write(n, fd, "memory.swap.max", "0", err)) < 0)
            return r;
    }
    if ((lay->flags & ISO_CG_PIDS) && fd >= 0 && (!parent || l->pids_max)) {
        if (l->pids_max)
            snprintf(buf, sizeof(buf), "%" PRIu64, l->pids_max);
        else
            snprintf(buf, sizeof(buf), "max");
        if ((r = cg_write(n, fd, "pids.max", buf, err)) < 0)
            return r;
    }
    /* No devices files on v2: a BPF_CGROUP_DEVICE program holds the same allow-list. Once
     * per cgroup: applying new limits later keeps the program it has. */
    if (!parent && (lay->flags & ISO_CG_DEVICES) && fd >= 0 && cg2_devices_attached(fd) <= 0 &&
        cg2_devices_attach(fd, err) < 0)
        return berr_wrap(err, "device filter");
    return 0;
}

/* Stat slots of a v2 node (struct cg_node stat_fd): each file is opened on the first pass
 * and pread() on every later one. */
enum cg2_stat {
    CG2_S_CPU_STAT,
    CG2_S_MEM_CURRENT,
    CG2_S_MEM_STAT,
    CG2_S_MEM_PEAK,
    CG2_S_MEM_MAX,
    CG2_S_MEM_EVENTS,
    CG2_S_PIDS,
    CG2_S_CPU_PRESSURE,
    CG2_S_MEM_PRESSURE,
    CG2_S_IO_PRESSURE,
};

/* Parse the "some" or "full" line of a PSI file ("some avg10=1.23 avg60=0.50 avg300=0.10
 * total=123456"): avg10 in percent, total in microseconds. -ENOENT without that line. */
static int cg2_psi_line(const char *text, const char *kind, double *ret_avg10, uint64_t *ret_total)
{
    size_t kl = strlen(kind);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, kind, kl) != 0 || p[kl] != ' ')
            continue;
        size_t ll = strcspn(p, "\n");
        char line[160];
        snprintf(line, sizeof(line), "%.*s", (int) ll, p);
        char *avg = strstr(line, " avg10="), *total = strstr(line, " total=");
        if (!avg || !total)
            return -EINVAL;
        avg += strlen(" avg10=");
        total += strlen(" total=");
        total[strcspn(total, " ")] = 0;
        avg[strcspn(avg, " ")] = 0;
        /* avg10 is printed as "%lu.%02lu": two exact integers, no locale-dependent strtod */
        char *dot = strchr(avg, '.');
        uint64_t whole, hundredths = 0;
        if (dot)
            *dot = 0;
        if (parse_u64(avg, &whole) < 0 || (dot && parse_u64(dot + 1, &hundredths) < 0) ||
            parse_u64(total, ret_total) < 0)
            return -EINVAL;
        if (ret_avg10)
            *ret_avg10 = (double) whole + (double) hundredths / 100.0;
        return 0;
    }
    return -ENOENT;
}

static int cg2_stats(const struct cg_layout *lay, struct cg_node *n, struct iso_stats *s)
{
    (void) lay;
    char buf[8192]; /* memory.stat is ~3 KiB on recent kernels; fixed: no allocation */
    int fd = n->fd[0], ok = 0, first_err = 0;
    uint64_t v;
    if (fd < 0)
        return -EBADF;
#define NOTE(r) ((r) >= 0 ? (void) ok++ : (void) (first_err = first_err ? first_err : (int) (r)))

    /* cpu.stat exists even without the cpu controller (usage); throttling needs it. */
    ssize_t len = cg_stat_read(n, CG2_S_CPU_STAT, fd, "cpu.stat", buf, sizeof(buf));
    NOTE(len);
    if (len >= 0) {
        static const char *const keys[] = {"usage_usec", "user_usec",    "system_usec",
                                           "nr_periods", "nr_throttled", "throttled_usec"};
        uint64_t usage = 0, user = 0, sys = 0, throttled = 0;
        uint64_t *const rets[] = {&usage,           &user,     &sys, &s->nr_periods,
                                  &s->nr_throttled, &throttled};
        cg_keyed_many(buf, keys, rets, ARRAY_SIZE(keys));
        s->cpu_usage_ns = usage * 1000;
        s->cpu_user_ns = user * 1000;
        s->cpu_system_ns = sys * 1000;
        s->throttled_ns = throttled * 1000;
    }

    int r = cg_stat_u64(n, CG2_S_MEM_CURRENT, fd, "memory.current", &s->mem_usage);
    NOTE(r);
    if (r == 0) {
        /* memory.current counts anon + file (page cache) + kernel memory of the subtree,
         * like v1's usage_in_bytes with use_hierarchy; the working set drops the inactive
         * file pages the kernel reclaims first (cAdvisor's definition, also on v1). */
        uint64_t inactive = 0;
        if (cg_stat_read(n, CG2_S_MEM_STAT, fd, "memory.stat", buf, sizeof(buf)) >= 0) {
            static const char *const keys[] = {"anon", "file", "inactive_file"};
            uint64_t *const rets[] = {&s->mem_rss, &s->mem_cache, &inactive};
            cg_keyed_many(buf, keys, rets, ARRAY_SIZE(keys));
        }
        s->mem_working_set = s->mem_usage > inactive ? s->mem_usage - inactive : 0;
        (void) cg_stat_u64(n, CG2_S_MEM_PEAK, fd, "memory.peak", &s->mem_peak); /* >= 5.19 */
        if (cg_stat_u64(n, CG2_S_MEM_MAX, fd, "memory.max", &v) == 0)
            s->mem_limit = v == UINT64_MAX ? 0 : v;
        if (cg_stat_read(n, CG2_S_MEM_EVENTS, fd, "memory.events", buf, sizeof(buf)) >= 0)
            (void) cg_keyed(buf, "oom_kill", &s->oom_kills);
    }
    NOTE(cg_stat_u64(n, CG2_S_PIDS, fd, "pids.current", &s->pids));

    /* Pressure stall information (CONFIG_PSI; absent when booted with psi=0, or, on kernels
     * built with PSI_DEFAULT_DISABLED, without psi=1): any one file present counts. */
    bool psi = false;
    if (cg_stat_read(n, CG2_S_CPU_PRESSURE, fd, "cpu.pressure", buf, sizeof(buf)) >= 0)
        psi |= cg2_psi_line(buf, "some", &s->cpu_some_avg10, &s->cpu_some_us) == 0;
    if (cg_stat_read(n, CG2_S_MEM_PRESSURE, fd, "memory.pressure", buf, sizeof(buf)) >= 0) {
        psi |= cg2_psi_line(buf, "some", &s->mem_some_avg10, &s->mem_some_us) == 0;
        (void) cg2_psi_line(buf, "full", NULL, &s->mem_full_us);
    }
    if (cg_stat_read(n, CG2_S_IO_PRESSURE, fd, "io.pressure", buf, sizeof(buf)) >= 0) {
        psi |= cg2_psi_line(buf, "some", &s->io_some_avg10, &s->io_some_us) == 0;
        (void) cg2_psi_line(buf, "full", NULL, &s->io_full_us);
    }
    s->has_pressure = psi;
#undef NOTE
    return ok || !first_err ? 0 : first_err;
}

static int cg2_oom_open(const struct cg_layout *lay, struct cg_node *n, struct berr **err)
{
    (void) lay;
    _cleanup_close_ int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (ifd < 0)
        return berr_set(err, errno, "inotify_init1");
    /* inotify takes a path, not a dir fd: name the file through our open dir fd, so the
     * watch is on this cgroup even if its path changed. memory.events changes (IN_MODIFY)
     * on every oom/oom_kill/max/high event; the caller re-reads the counter. */
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d/memory.events", n->fd[0]);
    if (inotify_add_watch(ifd, path, IN_MODIFY) < 0)
        return berr_set(err, errno, "watch 'memory.events'");
    n->oom_fd = TAKE_FD(ifd);
    return 0;
}

static uint64_t cg2_oom_kills(const struct cg_layout *lay, struct cg_node *n)
{
    (void) lay;
    char buf[512];
    uint64_t v = 0;
    /* "oom_kill" counts tasks the OOM killer killed in this cgroup and its descendants. */
    if (cg_stat_read(n, CG2_S_MEM_EVENTS, n->fd[0], "memory.events", buf, sizeof(buf)) >= 0)
        (void) cg_keyed(buf, "oom_kill", &v);
    return v;
}

/* Write cgroup.freeze and return: cgroup.events says "frozen 1" once every task stopped,
 * and nothing here waits for that. */
static int cg2_freeze(const struct cg_layout *lay, struct cg_node *n, bool frozen)
{
    (void) lay;
    if (n->fd[0] < 0)
        return -EOPNOTSUPP;
    int r = write_file_at(n->fd[0], "cgroup.freeze", frozen ? "1" : "0");
    return r == -ENOENT ? -EOPNOTSUPP : r; /* before Linux 5.2 */
}

static int cg2_kill(const struct cg_layout *lay, struct cg_node *n, struct berr **err)
{
    int fd = n->fd[0];
    if (fd < 0)
        return 0;
    /* cgroup.kill SIGKILLs every process of the subtree, including ones forking meanwhile
     * (the kernel walks the cgroup with new forks into it blocked), so one write suffices;
     * the tasks then die asynchronously, and cgroup.events says when the last one is gone. */
    int r = write_file_at(fd, "cgroup.kill", "1");
    if (r == -ENOENT) { /* before Linux 5.14: freeze, kill what cgroup.procs lists, thaw */
        r = cg_kill_round(lay, n, err);
        return r < 0 ? r : 0;
    }
    if (r < 0)
        return berr_set(err, -r, "write 'cgroup.kill' = '1'");
    return 0;
}

/* cgroup.events "populated" is the kernel's own test, the one rmdir's EBUSY uses; a node
 * without it (a fake tree) falls back to cgroup.procs. */
static bool cg2_populated(const struct cg_layout *lay, struct cg_node *n)
{
    (void) lay;
    if (n->fd[0] < 0)
        return false;
    _cleanup_close_ int fd = openat(n->fd[0], "cgroup.events", O_RDONLY | O_CLOEXEC);
    int r = fd < 0 ? -errno : cg_events_populated(fd);
    return r >= 0 ? r > 0 : cg_lists_pid(n->fd[0], "cgroup.procs");
}

static int cg2_clone_fd(const struct cg_layout *lay, const struct cg_node *n)
{
    (void) lay;
    return n->fd[0];
}

const struct cg_ops cg2_ops = {
        .version = ISO_CG_V2,
        .host_setup = cg2_host_setup,
        .apply = cg2_apply,
        .stats = cg2_stats,
        .oom_open = cg2_oom_open,
        .oom_kills = cg2_oom_kills,
        .kill = cg2_kill,
        .freeze = cg2_freeze,
        .populated = cg2_populated,
        .events_file = "cgroup.events",
        .clone_fd = cg2_clone_fd,
        .quota_file = "cpu.max",
        .quota_none = "max",
};
