/* SPDX-License-Identifier: Apache-2.0 */
/* master/store.c - the registry in work_dir/master.db (SQLite, WAL): one row per agent (its
 * resources as JSON), one per task (its record as JSON), one per framework and per role the
 * API changed, and the status history (one row per
 * update, its uuid UNIQUE, so a retried update is recognised even across a master restart).
 * An update and the task's new state commit together, before the ACKNOWLEDGE goes out: an
 * acked update is never lost by a crash of the master (WAL, synchronous=NORMAL: a commit
 * survives the process; a machine crash may lose the last ones, and the agent, which still
 * holds every update it saw no ACKNOWLEDGE for, sends them again). Heartbeats stay in memory.
 * Rows only: callers hand in values and records they encoded themselves (agents.c, tasks.c,
 * auth.c, frameworks.c, roles.c) and read rows back through callbacks; nothing here knows
 * the registry's structs. */
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
                             "  rights TEXT NOT NULL, roles TEXT, created_at REAL);"
                             "CREATE TABLE IF NOT EXISTS frameworks ("
                             "  id TEXT PRIMARY KEY, registered_at REAL, json TEXT NOT NULL);"
                             "CREATE TABLE IF NOT EXISTS roles ("
                             "  name TEXT PRIMARY KEY, json TEXT NOT NULL);";

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
        int r = berr_setx(err, EIO, "open '%s': %s", path,
                          m->db ? sqlite3_errmsg(m->db) : "no memory");
        master_store_close(m);
        return r;
    }
    sqlite3_busy_timeout(m->db, 2000);
    char *msg = NULL;
    if (sqlite3_exec(m->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        int r = berr_setx(err, EIO, "'%s': %s", path, msg ? msg : "cannot create the schema");
        sqlite3_free(msg);
        master_store_close(m);
        return r;
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

void master_store_rollback(struct master *m)
{
    if (!sqlite3_get_autocommit(m->db)) /* a transaction is open */
        (void) exec1(m, "ROLLBACK");
}

int master_store_commit(struct master *m)
{
    int r = exec1(m, "COMMIT");
    if (r < 0)
        (void) exec1(m, "ROLLBACK");
    return r;
}

/* One statement with text parameters (NULL binds NULL) and, where given, a double at
 * position dpos; SQLITE_DONE when it ran. */
static int run(struct master *m, const char *sql, const char *const *text, int n, int dpos,
               double d)
{
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(m->db, sql, -1, &st, NULL);
    if (r == SQLITE_OK) {
        for (int i = 0; i < n; i++)
            sqlite3_bind_text(st, i + 1, text[i], -1, SQLITE_STATIC);
        if (dpos > 0)
            sqlite3_bind_double(st, dpos, d);
        r = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return r;
}

int master_store_agent_put(struct master *m, const char *id, const char *hostname, const char *json,
                           double registered_at)
{
    const char *text[] = {id, hostname, json};
    if (run(m,
            "INSERT OR REPLACE INTO agents(id, hostname, json, registered_at) "
            "VALUES (?1, ?2, ?3, ?4)",
            text, 3, 4, registered_at) != SQLITE_DONE)
        return log_msg(LOG_ERR, EIO, "master.db: store agent '%s': %s", id, sqlite3_errmsg(m->db));
    return 0;
}

int master_store_task_put(struct master *m, const char *id, double created_at, const char *json)
{
    const char *text[] = {id, json};
    if (run(m, "INSERT OR REPLACE INTO tasks(id, json, created_at) VALUES (?1, ?2, ?3)", text, 2, 3,
            created_at) != SQLITE_DONE)
        return log_msg(LOG_ERR, EIO, "master.db: store task '%s': %s", id, sqlite3_errmsg(m->db));
    return 0;
}

int master_store_update(struct master *m, const char *task_id, const char *uuid, const char *state,
                        const char *source, double received_at, const char *json)
{
    const char *text[] = {task_id, uuid, state, source, json};
    if (run(m,
            "INSERT OR IGNORE INTO updates(task_id, uuid, state, source, json, received_at) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            text, 5, 6, received_at) != SQLITE_DONE)
        return log_msg(LOG_ERR, EIO, "master.db: store update of '%s': %s", task_id,
                       sqlite3_errmsg(m->db));
    return sqlite3_changes(m->db) > 0 ? 1 : 0;
}

int master_store_history(struct master *m, const char *task_id,
                         void (*fn)(void *arg, const char *json, const char *source,
                                    double received_at),
                         void *arg)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(m->db,
                           "SELECT json, source, received_at FROM updates WHERE task_id = ?1 "
                           "ORDER BY seq",
                           -1, &st, NULL) != SQLITE_OK)
        return log_msg(LOG_ERR, EIO, "master.db: history of '%s': %s", task_id,
                       sqlite3_errmsg(m->db));
    sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW)
        fn(arg, (const char *) sqlite3_column_text(st, 0),
           (const char *) sqlite3_column_text(st, 1), sqlite3_column_double(st, 2));
    sqlite3_finalize(st);
    return 0;
}

int master_store_agents_load(struct master *m,
                             int (*fn)(struct master *m, const char *id, const char *hostname,
                                       const char *json, double registered_at),
                             struct berr **err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(m->db, "SELECT id, hostname, json, registered_at FROM agents", -1, &st,
                           NULL) != SQLITE_OK)
        return berr_setx(err, EIO, "master.db: %s", sqlite3_errmsg(m->db));
    int r = 0;
    while (r >= 0 && sqlite3_step(st) == SQLITE_ROW)
        r = fn(m, (const char *) sqlite3_column_text(st, 0),
               (const char *) sqlite3_column_text(st, 1), (const char *) sqlite3_column_text(st, 2),
               sqlite3_column_double(st, 3));
    sqlite3_finalize(st);
    return r < 0 ? berr_setx(err, -r, "master.db: cannot load the agents") : 0;
}

int master_store_tasks_load(struct master *m, int (*fn)(struct master *m, const char *json),
                            struct berr **err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(m->db, "SELECT json FROM tasks ORDER BY created_at, id", -1, &st,
                           NULL) != SQLITE_OK)
        return berr_setx(err, EIO, "master.db: %s", sqlite3_errmsg(m->db));
    int r = 0;
    while (r >= 0 && sqlite3_step(st) == SQLITE_ROW)
        r = fn(m, (const char *) sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return r < 0 ? berr_setx(err, -r, "master.db: cannot load the tasks") : 0;
}

int master_store_token_put(struct master *m, const char *id, const char *key_hex, const char *name,
                           const char *rights, const char *roles, double created_at)
{
    const char *text[] = {id, key_hex, name, rights, roles};
    if (run(m,
            "INSERT OR REPLACE INTO tokens(id, key, name, rights, roles, created_at) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            text, 5, 6, created_at) != SQLITE_DONE)
        return log_msg(LOG_ERR, EIO, "master.db: store token '%s': %s", id, sqlite3_errmsg(m->db));
    return 0;
}

static int delete_by(struct master *m, const char *sql, const char *id)
{
    if (run(m, sql, &id, 1, 0, 0) != SQLITE_DONE)
        return log_msg(LOG_ERR, EIO, "master.db: %s ('%s'): %s", sql, id, sqlite3_errmsg(m->db));
    return 0;
}

int master_store_token_delete(struct master *m, const char *id)
{
    return delete_by(m, "DELETE FROM tokens WHERE id = ?1", id);
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

int master_store_agent_delete(struct master *m, const char *id)
{
    return delete_by(m, "DELETE FROM agents WHERE id = ?1", id);
}

int master_store_task_delete(struct master *m, const char *id)
{
    int r = master_store_begin(m);
    if (r < 0)
        return r;
    if ((r = delete_by(m, "DELETE FROM updates WHERE task_id = ?1", id)) < 0 ||
        (r = delete_by(m, "DELETE FROM tasks WHERE id = ?1", id)) < 0) {
        master_store_rollback(m);
        return r;
    }
    return master_store_commit(m);
}

int master_store_framework_put(struct master *m, const char *id, double registered_at,
                               const char *json)
{
    const char *text[] = {id, json};
    if (run(m, "INSERT OR REPLACE INTO frameworks(id, json, registered_at) VALUES (?1, ?2, ?3)",
            text, 2, 3, registered_at) != SQLITE_DONE)
        return log_msg(LOG_ERR, EIO, "master.db: store framework '%s': %s", id,
                       sqlite3_errmsg(m->db));
    return 0;
}

int master_store_role_put(struct master *m, const char *name, const char *json)
{
    const char *text[] = {name, json};
    if (run(m, "INSERT OR REPLACE INTO roles(name, json) VALUES (?1, ?2)", text, 2, 0, 0) !=
        SQLITE_DONE)
        return log_msg(LOG_ERR, EIO, "master.db: store role '%s': %s", name, sqlite3_errmsg(m->db));
    return 0;
}

/* Rows of sql (one or two text columns) to fn1 or fn2. */
static int load_rows(struct master *m, const char *sql, int (*fn1)(struct master *, const char *),
                     int (*fn2)(struct master *, const char *, const char *), struct berr **err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(m->db, sql, -1, &st, NULL) != SQLITE_OK)
        return berr_setx(err, EIO, "master.db: %s", sqlite3_errmsg(m->db));
    int r = 0;
    while (r >= 0 && sqlite3_step(st) == SQLITE_ROW) {
        const char *a = (const char *) sqlite3_column_text(st, 0);
        r = fn1 ? fn1(m, a) : fn2(m, a, (const char *) sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
    return r < 0 ? berr_setx(err, -r, "master.db: cannot load '%s'", sql) : 0;
}

int master_store_frameworks_load(struct master *m, int (*fn)(struct master *m, const char *json),
                                 struct berr **err)
{
    return load_rows(m, "SELECT json FROM frameworks ORDER BY registered_at, id", fn, NULL, err);
}

int master_store_roles_load(struct master *m,
                            int (*fn)(struct master *m, const char *name, const char *json),
                            struct berr **err)
{
    return load_rows(m, "SELECT name, json FROM roles ORDER BY name", NULL, fn, err);
}
