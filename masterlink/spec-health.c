/* SPDX-License-Identifier: Apache-2.0 */
/* masterlink/spec-health.c - the task spec's "health_check" member (issue #16, docs/api.md
 * "Health checks"): parsed with every default filled, each bad field refused by name, and
 * encoded back; part of the one task-spec schema, which spec.c parses and calls this for.
 * The agent runs the checks (agentd/health.c); the master only carries them. */
#include <string.h>
#include <strings.h>

#include "masterlink/masterlink.h"

#define BAD(...) berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, __VA_ARGS__)

static const char *const health_type_names[_ML_HEALTH_TYPE_MAX] = {
        [ML_HEALTH_COMMAND] = "command",
        [ML_HEALTH_HTTP] = "http",
        [ML_HEALTH_TCP] = "tcp",
};

const char *ml_health_type_name(enum ml_health_type t)
{
    return t >= 0 && t < _ML_HEALTH_TYPE_MAX ? health_type_names[t] : NULL;
}

void ml_health_gen(yajl_gen g, const char *k, enum ml_health h)
{
    if (h == ML_HEALTH_UNKNOWN)
        json_kv_null(g, k);
    else
        json_kv_bool(g, k, h == ML_HEALTHY);
}

enum ml_health ml_health_get(yajl_val v, const char *k)
{
    yajl_val h = json_get(v, k);
    return !h                 ? ML_HEALTH_UNKNOWN
           : YAJL_IS_TRUE(h)  ? ML_HEALTHY
           : YAJL_IS_FALSE(h) ? ML_UNHEALTHY
                              : ML_HEALTH_UNKNOWN;
}

#define HC_MAX_SECONDS 86400u /* delay, interval, grace: a day at most */

/* Seconds as a number or string with at most 3 decimals, from min_ms to max_s seconds. */
static int get_seconds(yajl_val v, const char *what, uint64_t min_ms, uint64_t max_s,
                       uint64_t *ret_ms, struct berr **err)
{
    const char *s = YAJL_IS_NUMBER(v) ? v->u.number.r : YAJL_IS_STRING(v) ? v->u.string : NULL;
    uint64_t ms = 0;
    /* parse_cpus reads "decimals, 3 places, > 0": seconds in milliseconds; zero on its own */
    bool zero = s && s[0] && strspn(s, "0.") == strlen(s) && strchr(s, '0');
    if (!s || (!zero && parse_cpus(s, &ms) < 0) || ms < min_ms || ms > max_s * 1000)
        return BAD("health_check.%s must be a number of seconds from %g to %llu (at most 3 "
                   "decimals)",
                   what, (double) min_ms / 1000, (unsigned long long) max_s);
    *ret_ms = ms;
    return 0;
}

static const char *const hc_fields[] = {
        "type",  "command",  "path",    "port",  "port_index",
        "delay", "interval", "timeout", "grace", "consecutive_failures"};

static int get_health_check(yajl_val v, size_t n_ports, struct ml_health_check *hc,
                            struct berr **err)
{
    *hc = (struct ml_health_check){.port_index = -1,
                                   .interval_ms = 10000,
                                   .timeout_ms = 5000,
                                   .grace_ms = 60000,
                                   .consecutive_failures = 3};
    if (!YAJL_IS_OBJECT(v))
        return BAD("health_check must be an object {\"type\": \"command\"|\"http\"|\"tcp\", ...}");
    for (size_t i = 0; i < v->u.object.len; i++) {
        bool ok = false;
        for (size_t k = 0; k < ARRAY_SIZE(hc_fields); k++)
            ok |= streq(hc_fields[k], v->u.object.keys[i]);
        if (!ok)
            return BAD("health_check: unknown field '%.64s'", v->u.object.keys[i]);
    }
    yajl_val x = json_get(v, "type");
    int t = -1;
    for (int k = 0; x && YAJL_IS_STRING(x) && k < _ML_HEALTH_TYPE_MAX; k++)
        if (strcasecmp(x->u.string, health_type_names[k]) == 0)
            t = k;
    if (t < 0)
        return BAD("health_check.type must be \"command\", \"http\" or \"tcp\"");
    hc->type = (enum ml_health_type) t;
    yajl_val cmd = json_get(v, "command"), path = json_get(v, "path"), port = json_get(v, "port"),
             idx = json_get(v, "port_index");
    if (hc->type == ML_HEALTH_COMMAND) {
        if (!cmd)
            return BAD("health_check.command is required for a command check");
        if (path || port || idx)
            return BAD("health_check: a command check takes no path, port or port_index");
        if (ml_command_parse(cmd, &hc->command, err) < 0)
            return berr_wrap(err, "health_check");
    } else {
        if (cmd)
            return BAD("health_check.command is for command checks only");
        if (path && hc->type == ML_HEALTH_TCP)
            return BAD("health_check.path is for http checks only");
        if (!port == !idx)
            return BAD("health_check needs exactly one of port (a number) and port_index (into "
                       "the task's ports)");
        uint64_t n;
        if (port &&
            (!YAJL_IS_INTEGER(port) || parse_u64(port->u.number.r, &n) < 0 || n == 0 || n > 65535))
            return BAD("health_check.port must be a port number from 1 to 65535");
        if (port)
            hc->port = (uint16_t) n;
        if (idx && (!YAJL_IS_INTEGER(idx) || parse_u64(idx->u.number.r, &n) < 0 || n >= n_ports))
            return BAD("health_check.port_index must name one of the task's %zu port(s) (0 to "
                       "%zu)",
                       n_ports, n_ports ? n_ports - 1 : 0);
        if (idx)
            hc->port_index = (int) n;
        if (path) {
            const char *p = YAJL_IS_STRING(path) ? path->u.string : NULL;
            bool ok = p && p[0] == '/' && strlen(p) <= 1024;
            for (const char *q = p; ok && *q; q++)
                ok = *q > ' ' && *q < 0x7f; /* one request line: no spaces, controls, UTF-8 */
            if (!ok)
                return BAD("health_check.path must start with '/' and be at most 1024 printable "
                           "ASCII characters without spaces");
        }
        hc->path = hc->type == ML_HEALTH_HTTP ? xstrdup(path ? path->u.string : "/") : NULL;
    }
    if (((x = json_get(v, "delay")) &&
         get_seconds(x, "delay", 0, HC_MAX_SECONDS, &hc->delay_ms, err) < 0) ||
        ((x = json_get(v, "interval")) &&
         get_seconds(x, "interval", 100, HC_MAX_SECONDS, &hc->interval_ms, err) < 0) ||
        ((x = json_get(v, "timeout")) &&
         get_seconds(x, "timeout", 10, 3600, &hc->timeout_ms, err) < 0) ||
        ((x = json_get(v, "grace")) &&
         get_seconds(x, "grace", 0, HC_MAX_SECONDS, &hc->grace_ms, err) < 0))
        return -EINVAL;
    if ((x = json_get(v, "consecutive_failures"))) {
        uint64_t n;
        if (!YAJL_IS_INTEGER(x) || parse_u64(x->u.number.r, &n) < 0 || n == 0 || n > 1000)
            return BAD("health_check.consecutive_failures must be an integer from 1 to 1000");
        hc->consecutive_failures = n;
    }
    return 0;
}

int ml_health_check_parse(yajl_val v, size_t n_ports, struct ml_health_check **ret,
                          struct berr **err)
{
    struct ml_health_check *hc = xzalloc(sizeof(*hc));
    if (get_health_check(v, n_ports, hc, err) < 0) {
        ml_health_check_free(hc);
        return -EINVAL;
    }
    *ret = hc;
    return 0;
}

void ml_health_check_free(struct ml_health_check *hc)
{
    if (!hc)
        return;
    ml_command_done(&hc->command);
    free(hc->path);
    free(hc);
}

static void ms_gen(yajl_gen g, const char *k, uint64_t ms)
{
    json_kv_double(g, k, (double) ms / 1000);
}

void ml_health_check_gen(yajl_gen g, const struct ml_health_check *hc)
{
    yajl_gen_map_open(g);
    json_kv_str(g, "type", ml_health_type_name(hc->type));
    if (hc->type == ML_HEALTH_COMMAND) {
        json_str(g, "command");
        ml_command_gen(g, &hc->command);
    }
    if (hc->path)
        json_kv_str(g, "path", hc->path);
    if (hc->port)
        json_kv_u64(g, "port", hc->port);
    if (hc->port_index >= 0)
        json_kv_u64(g, "port_index", (uint64_t) hc->port_index);
    ms_gen(g, "delay", hc->delay_ms);
    ms_gen(g, "interval", hc->interval_ms);
    ms_gen(g, "timeout", hc->timeout_ms);
    ms_gen(g, "grace", hc->grace_ms);
    json_kv_u64(g, "consecutive_failures", hc->consecutive_failures);
    yajl_gen_map_close(g);
}
