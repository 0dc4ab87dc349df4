/* SPDX-License-Identifier: Apache-2.0 */
/* master/builtin.c - the framework inside the master that serves POST /v1/tasks and
 * `berthctl --master URL run`: a submitted task is queued (STAGING, no agent yet) when some
 * connected agent could ever hold it in its role, and refused when none could; the framework
 * then takes offers from the same DRF allocator as every other framework (in role "*" and the
 * roles its queued tasks ask for), places the oldest tasks first on the offered agents by
 * [master] placement (placement.c: spread or binpack), and gives back what it cannot use,
 * kept from itself for 5 s unless more becomes free there. It is suppressed while its queue
 * is empty, so it holds nothing then. Its status updates need no acknowledgement. */
#include <string.h>

#include "master/master.h"

#define BUILTIN_ID "berth-master"

static int cmp_created(const void *a, const void *b)
{
    const struct m_task *x = *(struct m_task *const *) a, *y = *(struct m_task *const *) b;
    if (x->created_at != y->created_at)
        return x->created_at < y->created_at ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* The waiting tasks, oldest first (n_waiting of them at most); malloc'd. */
static struct m_task **queue(struct master *m, size_t *ret_n)
{
    struct m_task **q = xcalloc(m->n_waiting + 1, sizeof(*q));
    size_t n = 0;
    for (struct m_task *t = m->tasks; t && n < m->n_waiting; t = t->next)
        if (!t->agent_id[0] && !ml_state_terminal(t->state) && streq(t->framework_id, BUILTIN_ID))
            q[n++] = t;
    qsort(q, n, sizeof(*q), cmp_created);
    *ret_n = n;
    return q;
}

/* Its roles: "*" and those its queued tasks ask for; suppressed while nothing waits. */
static void refresh(struct master *m)
{
    struct m_framework *fw = m->builtin;
    size_t n;
    _cleanup_free_ struct m_task **q = queue(m, &n);
    char **roles = xcalloc(n + 2, sizeof(char *));
    size_t k = 0;
    roles[k++] = xstrdup("*");
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < k; j++)
            seen = seen || streq(roles[j], q[i]->role);
        if (!seen)
            roles[k++] = xstrdup(q[i]->role);
    }
    master_fw_set_roles(m, fw, roles);
    drf_suppress(fw->drf, NULL, n == 0);
}

static void deliver(struct master *m, struct m_framework *fw, struct m_offer **offers, size_t n)
{
    size_t nq;
    _cleanup_free_ struct m_task **q = queue(m, &nq);
    struct m_place_agent cand[n + 1];
    bool used[n + 1];
    for (size_t i = 0; i < n; i++)
        used[i] = false;
    for (size_t k = 0; k < nq; k++) {
        struct m_task *t = q[k];
        /* the offers of its role as candidate agents: what each offers is what is free there */
        for (size_t i = 0; i < n; i++) {
            struct m_offer *o = offers[i];
            bool fits = streq(o->client->role->name, t->role) &&
                        (!t->n_host_ports || o->ports); /* explicit ports: checked by the agent */
            cand[i] = (struct m_place_agent){
                    .reachable = fits,
                    .connected = true,
                    .alloc_cpus = o->ag->alloc_cpus ? o->ag->alloc_cpus : 1,
                    .alloc_mem = o->ag->alloc_mem ? o->ag->alloc_mem : 1,
                    .placed_cpus = o->ag->alloc_cpus > o->remaining.cpus
                                           ? o->ag->alloc_cpus - o->remaining.cpus
                                           : 0,
                    .placed_mem = o->ag->alloc_mem > o->remaining.mem
                                          ? o->ag->alloc_mem - o->remaining.mem
                                          : 0,
                    .placed_tasks = o->ag->placed_tasks,
            };
        }
        int i = master_place(cand, n, t->cpus_millis, t->mem_bytes,
                             streq(m->cfg.placement, "binpack"));
        if (i < 0)
            continue;
        struct m_offer *o = offers[i];
        struct drf_res q1 = {t->cpus_millis, t->mem_bytes};
        master_offer_carve(m, o, q1);
        if (master_task_place(m, t, o->ag) < 0) {
            /* master.db refused: it waits on, and its part goes back with the offer */
            drf_charge(&m->drf, o->ag->drf, o->client->role, o->client, q1, +1);
            o->remaining.cpus += q1.cpus;
            o->remaining.mem += q1.mem;
            continue;
        }
        used[i] = true;
    }
    /* what it placed nothing on is kept from it for a while (more free there, or a new
     * task, which revives it, lifts that); the rest of a used offer comes back at once */
    for (size_t i = 0; i < n; i++)
        master_offer_close(m, offers[i], used[i] ? 0 : ML_SCHED_REFUSE_DEFAULT, used[i]);
    (void) fw;
    refresh(m);
}

int master_builtin_init(struct master *m)
{
    struct m_framework *fw = master_fw_find(m, BUILTIN_ID);
    if (!fw) {
        char **roles = xcalloc(2, sizeof(char *));
        roles[0] = xstrdup("*");
        fw = master_fw_create(m, BUILTIN_ID, "berth-master (POST /v1/tasks)", roles, "", 0, true);
        if (!fw)
            return -ENOMEM;
    }
    fw->builtin = true;
    fw->deliver = deliver;
    fw->state = M_FW_CONNECTED;
    fw->drf->active = true;
    m->builtin = fw;
    return 0;
}

/* After the tasks were loaded: its queue, its roles. */
void master_builtin_start(struct master *m)
{
    refresh(m);
}

int master_builtin_submit(struct master *m, const struct ml_task_spec *spec, struct m_task **ret,
                          struct berr **err)
{
    const char *role = spec->role ? spec->role : "*";
    unsigned up = 0;
    if (!master_agents_could_hold(m, role, spec->cpus_millis, spec->mem_bytes, &up)) {
        char cb[32], mb[32];
        format_cpus(spec->cpus_millis, cb, sizeof(cb));
        format_size(spec->mem_bytes, mb, sizeof(mb));
        return berr_setc(err, ENOSPC, BERR_INSUFFICIENT_RESOURCES,
                         "no agent has %s cpus and %s mem allocatable in role '%s' (%u agent%s "
                         "connected)",
                         cb, mb, role, up, up == 1 ? "" : "s");
    }
    struct drf_role *r = drf_role(&m->drf, role);
    if (spec->cpus_millis > r->limit.cpus || spec->mem_bytes > r->limit.mem)
        return berr_setc(err, ENOSPC, BERR_INSUFFICIENT_RESOURCES,
                         "the task is larger than role '%s''s quota limit", role);
    int rc = master_task_create(m, m->builtin, spec, NULL, NULL, role, ret, err);
    if (rc < 0)
        return rc;
    /* a new task: whatever it declined before may fit now. A pass right away, so that the
     * answer already names the agent when one has room (as POST /v1/tasks always did) */
    drf_filters_clear(&m->drf, m->builtin->drf);
    refresh(m);
    master_alloc_pass(-1, 0, m);
    return 0;
}
