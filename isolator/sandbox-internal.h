/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/sandbox-internal.h - private to isolator/: the capability steps task.c runs
 * around the uid switch (caps.c), and the /etc files mount.c binds (mount-etc.c). Not for
 * other folders; they use isolator.h. */
#pragma once

#include <stdbool.h>

#include "common/common.h"

/* The highest capability the running kernel knows (libcap's cap_max_bits: a file read). */
int caps_last(void);
/* Before setuid, still with CAP_SETPCAP: drop every capability up to last outside
 * iso_default_caps from the bounding set, clear the ambient and inheritable sets. */
int caps_drop_bounding(int last, struct berr **err);
/* After the uid switch: root gets E=P=default set; anyone else E=P=I=empty. */
int caps_set_final(bool root, struct berr **err);
/* mount-etc.c: bind etc_dir's hosts, resolv.conf and hostname read-only over the ones in the
 * new root (root: its host path, before pivot_root); the targets the root lacks are skipped. */
int mnt_etc_files(const char *root, const char *etc_dir, struct berr **err);
