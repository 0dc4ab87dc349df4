/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/masterlink_health_test.c - the task spec's health_check member
 * (masterlink/spec-health.c, issue #16): defaults, round trips, port_index against the
 * task's ports, every bad field refused by name; "healthy" in status updates and the reason
 * HEALTH_CHECK_FAILED (codec.c). masterlink_test.c covers the rest of masterlink. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
/* clang-format off: cmocka.h needs the headers above first */
#include <cmocka.h>
/* clang-format on */

#include "masterlink/masterlink.h"

static int spec_of(const char *json, unsigned flags, struct ml_task_spec *s, struct berr **err)
{
    yajl_val v = json_parse(json, strlen(json), err);
    int r = v ? ml_task_spec_parse(v, flags, s, err) : -EINVAL;
    yajl_tree_free(v);
    return r;
}

/* health_check (issue #16): defaults filled, every field round-trips, port_index names one of
 * the task's ports, and each bad field is refused by name. */
static void test_health_check_spec(void **state)
{
    (void) state;
    struct ml_task_spec s, t;
    struct berr *err = NULL;
    assert_int_equal(spec_of("{\"command\":{\"argv\":[\"x\"]},\"resources\":{\"cpus\":1,\"mem\":1},"
                             "\"health_check\":{\"type\":\"TCP\",\"port\":8080}}",
                             0, &s, &err),
                     0);
    const struct ml_health_check *hc = s.health_check;
    assert_non_null(hc);
    assert_int_equal(hc->type, ML_HEALTH_TCP);
    assert_int_equal(hc->port, 8080);
    assert_int_equal(hc->port_index, -1);
    assert_null(hc->path);
    assert_int_equal(hc->delay_ms, 0);
    assert_int_equal(hc->interval_ms, 10000);
    assert_int_equal(hc->timeout_ms, 5000);
    assert_int_equal(hc->grace_ms, 60000);
    assert_int_equal(hc->consecutive_failures, 3);
    ml_task_spec_done(&s);
    assert_int_equal(spec_of("{\"command\":{\"argv\":[\"x\"]},\"resources\":{\"cpus\":1,\"mem\":1},"
                             "\"ports\":2,\"health_check\":{\"type\":\"http\",\"port_index\":1,"
                             "\"path\":\"/ready?x=1\",\"delay\":\"0.5\",\"interval\":0.25,"
                             "\"timeout\":2,\"grace\":0,\"consecutive_failures\":7}}",
                             0, &s, &err),
                     0);
    hc = s.health_check;
    assert_int_equal(hc->type, ML_HEALTH_HTTP);
    assert_int_equal(hc->port, 0);
    assert_int_equal(hc->port_index, 1);
    assert_string_equal(hc->path, "/ready?x=1");
    assert_int_equal(hc->delay_ms, 500);
    assert_int_equal(hc->interval_ms, 250);
    assert_int_equal(hc->timeout_ms, 2000);
    assert_int_equal(hc->grace_ms, 0);
    assert_int_equal(hc->consecutive_failures, 7);
    char *text = ml_task_spec_encode(&s);
    assert_non_null(strstr(text, "\"health_check\":{\"type\":\"http\""));
    assert_int_equal(spec_of(text, 0, &t, &err), 0);
    char *again = ml_task_spec_encode(&t);
    assert_string_equal(text, again);
    free(text);
    free(again);
    ml_task_spec_done(&t);
    ml_task_spec_done(&s);
    assert_int_equal(spec_of("{\"command\":{\"argv\":[\"x\"]},\"resources\":{\"cpus\":1,\"mem\":1},"
                             "\"health_check\":{\"type\":\"command\",\"command\":{\"shell\":"
                             "\"test -e ok\"}}}",
                             0, &s, &err),
                     0);
    assert_int_equal(s.health_check->type, ML_HEALTH_COMMAND);
    assert_string_equal(s.health_check->command.argv[2], "test -e ok");
    text = ml_task_spec_encode(&s);
    assert_int_equal(spec_of(text, 0, &t, &err), 0);
    assert_string_equal(t.health_check->command.shell, "test -e ok");
    free(text);
    ml_task_spec_done(&t);
    ml_task_spec_done(&s);
#define HC(x)                                                                                      \
    "{\"command\":{\"argv\":[\"x\"]},\"resources\":{\"cpus\":1,\"mem\":1},\"health_check\":" x "}"
    static const struct {
        const char *json, *needle;
    } bad[] = {
            {HC("[]"), "health_check must be an object"},
            {HC("{\"port\":1}"), "health_check.type"},
            {HC("{\"type\":\"udp\",\"port\":1}"), "health_check.type"},
            {HC("{\"type\":\"tcp\",\"port\":1,\"protocol\":\"x\"}"), "unknown field 'protocol'"},
            {HC("{\"type\":\"tcp\"}"), "exactly one of port"},
            {HC("{\"type\":\"tcp\",\"port\":1,\"port_index\":0}"), "exactly one of port"},
            {HC("{\"type\":\"tcp\",\"port\":65536}"), "health_check.port"},
            {HC("{\"type\":\"tcp\",\"port\":-1}"), "health_check.port"},
            {HC("{\"type\":\"tcp\",\"port_index\":0}"), "health_check.port_index"},
            {HC("{\"type\":\"tcp\",\"port\":1,\"path\":\"/\"}"), "health_check.path"},
            {HC("{\"type\":\"http\",\"port\":1,\"path\":\"x\"}"), "health_check.path"},
            {HC("{\"type\":\"http\",\"port\":1,\"path\":\"/\\n\"}"), "health_check.path"},
            {HC("{\"type\":\"http\",\"port\":1,\"command\":{\"argv\":[\"x\"]}}"),
             "health_check.command"},
            {HC("{\"type\":\"command\"}"), "health_check.command is required"},
            {HC("{\"type\":\"command\",\"command\":{\"argv\":[]}}"), "health_check: "},
            {HC("{\"type\":\"command\",\"command\":{\"argv\":[\"x\"]},\"port\":1}"),
             "takes no path, port"},
            {HC("{\"type\":\"tcp\",\"port\":1,\"interval\":0.05}"), "health_check.interval"},
            {HC("{\"type\":\"tcp\",\"port\":1,\"interval\":86401}"), "health_check.interval"},
            {HC("{\"type\":\"tcp\",\"port\":1,\"timeout\":0}"), "health_check.timeout"},
            {HC("{\"type\":\"tcp\",\"port\":1,\"delay\":-1}"), "health_check.delay"},
            {HC("{\"type\":\"tcp\",\"port\":1,\"grace\":\"1.2345\"}"), "health_check.grace"},
            {HC("{\"type\":\"tcp\",\"port\":1,\"grace\":true}"), "health_check.grace"},
            {HC("{\"type\":\"tcp\",\"port\":1,\"consecutive_failures\":0}"),
             "health_check.consecutive_failures"},
            {HC("{\"type\":\"tcp\",\"port\":1,\"consecutive_failures\":1001}"),
             "health_check.consecutive_failures"},
    };
#undef HC
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        if (spec_of(bad[i].json, 0, &s, &err) != -EINVAL)
            fail_msg("accepted: %s", bad[i].json);
        assert_int_equal(err->code, BERR_INVALID_ARGUMENT);
        if (!strstr(berr_msg(err), bad[i].needle))
            fail_msg("'%s' does not say '%s'", berr_msg(err), bad[i].needle);
        berr_free(&err);
    }
    /* null is no check */
    assert_int_equal(spec_of("{\"command\":{\"argv\":[\"x\"]},\"resources\":{\"cpus\":1,\"mem\":1},"
                             "\"health_check\":null}",
                             0, &s, &err),
                     0);
    assert_null(s.health_check);
    ml_task_spec_done(&s);
}

/* A RUNNING update may carry "healthy"; absent stays unknown. */
static void test_status_healthy(void **state)
{
    (void) state;
    struct berr *err = NULL;
    for (int h = ML_HEALTH_UNKNOWN; h <= ML_UNHEALTHY; h++) {
        struct ml_status s = {.state = ML_RUNNING, .healthy = (enum ml_health) h};
        snprintf(s.task_id, sizeof(s.task_id), "t-1");
        assert_int_equal(ml_uuid_new(s.uuid), 0);
        char *json = ml_status_encode(&s);
        assert_true((strstr(json, "healthy") != NULL) == (h != ML_HEALTH_UNKNOWN));
        yajl_val v = json_parse(json, strlen(json), &err);
        struct ml_status d;
        assert_int_equal(ml_status_decode(v, &d, &err), 0);
        assert_int_equal(d.healthy, h);
        ml_status_done(&d);
        yajl_tree_free(v);
        free(json);
    }
    assert_string_equal(ml_reason_name(ML_REASON_HEALTH_CHECK_FAILED), "HEALTH_CHECK_FAILED");
    assert_int_equal(ml_reason_from_name("HEALTH_CHECK_FAILED"), ML_REASON_HEALTH_CHECK_FAILED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_health_check_spec),
            cmocka_unit_test(test_status_healthy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
