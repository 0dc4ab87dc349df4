/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_config.c - libFuzzer target: berth-agent's configuration loader
 * (config/load.c through libinih, config.c's checks) on a whole file, given to it as a memfd:
 * any text must load or fail with a message, never crash or leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("agent.conf", MFD_CLOEXEC);
    if (fd < 0 || write(fd, data, size) != (ssize_t) size) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    char arg[64];
    snprintf(arg, sizeof(arg), "--config=/proc/self/fd/%d", fd);
    char *argv[] = {(char *) "berth-agent", arg, NULL};
    struct cfg_agent cfg;
    struct berr *err = NULL;
    if (cfg_load_with_default(&cfg, "/nonexistent", 2, argv, &err) == 0)
        cfg_done(&cfg);
    else if (!err || !berr_msg(err)[0])
        __builtin_trap(); /* every failure says why */
    berr_free(&err);
    close(fd);
    return 0;
}
