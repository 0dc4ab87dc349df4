/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/sandbox-internal.h - private to isolator/: the capability steps task.c runs
 * around the uid switch (caps.c), the mount helpers (mount-util.c) the template
 * (mount-template.c) and each sandbox (mount.c) share, and the /etc files mount.c binds
 * (mount-etc.c). Not for other folders; they use isolator.h. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "common/common.h"

/* The highest capability the running kernel knows (libcap's cap_max_bits: a file read). */
int caps_last(void);
/* Before setuid, still with CAP_SETPCAP: drop every capability up to last outside
 * iso_default_caps from the bounding set, clear the ambient and inheritable sets. */
int caps_drop_bounding(int last, struct berr **err);
/* After the uid switch: root gets E=P=default set; anyone else E=P=I=empty. */
int caps_set_final(bool root, struct berr **err);

/* ---- mount-util.c ------------------------------------------------------------------------ */
bool path_exists(const char *p); /* lstat */
/* A path whose components are never "..": volume targets must stay where they are put. */
bool path_is_clean(const char *p);
/* rbind src on dst. 0 or -errno with err set (so are the others). */
int mnt_bind(const char *src, const char *dst, struct berr **err);
/* Remount the one mount at path read-only, keeping its other per-mount flags. */
int mnt_remount_ro(const char *path, struct berr **err);
/* Make the mount at path (and, when recursive, all mounts below it) read-only:
 * mount_setattr (5.12+), atomic for the whole tree; on ENOSYS each mount one by one. */
int mnt_make_ro(const char *path, bool recursive, struct berr **err);
int mnt_tmpfs(const char *dst, unsigned long flags, const char *opts, struct berr **err);
/* openat2 that never follows a symlink nor leaves dirfd (RESOLVE_BENEATH) or, with in_root,
 * treats dirfd as "/" (RESOLVE_IN_ROOT). */
int mnt_open_at(int dirfd, const char *path, int flags, mode_t mode, bool in_root);

/* ---- mount-etc.c: the sandbox's own /etc/hosts, resolv.conf and hostname ------------------ */
#define MNT_ETC_FILES 3
/* In the host's view, before the sandbox's namespace is entered: a detached read-only
 * copy of each of etc_dir's files the agent wrote (trees[i], -1 for the others). */
int mnt_etc_open(const char *etc_dir, int trees[MNT_ETC_FILES], struct berr **err);
/* In the sandbox's namespace: put them over the ones in the root "/" has (targets the
 * root lacks are skipped), and close them. */
int mnt_etc_attach(int trees[MNT_ETC_FILES], struct berr **err);
