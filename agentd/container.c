/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/container.c - the container table: lookup by id, name or id prefix, unlinking and
 * freeing, the limbo of removed containers whose end awaits its sync, the state watchers and
 * ctr_save (a record's change queued for the commit). The table owns the records; async
 * callbacks carry a container's id and look it up here (STYLE.md). record.c writes and reads
 * a container's JSON; lifecycle.c changes state. */
#include <string.h>

#include "agentd/agent.h"

/* Every event and API call finds its container by id, and every launch checks its name:
 * with 1,000 containers the list's walks were 7% of the loop's CPU during a burst of
 * launches (issue #18). The keys are the container's own id and name. */
struct container *ctr_find_id(struct agent *a, const char *id)
{
    return ml_table_get(&a->ctr_by_id, id);
}

struct container *ctr_find_name(struct agent *a, const char *name)
{
    return name ? ml_table_get(&a->ctr_by_name, name) : NULL;
}

struct container *ctr_find(struct agent *a, const char *ref, struct berr **err)
{
    if (!ref[0] || strlen(ref) > 64 || strchr(ref, '/')) {
        berr_setc(err, ENOENT, BERR_NOT_FOUND, "no container '%s'", ref);
        return NULL;
    }
    /* an exact id first, then an exact name, then an id prefix (names cannot look like
     * ids, masterlink/spec.c refuses them, so the order only matters for records of older
     * agents) */
    struct container *found = ctr_find_id(a, ref);
    if (found)
        return found;
    if ((found = ctr_find_name(a, ref)))
        return found;
    size_t n = strlen(ref);
    for (struct container *c = a->containers; c; c = c->next) {
        if (strncmp(c->id, ref, n) != 0)
            continue;
        if (found) {
            berr_setc(err, EINVAL, BERR_CONFLICT, "id prefix '%s' is ambiguous", ref);
            return NULL;
        }
        found = c;
    }
    if (!found)
        berr_setc(err, ENOENT, BERR_NOT_FOUND, "no container '%s'", ref);
    return found;
}

struct container *ctr_new(void)
{
    struct container *c = xzalloc(sizeof(*c));
    c->pidfd = c->status_fd = c->go_rd = c->go_wr = -1;
    c->exit_code = -1;
    return c;
}

struct ctr_ref *ctr_ref_new(struct agent *a, const char *id)
{
    struct ctr_ref *r = xzalloc(sizeof(*r));
    r->a = a;
    snprintf(r->id, sizeof(r->id), "%s", id);
    return r;
}

struct event *ctr_event_new(struct agent *a, struct container *c, int fd, short what,
                            event_callback_fn cb)
{
    struct event *ev = event_new(a->base, fd, what, cb, ctr_ref_new(a, c->id));
    if (ev && fd >= 0)
        event_add(ev, NULL);
    return ev;
}

void ctr_event_free(struct event **ev)
{
    if (*ev) {
        struct ctr_ref *r = event_get_callback_arg(*ev);
        event_free(*ev);
        free(r);
        *ev = NULL;
    }
}

/* The watchers registered with ctr_watch_add (lifecycle.c), for a change that is no
 * transition (health.c's healthy). */
void ctr_notify(struct agent *a, struct container *c)
{
    for (unsigned i = 0; i < a->n_watchers; i++)
        a->watchers[i](a, c);
}

void ctr_link(struct agent *a, struct container *c)
{
    c->next = a->containers;
    if (c->next)
        c->next->pprev = &c->next;
    c->pprev = &a->containers;
    a->containers = c;
    if (!ml_state_terminal(c->state))
        res_hold(a, c, 1);
    ml_table_put(&a->ctr_by_id, c->id, c);
    /* a name is unique (admit), but records of older agents may share one: the first
     * linked is found by it, the next one once that is gone (ctr_unlink) */
    if (c->spec.name && ml_table_get(&a->ctr_by_name, c->spec.name))
        a->ctr_names_shared = true;
    else if (c->spec.name)
        ml_table_put(&a->ctr_by_name, c->spec.name, c);
}

void ctr_unlink(struct agent *a, struct container *c)
{
    /* through pprev: a walk to find it was 2.6% of the loop's CPU in 1,000 removals */
    if (c->pprev) {
        *c->pprev = c->next;
        if (c->next)
            c->next->pprev = c->pprev;
        c->pprev = NULL;
        if (!ml_state_terminal(c->state))
            res_hold(a, c, -1);
    }
    c->next = NULL;
    if (ml_table_get(&a->ctr_by_id, c->id) == c)
        ml_table_del(&a->ctr_by_id, c->id);
    if (c->spec.name && ml_table_get(&a->ctr_by_name, c->spec.name) == c) {
        ml_table_del(&a->ctr_by_name, c->spec.name);
        for (struct container *o = a->containers; a->ctr_names_shared && o; o = o->next)
            if (streq(o->spec.name, c->spec.name)) {
                ml_table_put(&a->ctr_by_name, o->spec.name, o);
                break;
            }
    }
}

void ctr_watch_add(struct agent *a, void (*fn)(struct agent *a, struct container *c))
{
    if (a->n_watchers < ARRAY_SIZE(a->watchers))
        a->watchers[a->n_watchers++] = fn;
}

void ctr_save(struct agent *a, struct container *c)
{
    /* only the states the API has announced must survive a machine crash (store.c) */
    bool durable = c->state == ML_STARTING || ml_state_terminal(c->state);
    _cleanup_free_ char *record = ctr_record_encode(a, c);
    store_put(a, c->id, c->spec.name, c->created_at, record, c->pid_start, durable);
}

void ctr_limbo_add(struct agent *a, struct container *c)
{
    c->next = a->limbo;
    a->limbo = c;
}

struct container *ctr_limbo_take(struct agent *a, const char *id)
{
    for (struct container **p = &a->limbo; *p; p = &(*p)->next) {
        if (streq((*p)->id, id)) {
            struct container *c = *p;
            *p = c->next;
            c->next = NULL;
            return c;
        }
    }
    return NULL;
}

struct container *ctr_free(struct container *c)
{
    if (!c)
        return NULL;
    struct event **evs[] = {&c->ev_exit, &c->ev_status, &c->ev_oom, &c->ev_backstop, &c->ev_grace};
    for (size_t i = 0; i < ARRAY_SIZE(evs); i++)
        ctr_event_free(evs[i]);
    if (c->pidfd >= 0)
        close(c->pidfd);
    if (c->status_fd >= 0)
        close(c->status_fd);
    if (c->go_rd >= 0)
        close(c->go_rd);
    if (c->go_wr >= 0)
        close(c->go_wr);
    free(c->launch_error);
    ctr_drop_waiters(c);
    health_end(c);
    free(c->health_message);
    iso_cgroup_free(c->cg);
    ml_task_spec_done(&c->spec);
    free(c->message);
    free(c->user_home);
    free(c->limits_json);
    free(c->cgroups_json);
    free(c);
    return NULL;
}

static void free_list(struct container **list)
{
    while (*list) {
        struct container *c = *list;
        *list = c->next;
        ctr_free(c);
    }
}

void ctr_free_all(struct agent *a)
{
    /* the indexes first: nothing found through them while the lists are freed */
    ml_table_free(&a->ctr_by_id);
    ml_table_free(&a->ctr_by_name);
    free_list(&a->containers);
    free_list(&a->limbo);
    free(a->role_use);
    a->role_use = NULL;
}
