/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_status.c - libFuzzer target: what berth-executor reports, as the agent reads
 * it (isolator/status.c): the status pipe's line and status.json. Whatever decodes must
 * encode and decode again to the same kind and code. */
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
    struct iso_status s, again;
    struct berr *err = NULL;
    if (iso_status_from_line(text, &s) == 0) {
        char *line = iso_status_line(&s);
        if (iso_status_from_line(line, &again) < 0 || again.kind != s.kind)
            abort();
        iso_status_done(&again);
        free(line);
        iso_status_done(&s);
    }
    if (iso_status_from_json(text, &s, &err) == 0) {
        char *json = iso_status_to_json(&s);
        if (iso_status_from_json(json, &again, &err) < 0 || again.kind != s.kind ||
            again.code != s.code)
            abort();
        iso_status_done(&again);
        free(json);
        iso_status_done(&s);
    }
    berr_free(&err);
    free(text);
    return 0;
}
