/* SPDX-License-Identifier: Apache-2.0 */
/* cli/top-render.c - the text of berthctl's live views (`top`, live `stats ID`): the node
 * line, one row per container (CPU% of its own limit and of the host, memory used / limit,
 * pids) and the CPU rates remembered between frames. Pure: no I/O, no terminal; top.c owns
 * the terminal and the refresh loop, format.c the number formats. */
#include <math.h>
#include <string.h>

#include "cli/cli.h"

/* A core count given as a JSON number, or a decimal string ("0.5"); false otherwise
 * ("none", absent, null). */
static bool cores_value(yajl_val obj, const char *key, double *ret)
{
    yajl_val v = json_get(obj, key);
    uint64_t millis;
    if (v && YAJL_IS_STRING(v)) {
        if (parse_cpus(v->u.string, &millis) < 0)
            return false;
        *ret = (double) millis / 1000.0;
        return true;
    }
    return json_get_double(obj, key, ret);
}

void ctl_top_state_free(struct ctl_top_state *s)
{
    free(s->rates);
    *s = (struct ctl_top_state){0};
}

static struct ctl_top_rate *rate_find(struct ctl_top_state *s, const char *id)
{
    for (size_t i = 0; i < s->nrates; i++)
        if (streq(s->rates[i].id, id))
            return &s->rates[i];
    return NULL;
}

double ctl_top_cores(struct ctl_top_state *s, yajl_val ctr)
{
    const char *id = json_get_str(ctr, "id");
    yajl_val usage = json_get(ctr, "usage");
    double cpu, at = 0, agent_cores = -1;
    if (!json_get_double(usage, "cpu_cores", &agent_cores) || !(agent_cores >= 0))
        agent_cores = -1;
    if (!id || !json_get_double(usage, "cpu_seconds", &cpu))
        return agent_cores;
    bool have_at = json_get_double(usage, "sampled_at", &at);
    struct ctl_top_rate *r = rate_find(s, id);
    if (!r) {
        s->rates = xrealloc(s->rates, (s->nrates + 1) * sizeof(*s->rates));
        r = &s->rates[s->nrates++];
        snprintf(r->id, sizeof(r->id), "%s", id);
        r->cores = agent_cores; /* first sight: the agent's own window */
    } else if (have_at && r->sampled_at > 0 && fabs(at - r->sampled_at) < 0.05) {
        return r->cores; /* the same sample as last frame: keep its rate and its base */
    } else if (have_at && r->sampled_at > 0 && at > r->sampled_at && cpu >= r->cpu_seconds) {
        /* a newer sample: measure over the viewer's own refresh, not the agent's window
         * (which for /stats ends at an on-demand sample and may be a few ms long) */
        r->cores = (cpu - r->cpu_seconds) / (at - r->sampled_at);
    } else {
        r->cores = agent_cores; /* no timestamps, or a counter reset: trust the agent */
    }
    r->cpu_seconds = cpu;
    r->sampled_at = have_at ? at : 0;
    return r->cores;
}

void ctl_top_forget(struct ctl_top_state *s, yajl_val *ctrs, size_t n)
{
    size_t keep = 0;
    for (size_t i = 0; i < s->nrates; i++) {
        bool seen = false;
        for (size_t j = 0; j < n && !seen; j++) {
            const char *id = json_get_str(ctrs[j], "id");
            seen = id && streq(id, s->rates[i].id);
        }
        if (seen)
            s->rates[keep++] = s->rates[i];
    }
    s->nrates = keep;
}

double ctl_top_limit_cores(yajl_val ctr)
{
    yajl_val res = json_get(ctr, "resources");
    double d;
    if (!res)
        res = json_get(ctr, "limits"); /* a /stats answer */
    if (cores_value(res, "cpus_limit", &d) && d > 0)
        return d;
    if (cores_value(res, "cpus", &d) && d > 0) /* "none": no quota, measure against cpus */
        return d;
    return -1;
}

/* One row of the table. */
static void top_row(struct ctl_table *t, struct ctl_top_state *s, yajl_val ctr, double host_cpus)
{
    char id[13] = "-", cpu_pct[32] = "-", host_pct[32] = "-", mem[80] = "-", mem_pct[32] = "-",
         pids[32] = "-", used[32] = "-", limit[32] = "-";
    const char *full_id = json_get_str(ctr, "id");
    if (full_id)
        snprintf(id, sizeof(id), "%s", full_id);
    yajl_val usage = json_get(ctr, "usage");
    yajl_val res = json_get(ctr, "resources");
    if (!res)
        res = json_get(ctr, "limits");
    double cores = usage ? ctl_top_cores(s, ctr) : -1, lim = ctl_top_limit_cores(ctr), d;
    if (cores >= 0 && lim > 0)
        snprintf(cpu_pct, sizeof(cpu_pct), "%.1f%%", cores / lim * 100.0);
    if (cores >= 0 && host_cpus > 0)
        snprintf(host_pct, sizeof(host_pct), "%.1f%%", cores / host_cpus * 100.0);
    /* like docker stats: the working set (usage minus inactive page cache) is what the
     * kernel cannot drop, so it is what approaches the limit */
    double mem_used = -1, mem_limit = -1;
    if (json_get_double(usage, "working_set_bytes", &mem_used) ||
        json_get_double(usage, "memory_bytes", &mem_used))
        ctl_format_human(mem_used, used, sizeof(used));
    if (json_get_double(res, "mem", &mem_limit) && mem_limit > 0)
        ctl_format_human(mem_limit, limit, sizeof(limit));
    if (mem_used >= 0 || mem_limit > 0)
        snprintf(mem, sizeof(mem), "%s / %s", used, limit);
    if (mem_used >= 0 && mem_limit > 0)
        snprintf(mem_pct, sizeof(mem_pct), "%.1f%%", mem_used / mem_limit * 100.0);
    if (json_get_double(usage, "pids", &d))
        snprintf(pids, sizeof(pids), "%.0f", d);
    const char *row[] = {id,
                         json_get_str(ctr, "name"),
                         json_get_str(ctr, "state"),
                         cpu_pct,
                         host_pct,
                         mem,
                         mem_pct,
                         pids};
    ctl_table_add(t, row);
}

/* "node: CPU 1.03 of 4 cores (25.8%)   MEM 1.2GiB of 3.0GiB (40.0%)" */
static void node_line(yajl_val node, FILE *f)
{
    yajl_val total = json_get(json_get(node, "resources"), "total");
    yajl_val now = json_get(node, "node");
    double cpus = -1, cores, mem = -1, used;
    char a[32], b[32];
    fputs("node:", f);
    cores_value(total, "cpus", &cpus);
    if (json_get_double(now, "cpu_cores", &cores) && cores >= 0) {
        snprintf(a, sizeof(a), "%.2f", cores);
        if (cpus > 0) {
            ctl_format_cores(cpus, b, sizeof(b));
            fprintf(f, "  CPU %s of %s cores (%.1f%%)", a, b, cores / cpus * 100.0);
        } else {
            fprintf(f, "  CPU %s cores", a);
        }
    } else {
        fputs("  CPU -", f);
    }
    json_get_double(total, "mem", &mem);
    if (json_get_double(now, "memory_used_bytes", &used)) {
        ctl_format_human(used, a, sizeof(a));
        if (mem > 0) {
            ctl_format_human(mem, b, sizeof(b));
            fprintf(f, "   MEM %s of %s (%.1f%%)", a, b, used / mem * 100.0);
        } else {
            fprintf(f, "   MEM %s", a);
        }
    } else {
        fputs("   MEM -", f);
    }
    fputc('\n', f);
}

char *ctl_top_frame(struct ctl_top_state *s, const char *title, yajl_val node, yajl_val *ctrs,
                    size_t n, bool all)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        abort(); /* only fails on ENOMEM, like the x-allocators */
    yajl_val total = json_get(json_get(node, "resources"), "total");
    double host_cpus = -1;
    cores_value(total, "cpus", &host_cpus);
    size_t shown = 0;
    for (size_t i = 0; i < n; i++)
        if (all || !ctl_state_terminal(json_get_str(ctrs[i], "state")))
            shown++;
    fprintf(f, "%s - %zu container%s\n", title, shown, shown == 1 ? "" : "s");
    node_line(node, f);
    fputc('\n', f);
    static const char *const header[] = {
            "ID", "NAME", "STATE", "CPU%", "CPU% HOST", "MEM USAGE / LIMIT", "MEM%", "PIDS"};
    struct ctl_table t;
    ctl_table_init(&t, ARRAY_SIZE(header), header);
    for (size_t i = 0; i < n; i++)
        if (all || !ctl_state_terminal(json_get_str(ctrs[i], "state")))
            top_row(&t, s, ctrs[i], host_cpus);
    ctl_top_forget(s, ctrs, n);
    ctl_table_print(&t, f);
    ctl_table_free(&t);
    if (fclose(f) != 0)
        abort();
    return text;
}
