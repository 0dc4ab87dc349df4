/* isolator/cgroup.c - one container's cgroups (iso_cgroup_*): create or reopen them under the
 * parent cgroup-host.c made, attach, rmdir, and dispatch what differs (limits, stats, OOM,
 * kill) to struct cg_ops in cgroup-v1.c / cgroup-v2.c. Helpers: cgroup-util.c. All I/O is
 * openat on O_DIRECTORY fds, so unit tests can point the host's root at a temp dir. */
#include <fcntl.h>
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
