/* SPDX-License-Identifier: Apache-2.0 */
/* apps/api.c - berth-apps' HTTP API (docs/apps.md "The HTTP API") on libevent's evhttp: the
 * bearer token, routing, the APP, TASK and DEPLOYMENT views and errors as {"error": {"code",
 * "message"}} with the statuses of common/apicode.c. change.c turns the requests that change
 * an app into versions and deployments. */
#include "apps/api.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <string.h>

static void send_json(struct evhttp_request *req, int status, yajl_gen g)
{
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, buf, len);
    evbuffer_add(b, "\n", 1);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, status, status < 300 ? "OK" : "Error", b);
    evbuffer_free(b);
}

void apps_reply(struct evhttp_request *req, int status, yajl_gen g)
{
    send_json(req, status, g);
}

void apps_refuse(struct evhttp_request *req, enum berr_code code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (code == BERR_CODE_NONE || !berr_code_name(code))
        code = BERR_INTERNAL;
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_str(g, "error");
    yajl_gen_map_open(g);
    json_kv_str(g, "code", berr_code_name(code));
    json_kv_str(g, "message", msg);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    send_json(req, berr_code_http_status(code), g);
    yajl_gen_free(g);
}

void apps_reply_error(struct evhttp_request *req, const struct berr *err)
{
    apps_refuse(req, err ? err->code : BERR_INTERNAL, "%s", err ? berr_msg(err) : "error");
}

void apps_inst_json(struct apps *a, const struct inst *i, bool killing_always, yajl_gen g)
{
    char t[40];
    const struct app *app = apps_find(a, i->app_id);
    yajl_gen_map_open(g);
    json_kv_str(g, "id", i->task_id);
    json_kv_str(g, "app_id", i->app_id);
    json_kv_str(g, "version", i->version);
    json_kv_str(g, "agent_id", i->agent_id);
    json_kv_str(g, "hostname", i->hostname);
    json_kv_str(g, "host", i->hostname);
    json_kv_str(g, "address", i->address && i->address[0] ? i->address : NULL);
    json_str(g, "ports");
    yajl_gen_array_open(g);
    for (size_t k = 0; k < i->n_ports; k++)
        json_u64(g, i->ports[k]);
    yajl_gen_array_close(g);
    json_kv_str(g, "state", ml_state_name(i->state));
    if (app && i->state == ML_RUNNING && (!app->serving->hc && !app->def.hc))
        json_kv_bool(g, "healthy", true);
    else if (i->state == ML_RUNNING && i->healthy != ML_HEALTH_UNKNOWN)
        ml_health_gen(g, "healthy", i->healthy);
    app_time_format(i->started_at, t, sizeof(t));
    json_kv_str(g, "started_at", t);
    if (i->killing || killing_always)
        json_kv_bool(g, "killing", i->killing);
    yajl_gen_map_close(g);
}

void apps_app_json(struct apps *a, const struct app *app, yajl_gen g)
{
    unsigned running, healthy, staged;
    apps_counts(a, app, &running, &healthy, &staged);
    yajl_gen_map_open(g);
    app_def_gen_fields(g, &app->def, false);
    json_kv_str(g, "version", app->version);
    if (!streq(app->serving_version, app->version))
        json_kv_str(g, "serving_version", app->serving_version);
    json_kv_u64(g, "running", running);
    json_kv_u64(g, "healthy", healthy);
    json_kv_u64(g, "staged", staged);
    json_str(g, "deployments");
    yajl_gen_array_open(g);
    for (struct dep *d = a->deps; d; d = d->next)
        if (streq(d->app_id, app->def.id))
            json_str(g, d->id);
    yajl_gen_array_close(g);
    json_str(g, "waiting");
    yajl_gen_array_open(g);
    unsigned live = running + staged;
    if (app->waiting.reason && live < app->def.instances && !app->deleting) {
        yajl_gen_map_open(g);
        json_kv_u64(g, "instances", app->def.instances - live);
        json_kv_str(g, "reason", app->waiting.reason);
        json_kv_str(g, "message", app->waiting.message);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
}

void apps_dep_json(const struct dep *d, yajl_gen g)
{
    char t[40];
    app_time_format(d->started_at, t, sizeof(t));
    yajl_gen_map_open(g);
    json_kv_str(g, "id", d->id);
    json_kv_str(g, "app_id", d->app_id);
    json_kv_str(g, "kind", d->kind);
    json_kv_str(g, "version", d->version);
    json_kv_str(g, "state", d->state);
    json_kv_str(g, "started_at", t);
    json_kv_str(g, "message", d->message);
    yajl_gen_map_close(g);
}

static void list_apps(struct apps *a, struct evhttp_request *req)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_str(g, "apps");
    yajl_gen_array_open(g);
    for (struct app *app = a->apps; app; app = app->next)
        apps_app_json(a, app, g);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    send_json(req, 200, g);
    yajl_gen_free(g);
}

static void list_tasks(struct apps *a, struct evhttp_request *req, const struct app *app)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_str(g, "tasks");
    yajl_gen_array_open(g);
    for (struct inst *i = a->insts; i; i = i->next)
        if (streq(i->app_id, app->def.id))
            apps_inst_json(a, i, false, g);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    send_json(req, 200, g);
    yajl_gen_free(g);
}

static void serve_deployments(struct apps *a, struct evhttp_request *req, const char *rest,
                              enum evhttp_cmd_type cmd)
{
    if (!rest[0] && cmd == EVHTTP_REQ_GET) {
        yajl_gen g = yajl_gen_alloc(NULL);
        yajl_gen_map_open(g);
        json_str(g, "deployments");
        yajl_gen_array_open(g);
        for (struct dep *d = a->deps; d; d = d->next)
            apps_dep_json(d, g);
        yajl_gen_array_close(g);
        yajl_gen_map_close(g);
        send_json(req, 200, g);
        yajl_gen_free(g);
    } else if (rest[0] && cmd == EVHTTP_REQ_DELETE) {
        struct dep *d = apps_dep_find(a, rest);
        if (!d) {
            apps_refuse(req, BERR_NOT_FOUND, "no deployment '%.64s'", rest);
            return;
        }
        apps_stop_deployment(a, d);
        yajl_gen g = yajl_gen_alloc(NULL);
        yajl_gen_map_open(g);
        yajl_gen_map_close(g);
        send_json(req, 200, g);
        yajl_gen_free(g);
    } else {
        apps_refuse(req, BERR_METHOD_NOT_ALLOWED, "GET /v1/deployments, DELETE /v1/deployments/ID");
    }
}

static void serve_apps(struct apps *a, struct evhttp_request *req, const char *rest,
                       enum evhttp_cmd_type cmd, const char *body, size_t len)
{
    if (!rest[0]) {
        if (cmd == EVHTTP_REQ_GET)
            list_apps(a, req);
        else if (cmd == EVHTTP_REQ_POST)
            apps_change(a, req, NULL, APPS_CREATE, body, len);
        else
            apps_refuse(req, BERR_METHOD_NOT_ALLOWED, "GET or POST /v1/apps");
        return;
    }
    _cleanup_free_ char *id = xstrndup(rest, strcspn(rest, "/"));
    const char *verb = rest + strlen(id);
    struct app *app = apps_find(a, id);
    if (!app || app->deleting) {
        apps_refuse(req, BERR_NOT_FOUND, "no app '%.64s'", id);
        return;
    }
    if (!verb[0] && cmd == EVHTTP_REQ_GET) {
        yajl_gen g = yajl_gen_alloc(NULL);
        yajl_gen_map_open(g);
        json_str(g, "app");
        apps_app_json(a, app, g);
        yajl_gen_map_close(g);
        send_json(req, 200, g);
        yajl_gen_free(g);
    } else if (!verb[0] && cmd == EVHTTP_REQ_PUT) {
        apps_change(a, req, app, APPS_PUT, body, len);
    } else if (!verb[0] && cmd == EVHTTP_REQ_PATCH) {
        apps_change(a, req, app, APPS_PATCH, body, len);
    } else if (!verb[0] && cmd == EVHTTP_REQ_DELETE) {
        apps_change(a, req, app, APPS_DELETE, body, len);
    } else if (streq(verb, "/restart") && cmd == EVHTTP_REQ_POST) {
        apps_change(a, req, app, APPS_RESTART, body, len);
    } else if (streq(verb, "/tasks") && cmd == EVHTTP_REQ_GET) {
        list_tasks(a, req, app);
    } else {
        apps_refuse(req, BERR_NOT_FOUND,
                    "no such call: GET, PUT, PATCH or DELETE /v1/apps/ID, POST "
                    "/v1/apps/ID/restart, GET /v1/apps/ID/tasks");
    }
}

static bool token_ok(struct apps *a, struct evhttp_request *req)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!h || !str_has_prefix(h, "Bearer ")) {
        apps_refuse(req, BERR_UNAUTHORIZED, "a bearer token is needed (Authorization: Bearer)");
        return false;
    }
    const char *t = h + 7;
    size_t n = strlen(a->token), m = strlen(t);
    unsigned char diff = n != m;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char) (a->token[i] ^ (i < m ? t[i] : 0));
    if (diff) {
        apps_refuse(req, BERR_UNAUTHORIZED, "the bearer token is not this berth-apps' token");
        return false;
    }
    return true;
}

static void route(struct evhttp_request *req, void *arg)
{
    struct apps *a = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (!path) {
        apps_refuse(req, BERR_NOT_FOUND, "no path");
        return;
    }
    if (streq(path, "/health")) {
        yajl_gen g = yajl_gen_alloc(NULL);
        yajl_gen_map_open(g);
        json_kv_str(g, "status", "ok");
        json_kv_bool(g, "subscribed", a->s && sched_connected(a->s));
        json_kv_bool(g, "reconciled", a->reconciled);
        yajl_gen_map_close(g);
        send_json(req, 200, g);
        yajl_gen_free(g);
        return;
    }
    if (!token_ok(a, req))
        return;
    if (streq(path, "/v1/events")) {
        apps_events_serve(a, req);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > ML_MAX_MESSAGE) {
        apps_refuse(req, BERR_BODY_TOO_LARGE, "the body has %zu bytes, the limit is %d", len,
                    ML_MAX_MESSAGE);
        return;
    }
    const char *body = len ? (const char *) evbuffer_pullup(in, -1) : "";
    if (streq(path, "/v1/apps") || str_has_prefix(path, "/v1/apps/"))
        serve_apps(a, req, path[8] ? path + 9 : "", cmd, body, len);
    else if (streq(path, "/v1/deployments") || str_has_prefix(path, "/v1/deployments/"))
        serve_deployments(a, req, path[15] ? path + 16 : "", cmd);
    else
        apps_refuse(req, BERR_NOT_FOUND, "no such path '%.200s'", path);
}

int apps_api_start(struct apps *a, struct berr **err)
{
    int r = apps_tls_init(a, err);
    if (r < 0)
        return r;
    a->http = evhttp_new(a->base);
    if (!a->http)
        return berr_setx(err, ENOMEM, "evhttp_new failed");
    evhttp_set_max_body_size(a->http, 2 * ML_MAX_MESSAGE);
    evhttp_set_max_headers_size(a->http, 16384);
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                                EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                                EVHTTP_REQ_PATCH);
    evhttp_set_timeout(a->http, 60);
    if (a->tls)
        evhttp_set_bevcb(a->http, tls_server_bev, a->tls);
    evhttp_set_gencb(a->http, route, a);
    _cleanup_free_ char *host = xstrdup(a->cfg.listen);
    char *colon = strrchr(host, ':');
    *colon = 0;
    uint64_t port = 0;
    (void) parse_u64(colon + 1, &port);
    char *h = host;
    if (h[0] == '[' && h[strlen(h) - 1] == ']') {
        h[strlen(h) - 1] = 0;
        h++;
    }
    if (!evhttp_bind_socket_with_handle(a->http, h, (uint16_t) port))
        return berr_set(err, errno ? errno : EADDRINUSE, "bind '%s'", a->cfg.listen);
    return 0;
}

void apps_api_stop(struct apps *a)
{
    if (a->http)
        evhttp_free(a->http);
    a->http = NULL;
    tls_server_free(a->tls);
    a->tls = NULL;
}
