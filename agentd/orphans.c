/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/orphans.c - what no container record owns, found and removed at start: executors
 * running from our work_dir, cgroups under the cgroup parent, mounts in our namespace below
 * work_dir, sandbox and runtime dirs, veths and NAT mappings (net.c). It runs before the loop, so
 * it may wait (a killed executor's end, a cgroup's emptying). proc.c recognises our executors;
 * recover.c decides when to sweep; lifecycle.c records what the sweep compares against. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "agentd/agent.h"

static bool live_id(struct agent *a, const char *id)
{
    struct container *c = ctr_find_id(a, id);
    return c && !ml_state_terminal(c->state);
}

/* SIGKILL every executor (and exec helper) of a container that is not live. Killing the
 * executor, pid 1 of the sandbox's pid namespace, makes the kernel kill the whole
 * namespace. The cmdline is checked again through a pidfd so a reused pid is never hit. */
static unsigned sweep_executors(struct agent *a, bool dry_run)
{
    _cleanup_closedir_ DIR *d = opendir("/proc");
    unsigned n = 0;
    struct dirent *de;
    pid_t self = getpid();
    while (d && (de = readdir(d))) {
        uint64_t v;
        char id[17];
        if (parse_u64(de->d_name, &v) < 0 || (pid_t) v == self)
            continue;
        pid_t pid = (pid_t) v;
        if (proc_executor_id(a, pid, id) <= 0 || live_id(a, id))
            continue;
        n++;
        if (dry_run)
            continue;
        _cleanup_close_ int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        char again[17];
        if (pidfd < 0 || proc_executor_id(a, pid, again) <= 0 || !streq(again, id))
            continue;
        if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH) {
            log_warning("orphan executor pid %d of '%s': kill: %s", (int) pid, id, strerror(errno));
            continue;
        }
        /* wait (bounded) until it is gone, so that nothing of it is left once we serve; a
         * pidfd polls readable when the process has exited */
        struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
        while (poll(&pfd, 1, 1000) < 0 && errno == EINTR)
            ;
        log_info("killed orphan executor pid %d of container '%s'", (int) pid, id);
    }
    return n;
}

struct names {
    char (*v)[17];
    size_t n;
};

static void names_add(struct names *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (streq(s->v[i], id))
            return;
    s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
    snprintf(s->v[s->n++], 17, "%.16s", id);
}

static void collect_cgroups(const char *ctrl, const char *path, void *arg)
{
    (void) ctrl;
    struct names *s = arg;
    _cleanup_closedir_ DIR *d = opendir(path);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (de->d_type == DT_DIR && ctr_id_shaped(de->d_name))
            names_add(s, de->d_name);
}

/* Kill and remove every container cgroup under the parent that no live container holds
 * (terminal containers have released theirs: one left is the rest of a crash). Counts them,
 * and in *ret_busy those that hold a process (or could not be opened to tell). */
static unsigned sweep_cgroups(struct agent *a, bool dry_run, unsigned *ret_busy)
{
    struct names s = {0};
    iso_host_foreach_path(a->host, collect_cgroups, &s);
    unsigned n = 0;
    *ret_busy = 0;
    for (size_t i = 0; i < s.n; i++) {
        struct container *c = ctr_find_id(a, s.v[i]);
        if (c && c->cg)
            continue;
        n++;
        _cleanup_berr_ struct berr *err = NULL;
        struct iso_cgroup *cg = NULL;
        if (iso_cgroup_open(a->host, s.v[i], &cg, &err) < 0) {
            (*ret_busy)++; /* cannot tell: count it as holding a process */
            if (!dry_run)
                log_warning("orphan cgroup '%s': %s", s.v[i], berr_msg(err));
            continue;
        }
        if (iso_cgroup_populated(cg))
            (*ret_busy)++;
        if (dry_run) {
            iso_cgroup_free(cg);
            continue;
        }
        if (iso_cgroup_kill_wait(cg, 2000, &err) < 0 || iso_cgroup_destroy(cg, &err) < 0)
            log_warning("orphan cgroup '%s': %s", s.v[i], berr_msg(err));
        else
            log_info("removed orphan cgroup '%s'", s.v[i]);
        iso_cgroup_free(cg);
    }
    free(s.v);
    return n;
}

static bool below(const char *path, const char *dir)
{
    size_t l = strlen(dir);
    return strncmp(path, dir, l) == 0 && path[l] == '/';
}

/* berth never mounts in the agent's namespace: the executor builds the sandbox in its own
 * mount namespace with "/" private. So any mount below the sandboxes or runtime dirs here is
 * a leftover (of a tool, of a crashed older agent) that would also keep rm_rf from removing
 * the dir: detach them, deepest first (mountinfo lists parents before children). */
static unsigned sweep_mounts(struct agent *a, bool dry_run)
{
    _cleanup_free_ char *text = NULL;
    if (read_file_alloc("/proc/self/mountinfo", 4 << 20, &text, NULL) < 0)
        return 0;
    char **points = NULL;
    size_t np = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        /* id parent major:minor root mount_point ... */
        char *f = line;
        for (int i = 0; i < 4 && f; i++) {
            f = strchr(f, ' ');
            if (f)
                f++;
        }
        if (!f)
            continue;
        f[strcspn(f, " ")] = 0;
        iso_mountinfo_unescape(f);
        if (below(f, a->sandboxes_dir) || below(f, a->runtime_root)) {
            points = xrealloc(points, (np + 1) * sizeof(*points));
            points[np++] = f;
        }
    }
    for (size_t i = np; i-- > 0;) {
        if (dry_run)
            continue;
        if (umount2(points[i], MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
            log_warning("orphan mount '%s': umount: %s", points[i], strerror(errno));
        else
            log_info("detached orphan mount '%s'", points[i]);
    }
    free(points);
    return (unsigned) np;
}

/* Sandbox and runtime dirs whose container has no record (an unfinished launch, a crash
 * halfway through DELETE or GC). */
static unsigned sweep_dirs(struct agent *a, const char *root, bool dry_run)
{
    _cleanup_closedir_ DIR *d = opendir(root);
    unsigned n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (!ctr_id_shaped(de->d_name) || ctr_find_id(a, de->d_name))
            continue;
        n++;
        if (dry_run)
            continue;
        _cleanup_free_ char *path = xasprintf("%s/%s", root, de->d_name);
        int r = rm_rf(path);
        if (r < 0)
            log_warning("orphan dir '%s': remove: %s", path, strerror(-r));
        else
            log_info("removed orphan dir '%s'", path);
    }
    return n;
}

void orphans_sweep(struct agent *a, bool dry_run, struct orphan_counts *ret)
{
    /* executors first (their sandboxes die with them), then what held them */
    ret->executors = sweep_executors(a, dry_run);
    ret->cgroups = sweep_cgroups(a, dry_run, &ret->busy_cgroups);
    ret->mounts = sweep_mounts(a, dry_run);
    ret->dirs = sweep_dirs(a, a->runtime_root, dry_run) + sweep_dirs(a, a->sandboxes_dir, dry_run);
    /* veths no live container owns, the NAT table rebuilt from the records (net.c) */
    net_sweep(a, dry_run, &ret->links, &ret->rules);
}
