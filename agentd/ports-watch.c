/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/ports-watch.c - [agent] enforce_ports (docs/design/network.md), Mesos's
 * network/ports isolator: a task on the host's network may listen only on the ports it was
 * given. Every enforce_ports_interval, one NETLINK_SOCK_DIAG dump (isolator/net-diag.c)
 * lists the TCP sockets listening in the agent's namespace with their inodes; the fds of
 * each host-network task's processes (its cgroup's) are matched against them, and a task
 * holding one on a port not its own is killed (lifecycle.c ctr_limit: KILLED,
 * PORTS_LIMITATION). Tasks in their own namespaces (bridge, none) cannot bind the host's
 * ports at all. A timer, not an event: the kernel tells nobody when a socket starts to
 * listen. Cost per pass: the dump, and one readlink per fd of the host-network tasks. */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "agentd/agent.h"

int ctr_limit(struct agent *a, struct container *c, enum ml_reason reason, const char *message)
{
    if (ml_state_terminal(c->state) || c->limitation)
        return 0;
    /* the reason and message go into the kill's record (ctr_kill: recorded first, the
     * SIGKILL once committed): after a restart the end is still this reason's */
    c->limitation = reason;
    free(c->message);
    c->message = xstrdup(message);
    log_info("container '%s' (%s): killed: %s", c->id, c->spec.name, message);
    _cleanup_berr_ struct berr *err = NULL;
    if (ctr_kill(a, c, SIGKILL, 0, &err) < 0)
        return log_errno(LOG_WARNING, -berr_errno(err), "container '%s': kill: %s", c->id,
                         berr_msg(err));
    return 0;
}

static int by_inode(const void *x, const void *y)
{
    const struct iso_listen *a = x, *b = y;
    return (a->inode > b->inode) - (a->inode < b->inode);
}

static bool has_port(const struct container *c, unsigned port)
{
    for (size_t i = 0; i < c->spec.n_ports; i++)
        if (c->spec.ports[i].host_port == port)
            return true;
    return false;
}

/* The first listening socket among pid's fds that is on a port c was not given: its port,
 * else 0. */
static unsigned foreign_port(const struct container *c, pid_t pid, const struct iso_listen *ls,
                             size_t n)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int) pid);
    _cleanup_closedir_ DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char link[64];
        ssize_t k = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
        unsigned long long inode;
        if (k <= 0)
            continue;
        link[k] = 0;
        if (sscanf(link, "socket:[%llu]", &inode) != 1)
            continue;
        struct iso_listen key = {.inode = inode};
        const struct iso_listen *hit = bsearch(&key, ls, n, sizeof(*ls), by_inode);
        if (hit && !has_port(c, hit->port))
            return hit->port;
    }
    return 0;
}

static void check(struct agent *a, struct container *c, const struct iso_listen *ls, size_t n)
{
    pid_t *pids = NULL;
    size_t np = 0;
    if (!c->cg || iso_cgroup_pids(c->cg, &pids, &np) < 0)
        return;
    for (size_t i = 0; i < np; i++) {
        unsigned port = foreign_port(c, pids[i], ls, n);
        if (!port)
            continue;
        uint64_t used[1024] = {0};
        for (size_t k = 0; k < c->spec.n_ports; k++)
            used[c->spec.ports[k].host_port / 64] |= UINT64_C(1)
                                                     << (c->spec.ports[k].host_port % 64);
        _cleanup_free_ char *mine = ports_ranges_text(used);
        char msg[256];
        snprintf(msg, sizeof(msg), "listened on TCP port %u, which is not among its ports %s", port,
                 c->spec.n_ports ? mine : "(none)");
        a->ports_watch_kills++;
        (void) ctr_limit(a, c, ML_REASON_PORTS_LIMITATION, msg);
        break;
    }
    free(pids);
}

static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct agent *a = arg;
    bool any = false;
    for (struct container *c = a->containers; c && !any; c = c->next)
        any = c->state == ML_RUNNING && ctr_net_mode(c) == ISO_NET_HOST && !c->limitation;
    if (!any)
        return;
    struct iso_listen *ls = NULL;
    size_t n = 0;
    _cleanup_berr_ struct berr *err = NULL;
    if (iso_listen_sockets(&ls, &n, &err) < 0) {
        log_limited("ports-watch", LOG_WARNING, 0, "enforce_ports: %s", berr_msg(err));
        return;
    }
    if (n > 1)
        qsort(ls, n, sizeof(*ls), by_inode);
    a->ports_watch_passes++;
    for (struct container *c = a->containers; c; c = c->next)
        if (c->state == ML_RUNNING && ctr_net_mode(c) == ISO_NET_HOST && !c->limitation)
            check(a, c, ls, n);
    free(ls);
}

void ports_watch_start(struct agent *a)
{
    if (!a->cfg.enforce_ports)
        return;
    uint64_t ms = a->cfg.enforce_ports_interval_ms;
    struct timeval tv = {.tv_sec = (time_t) (ms / 1000),
                         .tv_usec = (suseconds_t) (ms % 1000) * 1000};
    a->ev_ports_watch = event_new(a->base, -1, EV_PERSIST, on_watch, a);
    evtimer_add(a->ev_ports_watch, &tv);
    log_info("enforce_ports: host-network tasks may listen only on their ports (checked every "
             "%llu ms)",
             (unsigned long long) ms);
}

void ports_watch_stop(struct agent *a)
{
    if (a->ev_ports_watch)
        event_free(a->ev_ports_watch);
    a->ev_ports_watch = NULL;
}
