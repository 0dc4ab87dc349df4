/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/net-files.c - a sandbox's own /etc/hosts and /etc/resolv.conf, as text: pure
 * functions of what the host has and what the task is (unit-tested, tests/unit/net_test.c).
 * net.c writes them into the container's runtime dir, isolator/mount-etc.c binds them
 * read-only over the host's inside the sandbox. */
#include <arpa/inet.h>
#include <string.h>

#include "agentd/agent.h"

/* A growing string (the x* allocators abort on OOM). */
static void add(char **s, size_t *len, const char *piece, size_t n)
{
    *s = xrealloc(*s, *len + n + 1);
    memcpy(*s + *len, piece, n);
    *len += n;
    (*s)[*len] = 0;
}

static void adds(char **s, size_t *len, const char *piece)
{
    add(s, len, piece, strlen(piece));
}

char *netfiles_hosts(const char *host_hosts, const char *hostname, uint32_t addr)
{
    char *s = NULL, ip[16] = "127.0.1.1";
    size_t len = 0;
    adds(&s, &len, "# berth: this sandbox's /etc/hosts\n");
    if (host_hosts) {
        /* the host's network: the host's names resolve as on the host */
        adds(&s, &len, host_hosts);
        if (len && s[len - 1] != '\n')
            adds(&s, &len, "\n");
    } else {
        adds(&s, &len, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    }
    if (addr)
        iso_ipv4_format(addr, ip);
    _cleanup_free_ char *line = xasprintf("%s\t%s\n", ip, hostname);
    adds(&s, &len, line);
    return s;
}

/* The address of a "nameserver ADDR" line, or NULL. */
static const char *nameserver_of(const char *line, size_t n, char *buf, size_t buflen)
{
    const char *p = line;
    while (p < line + n && (*p == ' ' || *p == '\t'))
        p++;
    if ((size_t) (line + n - p) < 11 || strncmp(p, "nameserver", 10) != 0 ||
        (p[10] != ' ' && p[10] != '\t'))
        return NULL;
    p += 10;
    while (p < line + n && (*p == ' ' || *p == '\t'))
        p++;
    size_t k = strcspn(p, " \t\r\n#;");
    if (k == 0 || p + k > line + n || k >= buflen)
        return NULL;
    memcpy(buf, p, k);
    buf[k] = 0;
    return buf;
}

/* 127.0.0.0/8 and ::1 mean the host's own resolver, which a task in its own namespace never
 * reaches (and may not: the host is off limits to it). */
static bool loopback(const char *addr)
{
    struct in6_addr a6;
    return str_has_prefix(addr, "127.") ||
           (inet_pton(AF_INET6, addr, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6));
}

/* Copy text's lines; nameserver lines only when usable. Returns how many were kept. */
static unsigned copy_resolv(char **s, size_t *len, const char *text, bool nameservers_only)
{
    unsigned kept = 0;
    for (const char *l = text; l && *l;) {
        size_t n = strcspn(l, "\n");
        char addr[64];
        const char *ns = nameserver_of(l, n, addr, sizeof(addr));
        if (ns && loopback(ns)) {
            adds(s, len, "# (the host's own resolver, out of reach) ");
        } else if (ns) {
            kept++;
        } else if (nameservers_only) {
            l += n + (l[n] == '\n');
            continue;
        }
        add(s, len, l, n);
        adds(s, len, "\n");
        l += n + (l[n] == '\n');
    }
    return kept;
}

char *netfiles_resolv(enum iso_net_mode mode, const char *host_resolv, const char *upstream)
{
    char *s = NULL;
    size_t len = 0;
    adds(&s, &len, "# berth: this sandbox's /etc/resolv.conf\n");
    if (mode == ISO_NET_NONE) {
        adds(&s, &len, "# network = none: no resolver is reachable\n");
        return s;
    }
    if (mode == ISO_NET_HOST) {
        if (host_resolv)
            adds(&s, &len, host_resolv);
        return s;
    }
    unsigned kept = copy_resolv(&s, &len, host_resolv, false);
    if (!kept && upstream) {
        /* a host behind systemd-resolved (nameserver 127.0.0.53): its upstream servers */
        adds(&s, &len, "# from systemd-resolved's upstream list:\n");
        copy_resolv(&s, &len, upstream, true);
    }
    return s;
}
