/* SPDX-License-Identifier: Apache-2.0 */
/* tests/bench/burst.c - make bench's load generator for issue #18's bursts (launch_path.py):
 *   burst launch SOCK N CLIENTS BODY   POST /v1/containers with BODY N times from CLIENTS
 *                                      threads, each on its own keep-alive connection; prints
 *                                      the ids (one a line, from the 201s' JSON)
 *   burst kill SOCK CLIENTS            for each id on stdin: POST .../kill (SIGKILL, grace 0),
 *                                      GET .../wait (answered when it ended), DELETE
 * libcurl on the agent's unix socket and yajl for the answers: the clients cost the two CPUs
 * the agent shares with them ~0.1 ms a request, where Python's http.client in 8 threads cost
 * ~1 ms (a third of the burst's CPU), so the figures are berth's. Any answer but the expected
 * status ends the run with exit 1. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

struct buf {
    char *p;
    size_t len, cap;
};

static const char *sock, *body;
static char **ids;
static size_t n_ids;
static atomic_size_t next;
static atomic_int failed;
static int kill_mode;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    size_t len = size * n;
    if (b->len + len + 1 > b->cap) {
        b->cap = (b->len + len + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    memcpy(b->p + b->len, p, len);
    b->len += len;
    b->p[b->len] = 0;
    return len;
}

/* One request on h; 0 when the status is want. */
static int call(CURL *h, struct buf *b, const char *method, const char *path, const char *data,
                long want)
{
    char url[256];
    snprintf(url, sizeof(url), "http://localhost%s", path);
    b->len = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (data) { /* a POST with this body */
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, data);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
    } else { /* a GET, or a DELETE without a body */
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") ? method : NULL);
    }
    long status = 0;
    CURLcode r = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (r != CURLE_OK || status != want) {
        fprintf(stderr, "burst: %s %s: %s, status %ld: %.200s\n", method, path,
                curl_easy_strerror(r), status, b->p ? b->p : "");
        atomic_store(&failed, 1);
        return -1;
    }
    return 0;
}

static CURL *handle(struct buf *b, struct curl_slist *hdrs)
{
    CURL *h = curl_easy_init();
    if (!h)
        abort();
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
    return h;
}

/* Launch i: POST, and its id from the 201. */
static int launch_one(CURL *h, struct buf *b, size_t i)
{
    if (call(h, b, "POST", "/v1/containers", body, 201) < 0)
        return -1;
    yajl_val v = yajl_tree_parse(b->p, NULL, 0);
    const char *path[] = {"id", NULL};
    yajl_val id = v ? yajl_tree_get(v, path, yajl_t_string) : NULL;
    const char *s = id ? YAJL_GET_STRING(id) : NULL;
    if (s)
        ids[i] = strdup(s);
    else
        fprintf(stderr, "burst: no id in %.200s\n", b->p);
    yajl_tree_free(v);
    return s ? 0 : -1;
}

/* Kill i (SIGKILL, grace 0), wait for its end, remove it. */
static int kill_one(CURL *h, struct buf *b, size_t i)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/containers/%s/kill", ids[i]);
    if (call(h, b, "POST", path, "{\"signal\":\"KILL\",\"grace_seconds\":0}", 202) < 0)
        return -1;
    snprintf(path, sizeof(path), "/v1/containers/%s/wait", ids[i]);
    if (call(h, b, "GET", path, NULL, 200) < 0)
        return -1;
    snprintf(path, sizeof(path), "/v1/containers/%s", ids[i]);
    return call(h, b, "DELETE", path, NULL, 204);
}

/* One client: its own connection, the next index until none is left or one failed. */
static void *client(void *arg)
{
    (void) arg;
    int (*one)(CURL *, struct buf *, size_t) = kill_mode ? kill_one : launch_one;
    struct buf b = {0};
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    CURL *h = handle(&b, hdrs);
    size_t i;
    while (!atomic_load(&failed) && (i = atomic_fetch_add(&next, 1)) < n_ids)
        if (one(h, &b, i) < 0) {
            atomic_store(&failed, 1);
            break;
        }
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    free(b.p);
    return NULL;
}

int main(int argc, char **argv)
{
    kill_mode = argc == 4 && strcmp(argv[1], "kill") == 0;
    if (!kill_mode && !(argc == 6 && strcmp(argv[1], "launch") == 0)) {
        fprintf(stderr, "usage: burst launch SOCK N CLIENTS BODY | burst kill SOCK CLIENTS\n");
        return 2;
    }
    sock = argv[2];
    int clients = atoi(argv[kill_mode ? 3 : 4]);
    if (kill_mode) {
        char line[128];
        size_t cap = 0;
        while (fgets(line, sizeof(line), stdin)) {
            line[strcspn(line, "\n")] = 0;
            if (!line[0])
                continue;
            if (n_ids == cap && !(ids = realloc(ids, (cap = cap * 2 + 64) * sizeof(*ids))))
                abort();
            ids[n_ids++] = strdup(line);
        }
    } else {
        n_ids = strtoul(argv[3], NULL, 10);
        body = argv[5];
        ids = calloc(n_ids, sizeof(*ids));
    }
    if (clients < 1 || clients > 64 || !ids || curl_global_init(CURL_GLOBAL_NOTHING) != 0)
        return 2;
    pthread_t th[64];
    for (int t = 0; t < clients; t++)
        if (pthread_create(&th[t], NULL, client, NULL) != 0)
            return 2;
    for (int t = 0; t < clients; t++)
        pthread_join(th[t], NULL);
    if (atomic_load(&failed))
        return 1;
    for (size_t i = 0; !kill_mode && i < n_ids; i++)
        printf("%s\n", ids[i]);
    for (size_t i = 0; i < n_ids; i++)
        free(ids[i]);
    free(ids);
    curl_global_cleanup();
    return fflush(stdout) == 0 ? 0 : 1;
}
