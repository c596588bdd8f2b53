/* SPDX-License-Identifier: MIT */
/* The MP table (mptable.c), for guests that find their CPUs through it. */
#ifndef BULKHEAD_EMT_WORKER_MPTABLE_H
#define BULKHEAD_EMT_WORKER_MPTABLE_H

#include <stdint.h>

/* The MP table (Intel MP spec 1.4) for ncpus processors, at 0xF0000. */
#define EMT_MPTABLE_ADDR 0xf0000ull
int emt_mptable_build(uint8_t *ram, uint64_t ram_size, unsigned ncpus);

#endif
