/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/metrics.c - GET /metrics in the Prometheus text format (docs/metrics.md): per
 * container usage labelled {id, name} from the sampler's latest pass (sampler.c), node
 * resources and usage, container counts by state and the launch histogram. Nothing is
 * measured here; a scrape costs one walk over the table. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <string.h>

#include "agentd/agent.h"

static void head(struct evbuffer *b, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A counter of one sample without labels. */
static void counter(struct evbuffer *b, const char *name, const char *help, uint64_t v)
{
    head(b, name, "counter", help);
    evbuffer_add_printf(b, "%s %llu\n", name, (unsigned long long) v);
}

/* Label values come from user input (names): escape backslash, quote and newline. */
static void label_escape(const char *in, char *out, size_t len)
{
    size_t o = 0;
    for (const char *p = in; *p && o + 3 < len; p++) {
        if (*p == '\\' || *p == '"') {
            out[o++] = '\\';
            out[o++] = *p;
        } else if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *p;
        }
    }
    out[o] = 0;
}

/* Prometheus sample values: whole numbers exactly (byte counts exceed %g's precision),
 * fractions with nine significant digits. */
static const char *num(double v, char *buf, size_t len)
{
    if (v == (double) (uint64_t) v && v < 9007199254740992.0)
        snprintf(buf, len, "%llu", (unsigned long long) v);
    else
        snprintf(buf, len, "%.9g", v);
    return buf;
}

enum cm {
    CM_CPU,
    CM_THROTTLED_PERIODS,
    CM_THROTTLED_SECONDS,
    CM_MEM_USAGE,
    CM_WORKING_SET,
    CM_RSS,
    CM_MEM_LIMIT,
    CM_CPU_LIMIT,
    CM_OOM,
    CM_PIDS,
    _CM_MAX,
};

static const struct {
    const char *name, *type, *help;
} container_metrics[_CM_MAX] = {
        [CM_CPU] = {"berth_container_cpu_usage_seconds_total", "counter",
                    "CPU time the container's processes used, from its cgroup."},
        [CM_THROTTLED_PERIODS] = {"berth_container_cpu_throttled_periods_total", "counter",
                                  "CFS periods in which the container hit its CPU quota."},
        [CM_THROTTLED_SECONDS] = {"berth_container_cpu_throttled_seconds_total", "counter",
                                  "Time the container was held back by its CPU quota."},
        [CM_MEM_USAGE] = {"berth_container_memory_usage_bytes", "gauge",
                          "Memory charged to the container's cgroup."},
        [CM_WORKING_SET] = {"berth_container_memory_working_set_bytes", "gauge",
                            "Memory usage minus inactive file cache."},
        [CM_RSS] = {"berth_container_memory_rss_bytes", "gauge",
                    "Anonymous memory of the container."},
        [CM_MEM_LIMIT] = {"berth_container_memory_limit_bytes", "gauge",
                          "Hard memory limit of the container."},
        [CM_CPU_LIMIT] = {"berth_container_cpu_limit_cores", "gauge",
                          "CPU quota of the container in cores (0: no quota)."},
        [CM_OOM] = {"berth_container_oom_events_total", "counter",
                    "Processes the kernel OOM-killed in the container."},
        [CM_PIDS] = {"berth_container_pids", "gauge", "Processes in the container."},
};

static double container_value(const struct container *c, enum cm m)
{
    const struct iso_stats *st = &c->usage;
    switch (m) {
    case CM_CPU:
        return (double) st->cpu_usage_ns / 1e9;
    case CM_THROTTLED_PERIODS:
        return (double) st->nr_throttled;
    case CM_THROTTLED_SECONDS:
        return (double) st->throttled_ns / 1e9;
    case CM_MEM_USAGE:
        return (double) st->mem_usage;
    case CM_WORKING_SET:
        return (double) st->mem_working_set;
    case CM_RSS:
        return (double) st->mem_rss;
    case CM_MEM_LIMIT:
        return (double) c->spec.mem_bytes;
    case CM_CPU_LIMIT:
        return (double) ctr_cpu_limit(c) / 1000.0;
    case CM_OOM:
        return (double) st->oom_kills;
    case CM_PIDS:
        return (double) st->pids;
    default:
        return 0;
    }
}

static void node_resources(struct agent *a, struct evbuffer *b)
{
    struct res_amounts allocated;
    resources_allocated(a, &allocated);
    /* SPEC §8 names these berth_node_resource_{total,reserved,allocatable,allocated}; a
     * gauge named *_total breaks Prometheus's naming rule (promtool check metrics fails on
     * it), so "total" is exported as _capacity, the kubelet's word (docs/metrics.md). */
    const struct {
        const char *kind;
        const struct res_amounts *r;
    } kinds[] = {{"capacity", &a->total},
                 {"reserved", &a->reserved},
                 {"allocatable", &a->allocatable},
                 {"allocated", &allocated}};
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
        char name[64], help[128], nb[40];
        snprintf(name, sizeof(name), "berth_node_resource_%s", kinds[i].kind);
        snprintf(help, sizeof(help),
                 "Node resources %s (cpus in cores, mem and disk in bytes, ports a count).",
                 kinds[i].kind);
        head(b, name, "gauge", help);
        for (int k = 0; k < _RES_MAX; k++)
            evbuffer_add_printf(b, "%s{resource=\"%s\"} %s\n", name, res_name(k),
                                num(k == RES_CPUS ? (double) kinds[i].r->v[k] / 1000.0
                                                  : (double) kinds[i].r->v[k],
                                    nb, sizeof(nb)));
    }
}

void metrics_serve(struct agent *a, struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();
    for (int m = 0; m < _CM_MAX; m++) {
        head(b, container_metrics[m].name, container_metrics[m].type, container_metrics[m].help);
        for (struct container *c = a->containers; c; c = c->next) {
            if (!c->has_usage || ml_state_terminal(c->state))
                continue;
            char name[256], nb[40];
            label_escape(c->spec.name, name, sizeof(name));
            evbuffer_add_printf(b, "%s{id=\"%s\",name=\"%s\"} %s\n", container_metrics[m].name,
                                c->id, name, num(container_value(c, (enum cm) m), nb, sizeof(nb)));
        }
    }
    head(b, "berth_container_healthy", "gauge",
         "1 when the container's health check passes, 0 when it fails (absent: no check, or "
         "no result yet).");
    for (struct container *c = a->containers; c; c = c->next) {
        if (ml_state_terminal(c->state) || c->healthy == ML_HEALTH_UNKNOWN)
            continue;
        char name[256];
        label_escape(c->spec.name, name, sizeof(name));
        evbuffer_add_printf(b, "berth_container_healthy{id=\"%s\",name=\"%s\"} %d\n", c->id, name,
                            c->healthy == ML_HEALTHY);
    }
    node_resources(a, b);
    head(b, "berth_node_cpu_usage_seconds_total", "counter",
         "CPU time the whole node spent busy, from /proc/stat.");
    evbuffer_add_printf(b, "berth_node_cpu_usage_seconds_total %.9g\n",
                        (double) a->node_cpu_ns / 1e9);
    head(b, "berth_node_memory_used_bytes", "gauge",
         "Memory in use on the node: MemTotal - MemAvailable.");
    evbuffer_add_printf(b, "berth_node_memory_used_bytes %llu\n",
                        (unsigned long long) a->node_mem_used);
    head(b, "berth_containers", "gauge", "Containers the agent knows, by state.");
    for (int st = 0; st < _ML_STATE_MAX; st++) {
        unsigned n = 0;
        for (struct container *c = a->containers; c; c = c->next)
            n += (int) c->state == st;
        evbuffer_add_printf(b, "berth_containers{state=\"%s\"} %u\n", ml_state_name(st), n);
    }
    counter(b, "berth_agent_trash_rm_total",
            "rm processes started to remove containers' directories (one a loop turn).",
            a->trash_rm_total);
    counter(b, "berth_api_launches_deferred_total",
            "Launch requests that waited for a later turn of the loop (one launch a turn).",
            a->launches_deferred_total);
    counter(b, "berth_sampler_passes_total", "Usage sampling passes done.", a->sample_passes);
    head(b, "berth_sampler_pass_seconds_total", "counter",
         "Time spent in usage sampling passes (node and every live container).");
    evbuffer_add_printf(b, "berth_sampler_pass_seconds_total %.9f\n",
                        (double) a->sample_pass_ns_total / 1e9);
    counter(b, "berth_sampler_slices_total",
            "Loop turns those passes took (a pass takes up to 64 containers a turn).",
            a->sample_slices);
    counter(b, "berth_health_checks_total", "Health checks run since the agent started.",
            a->health_checks_total);
    counter(b, "berth_launches_total", "Launches accepted since the agent started.",
            a->launches_total);
    counter(b, "berth_agent_template_builds_total",
            "Sandbox templates built since the agent started (the first included).",
            a->template_builds);
    counter(b, "berth_enforce_ports_kills_total",
            "Tasks enforce_ports killed for listening on a port they were not given.",
            a->ports_watch_kills);
    head(b, "berth_launch_duration_seconds", "histogram",
         "Time from a launch request to the task running (its first instruction).");
    uint64_t cum = 0;
    for (size_t i = 0; i < ARRAY_SIZE(launch_bucket_bounds); i++) {
        cum += a->launch_buckets[i];
        evbuffer_add_printf(b, "berth_launch_duration_seconds_bucket{le=\"%g\"} %llu\n",
                            launch_bucket_bounds[i], (unsigned long long) cum);
    }
    cum += a->launch_buckets[ARRAY_SIZE(launch_bucket_bounds)];
    evbuffer_add_printf(b, "berth_launch_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                        (unsigned long long) cum);
    evbuffer_add_printf(b, "berth_launch_duration_seconds_sum %.9g\n", a->launch_sum);
    evbuffer_add_printf(b, "berth_launch_duration_seconds_count %llu\n",
                        (unsigned long long) a->launch_count);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}
