/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/rm_rf_test.c - common/util.c's rm_rf_here, the in-process `rm -rf
 * --one-file-system` of agentd/trash.c's thread (and of rm_rf): a tree goes; symbolic links
 * go without their targets; a tree deeper than the bound leaves its deep part (-ELOOP, for
 * rm); another file system mounted inside is not entered (-EBUSY; in a mount namespace of
 * the test's own, root only); a stop is honoured; a file or a missing path is no error. */
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
/* clang-format off: cmocka.h needs setjmp.h, stdarg.h and stddef.h before it */
#include <cmocka.h>
/* clang-format on */

#include "common/common.h"

static char top[64];

static int setup(void **state)
{
    (void) state;
    snprintf(top, sizeof(top), "/tmp/berth-rm-rf-test-XXXXXX");
    return mkdtemp(top) ? 0 : -1;
}

static int teardown(void **state)
{
    (void) state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf --one-file-system %s", top);
    return system(cmd);
}

static void put(const char *rel, const char *kind)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", top, rel);
    if (kind[0] == 'd')
        assert_int_equal(mkdir(p, kind[1] == '0' ? 0 : 0755), 0);
    else
        assert_int_equal(close(open(p, O_WRONLY | O_CREAT | O_EXCL, 0600)), 0);
}

static bool exists(const char *rel)
{
    char p[512];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", top, rel);
    return lstat(p, &st) == 0;
}

static char *at(const char *rel)
{
    static char p[512];
    snprintf(p, sizeof(p), "%s/%s", top, rel);
    return p;
}

static void test_a_tree_goes_and_links_are_not_followed(void **state)
{
    (void) state;
    put("outside", "d");
    put("outside/keep", "f");
    put("t", "d");
    put("t/a", "d");
    put("t/a/b", "d");
    put("t/a/b/f1", "f");
    put("t/a/f2", "f");
    put("t/closed", "d0"); /* mode 000: root removes it anyway, as rm does */
    put("t/closed/f3", "f");
    for (int i = 0; i < 300; i++) { /* more than one getdents64 buffer */
        char rel[64];
        snprintf(rel, sizeof(rel), "t/many-%03d-with-a-longer-name", i);
        put(rel, "f");
    }
    char target[512];
    snprintf(target, sizeof(target), "%s/outside", top);
    assert_int_equal(symlink(target, at("t/to-dir")), 0);
    snprintf(target, sizeof(target), "%s/outside/keep", top);
    assert_int_equal(symlink(target, at("t/a/to-file")), 0);
    assert_int_equal(rm_rf_here(at("t"), NULL), 0);
    assert_false(exists("t"));
    assert_true(exists("outside/keep"));
}

static void test_deeper_than_the_bound_is_left(void **state)
{
    (void) state;
    char rel[512] = "deep";
    put(rel, "d");
    put("deep/top-file", "f");
    for (int i = 1; i <= RM_RF_MAX_DEPTH + 2; i++) {
        strcat(rel, "/d");
        put(rel, "d");
    }
    strcat(rel, "/leaf");
    put(rel, "f");
    assert_int_equal(rm_rf_here(at("deep"), NULL), -ELOOP);
    assert_false(exists("deep/top-file"));
    assert_true(exists(rel));
}

static void test_another_file_system_is_not_entered(void **state)
{
    (void) state;
    if (geteuid() != 0) {
        print_message("not root: the mount part is not run\n");
        return;
    }
    put("m", "d");
    put("m/mnt", "d");
    put("m/f", "f");
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0) {
        /* a mount namespace of the child's own: the host's mounts are not touched */
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("tmpfs", at("m/mnt"), "tmpfs", 0, "size=1m") < 0)
            _exit(2);
        if (close(open(at("m/mnt/inside"), O_WRONLY | O_CREAT, 0600)) < 0)
            _exit(3);
        int r = rm_rf_here(at("m"), NULL);
        _exit(r == -EBUSY && exists("m/mnt/inside") && !exists("m/f") ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(p, &st, 0), p);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_stop_file_and_missing(void **state)
{
    (void) state;
    put("s", "d");
    put("s/d", "d");
    put("s/d/f", "f");
    atomic_bool stop = true;
    assert_int_equal(rm_rf_here(at("s"), &stop), -ECANCELED);
    assert_true(exists("s/d/f"));
    stop = false;
    assert_int_equal(rm_rf_here(at("s"), &stop), 0);
    assert_false(exists("s"));
    put("file", "f");
    assert_int_equal(rm_rf_here(at("file"), NULL), 0);
    assert_false(exists("file"));
    assert_int_equal(rm_rf_here(at("never-was"), NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_a_tree_goes_and_links_are_not_followed, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_deeper_than_the_bound_is_left, setup, teardown),
            cmocka_unit_test_setup_teardown(test_another_file_system_is_not_entered, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_stop_file_and_missing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
