/* SPDX-License-Identifier: Apache-2.0 */
/* apps/change.c - the requests that change apps (docs/apps.md "The HTTP API"): create, PUT,
 * PATCH (the fields given), restart and delete. Every change but `instances` alone makes a new
 * version (its definition kept in apps.db); each change starts a deployment that replaces the
 * app's one under way (or a failed one). deploy.c then moves the instances. */
#include <string.h>

#include "apps/api.h"

/* A version: the time, unique within the app. */
static char *new_version(const struct app *app)
{
    char v[40];
    double t = now_realtime();
    app_time_format(t, v, sizeof(v));
    while (app && app->version && strcmp(v, app->version) <= 0) {
        t += 0.001;
        app_time_format(t, v, sizeof(v));
    }
    return xstrdup(v);
}

/* A service port another app has: 0 when none. */
static unsigned service_port_taken(struct apps *a, const struct app_def *d)
{
    for (size_t k = 0; k < d->n_ports; k++) {
        unsigned p = d->ports[k].service_port;
        if (!p)
            continue;
        for (struct app *x = a->apps; x; x = x->next)
            for (size_t j = 0; !streq(x->def.id, d->id) && j < x->def.n_ports; j++)
                if (x->def.ports[j].service_port == p)
                    return p;
    }
    return 0;
}

/* Deployments of the app end: a new change replaces them. */
static void end_deployments(struct apps *a, const char *app_id)
{
    for (struct dep *d = a->deps, *next; d; d = next) {
        next = d->next;
        if (streq(d->app_id, app_id))
            apps_dep_remove(a, d);
    }
}

static void answer(struct apps *a, struct evhttp_request *req, int status, const struct app *app,
                   const struct dep *d)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    if (app) {
        json_str(g, "app");
        apps_app_json(a, app, g);
    }
    json_kv_str(g, "deployment_id", d->id);
    yajl_gen_map_close(g);
    apps_reply(req, status, g);
    yajl_gen_free(g);
}

/* PATCH: the app's definition with the body's fields over it. */
static yajl_val patched(const struct app *app, yajl_val body, struct berr **err)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    yajl_val cur = NULL;
    {
        _cleanup_free_ char *text = app_def_encode(&app->def, false);
        cur = json_parse(text, strlen(text), err);
    }
    for (size_t i = 0; cur && i < cur->u.object.len; i++)
        if (!json_get(body, cur->u.object.keys[i])) {
            json_str(g, cur->u.object.keys[i]);
            json_gen_value(g, cur->u.object.values[i]);
        }
    for (size_t i = 0; i < body->u.object.len; i++) {
        json_str(g, body->u.object.keys[i]);
        json_gen_value(g, body->u.object.values[i]);
    }
    yajl_gen_map_close(g);
    yajl_tree_free(cur);
    _cleanup_free_ char *text = json_gen_take(g);
    return json_parse(text, strlen(text), err);
}

static void set_version(struct apps *a, struct app *app, char *version)
{
    free(app->version);
    app->version = version;
    if (app->serving && app->serving != &app->def) {
        app_def_done(app->serving);
        free(app->serving);
    }
    app->serving = &app->def;
    free(app->serving_version);
    app->serving_version = xstrdup(version);
    _cleanup_free_ char *def = app_def_encode(&app->def, false);
    apps_store_version(a, app->def.id, version, def);
}

static void create(struct apps *a, struct evhttp_request *req, struct app_def *d)
{
    if (apps_find(a, d->id)) {
        apps_refuse(req, BERR_CONFLICT, "app '%s' already exists (PUT /v1/apps/%s changes it)",
                    d->id, d->id);
        app_def_done(d);
        return;
    }
    struct app *app = xzalloc(sizeof(*app));
    app->def = *d;
    set_version(a, app, new_version(NULL));
    struct app **p = &a->apps;
    while (*p)
        p = &(*p)->next;
    *p = app;
    apps_store_app(a, app);
    struct dep *dep = apps_dep_new(a, app->def.id, "create", app->version, NULL);
    answer(a, req, 201, app, dep);
    apps_step(a); /* after the answer: a deployment with nothing to do ends (is freed) here */
}

void apps_change(struct apps *a, struct evhttp_request *req, struct app *app,
                 enum apps_change_kind kind, const char *body, size_t len)
{
    _cleanup_berr_ struct berr *err = NULL;
    if (kind == APPS_DELETE) {
        end_deployments(a, app->def.id);
        app->deleting = true;
        apps_store_app(a, app);
        struct dep *dep = apps_dep_new(a, app->def.id, "delete", app->version, NULL);
        answer(a, req, 202, NULL, dep);
        apps_step(a);
        return;
    }
    yajl_val v = NULL;
    if (kind != APPS_RESTART) {
        v = json_parse(body, len, &err);
        if (!v) {
            apps_reply_error(req, err);
            return;
        }
        if (!YAJL_IS_OBJECT(v)) {
            yajl_tree_free(v);
            apps_refuse(req, BERR_INVALID_ARGUMENT, "the body is a JSON object");
            return;
        }
    }
    if (kind == APPS_PATCH) {
        yajl_val full = patched(app, v, &err);
        yajl_tree_free(v);
        v = full;
    }
    if (v && app && json_get_str(v, "id") && !streq(json_get_str(v, "id"), app->def.id)) {
        apps_refuse(req, BERR_INVALID_ARGUMENT, "id: '%.64s' is not the app's id '%s'",
                    json_get_str(v, "id"), app->def.id);
        yajl_tree_free(v);
        return;
    }
    struct app_def d = {0};
    if (kind != APPS_RESTART) {
        /* PUT may leave out the id: it is the path's */
        if (v && app && !json_get(v, "id")) {
            yajl_gen g = yajl_gen_alloc(NULL);
            yajl_gen_map_open(g);
            json_kv_str(g, "id", app->def.id);
            for (size_t i = 0; i < v->u.object.len; i++) {
                json_str(g, v->u.object.keys[i]);
                json_gen_value(g, v->u.object.values[i]);
            }
            yajl_gen_map_close(g);
            _cleanup_free_ char *text = json_gen_take(g);
            yajl_tree_free(v);
            v = json_parse(text, strlen(text), &err);
        }
        int r = v ? app_def_parse(v, &d, &err) : -EINVAL;
        yajl_tree_free(v);
        if (r < 0) {
            apps_reply_error(req, err);
            return;
        }
        unsigned taken = service_port_taken(a, &d);
        if (taken) {
            apps_refuse(req, BERR_CONFLICT, "ports: service_port %u is another app's", taken);
            app_def_done(&d);
            return;
        }
    }
    if (!app) { /* APPS_CREATE (api.h) */
        create(a, req, &d);
        return;
    }
    const char *what = "restart";
    _cleanup_free_ char *from = xstrdup(app->serving_version);
    if (kind != APPS_RESTART) {
        _cleanup_free_ char *x = app_def_encode(&app->def, true), *y = app_def_encode(&d, true);
        bool scale = streq(x, y);
        app_def_done(&app->def);
        app->def = d;
        what = scale ? "scale" : "update";
    }
    end_deployments(a, app->def.id);
    app->hold = false;
    struct dep *dep;
    if (streq(what, "scale")) {
        if (app->serving != &app->def)
            app->serving->instances = app->def.instances;
        apps_store_app(a, app);
        dep = apps_dep_new(a, app->def.id, "scale", app->version, NULL);
    } else {
        set_version(a, app, new_version(app));
        app->bo_n = 0;
        app->bo_until = 0;
        apps_store_app(a, app);
        dep = apps_dep_new(a, app->def.id, what, app->version, from);
    }
    answer(a, req, 200, app, dep);
    apps_step(a);
}

void apps_stop_deployment(struct apps *a, struct dep *d)
{
    struct app *app = apps_find(a, d->app_id);
    if (app && streq(d->state, "running") && !streq(d->kind, "delete")) {
        app->hold = true; /* the instances stay as they are; ended ones are replaced */
        apps_store_app(a, app);
    }
    log_info("deployment %s of app '%s' stopped by request", d->id, d->app_id);
    apps_dep_remove(a, d);
}
