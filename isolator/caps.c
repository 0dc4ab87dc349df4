/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/caps.c - the task's capabilities with libcap: docker's default set for root
 * tasks, nothing for other users, and a bounding set cut to the default set so no exec can
 * regain more. task.c calls the two phases around setuid; seccomp.c filters syscalls. */
#include <sys/capability.h>
#include <sys/prctl.h>

#include "isolator/isolator.h"
#include "isolator/sandbox-internal.h"

/* Docker's default: enough to run ordinary root-in-container software (package managers
 * chown, bind low ports, drop to another uid), but no SYS_ADMIN, SYS_PTRACE, SYS_MODULE,
 * NET_ADMIN, SYS_TIME ... */
const int iso_default_caps[] = {
        CAP_CHOWN,   CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,
        CAP_MKNOD,   CAP_NET_RAW,      CAP_SETGID,           CAP_SETUID,
        CAP_SETFCAP, CAP_SETPCAP,      CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
        CAP_KILL,    CAP_AUDIT_WRITE,
};
const size_t iso_n_default_caps = ARRAY_SIZE(iso_default_caps);

static bool caps_is_default(int cap)
{
    for (size_t i = 0; i < iso_n_default_caps; i++)
        if (iso_default_caps[i] == cap)
            return true;
    return false;
}

int caps_last(void)
{
    return (int) cap_max_bits();
}

/* The bounding set is per-thread and only shrinks; PR_CAPBSET_DROP needs CAP_SETPCAP, so
 * this runs before the uid switch. Capabilities the running kernel does not know (above
 * caps_last) are skipped. */
int caps_drop_bounding(int last, struct berr **err)
{
    for (int c = 0; c < last; c++) {
        if (caps_is_default(c))
            continue;
        if (cap_drop_bound((cap_value_t) c) < 0 && errno != EINVAL)
            return berr_set(err, errno, "drop capability %d from the bounding set", c);
    }
    if (cap_reset_ambient() < 0 && errno != EINVAL) /* EINVAL: kernel without ambient caps */
        return berr_set(err, errno, "clear ambient capabilities");
    cap_t c = cap_get_proc();
    if (!c)
        return berr_set(err, errno, "read capabilities");
    int r = 0;
    if (cap_clear_flag(c, CAP_INHERITABLE) < 0 || cap_set_proc(c) < 0)
        r = berr_set(err, errno, "clear inheritable capabilities");
    cap_free(c);
    return r;
}

/* For root: E=P=default (dropping is always allowed). For others setuid already emptied
 * P and E (no SECBIT_KEEP_CAPS); setting the empty set again makes it explicit. */
int caps_set_final(bool root, struct berr **err)
{
    cap_t c = cap_init(); /* all clear */
    if (!c)
        return berr_set(err, errno, "allocate capability set");
    int r = 0;
    if (root &&
        (cap_set_flag(c, CAP_EFFECTIVE, (int) iso_n_default_caps, iso_default_caps, CAP_SET) < 0 ||
         cap_set_flag(c, CAP_PERMITTED, (int) iso_n_default_caps, iso_default_caps, CAP_SET) < 0))
        r = berr_set(err, errno, "build capability set");
    if (r == 0 && cap_set_proc(c) < 0)
        r = berr_set(err, errno, "set capabilities");
    cap_free(c);
    return r;
}
