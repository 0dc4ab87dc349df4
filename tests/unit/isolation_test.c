/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/isolation_test.c - the isolation list parser and formatter
 * (isolator/isolation.c): names, spacing, round trip, and errors naming the bad entry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
/* clang-format off: cmocka.h needs the headers above first */
#include <cmocka.h>
/* clang-format on */

#include "isolator/isolator.h"

static void test_parse_default(void **state)
{
    (void) state;
    unsigned f = 0;
    struct berr *err = NULL;
    assert_int_equal(iso_parse_isolation(ISO_DEFAULT_ISOLATION, &f, &err), 0);
    assert_null(err);
    unsigned want = ISO_CG_CPU | ISO_CG_MEM | ISO_CG_PIDS | ISO_CG_DEVICES | ISO_NS_PID |
                    ISO_NS_MOUNT | ISO_NS_IPC | ISO_NS_UTS | ISO_FS_RO_HOST | ISO_CAPS |
                    ISO_SECCOMP;
    assert_int_equal(f, want);
    char buf[512];
    iso_format_isolation(f, buf, sizeof(buf));
    assert_string_equal(buf, ISO_DEFAULT_ISOLATION);
}

static void test_parse_spaces_and_empty(void **state)
{
    (void) state;
    unsigned f = 123;
    assert_int_equal(iso_parse_isolation("", &f, NULL), 0);
    assert_int_equal(f, 0);
    assert_int_equal(iso_parse_isolation(" namespaces/net , linux/seccomp,, ", &f, NULL), 0);
    assert_int_equal(f, ISO_NS_NET | ISO_SECCOMP);
}

static void test_unknown(void **state)
{
    (void) state;
    unsigned f = 77;
    struct berr *err = NULL;
    assert_int_equal(iso_parse_isolation("cgroups/cpu, cgroups/gpu ,linux/seccomp", &f, &err),
                     -EINVAL);
    assert_non_null(err);
    assert_non_null(strstr(berr_msg(err), "'cgroups/gpu'"));
    assert_int_equal(err->code, BERR_INVALID_ARGUMENT);
    assert_int_equal(f, 77); /* untouched on failure */
    berr_free(&err);
    assert_int_equal(iso_parse_isolation("cgroups/cpu,", &f, NULL), 0);
    assert_int_equal(iso_parse_isolation("cgroups/CPU", &f, NULL), -EINVAL);
}

static void test_format_round_trip_each(void **state)
{
    (void) state;
    for (unsigned bit = 1; bit <= ISO_SECCOMP; bit <<= 1) {
        char buf[64];
        unsigned f = 0;
        iso_format_isolation(bit, buf, sizeof(buf));
        assert_true(strlen(buf) > 0);
        assert_null(strchr(buf, ','));
        assert_int_equal(iso_parse_isolation(buf, &f, NULL), 0);
        assert_int_equal(f, bit);
    }
    char buf[512];
    unsigned f = 0;
    iso_format_isolation(0xfff, buf, sizeof(buf));
    assert_int_equal(iso_parse_isolation(buf, &f, NULL), 0);
    assert_int_equal(f, 0xfff);
}

static void test_format_truncates_whole_names(void **state)
{
    (void) state;
    char buf[20];
    iso_format_isolation(ISO_CG_CPU | ISO_CG_MEM | ISO_CG_PIDS, buf, sizeof(buf));
    assert_string_equal(buf, "cgroups/cpu"); /* ",cgroups/mem" does not fit */
    iso_format_isolation(0, buf, sizeof(buf));
    assert_string_equal(buf, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_default),
            cmocka_unit_test(test_parse_spaces_and_empty),
            cmocka_unit_test(test_unknown),
            cmocka_unit_test(test_format_round_trip_each),
            cmocka_unit_test(test_format_truncates_whole_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
