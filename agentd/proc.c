/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/proc.c - how a process is recognised across an agent restart, from /proc: its
 * start time (pids get reused), the container id on an executor's command line, the cgroup
 * it lives in. lifecycle.c re-adopts executors with it, orphans.c finds the others. */
#include <fcntl.h>
#include <string.h>

#include "agentd/agent.h"

/* Container ids are 16 lowercase hex digits (lifecycle.c): anything else under the
 * cgroup parent or in work_dir is not ours to remove. */
bool ctr_id_shaped(const char *s)
{
    return strlen(s) == 16 && strspn(s, "0123456789abcdef") == 16;
}

/* Start time of pid: 0, -ESRCH when it is gone or a zombie, or -errno when we cannot
 * tell (EMFILE: then nobody may conclude that it is gone). */
static int proc_start(pid_t pid, uint64_t *ret)
{
    unsigned long long v[23];
    if (pid <= 0)
        return -ESRCH;
    int r = proc_stat_fields(pid, v, 23);
    if (r < 0)
        return r;
    if (r < 4)
        return -EIO;
    if (v[3] == 'Z' || v[3] == 'X')
        return -ESRCH; /* exited; only its parent's wait is missing */
    if (r < 23)
        return -EIO;
    *ret = v[22];
    return 0;
}

uint64_t proc_start_time(pid_t pid)
{
    uint64_t v = 0;
    return proc_start(pid, &v) == 0 ? v : 0;
}

double proc_ticks_to_realtime(uint64_t ticks)
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
int proc_executor_id(struct agent *a, pid_t pid, char id[17])
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
        argv[2][rl] != '/' || !ctr_id_shaped(argv[2] + rl + 1))
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

int proc_is_executor(struct agent *a, const struct container *c, int pidfd)
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
        r = proc_executor_id(a, c->pid, id);
        if (r <= 0)
            return r;
        if (!streq(id, c->id))
            return 0;
    }
    /* the agent's supervisor cgroup (issue #18), or, for executors an older agent started,
     * the container's own */
    int r2 = in_cgroup_of(c->pid, AGENT_SUPERVISOR_CGROUP);
    return r2 != 0 ? r2 : in_cgroup_of(c->pid, c->id);
}
