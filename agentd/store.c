/* SPDX-License-Identifier: Apache-2.0 */
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

struct pending {
    char *id;
    char *name;
    double created_at;
    char *record; /* NULL: delete the row */
    uint64_t pid_start;
    struct pending *next;
};

struct after {
    void (*fn)(struct agent *a, int r, void *arg);
    void *arg;
    struct after *next;
};

struct store_batch {
    struct event *ev_commit;
    bool queued;  /* ev_commit is active */
    bool durable; /* a queued change must be fsynced */
    struct pending *pending, **pending_tail;
    struct after *after, **after_tail;
};

static int store_batch_init(struct agent *a, struct berr **err);

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
    return store_batch_init(a, err);
}

void store_close(struct agent *a)
{
    struct store_batch *b = a->batch;
    if (b) {
        (void) store_flush(a); /* nothing queued is lost at a stop */
        if (b->ev_commit)
            event_free(b->ev_commit);
        free(b);
        a->batch = NULL;
    }
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

/* ---- the group commit ---------------------------------------------------------------------
 * A change of a record is queued (store_put, store_drop) and every change queued during one
 * turn of the loop is written in one transaction by one commit event, with one fsync when
 * any of them must survive a machine crash: a burst of 50 kills or 1,000 launches costs a
 * few commits, not one fsync each (issue #18; the loop stalled on them). What depends on a
 * change being stored - an API answer, a signal after its record, a waiter - runs after the
 * commit, through store_after_commit, in the order it was asked. */

static void pending_free(struct pending *p)
{
    free(p->id);
    free(p->name);
    free(p->record);
    free(p);
}

static int write_pending(struct agent *a, const struct pending *p)
{
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(a->db,
                               p->record ? "INSERT OR REPLACE INTO containers(id, name, "
                                           "created_at, json, pid_start, boot_id) VALUES "
                                           "(?1, ?2, ?3, ?4, ?5, ?6)"
                                         : "DELETE FROM containers WHERE id = ?1",
                               -1, &st, NULL);
    if (r == SQLITE_OK) {
        sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
        if (p->record) {
            sqlite3_bind_text(st, 2, p->name, -1, SQLITE_STATIC);
            sqlite3_bind_double(st, 3, p->created_at);
            sqlite3_bind_text(st, 4, p->record, -1, SQLITE_STATIC);
            if (p->pid_start)
                sqlite3_bind_int64(st, 5, (sqlite3_int64) p->pid_start);
            else
                sqlite3_bind_null(st, 5);
            sqlite3_bind_text(st, 6, a->boot_id, -1, SQLITE_STATIC);
        }
        r = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return log_msg(LOG_ERR, EIO, "state.db: %s container '%s': %s",
                       p->record ? "store" : "delete", p->id, sqlite3_errmsg(a->db));
    return 0;
}

int store_flush(struct agent *a)
{
    struct store_batch *b = a->batch;
    if (!b)
        return -EIO;
    b->queued = false;
    struct pending *p = b->pending;
    struct after *after = b->after;
    bool durable = b->durable;
    b->pending = NULL;
    b->pending_tail = &b->pending;
    b->after = NULL;
    b->after_tail = &b->after;
    b->durable = false;
    int r = 0;
    if (p) {
        _cleanup_free_ char *msg = NULL;
        if (durable)
            set_synchronous(a, true);
        if (exec_sql(a->db, "BEGIN IMMEDIATE", &msg) != SQLITE_OK) {
            r = log_msg(LOG_ERR, EIO, "state.db: begin: %s", msg);
        } else {
            for (struct pending *q = p; q && r == 0; q = q->next)
                r = write_pending(a, q);
            free(msg);
            msg = NULL;
            if (r == 0 && exec_sql(a->db, "COMMIT", &msg) != SQLITE_OK)
                r = log_msg(LOG_ERR, EIO, "state.db: commit: %s", msg);
            if (r < 0)
                (void) exec_sql(a->db, "ROLLBACK", NULL);
        }
        if (durable)
            set_synchronous(a, false);
    }
    while (p) {
        struct pending *next = p->next;
        pending_free(p);
        p = next;
    }
    /* in order; what they queue goes into the next batch */
    while (after) {
        struct after *next = after->next;
        after->fn(a, r, after->arg);
        free(after);
        after = next;
    }
    return r;
}

void store_discard(struct agent *a)
{
    struct store_batch *b = a->batch;
    if (!b)
        return;
    while (b->pending) {
        struct pending *p = b->pending;
        b->pending = p->next;
        pending_free(p);
    }
    b->pending_tail = &b->pending;
    b->durable = false;
    while (b->after) {
        struct after *x = b->after;
        b->after = x->next;
        x->fn(a, -ECANCELED, x->arg); /* they free what they carry */
        free(x);
    }
    b->after_tail = &b->after;
}

static void on_commit(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    (void) store_flush(arg);
}

static void batch_queue(struct agent *a)
{
    struct store_batch *b = a->batch;
    /* activated now, it runs after the callbacks already due in this turn: those of the
     * same burst (50 pidfds readable at once) all queue into one commit */
    if (!b->queued && a->base) {
        b->queued = true;
        event_active(b->ev_commit, 0, 0);
    }
}

static void queue_change(struct agent *a, const char *id, const char *name, double created_at,
                         const char *record, uint64_t pid_start, bool durable)
{
    struct store_batch *b = a->batch;
    struct pending *p = NULL;
    for (struct pending *q = b->pending; q; q = q->next)
        if (streq(q->id, id))
            p = q; /* the newest state of a record replaces the queued one */
    if (!p) {
        p = xzalloc(sizeof(*p));
        p->id = xstrdup(id);
        *b->pending_tail = p;
        b->pending_tail = &p->next;
    }
    free(p->name);
    free(p->record);
    p->name = name ? xstrdup(name) : NULL;
    p->record = record ? xstrdup(record) : NULL;
    p->created_at = created_at;
    p->pid_start = pid_start;
    b->durable |= durable;
    batch_queue(a);
}

void store_put(struct agent *a, const char *id, const char *name, double created_at,
               const char *record, uint64_t pid_start, bool durable)
{
    queue_change(a, id, name, created_at, record, pid_start, durable);
}

void store_drop(struct agent *a, const char *id)
{
    queue_change(a, id, NULL, 0, NULL, 0, true); /* DELETE's answer promises it is gone */
}

void store_after_commit(struct agent *a, void (*fn)(struct agent *a, int r, void *arg), void *arg)
{
    struct store_batch *b = a->batch;
    struct after *x = xzalloc(sizeof(*x));
    x->fn = fn;
    x->arg = arg;
    *b->after_tail = x;
    b->after_tail = &x->next;
    batch_queue(a);
}

static int store_batch_init(struct agent *a, struct berr **err)
{
    struct store_batch *b = xzalloc(sizeof(*b));
    b->pending_tail = &b->pending;
    b->after_tail = &b->after;
    a->batch = b;
    if (a->base) {
        b->ev_commit = event_new(a->base, -1, 0, on_commit, a);
        if (!b->ev_commit)
            return berr_setx(err, ENOMEM, "state.db: no commit event");
    }
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
