/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/path.c - the local API's request path split into its segments, a pure function the
 * router (api.c) calls first and tests/fuzz/fuzz_path.c feeds. Empty segments ("//") are
 * skipped; a path with more segments than asked, or one segment too long, is refused whole,
 * so the router never looks at a segment it did not fill (review M1). */
#include <string.h>

#include "agentd/agent.h"

int api_split_path(const char *path, char seg[][API_SEG_MAX], int max)
{
    int n = 0;
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        size_t l = strcspn(p, "/");
        if (n == max || l >= API_SEG_MAX)
            return -1;
        memcpy(seg[n], p, l);
        seg[n][l] = 0;
        n++;
        p += l;
    }
    return n;
}
