/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_recordio.c - libFuzzer target: the RecordIO reader of the agent link's event
 * stream (masterlink/recordio.c), fed the input in pieces whose sizes the input's first byte
 * chooses, as a TCP stream may cut it, with every record decoded as an event
 * (masterlink/codec.c). A crash, leak or UB report is a bug (make fuzz; tests/fuzz/README.md). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "masterlink/masterlink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t step = (size_t) (data[0] % 64) + 1;
    data++, size--;
    struct ml_reader r;
    ml_reader_init(&r, 4096);
    for (size_t off = 0; off < size; off += step) {
        ml_reader_feed(&r, (const char *) data + off, size - off < step ? size - off : step);
        for (;;) {
            const char *rec;
            size_t len;
            struct berr *err = NULL;
            int n = ml_reader_next(&r, &rec, &len, &err);
            if (n <= 0) {
                berr_free(&err);
                if (n < 0)
                    goto out;
                break;
            }
            struct ml_event ev;
            if (ml_event_decode(rec, len, &ev, &err) == 0)
                ml_event_done(&ev);
            berr_free(&err);
        }
    }
out:
    ml_reader_free(&r);
    return 0;
}
