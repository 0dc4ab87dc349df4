/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/cgroup-util.c - helpers all cgroup*.c share: openat reads and writes on a node's
 * dir fds (bounded, "max"-aware, recorded for inspect), keyed files, pid lists, one
 * freeze/kill/thaw round, a node's fds. No policy: cgroup-host.c finds the hierarchies,
 * cgroup.c dispatches to cgroup-v1.c / cgroup-v2.c, which hold what differs. */
#include <fcntl.h>
#include <signal.h>
#include <string.h>

#include "isolator/cgroup-internal.h"

static const char *const cg_ctrl_names[_CG_CTRL_MAX] = {
        [CG_CPU] = "cpu",   [CG_CPUACCT] = "cpuacct", [CG_MEMORY] = "memory",
        [CG_PIDS] = "pids", [CG_DEVICES] = "devices", [CG_FREEZER] = "freezer",
};

const char *cg_ctrl_name(enum cg_ctrl c)
{
    return c < _CG_CTRL_MAX ? cg_ctrl_names[c] : NULL;
}

/* ---- shared helpers ---------------------------------------------------------------------- */

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

/* Write, then read back through a second open: for a file we may write but not read. */
static int cg_write_apart(struct cg_node *n, int dirfd, const char *file, const char *value)
{
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

int cg_write_quiet(struct cg_node *n, int dirfd, const char *file, const char *value)
{
    return cg_set(n, dirfd, file, value, CG_SET_QUIET, NULL);
}

int cg_write(struct cg_node *n, int dirfd, const char *file, const char *value, struct berr **err)
{
    return cg_set(n, dirfd, file, value, 0, err);
}

/* pread of a one-value file at offset 0, NUL-terminated at its first newline. */
static ssize_t cg_pread_value(int fd, char *buf, size_t len)
{
    ssize_t r;
    while ((r = pread(fd, buf, len - 1, 0)) < 0 && errno == EINTR)
        ;
    if (r < 0)
        return -errno;
    buf[r] = 0;
    buf[strcspn(buf, "\n")] = 0;
    return r;
}

/* CG_SET_IF_DIFFERENT: 1 (and recorded) when dirfd/file already holds value; 0 when it holds
 * something else or cannot be read, and the caller writes as usual (which then reports any
 * error of the file, as without the flag). */
static int cg_holds(struct cg_node *n, int dirfd, const char *file, const char *value)
{
    char buf[sizeof(n->values[0].value)];
    _cleanup_close_ int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 || cg_pread_value(fd, buf, sizeof(buf)) < 0 || !streq(buf, value))
        return 0;
    cg_record(n, file, buf);
    log_debug("cgroup: '%s' holds '%s' already", file, value);
    return 1;
}

static int cg_set_fail(int r, const char *file, const char *value, unsigned flags,
                       struct berr **err)
{
    if (flags & CG_SET_QUIET)
        return r;
    return berr_set(err, -r, "write '%s' = '%s'", file, value);
}

int cg_set(struct cg_node *n, int dirfd, const char *file, const char *value, unsigned flags,
           struct berr **err)
{
    if (dirfd < 0)
        return cg_set_fail(-EBADF, file, value, flags, err);
    if ((flags & CG_SET_IF_DIFFERENT) && cg_holds(n, dirfd, file, value))
        return 0;
    /* O_TRUNC as write_file_at: nothing to cgroupfs, but a fake tree's regular file must not
     * keep the tail of a longer old value */
    _cleanup_close_ int fd = openat(dirfd, file, O_RDWR | O_TRUNC | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 && (errno == EACCES || errno == EPERM)) {
        /* writable but not readable for us: write and read back apart */
        int r = cg_write_apart(n, dirfd, file, value);
        if (r < 0)
            return cg_set_fail(r, file, value, flags, err);
        log_debug("cgroup: wrote '%s' = '%s'", file, value);
        return 0;
    }
    if (fd < 0)
        return cg_set_fail(-errno, file, value, flags, err);
    size_t len = strlen(value);
    ssize_t w = write(fd, value, len); /* cgroupfs parses each write() on its own */
    if (w < 0 || (size_t) w != len)
        return cg_set_fail(w < 0 ? -errno : -EIO, file, value, flags, err);
    /* Read back what the kernel kept (memory limits are rounded to pages); the value written
     * if that fails, as cg_write_quiet. */
    char buf[sizeof(n->values[0].value)];
    if (cg_pread_value(fd, buf, sizeof(buf)) < 0)
        snprintf(buf, sizeof(buf), "%s", value);
    cg_record(n, file, buf);
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

int cg_foreach_pid(int dirfd, const char *file, int (*fn)(pid_t pid, void *arg), void *arg)
{
    _cleanup_close_ int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
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

static int cg_stop(pid_t pid, void *arg)
{
    (void) pid;
    (void) arg;
    return -ECANCELED; /* one is enough */
}

bool cg_lists_pid(int dirfd, const char *file)
{
    return dirfd >= 0 && cg_foreach_pid(dirfd, file, cg_stop, NULL) == -ECANCELED;
}

int cg_events_populated(int fd)
{
    char buf[256];
    /* cgroupfs regenerates the text on a read at offset 0; the read also re-arms POLLPRI */
    ssize_t len = pread(fd, buf, sizeof(buf) - 1, 0);
    if (len < 0)
        return -errno;
    buf[len] = 0;
    uint64_t v;
    int r = cg_keyed(buf, "populated", &v);
    return r < 0 ? r : v != 0;
}

int cg_kill_round(const struct cg_layout *lay, struct cg_node *n, struct berr **err)
{
    /* The usual case at a task's end: pid 1 of the sandbox is gone and the kernel has
     * already killed the rest. Then one read of each cgroup.procs is all it costs, and the
     * freezer is left alone. */
    bool present = false;
    for (size_t i = 0; i < lay->n_hier && !present; i++)
        present = cg_lists_pid(n->fd[i], "cgroup.procs");
    if (!present)
        return 0;
    /* Freezing stops forks between our read of cgroup.procs and the SIGKILLs. We do not wait
     * for FROZEN (it can take as long as a task takes to reach a freezable point, and the
     * caller may be the event loop): a task still FREEZING takes its SIGKILL when thawed, and
     * one that forked in the meantime keeps the cgroup populated, so the caller's next
     * round finds it. A failed freeze still leaves kill-and-retry. */
    int f = lay->ops->freeze(lay, n, true);
    int seen = 0, r = 0;
    for (size_t i = 0; i < lay->n_hier; i++) {
        /* every hierarchy, even after one failed: a process may sit in some of them only */
        int k = n->fd[i] < 0 ? 0 : cg_foreach_pid(n->fd[i], "cgroup.procs", cg_kill_one, &seen);
        if (k < 0 && k != -ENOENT && r == 0)
            r = k;
    }
    /* always thaw: a frozen v1 task cannot die, and a cgroup left frozen hangs its tasks */
    int t = f == -EOPNOTSUPP ? 0 : lay->ops->freeze(lay, n, false);
    if (r < 0)
        return berr_set(err, -r, "kill processes");
    if (t < 0)
        return berr_set(err, -t, "thaw");
    return seen;
}

/* ---- nodes -------------------------------------------------------------------------------- */

void cg_node_init(struct cg_node *n)
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

void cg_node_done(struct cg_node *n)
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

/* v1: one call per controller (a joint hierarchy is named once per controller, so API
 * clients can look up "cpu" and "cpuacct" alike); v2: one call, "unified". */
void cg_foreach_path(const struct cg_layout *lay, const struct cg_node *n,
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
