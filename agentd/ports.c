/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/ports.c - ports as a resource (docs/design/network.md): the [resources] ports
 * ranges, which host ports a launch gets (the ones it names, if they are in the ranges and
 * free, then any free ones, round robin from where the last launch stopped, so a port a
 * task just left is not handed out again at once), what the live tasks hold (their records'
 * host ports, nothing else: a port is free again the moment its task is terminal, and after
 * a restart what the re-adopted records say), and the PORT0.. variables a task gets.
 * The decisions are pure functions over a bitmap, unit-tested (tests/unit/net_test.c);
 * lifecycle.c assigns at admission, net.c maps them in bridge mode, ports-watch.c enforces. */
#include <string.h>

#include "agentd/agent.h"

int ports_ranges_parse(const char *s, struct port_range **ret, size_t *ret_n)
{
    struct port_range *v = NULL;
    size_t n = 0;
    for (const char *p = s; p && *p;) {
        p += strcspn(p, "0123456789");
        if (!*p)
            break;
        char num[8];
        uint64_t lo, hi;
        size_t l = strspn(p, "0123456789");
        if (l >= sizeof(num))
            goto bad;
        memcpy(num, p, l);
        num[l] = 0;
        if (parse_u64(num, &lo) < 0)
            goto bad;
        p += l;
        hi = lo;
        if (*p == '-') {
            p++;
            l = strspn(p, "0123456789");
            if (l == 0 || l >= sizeof(num))
                goto bad;
            memcpy(num, p, l);
            num[l] = 0;
            if (parse_u64(num, &hi) < 0)
                goto bad;
            p += l;
        }
        if (lo < 1 || hi > 65535 || lo > hi)
            goto bad;
        v = xrealloc(v, (n + 1) * sizeof(*v));
        v[n++] = (struct port_range){(uint16_t) lo, (uint16_t) hi};
    }
    /* in port order (they never overlap: config/ checks), for the round robin */
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && v[k - 1].lo > v[k].lo; k--) {
            struct port_range t = v[k];
            v[k] = v[k - 1];
            v[k - 1] = t;
        }
    *ret = v;
    *ret_n = n;
    return 0;
bad:
    free(v);
    return -EINVAL;
}

bool ports_in_ranges(const struct port_range *r, size_t nr, unsigned port)
{
    for (size_t i = 0; i < nr; i++)
        if (r[i].lo <= port && port <= r[i].hi)
            return true;
    return false;
}

static bool used_get(const uint64_t *used, unsigned p)
{
    return used[p / 64] >> (p % 64) & 1;
}

static void used_set(uint64_t *used, unsigned p)
{
    used[p / 64] |= UINT64_C(1) << (p % 64);
}

uint64_t ports_count_free(const struct port_range *r, size_t nr, const uint64_t *used)
{
    uint64_t n = 0;
    for (size_t i = 0; i < nr; i++)
        for (unsigned p = r[i].lo; p <= r[i].hi; p++)
            n += !used_get(used, p);
    return n;
}

/* The next free port of the ranges (sorted) at or after cursor, wrapping to the first, or
 * 0: the ranges' ports only, never the 64Ki space around them. */
static unsigned next_free(const struct port_range *r, size_t nr, const uint64_t *used,
                          unsigned cursor)
{
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < nr; i++) {
            unsigned lo = r[i].lo, hi = r[i].hi;
            if (pass == 0 && hi < cursor)
                continue;
            if (pass == 0 && lo < cursor)
                lo = cursor;
            if (pass == 1 && lo >= cursor)
                break; /* the first pass saw the rest */
            if (pass == 1 && hi >= cursor)
                hi = cursor - 1;
            for (unsigned p = lo; p <= hi; p++)
                if (!used_get(used, p))
                    return p;
        }
    }
    return 0;
}

int ports_pick(const struct port_range *r, size_t nr, uint64_t *used, uint16_t *cursor,
               struct ml_port *ports, size_t n, struct berr **err)
{
    char ranges[64] = "";
    if (!nr)
        snprintf(ranges, sizeof(ranges), "none");
    else
        snprintf(ranges, sizeof(ranges), "%u-%u%s", r[0].lo, r[0].hi, nr > 1 ? ",..." : "");
    /* named numbers first, so "any" never takes one a later entry names */
    for (size_t i = 0; i < n; i++) {
        unsigned p = ports[i].host_port;
        if (!p)
            continue;
        if (!ports_in_ranges(r, nr, p))
            return berr_setc(err, ERANGE, BERR_INSUFFICIENT_RESOURCES,
                             "ports: host port %u is not in this agent's [resources] ports [%s]", p,
                             ranges);
        if (used_get(used, p))
            return berr_setc(err, EADDRINUSE, BERR_INSUFFICIENT_RESOURCES,
                             "ports: host port %u is held by another task", p);
        used_set(used, p);
    }
    size_t any = 0;
    for (size_t i = 0; i < n; i++)
        any += ports[i].host_port == 0;
    uint64_t nfree = ports_count_free(r, nr, used);
    if (any > nfree)
        return berr_setc(err, ENOSPC, BERR_INSUFFICIENT_RESOURCES,
                         "ports: asked %zu, %llu free of [resources] ports [%s]", any,
                         (unsigned long long) nfree, ranges);
    unsigned c = *cursor;
    for (size_t i = 0; i < n; i++) {
        if (ports[i].host_port)
            continue;
        unsigned p = next_free(r, nr, used, c);
        ports[i].host_port = (uint16_t) p; /* never 0: counted above */
        used_set(used, p);
        c = (p + 1) & 0xffff;
    }
    *cursor = (uint16_t) c;
    return 0;
}

void ports_used(struct agent *a, uint64_t used[1024])
{
    memset(used, 0, 1024 * sizeof(uint64_t));
    for (struct container *c = a->containers; c; c = c->next) {
        if (ml_state_terminal(c->state))
            continue;
        for (size_t i = 0; i < c->spec.n_ports; i++)
            if (c->spec.ports[i].host_port)
                used_set(used, c->spec.ports[i].host_port);
    }
}

int ports_assign(struct agent *a, struct container *c, struct berr **err)
{
    if (!c->spec.n_ports)
        return 0;
    uint64_t used[1024];
    ports_used(a, used);
    int r = ports_pick(a->port_ranges, a->n_port_ranges, used, &a->port_cursor, c->spec.ports,
                       c->spec.n_ports, err);
    if (r < 0)
        return r;
    /* inside the task the port is the host's unless bridge mode maps it elsewhere */
    for (size_t i = 0; i < c->spec.n_ports; i++)
        if (!c->spec.ports[i].container_port)
            c->spec.ports[i].container_port = c->spec.ports[i].host_port;
    return 0;
}

char *ports_ranges_text(const uint64_t *used)
{
    size_t cap = 64, len = 0;
    char *s = xmalloc(cap);
    s[len++] = '[';
    for (unsigned p = 1; p < 65536; p++) {
        if (!used_get(used, p))
            continue;
        unsigned q = p;
        while (q + 1 < 65536 && used_get(used, q + 1))
            q++;
        char one[16];
        int k = snprintf(one, sizeof(one), "%s%u-%u", len > 1 ? "," : "", p, q);
        if (len + (size_t) k + 2 > cap)
            s = xrealloc(s, cap = (len + (size_t) k + 2) * 2);
        memcpy(s + len, one, (size_t) k);
        len += (size_t) k;
        p = q;
    }
    s[len++] = ']';
    s[len] = 0;
    return s;
}

/* "web" -> "WEB", "a.b-c" -> "A_B_C": the name part of PORT_<NAME>. */
static void env_name(const char *name, char *buf, size_t len)
{
    size_t i = 0;
    for (; name[i] && i + 1 < len; i++) {
        char ch = name[i];
        buf[i] = ch >= 'a' && ch <= 'z'                                 ? (char) (ch - 'a' + 'A')
                 : (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ? ch
                                                                        : '_';
    }
    buf[i] = 0;
}

/* kv's name ("K" of "K=V") is one of the NULL-terminated ours ("K=V" too). */
static bool same_name(const char *kv, char *const *ours)
{
    size_t n = strcspn(kv, "=");
    for (char *const *o = ours; *o; o++)
        if (strncmp(*o, kv, n) == 0 && (*o)[n] == '=')
            return true;
    return false;
}

char **ports_env(const struct ml_task_spec *s)
{
    size_t n = 0;
    while (s->env && s->env[n])
        n++;
    /* ours first: PORTi, HOST_PORTi and PORT_NAME per port, PORTS */
    char **mine = xcalloc(3 * s->n_ports + 2, sizeof(char *));
    size_t m = 0;
    if (s->n_ports) {
        size_t cap = 8 * s->n_ports + 8, len = 0;
        char *list = xmalloc(cap);
        list[0] = 0;
        for (size_t i = 0; i < s->n_ports; i++) {
            const struct ml_port *p = &s->ports[i];
            mine[m++] = xasprintf("PORT%zu=%u", i, p->container_port);
            mine[m++] = xasprintf("HOST_PORT%zu=%u", i, p->host_port);
            if (p->name) {
                char up[64];
                env_name(p->name, up, sizeof(up));
                mine[m++] = xasprintf("PORT_%s=%u", up, p->container_port);
            }
            len += (size_t) snprintf(list + len, cap - len, "%s%u", i ? "," : "",
                                     p->container_port);
        }
        mine[m++] = xasprintf("PORTS=%s", list);
        free(list);
    }
    /* then the task's own, minus what we set: getenv() returns the first of two */
    char **env = xcalloc(n + m + 1, sizeof(char *));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!same_name(s->env[i], mine))
            env[k++] = xstrdup(s->env[i]);
    for (size_t i = 0; i < m; i++)
        env[k++] = mine[i];
    free(mine);
    return env;
}
