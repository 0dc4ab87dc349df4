/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/sampler.c - usage sampling: a timer (stats_interval, default 1 s) reads every live
 * container's cgroup statistics (kept-open files, pread: no open/close and no allocation
 * per pass; at most 64 containers or 1 ms a loop turn) and the node's CPU time and memory
 * (/proc/stat, /proc/meminfo, also kept open); the two latest samples give rates. API handlers
 * sample one container on demand. Also keeps the launch-duration histogram. metrics.c and the API
 * read what is kept here. */
#include <fcntl.h>
#include <string.h>

#include "agentd/agent.h"

const double launch_bucket_bounds[11] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,   0.25,   0.5,   1,    2.5};

void sampler_note_launch(struct agent *a, double seconds)
{
    size_t i = 0;
    while (i < ARRAY_SIZE(launch_bucket_bounds) && seconds > launch_bucket_bounds[i])
        i++;
    a->launch_buckets[i]++; /* the last bucket is +Inf */
    a->launch_count++;
    a->launch_sum += seconds;
}

void sampler_sample(struct agent *a, struct container *c)
{
    if (!c->cg)
        return;
    struct iso_stats st;
    memset(&st, 0, sizeof(st));
    if (iso_cgroup_stats(c->cg, &st) < 0)
        return;
    uint64_t now = now_monotonic_ns();
    uint64_t half = (a->cfg.stats_interval_ms ? a->cfg.stats_interval_ms : 1000) * 500000ULL;
    /* An on-demand sample right after a pass must not shrink the window the rate
     * (cpu_cores) is measured over: the older sample moves up only after half an interval. */
    if (!c->has_usage) {
        c->usage_prev = st;
        c->usage_prev_at_ns = now;
    } else if (now - c->usage_at_ns >= half) {
        c->usage_prev = c->usage;
        c->usage_prev_at_ns = c->usage_at_ns;
    }
    c->usage = st;
    c->usage_at_ns = now;
    c->has_usage = true;
}

static ssize_t pread_all(int fd, char *buf, size_t len)
{
    ssize_t n = pread(fd, buf, len - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    return n;
}

/* /proc/stat "cpu" line: busy = everything but idle and iowait, in USER_HZ ticks. */
static void sample_node(struct agent *a)
{
    char buf[4096];
    uint64_t now = now_monotonic_ns();
    if (a->proc_stat_fd >= 0 && pread_all(a->proc_stat_fd, buf, sizeof(buf)) > 0) {
        unsigned long long v[10] = {0};
        if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]) >= 4) {
            long hz = sysconf(_SC_CLK_TCK);
            uint64_t busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
            uint64_t ns = busy * (1000000000ULL / (uint64_t) (hz > 0 ? hz : 100));
            if (a->sample_at_ns && now > a->sample_at_ns && ns >= a->node_cpu_ns)
                a->node_cpu_cores =
                        (double) (ns - a->node_cpu_ns) / (double) (now - a->sample_at_ns);
            a->node_cpu_ns = ns;
        }
    }
    if (a->meminfo_fd >= 0 && pread_all(a->meminfo_fd, buf, sizeof(buf)) > 0) {
        unsigned long long total = 0, avail = 0;
        const char *p = strstr(buf, "MemTotal:"), *q = strstr(buf, "MemAvailable:");
        if (p && q && sscanf(p, "MemTotal: %llu", &total) == 1 &&
            sscanf(q, "MemAvailable: %llu", &avail) == 1 && total >= avail)
            a->node_mem_used = (uint64_t) (total - avail) * 1024;
    }
    a->sample_at_ns = now;
}

/* A pass takes the node, then the live containers in slices of at most SAMPLE_SLICE
 * containers and SAMPLE_SLICE_NS, each slice in a turn of the loop of its own (a zero
 * timeout: the loop polls its sockets in between). With 1,000 tasks a whole pass is ~26 ms
 * of pread and parsing (docs/performance.md, "Sampling"): in one callback it was the loop's
 * longest stall under load (issue #18). 64 kept-open containers take ~1.5 ms, but a
 * container's first sample opens its stat files: during a burst of launches a slice of 64
 * new ones took 20-30 ms (600 openat), the longest turns of the burst, hence the time bound
 * too. Each container keeps its own sample times, so its rates do not care when in the pass
 * it was taken; one launched during a pass is taken by a later slice. */
#define SAMPLE_SLICE 64
#define SAMPLE_SLICE_NS 1000000ULL

static void sample_slice(struct agent *a, uint64_t t0)
{
    unsigned n = 0;
    bool more = false;
    for (struct container *c = a->containers; c; c = c->next) {
        if (!c->cg || ml_state_terminal(c->state) || c->sample_gen == a->sample_gen)
            continue;
        if (n == SAMPLE_SLICE || (n && now_monotonic_ns() - t0 >= SAMPLE_SLICE_NS)) {
            more = true;
            break;
        }
        sampler_sample(a, c);
        c->sample_gen = a->sample_gen;
        n++;
    }
    /* what a pass costs, for berth_sampler_pass_seconds_total (make bench reads it) */
    a->sample_pass_ns_total += now_monotonic_ns() - t0;
    a->sample_slices++;
    static const struct timeval now = {0, 0};
    if (more)
        evtimer_add(a->ev_sample_more, &now);
    else
        a->sample_passes++;
}

static void on_sample_more(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    sample_slice(arg, now_monotonic_ns());
}

static void on_sample(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct agent *a = arg;
    if (evtimer_pending(a->ev_sample_more, NULL))
        return; /* the last pass is not done: a loop this busy skips one */
    uint64_t t0 = now_monotonic_ns();
    a->sample_gen++;
    sample_node(a);
    sample_slice(a, t0);
}

int sampler_start(struct agent *a, struct berr **err)
{
    a->proc_stat_fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
    a->meminfo_fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
    if (a->proc_stat_fd < 0 || a->meminfo_fd < 0)
        return berr_set(err, errno, "open /proc/stat and /proc/meminfo");
    sample_node(a);
    a->ev_sample = event_new(a->base, -1, EV_PERSIST, on_sample, a);
    a->ev_sample_more = evtimer_new(a->base, on_sample_more, a);
    if (!a->ev_sample || !a->ev_sample_more)
        return berr_setx(err, ENOMEM, "cannot make the sampler's events");
    uint64_t ms = a->cfg.stats_interval_ms ? a->cfg.stats_interval_ms : 1000;
    struct timeval tv = {.tv_sec = (time_t) (ms / 1000),
                         .tv_usec = (suseconds_t) (ms % 1000) * 1000};
    event_add(a->ev_sample, &tv);
    return 0;
}

void sampler_stop(struct agent *a)
{
    if (a->ev_sample)
        event_free(a->ev_sample);
    if (a->ev_sample_more)
        event_free(a->ev_sample_more);
    a->ev_sample = a->ev_sample_more = NULL;
    closep(&a->proc_stat_fd);
    closep(&a->meminfo_fd);
    a->proc_stat_fd = a->meminfo_fd = -1;
}
