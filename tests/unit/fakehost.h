/* SPDX-License-Identifier: MIT */
/*
 * A fake device host for the device cores' unit tests: the dev_host_ops a
 * core calls, recording what it asked for. A test that needs more (guest
 * RAM, a disk) puts a struct fakehost first in its own struct and adds the
 * ops it needs to a copy of fakehost_ops.
 */
#ifndef BULKHEAD_TESTS_FAKEHOST_H
#define BULKHEAD_TESTS_FAKEHOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device-procs/devhost/dev.h"

#define FAKEHOST_MAX_LINES 4u
#define FAKEHOST_OUT_SIZE 4096u

struct fakehost {
	unsigned nlines;                    /* lines the device may drive */
	bool level[FAKEHOST_MAX_LINES];     /* each line as last driven */
	unsigned edges[FAKEHOST_MAX_LINES]; /* rising edges of each */
	unsigned irq_calls;
	unsigned irq_redundant;   /* calls that did not change the level */
	unsigned irq_bad_line;    /* calls for a line >= nlines */
	uint8_t out[FAKEHOST_OUT_SIZE];   /* backend output, its start */
	size_t nout;
	size_t nout_total;
	unsigned exits;
	uint32_t exit_code;       /* of the last exit request */
	unsigned resets;
	unsigned poweroffs;
	uint64_t clock_ns;        /* the virtual clock: the test moves it */
	int64_t wall;             /* the wall clock */
	uint64_t timer[DEV_MAX_TIMERS];   /* armed deadlines, 0 none */
	unsigned arms, cancels;
	unsigned arm_in_past;     /* deadlines not after the clock */
	unsigned bad_timer_id;
};

/* Everything above: IRQs, output, exit, reset, power-off, clocks, timers. */
extern const struct dev_host_ops fakehost_ops;
/* Only what every host has: IRQs, output, exit. */
extern const struct dev_host_ops fakehost_bare_ops;

/* Zero h, for a device that drives nlines IRQ lines. */
void fakehost_reset(struct fakehost *h, unsigned nlines);

#endif
