/* SPDX-License-Identifier: Apache-2.0 */
/* apps/events.c - berth-apps' GET /v1/events (docs/apps.md "Events", issue #17): every app
 * with its instances as a snapshot on connect, then app_*, instance_* and deployment_* events,
 * on sse/'s hub (ids, Last-Event-ID resume, bounded buffers). Each object keeps the text of
 * its view as last published (pub): a publisher makes the view again and publishes only when
 * it differs, so callers may call after any change (store.c does, where a change is written),
 * and the snapshot (made only after an event) never shows what no event said. */
#include <event2/http.h>
#include <string.h>

#include "apps/api.h"
#include "sse/sse.h"

/* APPV (docs/apps.md): what a client of the endpoints needs of an app. */
static void app_view(struct apps *a, const struct app *app, bool with_tasks, yajl_gen g)
{
    yajl_gen_map_open(g);
    json_kv_str(g, "id", app->def.id);
    json_kv_str(g, "version", app->version);
    json_str(g, "labels");
    yajl_gen_map_open(g);
    for (char **l = app->def.labels; l && l[0] && l[1]; l += 2)
        json_kv_str(g, l[0], l[1]);
    yajl_gen_map_close(g);
    json_str(g, "ports");
    yajl_gen_array_open(g);
    for (size_t k = 0; k < app->def.n_ports; k++) {
        yajl_gen_map_open(g);
        json_kv_str(g, "name", app->def.ports[k].name);
        if (app->def.ports[k].service_port)
            json_kv_u64(g, "service_port", app->def.ports[k].service_port);
        else
            json_kv_null(g, "service_port");
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    json_kv_u64(g, "instances", app->def.instances);
    json_kv_bool(g, "health_check", app->def.hc != NULL || app->serving->hc != NULL);
    if (with_tasks) {
        json_str(g, "tasks");
        yajl_gen_array_open(g);
        for (const struct inst *i = a->insts; i; i = i->next)
            if (streq(i->app_id, app->def.id))
                apps_inst_json(a, i, true, g);
        yajl_gen_array_close(g);
    }
    yajl_gen_map_close(g);
}

static void snapshot(void *arg, yajl_gen g)
{
    struct apps *a = arg;
    yajl_gen_map_open(g);
    json_kv_double(g, "time", now_realtime());
    json_str(g, "apps");
    yajl_gen_array_open(g);
    for (const struct app *app = a->apps; app; app = app->next)
        app_view(a, app, true, g);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
}

/* The views as text, for the comparison with what was published. */
static char *inst_text(struct apps *a, const struct inst *i)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    apps_inst_json(a, i, true, g);
    return json_gen_take(g);
}

static char *app_text(struct apps *a, const struct app *app)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    app_view(a, app, false, g);
    return json_gen_take(g);
}

static char *dep_text(const struct dep *d)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    apps_dep_json(d, g);
    return json_gen_take(g);
}

/* Publish {"time": now, key: view} as name (view: a JSON text). */
static void publish(struct apps *a, const char *name, const char *key, const char *view)
{
    char head[96];
    int n = snprintf(head, sizeof(head), "{\"time\":%.3f,\"%s\":", now_realtime(), key);
    size_t vlen = strlen(view);
    char *data = xmalloc((size_t) n + vlen + 2);
    memcpy(data, head, (size_t) n);
    memcpy(data + n, view, vlen);
    data[(size_t) n + vlen] = '}';
    data[(size_t) n + vlen + 1] = 0;
    sse_hub_publish(a->events, name, data, (size_t) n + vlen + 1);
    free(data);
}

/* Publish view (taken) as name_added or name_changed when it differs from *pub. */
static void publish_if_changed(struct apps *a, char **pub, char *view, const char *added,
                               const char *changed, const char *key)
{
    if (*pub && streq(*pub, view)) {
        free(view);
        return;
    }
    publish(a, *pub ? changed : added, key, view);
    free(*pub);
    *pub = view;
}

void apps_events_inst(struct apps *a, struct inst *i)
{
    if (a->events)
        publish_if_changed(a, &i->pub, inst_text(a, i), "instance_added", "instance_changed",
                           "instance");
}

void apps_events_inst_removed(struct apps *a, struct inst *i)
{
    if (!a->events)
        return;
    _cleanup_free_ char *view = inst_text(a, i);
    publish(a, "instance_removed", "instance", view);
}

void apps_events_app(struct apps *a, struct app *app)
{
    if (a->events)
        publish_if_changed(a, &app->pub, app_text(a, app), "app_added", "app_changed", "app");
}

void apps_events_app_removed(struct apps *a, const char *id)
{
    if (!a->events)
        return;
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_kv_str(g, "id", id);
    yajl_gen_map_close(g);
    _cleanup_free_ char *view = json_gen_take(g);
    publish(a, "app_removed", "app", view);
}

void apps_events_dep(struct apps *a, struct dep *d)
{
    if (a->events)
        publish_if_changed(a, &d->pub, dep_text(d), "deployment_added", "deployment_changed",
                           "deployment");
}

void apps_events_dep_removed(struct apps *a, struct dep *d)
{
    if (!a->events)
        return;
    _cleanup_free_ char *view = dep_text(d);
    publish(a, "deployment_removed", "deployment", view);
}

int apps_events_start(struct apps *a, struct berr **err)
{
    /* what apps.db held is what a snapshot shows: published */
    for (struct app *app = a->apps; app; app = app->next) {
        free(app->pub);
        app->pub = app_text(a, app);
    }
    for (struct inst *i = a->insts; i; i = i->next) {
        free(i->pub);
        i->pub = inst_text(a, i);
    }
    for (struct dep *d = a->deps; d; d = d->next) {
        free(d->pub);
        d->pub = dep_text(d);
    }
    struct sse_hub_cfg cfg = {
            .history = a->cfg.events_history,
            .max_buffer = a->cfg.events_buffer,
            .max_subscribers = a->cfg.events_max_subscribers,
            .keepalive_ms = a->cfg.events_keepalive_ms,
            .write_timeout_ms = 90000, /* api.c's idle timeout (60 s) and then some */
            .name = "GET /v1/events",
    };
    a->events = sse_hub_new(a->base, &cfg, snapshot, a);
    if (!a->events)
        return berr_setx(err, ENOMEM, "the event hub could not start");
    return 0;
}

void apps_events_stop(struct apps *a)
{
    sse_hub_free(a->events);
    a->events = NULL;
}

void apps_events_serve(struct apps *a, struct evhttp_request *req)
{
    _cleanup_berr_ struct berr *err = NULL;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET)
        apps_refuse(req, BERR_METHOD_NOT_ALLOWED, "GET /v1/events");
    else if (!a->events)
        apps_refuse(req, BERR_UNAVAILABLE, "the event stream is not running");
    else if (sse_hub_subscribe(a->events, req, &err) < 0)
        apps_reply_error(req, err);
}
