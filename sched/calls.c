/* SPDX-License-Identifier: Apache-2.0 */
/* sched/calls.c - the scheduler library's calls (docs/protocol.md, "The scheduler API"):
 * ACCEPT with LAUNCH operations built from task specs (masterlink/spec.c), DECLINE with a
 * filter, REVIVE, SUPPRESS, KILL, ACKNOWLEDGE, RECONCILE and TEARDOWN, each one POST on the
 * current stream (its Berth-Stream-Id). sched.c handles their answers; http.c sends them. */
#include <string.h>

#include "sched/sched-internal.h"

struct sched_req *sched_call(struct sched *s, enum ml_sched_call_type t, char *payload_take)
{
    _cleanup_free_ char *payload = payload_take;
    if (!s->subscribed || s->stopped)
        return NULL;
    return sched_req_start(s, SCHED_REQ_CALL, t, ml_sched_call_encode(t, s->framework_id, payload));
}

static void ids_gen(yajl_gen g, const char *key, const char *const *ids, size_t n)
{
    json_str(g, key);
    yajl_gen_array_open(g);
    for (size_t i = 0; i < n; i++)
        json_str(g, ids[i]);
    yajl_gen_array_close(g);
}

static void filters_gen(yajl_gen g, double refuse_seconds)
{
    if (refuse_seconds < 0)
        return;
    json_str(g, "filters");
    yajl_gen_map_open(g);
    json_kv_double(g, "refuse_seconds", refuse_seconds);
    yajl_gen_map_close(g);
}

static int send_call(struct sched *s, enum ml_sched_call_type t, yajl_gen g)
{
    return sched_call(s, t, json_gen_take(g)) ? 0 : -ENOTCONN;
}

int sched_accept(struct sched *s, const char *const *offer_ids, size_t n_offers,
                 const struct ml_task_spec *tasks, const char *const *task_ids, size_t n_tasks,
                 double refuse_seconds, sched_accept_cb cb, void *arg)
{
    if (!n_offers)
        return -EINVAL;
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    ids_gen(g, "offer_ids", offer_ids, n_offers);
    json_str(g, "operations");
    yajl_gen_array_open(g);
    yajl_gen_map_open(g);
    json_kv_str(g, "type", "LAUNCH");
    json_str(g, "launch");
    yajl_gen_map_open(g);
    json_str(g, "tasks");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < n_tasks; i++) {
        yajl_gen_map_open(g);
        if (task_ids && task_ids[i])
            json_kv_str(g, "task_id", task_ids[i]);
        ml_task_spec_gen_fields(g, &tasks[i]);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    yajl_gen_array_close(g);
    filters_gen(g, refuse_seconds);
    yajl_gen_map_close(g);
    struct sched_req *r = sched_call(s, ML_SCHED_ACCEPT, json_gen_take(g));
    if (!r)
        return -ENOTCONN;
    r->accept_cb = cb;
    r->accept_arg = arg;
    return 0;
}

int sched_decline(struct sched *s, const char *const *offer_ids, size_t n, double refuse_seconds)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    ids_gen(g, "offer_ids", offer_ids, n);
    filters_gen(g, refuse_seconds);
    yajl_gen_map_close(g);
    return send_call(s, ML_SCHED_DECLINE, g);
}

static int empty_call(struct sched *s, enum ml_sched_call_type t)
{
    return sched_call(s, t, xstrdup("{}")) ? 0 : -ENOTCONN;
}

int sched_revive(struct sched *s)
{
    return empty_call(s, ML_SCHED_REVIVE);
}

int sched_suppress(struct sched *s)
{
    return empty_call(s, ML_SCHED_SUPPRESS);
}

/* TEARDOWN goes out last: after the calls already on their way, and after the ACKNOWLEDGE
 * of the update whose callback asked for it (sent once the callback returns). The master
 * refuses them once the framework is gone, and a task would stay unacknowledged. */
int sched_teardown(struct sched *s)
{
    if (!s->subscribed || s->stopped)
        return -ENOTCONN;
    s->teardown_queued = true;
    event_active(s->ev_kick, 0, 0);
    return 0;
}

void sched_teardown_if_idle(struct sched *s)
{
    if (!s->teardown_queued)
        return;
    for (const struct sched_req *r = s->reqs; r; r = r->next)
        if (r->kind == SCHED_REQ_CALL)
            return;
    s->teardown_queued = false;
    (void) empty_call(s, ML_SCHED_TEARDOWN);
}

int sched_kill(struct sched *s, const char *task_id, double grace_seconds)
{
    if (!ml_id_valid(task_id))
        return -EINVAL;
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_kv_str(g, "task_id", task_id);
    if (grace_seconds >= 0)
        json_kv_double(g, "grace_seconds", grace_seconds);
    yajl_gen_map_close(g);
    return send_call(s, ML_SCHED_KILL, g);
}

int sched_acknowledge(struct sched *s, const char *task_id, const char *uuid)
{
    if (!ml_id_valid(task_id) || !ml_uuid_valid(uuid))
        return -EINVAL;
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_kv_str(g, "task_id", task_id);
    json_kv_str(g, "uuid", uuid);
    yajl_gen_map_close(g);
    return send_call(s, ML_SCHED_ACKNOWLEDGE, g);
}

int sched_reconcile(struct sched *s, const char *const *task_ids, size_t n)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_str(g, "tasks");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < n; i++) {
        yajl_gen_map_open(g);
        json_kv_str(g, "task_id", task_ids[i]);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    return send_call(s, ML_SCHED_RECONCILE, g);
}
