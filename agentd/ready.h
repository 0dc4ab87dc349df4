/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/ready.h - a container's sandbox and runtime dirs made ahead of its launch by a
 * thread (ready.c), so that a launch creates no inode of the disk's (sandbox.c takes them;
 * main.c starts and stops the thread). */
#pragma once

#include <stdbool.h>

struct agent;
struct berr;

/* At start, after trash_init: what an earlier run left in work_dir/ready goes to the
 * trash, and the thread starts making dirs (ISO_NS_MOUNT: the /etc files' too). */
int ready_init(struct agent *a, struct berr **err);
/* Rename a made pair into place as sandbox and rdir, their files in them: true; false when
 * none is made yet, another launch's spawn is under way (a burst), or the work_dir is split
 * by mounts: the caller makes them itself. */
bool ready_take(struct agent *a, const char *sandbox, const char *rdir);
/* After a launch that took a pair gave its executor the launch: the thread makes another.
 * Not sooner, and at SCHED_IDLE: woken while the loop makes the launch's spec, the thread
 * took the CPU the executor was then woken on. */
void ready_refill(void);
/* At the stop: the thread ends; what it made stays for the next start to trash. */
void ready_free(struct agent *a);
