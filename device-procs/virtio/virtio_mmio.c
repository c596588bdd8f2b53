/* SPDX-License-Identifier: MIT */
/*
 * virtio_mmio: the virtio-mmio transport (version 2 register layout) and
 * split-virtqueue processing for the virtio device cores, written from the
 * OASIS virtio 1.1/1.2 specification.
 *
 * Registers (4.2.2): 32-bit, aligned accesses only; anything else reads 0
 * and is ignored on write, as are reads of write-only registers and writes
 * of read-only ones. The device config space at 0x100 takes 1, 2, 4 and 8
 * byte accesses at any offset; bytes past the device's config read 0 and
 * config writes are ignored (no device here has writable config).
 *
 * Status (2.1): writing 0 resets the device. Otherwise the driver may only
 * add bits. FEATURES_OK is kept only if the driver accepted nothing we did
 * not offer and did accept VERSION_1; DRIVER_OK only after FEATURES_OK.
 * NEEDS_RESET is the device's: it is set when the driver breaks a queue
 * (see below), with a configuration-change interrupt once DRIVER_OK is set.
 *
 * Queues (2.7): QueueReady=1 checks the queue (size a power of two, at most
 * QueueNumMax; rings aligned as 2.7 requires and wholly in guest RAM) and
 * starts it at index 0; a bad queue stays not ready and sets NEEDS_RESET.
 * Queue registers of a ready queue are frozen. Buffers are taken only
 * after DRIVER_OK, on a doorbell (QueueNotify, through an ioeventfd or
 * io()), which serves every ready queue, and once when DRIVER_OK is set.
 *
 * What a hostile driver gets:
 * - rings not in RAM, or an available idx more than the queue size ahead
 *   of the device: NEEDS_RESET, nothing is taken (the driver may repair
 *   the ring and ring the doorbell again);
 * - a head index outside the queue: NEEDS_RESET, the entry is skipped;
 * - a bad chain (an index outside its table, longer than its table, so
 *   any loop; a readable buffer after a writable one; a buffer not wholly
 *   in RAM; more than VIRTIO_CHAIN_MAX buffers or VIRTIO_CHAIN_MAX_BYTES
 *   bytes; an indirect descriptor not negotiated, with NEXT, nested, empty,
 *   not a multiple of 16 bytes or larger than VIRTIO_CHAIN_MAX entries, or
 *   not in RAM): the chain goes back on the used ring with length 0 and
 *   the device never sees it;
 * and the queue goes on with the next entry. Each pass over a queue takes
 * at most the entries that were available when it started (at most the
 * queue size), and each chain walk at most its table sizes, so nothing
 * loops. Each descriptor is read once, into a local copy.
 *
 * Memory ordering with the driver on another CPU: the available idx is
 * read with acquire before the entries it covers; used entries are written
 * before the used idx is published with release; a full fence separates
 * that from reading the available ring's flags (VIRTQ_AVAIL_F_NO_INTERRUPT
 * is honoured; VIRTIO_F_EVENT_IDX is not offered).
 *
 * Interrupts: InterruptStatus bit 0 (used buffers) and bit 1 (config
 * change); InterruptACK clears the bits written. IRQ line 0 is level
 * triggered and follows InterruptStatus != 0; it is driven only when that
 * changes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "device-procs/virtio/virtio_mmio.h"
#include "virtio_state.pb-c.h"

/* The broker's virtio-mmio slot (device-procs/manifest.h) is one register
 * block. */
_Static_assert(VIRTIO_MMIO_REGION_SIZE == DEV_VIRTIO_SLOT,
	       "a virtio-mmio slot is not one register block");

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "virtio rings are little-endian and read in place");

/* Status bits the driver sets; NEEDS_RESET is the device's own. */
#define VIRTIO_STATUS_DRIVER_BITS \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | \
	 VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK | \
	 VIRTIO_STATUS_FAILED)
#define VIRTIO_STATUS_ALL \
	(VIRTIO_STATUS_DRIVER_BITS | VIRTIO_STATUS_NEEDS_RESET)
#define VIRTIO_MMIO_INT_ALL (VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG)

/* The features every device here offers. */
#define VIRTIO_TRANSPORT_FEATURES \
	(VIRTIO_FEATURE(VIRTIO_F_VERSION_1) | \
	 VIRTIO_FEATURE(VIRTIO_F_INDIRECT_DESC))

/* One descriptor (2.7.5), as copied out of guest memory. */
struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* Ring layout (2.7): flags, idx, ring[num], then one event word. */
#define VIRTQ_RING_HDR 4u

/* The alignment each part of a queue needs (2.7, the table of queue parts). */
#define VIRTQ_DESC_ALIGN 16
#define VIRTQ_AVAIL_ALIGN 2
#define VIRTQ_USED_ALIGN 4

/* Descriptor fields (2.7.5): le64 addr, le32 len, le16 flags, le16 next. */
#define VIRTQ_DESC_ADDR_OFF 0
#define VIRTQ_DESC_LEN_OFF 8
#define VIRTQ_DESC_FLAGS_OFF 12
#define VIRTQ_DESC_NEXT_OFF 14

/* SHMLen and SHMBase of a region that does not exist read -1 (4.2.2). */
#define VIRTIO_MMIO_SHM_NONE 0xffffffffu

/* A 64-bit value's halves, which 32-bit registers set one at a time. */
#define VIRTIO_LOW_HALF 0x00000000ffffffffull
#define VIRTIO_HIGH_HALF 0xffffffff00000000ull

static uint64_t virtq_desc_bytes(uint32_t num)
{
	return (uint64_t)VIRTQ_DESC_SIZE * num;
}

static uint64_t virtq_avail_bytes(uint32_t num)
{
	return VIRTQ_RING_HDR + 2ull * num + 2;
}

static uint64_t virtq_used_bytes(uint32_t num)
{
	return VIRTQ_RING_HDR + (uint64_t)VIRTQ_USED_ELEM_SIZE * num + 2;
}

static uint32_t virtio_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void virtio_put_le32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static struct virtio_mmio *virtio_mmio_of(const struct dev *d)
{
	return d->state;
}

/* ---- features and interrupts -------------------------------------------- */

uint64_t virtio_mmio_offered(struct dev *d)
{
	const struct virtio_mmio *vm = virtio_mmio_of(d);
	uint64_t dev_features = vm->vdev->features ? vm->vdev->features(d) : 0;

	return dev_features | VIRTIO_TRANSPORT_FEATURES;
}

bool virtio_mmio_has_feature(const struct dev *d, unsigned bit)
{
	const struct virtio_mmio *vm = virtio_mmio_of(d);

	return bit < 64 && (vm->status & VIRTIO_STATUS_FEATURES_OK) &&
	       (vm->driver_features & VIRTIO_FEATURE(bit));
}

/* Whether a driver that accepted these features may have FEATURES_OK. */
static bool virtio_mmio_features_ok(struct dev *d, uint64_t accepted,
				    bool accepted_bad)
{
	return !accepted_bad && !(accepted & ~virtio_mmio_offered(d)) &&
	       (accepted & VIRTIO_FEATURE(VIRTIO_F_VERSION_1));
}

static void virtio_mmio_update_irq(struct dev *d)
{
	struct virtio_mmio *vm = virtio_mmio_of(d);
	bool level = vm->interrupt_status != 0;

	if (level != vm->irq_level) {
		vm->irq_level = level;
		dev_irq_set(d, 0, level);
	}
}

/* The driver broke the device's rules: tell it to reset us. */
static void virtio_mmio_needs_reset(struct dev *d)
{
	struct virtio_mmio *vm = virtio_mmio_of(d);

	if (vm->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	vm->status |= VIRTIO_STATUS_NEEDS_RESET;
	if (vm->status & VIRTIO_STATUS_DRIVER_OK)
		vm->interrupt_status |= VIRTIO_MMIO_INT_CONFIG;
}

/* ---- queue checks ------------------------------------------------------- */

static bool virtio_aligned(const void *p, uintptr_t align)
{
	return ((uintptr_t)p & (align - 1)) == 0;
}

/*
 * The three parts of a queue, mapped, or false when the queue's size or
 * placement is wrong: each is mapped again on every use, so a queue that
 * was good when it was made ready is never trusted blindly.
 */
static bool virtio_queue_map(struct dev *d, const struct virtio_queue *q,
			     uint8_t **desc, uint8_t **avail, uint8_t **used)
{
	const struct virtio_mmio *vm = virtio_mmio_of(d);
	uint32_t num = q->num;

	if (num == 0 || num > vm->vdev->queue_num_max || (num & (num - 1)))
		return false;
	if (q->desc_addr % VIRTQ_DESC_ALIGN ||
	    q->driver_addr % VIRTQ_AVAIL_ALIGN ||
	    q->device_addr % VIRTQ_USED_ALIGN)
		return false;
	*desc = dev_mem_map(d, q->desc_addr, virtq_desc_bytes(num));
	*avail = dev_mem_map(d, q->driver_addr, virtq_avail_bytes(num));
	*used = dev_mem_map(d, q->device_addr, virtq_used_bytes(num));
	if (!*desc || !*avail || !*used)
		return false;
	/* The host mapping must keep the alignment the atomics rely on. */
	return virtio_aligned(*avail, VIRTQ_AVAIL_ALIGN) &&
	       virtio_aligned(*used, VIRTQ_USED_ALIGN);
}

static bool virtio_queue_valid(struct dev *d, const struct virtio_queue *q)
{
	uint8_t *desc, *avail, *used;

	return virtio_queue_map(d, q, &desc, &avail, &used);
}

/* ---- descriptor chains -------------------------------------------------- */

/* Copy descriptor idx of a table out of guest memory, once. */
static void virtio_desc_read(const uint8_t *table, uint32_t idx,
			     struct virtq_desc *desc)
{
	uint8_t raw[VIRTQ_DESC_SIZE];

	memcpy(raw, table + (size_t)idx * VIRTQ_DESC_SIZE, sizeof(raw));
	/* From here on only the copy is used, never guest memory again. */
	__asm__ __volatile__("" ::: "memory");
	memcpy(&desc->addr, raw + VIRTQ_DESC_ADDR_OFF, sizeof(desc->addr));
	memcpy(&desc->len, raw + VIRTQ_DESC_LEN_OFF, sizeof(desc->len));
	memcpy(&desc->flags, raw + VIRTQ_DESC_FLAGS_OFF, sizeof(desc->flags));
	memcpy(&desc->next, raw + VIRTQ_DESC_NEXT_OFF, sizeof(desc->next));
}

/* Add one (non-indirect) descriptor's buffer to the chain. */
static int virtio_chain_add(struct dev *d, struct virtio_chain *c,
			    const struct virtq_desc *desc, bool *seen_write)
{
	bool writable = desc->flags & VIRTQ_DESC_F_WRITE;
	struct virtio_buf *buf;
	uint8_t *host;

	/* Device-readable buffers come first (2.7.4.2). */
	if (writable)
		*seen_write = true;
	else if (*seen_write)
		return -EINVAL;
	if (desc->len == 0)
		return 0;	/* names no memory: nothing to map or use */
	if (c->nbufs == VIRTIO_CHAIN_MAX)
		return -E2BIG;
	if (desc->len > VIRTIO_CHAIN_MAX_BYTES - c->read_len - c->write_len)
		return -E2BIG;
	host = dev_mem_map(d, desc->addr, desc->len);
	if (!host)
		return -EFAULT;

	buf = &c->bufs[c->nbufs++];
	buf->host = host;
	buf->gpa = desc->addr;
	buf->len = desc->len;
	buf->writable = writable;
	if (writable) {
		c->write_len += desc->len;
	} else {
		c->read_len += desc->len;
		c->nread++;
	}
	return 0;
}

/*
 * Walk the chain starting at head (< num) of the descriptor table into c.
 * Zero or more direct descriptors may end in one indirect descriptor
 * (2.7.5.3); every table is walked at most its own size of steps, which
 * bounds loops.
 */
static int virtio_chain_walk(struct dev *d, const uint8_t *table,
			     uint32_t num, uint16_t head,
			     struct virtio_chain *c)
{
	uint32_t tsize = num, idx = head, steps = 0;
	bool indirect = false, seen_write = false;
	struct virtq_desc desc;
	int ret;

	c->head = head;
	c->nbufs = 0;
	c->nread = 0;
	c->read_len = 0;
	c->write_len = 0;
	for (;;) {
		if (idx >= tsize)
			return -EINVAL;
		if (++steps > tsize)
			return -ELOOP;
		virtio_desc_read(table, idx, &desc);

		if (desc.flags & VIRTQ_DESC_F_INDIRECT) {
			if (indirect || (desc.flags & VIRTQ_DESC_F_NEXT) ||
			    !virtio_mmio_has_feature(d, VIRTIO_F_INDIRECT_DESC))
				return -EINVAL;
			if (desc.len == 0 || desc.len % VIRTQ_DESC_SIZE ||
			    desc.len / VIRTQ_DESC_SIZE > VIRTIO_CHAIN_MAX)
				return -EINVAL;
			table = dev_mem_map(d, desc.addr, desc.len);
			if (!table)
				return -EFAULT;
			tsize = desc.len / VIRTQ_DESC_SIZE;
			idx = 0;
			steps = 0;
			indirect = true;
			continue;
		}

		ret = virtio_chain_add(d, c, &desc, &seen_write);
		if (ret)
			return ret;
		if (!(desc.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		idx = desc.next;
	}
}

/* ---- queue processing --------------------------------------------------- */

static uint16_t virtio_load16(const uint8_t *p, int order)
{
	return __atomic_load_n((const uint16_t *)p, order);
}

/* Take what the driver made available on queue qi and serve it. */
static void virtio_queue_process(struct dev *d, unsigned qi)
{
	struct virtio_mmio *vm = virtio_mmio_of(d);
	struct virtio_queue *q = &vm->queues[qi];
	uint8_t *desc, *avail, *used;
	uint16_t avail_idx, pending, added = 0;
	uint32_t num;

	if (!q->ready)
		return;
	if (!virtio_queue_map(d, q, &desc, &avail, &used)) {
		virtio_mmio_needs_reset(d);
		return;
	}
	num = q->num;

	/* The entries up to idx are complete once idx is seen (acquire). */
	avail_idx = virtio_load16(avail + 2, __ATOMIC_ACQUIRE);
	pending = (uint16_t)(avail_idx - q->last_avail);
	if (pending > num) {
		virtio_mmio_needs_reset(d);
		return;
	}

	for (uint16_t i = 0; i < pending; i++) {
		const uint8_t *slot = avail + VIRTQ_RING_HDR +
				      2u * (q->last_avail % num);
		uint16_t head = virtio_load16(slot, __ATOMIC_RELAXED);
		uint32_t len = 0;
		uint8_t *elem;

		q->last_avail++;
		if (head >= num) {
			virtio_mmio_needs_reset(d);
			continue;
		}
		if (virtio_chain_walk(d, desc, num, head, &vm->chain) == 0) {
			len = vm->vdev->handle(d, qi, &vm->chain);
			if (len > vm->chain.write_len)
				len = (uint32_t)vm->chain.write_len;
		}
		elem = used + VIRTQ_RING_HDR +
		       VIRTQ_USED_ELEM_SIZE * (q->used_idx % num);
		__atomic_store_n((uint32_t *)elem, (uint32_t)head,
				 __ATOMIC_RELAXED);
		__atomic_store_n((uint32_t *)(elem + 4), len,
				 __ATOMIC_RELAXED);
		q->used_idx++;
		added++;
	}
	if (!added)
		return;

	/* Entries before idx (release); idx before reading flags (full). */
	__atomic_store_n((uint16_t *)(used + 2), q->used_idx,
			 __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!(virtio_load16(avail, __ATOMIC_RELAXED) &
	      VIRTQ_AVAIL_F_NO_INTERRUPT))
		vm->interrupt_status |= VIRTIO_MMIO_INT_VRING;
}

static void virtio_mmio_process(struct dev *d)
{
	struct virtio_mmio *vm = virtio_mmio_of(d);

	if (!(vm->status & VIRTIO_STATUS_DRIVER_OK))
		return;
	for (unsigned i = 0; i < vm->vdev->nqueues; i++)
		virtio_queue_process(d, i);
}

/* ---- registers ---------------------------------------------------------- */

/* The selected queue, or NULL when QueueSel names none. */
static struct virtio_queue *virtio_mmio_sel_queue(struct virtio_mmio *vm)
{
	if (vm->queue_sel >= vm->vdev->nqueues)
		return NULL;
	return &vm->queues[vm->queue_sel];
}

static uint32_t virtio_mmio_read_reg(struct dev *d, unsigned off)
{
	struct virtio_mmio *vm = virtio_mmio_of(d);
	struct virtio_queue *q = virtio_mmio_sel_queue(vm);

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return VIRTIO_MMIO_VERSION_MODERN;
	case VIRTIO_MMIO_DEVICE_ID:
		return vm->vdev->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		if (vm->device_features_sel > 1)
			return 0;
		return (uint32_t)(virtio_mmio_offered(d) >>
				  (32 * vm->device_features_sel));
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return q ? vm->vdev->queue_num_max : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return q ? q->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return vm->interrupt_status;
	case VIRTIO_MMIO_STATUS:
		return vm->status;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
	case VIRTIO_MMIO_SHM_BASE_LOW:
	case VIRTIO_MMIO_SHM_BASE_HIGH:
		return VIRTIO_MMIO_SHM_NONE;	/* no shared memory regions */
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return vm->config_generation;
	default:
		return 0;		/* write-only or reserved */
	}
}

static void virtio_mmio_write_status(struct dev *d, uint32_t val)
{
	struct virtio_mmio *vm = virtio_mmio_of(d);
	uint32_t old = vm->status & VIRTIO_STATUS_DRIVER_BITS;
	uint32_t new = val & VIRTIO_STATUS_DRIVER_BITS;
	uint32_t added = new & ~old;

	if (val == 0) {
		virtio_mmio_reset(d);
		return;
	}
	if (old & ~new)
		return;		/* only a reset clears status bits */
	if ((added & VIRTIO_STATUS_FEATURES_OK) &&
	    !virtio_mmio_features_ok(d, vm->driver_features,
				     vm->driver_features_bad))
		new &= ~VIRTIO_STATUS_FEATURES_OK;
	if (!(new & VIRTIO_STATUS_FEATURES_OK))
		new &= ~VIRTIO_STATUS_DRIVER_OK;
	vm->status = (vm->status & VIRTIO_STATUS_NEEDS_RESET) | new;
	/* Buffers made available before DRIVER_OK are served now. */
	if (new & added & VIRTIO_STATUS_DRIVER_OK)
		virtio_mmio_process(d);
}

static void virtio_mmio_write_driver_features(struct virtio_mmio *vm,
					      uint32_t val)
{
	/* Accepted features are fixed once FEATURES_OK is set. */
	if (vm->status & VIRTIO_STATUS_FEATURES_OK)
		return;
	switch (vm->driver_features_sel) {
	case 0:
		vm->driver_features = (vm->driver_features &
				       VIRTIO_HIGH_HALF) | val;
		break;
	case 1:
		vm->driver_features = (vm->driver_features & VIRTIO_LOW_HALF) |
				      (uint64_t)val << 32;
		break;
	default:
		if (val)	/* features we never offer */
			vm->driver_features_bad = true;
		break;
	}
}

static void virtio_mmio_write_queue_ready(struct dev *d,
					  struct virtio_queue *q, uint32_t val)
{
	if (!(val & 1)) {
		q->ready = false;
		return;
	}
	if (q->ready)
		return;
	if (!virtio_queue_valid(d, q)) {
		virtio_mmio_needs_reset(d);
		return;
	}
	q->ready = true;
	q->last_avail = 0;
	q->used_idx = 0;
}

/* Set the low or high half of a queue address. */
static void virtio_set_half(uint64_t *addr, uint32_t val, bool high)
{
	if (high)
		*addr = (*addr & VIRTIO_LOW_HALF) | (uint64_t)val << 32;
	else
		*addr = (*addr & VIRTIO_HIGH_HALF) | val;
}

static void virtio_mmio_write_reg(struct dev *d, unsigned off, uint32_t val)
{
	struct virtio_mmio *vm = virtio_mmio_of(d);
	struct virtio_queue *q = virtio_mmio_sel_queue(vm);
	/* The registers of a missing or running queue do not change. */
	struct virtio_queue *setup = q && !q->ready ? q : NULL;

	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		vm->device_features_sel = val;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		virtio_mmio_write_driver_features(vm, val);
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		vm->driver_features_sel = val;
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		vm->queue_sel = val;
		break;
	case VIRTIO_MMIO_QUEUE_NUM:
		if (setup)
			setup->num = val;
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		if (q)
			virtio_mmio_write_queue_ready(d, q, val);
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		/* Like the doorbell: the value is not needed. */
		virtio_mmio_process(d);
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		vm->interrupt_status &= ~val;
		break;
	case VIRTIO_MMIO_STATUS:
		virtio_mmio_write_status(d, val);
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		if (setup)
			virtio_set_half(&setup->desc_addr, val,
					off == VIRTIO_MMIO_QUEUE_DESC_HIGH);
		break;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
		if (setup)
			virtio_set_half(&setup->driver_addr, val,
					off == VIRTIO_MMIO_QUEUE_DRIVER_HIGH);
		break;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		if (setup)
			virtio_set_half(&setup->device_addr, val,
					off == VIRTIO_MMIO_QUEUE_DEVICE_HIGH);
		break;
	default:
		break;		/* read-only or reserved */
	}
}

static void virtio_mmio_config_read(struct dev *d, uint64_t off,
				    uint8_t *data, unsigned len)
{
	const struct virtio_device *vdev = virtio_mmio_of(d)->vdev;
	uint8_t config[VIRTIO_MMIO_CONFIG_MAX];

	memset(config, 0, sizeof(config));
	if (vdev->config && vdev->config_len)
		vdev->config(d, config);
	for (unsigned i = 0; i < len; i++) {
		uint64_t pos = off + i;

		data[i] = pos < vdev->config_len ? config[pos] : 0;
	}
}

void virtio_mmio_io(struct dev *d, unsigned region, uint64_t off, void *data,
		    unsigned len, bool write)
{
	struct virtio_mmio *vm = virtio_mmio_of(d);
	uint8_t *bytes = data;

	if (!write && len)
		memset(bytes, 0, len);
	if (!vm || !vm->vdev || region != 0 || len == 0 || len > 8 ||
	    off >= VIRTIO_MMIO_REGION_SIZE)
		return;
	if (off >= VIRTIO_MMIO_CONFIG) {
		if (!write)
			virtio_mmio_config_read(d, off - VIRTIO_MMIO_CONFIG,
						bytes, len);
		return;
	}
	if (len != 4 || off % 4)
		return;
	if (write)
		virtio_mmio_write_reg(d, (unsigned)off, virtio_le32(bytes));
	else
		virtio_put_le32(bytes, virtio_mmio_read_reg(d, (unsigned)off));
	virtio_mmio_update_irq(d);
}

void virtio_mmio_notify(struct dev *d, unsigned idx)
{
	struct virtio_mmio *vm = virtio_mmio_of(d);

	(void)idx;	/* one doorbell: QueueNotify */
	if (!vm || !vm->vdev)
		return;
	virtio_mmio_process(d);
	virtio_mmio_update_irq(d);
}

void virtio_mmio_reset(struct dev *d)
{
	struct virtio_mmio *vm = virtio_mmio_of(d);
	const struct virtio_device *vdev = vm->vdev;
	bool irq_level = vm->irq_level;

	memset(vm, 0, sizeof(*vm));
	vm->vdev = vdev;
	/* Keep what the line is driven to, so that it can be lowered. */
	vm->irq_level = irq_level;
	virtio_mmio_update_irq(d);
	if (vdev && vdev->reset)
		vdev->reset(d);
}

int virtio_mmio_construct(struct dev *d, const struct virtio_device *vdev)
{
	struct virtio_mmio *vm = virtio_mmio_of(d);
	uint32_t qmax = vdev ? vdev->queue_num_max : 0;

	if (!vm || d->desc->state_size < sizeof(*vm) || !vdev || !vdev->handle)
		return -EINVAL;
	if (vdev->nqueues == 0 || vdev->nqueues > VIRTIO_MAX_QUEUES ||
	    qmax == 0 || qmax > VIRTQ_NUM_LIMIT || (qmax & (qmax - 1)) ||
	    vdev->config_len > VIRTIO_MMIO_CONFIG_MAX ||
	    (vdev->config_len && !vdev->config))
		return -EINVAL;
	if (d->nregions < 1 || d->regions[0].len < VIRTIO_MMIO_REGION_SIZE ||
	    d->nirqs < 1)
		return -EINVAL;
	vm->vdev = vdev;
	return 0;
}

/* ---- saved state -------------------------------------------------------- */

int virtio_mmio_save(struct dev *d, uint8_t **buf, size_t *len)
{
	struct virtio_mmio *vm = virtio_mmio_of(d);
	VirtioQueueState qs[VIRTIO_MAX_QUEUES];
	VirtioQueueState *qp[VIRTIO_MAX_QUEUES];
	VirtioState st = VIRTIO_STATE__INIT;
	unsigned nq = vm->vdev->nqueues;
	size_t size;
	uint8_t *out;

	st.device_id = vm->vdev->device_id;
	st.status = vm->status;
	st.device_features_sel = vm->device_features_sel;
	st.driver_features_sel = vm->driver_features_sel;
	st.driver_features = vm->driver_features;
	st.driver_features_bad = vm->driver_features_bad;
	st.queue_sel = vm->queue_sel;
	st.interrupt_status = vm->interrupt_status;
	st.config_generation = vm->config_generation;
	for (unsigned i = 0; i < nq; i++) {
		const struct virtio_queue *q = &vm->queues[i];

		virtio_queue_state__init(&qs[i]);
		qs[i].num = q->num;
		qs[i].ready = q->ready;
		qs[i].desc_addr = q->desc_addr;
		qs[i].driver_addr = q->driver_addr;
		qs[i].device_addr = q->device_addr;
		qs[i].last_avail = q->last_avail;
		qs[i].used_idx = q->used_idx;
		qp[i] = &qs[i];
	}
	st.n_queues = nq;
	st.queues = qp;

	size = virtio_state__get_packed_size(&st);
	out = malloc(size ? size : 1);
	if (!out)
		return -ENOMEM;
	virtio_state__pack(&st, out);
	*buf = out;
	*len = size;
	return 0;
}

/* Check one saved queue; on success fill *q. */
static int virtio_queue_load(struct dev *d, const VirtioQueueState *qs,
			     struct virtio_queue *q)
{
	if (qs->last_avail > UINT16_MAX || qs->used_idx > UINT16_MAX)
		return -EINVAL;
	memset(q, 0, sizeof(*q));
	q->num = qs->num;
	q->ready = qs->ready;
	q->desc_addr = qs->desc_addr;
	q->driver_addr = qs->driver_addr;
	q->device_addr = qs->device_addr;
	q->last_avail = (uint16_t)qs->last_avail;
	q->used_idx = (uint16_t)qs->used_idx;
	/* A ready queue must be one QueueReady would have accepted. */
	if (q->ready && !virtio_queue_valid(d, q))
		return -EINVAL;
	return 0;
}

int virtio_mmio_load(struct dev *d, const uint8_t *buf, size_t len,
		     uint32_t version)
{
	struct virtio_mmio *vm = virtio_mmio_of(d);
	struct virtio_queue queues[VIRTIO_MAX_QUEUES];
	const struct virtio_device *vdev = vm->vdev;
	VirtioState *st;
	int ret = -EINVAL;

	if (version != d->desc->mf->state_version || (!buf && len))
		return -EINVAL;
	st = virtio_state__unpack(NULL, len, buf);
	if (!st)
		return -EBADMSG;

	if (st->device_id != vdev->device_id || st->n_queues != vdev->nqueues)
		goto out_free;
	if (st->status & ~VIRTIO_STATUS_ALL)
		goto out_free;
	if ((st->status & VIRTIO_STATUS_DRIVER_OK) &&
	    !(st->status & VIRTIO_STATUS_FEATURES_OK))
		goto out_free;
	if ((st->status & VIRTIO_STATUS_FEATURES_OK) &&
	    !virtio_mmio_features_ok(d, st->driver_features,
				     st->driver_features_bad))
		goto out_free;
	if (st->interrupt_status & ~VIRTIO_MMIO_INT_ALL)
		goto out_free;
	for (unsigned i = 0; i < vdev->nqueues; i++) {
		if (!st->queues[i] ||
		    virtio_queue_load(d, st->queues[i], &queues[i]))
			goto out_free;
	}

	/* All checked: apply. */
	vm->status = st->status;
	vm->device_features_sel = st->device_features_sel;
	vm->driver_features_sel = st->driver_features_sel;
	vm->driver_features = st->driver_features;
	vm->driver_features_bad = st->driver_features_bad;
	vm->queue_sel = st->queue_sel;
	vm->interrupt_status = st->interrupt_status;
	vm->config_generation = st->config_generation;
	memset(vm->queues, 0, sizeof(vm->queues));
	memcpy(vm->queues, queues, vdev->nqueues * sizeof(queues[0]));
	virtio_mmio_update_irq(d);
	ret = 0;

out_free:
	virtio_state__free_unpacked(st, NULL);
	return ret;
}

/* ---- chain access for device cores -------------------------------------- */

void virtio_cursor_init(struct virtio_cursor *cur,
			const struct virtio_chain *c, bool writable,
			uint64_t skip, uint64_t len)
{
	uint64_t side = writable ? c->write_len : c->read_len;

	cur->chain = c;
	cur->idx = writable ? c->nread : 0;
	cur->end = writable ? c->nbufs : c->nread;
	if (skip > side)
		skip = side;
	if (len > side - skip)
		len = side - skip;
	cur->left = len;
	while (cur->idx < cur->end && skip >= c->bufs[cur->idx].len) {
		skip -= c->bufs[cur->idx].len;
		cur->idx++;
	}
	cur->off = skip;
}

size_t virtio_cursor_next(struct virtio_cursor *cur, uint8_t **ptr)
{
	const struct virtio_buf *buf;
	uint64_t n;

	if (!cur->left || cur->idx >= cur->end)
		return 0;
	buf = &cur->chain->bufs[cur->idx];
	n = buf->len - cur->off;
	if (n > cur->left)
		n = cur->left;
	*ptr = buf->host + cur->off;
	cur->left -= n;
	cur->off += n;
	if (cur->off == buf->len) {
		cur->idx++;
		cur->off = 0;
	}
	return (size_t)n;
}

size_t virtio_chain_read(const struct virtio_chain *c, uint64_t off,
			 void *dst, size_t len)
{
	struct virtio_cursor cur;
	uint8_t *out = dst, *piece;
	size_t done = 0, n;

	virtio_cursor_init(&cur, c, false, off, len);
	while ((n = virtio_cursor_next(&cur, &piece)) != 0) {
		memcpy(out + done, piece, n);
		done += n;
	}
	return done;
}

size_t virtio_chain_write(const struct virtio_chain *c, uint64_t off,
			  const void *src, size_t len)
{
	struct virtio_cursor cur;
	const uint8_t *in = src;
	uint8_t *piece;
	size_t done = 0, n;

	virtio_cursor_init(&cur, c, true, off, len);
	while ((n = virtio_cursor_next(&cur, &piece)) != 0) {
		memcpy(piece, in + done, n);
		done += n;
	}
	return done;
}
