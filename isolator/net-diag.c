/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/net-diag.c - the TCP sockets listening in the caller's network namespace, through
 * NETLINK_SOCK_DIAG (libnl-idiag): one dump per address family, each socket's local port
 * and inode. The agent's enforce_ports watcher (agentd/ports-watch.c) matches the inodes
 * to the sockets its host-network tasks hold, as Mesos's network/ports isolator does; no
 * /proc/net/tcp parsing (its text costs a formatting pass per socket in the kernel). */
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <netlink/cache.h>
#include <netlink/idiag/idiagnl.h>
#include <netlink/idiag/msg.h>
#include <netlink/netlink.h>
#include <string.h>
#include <sys/socket.h>

#include "isolator/isolator.h"

struct collect {
    struct iso_listen *v;
    size_t n;
};

static void collect_one(struct nl_object *o, void *arg)
{
    struct collect *c = arg;
    struct idiagnl_msg *m = (struct idiagnl_msg *) o;
    uint32_t inode = idiagnl_msg_get_inode(m);
    if (!inode)
        return; /* a socket being set up or torn down: nobody holds it */
    c->v = xrealloc(c->v, (c->n + 1) * sizeof(*c->v));
    /* libnl hands the port over as the kernel has it: in network byte order */
    c->v[c->n++] = (struct iso_listen){.port = ntohs(idiagnl_msg_get_sport(m)), .inode = inode};
}

int iso_listen_sockets(struct iso_listen **ret, size_t *ret_n, struct berr **err)
{
    struct nl_sock *sk = nl_socket_alloc();
    if (!sk)
        abort();
    int r = idiagnl_connect(sk);
    if (r < 0) {
        nl_socket_free(sk);
        return berr_setx(err, EIO, "sock_diag: %s", nl_geterror(r));
    }
    struct collect c = {0};
    static const int families[] = {AF_INET, AF_INET6};
    for (size_t i = 0; i < ARRAY_SIZE(families); i++) {
        struct nl_cache *cache = NULL;
        r = idiagnl_msg_alloc_cache(sk, families[i], 1 << TCP_LISTEN, &cache);
        if (r < 0) {
            free(c.v);
            nl_socket_free(sk);
            return berr_setx(err, EIO, "sock_diag: list %s listening sockets: %s",
                             families[i] == AF_INET ? "IPv4" : "IPv6", nl_geterror(r));
        }
        nl_cache_foreach(cache, collect_one, &c);
        nl_cache_free(cache);
    }
    nl_socket_free(sk);
    *ret = c.v;
    *ret_n = c.n;
    return 0;
}
