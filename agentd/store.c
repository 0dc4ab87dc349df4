/* agentd/store.c - the agent's durable container records in work_dir/state.db (SQLite, WAL).
 * A record is the container's JSON (as the API shows it, without usage) keyed by id; it is
 * written on every state change, so after a crash the agent knows every container it had.
 * container.c decides what to write; this file only reads and writes rows. */
#include <sqlite3.h>
#include <string.h>

#include "agentd/agent.h"

static const char schema[] = "PRAGMA journal_mode=WAL;"
                             "PRAGMA synchronous=NORMAL;"
                             "CREATE TABLE IF NOT EXISTS containers ("
                             "  id TEXT PRIMARY KEY,"
                             "  name TEXT NOT NULL,"
                             "  created_at REAL NOT NULL,"
                             "  json TEXT NOT NULL);";

int store_open(struct agent *a, struct berr **err)
{
    _cleanup_free_ char *path = xasprintf("%s/state.db", a->cfg.work_dir);
    int r = sqlite3_open_v2(path, &a->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (r != SQLITE_OK)
        return berr_setx(err, EIO, "open '%s': %s", path,
                         a->db ? sqlite3_errmsg(a->db) : sqlite3_errstr(r));
    sqlite3_busy_timeout(a->db, 2000);
    char *msg = NULL;
    if (sqlite3_exec(a->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        berr_setx(err, EIO, "initialise '%s': %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        return -EIO;
    }
    return 0;
}

void store_close(struct agent *a)
{
    if (a->db)
        sqlite3_close(a->db);
    a->db = NULL;
}

int store_save(struct agent *a, struct container *c)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    agent_container_json(a, c, g, false);
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(a->db,
                               "INSERT OR REPLACE INTO containers(id, name, created_at, json) "
                               "VALUES (?1, ?2, ?3, ?4)",
                               -1, &st, NULL);
    if (r == SQLITE_OK) {
        sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, c->name, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 3, c->created_at);
        sqlite3_bind_text(st, 4, (const char *) buf, (int) len, SQLITE_STATIC);
        r = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    yajl_gen_free(g);
    if (r != SQLITE_DONE)
        return log_msg(LOG_ERR, EIO, "store container '%s': %s", c->id, sqlite3_errmsg(a->db));
    return 0;
}

int store_delete(struct agent *a, const char *id)
{
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(a->db, "DELETE FROM containers WHERE id = ?1", -1, &st, NULL);
    if (r == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        r = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return log_msg(LOG_ERR, EIO, "delete container '%s': %s", id, sqlite3_errmsg(a->db));
    return 0;
}

int store_load(struct agent *a, int (*fn)(struct agent *a, const char *json, void *arg), void *arg)
{
    sqlite3_stmt *st = NULL;
    /* oldest first: the table is built by prepending, so it ends newest first */
    int r = sqlite3_prepare_v2(a->db, "SELECT json FROM containers ORDER BY created_at ASC", -1,
                               &st, NULL);
    if (r != SQLITE_OK)
        return log_msg(LOG_ERR, EIO, "load containers: %s", sqlite3_errmsg(a->db));
    int n = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const char *json = (const char *) sqlite3_column_text(st, 0);
        if (json && fn(a, json, arg) >= 0)
            n++;
    }
    sqlite3_finalize(st);
    return n;
}
