/* Bulkhead test guests: virtio-mmio and split virtqueues (see virtio.h). */
#include "virtio.h"
#include "irq.h"

#define VIRTIO_TOKEN "virtio_mmio.device="

static inline void barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

/* A full barrier between our ring stores and the notify. (x86 keeps
 * stores in order anyway; a locked add rather than mfence, which KVM's
 * instruction emulator does not implement.) */
static inline void full_barrier(void)
{
	__asm__ volatile("lock; addl $0, (%%rsp)" ::: "memory", "cc");
}

uint32_t virtio_read(struct virtio_dev *dev, unsigned reg)
{
	return mmio_read32(dev->base + reg);
}

void virtio_write(struct virtio_dev *dev, unsigned reg, uint32_t v)
{
	mmio_write32(dev->base + reg, v);
}

/* ---- command line ---------------------------------------------------- */

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Parse a number at *p (stops at end): decimal or 0x hex, then an optional
 * K/M/G suffix if `suffix`. Returns 0 and advances *p, or -1. */
static int parse_num(const char **p, const char *end, uint64_t *out, int suffix)
{
	const char *s = *p;
	unsigned base = 10;
	uint64_t v = 0;
	int digits = 0;

	if (end - s > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (; s < end; s++, digits++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			break;
		if (v > (UINT64_MAX - d) / base)
			return -1;
		v = v * base + d;
	}
	if (!digits)
		return -1;
	if (suffix && s < end) {
		unsigned shift = 0;
		switch (*s) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		}
		if (shift) {
			if (v > (UINT64_MAX >> shift))
				return -1;
			v <<= shift;
			s++;
		}
	}
	*out = v;
	*p = s;
	return 0;
}

/* Parse "<size>@<base>:<irq>[:<id>]" (the part after the '='). */
static int parse_token(const char *s, const char *end, struct virtio_dev *dev)
{
	uint64_t size, base, irq, id;

	if (parse_num(&s, end, &size, 1) < 0 || s == end || *s++ != '@')
		return -1;
	if (parse_num(&s, end, &base, 1) < 0 || s == end || *s++ != ':')
		return -1;
	if (parse_num(&s, end, &irq, 0) < 0)
		return -1;
	if (s < end && (*s++ != ':' || parse_num(&s, end, &id, 0) < 0))
		return -1;
	if (s != end)
		return -1;
	if (size < 0x100 || (base & 3) || base + size > 0x100000000ull || irq > 255)
		return -1;
	dev->base = base;
	dev->size = size;
	dev->irq = (unsigned)irq;
	return 0;
}

int virtio_find(const char *cmdline, uint32_t device_id, struct virtio_dev *dev,
		const char *who)
{
	return virtio_find_nth(cmdline, device_id, 0, dev, who);
}

int virtio_find_nth(const char *cmdline, uint32_t device_id, unsigned n,
		    struct virtio_dev *dev, const char *who)
{
	const size_t tlen = sizeof(VIRTIO_TOKEN) - 1;
	const char *p = cmdline;

	if (!p)
		return 0;
	while (*p) {
		while (is_space(*p))
			p++;
		const char *tok = p;
		while (*p && !is_space(*p))
			p++;
		if ((size_t)(p - tok) < tlen || strncmp(tok, VIRTIO_TOKEN, tlen) != 0)
			continue;

		struct virtio_dev d;
		memset(&d, 0, sizeof(d));
		if (parse_token(tok + tlen, p, &d) < 0) {
			kprintf("%s: bad token '", who);
			for (const char *c = tok; c < p; c++)
				uart_putc(*c);
			kprintf("'\n");
			return -1;
		}
		uint32_t magic = mmio_read32(d.base + VIRTIO_MMIO_MAGIC_VALUE);
		uint32_t version = mmio_read32(d.base + VIRTIO_MMIO_VERSION);
		d.device_id = mmio_read32(d.base + VIRTIO_MMIO_DEVICE_ID);
		kprintf("%s: virtio-mmio at 0x%lx size 0x%lx irq %u: magic 0x%x version %u "
			"device %u\n", who, (unsigned long)d.base, (unsigned long)d.size, d.irq,
			magic, version, d.device_id);
		if (magic != VIRTIO_MMIO_MAGIC || d.device_id != device_id)
			continue;
		if (n-- > 0)
			continue;
		*dev = d;
		return 1;
	}
	return 0;
}

/* ---- initialization ---------------------------------------------------- */

static void set_status(struct virtio_dev *dev, uint32_t bits)
{
	virtio_write(dev, VIRTIO_MMIO_STATUS, virtio_read(dev, VIRTIO_MMIO_STATUS) | bits);
}

int virtio_negotiate(struct virtio_dev *dev, uint64_t want, const char *who)
{
	uint32_t version = virtio_read(dev, VIRTIO_MMIO_VERSION);

	if (version != 2) {
		kprintf("%s: FAIL virtio-mmio version %u, not 2 (modern)\n", who, version);
		return -1;
	}
	/* Reset, and wait for it to complete (Status reads 0). */
	virtio_write(dev, VIRTIO_MMIO_STATUS, 0);
	uint64_t t0 = rdtsc();
	while (virtio_read(dev, VIRTIO_MMIO_STATUS) != 0) {
		if (rdtsc() - t0 > VIRTIO_TIMEOUT_TSC) {
			kprintf("%s: FAIL the device did not reset\n", who);
			return -1;
		}
		cpu_pause();
	}
	set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE);
	set_status(dev, VIRTIO_STATUS_DRIVER);

	virtio_write(dev, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint64_t lo = virtio_read(dev, VIRTIO_MMIO_DEVICE_FEATURES);
	virtio_write(dev, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	uint64_t hi = virtio_read(dev, VIRTIO_MMIO_DEVICE_FEATURES);
	dev->offered = hi << 32 | lo;
	if (!(dev->offered & (1ull << VIRTIO_F_VERSION_1))) {
		kprintf("%s: FAIL VIRTIO_F_VERSION_1 not offered (features 0x%lx)\n", who,
			(unsigned long)dev->offered);
		set_status(dev, VIRTIO_STATUS_FAILED);
		return -1;
	}
	dev->features = dev->offered & (want | (1ull << VIRTIO_F_VERSION_1));
	virtio_write(dev, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	virtio_write(dev, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)dev->features);
	virtio_write(dev, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	virtio_write(dev, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(dev->features >> 32));
	set_status(dev, VIRTIO_STATUS_FEATURES_OK);
	if (!(virtio_read(dev, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK)) {
		kprintf("%s: FAIL the device refused features 0x%lx\n", who,
			(unsigned long)dev->features);
		set_status(dev, VIRTIO_STATUS_FAILED);
		return -1;
	}
	return 0;
}

int virtq_setup(struct virtio_dev *dev, struct virtq *q, unsigned index, const char *who)
{
	virtio_write(dev, VIRTIO_MMIO_QUEUE_SEL, index);
	if (virtio_read(dev, VIRTIO_MMIO_QUEUE_READY) != 0) {
		kprintf("%s: FAIL queue %u is already ready after reset\n", who, index);
		return -1;
	}
	uint32_t max = virtio_read(dev, VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (max == 0) {
		kprintf("%s: FAIL queue %u is not available (QueueNumMax 0)\n", who, index);
		return -1;
	}
	unsigned num = VIRTQ_MAX;
	while (num > max)
		num >>= 1;

	memset(q, 0, sizeof(*q));
	q->index = index;
	q->num = num;
	virtio_write(dev, VIRTIO_MMIO_QUEUE_NUM, num);
	virtio_write(dev, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)(uintptr_t)q->desc);
	virtio_write(dev, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)((uint64_t)(uintptr_t)q->desc >> 32));
	virtio_write(dev, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)(uintptr_t)&q->avail);
	virtio_write(dev, VIRTIO_MMIO_QUEUE_DRIVER_HIGH,
		     (uint32_t)((uint64_t)(uintptr_t)&q->avail >> 32));
	virtio_write(dev, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)(uintptr_t)&q->used);
	virtio_write(dev, VIRTIO_MMIO_QUEUE_DEVICE_HIGH,
		     (uint32_t)((uint64_t)(uintptr_t)&q->used >> 32));
	virtio_write(dev, VIRTIO_MMIO_QUEUE_READY, 1);
	if (virtio_read(dev, VIRTIO_MMIO_QUEUE_READY) != 1) {
		kprintf("%s: FAIL queue %u did not become ready\n", who, index);
		return -1;
	}
	return 0;
}

int virtio_driver_ok(struct virtio_dev *dev, const char *who)
{
	set_status(dev, VIRTIO_STATUS_DRIVER_OK);
	uint32_t st = virtio_read(dev, VIRTIO_MMIO_STATUS);
	if (st & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED) ||
	    !(st & VIRTIO_STATUS_DRIVER_OK)) {
		kprintf("%s: FAIL device status 0x%x after DRIVER_OK\n", who, st);
		return -1;
	}
	return 0;
}

/* ---- interrupts -------------------------------------------------------- */

#define VIRTIO_IRQ_DEVS 4
static struct virtio_dev *irq_devs[VIRTIO_IRQ_DEVS];

static void virtio_ack(struct virtio_dev *dev)
{
	uint32_t isr = virtio_read(dev, VIRTIO_MMIO_INTERRUPT_STATUS);

	if (isr) {
		virtio_write(dev, VIRTIO_MMIO_INTERRUPT_ACK, isr);
		dev->isr_seen |= isr;
	}
}

static void virtio_irq(unsigned vector)
{
	for (unsigned i = 0; i < VIRTIO_IRQ_DEVS; i++) {
		struct virtio_dev *dev = irq_devs[i];
		if (dev && dev->vector == vector) {
			dev->interrupts++;
			/* Level-triggered: the line must be low before the EOI. */
			virtio_ack(dev);
		}
	}
}

int virtio_use_irq(struct virtio_dev *dev, unsigned vector, const char *who)
{
	unsigned i;

	for (i = 0; i < VIRTIO_IRQ_DEVS && irq_devs[i]; i++)
		;
	if (i == VIRTIO_IRQ_DEVS) {
		kprintf("%s: FAIL too many virtio devices with interrupts\n", who);
		return -1;
	}
	irq_devs[i] = dev;
	dev->vector = vector;
	guest_set_irq_handler(vector, virtio_irq);
	if (ioapic_route(dev->irq, vector, IOAPIC_LEVEL) < 0)
		return -1;
	if (!lapic_ticks)
		lapic_tick_start();
	return 0;
}

/* ---- requests ------------------------------------------------------------ */

int virtq_request(struct virtio_dev *dev, struct virtq *q, const struct virtq_buf *bufs,
		  unsigned n, uint32_t *used_len, const char *who)
{
	if (n == 0 || n > q->num) {
		kprintf("%s: FAIL a request of %u buffers (queue size %u)\n", who, n, q->num);
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		q->desc[i].addr = (uintptr_t)bufs[i].addr;
		q->desc[i].len = bufs[i].len;
		q->desc[i].flags = (uint16_t)((bufs[i].writable ? VIRTQ_DESC_F_WRITE : 0) |
					      (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
		q->desc[i].next = (uint16_t)(i + 1 < n ? i + 1 : 0);
	}
	q->avail.ring[q->avail_idx % q->num] = 0; /* the chain's head */
	barrier();
	q->avail_idx++;
	*(volatile uint16_t *)&q->avail.idx = q->avail_idx;
	full_barrier();
	virtio_write(dev, VIRTIO_MMIO_QUEUE_NOTIFY, q->index);

	uint64_t t0 = rdtsc();
	if (dev->vector)
		irq_disable();
	while (*(volatile uint16_t *)&q->used.idx == q->used_seen) {
		if (rdtsc() - t0 > VIRTIO_TIMEOUT_TSC) {
			kprintf("%s: FAIL request timed out (used idx %u, status 0x%x, isr 0x%x)\n",
				who, *(volatile uint16_t *)&q->used.idx,
				virtio_read(dev, VIRTIO_MMIO_STATUS),
				virtio_read(dev, VIRTIO_MMIO_INTERRUPT_STATUS));
			return -1;
		}
		if (dev->vector)
			irq_wait();
		else
			cpu_pause();
	}
	barrier();
	uint16_t now = *(volatile uint16_t *)&q->used.idx;
	struct virtq_used_elem e = q->used.ring[q->used_seen % q->num];
	q->used_seen++;
	if (!dev->vector)
		virtio_ack(dev);
	if (now != q->used_seen) {
		kprintf("%s: FAIL used idx jumped to %u (expected %u)\n", who, now, q->used_seen);
		return -1;
	}
	if (e.id != 0) {
		kprintf("%s: FAIL used element id %u, not our chain head 0\n", who, e.id);
		return -1;
	}
	*used_len = e.len;
	return 0;
}

/* ---- configuration space ------------------------------------------------- */

uint8_t virtio_config_read8(struct virtio_dev *dev, unsigned off)
{
	return *(volatile uint8_t *)(uintptr_t)(dev->base + VIRTIO_MMIO_CONFIG + off);
}

uint32_t virtio_config_read32(struct virtio_dev *dev, unsigned off)
{
	return mmio_read32(dev->base + VIRTIO_MMIO_CONFIG + off);
}

uint64_t virtio_config_read64(struct virtio_dev *dev, unsigned off)
{
	uint32_t gen, lo, hi;

	do {
		gen = virtio_read(dev, VIRTIO_MMIO_CONFIG_GENERATION);
		lo = virtio_config_read32(dev, off);
		hi = virtio_config_read32(dev, off + 4);
	} while (gen != virtio_read(dev, VIRTIO_MMIO_CONFIG_GENERATION));
	return (uint64_t)hi << 32 | lo;
}

void virtio_expect_irqs(struct virtio_dev *dev, const char *who)
{
	/* A completion may have been seen before its interrupt came. */
	uint64_t t0 = rdtsc();

	while (dev->interrupts == 0 && rdtsc() - t0 < VIRTIO_TIMEOUT_TSC)
		irq_wait();
	if (dev->interrupts == 0) {
		kprintf("%s: FAIL no interrupt taken\n", who);
		debug_exit(GUEST_EXIT_FAIL);
	}
	kprintf("%s: %lu interrupts\n", who, (unsigned long)dev->interrupts);
}
