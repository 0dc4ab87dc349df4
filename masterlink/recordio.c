/* SPDX-License-Identifier: Apache-2.0 */
/* masterlink/recordio.c - RecordIO framing of the master's event stream: every record is
 * its length in decimal ASCII, a newline, then that many bytes of JSON (Mesos' format, so a
 * record may itself hold newlines and a reader never scans the payload). The writer is one
 * function; the reader is incremental because records arrive split across TCP reads. No
 * I/O here: agentd/link.c feeds what curl hands it, master/ writes the frames. */
#include <string.h>

#include "masterlink/masterlink.h"

char *ml_frame(const char *data, size_t len, size_t *ret_len)
{
    char head[24];
    int n = snprintf(head, sizeof(head), "%zu\n", len);
    char *out = xmalloc((size_t) n + len + 1);
    memcpy(out, head, (size_t) n);
    memcpy(out + n, data, len);
    out[(size_t) n + len] = 0;
    *ret_len = (size_t) n + len;
    return out;
}

void ml_reader_init(struct ml_reader *r, size_t max)
{
    *r = (struct ml_reader){.max = max};
}

void ml_reader_free(struct ml_reader *r)
{
    free(r->buf);
    *r = (struct ml_reader){.max = r->max};
}

void ml_reader_feed(struct ml_reader *r, const char *data, size_t len)
{
    /* drop what was consumed before growing: the buffer holds at most one partial record
     * (plus what arrived with it) */
    if (r->off > 0) {
        memmove(r->buf, r->buf + r->off, r->len - r->off);
        r->len -= r->off;
        r->off = 0;
    }
    if (r->len + len + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + len + 1)
            cap *= 2;
        r->buf = xrealloc(r->buf, cap);
        r->cap = cap;
    }
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    r->buf[r->len] = 0;
}

int ml_reader_next(struct ml_reader *r, const char **ret, size_t *ret_len, struct berr **err)
{
    const char *p = r->buf + r->off;
    size_t avail = r->len - r->off;
    const char *nl = avail ? memchr(p, '\n', avail < 21 ? avail : 21) : NULL;
    if (!nl) {
        if (avail > 20) /* 20 digits hold any size_t: this is no length line */
            return berr_setx(err, EBADMSG, "RecordIO: no length line");
        for (size_t i = 0; i < avail; i++)
            if (p[i] < '0' || p[i] > '9')
                return berr_setx(err, EBADMSG, "RecordIO: bad length line");
        return 0;
    }
    char num[24];
    size_t nlen = (size_t) (nl - p);
    memcpy(num, p, nlen);
    num[nlen] = 0;
    uint64_t size;
    if (nlen == 0 || parse_u64(num, &size) < 0)
        return berr_setx(err, EBADMSG, "RecordIO: bad length line '%.20s'", num);
    if (size > r->max)
        return berr_setx(err, EMSGSIZE, "RecordIO: record of %llu bytes, the limit is %zu",
                         (unsigned long long) size, r->max);
    if (avail - nlen - 1 < size)
        return 0;
    char *rec = r->buf + r->off + nlen + 1;
    r->off += nlen + 1 + (size_t) size;
    if (r->off < r->len) {
        /* a NUL after the record would clobber the next record's first byte: hand out a
         * NUL-terminated copy in the scratch space past the held bytes instead */
        size_t need = r->len + (size_t) size + 2;
        if (need > r->cap) {
            ptrdiff_t roff = rec - r->buf;
            r->buf = xrealloc(r->buf, need);
            r->cap = need;
            rec = r->buf + roff;
        }
        char *scratch = r->buf + r->len + 1;
        memmove(scratch, rec, (size_t) size);
        scratch[size] = 0;
        rec = scratch;
    } else {
        rec[size] = 0; /* r->buf[r->len] is the terminator feed() keeps */
    }
    *ret = rec;
    *ret_len = (size_t) size;
    return 1;
}
