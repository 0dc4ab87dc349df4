/* SPDX-License-Identifier: Apache-2.0 */
/* lb/render.c - haproxy.cfg from berth-lb's backends (docs/lb.md "haproxy.cfg"): the runtime
 * socket, one frontend per service port (mode tcp, or http for an app with lb.vhost), one HTTP
 * frontend on http_port routing by Host to the apps with lb.vhost, and one backend per app and
 * port with server-template slots that start in maint (the runtime API fills them). It holds
 * no instance, so the same apps always render the same text, whatever runs where; a reload
 * carries the servers over in servers.state (haproxy.c writes it from "show servers state"
 * just before). Pure. */
#include <stdarg.h>
#include <string.h>

#include "lb/lb.h"

struct out {
    char *s;
    size_t len, cap;
};

static void out(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *add = NULL;
    int n = vasprintf(&add, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    if (o->len + (size_t) n + 1 > o->cap) {
        o->cap = (o->len + (size_t) n + 1) * 2;
        o->s = xrealloc(o->s, o->cap);
    }
    memcpy(o->s + o->len, add, (size_t) n + 1);
    o->len += (size_t) n;
    free(add);
}

static void ms(char *buf, size_t len, uint64_t v)
{
    snprintf(buf, len, "%llums", (unsigned long long) v);
}

/* The address part of a bind line: "[::1]" stays, "*" or "" mean every address. */
static const char *bind_host(const struct lb_cfg *c)
{
    return streq(c->bind, "*") ? "" : c->bind;
}

char *lb_render(const struct lb_cfg *c, const struct lb_backends *bs)
{
    struct out o = {0};
    char drain[32], conn[32], idle[32];
    ms(drain, sizeof(drain), c->drain_timeout_ms);
    ms(conn, sizeof(conn), c->connect_timeout_ms);
    ms(idle, sizeof(idle), c->idle_timeout_ms);
    out(&o,
        "# haproxy.cfg written by berth-lb from berth-apps' apps (docs/lb.md): do not edit,\n"
        "# berth-lb rewrites it when the set of frontends changes. Servers are server-template\n"
        "# slots that berth-lb fills through the runtime API.\n"
        "global\n"
        "    stats socket %s/haproxy.sock mode 600 level admin\n"
        "    server-state-file %s/servers.state\n"
        "    hard-stop-after %s\n"
        "\n"
        "defaults\n"
        "    load-server-state-from-file global\n"
        "    timeout connect %s\n"
        "    timeout client %s\n"
        "    timeout server %s\n"
        "    timeout http-request %s\n"
        "    retries %u\n"
        "    option redispatch 1\n",
        c->run_dir, c->run_dir, drain, conn, idle, idle, idle, c->retries);
    /* the service ports: the first backend claiming one has it */
    for (size_t i = 0; i < bs->n; i++) {
        const struct lb_backend *b = bs->v[i];
        if (!b->service_port || b->service_port == c->http_port)
            continue;
        bool taken = false;
        for (size_t j = 0; j < i; j++)
            taken |= bs->v[j]->service_port == b->service_port;
        if (taken) {
            out(&o, "\n# %s: service port %u is taken by another app\n", b->name, b->service_port);
            continue;
        }
        out(&o,
            "\nfrontend f_%u\n"
            "    mode %s\n"
            "    bind %s:%u\n"
            "    default_backend %s\n",
            b->service_port, b->http ? "http" : "tcp", bind_host(c), b->service_port, b->name);
    }
    bool any_vhost = false;
    for (size_t i = 0; i < bs->n; i++)
        any_vhost |= bs->v[i]->vhost != NULL;
    if (c->http_port && any_vhost) {
        out(&o,
            "\nfrontend f_http\n"
            "    mode http\n"
            "    bind %s:%u\n"
            "    http-request set-var(txn.vhost) req.hdr(host),field(1,:),lower\n",
            bind_host(c), c->http_port);
        for (size_t i = 0; i < bs->n; i++)
            if (bs->v[i]->vhost)
                out(&o, "    use_backend %s if { var(txn.vhost) -m str %s }\n", bs->v[i]->name,
                    bs->v[i]->vhost);
    }
    for (size_t i = 0; i < bs->n; i++) {
        const struct lb_backend *b = bs->v[i];
        out(&o,
            "\nbackend %s\n"
            "    mode %s\n"
            "    balance roundrobin\n",
            b->name, b->http ? "http" : "tcp");
        if (b->http)
            out(&o, "    retry-on conn-failure empty-response\n");
        /* the slots' address: the state file's across a reload (init-addr last), else
         * 127.0.0.1 (no lookup); slot.invalid never resolves */
        out(&o, "    server-template s 1-%zu slot.invalid:1 disabled init-addr last,127.0.0.1\n",
            b->n_slots);
    }
    return o.s;
}
