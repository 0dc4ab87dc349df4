/* SPDX-License-Identifier: Apache-2.0 */
/* cli/master.c - berthctl's verbs with --master URL (docs/api.md, "berth-master"): `agents`
 * (each agent's allocatable, what the master placed there and the usage its heartbeats
 * report), `tasks`, `run` (queued by the master's built-in framework; --wait polls until the
 * task ends), `kill`, `inspect` (with why a task waits) and `wait`; master-sched.c has the
 * scheduling verbs. http.c sends the calls to the master with the bearer token. */
#include <getopt.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

/* -o json / --help and no positional arguments beyond want. */
static int list_opts(const char *verb, int argc, char **argv, bool *json, bool *all,
                     struct berr **err)
{
    static const struct option longopts[] = {
            {"output", required_argument, NULL, 'o'},
            {"all", no_argument, NULL, 'a'},
            {"help", no_argument, NULL, 'h'},
            {0},
    };
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:o:ah", longopts, NULL)) != -1) {
        if (c == 'h')
            return ctl_print_usage(verb) + 1;
        else if (c == 'o' && streq(optarg, "json"))
            *json = true;
        else if (c == 'o')
            return berr_setx(err, EINVAL, "%s: unknown output format '%s' (only 'json')", verb,
                             optarg);
        else if (c == 'a' && all)
            *all = true;
        else
            return ctl_usage_error(verb, c, argc, argv, err);
    }
    return 0;
}

static char *num_text(yajl_val obj, const char *key, bool bytes)
{
    double d;
    char buf[64];
    if (!json_get_double(obj, key, &d))
        return xstrdup("-");
    if (bytes)
        ctl_format_human(d, buf, sizeof(buf));
    else
        ctl_format_cores(d, buf, sizeof(buf));
    return xstrdup(buf);
}

static char *pair_text(yajl_val obj)
{
    _cleanup_free_ char *c = num_text(obj, "cpus", false), *m = num_text(obj, "mem", true);
    return xasprintf("%s / %s", c, m);
}

/* "rack=r1,zone=z1" ([attributes] of the agent, in its order), or "-" when it has none. */
static char *attrs_text(yajl_val obj)
{
    if (!obj || !YAJL_IS_OBJECT(obj) || obj->u.object.len == 0)
        return xstrdup("-");
    char *s = xstrdup("");
    for (size_t i = 0; i < obj->u.object.len; i++) {
        yajl_val v = obj->u.object.values[i];
        char *n = xasprintf("%s%s%s=%s", s, i ? "," : "", obj->u.object.keys[i],
                            YAJL_IS_STRING(v) ? v->u.string : "?");
        free(s);
        s = n;
    }
    return s;
}

static int verb_agents(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    bool json = false;
    int r = list_opts("agents", argc, argv, &json, NULL, err);
    if (r != 0)
        return r > 0 ? 0 : r;
    yajl_val v = NULL;
    if ((r = ctl_call(ctl, "GET", "/v1/agents", NULL, &v, err)) < 0)
        return r;
    if (json) {
        r = ctl_json_print(stdout, v);
        yajl_tree_free(v);
        return r < 0 ? berr_set(err, EIO, "write stdout") : 0;
    }
    static const char *const header[] = {"ID",          "HOSTNAME",  "STATE", "TASKS",
                                         "ALLOCATABLE", "ALLOCATED", "USED",  "NODE USED",
                                         "LAST SEEN",   "ATTRIBUTES"};
    struct ctl_table t;
    ctl_table_init(&t, ARRAY_SIZE(header), header);
    yajl_val agents = json_get(v, "agents");
    double now = (double) time(NULL);
    for (size_t i = 0; agents && YAJL_IS_ARRAY(agents) && i < agents->u.array.len; i++) {
        yajl_val a = agents->u.array.values[i];
        yajl_val res = json_get(a, "resources"), use = json_get(a, "usage");
        char id[16], tasks[16], seen[32];
        const char *aid = json_get_str(a, "id");
        snprintf(id, sizeof(id), "%.12s", aid ? aid : "-");
        double n = 0, last = 0;
        (void) json_get_double(a, "tasks", &n);
        snprintf(tasks, sizeof(tasks), "%.0f", n);
        if (json_get_double(a, "last_seen_at", &last))
            ctl_format_age(now - last, seen, sizeof(seen));
        else
            snprintf(seen, sizeof(seen), "-");
        _cleanup_free_ char *alloc = pair_text(json_get(res, "allocatable"));
        _cleanup_free_ char *placed = pair_text(json_get(res, "allocated"));
        _cleanup_free_ char *used = use ? pair_text(use) : xstrdup("-");
        _cleanup_free_ char *nc = num_text(use, "node_cpus", false);
        _cleanup_free_ char *nm = num_text(use, "node_mem", true);
        _cleanup_free_ char *node = use ? xasprintf("%s / %s", nc, nm) : xstrdup("-");
        char ago[40];
        snprintf(ago, sizeof(ago), "%s ago", seen);
        _cleanup_free_ char *attrs = attrs_text(json_get(a, "attributes"));
        const char *row[] = {id,
                             json_get_str(a, "hostname"),
                             json_get_str(a, "state"),
                             tasks,
                             alloc,
                             placed,
                             used,
                             node,
                             ago,
                             attrs};
        ctl_table_add(&t, row);
    }
    ctl_table_print(&t, stdout);
    ctl_table_free(&t);
    yajl_tree_free(v);
    return 0;
}

static int verb_tasks(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    bool json = false, all = false;
    int r = list_opts("tasks", argc, argv, &json, &all, err);
    if (r != 0)
        return r > 0 ? 0 : r;
    yajl_val v = NULL;
    if ((r = ctl_call(ctl, "GET", "/v1/tasks", NULL, &v, err)) < 0)
        return r;
    if (json) {
        r = ctl_json_print(stdout, v);
        yajl_tree_free(v);
        return r < 0 ? berr_set(err, EIO, "write stdout") : 0;
    }
    static const char *const header[] = {"ID",  "NAME",     "STATE",    "AGENT", "CPUS",
                                         "MEM", "CPU USED", "MEM USED", "AGE",   "COMMAND"};
    struct ctl_table t;
    ctl_table_init(&t, ARRAY_SIZE(header), header);
    yajl_val tasks = json_get(v, "tasks");
    double now = (double) time(NULL);
    for (size_t i = 0; tasks && YAJL_IS_ARRAY(tasks) && i < tasks->u.array.len; i++) {
        yajl_val x = tasks->u.array.values[i];
        const char *state = json_get_str(x, "state");
        if (!all && state && ctl_state_terminal(state))
            continue;
        yajl_val res = json_get(x, "resources"), use = json_get(x, "usage");
        _cleanup_free_ char *cpus = num_text(res, "cpus", false);
        _cleanup_free_ char *mem = num_text(res, "mem", true);
        _cleanup_free_ char *ucpu = num_text(use, "cpu_cores", false);
        _cleanup_free_ char *umem = num_text(use, "memory_bytes", true);
        _cleanup_free_ char *cmd = ctl_command_text(json_get(x, "command"));
        char age[32], cmdbuf[48];
        double created = 0;
        if (json_get_double(x, "created_at", &created))
            ctl_format_age(now - created, age, sizeof(age));
        else
            snprintf(age, sizeof(age), "-");
        ctl_truncate(cmd, 40, cmdbuf, sizeof(cmdbuf));
        const char *row[] = {json_get_str(x, "id"),
                             json_get_str(x, "name"),
                             state,
                             json_get_str(x, "hostname"),
                             cpus,
                             mem,
                             ucpu,
                             umem,
                             age,
                             cmdbuf};
        ctl_table_add(&t, row);
    }
    ctl_table_print(&t, stdout);
    ctl_table_free(&t);
    yajl_tree_free(v);
    return 0;
}

static char *task_path(const char *ref, const char *suffix)
{
    _cleanup_free_ char *e = ctl_url_escape(ref);
    return xasprintf("/v1/tasks/%s%s", e, suffix ? suffix : "");
}

/* Poll the task until it is terminal (the master has no long poll yet). */
static int wait_task(struct ctl *ctl, const char *id, yajl_val *ret, struct berr **err)
{
    _cleanup_free_ char *path = task_path(id, NULL);
    for (;;) {
        yajl_val v = NULL;
        int r = ctl_call(ctl, "GET", path, NULL, &v, err);
        if (r < 0)
            return r;
        const char *state = json_get_str(v, "state");
        if (state && ctl_state_terminal(state)) {
            *ret = v;
            return 0;
        }
        yajl_tree_free(v);
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static int verb_run(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    struct ctl_run_opts o;
    int r = ctl_run_parse(argc, argv, &o, err);
    if (r < 0)
        return r;
    if (o.help) {
        ctl_run_opts_free(&o);
        return ctl_print_usage("run");
    }
    _cleanup_free_ char *body = NULL;
    if ((r = ctl_run_body(&o, &body, err)) < 0) {
        ctl_run_opts_free(&o);
        return r;
    }
    yajl_val v = NULL;
    r = ctl_call(ctl, "POST", "/v1/tasks", body, &v, err);
    if (r < 0) {
        ctl_run_opts_free(&o);
        return r;
    }
    _cleanup_free_ char *id = xstrdup(json_get_str(v, "id") ? json_get_str(v, "id") : "");
    if (o.json)
        ctl_json_print(stdout, v);
    else if (!o.wait)
        printf("%s\n", id);
    yajl_tree_free(v);
    bool wait = o.wait;
    ctl_run_opts_free(&o);
    if (!wait)
        return 0;
    fflush(stdout);
    if ((r = wait_task(ctl, id, &v, err)) < 0)
        return r;
    r = ctl_report_end(v, id);
    yajl_tree_free(v);
    return r;
}

static int verb_kill(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    if (argc != 2 || argv[1][0] == '-')
        return berr_setx(err, EINVAL, "kill: usage: berthctl --master URL kill TASK");
    _cleanup_free_ char *path = task_path(argv[1], "/kill");
    yajl_val v = NULL;
    int r = ctl_call(ctl, "POST", path, "{}", &v, err);
    if (r < 0)
        return r;
    printf("%s\n", json_get_str(v, "id") ? json_get_str(v, "id") : argv[1]);
    yajl_tree_free(v);
    return 0;
}

static int verb_inspect(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    if (argc != 2 || argv[1][0] == '-')
        return berr_setx(err, EINVAL, "%s: usage: berthctl --master URL %s TASK", argv[0], argv[0]);
    yajl_val v = NULL;
    int r;
    if (streq(argv[0], "wait")) {
        if ((r = wait_task(ctl, argv[1], &v, err)) < 0)
            return r;
        r = ctl_report_end(v, argv[1]);
        yajl_tree_free(v);
        return r;
    }
    _cleanup_free_ char *path = task_path(argv[1], NULL);
    if ((r = ctl_call(ctl, "GET", path, NULL, &v, err)) < 0)
        return r;
    r = ctl_json_print(stdout, v);
    yajl_tree_free(v);
    return r < 0 ? berr_set(err, EIO, "write stdout") : 0;
}

/* token create --rights R [--role ROLE]... [--name N] | token ls | token rm ID */
static int verb_token(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    const char *sub = argc > 1 ? argv[1] : "";
    yajl_val v = NULL;
    int r;
    if (streq(sub, "ls")) {
        bool json = false;
        if ((r = list_opts("token", argc - 1, argv + 1, &json, NULL, err)) != 0)
            return r > 0 ? 0 : r;
        if ((r = ctl_call(ctl, "GET", "/v1/tokens", NULL, &v, err)) < 0)
            return r;
        if (json) {
            r = ctl_json_print(stdout, v);
            yajl_tree_free(v);
            return r < 0 ? berr_set(err, EIO, "write stdout") : 0;
        }
        static const char *const header[] = {"ID", "NAME", "RIGHTS", "ROLES", "FROM"};
        struct ctl_table t;
        ctl_table_init(&t, ARRAY_SIZE(header), header);
        yajl_val list = json_get(v, "tokens");
        for (size_t i = 0; list && YAJL_IS_ARRAY(list) && i < list->u.array.len; i++) {
            yajl_val e = list->u.array.values[i], roles = json_get(e, "roles");
            _cleanup_free_ char *rtext = xstrdup("");
            for (size_t k = 0; roles && YAJL_IS_ARRAY(roles) && k < roles->u.array.len; k++) {
                const char *x = YAJL_IS_STRING(roles->u.array.values[k])
                                        ? roles->u.array.values[k]->u.string
                                        : "?";
                char *n = xasprintf("%s%s%s", rtext, k ? "," : "", x);
                free(rtext);
                rtext = n;
            }
            const char *cells[] = {json_get_str(e, "id"), json_get_str(e, "name"),
                                   json_get_str(e, "rights"), rtext,
                                   YAJL_IS_TRUE(json_get(e, "static")) ? "config" : "api"};
            ctl_table_add(&t, cells);
        }
        ctl_table_print(&t, stdout);
        ctl_table_free(&t);
        yajl_tree_free(v);
        return 0;
    }
    if (streq(sub, "rm") && argc == 3) {
        _cleanup_free_ char *path = xasprintf("/v1/tokens/%s", argv[2]);
        if ((r = ctl_call(ctl, "DELETE", path, NULL, &v, err)) < 0)
            return r;
        yajl_tree_free(v);
        return 0;
    }
    if (!streq(sub, "create"))
        return berr_setx(
                err, EINVAL,
                "token: usage: berthctl --master URL token create --rights "
                "read|submit|join [--role ROLE]... [--name NAME] | token ls | token rm ID");
    static const struct option longopts[] = {
            {"rights", required_argument, NULL, 'r'},
            {"role", required_argument, NULL, 'R'},
            {"name", required_argument, NULL, 'n'},
            {0},
    };
    const char *rights = NULL, *name = NULL;
    _cleanup_free_ const char **roles = xcalloc((size_t) argc + 1, sizeof(char *));
    size_t n_roles = 0;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "+:", longopts, NULL)) != -1) {
        if (c == 'r')
            rights = optarg;
        else if (c == 'n')
            name = optarg;
        else if (c == 'R')
            roles[n_roles++] = optarg;
        else
            return berr_setx(err, EINVAL,
                             "token create: --rights read|submit|join [--role "
                             "ROLE]... [--name NAME]");
    }
    if (!rights)
        return berr_setx(err, EINVAL, "token create: --rights read, submit or join is required");
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    const char *kv[][2] = {{"rights", rights}, {"name", name}};
    for (size_t i = 0; i < ARRAY_SIZE(kv); i++) {
        if (!kv[i][1])
            continue;
        yajl_gen_string(g, (const unsigned char *) kv[i][0], strlen(kv[i][0]));
        yajl_gen_string(g, (const unsigned char *) kv[i][1], strlen(kv[i][1]));
    }
    if (n_roles) {
        yajl_gen_string(g, (const unsigned char *) "roles", 5);
        yajl_gen_array_open(g);
        for (size_t i = 0; i < n_roles; i++)
            yajl_gen_string(g, (const unsigned char *) roles[i], strlen(roles[i]));
        yajl_gen_array_close(g);
    }
    yajl_gen_map_close(g);
    _cleanup_free_ char *body = json_gen_take(g);
    if ((r = ctl_call(ctl, "POST", "/v1/tokens", body, &v, err)) < 0)
        return r;
    /* the token's text is shown once: stdout, for a file */
    printf("%s\n", json_get_str(v, "token") ? json_get_str(v, "token") : "");
    fprintf(stderr, "berthctl: token '%s' created; its text is not shown again\n",
            json_get_str(json_get(v, "info"), "id") ? json_get_str(json_get(v, "info"), "id")
                                                    : "?");
    yajl_tree_free(v);
    return 0;
}

/* rm TASK (an ended task) | agent rm AGENT (admin; one that is not connected) */
static int verb_remove(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    bool agent = streq(argv[0], "agent");
    if (agent ? argc != 3 || !streq(argv[1], "rm") : argc != 2 || argv[1][0] == '-')
        return berr_setx(err, EINVAL, "usage: berthctl --master URL %s",
                         agent ? "agent rm AGENT" : "rm TASK");
    const char *ref = argv[agent ? 2 : 1];
    _cleanup_free_ char *esc = ctl_url_escape(ref);
    _cleanup_free_ char *path = agent ? xasprintf("/v1/agents/%s", esc) : task_path(ref, NULL);
    yajl_val v = NULL;
    int r = ctl_call(ctl, "DELETE", path, NULL, &v, err);
    yajl_tree_free(v);
    if (r == 0)
        printf("%s\n", ref);
    return r;
}

int ctl_master_dispatch(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    const char *verb = argv[0];
    if (streq(verb, "agents"))
        return verb_agents(ctl, argc, argv, err);
    if (streq(verb, "tasks"))
        return verb_tasks(ctl, argc, argv, err);
    if (streq(verb, "run"))
        return verb_run(ctl, argc, argv, err);
    if (streq(verb, "kill"))
        return verb_kill(ctl, argc, argv, err);
    if (streq(verb, "inspect") || streq(verb, "wait"))
        return verb_inspect(ctl, argc, argv, err);
    if (streq(verb, "token"))
        return verb_token(ctl, argc, argv, err);
    if (streq(verb, "rm") || streq(verb, "agent"))
        return verb_remove(ctl, argc, argv, err);
    int r = ctl_master_sched_dispatch(ctl, argc, argv, err);
    if (r != -ENOENT)
        return r;
    return berr_setx(err, EINVAL,
                     "'%s' is not a master verb (agents, agent rm, tasks, run, kill, inspect, "
                     "wait, rm, token, frameworks, offers, roles, role set)",
                     verb);
}
