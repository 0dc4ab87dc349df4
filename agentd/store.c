/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/store.c - the agent's durable container records in work_dir/state.db (SQLite, WAL).
 * A row is a container's record (record.c encodes it) keyed by id, plus the executor's start
 * time and the boot it ran in, so a restarted agent can tell its executor from a process
 * that reused the pid. lifecycle.c writes a record before every side effect of a launch and
 * at every transition; recover.c reads them back. Rows only: nothing above it is called.
 *
 * Durability: WAL with synchronous=NORMAL survives any crash of the agent (a commit is in
 * the WAL, in the page cache, before sqlite3_step returns); only a crash of the machine can
 * lose the last commits. Those matter for the states the API has announced: the 201 of a
 * launch (STARTING) and a task's end. Their commits are fsynced before anyone hears of them
 * (the WAL's fdatasync, 0.1-8 ms on this machine kind's disk): for the loop's commits by a
 * thread while the loop goes on (common/syncer.c, issue #18), at recovery and at the stop by
 * synchronous=FULL. The others (STAGING, RUNNING, kill requested) stay NORMAL: no task
 * survives a machine crash, and recovery re-derives them from status.json or says LOST. */
#include <fcntl.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "agentd/agent.h"
#include "common/syncer.h"

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
    bool write_only; /* store_after_write: runs once the commit is written, not synced */
    struct after *next;
};

/* What waits for the sync of a commit, or for those before it: need, the syncer's number. */
struct waiting {
    uint64_t need;
    int r;
    struct after *after;
    struct waiting *next;
};

struct store_batch {
    struct event *ev_commit;
    bool queued;  /* ev_commit is active */
    bool durable; /* a queued change must be fsynced */
    bool held;    /* store_hold: changes queue, the commit event waits */
    struct pending *pending, **pending_tail;
    struct after *after, **after_tail;
    /* the WAL's fsync thread (below); NULL until the first, or when it cannot (then FULL) */
    struct syncer *syncer;
    struct event *ev_synced;
    bool no_syncer;
    uint64_t failed_seen;   /* the syncer's failures already logged */
    unsigned test_delay_ms; /* BERTH_TEST_SYNC_DELAY_MS */
    struct waiting *waiting, **waiting_tail;
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
        if (b->ev_synced)
            event_free(b->ev_synced);
        syncer_free(b->syncer);
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
 * Changes queued (store_put, store_drop) during one turn are written in one transaction by
 * one commit event, fsynced once if any must survive a machine crash (issue #18: 1,000
 * launches cost a few commits, not one fsync each). What depends on a change being stored
 * (an answer, a signal, a waiter) runs after it (store_after_commit), in order. The fsync is
 * the sync thread's: the loop commits with synchronous=NORMAL (safe from a crash of the
 * agent), asks the thread, and runs what waits once the WAL is on disk, after all that
 * waited before. NORMAL still syncs at each checkpoint (checkpoint.c) and the WAL's header
 * at its reuse, so a synced WAL holds every commit FULL would have (sqlite.org/pragma.html).
 * While one sync runs, the commits of the next turns share the next one. */

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

static void run_afters(struct agent *a, struct after *after, int r)
{
    /* in order; what they queue goes into the next batch */
    while (after) {
        struct after *next = after->next;
        after->fn(a, r, after->arg);
        free(after);
        after = next;
    }
}

/* Runs a commit's write-only afters now, in order, and returns the rest: a kill promises
 * nothing of the disk (a machine crash ends the task anyway); its 202 waited ~8 ms a sync. */
static struct after *run_write_only(struct agent *a, struct after *list, int r)
{
    struct after *rest = NULL, **tail = &rest, *now = NULL, **now_tail = &now;
    for (struct after *x = list, *next, ***t; x; x = next) {
        next = x->next;
        x->next = NULL;
        t = x->write_only ? &now_tail : &tail;
        **t = x;
        *t = &x->next;
    }
    run_afters(a, now, r);
    return rest;
}

/* Runs, in the order of their commits, what waited on syncs that have finished. */
static void drain_waiting(struct agent *a)
{
    struct store_batch *b = a->batch;
    uint64_t done = 0, failed = 0;
    int err = 0;
    if (b->syncer)
        done = syncer_done(b->syncer, &failed, &err);
    if (failed > b->failed_seen) {
        /* the commits it covered are answered as failed: said stored, they might not be */
        log_msg(LOG_ERR, -err, "state.db: fdatasync of the WAL: %s", strerror(-err));
        b->failed_seen = failed;
    }
    while (b->waiting && b->waiting->need <= done) {
        struct waiting *w = b->waiting;
        b->waiting = w->next;
        if (!b->waiting)
            b->waiting_tail = &b->waiting;
        int r = w->r == 0 && w->need && w->need <= failed ? -EIO : w->r;
        run_afters(a, w->after, r);
        free(w);
    }
}

static void on_synced(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    drain_waiting(arg);
}

/* The sync thread, started at the loop's first durable commit; false (and the commits
 * fsync on the loop, synchronous=FULL, as before #18) when it cannot. */
static bool syncer_ready(struct agent *a)
{
    struct store_batch *b = a->batch;
    if (b->syncer || b->no_syncer || !a->base)
        return b->syncer != NULL;
    b->no_syncer = true;
    const char *db = sqlite3_db_filename(a->db, "main");
    _cleanup_free_ char *wal = xasprintf("%s-wal", db ? db : "state.db");
    _cleanup_berr_ struct berr *err = NULL;
    /* the WAL exists from the connection's first read on, and stays the same file while
     * it is open (a checkpoint rewinds it, only the last close removes it) */
    int fd = open(wal, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        berr_set(&err, errno, "open '%s'", wal);
    } else if ((b->syncer = syncer_new(fd, b->test_delay_ms, &err))) {
        b->ev_synced = event_new(a->base, syncer_fd(b->syncer), EV_READ | EV_PERSIST, on_synced, a);
        if (b->ev_synced && event_add(b->ev_synced, NULL) == 0) {
            b->no_syncer = false;
            return true;
        }
        berr_setx(&err, ENOMEM, "no event for the sync thread");
        syncer_free(b->syncer);
        b->syncer = NULL;
    }
    log_warning("state.db: %s: the loop fsyncs its commits itself", berr_msg(err));
    return false;
}

/* Writes the batch in one transaction. async (the loop's commit event): a durable batch is
 * committed with synchronous=NORMAL, its WAL fsynced by the sync thread, and what waits on
 * it runs when that is done; meanwhile the loop goes on. Otherwise (recovery, the stop,
 * no thread) it is fsynced here (FULL) and what waits runs before the return. */
static int commit(struct agent *a, bool async)
{
    struct store_batch *b = a->batch;
    b->queued = false;
    struct pending *p = b->pending;
    struct after *after = b->after;
    bool durable = b->durable;
    b->pending = NULL;
    b->pending_tail = &b->pending;
    b->after = NULL;
    b->after_tail = &b->after;
    b->durable = false;
    bool defer = async && durable && p && syncer_ready(a);
    bool full = durable && !defer;
    int r = 0;
    if (p) {
        _cleanup_free_ char *msg = NULL;
        if (full && b->test_delay_ms) { /* the same slow disk as the thread's (test hook) */
            struct timespec ts = {b->test_delay_ms / 1000, (b->test_delay_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (full)
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
        if (full)
            set_synchronous(a, false);
    }
    while (p) {
        struct pending *next = p->next;
        pending_free(p);
        p = next;
    }
    after = run_write_only(a, after, r);
    uint64_t need = defer && r == 0 ? syncer_ask(b->syncer) : 0;
    if (!need && (!b->waiting || !after)) {
        run_afters(a, after, r);
        return r;
    }
    /* behind the syncs before it, even with nothing to sync itself: answers keep the order
     * of their changes (a RUNNING with nobody waiting on it needs no place in that line) */
    struct waiting *w = xzalloc(sizeof(*w));
    w->need = need;
    w->r = r;
    w->after = after;
    *b->waiting_tail = w;
    b->waiting_tail = &w->next;
    return r;
}

int store_flush(struct agent *a)
{
    struct store_batch *b = a->batch;
    if (!b)
        return -EIO;
    if (b->syncer) {
        syncer_wait(b->syncer); /* the loop's commits first, and their answers */
        drain_waiting(a);
    }
    return commit(a, false);
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
    struct agent *a = arg;
    if (a->batch->held)
        a->batch->queued = false; /* store_hold(a, false) queues it again */
    else
        (void) commit(a, true);
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

void store_hold(struct agent *a, bool hold)
{
    if (a->batch && !(a->batch->held = hold) && (a->batch->pending || a->batch->after))
        batch_queue(a);
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

static struct after *add_after(struct agent *a, void (*fn)(struct agent *a, int r, void *arg),
                               void *arg)
{
    struct store_batch *b = a->batch;
    struct after *x = xzalloc(sizeof(*x));
    *x = (struct after){.fn = fn, .arg = arg};
    *b->after_tail = x;
    b->after_tail = &x->next;
    batch_queue(a);
    return x;
}

void store_after_commit(struct agent *a, void (*fn)(struct agent *a, int r, void *arg), void *arg)
{
    add_after(a, fn, arg);
}

void store_after_write(struct agent *a, void (*fn)(struct agent *a, int r, void *arg), void *arg)
{
    add_after(a, fn, arg)->write_only = true;
}

static int store_batch_init(struct agent *a, struct berr **err)
{
    struct store_batch *b = xzalloc(sizeof(*b));
    b->pending_tail = &b->pending;
    b->after_tail = &b->after;
    b->waiting_tail = &b->waiting;
    /* test hook (tests/system/test_store_sync.py): every fsync of a durable commit takes
     * this much longer, a slow disk */
    const char *delay = getenv("BERTH_TEST_SYNC_DELAY_MS");
    uint64_t ms;
    if (delay && parse_u64(delay, &ms) == 0 && ms > 0 && ms <= 60000) {
        b->test_delay_ms = (unsigned) ms;
        log_warning("BERTH_TEST_SYNC_DELAY_MS: every fsync of state.db waits %u ms first; "
                    "this is a test hook",
                    b->test_delay_ms);
    }
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
