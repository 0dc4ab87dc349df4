/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/cgroup-v1.c - the cgroup v1 backend of struct cg_ops: limits (cpu, memory, pids,
 * devices allow-list), usage, OOM (cgroup.event_control), kill with the freezer, emptiness
 * from tasks. A hierarchy per controller, or joint ones: cgroup-host.c found them, cgroup.c
 * owns the dir fds; cgroup-v2.c is the unified twin. */
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#include "isolator/cgroup-internal.h"

#define CG1_PERIOD_US 100000
#define CG1_MIN_QUOTA_US 1000             /* the kernel refuses quotas below 1 ms */
#define CG1_UNLIMITED (UINT64_C(1) << 62) /* limits at or above this mean "none" */
#define CG1_FREEZE_HOLD "freeze-hold"     /* below the parent in the freezer (host_setup) */

static int cg1_host_setup(const struct cg_layout *lay, int own_fd, bool own_is_root,
                          const char *rel, struct cg_node *parent, struct berr **err)
{
    (void) own_fd;
    (void) own_is_root;
    (void) rel;
    (void) err;
    /* Without use_hierarchy a v1 memory limit on the parent would not cover the children
     * (kernels before 5.x still allow 0). Fails with EBUSY once the parent has children and
     * is always 1 on new kernels: either way nothing to report. */
    int fd = cg_fd(lay, parent, CG_MEMORY);
    if (cg_has(fd, "memory.use_hierarchy"))
        (void) cg_write_quiet(parent, fd, "memory.use_hierarchy", "1");
    /* An empty cgroup kept FROZEN below the parent: while one freezer cgroup is frozen, a
     * kill's freeze/thaw round (cg_kill_round) leaves the kernel's freezer_active static
     * key alone; without it every freeze and every thaw switched the key, which patches the
     * kernel's text with an IPI to every CPU (5% of the agent's CPU in 1,000 kills, issue
     * #18). It holds no task, so nothing is frozen by it. Best effort: without it kills only
     * cost more. */
    if ((fd = cg_fd(lay, parent, CG_FREEZER)) >= 0 &&
        (mkdirat(fd, CG1_FREEZE_HOLD, 0755) == 0 || errno == EEXIST)) {
        _cleanup_close_ int hold = openat(fd, CG1_FREEZE_HOLD, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (hold < 0 || write_file_at(hold, "freezer.state", "FROZEN") < 0)
            log_debug("cgroup: no frozen '%s' below the parent: kills switch the freezer key",
                      CG1_FREEZE_HOLD);
    }
    return 0;
}

static void cg1_host_remove(const struct cg_layout *lay, struct cg_node *parent)
{
    int fd = cg_fd(lay, parent, CG_FREEZER);
    if (fd >= 0)
        (void) unlinkat(fd, CG1_FREEZE_HOLD, AT_REMOVEDIR); /* empty: frozen or not, it goes */
}

/* Set the memory limit and, where swap accounting exists, memsw to the same value so the
 * task cannot swap. The kernel requires limit <= memsw at every step: the limit first, which
 * it refuses (EINVAL, its only EINVAL for a number on a non-root cgroup) when the new limit
 * is above the current memsw; then memsw first and the limit after. A fresh cgroup's memsw
 * is unlimited, so a launch takes the first way without reading memsw beforehand. */
static int cg1_set_memory(const struct cg_layout *lay, struct cg_node *n, int fd, uint64_t mem,
                          struct berr **err)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRIu64, mem);
    bool memsw = lay->has & CG_HAS_MEMSW;
    int r = cg_set(n, fd, "memory.limit_in_bytes", buf, memsw ? CG_SET_QUIET : 0, err);
    if (r == -EINVAL && memsw) {
        if ((r = cg_set(n, fd, "memory.memsw.limit_in_bytes", buf, 0, err)) < 0)
            return r;
        return cg_set(n, fd, "memory.limit_in_bytes", buf, 0, err);
    }
    if (r < 0)
        return memsw ? berr_set(err, -r, "write 'memory.limit_in_bytes' = '%s'", buf) : r;
    if (memsw && (r = cg_set(n, fd, "memory.memsw.limit_in_bytes", buf, 0, err)) < 0)
        return r;
    return 0;
}

/* Deny every device, then allow the minimal /dev the sandbox builds; mknod of any node is
 * allowed ("m") so tools that create nodes do not fail, but opening them is denied. */
static int cg1_devices(int fd, struct berr **err)
{
    static const char *const allow[] = {
            "c 1:3 rwm",   /* null */
            "c 1:5 rwm",   /* zero */
            "c 1:7 rwm",   /* full */
            "c 1:8 rwm",   /* random */
            "c 1:9 rwm",   /* urandom */
            "c 5:0 rwm",   /* tty */
            "c 5:2 rwm",   /* ptmx */
            "c 136:* rwm", /* pts */
            "c *:* m",     "b *:* m",
    };
    int r = write_file_at(fd, "devices.deny", "a");
    if (r < 0)
        return berr_set(err, -r, "write 'devices.deny' = 'a'");
    /* One fd for the whole list: the kernel parses each write() as one rule. */
    _cleanup_close_ int afd =
            openat(fd, "devices.allow", O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
    if (afd < 0)
        return berr_set(err, errno, "write 'devices.allow' = '%s'", allow[0]);
    for (size_t i = 0; i < ARRAY_SIZE(allow); i++) {
        size_t len = strlen(allow[i]);
        ssize_t w = write(afd, allow[i], len);
        if (w < 0 || (size_t) w != len)
            return berr_set(err, w < 0 ? errno : EIO, "write 'devices.allow' = '%s'", allow[i]);
    }
    return 0;
}

/* CG_SET_IF_DIFFERENT when value is what a fresh cgroup holds: then a launch only reads it. */
static unsigned cg1_fresh(const char *value, const char *fresh)
{
    return streq(value, fresh) ? CG_SET_IF_DIFFERENT : 0;
}

static int cg1_apply(const struct cg_layout *lay, struct cg_node *n, const struct iso_limits *l,
                     bool parent, struct berr **err)
{
    char buf[32];
    int r, fd;

    if ((lay->flags & ISO_CG_CPU) && (fd = cg_fd(lay, n, CG_CPU)) >= 0) {
        if (!parent || l->cpu_limit_millis) {
            /* Period first: the kernel checks quota/period against the parent's ratio. A
             * fresh cgroup has it already (the kernel's default): read, not written. */
            if ((r = cg_set(n, fd, "cpu.cfs_period_us", "100000", CG_SET_IF_DIFFERENT, err)) < 0)
                return r;
            if (l->cpu_limit_millis) {
                uint64_t q = l->cpu_limit_millis * (CG1_PERIOD_US / 1000);
                snprintf(buf, sizeof(buf), "%" PRIu64, q < CG1_MIN_QUOTA_US ? CG1_MIN_QUOTA_US : q);
            } else {
                snprintf(buf, sizeof(buf), "-1");
            }
            if ((r = cg_set(n, fd, "cpu.cfs_quota_us", buf, cg1_fresh(buf, "-1"), err)) < 0)
                return r;
        }
        if (l->cpus_millis) {
            uint64_t shares = l->cpus_millis * 1024 / 1000;
            shares = shares < 2 ? 2 : shares > 262144 ? 262144 : shares;
            snprintf(buf, sizeof(buf), "%" PRIu64, shares);
            if ((r = cg_set(n, fd, "cpu.shares", buf, cg1_fresh(buf, "1024"), err)) < 0)
                return r;
        }
    }
    if ((lay->flags & ISO_CG_MEM) && (fd = cg_fd(lay, n, CG_MEMORY)) >= 0) {
        if (l->mem_bytes && (r = cg1_set_memory(lay, n, fd, l->mem_bytes, err)) < 0)
            return r;
        /* Belt and braces for hosts without swap accounting; fails on some kernels for
         * non-leaf cgroups, which is harmless. */
        if (!parent && (lay->has & CG_HAS_SWAPPINESS))
            (void) cg_set(n, fd, "memory.swappiness", "0", CG_SET_QUIET, NULL);
    }
    if ((lay->flags & ISO_CG_PIDS) && (fd = cg_fd(lay, n, CG_PIDS)) >= 0 &&
        (!parent || l->pids_max)) {
        if (l->pids_max)
            snprintf(buf, sizeof(buf), "%" PRIu64, l->pids_max);
        else
            snprintf(buf, sizeof(buf), "max");
        if ((r = cg_set(n, fd, "pids.max", buf, cg1_fresh(buf, "max"), err)) < 0)
            return r;
    }
    if (!parent && (lay->flags & ISO_CG_DEVICES) && (fd = cg_fd(lay, n, CG_DEVICES)) >= 0 &&
        (r = cg1_devices(fd, err)) < 0)
        return r;
    return 0;
}

/* Once per host, on the parent (a non-root memory cgroup has the files every container below
 * it will have): which optional memory files this kernel has. */
static void cg1_probe(struct cg_layout *lay, const struct cg_node *parent)
{
    int fd = cg_fd(lay, parent, CG_MEMORY);
    lay->has = 0;
    if (cg_has(fd, "memory.memsw.limit_in_bytes"))
        lay->has |= CG_HAS_MEMSW;
    if (cg_has(fd, "memory.swappiness"))
        lay->has |= CG_HAS_SWAPPINESS;
}

/* Stat slots of a v1 node (struct cg_node stat_fd). */
enum cg1_stat {
    CG1_S_USAGE,
    CG1_S_ACCT_STAT,
    CG1_S_CPU_STAT,
    CG1_S_MEM_USAGE,
    CG1_S_MEM_STAT,
    CG1_S_MEM_PEAK,
    CG1_S_MEM_LIMIT,
    CG1_S_OOM_CONTROL,
    CG1_S_PIDS,
};

static int cg1_stats(const struct cg_layout *lay, struct cg_node *n, struct iso_stats *s)
{
    char buf[8192]; /* memory.stat is ~1.5 KiB on v1; fixed so stats never allocate */
    int fd, ok = 0, first_err = 0;
    uint64_t v;
#define NOTE(r) ((r) >= 0 ? (void) ok++ : (void) (first_err = first_err ? first_err : (int) (r)))

    if ((fd = cg_fd(lay, n, CG_CPUACCT)) >= 0) {
        NOTE(cg_stat_u64(n, CG1_S_USAGE, fd, "cpuacct.usage", &s->cpu_usage_ns));
        if (cg_stat_read(n, CG1_S_ACCT_STAT, fd, "cpuacct.stat", buf, sizeof(buf)) >= 0) {
            static const char *const keys[] = {"user", "system"};
            uint64_t user = 0, sys = 0;
            uint64_t *const rets[] = {&user, &sys};
            cg_keyed_many(buf, keys, rets, 2);
            s->cpu_user_ns = user * n->tick_ns;
            s->cpu_system_ns = sys * n->tick_ns;
        }
    }
    if ((fd = cg_fd(lay, n, CG_CPU)) >= 0 &&
        cg_stat_read(n, CG1_S_CPU_STAT, fd, "cpu.stat", buf, sizeof(buf)) >= 0) {
        static const char *const keys[] = {"nr_periods", "nr_throttled", "throttled_time"};
        uint64_t *const rets[] = {&s->nr_periods, &s->nr_throttled, &s->throttled_ns};
        ok++;
        cg_keyed_many(buf, keys, rets, 3);
    }
    if ((fd = cg_fd(lay, n, CG_MEMORY)) >= 0) {
        NOTE(cg_stat_u64(n, CG1_S_MEM_USAGE, fd, "memory.usage_in_bytes", &s->mem_usage));
        if (cg_stat_read(n, CG1_S_MEM_STAT, fd, "memory.stat", buf, sizeof(buf)) >= 0) {
            /* total_* include descendants (use_hierarchy); plain keys as a fallback. */
            static const char *const keys[] = {"total_inactive_file", "total_rss", "total_cache",
                                               "inactive_file",       "rss",       "cache"};
            uint64_t inactive = 0, inactive_local = 0, rss_local = 0, cache_local = 0;
            uint64_t *const rets[] = {&inactive,       &s->mem_rss, &s->mem_cache,
                                      &inactive_local, &rss_local,  &cache_local};
            unsigned found = cg_keyed_many(buf, keys, rets, 6);
            if (!(found & 1))
                inactive = inactive_local;
            if (!(found & 2))
                s->mem_rss = rss_local;
            if (!(found & 4))
                s->mem_cache = cache_local;
            s->mem_working_set = s->mem_usage > inactive ? s->mem_usage - inactive : 0;
        } else {
            s->mem_working_set = s->mem_usage;
        }
        (void) cg_stat_u64(n, CG1_S_MEM_PEAK, fd, "memory.max_usage_in_bytes", &s->mem_peak);
        if (cg_stat_u64(n, CG1_S_MEM_LIMIT, fd, "memory.limit_in_bytes", &v) == 0)
            s->mem_limit = v >= CG1_UNLIMITED ? 0 : v;
        if (cg_stat_read(n, CG1_S_OOM_CONTROL, fd, "memory.oom_control", buf, sizeof(buf)) >= 0)
            (void) cg_keyed(buf, "oom_kill", &s->oom_kills);
    }
    if ((fd = cg_fd(lay, n, CG_PIDS)) >= 0)
        NOTE(cg_stat_u64(n, CG1_S_PIDS, fd, "pids.current", &s->pids));
#undef NOTE
    return ok || !first_err ? 0 : first_err;
}

static int cg1_oom_open(const struct cg_layout *lay, struct cg_node *n, struct berr **err)
{
    int fd = cg_fd(lay, n, CG_MEMORY);
    _cleanup_close_ int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0)
        return berr_set(err, errno, "eventfd");
    _cleanup_close_ int ofd = openat(fd, "memory.oom_control", O_RDONLY | O_CLOEXEC);
    if (ofd < 0)
        return berr_set(err, errno, "open 'memory.oom_control'");
    /* The kernel signals efd on every OOM in this memcg while ofd stays open. */
    char buf[64];
    snprintf(buf, sizeof(buf), "%d %d", efd, ofd);
    int r = write_file_at(fd, "cgroup.event_control", buf);
    if (r < 0)
        return berr_set(err, -r, "write 'cgroup.event_control' = '%s'", buf);
    n->oom_fd = TAKE_FD(efd);
    n->oom_ctl_fd = TAKE_FD(ofd);
    return 0;
}

static uint64_t cg1_oom_kills(const struct cg_layout *lay, struct cg_node *n)
{
    char buf[512];
    uint64_t v = 0;
    int fd = cg_fd(lay, n, CG_MEMORY);
    /* "oom_kill N" exists since Linux 4.13; older kernels give 0 here. */
    if (fd >= 0 && read_file_at(fd, "memory.oom_control", buf, sizeof(buf)) >= 0)
        (void) cg_keyed(buf, "oom_kill", &v);
    return v;
}

/* Write FROZEN or THAWED and return: the state reads FREEZING until every task reached a
 * freezable point, and nothing here waits for that. */
static int cg1_freeze(const struct cg_layout *lay, struct cg_node *n, bool frozen)
{
    int fd = cg_fd(lay, n, CG_FREEZER);
    if (fd < 0)
        return -EOPNOTSUPP; /* no freezer hierarchy mounted */
    int r = write_file_at(fd, "freezer.state", frozen ? "FROZEN" : "THAWED");
    return r == -ENOENT ? -EOPNOTSUPP : r;
}

/* v1 has no cgroup.kill: one freeze/kill/thaw round over cgroup.procs. */
static int cg1_kill(const struct cg_layout *lay, struct cg_node *n, struct berr **err)
{
    int r = cg_kill_round(lay, n, err);
    return r < 0 ? r : 0;
}

/* The per-thread "tasks" file, not cgroup.procs: cgroup.procs stops listing a process once
 * its last thread has begun to exit, but the kernel counts each thread as populated (and
 * rmdir fails with EBUSY) until that thread passed cgroup_exit(), which is when it leaves
 * "tasks". So false here means iso_cgroup_destroy can succeed. Any hierarchy counts: a
 * failed attach can leave a process in some of them only. */
static bool cg1_populated(const struct cg_layout *lay, struct cg_node *n)
{
    for (size_t i = 0; i < lay->n_hier; i++)
        if (cg_lists_pid(n->fd[i], "tasks"))
            return true;
    return false;
}

static int cg1_clone_fd(const struct cg_layout *lay, const struct cg_node *n)
{
    (void) lay;
    (void) n;
    return -1; /* several hierarchies: the child waits until attached to each */
}

const struct cg_ops cg1_ops = {
        .version = ISO_CG_V1,
        .host_setup = cg1_host_setup,
        .host_remove = cg1_host_remove,
        .probe = cg1_probe,
        .apply = cg1_apply,
        .stats = cg1_stats,
        .oom_open = cg1_oom_open,
        .oom_kills = cg1_oom_kills,
        .kill = cg1_kill,
        .freeze = cg1_freeze,
        .populated = cg1_populated,
        .events_file = NULL, /* nothing tells when a v1 cgroup empties: poll on a timer */
        .clone_fd = cg1_clone_fd,
        .quota_file = "cpu.cfs_quota_us",
        .quota_none = "-1",
};
