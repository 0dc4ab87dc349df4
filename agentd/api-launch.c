/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/api-launch.c - POST /v1/containers, one launch a turn of the loop. evhttp hands
 * the loop every request that is ready in one turn, and a launch holds the loop for a few
 * ms (the sandbox's set-up, the clone until the executor's exec): eight clients posting at
 * once made turns of 25-30 ms, and every other request (GET /health, a kill, the master
 * link) waited that long (issue #18: the loop's longest stall under 1,000 launches, 50-70
 * ms). A launch beyond the limit waits in a queue, in order, and a zero timeout takes the
 * next one in the next turn, after the loop has polled its sockets again. Measured with 8
 * clients (docs/performance.md): the longest GET /health 50-53 ms -> 20-23 ms with one a
 * turn (29-36 ms with two), the launches a second within the runs' noise: the turns took 2
 * on average before, and the group commit (store.c) still takes every change of a turn.
 * Launches from the master (link.c) come one message at a time and are not queued here. */
#include <string.h>

#include "agentd/agent.h"

#define LAUNCHES_PER_TURN 1

struct queued_launch {
    struct evhttp_request *req;
    char *body;
    size_t len;
    struct queued_launch *next;
};

static void launch_now(struct agent *a, struct evhttp_request *req, const char *body, size_t len);

static const struct timeval next_turn = {0, 0};

/* The next turn: a new count, and the next launches of the queue. */
static void on_next_turn(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct agent *a = arg;
    a->launches_this_turn = 0;
    while (a->launch_q && a->launches_this_turn < LAUNCHES_PER_TURN) {
        struct queued_launch *q = a->launch_q;
        if (!(a->launch_q = q->next))
            a->launch_q_tail = &a->launch_q;
        if (evhttp_request_get_connection(q->req))
            launch_now(a, q->req, q->body, q->len);
        else
            api_request_gone(q->req); /* its client went while it waited: not launched */
        free(q->body);
        free(q);
    }
    if (a->launch_q && !evtimer_pending(a->ev_launch_turn, NULL))
        evtimer_add(a->ev_launch_turn, &next_turn);
}

/* STARTING or FAILED (lifecycle.c): the 201 goes out once that is committed. */
static void launched(struct agent *a, const char *id, void *arg)
{
    api_reply_after_commit(a, arg, 201, id);
}

static void launch_now(struct agent *a, struct evhttp_request *req, const char *body, size_t len)
{
    /* the first of a turn: the count starts again in the next one */
    if (a->launches_this_turn++ == 0 && !evtimer_pending(a->ev_launch_turn, NULL))
        evtimer_add(a->ev_launch_turn, &next_turn);
    struct container *c = NULL;
    _cleanup_berr_ struct berr *err = NULL;
    /* parsed at the edge, once, by the schema the master uses too (masterlink/spec.c) */
    struct ml_task_spec spec;
    yajl_val v = json_parse(body, len, &err);
    int r = v ? ml_task_spec_parse(v, 0, &spec, &err) : -EINVAL;
    yajl_tree_free(v);
    if (r < 0 || ctr_launch(a, CTR_ORIGIN_LOCAL, &spec, NULL, launched, req, &c, &err) < 0)
        api_reply_error(req, err);
}

void api_launch(struct agent *a, struct evhttp_request *req)
{
    size_t len;
    char *body = api_read_body(req, &len);
    if (!body)
        return;
    if (!a->ev_launch_turn) {
        a->launch_q_tail = &a->launch_q;
        if (!(a->ev_launch_turn = evtimer_new(a->base, on_next_turn, a))) {
            free(body);
            api_fail(req, BERR_INTERNAL, "no memory for a timer");
            return;
        }
    }
    if (!a->launch_q && a->launches_this_turn < LAUNCHES_PER_TURN) {
        launch_now(a, req, body, len);
        free(body);
        return;
    }
    struct queued_launch *q = xzalloc(sizeof(*q));
    q->req = req;
    q->body = body;
    q->len = len;
    *a->launch_q_tail = q;
    a->launch_q_tail = &q->next;
    a->launches_deferred_total++;
}

void api_launch_stop(struct agent *a)
{
    while (a->launch_q) {
        struct queued_launch *q = a->launch_q;
        a->launch_q = q->next;
        if (evhttp_request_get_connection(q->req))
            api_fail(q->req, BERR_UNAVAILABLE, "the agent is stopping");
        else
            api_request_gone(q->req);
        free(q->body);
        free(q);
    }
    a->launch_q_tail = &a->launch_q;
    if (a->ev_launch_turn)
        event_free(a->ev_launch_turn);
    a->ev_launch_turn = NULL;
}
