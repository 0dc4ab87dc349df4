/* isolator/sandbox-internal.h - private to isolator/: the capability steps task.c runs
 * around the uid switch (caps.c). Not for other folders; they use isolator.h. */
#pragma once

#include <stdbool.h>

#include "common/common.h"

/* Before setuid, still with CAP_SETPCAP: drop every capability outside iso_default_caps
 * from the bounding set, clear the ambient and inheritable sets. */
int caps_drop_bounding(struct berr **err);
/* After the uid switch: root gets E=P=default set; anyone else E=P=I=empty. */
int caps_set_final(bool root, struct berr **err);
