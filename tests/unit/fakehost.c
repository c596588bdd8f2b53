/* SPDX-License-Identifier: MIT */
/* The device cores' fake host (tests/unit/fakehost.h). */
#include <string.h>

#include "tests/unit/fakehost.h"

void fakehost_reset(struct fakehost *h, unsigned nlines)
{
	memset(h, 0, sizeof(*h));
	h->nlines = nlines < FAKEHOST_MAX_LINES ? nlines : FAKEHOST_MAX_LINES;
}

static void fakehost_irq_set(void *host, unsigned line, bool level)
{
	struct fakehost *h = host;

	h->irq_calls++;
	if (line >= h->nlines) {
		h->irq_bad_line++;
		return;
	}
	if (level == h->level[line])
		h->irq_redundant++;
	if (level && !h->level[line])
		h->edges[line]++;
	h->level[line] = level;
}

static ssize_t fakehost_backend_write(void *host, const void *buf, size_t len)
{
	struct fakehost *h = host;
	size_t n = len;

	if (n > sizeof(h->out) - h->nout)
		n = sizeof(h->out) - h->nout;
	memcpy(h->out + h->nout, buf, n);
	h->nout += n;
	h->nout_total += len;
	return (ssize_t)len;
}

static void fakehost_request_exit(void *host, uint32_t code)
{
	struct fakehost *h = host;

	h->exits++;
	h->exit_code = code;
}

static void fakehost_request_reset(void *host)
{
	((struct fakehost *)host)->resets++;
}

static void fakehost_request_poweroff(void *host)
{
	((struct fakehost *)host)->poweroffs++;
}

static uint64_t fakehost_clock_ns(void *host)
{
	return ((struct fakehost *)host)->clock_ns;
}

static int64_t fakehost_wall_clock(void *host)
{
	return ((struct fakehost *)host)->wall;
}

static void fakehost_timer_arm(void *host, unsigned id, uint64_t when_ns)
{
	struct fakehost *h = host;

	if (id >= DEV_MAX_TIMERS) {
		h->bad_timer_id++;
		return;
	}
	if (when_ns == 0) {
		h->cancels++;
	} else {
		h->arms++;
		if (when_ns <= h->clock_ns)
			h->arm_in_past++;
	}
	h->timer[id] = when_ns;
}

const struct dev_host_ops fakehost_ops = {
	.irq_set = fakehost_irq_set,
	.backend_write = fakehost_backend_write,
	.request_exit = fakehost_request_exit,
	.request_reset = fakehost_request_reset,
	.request_poweroff = fakehost_request_poweroff,
	.clock_ns = fakehost_clock_ns,
	.wall_clock = fakehost_wall_clock,
	.timer_arm = fakehost_timer_arm,
};

const struct dev_host_ops fakehost_bare_ops = {
	.irq_set = fakehost_irq_set,
	.backend_write = fakehost_backend_write,
	.request_exit = fakehost_request_exit,
};
