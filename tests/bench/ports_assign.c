/* SPDX-License-Identifier: Apache-2.0 */
/* tests/bench/ports_assign.c - `make bench` (k): what assigning ports costs a launch when
 * 1,000 tasks already hold theirs: agentd/ports.c's ports_assign (the live containers' ports
 * into a 65536-bit map, then the pick) with N live containers of one port each, timed over
 * many calls. Links build/obj/agentd/ports.o and libcommon.a; run.sh builds and runs it.
 * Prints one JSON object: {"held": N, "range": R, "one_port_ns": median, "ten_ports_ns":
 * median, "full_refusal_ns": median}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentd/agent.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static int cmp(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *) x, b = *(const uint64_t *) y;
    return (a > b) - (a < b);
}

/* Median ns of `rounds` ports_assign calls for a launch of n ports (reset between calls). */
static uint64_t time_assign(struct agent *a, size_t n, int rounds, int want)
{
    struct container c = {0};
    c.state = ML_STAGING;
    c.spec.ports = calloc(n, sizeof(*c.spec.ports));
    c.spec.n_ports = n;
    uint64_t *t = calloc((size_t) rounds, sizeof(*t));
    for (int i = 0; i < rounds; i++) {
        memset(c.spec.ports, 0, n * sizeof(*c.spec.ports));
        struct berr *err = NULL;
        uint64_t t0 = now_ns();
        int r = ports_assign(a, &c, &err);
        t[i] = now_ns() - t0;
        if ((r == 0) != (want == 0)) {
            fprintf(stderr, "ports_assign: %d %s\n", r, err ? berr_msg(err) : "");
            exit(1);
        }
        berr_free(&err);
    }
    qsort(t, (size_t) rounds, sizeof(*t), cmp);
    uint64_t med = t[rounds / 2];
    free(t);
    free(c.spec.ports);
    return med;
}

int main(int argc, char **argv)
{
    int held = argc > 1 ? atoi(argv[1]) : 1000;
    int rounds = argc > 2 ? atoi(argv[2]) : 2000;
    struct agent a = {0};
    char ranges[64];
    snprintf(ranges, sizeof(ranges), "[31000-%d]", 31000 + held + 9);
    if (ports_ranges_parse(ranges, &a.port_ranges, &a.n_port_ranges) < 0)
        return 1;
    a.port_cursor = 31000;
    for (int i = 0; i < held; i++) {
        struct container *c = calloc(1, sizeof(*c));
        c->state = ML_RUNNING;
        c->spec.ports = calloc(1, sizeof(*c->spec.ports));
        c->spec.n_ports = 1;
        c->spec.ports[0].host_port = (uint16_t) (31000 + i);
        c->next = a.containers;
        a.containers = c;
    }
    uint64_t one = time_assign(&a, 1, rounds, 0);
    uint64_t ten = time_assign(&a, 10, rounds, 0);
    uint64_t refused = time_assign(&a, 11, rounds, -1);
    printf("{\"held\": %d, \"range\": %d, \"one_port_ns\": %llu, \"ten_ports_ns\": %llu, "
           "\"full_refusal_ns\": %llu}\n",
           held, held + 10, (unsigned long long) one, (unsigned long long) ten,
           (unsigned long long) refused);
    return 0;
}
