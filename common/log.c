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
