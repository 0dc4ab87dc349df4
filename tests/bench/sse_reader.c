/* SPDX-License-Identifier: Apache-2.0 */
/* tests/bench/sse_reader.c PORT TOKEN N - the readers of tests/bench/events_bench.py (and
 * apps_events_bench.py, berth-apps' stream): N
 * subscribers of GET /v1/events on 127.0.0.1:PORT, read by one epoll loop in C so that the
 * client's own lag stays out of the delivery latency it measures (receive time, CLOCK_REALTIME
 * when read() returned, minus the event's "time", which the daemon sets when it publishes).
 * Prints "ready" once every stream has its snapshot; then reads the number of events to wait
 * for from stdin, waits until every stream has them (or 60 s more), and prints one JSON line:
 * {"counts": [...], "n", "p50_ms", "p99_ms", "max_ms"}. Snapshots are not counted. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SUBS 256
#define BUF (1 << 20)

struct sub {
    int fd;
    char *buf;
    size_t used;
    long count;
    int ready;
};

static double *lat;
static size_t n_lat, cap_lat;

static double now_real(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

/* The complete lines of s's buffer: count the events (not snapshots) and their latency. */
static void scan(struct sub *s, double now)
{
    static const char pfx[] = "data: {\"time\":";
    char *p = s->buf, *end = s->buf + s->used, *nl;
    while ((nl = memchr(p, '\n', (size_t) (end - p)))) {
        *nl = 0;
        if (strncmp(p, pfx, sizeof(pfx) - 1) == 0) {
            char *q;
            double t = strtod(p + sizeof(pfx) - 1, &q);
            if (strncmp(q, ",\"agents\"", 9) == 0 || strncmp(q, ",\"apps\"", 7) == 0) {
                s->ready = 1; /* the snapshot: berth-master's, berth-apps' */
            } else {
                s->count++;
                if (n_lat == cap_lat) {
                    cap_lat = cap_lat ? cap_lat * 2 : 65536;
                    lat = realloc(lat, cap_lat * sizeof(*lat));
                    if (!lat)
                        abort();
                }
                lat[n_lat++] = now - t;
            }
        }
        p = nl + 1;
    }
    s->used = (size_t) (end - p);
    memmove(s->buf, p, s->used);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: sse_reader PORT TOKEN N\n");
        return 2;
    }
    int port = atoi(argv[1]), n = atoi(argv[3]);
    if (n < 1 || n > MAX_SUBS)
        return 2;
    static struct sub subs[MAX_SUBS];
    int ep = epoll_create1(EPOLL_CLOEXEC);
    char req[512];
    int rl = snprintf(req, sizeof(req),
                      "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                      "Accept: text/event-stream\r\n\r\n",
                      argv[2]);
    for (int i = 0; i < n; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &a, sizeof(a)) < 0 ||
            write(fd, req, (size_t) rl) != rl) {
            perror("connect");
            return 1;
        }
        subs[i] = (struct sub){.fd = fd, .buf = malloc(BUF)};
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t) i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    struct epoll_event in = {.events = EPOLLIN, .data.u32 = MAX_SUBS};
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &in);
    long want = -1;
    int announced = 0;
    double deadline = 0;
    for (;;) {
        int all = 1, ready = 1;
        for (int i = 0; i < n; i++) {
            all &= want >= 0 && subs[i].count >= want;
            ready &= subs[i].ready;
        }
        if (all || (deadline && now_real() > deadline))
            break;
        if (ready && !announced) {
            printf("ready\n");
            fflush(stdout);
            announced = 1;
        }
        struct epoll_event evs[64];
        int k = epoll_wait(ep, evs, 64, 200);
        double now = now_real();
        for (int j = 0; j < k; j++) {
            uint32_t i = evs[j].data.u32;
            if (i == MAX_SUBS) {
                char line[64] = "";
                ssize_t r = read(0, line, sizeof(line) - 1);
                if (r > 0) {
                    want = atol(line);
                    deadline = now + 60;
                }
                epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
                continue;
            }
            struct sub *s = &subs[i];
            ssize_t r = read(s->fd, s->buf + s->used, BUF - 1 - s->used);
            if (r <= 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
                continue;
            }
            s->used += (size_t) r;
            scan(s, now);
        }
    }
    qsort(lat, n_lat, sizeof(*lat), cmp);
    printf("{\"counts\": [");
    for (int i = 0; i < n; i++)
        printf("%s%ld", i ? ", " : "", subs[i].count);
    double p50 = n_lat ? lat[n_lat / 2] : 0, p99 = n_lat ? lat[(size_t) (n_lat * 0.99)] : 0;
    printf("], \"n\": %zu, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f}\n", n_lat,
           p50 * 1e3, p99 * 1e3, n_lat ? lat[n_lat - 1] * 1e3 : 0);
    return 0;
}
