/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/seccomp_test.c - the task's seccomp deny-list as the executor gets it: the
 * program embedded at build time (isolator/seccomp-prog.c) is what isolator/seccomp.c
 * compiles with this build's libseccomp, and a process that loads it is refused what the
 * list denies (EPERM; ENOSYS for clone3) and allowed the rest. No root needed. */
#include <errno.h>
#include <linux/filter.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
/* clang-format off: cmocka.h needs setjmp.h, stdarg.h and stddef.h before it */
#include <cmocka.h>
/* clang-format on */

#include "isolator/isolator.h"

static void test_the_embedded_program_is_the_filter_compiled_now(void **state)
{
    (void) state;
    struct iso_bpf now;
    struct berr *err = NULL;
    assert_int_equal(iso_seccomp_build(&now, &err), 0);
    assert_true(iso_seccomp_prog.len > 10);
    assert_int_equal(iso_seccomp_prog.len, now.len);
    assert_memory_equal(iso_seccomp_prog.insns, now.insns, now.len * sizeof(struct sock_filter));
    free(now.insns);
}

/* In the child: which check failed (1..), or 0. */
static int under_the_filter(void)
{
    struct berr *err = NULL;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
        iso_seccomp_install(&iso_seccomp_prog, &err) < 0)
        return 1;
    if (syscall(SYS_keyctl, 0, 0, 0, 0, 0) != -1 || errno != EPERM)
        return 2;
    if (unshare(CLONE_NEWUSER) != -1 || errno != EPERM)
        return 3;
    if (syscall(SYS_clone3, NULL, 0) != -1 || errno != ENOSYS)
        return 4;
    if (syscall(SYS_mount, "none", "/", "tmpfs", 0, NULL) != -1 || errno != EPERM)
        return 5;
    if (syscall(SYS_bpf, 0, NULL, 0) != -1 || errno != EPERM)
        return 6;
    if (getppid() <= 0 || unshare(0) != 0) /* allowed: unshare without CLONE_NEWUSER */
        return 7;
    return 0;
}

static void test_a_process_under_it_is_refused_what_it_denies(void **state)
{
    (void) state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(under_the_filter());
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_the_embedded_program_is_the_filter_compiled_now),
            cmocka_unit_test(test_a_process_under_it_is_refused_what_it_denies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
