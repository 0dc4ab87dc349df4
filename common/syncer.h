/* SPDX-License-Identifier: Apache-2.0 */
/* common/syncer.h - fdatasync(2) of one file on a thread of its own, so that an event loop
 * never waits for the disk (issue #18; agentd/store.c syncs state.db's WAL with it).
 * The loop asks for a sync after it has written (syncer_ask returns the number of that ask)
 * and goes on; the thread syncs, covering every ask made before it started, and makes
 * syncer_fd readable; the loop then reads how far the syncs have come (syncer_done) and
 * runs what waited on them. Asks made while a sync runs are covered by the next one, so a
 * burst costs a few syncs, not one each. The thread only calls fdatasync, the mutex and
 * write(2): nothing a child cloned by the loop's thread could inherit half-held. */
#pragma once

#include <stdint.h>

#include "common/common.h"

struct syncer;

/* Takes fd (closed by syncer_free, also on failure). delay_ms > 0 is a test hook: each
 * sync waits that long first (a slow disk). NULL with err set when no thread can start. */
struct syncer *syncer_new(int fd, unsigned delay_ms, struct berr **err);

/* Readable (an eventfd) when a sync has finished; syncer_done empties it. */
int syncer_fd(const struct syncer *s);

/* A sync of everything written to fd so far: returns the number to wait for (1, 2, ...). */
uint64_t syncer_ask(struct syncer *s);

/* The highest number whose sync has finished; *failed the highest one a failed fdatasync
 * covered (0: none), *err that failure's -errno. */
uint64_t syncer_done(struct syncer *s, uint64_t *failed, int *err);

/* Blocks until every ask so far is synced (a stop, a synchronous commit after them). */
void syncer_wait(struct syncer *s);

/* Finishes the syncs asked, stops the thread, closes fd. NULL is fine. */
void syncer_free(struct syncer *s);
