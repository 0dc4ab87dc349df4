/* SPDX-License-Identifier: Apache-2.0 */
/* tests/bench/alloc_bench.c - `make bench`, issue #14: the DRF allocator's core
 * (master/allocator.c) alone: one allocation pass over AGENTS simulated agents (4 to 64 cpus,
 * 8 to 256 GiB, one in ten with a reservation for a role) and FRAMEWORKS frameworks spread over
 * 10 roles (weights 1 to 3, one role with a guarantee), every framework hungry. Each run starts
 * from idle agents (everything released), so the pass makes one offer per agent and role:
 * the worst case. Also a pass with nothing free (the steady state of a full cluster), and a
 * floor measured in the same run: releasing the offers one pass made (one drf_charge each, the
 * books alone, no ordering). Prints one JSON line: median, p90 and max of each in ms, and the
 * offers a pass made.
 * Usage: alloc_bench [AGENTS [FRAMEWORKS [RUNS]]] (10000 200 31). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/common.h"
#include "master/drf.h"

struct grant {
    struct drf_agent *a;
    struct drf_client *c;
    struct drf_res q;
};

struct bench {
    struct grant *g;
    size_t n, cap;
};

static void on_offer(void *arg, struct drf_agent *a, struct drf_client *c, struct drf_res q,
                     struct drf_res resv)
{
    (void) resv;
    struct bench *b = arg;
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 1024;
        b->g = xrealloc(b->g, b->cap * sizeof(*b->g));
    }
    b->g[b->n++] = (struct grant){a, c, q};
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double) (t1.tv_sec - t0->tv_sec) * 1e3 + (double) (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    size_t agents = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000;
    size_t fws = argc > 2 ? strtoul(argv[2], NULL, 10) : 200;
    size_t runs = argc > 3 ? strtoul(argv[3], NULL, 10) : 31;
    struct drf d;
    struct bench b = {0};
    drf_init(&d);
    d.offer = on_offer;
    d.arg = &b;
    char name[64];
    for (int r = 0; r < 10; r++) {
        snprintf(name, sizeof(name), "role%d", r);
        struct drf_res g = {r == 0 ? 100000 : 0, 0};
        drf_role_set(drf_role(&d, name), 1 + r % 3, g,
                     (struct drf_res){DRF_UNLIMITED, DRF_UNLIMITED});
    }
    srand(14);
    for (size_t i = 0; i < agents; i++) {
        snprintf(name, sizeof(name), "agent-%zu", i);
        struct drf_agent *a = drf_agent_add(&d, name, NULL);
        uint64_t cpus = 4000ULL << (rand() % 5), mem = (8ULL << 30) << (rand() % 6);
        const char *roles[1];
        struct drf_res resv[1] = {{cpus / 4, mem / 4}};
        snprintf(name, sizeof(name), "role%d", rand() % 10);
        roles[0] = name;
        drf_agent_set(&d, a, (struct drf_res){cpus, mem}, roles, resv, i % 10 == 0);
        drf_agent_activate(&d, a, true);
    }
    for (size_t i = 0; i < fws; i++) {
        snprintf(name, sizeof(name), "fw-%zu", i);
        struct drf_fw *fw = drf_fw_add(&d, name, NULL);
        fw->active = true;
        snprintf(name, sizeof(name), "role%zu", i % 10);
        drf_client(&d, fw, drf_role(&d, name));
    }
    double *idle = xcalloc(runs, sizeof(double)), *full = xcalloc(runs, sizeof(double));
    double *floor_ms = xcalloc(runs, sizeof(double));
    size_t offers = 0;
    for (size_t k = 0; k < runs; k++) {
        b.n = 0;
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        offers = drf_allocate(&d, 1);
        idle[k] = ms_since(&t0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        (void) drf_allocate(&d, 1); /* nothing is free now */
        full[k] = ms_since(&t0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (size_t i = 0; i < b.n; i++) /* every offer declined, no filter */
            drf_charge(&d, b.g[i].a, b.g[i].c->role, b.g[i].c, b.g[i].q, -1);
        floor_ms[k] = ms_since(&t0);
    }
    qsort(idle, runs, sizeof(double), cmp_double);
    qsort(full, runs, sizeof(double), cmp_double);
    qsort(floor_ms, runs, sizeof(double), cmp_double);
    printf("{\"agents\": %zu, \"frameworks\": %zu, \"runs\": %zu, \"offers\": %zu, "
           "\"idle_ms\": {\"p50\": %.3f, \"p90\": %.3f, \"max\": %.3f}, "
           "\"full_ms\": {\"p50\": %.3f, \"p90\": %.3f, \"max\": %.3f}, "
           "\"floor_ms\": {\"p50\": %.3f, \"p90\": %.3f, \"max\": %.3f}}\n",
           agents, fws, runs, offers, idle[runs / 2], idle[runs * 9 / 10], idle[runs - 1],
           full[runs / 2], full[runs * 9 / 10], full[runs - 1], floor_ms[runs / 2],
           floor_ms[runs * 9 / 10], floor_ms[runs - 1]);
    free(floor_ms);
    free(idle);
    free(full);
    free(b.g);
    drf_free(&d);
    return 0;
}
