/* agentd/container.c - the container table: lookup by id, id prefix or name, the JSON form
 * the API and the store share, and freeing. The state machine lives in lifecycle.c;
 * this file never changes a container's state. */
#include <string.h>

#include "agentd/agent.h"

struct container *agent_find_id(struct agent *a, const char *id)
{
    for (struct container *c = a->containers; c; c = c->next)
        if (streq(c->id, id))
            return c;
    return NULL;
}

struct container *agent_find(struct agent *a, const char *ref, struct berr **err)
{
    if (!ref[0] || strlen(ref) > 64 || strchr(ref, '/')) {
        berr_setc(err, ENOENT, BERR_NOT_FOUND, "no container '%s'", ref);
        return NULL;
    }
    /* an exact id first, then an exact name, then an id prefix (names cannot look like
     * ids, request.c refuses them, so the order only matters for records of older agents) */
    struct container *found = agent_find_id(a, ref);
    if (found)
        return found;
    for (struct container *c = a->containers; c; c = c->next)
        if (streq(c->name, ref))
            return c;
    size_t n = strlen(ref);
    for (struct container *c = a->containers; c; c = c->next) {
        if (strncmp(c->id, ref, n) != 0)
            continue;
        if (found) {
            berr_setc(err, EINVAL, BERR_CONFLICT, "id prefix '%s' is ambiguous", ref);
            return NULL;
        }
        found = c;
    }
    if (!found)
        berr_setc(err, ENOENT, BERR_NOT_FOUND, "no container '%s'", ref);
    return found;
}


static void strv_free(char **v)
{
    for (char **p = v; p && *p; p++)
        free(*p);
    free(v);
}

struct container *ctr_free(struct container *c)
{
    if (!c)
        return NULL;
    /* each event's argument is the id it carries (lifecycle.c ref_new), owned by it */
    struct event *evs[] = {c->ev_exit, c->ev_status, c->ev_oom, c->ev_backstop};
    for (size_t i = 0; i < ARRAY_SIZE(evs); i++) {
        if (evs[i]) {
            free(event_get_callback_arg(evs[i]));
            event_free(evs[i]);
        }
    }
    if (c->pidfd >= 0)
        close(c->pidfd);
    if (c->status_fd >= 0)
        close(c->status_fd);
    iso_cgroup_free(c->cg);
    free(c->name);
    free(c->shell);
    strv_free(c->argv);
    strv_free(c->env);
    for (size_t i = 0; i < c->n_volumes; i++) {
        free(c->volumes[i].host);
        free(c->volumes[i].container);
    }
    free(c->volumes);
    free(c->user);
    free(c->role);
    free(c->message);
    free(c->limits_json);
    free(c->cgroups_json);
    free(c);
    return NULL;
}

void agent_usage_json(struct container *c, yajl_gen g)
{
    json_str(g, "usage");
    if (!c->has_usage) {
        yajl_gen_null(g);
        return;
    }
    const struct iso_stats *st = &c->usage, *pv = &c->usage_prev;
    double dt = (double) (c->usage_at_ns - c->usage_prev_at_ns) / 1e9;
    yajl_gen_map_open(g);
    json_kv_double(g, "sampled_at", now_realtime() - (double) (now_monotonic_ns() - c->usage_at_ns) / 1e9);
    json_kv_double(g, "cpu_seconds", (double) st->cpu_usage_ns / 1e9);
    json_kv_double(g, "cpu_user_seconds", (double) st->cpu_user_ns / 1e9);
    json_kv_double(g, "cpu_system_seconds", (double) st->cpu_system_ns / 1e9);
    /* busy cores between the last two samples (0 until there are two) */
    json_kv_double(g, "cpu_cores",
                   dt > 0 && st->cpu_usage_ns >= pv->cpu_usage_ns
                           ? (double) (st->cpu_usage_ns - pv->cpu_usage_ns) / 1e9 / dt
                           : 0);
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

void agent_container_json(struct agent *a, struct container *c, yajl_gen g, bool with_usage)
{
    yajl_gen_map_open(g);
    json_kv_str(g, "id", c->id);
    json_kv_str(g, "name", c->name);
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
    json_str(g, "command");
    yajl_gen_map_open(g);
    if (c->shell) {
        json_kv_str(g, "shell", c->shell);
    } else {
        json_str(g, "argv");
        yajl_gen_array_open(g);
        for (char **p = c->argv; p && *p; p++)
            json_str(g, *p);
        yajl_gen_array_close(g);
    }
    yajl_gen_map_close(g);
    json_str(g, "resources");
    yajl_gen_map_open(g);
    json_str(g, "cpus");
    json_cpus(g, c->cpus_millis);
    json_str(g, "cpus_limit");
    if (c->cpu_limit_millis)
        json_cpus(g, c->cpu_limit_millis);
    else
        json_str(g, "none");
    json_kv_u64(g, "mem", c->mem_bytes);
    json_kv_u64(g, "pids", c->pids_max);
    yajl_gen_map_close(g);
    json_kv_str(g, "user", c->user);
    if (c->userns_base) {
        json_str(g, "userns");
        yajl_gen_map_open(g);
        json_kv_u64(g, "host_uid", c->userns_base);
        json_kv_u64(g, "size", ISO_USERNS_SIZE);
        yajl_gen_map_close(g);
    } else {
        json_kv_null(g, "userns");
    }
    json_str(g, "env");
    yajl_gen_map_open(g);
    for (char **p = c->env; p && *p; p++) {
        const char *eq = strchr(*p, '=');
        yajl_gen_string(g, (const unsigned char *) *p, (size_t) (eq - *p));
        json_str(g, eq + 1);
    }
    yajl_gen_map_close(g);
    json_str(g, "volumes");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < c->n_volumes; i++) {
        yajl_gen_map_open(g);
        json_kv_str(g, "host", c->volumes[i].host);
        json_kv_str(g, "container", c->volumes[i].container);
        json_kv_bool(g, "readonly", c->volumes[i].readonly);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    json_kv_str(g, "role", c->role);
    if (c->pid > 0)
        json_kv_i64(g, "pid", c->pid);
    else
        json_kv_null(g, "pid");
    _cleanup_free_ char *sandbox = xasprintf("%s/%s", a->sandboxes_dir, c->id);
    json_kv_str(g, "sandbox", sandbox);
    json_kv_raw(g, "cgroups", c->cgroups_json);
    json_kv_raw(g, "limits", c->limits_json);
    json_kv_bool(g, "kill_requested", c->kill_requested);
    json_kv_double(g, "created_at", c->created_at);
    if (c->started_at > 0)
        json_kv_double(g, "started_at", c->started_at);
    else
        json_kv_null(g, "started_at");
    if (c->finished_at > 0)
        json_kv_double(g, "finished_at", c->finished_at);
    else
        json_kv_null(g, "finished_at");
    if (with_usage)
        agent_usage_json(c, g);
    yajl_gen_map_close(g);
}

void agent_containers_free(struct agent *a)
{
    while (a->containers) {
        struct container *c = a->containers;
        a->containers = c->next;
        ctr_free(c);
    }
}
