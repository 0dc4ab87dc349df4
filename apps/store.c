/* SPDX-License-Identifier: Apache-2.0 */
/* apps/store.c - berth-apps' state in work_dir/apps.db (SQLite, WAL): the framework id, one
 * row per app (its definition as JSON, the serving version, the backoff), every version's
 * definition, one row per instance (task id, agent, ports, version, state, healthy) and per
 * deployment. Rows are written as they change, before the call they describe goes out (an
 * instance is stored before its ACCEPT), so a restart finds every task it may have launched
 * and reconciles it. */
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "apps/appsd.h"

static const char schema[] =
        "PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=NORMAL;"
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);"
        "CREATE TABLE IF NOT EXISTS apps (id TEXT PRIMARY KEY, def TEXT NOT NULL,"
        "  version TEXT NOT NULL, serving_version TEXT, deleting INTEGER, hold INTEGER,"
        "  bo_n INTEGER, bo_until REAL);"
        "CREATE TABLE IF NOT EXISTS versions (app_id TEXT NOT NULL, version TEXT NOT NULL,"
        "  def TEXT NOT NULL, PRIMARY KEY (app_id, version));"
        "CREATE TABLE IF NOT EXISTS instances (task_id TEXT PRIMARY KEY, app_id TEXT NOT NULL,"
        "  version TEXT, agent_id TEXT, hostname TEXT, attrs TEXT, ports TEXT, state TEXT,"
        "  healthy INTEGER, started_at REAL, running_since REAL, killing INTEGER,"
        "  ever_healthy INTEGER, address TEXT);"
        "CREATE TABLE IF NOT EXISTS deployments (id TEXT PRIMARY KEY, app_id TEXT NOT NULL,"
        "  kind TEXT, version TEXT, from_version TEXT, state TEXT, message TEXT,"
        "  started_at REAL, failures INTEGER);";

int apps_store_open(struct apps *a, struct berr **err)
{
    if (mkdir_p(a->cfg.work_dir, 0700) < 0)
        return berr_set(err, errno, "create work_dir '%s'", a->cfg.work_dir);
    _cleanup_free_ char *path = xasprintf("%s/apps.db", a->cfg.work_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return berr_set(err, errno, "open '%s'", path);
    close(fd);
    if (sqlite3_open_v2(path, &a->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK)
        return berr_setx(err, EIO, "open '%s': %s", path, a->db ? sqlite3_errmsg(a->db) : "");
    sqlite3_busy_timeout(a->db, 2000);
    char *msg = NULL;
    if (sqlite3_exec(a->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        int r = berr_setx(err, EIO, "'%s': %s", path, msg ? msg : "cannot create the schema");
        sqlite3_free(msg);
        return r;
    }
    /* an apps.db from before issue #17 has no instances.address: add it (an error says it
     * is there already) */
    if (sqlite3_exec(a->db, "ALTER TABLE instances ADD COLUMN address TEXT", NULL, NULL, NULL) ==
        SQLITE_OK)
        log_info("'%s': instances now keep their agent's address", path);
    return 0;
}

void apps_store_close(struct apps *a)
{
    if (a->db)
        sqlite3_close(a->db);
    a->db = NULL;
}

/* One statement; types: s (const char *), d (double), i (int). */
static void run(struct apps *a, const char *sql, const char *types, ...)
{
    sqlite3_stmt *st = NULL;
    va_list ap;
    va_start(ap, types);
    int r = sqlite3_prepare_v2(a->db, sql, -1, &st, NULL);
    for (int k = 0; r == SQLITE_OK && types[k]; k++) {
        if (types[k] == 's')
            sqlite3_bind_text(st, k + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
        else if (types[k] == 'd')
            sqlite3_bind_double(st, k + 1, va_arg(ap, double));
        else
            sqlite3_bind_int(st, k + 1, va_arg(ap, int));
    }
    va_end(ap);
    if (r == SQLITE_OK)
        r = sqlite3_step(st);
    if (r != SQLITE_DONE)
        log_error("apps.db: %s: %s", sql, sqlite3_errmsg(a->db));
    sqlite3_finalize(st);
}

void apps_store_meta(struct apps *a, const char *key, const char *value)
{
    run(a, "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)", "ss", key, value);
}

void apps_store_app(struct apps *a, struct app *app)
{
    _cleanup_free_ char *def = app_def_encode(&app->def, false);
    run(a,
        "INSERT OR REPLACE INTO apps(id, def, version, serving_version, deleting, hold, bo_n, "
        "bo_until) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        "ssssiiid", app->def.id, def, app->version, app->serving_version, (int) app->deleting,
        (int) app->hold, (int) app->bo_n, app->bo_until);
    apps_events_app(a, app);
}

void apps_store_app_del(struct apps *a, const char *id)
{
    apps_events_app_removed(a, id);
    run(a, "DELETE FROM apps WHERE id = ?1", "s", id);
    run(a, "DELETE FROM versions WHERE app_id = ?1", "s", id);
}

void apps_store_version(struct apps *a, const char *app_id, const char *version, const char *def)
{
    run(a, "INSERT OR REPLACE INTO versions(app_id, version, def) VALUES (?1, ?2, ?3)", "sss",
        app_id, version, def);
}

char *apps_store_version_get(struct apps *a, const char *app_id, const char *version)
{
    sqlite3_stmt *st = NULL;
    char *out = NULL;
    if (sqlite3_prepare_v2(a->db, "SELECT def FROM versions WHERE app_id = ?1 AND version = ?2", -1,
                           &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, app_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, version, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            out = xstrdup((const char *) sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return out;
}

static char *attrs_json(const struct inst *i)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    for (size_t k = 0; k < i->n_attrs; k++)
        json_kv_str(g, i->attrs[k].name, i->attrs[k].value);
    yajl_gen_map_close(g);
    return json_gen_take(g);
}

void apps_store_inst(struct apps *a, struct inst *i)
{
    _cleanup_free_ char *attrs = attrs_json(i);
    char ports[ML_MAX_PORTS * 7 + 1] = "";
    for (size_t k = 0; k < i->n_ports; k++)
        snprintf(ports + strlen(ports), sizeof(ports) - strlen(ports), "%s%u", k ? "," : "",
                 (unsigned) i->ports[k]);
    run(a,
        "INSERT OR REPLACE INTO instances(task_id, app_id, version, agent_id, hostname, attrs, "
        "ports, state, healthy, started_at, running_since, killing, ever_healthy, address) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        "ssssssssiddiis", i->task_id, i->app_id, i->version, i->agent_id, i->hostname, attrs, ports,
        ml_state_name(i->state), (int) i->healthy, i->started_at, i->running_since,
        (int) i->killing, (int) i->ever_healthy, i->address ? i->address : "");
    apps_events_inst(a, i); /* what is written is published (events.c) */
}

void apps_store_inst_del(struct apps *a, const char *task_id)
{
    run(a, "DELETE FROM instances WHERE task_id = ?1", "s", task_id);
}

void apps_store_dep(struct apps *a, struct dep *d)
{
    run(a,
        "INSERT OR REPLACE INTO deployments(id, app_id, kind, version, from_version, state, "
        "message, started_at, failures) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        "sssssssdi", d->id, d->app_id, d->kind, d->version, d->from_version, d->state, d->message,
        d->started_at, (int) d->failures);
    apps_events_dep(a, d);
}

void apps_store_dep_del(struct apps *a, const char *id)
{
    run(a, "DELETE FROM deployments WHERE id = ?1", "s", id);
}

static const char *col(sqlite3_stmt *st, int k)
{
    const char *s = (const char *) sqlite3_column_text(st, k);
    return s ? s : "";
}

static int load_apps(struct apps *a, struct berr **err)
{
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(a->db,
                       "SELECT id, def, version, serving_version, deleting, hold, bo_n, bo_until "
                       "FROM apps ORDER BY id",
                       -1, &st, NULL);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        struct app *app = xzalloc(sizeof(*app));
        _cleanup_berr_ struct berr *e = NULL;
        const char *def = col(st, 1);
        yajl_val v = json_parse(def, strlen(def), &e);
        if (!v || app_def_parse(v, &app->def, &e) < 0) {
            yajl_tree_free(v);
            free(app);
            sqlite3_finalize(st);
            return berr_setx(err, EIO, "apps.db: app '%s': %s", col(st, 0), berr_msg(e));
        }
        yajl_tree_free(v);
        app->version = xstrdup(col(st, 2));
        app->deleting = sqlite3_column_int(st, 4);
        app->hold = sqlite3_column_int(st, 5);
        app->bo_n = (unsigned) sqlite3_column_int(st, 6);
        app->bo_until = sqlite3_column_double(st, 7);
        app->serving = &app->def;
        app->serving_version = xstrdup(app->version);
        struct app **p = &a->apps; /* in id order, as listed */
        while (*p)
            p = &(*p)->next;
        *p = app;
        if (col(st, 3)[0] && !streq(col(st, 3), app->version) &&
            apps_set_serving(a, app, col(st, 3)) < 0)
            log_warning("app '%s': no definition of version %s; serving %s", app->def.id,
                        col(st, 3), app->version);
    }
    sqlite3_finalize(st);
    return 0;
}

static void load_insts(struct apps *a)
{
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(a->db,
                       "SELECT task_id, app_id, version, agent_id, hostname, attrs, ports, state,"
                       " healthy, started_at, running_since, killing, ever_healthy, address"
                       " FROM instances",
                       -1, &st, NULL);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        struct inst *i = xzalloc(sizeof(*i));
        snprintf(i->task_id, sizeof(i->task_id), "%s", col(st, 0));
        i->app_id = xstrdup(col(st, 1));
        i->version = xstrdup(col(st, 2));
        snprintf(i->agent_id, sizeof(i->agent_id), "%s", col(st, 3));
        i->hostname = xstrdup(col(st, 4));
        yajl_val attrs = json_parse(col(st, 5), strlen(col(st, 5)), NULL);
        if (attrs && YAJL_IS_OBJECT(attrs)) {
            i->attrs = xcalloc(attrs->u.object.len + 1, sizeof(*i->attrs));
            for (size_t k = 0; k < attrs->u.object.len; k++)
                if (YAJL_IS_STRING(attrs->u.object.values[k])) {
                    i->attrs[i->n_attrs].name = xstrdup(attrs->u.object.keys[k]);
                    i->attrs[i->n_attrs++].value = xstrdup(attrs->u.object.values[k]->u.string);
                }
        }
        yajl_tree_free(attrs);
        for (const char *p = col(st, 6); *p && i->n_ports < ML_MAX_PORTS;) {
            char *end;
            i->ports[i->n_ports++] = (uint16_t) strtoul(p, &end, 10);
            p = *end == ',' ? end + 1 : end;
            if (end == p)
                break;
        }
        int s = ml_state_from_name(col(st, 7));
        i->state = s < 0 ? ML_STAGING : (enum ml_state) s;
        i->healthy = (enum ml_health) sqlite3_column_int(st, 8);
        i->started_at = sqlite3_column_double(st, 9);
        i->running_since = sqlite3_column_double(st, 10);
        i->killing = sqlite3_column_int(st, 11);
        i->ever_healthy = sqlite3_column_int(st, 12);
        i->address = xstrdup(col(st, 13));
        i->next = a->insts;
        a->insts = i;
    }
    sqlite3_finalize(st);
}

static void load_deps(struct apps *a)
{
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(a->db,
                       "SELECT id, app_id, kind, version, from_version, state, message, "
                       "started_at, failures FROM deployments ORDER BY started_at DESC",
                       -1, &st, NULL);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        struct dep *d = xzalloc(sizeof(*d));
        snprintf(d->id, sizeof(d->id), "%s", col(st, 0));
        d->app_id = xstrdup(col(st, 1));
        d->kind = xstrdup(col(st, 2));
        d->version = xstrdup(col(st, 3));
        d->from_version = xstrdup(col(st, 4));
        d->state = xstrdup(col(st, 5));
        d->message = sqlite3_column_text(st, 6) ? xstrdup(col(st, 6)) : NULL;
        d->started_at = sqlite3_column_double(st, 7);
        d->failures = (unsigned) sqlite3_column_int(st, 8);
        d->next = a->deps;
        a->deps = d;
    }
    sqlite3_finalize(st);
}

int apps_store_load(struct apps *a, struct berr **err)
{
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(a->db, "SELECT value FROM meta WHERE key = 'framework_id'", -1, &st, NULL);
    if (st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        a->framework_id = xstrdup(col(st, 0));
    sqlite3_finalize(st);
    int r = load_apps(a, err);
    if (r < 0)
        return r;
    load_insts(a);
    load_deps(a);
    return 0;
}
