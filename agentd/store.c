/* agentd/store.c - the agent's durable container records in work_dir/state.db (SQLite, WAL).
 * A row is a container's record (record.c encodes it) keyed by id, plus the executor's start
 * time and the boot it ran in, so a restarted agent can tell its executor from a process
 * that reused the pid. lifecycle.c writes a record before every side effect of a launch and
 * at every transition; recover.c reads them back at start. This file only reads and writes
 * rows: it calls nothing of the agent above it (`make check-deps` checks).
 *
 * Durability: WAL with synchronous=NORMAL survives any crash of the agent (a commit is in
 * the WAL, in the page cache, before sqlite3_step returns); only a crash of the machine can
 * lose the last commits. Those matter for the states the API has announced: the 201 of a
 * launch (STARTING) and a task's end. Their commits run with synchronous=FULL (one fsync of
 * the WAL, ~0.15 ms here), the others (STAGING, RUNNING, kill requested) stay NORMAL: after
 * a machine crash no task survives and recovery re-derives those from the executor's
 * status.json or marks them LOST. */
#include <fcntl.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>

#include "agentd/agent.h"

static const char schema[] = "PRAGMA journal_mode=WAL;"
                             "PRAGMA synchronous=NORMAL;"
                             "CREATE TABLE IF NOT EXISTS containers ("
                             "  id TEXT PRIMARY KEY,"
                             "  name TEXT NOT NULL,"
                             "  created_at REAL NOT NULL,"
                             "  json TEXT NOT NULL,"
                             "  pid_start INTEGER,"
                             "  boot_id TEXT);";

/* Columns added after the first release of the table, for a state.db an older agent wrote. */
static const char *const added_columns[] = {"pid_start INTEGER", "boot_id TEXT"};

static int exec_sql(sqlite3 *db, const char *sql, char **ret_msg)
{
    char *msg = NULL;
    int r = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (r != SQLITE_OK && ret_msg)
        *ret_msg = xstrdup(msg ? msg : sqlite3_errstr(r));
    sqlite3_free(msg);
    return r;
}

static bool has_column(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st = NULL;
    bool found = false;
    if (sqlite3_prepare_v2(db, "PRAGMA table_info(containers)", -1, &st, NULL) != SQLITE_OK)
        return false;
    while (!found && sqlite3_step(st) == SQLITE_ROW) {
        const char *col = (const char *) sqlite3_column_text(st, 1);
        found = col && streq(col, name);
    }
    sqlite3_finalize(st);
    return found;
}

/* quick_check reads every page: a file that opens but is damaged fails here, at start,
 * rather than halfway through the recovery. ~2 ms for 1000 records. */
static int check_integrity(sqlite3 *db, char **ret_msg)
{
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL);
    if (r != SQLITE_OK) {
        *ret_msg = xstrdup(sqlite3_errmsg(db));
        return r;
    }
    r = sqlite3_step(st);
    const char *res = r == SQLITE_ROW ? (const char *) sqlite3_column_text(st, 0) : NULL;
    if (r == SQLITE_ROW && res && streq(res, "ok")) {
        r = SQLITE_OK;
    } else {
        *ret_msg = xstrdup(res ? res : sqlite3_errmsg(db));
        r = SQLITE_CORRUPT;
    }
    sqlite3_finalize(st);
    return r;
}

/* state.db holds every task's env: 0600, and so its -wal and -shm (SQLite gives them the
 * database file's mode), created so before SQLite opens it, and mended on an older file. */
static int store_secure(const char *path, bool create, struct berr **err)
{
    if (create) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
            return berr_set(err, errno, "create '%s'", path);
        close(fd);
    }
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
        _cleanup_free_ char *p = xasprintf("%s%s", path, suffixes[i]);
        if (chmod(p, 0600) < 0 && errno != ENOENT)
            return berr_set(err, errno, "chmod '%s'", p);
    }
    return 0;
}

int store_open(struct agent *a, bool create, struct berr **err)
{
    _cleanup_free_ char *path = xasprintf("%s/state.db", a->cfg.work_dir);
    struct stat sb;
    if (!create && stat(path, &sb) < 0)
        return berr_set(err, errno, "'%s'", path);
    int sr = store_secure(path, create, err);
    if (sr < 0)
        return sr;
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    int r = sqlite3_open_v2(path, &a->db, flags, NULL);
    _cleanup_free_ char *msg = NULL;
    if (r != SQLITE_OK) {
        berr_setx(err, EBADMSG, "open '%s': %s", path,
                  a->db ? sqlite3_errmsg(a->db) : sqlite3_errstr(r));
        store_close(a);
        return -EBADMSG;
    }
    sqlite3_busy_timeout(a->db, 2000);
    if (exec_sql(a->db, schema, &msg) != SQLITE_OK || check_integrity(a->db, &msg) != SQLITE_OK) {
        berr_setx(err, EBADMSG, "'%s' is not a readable berth state database: %s", path, msg);
        store_close(a);
        return -EBADMSG;
    }
    for (size_t i = 0; i < ARRAY_SIZE(added_columns); i++) {
        _cleanup_free_ char *name = xstrndup(added_columns[i], strcspn(added_columns[i], " "));
        if (has_column(a->db, name))
            continue;
        _cleanup_free_ char *sql =
                xasprintf("ALTER TABLE containers ADD COLUMN %s", added_columns[i]);
        free(msg);
        msg = NULL;
        if (exec_sql(a->db, sql, &msg) != SQLITE_OK) {
            berr_setx(err, EIO, "'%s': add column '%s': %s", path, name, msg);
            store_close(a);
            return -EIO;
        }
    }
    return 0;
}

void store_close(struct agent *a)
{
    if (a->db)
        sqlite3_close(a->db);
    a->db = NULL;
}

static void set_synchronous(struct agent *a, bool full)
{
    /* per connection, applied at the next commit; outside a transaction only */
    if (sqlite3_get_autocommit(a->db))
        (void) exec_sql(a->db, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                        NULL);
}

int store_save(struct agent *a, const char *id, const char *name, double created_at,
               const char *record, uint64_t pid_start, bool durable)
{
    if (!a->db)
        return -EIO;
    sqlite3_stmt *st = NULL;
    if (durable)
        set_synchronous(a, true);
    int r = sqlite3_prepare_v2(a->db,
                               "INSERT OR REPLACE INTO containers(id, name, created_at, json, "
                               "pid_start, boot_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                               -1, &st, NULL);
    if (r == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 3, created_at);
        sqlite3_bind_text(st, 4, record, -1, SQLITE_STATIC);
        if (pid_start)
            sqlite3_bind_int64(st, 5, (sqlite3_int64) pid_start);
        else
            sqlite3_bind_null(st, 5);
        sqlite3_bind_text(st, 6, a->boot_id, -1, SQLITE_STATIC);
        r = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (durable)
        set_synchronous(a, false);
    if (r != SQLITE_DONE)
        return log_msg(LOG_ERR, EIO, "store container '%s': %s", id, sqlite3_errmsg(a->db));
    return 0;
}

int store_delete(struct agent *a, const char *id)
{
    if (!a->db)
        return -EIO;
    sqlite3_stmt *st = NULL;
    set_synchronous(a, true); /* DELETE's reply promises it is gone */
    int r = sqlite3_prepare_v2(a->db, "DELETE FROM containers WHERE id = ?1", -1, &st, NULL);
    if (r == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        r = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    set_synchronous(a, false);
    if (r != SQLITE_DONE)
        return log_msg(LOG_ERR, EIO, "delete container '%s': %s", id, sqlite3_errmsg(a->db));
    return 0;
}

int store_load(struct agent *a,
               int (*fn)(struct agent *a, const char *id, const char *json, uint64_t pid_start,
                         const char *boot_id, struct berr **err),
               struct berr **err)
{
    sqlite3_stmt *st = NULL;
    /* oldest first: the table is built by prepending, so it ends newest first */
    int r = sqlite3_prepare_v2(a->db,
                               "SELECT id, json, pid_start, boot_id FROM containers "
                               "ORDER BY created_at ASC",
                               -1, &st, NULL);
    if (r != SQLITE_OK)
        return berr_setx(err, EIO, "read the records: %s", sqlite3_errmsg(a->db));
    int n = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *) sqlite3_column_text(st, 0);
        const char *json = (const char *) sqlite3_column_text(st, 1);
        sqlite3_int64 start = sqlite3_column_int64(st, 2);
        const char *boot = (const char *) sqlite3_column_text(st, 3);
        int fr = fn(a, id ? id : "", json ? json : "", start > 0 ? (uint64_t) start : 0, boot, err);
        if (fr < 0) {
            sqlite3_finalize(st);
            return fr;
        }
        n++;
    }
    if (r != SQLITE_DONE) {
        berr_setx(err, EIO, "read the records: %s", sqlite3_errmsg(a->db));
        sqlite3_finalize(st);
        return -EIO;
    }
    sqlite3_finalize(st);
    return n;
}

int store_clear(struct agent *a)
{
    _cleanup_free_ char *msg = NULL;
    if (!a->db)
        return -EIO;
    set_synchronous(a, true);
    int r = exec_sql(a->db, "DELETE FROM containers", &msg);
    set_synchronous(a, false);
    if (r != SQLITE_OK)
        return log_msg(LOG_ERR, EIO, "state.db: remove all records: %s", msg);
    return sqlite3_changes(a->db);
}

int store_begin(struct agent *a)
{
    _cleanup_free_ char *msg = NULL;
    if (!a->db)
        return -EIO;
    /* the whole transaction commits with one fsync; the level cannot change inside it */
    set_synchronous(a, true);
    if (exec_sql(a->db, "BEGIN IMMEDIATE", &msg) != SQLITE_OK) {
        set_synchronous(a, false);
        return log_msg(LOG_ERR, EIO, "state.db: begin: %s", msg);
    }
    return 0;
}

int store_commit(struct agent *a)
{
    _cleanup_free_ char *msg = NULL;
    if (!a->db)
        return -EIO;
    int r = exec_sql(a->db, "COMMIT", &msg);
    if (r != SQLITE_OK)
        (void) exec_sql(a->db, "ROLLBACK", NULL);
    set_synchronous(a, false);
    if (r != SQLITE_OK)
        return log_msg(LOG_ERR, EIO, "state.db: commit: %s", msg);
    return 0;
}
