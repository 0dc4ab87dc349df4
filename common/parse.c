/* SPDX-License-Identifier: Apache-2.0 */
/* common/parse.c - the project's only number parsers (STYLE.md: no atoi/strtol elsewhere):
 * unsigned and signed integers, sizes with units, CPU counts in millicores, booleans, and
 * their formatters. Pure functions: no logging, no allocation. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"

int parse_u64(const char *s, uint64_t *ret)
{
    if (!s || !*s)
        return -EINVAL;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char) *p))
            return -EINVAL;
        unsigned d = (unsigned) (*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *ret = v;
    return 0;
}

int parse_i64(const char *s, int64_t *ret)
{
    if (!s || !*s)
        return -EINVAL;
    bool neg = *s == '-';
    uint64_t v;
    int r = parse_u64(neg ? s + 1 : s, &v);
    if (r < 0)
        return r;
    if (neg ? v > (uint64_t) INT64_MAX + 1 : v > (uint64_t) INT64_MAX)
        return -ERANGE;
    *ret = neg ? (int64_t) (0 - v) : (int64_t) v;
    return 0;
}

/* Split "12.345suffix" into whole, fraction digits (up to 18) and the suffix. */
static int split_decimal(const char *s, uint64_t *whole, uint64_t *frac, unsigned *frac_digits,
                         const char **suffix)
{
    const char *p = s;
    uint64_t w = 0, f = 0;
    unsigned fd = 0;
    bool any = false;
    while (isdigit((unsigned char) *p)) {
        unsigned d = (unsigned) (*p - '0');
        if (w > (UINT64_MAX - d) / 10)
            return -ERANGE;
        w = w * 10 + d;
        p++;
        any = true;
    }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char) *p)) {
            if (fd >= 18)
                return -EINVAL;
            f = f * 10 + (unsigned) (*p - '0');
            fd++;
            p++;
            any = true;
        }
        if (fd == 0)
            return -EINVAL;
    }
    if (!any)
        return -EINVAL;
    *whole = w;
    *frac = f;
    *frac_digits = fd;
    *suffix = p;
    return 0;
}

static uint64_t pow10u(unsigned n)
{
    uint64_t v = 1;
    while (n--)
        v *= 10;
    return v;
}

int parse_size(const char *s, uint64_t *ret)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {
            {"", 1},
            {"B", 1},
            {"K", 1ULL << 10},
            {"KiB", 1ULL << 10},
            {"KB", 1000ULL},
            {"M", 1ULL << 20},
            {"MiB", 1ULL << 20},
            {"MB", 1000000ULL},
            {"G", 1ULL << 30},
            {"GiB", 1ULL << 30},
            {"GB", 1000000000ULL},
            {"T", 1ULL << 40},
            {"TiB", 1ULL << 40},
            {"TB", 1000000000000ULL},
    };
    if (!s)
        return -EINVAL;
    while (isspace((unsigned char) *s))
        s++;
    uint64_t whole, frac;
    unsigned fd;
    const char *suffix;
    int r = split_decimal(s, &whole, &frac, &fd, &suffix);
    if (r < 0)
        return r;
    while (isspace((unsigned char) *suffix))
        suffix++;
    size_t sl = strlen(suffix);
    while (sl > 0 && isspace((unsigned char) suffix[sl - 1]))
        sl--;
    for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
        if (strlen(units[i].suffix) != sl || strncasecmp(units[i].suffix, suffix, sl) != 0)
            continue;
        /* "KiB" and "KB" differ only in case-insensitive 'i'; strncasecmp keeps them apart */
        uint64_t m = units[i].mult;
        if (whole > UINT64_MAX / m)
            return -ERANGE;
        uint64_t v = whole * m;
        if (fd > 0) {
            uint64_t p = pow10u(fd);
            /* frac * m may overflow for long fractions of TiB; do it in two steps */
            __uint128_t fm = (__uint128_t) frac * m;
            if (fm % p != 0)
                return -EINVAL; /* not a whole number of bytes */
            uint64_t add = (uint64_t) (fm / p);
            if (v > UINT64_MAX - add)
                return -ERANGE;
            v += add;
        }
        *ret = v;
        return 0;
    }
    return -EINVAL;
}

int parse_cpus(const char *s, uint64_t *ret_millis)
{
    if (!s)
        return -EINVAL;
    uint64_t whole, frac;
    unsigned fd;
    const char *suffix;
    int r = split_decimal(s, &whole, &frac, &fd, &suffix);
    if (r < 0)
        return r;
    if (*suffix)
        return -EINVAL;
    if (fd > 3) {
        /* allow trailing zeros beyond millicores ("0.5000") */
        uint64_t p = pow10u(fd - 3);
        if (frac % p != 0)
            return -EINVAL;
        frac /= p;
        fd = 3;
    }
    frac *= pow10u(3 - fd);
    if (whole > 1000000)
        return -ERANGE;
    uint64_t v = whole * 1000 + frac;
    if (v == 0 || v > 1000000ULL * 1000) /* "1000000.5" is past the 1e6-core ceiling too */
        return -ERANGE;
    *ret_millis = v;
    return 0;
}

int parse_bool(const char *s, bool *ret)
{
    static const char *const yes[] = {"1", "yes", "true", "on"};
    static const char *const no[] = {"0", "no", "false", "off"};
    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *ret = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *ret = false;
            return 0;
        }
    }
    return -EINVAL;
}

void format_size(uint64_t bytes, char *buf, size_t len)
{
    static const char *const names[] = {"TiB", "GiB", "MiB", "KiB"};
    static const unsigned shifts[] = {40, 30, 20, 10};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        uint64_t m = 1ULL << shifts[i];
        if (bytes >= m && bytes % m == 0) {
            snprintf(buf, len, "%llu%s", (unsigned long long) (bytes / m), names[i]);
            return;
        }
    }
    snprintf(buf, len, "%lluB", (unsigned long long) bytes);
}

void format_cpus(uint64_t millis, char *buf, size_t len)
{
    unsigned long long w = millis / 1000, f = millis % 1000;
    if (f == 0)
        snprintf(buf, len, "%llu", w);
    else if (f % 100 == 0)
        snprintf(buf, len, "%llu.%llu", w, f / 100);
    else if (f % 10 == 0)
        snprintf(buf, len, "%llu.%02llu", w, f / 10);
    else
        snprintf(buf, len, "%llu.%03llu", w, f);
}
