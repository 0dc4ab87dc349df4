/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/net-link.c - links, addresses and routes through libnl-route, from the agent's
 * side (docs/design/network.md): the bridge (created once, marked as ours), and per task a
 * veth pair whose host end joins the bridge and whose other end is born inside the task's
 * network namespace as eth0, with its address and default route. Everything is marked with
 * an interface alias, "berth:<container id>" ("berth:bridge" for the bridge), so the orphan
 * sweep (iso_net_foreach_veth) tells ours from anyone else's without a name convention.
 * net-rules.c and net-nat.c do the NAT; net-lo.c (in the executor) brings lo up. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <sched.h>
#include <string.h>

#include "isolator/isolator.h"

struct iso_net {
    struct nl_sock *sk; /* NETLINK_ROUTE in the agent's own network namespace */
    int own_ns;         /* that namespace, to come back to after making a socket in a task's */
    int bridge_index;   /* 0 until iso_net_bridge_up */
};

/* libnl's NLE_* codes as the errno our callers and messages speak. */
static int nl_errno(int nle)
{
    switch (nle < 0 ? -nle : nle) {
    case NLE_EXIST:
        return EEXIST;
    case NLE_OBJ_NOTFOUND:
    case NLE_NODEV:
        return ENODEV;
    case NLE_PERM:
        return EPERM;
    case NLE_NOACCESS:
        return EACCES;
    case NLE_NOMEM:
        return ENOMEM;
    case NLE_BUSY:
        return EBUSY;
    case NLE_INVAL:
        return EINVAL;
    case NLE_RANGE:
        return ERANGE;
    case NLE_NOADDR:
        return EADDRNOTAVAIL;
    case NLE_OPNOTSUPP:
        return EOPNOTSUPP;
    case NLE_AGAIN:
        return EAGAIN;
    default:
        return EIO;
    }
}

#define NLFAIL(nle, ...) berr_setx(err, nl_errno(nle), __VA_ARGS__)

static bool gone(int nle)
{
    return nle == -NLE_OBJ_NOTFOUND || nle == -NLE_NODEV;
}

static struct nl_sock *route_socket(int *ret_nle)
{
    struct nl_sock *sk = nl_socket_alloc();
    if (!sk) {
        *ret_nle = -NLE_NOMEM;
        return NULL;
    }
    int r = nl_connect(sk, NETLINK_ROUTE); /* libnl opens it SOCK_CLOEXEC */
    if (r < 0) {
        nl_socket_free(sk);
        *ret_nle = r;
        return NULL;
    }
    return sk;
}

int iso_net_open(struct iso_net **ret, struct berr **err)
{
    struct iso_net *n = xzalloc(sizeof(*n));
    n->own_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (n->own_ns < 0) {
        int e = errno;
        free(n);
        return berr_set(err, e, "network: open our own network namespace");
    }
    int nle = 0;
    if (!(n->sk = route_socket(&nle))) {
        close(n->own_ns);
        free(n);
        return NLFAIL(nle, "network: rtnetlink socket: %s", nl_geterror(nle));
    }
    *ret = n;
    return 0;
}

struct iso_net *iso_net_free(struct iso_net *n)
{
    if (!n)
        return NULL;
    if (n->sk)
        nl_socket_free(n->sk);
    closep(&n->own_ns);
    free(n);
    return NULL;
}

/* An IPv4 address for libnl (addr in host order), with a prefix length. */
static struct nl_addr *ipv4(uint32_t addr, unsigned prefix)
{
    uint32_t be = htonl(addr);
    struct nl_addr *a = nl_addr_build(AF_INET, &be, sizeof(be));
    if (!a)
        abort();
    nl_addr_set_prefixlen(a, (int) prefix);
    return a;
}

static int add_address(struct nl_sock *sk, int ifindex, uint32_t addr, unsigned prefix)
{
    struct rtnl_addr *ra = rtnl_addr_alloc();
    struct nl_addr *local = ipv4(addr, prefix);
    if (!ra)
        abort();
    rtnl_addr_set_ifindex(ra, ifindex);
    int r = rtnl_addr_set_local(ra, local);
    if (r >= 0)
        r = rtnl_addr_add(sk, ra, NLM_F_CREATE | NLM_F_EXCL);
    nl_addr_put(local);
    rtnl_addr_put(ra);
    return r;
}

/* The owner mark: RTM_NEWLINK ignores IFLA_IFALIAS when it creates a link, so it is set
 * right after, by index. */
static int set_alias(struct nl_sock *sk, struct rtnl_link *l, const char *alias)
{
    struct rtnl_link *change = rtnl_link_alloc();
    if (!change)
        abort();
    rtnl_link_set_ifalias(change, alias);
    int r = rtnl_link_change(sk, l, change, 0);
    rtnl_link_put(change);
    return r;
}

static int set_up(struct nl_sock *sk, struct rtnl_link *l)
{
    if (rtnl_link_get_flags(l) & IFF_UP)
        return 0;
    struct rtnl_link *change = rtnl_link_alloc();
    if (!change)
        abort();
    rtnl_link_set_flags(change, IFF_UP);
    int r = rtnl_link_change(sk, l, change, 0);
    rtnl_link_put(change);
    return r;
}

/* /proc/sys/net of the namespace we are in (the file is resolved at open). */
static int sysctl_net(const char *path, const char *value, bool missing_ok, struct berr **err)
{
    _cleanup_free_ char *p = xasprintf("/proc/sys/net/%s", path);
    int r = write_file_at(AT_FDCWD, p, value);
    if (r < 0 && !(missing_ok && r == -ENOENT))
        return berr_set(err, -r, "network: write '%s' to '%s'", value, p);
    return 0;
}

int iso_net_bridge_up(struct iso_net *n, const char *name, uint32_t gateway, unsigned prefix,
                      struct berr **err)
{
    struct rtnl_link *l = NULL;
    int r = rtnl_link_get_kernel(n->sk, 0, name, &l);
    if (gone(r)) {
        struct rtnl_link *br = rtnl_link_bridge_alloc();
        if (!br)
            abort();
        rtnl_link_set_name(br, name);
        r = rtnl_link_add(n->sk, br, NLM_F_CREATE | NLM_F_EXCL);
        rtnl_link_put(br);
        if (r < 0 && r != -NLE_EXIST)
            return NLFAIL(r, "network: create bridge '%s': %s", name, nl_geterror(r));
        if ((r = rtnl_link_get_kernel(n->sk, 0, name, &l)) >= 0 &&
            (r = set_alias(n->sk, l, ISO_NET_OWNER_PREFIX "bridge")) < 0) {
            rtnl_link_put(l);
            return NLFAIL(r, "network: mark bridge '%s': %s", name, nl_geterror(r));
        }
    }
    if (r < 0)
        return NLFAIL(r, "network: bridge '%s': %s", name, nl_geterror(r));
    const char *type = rtnl_link_get_type(l);
    if (!type || !streq(type, "bridge")) {
        rtnl_link_put(l);
        return berr_setx(err, EEXIST, "network: '%s' exists and is not a bridge", name);
    }
    int idx = rtnl_link_get_ifindex(l);
    /* Before the address and "up": without IPv6 on the bridge the host has no address a
     * task could reach over it but the IPv4 gateway, which the table's input chain guards;
     * route_localnet stays 0, so a packet for 127.0.0.0/8 that a task sends the host is a
     * martian and dropped (what CVE-2020-8558 was about). */
    _cleanup_free_ char *v6 = xasprintf("ipv6/conf/%s/disable_ipv6", name);
    _cleanup_free_ char *localnet = xasprintf("ipv4/conf/%s/route_localnet", name);
    if (sysctl_net(v6, "1", true, err) < 0 || sysctl_net(localnet, "0", false, err) < 0) {
        rtnl_link_put(l);
        return -berr_errno(*err);
    }
    r = add_address(n->sk, idx, gateway, prefix);
    if (r < 0 && r != -NLE_EXIST) {
        rtnl_link_put(l);
        return NLFAIL(r, "network: address of bridge '%s': %s", name, nl_geterror(r));
    }
    r = set_up(n->sk, l);
    rtnl_link_put(l);
    if (r < 0)
        return NLFAIL(r, "network: bring bridge '%s' up: %s", name, nl_geterror(r));
    /* the kernel routes between the bridge and the host's other links only with this on */
    if (sysctl_net("ipv4/ip_forward", "1", false, err) < 0)
        return -berr_errno(*err);
    n->bridge_index = idx;
    return 0;
}

int iso_net_bridge_owned(struct iso_net *n, const char *name)
{
    struct rtnl_link *l = NULL;
    int r = rtnl_link_get_kernel(n->sk, 0, name, &l);
    if (r < 0)
        return gone(r) ? 0 : -nl_errno(r);
    const char *alias = rtnl_link_get_ifalias(l);
    bool ours = alias && streq(alias, ISO_NET_OWNER_PREFIX "bridge");
    rtnl_link_put(l);
    return ours;
}

int iso_net_bridge_remove(struct iso_net *n, const char *name, struct berr **err)
{
    struct rtnl_link *l = NULL;
    int r = rtnl_link_get_kernel(n->sk, 0, name, &l);
    if (gone(r))
        return 0;
    if (r < 0)
        return NLFAIL(r, "network: bridge '%s': %s", name, nl_geterror(r));
    const char *alias = rtnl_link_get_ifalias(l);
    bool ours = alias && streq(alias, ISO_NET_OWNER_PREFIX "bridge");
    if (ours && (r = rtnl_link_delete(n->sk, l)) < 0 && !gone(r)) {
        rtnl_link_put(l);
        return NLFAIL(r, "network: remove bridge '%s': %s", name, nl_geterror(r));
    }
    rtnl_link_put(l);
    n->bridge_index = 0;
    return ours ? 1 : 0;
}

/* Hairpin mode on the bridge port: a task that connects to its own mapped port through the
 * host's address gets its packet DNATed and routed back out of the port it came in by;
 * without hairpin the bridge never sends a frame back where it came from. AF_BRIDGE
 * RTM_SETLINK with IFLA_PROTINFO { IFLA_BRPORT_MODE }, as `ip link set X type bridge_slave
 * hairpin on` sends it; libnl has no setter for a port's mode. */
static int set_hairpin(struct nl_sock *sk, int ifindex)
{
    struct nl_msg *msg = nlmsg_alloc_simple(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK);
    if (!msg)
        abort();
    struct ifinfomsg ifi = {.ifi_family = AF_BRIDGE, .ifi_index = ifindex};
    int r = nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO);
    struct nlattr *info = r < 0 ? NULL : nla_nest_start(msg, IFLA_PROTINFO | NLA_F_NESTED);
    if (!info || nla_put_u8(msg, IFLA_BRPORT_MODE, BRIDGE_MODE_HAIRPIN) < 0) {
        nlmsg_free(msg);
        return -NLE_MSGSIZE;
    }
    nla_nest_end(msg, info);
    return nl_send_sync(sk, msg); /* frees msg */
}

/* A NETLINK_ROUTE socket inside the namespace netns_fd: made there (a socket stays in the
 * namespace it was created in), then this thread goes back. setns(CLONE_NEWNET) moves only
 * the calling thread, and nothing else runs on it meanwhile; if it cannot go back it must
 * not go on in a task's namespace, so it aborts. */
static struct nl_sock *socket_in(struct iso_net *n, int netns_fd, int *ret_nle)
{
    if (setns(netns_fd, CLONE_NEWNET) < 0) {
        *ret_nle = -nl_syserr2nlerr(errno);
        return NULL;
    }
    struct nl_sock *sk = route_socket(ret_nle);
    if (setns(n->own_ns, CLONE_NEWNET) < 0)
        abort();
    return sk;
}

/* Inside the task's namespace: eth0's address and the default route through the bridge. */
static int configure_inside(struct iso_net *n, const struct iso_net_attach *at, struct berr **err)
{
    int r = 0;
    struct nl_sock *sk = socket_in(n, at->netns_fd, &r);
    if (!sk)
        return NLFAIL(r, "network: rtnetlink socket in the task's namespace: %s", nl_geterror(r));
    struct rtnl_link *eth = NULL;
    struct rtnl_route *rt = NULL;
    struct nl_addr *any = NULL, *gw = NULL;
    if ((r = rtnl_link_get_kernel(sk, 0, ISO_NET_TASK_IF, &eth)) < 0) {
        NLFAIL(r, "network: find %s in the task: %s", ISO_NET_TASK_IF, nl_geterror(r));
        goto out;
    }
    int idx = rtnl_link_get_ifindex(eth);
    if ((r = add_address(sk, idx, at->addr, at->prefix)) < 0) {
        NLFAIL(r, "network: address of %s: %s", ISO_NET_TASK_IF, nl_geterror(r));
        goto out;
    }
    if ((r = set_up(sk, eth)) < 0) {
        NLFAIL(r, "network: bring %s up: %s", ISO_NET_TASK_IF, nl_geterror(r));
        goto out;
    }
    rt = rtnl_route_alloc();
    struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
    if (!rt || !nh)
        abort();
    any = ipv4(0, 0);
    gw = ipv4(at->gateway, 32);
    rtnl_route_set_family(rt, AF_INET);
    rtnl_route_set_table(rt, RT_TABLE_MAIN);
    rtnl_route_set_dst(rt, any);
    rtnl_route_nh_set_ifindex(nh, idx);
    rtnl_route_nh_set_gateway(nh, gw);
    rtnl_route_add_nexthop(rt, nh); /* rt owns nh now */
    if ((r = rtnl_route_add(sk, rt, NLM_F_CREATE | NLM_F_EXCL)) < 0)
        NLFAIL(r, "network: default route of the task: %s", nl_geterror(r));
out:
    if (rt)
        rtnl_route_put(rt);
    if (any)
        nl_addr_put(any);
    if (gw)
        nl_addr_put(gw);
    if (eth)
        rtnl_link_put(eth);
    nl_socket_free(sk);
    return r < 0 ? -nl_errno(r) : 0;
}

int iso_net_attach(struct iso_net *n, const struct iso_net_attach *at, struct berr **err)
{
    if (!n->bridge_index)
        return berr_setx(err, ENODEV, "network: the bridge is not up");
    /* One RTM_NEWLINK: the host end named, on the bridge and up; its peer born in the
     * task's namespace (IFLA_NET_NS_FD) as eth0. Nothing ever exists half-way in
     * the host's namespace, and when the task's namespace goes (its last process exits) the
     * kernel deletes the pair. */
    struct rtnl_link *veth = rtnl_link_veth_alloc();
    if (!veth)
        abort();
    struct rtnl_link *peer = rtnl_link_veth_get_peer(veth);
    _cleanup_free_ char *alias = xasprintf(ISO_NET_OWNER_PREFIX "%s", at->owner);
    rtnl_link_set_name(veth, at->host_if);
    rtnl_link_set_master(veth, n->bridge_index);
    rtnl_link_set_flags(veth, IFF_UP);
    rtnl_link_set_name(peer, ISO_NET_TASK_IF);
    rtnl_link_set_ns_fd(peer, at->netns_fd);
    rtnl_link_put(peer); /* up from inside (libnl sends a peer's flags without ifi_change) */
    int r = rtnl_link_add(n->sk, veth, NLM_F_CREATE | NLM_F_EXCL);
    rtnl_link_put(veth);
    if (r < 0)
        return NLFAIL(r, "network: create veth '%s': %s", at->host_if, nl_geterror(r));
    struct rtnl_link *host = NULL;
    if ((r = rtnl_link_get_kernel(n->sk, 0, at->host_if, &host)) < 0 ||
        (r = set_alias(n->sk, host, alias)) < 0 ||
        (r = set_hairpin(n->sk, rtnl_link_get_ifindex(host))) < 0) {
        NLFAIL(r, "network: mark '%s' (alias, hairpin): %s", at->host_if, nl_geterror(r));
    } else if (configure_inside(n, at, err) == 0) {
        rtnl_link_put(host);
        return 0;
    }
    if (host)
        rtnl_link_put(host);
    _cleanup_berr_ struct berr *derr = NULL;
    (void) iso_net_detach(n, at->host_if, &derr); /* the namespace's end would go with it */
    return -berr_errno(*err);
}

int iso_net_detach(struct iso_net *n, const char *host_if, struct berr **err)
{
    struct rtnl_link *l = rtnl_link_alloc();
    if (!l)
        abort();
    rtnl_link_set_name(l, host_if);
    int r = rtnl_link_delete(n->sk, l);
    rtnl_link_put(l);
    if (r < 0 && !gone(r))
        return NLFAIL(r, "network: remove veth '%s': %s", host_if, nl_geterror(r));
    return gone(r) ? 0 : 1;
}

struct each_veth {
    void (*fn)(const char *ifname, const char *owner, void *arg);
    void *arg;
    const char *unmarked_prefix;
};

static void each_link(struct nl_object *o, void *arg)
{
    struct each_veth *e = arg;
    struct rtnl_link *l = (struct rtnl_link *) o;
    const char *type = rtnl_link_get_type(l), *alias = rtnl_link_get_ifalias(l);
    const char *name = rtnl_link_get_name(l);
    if (!type || !streq(type, "veth") || !name)
        return;
    if (alias && str_has_prefix(alias, ISO_NET_OWNER_PREFIX))
        e->fn(name, alias + strlen(ISO_NET_OWNER_PREFIX), e->arg);
    else if (!alias && str_has_prefix(name, e->unmarked_prefix))
        e->fn(name, NULL, e->arg); /* a crash between creating it and marking it */
}

int iso_net_foreach_veth(struct iso_net *n, const char *unmarked_prefix,
                         void (*fn)(const char *ifname, const char *owner, void *arg), void *arg,
                         struct berr **err)
{
    struct nl_cache *cache = NULL;
    int r = rtnl_link_alloc_cache(n->sk, AF_UNSPEC, &cache);
    if (r < 0)
        return NLFAIL(r, "network: list links: %s", nl_geterror(r));
    struct each_veth e = {fn, arg, unmarked_prefix};
    nl_cache_foreach(cache, each_link, &e);
    nl_cache_free(cache);
    return 0;
}
