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

#include "device-procs/manifest.h" /* dev_space, dev_region, the manifest */

/* A doorbell: guest writes of len bytes at regions[region] + off are caught
 * by the kernel (ioeventfd) and reach the core's notify callback without
 * an exit to the worker. The written value is not delivered. */
struct dev_doorbell {
	unsigned region;
	uint64_t off;
	unsigned len;
};

/*
 * Posted writes: a guest write of regions[region] + [off, off + len) whose
 * effect the guest cannot observe at once, except through later accesses
 * to this device (which the ring keeps in order) and through interrupts.
 * The EMT queues it on the ring and lets the vCPU run on without waiting
 * for the core's io callback: a transmit register, a data sink. Not for a
 * write that stops or resets the VM, that the guest expects to take effect
 * in guest memory (DMA), or whose answer carries flags.
 */
struct dev_posted {
	unsigned region;
	uint64_t off;
	uint64_t len;
};

/* What a read that no register answers returns: all ones, as from a bus
 * nothing drives. */
#define DEV_OPEN_BUS 0xffu

/* IRQ line flags (dev_desc.irq_flags). */
#define DEV_IRQ_EDGE 0x0u   /* ISA style: a rising level is one pulse */
#define DEV_IRQ_LEVEL 0x1u  /* held while the core holds it (irqfd resample) */

struct dev;

/* What the host provides to a core. Every pointer may be used from any
 * callback; the runtime holds the device lock around every callback. */
struct dev_host_ops {
	/* Drive IRQ line `line` (index into the device's irqs) to `level`. */
	void (*irq_set)(void *host, unsigned line, bool level);
	/* Write bytes to the device's backend output (console, file). */
	ssize_t (*backend_write)(void *host, const void *buf, size_t len);
	/* Ask for the run to end with exit status (code << 1) | 1. */
	void (*request_exit)(void *host, uint32_t code);
	/* Ask for a VM reset (i8042 pulse on the reset line). May be NULL. */
	void (*request_reset)(void *host);
	/* Ask for the VM to power off (ACPI sleep). May be NULL. */
	void (*request_poweroff)(void *host);

	/*
	 * Guest memory, for DMA. mem_map returns a pointer to guest-physical
	 * [gpa, gpa + len) when all of it lies in guest RAM, else NULL. The
	 * guest can change that memory at any moment: copy what you validate
	 * (descriptors, headers) before validating it. May be NULL when the
	 * device does no DMA.
	 */
	void *(*mem_map)(void *host, uint64_t gpa, uint64_t len);

	/* Block backend (disk image): positioned I/O, flush, size in bytes.
	 * Return bytes done or -errno. May be NULL for other devices. */
	ssize_t (*blk_pread)(void *host, void *buf, size_t len, uint64_t off);
	ssize_t (*blk_pwrite)(void *host, const void *buf, size_t len,
			      uint64_t off);
	int (*blk_flush)(void *host);
	uint64_t (*blk_size)(void *host);
	/* Entropy for virtio-rng: fill buf; returns bytes or -errno. */
	ssize_t (*entropy)(void *host, void *buf, size_t len);

	/* The VM's virtual clock in ns: it stops while the VM is suspended. */
	uint64_t (*clock_ns)(void *host);
	/* Host wall-clock time (for the RTC), seconds since the epoch. */
	int64_t (*wall_clock)(void *host);
	/* Call desc->timer(d, id) once the virtual clock reaches when_ns;
	 * when_ns 0 cancels. Re-arming replaces the previous deadline. */
	void (*timer_arm)(void *host, unsigned id, uint64_t when_ns);
};

/* Per-instance configuration, from the broker's DevInit. */
struct dev_config {
	bool readonly;            /* block: refuse writes */
	const char *serial;       /* block: the device id string ("" none) */
};

#define DEV_MAX_REGIONS 4u
#define DEV_MAX_IRQS 4u
#define DEV_MAX_DOORBELLS 8u
#define DEV_MAX_POSTED 4u
#define DEV_MAX_TIMERS 4u

struct dev_desc {
	/* Its manifest entry: name, default regions and IRQ lines (GSIs),
	 * what it may ask of the VM (device-procs/manifest.h). */
	const struct dev_manifest *mf;
	const uint8_t *irq_flags;         /* DEV_IRQ_* per line, NULL: all edge */
	const struct dev_doorbell *doorbells;
	unsigned ndoorbells;
	const struct dev_posted *posted;  /* writes that may be posted */
	unsigned nposted;
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

	/* The VM's power button was pressed (DEV_MF_BUTTON devices; from
	 * `bulkhead stop`). May be NULL. */
	void (*power_button)(struct dev *d);
	/* Doorbell `idx` was rung (see doorbells). May be NULL. */
	void (*notify)(struct dev *d, unsigned idx);
	/* Timer `id` (< DEV_MAX_TIMERS) expired. May be NULL. */
	void (*timer)(struct dev *d, unsigned id);
	/* The guest acknowledged level line `line`: re-assert if still due
	 * (the runtime does this itself from the last irq_set level). */

	/* VM lifecycle notifications (PDM style). Each may be NULL. */
	void (*power_on)(struct dev *d);
	void (*suspend)(struct dev *d);
	void (*resume)(struct dev *d);
	void (*power_off)(struct dev *d);

	/*
	 * Saved state: save packs the core's protobuf state message (from
	 * proto/) into a malloc'ed buffer; load checks and applies one (the
	 * bytes are hostile: validate every field, and leave the device
	 * unchanged on error). The version stored beside the bytes is the
	 * manifest's state_version; load is given the one the stream has.
	 */
	int (*save)(struct dev *d, uint8_t **buf, size_t *len);
	int (*load)(struct dev *d, const uint8_t *buf, size_t len,
		    uint32_t version);
};

struct dev {
	const struct dev_desc *desc;
	unsigned instance;
	void *state;                  /* desc->state_size bytes */
	const struct dev_host_ops *ops;
	void *host;                   /* passed back to ops */
	/* This instance's regions and IRQs: desc's defaults unless the
	 * configuration moved them (virtio-mmio instances). */
	struct dev_region regions[DEV_MAX_REGIONS];
	unsigned nregions;
	unsigned irqs[DEV_MAX_IRQS];
	unsigned nirqs;
	struct dev_config cfg;
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

static inline void dev_request_reset(struct dev *d)
{
	if (d->ops->request_reset)
		d->ops->request_reset(d->host);
}

static inline void dev_request_poweroff(struct dev *d)
{
	if (d->ops->request_poweroff)
		d->ops->request_poweroff(d->host);
}

/* NULL unless all of [gpa, gpa + len) is guest RAM. */
static inline void *dev_mem_map(struct dev *d, uint64_t gpa, uint64_t len)
{
	return d->ops->mem_map ? d->ops->mem_map(d->host, gpa, len) : NULL;
}

static inline uint64_t dev_clock_ns(struct dev *d)
{
	return d->ops->clock_ns ? d->ops->clock_ns(d->host) : 0;
}

static inline void dev_timer_arm(struct dev *d, unsigned id, uint64_t when_ns)
{
	if (d->ops->timer_arm)
		d->ops->timer_arm(d->host, id, when_ns);
}

/*
 * Allocate and construct a device from its descriptor (state zeroed,
 * regions and IRQs from desc's defaults, cfg zeroed, then construct, then
 * reset). Returns 0 or -errno; *out is freed with dev_free. To place an
 * instance elsewhere or configure it, use dev_new_at.
 */
int dev_new(const struct dev_desc *desc, unsigned instance,
	    const struct dev_host_ops *ops, void *host, struct dev **out);
/* The same with this instance's regions (NULL: defaults; otherwise exactly
 * desc->mf->nregions of them), IRQs (NULL: defaults; else desc->mf->nirqs) and
 * configuration (NULL: zeroed). */
int dev_new_at(const struct dev_desc *desc, unsigned instance,
	       const struct dev_region *regions, const unsigned *irqs,
	       const struct dev_config *cfg, const struct dev_host_ops *ops,
	       void *host, struct dev **out);
void dev_free(struct dev *d);

/*
 * The device-process main: bootstrap from the broker on fd 3, register with
 * the worker, serve the access ring and the channel until told to stop or
 * the worker goes away. Returns the process exit status.
 */
int dev_main(int argc, char **argv, const struct dev_desc *desc);

/* Every device core's descriptor: dev-cores.h is generated from the
 * devices' device.mk files (device-procs/module.mk). */
#define DEV_CORE(kind, desc) extern const struct dev_desc desc;
#include "dev-cores.h"
#undef DEV_CORE

#endif
