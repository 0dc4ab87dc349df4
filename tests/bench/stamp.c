/* SPDX-License-Identifier: Apache-2.0 */
/* tests/bench/stamp.c - the task of the launch-latency benchmark: its first action prints
 * the wall clock (CLOCK_REALTIME, nanoseconds since the epoch) on stdout, so the client can
 * subtract the moment it sent POST /v1/containers. Static and unsanitised so it runs in any
 * sandbox; it links nothing of berth. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Read the clock first, format and write it after: exits 0 when the line was written,
 * 1 otherwise. */
int main(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);

    unsigned long long ns = (unsigned long long) ts.tv_sec * 1000000000ULL + ts.tv_nsec;
    char line[32];
    int len = snprintf(line, sizeof(line), "%llu\n", ns);
    if (len <= 0 || (size_t) len >= sizeof(line))
        return 1;
    return write(STDOUT_FILENO, line, (size_t) len) == len ? 0 : 1;
}
