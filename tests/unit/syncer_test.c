/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/syncer_test.c - common/syncer.c, the fdatasync thread agentd/store.c syncs
 * state.db's WAL with: asks are numbered, a sync covers every ask made before it started,
 * the eventfd says when one finished, a failed fdatasync is reported for what it covered,
 * a stop finishes what was asked, the thread holds no fd of the loop's. No root needed. */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
/* clang-format off: cmocka.h needs setjmp.h, stdarg.h and stddef.h before it */
#include <cmocka.h>
/* clang-format on */

#include "common/syncer.h"

static int temp_file(void)
{
    char path[] = "/tmp/berth-syncer-test-XXXXXX";
    int fd = mkostemp(path, O_CLOEXEC);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, "x", 1), 1);
    return fd;
}

static bool readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) == 1;
}

static void test_asks_are_covered_in_order(void **state)
{
    (void) state;
    struct berr *err = NULL;
    struct syncer *s = syncer_new(temp_file(), 0, &err);
    assert_non_null(s);
    assert_int_equal(syncer_ask(s), 1);
    assert_int_equal(syncer_ask(s), 2);
    uint64_t failed = 7, done = 0;
    int e = 7;
    while (done < 2) {
        assert_true(readable(syncer_fd(s), 5000)); /* the loop is woken, never polls */
        done = syncer_done(s, &failed, &e);
    }
    assert_int_equal(done, 2);
    assert_int_equal(failed, 0);
    assert_int_equal(e, 0);
    assert_false(readable(syncer_fd(s), 0)); /* syncer_done emptied the eventfd */
    assert_int_equal(syncer_ask(s), 3);
    syncer_wait(s);
    assert_int_equal(syncer_done(s, &failed, &e), 3);
    syncer_free(s);
}

/* Asks made while a (slow) sync runs all wait for the next one: two syncs, not five. */
static void test_a_burst_shares_the_next_sync(void **state)
{
    (void) state;
    struct berr *err = NULL;
    struct syncer *s = syncer_new(temp_file(), 200, &err);
    assert_non_null(s);
    syncer_ask(s);
    for (int i = 0; i < 4; i++)
        syncer_ask(s);
    uint64_t failed, done;
    int e, wakeups = 0;
    do {
        assert_true(readable(syncer_fd(s), 5000));
        done = syncer_done(s, &failed, &e);
        wakeups++;
    } while (done < 5);
    assert_true(wakeups <= 2);
    syncer_free(s);
}

/* fdatasync on a pipe fails (EINVAL): the asks it covered are reported as failed. */
static void test_a_failed_sync_is_reported(void **state)
{
    (void) state;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    close(p[1]);
    struct berr *err = NULL;
    struct syncer *s = syncer_new(p[0], 0, &err);
    assert_non_null(s);
    uint64_t n = syncer_ask(s);
    syncer_wait(s);
    uint64_t failed = 0;
    int e = 0;
    assert_int_equal(syncer_done(s, &failed, &e), n);
    assert_int_equal(failed, n);
    assert_int_equal(e, -EINVAL);
    syncer_free(s);
}

/* A stop right after an ask still syncs it (the agent's last answers wait on it). */
static void test_free_finishes_what_was_asked(void **state)
{
    (void) state;
    struct berr *err = NULL;
    struct syncer *s = syncer_new(temp_file(), 50, &err);
    assert_non_null(s);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    syncer_ask(s);
    syncer_free(s); /* returns only after the sync, which waits 50 ms first */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double) (t1.tv_sec - t0.tv_sec) * 1e3 + (double) (t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(ms >= 45);
    syncer_free(NULL);
}

/* The fds in a task's table (/proc/self/task/TID/fd), -1 when unreadable; the opendir's
 * own fd counts when the task shares our table. */
static int task_fds(const char *tid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%s/fd", tid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *de; (de = readdir(d));)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The thread has a table of open files of its own, with only the file and its eventfd: a
 * thread that shares the loop's table makes every growth of it wait for an RCU grace period
 * (10-17 ms each with ~18 fds per container). Other fds of the process are not in it. */
static void test_the_thread_holds_only_its_two_fds(void **state)
{
    (void) state;
    int extra[8];
    for (size_t i = 0; i < ARRAY_SIZE(extra); i++)
        extra[i] = temp_file();
    struct berr *err = NULL;
    struct syncer *s = syncer_new(temp_file(), 0, &err);
    assert_non_null(s);
    char self[32];
    snprintf(self, sizeof(self), "%d", (int) getpid());
    int main_fds = task_fds(self), thread_fds = -1;
    assert_true(main_fds >= 10); /* ours: the extras, the file and the eventfd, stdio */
    for (int tries = 0; tries < 500 && thread_fds != 2; tries++) {
        DIR *d = opendir("/proc/self/task");
        assert_non_null(d);
        for (struct dirent *de; (de = readdir(d));)
            if (de->d_name[0] != '.' && strcmp(de->d_name, self) != 0)
                thread_fds = task_fds(de->d_name);
        closedir(d);
        if (thread_fds != 2) {
            struct timespec ts = {0, 10 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    assert_int_equal(thread_fds, 2);
    assert_int_equal(syncer_ask(s), 1); /* and it still syncs through its own */
    syncer_wait(s);
    uint64_t failed = 7;
    int e = 7;
    assert_int_equal(syncer_done(s, &failed, &e), 1);
    assert_int_equal(e, 0);
    syncer_free(s);
    for (size_t i = 0; i < ARRAY_SIZE(extra); i++)
        close(extra[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_asks_are_covered_in_order),
            cmocka_unit_test(test_a_burst_shares_the_next_sync),
            cmocka_unit_test(test_a_failed_sync_is_reported),
            cmocka_unit_test(test_free_finishes_what_was_asked),
            cmocka_unit_test(test_the_thread_holds_only_its_two_fds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
