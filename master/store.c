/* master/store.c - the registry in work_dir/master.db (SQLite, WAL): one row per agent (its
 * resources as JSON), one per task (its record as JSON) and the status history (one row per
 * update, its uuid UNIQUE, so a retried update is recognised even across a master restart).
 * An update and the task's new state commit together, before the ACKNOWLEDGE goes out: an
 * acked update is never lost by a crash of the master (WAL, synchronous=NORMAL: a commit
 * survives the process; a machine crash may lose the last ones, and the agent, which still
 * holds every update it saw no ACKNOWLEDGE for, sends them again). Heartbeats stay in memory. */
#include <fcntl.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>

#include "master/master.h"

static const char schema[] = "PRAGMA journal_mode=WAL;"
                             "PRAGMA synchronous=NORMAL;"
                             "CREATE TABLE IF NOT EXISTS agents ("
                             "  id TEXT PRIMARY KEY, hostname TEXT, json TEXT NOT NULL,"
                             "  registered_at REAL);"
                             "CREATE TABLE IF NOT EXISTS tasks ("
                             "  id TEXT PRIMARY KEY, created_at REAL, json TEXT NOT NULL);"
                             "CREATE TABLE IF NOT EXISTS updates ("
                             "  seq INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL,"
                             "  uuid TEXT NOT NULL UNIQUE, state TEXT NOT NULL,"
                             "  source TEXT NOT NULL, received_at REAL, json TEXT NOT NULL);"
                             "CREATE INDEX IF NOT EXISTS updates_task ON updates(task_id, seq);"
                             "CREATE TABLE IF NOT EXISTS tokens ("
                             "  id TEXT PRIMARY KEY, key TEXT NOT NULL, name TEXT,"
                             "  rights TEXT NOT NULL, roles TEXT, created_at REAL);";

int master_store_open(struct master *m, struct berr **err)
{
    if (mkdir_p(m->cfg.work_dir, 0700) < 0)
        return berr_set(err, errno, "create work_dir '%s'", m->cfg.work_dir);
    /* 0700 also on an existing dir, and master.db 0600 before SQLite creates it (its -wal
     * and -shm files take the database file's mode): agent keys and token hashes */
    if (chmod(m->cfg.work_dir, 0700) < 0)
        return berr_set(err, errno, "chmod work_dir '%s'", m->cfg.work_dir);
    _cleanup_free_ char *path = xasprintf("%s/master.db", m->cfg.work_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || fchmod(fd, 0600) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return berr_set(err, e, "open '%s'", path);
    }
    close(fd);
    if (sqlite3_open_v2(path, &m->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        berr_setx(err, EIO, "open '%s': %s", path, m->db ? sqlite3_errmsg(m->db) : "no memory");
        master_store_close(m);
        return -EIO;
    }
    sqlite3_busy_timeout(m->db, 2000);
    char *msg = NULL;
    if (sqlite3_exec(m->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        berr_setx(err, EIO, "'%s': %s", path, msg ? msg : "cannot create the schema");
        sqlite3_free(msg);
        master_store_close(m);
        return -EIO;
    }
    return 0;
}

void master_store_close(struct master *m)
{
    if (m->db)
        sqlite3_close(m->db);
    m->db = NULL;
}

static int exec1(struct master *m, const char *sql)
{
    char *msg = NULL;
    int r = sqlite3_exec(m->db, sql, NULL, NULL, &msg);
    if (r != SQLITE_OK)
        log_error("master.db: %s: %s", sql, msg ? msg : sqlite3_errstr(r));
    sqlite3_free(msg);
    return r == SQLITE_OK ? 0 : -EIO;
}

int master_store_begin(struct master *m)
{
    return exec1(m, "BEGIN IMMEDIATE");
}

int master_store_commit(struct master *m)
{
    int r = exec1(m, "COMMIT");
    if (r < 0)
        (void) exec1(m, "ROLLBACK");
    return r;
}

static char *agent_row_json(const struct m_agent *ag)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    json_kv_u64(g, "total_cpus", ag->total_cpus);
    json_kv_u64(g, "total_mem", ag->total_mem);
    json_kv_u64(g, "reserved_cpus", ag->reserved_cpus);
    json_kv_u64(g, "reserved_mem", ag->reserved_mem);
    json_kv_u64(g, "alloc_cpus", ag->alloc_cpus);
    json_kv_u64(g, "alloc_mem", ag->alloc_mem);
    json_kv_str(g, "state", ag->state == M_AGENT_REACHABLE ? "REACHABLE" : "UNREACHABLE");
    json_kv_bool(g, "lost_done", ag->lost_done);
    json_kv_double(g, "last_seen_at", ag->last_seen_at);
    if (ag->has_key) {
        char hex[ML_HEX_LEN + 1];
        ml_hex(ag->key, ML_KEY_LEN, hex);
        json_kv_str(g, "key", hex);
    }
    yajl_gen_map_close(g);
    return json_gen_take(g);
}

int master_store_agent(struct master *m, const struct m_agent *ag)
{
    _cleanup_free_ char *json = agent_row_json(ag);
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(m->db,
                               "INSERT OR REPLACE INTO agents(id, hostname, json, registered_at) "
                               "VALUES (?1, ?2, ?3, ?4)",
                               -1, &st, NULL);
    if (r == SQLITE_OK) {
        sqlite3_bind_text(st, 1, ag->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ag->hostname, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, json, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 4, ag->registered_at);
        r = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return log_msg(LOG_ERR, EIO, "master.db: store agent '%s': %s", ag->id,
                       sqlite3_errmsg(m->db));
    return 0;
}

int master_store_task(struct master *m, const struct m_task *t)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    master_task_json(m, (struct m_task *) t, g, false);
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(
            m->db, "INSERT OR REPLACE INTO tasks(id, created_at, json) VALUES (?1, ?2, ?3)", -1,
            &st, NULL);
    if (r == SQLITE_OK) {
        sqlite3_bind_text(st, 1, t->id, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 2, t->created_at);
        sqlite3_bind_text(st, 3, (const char *) buf, (int) len, SQLITE_STATIC);
        r = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    yajl_gen_free(g);
    if (r != SQLITE_DONE)
        return log_msg(LOG_ERR, EIO, "master.db: store task '%s': %s", t->id,
                       sqlite3_errmsg(m->db));
    return 0;
}

int master_store_update(struct master *m, const char *task_id, const struct ml_status *s,
                        const char *source)
{
    _cleanup_free_ char *json = ml_status_encode(s);
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(m->db,
                               "INSERT OR IGNORE INTO updates(task_id, uuid, state, source, "
                               "received_at, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                               -1, &st, NULL);
    if (r == SQLITE_OK) {
        sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, s->uuid, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, ml_state_name(s->state), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, source, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 5, now_realtime());
        sqlite3_bind_text(st, 6, json, -1, SQLITE_STATIC);
        r = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return log_msg(LOG_ERR, EIO, "master.db: store update of '%s': %s", task_id,
                       sqlite3_errmsg(m->db));
    return sqlite3_changes(m->db) > 0 ? 1 : 0;
}

void master_store_history(struct master *m, const char *task_id, yajl_gen g)
{
    sqlite3_stmt *st = NULL;
    yajl_gen_array_open(g);
    if (sqlite3_prepare_v2(m->db,
                           "SELECT json, source, received_at FROM updates WHERE task_id = ?1 "
                           "ORDER BY seq",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *json = (const char *) sqlite3_column_text(st, 0);
            yajl_val v = json ? yajl_tree_parse(json, NULL, 0) : NULL;
            yajl_gen_map_open(g);
            for (size_t i = 0; v && YAJL_IS_OBJECT(v) && i < v->u.object.len; i++) {
                json_str(g, v->u.object.keys[i]);
                json_gen_value(g, v->u.object.values[i]);
            }
            json_kv_str(g, "source", (const char *) sqlite3_column_text(st, 1));
            json_kv_double(g, "received_at", sqlite3_column_double(st, 2));
            yajl_gen_map_close(g);
            yajl_tree_free(v);
        }
    }
    sqlite3_finalize(st);
    yajl_gen_array_close(g);
}

static void load_agent(struct master *m, const char *id, const char *host, const char *json,
                       double registered_at)
{
    if (!ml_id_valid(id) || master_agent_find(m, id))
        return;
    yajl_val v = json ? yajl_tree_parse(json, NULL, 0) : NULL;
    struct m_agent *ag = xzalloc(sizeof(*ag));
    snprintf(ag->id, sizeof(ag->id), "%s", id);
    ag->hostname = xstrdup(host ? host : "");
    (void) json_get_u64(v, "total_cpus", &ag->total_cpus);
    (void) json_get_u64(v, "total_mem", &ag->total_mem);
    (void) json_get_u64(v, "reserved_cpus", &ag->reserved_cpus);
    (void) json_get_u64(v, "reserved_mem", &ag->reserved_mem);
    (void) json_get_u64(v, "alloc_cpus", &ag->alloc_cpus);
    (void) json_get_u64(v, "alloc_mem", &ag->alloc_mem);
    (void) json_get_double(v, "last_seen_at", &ag->last_seen_at);
    const char *state = json_get_str(v, "state");
    ag->state = state && streq(state, "UNREACHABLE") ? M_AGENT_UNREACHABLE : M_AGENT_REACHABLE;
    yajl_val ld = json_get(v, "lost_done");
    ag->lost_done = ld && YAJL_IS_TRUE(ld);
    ag->has_key = ml_unhex(json_get_str(v, "key"), ag->key, ML_KEY_LEN) == 0;
    ag->registered_at = registered_at;
    /* the timers count from the master's start: agents get agent_timeout to come back */
    ag->last_seen_ns = now_monotonic_ns();
    ag->unreachable_ns = ag->last_seen_ns;
    yajl_tree_free(v);
    ag->next = m->agents;
    m->agents = ag;
    m->n_agents++;
    ml_table_put(&m->agents_by_id, ag->id, ag);
}

static void load_task(struct master *m, const char *json)
{
    yajl_val v = json ? yajl_tree_parse(json, NULL, 0) : NULL;
    const char *id = json_get_str(v, "id");
    if (!ml_id_valid(id) || master_task_find(m, id)) {
        yajl_tree_free(v);
        return;
    }
    struct m_task *t = xzalloc(sizeof(*t));
    snprintf(t->id, sizeof(t->id), "%s", id);
    const char *s;
    t->name = xstrdup((s = json_get_str(v, "name")) ? s : id);
    snprintf(t->agent_id, sizeof(t->agent_id), "%s", (s = json_get_str(v, "agent_id")) ? s : "");
    snprintf(t->container_id, sizeof(t->container_id), "%s",
             (s = json_get_str(v, "container_id")) ? s : "");
    t->role = xstrdup((s = json_get_str(v, "role")) ? s : "*");
    t->state = ml_state_from_name(json_get_str(v, "state"));
    if ((int) t->state < 0)
        t->state = ML_STAGING;
    snprintf(t->reason, sizeof(t->reason), "%s", (s = json_get_str(v, "reason")) ? s : "");
    t->message = (s = json_get_str(v, "message")) ? xstrdup(s) : NULL;
    t->has_exit_code = json_get_i64(v, "exit_code", &t->exit_code);
    (void) json_get_i64(v, "signal", &t->signal);
    (void) json_get_double(v, "created_at", &t->created_at);
    (void) json_get_double(v, "updated_at", &t->updated_at);
    yajl_val k = json_get(v, "kill_requested");
    t->kill_requested = k && YAJL_IS_TRUE(k);
    yajl_val res = json_get(v, "resources");
    (void) json_get_cpus(res, "cpus", &t->cpus_millis);
    (void) json_get_size(res, "mem", &t->mem_bytes);
    /* the spec to launch: command, resources, role, user, env, volumes */
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    static const char *const keys[] = {"command", "resources", "role", "user", "env", "volumes"};
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        yajl_val x = json_get(v, keys[i]);
        if (x && !YAJL_IS_NULL(x)) {
            json_str(g, keys[i]);
            json_gen_value(g, x);
        }
    }
    yajl_gen_map_close(g);
    t->spec_json = json_gen_take(g);
    yajl_tree_free(v);
    /* the list is newest first: rows come oldest first */
    t->next = m->tasks;
    m->tasks = t;
    m->n_tasks++;
    ml_table_put(&m->tasks_by_id, t->id, t);
    if (!ml_state_terminal(t->state))
        master_task_account(m, t, +1);
}

int master_store_load(struct master *m, struct berr **err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(m->db, "SELECT id, hostname, json, registered_at FROM agents", -1, &st,
                           NULL) != SQLITE_OK)
        return berr_setx(err, EIO, "master.db: %s", sqlite3_errmsg(m->db));
    while (sqlite3_step(st) == SQLITE_ROW)
        load_agent(m, (const char *) sqlite3_column_text(st, 0),
                   (const char *) sqlite3_column_text(st, 1),
                   (const char *) sqlite3_column_text(st, 2), sqlite3_column_double(st, 3));
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(m->db, "SELECT json FROM tasks ORDER BY created_at, id", -1, &st,
                           NULL) != SQLITE_OK)
        return berr_setx(err, EIO, "master.db: %s", sqlite3_errmsg(m->db));
    while (sqlite3_step(st) == SQLITE_ROW)
        load_task(m, (const char *) sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return 0;
}

int master_store_token_put(struct master *m, const char *id, const char *key_hex, const char *name,
                           const char *rights, const char *roles, double created_at)
{
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(m->db,
                               "INSERT OR REPLACE INTO tokens(id, key, name, rights, roles, "
                               "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                               -1, &st, NULL);
    if (r == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, key_hex, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, rights, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, roles, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 6, created_at);
        r = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return log_msg(LOG_ERR, EIO, "master.db: store token '%s': %s", id, sqlite3_errmsg(m->db));
    return 0;
}

int master_store_token_delete(struct master *m, const char *id)
{
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(m->db, "DELETE FROM tokens WHERE id = ?1", -1, &st, NULL);
    if (r == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        r = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return log_msg(LOG_ERR, EIO, "master.db: delete token '%s': %s", id, sqlite3_errmsg(m->db));
    return 0;
}

int master_store_tokens_load(struct master *m,
                             int (*fn)(struct master *m, const char *id, const char *key_hex,
                                       const char *name, const char *rights, const char *roles,
                                       double created_at),
                             struct berr **err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(m->db,
                           "SELECT id, key, name, rights, roles, created_at FROM tokens ORDER BY "
                           "created_at",
                           -1, &st, NULL) != SQLITE_OK)
        return berr_setx(err, EIO, "master.db: %s", sqlite3_errmsg(m->db));
    int r = 0;
    while (r >= 0 && sqlite3_step(st) == SQLITE_ROW)
        r = fn(m, (const char *) sqlite3_column_text(st, 0),
               (const char *) sqlite3_column_text(st, 1), (const char *) sqlite3_column_text(st, 2),
               (const char *) sqlite3_column_text(st, 3), (const char *) sqlite3_column_text(st, 4),
               sqlite3_column_double(st, 5));
    sqlite3_finalize(st);
    return r < 0 ? berr_setx(err, -r, "master.db: cannot load the tokens") : 0;
}

static int delete_by(struct master *m, const char *sql, const char *id)
{
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(m->db, sql, -1, &st, NULL);
    if (r == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        r = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return log_msg(LOG_ERR, EIO, "master.db: %s ('%s'): %s", sql, id, sqlite3_errmsg(m->db));
    return 0;
}

int master_store_agent_delete(struct master *m, const char *id)
{
    return delete_by(m, "DELETE FROM agents WHERE id = ?1", id);
}

int master_store_task_delete(struct master *m, const char *id)
{
    if (master_store_begin(m) < 0)
        return -EIO;
    if (delete_by(m, "DELETE FROM updates WHERE task_id = ?1", id) < 0 ||
        delete_by(m, "DELETE FROM tasks WHERE id = ?1", id) < 0) {
        (void) master_store_commit(m);
        return -EIO;
    }
    return master_store_commit(m);
}
