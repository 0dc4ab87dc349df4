/* SPDX-License-Identifier: Apache-2.0 */
/* lb/slots.c - berth-lb's backends (one per app and port index with a service port, and port 0
 * of an app with lb.vhost) and their server-template slots: which instance each slot routes
 * to, what HAProxy was told, and the runtime API commands that close the gap (set server
 * addr/port, state ready/drain/maint). A slot is taken by an instance while it serves; when it
 * stops serving (killing, unhealthy, ended) its slot drains for drain_timeout, then goes to
 * maint and is free again. Pure: no sockets, the caller sends the commands. */
#include <string.h>

#include "lb/lb.h"

static char *backend_name(const char *app_id, size_t index)
{
    char *n = xasprintf("b_%s_%zu", app_id, index);
    for (char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            *p = '_';
    return n;
}

static void backend_free(struct lb_backend *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n_slots; i++)
        free(b->slots[i].inst);
    free(b->slots);
    free(b->name);
    free(b->app_id);
    free(b->vhost);
    free(b);
}

void lb_backends_free(struct lb_backends *bs)
{
    for (size_t i = 0; i < bs->n; i++)
        backend_free(bs->v[i]);
    free(bs->v);
    bs->v = NULL;
    bs->n = 0;
}

static int cmp_backend(const void *a, const void *b)
{
    return strcmp((*(struct lb_backend *const *) a)->name, (*(struct lb_backend *const *) b)->name);
}

static bool backend_same_shape(const struct lb_backend *a, const struct lb_backend *b)
{
    return streq(a->name, b->name) && a->service_port == b->service_port && a->http == b->http &&
           !a->vhost == !b->vhost && (!a->vhost || streq(a->vhost, b->vhost)) &&
           a->n_slots == b->n_slots;
}

bool lb_backends_update(struct lb_backends *bs, const struct lb_table *t, unsigned n_slots)
{
    struct lb_backends n = {0};
    for (size_t k = 0; k < t->n_apps; k++) {
        const struct lb_app *a = t->apps[k];
        for (size_t i = 0; i < a->n_ports; i++) {
            bool vh = i == 0 && a->vhost;
            if (!a->service_ports[i] && !vh)
                continue;
            struct lb_backend *b = xzalloc(sizeof(*b));
            b->name = backend_name(a->id, i);
            b->app_id = xstrdup(a->id);
            b->port_index = i;
            b->service_port = a->service_ports[i];
            b->vhost = vh ? xstrdup(a->vhost) : NULL;
            b->http = vh;
            b->n_slots = n_slots;
            n.v = xrealloc(n.v, (n.n + 1) * sizeof(*n.v));
            n.v[n.n++] = b;
        }
    }
    if (n.n) /* qsort wants an array, even of none */
        qsort(n.v, n.n, sizeof(*n.v), cmp_backend);
    bool changed = n.n != bs->n;
    /* keep the slots of the backends that stay */
    for (size_t i = 0, j = 0; i < n.n; i++) {
        while (j < bs->n && strcmp(bs->v[j]->name, n.v[i]->name) < 0)
            j++;
        struct lb_backend *old = j < bs->n && streq(bs->v[j]->name, n.v[i]->name) ? bs->v[j] : NULL;
        if (!old || !backend_same_shape(old, n.v[i]))
            changed = true;
        if (old && old->n_slots == n.v[i]->n_slots) {
            n.v[i]->slots = old->slots;
            n.v[i]->full_warned = old->full_warned;
            old->slots = NULL;
            old->n_slots = 0;
        } else {
            n.v[i]->slots = xcalloc(n_slots, sizeof(struct lb_slot));
        }
    }
    lb_backends_free(bs);
    *bs = n;
    return changed;
}

/* The port the instance serves b's port index on, 0 when none. */
static unsigned inst_port(const struct lb_inst *i, const struct lb_backend *b)
{
    return b->port_index < i->n_ports ? i->ports[b->port_index] : 0;
}

static void slot_view_set(struct lb_slot_view *v, enum lb_slot_state st, const char *addr,
                          unsigned port)
{
    v->st = st;
    snprintf(v->addr, sizeof(v->addr), "%s", addr);
    v->port = port;
}

void lb_slots_assign(struct lb_backend *b, const struct lb_table *t, uint64_t now_ms,
                     uint64_t drain_ms)
{
    /* instances in slots: still serving at the same address? */
    for (size_t s = 0; s < b->n_slots; s++) {
        struct lb_slot *sl = &b->slots[s];
        if (sl->want.st == LB_SLOT_FREE)
            continue;
        const struct lb_inst *in = NULL;
        for (size_t k = 0; k < t->n_insts; k++)
            if (streq(t->insts[k]->id, sl->inst)) {
                in = t->insts[k];
                break;
            }
        bool serves = in && in->serving && streq(in->app_id, b->app_id) &&
                      streq(in->address, sl->want.addr) && inst_port(in, b) == sl->want.port;
        if (sl->want.st == LB_SLOT_SERVING && !serves) {
            sl->want.st = LB_SLOT_DRAINING;
            sl->drain_until_ms = now_ms + drain_ms;
        } else if (sl->want.st == LB_SLOT_DRAINING && serves) {
            sl->want.st = LB_SLOT_SERVING; /* healthy again before its slot was freed */
        } else if (sl->want.st == LB_SLOT_DRAINING && now_ms >= sl->drain_until_ms) {
            sl->want.st = LB_SLOT_FREE;
            free(sl->inst);
            sl->inst = NULL;
        }
    }
    /* serving instances without a slot take the lowest free one */
    for (size_t k = 0; k < t->n_insts; k++) {
        const struct lb_inst *in = t->insts[k];
        unsigned port = inst_port(in, b);
        if (!in->serving || !port || !streq(in->app_id, b->app_id))
            continue;
        bool has = false;
        size_t free_slot = b->n_slots;
        for (size_t s = 0; s < b->n_slots; s++) {
            struct lb_slot *sl = &b->slots[s];
            if (sl->want.st == LB_SLOT_SERVING && streq(sl->inst, in->id))
                has = true;
            else if (sl->want.st == LB_SLOT_FREE && free_slot == b->n_slots)
                free_slot = s;
        }
        if (has)
            continue;
        if (free_slot == b->n_slots) {
            if (!b->full_warned)
                log_warning("backend %s: all %zu slots taken, instance %s is not routed to "
                            "(raise [lb] slots)",
                            b->name, b->n_slots, in->id);
            b->full_warned = true;
            continue;
        }
        struct lb_slot *sl = &b->slots[free_slot];
        free(sl->inst);
        sl->inst = xstrdup(in->id);
        slot_view_set(&sl->want, LB_SLOT_SERVING, in->address, port);
    }
}

size_t lb_backend_serving(const struct lb_backend *b)
{
    size_t n = 0;
    for (size_t s = 0; s < b->n_slots; s++)
        n += b->slots[s].want.st == LB_SLOT_SERVING;
    return n;
}

static void append(char **buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append(char **buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *add = NULL;
    if (vasprintf(&add, fmt, ap) < 0)
        abort();
    va_end(ap);
    size_t have = *buf ? strlen(*buf) : 0, n = strlen(add);
    *buf = xrealloc(*buf, have + n + 2);
    if (have)
        (*buf)[have++] = ';';
    memcpy(*buf + have, add, n + 1);
    free(add);
}

size_t lb_slots_commands(struct lb_backend *b, char **buf)
{
    size_t n = 0;
    for (size_t s = 0; s < b->n_slots; s++) {
        struct lb_slot *sl = &b->slots[s];
        const struct lb_slot_view *w = &sl->want, *a = &sl->applied;
        bool addr_differs = !sl->known || !streq(w->addr, a->addr) || w->port != a->port;
        if (sl->known && w->st == a->st && (w->st == LB_SLOT_FREE || !addr_differs))
            continue;
        const char *srv = b->name;
        if (w->st == LB_SLOT_FREE) {
            append(buf, "set server %s/s%zu state maint", srv, s + 1);
        } else {
            /* a slot drains only at the address it served on: no addr change then */
            if (addr_differs && w->addr[0])
                append(buf, "set server %s/s%zu addr %s port %u", srv, s + 1, w->addr, w->port);
            append(buf, "set server %s/s%zu state %s", srv, s + 1,
                   w->st == LB_SLOT_SERVING ? "ready" : "drain");
        }
        sl->applied = *w;
        sl->known = true;
        n++;
    }
    return n;
}

void lb_backends_forget(struct lb_backends *bs)
{
    for (size_t i = 0; i < bs->n; i++)
        for (size_t s = 0; s < bs->v[i]->n_slots; s++)
            bs->v[i]->slots[s].known = false;
}
