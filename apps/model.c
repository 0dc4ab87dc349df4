/* SPDX-License-Identifier: Apache-2.0 */
/* apps/model.c - berth-apps' pure decisions: an app definition's parse, check and defaults
 * (docs/apps.md "App definitions"), its canonical JSON (what makes a version), the restart
 * backoff's delay and the port pick. plan.c holds the deployment step plan. No I/O: unit-tested
 * in tests/unit/apps_test.c. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "apps/apps.h"

#define INVALID(...) berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, __VA_ARGS__)

bool app_id_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n >= 1 && n <= 63 && s[0] != '-' &&
           strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* The fields of an APP answer that a PUT may carry back: ignored. */
static bool output_field(const char *k)
{
    static const char *const out[] = {"version", "serving_version", "running", "healthy",
                                      "staged",  "deployments",     "waiting", "tasks"};
    for (size_t i = 0; i < ARRAY_SIZE(out); i++)
        if (streq(k, out[i]))
            return true;
    return false;
}

static const char *const known[] = {
        "id",      "command", "args",          "instances",   "cpus",
        "mem",     "pids",    "ports",         "network",     "env",
        "user",    "role",    "health_checks", "constraints", "upgrade_strategy",
        "backoff", "labels",
};

static bool is_known(const char *k)
{
    for (size_t i = 0; i < ARRAY_SIZE(known); i++)
        if (streq(k, known[i]))
            return true;
    return output_field(k);
}

/* A number field of an object: absent keeps *ret; out of [lo, hi] is an error. */
static int num_field(yajl_val obj, const char *key, const char *path, double lo, double hi,
                     double *ret, struct berr **err)
{
    yajl_val v = json_get(obj, key);
    if (!v)
        return 0;
    double d;
    if (!json_get_double(obj, key, &d) || d < lo || d > hi)
        return INVALID("%s%s: want a number from %g to %g", path, key, lo, hi);
    *ret = d;
    return 0;
}

static int parse_ports(yajl_val v, struct app_def *d, struct berr **err)
{
    if (!YAJL_IS_ARRAY(v) || v->u.array.len > ML_MAX_PORTS)
        return INVALID("ports: want an array of at most %d objects", ML_MAX_PORTS);
    d->n_ports = v->u.array.len;
    d->ports = xcalloc(d->n_ports ? d->n_ports : 1, sizeof(*d->ports));
    for (size_t i = 0; i < d->n_ports; i++) {
        yajl_val p = v->u.array.values[i];
        if (!YAJL_IS_OBJECT(p))
            return INVALID("ports[%zu]: want an object", i);
        const char *name = json_get_str(p, "name");
        if (json_get(p, "name") && (!name || !ml_name_valid(name)))
            return INVALID("ports[%zu].name: want 1-63 of [A-Za-z0-9_.-]", i);
        d->ports[i].name = name ? xstrdup(name) : NULL;
        uint64_t sp = 0;
        if (json_get(p, "service_port") &&
            (!json_get_u64(p, "service_port", &sp) || sp < 1 || sp > 65535))
            return INVALID("ports[%zu].service_port: want 1-65535", i);
        d->ports[i].service_port = (unsigned) sp;
        for (size_t k = 0; k < p->u.object.len; k++)
            if (!streq(p->u.object.keys[k], "name") && !streq(p->u.object.keys[k], "service_port"))
                return INVALID("ports[%zu].%s: unknown field", i, p->u.object.keys[k]);
    }
    return 0;
}

static int parse_strmap(yajl_val v, const char *field, bool env, char ***ret, struct berr **err)
{
    if (!YAJL_IS_OBJECT(v))
        return INVALID("%s: want an object of strings", field);
    size_t n = v->u.object.len;
    char **out = xcalloc(2 * n + 1, sizeof(char *));
    *ret = out;
    for (size_t i = 0; i < n; i++) {
        const char *k = v->u.object.keys[i];
        yajl_val x = v->u.object.values[i];
        if (!YAJL_IS_STRING(x) || !k[0] || strlen(k) > 255 || strlen(x->u.string) > 4096)
            return INVALID("%s.%s: want a string", field, k);
        if (env && (strchr(k, '=') || strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv"
                                                "wxyz0123456789_") != strlen(k)))
            return INVALID("%s.%s: not a variable name", field, k);
        if (env) {
            out[i] = xasprintf("%s=%s", k, x->u.string);
        } else {
            out[2 * i] = xstrdup(k);
            out[2 * i + 1] = xstrdup(x->u.string);
        }
    }
    return 0;
}

static int parse_health(yajl_val v, struct app_def *d, struct berr **err)
{
    if (!YAJL_IS_ARRAY(v) || v->u.array.len > 1)
        return INVALID("health_checks: want an array of at most one health check");
    if (v->u.array.len == 0)
        return 0;
    yajl_val hc = v->u.array.values[0];
    _cleanup_berr_ struct berr *e = NULL;
    if (ml_health_check_parse(hc, d->n_ports, &d->hc, &e) < 0)
        return INVALID("health_checks[0]: %s", berr_msg(e));
    d->health_json = json_to_text(hc);
    return 0;
}

static int parse_constraints(yajl_val v, struct app_def *d, struct berr **err)
{
    if (!YAJL_IS_ARRAY(v) || v->u.array.len > 64)
        return INVALID("constraints: want an array of at most 64 constraints");
    d->cons = xcalloc(v->u.array.len + 1, sizeof(*d->cons));
    for (size_t i = 0; i < v->u.array.len; i++) {
        _cleanup_berr_ struct berr *e = NULL;
        if (app_constraint_parse(v->u.array.values[i], &d->cons[i], &e) < 0)
            return INVALID("constraints[%zu]: %s", i, berr_msg(e));
        d->n_cons++;
    }
    return 0;
}

static int parse_rest(yajl_val v, struct app_def *d, struct berr **err)
{
    yajl_val x;
    int r;
    if ((x = json_get(v, "ports")) && (r = parse_ports(x, d, err)) < 0)
        return r;
    if (json_get(v, "network")) {
        const char *n = json_get_str(v, "network");
        if (!n || (!streq(n, "host") && !streq(n, "bridge") && !streq(n, "none")))
            return INVALID("network: want host, bridge or none");
        d->network = xstrdup(n);
    }
    if ((x = json_get(v, "env")) && (r = parse_strmap(x, "env", true, &d->env, err)) < 0)
        return r;
    if ((x = json_get(v, "labels")) && (r = parse_strmap(x, "labels", false, &d->labels, err)) < 0)
        return r;
    if (json_get(v, "user")) {
        const char *u = json_get_str(v, "user");
        if (!u || !u[0] || strlen(u) > 32)
            return INVALID("user: want a user name");
        d->user = xstrdup(u);
    }
    const char *role = json_get(v, "role") ? json_get_str(v, "role") : "*";
    if (!role || !ml_role_valid(role))
        return INVALID("role: want \"*\" or 1-64 of [a-z0-9_-]");
    d->role = xstrdup(role);
    if ((x = json_get(v, "health_checks")) && (r = parse_health(x, d, err)) < 0)
        return r;
    if ((x = json_get(v, "constraints")) && (r = parse_constraints(x, d, err)) < 0)
        return r;
    d->mhc = 1, d->moc = 1;
    if ((x = json_get(v, "upgrade_strategy"))) {
        if (!YAJL_IS_OBJECT(x))
            return INVALID("upgrade_strategy: want an object");
        if ((r = num_field(x, "minimum_health_capacity", "upgrade_strategy.", 0, 1, &d->mhc, err)) <
                    0 ||
            (r = num_field(x, "maximum_over_capacity", "upgrade_strategy.", 0, 1, &d->moc, err)) <
                    0)
            return r;
    }
    d->bo_seconds = 1, d->bo_factor = 1.15, d->bo_max = 300, d->bo_reset = 60;
    if ((x = json_get(v, "backoff"))) {
        if (!YAJL_IS_OBJECT(x))
            return INVALID("backoff: want an object");
        if ((r = num_field(x, "seconds", "backoff.", 0, 86400, &d->bo_seconds, err)) < 0 ||
            (r = num_field(x, "factor", "backoff.", 1, 100, &d->bo_factor, err)) < 0 ||
            (r = num_field(x, "max_seconds", "backoff.", 0, 86400, &d->bo_max, err)) < 0 ||
            (r = num_field(x, "reset_seconds", "backoff.", 0, 86400 * 7, &d->bo_reset, err)) < 0)
            return r;
    }
    return 0;
}

int app_def_parse(yajl_val v, struct app_def *ret, struct berr **err)
{
    struct app_def d = {0};
    int r = 0;
    if (!YAJL_IS_OBJECT(v))
        return INVALID("an app definition is a JSON object");
    for (size_t i = 0; i < v->u.object.len; i++)
        if (!is_known(v->u.object.keys[i]))
            return INVALID("%s: unknown field", v->u.object.keys[i]);
    const char *id = json_get_str(v, "id");
    if (!app_id_valid(id))
        return INVALID("id: want 1-63 of [a-z0-9-], starting with a letter or digit");
    d.id = xstrdup(id);
    const char *cmd = json_get_str(v, "command");
    if (json_get(v, "command") && json_get(v, "args"))
        r = INVALID("command, args: give one of the two");
    else if (json_get(v, "command") && (!cmd || !cmd[0]))
        r = INVALID("command: want a non-empty string");
    else if (json_get(v, "args") && (json_get_strv(v, "args", &d.args) < 0 || !d.args[0]))
        r = INVALID("args: want a non-empty array of strings");
    else if (!json_get(v, "command") && !json_get(v, "args"))
        r = INVALID("command: missing (or args)");
    if (r < 0)
        goto fail;
    d.command = cmd ? xstrdup(cmd) : NULL;
    uint64_t n = 1;
    if (json_get(v, "instances") && (!json_get_u64(v, "instances", &n) || n > APP_MAX_INSTANCES)) {
        r = INVALID("instances: want 0 to %d", APP_MAX_INSTANCES);
        goto fail;
    }
    d.instances = (unsigned) n;
    if (!json_get_cpus(v, "cpus", &d.cpus_millis) || d.cpus_millis == 0) {
        r = INVALID("cpus: %s", json_get(v, "cpus") ? "want a number above 0 (e.g. 0.25)"
                                                    : "missing (required)");
        goto fail;
    }
    if (!json_get_size(v, "mem", &d.mem_bytes) || d.mem_bytes < 4096) {
        r = INVALID("mem: %s", json_get(v, "mem") ? "want bytes or a size (e.g. \"64MiB\")"
                                                  : "missing (required)");
        goto fail;
    }
    if (json_get(v, "pids") &&
        (!json_get_u64(v, "pids", &d.pids) || d.pids < 1 || d.pids > ML_PIDS_MAX)) {
        r = INVALID("pids: want 1 to %u", ML_PIDS_MAX);
        goto fail;
    }
    if ((r = parse_rest(v, &d, err)) < 0)
        goto fail;
    *ret = d;
    return 0;
fail:
    app_def_done(&d);
    return r;
}

void app_def_done(struct app_def *d)
{
    free(d->id);
    free(d->command);
    strv_free(d->args);
    for (size_t i = 0; i < d->n_ports; i++)
        free(d->ports[i].name);
    free(d->ports);
    free(d->network);
    strv_free(d->env);
    free(d->user);
    free(d->role);
    free(d->health_json);
    ml_health_check_free(d->hc);
    for (size_t i = 0; i < d->n_cons; i++)
        app_constraint_done(&d->cons[i]);
    free(d->cons);
    strv_free(d->labels);
    *d = (struct app_def){0};
}

void app_def_gen_fields(yajl_gen g, const struct app_def *d, bool without_instances)
{
    char buf[64];
    json_kv_str(g, "id", d->id);
    if (d->command)
        json_kv_str(g, "command", d->command);
    else
        json_kv_strv(g, "args", d->args);
    if (!without_instances)
        json_kv_u64(g, "instances", d->instances);
    json_kv_cpus(g, "cpus", d->cpus_millis);
    format_size(d->mem_bytes, buf, sizeof(buf));
    json_kv_str(g, "mem", buf);
    if (d->pids)
        json_kv_u64(g, "pids", d->pids);
    json_str(g, "ports");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < d->n_ports; i++) {
        yajl_gen_map_open(g);
        if (d->ports[i].name)
            json_kv_str(g, "name", d->ports[i].name);
        if (d->ports[i].service_port)
            json_kv_u64(g, "service_port", d->ports[i].service_port);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    if (d->network)
        json_kv_str(g, "network", d->network);
    json_str(g, "env");
    yajl_gen_map_open(g);
    for (size_t i = 0; d->env && d->env[i]; i++) {
        const char *eq = strchr(d->env[i], '=');
        _cleanup_free_ char *k = xstrndup(d->env[i], (size_t) (eq - d->env[i]));
        json_kv_str(g, k, eq + 1);
    }
    yajl_gen_map_close(g);
    if (d->user)
        json_kv_str(g, "user", d->user);
    json_kv_str(g, "role", d->role);
    json_str(g, "health_checks");
    yajl_gen_array_open(g);
    if (d->hc)
        ml_health_check_gen(g, d->hc);
    yajl_gen_array_close(g);
    json_str(g, "constraints");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < d->n_cons; i++)
        app_constraint_gen(g, &d->cons[i]);
    yajl_gen_array_close(g);
    json_str(g, "upgrade_strategy");
    yajl_gen_map_open(g);
    json_kv_double(g, "minimum_health_capacity", d->mhc);
    json_kv_double(g, "maximum_over_capacity", d->moc);
    yajl_gen_map_close(g);
    json_str(g, "backoff");
    yajl_gen_map_open(g);
    json_kv_double(g, "seconds", d->bo_seconds);
    json_kv_double(g, "factor", d->bo_factor);
    json_kv_double(g, "max_seconds", d->bo_max);
    json_kv_double(g, "reset_seconds", d->bo_reset);
    yajl_gen_map_close(g);
    json_str(g, "labels");
    yajl_gen_map_open(g);
    for (size_t i = 0; d->labels && d->labels[i]; i += 2)
        json_kv_str(g, d->labels[i], d->labels[i + 1]);
    yajl_gen_map_close(g);
}

char *app_def_encode(const struct app_def *d, bool without_instances)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    app_def_gen_fields(g, d, without_instances);
    yajl_gen_map_close(g);
    return json_gen_take(g);
}

double app_backoff_delay(const struct app_def *d, unsigned n)
{
    if (n == 0)
        return 0;
    double t = d->bo_seconds * pow(d->bo_factor, (double) (n - 1));
    return t > d->bo_max || !isfinite(t) ? d->bo_max : t;
}

static bool used_has(const uint16_t *used, size_t n, unsigned p)
{
    for (size_t i = 0; i < n; i++)
        if (used[i] == p)
            return true;
    return false;
}

int app_ports_pick(const char *ranges, const uint16_t *used, size_t n_used, size_t n, uint16_t *out)
{
    size_t got = 0;
    const char *p = ranges ? ranges : "";
    if (*p == '[')
        p++;
    while (got < n && *p && *p != ']') {
        char *end;
        unsigned long a = strtoul(p, &end, 10), b = a;
        if (end == p)
            break;
        p = end;
        if (*p == '-') {
            b = strtoul(p + 1, &end, 10);
            p = end;
        }
        for (unsigned long x = a; x <= b && x <= 65535 && got < n; x++)
            if (x > 0 && !used_has(used, n_used, (unsigned) x) && !used_has(out, got, (unsigned) x))
                out[got++] = (uint16_t) x;
        if (*p == ',')
            p++;
    }
    return got == n ? 0 : -ENOSPC;
}

void app_time_format(double t, char *buf, size_t len)
{
    time_t s = (time_t) t;
    struct tm tm;
    gmtime_r(&s, &tm);
    int ms = (int) ((t - (double) s) * 1000);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             ms < 0     ? 0
             : ms > 999 ? 999
                        : ms);
}
