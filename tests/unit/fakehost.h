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

#include <protobuf-c/protobuf-c.h>

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

/* Assert that h saw each IRQ line driven only on changes, none past
 * nlines: a test's teardown, before it frees the device. */
void fakehost_assert_irqs(const struct fakehost *h);

/* Reset h for nlines IRQ lines and make a desc device on it in *d. */
void fakehost_dev_new(struct fakehost *h, unsigned nlines,
		      const struct dev_desc *desc, struct dev **d);
/* fakehost_assert_irqs(h), then free *d and clear it. */
void fakehost_dev_free(const struct fakehost *h, struct dev **d);

/* One byte of I/O to d's region at off; a read's byte starts as fill. */
void fakehost_wr8(struct dev *d, unsigned region, uint64_t off, uint8_t v);
uint8_t fakehost_rd8(struct dev *d, unsigned region, uint64_t off,
		     uint8_t fill);

/* A device and what it saved: what a refused load must leave. */
struct fakehost_saved {
	struct dev *dev;
	const uint8_t *buf;
	size_t len;
};

/* Save d into a new buffer (*buf, *len), asserting it worked. */
void fakehost_save(struct dev *d, uint8_t **buf, size_t *len);
/* Load buf, require a refusal that leaves the device saving sv's bytes. */
void fakehost_refuse(const struct fakehost_saved *sv, const uint8_t *buf,
		     size_t len, uint32_t version);
/* The same for a message m, packed, at version 1. */
void fakehost_refuse_msg(const struct fakehost_saved *sv,
			 const ProtobufCMessage *m);

#endif
