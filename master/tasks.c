/* SPDX-License-Identifier: Apache-2.0 */
/* master/tasks.c - the master's tasks: created from a framework's ACCEPT (placed on the
 * offer's agent, LAUNCH sent) or queued by the built-in framework until an offer places them,
 * kills, and status updates applied forward-only, so a task's history holds every state once
 * and exactly one terminal state, each passed on to the task's framework (frameworks.c). What
 * a live task holds is charged in the allocator (drf.h) and on its agent's placed sums; a
 * task that ends releases it and schedules an allocation pass. tasks-view.c draws a task for
 * the API and master.db; agents.c holds the agents and carries the messages (tasks.c calls
 * it, never the other way); store.c persists. */
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

static bool waiting(const struct m_task *t)
{
    return !t->agent_id[0] && !ml_state_terminal(t->state);
}

/* What t holds in the allocator: on its agent, in its role, for its framework's client. */
static void charge(struct master *m, const struct m_task *t, int sign)
{
    struct m_agent *ag = master_agent_find(m, t->agent_id);
    struct drf_res q = {t->cpus_millis, t->mem_bytes};
    drf_charge(&m->drf, ag ? ag->drf : NULL, drf_role(&m->drf, t->role),
               master_fw_client(m, t->framework_id, t->role), q, sign);
}

/* Account t on its agent (placed) or release it (ended); an end frees resources to offer. */
static void task_account(struct master *m, const struct m_task *t, int sign)
{
    struct m_agent *ag = master_agent_find(m, t->agent_id);
    if (ag)
        master_agent_account(ag, t->cpus_millis, t->mem_bytes, t->host_ports, t->n_host_ports,
                             sign);
    charge(m, t, sign);
    struct m_framework *fw = master_fw_find(m, t->framework_id);
    if (fw && sign > 0)
        fw->live_tasks++;
    else if (fw && fw->live_tasks > 0)
        fw->live_tasks--;
    if (sign < 0)
        master_alloc_soon(m);
}

void master_tasks_recharge(struct master *m, struct m_agent *ag, int sign)
{
    for (struct m_task *t = m->tasks; t; t = t->next)
        if (!ml_state_terminal(t->state) && streq(t->agent_id, ag->id))
            charge(m, t, sign);
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

/* The task's row: its API view without the history (master_task_from_row reads it back). */
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
    if (r < 0)
        return r;
    snprintf(t->uuid, sizeof(t->uuid), "%s", s.uuid);
    t->fw_acked = true; /* STAGING is the master's own: frameworks are told from STARTING on */
    return record_status(m, &s, "master");
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

/* Into the registry, newest first; a live placed task counts on its agent. */
static void task_link(struct master *m, struct m_task *t)
{
    t->next = m->tasks;
    m->tasks = t;
    m->n_tasks++;
    ml_table_put(&m->tasks_by_id, t->id, t);
    if (waiting(t))
        m->n_waiting++;
    else if (!ml_state_terminal(t->state))
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
    m->n_waiting -= waiting(t);
    master_task_free(t);
}

static void launch_send(struct master *m, struct m_task *t, struct m_agent *ag)
{
    _cleanup_free_ char *payload = master_task_launch_payload(t);
    if (master_agent_send(ag, ML_EVENT_LAUNCH, payload))
        m->launches_sent_total++;
    log_info("task '%s' (%s) of framework '%s': placed on agent '%s' (%s)", t->id, t->name,
             t->framework_id, ag->id, ag->hostname);
}

int master_task_create(struct master *m, struct m_framework *fw, const struct ml_task_spec *spec,
                       const char *id, struct m_agent *ag, const char *role, struct m_task **ret,
                       struct berr **err)
{
    if (m->n_tasks >= m->cfg.max_tasks)
        return berr_setc(err, EAGAIN, BERR_UNAVAILABLE,
                         "the registry holds max_tasks (%llu) tasks: remove ended ones (berthctl "
                         "--master URL rm TASK) or wait for task_gc_delay",
                         (unsigned long long) m->cfg.max_tasks);
    if (id && master_task_find(m, id))
        return berr_setc(err, EEXIST, BERR_CONFLICT, "task id '%s' is in use", id);
    _cleanup_free_ char *made = id ? NULL : new_task_id(m);
    if (!id && !made)
        return berr_setc(err, EIO, BERR_INTERNAL, "no randomness for a task id");
    struct m_task *t = xzalloc(sizeof(*t));
    snprintf(t->id, sizeof(t->id), "%s", id ? id : made);
    t->name = xstrdup(spec->name ? spec->name : t->id);
    snprintf(t->framework_id, sizeof(t->framework_id), "%s", fw->id);
    t->role = xstrdup(role ? role : spec->role ? spec->role : "*");
    if (ag)
        snprintf(t->agent_id, sizeof(t->agent_id), "%s", ag->id);
    t->cpus_millis = spec->cpus_millis;
    t->mem_bytes = spec->mem_bytes;
    t->host_ports = xcalloc(spec->n_ports + 1, sizeof(uint16_t));
    for (size_t i = 0; i < spec->n_ports; i++)
        if (spec->ports[i].host_port)
            t->host_ports[t->n_host_ports++] = spec->ports[i].host_port;
    t->state = ML_STAGING;
    t->created_at = t->updated_at = now_realtime();
    /* the spec as the agent gets it, without the name (the master keeps that, and the
     * container is named after the task) and with the role the resources were offered in */
    struct ml_task_spec unnamed = *spec;
    unnamed.name = NULL;
    unnamed.role = t->role;
    t->spec_json = ml_task_spec_encode(&unnamed);
    task_link(m, t);
    /* recorded before LAUNCH leaves: a master that dies now resends it when the agent
     * subscribes again without the task */
    if (master_store_begin(m) < 0 || record_own(m, t, ML_STAGING) < 0 || task_save(m, t) < 0 ||
        master_store_commit(m) < 0) {
        master_store_rollback(m);
        /* never recorded, never launched, its id never shown: it goes */
        if (ag)
            task_account(m, t, -1);
        task_unlink(m, t);
        return berr_setc(err, EIO, BERR_INTERNAL, "cannot record the task in master.db");
    }
    master_events_task(m, t, "task_added");
    if (ag)
        launch_send(m, t, ag);
    else
        log_info("task '%s' (%s): waits for an offer to the built-in framework", t->id, t->name);
    *ret = t;
    return 0;
}

int master_task_place(struct master *m, struct m_task *t, struct m_agent *ag)
{
    snprintf(t->agent_id, sizeof(t->agent_id), "%s", ag->id);
    if (task_save(m, t) < 0) {
        t->agent_id[0] = 0;
        return -EIO;
    }
    m->n_waiting--;
    task_account(m, t, +1);
    master_events_task(m, t, "task_updated"); /* it has an agent now */
    launch_send(m, t, ag);
    return 0;
}

int master_task_kill(struct master *m, struct m_task *t, double grace_s, struct berr **err)
{
    if (ml_state_terminal(t->state))
        return berr_setc(err, EINVAL, BERR_CONFLICT, "task '%s' is already %s", t->id,
                         ml_state_name(t->state));
    t->kill_requested = true;
    if (waiting(t)) {
        master_task_end(m, t, ML_KILLED, ML_REASON_KILLED_BY_REQUEST,
                        "killed while it waited for an offer");
        return 0;
    }
    (void) task_save(m, t);
    struct m_agent *ag = master_agent_find(m, t->agent_id);
    _cleanup_free_ char *payload =
            grace_s >= 0
                    ? xasprintf("{\"task_id\": \"%s\", \"grace_seconds\": %.3f}", t->id, grace_s)
                    : xasprintf("{\"task_id\": \"%s\"}", t->id);
    if (ag && !master_agent_send(ag, ML_EVENT_KILL, payload))
        log_info("task '%s': agent '%s' is not connected; the kill goes out when it subscribes",
                 t->id, ag->id);
    return 0;
}

/* A RUNNING update that only says whether the task's health checks pass. */
static int health_apply(struct master *m, struct m_task *t, const struct ml_status *s,
                        const char *source)
{
    int r = master_store_begin(m);
    if (r < 0)
        return r;
    if ((r = record_status(m, s, source)) <= 0) {
        master_store_rollback(m);
        return r;
    }
    struct m_task old = *t;
    t->healthy = s->healthy;
    snprintf(t->uuid, sizeof(t->uuid), "%s", s->uuid);
    t->fw_acked = false;
    t->updated_at = now_realtime();
    if ((r = task_save(m, t)) < 0 || (r = master_store_commit(m)) < 0) {
        master_store_rollback(m);
        *t = old;
        return r;
    }
    log_info("task '%s' (%s): %s (from %s)", t->id, t->name,
             t->healthy == ML_HEALTHY ? "healthy" : "unhealthy", source);
    master_events_task(m, t, "task_updated");
    /* the framework hears it as one more RUNNING update, with its own uuid to acknowledge */
    master_fw_update(m, t, false);
    return 1;
}

int master_task_apply(struct master *m, struct m_task *t, const struct ml_status *s,
                      const char *source)
{
    /* forward only: STAGING < STARTING < RUNNING < terminal, and nothing after a terminal
     * state (a task the master declared LOST stays LOST; see docs/protocol.md); a RUNNING
     * task's health may change while it stays RUNNING */
    if (s->state == ML_RUNNING && t->state == ML_RUNNING && s->healthy != ML_HEALTH_UNKNOWN &&
        s->healthy != t->healthy)
        return health_apply(m, t, s, source);
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
    bool was_waiting = waiting(t), was_live = !ml_state_terminal(t->state);
    t->state = s->state;
    snprintf(t->reason, sizeof(t->reason), "%s", s->reason);
    t->message = s->message ? xstrdup(s->message) : NULL;
    t->has_exit_code = s->has_exit_code;
    t->exit_code = s->exit_code;
    t->signal = s->signal;
    snprintf(t->uuid, sizeof(t->uuid), "%s", s->uuid);
    t->fw_acked = false;
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
    if (was_waiting && ml_state_terminal(t->state)) {
        m->n_waiting--;
    } else if (was_live && ml_state_terminal(t->state)) {
        task_account(m, t, -1);
        t->has_usage = false;
    }
    log_info("task '%s' (%s): %s%s%s (from %s)", t->id, t->name, ml_state_name(t->state),
             t->reason[0] ? "/" : "", t->reason, source);
    master_events_task(m, t, "task_updated");
    master_fw_update(m, t, false);
    return 1;
}

int master_task_ack(struct master *m, struct m_task *t, const char *uuid)
{
    if (t->fw_acked || !uuid || !streq(uuid, t->uuid))
        return 0;
    t->fw_acked = true;
    if (task_save(m, t) < 0) {
        t->fw_acked = false;
        return -EIO;
    }
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

/* master_store_tasks_load's callback: a task's row back into the registry. */
static int load_row(struct master *m, const char *json)
{
    struct m_task *t = master_task_from_row(m, json);
    if (t)
        task_link(m, t); /* rows come oldest first: the list is newest first */
    return 0;
}

int master_tasks_load(struct master *m, struct berr **err)
{
    return master_store_tasks_load(m, load_row, err);
}

void master_tasks_free(struct master *m)
{
    while (m->tasks) {
        struct m_task *t = m->tasks;
        m->tasks = t->next;
        master_task_free(t);
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
    master_events_task(m, t, "task_removed");
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
