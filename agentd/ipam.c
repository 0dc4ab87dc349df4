/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/ipam.c - bridge mode's address allocation (docs/design/network.md): which address
 * of [network] subnet a task gets. The allocation itself is the container's record in
 * state.db (its "net" address, written with STAGING before any side effect): an address is
 * taken while a live record holds it and free once the record is terminal or gone, so a
 * crash can neither leak one nor hand one out twice, and no second table can disagree with
 * the records. This file is the pure choice over a bitmap (unit-tested); net.c fills the
 * bitmap from the live containers. */
#include <string.h>

#include "agentd/agent.h"

uint32_t ipam_size(unsigned prefix)
{
    return prefix >= 32 ? 1 : UINT32_C(1) << (32 - prefix);
}

bool ipam_in_subnet(uint32_t subnet, unsigned prefix, uint32_t addr)
{
    uint32_t mask = prefix ? ~UINT32_C(0) << (32 - prefix) : 0;
    return (addr & mask) == subnet;
}

void ipam_mark(uint64_t *used, uint32_t offset)
{
    used[offset / 64] |= UINT64_C(1) << (offset % 64);
}

void ipam_reserve(uint64_t *used, uint32_t size)
{
    ipam_mark(used, 0);        /* the network */
    ipam_mark(used, 1);        /* the gateway: the bridge's own address */
    ipam_mark(used, size - 1); /* the broadcast */
}

uint32_t ipam_pick(const uint64_t *used, uint32_t size, uint32_t *cursor)
{
    /* round robin from the cursor: an address a task just left is not handed out again at
     * once, while peers may still have its MAC in their neighbour caches */
    for (uint32_t k = 0; k < size; k++) {
        uint32_t off = (*cursor + k) % size;
        if (!(used[off / 64] >> (off % 64) & 1)) {
            *cursor = (off + 1) % size;
            return off;
        }
    }
    return 0;
}
