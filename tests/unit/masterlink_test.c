/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/masterlink_test.c - masterlink/: RecordIO framing and the incremental reader
 * (split reads, several records per read, bad and oversized length lines), the call and
 * event envelopes, the status update codec, ids and uuids, the JSON parse's depth limit and
 * the hash table. No I/O, no root. The system tests (test_master.py) drive the daemons. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
/* clang-format off: cmocka.h needs setjmp.h, stdarg.h and stddef.h before it */
#include <cmocka.h>
/* clang-format on */

#include "masterlink/masterlink.h"

static void test_frame_and_read_back(void **state)
{
    (void) state;
    size_t len;
    char *f = ml_frame("{\"a\":1}", 7, &len);
    assert_int_equal(len, 9);
    assert_memory_equal(f, "7\n{\"a\":1}", 9);
    struct ml_reader r;
    ml_reader_init(&r, 1024);
    const char *rec;
    size_t rl;
    struct berr *err = NULL;
    /* byte by byte: a record is complete only at its last byte */
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(ml_reader_next(&r, &rec, &rl, &err), 0);
        ml_reader_feed(&r, f + i, 1);
    }
    assert_int_equal(ml_reader_next(&r, &rec, &rl, &err), 1);
    assert_int_equal(rl, 7);
    assert_string_equal(rec, "{\"a\":1}");
    assert_int_equal(ml_reader_next(&r, &rec, &rl, &err), 0);
    free(f);
    ml_reader_free(&r);
}

static void test_several_records_per_read(void **state)
{
    (void) state;
    struct ml_reader r;
    ml_reader_init(&r, 1024);
    const char *data = "2\n{}13\n{\"x\":\"a\\nb\"}\n0\n3\n[1]";
    ml_reader_feed(&r, data, strlen(data));
    const char *rec;
    size_t rl;
    struct berr *err = NULL;
    assert_int_equal(ml_reader_next(&r, &rec, &rl, &err), 1);
    assert_string_equal(rec, "{}");
    assert_int_equal(ml_reader_next(&r, &rec, &rl, &err), 1);
    assert_int_equal(rl, 13);
    assert_memory_equal(rec, "{\"x\":\"a\\nb\"}\n", 13); /* newlines inside a record are data */
    assert_int_equal(ml_reader_next(&r, &rec, &rl, &err), 1);
    assert_int_equal(rl, 0);
    assert_int_equal(ml_reader_next(&r, &rec, &rl, &err), 1);
    assert_string_equal(rec, "[1]");
    assert_int_equal(ml_reader_next(&r, &rec, &rl, &err), 0);
    ml_reader_free(&r);
}

static void test_bad_streams(void **state)
{
    (void) state;
    const char *rec;
    size_t rl;
    struct {
        const char *data;
        int want;
    } cases[] = {
            {"abc\n{}", -EBADMSG},
            {"-1\n", -EBADMSG},
            {"\n{}", -EBADMSG},
            {"123456789012345678901234567890", -EBADMSG}, /* no newline after 20 digits */
            {"1x", -EBADMSG},
            {"2000\n", -EMSGSIZE},
            {"18446744073709551615\n", -EMSGSIZE},
            {"99999999999999999999\n", -EBADMSG}, /* above UINT64_MAX */
            {"12", 0},                            /* incomplete, not wrong */
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct ml_reader r;
        struct berr *err = NULL;
        ml_reader_init(&r, 1024);
        ml_reader_feed(&r, cases[i].data, strlen(cases[i].data));
        assert_int_equal(ml_reader_next(&r, &rec, &rl, &err), cases[i].want);
        if (cases[i].want < 0)
            assert_non_null(strstr(berr_msg(err), "RecordIO"));
        berr_free(&err);
        ml_reader_free(&r);
    }
}

static void test_call_envelope(void **state)
{
    (void) state;
    char *body = ml_call_encode(ML_CALL_UPDATE, "agent-1", "{\"status\": {\"x\": 1}}");
    assert_string_equal(
            body,
            "{\"type\":\"UPDATE\",\"agent_id\":\"agent-1\",\"update\":{\"status\":{\"x\":1}}}");
    struct ml_call c;
    struct berr *err = NULL;
    assert_int_equal(ml_call_decode(body, strlen(body), &c, &err), 0);
    assert_int_equal(c.type, ML_CALL_UPDATE);
    assert_string_equal(c.agent_id, "agent-1");
    assert_non_null(json_get(c.payload, "status"));
    ml_call_done(&c);
    free(body);
    const struct {
        const char *body, *msg;
    } bad[] = {
            {"{\"type\": \"PING\", \"agent_id\": \"a\"}", "unknown call type"},
            {"{\"agent_id\": \"a\"}", "no \"type\""},
            {"{\"type\": \"HEARTBEAT\"}", "agent_id"},
            {"{\"type\": \"HEARTBEAT\", \"agent_id\": \"a/b\"}", "agent_id"},
            {"{\"type\": \"HEARTBEAT\", \"agent_id\": \"a\", \"heartbeat\": 3}", "object"},
            {"[1]", "object"},
            {"{\"type\": ", "malformed"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        assert_int_equal(ml_call_decode(bad[i].body, strlen(bad[i].body), &c, &err), -EINVAL);
        assert_non_null(strstr(berr_msg(err), bad[i].msg));
        assert_int_equal(err->code, BERR_INVALID_ARGUMENT);
        berr_free(&err);
    }
}

static void test_event_envelope(void **state)
{
    (void) state;
    char *ev = ml_event_encode(ML_EVENT_PING, NULL);
    assert_string_equal(ev, "{\"type\":\"PING\",\"ping\":{}}");
    struct ml_event e;
    struct berr *err = NULL;
    assert_int_equal(ml_event_decode(ev, strlen(ev), &e, &err), 0);
    assert_int_equal(e.type, ML_EVENT_PING);
    ml_event_done(&e);
    free(ev);
    ev = ml_event_encode(ML_EVENT_ACKNOWLEDGE, "{\"uuid\": \"u\"}");
    assert_int_equal(ml_event_decode(ev, strlen(ev), &e, &err), 0);
    assert_string_equal(json_get_str(e.payload, "uuid"), "u");
    ml_event_done(&e);
    free(ev);
    assert_int_equal(ml_event_decode("{\"type\":\"NOPE\"}", 15, &e, &err), -EINVAL);
    berr_free(&err);
}

static void test_status_round_trip(void **state)
{
    (void) state;
    struct ml_status s = {
            .state = ML_FAILED, .has_exit_code = true, .exit_code = 3, .timestamp = 12.5};
    snprintf(s.task_id, sizeof(s.task_id), "t-1");
    assert_int_equal(ml_uuid_new(s.uuid), 0);
    assert_true(ml_uuid_valid(s.uuid));
    assert_int_equal(s.uuid[14], '4');
    snprintf(s.reason, sizeof(s.reason), "EXITED");
    s.message = "exit 3";
    char *json = ml_status_encode(&s);
    struct berr *err = NULL;
    yajl_val v = json_parse(json, strlen(json), &err);
    assert_non_null(v);
    struct ml_status d;
    assert_int_equal(ml_status_decode(v, &d, &err), 0);
    assert_string_equal(d.task_id, "t-1");
    assert_string_equal(d.uuid, s.uuid);
    assert_int_equal(d.state, ML_FAILED);
    assert_string_equal(d.reason, "EXITED");
    assert_string_equal(d.message, "exit 3");
    assert_true(d.has_exit_code);
    assert_int_equal(d.exit_code, 3);
    assert_int_equal(d.signal, 0);
    assert_true(d.timestamp == 12.5);
    ml_status_done(&d);
    yajl_tree_free(v);
    free(json);
    const char *bad[] = {
            "{\"task_id\": \"t\", \"uuid\": \"x\", \"state\": \"RUNNING\"}",
            ("{\"task_id\": \"t\", \"uuid\": \"00000000-0000-4000-8000-000000000000\", "
             "\"state\": \"DANCING\"}"),
            "{\"uuid\": \"00000000-0000-4000-8000-000000000000\", \"state\": \"RUNNING\"}",
            "[]",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        v = json_parse(bad[i], strlen(bad[i]), &err);
        assert_non_null(v);
        assert_int_equal(ml_status_decode(v, &d, &err), -EINVAL);
        berr_free(&err);
        yajl_tree_free(v);
    }
}

static void test_names_ids_and_states(void **state)
{
    (void) state;
    assert_int_equal(ml_state_from_name("LOST"), ML_LOST);
    assert_int_equal(ml_state_from_name("lost"), -EINVAL);
    assert_true(ml_state_terminal(ML_FINISHED) && !ml_state_terminal(ML_RUNNING));
    assert_true(ML_STAGING < ML_STARTING && ML_STARTING < ML_RUNNING && ML_RUNNING < ML_FINISHED);
    assert_string_equal(ml_call_name(ML_CALL_SUBSCRIBE), "SUBSCRIBE");
    assert_string_equal(ml_event_name(ML_EVENT_KILL), "KILL");
    assert_true(ml_id_valid("t-0123abcd_X"));
    assert_false(ml_id_valid(""));
    assert_false(ml_id_valid("a b"));
    char longid[70];
    memset(longid, 'a', 65);
    longid[65] = 0;
    assert_false(ml_id_valid(longid));
    assert_false(ml_uuid_valid("00000000-0000-4000-8000-00000000000g"));
}

static void test_json_depth_and_getters(void **state)
{
    (void) state;
    char deep[200];
    memset(deep, '[', 40);
    deep[40] = 0;
    struct berr *err = NULL;
    assert_null(json_parse(deep, strlen(deep), &err));
    assert_non_null(strstr(berr_msg(err), "deeper"));
    berr_free(&err);
    assert_null(json_parse("{\"a\":\"x\0\"}", 10, &err));
    berr_free(&err);
    const char *j = "{\"c\": \"0.5\", \"n\": 2, \"m\": \"1GiB\", \"b\": 18446744073709551615}";
    yajl_val v = json_parse(j, strlen(j), &err);
    uint64_t u;
    assert_true(json_get_cpus(v, "c", &u) && u == 500);
    assert_true(json_get_cpus(v, "n", &u) && u == 2000);
    assert_true(json_get_size(v, "m", &u) && u == 1ULL << 30);
    assert_true(json_get_u64(v, "b", &u) && u == UINT64_MAX);
    assert_false(json_get_u64(v, "m", &u));
    yajl_tree_free(v);
}

static void test_table(void **state)
{
    (void) state;
    struct ml_table t = {0};
    char keys[1000][8];
    for (int i = 0; i < 1000; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        ml_table_put(&t, keys[i], keys[i]);
    }
    assert_int_equal(t.count, 1000);
    for (int i = 0; i < 1000; i++)
        assert_ptr_equal(ml_table_get(&t, keys[i]), keys[i]);
    assert_null(ml_table_get(&t, "nope"));
    assert_ptr_equal(ml_table_del(&t, "k7"), keys[7]);
    assert_null(ml_table_get(&t, "k7"));
    assert_null(ml_table_del(&t, "k7"));
    assert_int_equal(t.count, 999);
    ml_table_free(&t);
}

/* Known answers (computed with Python's hmac module), so the handshake of docs/protocol.md
 * can be written in any language and a change of its construction fails here. */
static void test_auth_known_answers(void **state)
{
    (void) state;
    uint8_t key[ML_KEY_LEN];
    for (int i = 0; i < ML_KEY_LEN; i++)
        key[i] = (uint8_t) i;
    struct ml_handshake h = {.agent_id = "a1"};
    memset(h.nonce_agent, '0', ML_HEX_LEN);
    memset(h.nonce_master, '1', ML_HEX_LEN);
    for (int i = 0; i < 32; i++)
        h.stream_id[i] = i % 2 ? 'b' : 'a';
    char out[ML_HEX_LEN + 1];
    ml_auth_proof(key, &h, true, out);
    assert_string_equal(out, "8d2d53c3e72e4c55e9e558231946462f84fd84b6cda3bf8473b31f1c74b72520");
    ml_auth_proof(key, &h, false, out);
    assert_string_equal(out, "4687597c66e466fbde51e7748427cf826a8c8ad0e90e052eb33495104cbf43fa");
    uint8_t k2[ML_KEY_LEN];
    ml_auth_session_key(key, &h, k2);
    ml_hex(k2, ML_KEY_LEN, out);
    assert_string_equal(out, "35f09b7b4efb696c1d0f7c10f64b42daeda3660514c0bd1d5c7df9c11239807d");
    ml_auth_agent_key(key, &h, k2);
    ml_hex(k2, ML_KEY_LEN, out);
    assert_string_equal(out, "aa2f23c3bceb179b830ffd8fd4664665867b85712fc90dbb832d8e72f6ce7ed2");
    ml_auth_sign(key, "{\"x\":1}", 7, out);
    assert_string_equal(out, "965310886be11ca2e77f7a99beda0ea2ee7855f6e4604bf1ea6c60105071e855");
    char id[ML_TOKEN_ID_LEN + 1];
    ml_token_key("join-token-0123456789", k2, id);
    assert_string_equal(id, "4be9fc88de0d259a");
    ml_hex(k2, ML_KEY_LEN, out);
    assert_string_equal(out, "4be9fc88de0d259acfcc22d9d5083ae74ad5d92b98453de30e1a2e8b3c77861b");
    /* one field moved across a separator signs differently */
    struct ml_handshake h2 = h;
    snprintf(h2.agent_id, sizeof(h2.agent_id), "a");
    char other[ML_HEX_LEN + 1];
    ml_auth_proof(key, &h2, true, other);
    assert_string_not_equal(other,
                            "8d2d53c3e72e4c55e9e558231946462f84fd84b6cda3bf8473b31f1c74b72520");
}

/* fuzz_codec found it: a status with a timestamp of 7.77e90 made json_kv_double hand yajl the
 * length "%.6f" would have had (98), past its 64-byte buffer. */
static void test_huge_doubles_encode(void **state)
{
    (void) state;
    const double values[] = {7.777777777777777e90, -1e300, 1e15, 123.5, 0};
    for (size_t i = 0; i < ARRAY_SIZE(values); i++) {
        yajl_gen g = yajl_gen_alloc(NULL);
        yajl_gen_map_open(g);
        json_kv_double(g, "t", values[i]);
        yajl_gen_map_close(g);
        char *json = json_gen_take(g);
        struct berr *err = NULL;
        yajl_val v = json_parse(json, strlen(json), &err);
        assert_non_null(v);
        double back;
        assert_true(json_get_double(v, "t", &back));
        assert_true(back == values[i] || fabs(back - values[i]) <= fabs(values[i]) * 1e-15);
        yajl_tree_free(v);
        free(json);
    }
}

static void test_auth_hex_helpers(void **state)
{
    (void) state;
    uint8_t b[4];
    assert_int_equal(ml_unhex("00fFa9", b, 3), 0);
    assert_int_equal(b[1], 0xff);
    assert_int_equal(ml_unhex("00fg", b, 2), -EINVAL);
    assert_int_equal(ml_unhex("00f", b, 2), -EINVAL);
    assert_int_equal(ml_unhex(NULL, b, 2), -EINVAL);
    assert_true(ml_hex_equal("abcd", "abcd"));
    assert_false(ml_hex_equal("abcd", "abce"));
    assert_false(ml_hex_equal("abcd", "abc"));
    assert_false(ml_hex_equal("", ""));
    assert_false(ml_hex_equal(NULL, "ab"));
    char n[ML_HEX_LEN + 1];
    memset(n, 'a', ML_HEX_LEN);
    n[ML_HEX_LEN] = 0;
    assert_true(ml_nonce_valid(n));
    n[3] = 'x';
    assert_false(ml_nonce_valid(n));
    assert_false(ml_nonce_valid("abc"));
    assert_int_equal(ml_call_from_name("AUTHENTICATE"), ML_CALL_AUTHENTICATE);
    assert_int_equal(ml_event_from_name("CHALLENGE"), ML_EVENT_CHALLENGE);
}

static int spec_of(const char *json, unsigned flags, struct ml_task_spec *s, struct berr **err)
{
    yajl_val v = json_parse(json, strlen(json), err);
    int r = v ? ml_task_spec_parse(v, flags, s, err) : -EINVAL;
    yajl_tree_free(v);
    return r;
}

/* The task spec, the one schema of both APIs: what it accepts, what it refuses (always
 * INVALID_ARGUMENT, naming the field), and that encode/parse round-trips. */
static void test_task_spec(void **state)
{
    (void) state;
    struct ml_task_spec s;
    struct berr *err = NULL;
    assert_int_equal(
            spec_of("{\"name\":\"web\",\"command\":{\"shell\":\"echo hi\"},"
                    "\"resources\":{\"cpus\":\"0.5\",\"mem\":\"1GiB\",\"pids\":64,"
                    "\"cpus_limit\":\"none\"},\"env\":[\"A=1\"],\"user\":\"nobody\","
                    "\"volumes\":[\"/srv:/data:ro\"],\"role\":\"web\",\"network\":\"bridge\","
                    "\"ports\":[{\"name\":\"http\",\"container_port\":8080},"
                    "{\"host_port\":31005}]}",
                    0, &s, &err),
            0);
    assert_string_equal(s.command.argv[0], "/bin/sh");
    assert_string_equal(s.command.argv[2], "echo hi");
    assert_int_equal(s.cpus_millis, 500);
    assert_int_equal(s.mem_bytes, 1ull << 30);
    assert_int_equal(s.pids, 64);
    assert_int_equal(s.cpus_limit, ML_CPUS_LIMIT_NONE);
    assert_string_equal(s.env[0], "A=1");
    assert_true(s.volumes[0].readonly);
    assert_string_equal(s.network, "bridge");
    assert_int_equal(s.n_ports, 2);
    assert_string_equal(s.ports[0].name, "http");
    assert_int_equal(s.ports[0].container_port, 8080);
    assert_int_equal(s.ports[1].host_port, 31005);
    char *text = ml_task_spec_encode(&s);
    struct ml_task_spec t;
    assert_int_equal(spec_of(text, 0, &t, &err), 0);
    char *again = ml_task_spec_encode(&t);
    assert_string_equal(text, again);
    free(text);
    free(again);
    ml_task_spec_done(&t);
    ml_task_spec_done(&s);
    assert_int_equal(spec_of("{\"command\":{\"argv\":[\"true\"]},\"resources\":{\"cpus\":1,"
                             "\"mem\":1},\"ports\":3}",
                             0, &s, &err),
                     0);
    assert_int_equal(s.n_ports, 3);
    assert_int_equal(s.ports[2].host_port, 0);
    ml_task_spec_done(&s);
    static const struct {
        const char *json, *needle;
    } bad[] = {
            {"[]", "JSON object"},
            {"{\"resources\":{\"cpus\":1,\"mem\":1}}", "command is required"},
            {"{\"command\":{\"argv\":[]},\"resources\":{\"cpus\":1,\"mem\":1}}", "argv"},
            {"{\"command\":{\"argv\":[\"\"]},\"resources\":{\"cpus\":1,\"mem\":1}}", "argv[0]"},
            {"{\"command\":{\"argv\":[\"x\"],\"cwd\":\"/\"},\"resources\":{\"cpus\":1,\"mem\":1}}",
             "unknown field"},
            {"{\"command\":{\"shell\":\"x\"}}", "resources"},
            {"{\"command\":{\"shell\":\"x\"},\"resources\":{\"cpus\":0,\"mem\":1}}", "cpus"},
            {"{\"command\":{\"shell\":\"x\"},\"resources\":{\"cpus\":1,\"mem\":0}}", "mem"},
            {"{\"command\":{\"shell\":\"x\"},\"resources\":{\"cpus\":2,\"mem\":1,\"cpus_limit\":1}"
             "}",
             "cpus_limit"},
            {"{\"command\":{\"shell\":\"x\"},\"resources\":{\"cpus\":1,\"mem\":1,\"pids\":0}}",
             "pids"},
            {"{\"command\":{\"shell\":\"x\"},\"resources\":{\"cpus\":1,\"mem\":1,\"gpus\":1}}",
             "unknown resource"},
            {"{\"name\":\"abc\",\"command\":{\"shell\":\"x\"},\"resources\":{\"cpus\":1,\"mem\":1}"
             "}",
             "looks like a container id"},
            {"{\"name\":\"a/"
             "b\",\"command\":{\"shell\":\"x\"},\"resources\":{\"cpus\":1,\"mem\":1}}",
             "name"},
            {"{\"role\":\"A "
             "B\",\"command\":{\"shell\":\"x\"},\"resources\":{\"cpus\":1,\"mem\":1}}",
             "role"},
            {"{\"user\":\"a:b\",\"command\":{\"shell\":\"x\"},\"resources\":{\"cpus\":1,\"mem\":1}"
             "}",
             "user"},
            {"{\"env\":{\"A=B\":\"x\"},\"command\":{\"shell\":\"x\"},\"resources\":{\"cpus\":1,"
             "\"mem\":1}}",
             "env"},
            {"{\"volumes\":[\"rel:/"
             "x\"],\"command\":{\"shell\":\"x\"},\"resources\":{\"cpus\":1,\"mem\":1}}",
             "absolute"},
            {"{\"volumes\":[\"/a/../b:/"
             "x\"],\"command\":{\"shell\":\"x\"},\"resources\":{\"cpus\":1,"
             "\"mem\":1}}",
             ".."},
            {"{\"network\":\"overlay\",\"command\":{\"shell\":\"x\"},\"resources\":{\"cpus\":1,"
             "\"mem\":1}}",
             "network"},
            {"{\"ports\":65,\"command\":{\"shell\":\"x\"},\"resources\":{\"cpus\":1,\"mem\":1}}",
             "ports"},
            {"{\"ports\":[{\"host_port\":70000}],\"command\":{\"shell\":\"x\"},\"resources\":{"
             "\"cpus\":1,"
             "\"mem\":1}}",
             "host_port"},
            {"{\"ports\":[{\"host_port\":1},{\"host_port\":1}],\"command\":{\"shell\":\"x\"},"
             "\"resources\":{\"cpus\":1,\"mem\":1}}",
             "twice"},
            {"{\"ports\":[{\"name\":\"a\"},{\"name\":\"a\"}],\"command\":{\"shell\":\"x\"},"
             "\"resources\":{\"cpus\":1,\"mem\":1}}",
             "twice"},
            {"{\"ports\":[{\"proto\":\"udp\"}],\"command\":{\"shell\":\"x\"},\"resources\":{"
             "\"cpus\":1,"
             "\"mem\":1}}",
             "unknown field"},
            {"{\"what\":1,\"command\":{\"shell\":\"x\"},\"resources\":{\"cpus\":1,\"mem\":1}}",
             "unknown field 'what'"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        if (spec_of(bad[i].json, 0, &s, &err) != -EINVAL)
            fail_msg("accepted: %s", bad[i].json);
        assert_int_equal(err->code, BERR_INVALID_ARGUMENT);
        if (!strstr(berr_msg(err), bad[i].needle))
            fail_msg("'%s' does not say '%s'", berr_msg(err), bad[i].needle);
        berr_free(&err);
    }
    /* a record: other fields beside the spec, the name not checked again */
    assert_int_equal(spec_of("{\"id\":\"x\",\"name\":\"abc\",\"command\":{\"argv\":[\"t\"]},"
                             "\"resources\":{\"cpus\":1,\"mem\":1}}",
                             ML_SPEC_RECORD, &s, &err),
                     0);
    ml_task_spec_done(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_frame_and_read_back),
            cmocka_unit_test(test_several_records_per_read),
            cmocka_unit_test(test_bad_streams),
            cmocka_unit_test(test_call_envelope),
            cmocka_unit_test(test_event_envelope),
            cmocka_unit_test(test_status_round_trip),
            cmocka_unit_test(test_names_ids_and_states),
            cmocka_unit_test(test_json_depth_and_getters),
            cmocka_unit_test(test_table),
            cmocka_unit_test(test_auth_known_answers),
            cmocka_unit_test(test_auth_hex_helpers),
            cmocka_unit_test(test_task_spec),
            cmocka_unit_test(test_huge_doubles_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
