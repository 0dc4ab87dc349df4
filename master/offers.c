/* SPDX-License-Identifier: Apache-2.0 */
/* master/offers.c - allocation passes and offers (docs/protocol.md "The scheduler API"). A
 * pass runs every allocation_interval and at once when resources were freed (a task ended,
 * an offer came back, an agent or a framework arrived: master_alloc_soon): it first rescinds
 * the offers of frameworks and agents that went, then lets the DRF core (allocator.c) decide,
 * makes one offer per allocation (the agent's free port ranges ride on one offer at a time),
 * and delivers each framework's new offers at once: OFFERS on its stream, or builtin.c's
 * placement. accept.c answers ACCEPT and DECLINE through the carve and close functions here;
 * offers unanswered for offer_timeout are rescinded. What an offer still holds stays charged
 * in the allocator until it goes. */
#include <string.h>

#include "master/master.h"

const double master_pass_bounds[7] = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.25};

struct m_offer *master_offer_find(struct master *m, const char *id)
{
    return id ? ml_table_get(&m->offers_by_id, id) : NULL;
}

static void offer_unlink(struct master *m, struct m_offer *o)
{
    for (struct m_offer **p = &m->offers; *p; p = &(*p)->next) {
        if (*p == o) {
            *p = o->next;
            break;
        }
    }
    ml_table_del(&m->offers_by_id, o->id);
    m->n_offers--;
    if (o->ports)
        o->ag->ports_offered = false;
    free(o->ports);
    free(o);
}

/* What is left of o goes back to the allocator, and o goes. */
static void offer_release(struct master *m, struct m_offer *o)
{
    drf_charge(&m->drf, o->ag->drf, o->client->role, o->client, o->remaining, -1);
    offer_unlink(m, o);
    master_alloc_soon(m);
}

void master_offer_carve(struct master *m, struct m_offer *o, struct drf_res q)
{
    q.cpus = q.cpus < o->remaining.cpus ? q.cpus : o->remaining.cpus;
    q.mem = q.mem < o->remaining.mem ? q.mem : o->remaining.mem;
    o->remaining.cpus -= q.cpus;
    o->remaining.mem -= q.mem;
    drf_charge(&m->drf, o->ag->drf, o->client->role, o->client, q, -1);
}

void master_offer_close(struct master *m, struct m_offer *o, double refuse_s, bool accepted)
{
    if (refuse_s > 0 && (o->remaining.cpus || o->remaining.mem))
        drf_filter_add(&m->drf, o->ag->drf, o->fw->drf, o->client->role, o->remaining,
                       now_monotonic_ns() + (uint64_t) (refuse_s * 1e9));
    if (accepted) {
        o->fw->offers_accepted++;
        m->offers_accepted_total++;
    } else {
        o->fw->offers_declined++;
        m->offers_declined_total++;
    }
    offer_release(m, o);
}

void master_offer_rescind(struct master *m, struct m_offer *o, const char *why)
{
    _cleanup_free_ char *p = xasprintf("{\"offer_id\": \"%s\", \"reason\": \"%s\"}", o->id, why);
    (void) master_fw_send(o->fw, ML_SCHED_RESCIND, p);
    log_debug("offer '%s' to framework '%s' rescinded: %s", o->id, o->fw->id, why);
    o->fw->offers_rescinded++;
    m->offers_rescinded_total++;
    offer_release(m, o);
}

void master_offers_rescind_agent(struct master *m, struct m_agent *ag, const char *why)
{
    for (struct m_offer *o = m->offers, *next; o; o = next) {
        next = o->next;
        if (o->ag == ag)
            master_offer_rescind(m, o, why);
    }
}

void master_offers_rescind_fw(struct master *m, struct m_framework *fw, const char *why)
{
    for (struct m_offer *o = m->offers, *next; o; o = next) {
        next = o->next;
        if (o->fw == fw)
            master_offer_rescind(m, o, why);
    }
}

void master_offers_expire(struct master *m, uint64_t now_ns)
{
    uint64_t limit = m->cfg.offer_timeout_ms * 1000000ULL;
    for (struct m_offer *o = m->offers, *next; limit && o; o = next) {
        next = o->next;
        if (o->fw->builtin || now_ns - o->created_ns < limit)
            continue;
        /* kept from it a little, so that the others get what it sat on */
        drf_filter_add(&m->drf, o->ag->drf, o->fw->drf, o->client->role, o->remaining,
                       now_ns + (uint64_t) (ML_SCHED_REFUSE_DEFAULT * 1e9));
        log_info("offer '%s' to framework '%s' (%s): unanswered for offer_timeout, rescinded",
                 o->id, o->fw->id, o->fw->name);
        master_offer_rescind(m, o, "offer_timeout: the offer was not answered in time");
    }
}

void master_offers_free(struct master *m)
{
    while (m->offers) {
        struct m_offer *o = m->offers;
        m->offers = o->next;
        free(o->ports);
        free(o);
    }
    ml_table_free(&m->offers_by_id);
}

static void to_ml(const struct m_offer *o, struct ml_offer *x)
{
    *x = (struct ml_offer){.hostname = o->ag->hostname,
                           .role = o->client->role->name,
                           .cpus_millis = o->remaining.cpus,
                           .mem_bytes = o->remaining.mem,
                           .reserved_cpus_millis = o->reserved.cpus,
                           .reserved_mem_bytes = o->reserved.mem,
                           .ports = o->ports,
                           .attrs = o->ag->attrs,
                           .n_attrs = o->ag->n_attrs,
                           .address = o->ag->address};
    snprintf(x->id, sizeof(x->id), "%s", o->id);
    snprintf(x->agent_id, sizeof(x->agent_id), "%s", o->ag->id);
}

void master_offer_json(const struct m_offer *o, yajl_gen g)
{
    struct ml_offer x;
    to_ml(o, &x);
    yajl_gen_map_open(g);
    json_kv_str(g, "id", o->id);
    json_kv_str(g, "framework_id", o->fw->id);
    json_kv_str(g, "framework_name", o->fw->name);
    json_kv_str(g, "agent_id", o->ag->id);
    json_kv_str(g, "hostname", o->ag->hostname);
    json_kv_str(g, "address", o->ag->address && o->ag->address[0] ? o->ag->address : NULL);
    json_str(g, "attributes");
    ml_attrs_gen(g, x.attrs, x.n_attrs);
    json_kv_str(g, "role", x.role);
    json_str(g, "resources");
    yajl_gen_map_open(g);
    json_kv_cpus(g, "cpus", x.cpus_millis);
    json_kv_u64(g, "mem", x.mem_bytes);
    json_kv_str(g, "ports", x.ports);
    yajl_gen_map_close(g);
    json_kv_double(g, "created_at", o->created_at);
    json_kv_double(g, "age_seconds", (double) (now_monotonic_ns() - o->created_ns) / 1e9);
    yajl_gen_map_close(g);
}

/* ---- the pass --------------------------------------------------------------------------- */

struct pass {
    struct master *m;
    struct m_offer **made;
    size_t n, cap;
};

/* drf's offer callback: one allocation becomes one offer (already charged by drf). */
static void on_alloc(void *arg, struct drf_agent *a, struct drf_client *c, struct drf_res q,
                     struct drf_res from_resv)
{
    struct pass *p = arg;
    struct master *m = p->m;
    struct m_offer *o = xzalloc(sizeof(*o));
    char hex[17];
    if (random_hex(hex, 16) < 0) /* no randomness: a counter keeps ids unique */
        snprintf(hex, sizeof(hex), "%016llx", (unsigned long long) m->offers_made_total);
    snprintf(o->id, sizeof(o->id), "o-%s", hex);
    o->fw = c->fw->owner;
    o->ag = a->owner;
    o->client = c;
    o->res = o->remaining = q;
    o->reserved = from_resv;
    /* ports are not divided: one offer on the agent holds its free ranges at a time */
    if (!o->ag->ports_offered && o->ag->ports && o->ag->ports[0]) {
        o->ports = master_agent_free_ports(o->ag);
        o->ag->ports_offered = o->ports != NULL;
    }
    o->created_ns = now_monotonic_ns();
    o->created_at = now_realtime();
    o->next = m->offers;
    m->offers = o;
    m->n_offers++;
    ml_table_put(&m->offers_by_id, o->id, o);
    o->fw->offers_made++;
    m->offers_made_total++;
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 64;
        p->made = xrealloc(p->made, p->cap * sizeof(*p->made));
    }
    p->made[p->n++] = o;
}

/* OFFERS on fw's stream: every new offer of this pass at once. */
static void send_offers(struct master *m, struct m_framework *fw, struct m_offer **offers, size_t n)
{
    if (!fw->stream) { /* went during the pass (cannot happen: it was active) */
        for (size_t i = 0; i < n; i++)
            master_offer_rescind(m, offers[i], "the framework is not connected");
        return;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_str(g, "offers");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < n; i++) {
        struct ml_offer x;
        to_ml(offers[i], &x);
        ml_offer_gen(g, &x);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    _cleanup_free_ char *payload = json_gen_take(g);
    master_fw_send(fw, ML_SCHED_OFFERS, payload);
}

static int by_framework(const void *a, const void *b)
{
    const struct m_offer *x = *(struct m_offer *const *) a, *y = *(struct m_offer *const *) b;
    int c = strcmp(x->fw->id, y->fw->id);
    return c ? c : strcmp(x->id, y->id);
}

void master_alloc_pass(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct master *m = arg;
    if (m->in_pass)
        return;
    uint64_t t0 = now_monotonic_ns();
    for (struct m_offer *o = m->offers, *next; o; o = next) {
        next = o->next;
        if (!o->ag->drf->active)
            master_offer_rescind(m, o, "the agent is not connected");
        else if (!o->fw->drf || !o->fw->drf->active)
            master_offer_rescind(m, o, "the framework is not connected");
    }
    struct pass p = {.m = m};
    m->drf.offer = on_alloc;
    m->drf.arg = &p;
    m->in_pass = true;
    (void) drf_allocate(&m->drf, t0);
    m->in_pass = false;
    m->drf.offer = NULL;
    double d = (double) (now_monotonic_ns() - t0) / 1e9;
    size_t b = 0;
    while (b < ARRAY_SIZE(master_pass_bounds) && d > master_pass_bounds[b])
        b++;
    m->alloc_buckets[b]++;
    m->alloc_sum += d;
    m->alloc_last = d;
    m->alloc_passes_total++;
    m->last_pass_ns = t0;
    if (p.n)
        log_debug("allocation pass: %zu offer(s) in %.3f ms", p.n, d * 1e3);
    /* deliver: each framework's offers in one go (the built-in one may accept at once, which
     * schedules the next pass for what it leaves) */
    if (p.n > 1) /* qsort(NULL, 0) is undefined (UBSan) */
        qsort(p.made, p.n, sizeof(*p.made), by_framework);
    for (size_t i = 0, j; i < p.n; i = j) {
        struct m_framework *fw = p.made[i]->fw;
        for (j = i; j < p.n && p.made[j]->fw == fw; j++)
            ;
        if (fw->deliver)
            fw->deliver(m, fw, p.made + i, j - i);
        else
            send_offers(m, fw, p.made + i, j - i);
    }
    free(p.made);
    master_check(m, "allocation pass");
}
