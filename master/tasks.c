/* master/tasks.c - the master's tasks: submit (a spec api.c has parsed: place it on an agent
 * with enough free allocatable resources - spread or binpack - record it STAGING and send
 * LAUNCH), kill, and apply status updates forward-only, so a task's history holds every state
 * once and exactly one terminal state. agents.c holds the agents and carries the messages
 * (tasks.c calls it, never the other way); store.c persists. */
#include <string.h>

#include "master/master.h"

struct m_task *master_task_find(struct master *m, const char *id)
{
    return id ? ml_table_get(&m->tasks_by_id, id) : NULL;
}

struct m_task *master_task_lookup(struct master *m, const char *ref, struct berr **err)
{
    struct m_task *t = master_task_find(m, ref), *hit = NULL;
    if (t)
        return t;
    unsigned n = 0;
    size_t rl = strlen(ref);
    for (t = m->tasks; t; t = t->next) {
        if (strncmp(t->id, ref, rl) == 0 || streq(t->name, ref)) {
            hit = hit ? hit : t;
            n++;
        }
    }
    if (n == 1)
        return hit;
    if (n > 1)
        berr_setc(err, EINVAL, BERR_CONFLICT, "'%s' names %u tasks: give the task id", ref, n);
    else
        berr_setc(err, ENOENT, BERR_NOT_FOUND, "no task '%s'", ref);
    return NULL;
}

/* Account t's resources on its agent (placed) or release them (ended). */
static void task_account(struct master *m, const struct m_task *t, int sign)
{
    struct m_agent *ag = master_agent_find(m, t->agent_id);
    if (ag)
        master_agent_account(ag, t->cpus_millis, t->mem_bytes, sign);
}

static char *new_task_id(struct master *m)
{
    char hex[17];
    for (;;) {
        if (random_hex(hex, 16) < 0)
            return NULL;
        char *id = xasprintf("t-%s", hex);
        if (!master_task_find(m, id))
            return id;
        free(id);
    }
}

/* The task's row: its API view without the history (tasks_load reads it back). */
static int task_save(struct master *m, const struct m_task *t)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    master_task_json(m, t, g, false);
    _cleanup_free_ char *json = json_gen_take(g);
    return master_store_task_put(m, t->id, t->created_at, json);
}

static int record_status(struct master *m, const struct ml_status *s, const char *source)
{
    _cleanup_free_ char *json = ml_status_encode(s);
    return master_store_update(m, s->task_id, s->uuid, ml_state_name(s->state), source,
                               now_realtime(), json);
}

/* Record a status the master made itself (STAGING) in the history. */
static int record_own(struct master *m, struct m_task *t, enum ml_state st)
{
    struct ml_status s = {.state = st, .timestamp = now_realtime()};
    snprintf(s.task_id, sizeof(s.task_id), "%s", t->id);
    snprintf(s.reason, sizeof(s.reason), "%s", t->reason);
    s.message = t->message;
    snprintf(s.container_id, sizeof(s.container_id), "%s", t->container_id);
    int r = ml_uuid_new(s.uuid);
    return r < 0 ? r : record_status(m, &s, "master");
}

char *master_task_launch_payload(const struct m_task *t)
{
    /* the agent's POST /v1/containers body: spec_json embedded as text, not parsed again.
     * It is named after the task because the agent's link finds the container it launches
     * by that name; once the agent names a nameless spec after task_id itself, "container"
     * can be spec_json as it is. */
    const char *rest = t->spec_json[0] == '{' ? t->spec_json + 1 : "}";
    return xasprintf("{\"task_id\":\"%s\",\"container\":{\"name\":\"%s\"%s%s}", t->id, t->id,
                     rest[0] == '}' ? "" : ",", rest);
}

static void task_free(struct m_task *t)
{
    free(t->name);
    free(t->spec_json);
    free(t->role);
    free(t->message);
    free(t);
}

/* Into the registry, newest first; a live task counts on its agent. */
static void task_link(struct master *m, struct m_task *t)
{
    t->next = m->tasks;
    m->tasks = t;
    m->n_tasks++;
    ml_table_put(&m->tasks_by_id, t->id, t);
    if (!ml_state_terminal(t->state))
        task_account(m, t, +1);
}

/* Out of the registry (its resources already released) and freed. */
static void task_unlink(struct master *m, struct m_task *t)
{
    for (struct m_task **p = &m->tasks; *p; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            break;
        }
    }
    ml_table_del(&m->tasks_by_id, t->id);
    m->n_tasks--;
    task_free(t);
}

int master_task_submit(struct master *m, const struct ml_task_spec *spec, struct m_task **ret,
                       struct berr **err)
{
    if (m->n_tasks >= m->cfg.max_tasks)
        return berr_setc(err, EAGAIN, BERR_UNAVAILABLE,
                         "the registry holds max_tasks (%llu) tasks: remove ended ones (berthctl "
                         "--master URL rm TASK) or wait for task_gc_delay",
                         (unsigned long long) m->cfg.max_tasks);
    uint64_t cpus = spec->cpus_millis, mem = spec->mem_bytes;
    unsigned up = 0;
    struct m_agent *ag = master_agents_place(m, cpus, mem, &up);
    if (!ag) {
        char cb[32], mb[32];
        format_cpus(cpus, cb, sizeof(cb));
        format_size(mem, mb, sizeof(mb));
        return berr_setc(err, ENOSPC, BERR_INSUFFICIENT_RESOURCES,
                         "no agent has %s cpus and %s mem free (%u agent%s connected)", cb, mb, up,
                         up == 1 ? "" : "s");
    }
    _cleanup_free_ char *id = new_task_id(m);
    if (!id)
        return berr_setc(err, EIO, BERR_INTERNAL, "no randomness for a task id");
    struct m_task *t = xzalloc(sizeof(*t));
    snprintf(t->id, sizeof(t->id), "%s", id);
    t->name = xstrdup(spec->name ? spec->name : t->id);
    t->role = xstrdup(spec->role ? spec->role : "*");
    snprintf(t->agent_id, sizeof(t->agent_id), "%s", ag->id);
    t->cpus_millis = cpus;
    t->mem_bytes = mem;
    t->state = ML_STAGING;
    t->created_at = t->updated_at = now_realtime();
    /* the spec as the agent gets it, without the name: the master keeps that, and the
     * container is named after the task */
    struct ml_task_spec unnamed = *spec;
    unnamed.name = NULL;
    t->spec_json = ml_task_spec_encode(&unnamed);
    task_link(m, t);
    /* recorded before LAUNCH leaves: a master that dies now resends it when the agent
     * subscribes again without the task */
    if (master_store_begin(m) < 0 || task_save(m, t) < 0 || record_own(m, t, ML_STAGING) < 0 ||
        master_store_commit(m) < 0) {
        master_store_rollback(m);
        /* never recorded, never launched, its id never shown: it goes */
        task_account(m, t, -1);
        task_unlink(m, t);
        return berr_setc(err, EIO, BERR_INTERNAL, "cannot record the task in master.db");
    }
    _cleanup_free_ char *payload = master_task_launch_payload(t);
    if (master_agent_send(ag, ML_EVENT_LAUNCH, payload))
        m->launches_sent_total++;
    log_info("task '%s' (%s): placed on agent '%s' (%s)", t->id, t->name, ag->id, ag->hostname);
    *ret = t;
    return 0;
}

int master_task_kill(struct master *m, struct m_task *t, struct berr **err)
{
    if (ml_state_terminal(t->state))
        return berr_setc(err, EINVAL, BERR_CONFLICT, "task '%s' is already %s", t->id,
                         ml_state_name(t->state));
    t->kill_requested = true;
    (void) task_save(m, t);
    struct m_agent *ag = master_agent_find(m, t->agent_id);
    _cleanup_free_ char *payload = xasprintf("{\"task_id\": \"%s\"}", t->id);
    if (ag && !master_agent_send(ag, ML_EVENT_KILL, payload))
        log_info("task '%s': agent '%s' is not connected; the kill goes out when it subscribes",
                 t->id, ag->id);
    return 0;
}

int master_task_apply(struct master *m, struct m_task *t, const struct ml_status *s,
                      const char *source)
{
    /* forward only: STAGING < STARTING < RUNNING < terminal, and nothing after a terminal
     * state (a task the master declared LOST stays LOST; see docs/protocol.md) */
    if (ml_state_terminal(t->state) || s->state <= t->state)
        return 0;
    int r = master_store_begin(m);
    if (r < 0)
        return r;
    if ((r = record_status(m, s, source)) <= 0) {
        master_store_rollback(m);
        return r;
    }
    /* t as it was, to put back when master.db refuses the change: a status that is not
     * recorded is not acknowledged, and the agent sends it again */
    struct m_task old = *t;
    bool was_live = !ml_state_terminal(t->state);
    t->state = s->state;
    snprintf(t->reason, sizeof(t->reason), "%s", s->reason);
    t->message = s->message ? xstrdup(s->message) : NULL;
    t->has_exit_code = s->has_exit_code;
    t->exit_code = s->exit_code;
    t->signal = s->signal;
    if (s->container_id[0])
        snprintf(t->container_id, sizeof(t->container_id), "%s", s->container_id);
    t->updated_at = now_realtime();
    if ((r = task_save(m, t)) < 0 || (r = master_store_commit(m)) < 0) {
        master_store_rollback(m);
        free(t->message);
        *t = old;
        return r;
    }
    free(old.message);
    if (was_live && ml_state_terminal(t->state)) {
        task_account(m, t, -1);
        t->has_usage = false;
    }
    log_info("task '%s' (%s): %s%s%s (from %s)", t->id, t->name, ml_state_name(t->state),
             t->reason[0] ? "/" : "", t->reason, source);
    return 1;
}

void master_task_end(struct master *m, struct m_task *t, enum ml_state state, enum ml_reason reason,
                     const char *msg)
{
    struct ml_status s = {.state = state, .timestamp = now_realtime()};
    snprintf(s.task_id, sizeof(s.task_id), "%s", t->id);
    snprintf(s.reason, sizeof(s.reason), "%s", ml_reason_name(reason));
    snprintf(s.container_id, sizeof(s.container_id), "%s", t->container_id);
    s.message = (char *) msg;
    if (ml_uuid_new(s.uuid) < 0)
        return;
    if (master_task_apply(m, t, &s, "master") > 0 && state == ML_LOST)
        m->tasks_lost_total++;
}

unsigned master_tasks_lose_on(struct master *m, const char *agent_id, enum ml_reason reason,
                              const char *msg)
{
    unsigned n = 0;
    for (struct m_task *t = m->tasks; t; t = t->next) {
        if (!ml_state_terminal(t->state) && streq(t->agent_id, agent_id)) {
            master_task_end(m, t, ML_LOST, reason, msg);
            n++;
        }
    }
    return n;
}

void master_tasks_usage(struct master *m, const char *agent_id, yajl_val tasks)
{
    for (size_t i = 0; tasks && YAJL_IS_ARRAY(tasks) && i < tasks->u.array.len; i++) {
        yajl_val e = tasks->u.array.values[i];
        struct m_task *t = master_task_find(m, json_get_str(e, "task_id"));
        if (!t || !streq(t->agent_id, agent_id) || ml_state_terminal(t->state))
            continue;
        bool c = json_get_double(e, "cpus", &t->usage_cpus);
        bool mm = json_get_u64(e, "mem", &t->usage_mem);
        t->has_usage = c || mm;
    }
}

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

void master_task_json(struct master *m, const struct m_task *t, yajl_gen g, bool with_history)
{
    struct m_agent *ag = master_agent_find(m, t->agent_id);
    yajl_gen_map_open(g);
    json_kv_str(g, "id", t->id);
    json_kv_str(g, "name", t->name);
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
    json_kv_double(g, "created_at", t->created_at);
    json_kv_double(g, "updated_at", t->updated_at);
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

/* master_store_tasks_load's callback: a task's row (task_save's record) back into the
 * registry. Its spec was checked when it was submitted, by that version's rules: the
 * fields are taken as they are (a bad row is skipped). */
static int load_row(struct master *m, const char *json)
{
    yajl_val v = json ? yajl_tree_parse(json, NULL, 0) : NULL;
    const char *id = json_get_str(v, "id");
    if (!ml_id_valid(id) || master_task_find(m, id)) {
        yajl_tree_free(v);
        return 0;
    }
    struct m_task *t = xzalloc(sizeof(*t));
    snprintf(t->id, sizeof(t->id), "%s", id);
    const char *s;
    t->name = xstrdup((s = json_get_str(v, "name")) ? s : id);
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
    yajl_val k = json_get(v, "kill_requested");
    t->kill_requested = k && YAJL_IS_TRUE(k);
    yajl_val res = json_get(v, "resources");
    (void) json_get_cpus(res, "cpus", &t->cpus_millis);
    (void) json_get_size(res, "mem", &t->mem_bytes);
    /* the spec to launch: command, resources, role, user, env, volumes */
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    static const char *const keys[] = {"command", "resources", "role", "user", "env", "volumes"};
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
    task_link(m, t); /* rows come oldest first: the list is newest first */
    return 0;
}

/* After master_agents_load: a live task counts on its agent. */
int master_tasks_load(struct master *m, struct berr **err)
{
    return master_store_tasks_load(m, load_row, err);
}

void master_tasks_free(struct master *m)
{
    while (m->tasks) {
        struct m_task *t = m->tasks;
        m->tasks = t->next;
        task_free(t);
    }
    ml_table_free(&m->tasks_by_id);
}

int master_task_remove(struct master *m, struct m_task *t, struct berr **err)
{
    if (!ml_state_terminal(t->state))
        return berr_setc(err, EBUSY, BERR_CONFLICT, "task '%s' is %s: kill it first", t->id,
                         ml_state_name(t->state));
    if (master_store_task_delete(m, t->id) < 0)
        return berr_setc(err, EIO, BERR_INTERNAL, "cannot remove task '%s' from master.db", t->id);
    task_unlink(m, t);
    return 0;
}

void master_tasks_gc(struct master *m)
{
    double cutoff = now_realtime() - (double) m->cfg.task_gc_delay_ms / 1000.0;
    for (struct m_task *t = m->tasks, *next; t; t = next) {
        next = t->next;
        if (ml_state_terminal(t->state) && t->updated_at < cutoff) {
            log_debug("task '%s' ended more than task_gc_delay ago: forgotten", t->id);
            _cleanup_berr_ struct berr *err = NULL;
            (void) master_task_remove(m, t, &err);
        }
    }
}
