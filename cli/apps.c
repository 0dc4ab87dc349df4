/* SPDX-License-Identifier: Apache-2.0 */
/* cli/apps.c - berthctl's verbs with --apps URL: `app deploy|ls|inspect|scale|restart|update|
 * rm|tasks|endpoints` on berth-apps' API (docs/apps.md), sent by http.c (libcurl, as for --master)
 * with the bearer token of --token-file or $BERTH_APPS_TOKEN_FILE. App files are sent as they are:
 * berth-apps validates them, so berthctl never disagrees with it about what an app may hold.
 * apps-render.c has the tables, the "why it waits" lines and the argument checks. */
#include <getopt.h>
#include <string.h>

#include "cli/cli.h"

#define APP_VERBS "deploy, ls, inspect, scale, restart, update, rm, tasks, endpoints"
#define APP_FILE_MAX (4u << 20) /* an app file is a few hundred bytes; 1000 env vars fit */

struct app_opts {
    bool json;  /* -o json */
    bool quiet; /* -q: ids only (ls) */
    bool help;
};

/* Options of `app SUB` (argv[0] = SUB) anywhere on the line (GNU getopt permutes: `app tasks
 * web -o json`) and exactly nargs positional arguments, left at argv[optind..].
 * quiet_ok/json_ok: whether -q and -o json are accepted. */
static int app_opts(int argc, char **argv, int nargs, const char *args, bool json_ok, bool quiet_ok,
                    struct app_opts *o, struct berr **err)
{
    static const struct option longopts[] = {
            {"output", required_argument, NULL, 'o'},
            {"quiet", no_argument, NULL, 'q'},
            {"help", no_argument, NULL, 'h'},
            {0},
    };
    const char *sub = argv[0];
    int c;
    *o = (struct app_opts){0};
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:qh", longopts, NULL)) != -1) {
        if (c == 'h') {
            o->help = true;
            return 0;
        } else if (c == 'o' && json_ok && streq(optarg, "json")) {
            o->json = true;
        } else if (c == 'o' && json_ok) {
            return berr_setx(err, EINVAL, "app %s: unknown output format '%s' (only 'json')", sub,
                             optarg);
        } else if (c == 'q' && quiet_ok) {
            o->quiet = true;
        } else {
            const char *arg = optind - 1 < argc && optind > 0 ? argv[optind - 1] : "?";
            return berr_setx(err, EINVAL, "app %s: %s '%s' (see 'berthctl app --help')", sub,
                             c == ':' ? "option needs a value:" : "unknown option", arg);
        }
    }
    if (o->json && o->quiet)
        return berr_setx(err, EINVAL, "app %s: -q and -o json do not go together", sub);
    if (argc - optind != nargs)
        return berr_setx(err, EINVAL, "app %s: usage: berthctl --apps URL app %s%s%s", sub, sub,
                         *args ? " " : "", args);
    return 0;
}

/* Print v as JSON on stdout. */
static int print_json(yajl_val v, struct berr **err)
{
    return ctl_json_print(stdout, v) < 0 ? berr_set(err, EIO, "write stdout") : 0;
}

/* The answer of a change (deploy, scale, restart, update, rm): its deployment id on stdout,
 * or the whole answer with -o json. */
static int print_deployment(yajl_val v, const struct app_opts *o, struct berr **err)
{
    if (o->json)
        return print_json(v, err);
    const char *id = json_get_str(v, "deployment_id");
    printf("%s\n", id ? id : "-");
    return 0;
}

/* An app file's text: FILE, or stdin for "-". */
static int read_app_file(const char *path, char **ret, struct berr **err)
{
    int r = read_file_alloc(streq(path, "-") ? "/dev/stdin" : path, APP_FILE_MAX, ret, NULL);
    if (r < 0)
        return berr_set(err, -r, "app file '%s'", path);
    return 0;
}

/* Whether the POST of app file body failed because the app exists: a 409 CONFLICT (which
 * also says "a service port is another app's", docs/apps.md) while the app is there
 * (GET /v1/apps/{id}); anything else keeps the POST's error. */
static bool app_exists_error(struct ctl *ctl, const char *body)
{
    if (!streq(ctl->err_code, berr_code_name(BERR_CONFLICT)))
        return false;
    _cleanup_berr_ struct berr *e = NULL;
    _cleanup_free_ char *id = NULL;
    if (ctl_app_file_id(body, &id, &e) < 0)
        return false;
    _cleanup_free_ char *path = ctl_app_path(id, NULL);
    yajl_val v = NULL;
    int r = ctl_call(ctl, "GET", path, NULL, &v, &e);
    yajl_tree_free(v);
    return r == 0;
}

static int app_deploy(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    struct app_opts o;
    int r = app_opts(argc, argv, 1, "FILE", true, false, &o, err);
    if (r < 0 || o.help)
        return r < 0 ? r : ctl_print_usage("app");
    const char *file = argv[optind];
    _cleanup_free_ char *body = NULL;
    if ((r = read_app_file(file, &body, err)) < 0)
        return r;
    yajl_val v = NULL;
    r = ctl_call(ctl, "POST", "/v1/apps", body, &v, err);
    if (r < 0 && app_exists_error(ctl, body)) {
        /* the app is there: this file is its new definition (docs/apps.md, berthctl) */
        _cleanup_free_ char *id = NULL;
        berr_free(err);
        if (ctl_app_file_id(body, &id, err) < 0)
            return berr_wrap(err, "app file '%s'", file);
        _cleanup_free_ char *path = ctl_app_path(id, NULL);
        r = ctl_call(ctl, "PUT", path, body, &v, err);
    }
    if (r < 0)
        return r;
    r = print_deployment(v, &o, err);
    yajl_tree_free(v);
    return r;
}

static int app_update(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    struct app_opts o;
    int r = app_opts(argc, argv, 2, "ID FILE", true, false, &o, err);
    if (r < 0 || o.help)
        return r < 0 ? r : ctl_print_usage("app");
    _cleanup_free_ char *body = NULL;
    if ((r = read_app_file(argv[optind + 1], &body, err)) < 0)
        return r;
    _cleanup_free_ char *path = ctl_app_path(argv[optind], NULL);
    yajl_val v = NULL;
    if ((r = ctl_call(ctl, "PUT", path, body, &v, err)) < 0)
        return r;
    r = print_deployment(v, &o, err);
    yajl_tree_free(v);
    return r;
}

static int app_scale(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    struct app_opts o;
    int r = app_opts(argc, argv, 2, "ID N", true, false, &o, err);
    if (r < 0 || o.help)
        return r < 0 ? r : ctl_print_usage("app");
    uint64_t n;
    if (ctl_app_parse_instances(argv[optind + 1], &n) < 0)
        return berr_setx(err, EINVAL, "app scale: '%s' is not a number of instances (0-%u)",
                         argv[optind + 1], CTL_APP_MAX_INSTANCES);
    _cleanup_free_ char *path = ctl_app_path(argv[optind], NULL);
    _cleanup_free_ char *body = ctl_app_scale_body(n);
    yajl_val v = NULL;
    if ((r = ctl_call(ctl, "PATCH", path, body, &v, err)) < 0)
        return r;
    r = print_deployment(v, &o, err);
    yajl_tree_free(v);
    return r;
}

/* restart ID (POST .../restart) and rm ID (DELETE): a change without a body */
static int app_restart_rm(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    struct app_opts o;
    int r = app_opts(argc, argv, 1, "ID", true, false, &o, err);
    if (r < 0 || o.help)
        return r < 0 ? r : ctl_print_usage("app");
    bool rm = streq(argv[0], "rm");
    _cleanup_free_ char *path = ctl_app_path(argv[optind], rm ? NULL : "/restart");
    yajl_val v = NULL;
    if ((r = ctl_call(ctl, rm ? "DELETE" : "POST", path, rm ? NULL : "{}", &v, err)) < 0)
        return r;
    r = print_deployment(v, &o, err);
    yajl_tree_free(v);
    return r;
}

static int app_ls(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    struct app_opts o;
    int r = app_opts(argc, argv, 0, "", true, true, &o, err);
    if (r < 0 || o.help)
        return r < 0 ? r : ctl_print_usage("app");
    yajl_val v = NULL;
    if ((r = ctl_call(ctl, "GET", "/v1/apps", NULL, &v, err)) < 0)
        return r;
    if (o.json) {
        r = print_json(v, err);
    } else if (o.quiet) {
        yajl_val apps = json_get(v, "apps");
        for (size_t i = 0; apps && YAJL_IS_ARRAY(apps) && i < apps->u.array.len; i++) {
            const char *id = json_get_str(apps->u.array.values[i], "id");
            if (id)
                printf("%s\n", id);
        }
    } else {
        struct ctl_table t;
        ctl_apps_table(v, &t);
        ctl_table_print(&t, stdout);
        ctl_table_free(&t);
    }
    yajl_tree_free(v);
    return r;
}

static int app_inspect(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    struct app_opts o;
    int r = app_opts(argc, argv, 1, "ID", true, false, &o, err);
    if (r < 0 || o.help)
        return r < 0 ? r : ctl_print_usage("app");
    _cleanup_free_ char *path = ctl_app_path(argv[optind], NULL);
    yajl_val v = NULL;
    if ((r = ctl_call(ctl, "GET", path, NULL, &v, err)) < 0)
        return r;
    yajl_val app = json_get(v, "app") ? json_get(v, "app") : v;
    r = print_json(app, err);
    if (r == 0 && !o.json) {
        /* after the JSON, for people: what waits and why (-o json: the JSON alone) */
        _cleanup_free_ char *text = ctl_app_waiting_text(app);
        fputs(text, stdout);
    }
    yajl_tree_free(v);
    return r;
}

static int app_tasks(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    struct app_opts o;
    int r = app_opts(argc, argv, 1, "ID", true, false, &o, err);
    if (r < 0 || o.help)
        return r < 0 ? r : ctl_print_usage("app");
    _cleanup_free_ char *path = ctl_app_path(argv[optind], "/tasks");
    yajl_val v = NULL;
    if ((r = ctl_call(ctl, "GET", path, NULL, &v, err)) < 0)
        return r;
    if (o.json) {
        r = print_json(v, err);
    } else {
        struct ctl_table t;
        ctl_app_tasks_table(v, &t);
        ctl_table_print(&t, stdout);
        ctl_table_free(&t);
    }
    yajl_tree_free(v);
    return r;
}

/* What berth-lb routes to: the app's ports and its serving instances (two GETs). */
static int app_endpoints(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    struct app_opts o;
    int r = app_opts(argc, argv, 1, "ID", true, false, &o, err);
    if (r < 0 || o.help)
        return r < 0 ? r : ctl_print_usage("app");
    _cleanup_free_ char *apath = ctl_app_path(argv[optind], NULL);
    _cleanup_free_ char *tpath = ctl_app_path(argv[optind], "/tasks");
    yajl_val app = NULL, tasks = NULL;
    if ((r = ctl_call(ctl, "GET", apath, NULL, &app, err)) < 0)
        return r;
    if ((r = ctl_call(ctl, "GET", tpath, NULL, &tasks, err)) < 0) {
        yajl_tree_free(app);
        return r;
    }
    if (o.json) {
        _cleanup_free_ char *text = ctl_app_endpoints_json(app, tasks);
        printf("%s\n", text);
    } else {
        struct ctl_table t;
        ctl_app_endpoints_table(app, tasks, &t);
        ctl_table_print(&t, stdout);
        ctl_table_free(&t);
    }
    yajl_tree_free(app);
    yajl_tree_free(tasks);
    return 0;
}

int ctl_apps_dispatch(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    static const struct {
        const char *name;
        ctl_verb_fn fn;
    } subs[] = {
            {"deploy", app_deploy},       {"ls", app_ls},
            {"inspect", app_inspect},     {"scale", app_scale},
            {"restart", app_restart_rm},  {"update", app_update},
            {"rm", app_restart_rm},       {"tasks", app_tasks},
            {"endpoints", app_endpoints},
    };
    if (!streq(argv[0], "app"))
        return berr_setx(err, EINVAL, "'%s' is not a berth-apps verb (app %s)", argv[0], APP_VERBS);
    if (argc < 2)
        return berr_setx(err, EINVAL, "app: which? (%s; see 'berthctl app --help')", APP_VERBS);
    if (streq(argv[1], "--help") || streq(argv[1], "-h") || streq(argv[1], "help"))
        return ctl_print_usage("app");
    for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
        if (streq(subs[i].name, argv[1]))
            return subs[i].fn(ctl, argc - 1, argv + 1, err);
    return berr_setx(err, EINVAL, "app: unknown verb '%s' (%s)", argv[1], APP_VERBS);
}
