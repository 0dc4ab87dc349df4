/* SPDX-License-Identifier: Apache-2.0 */
/* common/log.c - the one log sink: a line on stderr, "<N>"-prefixed when stderr is the
 * journal (JOURNAL_STREAM names stderr's dev:inode). The level and ident are the only
 * mutable file-scope state in the project (STYLE.md). */
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"

static int log_level = LOG_INFO;
static const char *log_ident = "berth";

void log_set_level(int prio)
{
    log_level = prio;
}

void log_set_level_name(const char *name)
{
    log_level = streq(name, "debug")     ? LOG_DEBUG
                : streq(name, "warning") ? LOG_WARNING
                : streq(name, "error")   ? LOG_ERR
                                         : LOG_INFO;
}

int log_get_level(void)
{
    return log_level;
}

void log_set_ident(const char *ident)
{
    log_ident = ident;
}

static bool stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    struct stat st;
    unsigned long long dev, ino;
    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
        return false;
    return st.st_dev == dev && st.st_ino == ino;
}

int log_msg(int prio, int errnum, const char *fmt, ...)
{
    if (errnum < 0)
        errnum = -errnum;
    if (prio > log_level)
        return -errnum;
    int saved = errno;
    char line[2048];
    int n = 0;
    if (stderr_is_journal())
        n = snprintf(line, sizeof(line), "<%d>", prio);
    else
        n = snprintf(line, sizeof(line), "%s: ", log_ident);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t) n, fmt, ap);
    va_end(ap);
    if (n > (int) sizeof(line) - 64)
        n = (int) sizeof(line) - 64;
    if (errnum)
        n += snprintf(line + n, sizeof(line) - (size_t) n, ": %s", strerror(errnum));
    line[n++] = '\n';
    (void) !write(STDERR_FILENO, line, (size_t) n);
    errno = saved;
    return -errnum;
}

bool log_ratelimit_ok(struct log_ratelimit *rl, uint64_t interval_ns, unsigned burst,
                      unsigned *ret_suppressed)
{
    uint64_t now = now_monotonic_ns();
    if (rl->window_start_ns == 0 || now - rl->window_start_ns >= interval_ns) {
        rl->window_start_ns = now;
        rl->count = 0;
    }
    if (rl->count >= burst) {
        rl->suppressed++;
        return false;
    }
    rl->count++;
    *ret_suppressed = rl->suppressed;
    rl->suppressed = 0;
    return true;
}

/* Messages that may repeat without bound (a failing accept() under fd exhaustion wrote 16
 * million lines in the review, H4): at most 3 per 10 s per key, each saying how many were
 * dropped. The limiters are the log's own state, like the level: a few keys, fixed. */
static struct {
    const char *key;
    struct log_ratelimit rl;
} limited[8];

void log_limited(const char *key, int prio, int errnum, const char *fmt, ...)
{
    if (prio > log_level)
        return;
    size_t i = 0;
    while (i < ARRAY_SIZE(limited) && limited[i].key && !streq(limited[i].key, key))
        i++;
    if (i == ARRAY_SIZE(limited))
        i = ARRAY_SIZE(limited) - 1; /* more keys than slots: the last one is shared */
    limited[i].key = key;
    unsigned dropped = 0;
    if (!log_ratelimit_ok(&limited[i].rl, 10000000000ULL, 3, &dropped))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (dropped)
        log_msg(prio, errnum, "%s (%u more like it not logged)", msg, dropped);
    else
        log_msg(prio, errnum, "%s", msg);
}

void log_libevent(int severity, const char *msg)
{
    /* libevent's severities: 0 debug, 1 msg, 2 warn, 3 err */
    int prio = severity >= 3 ? LOG_ERR : severity == 2 ? LOG_WARNING : LOG_DEBUG;
    log_limited("libevent", prio, 0, "libevent: %s", msg);
}
