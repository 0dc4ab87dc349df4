/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/waiters.c - GET /v1/containers/ID/wait: the request is held until the container is
 * terminal (lifecycle.c's ctr_set_state answers them all) or its client goes away. Each
 * waiter's close callback carries the container id, never a pointer. */
#include "agentd/agent.h"

struct waiter {
    struct evhttp_request *req;
    struct evhttp_connection *conn;
    struct ctr_ref *closecb_arg; /* owned; freed when the waiter is answered or gone */
    struct waiter *next;
};

static void reply_state(struct agent *a, struct container *c, struct evhttp_request *req)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    ctr_gen(a, c, g, 0);
    api_reply_json(req, 200, g);
    yajl_gen_free(g);
}

static void waiter_free(struct waiter *w)
{
    evhttp_connection_set_closecb(w->conn, NULL, NULL);
    free(w->closecb_arg);
    free(w);
}

void ctr_answer_waiters(struct agent *a, struct container *c)
{
    while (c->waiters) {
        struct waiter *w = c->waiters;
        c->waiters = w->next;
        reply_state(a, c, w->req);
        waiter_free(w);
    }
}

void ctr_drop_waiters(struct container *c)
{
    while (c->waiters) {
        struct waiter *w = c->waiters;
        c->waiters = w->next;
        waiter_free(w); /* evhttp ends the request with its connection */
    }
}

static void waiter_closed(struct evhttp_connection *conn, void *arg)
{
    struct ctr_ref *r = arg;
    struct container *c = ctr_find_id(r->a, r->id);
    for (struct waiter **p = c ? &c->waiters : NULL; p && *p; p = &(*p)->next) {
        if ((*p)->conn == conn) {
            struct waiter *w = *p;
            *p = w->next;
            api_request_gone(w->req);
            free(w);
            break;
        }
    }
    free(r);
}

void ctr_add_waiter(struct agent *a, struct container *c, struct evhttp_request *req)
{
    if (ml_state_terminal(c->state)) {
        reply_state(a, c, req);
        return;
    }
    struct waiter *w = xzalloc(sizeof(*w));
    w->req = req;
    w->conn = evhttp_request_get_connection(req);
    w->next = c->waiters;
    c->waiters = w;
    w->closecb_arg = ctr_ref_new(a, c->id);
    evhttp_connection_set_closecb(w->conn, waiter_closed, w->closecb_arg);
}
