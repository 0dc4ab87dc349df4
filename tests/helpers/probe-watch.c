/* SPDX-License-Identifier: Apache-2.0 */
/* tests/helpers/probe-watch.c - the probe's modes that watch other processes rather than
 * test the sandbox they run in: ptraceexec (review H1, a task catching exec helpers before
 * their seccomp filter) and chargefloor (make bench: the least CPU a task's cgroup is charged
 * for a fork, join, exec and exit). Built into the same static binary as probe.c. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/helpers/probe.h"

/* ptraceexec SECONDS [STOPFILE]: attach to every new process of the sandbox (`berthctl exec`
 * helpers) the moment it shows in /proc, and count those that run without a seccomp filter
 * yet: what a root task could turn into an unfiltered syscall (review H1). Ends after
 * SECONDS, or once STOPFILE exists. */
int cmd_ptraceexec(int n, char **a)
{
    if (n < 1)
        return 2;
    time_t end = time(NULL) + (time_t) num(a[0]);
    static char seen[1 << 16];
    unsigned attached = 0, unfiltered = 0, found = 0;
    pid_t self = getpid();
    while (time(NULL) < end && (n < 2 || access(a[1], F_OK) != 0)) {
        DIR *d = opendir("/proc");
        if (!d)
            return 1;
        for (struct dirent *de; (de = readdir(d));) {
            long pid = strtol(de->d_name, NULL, 10);
            if (pid <= 1 || pid == self || pid >= (long) sizeof(seen) || seen[pid] == 2)
                continue;
            if (!seen[pid]) {
                seen[pid] = 1;
                found++;
            }
            /* refused while it still has capabilities we lack: try again next round */
            if (syscall(SYS_ptrace, 0x4206 /* PTRACE_SEIZE */, pid, 0, 0) < 0)
                continue;
            seen[pid] = 2;
            attached++;
            syscall(SYS_ptrace, 0x4207 /* PTRACE_INTERRUPT */, pid, 0, 0);
            /* DETACH needs the tracee in its stop: wait for it, or it stays stopped */
            int wst;
            waitpid((pid_t) pid, &wst, __WALL);
            char path[64], buf[4096];
            snprintf(path, sizeof(path), "/proc/%ld/status", pid);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            ssize_t r = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
            if (fd >= 0)
                close(fd);
            buf[r > 0 ? r : 0] = 0;
            const char *sc = strstr(buf, "Seccomp:");
            if (sc && atoi(sc + 8) == 0)
                unfiltered++;
            syscall(SYS_ptrace, 17 /* PTRACE_DETACH */, pid, 0, 0);
        }
        closedir(d);
    }
    printf("found=%u\nattached=%u\nunfiltered=%u\n", found, attached, unfiltered);
    return 0;
}

/* `probe chargefloor N CGROUP_CPU_USAGE_FILE JOIN_FILE...` (make bench, not a task): N
 * times fork a child that writes "0" to each JOIN_FILE (the cgroups' tasks or cgroup.procs)
 * and execs `probe exit 0`; print the median CPU the cgroup was charged (the usage file
 * read after each child, cpuacct.usage in ns or cpu.stat's usage_usec). The least any
 * runtime's task pays for its exec and exit: the floor of what berth charges a task. */
static uint64_t num_prefix(const char *s)
{
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (uint64_t) (*s++ - '0');
    return v;
}

static uint64_t usage_ns(const char *file)
{
    char buf[4096] = "";
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, buf, sizeof(buf) - 1) < 0) {
        perror(file);
        exit(1);
    }
    close(fd);
    const char *u = strstr(buf, "usage_usec ");
    return u ? num_prefix(u + 11) * 1000 : num_prefix(buf);
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *) x, b = *(const uint64_t *) y;
    return a < b ? -1 : a > b;
}

int cmd_chargefloor(int n, char **a)
{
    if (n < 3)
        return 2;
    unsigned runs = (unsigned) num(a[0]);
    if (runs == 0 || runs > 10000)
        return 2;
    static uint64_t d[10000];
    for (unsigned i = 0; i < runs; i++) {
        uint64_t before = usage_ns(a[1]);
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0) {
            for (int k = 2; k < n; k++) {
                int fd = open(a[k], O_WRONLY | O_CLOEXEC);
                if (fd < 0 || write(fd, "0", 1) != 1)
                    _exit(126);
                close(fd);
            }
            execl("/proc/self/exe", "probe", "exit", "0", (char *) NULL);
            _exit(127);
        }
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return 1;
        d[i] = usage_ns(a[1]) - before;
    }
    qsort(d, runs, sizeof(*d), cmp_u64);
    printf("charged_ns=%llu\n", (unsigned long long) d[runs / 2]);
    return 0;
}
