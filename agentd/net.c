/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/net.c - a task's network (docs/design/network.md). host: the host's, its ports
 * still assigned and accounted; none: its own namespace, lo only (the executor brings it
 * up); bridge: its own namespace with a veth on the agent's bridge, an address of [network]
 * subnet (ipam.c; the record is the allocation), a default route, and a NAT mapping per
 * port in the agent's nftables table. Every piece a task has is derived from its record, so
 * what a crash leaves is found again: the veth dies with the task's namespace (and the sweep
 * removes any the kernel has not yet), and the table is rebuilt from the records at start.
 * lifecycle.c calls it (admit, connect after the clone, release at the end); orphans.c
 * sweeps through it; isolator/net-*.c talk to the kernel; ports.c assigns the ports. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "agentd/agent.h"

#define NET_IF_PREFIX "bth"

void net_ifname(const char *id, char buf[16])
{
    snprintf(buf, 16, NET_IF_PREFIX "%.12s", id);
}

int net_init(struct agent *a, struct berr **err)
{
    struct cfg_agent *cfg = &a->cfg;
    if (ports_ranges_parse(cfg->ports, &a->port_ranges, &a->n_port_ranges) < 0)
        return berr_setx(err, EINVAL, "%s: [resources] ports: cannot read '%s'",
                         cfg_where(cfg, "resources", "ports"), cfg->ports);
    a->port_cursor = a->n_port_ranges ? a->port_ranges[0].lo : 0;
    a->ipam_cursor = 2; /* after the network and the gateway */
    if (a->iso_flags & ISO_NS_NET) {
        /* the older switch "every task in a namespace of its own, loopback only" */
        cfg->allow_host_network = false;
        if (streq(cfg->network, "host")) {
            free(cfg->network);
            cfg->network = xstrdup("none");
        }
    }
    if (streq(cfg->network, "host") && !cfg->allow_host_network)
        return berr_setx(err, EINVAL,
                         "%s: [agent] network = host, but allow_host_network = false: name "
                         "bridge or none",
                         cfg_where(cfg, "agent", "network"));
    return 0;
}

void net_free(struct agent *a)
{
    /* the bridge, the table and the veths stay: the tasks keep running without us */
    a->net = iso_net_free(a->net);
    a->nat = iso_nat_free(a->nat);
    free(a->port_ranges);
    a->port_ranges = NULL;
}

static bool live_bridge(const struct container *c)
{
    return !ml_state_terminal(c->state) && ctr_net_mode(c) == ISO_NET_BRIDGE && c->net_addr;
}

static int pick_address(struct agent *a, struct container *c, struct berr **err)
{
    uint32_t subnet = a->cfg.net_addr, size = ipam_size(a->cfg.net_prefix);
    _cleanup_free_ uint64_t *used = xcalloc((size + 63) / 64, sizeof(uint64_t));
    ipam_reserve(used, size);
    for (struct container *o = a->containers; o; o = o->next)
        if (live_bridge(o) && ipam_in_subnet(subnet, a->cfg.net_prefix, o->net_addr))
            ipam_mark(used, o->net_addr - subnet);
    uint32_t off = ipam_pick(used, size, &a->ipam_cursor);
    if (!off)
        return berr_setc(err, ENOSPC, BERR_INSUFFICIENT_RESOURCES,
                         "network: every address of [network] subnet %s is taken",
                         a->cfg.net_subnet);
    c->net_addr = subnet + off;
    c->net_gateway = subnet + 1;
    c->net_prefix = a->cfg.net_prefix;
    return 0;
}

int net_admit(struct agent *a, struct container *c, struct berr **err)
{
    struct ml_task_spec *s = &c->spec;
    if (!s->network)
        s->network = xstrdup(a->cfg.network);
    enum iso_net_mode m = ctr_net_mode(c);
    if (m == ISO_NET_HOST && !a->cfg.allow_host_network)
        return berr_setc(err, EPERM, BERR_FORBIDDEN,
                         "network: host is not allowed on this agent (allow_host_network = "
                         "false); ask for bridge or none");
    if (m == ISO_NET_NONE && s->n_ports)
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "ports: a task with network none cannot be reached on any; ask for "
                         "network bridge or host");
    for (size_t i = 0; m == ISO_NET_HOST && i < s->n_ports; i++) {
        const struct ml_port *p = &s->ports[i];
        if (p->container_port && p->container_port != p->host_port)
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "ports[%zu]: on the host's network a task listens on its host "
                             "port; container_port %u needs network bridge",
                             i, p->container_port);
    }
    int r = ports_assign(a, c, err);
    if (r < 0)
        return r;
    return m == ISO_NET_BRIDGE ? pick_address(a, c, err) : 0;
}

static char *read_text(const char *path)
{
    char *text = NULL;
    return read_file_alloc(path, 1 << 20, &text, NULL) < 0 ? NULL : text;
}

int net_etc_files(struct agent *a, struct container *c, int dfd, const char *rdir,
                  struct berr **err)
{
    (void) a;
    enum iso_net_mode m = ctr_net_mode(c);
    _cleanup_free_ char *host_hosts = m == ISO_NET_HOST ? read_text("/etc/hosts") : NULL;
    _cleanup_free_ char *hosts = netfiles_hosts(host_hosts, c->spec.name, c->net_addr);
    _cleanup_free_ char *hostname = xasprintf("%s\n", c->spec.name);
    _cleanup_free_ char *resolv = NULL;
    if (m != ISO_NET_HOST) { /* on the host's network the host's resolv.conf is right */
        _cleanup_free_ char *host_resolv = read_text("/etc/resolv.conf");
        _cleanup_free_ char *upstream = read_text("/run/systemd/resolve/resolv.conf");
        resolv = netfiles_resolv(m, host_resolv, upstream);
    }
    const struct {
        const char *name, *text;
    } files[] = {{"hosts", hosts}, {"hostname", hostname}, {"resolv.conf", resolv}};
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        if (!files[i].text)
            continue;
        int r = write_file_replace(dfd, files[i].name, files[i].text, strlen(files[i].text), 0644);
        if (r < 0)
            return berr_set(err, -r, "write '%s/%s'", rdir, files[i].name);
    }
    return 0;
}

/* c's mappings as the table's elements (*ret malloc'd, NULL when it has none). */
static size_t mappings(const struct container *c, struct iso_nat_map **ret)
{
    *ret = NULL;
    if (!c->spec.n_ports || !c->net_addr)
        return 0;
    struct iso_nat_map *m = xcalloc(c->spec.n_ports, sizeof(*m));
    for (size_t i = 0; i < c->spec.n_ports; i++)
        m[i] = (struct iso_nat_map){.host_port = c->spec.ports[i].host_port,
                                    .addr = c->net_addr,
                                    .port = c->spec.ports[i].container_port};
    *ret = m;
    return c->spec.n_ports;
}

/* The table's text with the mappings of every live bridge container but skip's. */
static char *table_text(struct agent *a, const struct container *skip)
{
    struct iso_nat_map *all = NULL;
    size_t n = 0;
    for (struct container *c = a->containers; c; c = c->next) {
        if (c == skip || !live_bridge(c))
            continue;
        struct iso_nat_map *m;
        size_t k = mappings(c, &m);
        all = xrealloc(all, (n + k + 1) * sizeof(*all));
        if (k)
            memcpy(all + n, m, k * sizeof(*m));
        n += k;
        free(m);
    }
    struct iso_nat_net net = {a->cfg.net_bridge, a->cfg.net_addr, a->cfg.net_prefix};
    char *text = iso_nat_table_text(&net, all, n);
    free(all);
    return text;
}

static int open_kernel(struct agent *a, struct berr **err)
{
    if (!a->net && iso_net_open(&a->net, err) < 0)
        return -berr_errno(*err);
    if (!a->nat && iso_nat_open(&a->nat, err) < 0)
        return -berr_errno(*err);
    return 0;
}

/* The bridge up and the table built, once per run (the sweep at start does it when bridge
 * tasks were re-adopted; else the first bridge launch). */
static int net_ready(struct agent *a, const struct container *skip, struct berr **err)
{
    if (a->net_ready)
        return 0;
    int r = open_kernel(a, err);
    if (r < 0)
        return r;
    if ((r = iso_net_bridge_up(a->net, a->cfg.net_bridge, a->cfg.net_addr + 1, a->cfg.net_prefix,
                               err)) < 0)
        return r;
    _cleanup_free_ char *text = table_text(a, skip);
    if (iso_nat_run(a->nat, text, err) < 0)
        return berr_wrap(err, "build table inet %s", ISO_NAT_TABLE);
    a->net_ready = true;
    log_info("network: bridge '%s' (%s) and table inet %s ready", a->cfg.net_bridge,
             a->cfg.net_subnet, ISO_NAT_TABLE);
    return 0;
}

int net_connect(struct agent *a, struct container *c, struct berr **err)
{
    if (ctr_net_mode(c) != ISO_NET_BRIDGE)
        return 0;
    uint64_t t0 = now_monotonic_ns();
    int r = net_ready(a, c, err);
    if (r < 0)
        return r;
    /* our unreaped child: its pid cannot have been reused */
    _cleanup_free_ char *nspath = xasprintf("/proc/%d/ns/net", (int) c->pid);
    _cleanup_close_ int nsfd = open(nspath, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0)
        return berr_set(err, errno, "open '%s'", nspath);
    char ifname[16];
    net_ifname(c->id, ifname);
    struct iso_net_attach at = {.host_if = ifname,
                                .owner = c->id,
                                .netns_fd = nsfd,
                                .addr = c->net_addr,
                                .gateway = c->net_gateway,
                                .prefix = c->net_prefix};
    if ((r = iso_net_attach(a->net, &at, err)) < 0)
        return r;
    uint64_t t1 = now_monotonic_ns();
    agent_fault(a, "net-after-veth");
    _cleanup_free_ struct iso_nat_map *m = NULL;
    size_t n = mappings(c, &m);
    _cleanup_free_ char *add = iso_nat_elements_text(true, m, n);
    if (add && iso_nat_run(a->nat, add, err) < 0)
        return berr_wrap(err, "map the ports of '%s'", c->id);
    agent_fault(a, "net-after-nat");
    uint64_t t2 = now_monotonic_ns();
    log_debug("container '%s': network in %.3f ms (veth, address, route %.3f; mappings %.3f)",
              c->id, (double) (t2 - t0) / 1e6, (double) (t1 - t0) / 1e6, (double) (t2 - t1) / 1e6);
    return 0;
}

void net_release(struct agent *a, struct container *c)
{
    if (ctr_net_mode(c) != ISO_NET_BRIDGE || !c->net_addr || !a->net_ready)
        return; /* not ours to undo now: the sweep at the next start finds what is left */
    _cleanup_berr_ struct berr *err = NULL;
    _cleanup_free_ struct iso_nat_map *m = NULL;
    size_t n = mappings(c, &m);
    _cleanup_free_ char *del = iso_nat_elements_text(false, m, n);
    /* a launch that failed before its mappings has none: nft says so, and that is fine */
    if (del && iso_nat_run(a->nat, del, &err) < 0)
        log_debug("container '%s': unmap its ports: %s", c->id, berr_msg(err));
    berr_free(&err);
    char ifname[16];
    net_ifname(c->id, ifname);
    /* its namespace took the pair with it when its last process went; the kernel does that
     * off a workqueue, so removing it here makes "ended" mean "gone" at once */
    if (iso_net_detach(a->net, ifname, &err) < 0)
        log_warning("container '%s': %s", c->id, berr_msg(err));
}

struct veth_sweep {
    struct agent *a;
    char (*names)[16];
    size_t n;
};

static void note_veth(const char *ifname, const char *owner, void *arg)
{
    struct veth_sweep *v = arg;
    struct container *c = owner && ctr_id_shaped(owner) ? ctr_find_id(v->a, owner) : NULL;
    if (c && live_bridge(c))
        return;
    for (c = v->a->containers; !owner && c; c = c->next) {
        char mine[16];
        net_ifname(c->id, mine);
        if (live_bridge(c) && streq(mine, ifname))
            return; /* unmarked, but by its name a live task's */
    }
    v->names = xrealloc(v->names, (v->n + 1) * sizeof(*v->names));
    snprintf(v->names[v->n++], 16, "%s", ifname);
}

/* Which mappings of the kernel's table no live container owns. */
static unsigned count_orphan_rules(struct agent *a)
{
    struct iso_nat_map *m = NULL;
    size_t n = 0;
    _cleanup_berr_ struct berr *err = NULL;
    if (iso_nat_list(a->nat, &m, &n, &err) < 0)
        return 0;
    unsigned orphans = 0;
    for (size_t i = 0; i < n; i++) {
        bool owned = false;
        for (struct container *c = a->containers; c && !owned; c = c->next)
            for (size_t k = 0; live_bridge(c) && k < c->spec.n_ports && !owned; k++)
                owned = c->spec.ports[k].host_port == m[i].host_port && c->net_addr == m[i].addr;
        orphans += !owned;
    }
    free(m);
    return orphans;
}

void net_sweep(struct agent *a, bool dry_run, unsigned *ret_links, unsigned *ret_rules)
{
    *ret_links = *ret_rules = 0;
    _cleanup_berr_ struct berr *err = NULL;
    if (!a->net && iso_net_open(&a->net, &err) < 0) {
        log_warning("network sweep: %s", berr_msg(err));
        return;
    }
    struct veth_sweep v = {a, NULL, 0};
    if (iso_net_foreach_veth(a->net, NET_IF_PREFIX, note_veth, &v, &err) < 0) {
        log_warning("network sweep: %s", berr_msg(err));
        berr_free(&err);
    }
    *ret_links = (unsigned) v.n;
    for (size_t i = 0; i < v.n && !dry_run; i++) {
        if (iso_net_detach(a->net, v.names[i], &err) < 0)
            log_warning("orphan veth '%s': %s", v.names[i], berr_msg(err));
        else
            log_info("removed orphan veth '%s'", v.names[i]);
        berr_free(&err);
    }
    free(v.names);
    if (dry_run)
        return;
    bool any = false;
    for (struct container *c = a->containers; c && !any; c = c->next)
        any = live_bridge(c);
    /* nothing of ours: the host's nftables are not even looked at (nor nf_tables loaded) */
    if (!any && iso_net_bridge_owned(a->net, a->cfg.net_bridge) != 1)
        return;
    if (!a->nat && iso_nat_open(&a->nat, &err) < 0) {
        log_warning("network sweep: %s", berr_msg(err));
        return;
    }
    *ret_rules = count_orphan_rules(a);
    if (any) {
        /* rebuilt from the records: a mapping no record owns is gone with the old table */
        if (net_ready(a, NULL, &err) < 0)
            log_error("network: %s (bridge tasks may be unreachable)", berr_msg(err));
        return;
    }
    _cleanup_free_ char *del = iso_nat_delete_text();
    if (iso_nat_run(a->nat, del, &err) < 0)
        log_warning("network: remove table inet %s: %s", ISO_NAT_TABLE, berr_msg(err));
    berr_free(&err);
    if (iso_net_bridge_remove(a->net, a->cfg.net_bridge, &err) < 0)
        log_warning("%s", berr_msg(err));
    else
        log_info("network: no bridge task left: removed table inet %s and bridge '%s'",
                 ISO_NAT_TABLE, a->cfg.net_bridge);
}
