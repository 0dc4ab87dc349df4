/* SPDX-License-Identifier: Apache-2.0 */
/* common/rmtree.h - remove a directory tree in-process, by file descriptors (agentd/trash.c
 * runs it on a thread of its own, issue #18: an `rm` per batch cost its exec and, on this
 * kind of virtual machine, glibc's start-up CPUID probes). Symbolic links are removed, never
 * followed; nothing on another file system is entered (rm's --one-file-system); the depth is
 * bounded, so a tree a task made deeper than RMTREE_DEPTH_MAX is left, partly, to a caller
 * that hands it to `rm -rf`, which has no bound. Only system calls (getdents64, no
 * opendir's malloc): safe on a thread beside a loop that clones children. */
#pragma once

#include <stdatomic.h>

#include "common/common.h"

#define RMTREE_DEPTH_MAX 32

/* 0 when path is gone (or was not there); -ELOOP when a part lies deeper than the bound,
 * -EXDEV when a part is on another file system, -ECANCELED when *stop was set meanwhile,
 * else the first -errno met. Whatever could be removed is removed either way. */
int rm_tree(const char *path, const atomic_bool *stop);
