/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/net-rules.c - the agent's nftables table as text (nft's own syntax), rendered by
 * pure functions so tests/unit/net_test.c can read every rule: the whole table, rebuilt in
 * one transaction when the agent starts, and the map elements one task adds and removes.
 * net-nat.c hands the text to libnftables; docs/design/network.md explains each rule. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <string.h>

#include "isolator/isolator.h"

/* A growing string; every append aborts on OOM like the x* allocators. */
struct text {
    char *s;
    size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void put(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *chunk = NULL;
    int n = vasprintf(&chunk, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    if (t->len + (size_t) n + 1 > t->cap) {
        t->cap = (t->len + (size_t) n + 1) * 2;
        t->s = xrealloc(t->s, t->cap);
    }
    memcpy(t->s + t->len, chunk, (size_t) n + 1);
    t->len += (size_t) n;
    free(chunk);
}

void iso_ipv4_format(uint32_t addr, char buf[16])
{
    uint32_t be = htonl(addr);
    if (!inet_ntop(AF_INET, &be, buf, 16))
        snprintf(buf, 16, "0.0.0.0");
}

/* "tcp . 31000 : 172.31.0.2 . 8080, udp . 31000 : 172.31.0.2 . 8080" (keys only: without
 * the ": ..." part). A host port maps TCP and UDP alike: the port is the task's. */
static void put_elements(struct text *t, const struct iso_nat_map *m, size_t n, bool keys_only)
{
    static const char *const protos[] = {"tcp", "udp"};
    for (size_t i = 0; i < n; i++) {
        char addr[16];
        iso_ipv4_format(m[i].addr, addr);
        for (size_t p = 0; p < ARRAY_SIZE(protos); p++) {
            put(t, "%s%s . %u", i || p ? ", " : "", protos[p], (unsigned) m[i].host_port);
            if (!keys_only)
                put(t, " : %s . %u", addr, (unsigned) m[i].port);
        }
    }
}

char *iso_nat_table_text(const struct iso_nat_net *net, const struct iso_nat_map *m, size_t n)
{
    struct text t = {0};
    char subnet[16];
    iso_ipv4_format(net->subnet, subnet);
    const char *br = net->bridge;
    /* "add, delete, define" in one transaction: the table is replaced atomically whether it
     * existed or not, and nothing of an earlier agent's survives it */
    put(&t, "table inet " ISO_NAT_TABLE "\n");
    put(&t, "delete table inet " ISO_NAT_TABLE "\n");
    put(&t, "table inet " ISO_NAT_TABLE " {\n");
    /* protocol . host port -> task address . port inside: one element per mapping, added
     * and removed with its task; the rules below never change */
    put(&t, "\tmap " ISO_NAT_MAP " {\n"
            "\t\ttype inet_proto . inet_service : ipv4_addr . inet_service\n");
    if (n) {
        put(&t, "\t\telements = { ");
        put_elements(&t, m, n, false);
        put(&t, " }\n");
    }
    put(&t, "\t}\n");
    /* a packet for a local address (any of the host's, the bridge's gateway included) on a
     * mapped port goes to its task: from other hosts and from tasks (hairpin) */
    put(&t, "\tchain prerouting {\n"
            "\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
            "\t\tmeta nfproto ipv4 fib daddr type local meta l4proto { tcp, udp } "
            "dnat ip to meta l4proto . th dport map @" ISO_NAT_MAP "\n"
            "\t}\n");
    /* ... and from the host itself, except to 127.0.0.0/8: reaching a task from a loopback
     * source would need route_localnet on the bridge, which we keep off */
    put(&t, "\tchain output {\n"
            "\t\ttype nat hook output priority -100; policy accept;\n"
            "\t\tmeta nfproto ipv4 ip daddr != 127.0.0.0/8 fib daddr type local "
            "meta l4proto { tcp, udp } dnat ip to meta l4proto . th dport map @" ISO_NAT_MAP "\n"
            "\t}\n");
    /* tasks reach out under the host's address; a task that reached another (or itself)
     * through a mapped port is masqueraded too, or the answer would skip the host's
     * conntrack and come from the wrong address */
    put(&t,
        "\tchain postrouting {\n"
        "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
        "\t\tip saddr %s/%u oifname != \"%s\" masquerade\n"
        "\t\toifname \"%s\" ct status dnat ip saddr %s/%u masquerade\n"
        "\t}\n",
        subnet, net->prefix, br, br, subnet, net->prefix);
    /* a task's packet for the host's loopback is dropped before routing looks at it (it is
     * a martian with route_localnet 0 anyway); and the host itself answers a task only what
     * the task's mappings started: a task cannot reach the agent's, the master's or anyone's
     * port on the host, on any of its addresses, IPv6 included */
    put(&t,
        "\tchain guard {\n"
        "\t\ttype filter hook prerouting priority raw; policy accept;\n"
        "\t\tiifname \"%s\" ip daddr 127.0.0.0/8 drop\n"
        "\t}\n"
        "\tchain input {\n"
        "\t\ttype filter hook input priority filter; policy accept;\n"
        "\t\tiifname \"%s\" ct state established,related accept\n"
        "\t\tiifname \"%s\" drop\n"
        "\t}\n",
        br, br, br);
    put(&t, "}\n");
    return t.s;
}

char *iso_nat_elements_text(bool add, const struct iso_nat_map *m, size_t n)
{
    if (!n)
        return NULL;
    struct text t = {0};
    put(&t, "%s element inet " ISO_NAT_TABLE " " ISO_NAT_MAP " { ", add ? "add" : "delete");
    put_elements(&t, m, n, !add);
    put(&t, " }\n");
    return t.s;
}

char *iso_nat_delete_text(void)
{
    return xstrdup("table inet " ISO_NAT_TABLE "\ndelete table inet " ISO_NAT_TABLE "\n");
}
