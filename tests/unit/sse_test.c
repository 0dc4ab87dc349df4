/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/sse_test.c - sse/event.c, the pure half of the Server-Sent Events hub: the wire
 * text of an event (one "data:" line per line of its data, whatever ends the lines, parsed
 * back here the way a browser's EventSource does), event ids, the bounded history, and the
 * decision between resuming from a Last-Event-ID and a snapshot. No I/O, no root;
 * tests/system/test_master_events.py drives the hub in berth-master. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
/* clang-format off: cmocka.h needs setjmp.h, stdarg.h and stddef.h before it */
#include <cmocka.h>
/* clang-format on */
#include <string.h>

#include "sse/sse.h"

/* A reader per the HTML spec's event stream interpretation: the fields of the first event
 * of text: id, event and data (data lines joined with \n). */
struct parsed {
    char id[64], event[64], data[4096];
    int n_data;
};

static void parse_event(const char *text, struct parsed *p)
{
    memset(p, 0, sizeof(*p));
    size_t dl = 0;
    for (const char *line = text; *line;) {
        size_t n = strcspn(line, "\n");
        if (n == 0)
            break; /* the blank line dispatches */
        char buf[4096];
        memcpy(buf, line, n);
        buf[n] = 0;
        char *colon = strchr(buf, ':');
        assert_non_null(colon);
        *colon = 0;
        const char *v = colon[1] == ' ' ? colon + 2 : colon + 1;
        if (streq(buf, "id"))
            snprintf(p->id, sizeof(p->id), "%s", v);
        else if (streq(buf, "event"))
            snprintf(p->event, sizeof(p->event), "%s", v);
        else if (streq(buf, "data")) {
            dl += (size_t) snprintf(p->data + dl, sizeof(p->data) - dl, "%s\n", v);
            p->n_data++;
        }
        line += n + (line[n] == '\n');
    }
    if (dl)
        p->data[dl - 1] = 0; /* the last \n goes */
}

static void test_event_wire_text(void **state)
{
    (void) state;
    const char *json = "{\"task\":{\"id\":\"t-1\",\"state\":\"RUNNING\"}}";
    struct sse_event *ev = sse_event_new(1700000000123ULL, 42, "task_updated", json, strlen(json));
    const char *want = "id: 1700000000123-42\nevent: task_updated\n"
                       "data: {\"task\":{\"id\":\"t-1\",\"state\":\"RUNNING\"}}\n\n";
    assert_int_equal(ev->len, strlen(want));
    assert_memory_equal(ev->text, want, ev->len);
    assert_int_equal(ev->seq, 42);
    /* the same bytes framed as one HTTP/1.1 chunk: hex length, CRLF, text, CRLF */
    char head[16];
    int hl = snprintf(head, sizeof(head), "%zx\r\n", strlen(want));
    assert_int_equal(ev->chunk_len, (size_t) hl + strlen(want) + 2);
    assert_memory_equal(ev->chunk, head, (size_t) hl);
    assert_ptr_equal(ev->text, ev->chunk + hl);
    assert_memory_equal(ev->chunk + hl + ev->len, "\r\n", 2);
    sse_event_unref(ev);
}

/* Every line ending the spec knows splits data into lines, and each goes out as its own data
 * field; read back, the lines come joined with \n: nothing is lost or runs into an "id:". */
static void test_multi_line_data(void **state)
{
    (void) state;
    static const struct {
        const char *in, *want;
        int lines;
    } cases[] = {
            {"a\nb", "a\nb", 2},
            {"a\r\nb\rc", "a\nb\nc", 3},
            {"{\n  \"x\": 1\n}\n", "{\n  \"x\": 1\n}\n", 4},
            {"\n\n", "\n\n", 3},
            {"", "", 1},
            {"id: 9-9\nevent: evil", "id: 9-9\nevent: evil", 2},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct sse_event *ev = sse_event_new(1, 2, "x", cases[i].in, strlen(cases[i].in));
        struct parsed p;
        _cleanup_free_ char *text = xstrndup(ev->text, ev->len);
        parse_event(text, &p);
        assert_string_equal(p.id, "1-2");
        assert_string_equal(p.event, "x");
        assert_string_equal(p.data, cases[i].want);
        assert_int_equal(p.n_data, cases[i].lines);
        /* one event: the only blank line is the last */
        assert_non_null(strstr(text, "\n\n"));
        assert_true(strstr(text, "\n\n") == text + ev->len - 2);
        sse_event_unref(ev);
    }
}

static void test_ids(void **state)
{
    (void) state;
    char buf[SSE_ID_MAX];
    uint64_t e, s;
    sse_id_format(buf, sizeof(buf), UINT64_MAX, UINT64_MAX);
    assert_int_equal(sse_id_parse(buf, &e, &s), 0);
    assert_true(e == UINT64_MAX && s == UINT64_MAX);
    assert_int_equal(sse_id_parse("17-0", &e, &s), 0);
    assert_true(e == 17 && s == 0);
    const char *bad[] = {
            NULL,  "",    "17",   "-5",   "17-",  "17--5", "17-5-1",
            "a-1", "1-b", " 1-2", "1-2 ", "+1-2", "1-+2",  "99999999999999999999999-1"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        assert_int_equal(sse_id_parse(bad[i], &e, &s), -EINVAL);
}

static struct sse_history filled(size_t cap, uint64_t upto)
{
    struct sse_history h;
    sse_history_init(&h, cap);
    for (uint64_t seq = 1; seq <= upto; seq++) {
        struct sse_event *ev = sse_event_new(5, seq, "e", "{}", 2);
        sse_history_push(&h, ev);
        sse_event_unref(ev);
    }
    return h;
}

static void test_history_keeps_the_last(void **state)
{
    (void) state;
    struct sse_history h = filled(4, 10);
    assert_int_equal(h.n, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(sse_history_at(&h, i)->seq, 7 + i);
        assert_int_equal(sse_history_at(&h, i)->refs, 1); /* dropped ones were freed */
    }
    sse_history_done(&h);
}

static void test_resume_decisions(void **state)
{
    (void) state;
    struct sse_history h = filled(4, 10); /* holds 7..10 of epoch 5 */
    size_t from = 99;
    /* missed 8, 9, 10 */
    assert_int_equal(sse_resume_decide(&h, 5, 10, "5-7", &from), 1);
    assert_int_equal(from, 1);
    /* missed 7..10: the oldest kept is the first missed */
    assert_int_equal(sse_resume_decide(&h, 5, 10, "5-6", &from), 1);
    assert_int_equal(from, 0);
    /* missed nothing */
    assert_int_equal(sse_resume_decide(&h, 5, 10, "5-10", &from), 1);
    assert_int_equal(from, h.n);
    /* too old: 6 is gone */
    assert_int_equal(sse_resume_decide(&h, 5, 10, "5-5", &from), 0);
    /* another run of the daemon, an id from the future, garbage, none */
    assert_int_equal(sse_resume_decide(&h, 5, 10, "4-9", &from), 0);
    assert_int_equal(sse_resume_decide(&h, 5, 10, "6-1", &from), 0);
    assert_int_equal(sse_resume_decide(&h, 5, 10, "5-11", &from), 0);
    assert_int_equal(sse_resume_decide(&h, 5, 10, "garbage", &from), 0);
    assert_int_equal(sse_resume_decide(&h, 5, 10, NULL, &from), 0);
    sse_history_done(&h);
    /* no event yet: the snapshot's id 5-0 resumes with nothing missed */
    struct sse_history empty = filled(4, 0);
    assert_int_equal(sse_resume_decide(&empty, 5, 0, "5-0", &from), 1);
    assert_int_equal(from, 0);
    assert_int_equal(sse_resume_decide(&empty, 5, 0, "5-1", &from), 0);
    sse_history_done(&empty);
}

static void test_refs(void **state)
{
    (void) state;
    struct sse_event *ev = sse_event_new(1, 1, "e", "{}", 2);
    struct sse_history h;
    sse_history_init(&h, 1);
    sse_history_push(&h, ev);
    assert_int_equal(ev->refs, 2);
    sse_event_unref(ev);
    assert_int_equal(sse_history_at(&h, 0)->refs, 1);
    sse_history_done(&h); /* frees it (ASan: no leak, no double free) */
    sse_event_unref(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_event_wire_text),
            cmocka_unit_test(test_multi_line_data),
            cmocka_unit_test(test_ids),
            cmocka_unit_test(test_history_keeps_the_last),
            cmocka_unit_test(test_resume_decisions),
            cmocka_unit_test(test_refs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
