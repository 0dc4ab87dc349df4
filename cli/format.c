/* SPDX-License-Identifier: Apache-2.0 */
/* cli/format.c - berthctl's pure text helpers: ages, human sizes, CPU percent, truncation,
 * URL escaping, exit status of an ended container, and a column-aligned table printer.
 * No I/O besides printing to a given FILE; http.c talks to the agent, verbs-*.c use these. */
#include <string.h>

#include "cli/cli.h"

void ctl_format_age(double seconds, char *buf, size_t len)
{
    if (!(seconds > 0)) /* also catches NaN */
        seconds = 0;
    unsigned long long s = (unsigned long long) seconds;
    if (s < 60)
        snprintf(buf, len, "%llus", s);
    else if (s < 3600)
        snprintf(buf, len, "%llum", s / 60);
    else if (s < 86400)
        snprintf(buf, len, "%lluh", s / 3600);
    else
        snprintf(buf, len, "%llud", s / 86400);
}

void ctl_format_human(double bytes, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (!(bytes > 0))
        bytes = 0;
    size_t u = 0;
    while (bytes >= 1024 && u + 1 < ARRAY_SIZE(units)) {
        bytes /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%.0fB", bytes);
    else if (bytes < 100)
        snprintf(buf, len, "%.1f%s", bytes, units[u]);
    else
        snprintf(buf, len, "%.0f%s", bytes, units[u]);
}

void ctl_format_cores(double cores, char *buf, size_t len)
{
    if (!(cores > 0))
        cores = 0;
    format_cpus((uint64_t) (cores * 1000 + 0.5), buf, len);
}

double ctl_cpu_percent(double cpu_seconds, double elapsed)
{
    if (!(elapsed > 0) || !(cpu_seconds >= 0))
        return -1;
    return cpu_seconds / elapsed * 100.0;
}

void ctl_truncate(const char *s, size_t max, char *buf, size_t len)
{
    if (len == 0)
        return;
    size_t n = strlen(s);
    if (n <= max || max < 4) {
        snprintf(buf, len, "%.*s", (int) (n < max ? n : max), s);
        return;
    }
    snprintf(buf, len, "%.*s...", (int) (max - 3), s);
}

char *ctl_url_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = xmalloc(strlen(s) * 3 + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p)) {
            *o++ = (char) *p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = 0;
    return out;
}

char *ctl_ctr_path(const char *id, const char *suffix)
{
    _cleanup_free_ char *esc = ctl_url_escape(id);
    return xasprintf("/v1/containers/%s%s", esc, suffix ? suffix : "");
}

bool ctl_state_terminal(const char *state)
{
    static const char *const terminal[] = {"FINISHED", "FAILED", "KILLED", "LOST"};
    for (size_t i = 0; state && i < ARRAY_SIZE(terminal); i++)
        if (streq(state, terminal[i]))
            return true;
    return false;
}

int ctl_end_status(const struct ctl_end *e)
{
    if (e->state && streq(e->state, "FINISHED"))
        return 0;
    if (e->has_exit_code)
        return (int) (e->exit_code & 0xff);
    if (e->has_signal && e->signal > 0 && e->signal < 128)
        return 128 + (int) e->signal;
    if (e->reason && streq(e->reason, "MEMORY_LIMIT"))
        return 128 + 9; /* the kernel OOM killer sends SIGKILL */
    return 1;
}

void ctl_end_describe(const struct ctl_end *e, char *buf, size_t len)
{
    char detail[64] = "";
    if (e->has_exit_code)
        snprintf(detail, sizeof(detail), ", exit code %lld", (long long) e->exit_code);
    else if (e->has_signal)
        snprintf(detail, sizeof(detail), ", signal %lld", (long long) e->signal);
    const char *msg = e->message && *e->message ? e->message : NULL;
    if (e->reason)
        snprintf(buf, len, "%s (%s%s)%s%s", e->state ? e->state : "UNKNOWN", e->reason, detail,
                 msg ? ": " : "", msg ? msg : "");
    else
        snprintf(buf, len, "%s%s%s", e->state ? e->state : "UNKNOWN", msg ? ": " : "",
                 msg ? msg : "");
}

void ctl_table_init(struct ctl_table *t, size_t ncols, const char *const *header)
{
    *t = (struct ctl_table){.ncols = ncols};
    ctl_table_add(t, header);
}

void ctl_table_add(struct ctl_table *t, const char *const *row)
{
    t->cells = xrealloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(char *));
    for (size_t c = 0; c < t->ncols; c++)
        t->cells[t->nrows * t->ncols + c] = xstrdup(row[c] ? row[c] : "-");
    t->nrows++;
}

void ctl_table_print(const struct ctl_table *t, FILE *f)
{
    _cleanup_free_ size_t *width = xcalloc(t->ncols ? t->ncols : 1, sizeof(size_t));
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t w = strlen(t->cells[r * t->ncols + c]);
            if (w > width[c])
                width[c] = w;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            if (c + 1 == t->ncols)
                fprintf(f, "%s\n", cell);
            else
                fprintf(f, "%-*s   ", (int) width[c], cell);
        }
    }
}

void ctl_table_free(struct ctl_table *t)
{
    for (size_t i = 0; t->cells && i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    *t = (struct ctl_table){0};
}
