/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/link-db.c - the master link's two tables in state.db: link_tasks (which container
 * runs each task of the master, and the last state the master was told of) and link_updates
 * (the status updates not yet acknowledged, in the order they happened). An update is
 * written here before it is sent, so none is lost to a crash (docs/protocol.md). Rows only:
 * link.c decides. */
#include <sqlite3.h>
#include <string.h>

#include "agentd/link-internal.h"

static const char schema[] =
        "CREATE TABLE IF NOT EXISTS link_tasks ("
        "  task_id TEXT PRIMARY KEY, container_id TEXT,"
        "  last_state INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS link_updates ("
        "  seq INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL,"
        "  uuid TEXT NOT NULL, terminal INTEGER NOT NULL, json TEXT NOT NULL);";

int link_db_init(struct link *l, struct berr **err)
{
    char *msg = NULL;
    if (sqlite3_exec(l->a->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        int r = berr_setx(err, EIO, "state.db: create the master link's tables: %s",
                          msg ? msg : "?");
        sqlite3_free(msg);
        return r;
    }
    return 0;
}

static int db_exec(struct link *l, const char *sql, const char *t1, const char *t2, int64_t i1)
{
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(l->a->db, sql, -1, &st, NULL);
    if (r == SQLITE_OK) {
        if (t1)
            sqlite3_bind_text(st, 1, t1, -1, SQLITE_STATIC);
        if (t2)
            sqlite3_bind_text(st, 2, t2, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, i1);
        r = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return log_msg(LOG_ERR, EIO, "state.db (master link): %s", sqlite3_errmsg(l->a->db));
    return 0;
}

int link_db_task_save(struct link *l, const struct link_task *t)
{
    return db_exec(l,
                   "INSERT OR REPLACE INTO link_tasks(task_id, container_id, last_state) "
                   "VALUES (?1, ?2, ?3)",
                   t->task_id, t->container_id, t->last_state);
}

int link_db_task_delete(struct link *l, const char *task_id)
{
    return db_exec(l, "DELETE FROM link_tasks WHERE task_id = ?1", task_id, NULL, 0);
}

int link_db_update_add(struct link *l, struct link_update *u)
{
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(l->a->db,
                               "INSERT INTO link_updates(task_id, uuid, terminal, json) "
                               "VALUES (?1, ?2, ?3, ?4)",
                               -1, &st, NULL);
    if (r == SQLITE_OK) {
        sqlite3_bind_text(st, 1, u->task_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, u->uuid, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, u->terminal);
        sqlite3_bind_text(st, 4, u->json, -1, SQLITE_STATIC);
        r = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return log_msg(LOG_ERR, EIO, "task '%s': cannot record update %s in state.db: %s",
                       u->task_id, u->uuid, sqlite3_errmsg(l->a->db));
    u->seq = (int64_t) sqlite3_last_insert_rowid(l->a->db);
    return 0;
}

int link_db_update_delete(struct link *l, const char *uuid)
{
    return db_exec(l, "DELETE FROM link_updates WHERE uuid = ?1", uuid, NULL, 0);
}

int link_db_load(struct link *l,
                 void (*task)(struct link *l, const char *task_id, const char *ctr_id, int last),
                 void (*update)(struct link *l, struct link_update *u), struct berr **err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(l->a->db, "SELECT task_id, container_id, last_state FROM link_tasks", -1,
                           &st, NULL) != SQLITE_OK)
        return berr_setx(err, EIO, "state.db: %s", sqlite3_errmsg(l->a->db));
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *id = (const char *) sqlite3_column_text(st, 0);
        const char *ctr = (const char *) sqlite3_column_text(st, 1);
        task(l, id ? id : "", ctr, sqlite3_column_int(st, 2));
    }
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(l->a->db,
                           "SELECT seq, task_id, uuid, terminal, json FROM link_updates ORDER BY "
                           "seq",
                           -1, &st, NULL) != SQLITE_OK)
        return berr_setx(err, EIO, "state.db: %s", sqlite3_errmsg(l->a->db));
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct link_update *u = xzalloc(sizeof(*u));
        u->seq = sqlite3_column_int64(st, 0);
        snprintf(u->task_id, sizeof(u->task_id), "%s", sqlite3_column_text(st, 1));
        snprintf(u->uuid, sizeof(u->uuid), "%s", sqlite3_column_text(st, 2));
        u->terminal = sqlite3_column_int(st, 3) != 0;
        u->json = xstrdup((const char *) sqlite3_column_text(st, 4));
        update(l, u);
    }
    sqlite3_finalize(st);
    return 0;
}
