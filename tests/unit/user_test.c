/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/user_test.c - iso_user_resolve (isolator/user.c), the agent's lookup of a task's
 * user on the host's passwd: root, a name, a numeric uid without an entry, an unknown name,
 * and a lookup that could not be made (no fd left) told apart from an unknown user. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
/* clang-format off: cmocka.h needs the headers above first */
#include <cmocka.h>
/* clang-format on */

#include "isolator/isolator.h"

static void test_root_and_default(void **state)
{
    (void) state;
    struct iso_user u;
    char *home = NULL;
    struct berr *err = NULL;
    assert_int_equal(iso_user_resolve(NULL, &u, &home, &err), 0);
    assert_int_equal(u.uid, 0);
    assert_int_equal(u.gid, 0);
    assert_string_equal(home, "/root");
    free(home);
    assert_int_equal(iso_user_resolve("nobody", &u, NULL, &err), 0);
    assert_int_equal(u.uid, 65534);
}

static void test_numeric_without_entry(void **state)
{
    (void) state;
    struct iso_user u;
    char *home = NULL;
    struct berr *err = NULL;
    assert_int_equal(iso_user_resolve("123457", &u, &home, &err), 0);
    assert_int_equal(u.uid, 123457);
    assert_int_equal(u.gid, 123457); /* never group 0 */
    assert_int_equal(u.n_groups, 0);
    assert_string_equal(home, "/");
    free(home);
}

static void test_unknown_and_invalid(void **state)
{
    (void) state;
    struct iso_user u;
    struct berr *err = NULL;
    assert_int_equal(iso_user_resolve("no-such-user-berth", &u, NULL, &err), -ENOENT);
    assert_string_equal(berr_msg(err), "user 'no-such-user-berth' unknown");
    berr_free(&err);
    assert_int_equal(iso_user_resolve("99999999999", &u, NULL, &err), -EINVAL);
    berr_free(&err);
}

/* With every fd taken, the lookup fails with EMFILE: that is not "unknown" (an agent out of
 * fds once answered "user 'nobody' unknown"), and a numeric uid is not taken as entry-less. */
static void test_no_fd_left_is_not_unknown(void **state)
{
    (void) state;
    struct rlimit old, low = {16, 16};
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low.rlim_max = old.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fds[32], n = 0;
    while (n < 32 && (fds[n] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
        n++;
    struct iso_user u;
    struct berr *err = NULL, *err2 = NULL;
    int r = iso_user_resolve("daemon", &u, NULL, &err); /* not nobody: nss-systemd makes it up */
    int r2 = iso_user_resolve("1", &u, NULL, &err2);
    while (n > 0)
        close(fds[--n]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(r, -EMFILE);
    assert_non_null(strstr(berr_msg(err), "cannot read the host's user database"));
    assert_int_equal(r2, -EMFILE);
    berr_free(&err);
    berr_free(&err2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_root_and_default),
            cmocka_unit_test(test_numeric_without_entry),
            cmocka_unit_test(test_unknown_and_invalid),
            cmocka_unit_test(test_no_fd_left_is_not_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
