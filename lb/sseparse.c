/* SPDX-License-Identifier: Apache-2.0 */
/* lb/sseparse.c - text/event-stream as the HTML spec's EventSource reads it, for berth-lb's
 * stream from berth-apps: lines end with \n, \r\n or \r; "id:", "event:", "data:" fields
 * (one optional space after the colon), comments (":...") skipped, an empty line dispatches
 * the event (data lines joined with \n). Bytes come as libcurl hands them over. Pure. */
#include <string.h>

#include "lb/lb.h"

static int line_done(struct lb_sse_parser *p, lb_sse_event_fn fn, void *arg)
{
    const char *l = p->line ? p->line : "";
    size_t n = p->line_len;
    if (n == 0) {
        if (p->has_data) {
            if (p->id[0])
                snprintf(p->last_id, sizeof(p->last_id), "%s", p->id);
            fn(arg, p->name[0] ? p->name : "message", p->id, p->data ? p->data : "", p->data_len);
        }
        p->has_data = false;
        p->data_len = 0;
        p->name[0] = p->id[0] = 0;
        return 0;
    }
    if (l[0] == ':')
        return 0;
    const char *colon = memchr(l, ':', n);
    size_t flen = colon ? (size_t) (colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    if (colon && v < l + n && *v == ' ')
        v++;
    size_t vlen = (size_t) (l + n - v);
    if (flen == 4 && !memcmp(l, "data", 4)) {
        if (p->data_len + vlen + 2 > p->max)
            return -E2BIG;
        p->data = xrealloc(p->data, p->data_len + vlen + 2);
        if (p->has_data)
            p->data[p->data_len++] = '\n';
        memcpy(p->data + p->data_len, v, vlen);
        p->data_len += vlen;
        p->data[p->data_len] = 0;
        p->has_data = true;
    } else if (flen == 5 && !memcmp(l, "event", 5)) {
        snprintf(p->name, sizeof(p->name), "%.*s", (int) vlen, v);
    } else if (flen == 2 && !memcmp(l, "id", 2)) {
        snprintf(p->id, sizeof(p->id), "%.*s", (int) vlen, v);
    }
    return 0;
}

int lb_sse_feed(struct lb_sse_parser *p, const char *buf, size_t len, lb_sse_event_fn fn, void *arg)
{
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (c == '\n' && p->line_len == SIZE_MAX) { /* the \n of a \r\n */
            p->line_len = 0;
            continue;
        }
        if (p->line_len == SIZE_MAX)
            p->line_len = 0;
        if (c == '\n' || c == '\r') {
            int r = line_done(p, fn, arg);
            if (r < 0)
                return r;
            p->line_len = c == '\r' ? SIZE_MAX : 0;
            continue;
        }
        if (p->line_len + 2 > p->max)
            return -E2BIG;
        if (!p->line || (p->line_len & 4095) == 0)
            p->line = xrealloc(p->line, ((p->line_len / 4096) + 1) * 4096 + 1);
        p->line[p->line_len++] = c;
        p->line[p->line_len] = 0;
    }
    return 0;
}

void lb_sse_reset(struct lb_sse_parser *p)
{
    p->line_len = 0;
    p->data_len = 0;
    p->has_data = false;
    p->name[0] = p->id[0] = 0;
}

void lb_sse_done(struct lb_sse_parser *p)
{
    free(p->line);
    free(p->data);
    p->line = p->data = NULL;
    lb_sse_reset(p);
}
