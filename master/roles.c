/* SPDX-License-Identifier: Apache-2.0 */
/* master/roles.c - the roles' weights and quota (docs/config.md "[role.NAME]", docs/api.md
 * "/v1/roles"): [role.NAME] sections of master.conf first, then what an admin set through
 * PUT /v1/roles/NAME, which master.db keeps and which wins at the next start. The allocator
 * (allocator.c) holds the values; this file checks, applies, saves and shows them. */
#include <string.h>

#include "master/master.h"

/* A role's settings as master.db keeps them and the API shows them. */
static void settings_gen(yajl_gen g, const struct drf_role *r)
{
    json_kv_double(g, "weight", r->weight);
    json_str(g, "guarantee");
    yajl_gen_map_open(g);
    json_kv_cpus(g, "cpus", r->guarantee.cpus);
    json_kv_u64(g, "mem", r->guarantee.mem);
    yajl_gen_map_close(g);
    json_str(g, "limit");
    yajl_gen_map_open(g);
    if (r->limit.cpus == DRF_UNLIMITED)
        json_kv_null(g, "cpus");
    else
        json_kv_cpus(g, "cpus", r->limit.cpus);
    if (r->limit.mem == DRF_UNLIMITED)
        json_kv_null(g, "mem");
    else
        json_kv_u64(g, "mem", r->limit.mem);
    yajl_gen_map_close(g);
}

/* {"cpus": C, "mem": M} of v[key] into *q: absent keys keep what *q holds; null = none
 * (limit: unlimited, guarantee: 0). 0 or -EINVAL with err. */
static int amounts(yajl_val v, const char *key, struct drf_res *q, uint64_t none, struct berr **err)
{
    yajl_val o = json_get(v, key);
    if (!o)
        return 0;
    if (!YAJL_IS_OBJECT(o))
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "\"%s\" must be an object {\"cpus\", \"mem\"}", key);
    for (size_t i = 0; i < o->u.object.len; i++) {
        const char *k = o->u.object.keys[i];
        yajl_val x = o->u.object.values[i];
        uint64_t *dst = streq(k, "cpus") ? &q->cpus : streq(k, "mem") ? &q->mem : NULL;
        if (!dst)
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "%s: unknown field '%.64s' (cpus, mem)", key, k);
        uint64_t zero = 1;
        if (YAJL_IS_NULL(x))
            *dst = none;
        else if (json_get_u64(o, k, &zero) && zero == 0) /* the parsers refuse a 0 amount */
            *dst = 0;
        else if (!(dst == &q->cpus ? json_get_cpus(o, k, dst) : json_get_size(o, k, dst)))
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "%s.%s: want %s, or null for none",
                             key, k, dst == &q->cpus ? "cpus (1.5)" : "a size (4GiB, or bytes)");
    }
    return 0;
}

/* The settings in v applied over r's: checked whole before any is set. */
static int apply(struct drf_role *r, yajl_val v, struct berr **err)
{
    double weight = r->weight;
    struct drf_res guarantee = r->guarantee, limit = r->limit;
    for (size_t i = 0; v && YAJL_IS_OBJECT(v) && i < v->u.object.len; i++) {
        const char *k = v->u.object.keys[i];
        if (!streq(k, "weight") && !streq(k, "guarantee") && !streq(k, "limit"))
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "role '%s': unknown field '%.64s' (weight, guarantee, limit)", r->name,
                             k);
    }
    if (!v || !YAJL_IS_OBJECT(v))
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "a role's settings are an object {\"weight\", \"guarantee\", \"limit\"}");
    if (json_get(v, "weight") &&
        (!json_get_double(v, "weight", &weight) || weight <= 0 || weight > 1000))
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "role '%s': weight must be a number above 0, at most 1000", r->name);
    if (amounts(v, "guarantee", &guarantee, 0, err) < 0 ||
        amounts(v, "limit", &limit, DRF_UNLIMITED, err) < 0)
        return berr_wrap(err, "role '%s'", r->name);
    if (guarantee.cpus > limit.cpus || guarantee.mem > limit.mem)
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "role '%s': the guarantee is above the limit", r->name);
    drf_role_set(r, weight, guarantee, limit);
    return 0;
}

static int load_row(struct master *m, const char *name, const char *json)
{
    _cleanup_berr_ struct berr *err = NULL;
    yajl_val v = json ? yajl_tree_parse(json, NULL, 0) : NULL;
    if (ml_role_valid(name) && apply(drf_role(&m->drf, name), v, &err) < 0)
        log_warning("master.db: role '%s': %s: ignored", name, berr_msg(err));
    yajl_tree_free(v);
    return 0;
}

int master_roles_load(struct master *m, struct berr **err)
{
    for (size_t i = 0; i < m->cfg.n_roles; i++) {
        const struct m_role_cfg *c = &m->cfg.roles[i];
        drf_role_set(drf_role(&m->drf, c->name), c->weight, c->guarantee, c->limit);
    }
    return master_store_roles_load(m, load_row, err);
}

int master_role_update(struct master *m, const char *name, yajl_val body, struct berr **err)
{
    if (!ml_role_valid(name))
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "'%.64s' is not a role name (\"*\" or 1-64 of a-z, 0-9, _ and -)", name);
    struct drf_role *r = drf_role(&m->drf, name);
    double weight = r->weight;
    struct drf_res guarantee = r->guarantee, limit = r->limit;
    if (apply(r, body, err) < 0)
        return -EINVAL;
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    settings_gen(g, r);
    yajl_gen_map_close(g);
    _cleanup_free_ char *json = json_gen_take(g);
    if (master_store_role_put(m, name, json) < 0) {
        drf_role_set(r, weight, guarantee, limit);
        return berr_setc(err, EIO, BERR_INTERNAL, "cannot record role '%s' in master.db", name);
    }
    log_info("role '%s': weight %g, guarantee %llu millicores %llu bytes (set through the API)",
             name, r->weight, (unsigned long long) r->guarantee.cpus,
             (unsigned long long) r->guarantee.mem);
    master_alloc_soon(m);
    return 0;
}

void master_role_json(struct master *m, const struct drf_role *r, yajl_gen g)
{
    yajl_gen_map_open(g);
    json_kv_str(g, "name", r->name);
    settings_gen(g, r);
    json_str(g, "allocated");
    yajl_gen_map_open(g);
    json_kv_cpus(g, "cpus", r->alloc.cpus);
    json_kv_u64(g, "mem", r->alloc.mem);
    yajl_gen_map_close(g);
    double share = drf_share(&m->drf, r->alloc);
    json_kv_double(g, "dominant_share", share);
    json_kv_double(g, "weighted_share", share / r->weight);
    json_kv_u64(g, "frameworks", r->n_clients);
    yajl_gen_map_close(g);
}
