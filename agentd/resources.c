/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/resources.c - the node's resource model: what the host has (measured, narrowed by
 * the agent's own cpuset, CPU quota and memory limit, or as configured), what is reserved
 * for the host and for roles, what is allocatable, and whether a launch fits its role's
 * share. sampler.c measures usage; lifecycle.c calls resources_admit() before a launch. */
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/statvfs.h>

#include "agentd/agent.h"

static const char *const res_names[_RES_MAX] = {"cpus", "mem", "disk", "ports", "pids"};

const char *res_name(enum res_kind k)
{
    return k < _RES_MAX ? res_names[k] : "?";
}

void res_format(enum res_kind k, uint64_t v, char *buf, size_t len)
{
    if (k == RES_CPUS)
        format_cpus(v, buf, len);
    else if (k == RES_PORTS || k == RES_PIDS)
        snprintf(buf, len, "%llu", (unsigned long long) v);
    else
        format_size(v, buf, len);
}

static uint64_t mem_total(void)
{
    char buf[4096];
    if (read_file_at(AT_FDCWD, "/proc/meminfo", buf, sizeof(buf)) < 0)
        return 0;
    unsigned long long kb = 0;
    const char *p = strstr(buf, "MemTotal:");
    if (p)
        sscanf(p, "MemTotal: %llu kB", &kb);
    return (uint64_t) kb * 1024;
}

/* "[31000-32000,40000-40100]" -> number of ports (config/ checked the form). */
static uint64_t count_ports(const char *s)
{
    uint64_t n = 0;
    for (const char *p = s; p && *p;) {
        while (*p && (*p < '0' || *p > '9'))
            p++;
        if (!*p)
            break;
        char num[8] = "";
        size_t l = strspn(p, "0123456789");
        if (l >= sizeof(num))
            break;
        memcpy(num, p, l);
        uint64_t a = 0, b;
        parse_u64(num, &a);
        p += l;
        b = a;
        if (*p == '-') {
            p++;
            l = strspn(p, "0123456789");
            if (l < sizeof(num)) {
                memcpy(num, p, l);
                num[l] = 0;
                parse_u64(num, &b);
            }
            p += l;
        }
        if (b >= a)
            n += b - a + 1;
    }
    return n;
}

static int check_reserved(struct agent *a, enum res_kind k, uint64_t reserved, uint64_t roles,
                          struct berr **err)
{
    /* the host's own reservation must leave something; roles may take all the rest */
    if (reserved < a->total.v[k] && reserved + roles <= a->total.v[k])
        return 0;
    char t[32], r[32], ro[32];
    res_format(k, a->total.v[k], t, sizeof(t));
    res_format(k, reserved, r, sizeof(r));
    res_format(k, roles, ro, sizeof(ro));
    const char *where =
            k < 3 && a->cfg.reserved_where[k] ? a->cfg.reserved_where[k] : a->cfg.config_file;
    char roles_txt[64] = "";
    if (roles)
        snprintf(roles_txt, sizeof(roles_txt), " plus %s for roles", ro);
    return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                     "%s: [reserved] %s = %s%s does not fit the node's %s %s",
                     where ? where : "config", res_name(k), r, roles_txt, t, res_name(k));
}

int resources_measure(struct agent *a, struct berr **err)
{
    struct cfg_agent *cfg = &a->cfg;
    uint64_t own_cpu = 0, own_mem = 0;
    if (a->host)
        iso_host_own_limits(a->host, &own_cpu, &own_mem);
    if (cfg->cpus.is_auto) {
        /* the CPUs we may run on (cpuset, taskset), narrowed by our cgroup's quota */
        cpu_set_t set;
        long n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
                                                              : sysconf(_SC_NPROCESSORS_ONLN);
        a->total.v[RES_CPUS] = (uint64_t) (n > 0 ? n : 1) * 1000;
        if (own_cpu && own_cpu < a->total.v[RES_CPUS])
            a->total.v[RES_CPUS] = own_cpu;
    } else {
        a->total.v[RES_CPUS] = cfg->cpus.value;
    }
    if (cfg->mem.is_auto) {
        a->total.v[RES_MEM] = mem_total();
        if (own_mem && own_mem < a->total.v[RES_MEM])
            a->total.v[RES_MEM] = own_mem;
    } else {
        a->total.v[RES_MEM] = cfg->mem.value;
    }
    struct statvfs sv;
    if (cfg->disk.is_auto)
        a->total.v[RES_DISK] =
                statvfs(cfg->work_dir, &sv) == 0 ? (uint64_t) sv.f_blocks * sv.f_frsize : 0;
    else
        a->total.v[RES_DISK] = cfg->disk.value;
    a->total.v[RES_PORTS] = count_ports(cfg->ports);
    /* pids: the kernel's pid_max, shared with the host; tasks together may never take the
     * host's last ones (review M8), so 10% of them stay the host's unless configured */
    if (cfg->pids.is_auto) {
        char buf[32];
        uint64_t max = 32768;
        if (read_file_at(AT_FDCWD, "/proc/sys/kernel/pid_max", buf, sizeof(buf)) > 0)
            (void) parse_u64(buf, &max);
        a->total.v[RES_PIDS] = max;
    } else {
        a->total.v[RES_PIDS] = cfg->pids.value;
    }

    a->reserved.v[RES_CPUS] = cfg->reserved_cpus_millis;
    a->reserved.v[RES_MEM] = cfg->reserved_mem;
    a->reserved.v[RES_DISK] = cfg->reserved_disk;
    a->reserved.v[RES_PIDS] =
            cfg->reserved_pids_auto ? a->total.v[RES_PIDS] / 10 : cfg->reserved_pids;
    uint64_t role_cpus = 0, role_mem = 0;
    for (size_t i = 0; i < cfg->n_roles; i++) {
        role_cpus += cfg->roles[i].cpus_millis;
        role_mem += cfg->roles[i].mem_bytes;
    }
    if (check_reserved(a, RES_CPUS, a->reserved.v[RES_CPUS], role_cpus, err) < 0 ||
        check_reserved(a, RES_MEM, a->reserved.v[RES_MEM], role_mem, err) < 0)
        return -EINVAL;
    if (a->reserved.v[RES_DISK] && a->reserved.v[RES_DISK] >= a->total.v[RES_DISK])
        return check_reserved(a, RES_DISK, a->reserved.v[RES_DISK], 0, err);
    if (a->reserved.v[RES_PIDS] >= a->total.v[RES_PIDS])
        return check_reserved(a, RES_PIDS, a->reserved.v[RES_PIDS], 0, err);
    for (int k = 0; k < _RES_MAX; k++)
        a->allocatable.v[k] =
                a->total.v[k] > a->reserved.v[k] ? a->total.v[k] - a->reserved.v[k] : 0;
    return 0;
}

void resources_allocated(struct agent *a, struct res_amounts *ret)
{
    memset(ret, 0, sizeof(*ret));
    for (struct container *c = a->containers; c; c = c->next) {
        if (ml_state_terminal(c->state))
            continue;
        ret->v[RES_CPUS] += c->spec.cpus_millis;
        ret->v[RES_MEM] += c->spec.mem_bytes;
        ret->v[RES_PIDS] += c->spec.pids;
        ret->v[RES_PORTS] += c->spec.n_ports; /* each holds a host port (ports.c) */
    }
}

/* The one computation of a container's busy cores (agent.h). */
double ctr_cpu_cores(const struct container *c)
{
    if (!c->has_usage)
        return 0;
    double dt = (double) (c->usage_at_ns - c->usage_prev_at_ns) / 1e9;
    if (dt <= 0 || c->usage.cpu_usage_ns < c->usage_prev.cpu_usage_ns)
        return 0;
    return (double) (c->usage.cpu_usage_ns - c->usage_prev.cpu_usage_ns) / 1e9 / dt;
}

void resources_used(struct agent *a, double *ret_cores, uint64_t *ret_mem)
{
    double cores = 0;
    uint64_t mem = 0;
    for (struct container *c = a->containers; c; c = c->next) {
        if (ml_state_terminal(c->state) || !c->has_usage)
            continue;
        cores += ctr_cpu_cores(c);
        mem += c->usage.mem_usage;
    }
    *ret_cores = cores;
    *ret_mem = mem;
}

void res_amounts_gen(yajl_gen g, const char *k, const struct res_amounts *r)
{
    json_str(g, k);
    yajl_gen_map_open(g);
    for (int i = 0; i < _RES_MAX; i++) {
        if (i == RES_CPUS)
            json_kv_cpus(g, res_name(i), r->v[i]);
        else
            json_kv_u64(g, res_name(i), r->v[i]);
    }
    yajl_gen_map_close(g);
}

static uint64_t amount(const struct container *c, int k)
{
    return k == RES_CPUS ? c->spec.cpus_millis : k == RES_MEM ? c->spec.mem_bytes : c->spec.pids;
}

/* Roles reserve cpus and mem; pids come from the node's pool only. */
static uint64_t role_reserved(const struct cfg_role *r, int k)
{
    return k == RES_CPUS ? r->cpus_millis : k == RES_MEM ? r->mem_bytes : 0;
}

/* A role's tasks use its static reservation first, then the unreserved pool (Mesos's
 * model): free for role X = (X's reservation - X's use, floored at 0) + (the unreserved
 * pool - what every role uses beyond its own reservation). Roles without a [role.NAME]
 * section, "*" among them, have a reservation of 0 (and share the last row of role_use).
 * What each role's live containers hold is counted as they come and go (res_hold): a walk
 * over the containers at each admission was 3% of a 1,000-launch burst's CPU (issue #18). */
enum {
    N_KINDS = 3
};
static const int kinds[N_KINDS] = {RES_CPUS, RES_MEM, RES_PIDS};

/* c's row of role_use: its role's [role.NAME] section, or n_roles for none */
static size_t role_row(const struct agent *a, const char *role)
{
    size_t i = 0;
    while (i < a->cfg.n_roles && !streq(a->cfg.roles[i].name, role))
        i++;
    return i;
}

void res_hold(struct agent *a, const struct container *c, int sign)
{
    if (!a->role_use)
        a->role_use = xcalloc((a->cfg.n_roles + 1) * N_KINDS, sizeof(*a->role_use));
    uint64_t *use = &a->role_use[role_row(a, c->spec.role) * N_KINDS];
    for (int j = 0; j < N_KINDS; j++)
        use[j] = sign > 0 ? use[j] + amount(c, kinds[j]) : use[j] - amount(c, kinds[j]);
}

static void free_for(struct agent *a, const char *role, uint64_t ret[N_KINDS])
{
    size_t nr = a->cfg.n_roles, mine = role_row(a, role);
    static const uint64_t none[N_KINDS];
    for (int j = 0; j < N_KINDS; j++) {
        int k = kinds[j];
        const uint64_t *pool_row = a->role_use ? &a->role_use[nr * N_KINDS] : none;
        uint64_t reserved_for_roles = 0, pool_used = pool_row[j], my_res = 0, own_used = 0;
        for (size_t i = 0; i < nr; i++) {
            uint64_t res = role_reserved(&a->cfg.roles[i], k);
            uint64_t used = a->role_use ? a->role_use[i * N_KINDS + j] : 0;
            reserved_for_roles += res;
            pool_used += used > res ? used - res : 0;
            if (i == mine) {
                my_res = res;
                own_used = used;
            }
        }
        uint64_t pool = a->allocatable.v[k] > reserved_for_roles
                                ? a->allocatable.v[k] - reserved_for_roles
                                : 0;
        uint64_t from_res = my_res > own_used ? my_res - own_used : 0;
        uint64_t from_pool = pool > pool_used ? pool - pool_used : 0;
        ret[j] = from_res + from_pool;
    }
}

int resources_admit(struct agent *a, const struct container *c, struct berr **err)
{
    const uint64_t asked[N_KINDS] = {c->spec.cpus_millis, c->spec.mem_bytes, c->spec.pids};
    uint64_t left[N_KINDS];
    char need[32], freeb[32], all[32];
    free_for(a, c->spec.role, left);
    for (int i = 0; i < N_KINDS; i++) {
        int k = kinds[i];
        uint64_t avail = left[i];
        if (asked[i] <= avail)
            continue;
        res_format(k, asked[i], need, sizeof(need));
        res_format(k, avail, freeb, sizeof(freeb));
        res_format(k, a->allocatable.v[k], all, sizeof(all));
        return berr_setc(err, ENOSPC, BERR_INSUFFICIENT_RESOURCES,
                         "%s: asked %s, %s free for role '%s' of %s allocatable", res_name(k), need,
                         freeb, c->spec.role, all);
    }
    if (ctr_cpu_limit(c) > a->allocatable.v[RES_CPUS]) {
        /* the parent's quota is allocatable; v1 refuses a child quota above its parent's */
        res_format(RES_CPUS, ctr_cpu_limit(c), need, sizeof(need));
        res_format(RES_CPUS, a->allocatable.v[RES_CPUS], all, sizeof(all));
        return berr_setc(err, ENOSPC, BERR_INSUFFICIENT_RESOURCES,
                         "cpus_limit: asked %s, the node has %s allocatable", need, all);
    }
    return 0;
}

void res_roles_gen(yajl_gen g, const struct agent *a)
{
    json_str(g, "roles");
    yajl_gen_map_open(g);
    for (size_t i = 0; i < a->cfg.n_roles; i++) {
        json_str(g, a->cfg.roles[i].name);
        yajl_gen_map_open(g);
        json_kv_cpus(g, "cpus", a->cfg.roles[i].cpus_millis);
        json_kv_u64(g, "mem", a->cfg.roles[i].mem_bytes);
        yajl_gen_map_close(g);
    }
    yajl_gen_map_close(g);
}
