/* SPDX-License-Identifier: Apache-2.0 */
/* common/error.c - struct berr: one error object that travels up the call chain and gathers
 * context on the way ("launch 'web': limit memory: write 'memory.max': Invalid argument").
 * log.c prints, alloc.c allocates, parse.c parses; this file only builds messages. */
#include <string.h>

#include "common/common.h"

__attribute__((format(printf, 5, 0))) static int berr_vset(struct berr **err, int errnum,
                                                           enum berr_code code, bool with_strerror,
                                                           const char *fmt, va_list ap)
{
    if (errnum < 0)
        errnum = -errnum;
    if (errnum == 0)
        errnum = EIO;
    if (!err || *err) /* first failure wins: inner context is the truest */
        return -errnum;
    struct berr *e = xzalloc(sizeof(*e));
    e->errnum = errnum;
    e->code = code;
    int n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    if (with_strerror && n >= 0 && (size_t) n < sizeof(e->msg))
        snprintf(e->msg + n, sizeof(e->msg) - (size_t) n, ": %s", strerror(errnum));
    *err = e;
    return -errnum;
}

/* The names in parentheses: `make analyze`'s build makes them macros (common.h). */
int(berr_set)(struct berr **err, int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = berr_vset(err, errnum, BERR_CODE_NONE, true, fmt, ap);
    va_end(ap);
    return r;
}

int(berr_setx)(struct berr **err, int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = berr_vset(err, errnum, BERR_CODE_NONE, false, fmt, ap);
    va_end(ap);
    return r;
}

int(berr_setc)(struct berr **err, int errnum, enum berr_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = berr_vset(err, errnum, code, false, fmt, ap);
    va_end(ap);
    return r;
}

int(berr_wrap)(struct berr **err, const char *fmt, ...)
{
    if (!err || !*err)
        return -EIO;
    struct berr *e = *err;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    char old[sizeof(e->msg)];
    memcpy(old, e->msg, sizeof(old));
    size_t pl = strnlen(prefix, sizeof(prefix));
    size_t ol = strnlen(old, sizeof(old));
    /* prefix + ": " + old, truncated at the end: the cause is the part that may be lost */
    size_t off = 0;
    memcpy(e->msg, prefix, pl < sizeof(e->msg) - 1 ? pl : sizeof(e->msg) - 1);
    off = pl < sizeof(e->msg) - 1 ? pl : sizeof(e->msg) - 1;
    for (const char *sep = ": "; *sep && off < sizeof(e->msg) - 1; sep++)
        e->msg[off++] = *sep;
    size_t room = sizeof(e->msg) - 1 - off;
    memcpy(e->msg + off, old, ol < room ? ol : room);
    off += ol < room ? ol : room;
    e->msg[off] = 0;
    return -e->errnum;
}

int berr_errno(const struct berr *err)
{
    return err ? err->errnum : 0;
}

const char *berr_msg(const struct berr *err)
{
    return err ? err->msg : "";
}

void berr_free(struct berr **err)
{
    if (err && *err) {
        free(*err);
        *err = NULL;
    }
}
