/* SPDX-License-Identifier: Apache-2.0 */
/* master/tasks-view.c - how a task looks: its API view (GET /v1/tasks; also its row in
 * master.db, without the history), the row read back into a record at start, and for a task
 * of the built-in framework still waiting for an offer, why it waits: which resource in which
 * role is short, held in offers to other frameworks, or kept out by its role's quota limit.
 * tasks.c keeps the registry and decides; this file only draws and reads. */
#include <string.h>

#include "master/master.h"

/* master_store_history's callback: one recorded status, with where and when it came. */
static void history_row(void *arg, const char *json, const char *source, double received_at)
{
    yajl_gen g = arg;
    yajl_val v = json ? yajl_tree_parse(json, NULL, 0) : NULL;
    yajl_gen_map_open(g);
    for (size_t i = 0; v && YAJL_IS_OBJECT(v) && i < v->u.object.len; i++) {
        json_str(g, v->u.object.keys[i]);
        json_gen_value(g, v->u.object.values[i]);
    }
    json_kv_str(g, "source", source);
    json_kv_double(g, "received_at", received_at);
    yajl_gen_map_close(g);
    yajl_tree_free(v);
}

static void amount_text(uint64_t cpus, uint64_t mem, char *buf, size_t len)
{
    char c[32], mm[32];
    format_cpus(cpus, c, sizeof(c));
    format_size(mem, mm, sizeof(mm));
    snprintf(buf, len, "%s cpus and %s mem", c, mm);
}

void master_task_why(struct master *m, const struct m_task *t, char *buf, size_t len)
{
    struct drf_role *r = drf_role_find(&m->drf, t->role);
    struct drf_res need = {t->cpus_millis, t->mem_bytes};
    char needs[80], most[80];
    amount_text(need.cpus, need.mem, needs, sizeof(needs));
    struct drf_why w = {0};
    if (r)
        drf_why(&m->drf, r, need, &w);
    amount_text(w.most_free.cpus, w.most_free.mem, most, sizeof(most));
    /* what the other frameworks hold in offers on the agents right now */
    uint64_t oc = 0, om = 0;
    unsigned n_off = 0;
    for (const struct m_offer *o = m->offers; o; o = o->next) {
        if (o->fw == m->builtin)
            continue;
        oc += o->remaining.cpus;
        om += o->remaining.mem;
        n_off++;
    }
    char offered[128] = "";
    if (n_off) {
        char held[80];
        amount_text(oc, om, held, sizeof(held));
        snprintf(offered, sizeof(offered), "; %u offer(s) to other frameworks hold %s", n_off,
                 held);
    }
    if (r && w.over_limit) {
        char lim[80], has[80];
        amount_text(r->limit.cpus, r->limit.mem, lim, sizeof(lim));
        amount_text(r->alloc.cpus, r->alloc.mem, has, sizeof(has));
        snprintf(buf, len, "role '%s' is at its quota limit: it holds %s of %s (needs %s more)",
                 t->role, has, lim, needs);
    } else if (!w.agents) {
        snprintf(buf, len, "no agent is connected");
    } else if (!w.could_hold) {
        snprintf(buf, len, "no connected agent could ever hold %s in role '%s'", needs, t->role);
    } else if (!w.fit_now) {
        const char *what = w.most_free.cpus < need.cpus && w.most_free.mem < need.mem
                                   ? "cpus and mem"
                           : w.most_free.cpus < need.cpus ? "cpus"
                           : w.most_free.mem < need.mem   ? "mem"
                                                          : "cpus and mem on one agent";
        snprintf(buf, len,
                 "role '%s' is short of %s: it needs %s, the most free on one agent is %s%s",
                 t->role, what, needs, most, offered);
    } else {
        snprintf(buf, len,
                 "%zu agent(s) have room for it in role '%s': it goes out with the next offer "
                 "to the built-in framework%s",
                 w.fit_now, t->role, offered);
    }
}

void master_task_outcome_json(yajl_gen g, const struct m_task *t)
{
    json_kv_str(g, "state", ml_state_name(t->state));
    json_kv_str(g, "reason", t->reason[0] ? t->reason : NULL);
    json_kv_str(g, "message", t->message);
    if (t->has_exit_code)
        json_kv_i64(g, "exit_code", t->exit_code);
    else
        json_kv_null(g, "exit_code");
    if (t->signal)
        json_kv_i64(g, "signal", t->signal);
    else
        json_kv_null(g, "signal");
    json_kv_str(g, "agent_id", t->agent_id[0] ? t->agent_id : NULL);
}

void master_task_json(struct master *m, const struct m_task *t, yajl_gen g, bool with_history)
{
    struct m_agent *ag = master_agent_find(m, t->agent_id);
    yajl_gen_map_open(g);
    json_kv_str(g, "id", t->id);
    json_kv_str(g, "name", t->name);
    json_kv_str(g, "framework_id", t->framework_id);
    master_task_outcome_json(g, t);
    json_kv_str(g, "hostname", ag ? ag->hostname : NULL);
    json_kv_str(g, "container_id", t->container_id[0] ? t->container_id : NULL);
    yajl_val spec = yajl_tree_parse(t->spec_json, NULL, 0);
    for (size_t i = 0; spec && YAJL_IS_OBJECT(spec) && i < spec->u.object.len; i++) {
        json_str(g, spec->u.object.keys[i]);
        json_gen_value(g, spec->u.object.values[i]);
    }
    if (!json_get(spec, "role"))
        json_kv_str(g, "role", t->role);
    yajl_tree_free(spec);
    json_kv_bool(g, "kill_requested", t->kill_requested);
    if (t->healthy != ML_HEALTH_UNKNOWN && t->state == ML_RUNNING)
        ml_health_gen(g, "healthy", t->healthy);
    json_kv_str(g, "uuid", t->uuid[0] ? t->uuid : NULL);
    json_kv_bool(g, "acknowledged", t->fw_acked);
    json_kv_double(g, "created_at", t->created_at);
    json_kv_double(g, "updated_at", t->updated_at);
    if (!t->agent_id[0] && !ml_state_terminal(t->state) && with_history) {
        char why[512];
        master_task_why(m, t, why, sizeof(why));
        json_kv_str(g, "waiting", why);
    } else if (!t->agent_id[0] && !ml_state_terminal(t->state)) {
        json_kv_bool(g, "waiting", true);
    }
    json_str(g, "usage");
    if (t->has_usage) {
        yajl_gen_map_open(g);
        json_kv_double(g, "cpu_cores", t->usage_cpus);
        json_kv_u64(g, "memory_bytes", t->usage_mem);
        yajl_gen_map_close(g);
    } else {
        yajl_gen_null(g);
    }
    if (with_history) {
        json_str(g, "history");
        yajl_gen_array_open(g);
        (void) master_store_history(m, t->id, history_row, g);
        yajl_gen_array_close(g);
    }
    yajl_gen_map_close(g);
}

void master_task_free(struct m_task *t)
{
    free(t->name);
    free(t->spec_json);
    free(t->role);
    free(t->message);
    free(t->host_ports);
    free(t);
}

struct m_task *master_task_from_row(struct master *m, const char *json)
{
    /* its spec was checked when it was submitted, by that version's rules: the fields are
     * taken as they are (a bad row is skipped) */
    yajl_val v = json ? yajl_tree_parse(json, NULL, 0) : NULL;
    const char *id = json_get_str(v, "id");
    if (!ml_id_valid(id) || master_task_find(m, id)) {
        yajl_tree_free(v);
        return NULL;
    }
    struct m_task *t = xzalloc(sizeof(*t));
    snprintf(t->id, sizeof(t->id), "%s", id);
    const char *s;
    t->name = xstrdup((s = json_get_str(v, "name")) ? s : id);
    /* rows from before frameworks belong to the built-in one */
    snprintf(t->framework_id, sizeof(t->framework_id), "%s",
             (s = json_get_str(v, "framework_id")) ? s : m->builtin->id);
    snprintf(t->agent_id, sizeof(t->agent_id), "%s", (s = json_get_str(v, "agent_id")) ? s : "");
    snprintf(t->container_id, sizeof(t->container_id), "%s",
             (s = json_get_str(v, "container_id")) ? s : "");
    t->role = xstrdup((s = json_get_str(v, "role")) ? s : "*");
    t->state = ml_state_from_name(json_get_str(v, "state"));
    if ((int) t->state < 0)
        t->state = ML_STAGING;
    snprintf(t->reason, sizeof(t->reason), "%s", (s = json_get_str(v, "reason")) ? s : "");
    t->message = (s = json_get_str(v, "message")) ? xstrdup(s) : NULL;
    t->has_exit_code = json_get_i64(v, "exit_code", &t->exit_code);
    (void) json_get_i64(v, "signal", &t->signal);
    (void) json_get_double(v, "created_at", &t->created_at);
    (void) json_get_double(v, "updated_at", &t->updated_at);
    snprintf(t->uuid, sizeof(t->uuid), "%s", (s = json_get_str(v, "uuid")) ? s : "");
    yajl_val k = json_get(v, "kill_requested"), ack = json_get(v, "acknowledged");
    t->kill_requested = k && YAJL_IS_TRUE(k);
    t->fw_acked = !ack || YAJL_IS_TRUE(ack);
    t->healthy = ml_health_get(v, "healthy");
    yajl_val res = json_get(v, "resources"), ports = json_get(v, "ports");
    (void) json_get_cpus(res, "cpus", &t->cpus_millis);
    (void) json_get_size(res, "mem", &t->mem_bytes);
    size_t np = ports && YAJL_IS_ARRAY(ports) ? ports->u.array.len : 0;
    t->host_ports = xcalloc(np + 1, sizeof(uint16_t));
    for (size_t i = 0; i < np; i++) {
        uint64_t p = 0;
        if (json_get_u64(ports->u.array.values[i], "host_port", &p) && p > 0 && p < 65536)
            t->host_ports[t->n_host_ports++] = (uint16_t) p;
    }
    /* the spec to launch: what the agent's POST /v1/containers takes */
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    static const char *const keys[] = {"command", "resources", "role",  "user",        "env",
                                       "volumes", "network",   "ports", "health_check"};
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        yajl_val x = json_get(v, keys[i]);
        if (x && !YAJL_IS_NULL(x)) {
            json_str(g, keys[i]);
            json_gen_value(g, x);
        }
    }
    yajl_gen_map_close(g);
    t->spec_json = json_gen_take(g);
    yajl_tree_free(v);
    return t;
}
