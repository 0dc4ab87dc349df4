/* agentd/orphans.c - what no container record owns, found and removed at start: executors
 * running from our work_dir, cgroups under the cgroup parent, mounts in our namespace below
 * work_dir, sandbox and runtime dirs; and how a process is recognised as one of our
 * executors across a restart (its start time, its command line, its cgroup). recover.c
 * decides when to sweep; lifecycle.c records what the sweep compares against. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "agentd/agent.h"

/* Container ids are 16 lowercase hex digits (lifecycle.c): anything else under the
 * cgroup parent or in work_dir is not ours to remove. */
static bool id_shaped(const char *s)
{
    return strlen(s) == 16 && strspn(s, "0123456789abcdef") == 16;
}

/* Start time of pid: 0, -ESRCH when it is gone or a zombie, or -errno when we cannot
 * tell (EMFILE: then nobody may conclude that it is gone). */
static int proc_start(pid_t pid, uint64_t *ret)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
    if (pid <= 0)
        return -ESRCH;
    ssize_t n = read_file_at(AT_FDCWD, path, buf, sizeof(buf));
    if (n == -ENOENT || n == -ESRCH)
        return -ESRCH;
    if (n < 0)
        return (int) n;
    /* "pid (comm) S ppid ..." - comm may hold spaces and ')': fields count from the last ')' */
    const char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return -EIO;
    p += 2;
    if (*p == 'Z' || *p == 'X')
        return -ESRCH; /* exited; only its parent's wait is missing */
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    if (!p)
        return -EIO;
    _cleanup_free_ char *num = xstrndup(p, strcspn(p, " "));
    return parse_u64(num, ret) == 0 ? 0 : -EIO;
}

uint64_t agent_proc_start(pid_t pid)
{
    uint64_t v = 0;
    return proc_start(pid, &v) == 0 ? v : 0;
}

double agent_ticks_to_realtime(uint64_t ticks)
{
    /* btime follows the per-CPU and intr lines: far beyond a fixed buffer on big hosts */
    _cleanup_free_ char *buf = NULL;
    const char *p;
    unsigned long long btime = 0;
    long hz = sysconf(_SC_CLK_TCK);
    if (read_file_alloc("/proc/stat", 16 << 20, &buf, NULL) < 0 || !(p = strstr(buf, "btime ")))
        return now_realtime();
    sscanf(p, "btime %llu", &btime);
    return (double) btime + (double) ticks / (double) (hz > 0 ? hz : 100);
}

/* The container id in an executor's command line: `berth-executor --runtime-dir
 * RUNTIME_ROOT/ID ...` (exec helpers add --exec-pid; both are ours). 1 and id set, 0 when
 * pid is something else or gone, -errno when we cannot tell. */
static int executor_id(struct agent *a, pid_t pid, char id[17])
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) pid);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ESRCH ? 0 : -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n < 0)
        return errno == ESRCH ? 0 : -errno;
    if (n == 0)
        return 0;
    buf[n] = 0;
    const char *argv[3] = {buf, NULL, NULL};
    for (int i = 1; i < 3; i++) {
        size_t l = strlen(argv[i - 1]);
        if (argv[i - 1] + l + 1 >= buf + n)
            return 0;
        argv[i] = argv[i - 1] + l + 1;
    }
    size_t rl = strlen(a->runtime_root);
    if (!streq(argv[1], "--runtime-dir") || strncmp(argv[2], a->runtime_root, rl) != 0 ||
        argv[2][rl] != '/' || !id_shaped(argv[2] + rl + 1))
        return 0;
    snprintf(id, 17, "%s", argv[2] + rl + 1);
    return 1;
}

/* 1 when one of pid's cgroups (any hierarchy) is the container's (".../<id>"), 0 when none
 * is or pid is gone, -errno when we cannot tell. */
static int in_cgroup_of(pid_t pid, const char *id)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int) pid);
    _cleanup_free_ char *text = NULL;
    int r = read_file_alloc(path, 65536, &text, NULL);
    if (r == -ENOENT || r == -ESRCH)
        return 0;
    if (r < 0)
        return r;
    size_t il = strlen(id);
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        size_t l = strlen(line);
        if (l > il && line[l - il - 1] == '/' && streq(line + l - il, id))
            return 1;
    }
    return 0;
}

int agent_is_executor(struct agent *a, const struct container *c, int pidfd)
{
    /* The caller opened pidfd first: if the checks below pass, the process they saw had the
     * executor's start time, so it had the pid since before pidfd_open and pidfd is it. */
    if (pidfd < 0 || c->pid <= 0)
        return 0;
    uint64_t start = 0;
    int r = proc_start(c->pid, &start);
    if (r == -ESRCH)
        return 0;
    if (r < 0)
        return r;
    if (c->pid_start) {
        if (start != c->pid_start)
            return 0;
    } else {
        /* a record of an agent that did not store start times: the command line must name
         * this container's runtime dir */
        char id[17];
        r = executor_id(a, c->pid, id);
        if (r <= 0)
            return r;
        if (!streq(id, c->id))
            return 0;
    }
    return in_cgroup_of(c->pid, c->id);
}

static bool live_id(struct agent *a, const char *id)
{
    struct container *c = agent_find_id(a, id);
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
        if (executor_id(a, pid, id) <= 0 || live_id(a, id))
            continue;
        n++;
        if (dry_run)
            continue;
        _cleanup_close_ int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        char again[17];
        if (pidfd < 0 || executor_id(a, pid, again) <= 0 || !streq(again, id))
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
    snprintf(s->v[s->n++], 17, "%s", id);
}

static void collect_cgroups(const char *ctrl, const char *path, void *arg)
{
    (void) ctrl;
    struct names *s = arg;
    _cleanup_closedir_ DIR *d = opendir(path);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (de->d_type == DT_DIR && id_shaped(de->d_name))
            names_add(s, de->d_name);
}

/* Kill and remove every container cgroup under the parent that no live container holds
 * (terminal containers have released theirs: one left is the rest of a crash). */
static unsigned sweep_cgroups(struct agent *a, bool dry_run)
{
    struct names s = {0};
    iso_host_foreach_path(a->host, collect_cgroups, &s);
    unsigned n = 0;
    for (size_t i = 0; i < s.n; i++) {
        struct container *c = agent_find_id(a, s.v[i]);
        if (c && c->cg)
            continue;
        n++;
        if (dry_run)
            continue;
        _cleanup_berr_ struct berr *err = NULL;
        struct iso_cgroup *cg = NULL;
        if (iso_cgroup_open(a->host, s.v[i], &cg, &err) < 0) {
            log_warning("orphan cgroup '%s': %s", s.v[i], berr_msg(err));
            continue;
        }
        /* before the loop runs: blocking is fine here */
        if (iso_cgroup_kill_wait(cg, 2000, &err) < 0 || iso_cgroup_destroy(cg, &err) < 0)
            log_warning("orphan cgroup '%s': %s", s.v[i], berr_msg(err));
        else
            log_info("removed orphan cgroup '%s'", s.v[i]);
        iso_cgroup_free(cg);
    }
    free(s.v);
    return n;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char) ((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
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
        unescape_octal(f);
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
        if (!id_shaped(de->d_name) || agent_find_id(a, de->d_name))
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
    ret->cgroups = sweep_cgroups(a, dry_run);
    ret->mounts = sweep_mounts(a, dry_run);
    ret->dirs = sweep_dirs(a, a->runtime_root, dry_run) + sweep_dirs(a, a->sandboxes_dir, dry_run);
}
