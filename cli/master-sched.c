/* SPDX-License-Identifier: Apache-2.0 */
/* cli/master-sched.c - berthctl's scheduling verbs with --master URL (docs/cli.md):
 * `frameworks` (name, roles, weight, dominant share, offered, allocated, tasks, state),
 * `offers` (outstanding offers by framework and agent, with age), `roles` (weights, quota,
 * allocation, share) and `role set NAME` (admin: weight and quota). master.c dispatches here;
 * http.c carries the calls; why a task waits is in `inspect TASK` ("waiting"). */
#include <getopt.h>
#include <string.h>

#include "cli/cli.h"

/* -o json and --help; no positional arguments. 0, 1 after help, or -errno. */
static int opts(const char *verb, int argc, char **argv, bool *json, struct berr **err)
{
    static const struct option longopts[] = {
            {"output", required_argument, NULL, 'o'},
            {"help", no_argument, NULL, 'h'},
            {0},
    };
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:o:h", longopts, NULL)) != -1) {
        if (c == 'h')
            return ctl_print_usage(verb) + 1;
        if (c == 'o' && streq(optarg, "json"))
            *json = true;
        else if (c == 'o')
            return berr_setx(err, EINVAL, "%s: unknown output format '%s' (only 'json')", verb,
                             optarg);
        else
            return ctl_usage_error(verb, c, argc, argv, err);
    }
    if (optind < argc)
        return berr_setx(err, EINVAL, "%s: unexpected argument '%s'", verb, argv[optind]);
    return 0;
}

/* GET path; with -o json print it and return 1 (done), else 0 with *ret. */
static int fetch(struct ctl *ctl, const char *verb, const char *path, int argc, char **argv,
                 yajl_val *ret, struct berr **err)
{
    bool json = false;
    int r = opts(verb, argc, argv, &json, err);
    if (r != 0)
        return r > 0 ? 1 : r;
    if ((r = ctl_call(ctl, "GET", path, NULL, ret, err)) < 0)
        return r;
    if (!json)
        return 0;
    r = ctl_json_print(stdout, *ret);
    yajl_tree_free(*ret);
    return r < 0 ? berr_set(err, EIO, "write stdout") : 1;
}

/* "2 / 1.0GiB" of {"cpus", "mem"}; "-" for null members. */
static char *pair(yajl_val obj)
{
    double c, m;
    char cb[32] = "-", mb[32] = "-";
    if (json_get_double(obj, "cpus", &c))
        ctl_format_cores(c, cb, sizeof(cb));
    if (json_get_double(obj, "mem", &m))
        ctl_format_human(m, mb, sizeof(mb));
    return xasprintf("%s / %s", cb, mb);
}

static char *percent(yajl_val obj, const char *key)
{
    double d = 0;
    (void) json_get_double(obj, key, &d);
    return xasprintf("%.1f%%", d * 100);
}

static char *strv_text(yajl_val arr)
{
    char *out = xstrdup("");
    for (size_t i = 0; arr && YAJL_IS_ARRAY(arr) && i < arr->u.array.len; i++) {
        yajl_val x = arr->u.array.values[i];
        char *n = xasprintf("%s%s%s", out, i ? "," : "", YAJL_IS_STRING(x) ? x->u.string : "?");
        free(out);
        out = n;
    }
    return out;
}

static int verb_frameworks(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    yajl_val v = NULL;
    int r = fetch(ctl, "frameworks", "/v1/frameworks", argc, argv, &v, err);
    if (r != 0)
        return r > 0 ? 0 : r;
    static const char *const header[] = {"ID",      "NAME",      "ROLES", "WEIGHT", "SHARE",
                                         "OFFERED", "ALLOCATED", "TASKS", "STATE"};
    struct ctl_table t;
    ctl_table_init(&t, ARRAY_SIZE(header), header);
    yajl_val list = json_get(v, "frameworks");
    for (size_t i = 0; list && YAJL_IS_ARRAY(list) && i < list->u.array.len; i++) {
        yajl_val f = list->u.array.values[i];
        double w = 1, n = 0;
        (void) json_get_double(f, "weight", &w);
        (void) json_get_double(f, "tasks", &n);
        char wb[32], tb[32];
        snprintf(wb, sizeof(wb), "%g", w);
        snprintf(tb, sizeof(tb), "%.0f", n);
        _cleanup_free_ char *roles = strv_text(json_get(f, "roles"));
        _cleanup_free_ char *share = percent(f, "dominant_share");
        _cleanup_free_ char *off = pair(json_get(f, "offered"));
        _cleanup_free_ char *alloc = pair(json_get(f, "allocated"));
        /* why it is offered nothing: SUPPRESS, or DECLINE filters it holds */
        yajl_val sup = json_get(f, "suppressed");
        double nf = 0;
        (void) json_get_double(f, "filters", &nf);
        char declined[64] = "";
        if (nf > 0)
            snprintf(declined, sizeof(declined), ", declined %.0f", nf);
        const char *st = json_get_str(f, "state");
        _cleanup_free_ char *state = xasprintf(
                "%s%s%s", st ? st : "-", sup && YAJL_IS_TRUE(sup) ? ", suppressed" : "", declined);
        const char *row[] = {json_get_str(f, "id"),
                             json_get_str(f, "name"),
                             roles,
                             wb,
                             share,
                             off,
                             alloc,
                             tb,
                             state};
        ctl_table_add(&t, row);
    }
    ctl_table_print(&t, stdout);
    ctl_table_free(&t);
    yajl_tree_free(v);
    return 0;
}

static int verb_offers(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    yajl_val v = NULL;
    int r = fetch(ctl, "offers", "/v1/offers", argc, argv, &v, err);
    if (r != 0)
        return r > 0 ? 0 : r;
    static const char *const header[] = {"ID",   "FRAMEWORK", "AGENT", "HOSTNAME", "ROLE",
                                         "CPUS", "MEM",       "PORTS", "AGE"};
    struct ctl_table t;
    ctl_table_init(&t, ARRAY_SIZE(header), header);
    yajl_val list = json_get(v, "offers");
    for (size_t i = 0; list && YAJL_IS_ARRAY(list) && i < list->u.array.len; i++) {
        yajl_val o = list->u.array.values[i], res = json_get(o, "resources");
        double c = 0, m = 0, age = 0;
        (void) json_get_double(res, "cpus", &c);
        (void) json_get_double(res, "mem", &m);
        (void) json_get_double(o, "age_seconds", &age);
        char cb[32], mb[32], ab[32], agent[16];
        ctl_format_cores(c, cb, sizeof(cb));
        ctl_format_human(m, mb, sizeof(mb));
        ctl_format_age(age, ab, sizeof(ab));
        const char *aid = json_get_str(o, "agent_id"), *ports = json_get_str(res, "ports");
        snprintf(agent, sizeof(agent), "%.12s", aid ? aid : "-");
        _cleanup_free_ char *fw = xasprintf("%s (%s)", json_get_str(o, "framework_name") ?: "",
                                            json_get_str(o, "framework_id") ?: "-");
        const char *row[] = {json_get_str(o, "id"),
                             fw,
                             agent,
                             json_get_str(o, "hostname"),
                             json_get_str(o, "role"),
                             cb,
                             mb,
                             ports ? ports : "-",
                             ab};
        ctl_table_add(&t, row);
    }
    ctl_table_print(&t, stdout);
    ctl_table_free(&t);
    yajl_tree_free(v);
    return 0;
}

static int verb_roles(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    yajl_val v = NULL;
    int r = fetch(ctl, "roles", "/v1/roles", argc, argv, &v, err);
    if (r != 0)
        return r > 0 ? 0 : r;
    static const char *const header[] = {"ROLE",      "WEIGHT", "GUARANTEE", "LIMIT",
                                         "ALLOCATED", "SHARE",  "FRAMEWORKS"};
    struct ctl_table t;
    ctl_table_init(&t, ARRAY_SIZE(header), header);
    yajl_val list = json_get(v, "roles");
    for (size_t i = 0; list && YAJL_IS_ARRAY(list) && i < list->u.array.len; i++) {
        yajl_val x = list->u.array.values[i];
        double w = 1, n = 0;
        (void) json_get_double(x, "weight", &w);
        (void) json_get_double(x, "frameworks", &n);
        char wb[32], nb[32];
        snprintf(wb, sizeof(wb), "%g", w);
        snprintf(nb, sizeof(nb), "%.0f", n);
        _cleanup_free_ char *g = pair(json_get(x, "guarantee")), *l = pair(json_get(x, "limit"));
        _cleanup_free_ char *a = pair(json_get(x, "allocated"));
        _cleanup_free_ char *s = percent(x, "dominant_share");
        const char *row[] = {json_get_str(x, "name"), wb, g, l, a, s, nb};
        ctl_table_add(&t, row);
    }
    ctl_table_print(&t, stdout);
    ctl_table_free(&t);
    yajl_tree_free(v);
    return 0;
}

/* role set NAME [--weight W] [--guarantee-cpus C] [--guarantee-mem M] [--limit-cpus C|none]
 * [--limit-mem M|none]: PUT /v1/roles/NAME with what is given. */
static int verb_role(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    static const struct option longopts[] = {
            {"weight", required_argument, NULL, 'w'},
            {"guarantee-cpus", required_argument, NULL, 'c'},
            {"guarantee-mem", required_argument, NULL, 'm'},
            {"limit-cpus", required_argument, NULL, 'C'},
            {"limit-mem", required_argument, NULL, 'M'},
            {"help", no_argument, NULL, 'h'},
            {0},
    };
    if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h"))
        return argc < 2 ? berr_setx(err, EINVAL,
                                    "role: usage: berthctl --master URL role set "
                                    "NAME [--weight W] [--guarantee-cpus C] ...")
                        : ctl_print_usage("role");
    if (!streq(argv[1], "set") || argc < 3 || argv[2][0] == '-')
        return berr_setx(err, EINVAL, "role: usage: berthctl --master URL role set NAME ...");
    const char *val[5] = {NULL};
    const char keys[] = "wcmCM";
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc - 2, argv + 2, "+:h", longopts, NULL)) != -1) {
        const char *k = c > 0 ? strchr(keys, c) : NULL;
        if (c == 'h')
            return ctl_print_usage("role");
        if (!k)
            return ctl_usage_error("role", c, argc - 2, argv + 2, err);
        val[k - keys] = optarg;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    if (val[0]) {
        char *end;
        double w = strtod(val[0], &end);
        if (end == val[0] || *end) {
            yajl_gen_free(g);
            return berr_setx(err, EINVAL, "role set: --weight '%s' is not a number", val[0]);
        }
        json_kv_double(g, "weight", w);
    }
    for (int part = 0; part < 2; part++) { /* guarantee, then limit */
        const char *cpus = val[1 + 2 * part], *mem = val[2 + 2 * part];
        if (!cpus && !mem)
            continue;
        json_str(g, part ? "limit" : "guarantee");
        yajl_gen_map_open(g);
        const char *kv[2][2] = {{"cpus", cpus}, {"mem", mem}};
        for (int i = 0; i < 2; i++) {
            if (!kv[i][1])
                continue;
            if (streq(kv[i][1], "none"))
                json_kv_null(g, kv[i][0]);
            else
                json_kv_str(g, kv[i][0], kv[i][1]);
        }
        yajl_gen_map_close(g);
    }
    yajl_gen_map_close(g);
    _cleanup_free_ char *body = json_gen_take(g);
    _cleanup_free_ char *name = ctl_url_escape(argv[2]);
    _cleanup_free_ char *path = xasprintf("/v1/roles/%s", name);
    yajl_val v = NULL;
    int r = ctl_call(ctl, "PUT", path, body, &v, err);
    if (r < 0)
        return r;
    r = ctl_json_print(stdout, v);
    yajl_tree_free(v);
    return r < 0 ? berr_set(err, EIO, "write stdout") : 0;
}

int ctl_master_sched_dispatch(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    const char *verb = argv[0];
    if (streq(verb, "frameworks"))
        return verb_frameworks(ctl, argc, argv, err);
    if (streq(verb, "offers"))
        return verb_offers(ctl, argc, argv, err);
    if (streq(verb, "roles"))
        return verb_roles(ctl, argc, argv, err);
    if (streq(verb, "role"))
        return verb_role(ctl, argc, argv, err);
    return -ENOENT;
}
