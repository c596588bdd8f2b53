/* SPDX-License-Identifier: MIT */
/*
 * devhost: the runtime every device process is built on, and the interface
 * between it and a device core.
 *
 * A device is data plus a pure core: a descriptor naming its regions, IRQ
 * lines and callbacks. The core never does I/O itself; it calls the host
 * services below (dev_irq_set, dev_backend_write, dev_request_exit), which
 * the devhost runtime implements in a device process and which unit tests
 * and fuzzers implement with fakes. So the same core runs in its sandboxed
 * process, under Check and under a fuzzer.
 *
 * Concurrency: the runtime calls a core's callbacks with the device lock
 * held, so a core needs no locking of its own.
 */
#ifndef BULKHEAD_DEV_H
#define BULKHEAD_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum dev_space { DEV_PIO = 0, DEV_MMIO = 1 };

struct dev_region {
	enum dev_space space;
	uint64_t base;
	uint64_t len;
};

struct dev;

/* What the host provides to a core. */
struct dev_host_ops {
	/* Drive IRQ line `line` (index into desc->irqs) to `level`. */
	void (*irq_set)(void *host, unsigned line, bool level);
	/* Write bytes to the device's backend output (console, file). */
	ssize_t (*backend_write)(void *host, const void *buf, size_t len);
	/* Ask for the run to end with exit status (code << 1) | 1. */
	void (*request_exit)(void *host, uint32_t code);
};

struct dev_desc {
	const char *name;                 /* "uart", "debug-exit", ... */
	const struct dev_region *regions;
	unsigned nregions;
	const unsigned *irqs;             /* GSI numbers of the IRQ lines */
	unsigned nirqs;
	size_t state_size;                /* bytes of core state, zeroed */

	/* Build the device; returns 0 or -errno. May be NULL. */
	int (*construct)(struct dev *d);
	/*
	 * One handler for port I/O and MMIO alike. off is the offset within
	 * regions[region]; data points to len (1, 2, 4 or 8) bytes,
	 * little-endian: filled in for reads, given for writes.
	 */
	void (*io)(struct dev *d, unsigned region, uint64_t off, void *data,
		   unsigned len, bool write);
	/* Hardware reset (also called once after construct). May be NULL. */
	void (*reset)(struct dev *d);
	/*
	 * Backend input (UART receive): how many bytes the core can take now,
	 * and the bytes themselves (at most that many). May be NULL.
	 */
	size_t (*backend_room)(struct dev *d);
	void (*backend_input)(struct dev *d, const uint8_t *buf, size_t len);
};

struct dev {
	const struct dev_desc *desc;
	unsigned instance;
	void *state;                  /* desc->state_size bytes */
	const struct dev_host_ops *ops;
	void *host;                   /* passed back to ops */
};

/* Host services, for cores. */
static inline void dev_irq_set(struct dev *d, unsigned line, bool level)
{
	d->ops->irq_set(d->host, line, level);
}

static inline ssize_t dev_backend_write(struct dev *d, const void *buf,
					size_t len)
{
	return d->ops->backend_write(d->host, buf, len);
}

static inline void dev_request_exit(struct dev *d, uint32_t code)
{
	d->ops->request_exit(d->host, code);
}

/*
 * Allocate and construct a device from its descriptor (state zeroed, then
 * construct, then reset). Returns 0 or -errno; *out is freed with dev_free.
 */
int dev_new(const struct dev_desc *desc, unsigned instance,
	    const struct dev_host_ops *ops, void *host, struct dev **out);
void dev_free(struct dev *d);

/*
 * The device-process main: bootstrap from the broker on fd 3, register with
 * the worker, serve the access ring and the channel until told to stop or
 * the worker goes away. Returns the process exit status.
 */
int dev_main(int argc, char **argv, const struct dev_desc *desc);

/* The device descriptors this tree provides. */
extern const struct dev_desc uart_desc;
extern const struct dev_desc debugexit_desc;
extern const struct dev_desc null_desc;

#endif
