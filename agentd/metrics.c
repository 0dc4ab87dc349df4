/* agentd/metrics.c - GET /metrics in the Prometheus text format (docs/metrics.md): per
 * container usage labelled {id, name}, and node resources. Values come straight from
 * iso_cgroup_stats(); nothing is cached here. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <string.h>

#include "agentd/agent.h"

static void head(struct evbuffer *b, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
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

struct sample {
    struct container *c;
    struct iso_stats st;
};

void metrics_serve(struct agent *a, struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();
    size_t n = 0;
    for (struct container *c = a->containers; c; c = c->next)
        n += c->cg != NULL;
    struct sample *s = xcalloc(n ? n : 1, sizeof(*s));
    size_t k = 0;
    for (struct container *c = a->containers; c && k < n; c = c->next)
        if (c->cg && iso_cgroup_stats(c->cg, &s[k].st) == 0)
            s[k++].c = c;
    static const struct {
        const char *name, *type, *help;
    } m[] = {
            {"berth_container_cpu_usage_seconds_total", "counter",
             "CPU time used by the container."},
            {"berth_container_cpu_throttled_periods_total", "counter",
             "CFS periods in which the container was throttled."},
            {"berth_container_cpu_throttled_seconds_total", "counter",
             "Time the container was throttled."},
            {"berth_container_memory_usage_bytes", "gauge", "Memory charged to the container."},
            {"berth_container_memory_working_set_bytes", "gauge",
             "Memory usage minus inactive file."},
            {"berth_container_memory_rss_bytes", "gauge", "Anonymous memory of the container."},
            {"berth_container_memory_limit_bytes", "gauge", "Memory limit of the container."},
            {"berth_container_cpu_limit_cores", "gauge", "CPU quota of the container (0 = none)."},
            {"berth_container_oom_events_total", "counter", "OOM kills in the container."},
            {"berth_container_pids", "gauge", "Processes in the container."},
    };
    for (size_t i = 0; i < ARRAY_SIZE(m); i++) {
        head(b, m[i].name, m[i].type, m[i].help);
        for (size_t j = 0; j < k; j++) {
            const struct iso_stats *st = &s[j].st;
            char name[256];
            label_escape(s[j].c->name, name, sizeof(name));
            double v = 0;
            switch (i) {
            case 0:
                v = (double) st->cpu_usage_ns / 1e9;
                break;
            case 1:
                v = (double) st->nr_throttled;
                break;
            case 2:
                v = (double) st->throttled_ns / 1e9;
                break;
            case 3:
                v = (double) st->mem_usage;
                break;
            case 4:
                v = (double) st->mem_working_set;
                break;
            case 5:
                v = (double) st->mem_rss;
                break;
            case 6:
                v = (double) s[j].c->mem_bytes;
                break;
            case 7:
                v = (double) s[j].c->cpu_limit_millis / 1000.0;
                break;
            case 8:
                v = (double) st->oom_kills;
                break;
            case 9:
                v = (double) st->pids;
                break;
            }
            evbuffer_add_printf(b, "%s{id=\"%s\",name=\"%s\"} %.9g\n", m[i].name, s[j].c->id, name,
                                v);
        }
    }
    uint64_t acpus, amem;
    ctr_allocated(a, &acpus, &amem);
    const char *kinds[] = {"total", "reserved", "allocatable", "allocated"};
    uint64_t cpus[] = {a->total_cpus, a->cfg.reserved_cpus_millis,
                       a->total_cpus - a->cfg.reserved_cpus_millis, acpus};
    uint64_t mems[] = {a->total_mem, a->cfg.reserved_mem, a->total_mem - a->cfg.reserved_mem, amem};
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
        char name[64];
        snprintf(name, sizeof(name), "berth_node_resource_%s", kinds[i]);
        head(b, name, "gauge", "Node resources (cpus in cores, mem in bytes).");
        evbuffer_add_printf(b, "%s{resource=\"cpus\"} %.3f\n", name, (double) cpus[i] / 1000.0);
        evbuffer_add_printf(b, "%s{resource=\"mem\"} %llu\n", name, (unsigned long long) mems[i]);
    }
    head(b, "berth_containers", "gauge", "Containers known to the agent, by state.");
    for (int st = 0; st < _CTR_STATE_MAX; st++) {
        unsigned cnt = 0;
        for (struct container *c = a->containers; c; c = c->next)
            cnt += (int) c->state == st;
        evbuffer_add_printf(b, "berth_containers{state=\"%s\"} %u\n", ctr_state_name(st), cnt);
    }
    head(b, "berth_launches_total", "counter", "Launch requests accepted since the agent started.");
    evbuffer_add_printf(b, "berth_launches_total %llu\n", (unsigned long long) a->launches_total);
    free(s);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}
