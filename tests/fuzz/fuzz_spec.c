/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_spec.c - libFuzzer target: the sandbox spec codec (isolator/spec.c) that
 * berth-executor reads from runtime_dir/spec.json: decode, and a decoded spec must encode and
 * decode again. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "isolator/isolator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    struct iso_spec s;
    struct berr *err = NULL;
    if (iso_spec_from_json(text, &s, &err) == 0) {
        char *json = iso_spec_to_json(&s);
        struct iso_spec again;
        if (iso_spec_from_json(json, &again, &err) < 0)
            abort();
        if (strcmp(again.id, s.id) || again.flags != s.flags || again.n_volumes != s.n_volumes)
            abort();
        iso_spec_done(&again);
        free(json);
        iso_spec_done(&s);
    }
    berr_free(&err);
    free(text);
    return 0;
}
