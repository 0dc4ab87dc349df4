/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_codec.c - libFuzzer target: the agent link's call envelope (what the master
 * decodes from any peer, before it knows who that is), the status update inside an UPDATE,
 * and the re-encoding of a decoded status, which must decode again to the same values
 * (masterlink/codec.c, json.c). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "masterlink/masterlink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ml_call call;
    struct berr *err = NULL;
    if (ml_call_decode((const char *) data, size, &call, &err) == 0) {
        struct ml_status s;
        if (ml_status_decode(json_get(call.payload, "status"), &s, &err) == 0) {
            char *json = ml_status_encode(&s);
            struct ml_status again;
            struct berr *e2 = NULL;
            yajl_val v = json_parse(json, strlen(json), &e2);
            if (!v || ml_status_decode(v, &again, &e2) < 0)
                abort(); /* what we encode we must read back */
            if (strcmp(again.task_id, s.task_id) || strcmp(again.uuid, s.uuid) ||
                again.state != s.state || again.exit_code != s.exit_code)
                abort();
            ml_status_done(&again);
            yajl_tree_free(v);
            berr_free(&e2);
            free(json);
            ml_status_done(&s);
        }
        ml_call_done(&call);
    }
    berr_free(&err);
    return 0;
}
