/* SPDX-License-Identifier: Apache-2.0 */
/* master/accept.c - a framework's answers to its offers (docs/protocol.md, ACCEPT and
 * DECLINE): ACCEPT is checked whole - its offers outstanding for this framework, on one agent
 * in one role, each LAUNCH a task spec (masterlink/spec.c, plus an optional "task_id") in that
 * role whose ports lie in the offers' ranges, all of them within what the offers hold - and
 * then its tasks are made (tasks.c) with their resources carved out of the offers, or it is
 * refused with the reason and the offers go back to be offered again. What an ACCEPT leaves
 * and what a DECLINE returns is kept from the framework for refuse_seconds. offers.c keeps
 * the offers; this file only answers. */
#include <string.h>

#include "master/master.h"

/* filters.refuse_seconds of a call, or the default (5 s). */
static double refuse_seconds(yajl_val payload)
{
    double s = ML_SCHED_REFUSE_DEFAULT;
    if (json_get_double(json_get(payload, "filters"), "refuse_seconds", &s) && s >= 0 &&
        s <= 31536000)
        return s;
    return ML_SCHED_REFUSE_DEFAULT;
}

/* "offer_ids": the framework's outstanding offers among them into out (at most max). Unknown
 * ids count in *ret_unknown (the first one named in *ret_first). */
static size_t offers_of(struct master *m, struct m_framework *fw, yajl_val ids,
                        struct m_offer **out, size_t max, size_t *ret_unknown,
                        const char **ret_first)
{
    size_t n = 0, unknown = 0;
    *ret_first = NULL;
    for (size_t i = 0; ids && YAJL_IS_ARRAY(ids) && i < ids->u.array.len; i++) {
        yajl_val x = ids->u.array.values[i];
        struct m_offer *o = YAJL_IS_STRING(x) ? master_offer_find(m, x->u.string) : NULL;
        bool dup = false;
        for (size_t k = 0; o && k < n; k++)
            dup = dup || out[k] == o;
        if (!o || o->fw != fw || n >= max) {
            unknown++;
            *ret_first = *ret_first ? *ret_first : YAJL_IS_STRING(x) ? x->u.string : "?";
        } else if (!dup) {
            out[n++] = o;
        }
    }
    *ret_unknown = unknown;
    return n;
}

int master_offers_decline(struct master *m, struct m_framework *fw, yajl_val payload,
                          struct berr **err)
{
    struct m_offer *offers[256];
    size_t unknown;
    const char *first;
    yajl_val ids = json_get(payload, "offer_ids");
    if (!ids || !YAJL_IS_ARRAY(ids))
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "DECLINE needs \"offer_ids\": [\"o-...\"]");
    size_t n = offers_of(m, fw, ids, offers, ARRAY_SIZE(offers), &unknown, &first);
    double refuse = refuse_seconds(payload);
    for (size_t i = 0; i < n; i++)
        master_offer_close(m, offers[i], refuse, false);
    /* an offer rescinded meanwhile is no error: the master took it back already */
    if (unknown)
        log_debug("framework '%s': DECLINE of %zu offer(s) it does not hold (first '%.40s')",
                  fw->id, unknown, first);
    return 0;
}

/* One LAUNCH's task: the spec parsed, and its "task_id" when the framework chose one. */
struct launch {
    struct ml_task_spec spec;
    char *task_id;
};

/* Parse v (a task spec, possibly with "task_id"): the spec parser sees v without it. */
static int launch_parse(yajl_val v, struct launch *ret, struct berr **err)
{
    *ret = (struct launch){0};
    if (!v || !YAJL_IS_OBJECT(v))
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "a task must be an object");
    size_t len = v->u.object.len, at = len;
    for (size_t i = 0; i < len; i++)
        if (streq(v->u.object.keys[i], "task_id"))
            at = i;
    if (at < len) {
        yajl_val id = v->u.object.values[at];
        const char *s = YAJL_IS_STRING(id) ? id->u.string : NULL;
        if (!s || !ml_id_valid(s) || !ml_name_valid(s) || strlen(s) > 63)
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "task_id: 1-63 of [A-Za-z0-9_-], not starting with '-'");
        ret->task_id = xstrdup(s);
        /* hide it: swap it to the end and shorten the object while the spec is parsed */
        const char *k = v->u.object.keys[at];
        v->u.object.keys[at] = v->u.object.keys[len - 1];
        v->u.object.values[at] = v->u.object.values[len - 1];
        v->u.object.keys[len - 1] = k;
        v->u.object.values[len - 1] = id;
        v->u.object.len--;
    }
    int r = ml_task_spec_parse(v, 0, &ret->spec, err);
    v->u.object.len = len;
    if (r < 0) {
        free(ret->task_id);
        ret->task_id = NULL;
    }
    return r;
}

/* Every LAUNCH of the operations into *ret (n of them). */
static int launches_parse(yajl_val ops, struct launch **ret, size_t *ret_n, struct berr **err)
{
    size_t n = 0, cap = 0;
    struct launch *l = NULL;
    int r = 0;
    if (!ops || !YAJL_IS_ARRAY(ops))
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "ACCEPT needs \"operations\": [{\"type\": \"LAUNCH\", \"launch\": "
                         "{\"tasks\": [...]}}]");
    for (size_t i = 0; r == 0 && i < ops->u.array.len; i++) {
        yajl_val op = ops->u.array.values[i];
        const char *type = json_get_str(op, "type");
        yajl_val tasks = json_get(json_get(op, "launch"), "tasks");
        if (!type || !streq(type, "LAUNCH") || !tasks || !YAJL_IS_ARRAY(tasks)) {
            r = berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                          "operations[%zu]: only {\"type\": \"LAUNCH\", \"launch\": {\"tasks\": "
                          "[...]}} is known",
                          i);
            break;
        }
        for (size_t k = 0; r == 0 && k < tasks->u.array.len; k++) {
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                l = xrealloc(l, cap * sizeof(*l));
            }
            if ((r = launch_parse(tasks->u.array.values[k], &l[n], err)) < 0)
                berr_wrap(err, "operations[%zu].launch.tasks[%zu]", i, k);
            else
                n++;
        }
    }
    *ret = l;
    *ret_n = n;
    return r;
}

static void launches_free(struct launch *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ml_task_spec_done(&l[i].spec);
        free(l[i].task_id);
    }
    free(l);
}

/* The launches against the offers (one agent, one role, resources, ports, ids). */
static int check(struct master *m, struct m_offer **offers, size_t n, struct launch *l, size_t nl,
                 struct berr **err)
{
    struct m_agent *ag = offers[0]->ag;
    struct drf_role *role = offers[0]->client->role;
    struct drf_res have = {0, 0}, need = {0, 0};
    const char *ports = NULL;
    for (size_t i = 0; i < n; i++) {
        if (offers[i]->ag != ag || offers[i]->client->role != role)
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "offers '%s' and '%s' are of different agents or roles: an ACCEPT "
                             "takes offers of one agent in one role",
                             offers[0]->id, offers[i]->id);
        have.cpus += offers[i]->remaining.cpus;
        have.mem += offers[i]->remaining.mem;
        ports = ports ? ports : offers[i]->ports;
    }
    uint64_t n_ports = 0;
    for (size_t i = 0; i < nl; i++) {
        const struct ml_task_spec *s = &l[i].spec;
        if (s->role && !streq(s->role, role->name))
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "task %zu asks for role '%s'; the offers are of role '%s'", i, s->role,
                             role->name);
        for (size_t k = 0; l[i].task_id && k < i; k++)
            if (l[k].task_id && streq(l[k].task_id, l[i].task_id))
                return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "task_id '%s' is given twice",
                                 l[i].task_id);
        if (l[i].task_id && master_task_find(m, l[i].task_id))
            return berr_setc(err, EEXIST, BERR_CONFLICT, "task id '%s' is in use", l[i].task_id);
        need.cpus += s->cpus_millis;
        need.mem += s->mem_bytes;
        n_ports += s->n_ports;
        for (size_t k = 0; k < s->n_ports; k++)
            if (s->ports[k].host_port && !ml_ports_contain(ports, s->ports[k].host_port))
                return berr_setc(err, ENOSPC, BERR_INSUFFICIENT_RESOURCES,
                                 "task %zu: host port %u is not in the offers' ports (%s)", i,
                                 s->ports[k].host_port, ports ? ports : "none");
    }
    if (need.cpus > have.cpus || need.mem > have.mem || n_ports > ml_ports_count(ports)) {
        char nc[32], nm[32], hc[32], hm[32];
        format_cpus(need.cpus, nc, sizeof(nc));
        format_size(need.mem, nm, sizeof(nm));
        format_cpus(have.cpus, hc, sizeof(hc));
        format_size(have.mem, hm, sizeof(hm));
        const char *what = need.cpus > have.cpus && need.mem > have.mem ? "cpus and mem"
                           : need.cpus > have.cpus                      ? "cpus"
                           : need.mem > have.mem                        ? "mem"
                                                                        : "ports";
        return berr_setc(err, ENOSPC, BERR_INSUFFICIENT_RESOURCES,
                         "the launches need more %s than the offers hold: %s cpus, %s mem and "
                         "%llu port(s) asked, %s cpus, %s mem and %llu port(s) offered",
                         what, nc, nm, (unsigned long long) n_ports, hc, hm,
                         (unsigned long long) ml_ports_count(ports));
    }
    if (m->n_tasks + nl > m->cfg.max_tasks)
        return berr_setc(err, EAGAIN, BERR_UNAVAILABLE, "the registry holds max_tasks (%llu) tasks",
                         (unsigned long long) m->cfg.max_tasks);
    return 0;
}

/* Carve q out of the offers, the first ones first. */
static void carve(struct master *m, struct m_offer **offers, size_t n, struct drf_res q)
{
    for (size_t i = 0; i < n && (q.cpus || q.mem); i++) {
        struct drf_res take = {q.cpus < offers[i]->remaining.cpus ? q.cpus
                                                                  : offers[i]->remaining.cpus,
                               q.mem < offers[i]->remaining.mem ? q.mem : offers[i]->remaining.mem};
        master_offer_carve(m, offers[i], take);
        q.cpus -= take.cpus;
        q.mem -= take.mem;
    }
}

int master_offers_accept(struct master *m, struct m_framework *fw, yajl_val payload, yajl_gen reply,
                         struct berr **err)
{
    struct m_offer *offers[64];
    size_t unknown, nl = 0;
    const char *first;
    struct launch *l = NULL;
    yajl_val ids = json_get(payload, "offer_ids");
    size_t n = offers_of(m, fw, ids, offers, ARRAY_SIZE(offers), &unknown, &first);
    int r = 0;
    if (!ids || !YAJL_IS_ARRAY(ids) || !ids->u.array.len || (!n && !unknown))
        r = berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                      "ACCEPT needs \"offer_ids\": [\"o-...\"] (one agent's offers)");
    else if (unknown)
        r = berr_setc(err, ENOENT, BERR_NOT_FOUND,
                      "offer '%.40s' is not outstanding for framework '%s' (rescinded, "
                      "answered, or never made)",
                      first, fw->id);
    else if (launches_parse(json_get(payload, "operations"), &l, &nl, err) < 0 ||
             check(m, offers, n, l, nl, err) < 0)
        r = -berr_errno(*err);
    if (r < 0 || !n) { /* (!n: no offer, said above; spelled out for the analyzer) */
        /* refused whole: its offers come back now, to be offered again */
        for (size_t i = 0; i < n; i++)
            master_offer_close(m, offers[i], 0, false);
        launches_free(l, nl);
        log_info("framework '%s': ACCEPT refused: %s", fw->id, berr_msg(*err));
        return r < 0 ? r : -EINVAL;
    }
    struct m_agent *ag = offers[0]->ag;
    const char *role = offers[0]->client->role->name;
    json_str(reply, "tasks");
    yajl_gen_array_open(reply);
    for (size_t i = 0; i < nl; i++) {
        struct m_task *t = NULL;
        carve(m, offers, n, (struct drf_res){l[i].spec.cpus_millis, l[i].spec.mem_bytes});
        if (master_task_create(m, fw, &l[i].spec, l[i].task_id, ag, role, &t, err) < 0) {
            /* what it had carved goes back with the offers below */
            log_error("framework '%s': ACCEPT: task %zu: %s", fw->id, i, berr_msg(*err));
            r = -EIO;
            break;
        }
        yajl_gen_map_open(reply);
        json_kv_str(reply, "task_id", t->id);
        json_kv_str(reply, "name", t->name);
        yajl_gen_map_close(reply);
    }
    yajl_gen_array_close(reply);
    double refuse = refuse_seconds(payload);
    for (size_t i = 0; i < n; i++)
        master_offer_close(m, offers[i], r < 0 ? 0 : refuse, true);
    launches_free(l, nl);
    return r;
}
