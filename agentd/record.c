/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/record.c - a container as JSON, both directions side by side: ctr_gen writes the
 * API view (GET /v1/containers/ID, the list, wait) and the record state.db keeps;
 * ctr_record_decode reads a record back when the agent starts (recover.c).
 *
 * state.db stores the API view (without usage) plus what only the agent needs: the master's
 * task id and "record_version". Keeping one layout means `sqlite3 state.db` shows what the
 * API showed and there is one writer to keep true; the version lets a later layout tell old
 * records apart (records of agents before version 1 carry none and read the same way). The
 * spec part (command, resources, user, env, volumes, role) is masterlink/spec.c's codec. */
#include <arpa/inet.h>
#include <string.h>

#include "agentd/agent.h"

#define RECORD_VERSION 1

void ctr_usage_gen(const struct container *c, yajl_gen g)
{
    json_str(g, "usage");
    if (!c->has_usage) {
        yajl_gen_null(g);
        return;
    }
    const struct iso_stats *st = &c->usage;
    yajl_gen_map_open(g);
    json_kv_double(g, "sampled_at",
                   now_realtime() - (double) (now_monotonic_ns() - c->usage_at_ns) / 1e9);
    json_kv_double(g, "cpu_seconds", (double) st->cpu_usage_ns / 1e9);
    json_kv_double(g, "cpu_user_seconds", (double) st->cpu_user_ns / 1e9);
    json_kv_double(g, "cpu_system_seconds", (double) st->cpu_system_ns / 1e9);
    json_kv_double(g, "cpu_cores", ctr_cpu_cores(c));
    json_kv_u64(g, "periods", st->nr_periods);
    json_kv_u64(g, "throttled_periods", st->nr_throttled);
    json_kv_double(g, "throttled_seconds", (double) st->throttled_ns / 1e9);
    json_kv_u64(g, "memory_bytes", st->mem_usage);
    json_kv_u64(g, "working_set_bytes", st->mem_working_set);
    json_kv_u64(g, "rss_bytes", st->mem_rss);
    json_kv_u64(g, "cache_bytes", st->mem_cache);
    json_kv_u64(g, "peak_bytes", st->mem_peak);
    json_kv_u64(g, "oom_kills", st->oom_kills);
    json_kv_u64(g, "pids", st->pids);
    if (st->has_pressure) {
        json_str(g, "pressure");
        yajl_gen_map_open(g);
        json_kv_double(g, "cpu_some_avg10", st->cpu_some_avg10);
        json_kv_double(g, "memory_some_avg10", st->mem_some_avg10);
        json_kv_double(g, "io_some_avg10", st->io_some_avg10);
        json_kv_double(g, "cpu_some_seconds", (double) st->cpu_some_us / 1e6);
        json_kv_double(g, "memory_some_seconds", (double) st->mem_some_us / 1e6);
        json_kv_double(g, "memory_full_seconds", (double) st->mem_full_us / 1e6);
        json_kv_double(g, "io_some_seconds", (double) st->io_some_us / 1e6);
        json_kv_double(g, "io_full_seconds", (double) st->io_full_us / 1e6);
        yajl_gen_map_close(g);
    }
    yajl_gen_map_close(g);
}

static void kv_time(yajl_gen g, const char *k, double t)
{
    if (t > 0)
        json_kv_double(g, k, t);
    else
        json_kv_null(g, k);
}

/* Bridge mode's address, gateway and host interface ("net"), null for the other modes. The
 * mappings are the spec's "ports" (host_port -> container_port). */
static void net_gen(const struct container *c, yajl_gen g)
{
    if (!c->net_addr) {
        json_kv_null(g, "net");
        return;
    }
    char addr[16], gw[16], ifname[16];
    iso_ipv4_format(c->net_addr, addr);
    iso_ipv4_format(c->net_gateway, gw);
    net_ifname(c->id, ifname);
    json_str(g, "net");
    yajl_gen_map_open(g);
    json_kv_str(g, "address", addr);
    json_kv_u64(g, "prefix", c->net_prefix);
    json_kv_str(g, "gateway", gw);
    json_kv_str(g, "interface", ifname);
    yajl_gen_map_close(g);
}

static uint32_t ipv4_of(yajl_val v, const char *k)
{
    const char *s = json_get_str(v, k);
    struct in_addr in;
    return s && inet_pton(AF_INET, s, &in) == 1 ? ntohl(in.s_addr) : 0;
}

void ctr_gen(struct agent *a, const struct container *c, yajl_gen g, unsigned what)
{
    yajl_gen_map_open(g);
    if (what & CTR_GEN_RECORD) {
        json_kv_u64(g, "record_version", RECORD_VERSION);
        json_kv_str(g, "task_id", c->task_id[0] ? c->task_id : NULL);
    }
    json_kv_str(g, "id", c->id);
    json_kv_str(g, "state", ml_state_name(c->state));
    json_kv_str(g, "reason", ml_reason_name(c->reason));
    if (c->exit_code >= 0)
        json_kv_i64(g, "exit_code", c->exit_code);
    else
        json_kv_null(g, "exit_code");
    if (c->signal > 0)
        json_kv_i64(g, "signal", c->signal);
    else
        json_kv_null(g, "signal");
    json_kv_str(g, "message", c->message ? c->message : "");
    ml_task_spec_gen_fields(g, &c->spec); /* name, command, resources, user, env, volumes, role */
    if (c->userns_base) {
        json_str(g, "userns");
        yajl_gen_map_open(g);
        json_kv_u64(g, "host_uid", c->userns_base);
        json_kv_u64(g, "size", ISO_USERNS_SIZE);
        yajl_gen_map_close(g);
    } else {
        json_kv_null(g, "userns");
    }
    net_gen(c, g);
    if (c->limitation)
        json_kv_str(g, "limitation", ml_reason_name(c->limitation));
    if (c->pid > 0)
        json_kv_i64(g, "pid", c->pid);
    else
        json_kv_null(g, "pid");
    _cleanup_free_ char *sandbox = xasprintf("%s/%s", a->sandboxes_dir, c->id);
    json_kv_str(g, "sandbox", sandbox);
    json_kv_raw(g, "cgroups", c->cgroups_json);
    json_kv_raw(g, "limits", c->limits_json);
    json_kv_bool(g, "kill_requested", c->kill_requested);
    if (!(what & CTR_GEN_RECORD))
        health_gen(c, g); /* live, not recorded: checks start again after a restart */
    json_kv_double(g, "created_at", c->created_at);
    kv_time(g, "started_at", c->started_at);
    kv_time(g, "finished_at", c->finished_at);
    if (what & CTR_GEN_USAGE)
        ctr_usage_gen(c, g);
    yajl_gen_map_close(g);
}

char *ctr_record_encode(struct agent *a, const struct container *c)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    ctr_gen(a, c, g, CTR_GEN_RECORD);
    return json_gen_take(g);
}

static double time_of(yajl_val v, const char *k)
{
    double d = 0;
    return json_get_double(v, k, &d) ? d : 0;
}

/* A member that is an object, as text (limits, cgroups), or NULL. */
static char *object_text(yajl_val v, const char *k)
{
    yajl_val o = json_get(v, k);
    return o && YAJL_IS_OBJECT(o) ? json_to_text(o) : NULL;
}

int ctr_record_decode(const char *id, const char *json, struct container *c, struct berr **err)
{
    _cleanup_berr_ struct berr *perr = NULL;
    yajl_val v = json_parse(json, strlen(json), &perr);
    if (!v || !YAJL_IS_OBJECT(v)) {
        yajl_tree_free(v);
        return berr_setx(err, EBADMSG, "record '%s' is not a container's JSON (%s)", id,
                         perr ? berr_msg(perr) : "not an object");
    }
    int r = ml_task_spec_parse(v, ML_SPEC_RECORD, &c->spec, err);
    if (r < 0) {
        yajl_tree_free(v);
        return berr_wrap(err, "record '%s'", id);
    }
    snprintf(c->id, sizeof(c->id), "%s", id);
    snprintf(c->task_id, sizeof(c->task_id), "%s", json_get_str(v, "task_id") ?: "");
    if (!c->spec.name)
        c->spec.name = xstrdup(c->id);
    if (!c->spec.user)
        c->spec.user = xstrdup("nobody");
    if (!c->spec.role)
        c->spec.role = xstrdup("*");
    if (c->spec.cpus_limit == ML_CPUS_LIMIT_DEFAULT)
        c->spec.cpus_limit = ML_CPUS_LIMIT_NONE;
    (void) json_get_u64(json_get(v, "userns"), "host_uid", &c->userns_base);
    c->state = ml_state_from_name(json_get_str(v, "state"));
    if ((int) c->state < 0)
        c->state = ML_LOST;
    c->reason = ml_reason_from_name(json_get_str(v, "reason"));
    if ((int) c->reason < 0)
        c->reason = ML_REASON_NONE;
    int64_t n;
    c->exit_code = json_get_i64(v, "exit_code", &n) && n >= 0 && n < 256 ? (int) n : -1;
    c->signal = json_get_i64(v, "signal", &n) && n > 0 && n < 65 ? (int) n : 0;
    c->message = xstrdup(json_get_str(v, "message") ?: "");
    c->created_at = time_of(v, "created_at");
    c->started_at = time_of(v, "started_at");
    c->finished_at = time_of(v, "finished_at");
    c->pid = json_get_i64(v, "pid", &n) && n > 0 && n <= INT32_MAX ? (pid_t) n : 0;
    yajl_val net = json_get(v, "net");
    uint64_t prefix = 0;
    if (net && YAJL_IS_OBJECT(net) && json_get_u64(net, "prefix", &prefix) && prefix <= 32) {
        c->net_addr = ipv4_of(net, "address");
        c->net_gateway = ipv4_of(net, "gateway");
        c->net_prefix = (unsigned) prefix;
    }
    enum ml_reason lim = ml_reason_from_name(json_get_str(v, "limitation"));
    c->limitation = (int) lim < 0 ? ML_REASON_NONE : lim;
    yajl_val kr = json_get(v, "kill_requested");
    c->kill_requested = kr && YAJL_IS_TRUE(kr);
    c->limits_json = object_text(v, "limits");
    c->cgroups_json = object_text(v, "cgroups");
    yajl_tree_free(v);
    return 0;
}
