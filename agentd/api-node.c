/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/api-node.c - GET /v1/node: what the agent measured about its host and what it has
 * promised (total, reserved, allocatable, allocated, used; docs/api.md). resources.c does
 * the arithmetic, sampler.c the measuring; api.c routes here. */
#include "agentd/agent.h"

static void parent_path(const char *ctrl, const char *path, void *arg)
{
    json_kv_str(arg, ctrl, path);
}

void api_serve_node(struct agent *a, struct evhttp_request *req)
{
    struct res_amounts allocated;
    resources_allocated(a, &allocated);
    double used_cores;
    uint64_t used_mem;
    resources_used(a, &used_cores, &used_mem);
    char iso[512];
    iso_format_isolation(a->iso_flags, iso, sizeof(iso));
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_kv_str(g, "id", a->node_id);
    json_kv_str(g, "hostname", a->hostname);
    json_kv_str(g, "address", a->cfg.address[0] ? a->cfg.address : NULL);
    json_str(g, "attributes");
    yajl_gen_map_open(g);
    for (size_t i = 0; i < a->cfg.n_attrs; i++)
        json_kv_str(g, a->cfg.attrs[i].name, a->cfg.attrs[i].value);
    yajl_gen_map_close(g);
    json_kv_i64(g, "cgroup_version", iso_host_version(a->host));
    json_kv_str(g, "isolation", iso);
    json_kv_str(g, "ports", a->cfg.ports);
    /* which host ports the live tasks hold, as ranges (the offers' view of them) */
    uint64_t used[1024];
    ports_used(a, used);
    _cleanup_free_ char *held = ports_ranges_text(used);
    json_kv_str(g, "ports_allocated", held);
    json_str(g, "network");
    yajl_gen_map_open(g);
    json_kv_str(g, "default", a->cfg.network);
    json_kv_bool(g, "allow_host_network", a->cfg.allow_host_network);
    json_kv_bool(g, "enforce_ports", a->cfg.enforce_ports);
    json_kv_str(g, "bridge", a->cfg.net_bridge);
    json_kv_str(g, "subnet", a->cfg.net_subnet);
    unsigned addrs = 0;
    for (struct container *c = a->containers; c; c = c->next)
        addrs += !ml_state_terminal(c->state) && c->net_addr;
    json_kv_u64(g, "addresses_allocated", addrs);
    yajl_gen_map_close(g);
    json_str(g, "cgroup_parent");
    yajl_gen_map_open(g);
    iso_host_foreach_path(a->host, parent_path, g);
    yajl_gen_map_close(g);
    json_str(g, "resources");
    yajl_gen_map_open(g);
    res_amounts_gen(g, "total", &a->total);
    res_amounts_gen(g, "reserved", &a->reserved);
    res_amounts_gen(g, "allocatable", &a->allocatable);
    res_amounts_gen(g, "allocated", &allocated);
    json_str(g, "used");
    yajl_gen_map_open(g);
    json_kv_double(g, "cpus", used_cores);
    json_kv_u64(g, "mem", used_mem);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    res_roles_gen(g, a);
    json_str(g, "node");
    yajl_gen_map_open(g);
    json_kv_double(g, "cpu_seconds", (double) a->node_cpu_ns / 1e9);
    json_kv_double(g, "cpu_cores", a->node_cpu_cores);
    json_kv_u64(g, "memory_used_bytes", a->node_mem_used);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    api_reply_json(req, 200, g);
    yajl_gen_free(g);
}
