/* SPDX-License-Identifier: Apache-2.0 */
/* common/syncer.c - fdatasync on a thread (syncer.h says why and how it is used).
 * A plain thread and a condition variable rather than io_uring's IORING_OP_FSYNC: no new
 * library, and the kernel's own fsync path either way. */
#include "common/syncer.h"

#include <pthread.h>
#include <sys/eventfd.h>
#include <time.h>

struct syncer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t asked_cv; /* the thread waits here for an ask or the stop */
    pthread_cond_t done_cv;  /* syncer_wait waits here */
    uint64_t asked, done, failed;
    int err;
    bool stop;
    int fd, efd;
    unsigned delay_ms;
};

static void *syncer_main(void *arg)
{
    struct syncer *s = arg;
    thread_own_files(s->fd, s->efd); /* common.h says why */
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->done == s->asked && !s->stop)
            pthread_cond_wait(&s->asked_cv, &s->mu);
        if (s->done == s->asked)
            break; /* stopped, nothing left to sync */
        uint64_t upto = s->asked;
        pthread_mutex_unlock(&s->mu);
        if (s->delay_ms) {
            struct timespec ts = {s->delay_ms / 1000, (long) (s->delay_ms % 1000) * 1000000};
            while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        }
        int r = fdatasync(s->fd) < 0 ? -errno : 0;
        pthread_mutex_lock(&s->mu);
        s->done = upto;
        if (r < 0) {
            s->failed = upto;
            s->err = r;
        }
        pthread_cond_broadcast(&s->done_cv);
        uint64_t one = 1;
        (void) !write(s->efd, &one, sizeof(one));
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

struct syncer *syncer_new(int fd, unsigned delay_ms, struct berr **err)
{
    struct syncer *s = xzalloc(sizeof(*s));
    s->fd = fd;
    s->delay_ms = delay_ms;
    s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->efd < 0) {
        berr_set(err, errno, "eventfd");
        close(fd);
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->asked_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    int r = thread_start_quiet(&s->thread, "berth-sync", syncer_main, s);
    if (r != 0) {
        berr_set(err, r, "start the sync thread");
        close(s->efd);
        close(fd);
        free(s);
        return NULL;
    }
    return s;
}

int syncer_fd(const struct syncer *s)
{
    return s->efd;
}

uint64_t syncer_ask(struct syncer *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t n = ++s->asked;
    pthread_cond_signal(&s->asked_cv);
    pthread_mutex_unlock(&s->mu);
    return n;
}

uint64_t syncer_done(struct syncer *s, uint64_t *failed, int *err)
{
    uint64_t v;
    (void) !read(s->efd, &v, sizeof(v)); /* EAGAIN when already emptied: fine */
    pthread_mutex_lock(&s->mu);
    uint64_t done = s->done;
    *failed = s->failed;
    *err = s->err;
    pthread_mutex_unlock(&s->mu);
    return done;
}

void syncer_wait(struct syncer *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->done < s->asked)
        pthread_cond_wait(&s->done_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

void syncer_free(struct syncer *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->asked_cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->asked_cv);
    pthread_cond_destroy(&s->done_cv);
    pthread_mutex_destroy(&s->mu);
    close(s->efd);
    close(s->fd);
    free(s);
}
