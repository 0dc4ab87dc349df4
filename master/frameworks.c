/* SPDX-License-Identifier: Apache-2.0 */
/* master/frameworks.c - the master's registry of frameworks (docs/protocol.md, "The scheduler
 * API"): records made at a first SUBSCRIBE, saved to and loaded from master.db (so a restarted
 * master knows them and their tasks), their place in the allocator (a client per role), their
 * event streams (chunked replies of RecordIO records; sched.c opens them, offers.c and tasks.c
 * send on them), the status updates they are told and must acknowledge, and their API view.
 * A closed stream only marks the framework DISCONNECTED and schedules a pass, which rescinds
 * its offers (offers.c); failover and TEARDOWN are sched.c's. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <string.h>

#include "master/master.h"

static const char *const state_names[] = {
        [M_FW_CONNECTED] = "CONNECTED",
        [M_FW_DISCONNECTED] = "DISCONNECTED",
        [M_FW_REMOVED] = "REMOVED",
};

struct m_framework *master_fw_find(struct master *m, const char *id)
{
    return id ? ml_table_get(&m->fws_by_id, id) : NULL;
}

struct drf_client *master_fw_client(struct master *m, const char *fw_id, const char *role)
{
    struct m_framework *fw = master_fw_find(m, fw_id);
    if (!fw || !fw->drf)
        return NULL;
    struct drf_role *r = drf_role(&m->drf, role);
    struct drf_client *c = drf_client_find(fw->drf, r);
    if (c)
        return c;
    /* a task in a role the framework no longer subscribes with: it holds, it is not offered */
    c = drf_client(&m->drf, fw->drf, r);
    bool listed = false;
    for (char **x = fw->roles; x && *x; x++)
        listed = listed || streq(*x, role);
    c->suppressed = !listed;
    return c;
}

static void roles_free(char **roles)
{
    for (char **r = roles; r && *r; r++)
        free(*r);
    free(roles);
}

void master_fw_set_roles(struct master *m, struct m_framework *fw, char **roles_take)
{
    roles_free(fw->roles);
    fw->roles = roles_take;
    for (char **r = fw->roles; fw->drf && *r; r++)
        (void) drf_client(&m->drf, fw->drf, drf_role(&m->drf, *r));
}

static char *row_json(const struct m_framework *fw)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_kv_str(g, "id", fw->id);
    json_kv_str(g, "name", fw->name);
    json_kv_strv(g, "roles", fw->roles);
    json_kv_str(g, "principal", fw->principal);
    json_kv_u64(g, "failover_timeout_ms", fw->failover_timeout_ms);
    json_kv_str(g, "state", fw->state == M_FW_REMOVED ? "REMOVED" : "DISCONNECTED");
    json_kv_double(g, "registered_at", fw->registered_at);
    json_kv_double(g, "changed_at", fw->changed_at);
    yajl_gen_map_close(g);
    return json_gen_take(g);
}

int master_fw_save(struct master *m, const struct m_framework *fw)
{
    if (fw->builtin)
        return 0;
    _cleanup_free_ char *json = row_json(fw);
    return master_store_framework_put(m, fw->id, fw->registered_at, json);
}

static struct m_framework *fw_link(struct master *m, const char *id, const char *name,
                                   char **roles_take, bool in_allocator)
{
    struct m_framework *fw = xzalloc(sizeof(*fw));
    fw->m = m;
    snprintf(fw->id, sizeof(fw->id), "%s", id);
    fw->name = xstrdup(name ? name : "");
    if (in_allocator)
        fw->drf = drf_fw_add(&m->drf, fw->id, fw);
    master_fw_set_roles(m, fw, roles_take);
    fw->next = m->frameworks;
    m->frameworks = fw;
    m->n_frameworks++;
    ml_table_put(&m->fws_by_id, fw->id, fw);
    return fw;
}

struct m_framework *master_fw_create(struct master *m, const char *id, const char *name,
                                     char **roles_take, const char *principal, uint64_t failover_ms,
                                     bool builtin)
{
    char made[24];
    if (!id) {
        char hex[17];
        do {
            if (random_hex(hex, 16) < 0) {
                roles_free(roles_take);
                return NULL;
            }
            snprintf(made, sizeof(made), "f-%s", hex);
        } while (master_fw_find(m, made));
        id = made;
    }
    struct m_framework *fw = fw_link(m, id, name, roles_take, true);
    snprintf(fw->principal, sizeof(fw->principal), "%s", principal ? principal : "");
    fw->failover_timeout_ms = failover_ms;
    fw->builtin = builtin;
    fw->state = M_FW_DISCONNECTED;
    fw->registered_at = fw->changed_at = now_realtime();
    fw->disconnected_ns = now_monotonic_ns();
    if (master_fw_save(m, fw) < 0) {
        master_fw_removed(m, fw);
        return NULL;
    }
    master_events_fw(m, fw, "framework_added");
    return fw;
}

/* master_store_frameworks_load's callback: one row back (a bad row is skipped). Every one is
 * DISCONNECTED: its failover_timeout counts from the master's start. */
static int load_row(struct master *m, const char *json)
{
    yajl_val v = json ? yajl_tree_parse(json, NULL, 0) : NULL;
    const char *id = json_get_str(v, "id"), *state = json_get_str(v, "state");
    char **roles = NULL;
    if (!ml_id_valid(id) || master_fw_find(m, id) || json_get_strv(v, "roles", &roles) < 0 ||
        !roles || !roles[0]) {
        roles_free(roles);
        yajl_tree_free(v);
        return 0;
    }
    bool removed = state && streq(state, "REMOVED");
    struct m_framework *fw = fw_link(m, id, json_get_str(v, "name"), roles, !removed);
    const char *p = json_get_str(v, "principal");
    snprintf(fw->principal, sizeof(fw->principal), "%s", p ? p : "");
    (void) json_get_u64(v, "failover_timeout_ms", &fw->failover_timeout_ms);
    (void) json_get_double(v, "registered_at", &fw->registered_at);
    (void) json_get_double(v, "changed_at", &fw->changed_at);
    fw->state = removed ? M_FW_REMOVED : M_FW_DISCONNECTED;
    fw->disconnected_ns = now_monotonic_ns();
    yajl_tree_free(v);
    return 0;
}

int master_fws_load(struct master *m, struct berr **err)
{
    return master_store_frameworks_load(m, load_row, err);
}

void master_fw_removed(struct master *m, struct m_framework *fw)
{
    if (fw->drf)
        drf_fw_remove(&m->drf, fw->drf);
    fw->drf = NULL;
    fw->state = M_FW_REMOVED;
    fw->changed_at = now_realtime();
    (void) master_fw_save(m, fw);
    master_events_fw(m, fw, "framework_changed");
}

void master_fws_free(struct master *m)
{
    while (m->frameworks) {
        struct m_framework *fw = m->frameworks;
        m->frameworks = fw->next;
        if (fw->drf)
            drf_fw_remove(&m->drf, fw->drf);
        roles_free(fw->roles);
        free(fw->name);
        free(fw);
    }
    ml_table_free(&m->fws_by_id);
    m->builtin = NULL;
}

/* ---- streams ---------------------------------------------------------------------------- */

static void disconnected(struct m_framework *fw)
{
    fw->stream = NULL;
    fw->stream_conn = NULL;
    fw->stream_id[0] = 0;
    if (fw->state == M_FW_CONNECTED) {
        fw->state = M_FW_DISCONNECTED;
        fw->disconnected_ns = now_monotonic_ns();
        fw->changed_at = now_realtime();
        master_events_fw(fw->m, fw, "framework_changed");
    }
    if (fw->drf)
        fw->drf->active = false;
}

static void stream_closed(struct evhttp_connection *conn, void *arg)
{
    struct m_framework *fw = arg;
    if (fw->stream_conn != conn)
        return;
    log_info("framework '%s' (%s): event stream closed; failover_timeout %llu ms", fw->id, fw->name,
             (unsigned long long) fw->failover_timeout_ms);
    /* a request libevent detached when the peer went is ours to end (agents.c) */
    if (!evhttp_request_get_connection(fw->stream))
        evhttp_send_reply_end(fw->stream);
    disconnected(fw);
    master_alloc_soon(fw->m); /* its offers are rescinded, others may get them */
}

bool master_fw_send(struct m_framework *fw, enum ml_sched_event_type t, const char *payload)
{
    if (!fw->stream)
        return false;
    _cleanup_free_ char *ev = ml_sched_event_encode(t, payload);
    size_t len;
    _cleanup_free_ char *frame = ml_frame(ev, strlen(ev), &len);
    struct evbuffer *buf = evbuffer_new();
    evbuffer_add(buf, frame, len);
    evhttp_send_reply_chunk(fw->stream, buf);
    evbuffer_free(buf);
    return true;
}

void master_fw_stream_end(struct m_framework *fw, enum berr_code code, const char *why)
{
    if (!fw->stream)
        return;
    if (why) {
        yajl_gen g = yajl_gen_alloc(NULL);
        yajl_gen_map_open(g);
        json_kv_str(g, "code", berr_code_name(code));
        json_kv_str(g, "message", why);
        yajl_gen_map_close(g);
        _cleanup_free_ char *p = json_gen_take(g);
        master_fw_send(fw, ML_SCHED_ERROR, p);
    }
    evhttp_connection_set_closecb(fw->stream_conn, NULL, NULL);
    evhttp_send_reply_end(fw->stream);
    disconnected(fw);
    master_alloc_soon(fw->m);
}

void master_fw_stream_set(struct master *m, struct m_framework *fw, struct evhttp_request *req,
                          const char *stream_id)
{
    master_fw_stream_end(fw, BERR_CONFLICT,
                         "a newer SUBSCRIBE of this framework took over (failover)");
    fw->stream = req;
    fw->stream_conn = evhttp_request_get_connection(req);
    snprintf(fw->stream_id, sizeof(fw->stream_id), "%s", stream_id);
    evhttp_connection_set_closecb(fw->stream_conn, stream_closed, fw);
    fw->state = M_FW_CONNECTED;
    fw->changed_at = now_realtime();
    if (fw->drf)
        fw->drf->active = true;
    master_events_fw(m, fw, "framework_changed");
    master_alloc_soon(m);
}

void master_fws_streams_free(struct master *m)
{
    for (struct m_framework *fw = m->frameworks; fw; fw = fw->next) {
        if (!fw->stream)
            continue;
        evhttp_connection_set_closecb(fw->stream_conn, NULL, NULL);
        evhttp_connection_free(fw->stream_conn);
        fw->stream = NULL;
        fw->stream_conn = NULL;
    }
}

/* ---- updates ---------------------------------------------------------------------------- */

static void status_gen(yajl_gen g, const struct m_task *t, bool reconcile)
{
    yajl_gen_map_open(g);
    json_str(g, "status");
    yajl_gen_map_open(g);
    json_kv_str(g, "task_id", t->id);
    json_kv_str(g, "name", t->name);
    master_task_outcome_json(g, t);
    json_kv_str(g, "container_id", t->container_id[0] ? t->container_id : NULL);
    json_kv_str(g, "uuid", reconcile ? NULL : t->uuid);
    json_kv_bool(g, "reconciliation", reconcile);
    json_kv_double(g, "timestamp", t->updated_at);
    if (t->state == ML_RUNNING && t->healthy != ML_HEALTH_UNKNOWN)
        ml_health_gen(g, "healthy", t->healthy); /* the agent's health checks (issue #16) */
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
}

void master_fw_update(struct master *m, const struct m_task *t, bool reconcile)
{
    struct m_framework *fw = master_fw_find(m, t->framework_id);
    if (!fw || fw->builtin || !fw->stream)
        return;
    yajl_gen g = yajl_gen_alloc(NULL);
    status_gen(g, t, reconcile);
    _cleanup_free_ char *p = json_gen_take(g);
    master_fw_send(fw, ML_SCHED_UPDATE, p);
}

void master_fw_unknown_task(struct m_framework *fw, const char *task_id)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_str(g, "status");
    yajl_gen_map_open(g);
    json_kv_str(g, "task_id", task_id);
    json_kv_str(g, "state", ml_state_name(ML_LOST));
    json_kv_str(g, "reason", ml_reason_name(ML_REASON_UNKNOWN_TASK));
    json_kv_str(g, "message", "the master knows no such task of this framework");
    json_kv_null(g, "uuid");
    json_kv_bool(g, "reconciliation", true);
    json_kv_double(g, "timestamp", now_realtime());
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    _cleanup_free_ char *p = json_gen_take(g);
    master_fw_send(fw, ML_SCHED_UPDATE, p);
}

/* ---- the API view ----------------------------------------------------------------------- */

static void amount_gen(yajl_gen g, const char *k, struct drf_res q)
{
    json_str(g, k);
    yajl_gen_map_open(g);
    json_kv_cpus(g, "cpus", q.cpus);
    json_kv_u64(g, "mem", q.mem);
    yajl_gen_map_close(g);
}

void master_fw_json(struct master *m, const struct m_framework *fw, yajl_gen g)
{
    struct drf_res offered = {0, 0}, alloc = {0, 0};
    unsigned n_offers = 0;
    for (const struct m_offer *o = m->offers; o; o = o->next) {
        if (o->fw != fw)
            continue;
        offered.cpus += o->remaining.cpus;
        offered.mem += o->remaining.mem;
        n_offers++;
    }
    yajl_gen_map_open(g);
    json_kv_str(g, "id", fw->id);
    json_kv_str(g, "name", fw->name);
    json_kv_strv(g, "roles", fw->roles);
    json_kv_str(g, "state", state_names[fw->state]);
    json_kv_bool(g, "builtin", fw->builtin);
    json_kv_double(g, "failover_timeout", (double) fw->failover_timeout_ms / 1000);
    json_kv_double(g, "registered_at", fw->registered_at);
    json_kv_double(g, "changed_at", fw->changed_at);
    bool suppressed = fw->drf && fw->drf->n_clients > 0;
    double share = 0, weight = 1;
    json_str(g, "by_role");
    yajl_gen_array_open(g);
    for (size_t i = 0; fw->drf && i < fw->drf->n_clients; i++) {
        const struct drf_client *c = fw->drf->clients[i];
        suppressed = suppressed && c->suppressed;
        double s = drf_share(&m->drf, c->alloc);
        if (s >= share) {
            share = s;
            weight = c->role->weight;
        }
        alloc.cpus += c->alloc.cpus;
        alloc.mem += c->alloc.mem;
        yajl_gen_map_open(g);
        json_kv_str(g, "role", c->role->name);
        json_kv_double(g, "weight", c->role->weight);
        json_kv_double(g, "dominant_share", s);
        json_kv_bool(g, "suppressed", c->suppressed);
        amount_gen(g, "allocated", c->alloc);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    json_kv_double(g, "weight", weight);
    json_kv_double(g, "dominant_share", share);
    json_kv_bool(g, "suppressed", suppressed);
    json_kv_u64(g, "filters", fw->drf ? fw->drf->n_filters : 0);
    /* allocated: what its offers and tasks hold; offered: the offers' part of it */
    amount_gen(g, "allocated", alloc);
    amount_gen(g, "offered", offered);
    json_kv_u64(g, "offers", n_offers);
    json_kv_u64(g, "tasks", fw->live_tasks);
    json_str(g, "counters");
    yajl_gen_map_open(g);
    json_kv_u64(g, "offers_made", fw->offers_made);
    json_kv_u64(g, "offers_accepted", fw->offers_accepted);
    json_kv_u64(g, "offers_declined", fw->offers_declined);
    json_kv_u64(g, "offers_rescinded", fw->offers_rescinded);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
}
