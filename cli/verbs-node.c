/* SPDX-License-Identifier: Apache-2.0 */
/* cli/verbs-node.c - `berthctl node`: the agent's identity and its resources as a table,
 * one row per resource, columns total / reserved / allocatable / allocated / used (GET
 * /v1/node). verbs-ctr.c covers containers; format.c renders the quantities. */
#include <getopt.h>
#include <string.h>

#include "cli/cli.h"

static const char *const node_columns[] = {"total", "reserved", "allocatable", "allocated", "used"};

/* Text of one quantity: cores for cpus, human sizes for mem/disk, plain numbers otherwise;
 * non-numbers (port ranges ...) as their JSON text. Returns malloc'd text or NULL. */
static char *quantity_text(const char *resource, yajl_val v)
{
    char buf[64];
    if (!v)
        return NULL;
    if (YAJL_IS_STRING(v))
        return xstrdup(v->u.string);
    if (YAJL_IS_NUMBER(v)) {
        double d = YAJL_IS_INTEGER(v) ? (double) YAJL_GET_INTEGER(v) : YAJL_GET_DOUBLE(v);
        if (streq(resource, "cpus"))
            ctl_format_cores(d, buf, sizeof(buf));
        else if (streq(resource, "mem") || streq(resource, "disk") || strstr(resource, "bytes"))
            ctl_format_human(d, buf, sizeof(buf));
        else
            snprintf(buf, sizeof(buf), "%.0f", d);
        return xstrdup(buf);
    }
    return json_to_text(v);
}

/* Resource names in order of first appearance across the columns. */
static size_t resource_names(yajl_val res, const char **names, size_t max)
{
    size_t n = 0;
    for (size_t c = 0; c < ARRAY_SIZE(node_columns); c++) {
        yajl_val col = json_get(res, node_columns[c]);
        if (!col || !YAJL_IS_OBJECT(col))
            continue;
        for (size_t i = 0; i < col->u.object.len; i++) {
            const char *k = col->u.object.keys[i];
            size_t j = 0;
            while (j < n && !streq(names[j], k))
                j++;
            if (j == n && n < max)
                names[n++] = k;
        }
    }
    return n;
}

/* Below the table: which ports the tasks hold and how many are free, and the network. */
static void print_ports_network(yajl_val node, yajl_val res)
{
    uint64_t alloc = 0, total = 0;
    const char *ranges = json_get_str(node, "ports"), *held = json_get_str(node, "ports_allocated");
    if (ranges && json_get_u64(json_get(res, "allocated"), "ports", &alloc) &&
        json_get_u64(json_get(res, "allocatable"), "ports", &total))
        printf("\nports:      %llu allocated %s, %llu free of %s\n", (unsigned long long) alloc,
               held ? held : "", (unsigned long long) (total > alloc ? total - alloc : 0), ranges);
    yajl_val net = json_get(node, "network");
    const char *def = json_get_str(net, "default");
    uint64_t addrs = 0;
    if (def) {
        yajl_val host = json_get(net, "allow_host_network");
        (void) json_get_u64(net, "addresses_allocated", &addrs);
        printf("network:    default %s%s; bridge %s %s, %llu address(es) allocated\n", def,
               host && YAJL_IS_FALSE(host) ? " (host not allowed)" : "",
               json_get_str(net, "bridge") ?: "-", json_get_str(net, "subnet") ?: "-",
               (unsigned long long) addrs);
    }
}

int ctl_verb_node(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    static const struct option longopts[] = {
            {"output", required_argument, NULL, 'o'},
            {"help", no_argument, NULL, 'h'},
            {0},
    };
    bool json = false;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:o:h", longopts, NULL)) != -1) {
        if (c == 'h')
            return ctl_print_usage("node");
        else if (c == 'o' && streq(optarg, "json"))
            json = true;
        else if (c == 'o')
            return berr_setx(err, EINVAL, "node: unknown output format '%s' (only 'json')", optarg);
        else
            return ctl_usage_error("node", c, argc, argv, err);
    }
    if (optind < argc)
        return berr_setx(err, EINVAL, "node: unexpected argument '%s'", argv[optind]);

    yajl_val node = NULL;
    int r = ctl_call(ctl, "GET", "/v1/node", NULL, &node, err);
    if (r < 0)
        return r;
    if (json) {
        r = ctl_json_print(stdout, node);
        yajl_tree_free(node);
        return r < 0 ? berr_set(err, EIO, "write stdout") : 0;
    }
    double cgv;
    const char *id = json_get_str(node, "id"), *host = json_get_str(node, "hostname");
    printf("node:       %s\n", id ? id : "-");
    printf("hostname:   %s\n", host ? host : "-");
    if (json_get_double(node, "cgroup_version", &cgv))
        printf("cgroups:    v%.0f\n", cgv);
    if (json_get_str(node, "isolation"))
        printf("isolation:  %s\n", json_get_str(node, "isolation"));
    printf("\n");

    yajl_val res = json_get(node, "resources");
    const char *names[32];
    size_t n = resource_names(res, names, ARRAY_SIZE(names));
    const char *header[1 + ARRAY_SIZE(node_columns)] = {"RESOURCE",    "TOTAL",     "RESERVED",
                                                        "ALLOCATABLE", "ALLOCATED", "USED"};
    struct ctl_table t;
    ctl_table_init(&t, ARRAY_SIZE(header), header);
    for (size_t i = 0; i < n; i++) {
        char *cells[1 + ARRAY_SIZE(node_columns)] = {xstrdup(names[i])};
        for (size_t col = 0; col < ARRAY_SIZE(node_columns); col++)
            cells[col + 1] =
                    quantity_text(names[i], json_get(json_get(res, node_columns[col]), names[i]));
        ctl_table_add(&t, (const char *const *) cells);
        for (size_t col = 0; col < ARRAY_SIZE(cells); col++)
            free(cells[col]);
    }
    ctl_table_print(&t, stdout);
    ctl_table_free(&t);
    print_ports_network(node, res);
    yajl_tree_free(node);
    return 0;
}
