/* SPDX-License-Identifier: Apache-2.0 */
/* tests/helpers/probe.h - what probe.c and probe-watch.c share: the probe's modes in the
 * other file, and its number parser (exits 2 on garbage). */
#ifndef BERTH_TESTS_PROBE_H
#define BERTH_TESTS_PROBE_H

#include <stdint.h>

uint64_t num(const char *s);
int cmd_ptraceexec(int n, char **a);
int cmd_chargefloor(int n, char **a);

#endif
