/* SPDX-License-Identifier: Apache-2.0 */
/* apps/deploy.c - what each app needs next: a pass over every app (after every event and on a
 * tick) plans its step (plan.c) from its instances, kills what the plan says, counts what it
 * wants launched (keeper.c places those from offers), ends deployments that are done, stops one
 * whose new version never turns healthy (the old version serves again), resets the backoff of
 * an app whose instance stayed up, and suppresses or revives offers. Also the lists of apps,
 * instances and deployments. */
#include <string.h>

#include "apps/appsd.h"

#define FAILED_ENDS 3 /* ends of a new version, never healthy, that stop its deployment */

struct app *apps_find(struct apps *a, const char *id)
{
    for (struct app *x = a->apps; x; x = x->next)
        if (streq(x->def.id, id))
            return x;
    return NULL;
}

struct inst *apps_inst_find(struct apps *a, const char *task_id)
{
    for (struct inst *i = a->insts; i; i = i->next)
        if (streq(i->task_id, task_id))
            return i;
    return NULL;
}

void apps_inst_free(struct inst *i)
{
    free(i->app_id);
    free(i->version);
    free(i->hostname);
    free(i->address);
    free(i->pub);
    for (size_t k = 0; k < i->n_attrs; k++) {
        free(i->attrs[k].name);
        free(i->attrs[k].value);
    }
    free(i->attrs);
    free(i);
}

void apps_inst_remove(struct apps *a, struct inst *i)
{
    for (struct inst **p = &a->insts; *p; p = &(*p)->next)
        if (*p == i) {
            *p = i->next;
            break;
        }
    apps_store_inst_del(a, i->task_id);
    apps_events_inst_removed(a, i);
    apps_inst_free(i);
}

struct dep *apps_dep_of(struct apps *a, const char *app_id)
{
    for (struct dep *d = a->deps; d; d = d->next)
        if (streq(d->app_id, app_id) && streq(d->state, "running"))
            return d;
    return NULL;
}

struct dep *apps_dep_find(struct apps *a, const char *id)
{
    for (struct dep *d = a->deps; d; d = d->next)
        if (streq(d->id, id))
            return d;
    return NULL;
}

struct dep *apps_dep_new(struct apps *a, const char *app_id, const char *kind, const char *version,
                         const char *from)
{
    struct dep *d = xzalloc(sizeof(*d));
    char hex[17];
    if (random_hex(hex, 16) < 0)
        snprintf(hex, sizeof(hex), "%016llx", (unsigned long long) now_monotonic_ns());
    snprintf(d->id, sizeof(d->id), "d-%s", hex);
    d->app_id = xstrdup(app_id);
    d->kind = xstrdup(kind);
    d->version = xstrdup(version);
    d->from_version = from ? xstrdup(from) : NULL;
    d->state = xstrdup("running");
    d->started_at = now_realtime();
    /* at the end: the list is newest first when loaded, oldest first here; order is cosmetic */
    struct dep **p = &a->deps;
    while (*p)
        p = &(*p)->next;
    *p = d;
    apps_store_dep(a, d);
    log_info("deployment %s: %s of app '%s' (version %s)", d->id, kind, app_id, version);
    return d;
}

void apps_dep_remove(struct apps *a, struct dep *d)
{
    for (struct dep **p = &a->deps; *p; p = &(*p)->next)
        if (*p == d) {
            *p = d->next;
            break;
        }
    apps_store_dep_del(a, d->id);
    apps_events_dep_removed(a, d);
    free(d->pub);
    free(d->app_id);
    free(d->kind);
    free(d->version);
    free(d->from_version);
    free(d->state);
    free(d->message);
    free(d);
}

void apps_app_free(struct app *app)
{
    if (app->serving && app->serving != &app->def) {
        app_def_done(app->serving);
        free(app->serving);
    }
    app_def_done(&app->def);
    free(app->version);
    free(app->serving_version);
    free(app->pub);
    free(app);
}

int apps_set_serving(struct apps *a, struct app *app, const char *version)
{
    struct app_def *d = &app->def;
    if (!streq(version, app->version)) {
        _cleanup_free_ char *text = apps_store_version_get(a, app->def.id, version);
        yajl_val v = text ? json_parse(text, strlen(text), NULL) : NULL;
        d = xzalloc(sizeof(*d));
        if (!v || app_def_parse(v, d, NULL) < 0) {
            yajl_tree_free(v);
            free(d);
            return -ENOENT;
        }
        yajl_tree_free(v);
        d->instances = app->def.instances;
    }
    if (app->serving && app->serving != &app->def) {
        app_def_done(app->serving);
        free(app->serving);
    }
    app->serving = d;
    free(app->serving_version);
    app->serving_version = xstrdup(version);
    return 0;
}

bool apps_inst_healthy(const struct app *app, const struct inst *i)
{
    if (i->state != ML_RUNNING)
        return false;
    const struct app_def *d = streq(i->version, app->version) ? &app->def : app->serving;
    return !d->hc || i->healthy == ML_HEALTHY;
}

void apps_counts(struct apps *a, const struct app *app, unsigned *running, unsigned *healthy,
                 unsigned *staged)
{
    *running = *healthy = *staged = 0;
    for (struct inst *i = a->insts; i; i = i->next) {
        if (!streq(i->app_id, app->def.id))
            continue;
        if (i->state == ML_RUNNING)
            (*running)++;
        else
            (*staged)++;
        *healthy += apps_inst_healthy(app, i);
    }
}

/* The new version never turned healthy: stop its deployment, serve the old one again. */
static void fail_deployment(struct apps *a, struct app *app, struct dep *d)
{
    free(d->message);
    d->message = xasprintf("stopped: %u instances of version %s ended without ever passing "
                           "their health check; version %s keeps serving",
                           d->failures, d->version, d->from_version);
    free(d->state);
    d->state = xstrdup("failed");
    apps_store_dep(a, d);
    log_warning("deployment %s of app '%s': %s", d->id, app->def.id, d->message);
    if (apps_set_serving(a, app, d->from_version) < 0)
        log_warning("app '%s': version %s is gone; %s stays", app->def.id, d->from_version,
                    app->serving_version);
    app->bo_n = 0;
    app->bo_until = 0;
    apps_store_app(a, app);
}

/* Instances of a deployment's new version that stay RUNNING without ever passing their check
 * (a grace or a failure count too long to end them soon) count as failures too: past the
 * check's delay, grace and (failures + 1) intervals plus 30 s, each is killed and counted. */
static void count_stuck(struct apps *a, struct app *app, struct dep *d, struct inst **is, size_t n,
                        double now)
{
    const struct ml_health_check *hc = app->serving->hc;
    double limit = (double) (hc->delay_ms + hc->grace_ms +
                             (hc->consecutive_failures + 1) * hc->interval_ms) /
                           1000 +
                   30;
    for (size_t k = 0; k < n; k++) {
        struct inst *i = is[k];
        if (i->killing || i->ever_healthy || i->state != ML_RUNNING ||
            !streq(i->version, d->version) || now - i->running_since < limit)
            continue;
        log_warning("instance %s of app '%s' has run %.0f s without passing its health check",
                    i->task_id, app->def.id, now - i->running_since);
        d->failures++;
        apps_store_dep(a, d);
        apps_kill(a, i);
    }
}

/* One app's step; true when the app is gone (deleted). */
static bool step_app(struct apps *a, struct app *app, double now)
{
    bool gone = false;
    size_t n = 0;
    for (struct inst *i = a->insts; i; i = i->next)
        n += streq(i->app_id, app->def.id);
    struct inst **is = xcalloc(n + 1, sizeof(*is));
    struct plan_inst *pi = xcalloc(n + 1, sizeof(*pi));
    n = 0;
    bool stable = false;
    for (struct inst *i = a->insts; i; i = i->next) {
        if (!streq(i->app_id, app->def.id))
            continue;
        is[n] = i;
        pi[n] = (struct plan_inst){.current = streq(i->version, app->serving_version),
                                   .running = i->state == ML_RUNNING,
                                   .healthy = apps_inst_healthy(app, i),
                                   .killing = i->killing,
                                   .started = i->started_at};
        if (i->state == ML_RUNNING && i->running_since > 0 &&
            now - i->running_since >= app->serving->bo_reset)
            stable = true;
        n++;
    }
    if (stable && app->bo_n) {
        log_info("app '%s': an instance stayed up %gs: backoff reset", app->def.id,
                 app->serving->bo_reset);
        app->bo_n = 0;
        apps_store_app(a, app);
    }
    struct dep *d = apps_dep_of(a, app->def.id);
    if (app->deleting) {
        for (size_t k = 0; k < n; k++)
            if (!is[k]->killing)
                apps_kill(a, is[k]);
        app->want = 0;
        if (n == 0) {
            log_info("app '%s' deleted", app->def.id);
            for (struct dep *x = a->deps, *next; x; x = next) {
                next = x->next;
                if (streq(x->app_id, app->def.id))
                    apps_dep_remove(a, x);
            }
            apps_store_app_del(a, app->def.id);
            for (struct app **p = &a->apps; *p; p = &(*p)->next)
                if (*p == app) {
                    *p = app->next;
                    break;
                }
            apps_app_free(app);
            gone = true;
        }
        goto out;
    }
    if (d && d->from_version && app->serving->hc && !app->deleting)
        count_stuck(a, app, d, is, n, now);
    if (d && d->from_version && d->failures >= FAILED_ENDS &&
        streq(app->serving_version, d->version)) {
        fail_deployment(a, app, d);
        d = NULL;
        goto out; /* planned again on the next pass, toward the old version */
    }
    struct plan p;
    app_plan(pi, n, app->def.instances, app->serving->mhc, app->serving->moc, app->hold, &p);
    for (size_t k = 0; k < p.n_kill; k++)
        apps_kill(a, is[p.kill[k]]);
    app->want = p.launch;
    if (p.launch && now < app->bo_until) {
        char until[40];
        app_time_format(app->bo_until, until, sizeof(until));
        app->waiting.reason = "BACKOFF";
        snprintf(app->waiting.message, sizeof(app->waiting.message),
                 "restart backoff after %u ends in a row: the next launch after %s", app->bo_n,
                 until);
        app->want = 0;
    } else if (p.launch && now - a->last_offers_at > 5) {
        app->waiting.reason = "NO_OFFERS";
        snprintf(app->waiting.message, sizeof(app->waiting.message),
                 "no offer from the master for %.0f s",
                 a->last_offers_at ? now - a->last_offers_at : 0);
    } else if (!p.launch) {
        app->waiting.reason = NULL;
    }
    if (d && p.done) {
        log_info("deployment %s (%s of app '%s') done", d->id, d->kind, app->def.id);
        apps_dep_remove(a, d);
    }
    free(p.kill);
out:
    free(is);
    free(pi);
    return gone;
}

void apps_step(struct apps *a)
{
    if (!a->reconciled)
        return; /* nothing is decided before every known instance was answered for */
    double now = now_realtime();
    unsigned want = 0;
    bool more = false; /* an app wants launches it did not want before */
    for (struct app *app = a->apps, *next; app; app = next) {
        next = app->next;
        unsigned before = app->want;
        if (!step_app(a, app, now) && !before && app->want)
            more = true;
    }
    for (struct app *app = a->apps; app; app = app->next)
        want += app->want;
    /* KILLs whose kill_delay ended go; those whose end never came (a stream that went away
     * meanwhile) go again */
    for (struct inst *i = a->insts; i; i = i->next)
        if (i->killing && (i->kill_at ? now >= i->kill_at : now - i->killed_at > 10))
            apps_kill(a, i);
    /* REVIVE also lifts the filters of the offers declined meanwhile: the launch need not
     * wait for them (a backoff that just ended, a scale) */
    if (want && (a->suppressed || more) && sched_revive(a->s) == 0) {
        a->suppressed = false;
        log_debug("revive: %u instances to launch", want);
    } else if (!want && !a->suppressed && sched_connected(a->s) && sched_suppress(a->s) == 0) {
        a->suppressed = true;
        log_debug("suppress: nothing to launch");
    }
}

void apps_tick(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct apps *a = arg;
    double now = now_realtime();
    if (!a->reconciled && sched_connected(a->s) && now - a->reconcile_sent > 10) {
        size_t n = 0;
        for (struct inst *i = a->insts; i; i = i->next)
            n += i->reconciling;
        const char **ids = xcalloc(n + 1, sizeof(*ids));
        n = 0;
        for (struct inst *i = a->insts; i; i = i->next)
            if (i->reconciling)
                ids[n++] = i->task_id;
        log_info("reconciling %zu instances again (no answer yet)", n);
        (void) sched_reconcile(a->s, ids, n);
        a->reconcile_sent = now;
        free(ids);
    }
    apps_step(a);
}
