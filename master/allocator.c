/* SPDX-License-Identifier: Apache-2.0 */
/* master/allocator.c - the DRF allocator's core (drf.h): roles with weights and quota, the
 * frameworks (clients) of each role, agents with their reservations and DECLINE filters, what
 * each holds, and the allocation pass that decides which framework is offered which agent's
 * free resources. Pure bookkeeping over plain numbers; offers.c turns its decisions into
 * offers, tasks.c and offers.c charge and release. Costs: a pass sorts the roles and their
 * clients once (a few hundred entries), then walks the agents once; after each allocation
 * only the one client and role that grew move in their order (insertion), so nothing is
 * rescanned per framework. Rejected: Mesos's per-pass random shuffle of the agents (a
 * rotating start spreads as well and keeps passes reproducible for the tests). */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "master/drf.h"

static struct drf_res res_min(struct drf_res a, struct drf_res b)
{
    return (struct drf_res){a.cpus < b.cpus ? a.cpus : b.cpus, a.mem < b.mem ? a.mem : b.mem};
}

/* a - b, floored at 0 per resource */
static struct drf_res res_sub(struct drf_res a, struct drf_res b)
{
    return (struct drf_res){a.cpus > b.cpus ? a.cpus - b.cpus : 0,
                            a.mem > b.mem ? a.mem - b.mem : 0};
}

/* a + b, saturating (DRF_UNLIMITED stays) */
static struct drf_res res_add(struct drf_res a, struct drf_res b)
{
    return (struct drf_res){a.cpus > DRF_UNLIMITED - b.cpus ? DRF_UNLIMITED : a.cpus + b.cpus,
                            a.mem > DRF_UNLIMITED - b.mem ? DRF_UNLIMITED : a.mem + b.mem};
}

static bool res_le(struct drf_res a, struct drf_res b)
{
    return a.cpus <= b.cpus && a.mem <= b.mem;
}

static void *grow(void *p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return p;
    *cap = *cap ? *cap * 2 : 8;
    return xrealloc(p, *cap * size);
}

void drf_init(struct drf *d)
{
    *d = (struct drf){.min_offer = {10, 32ULL << 20}};
}

void drf_free(struct drf *d)
{
    while (d->n_fws)
        drf_fw_remove(d, d->fws[0]);
    while (d->n_agents)
        drf_agent_remove(d, d->agents[d->n_agents - 1]);
    for (size_t i = 0; i < d->n_roles; i++) {
        free(d->roles[i]->name);
        free(d->roles[i]->clients);
        free(d->roles[i]);
    }
    free(d->roles);
    free(d->fws);
    free(d->agents);
    *d = (struct drf){0};
}

double drf_share(const struct drf *d, struct drf_res q)
{
    double c = d->total.cpus ? (double) q.cpus / (double) d->total.cpus : 0;
    double m = d->total.mem ? (double) q.mem / (double) d->total.mem : 0;
    return c > m ? c : m;
}

/* ---- roles ------------------------------------------------------------------------------ */

struct drf_role *drf_role_find(const struct drf *d, const char *name)
{
    for (size_t i = 0; i < d->n_roles; i++)
        if (streq(d->roles[i]->name, name))
            return d->roles[i];
    return NULL;
}

struct drf_role *drf_role(struct drf *d, const char *name)
{
    struct drf_role *r = drf_role_find(d, name);
    if (r)
        return r;
    r = xzalloc(sizeof(*r));
    r->name = xstrdup(name);
    r->weight = 1;
    r->limit = (struct drf_res){DRF_UNLIMITED, DRF_UNLIMITED};
    d->roles = grow(d->roles, &d->cap_roles, d->n_roles, sizeof(*d->roles));
    r->pos = d->n_roles;
    d->roles[d->n_roles++] = r;
    return r;
}

void drf_role_set(struct drf_role *r, double weight, struct drf_res guarantee, struct drf_res limit)
{
    r->weight = weight > 0 ? weight : 1;
    r->guarantee = guarantee;
    r->limit = limit;
}

static bool below_guarantee(const struct drf_role *r)
{
    return r->alloc.cpus < r->guarantee.cpus || r->alloc.mem < r->guarantee.mem;
}

/* The roles' order: those below their guarantee first, then by weighted share, then name. */
static int role_cmp(const struct drf_role *a, const struct drf_role *b)
{
    bool ga = below_guarantee(a), gb = below_guarantee(b);
    if (ga != gb)
        return ga ? -1 : 1;
    if (a->share != b->share)
        return a->share < b->share ? -1 : 1;
    return strcmp(a->name, b->name);
}

static int client_cmp(const struct drf_client *a, const struct drf_client *b)
{
    if (a->share != b->share)
        return a->share < b->share ? -1 : 1;
    return strcmp(a->fw->id, b->fw->id);
}

static int role_qsort(const void *a, const void *b)
{
    return role_cmp(*(struct drf_role *const *) a, *(struct drf_role *const *) b);
}

static int client_qsort(const void *a, const void *b)
{
    return client_cmp(*(struct drf_client *const *) a, *(struct drf_client *const *) b);
}

/* ---- agents ----------------------------------------------------------------------------- */

struct drf_agent *drf_agent_add(struct drf *d, const char *id, void *owner)
{
    struct drf_agent *a = xzalloc(sizeof(*a));
    a->id = xstrdup(id);
    a->owner = owner;
    d->agents = grow(d->agents, &d->cap_agents, d->n_agents, sizeof(*d->agents));
    a->idx = d->n_agents;
    d->agents[d->n_agents++] = a;
    return a;
}

void drf_agent_remove(struct drf *d, struct drf_agent *a)
{
    drf_agent_activate(d, a, false);
    for (size_t i = 0; i < a->n_filters; i++)
        a->filters[i].fw->n_filters--;
    d->agents[a->idx] = d->agents[--d->n_agents];
    d->agents[a->idx]->idx = a->idx;
    if (d->start >= d->n_agents)
        d->start = 0;
    free(a->id);
    free(a->resv);
    free(a->filters);
    free(a);
}

void drf_agent_activate(struct drf *d, struct drf_agent *a, bool on)
{
    if (a->active == on)
        return;
    a->active = on;
    if (on)
        d->total = res_add(d->total, a->total);
    else
        d->total = res_sub(d->total, a->total);
}

void drf_agent_set(struct drf *d, struct drf_agent *a, struct drf_res total,
                   const char *const *resv_roles, const struct drf_res *resv, size_t n)
{
    bool was = a->active;
    drf_agent_activate(d, a, false);
    a->total = total;
    free(a->resv);
    a->resv = n ? xcalloc(n, sizeof(*a->resv)) : NULL;
    a->n_resv = 0;
    struct drf_res reserved = {0, 0};
    for (size_t i = 0; i < n; i++) {
        a->resv[a->n_resv++] =
                (struct drf_resv){.role = drf_role(d, resv_roles[i]), .res = resv[i]};
        reserved = res_add(reserved, resv[i]);
    }
    a->pool = res_sub(total, reserved);
    a->pool_used = (struct drf_res){0, 0};
    drf_agent_activate(d, a, was);
}

static struct drf_resv *resv_of(const struct drf_agent *a, const struct drf_role *r)
{
    for (size_t i = 0; i < a->n_resv; i++)
        if (a->resv[i].role == r)
            return &a->resv[i];
    return NULL;
}

struct drf_res drf_free_for(const struct drf_agent *a, const struct drf_role *r,
                            struct drf_res *ret_from_resv)
{
    const struct drf_resv *v = resv_of(a, r);
    struct drf_res own = v ? res_sub(v->res, v->used) : (struct drf_res){0, 0};
    if (ret_from_resv)
        *ret_from_resv = own;
    return res_add(own, res_sub(a->pool, a->pool_used));
}

/* ---- frameworks ------------------------------------------------------------------------- */

struct drf_fw *drf_fw_add(struct drf *d, const char *id, void *owner)
{
    struct drf_fw *fw = xzalloc(sizeof(*fw));
    fw->id = xstrdup(id);
    fw->owner = owner;
    d->fws = grow(d->fws, &d->cap_fws, d->n_fws, sizeof(*d->fws));
    d->fws[d->n_fws++] = fw;
    return fw;
}

void drf_fw_remove(struct drf *d, struct drf_fw *fw)
{
    drf_filters_clear(d, fw);
    for (size_t i = 0; i < fw->n_clients; i++) {
        struct drf_client *c = fw->clients[i];
        struct drf_role *r = c->role;
        memmove(&r->clients[c->pos], &r->clients[c->pos + 1],
                (r->n_clients - c->pos - 1) * sizeof(*r->clients));
        r->n_clients--;
        for (size_t k = c->pos; k < r->n_clients; k++)
            r->clients[k]->pos = k;
        free(c);
    }
    for (size_t i = 0; i < d->n_fws; i++) {
        if (d->fws[i] == fw) {
            d->fws[i] = d->fws[--d->n_fws];
            break;
        }
    }
    free(fw->clients);
    free(fw->id);
    free(fw);
}

struct drf_client *drf_client_find(const struct drf_fw *fw, const struct drf_role *r)
{
    for (size_t i = 0; fw && i < fw->n_clients; i++)
        if (fw->clients[i]->role == r)
            return fw->clients[i];
    return NULL;
}

struct drf_client *drf_client(struct drf *d, struct drf_fw *fw, struct drf_role *r)
{
    (void) d;
    struct drf_client *c = drf_client_find(fw, r);
    if (c)
        return c;
    c = xzalloc(sizeof(*c));
    c->fw = fw;
    c->role = r;
    fw->clients = xrealloc(fw->clients, (fw->n_clients + 1) * sizeof(*fw->clients));
    fw->clients[fw->n_clients++] = c;
    r->clients = grow(r->clients, &r->cap_clients, r->n_clients, sizeof(*r->clients));
    c->pos = r->n_clients;
    r->clients[r->n_clients++] = c;
    return c;
}

void drf_suppress(struct drf_fw *fw, const struct drf_role *r, bool on)
{
    for (size_t i = 0; i < fw->n_clients; i++)
        if (!r || fw->clients[i]->role == r)
            fw->clients[i]->suppressed = on;
}

/* ---- what is held ----------------------------------------------------------------------- */

static uint64_t sat_sub(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* One resource of an agent: a role with a reservation uses it first, the rest of its use
 * (its overflow) comes from the pool; other roles use the pool only. */
static void charge1(uint64_t *used, uint64_t res, uint64_t *pool_used, uint64_t q, int sign,
                    bool reserved)
{
    if (!reserved) {
        *pool_used = sign > 0 ? *pool_used + q : sat_sub(*pool_used, q);
        return;
    }
    uint64_t over = sat_sub(*used, res);
    *used = sign > 0 ? *used + q : sat_sub(*used, q);
    uint64_t over2 = sat_sub(*used, res);
    *pool_used = over2 >= over ? *pool_used + (over2 - over) : sat_sub(*pool_used, over - over2);
}

void drf_charge(struct drf *d, struct drf_agent *a, struct drf_role *r, struct drf_client *c,
                struct drf_res q, int sign)
{
    (void) d;
    if (sign > 0) {
        r->alloc = res_add(r->alloc, q);
        if (c)
            c->alloc = res_add(c->alloc, q);
    } else {
        r->alloc = res_sub(r->alloc, q);
        if (c)
            c->alloc = res_sub(c->alloc, q);
    }
    if (!a)
        return;
    struct drf_resv *v = resv_of(a, r);
    uint64_t none = 0;
    charge1(v ? &v->used.cpus : &none, v ? v->res.cpus : 0, &a->pool_used.cpus, q.cpus, sign,
            v != NULL);
    charge1(v ? &v->used.mem : &none, v ? v->res.mem : 0, &a->pool_used.mem, q.mem, sign,
            v != NULL);
}

/* ---- filters ---------------------------------------------------------------------------- */

void drf_filter_add(struct drf *d, struct drf_agent *a, struct drf_fw *fw, struct drf_role *r,
                    struct drf_res upto, uint64_t until_ns)
{
    (void) d;
    for (size_t i = 0; i < a->n_filters; i++) {
        struct drf_filter *f = &a->filters[i];
        if (f->fw == fw && f->role == r) { /* one per framework and role: the newest wins */
            f->upto = upto;
            f->until_ns = until_ns;
            return;
        }
    }
    a->filters = grow(a->filters, &a->cap_filters, a->n_filters, sizeof(*a->filters));
    a->filters[a->n_filters++] = (struct drf_filter){fw, r, upto, until_ns};
    fw->n_filters++;
}

static void filter_drop(struct drf_agent *a, size_t i)
{
    a->filters[i].fw->n_filters--;
    a->filters[i] = a->filters[--a->n_filters];
}

void drf_filters_clear(struct drf *d, struct drf_fw *fw)
{
    for (size_t k = 0; fw->n_filters && k < d->n_agents; k++) {
        struct drf_agent *a = d->agents[k];
        for (size_t i = 0; i < a->n_filters;) {
            if (a->filters[i].fw == fw)
                filter_drop(a, i);
            else
                i++;
        }
    }
}

/* Does a filter keep q of a from c? Expired filters go on the way. */
static bool filtered(struct drf_agent *a, const struct drf_client *c, struct drf_res q,
                     uint64_t now_ns)
{
    for (size_t i = 0; i < a->n_filters;) {
        struct drf_filter *f = &a->filters[i];
        if (f->until_ns <= now_ns) {
            filter_drop(a, i);
            continue;
        }
        if (f->fw == c->fw && (!f->role || f->role == c->role) && res_le(q, f->upto))
            return true;
        i++;
    }
    return false;
}

/* ---- the pass --------------------------------------------------------------------------- */

static void client_moved_up(struct drf_role *r, struct drf_client *c)
{
    size_t i = c->pos;
    while (i + 1 < r->n_clients && client_cmp(r->clients[i + 1], c) < 0) {
        r->clients[i] = r->clients[i + 1];
        r->clients[i]->pos = i;
        i++;
    }
    r->clients[i] = c;
    c->pos = i;
}

static void role_moved_up(struct drf *d, struct drf_role *r)
{
    size_t i = r->pos;
    while (i + 1 < d->n_roles && role_cmp(d->roles[i + 1], r) < 0) {
        d->roles[i] = d->roles[i + 1];
        d->roles[i]->pos = i;
        i++;
    }
    d->roles[i] = r;
    r->pos = i;
}

static void sort_all(struct drf *d)
{
    for (size_t i = 0; i < d->n_roles; i++) {
        struct drf_role *r = d->roles[i];
        r->share = drf_share(d, r->alloc) / r->weight;
        for (size_t k = 0; k < r->n_clients; k++)
            r->clients[k]->share = drf_share(d, r->clients[k]->alloc);
        if (r->n_clients > 1)
            qsort(r->clients, r->n_clients, sizeof(*r->clients), client_qsort);
        for (size_t k = 0; k < r->n_clients; k++)
            r->clients[k]->pos = k;
    }
    if (d->n_roles > 1)
        qsort(d->roles, d->n_roles, sizeof(*d->roles), role_qsort);
    for (size_t i = 0; i < d->n_roles; i++)
        d->roles[i]->pos = i;
}

/* The pass's view of the quota headroom (Mesos's): the unreserved free resources of the active
 * agents (avail) must stay at least the guarantees the roles have not reached (required). */
struct headroom {
    struct drf_res avail, required;
};

/* How much of a's free resources role r may be offered now, and from its reservation. */
static struct drf_res offerable(const struct drf *d, const struct headroom *h,
                                const struct drf_agent *a, const struct drf_role *r,
                                struct drf_res *ret_resv)
{
    struct drf_res own, all = drf_free_for(a, r, &own);
    struct drf_res pool = res_sub(all, own);
    /* a role below its guarantee may take up to its deficit of the headroom itself */
    struct drf_res deficit = res_sub(r->guarantee, r->alloc);
    struct drf_res surplus = res_sub(h->avail, h->required);
    pool = res_min(pool, res_add(surplus, deficit));
    struct drf_res q = res_min(res_add(own, pool), res_sub(r->limit, r->alloc));
    if (q.cpus < d->min_offer.cpus || q.mem < d->min_offer.mem)
        return (struct drf_res){0, 0};
    *ret_resv = res_min(own, q);
    return q;
}

/* Give q of a to c: charge it, keep the headroom, the shares and both orders true. */
static void give(struct drf *d, struct headroom *h, struct drf_agent *a, struct drf_client *c,
                 struct drf_res q, struct drf_res from_resv)
{
    struct drf_role *r = c->role;
    struct drf_res before = res_sub(r->guarantee, r->alloc);
    drf_charge(d, a, r, c, q, +1);
    struct drf_res after = res_sub(r->guarantee, r->alloc);
    h->avail = res_sub(h->avail, res_sub(q, from_resv));
    h->required = res_add(res_sub(h->required, before), after);
    c->share = drf_share(d, c->alloc);
    r->share = drf_share(d, r->alloc) / r->weight;
    client_moved_up(r, c);
    role_moved_up(d, r);
    if (d->offer)
        d->offer(d->arg, a, c, q, from_resv);
}

size_t drf_allocate(struct drf *d, uint64_t now_ns)
{
    if (!d->n_agents || !d->total.cpus || !d->total.mem)
        return 0;
    sort_all(d);
    struct headroom h = {{0, 0}, {0, 0}};
    for (size_t i = 0; i < d->n_agents; i++)
        if (d->agents[i]->active)
            h.avail = res_add(h.avail, res_sub(d->agents[i]->pool, d->agents[i]->pool_used));
    for (size_t i = 0; i < d->n_roles; i++)
        h.required = res_add(h.required, res_sub(d->roles[i]->guarantee, d->roles[i]->alloc));
    size_t made = 0, n = d->n_agents;
    for (size_t k = 0; k < n; k++) {
        struct drf_agent *a = d->agents[(d->start + k) % n];
        if (!a->active)
            continue;
        /* a role's reservation, then the pool: each allocation takes all that one role may
         * have, so an agent is done after at most one allocation per role */
        for (size_t rounds = 0; rounds <= d->n_roles; rounds++) {
            struct drf_client *pick = NULL;
            struct drf_res q = {0, 0}, from_resv = {0, 0};
            for (size_t i = 0; i < d->n_roles && !pick; i++) {
                struct drf_role *r = d->roles[i];
                if (!r->n_clients)
                    continue;
                q = offerable(d, &h, a, r, &from_resv);
                if (!q.cpus)
                    continue;
                for (size_t j = 0; j < r->n_clients && !pick; j++) {
                    struct drf_client *c = r->clients[j];
                    if (c->fw->active && !c->suppressed && !filtered(a, c, q, now_ns))
                        pick = c;
                }
            }
            if (!pick)
                break;
            give(d, &h, a, pick, q, from_resv);
            made++;
        }
    }
    d->start = n ? (d->start + 1) % n : 0;
    return made;
}

void drf_why(const struct drf *d, const struct drf_role *r, struct drf_res need,
             struct drf_why *ret)
{
    struct drf_why w = {0};
    w.over_limit = !res_le(res_add(r->alloc, need), r->limit);
    for (size_t i = 0; i < d->n_agents; i++) {
        const struct drf_agent *a = d->agents[i];
        if (!a->active)
            continue;
        w.agents++;
        const struct drf_resv *v = resv_of(a, r);
        if (res_le(need, res_add(a->pool, v ? v->res : (struct drf_res){0, 0})))
            w.could_hold++;
        struct drf_res f = drf_free_for(a, r, NULL);
        w.fit_now += res_le(need, f);
        w.most_free.cpus = f.cpus > w.most_free.cpus ? f.cpus : w.most_free.cpus;
        w.most_free.mem = f.mem > w.most_free.mem ? f.mem : w.most_free.mem;
    }
    *ret = w;
}
