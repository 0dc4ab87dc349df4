/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/cgroup.c - one container's cgroups (iso_cgroup_*): create or reopen them under the
 * parent cgroup-host.c made, attach, kill-until-empty (the one function that sleeps), rmdir;
 * what differs (limits, stats, OOM, kill, populated) goes to struct cg_ops in cgroup-v1.c /
 * cgroup-v2.c. Helpers: cgroup-util.c. All I/O is openat on the nodes' O_DIRECTORY fds. */
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>

#include "isolator/cgroup-internal.h"
#include "isolator/isolator.h"

struct iso_cgroup {
    struct cg_layout lay; /* a copy: the container never points into the host */
    char *name;
    /* No fd on the parent: rmdir goes through the node's "..", so a container costs one fd
     * per hierarchy, not two (an agent with 1000 containers stays under 20000 fds). */
    struct cg_node node;
};

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

int iso_cgroup_unthrottle(struct iso_cgroup *cg, struct berr **err)
{
    int fd = cg_fd(&cg->lay, &cg->node, CG_CPU);
    if (fd < 0)
        return 0; /* no cpu controller: no quota */
    int r = write_file_at(fd, cg->lay.ops->quota_file, cg->lay.ops->quota_none);
    if (r < 0)
        return berr_set(err, -r, "write '%s' = '%s'", cg->lay.ops->quota_file,
                        cg->lay.ops->quota_none);
    return 0;
}

char **iso_host_join_files(const struct iso_host *h, const char *name)
{
    const char *file = h->lay.ops->version == ISO_CG_V2 ? "cgroup.procs" : "tasks";
    char **v = xcalloc(h->lay.n_hier + 1, sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; i < h->lay.n_hier; i++)
        if (h->parent.fd[i] >= 0 && h->parent.path[i])
            v[n++] = xasprintf("%s/%s/%s", h->parent.path[i], name, file);
    return v;
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

bool iso_cgroup_populated(struct iso_cgroup *cg)
{
    return cg->lay.ops->populated(&cg->lay, &cg->node);
}

struct pid_list {
    pid_t *v;
    size_t n, cap;
};

static int add_pid(pid_t pid, void *arg)
{
    struct pid_list *l = arg;
    if (l->n == l->cap)
        l->v = xrealloc(l->v, (l->cap = l->cap ? 2 * l->cap : 16) * sizeof(*l->v));
    l->v[l->n++] = pid;
    return 0;
}

int iso_cgroup_pids(struct iso_cgroup *cg, pid_t **ret, size_t *ret_n)
{
    /* every hierarchy holds the same processes: the first one open is enough */
    struct pid_list l = {0};
    for (int i = 0; i < CG_MAX_HIER; i++) {
        if (cg->node.fd[i] < 0)
            continue;
        int r = cg_foreach_pid(cg->node.fd[i], "cgroup.procs", add_pid, &l);
        if (r < 0) {
            free(l.v);
            return r;
        }
        break;
    }
    *ret = l.v;
    *ret_n = l.n;
    return 0;
}

int iso_cgroup_kill(struct iso_cgroup *cg, struct berr **err)
{
    return cg->lay.ops->kill(&cg->lay, &cg->node, err);
}

char *iso_cgroup_events_path(const struct iso_cgroup *cg)
{
    const char *file = cg->lay.ops->events_file;
    if (!file || !cg->node.path[0])
        return NULL;
    return xasprintf("%s/%s", cg->node.path[0], file);
}

/* The one function of isolator/ that sleeps, for callers that may block (the agent's
 * start-up, before its loop runs). Rounds of look-and-kill until the cgroup is empty, as
 * systemd's cg_kill_items re-reads cgroup.procs after each pass (a process may fork between
 * our read and its SIGKILL). Between rounds it waits:
 *  - v2: poll(POLLPRI) on cgroup.events, which kernfs signals on every change of the file
 *    (kernfs_notify; our pread re-arms it), so it wakes when the last task is gone rather
 *    than on a timer; each wait is capped at 100 ms for a change we would not see (a
 *    fake tree's plain file never signals POLLPRI; a v2 kernel without cgroup.kill may
 *    miss a fork between freeze and kill, which no event reports);
 *  - v1: no file says when a cgroup empties: 1 ms for the first 20 rounds, then 10 ms.
 * No round waits for FROZEN: the next round catches what a FREEZING cgroup forked. */
int iso_cgroup_kill_wait(struct iso_cgroup *cg, unsigned timeout_ms, struct berr **err)
{
    const struct cg_ops *ops = cg->lay.ops;
    uint64_t deadline = now_monotonic_ns() + (uint64_t) timeout_ms * 1000000u;
    _cleanup_close_ int efd = -1;
    if (ops->events_file && cg->node.fd[0] >= 0)
        efd = openat(cg->node.fd[0], ops->events_file, O_RDONLY | O_CLOEXEC);
    for (unsigned round = 0;; round++) {
        int populated = efd >= 0 ? cg_events_populated(efd) : -1;
        if (populated < 0)
            populated = ops->populated(&cg->lay, &cg->node);
        if (!populated)
            return 0;
        uint64_t now = now_monotonic_ns();
        if (round > 0 && now >= deadline)
            break;
        int r = ops->kill(&cg->lay, &cg->node, err);
        if (r < 0)
            return r;
        uint64_t left_ms = deadline > now ? (deadline - now + 999999) / 1000000 : 0;
        uint64_t cap = efd >= 0 ? 100 : round < 20 ? 1 : 10;
        int wait_ms = (int) (left_ms < cap ? left_ms : cap);
        struct pollfd pfd = {.fd = efd, .events = POLLPRI};
        if (poll(&pfd, efd >= 0 ? 1 : 0, wait_ms) < 0 && errno != EINTR)
            return berr_set(err, errno, "wait for '%s'", ops->events_file);
    }
    return berr_setx(err, EBUSY, "processes remain in the cgroup %u ms after SIGKILL", timeout_ms);
}

int iso_cgroup_destroy(struct iso_cgroup *cg, struct berr **err)
{
    /* One rmdir per hierarchy and no retry: a cgroup whose last task is still exiting (not
     * yet past the kernel's cgroup_exit) is EBUSY for a moment, and the caller, not a sleep
     * here, decides when to try again. A hierarchy already removed is ENOENT: done. */
    int ret = 0, busy = -1;
    for (size_t i = 0; i < cg->lay.n_hier; i++) {
        if (cg->node.fd[i] < 0)
            continue; /* never existed in this hierarchy */
        _cleanup_close_ int pfd = openat(cg->node.fd[i], "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int r = pfd < 0 ? -errno : unlinkat(pfd, cg->name, AT_REMOVEDIR) < 0 ? -errno : 0;
        if (r == -ENOENT)
            continue;
        if (r == -EBUSY && busy < 0)
            busy = (int) i;
        else if (r < 0 && r != -EBUSY && ret == 0)
            ret = berr_set(err, -r, "rmdir '%s'", cg->node.path[i]);
    }
    if (ret == 0 && busy >= 0) /* any other failure wins: retrying would not cure it */
        ret = berr_set(err, EBUSY, "rmdir '%s'", cg->node.path[busy]);
    return ret;
}

void iso_cgroup_foreach_path(const struct iso_cgroup *cg,
                             void (*fn)(const char *ctrl, const char *path, void *arg), void *arg)
{
    cg_foreach_path(&cg->lay, &cg->node, fn, arg);
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
