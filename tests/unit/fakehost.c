/* SPDX-License-Identifier: MIT */
/* The device cores' fake host (tests/unit/fakehost.h). */
#include <check.h>
#include <stdlib.h>
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

void fakehost_assert_irqs(const struct fakehost *h)
{
	ck_assert_uint_eq(h->irq_redundant, 0);
	ck_assert_uint_eq(h->irq_bad_line, 0);
}

void fakehost_dev_new(struct fakehost *h, unsigned nlines,
		      const struct dev_desc *desc, struct dev **d)
{
	fakehost_reset(h, nlines);
	ck_assert_int_eq(dev_new(desc, 0, &fakehost_ops, h, d), 0);
}

void fakehost_dev_free(const struct fakehost *h, struct dev **d)
{
	fakehost_assert_irqs(h);
	dev_free(*d);
	*d = NULL;
}

void fakehost_wr8(struct dev *d, unsigned region, uint64_t off, uint8_t v)
{
	d->desc->io(d, region, off, &v, 1, true);
}

uint8_t fakehost_rd8(struct dev *d, unsigned region, uint64_t off,
		     uint8_t fill)
{
	uint8_t v = fill;

	d->desc->io(d, region, off, &v, 1, false);
	return v;
}

void fakehost_save(struct dev *d, uint8_t **buf, size_t *len)
{
	*buf = NULL;
	*len = 0;
	ck_assert_int_eq(d->desc->save(d, buf, len), 0);
	ck_assert_ptr_nonnull(*buf);
}

void fakehost_refuse(const struct fakehost_saved *sv, const uint8_t *buf,
		     size_t len, uint32_t version)
{
	uint8_t *now;
	size_t now_len;

	ck_assert_int_lt(sv->dev->desc->load(sv->dev, buf, len, version), 0);
	fakehost_save(sv->dev, &now, &now_len);
	ck_assert_uint_eq(now_len, sv->len);
	ck_assert_mem_eq(now, sv->buf, sv->len);
	free(now);
}

void fakehost_refuse_msg(const struct fakehost_saved *sv,
			 const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);

	ck_assert_ptr_nonnull(buf);
	protobuf_c_message_pack(m, buf);
	fakehost_refuse(sv, buf, len, 1);
	free(buf);
}
