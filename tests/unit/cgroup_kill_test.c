/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/cgroup_kill_test.c - the end of a container's cgroups (isolator/cgroup.c,
 * cgroup-util.c, the backends' kill/freeze/populated) on the fake trees of cgroup-fake.h, per
 * layout from one table: iso_cgroup_populated, the non-blocking kill (inotify shows what was
 * opened and written), kill_wait's rounds and timeout, destroy's single attempt. No root. */
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
/* cmocka.h needs these four first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "tests/unit/cgroup-fake.h"

/* ---- processes and file events ----------------------------------------------------------- */

/* A child of ours that only waits to be killed (and dies by itself after 10 s, so a
 * failing test leaves nothing behind). */
static pid_t sleeper(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(10);
        for (;;)
            pause();
    }
    return pid;
}

/* Reap pid if it ends within ms and return its wait status; else SIGKILL and reap it
 * ourselves and return -1. */
static int reap(pid_t pid, unsigned ms)
{
    int st;
    for (unsigned i = 0; i <= ms; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return st;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return -1;
}

static bool killed(int st)
{
    return st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
}

/* inotify on a directory: which of its files were opened and written, and how often. */
struct fslog {
    size_t n;
    struct {
        char name[64];
        uint32_t mask;
    } ev[512];
};

static int watch(const struct layout *L, const char *t, const char *ctr, const char *hier_file)
{
    char *rel = L->path(ctr, hier_file);
    char *dir = xasprintf("%s/%s", t, rel);
    *strrchr(dir, '/') = 0;
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    assert_true(fd >= 0);
    assert_true(inotify_add_watch(fd, dir, IN_OPEN | IN_ACCESS | IN_CLOSE_WRITE) >= 0);
    free(dir);
    free(rel);
    return fd;
}

static void drain(int fd, struct fslog *log)
{
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    log->n = 0;
    ssize_t len;
    while ((len = read(fd, buf, sizeof(buf))) > 0)
        for (char *p = buf; p < buf + len;) {
            const struct inotify_event *e = (const struct inotify_event *) (void *) p;
            if (e->len && log->n < ARRAY_SIZE(log->ev)) {
                snprintf(log->ev[log->n].name, sizeof(log->ev[0].name), "%s", e->name);
                log->ev[log->n++].mask = e->mask;
            }
            p += sizeof(*e) + e->len;
        }
}

/* How often file (a "hier:" prefix ignored; NULL: any file) saw an event of mask. */
static int seen(const struct fslog *log, const char *file, uint32_t mask)
{
    const char *colon = file ? strchr(file, ':') : NULL;
    const char *name = colon ? colon + 1 : file;
    int n = 0;
    for (size_t i = 0; i < log->n; i++)
        n += (!name || streq(log->ev[i].name, name)) && (log->ev[i].mask & mask);
    return n;
}

/* iso_cgroup_populated per layout: which file says so. Each row starts from a fresh
 * cgroup's files and changes up to two of them (a NULL content removes the file). */
static const struct populated_row {
    enum iso_cg_version version;
    const char *what;
    const char *set[2][2];
    bool want;
} populated_rows[] = {
        {ISO_CG_V1, "a fresh cgroup", {{NULL}}, false},
        {ISO_CG_V1, "a thread in tasks of one hierarchy", {{"pids:tasks", "4242\n"}}, true},
        {ISO_CG_V1,
         "tasks, not cgroup.procs: it keeps listing an exiting thread",
         {{"pids:cgroup.procs", "4242\n"}},
         false},
        {ISO_CG_V2, "a fresh cgroup", {{NULL}}, false},
        {ISO_CG_V2, "cgroup.events says so", {{"cgroup.events", "populated 1\nfrozen 0\n"}}, true},
        {ISO_CG_V2, "cgroup.events wins over cgroup.procs", {{"cgroup.procs", "4242\n"}}, false},
        {ISO_CG_V2,
         "without cgroup.events: cgroup.procs",
         {{"cgroup.events", NULL}, {"cgroup.procs", "4242\n"}},
         true},
        {ISO_CG_V2, "without cgroup.events, nobody listed", {{"cgroup.events", NULL}}, false},
};

static void test_populated(void **state)
{
    const struct layout *L = *state;
    _cleanup_free_ char *t = L->tree();
    struct iso_host *h = host_open(L, t, "berth");
    struct iso_cgroup *cg = ctr_create(L, h, t, "c", false);
    for (size_t i = 0; i < ARRAY_SIZE(populated_rows); i++) {
        const struct populated_row *r = &populated_rows[i];
        if (r->version != L->version)
            continue;
        populate(L, t, "c");
        for (size_t k = 0; k < 2 && r->set[k][0]; k++) {
            if (r->set[k][1]) {
                putc_(L, t, "c", r->set[k][0], r->set[k][1]);
                continue;
            }
            char *rel = L->path("c", r->set[k][0]), *p = xasprintf("%s/%s", t, rel);
            assert_int_equal(unlink(p), 0);
            free(p);
            free(rel);
        }
        if (iso_cgroup_populated(cg) != r->want)
            fail_msg("%s: %s: populated is %d", L->name, r->what, !r->want);
    }
    /* where the agent watches for the cgroup to empty */
    _cleanup_free_ char *events = iso_cgroup_events_path(cg);
    if (L->version == ISO_CG_V1) {
        assert_null(events);
    } else {
        _cleanup_free_ char *want = expand("{t}/x/berth/c/cgroup.events", t);
        assert_string_equal(events, want);
    }
    iso_cgroup_free(cg);
    iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);
}

/* The kill contract, per layout and kernel: what iso_cgroup_kill opened and wrote. */
static const struct kill_row {
    enum iso_cg_version version;
    const char *what;
    bool cgroup_kill;  /* the file exists (v2, Linux >= 5.14) */
    int kill_writes;   /* to cgroup.kill */
    int freezes;       /* writes to the freezer (freeze + thaw) */
    bool kills_listed; /* kill(2) reaches the pid cgroup.procs lists */
    int empty_writes;  /* writes of any kind on an empty cgroup */
} kill_rows[] = {
        {ISO_CG_V1, "v1: freeze, one kill round, thaw", false, 0, 2, true, 0},
        {ISO_CG_V2, "v2: one write to cgroup.kill", true, 1, 0, false, 1},
        {ISO_CG_V2, "v2 before 5.14: freeze, one kill round, thaw", false, 0, 2, true, 0},
};

static void remove_kill_file(const struct layout *L, const char *t, const char *ctr)
{
    char *rel = L->path(ctr, "cgroup.kill"), *p = xasprintf("%s/%s", t, rel);
    (void) unlink(p);
    free(p);
    free(rel);
}

static void test_kill(void **state)
{
    const struct layout *L = *state;
    for (size_t k = 0; k < ARRAY_SIZE(kill_rows); k++) {
        const struct kill_row *row = &kill_rows[k];
        if (row->version != L->version)
            continue;
        _cleanup_free_ char *t = L->tree();
        _cleanup_berr_ struct berr *err = NULL;
        struct iso_host *h = host_open(L, t, "berth");
        struct iso_cgroup *cg = ctr_create(L, h, t, "k", true);
        if (!row->cgroup_kill)
            remove_kill_file(L, t, "k");
        _cleanup_close_ int ifd = watch(L, t, "k", L->freezer);
        struct fslog log;

        /* Empty: the usual end of a task. Only cgroup.kill, or nothing, is written. */
        assert_int_equal(iso_cgroup_kill(cg, &err), 0);
        drain(ifd, &log);
        if (seen(&log, NULL, IN_CLOSE_WRITE) != row->empty_writes)
            fail_msg("%s: empty cgroup: %d writes, want %d", row->what,
                     seen(&log, NULL, IN_CLOSE_WRITE), row->empty_writes);

        /* A task that stays listed and populated: the fake kernel never takes it out. */
        pid_t pid = sleeper();
        char buf[32];
        snprintf(buf, sizeof(buf), "%d\n", (int) pid);
        putc_(L, t, "k", L->procs_file, buf);
        putc_(L, t, "k", L->pids_file, L->version == ISO_CG_V1 ? buf : "populated 1\nfrozen 0\n");
        assert_true(iso_cgroup_populated(cg));
        drain(ifd, &log);
        uint64_t t0 = now_monotonic_ns();
        int r = iso_cgroup_kill(cg, &err);
        uint64_t ms = ms_since(t0);
        drain(ifd, &log);
        if (r != 0)
            fail_msg("%s: %d: %s", row->what, r, berr_msg(err));
        /* returned at once: no wait on cgroup.events, no second round */
        if (ms > 1000) /* the old kill waited up to 2 s */
            fail_msg("%s: took %" PRIu64 " ms", row->what, ms);
        assert_int_equal(seen(&log, "cgroup.events", IN_OPEN), 0);
        assert_int_equal(seen(&log, "cgroup.kill", IN_CLOSE_WRITE), row->kill_writes);
        assert_int_equal(seen(&log, L->freezer, IN_CLOSE_WRITE), row->freezes);
        /* the freezer is only written: nobody waits for FROZEN */
        assert_int_equal(seen(&log, L->freezer, IN_OPEN), row->freezes);
        assert_string_equal(getc_(L, t, "k", L->freezer), L->thawed);
        if (row->kill_writes)
            assert_string_equal(getc_(L, t, "k", "cgroup.kill"), "1");
        /* v1 reads cgroup.procs twice (anyone there? then kill them); v2 not at all */
        assert_int_equal(seen(&log, L->procs_file, IN_OPEN), row->kills_listed ? 2 : 0);
        int st = reap(pid, row->kills_listed ? 2000 : 50);
        if (killed(st) != row->kills_listed)
            fail_msg("%s: the listed pid was%s killed", row->what, row->kills_listed ? " not" : "");
        /* still populated: the caller repeats the kill, or waits for cgroup.events */
        assert_true(iso_cgroup_populated(cg));
        iso_cgroup_free(cg);
        iso_host_free(h);
        assert_int_equal(rm_rf(t), 0);
    }
}

/* A child that empties the fake cgroup after 50 ms, as the kernel would after the kill. */
static pid_t emptier(const struct layout *L, const char *t, const char *ctr)
{
    char *rel = L->path(ctr, L->pids_file), *p = xasprintf("%s/%s", t, rel);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
        _exit(write_file_at(AT_FDCWD, p, L->version == ISO_CG_V1 ? "" : "populated 0\n") < 0);
    }
    free(p);
    free(rel);
    return pid;
}

static void test_kill_wait(void **state)
{
    const struct layout *L = *state;
    for (size_t k = 0; k < ARRAY_SIZE(kill_rows); k++) {
        const struct kill_row *row = &kill_rows[k];
        if (row->version != L->version)
            continue;
        _cleanup_free_ char *t = L->tree();
        _cleanup_berr_ struct berr *err = NULL;
        struct iso_host *h = host_open(L, t, "berth");
        struct iso_cgroup *cg = ctr_create(L, h, t, "k", true);
        if (!row->cgroup_kill)
            remove_kill_file(L, t, "k");
        _cleanup_close_ int ifd = watch(L, t, "k", L->freezer);
        struct fslog log;

        /* empty: returns at once without a kill */
        assert_int_equal(iso_cgroup_kill_wait(cg, 1000, &err), 0);
        drain(ifd, &log);
        assert_int_equal(seen(&log, NULL, IN_CLOSE_WRITE), 0);

        /* a task the fake kernel never takes out: rounds until the timeout, then EBUSY */
        pid_t pid = sleeper();
        char buf[32];
        snprintf(buf, sizeof(buf), "%d\n", (int) pid);
        putc_(L, t, "k", L->procs_file, buf);
        const char *full = L->version == ISO_CG_V1 ? buf : "populated 1\nfrozen 0\n";
        putc_(L, t, "k", L->pids_file, full);
        drain(ifd, &log);
        uint64_t t0 = now_monotonic_ns();
        assert_int_equal(iso_cgroup_kill_wait(cg, 1000, &err), -EBUSY);
        uint64_t ms = ms_since(t0);
        drain(ifd, &log);
        assert_int_equal(berr_errno(err), EBUSY);
        assert_string_equal(berr_msg(err), "processes remain in the cgroup 1000 ms after SIGKILL");
        berr_free(&err);
        if (ms < 1000 || ms > 3000)
            fail_msg("%s: gave up after %" PRIu64 " ms, want 1000", row->what, ms);
        /* several rounds (v2 waits for cgroup.events at most 100 ms at a time, v1 sleeps
         * 1-10 ms), each one a kill; the freezer thawed after every round. 1 s leaves room
         * for a loaded machine that oversleeps. */
        int rounds = row->kill_writes ? seen(&log, "cgroup.kill", IN_CLOSE_WRITE)
                                      : seen(&log, L->freezer, IN_CLOSE_WRITE) / 2;
        if (rounds < 2)
            fail_msg("%s: %d kill rounds in 1000 ms", row->what, rounds);
        assert_int_equal(seen(&log, L->freezer, IN_CLOSE_WRITE) % 2, 0);
        assert_string_equal(getc_(L, t, "k", L->freezer), L->thawed);
        assert_int_equal(killed(reap(pid, row->kills_listed ? 2000 : 0)), row->kills_listed);
        putc_(L, t, "k", L->procs_file, "");

        /* timeout 0 still kills once */
        drain(ifd, &log);
        assert_int_equal(iso_cgroup_kill_wait(cg, 0, &err), -EBUSY);
        berr_free(&err);
        drain(ifd, &log);
        assert_int_equal(seen(&log, "cgroup.kill", IN_CLOSE_WRITE), row->kill_writes);

        /* the cgroup empties while it waits: 0 well before the timeout */
        pid_t e = emptier(L, t, "k");
        t0 = now_monotonic_ns();
        assert_int_equal(iso_cgroup_kill_wait(cg, 5000, &err), 0);
        ms = ms_since(t0);
        if (ms < 40 || ms > 4000)
            fail_msg("%s: took %" PRIu64 " ms to see the cgroup empty after 50 ms", row->what, ms);
        int st;
        assert_int_equal(waitpid(e, &st, 0), e);
        assert_int_equal(st, 0);
        iso_cgroup_free(cg);
        iso_host_free(h);
        assert_int_equal(rm_rf(t), 0);
    }
}

/* In a child, check cond or say why not and exit 1 (cmocka's asserts must not run there). */
#define CHILD_CHECK(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "child, line %d: ", __LINE__);                                         \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            _exit(1);                                                                              \
        }                                                                                          \
    } while (0)

/* A mount point is the one directory a fake tree can make rmdir fail with EBUSY, as the
 * kernel does for a cgroup that still counts a task. Runs in a child, in its own user and
 * mount namespaces (no root needed; the mounts go with the child). Exit 77: no namespaces. */
static int destroy_busy_child(const struct layout *L, const char *t, struct iso_host *h)
{
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
        return 77;
    struct berr *err = NULL;
    struct iso_cgroup *cg = NULL;
    CHILD_CHECK(iso_cgroup_create(h, "b", &cg, &err) == 0, "create: %s", berr_msg(err));
    char *rel = L->path("b", "cpu:"), *busy = xasprintf("%s/%s", t, rel);
    busy[strlen(busy) - 1] = 0; /* the trailing '/' */
    if (mount("none", busy, "tmpfs", 0, NULL) < 0)
        return 77;
    uint64_t t0 = now_monotonic_ns();
    int r = iso_cgroup_destroy(cg, &err);
    CHILD_CHECK(r == -EBUSY, "destroy: %d, want -EBUSY", r);
    /* one attempt: no retry with sleeps in between */
    CHILD_CHECK(ms_since(t0) < 200, "destroy took %" PRIu64 " ms", ms_since(t0));
    CHILD_CHECK(berr_errno(err) == EBUSY, "errno %d", berr_errno(err));
    char *msg = xasprintf("rmdir '%s': Device or resource busy", busy);
    CHILD_CHECK(streq(berr_msg(err), msg), "message '%s'", berr_msg(err));
    berr_free(&err);
    /* one attempt per hierarchy: the others are gone, the busy one stays */
    for (size_t i = 1; i < L->n_dirs; i++) {
        char *f = xasprintf("%s:", v1_hiers[i]);
        CHILD_CHECK(!existsc(L, t, "b", f), "'b' left in '%s'", v1_hiers[i]);
        free(f);
    }
    CHILD_CHECK(access(busy, F_OK) == 0, "the busy dir went");
    CHILD_CHECK(iso_cgroup_destroy(cg, &err) == -EBUSY, "second destroy");
    berr_free(&err);
    CHILD_CHECK(umount(busy) == 0, "umount: %m");
    CHILD_CHECK(iso_cgroup_destroy(cg, &err) == 0, "destroy after umount: %s", berr_msg(err));
    CHILD_CHECK(access(busy, F_OK) < 0, "still there");
    iso_cgroup_free(cg);

    if (L->n_dirs > 1) {
        /* a busy hierarchy and a failing one: the failure wins, retrying would not cure it */
        CHILD_CHECK(iso_cgroup_create(h, "b", &cg, &err) == 0, "create: %s", berr_msg(err));
        CHILD_CHECK(mount("none", busy, "tmpfs", 0, NULL) == 0, "mount: %m");
        char *srel = L->path("b", "memory:stray"), *stray = xasprintf("%s/%s", t, srel);
        int fd = open(stray, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        CHILD_CHECK(fd >= 0, "create '%s': %m", stray);
        close(fd);
        free(stray);
        free(srel);
        r = iso_cgroup_destroy(cg, &err);
        CHILD_CHECK(r == -ENOTEMPTY, "destroy: %d, want -ENOTEMPTY", r);
        CHILD_CHECK(strstr(berr_msg(err), "/memory/process_api/x/berth/b'"), "message '%s'",
                    berr_msg(err));
        berr_free(&err);
        iso_cgroup_free(cg);
    }
    free(msg);
    free(busy);
    free(rel);
    return 0;
}

static void test_destroy_busy(void **state)
{
    const struct layout *L = *state;
    _cleanup_free_ char *t = L->tree();
    struct iso_host *h = host_open(L, t, "berth");
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(destroy_busy_child(L, t, h));
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) == 77) {
        print_message("skipped: no user namespace with a tmpfs mount here (unshare or mount "
                      "failed), so no directory can be made busy\n");
        iso_host_free(h);
        assert_int_equal(rm_rf(t), 0);
        skip();
    }
    assert_int_equal(WEXITSTATUS(st), 0);
    iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);
}

/* A task being SIGKILLed loses its CPU quota first (its exit is charged to its cgroup: a
 * 0.001-CPU task took 100 ms to die): only the quota changes, to the kernel's "none". */
static void test_unthrottle(void **state)
{
    const struct layout *L = *state;
    _cleanup_free_ char *t = L->tree();
    _cleanup_berr_ struct berr *err = NULL;
    struct iso_host *h = host_open(L, t, "berth");
    struct iso_cgroup *cg = ctr_create(L, h, t, "u", true);
    const char *quota = L->version == ISO_CG_V1 ? "cpu.cfs_quota_us" : "cpu.max";
    putc_(L, t, "u", quota, L->version == ISO_CG_V1 ? "100" : "100 100000");
    const char *shares = L->version == ISO_CG_V1 ? "cpu.shares" : "cpu.weight";
    _cleanup_free_ char *shares0 = strdup(getc_(L, t, "u", shares));
    assert_int_equal(iso_cgroup_unthrottle(cg, &err), 0);
    assert_string_equal(getc_(L, t, "u", quota), L->version == ISO_CG_V1 ? "-1" : "max");
    assert_string_equal(getc_(L, t, "u", shares), shares0);
    iso_cgroup_free(cg);
    iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            PER_LAYOUT(test_populated),    PER_LAYOUT(test_kill),       PER_LAYOUT(test_kill_wait),
            PER_LAYOUT(test_destroy_busy), PER_LAYOUT(test_unthrottle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
