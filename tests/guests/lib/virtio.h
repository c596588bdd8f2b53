/*
 * Bulkhead test guests: a minimal virtio driver library (lib/virtio.c),
 * written from the OASIS virtio 1.x specification: the virtio-mmio
 * transport with the modern (version 2) register layout, and split
 * virtqueues driven synchronously (one request in flight at a time).
 *
 * Devices are found only through "virtio_mmio.device=<size>@<base>:<irq>"
 * tokens on the command line (the Linux syntax; an optional ":<id>" after
 * the IRQ is accepted and ignored). Numbers are decimal or 0x hex, with an
 * optional K, M or G suffix (powers of 1024). Each listed transport is
 * probed: MagicValue "virt", Version 2, DeviceID (0 = no device behind it,
 * skipped).
 *
 * Completions are polled from the used ring by default; virtio_use_irq
 * switches a device to interrupts (its IRQ routed level-triggered, active
 * high, through the I/O APIC; the handler acknowledges InterruptStatus).
 * Buffers must lie in the identity-mapped first 4 GiB (guest physical ==
 * virtual). Linked only into the guests that need it (GUEST_VIRTIO_OBJS).
 */
#ifndef BULKHEAD_GUEST_VIRTIO_H
#define BULKHEAD_GUEST_VIRTIO_H

#include "guest.h"

#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_ENTROPY 4

#define VIRTIO_F_VERSION_1 32

/* Entries per virtqueue this library uses (at most; less if the device's
 * QueueNumMax is smaller), so also the longest descriptor chain. */
#define VIRTQ_MAX 16

/* Give up on a request after this many TSC ticks (2.5 s at 4 GHz). */
#define VIRTIO_TIMEOUT_TSC 10000000000ull

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

#define VIRTQ_DESC_F_NEXT  1
#define VIRTQ_DESC_F_WRITE 2

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[VIRTQ_MAX];
	uint16_t used_event;
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[VIRTQ_MAX];
	uint16_t avail_event;
};

/* One split virtqueue: the three parts (alignments 16, 2 and 4) and the
 * driver's indexes. Give it static storage. */
struct virtq {
	struct virtq_desc desc[VIRTQ_MAX] __attribute__((aligned(16)));
	struct virtq_avail avail __attribute__((aligned(16)));
	struct virtq_used used __attribute__((aligned(16)));
	unsigned index;     /* queue number on the device */
	unsigned num;       /* QueueNum written */
	uint16_t avail_idx; /* next avail->idx */
	uint16_t used_seen; /* used->idx consumed so far */
};

struct virtio_dev {
	uint64_t base;      /* register block, guest physical */
	uint64_t size;
	unsigned irq;       /* ISA IRQ / I/O APIC pin */
	uint32_t device_id;
	uint64_t offered;   /* DeviceFeatures */
	uint64_t features;  /* accepted (DriverFeatures) */
	unsigned vector;    /* 0: polling */
	volatile uint64_t interrupts; /* taken (interrupt mode) */
	volatile uint32_t isr_seen;   /* InterruptStatus bits acknowledged */
};

/* A buffer of a request. */
struct virtq_buf {
	void *addr;
	uint32_t len;
	int writable;       /* device-writable (VIRTQ_DESC_F_WRITE) */
};

/*
 * Find the n-th (from 0) virtio-mmio transport on the command line whose
 * device has DeviceID device_id. Prints "<who>: virtio-mmio at <base> size
 * <size> irq <irq>: magic ... device <id>" for every transport probed, as
 * `who` (e.g. "blk"). Returns 1 found (dev filled), 0 none, -1 if a
 * virtio_mmio.device token is malformed (after printing "<who>: bad
 * token ..."). virtio_find: the first.
 */
int virtio_find_nth(const char *cmdline, uint32_t device_id, unsigned n,
		    struct virtio_dev *dev, const char *who);
int virtio_find(const char *cmdline, uint32_t device_id, struct virtio_dev *dev,
		const char *who);

/*
 * Reset the device and negotiate: ACKNOWLEDGE, DRIVER, read the offered
 * features, accept VERSION_1 plus those of `want` that are offered,
 * FEATURES_OK and check it stuck. Returns 0, or -1 after printing
 * "<who>: FAIL ..." (VERSION_1 not offered, FEATURES_OK refused, not a
 * version 2 transport). The device is left with FAILED set on failure.
 */
int virtio_negotiate(struct virtio_dev *dev, uint64_t want, const char *who);

/* Set up queue `index` (QueueNum = the largest power of two <= both
 * QueueNumMax and VIRTQ_MAX). Returns 0 or -1 after "<who>: FAIL ...". */
int virtq_setup(struct virtio_dev *dev, struct virtq *q, unsigned index,
		const char *who);

/* Set DRIVER_OK. Returns 0, or -1 if the device set NEEDS_RESET/FAILED. */
int virtio_driver_ok(struct virtio_dev *dev, const char *who);

/* Route the device's IRQ (level-triggered, active high) through the I/O
 * APIC to `vector` and wait for completions with sti; hlt from then on.
 * Needs lib/irq.c; the caller has masked the PICs and enabled the local
 * APIC (this starts the local APIC tick for the timeouts). 0 or -1. */
int virtio_use_irq(struct virtio_dev *dev, unsigned vector, const char *who);

/* In interrupt mode, at the end: waits (up to VIRTIO_TIMEOUT_TSC) for an
 * interrupt to have been taken, then prints "<who>: <n> interrupts"; with
 * none, "<who>: FAIL no interrupt taken" and exit GUEST_EXIT_FAIL. */
void virtio_expect_irqs(struct virtio_dev *dev, const char *who);

/*
 * Submit one request (n buffers, device-readable ones first, as one chain
 * starting at descriptor 0), notify the device and wait for its
 * completion. Returns 0 with the used length in *used_len, or -1 after
 * printing "<who>: FAIL ..." on a timeout or a used element that is not
 * our chain. Acknowledges InterruptStatus.
 */
int virtq_request(struct virtio_dev *dev, struct virtq *q, const struct virtq_buf *bufs,
		  unsigned n, uint32_t *used_len, const char *who);

/* Device-specific configuration space (offset from 0x100). The 64-bit
 * read is two 32-bit reads, retried until ConfigGeneration is stable. */
uint8_t virtio_config_read8(struct virtio_dev *dev, unsigned off);
uint32_t virtio_config_read32(struct virtio_dev *dev, unsigned off);
uint64_t virtio_config_read64(struct virtio_dev *dev, unsigned off);

/* Raw transport register access (offsets as in the specification). */
uint32_t virtio_read(struct virtio_dev *dev, unsigned reg);
void virtio_write(struct virtio_dev *dev, unsigned reg, uint32_t v);

#define VIRTIO_MMIO_MAGIC_VALUE      0x000
#define VIRTIO_MMIO_VERSION          0x004
#define VIRTIO_MMIO_DEVICE_ID        0x008
#define VIRTIO_MMIO_VENDOR_ID        0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES  0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES  0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL        0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX    0x034
#define VIRTIO_MMIO_QUEUE_NUM        0x038
#define VIRTIO_MMIO_QUEUE_READY      0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY     0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK    0x064
#define VIRTIO_MMIO_STATUS           0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW   0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH  0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc
#define VIRTIO_MMIO_CONFIG           0x100

#define VIRTIO_MMIO_MAGIC 0x74726976u /* "virt" */

#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER      0x02
#define VIRTIO_STATUS_DRIVER_OK   0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED      0x80

#endif
