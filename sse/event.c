/* SPDX-License-Identifier: Apache-2.0 */
/* sse/event.c - the pure half of the SSE hub: an event formatted once into its wire text
 * (id, event name and one "data:" line per line of its data), event ids "<epoch>-<seq>", the
 * bounded history of the last events and the decision whether a client that comes back with
 * a Last-Event-ID resumes from it or needs a snapshot. No I/O: hub.c does the streams, and
 * tests/unit/sse_test.c tests this file alone. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sse/sse.h"

void sse_id_format(char *buf, size_t len, uint64_t epoch, uint64_t seq)
{
    snprintf(buf, len, "%" PRIu64 "-%" PRIu64, epoch, seq);
}

int sse_id_parse(const char *s, uint64_t *ret_epoch, uint64_t *ret_seq)
{
    const char *dash = s ? strchr(s, '-') : NULL;
    if (!dash || dash == s || dash - s > 20)
        return -EINVAL;
    char head[24];
    memcpy(head, s, (size_t) (dash - s));
    head[dash - s] = 0;
    uint64_t epoch, seq;
    /* parse_u64 takes digits only: no sign, no spaces, no second dash */
    if (strspn(head, "0123456789") != strlen(head) ||
        strspn(dash + 1, "0123456789") != strlen(dash + 1) || parse_u64(head, &epoch) < 0 ||
        parse_u64(dash + 1, &seq) < 0)
        return -EINVAL;
    *ret_epoch = epoch;
    *ret_seq = seq;
    return 0;
}

struct sse_event *sse_event_new(uint64_t epoch, uint64_t seq, const char *name, const char *data,
                                size_t len)
{
    char id[SSE_ID_MAX];
    sse_id_format(id, sizeof(id), epoch, seq);
    /* the worst case: every byte of data a line ending, each line "data: " + "\n" */
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += data[i] == '\n' || data[i] == '\r';
    size_t cap = strlen("id: \nevent: \n\n") + strlen(id) + strlen(name) + len + lines * 7 + 1;
    _cleanup_free_ char *text = xmalloc(cap);
    char *p = text;
    p += sprintf(p, "id: %s\nevent: %s\n", id, name);
    /* each line of data (ended by \r\n, \r or \n) is one field; the reader joins them with
     * \n again, so a JSON text with newlines arrives as it left */
    for (size_t i = 0;;) {
        size_t j = i;
        while (j < len && data[j] != '\n' && data[j] != '\r')
            j++;
        memcpy(p, "data: ", 6);
        p += 6;
        if (j > i)
            memcpy(p, data + i, j - i);
        p += j - i;
        *p++ = '\n';
        if (j >= len)
            break; /* a final line ending leaves an empty last line: it is sent too */
        if (data[j] == '\r' && j + 1 < len && data[j + 1] == '\n')
            j++;
        i = j + 1;
    }
    *p++ = '\n';
    size_t tlen = (size_t) (p - text);
    /* framed once as the HTTP/1.1 chunk every chunked stream sends */
    char head[24];
    int hl = snprintf(head, sizeof(head), "%zx\r\n", tlen);
    struct sse_event *ev = xmalloc(sizeof(*ev) + (size_t) hl + tlen + 3);
    ev->seq = seq;
    ev->refs = 1;
    memcpy(ev->chunk, head, (size_t) hl);
    memcpy(ev->chunk + hl, text, tlen);
    memcpy(ev->chunk + hl + tlen, "\r\n", 3);
    ev->text = ev->chunk + hl;
    ev->len = tlen;
    ev->chunk_len = (size_t) hl + tlen + 2;
    return ev;
}

struct sse_event *sse_event_ref(struct sse_event *ev)
{
    ev->refs++;
    return ev;
}

void sse_event_unref(struct sse_event *ev)
{
    if (ev && --ev->refs == 0)
        free(ev);
}

void sse_history_init(struct sse_history *h, size_t cap)
{
    *h = (struct sse_history){.cap = cap ? cap : 1};
    h->ring = xcalloc(h->cap, sizeof(*h->ring));
}

void sse_history_push(struct sse_history *h, struct sse_event *ev)
{
    sse_event_ref(ev);
    if (h->n < h->cap) {
        h->ring[(h->head + h->n++) % h->cap] = ev;
        return;
    }
    sse_event_unref(h->ring[h->head]);
    h->ring[h->head] = ev;
    h->head = (h->head + 1) % h->cap;
}

struct sse_event *sse_history_at(const struct sse_history *h, size_t i)
{
    return h->ring[(h->head + i) % h->cap];
}

void sse_history_done(struct sse_history *h)
{
    for (size_t i = 0; i < h->n; i++)
        sse_event_unref(sse_history_at(h, i));
    free(h->ring);
    *h = (struct sse_history){0};
}

int sse_resume_decide(const struct sse_history *h, uint64_t epoch, uint64_t last_seq,
                      const char *last_id, size_t *ret_from)
{
    uint64_t e, seq;
    if (!last_id || sse_id_parse(last_id, &e, &seq) < 0 || e != epoch || seq > last_seq)
        return 0;
    /* the history holds seqs [last_seq - n + 1, last_seq]: the client has seq, so it needs
     * seq + 1 onwards, which must be kept (or be past the newest) */
    uint64_t oldest = last_seq - h->n + 1;
    if (seq + 1 < oldest)
        return 0;
    *ret_from = (size_t) (seq + 1 - oldest);
    return 1;
}
