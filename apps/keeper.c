/* SPDX-License-Identifier: Apache-2.0 */
/* apps/keeper.c - berth-apps as a framework (sched/sched.h, nothing private of the master):
 * subscribes (as the framework id kept in apps.db after the first time), on every SUBSCRIBED
 * RECONCILEs every instance it knows and decides nothing until each was answered for; places
 * the instances the apps want (deploy.c) from offers: resources, ports from the offer's ranges
 * (given as host ports: $PORT0..), the role, the constraints (constraints.h); declines the
 * rest; turns status updates into instance states and healthy. Why instances wait is read off
 * the offers seen (docs/apps.md "waiting"). */
#include <string.h>

#include "apps/appsd.h"

/* ---- status updates --------------------------------------------------------------------- */

/* An instance that serves (RUNNING and healthy: in every berth-lb's rotation) is marked
 * killing first, which takes it out of the rotations, and its KILL goes kill_delay later
 * (apps_step): no request meets it gone. Any other goes at once. */
void apps_kill(struct apps *a, struct inst *i)
{
    double now = now_realtime();
    if (!i->killing) {
        const struct app *app = apps_find(a, i->app_id); /* healthy as published (api.c) */
        bool serves = i->state == ML_RUNNING &&
                      (i->healthy == ML_HEALTHY || (app && !app->serving->hc && !app->def.hc));
        i->killing = true;
        i->killed_at = now;
        i->kill_at =
                serves && a->cfg.kill_delay_ms ? now + (double) a->cfg.kill_delay_ms / 1000 : 0;
        apps_store_inst(a, i);
        if (i->kill_at) {
            log_info("killing %s (app '%s') in %gs: out of rotation first", i->task_id, i->app_id,
                     (double) a->cfg.kill_delay_ms / 1000);
            return;
        }
        log_info("killing %s (app '%s')", i->task_id, i->app_id);
    }
    i->kill_at = 0;
    i->killed_at = now;
    (void) sched_kill(a->s, i->task_id, -1);
}

void apps_inst_ended(struct apps *a, struct inst *i, const char *reason, bool unknown)
{
    struct app *app = apps_find(a, i->app_id);
    if (app && !i->killing && !unknown && !app->deleting) {
        app->bo_n++;
        double delay = app_backoff_delay(app->serving, app->bo_n);
        app->bo_until = now_realtime() + delay;
        apps_store_app(a, app);
        log_info("instance %s of app '%s' ended (%s): replaced in %.3fs (%u in a row)", i->task_id,
                 i->app_id, reason ? reason : "-", delay, app->bo_n);
        struct dep *d = apps_dep_of(a, app->def.id);
        if (d && streq(i->version, d->version) && !i->ever_healthy) {
            d->failures++;
            apps_store_dep(a, d);
        }
    }
    apps_inst_remove(a, i);
}

static void check_reconciled(struct apps *a)
{
    if (a->reconciled)
        return;
    for (struct inst *i = a->insts; i; i = i->next)
        if (i->reconciling)
            return;
    a->reconciled = true;
    log_info("reconciled: %s", "every instance answered for; launching what is missing");
    for (struct inst *i = a->insts; i; i = i->next)
        if (i->killing)
            apps_kill(a, i);
    a->suppressed = true; /* revived by the step when something is wanted */
    (void) sched_revive(a->s);
    a->suppressed = false;
}

static void on_update(struct sched *s, const struct sched_status *st, void *arg)
{
    struct apps *a = arg;
    struct inst *i = apps_inst_find(a, st->task_id);
    int state = ml_state_from_name(st->state);
    if (state < 0)
        return;
    if (!i) {
        if (!ml_state_terminal((enum ml_state) state)) {
            log_info("task %s is none of ours (any more): killing it", st->task_id);
            (void) sched_kill(s, st->task_id, -1);
        }
        return;
    }
    if (st->reconciliation)
        i->reconciling = false;
    if (ml_state_terminal((enum ml_state) state)) {
        bool unknown = st->reason && streq(st->reason, "UNKNOWN_TASK");
        i->state = (enum ml_state) state; /* instance_removed shows its last state */
        apps_inst_ended(a, i, st->reason, unknown);
    } else {
        enum ml_state was = i->state;
        bool was_ever = i->ever_healthy;
        if (state == ML_RUNNING && i->state != ML_RUNNING)
            i->running_since = now_realtime();
        i->state = (enum ml_state) state;
        if (state == ML_RUNNING && st->healthy != ML_HEALTH_UNKNOWN)
            i->healthy = st->healthy;
        if (i->healthy == ML_HEALTHY)
            i->ever_healthy = true;
        /* a flip of healthy alone is published, not written: a flapping check would make
         * apps.db's writes (and its checkpoints' fsyncs) hold up the loop; the next write of
         * the row takes it, and after a restart reconciliation brings it anyway */
        if (i->state != was || i->ever_healthy != was_ever)
            apps_store_inst(a, i);
        else
            apps_events_inst(a, i);
    }
    check_reconciled(a);
    apps_step(a);
}

static void on_subscribed(struct sched *s, const char *id, bool again, void *arg)
{
    struct apps *a = arg;
    if (!a->framework_id || !streq(a->framework_id, id)) {
        free(a->framework_id);
        a->framework_id = xstrdup(id);
        apps_store_meta(a, "framework_id", id);
    }
    size_t n = 0;
    for (struct inst *i = a->insts; i; i = i->next)
        n++;
    log_info("subscribed as framework %s%s; reconciling %zu instances", id, again ? " again" : "",
             n);
    a->reconciled = false;
    a->suppressed = false;
    const char **ids = xcalloc(n + 1, sizeof(*ids));
    n = 0;
    for (struct inst *i = a->insts; i; i = i->next) {
        i->reconciling = true;
        ids[n++] = i->task_id;
    }
    if (n)
        (void) sched_reconcile(s, ids, n);
    a->reconcile_sent = now_realtime();
    free(ids);
    check_reconciled(a);
}

static int start_sched(struct apps *a, struct berr **err);

/* The master no longer knows the framework (torn down, removed after its failover_timeout,
 * or a new master.db): its tasks are gone; start over as a new framework, every app from
 * nothing. */
static void start_over(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct apps *a = arg;
    sched_free(a->s);
    a->s = NULL;
    while (a->insts)
        apps_inst_remove(a, a->insts);
    free(a->framework_id);
    a->framework_id = NULL;
    apps_store_meta(a, "framework_id", NULL);
    _cleanup_berr_ struct berr *err = NULL;
    if (start_sched(a, &err) < 0) {
        log_error("cannot subscribe again: %s", berr_msg(err));
        event_base_loopexit(a->base, NULL);
    }
}

static void on_error(struct sched *s, const char *call, enum berr_code code, const char *msg,
                     bool fatal, void *arg)
{
    (void) s;
    struct apps *a = arg;
    log_warning("master: %s: %s%s", call, msg, fatal ? " (the framework stopped)" : "");
    /* the stream ends NOT_FOUND when the framework was removed, CONFLICT when another
     * berth-apps subscribed as it (that one keeps the apps: this one ends); SUBSCRIBE is
     * refused NOT_FOUND (unknown) or CONFLICT (removed) */
    bool gone = streq(call, "SUBSCRIBE") ? code == BERR_NOT_FOUND || code == BERR_CONFLICT
                                         : code == BERR_NOT_FOUND;
    if (fatal && a->framework_id && gone) {
        log_warning("framework %s is gone at the master with its tasks: subscribing as a new "
                    "framework; every app starts from nothing",
                    a->framework_id);
        struct timeval tv = {0, 0};
        event_base_once(a->base, -1, EV_TIMEOUT, start_over, a, &tv);
    } else if (fatal) {
        a->exit_code = 1;
        event_base_loopexit(a->base, NULL);
    }
}

static void on_disconnected(struct sched *s, const char *why, void *arg)
{
    (void) s;
    struct apps *a = arg;
    a->reconciled = false;
    log_warning("master stream ended (%s); subscribing again", why);
}

/* ---- offers ------------------------------------------------------------------------------ */

struct launch {
    struct apps *a;
    size_t n;
    char ids[][65];
};

static void accepted(struct sched *s, const struct berr *err, char *const *ids, size_t n, void *arg)
{
    (void) s, (void) ids, (void) n;
    struct launch *l = arg;
    /* ECANCELED: the client is being freed (a stop, a start over) before the master
     * answered; the instances stay as stored, for the next start's reconciliation */
    if (err && err->errnum != ECANCELED) {
        log_warning("ACCEPT refused (%s): %zu instances go back to waiting", berr_msg(err), l->n);
        for (size_t k = 0; k < l->n; k++) {
            struct inst *i = apps_inst_find(l->a, l->ids[k]);
            if (i && i->state == ML_STAGING)
                apps_inst_remove(l->a, i);
        }
    }
    free(l);
}

/* Why an app cannot have one more instance from this offer ("" when it can). */
struct verdict {
    bool role_ok, cons_ok, res_ok;
    char why[200];
};

/* The places of the app's live instances plus n_extra just planned. */
static struct app_place *places_of(struct apps *a, const struct app *app, size_t *ret_n)
{
    size_t n = 0;
    for (struct inst *i = a->insts; i; i = i->next)
        n += streq(i->app_id, app->def.id);
    struct app_place *p = xcalloc(n + 1, sizeof(*p));
    n = 0;
    for (struct inst *i = a->insts; i; i = i->next)
        if (streq(i->app_id, app->def.id) && !i->killing)
            p[n++] = (struct app_place){i->hostname, i->attrs, i->n_attrs};
    *ret_n = n;
    return p;
}

static void judge(struct apps *a, const struct app *app, const struct ml_offer *o, uint64_t cpus,
                  uint64_t mem, const uint16_t *used, size_t n_used, struct verdict *v,
                  uint16_t *ports)
{
    const struct app_def *d = app->serving;
    *v = (struct verdict){0};
    v->role_ok = streq(d->role, o->role);
    if (!v->role_ok) {
        snprintf(v->why, sizeof(v->why), "no offers in role '%s' (berth-apps takes role '%s')",
                 d->role, a->cfg.role);
        return;
    }
    size_t n_placed;
    struct app_place *placed = places_of(a, app, &n_placed);
    struct app_place cand = {o->hostname, o->attrs, o->n_attrs};
    v->cons_ok =
            app_constraints_ok(d->cons, d->n_cons, &cand, placed, n_placed, v->why, sizeof(v->why));
    free(placed);
    if (!v->cons_ok)
        return;
    char need[64];
    if (cpus < d->cpus_millis) {
        format_cpus(d->cpus_millis, need, sizeof(need));
        snprintf(v->why, sizeof(v->why), "cpus: no offer has %s free", need);
    } else if (mem < d->mem_bytes) {
        format_size(d->mem_bytes, need, sizeof(need));
        snprintf(v->why, sizeof(v->why), "mem: no offer has %s free", need);
    } else if (d->n_ports && app_ports_pick(o->ports, used, n_used, d->n_ports, ports) < 0) {
        snprintf(v->why, sizeof(v->why), "ports: no offer has %zu free ports", d->n_ports);
    } else {
        v->res_ok = true;
    }
}

static void spec_of(const struct app_def *d, const char *name, const char *role, char **argv,
                    struct ml_port *ports, const uint16_t *hp, struct ml_task_spec *t)
{
    static char *no_env[] = {NULL};
    for (size_t k = 0; k < d->n_ports; k++)
        ports[k] = (struct ml_port){.name = d->ports[k].name, .host_port = hp[k]};
    *t = (struct ml_task_spec){
            .name = (char *) name,
            .command = {.shell = d->command, .argv = d->command ? argv : d->args},
            .cpus_millis = d->cpus_millis,
            .mem_bytes = d->mem_bytes,
            .pids = d->pids,
            .user = d->user,
            .env = d->env ? d->env : no_env,
            .role = (char *) role,
            .network = d->network,
            .ports = d->n_ports ? ports : NULL,
            .n_ports = d->n_ports,
            .health_check = d->hc,
    };
}

#define MAX_PER_OFFER 64

/* Place what fits of the wanted instances on one offer; true when something was launched. */
static bool use_offer(struct apps *a, const struct ml_offer *o)
{
    struct ml_task_spec specs[MAX_PER_OFFER];
    struct ml_port ports[MAX_PER_OFFER][ML_MAX_PORTS];
    uint16_t used[MAX_PER_OFFER * 4];
    size_t n_used = 0, n = 0;
    char *argvs[MAX_PER_OFFER][4];
    struct launch *l = xzalloc(sizeof(*l) + MAX_PER_OFFER * sizeof(l->ids[0]));
    const char *ids[MAX_PER_OFFER];
    uint64_t cpus = o->cpus_millis, mem = o->mem_bytes;
    for (struct app *app = a->apps; app && n < MAX_PER_OFFER; app = app->next) {
        while (app->want > 0 && n < MAX_PER_OFFER) {
            struct verdict v;
            uint16_t hp[ML_MAX_PORTS];
            judge(a, app, o, cpus, mem, used, n_used, &v, hp);
            if (!v.res_ok) {
                app->waiting.reason = !v.role_ok ? "ROLE" : !v.cons_ok ? "CONSTRAINT" : "RESOURCES";
                snprintf(app->waiting.message, sizeof(app->waiting.message), "%s", v.why);
                break;
            }
            const struct app_def *d = app->serving;
            if (n_used + d->n_ports > ARRAY_SIZE(used))
                break;
            struct inst *i = xzalloc(sizeof(*i));
            char hex[17];
            if (random_hex(hex, 16) < 0)
                snprintf(hex, sizeof(hex), "%016llx", (unsigned long long) now_monotonic_ns());
            snprintf(i->task_id, sizeof(i->task_id), "%.47s_%s", d->id, hex);
            i->app_id = xstrdup(d->id);
            i->version = xstrdup(app->serving_version);
            snprintf(i->agent_id, sizeof(i->agent_id), "%s", o->agent_id);
            i->hostname = xstrdup(o->hostname ? o->hostname : "");
            i->address = xstrdup(o->address ? o->address : "");
            i->attrs = xcalloc(o->n_attrs + 1, sizeof(*i->attrs));
            for (size_t k = 0; k < o->n_attrs; k++) {
                i->attrs[k].name = xstrdup(o->attrs[k].name);
                i->attrs[k].value = xstrdup(o->attrs[k].value);
            }
            i->n_attrs = o->n_attrs;
            i->n_ports = d->n_ports;
            memcpy(i->ports, hp, d->n_ports * sizeof(hp[0]));
            memcpy(used + n_used, hp, d->n_ports * sizeof(hp[0]));
            n_used += d->n_ports;
            i->state = ML_STAGING;
            i->started_at = now_realtime();
            i->next = a->insts;
            a->insts = i;
            apps_store_inst(a, i); /* before the ACCEPT: a restart reconciles it */
            argvs[n][0] = "/bin/sh", argvs[n][1] = "-c", argvs[n][2] = d->command;
            argvs[n][3] = NULL;
            snprintf(l->ids[n], sizeof(l->ids[n]), "%s", i->task_id);
            spec_of(d, i->task_id, o->role, argvs[n], ports[n], hp, &specs[n]);
            ids[n] = l->ids[n];
            n++;
            cpus -= d->cpus_millis;
            mem -= d->mem_bytes;
            app->want--;
            app->waiting.reason = NULL;
            log_info("launching %s (app '%s' version %s) on %s", i->task_id, d->id, i->version,
                     o->hostname);
        }
    }
    if (!n) {
        free(l);
        return false;
    }
    l->a = a;
    l->n = n;
    const char *oid = o->id;
    if (sched_accept(a->s, &oid, 1, specs, ids, n, 1, accepted, l) < 0) {
        struct berr e = {.errnum = ENOTCONN};
        snprintf(e.msg, sizeof(e.msg), "not subscribed");
        accepted(a->s, &e, NULL, 0, l);
    }
    return true;
}

static void on_offers(struct sched *s, const struct ml_offer *offers, size_t n, void *arg)
{
    struct apps *a = arg;
    a->last_offers_at = now_realtime();
    for (size_t k = 0; k < n; k++) {
        const struct ml_offer *o = &offers[k];
        const char *id = o->id;
        if (!a->reconciled) {
            (void) sched_decline(s, &id, 1, 1);
            continue;
        }
        unsigned want = 0;
        for (struct app *app = a->apps; app; app = app->next)
            want += app->want;
        if (!want || !use_offer(a, o))
            (void) sched_decline(s, &id, 1, want ? 1 : 30);
    }
}

int apps_keeper_start(struct apps *a, struct berr **err)
{
    return start_sched(a, err);
}

static int start_sched(struct apps *a, struct berr **err)
{
    const char *roles[] = {a->cfg.role, NULL};
    struct sched_config cfg = {.master = a->cfg.master,
                               .token = a->master_token,
                               .cacert = a->cfg.master_ca[0] ? a->cfg.master_ca : NULL,
                               .name = a->cfg.name,
                               .roles = roles,
                               .failover_timeout = (double) a->cfg.failover_timeout_ms / 1000,
                               .framework_id = a->framework_id};
    struct sched_callbacks cb = {.subscribed = on_subscribed,
                                 .offers = on_offers,
                                 .update = on_update,
                                 .error = on_error,
                                 .disconnected = on_disconnected};
    int r = sched_new(a->base, &cfg, &cb, a, &a->s, err);
    if (r < 0)
        return r;
    return sched_start(a->s) < 0 ? berr_setx(err, EIO, "cannot subscribe") : 0;
}

void apps_keeper_stop(struct apps *a)
{
    if (a->s)
        sched_free(a->s);
    a->s = NULL;
}
