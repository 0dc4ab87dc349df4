/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/sched_test.c - the scheduler library's promise to its caller (sched/sched.h):
 * an ACCEPT's callback is called exactly once, also when sched_free comes before the
 * master's answer (ECANCELED), so a caller that gave it an allocation (berth-apps' launch
 * record) can free it there. Offline: the client is made subscribed by hand (as SUBSCRIBED
 * leaves it, sched-internal.h) and no request is ever sent (the loop never runs).
 * tests/system/test_apps_events.py's restart under a SAN=1 build found the leak this was. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
/* clang-format off: cmocka.h needs setjmp.h, stdarg.h and stddef.h before it */
#include <cmocka.h>
/* clang-format on */
#include <event2/event.h>

#include "common/common.h"
#include "sched/sched-internal.h"
#include "sched/sched.h"

struct answer {
    int calls, errnum, call_from_cb;
    size_t n;
};

static void on_accept(struct sched *s, const struct berr *err, char *const *ids, size_t n,
                      void *arg)
{
    (void) ids;
    struct answer *a = arg;
    a->calls++;
    a->errnum = err ? err->errnum : 0;
    a->n = n;
    a->call_from_cb = sched_revive(s); /* refused: the client is going */
}

static struct sched *subscribed_client(struct event_base *base)
{
    struct sched_config cfg = {.master = "http://127.0.0.1:9", .token = "t", .name = "unit"};
    struct sched_callbacks cb = {0};
    struct sched *s = NULL;
    struct berr *err = NULL;
    assert_int_equal(sched_new(base, &cfg, &cb, NULL, &s, &err), 0);
    s->subscribed = true;
    s->framework_id = xstrdup("framework-1");
    return s;
}

static void test_an_accept_under_way_at_free_is_answered_once(void **state)
{
    (void) state;
    struct event_base *base = event_base_new();
    assert_non_null(base);
    struct sched *s = subscribed_client(base);
    char *argv[] = {"/bin/true", NULL};
    struct ml_task_spec t = {
            .name = "t1", .command = {.argv = argv}, .cpus_millis = 100, .mem_bytes = 16 << 20};
    const char *offer = "offer-1";
    struct answer a = {0}, b = {0};
    assert_int_equal(sched_accept(s, &offer, 1, &t, NULL, 1, 1, on_accept, &a), 0);
    assert_int_equal(sched_accept(s, &offer, 1, &t, NULL, 1, 1, on_accept, &b), 0);
    assert_int_equal(sched_decline(s, &offer, 1, 1), 0); /* no callback of its own */
    assert_int_equal(a.calls, 0);
    sched_free(s);
    struct answer *both[] = {&a, &b};
    for (size_t i = 0; i < ARRAY_SIZE(both); i++) {
        assert_int_equal(both[i]->calls, 1);
        assert_int_equal(both[i]->errnum, ECANCELED);
        assert_int_equal(both[i]->n, 0);
        assert_int_equal(both[i]->call_from_cb, -ENOTCONN);
    }
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_an_accept_under_way_at_free_is_answered_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
