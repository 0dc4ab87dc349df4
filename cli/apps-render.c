/* SPDX-License-Identifier: Apache-2.0 */
/* cli/apps-render.c - the pure half of `berthctl --apps URL app ...` (docs/apps.md): the
 * checks of its arguments, the request bodies it builds, and the text of its answers (the
 * tables of `app ls` and `app tasks`, the lines of `app inspect` that say why instances
 * wait). No I/O: tests/unit/cli_apps_test.c covers it; apps.c makes the calls. */
#include <string.h>

#include "cli/cli.h"

int ctl_app_parse_instances(const char *s, uint64_t *ret)
{
    uint64_t n;
    if (!s || !*s || s[0] == '+' || s[0] == '-' || parse_u64(s, &n) < 0 ||
        n > CTL_APP_MAX_INSTANCES)
        return -EINVAL;
    *ret = n;
    return 0;
}

char *ctl_app_scale_body(uint64_t instances)
{
    return xasprintf("{\"instances\": %llu}", (unsigned long long) instances);
}

int ctl_app_file_id(const char *text, char **ret, struct berr **err)
{
    yajl_val root = json_parse(text, strlen(text), err);
    if (!root)
        return berr_wrap(err, "not JSON");
    const char *id = YAJL_IS_OBJECT(root) ? json_get_str(root, "id") : NULL;
    if (!id || !*id) {
        yajl_tree_free(root);
        return berr_setx(err, EINVAL, "no \"id\" in it");
    }
    *ret = xstrdup(id);
    yajl_tree_free(root);
    return 0;
}

char *ctl_app_path(const char *id, const char *suffix)
{
    _cleanup_free_ char *e = ctl_url_escape(id);
    return xasprintf("/v1/apps/%s%s", e, suffix ? suffix : "");
}

/* A count member as text: "3", "-" when absent. */
static void count_text(yajl_val obj, const char *key, char *buf, size_t len)
{
    uint64_t n;
    if (json_get_u64(obj, key, &n))
        snprintf(buf, len, "%llu", (unsigned long long) n);
    else
        snprintf(buf, len, "-");
}

/* The strings of an array joined by sep (non-strings as their JSON), "-" when empty. */
static char *join_array(yajl_val arr, const char *sep)
{
    char *out = xstrdup("");
    for (size_t i = 0; arr && YAJL_IS_ARRAY(arr) && i < arr->u.array.len; i++) {
        yajl_val v = arr->u.array.values[i];
        _cleanup_free_ char *json = YAJL_IS_STRING(v) ? NULL : json_to_text(v);
        char *n = xasprintf("%s%s%s", out, i ? sep : "", json ? json : v->u.string);
        free(out);
        out = n;
    }
    if (!*out) {
        free(out);
        out = xstrdup("-");
    }
    return out;
}

void ctl_apps_table(yajl_val answer, struct ctl_table *t)
{
    static const char *const header[] = {"ID",      "INSTANCES", "RUNNING",    "HEALTHY",
                                         "VERSION", "WAITING",   "DEPLOYMENTS"};
    ctl_table_init(t, ARRAY_SIZE(header), header);
    yajl_val apps = json_get(answer, "apps");
    for (size_t i = 0; apps && YAJL_IS_ARRAY(apps) && i < apps->u.array.len; i++) {
        yajl_val a = apps->u.array.values[i];
        char inst[24], running[24], healthy[24], waiting[24];
        count_text(a, "instances", inst, sizeof(inst));
        count_text(a, "running", running, sizeof(running));
        count_text(a, "healthy", healthy, sizeof(healthy));
        uint64_t w = 0;
        yajl_val ws = json_get(a, "waiting");
        for (size_t k = 0; ws && YAJL_IS_ARRAY(ws) && k < ws->u.array.len; k++) {
            uint64_t n = 0;
            if (json_get_u64(ws->u.array.values[k], "instances", &n))
                w += n;
        }
        snprintf(waiting, sizeof(waiting), "%llu", (unsigned long long) w);
        _cleanup_free_ char *deps = join_array(json_get(a, "deployments"), ",");
        const char *row[] = {json_get_str(a, "id"),      inst,    running, healthy,
                             json_get_str(a, "version"), waiting, deps};
        ctl_table_add(t, row);
    }
}

/* A port of a TASK: a number, or an object with host_port (as the agent's containers). */
static bool port_of(yajl_val p, uint64_t *ret)
{
    if (YAJL_IS_INTEGER(p) && YAJL_GET_INTEGER(p) >= 0) {
        *ret = (uint64_t) YAJL_GET_INTEGER(p);
        return true;
    }
    return json_get_u64(p, "host_port", ret);
}

char *ctl_app_task_address(yajl_val task)
{
    const char *host = json_get_str(task, "host");
    if (!host || !*host)
        host = json_get_str(task, "hostname");
    yajl_val ports = json_get(task, "ports");
    char *out = xstrdup(host && *host ? host : "-");
    for (size_t i = 0; ports && YAJL_IS_ARRAY(ports) && i < ports->u.array.len; i++) {
        uint64_t p;
        if (!port_of(ports->u.array.values[i], &p))
            continue;
        /* an IPv6 host in brackets, so host:port stays readable */
        bool v6 = !i && strchr(out, ':');
        char *n = i ? xasprintf("%s,%llu", out, (unsigned long long) p)
                    : xasprintf(v6 ? "[%s]:%llu" : "%s:%llu", out, (unsigned long long) p);
        free(out);
        out = n;
    }
    return out;
}

void ctl_app_tasks_table(yajl_val answer, struct ctl_table *t)
{
    static const char *const header[] = {"ID", "AGENT", "ADDRESS", "STATE", "HEALTHY", "VERSION"};
    ctl_table_init(t, ARRAY_SIZE(header), header);
    yajl_val tasks = json_get(answer, "tasks");
    for (size_t i = 0; tasks && YAJL_IS_ARRAY(tasks) && i < tasks->u.array.len; i++) {
        yajl_val x = tasks->u.array.values[i];
        yajl_val h = json_get(x, "healthy");
        const char *agent = json_get_str(x, "hostname");
        char aid[16];
        if (!agent || !*agent) {
            const char *id = json_get_str(x, "agent_id");
            snprintf(aid, sizeof(aid), "%.12s", id ? id : "-");
            agent = aid;
        }
        _cleanup_free_ char *addr = ctl_app_task_address(x);
        /* an instance berth-apps asked to end, still running: "RUNNING (killing)" */
        const char *st = json_get_str(x, "state");
        _cleanup_free_ char *state = YAJL_IS_TRUE(json_get(x, "killing")) && st
                                             ? xasprintf("%s (killing)", st)
                                             : xstrdup(st ? st : "-");
        const char *row[] = {json_get_str(x, "id"),
                             agent,
                             addr,
                             state,
                             YAJL_IS_TRUE(h)    ? "yes"
                             : YAJL_IS_FALSE(h) ? "no"
                                                : "-",
                             json_get_str(x, "version")};
        ctl_table_add(t, row);
    }
}

char *ctl_app_waiting_line(yajl_val w)
{
    uint64_t n = 0;
    bool known = json_get_u64(w, "instances", &n);
    const char *reason = json_get_str(w, "reason");
    const char *msg = json_get_str(w, "message");
    char count[48];
    if (known)
        snprintf(count, sizeof(count), "%llu instance%s wait%s", (unsigned long long) n,
                 n == 1 ? "" : "s", n == 1 ? "s" : "");
    else
        snprintf(count, sizeof(count), "instances wait");
    return xasprintf("%s: %s%s%s", count, reason && *reason ? reason : "UNKNOWN",
                     msg && *msg ? " " : "", msg && *msg ? msg : "");
}

char *ctl_app_waiting_text(yajl_val app)
{
    yajl_val ws = json_get(app, "waiting");
    char *out = xstrdup("");
    for (size_t i = 0; ws && YAJL_IS_ARRAY(ws) && i < ws->u.array.len; i++) {
        _cleanup_free_ char *line = ctl_app_waiting_line(ws->u.array.values[i]);
        char *n = xasprintf("%s%s\n", out, line);
        free(out);
        out = n;
    }
    return out;
}

/* ---- app endpoints (issue #17) ------------------------------------------------------------ */

/* fn(service_port (0: none), port index, address, port, task id, arg) per port of every
 * serving instance (RUNNING, healthy, not killing), in the answers' order. */
typedef void (*endpoint_fn)(uint64_t service_port, size_t index, const char *address, uint64_t port,
                            const char *task_id, void *arg);

static void endpoints_walk(yajl_val app, yajl_val tasks, endpoint_fn fn, void *arg)
{
    yajl_val a = json_get(app, "app") ? json_get(app, "app") : app;
    yajl_val defs = json_get(a, "ports");
    yajl_val ts = json_get(tasks, "tasks");
    size_t n_defs = defs && YAJL_IS_ARRAY(defs) ? defs->u.array.len : 0;
    for (size_t k = 0; k < n_defs; k++) {
        uint64_t sp = 0;
        if (!json_get_u64(defs->u.array.values[k], "service_port", &sp))
            sp = 0;
        for (size_t i = 0; ts && YAJL_IS_ARRAY(ts) && i < ts->u.array.len; i++) {
            yajl_val x = ts->u.array.values[i];
            const char *st = json_get_str(x, "state");
            if (!st || !streq(st, "RUNNING") || !YAJL_IS_TRUE(json_get(x, "healthy")) ||
                YAJL_IS_TRUE(json_get(x, "killing")))
                continue;
            yajl_val ports = json_get(x, "ports");
            uint64_t p;
            if (!ports || !YAJL_IS_ARRAY(ports) || k >= ports->u.array.len ||
                !port_of(ports->u.array.values[k], &p))
                continue;
            const char *addr = json_get_str(x, "address");
            if (!addr || !*addr)
                addr = json_get_str(x, "host");
            fn(sp, k, addr && *addr ? addr : "-", p, json_get_str(x, "id"), arg);
        }
    }
}

static void endpoint_row(uint64_t sp, size_t index, const char *address, uint64_t port,
                         const char *task_id, void *arg)
{
    char spbuf[32];
    if (sp)
        snprintf(spbuf, sizeof(spbuf), "%llu", (unsigned long long) sp);
    else
        snprintf(spbuf, sizeof(spbuf), "#%zu", index);
    _cleanup_free_ char *ep = xasprintf(strchr(address, ':') ? "[%s]:%llu" : "%s:%llu", address,
                                        (unsigned long long) port);
    const char *row[] = {spbuf, ep, task_id ? task_id : "-"};
    ctl_table_add(arg, row);
}

void ctl_app_endpoints_table(yajl_val app, yajl_val tasks, struct ctl_table *t)
{
    static const char *const header[] = {"SERVICE_PORT", "ADDRESS:PORT", "TASK_ID"};
    ctl_table_init(t, ARRAY_SIZE(header), header);
    endpoints_walk(app, tasks, endpoint_row, t);
}

static void endpoint_gen(uint64_t sp, size_t index, const char *address, uint64_t port,
                         const char *task_id, void *arg)
{
    yajl_gen g = arg;
    yajl_gen_map_open(g);
    if (sp)
        json_kv_u64(g, "service_port", sp);
    else
        json_kv_null(g, "service_port");
    json_kv_u64(g, "port_index", index);
    json_kv_str(g, "address", address);
    json_kv_u64(g, "port", port);
    json_kv_str(g, "task_id", task_id);
    yajl_gen_map_close(g);
}

char *ctl_app_endpoints_json(yajl_val app, yajl_val tasks)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_str(g, "endpoints");
    yajl_gen_array_open(g);
    endpoints_walk(app, tasks, endpoint_gen, g);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    return json_gen_take(g);
}
