/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/link-updates.c - the master's tasks on this agent and their status updates: which
 * container runs each task, the updates it has not had (decide.c's catch-up, from the
 * transitions lifecycle.c stores), queued in state.db (link-db.c) before they are sent,
 * sent one at a time per task in order, and dropped once acknowledged. link.c speaks the
 * protocol around them; link-http.c carries the UPDATE calls. */
#include <string.h>

#include "agentd/link-internal.h"

#define ACK_TIMEOUT_MS 5000

struct link_task *link_task_new(struct link *l, const char *task_id, const char *ctr_id,
                                int last_state)
{
    struct link_task *t = xzalloc(sizeof(*t));
    snprintf(t->task_id, sizeof(t->task_id), "%s", task_id);
    snprintf(t->container_id, sizeof(t->container_id), "%s", ctr_id ? ctr_id : "");
    t->last_state = last_state;
    t->next = l->tasks;
    l->tasks = t;
    ml_table_put(&l->by_task, t->task_id, t);
    if (t->container_id[0])
        ml_table_put(&l->by_container, t->container_id, t);
    return t;
}

static void task_drop(struct link *l, struct link_task *t)
{
    (void) link_db_task_delete(l, t->task_id);
    ml_table_del(&l->by_task, t->task_id);
    if (t->container_id[0])
        ml_table_del(&l->by_container, t->container_id);
    for (struct link_task **p = &l->tasks; *p; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            break;
        }
    }
    free(t);
}

/* Record one status: state.db first, then the queue; the kick sends it. */
static void enqueue(struct link *l, struct link_task *t, struct ml_status *s)
{
    if (ml_uuid_new(s->uuid) < 0) {
        log_error("task '%s': no randomness for an update uuid", t->task_id);
        return;
    }
    snprintf(s->task_id, sizeof(s->task_id), "%s", t->task_id);
    struct link_update *u = xzalloc(sizeof(*u));
    u->json = ml_status_encode(s);
    u->terminal = ml_state_terminal(s->state);
    snprintf(u->task_id, sizeof(u->task_id), "%s", t->task_id);
    snprintf(u->uuid, sizeof(u->uuid), "%s", s->uuid);
    if (link_db_update_add(l, u) < 0) {
        /* not recorded, not sent: the next start's catch-up derives it again */
        free(u->json);
        free(u);
        return;
    }
    t->last_state = (int) s->state;
    (void) link_db_task_save(l, t);
    struct link_update **p = &l->updates;
    while (*p)
        p = &(*p)->next;
    *p = u;
    log_debug("task '%s': update %s queued (%s)", t->task_id, ml_state_name(s->state), u->uuid);
    link_kick(l);
}

static void enqueue_state(struct link *l, struct link_task *t, struct container *c,
                          enum ml_state st)
{
    struct ml_status s = {.state = st, .timestamp = now_realtime()};
    snprintf(s.container_id, sizeof(s.container_id), "%s", c->id);
    if (st == ML_STARTING && c->created_at > 0)
        s.timestamp = c->created_at;
    if (st == ML_RUNNING && c->started_at > 0)
        s.timestamp = c->started_at;
    if (st == ML_RUNNING && c->state == ML_RUNNING) {
        s.healthy = c->healthy;
        t->healthy = c->healthy;
    }
    if (ml_state_terminal(st)) {
        if (c->finished_at > 0)
            s.timestamp = c->finished_at;
        if (c->reason != ML_REASON_NONE)
            snprintf(s.reason, sizeof(s.reason), "%s", ml_reason_name(c->reason));
        s.message = c->message && c->message[0] ? c->message : NULL;
        s.has_exit_code = c->reason == ML_REASON_EXITED && c->exit_code >= 0;
        s.exit_code = c->exit_code;
        s.signal = c->signal;
    }
    enqueue(l, t, &s);
}

/* Bring the task's recorded states up to the container's: every state it passed through
 * that the master has not been told of, in order (decide.c). */
static void catch_up(struct link *l, struct link_task *t, struct container *c)
{
    enum ml_state todo[3];
    size_t n = link_catch_up_states(t->last_state, c->state, c->pid > 0, c->started_at > 0, todo);
    for (size_t i = 0; i < n; i++)
        enqueue_state(l, t, c, todo[i]);
    /* a health check's verdict changed: one more RUNNING update carries it (Mesos's way) */
    if (n == 0 && c->state == ML_RUNNING && t->last_state == ML_RUNNING &&
        c->healthy != ML_HEALTH_UNKNOWN && c->healthy != t->healthy) {
        struct ml_status s = {.state = ML_RUNNING, .timestamp = now_realtime()};
        snprintf(s.container_id, sizeof(s.container_id), "%s", c->id);
        s.healthy = t->healthy = c->healthy;
        enqueue(l, t, &s);
    }
}

/* A watcher of stored transitions (lifecycle.c): a container of the master's binds to its
 * task by the task id in its record, the first time it is seen. */
void link_on_transition(struct agent *a, struct container *c)
{
    struct link *l = a->link;
    if (!l || !c->task_id[0])
        return;
    struct link_task *t = ml_table_get(&l->by_container, c->id);
    if (!t) {
        t = ml_table_get(&l->by_task, c->task_id);
        if (!t || t->container_id[0])
            return;
        snprintf(t->container_id, sizeof(t->container_id), "%s", c->id);
        ml_table_put(&l->by_container, t->container_id, t);
        (void) link_db_task_save(l, t);
    }
    catch_up(l, t, c);
}

/* A task without a container ends (refused launch, unknown task, lost launch). */
void link_task_end(struct link *l, struct link_task *t, enum ml_state st, enum ml_reason reason,
                   const char *msg)
{
    struct ml_status s = {.state = st, .timestamp = now_realtime()};
    snprintf(s.reason, sizeof(s.reason), "%s", ml_reason_name(reason));
    s.message = (char *) msg;
    enqueue(l, t, &s);
}

void link_updates_ack(struct link *l, const char *uuid)
{
    if (!uuid)
        return;
    for (struct link_update **pp = &l->updates; *pp; pp = &(*pp)->next) {
        struct link_update *u = *pp;
        if (!streq(u->uuid, uuid))
            continue;
        if (link_db_update_delete(l, u->uuid) < 0)
            return; /* kept: it goes again and the master acks it again */
        *pp = u->next;
        if (u->terminal) {
            struct link_task *t = ml_table_get(&l->by_task, u->task_id);
            if (t)
                task_drop(l, t);
        }
        free(u->json);
        free(u);
        link_kick(l); /* the task's next update may go now */
        return;
    }
}

static void send_update(struct link *l, struct link_update *u)
{
    _cleanup_free_ char *payload = xasprintf("{\"status\": %s}", u->json);
    struct link_call *c =
            link_call_start(l, CALL_UPDATE, ml_call_encode(ML_CALL_UPDATE, l->a->node_id, payload));
    if (!c)
        return;
    snprintf(c->uuid, sizeof(c->uuid), "%s", u->uuid);
    u->calling = true;
    u->sent_ns = now_monotonic_ns();
    u->attempts++;
}

static uint64_t ack_timeout_ns(const struct link_update *u)
{
    uint64_t ms = (uint64_t) ACK_TIMEOUT_MS << (u->attempts > 3 ? 3 : u->attempts);
    return (ms > 30000 ? 30000 : ms) * 1000000ULL;
}

/* Send each task's oldest unacknowledged update, unless it is on its way or still within
 * its ACK timeout: one at a time per task keeps them in order. */
void link_updates_flush(struct link *l)
{
    if (!l->subscribed)
        return;
    struct ml_table seen = {0};
    uint64_t now = now_monotonic_ns();
    for (struct link_update *u = l->updates; u; u = u->next) {
        if (ml_table_get(&seen, u->task_id))
            continue;
        ml_table_put(&seen, u->task_id, u);
        if (u->calling || (u->sent_ns && now - u->sent_ns < ack_timeout_ns(u)))
            continue;
        send_update(l, u);
    }
    ml_table_free(&seen);
}

struct link_update *link_update_find(struct link *l, const char *uuid)
{
    for (struct link_update *u = l->updates; u; u = u->next)
        if (streq(u->uuid, uuid))
            return u;
    return NULL;
}

static void load_task(struct link *l, const char *task_id, const char *ctr_id, int last)
{
    if (ml_id_valid(task_id) && !ml_table_get(&l->by_task, task_id))
        link_task_new(l, task_id, ctr_id, last);
}

static void load_update(struct link *l, struct link_update *u)
{
    struct link_update **tail = &l->updates;
    while (*tail)
        tail = &(*tail)->next;
    *tail = u;
}

int link_updates_load(struct link *l, struct berr **err)
{
    int r = link_db_load(l, load_task, load_update, err);
    if (r < 0)
        return r;
    /* what happened while the agent was down (recover.c already finished or lost the
     * containers): bring every task's updates up to date */
    for (struct link_task *t = l->tasks, *next; t; t = next) {
        next = t->next;
        struct container *c = t->container_id[0] ? ctr_find_id(l->a, t->container_id) : NULL;
        if (c)
            catch_up(l, t, c);
        else if (t->last_state < 0 || !ml_state_terminal((enum ml_state) t->last_state))
            link_task_end(l, t, ML_LOST, ML_REASON_AGENT_RESTARTED_LOST,
                          "the agent restarted and has no container for the task");
    }
    return 0;
}

void link_updates_free(struct link *l)
{
    while (l->updates) {
        struct link_update *u = l->updates;
        l->updates = u->next;
        free(u->json);
        free(u);
    }
    while (l->tasks) {
        struct link_task *t = l->tasks;
        l->tasks = t->next;
        free(t);
    }
    ml_table_free(&l->by_task);
    ml_table_free(&l->by_container);
}
