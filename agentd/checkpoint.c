/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/checkpoint.c - state.db's WAL checkpoints on a thread (issue #18). SQLite
 * checkpoints when a commit leaves the WAL at 1,000 pages or more, inside that commit: the
 * loop's thread copied the pages into the database and fsynced the WAL, the database and,
 * at the WAL's reuse, its header: 6-20 ms a time, the longest turns of a burst of 1,000
 * launches (7 of them). Here the loop's connection has a wal_hook of its own instead (which
 * ends SQLite's automatic checkpoints), and at 1,000 new pages it asks a thread, which runs
 * a PASSIVE checkpoint on a connection of its own. Meanwhile the loop goes on but its
 * commits wait (store_hold; at most CKPT_HOLD_MS): the checkpoint then copies the whole WAL,
 * and the loop's next commit starts the WAL over, as after SQLite's own checkpoint. Without
 * the hold the loop's commits outran the thread, the WAL never started over in a burst
 * (28 MB, each fdatasync of the growing file journaling its size) and 1,000 kills took
 * 0.3-0.5 s longer. What the hold delays is what the loop's checkpoint delayed before; what
 * it no longer holds is every other request. The thread shares the agent's fd table:
 * SQLite's POSIX locks belong to a table (fl_owner), and its connections in one process
 * share them (SQLite's inode bookkeeping), so a table of its own, as the sync thread has,
 * would make one connection's unlock miss the other's lock. The table is grown first
 * (agent_grow_fd_table). Without the thread the loop checkpoints itself, as before. What
 * stays on the loop: the WAL header's fdatasync when its next write starts the WAL over
 * (synchronous=NORMAL does that), 0.3-1.3 ms. docs/design.md, departure 24. */
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentd/agent.h"
#include "agentd/spawn.h"

#define CKPT_FRAMES 1000 /* SQLite's own wal_autocheckpoint */
#define CKPT_HOLD_MS 1000

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool started, failed, asked, stopping;
    int last_rc, efd;
    char *path;
    struct event *ev_done, *ev_hold;
    int asked_at; /* the loop's: the WAL's pages at its last ask (fewer: it started over) */
} ck = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .efd = -1};

static void *ckpt_main(void *arg)
{
    (void) arg;
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(ck.path, &db, SQLITE_OPEN_READWRITE, NULL);
    /* a first read opens the WAL: before it, a checkpoint is a no-op that says SQLITE_OK */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
    pthread_mutex_lock(&ck.lock);
    for (;;) {
        while (!ck.asked && !ck.stopping)
            pthread_cond_wait(&ck.wake, &ck.lock);
        if (ck.stopping)
            break;
        ck.asked = false;
        pthread_mutex_unlock(&ck.lock);
        int r = rc == SQLITE_OK
                        ? sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL)
                        : rc;
        pthread_mutex_lock(&ck.lock);
        ck.last_rc = r == SQLITE_BUSY ? SQLITE_OK : r; /* busy: the next ask tries again */
        uint64_t one = 1;
        (void) !write(ck.efd, &one, sizeof(one));
    }
    pthread_mutex_unlock(&ck.lock);
    sqlite3_close(db);
    return NULL;
}

/* The checkpoint is done (or took too long): the loop's commits go on. */
static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void) what;
    uint64_t v;
    if (fd >= 0)
        (void) !read(fd, &v, sizeof(v));
    evtimer_del(ck.ev_hold);
    store_hold(arg, false);
}

static bool ckpt_ready(struct agent *a)
{
    if (ck.started || ck.failed)
        return ck.started;
    ck.failed = true;
    if ((ck.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
        !(ck.ev_done = event_new(a->base, ck.efd, EV_READ | EV_PERSIST, on_done, a)) ||
        event_add(ck.ev_done, NULL) < 0 || !(ck.ev_hold = evtimer_new(a->base, on_done, a))) {
        log_warning("state.db: no eventfd for the checkpoint thread: the loop checkpoints");
        return false;
    }
    agent_grow_fd_table();
    int r = thread_start_quiet(&ck.thread, "berth-ckpt", ckpt_main, NULL);
    if (r != 0) {
        log_warning("state.db: start the checkpoint thread: %s: the loop checkpoints", strerror(r));
        return false;
    }
    ck.started = true;
    ck.failed = false;
    return true;
}

static int on_wal(void *arg, sqlite3 *db, const char *name, int frames)
{
    struct agent *a = arg;
    /* once per 1,000 new pages, as SQLite does (asked at each commit past them, the thread
     * made 104 checkpoints in a burst of 1,000 launches, each with two fsyncs) */
    if (frames < ck.asked_at)
        ck.asked_at = 0;
    if (frames < ck.asked_at + CKPT_FRAMES)
        return SQLITE_OK;
    ck.asked_at = frames;
    if (!ckpt_ready(a)) {
        (void) sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return SQLITE_OK;
    }
    pthread_mutex_lock(&ck.lock);
    int last = ck.last_rc;
    ck.last_rc = SQLITE_OK;
    ck.asked = true;
    pthread_cond_signal(&ck.wake);
    pthread_mutex_unlock(&ck.lock);
    store_hold(a, true);
    struct timeval tv = {0, CKPT_HOLD_MS * 1000};
    evtimer_add(ck.ev_hold, &tv);
    if (last != SQLITE_OK)
        log_warning("state.db: checkpoint: %s (the next one tries again)", sqlite3_errstr(last));
    return SQLITE_OK;
}

/* The WAL's blocks allocated and written before the loop's first commit: up to the size at
 * which the WAL starts over (CKPT_FRAMES pages, and a quarter more for the commit that
 * crosses them and those held during the checkpoint), in zeros from its end. A fresh WAL
 * (every start: the last close removes it) grew by each commit, and each fdatasync of the
 * growing file waited for the new blocks' allocation to be written as well (ext4:
 * fsync_buffers_list): 3.5-4 ms for a launch's commit on a new agent against 0.6-1.5 ms
 * once the WAL had started over in its own blocks (2026-12-07). SQLite reads a WAL only up
 * to its first frame whose salt is not the header's, as with the frames a restart leaves
 * behind: zeros are past the end to it. Nothing has written the WAL in this process yet
 * but the schema (store_open), and no other process writes it (one agent per work_dir). */
static void wal_presize(struct agent *a)
{
    sqlite3_stmt *st = NULL;
    int64_t page = 0;
    if (sqlite3_prepare_v2(a->db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        page = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    const char *db = sqlite3_db_filename(a->db, "main");
    if (page <= 0 || !db)
        return;
    _cleanup_free_ char *path = xasprintf("%s-wal", db);
    off_t want = 32 + (off_t) (CKPT_FRAMES + CKPT_FRAMES / 4) * (24 + page);
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0 || sb.st_size >= want)
        return;
    static const char zeros[64 << 10];
    for (off_t at = sb.st_size; at < want;) {
        size_t n = want - at < (off_t) sizeof(zeros) ? (size_t) (want - at) : sizeof(zeros);
        ssize_t w = pwrite(fd, zeros, n, at);
        if (w <= 0) {
            log_warning("state.db: write '%s' ahead: %s", path, w < 0 ? strerror(errno) : "short");
            break;
        }
        at += w;
    }
    if (fdatasync(fd) < 0)
        log_warning("state.db: fdatasync '%s': %s", path, strerror(errno));
}

void store_checkpoints_start(struct agent *a)
{
    free(ck.path);
    ck.path = xasprintf("%s/state.db", a->cfg.work_dir);
    wal_presize(a);
    if (a->base)
        sqlite3_wal_hook(a->db, on_wal, a);
}

void store_checkpoints_stop(struct agent *a)
{
    if (a->db) /* the last commits need none: the loop's close checkpoints everything */
        sqlite3_wal_hook(a->db, NULL, NULL);
    if (ck.started) {
        pthread_mutex_lock(&ck.lock);
        ck.stopping = true;
        pthread_cond_signal(&ck.wake);
        pthread_mutex_unlock(&ck.lock);
        pthread_join(ck.thread, NULL);
    }
    store_hold(a, false);
    if (ck.ev_done)
        event_free(ck.ev_done);
    if (ck.ev_hold)
        event_free(ck.ev_hold);
    ck.ev_done = ck.ev_hold = NULL;
    closep(&ck.efd);
    free(ck.path);
    ck.path = NULL;
    ck.started = ck.failed = ck.asked = ck.stopping = false;
    ck.last_rc = SQLITE_OK;
    ck.asked_at = 0;
}
