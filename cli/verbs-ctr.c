/* SPDX-License-Identifier: Apache-2.0 */
/* cli/verbs-ctr.c - the verbs that look at or act on existing containers: `ps` (its filters
 * in ps-filter.c), `inspect`, `logs`, `kill`, `rm` (both on several ids) and `stats`.
 * verbs-run.c starts containers and waits for them, verbs-node.c shows the node; format.c
 * renders the numbers. */
#include <getopt.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

/* Options shared by the one-ID verbs: -o json and --help. Returns 1 when help was printed,
 * 0 with *ret_id set, or -EINVAL. ret_json may be NULL when the verb has no JSON output. */
static int parse_id_verb(int argc, char **argv, bool *ret_json, const char **ret_id,
                         struct berr **err)
{
    static const struct option longopts[] = {
            {"output", required_argument, NULL, 'o'},
            {"help", no_argument, NULL, 'h'},
            {0},
    };
    const char *verb = argv[0];
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ret_json ? "+:o:h" : "+:h", longopts, NULL)) != -1) {
        if (c == 'h')
            return ctl_print_usage(verb), 1;
        if (c == 'o' && ret_json && streq(optarg, "json"))
            *ret_json = true;
        else if (c == 'o' && ret_json)
            return berr_setx(err, EINVAL, "%s: unknown output format '%s' (only 'json')", verb,
                             optarg);
        else
            return ctl_usage_error(verb, c, argc, argv, err);
    }
    if (argc - optind != 1)
        return berr_setx(err, EINVAL, "%s: expected exactly one container ID", verb);
    *ret_id = argv[optind];
    return 0;
}

/* "RUNNING", or for an ended container "FAILED (exit 3)", "KILLED (signal 15)", ... */
static void state_text(yajl_val ctr, char *buf, size_t len)
{
    const char *state = json_get_str(ctr, "state");
    const char *reason = json_get_str(ctr, "reason");
    double d;
    yajl_val healthy = json_get(ctr, "healthy");
    if (!state)
        state = "?";
    if (streq(state, "RUNNING") && healthy && (YAJL_IS_TRUE(healthy) || YAJL_IS_FALSE(healthy)))
        snprintf(buf, len, "%s (%s)", state, YAJL_IS_TRUE(healthy) ? "healthy" : "unhealthy");
    else if (!ctl_state_terminal(state) || streq(state, "FINISHED"))
        snprintf(buf, len, "%s", state);
    else if (json_get_double(ctr, "exit_code", &d))
        snprintf(buf, len, "%s (exit %lld)", state, (long long) d);
    else if (json_get_double(ctr, "signal", &d))
        snprintf(buf, len, "%s (signal %lld)", state, (long long) d);
    else if (reason)
        snprintf(buf, len, "%s (%s)", state, reason);
    else
        snprintf(buf, len, "%s", state);
}

/* One `ps` row. CPU% is the average over the container's life: usage.cpu_seconds (its
 * cgroup's, launch work included) over the time since it was created (until finished_at
 * once it ended), and at least one CPU quota period (100 ms): a 0.1-CPU task that lived
 * 20 ms showed 198% (review L8) though the quota held it. */
static void ps_row(struct ctl_table *t, yajl_val ctr, double now, bool no_trunc)
{
    char id[40], cpus[32] = "-", mem[32] = "-", cpu_pct[32] = "-", mem_used[32] = "-",
                 pids[32] = "-", age[32] = "-", command[64], state[96];
    const char *full_id = json_get_str(ctr, "id");
    snprintf(id, sizeof(id), "%.*s", no_trunc ? 39 : 12, full_id ? full_id : "-");
    yajl_val res = json_get(ctr, "resources");
    yajl_val usage = json_get(ctr, "usage");
    double d, started, finished, created;
    if (json_get_double(res, "cpus", &d))
        ctl_format_cores(d, cpus, sizeof(cpus));
    if (json_get_double(res, "mem", &d) && d >= 0)
        format_size((uint64_t) d, mem, sizeof(mem));
    if (json_get_double(usage, "cpu_seconds", &d) && json_get_double(ctr, "created_at", &started)) {
        double end = json_get_double(ctr, "finished_at", &finished) ? finished : now;
        double pct = ctl_cpu_percent(d, end - started < 0.1 ? 0.1 : end - started);
        if (pct >= 0)
            snprintf(cpu_pct, sizeof(cpu_pct), "%.1f%%", pct);
    }
    if (json_get_double(usage, "memory_bytes", &d))
        ctl_format_human(d, mem_used, sizeof(mem_used));
    if (json_get_double(usage, "pids", &d))
        snprintf(pids, sizeof(pids), "%.0f", d);
    if (json_get_double(ctr, "created_at", &created))
        ctl_format_age(now - created, age, sizeof(age));
    _cleanup_free_ char *cmd = ctl_command_text(json_get(ctr, "command"));
    ctl_truncate(cmd, 30, command, sizeof(command));
    _cleanup_free_ char *port_list = ctl_ports_text(ctr);
    char ports[64];
    ctl_truncate(port_list, 40, ports, sizeof(ports));
    state_text(ctr, state, sizeof(state));
    const char *row[] = {id,
                         json_get_str(ctr, "name"),
                         state,
                         cpus,
                         mem,
                         cpu_pct,
                         mem_used,
                         pids,
                         age,
                         no_trunc ? port_list : ports,
                         no_trunc ? cmd : command};
    ctl_table_add(t, row);
}

int ctl_verb_ps(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    enum {
        O_NO_TRUNC = 256
    };
    static const struct option longopts[] = {
            {"all", no_argument, NULL, 'a'},
            {"quiet", no_argument, NULL, 'q'},
            {"filter", required_argument, NULL, 'f'},
            {"no-trunc", no_argument, NULL, O_NO_TRUNC},
            {"output", required_argument, NULL, 'o'},
            {"help", no_argument, NULL, 'h'},
            {0},
    };
    bool all = false, json = false, quiet = false, no_trunc = false;
    _cleanup_(ctl_ps_filter_free) struct ctl_ps_filter filter = {0};
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:aqf:o:h", longopts, NULL)) != -1) {
        if (c == 'h')
            return ctl_print_usage("ps");
        else if (c == 'a')
            all = true;
        else if (c == 'q')
            quiet = true;
        else if (c == O_NO_TRUNC)
            no_trunc = true;
        else if (c == 'f') {
            int r = ctl_ps_filter_add(&filter, optarg, err);
            if (r < 0)
                return r;
        } else if (c == 'o' && streq(optarg, "json"))
            json = true;
        else if (c == 'o')
            return berr_setx(err, EINVAL, "ps: unknown output format '%s' (only 'json')", optarg);
        else
            return ctl_usage_error("ps", c, argc, argv, err);
    }
    if (optind < argc)
        return berr_setx(err, EINVAL, "ps: unexpected argument '%s'", argv[optind]);
    if (quiet && json)
        return berr_setx(err, EINVAL, "ps: -q and -o json exclude each other");
    /* asking for a state shows containers in it even when they ended (as docker's
     * --filter status=exited does without -a) */
    if (filter.n[CTL_FILTER_STATE] > 0)
        all = true;

    yajl_val root = NULL;
    int r = ctl_call(ctl, "GET", "/v1/containers", NULL, &root, err);
    if (r < 0)
        return r;
    yajl_val list = json_get(root, "containers");
    if (!list || !YAJL_IS_ARRAY(list)) {
        yajl_tree_free(root);
        return berr_setx(err, EPROTO, "list containers: the agent's answer has no 'containers'");
    }
    /* hide ended containers without -a, and what the filters refuse, in every output */
    size_t keep = 0;
    for (size_t i = 0; i < list->u.array.len; i++) {
        yajl_val v = list->u.array.values[i];
        if ((!all && ctl_state_terminal(json_get_str(v, "state"))) ||
            !ctl_ps_filter_match(&filter, v))
            yajl_tree_free(v);
        else
            list->u.array.values[keep++] = v;
    }
    list->u.array.len = keep;
    if (json) {
        r = ctl_json_print(stdout, root);
        yajl_tree_free(root);
        return r < 0 ? berr_set(err, EIO, "write stdout") : 0;
    }
    if (quiet) {
        /* ids only, one per line: `berthctl ps -q | xargs -r berthctl kill` */
        for (size_t i = 0; i < list->u.array.len; i++) {
            const char *id = json_get_str(list->u.array.values[i], "id");
            if (id)
                printf("%.*s\n", no_trunc ? (int) strlen(id) : 12, id);
        }
        yajl_tree_free(root);
        return 0;
    }
    static const char *const header[] = {"ID",       "NAME", "STATE", "CPUS",  "MEM",    "CPU%",
                                         "MEM USED", "PIDS", "AGE",   "PORTS", "COMMAND"};
    struct ctl_table t;
    ctl_table_init(&t, ARRAY_SIZE(header), header);
    double now = now_realtime();
    for (size_t i = 0; i < list->u.array.len; i++)
        ps_row(&t, list->u.array.values[i], now, no_trunc);
    ctl_table_print(&t, stdout);
    ctl_table_free(&t);
    yajl_tree_free(root);
    return 0;
}

int ctl_verb_inspect(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    const char *id = NULL;
    bool json = true; /* inspect always prints JSON; -o json is accepted for symmetry */
    int r = parse_id_verb(argc, argv, &json, &id, err);
    if (r != 0)
        return r < 0 ? r : 0;
    _cleanup_free_ char *path = ctl_ctr_path(id, NULL);
    yajl_val ctr = NULL;
    r = ctl_call(ctl, "GET", path, NULL, &ctr, err);
    if (r < 0)
        return r;
    r = ctl_json_print(stdout, ctr);
    yajl_tree_free(ctr);
    return r < 0 ? berr_set(err, EIO, "write stdout") : 0;
}

int ctl_verb_logs(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    static const struct option longopts[] = {
            {"follow", no_argument, NULL, 'f'},
            {"tail", required_argument, NULL, 't'},
            {"stderr", no_argument, NULL, 'e'},
            {"help", no_argument, NULL, 'h'},
            {0},
    };
    bool follow = false, use_stderr = false;
    const char *tail = NULL;
    uint64_t n;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:fn:h", longopts, NULL)) != -1) {
        if (c == 'h')
            return ctl_print_usage("logs");
        else if (c == 'f')
            follow = true;
        else if (c == 'e')
            use_stderr = true;
        else if (c == 't' || c == 'n') {
            if (parse_u64(optarg, &n) < 0)
                return berr_setx(err, EINVAL, "logs: --tail '%s': expected a number of lines",
                                 optarg);
            tail = optarg;
        } else
            return ctl_usage_error("logs", c, argc, argv, err);
    }
    if (argc - optind != 1)
        return berr_setx(err, EINVAL, "logs: expected exactly one container ID");
    const char *id = argv[optind];
    _cleanup_free_ char *query =
            xasprintf("/logs?stream=%s%s%s%s", use_stderr ? "stderr" : "stdout",
                      follow ? "&follow=1" : "", tail ? "&tail=" : "", tail ? tail : "");
    _cleanup_free_ char *path = ctl_ctr_path(id, query);
    fflush(stdout);
    int r = ctl_stream(ctl, path, STDOUT_FILENO, err);
    if (r == -EPIPE) { /* `berthctl logs x | head`: the reader is done, so are we */
        berr_free(err);
        return 0;
    }
    return r < 0 ? r : 0;
}

/* The same call for each of ids[0..n) (kill, rm: `berthctl ps -q | xargs -r berthctl kill`),
 * each one whatever happened to the others, as docker does. Every failure but the last is
 * printed at once, one line each; the last comes back in err for main to print. 0 when all
 * succeeded. */
static int each_id(const char *suffix, const char *method, const char *body, struct ctl *ctl, int n,
                   char **ids, struct berr **err)
{
    int ret = 0;
    for (int i = 0; i < n; i++) {
        _cleanup_free_ char *path = ctl_ctr_path(ids[i], suffix);
        yajl_val res = NULL;
        _cleanup_berr_ struct berr *e = NULL;
        int r = ctl_call(ctl, method, path, body, &res, &e);
        yajl_tree_free(res);
        if (r >= 0)
            continue;
        if (ret < 0) { /* the earlier failure is not the last: print it now */
            log_error("%s", berr_msg(*err));
            berr_free(err);
        }
        *err = TAKE_PTR(e);
        ret = r;
    }
    return ret;
}

int ctl_verb_kill(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    static const struct option longopts[] = {
            {"signal", required_argument, NULL, 's'},
            {"grace", required_argument, NULL, 'g'},
            {"help", no_argument, NULL, 'h'},
            {0},
    };
    const char *sig = NULL, *grace = NULL;
    uint64_t sig_num = 0, grace_s = 0;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:s:g:h", longopts, NULL)) != -1) {
        if (c == 'h')
            return ctl_print_usage("kill");
        else if (c == 's')
            sig = optarg;
        else if (c == 'g') {
            if (parse_u64(optarg, &grace_s) < 0)
                return berr_setx(err, EINVAL, "kill: --grace '%s': expected whole seconds", optarg);
            grace = optarg;
        } else
            return ctl_usage_error("kill", c, argc, argv, err);
    }
    if (optind >= argc)
        return berr_setx(err, EINVAL, "kill: expected a container ID");

    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        abort();
    yajl_gen_map_open(g);
    if (sig) {
        yajl_gen_string(g, (const unsigned char *) "signal", 6);
        if (parse_u64(sig, &sig_num) == 0) /* a number goes as a number, a name as a string */
            yajl_gen_integer(g, (long long) sig_num);
        else
            yajl_gen_string(g, (const unsigned char *) sig, strlen(sig));
    }
    if (grace) {
        yajl_gen_string(g, (const unsigned char *) "grace_seconds", 13);
        yajl_gen_integer(g, (long long) grace_s);
    }
    yajl_gen_map_close(g);
    _cleanup_free_ char *body = json_gen_take(g);
    return each_id("/kill", "POST", body, ctl, argc - optind, argv + optind, err);
}

int ctl_verb_rm(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    static const struct option longopts[] = {
            {"help", no_argument, NULL, 'h'},
            {0},
    };
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
        if (c == 'h')
            return ctl_print_usage("rm");
        return ctl_usage_error("rm", c, argc, argv, err);
    }
    if (optind >= argc)
        return berr_setx(err, EINVAL, "rm: expected a container ID");
    return each_id(NULL, "DELETE", NULL, ctl, argc - optind, argv + optind, err);
}

/* `stats --no-stream ID`: one line of usage, from one request: CPU% is the agent's own rate
 * of the container's CPU over its last sampling interval (usage.cpu_cores, [agent]
 * stats_interval), so it shows the current rate, not an average (issue #18: two requests
 * 0.5 s apart took 507 ms). */
static int stats_once(struct ctl *ctl, const char *id, bool json, struct berr **err)
{
    int r;
    _cleanup_free_ char *path = ctl_ctr_path(id, "/stats");
    yajl_val cur = NULL;
    r = ctl_call(ctl, "GET", path, NULL, &cur, err);
    if (r < 0)
        return r;
    yajl_val usage = json_get(cur, "usage"), limits = json_get(cur, "limits");
    double d;
    if (json) {
        r = ctl_json_print(stdout, cur);
        yajl_tree_free(cur);
        return r < 0 ? berr_set(err, EIO, "write stdout") : 0;
    }
    char cpu_pct[32] = "-", cpus[32] = "-", used[32] = "-", limit[32] = "-", mem_pct[32] = "-",
         pids[32] = "-", throttled[32] = "-", id12[13], state[32];
    const char *full_id = json_get_str(cur, "id");
    snprintf(id12, sizeof(id12), "%s", full_id ? full_id : id);
    snprintf(state, sizeof(state), "%s",
             json_get_str(cur, "state") ? json_get_str(cur, "state") : "-");
    if (!ctl_state_terminal(json_get_str(cur, "state")) && json_get_double(usage, "cpu_cores", &d))
        snprintf(cpu_pct, sizeof(cpu_pct), "%.1f%%", d * 100.0);
    if (json_get_double(limits, "cpus_limit", &d) || json_get_double(limits, "cpus", &d))
        ctl_format_cores(d, cpus, sizeof(cpus));
    double mem_used = -1, mem_limit = -1;
    if (json_get_double(usage, "memory_bytes", &mem_used))
        ctl_format_human(mem_used, used, sizeof(used));
    if (json_get_double(limits, "mem", &mem_limit))
        ctl_format_human(mem_limit, limit, sizeof(limit));
    if (mem_used >= 0 && mem_limit > 0)
        snprintf(mem_pct, sizeof(mem_pct), "%.1f%%", mem_used / mem_limit * 100.0);
    if (json_get_double(usage, "pids", &d))
        snprintf(pids, sizeof(pids), "%.0f", d);
    if (json_get_double(usage, "throttled_seconds", &d))
        snprintf(throttled, sizeof(throttled), "%.2fs", d);
    static const char *const header[] = {"ID",       "NAME",      "STATE", "CPU%", "CPUS",
                                         "MEM USED", "MEM LIMIT", "MEM%",  "PIDS", "THROTTLED"};
    const char *row[] = {
            id12,     json_get_str(cur, "name"), state, cpu_pct, cpus, used, limit, mem_pct, pids,
            throttled};
    struct ctl_table t;
    ctl_table_init(&t, ARRAY_SIZE(header), header);
    ctl_table_add(&t, row);
    ctl_table_print(&t, stdout);
    ctl_table_free(&t);
    yajl_tree_free(cur);
    return 0;
}

/* `stats ID`: live on a terminal (top.c), like `docker stats ID`; one line with --no-stream,
 * for -o json, and when stdout is not a terminal, so scripts get a line and an exit. */
int ctl_verb_stats(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    static const struct option longopts[] = {
            {"output", required_argument, NULL, 'o'},
            {"no-stream", no_argument, NULL, 'n'},
            {"interval", required_argument, NULL, 'i'},
            {"help", no_argument, NULL, 'h'},
            {0},
    };
    bool json = false, once = false;
    double interval = 1.0;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:o:i:h", longopts, NULL)) != -1) {
        if (c == 'h')
            return ctl_print_usage("stats");
        else if (c == 'o' && streq(optarg, "json"))
            json = true;
        else if (c == 'o')
            return berr_setx(err, EINVAL, "stats: unknown output format '%s' (only 'json')",
                             optarg);
        else if (c == 'n')
            once = true;
        else if (c == 'i' && ctl_parse_interval(optarg, &interval) < 0)
            return berr_setx(err, EINVAL,
                             "stats: --interval '%s': expected seconds from 0.1 to 3600", optarg);
        else if (c != 'i')
            return ctl_usage_error("stats", c, argc, argv, err);
    }
    if (argc - optind != 1)
        return berr_setx(err, EINVAL, "stats: expected exactly one container ID");
    const char *id = argv[optind];
    if (json || once || !isatty(STDOUT_FILENO))
        return stats_once(ctl, id, json, err);
    return ctl_stats_live(ctl, id, interval, err);
}
