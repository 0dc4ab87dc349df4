/* SPDX-License-Identifier: Apache-2.0 */
/* tests/bench/sample_floor.c - the floor for the agent's sampling pass: a bare loop that
 * keeps the same cgroup files open and pread()s each of them once per pass, with no parsing
 * and no bookkeeping. Usage: sample_floor PASSES INTERVAL_MS FILE... ; prints the median ms
 * per pass. Passes are INTERVAL_MS apart like the agent's (a tight loop would run with hot
 * CPU caches and skipped memcg stat flushes, and understate what a pass really costs).
 * make bench (tests/bench/sampling.py) compares berth_sampler_pass_seconds_total against it. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    int passes = atoi(argv[1]), interval_ms = atoi(argv[2]), n = argc - 3;
    int *fds = calloc((size_t) n, sizeof(int));
    for (int i = 0; i < n; i++)
        if ((fds[i] = open(argv[i + 3], O_RDONLY | O_CLOEXEC)) < 0) {
            perror(argv[i + 3]);
            return 1;
        }
    double *t = calloc((size_t) passes, sizeof(double));
    char buf[8192];
    for (int p = 0; p < passes; p++) {
        double t0 = now_ms();
        for (int i = 0; i < n; i++)
            if (pread(fds[i], buf, sizeof(buf) - 1, 0) < 0)
                return 1;
        t[p] = now_ms() - t0;
        usleep((useconds_t) interval_ms * 1000);
    }
    qsort(t, (size_t) passes, sizeof(double), cmp);
    printf("%.4f\n", t[passes / 2]);
    return 0;
}
