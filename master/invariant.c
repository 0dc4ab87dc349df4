/* SPDX-License-Identifier: Apache-2.0 */
/* master/invariant.c - test mode ([master] check_invariants = true, the chaos test's hook):
 * after every request, pass and tick, the allocator's books are recomputed from the tasks and
 * offers and compared: every role's and framework's allocation, every agent's use of its pool
 * and of its roles' reservations, and that no offer is outstanding on an agent whose tasks and
 * offers together hold more than it has (an offer of resources already in use). A mismatch is
 * logged ("invariant violated: ...") and counted (berth_master_invariant_violations_total).
 * O(tasks x frameworks): meant for tests, off by default. */
#include <string.h>

#include "master/master.h"

static void violated(struct master *m, const char *when, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void violated(struct master *m, const char *when, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    m->invariant_violations_total++;
    log_limited("invariant", LOG_ERR, 0, "invariant violated after %s: %s", when, msg);
}

static bool live_placed(const struct m_task *t)
{
    return t->agent_id[0] && !ml_state_terminal(t->state);
}

/* What role r holds on agent ag by the tasks and offers (the allocator's truth). */
static struct drf_res held(struct master *m, const struct m_agent *ag, const struct drf_role *r)
{
    struct drf_res q = {0, 0};
    for (const struct m_task *t = m->tasks; t; t = t->next) {
        if (live_placed(t) && streq(t->agent_id, ag->id) && (!r || streq(t->role, r->name))) {
            q.cpus += t->cpus_millis;
            q.mem += t->mem_bytes;
        }
    }
    for (const struct m_offer *o = m->offers; o; o = o->next) {
        if (o->ag == ag && (!r || o->client->role == r)) {
            q.cpus += o->remaining.cpus;
            q.mem += o->remaining.mem;
        }
    }
    return q;
}

static void check_agent(struct master *m, const struct m_agent *ag, const char *when)
{
    const struct drf_agent *a = ag->drf;
    struct drf_res pool = {0, 0};
    bool over = false;
    for (size_t i = 0; i < m->drf.n_roles; i++) {
        const struct drf_role *r = m->drf.roles[i];
        struct drf_res q = held(m, ag, r);
        const struct drf_resv *v = NULL;
        for (size_t k = 0; k < a->n_resv; k++)
            if (a->resv[k].role == r)
                v = &a->resv[k];
        if (!v) {
            pool.cpus += q.cpus;
            pool.mem += q.mem;
            continue;
        }
        if (v->used.cpus != q.cpus || v->used.mem != q.mem)
            violated(m, when, "agent '%s', role '%s': reservation used %llu/%llu, held %llu/%llu",
                     ag->id, r->name, (unsigned long long) v->used.cpus,
                     (unsigned long long) v->used.mem, (unsigned long long) q.cpus,
                     (unsigned long long) q.mem);
        pool.cpus += q.cpus > v->res.cpus ? q.cpus - v->res.cpus : 0;
        pool.mem += q.mem > v->res.mem ? q.mem - v->res.mem : 0;
    }
    if (a->pool_used.cpus != pool.cpus || a->pool_used.mem != pool.mem)
        violated(m, when, "agent '%s': pool used %llu/%llu, held %llu/%llu", ag->id,
                 (unsigned long long) a->pool_used.cpus, (unsigned long long) a->pool_used.mem,
                 (unsigned long long) pool.cpus, (unsigned long long) pool.mem);
    over = pool.cpus > a->pool.cpus || pool.mem > a->pool.mem;
    for (const struct m_offer *o = m->offers; over && o; o = o->next)
        if (o->ag == ag)
            violated(m, when,
                     "offer '%s' is outstanding on agent '%s', whose tasks and offers hold "
                     "%llu millicores and %llu bytes of its pool of %llu and %llu",
                     o->id, ag->id, (unsigned long long) pool.cpus, (unsigned long long) pool.mem,
                     (unsigned long long) a->pool.cpus, (unsigned long long) a->pool.mem);
}

void master_check(struct master *m, const char *when)
{
    if (!m->cfg.check_invariants || m->in_pass)
        return;
    for (const struct m_agent *ag = m->agents; ag; ag = ag->next)
        check_agent(m, ag, when);
    for (size_t i = 0; i < m->drf.n_roles; i++) {
        const struct drf_role *r = m->drf.roles[i];
        struct drf_res q = {0, 0};
        for (const struct m_task *t = m->tasks; t; t = t->next) {
            if (live_placed(t) && streq(t->role, r->name)) {
                q.cpus += t->cpus_millis;
                q.mem += t->mem_bytes;
            }
        }
        for (const struct m_offer *o = m->offers; o; o = o->next) {
            if (o->client->role == r) {
                q.cpus += o->remaining.cpus;
                q.mem += o->remaining.mem;
            }
        }
        if (q.cpus != r->alloc.cpus || q.mem != r->alloc.mem)
            violated(m, when, "role '%s': allocated %llu/%llu, held %llu/%llu", r->name,
                     (unsigned long long) r->alloc.cpus, (unsigned long long) r->alloc.mem,
                     (unsigned long long) q.cpus, (unsigned long long) q.mem);
    }
    for (const struct m_framework *fw = m->frameworks; fw; fw = fw->next) {
        for (size_t i = 0; fw->drf && i < fw->drf->n_clients; i++) {
            const struct drf_client *c = fw->drf->clients[i];
            struct drf_res q = {0, 0};
            for (const struct m_task *t = m->tasks; t; t = t->next) {
                if (live_placed(t) && streq(t->framework_id, fw->id) &&
                    streq(t->role, c->role->name)) {
                    q.cpus += t->cpus_millis;
                    q.mem += t->mem_bytes;
                }
            }
            for (const struct m_offer *o = m->offers; o; o = o->next) {
                if (o->client == c) {
                    q.cpus += o->remaining.cpus;
                    q.mem += o->remaining.mem;
                }
            }
            if (q.cpus != c->alloc.cpus || q.mem != c->alloc.mem)
                violated(m, when, "framework '%s', role '%s': allocated %llu/%llu, held %llu/%llu",
                         fw->id, c->role->name, (unsigned long long) c->alloc.cpus,
                         (unsigned long long) c->alloc.mem, (unsigned long long) q.cpus,
                         (unsigned long long) q.mem);
        }
    }
}
