/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the virtio-mmio transport and the virtio-blk and
 * virtio-rng cores, driven as a guest driver would drive them: status
 * handshake, feature negotiation, queue setup, requests built in fake guest
 * RAM, a doorbell, then the used ring and the data are checked.
 *
 * The fake host: guest RAM is an anonymous mapping with a PROT_NONE page on
 * each side, so a core that reaches past what mem_map granted crashes the
 * test; mem_map grants exactly [RAM_BASE, RAM_BASE + RAM_SIZE). The disk is
 * a buffer (calls outside it are counted as bugs), entropy a counter, and
 * IRQ line changes are recorded.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>

#include "device-procs/devhost/dev.h"
#include "tests/unit/fakehost.h"
#include "tests/unit/suites.h"
#include "virtio_state.pb-c.h"

/* virtio-mmio registers and bits (virtio 1.2, 4.2.2), from the spec. */
enum {
	R_MAGIC = 0x000, R_VERSION = 0x004, R_DEVICE_ID = 0x008,
	R_VENDOR_ID = 0x00c, R_DEV_FEATURES = 0x010, R_DEV_FEATURES_SEL = 0x014,
	R_DRV_FEATURES = 0x020, R_DRV_FEATURES_SEL = 0x024, R_QUEUE_SEL = 0x030,
	R_QUEUE_NUM_MAX = 0x034, R_QUEUE_NUM = 0x038, R_QUEUE_READY = 0x044,
	R_QUEUE_NOTIFY = 0x050, R_INT_STATUS = 0x060, R_INT_ACK = 0x064,
	R_STATUS = 0x070, R_DESC_LO = 0x080, R_DESC_HI = 0x084,
	R_DRIVER_LO = 0x090, R_DRIVER_HI = 0x094, R_DEVICE_LO = 0x0a0,
	R_DEVICE_HI = 0x0a4, R_SHM_LEN_LO = 0x0b0, R_CONFIG_GEN = 0x0fc,
	R_CONFIG = 0x100,
};
#define ST_ACK 0x01u
#define ST_DRIVER 0x02u
#define ST_DRIVER_OK 0x04u
#define ST_FEATURES_OK 0x08u
#define ST_NEEDS_RESET 0x40u
#define ST_FAILED 0x80u
#define ST_UP (ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK)
#define INT_VRING 0x1u
#define INT_CONFIG 0x2u

#define F(bit) (1ull << (bit))
#define F_BLK_SEG_MAX 2
#define F_BLK_RO 5
#define F_BLK_BLK_SIZE 6
#define F_BLK_FLUSH 9
#define F_INDIRECT 28
#define F_EVENT_IDX 29
#define F_VERSION_1 32

#define D_NEXT 0x1u
#define D_WRITE 0x2u
#define D_INDIRECT 0x4u
#define AVAIL_NO_INTERRUPT 0x1u

#define BLK_T_IN 0u
#define BLK_T_OUT 1u
#define BLK_T_FLUSH 4u
#define BLK_T_GET_ID 8u
#define BLK_T_DISCARD 11u
#define BLK_S_OK 0u
#define BLK_S_IOERR 1u
#define BLK_S_UNSUPP 2u

/* ---- guest memory layout ------------------------------------------------ */

#define PAGE 4096u
#define RAM_BASE 0x100000ull
#define RAM_SIZE (2u << 20)
#define RAM_END (RAM_BASE + RAM_SIZE)
#define Q_DESC (RAM_BASE + 0x0000)	/* up to 256 descriptors */
#define Q_AVAIL (RAM_BASE + 0x1000)
#define Q_USED (RAM_BASE + 0x2000)
#define INDIRECT (RAM_BASE + 0x4000)	/* up to 1024 descriptors */
#define HDR_GPA (RAM_BASE + 0x8000)
#define ST_GPA (RAM_BASE + 0x9000)
#define DATA_GPA (RAM_BASE + 0x10000)	/* to the end of RAM */
#define QNUM 16u

#define DISK_SIZE (1u << 20)
#define CAPACITY (DISK_SIZE / 512)
#define SENTINEL 0xeeu

/* ---- fake host ---------------------------------------------------------- */

/* The shared fake host (IRQ line, output, exit) first, then guest RAM,
 * a disk and an entropy source. */
struct fake_host {
	struct fakehost base;
	uint8_t *map;		/* RAM with a guard page on each side */
	uint8_t *ram;
	uint8_t *disk;
	unsigned preads, pwrites, flushes;
	unsigned disk_bad;	/* calls outside the disk: core bugs */
	int fail_io;		/* -errno for the next pread/pwrite */
	int fail_flush;
	size_t io_chunk;	/* most bytes per pread/pwrite (0: all) */
	bool ram_gone;		/* mem_map refuses everything */
	bool disk_eof;		/* pread returns 0 (image shrank) */
	uint32_t entropy_seq;
	uint64_t entropy_bytes;
	size_t entropy_chunk;	/* most bytes per call (0: all) */
	int fail_entropy;
};

static struct fake_host host;
static struct dev *dev;

static void *fake_mem_map(void *h, uint64_t gpa, uint64_t len)
{
	struct fake_host *fh = h;
	uint64_t off;

	if (fh->ram_gone || gpa < RAM_BASE)
		return NULL;
	off = gpa - RAM_BASE;
	if (off > RAM_SIZE || len > RAM_SIZE - off)
		return NULL;
	return fh->ram + off;
}

static bool fake_disk_range(struct fake_host *fh, size_t len, uint64_t off)
{
	if (off > DISK_SIZE || len > DISK_SIZE - off) {
		fh->disk_bad++;
		return false;
	}
	return true;
}

/*
 * What a disk access does before it moves any byte: count it, return the
 * failure a test asked for, once, refuse a bad range, cut *len to the
 * test's chunk. 0 to go on, else what to return.
 */
static ssize_t fake_blk_begin(struct fake_host *fh, unsigned *count,
			      size_t *len, uint64_t off)
{
	(*count)++;
	if (fh->fail_io) {
		int err = fh->fail_io;

		fh->fail_io = 0;
		return err;
	}
	if (!fake_disk_range(fh, *len, off))
		return -EINVAL;
	if (fh->io_chunk && *len > fh->io_chunk)
		*len = fh->io_chunk;
	return 0;
}

static ssize_t fake_blk_pread(void *h, void *buf, size_t len, uint64_t off)
{
	struct fake_host *fh = h;
	ssize_t ret = fake_blk_begin(fh, &fh->preads, &len, off);

	if (ret)
		return ret;
	if (fh->disk_eof)
		return 0;
	memcpy(buf, fh->disk + off, len);
	return (ssize_t)len;
}

static ssize_t fake_blk_pwrite(void *h, const void *buf, size_t len,
			       uint64_t off)
{
	struct fake_host *fh = h;
	ssize_t ret = fake_blk_begin(fh, &fh->pwrites, &len, off);

	if (ret)
		return ret;
	memcpy(fh->disk + off, buf, len);
	return (ssize_t)len;
}

static int fake_blk_flush(void *h)
{
	struct fake_host *fh = h;

	fh->flushes++;
	return fh->fail_flush;
}

static uint64_t fake_blk_size(void *h)
{
	(void)h;
	return DISK_SIZE + 100;	/* a partial sector at the end is not used */
}

static uint8_t entropy_byte(uint32_t seq)
{
	return (uint8_t)(seq * 151u + (seq >> 8) + 7u);
}

static ssize_t fake_entropy(void *h, void *buf, size_t len)
{
	struct fake_host *fh = h;
	uint8_t *out = buf;

	if (fh->fail_entropy)
		return fh->fail_entropy;
	if (fh->entropy_chunk && len > fh->entropy_chunk)
		len = fh->entropy_chunk;
	for (size_t i = 0; i < len; i++)
		out[i] = entropy_byte(fh->entropy_seq++);
	fh->entropy_bytes += len;
	return (ssize_t)len;
}

/* fakehost_bare_ops plus guest RAM, the disk and entropy; without the
 * disk (virtio-rng, a host missing the block backend), set in
 * host_setup. */
static struct dev_host_ops fake_ops, fake_ops_no_blk;

static void fake_ops_init(void)
{
	fake_ops_no_blk = fakehost_bare_ops;
	fake_ops_no_blk.mem_map = fake_mem_map;
	fake_ops = fake_ops_no_blk;
	fake_ops.blk_pread = fake_blk_pread;
	fake_ops.blk_pwrite = fake_blk_pwrite;
	fake_ops.blk_flush = fake_blk_flush;
	fake_ops.blk_size = fake_blk_size;
	fake_ops.entropy = fake_entropy;
}

static uint8_t disk_pattern(size_t i)
{
	return (uint8_t)(i * 7u + i / 512u);
}

static void host_setup(void)
{
	memset(&host, 0, sizeof(host));
	fakehost_reset(&host.base, 1);
	fake_ops_init();
	dev = NULL;
	host.map = mmap(NULL, RAM_SIZE + 2 * PAGE, PROT_NONE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(host.map, MAP_FAILED);
	host.ram = host.map + PAGE;
	ck_assert_int_eq(mprotect(host.ram, RAM_SIZE, PROT_READ | PROT_WRITE),
			 0);
	host.disk = malloc(DISK_SIZE);
	ck_assert_ptr_nonnull(host.disk);
	for (size_t i = 0; i < DISK_SIZE; i++)
		host.disk[i] = disk_pattern(i);
}

static void new_dev(const struct dev_desc *desc, bool readonly,
		    const char *serial)
{
	struct dev_config cfg = {.readonly = readonly, .serial = serial};

	ck_assert_int_eq(dev_new_at(desc, 0, NULL, NULL, &cfg, &fake_ops,
				    &host, &dev), 0);
	ck_assert_ptr_nonnull(dev);
}

static void blk_setup(void)
{
	host_setup();
	new_dev(&vblk_desc, false, "bulkhead-disk-0");
}

static void blk_ro_setup(void)
{
	host_setup();
	new_dev(&vblk_desc, true, "ro");
}

static void rng_setup(void)
{
	host_setup();
	new_dev(&vrng_desc, false, NULL);
}

static void dev_teardown(void)
{
	/* Whatever a test did: the line only moved on changes, only line 0,
	 * and the disk was never asked for bytes outside it. */
	ck_assert_uint_eq(host.base.irq_redundant, 0);
	ck_assert_uint_eq(host.base.irq_bad_line, 0);
	ck_assert_uint_eq(host.disk_bad, 0);
	dev_free(dev);
	dev = NULL;
	munmap(host.map, RAM_SIZE + 2 * PAGE);
	free(host.disk);
}

/* ---- register access ---------------------------------------------------- */

static uint64_t rd_n(unsigned off, unsigned len)
{
	uint8_t b[8];
	uint64_t v = 0;

	memset(b, 0xaa, sizeof(b));
	dev->desc->io(dev, 0, off, b, len, false);
	for (unsigned i = 0; i < len; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

static void wr_n(unsigned off, uint64_t v, unsigned len)
{
	uint8_t b[8];

	for (unsigned i = 0; i < len; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	dev->desc->io(dev, 0, off, b, len, true);
}

static uint32_t rd32(unsigned off)
{
	return (uint32_t)rd_n(off, 4);
}

static void wr32(unsigned off, uint32_t v)
{
	wr_n(off, v, 4);
}

static void *g2h(uint64_t gpa)
{
	ck_assert(gpa >= RAM_BASE && gpa < RAM_END);
	return host.ram + (gpa - RAM_BASE);
}

static void put_le(uint64_t gpa, uint64_t v, unsigned n)
{
	uint8_t *p = g2h(gpa);

	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(uint64_t gpa, unsigned n)
{
	const uint8_t *p = g2h(gpa);
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* ---- guest driver ------------------------------------------------------- */

static struct {
	uint16_t num;
	uint16_t avail_idx;
	uint16_t used_seen;
	unsigned kicks;
} drv;

static uint64_t device_features(void)
{
	uint64_t f;

	wr32(R_DEV_FEATURES_SEL, 0);
	f = rd32(R_DEV_FEATURES);
	wr32(R_DEV_FEATURES_SEL, 1);
	f |= (uint64_t)rd32(R_DEV_FEATURES) << 32;
	return f;
}

static void set_driver_features(uint64_t f)
{
	wr32(R_DRV_FEATURES_SEL, 0);
	wr32(R_DRV_FEATURES, (uint32_t)f);
	wr32(R_DRV_FEATURES_SEL, 1);
	wr32(R_DRV_FEATURES, (uint32_t)(f >> 32));
}

static void set_queue_addrs(uint64_t desc, uint64_t avail, uint64_t used)
{
	wr32(R_DESC_LO, (uint32_t)desc);
	wr32(R_DESC_HI, (uint32_t)(desc >> 32));
	wr32(R_DRIVER_LO, (uint32_t)avail);
	wr32(R_DRIVER_HI, (uint32_t)(avail >> 32));
	wr32(R_DEVICE_LO, (uint32_t)used);
	wr32(R_DEVICE_HI, (uint32_t)(used >> 32));
}

static void setup_queue(uint16_t num)
{
	memset(g2h(Q_DESC), 0, 0x3000);
	wr32(R_QUEUE_SEL, 0);
	ck_assert_uint_eq(rd32(R_QUEUE_READY), 0);
	wr32(R_QUEUE_NUM, num);
	set_queue_addrs(Q_DESC, Q_AVAIL, Q_USED);
	wr32(R_QUEUE_READY, 1);
	ck_assert_uint_eq(rd32(R_QUEUE_READY), 1);
	drv.num = num;
	drv.avail_idx = 0;
	drv.used_seen = 0;
}

static void driver_init_with(uint64_t features, uint16_t num)
{
	wr32(R_STATUS, 0);
	wr32(R_STATUS, ST_ACK);
	wr32(R_STATUS, ST_ACK | ST_DRIVER);
	set_driver_features(features);
	wr32(R_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	ck_assert_uint_eq(rd32(R_STATUS), ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	setup_queue(num);
	wr32(R_STATUS, ST_UP);
	ck_assert_uint_eq(rd32(R_STATUS), ST_UP);
}

static void driver_init(void)
{
	driver_init_with(device_features(), QNUM);
}

static void put_desc(uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	uint64_t at = table + 16ull * i;

	put_le(at, addr, 8);
	put_le(at + 8, len, 4);
	put_le(at + 12, flags, 2);
	put_le(at + 14, next, 2);
}

/* Ring the doorbell, alternately through the ioeventfd path and io(). */
static void kick(void)
{
	if (drv.kicks++ % 2)
		dev->desc->notify(dev, 0);
	else
		wr32(R_QUEUE_NOTIFY, 0);
}

static void publish_avail_idx(uint16_t idx)
{
	uint16_t *avail = g2h(Q_AVAIL);

	__atomic_store_n(&avail[1], idx, __ATOMIC_RELEASE);
}

static void submit(uint16_t head)
{
	uint16_t *avail = g2h(Q_AVAIL);

	avail[2 + drv.avail_idx % drv.num] = head;
	drv.avail_idx++;
	publish_avail_idx(drv.avail_idx);
	kick();
}

static unsigned used_pending(void)
{
	uint16_t idx = __atomic_load_n((uint16_t *)g2h(Q_USED + 2),
				       __ATOMIC_ACQUIRE);

	return (uint16_t)(idx - drv.used_seen);
}

static void take_used(uint32_t *id, uint32_t *len)
{
	uint64_t elem = Q_USED + 4 + 8ull * (drv.used_seen % drv.num);

	ck_assert_uint_ge(used_pending(), 1);
	*id = (uint32_t)get_le(elem, 4);
	*len = (uint32_t)get_le(elem + 4, 4);
	drv.used_seen++;
}

static void expect_used(uint16_t head, uint32_t len)
{
	uint32_t id, ulen;

	ck_assert_uint_eq(used_pending(), 1);
	take_used(&id, &ulen);
	ck_assert_uint_eq(id, head);
	ck_assert_uint_eq(ulen, len);
}

static void ack_interrupts(void)
{
	wr32(R_INT_ACK, rd32(R_INT_STATUS));
	ck_assert(!host.base.level[0]);
}

/* ---- virtio-blk requests ------------------------------------------------ */

static void put_hdr(uint64_t gpa, uint32_t type, uint64_t sector)
{
	put_le(gpa, type, 4);
	put_le(gpa + 4, 0, 4);
	put_le(gpa + 8, sector, 8);
}

static uint8_t *status_byte(void)
{
	return g2h(ST_GPA);
}

/*
 * The usual three descriptors (0: header, 1: data, 2: status; no data
 * when len is 0): submit, serve, check the used entry. Returns the status.
 */
static uint8_t blk_request(uint32_t type, uint64_t sector, uint64_t data,
			   uint32_t len, bool dev_writes, uint32_t *used_len)
{
	uint16_t st_idx = len ? 2 : 1;
	uint32_t id;

	put_hdr(HDR_GPA, type, sector);
	*status_byte() = SENTINEL;
	put_desc(Q_DESC, 0, HDR_GPA, 16, D_NEXT, 1);
	if (len)
		put_desc(Q_DESC, 1, data, len,
			 D_NEXT | (dev_writes ? D_WRITE : 0), 2);
	put_desc(Q_DESC, st_idx, ST_GPA, 1, D_WRITE, 0);
	submit(0);
	ck_assert_uint_eq(used_pending(), 1);
	take_used(&id, used_len);
	ck_assert_uint_eq(id, 0);
	return *status_byte();
}

static uint8_t blk_read(uint64_t sector, uint64_t data, uint32_t len)
{
	uint32_t used;
	uint8_t st = blk_request(BLK_T_IN, sector, data, len, true, &used);

	if (st == BLK_S_OK)
		ck_assert_uint_eq(used, len + 1);
	return st;
}

static uint8_t blk_write(uint64_t sector, uint64_t data, uint32_t len)
{
	uint32_t used;
	uint8_t st = blk_request(BLK_T_OUT, sector, data, len, false, &used);

	ck_assert_uint_eq(used, 1);
	return st;
}

/* The device still serves a plain request (blk: a read; rng: a fill). */
static void assert_serves(void)
{
	uint64_t buf = DATA_GPA + 0x40000;

	if (dev->desc == &vblk_desc) {
		memset(g2h(buf), 0, 1024);
		ck_assert_uint_eq(blk_read(3, buf, 1024), BLK_S_OK);
		ck_assert_mem_eq(g2h(buf), host.disk + 3 * 512, 1024);
	} else {
		put_desc(Q_DESC, 0, buf, 64, D_WRITE, 0);
		submit(0);
		expect_used(0, 64);
	}
}

/* ---- descriptors and registers ------------------------------------------ */

START_TEST(test_descriptors)
{
	const struct dev_desc *descs[] = {&vblk_desc, &vrng_desc};
	const char *names[] = {"virtio-blk", "virtio-rng"};
	const uint64_t bases[] = {0xd0000000, 0xd0000200};
	const unsigned irqs[] = {5, 6};

	for (unsigned i = 0; i < 2; i++) {
		const struct dev_desc *d = descs[i];

		ck_assert_str_eq(d->mf->name, names[i]);
		ck_assert_uint_eq(d->mf->nregions, 1);
		ck_assert_int_eq(d->mf->regions[0].space, DEV_MMIO);
		ck_assert_uint_eq(d->mf->regions[0].base, bases[i]);
		ck_assert_uint_eq(d->mf->regions[0].len, 0x200);
		ck_assert_uint_eq(d->mf->nirqs, 1);
		ck_assert_uint_eq(d->mf->irqs[0], irqs[i]);
		ck_assert_ptr_nonnull(d->irq_flags);
		ck_assert_uint_eq(d->irq_flags[0], DEV_IRQ_LEVEL);
		ck_assert_uint_eq(d->ndoorbells, 1);
		ck_assert_uint_eq(d->doorbells[0].region, 0);
		ck_assert_uint_eq(d->doorbells[0].off, R_QUEUE_NOTIFY);
		ck_assert_uint_eq(d->doorbells[0].len, 4);
		ck_assert_ptr_nonnull(d->io);
		ck_assert_ptr_nonnull(d->notify);
		ck_assert_ptr_nonnull(d->reset);
		ck_assert_ptr_nonnull(d->save);
		ck_assert_ptr_nonnull(d->load);
		ck_assert_uint_eq(d->mf->state_version, 1);
	}
}
END_TEST

START_TEST(test_blk_identity)
{
	ck_assert_uint_eq(rd32(R_MAGIC), 0x74726976);
	ck_assert_uint_eq(rd32(R_VERSION), 2);
	ck_assert_uint_eq(rd32(R_DEVICE_ID), 2);
	ck_assert_uint_ne(rd32(R_VENDOR_ID), 0);
	ck_assert_uint_eq(device_features(),
			  F(F_VERSION_1) | F(F_INDIRECT) | F(F_BLK_SEG_MAX) |
			  F(F_BLK_BLK_SIZE) | F(F_BLK_FLUSH));
	wr32(R_DEV_FEATURES_SEL, 2);
	ck_assert_uint_eq(rd32(R_DEV_FEATURES), 0);
	wr32(R_QUEUE_SEL, 0);
	ck_assert_uint_eq(rd32(R_QUEUE_NUM_MAX), 256);
	ck_assert_uint_eq(rd32(R_QUEUE_READY), 0);
	wr32(R_QUEUE_SEL, 1);
	ck_assert_uint_eq(rd32(R_QUEUE_NUM_MAX), 0);
	wr32(R_QUEUE_READY, 1);		/* no such queue: nothing */
	ck_assert_uint_eq(rd32(R_QUEUE_READY), 0);
	ck_assert_uint_eq(rd32(R_STATUS), 0);
	ck_assert_uint_eq(rd32(R_INT_STATUS), 0);
	ck_assert_uint_eq(rd32(R_CONFIG_GEN), 0);
	ck_assert_uint_eq(rd32(R_SHM_LEN_LO), 0xffffffffu);

	/* Config space: capacity, seg_max, blk_size, at any width. */
	ck_assert_uint_eq(rd_n(R_CONFIG, 8), CAPACITY);
	ck_assert_uint_eq(rd32(R_CONFIG), CAPACITY);
	ck_assert_uint_eq(rd32(R_CONFIG + 4), 0);
	ck_assert_uint_eq(rd_n(R_CONFIG + 1, 1), CAPACITY >> 8);
	ck_assert_uint_eq(rd_n(R_CONFIG + 1, 2), CAPACITY >> 8);
	ck_assert_uint_eq(rd32(R_CONFIG + 0x0c), 126);
	ck_assert_uint_eq(rd32(R_CONFIG + 0x14), 512);
	ck_assert_uint_eq(rd_n(R_CONFIG + 0x14, 2), 512);
	ck_assert_uint_eq(rd32(R_CONFIG + 0x1c), 0);
	ck_assert_uint_eq(rd32(R_CONFIG + 0x20), 0);	/* past it */
	ck_assert_uint_eq(rd_n(R_CONFIG + 0xfc, 8), 0);	/* past the block */
	wr32(R_CONFIG, 0x1234);				/* ignored */
	ck_assert_uint_eq(rd32(R_CONFIG), CAPACITY);
	ck_assert_uint_eq(host.base.irq_calls, 0);
}
END_TEST

START_TEST(test_register_widths)
{
	/* Control registers: 32-bit aligned only; the rest reads 0. */
	ck_assert_uint_eq(rd_n(R_MAGIC, 1), 0);
	ck_assert_uint_eq(rd_n(R_MAGIC, 2), 0);
	ck_assert_uint_eq(rd_n(R_MAGIC, 8), 0);
	ck_assert_uint_eq(rd_n(R_MAGIC + 2, 4), 0);
	ck_assert_uint_eq(rd_n(R_VERSION + 1, 1), 0);
	wr_n(R_STATUS, ST_ACK, 1);
	wr_n(R_STATUS, ST_ACK, 2);
	wr_n(R_STATUS, ST_ACK, 8);
	wr_n(R_STATUS + 1, ST_ACK, 4);
	ck_assert_uint_eq(rd32(R_STATUS), 0);
	/* Write-only registers read 0; reserved offsets too. */
	wr32(R_QUEUE_NUM, 8);
	ck_assert_uint_eq(rd32(R_QUEUE_NUM), 0);
	ck_assert_uint_eq(rd32(R_QUEUE_NOTIFY), 0);
	ck_assert_uint_eq(rd32(R_INT_ACK), 0);
	ck_assert_uint_eq(rd32(0x0f8), 0);
	/* Read-only registers ignore writes. */
	wr32(R_MAGIC, 0);
	wr32(R_DEVICE_ID, 7);
	wr32(R_INT_STATUS, 3);
	ck_assert_uint_eq(rd32(R_MAGIC), 0x74726976);
	ck_assert_uint_eq(rd32(R_DEVICE_ID), 2);
	ck_assert_uint_eq(rd32(R_INT_STATUS), 0);
	/* Outside the block, other regions, odd lengths: nothing. */
	{
		uint8_t b[8];

		memset(b, 0xaa, sizeof(b));
		dev->desc->io(dev, 0, 0x200, b, 4, false);
		ck_assert_uint_eq(b[0], 0);
		memset(b, 0xaa, sizeof(b));
		dev->desc->io(dev, 1, R_MAGIC, b, 4, false);
		ck_assert_uint_eq(b[0], 0);
		memset(b, 0xaa, sizeof(b));
		dev->desc->io(dev, 0, R_MAGIC, b, 3, false);
		ck_assert_uint_eq(b[0] | b[1] | b[2], 0);
		dev->desc->io(dev, 0, R_MAGIC, b, 0, false);
		dev->desc->io(dev, 0, ~0ull, b, 4, true);
	}
}
END_TEST

/* ---- negotiation and status --------------------------------------------- */

static void negotiate(uint64_t features)
{
	wr32(R_STATUS, 0);
	wr32(R_STATUS, ST_ACK);
	wr32(R_STATUS, ST_ACK | ST_DRIVER);
	set_driver_features(features);
	wr32(R_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
}

START_TEST(test_negotiation)
{
	uint64_t offered = device_features();

	/* Everything offered: accepted. */
	negotiate(offered);
	ck_assert_uint_eq(rd32(R_STATUS), ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	/* A subset with VERSION_1: accepted. */
	negotiate(F(F_VERSION_1));
	ck_assert_uint_eq(rd32(R_STATUS), ST_ACK | ST_DRIVER | ST_FEATURES_OK);

	/* Features we did not offer: refused (RO, EVENT_IDX, bit 63). */
	negotiate(offered | F(F_BLK_RO));
	ck_assert_uint_eq(rd32(R_STATUS), ST_ACK | ST_DRIVER);
	negotiate(offered | F(F_EVENT_IDX));
	ck_assert_uint_eq(rd32(R_STATUS), ST_ACK | ST_DRIVER);
	negotiate(offered | F(63));
	ck_assert_uint_eq(rd32(R_STATUS), ST_ACK | ST_DRIVER);
	/* Bits in feature words beyond 1: refused too. */
	negotiate(offered);
	wr32(R_STATUS, 0);
	wr32(R_STATUS, ST_ACK | ST_DRIVER);
	set_driver_features(offered);
	wr32(R_DRV_FEATURES_SEL, 2);
	wr32(R_DRV_FEATURES, 1);
	wr32(R_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	ck_assert_uint_eq(rd32(R_STATUS), ST_ACK | ST_DRIVER);

	/* VERSION_1 is required. */
	negotiate(offered & ~F(F_VERSION_1));
	ck_assert_uint_eq(rd32(R_STATUS), ST_ACK | ST_DRIVER);
	/* and DRIVER_OK needs FEATURES_OK. */
	wr32(R_STATUS, ST_ACK | ST_DRIVER | ST_DRIVER_OK);
	ck_assert_uint_eq(rd32(R_STATUS), ST_ACK | ST_DRIVER);
	wr32(R_STATUS, ST_ACK | ST_DRIVER | ST_FAILED);
	ck_assert_uint_eq(rd32(R_STATUS), ST_ACK | ST_DRIVER | ST_FAILED);

	/* After a reset, a proper negotiation works. */
	driver_init();
	assert_serves();
}
END_TEST

START_TEST(test_status_rules)
{
	driver_init();
	/* The driver cannot clear bits (only reset) nor set NEEDS_RESET. */
	wr32(R_STATUS, ST_ACK | ST_DRIVER);
	ck_assert_uint_eq(rd32(R_STATUS), ST_UP);
	wr32(R_STATUS, ST_UP | ST_NEEDS_RESET);
	ck_assert_uint_eq(rd32(R_STATUS), ST_UP);
	/* Accepted features are frozen after FEATURES_OK. */
	set_driver_features(F(F_VERSION_1) | F(F_EVENT_IDX));
	wr32(R_STATUS, ST_UP | ST_FAILED);
	ck_assert_uint_eq(rd32(R_STATUS), ST_UP | ST_FAILED);
	/* still served, indirect still negotiated */
	put_hdr(HDR_GPA, BLK_T_IN, 0);
	put_desc(INDIRECT, 0, HDR_GPA, 16, D_NEXT, 1);
	put_desc(INDIRECT, 1, DATA_GPA, 512, D_NEXT | D_WRITE, 2);
	put_desc(INDIRECT, 2, ST_GPA, 1, D_WRITE, 0);
	put_desc(Q_DESC, 0, INDIRECT, 48, D_INDIRECT, 0);
	*status_byte() = SENTINEL;
	submit(0);
	expect_used(0, 513);
	ck_assert_uint_eq(*status_byte(), BLK_S_OK);
}
END_TEST

START_TEST(test_no_service_before_driver_ok)
{
	negotiate(device_features());
	setup_queue(QNUM);
	put_desc(Q_DESC, 0, DATA_GPA, 64, D_WRITE, 0);
	submit(0);				/* not yet DRIVER_OK */
	ck_assert_uint_eq(used_pending(), 0);
	ck_assert_uint_eq(host.entropy_bytes, 0);
	wr32(R_STATUS, ST_UP);			/* served now */
	expect_used(0, 64);
	ck_assert(host.base.level[0]);
}
END_TEST

START_TEST(test_reset)
{
	driver_init();
	assert_serves();
	ck_assert_uint_eq(rd32(R_INT_STATUS), INT_VRING);
	ck_assert(host.base.level[0]);
	wr32(R_QUEUE_SEL, 0);

	wr32(R_STATUS, 0);
	ck_assert(!host.base.level[0]);
	ck_assert_uint_eq(rd32(R_STATUS), 0);
	ck_assert_uint_eq(rd32(R_INT_STATUS), 0);
	ck_assert_uint_eq(rd32(R_QUEUE_READY), 0);
	ck_assert_uint_eq(rd32(R_CONFIG_GEN), 0);
	/* a request now is not served */
	submit(0);
	ck_assert_uint_eq(used_pending(), 0);
	/* re-initialised, the queue starts again at index 0 */
	driver_init();
	assert_serves();
	ck_assert_uint_eq(get_le(Q_USED + 2, 2), 1);

	/* The descriptor's reset does the same. */
	dev->desc->reset(dev);
	ck_assert(!host.base.level[0]);
	ck_assert_uint_eq(rd32(R_STATUS), 0);
	ck_assert_uint_eq(rd32(R_QUEUE_READY), 0);
}
END_TEST

START_TEST(test_queue_setup_checks)
{
	static const struct {
		uint32_t num;
		uint64_t desc, avail, used;
	} bad[] = {
		{0, Q_DESC, Q_AVAIL, Q_USED},
		{3, Q_DESC, Q_AVAIL, Q_USED},		/* not a power of 2 */
		{512, Q_DESC, Q_AVAIL, Q_USED},		/* above QueueNumMax */
		{0x10000, Q_DESC, Q_AVAIL, Q_USED},
		{QNUM, Q_DESC + 8, Q_AVAIL, Q_USED},	/* misaligned */
		{QNUM, Q_DESC, Q_AVAIL + 1, Q_USED},
		{QNUM, Q_DESC, Q_AVAIL, Q_USED + 2},
		{QNUM, 0, Q_AVAIL, Q_USED},		/* not in RAM */
		{QNUM, Q_DESC, RAM_END, Q_USED},
		{QNUM, Q_DESC, Q_AVAIL, RAM_END - 64},	/* straddles the end */
		{QNUM, Q_DESC, Q_AVAIL, 0xfffffffffffffff0ull},
		{QNUM, 0xfffffffffffffff0ull, Q_AVAIL, Q_USED},
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		negotiate(device_features());
		wr32(R_QUEUE_SEL, 0);
		wr32(R_QUEUE_NUM, bad[i].num);
		set_queue_addrs(bad[i].desc, bad[i].avail, bad[i].used);
		wr32(R_QUEUE_READY, 1);
		ck_assert_msg(rd32(R_QUEUE_READY) == 0, "case %u", i);
		ck_assert_uint_eq(rd32(R_STATUS) & ST_NEEDS_RESET,
				  ST_NEEDS_RESET);
	}
	ck_assert(!host.base.level[0]);		/* before DRIVER_OK: no interrupt */

	/* A ready queue's registers are frozen; ready 0 stops it. */
	driver_init();
	set_queue_addrs(0, 0, 0);
	wr32(R_QUEUE_NUM, 3);
	assert_serves();
	wr32(R_QUEUE_READY, 0);
	ck_assert_uint_eq(rd32(R_QUEUE_READY), 0);
	submit(0);
	ck_assert_uint_eq(used_pending(), 0);
	wr32(R_QUEUE_READY, 1);		/* same good registers: restarts */
	ck_assert_uint_eq(rd32(R_QUEUE_READY), 1);
	drv.avail_idx = 0;
	drv.used_seen = 0;
	memset(g2h(Q_AVAIL), 0, 0x2000);
	assert_serves();
}
END_TEST

/* ---- virtio-blk requests ------------------------------------------------ */

START_TEST(test_blk_read_write)
{
	uint8_t *data = g2h(DATA_GPA);
	uint8_t *back = g2h(DATA_GPA + 0x1000);

	driver_init();
	ck_assert(!host.base.level[0]);

	/* read two sectors */
	ck_assert_uint_eq(blk_read(10, DATA_GPA, 1024), BLK_S_OK);
	ck_assert_mem_eq(data, host.disk + 10 * 512, 1024);
	ck_assert_uint_eq(rd32(R_INT_STATUS), INT_VRING);
	ck_assert(host.base.level[0]);
	wr32(R_INT_ACK, INT_VRING);
	ck_assert(!host.base.level[0]);
	ck_assert_uint_eq(rd32(R_INT_STATUS), 0);

	/* write them with a new pattern, read back */
	for (unsigned i = 0; i < 1024; i++)
		data[i] = (uint8_t)(0x5a ^ i);
	ck_assert_uint_eq(blk_write(20, DATA_GPA, 1024), BLK_S_OK);
	ck_assert_mem_eq(host.disk + 20 * 512, data, 1024);
	ck_assert_uint_eq(host.disk[19 * 512 + 511], disk_pattern(19 * 512 + 511));
	ck_assert_uint_eq(host.disk[22 * 512], disk_pattern(22 * 512));
	memset(back, 0, 1024);
	ck_assert_uint_eq(blk_read(20, DATA_GPA + 0x1000, 1024), BLK_S_OK);
	ck_assert_mem_eq(back, data, 1024);

	/* the last sector, and a zero-length read at the end */
	ck_assert_uint_eq(blk_read(CAPACITY - 1, DATA_GPA, 512), BLK_S_OK);
	ck_assert_mem_eq(data, host.disk + DISK_SIZE - 512, 512);
	ck_assert_uint_eq(blk_read(CAPACITY, DATA_GPA, 0), BLK_S_OK);

	/* a large transfer: 126 segments of 4 KiB through an indirect table */
	put_hdr(HDR_GPA, BLK_T_IN, 0);
	put_desc(INDIRECT, 0, HDR_GPA, 16, D_NEXT, 1);
	for (unsigned i = 0; i < 126; i++)
		put_desc(INDIRECT, 1 + i, DATA_GPA + 0x1000ull * i, 0x1000,
			 D_NEXT | D_WRITE, (uint16_t)(2 + i));
	put_desc(INDIRECT, 127, ST_GPA, 1, D_WRITE, 0);
	put_desc(Q_DESC, 0, INDIRECT, 128 * 16, D_INDIRECT, 0);
	*status_byte() = SENTINEL;
	submit(0);
	expect_used(0, 126 * 0x1000 + 1);
	ck_assert_uint_eq(*status_byte(), BLK_S_OK);
	ck_assert_mem_eq(data, host.disk, 126 * 0x1000);
}
END_TEST

START_TEST(test_blk_framing)
{
	uint8_t *d = g2h(DATA_GPA);

	driver_init();
	/* Header split 5 + 11, data 100 + 412 + 512, status in the same
	 * descriptor as the last 512 data bytes. */
	put_hdr(HDR_GPA, BLK_T_IN, 7);
	put_desc(Q_DESC, 0, HDR_GPA, 5, D_NEXT, 1);
	put_desc(Q_DESC, 1, HDR_GPA + 5, 11, D_NEXT, 2);
	put_desc(Q_DESC, 2, DATA_GPA, 100, D_NEXT | D_WRITE, 3);
	put_desc(Q_DESC, 3, DATA_GPA + 100, 412, D_NEXT | D_WRITE, 4);
	put_desc(Q_DESC, 4, DATA_GPA + 512, 513, D_WRITE, 0);
	d[1024] = SENTINEL;
	submit(0);
	expect_used(0, 1025);
	ck_assert_mem_eq(d, host.disk + 7 * 512, 1024);
	ck_assert_uint_eq(d[1024], BLK_S_OK);

	/* OUT with header and data in one readable descriptor; descriptors
	 * in any order in the table; an empty descriptor is skipped. */
	put_hdr(DATA_GPA + 0x2000 - 16, BLK_T_OUT, 30);
	memset(g2h(DATA_GPA + 0x2000), 0xc3, 512);
	put_desc(Q_DESC, 9, DATA_GPA + 0x2000 - 16, 16 + 512, D_NEXT, 5);
	put_desc(Q_DESC, 5, 0xdead0000, 0, D_NEXT, 12);
	put_desc(Q_DESC, 12, ST_GPA, 1, D_WRITE, 0);
	*status_byte() = SENTINEL;
	submit(9);
	expect_used(9, 1);
	ck_assert_uint_eq(*status_byte(), BLK_S_OK);
	ck_assert_uint_eq(host.disk[30 * 512], 0xc3);
	ck_assert_uint_eq(host.disk[30 * 512 + 511], 0xc3);
	ck_assert_uint_eq(host.disk[31 * 512], disk_pattern(31 * 512));

	/* direct header, then an indirect table for the rest */
	put_hdr(HDR_GPA, BLK_T_IN, 2);
	put_desc(Q_DESC, 0, HDR_GPA, 16, D_NEXT, 1);
	put_desc(Q_DESC, 1, INDIRECT, 32, D_INDIRECT | D_WRITE, 0);
	put_desc(INDIRECT, 0, DATA_GPA, 512, D_NEXT | D_WRITE, 1);
	put_desc(INDIRECT, 1, ST_GPA, 1, D_WRITE, 0);
	*status_byte() = SENTINEL;
	submit(0);
	expect_used(0, 513);
	ck_assert_uint_eq(*status_byte(), BLK_S_OK);
	ck_assert_mem_eq(d, host.disk + 2 * 512, 512);
}
END_TEST

START_TEST(test_blk_flush_get_id)
{
	uint32_t used;
	uint8_t *id = g2h(DATA_GPA);

	driver_init();
	ck_assert_uint_eq(blk_request(BLK_T_FLUSH, 0, 0, 0, false, &used),
			  BLK_S_OK);
	ck_assert_uint_eq(used, 1);
	ck_assert_uint_eq(host.flushes, 1);
	host.fail_flush = -EIO;
	ck_assert_uint_eq(blk_request(BLK_T_FLUSH, 0, 0, 0, false, &used),
			  BLK_S_IOERR);
	host.fail_flush = 0;

	memset(id, 0xff, 32);
	ck_assert_uint_eq(blk_request(BLK_T_GET_ID, 0, DATA_GPA, 20, true,
				      &used), BLK_S_OK);
	ck_assert_uint_eq(used, 21);
	ck_assert_mem_eq(id, "bulkhead-disk-0\0\0\0\0\0", 20);
	ck_assert_uint_eq(id[20], 0xff);

	/* a shorter buffer gets what fits */
	memset(id, 0xff, 32);
	ck_assert_uint_eq(blk_request(BLK_T_GET_ID, 0, DATA_GPA, 8, true,
				      &used), BLK_S_OK);
	ck_assert_uint_eq(used, 9);
	ck_assert_mem_eq(id, "bulkhead", 8);
	ck_assert_uint_eq(id[8], 0xff);

	/* unsupported types */
	ck_assert_uint_eq(blk_request(BLK_T_DISCARD, 0, DATA_GPA, 16, false,
				      &used), BLK_S_UNSUPP);
	ck_assert_uint_eq(used, 1);
	ck_assert_uint_eq(blk_request(0xffffffffu, 0, 0, 0, false, &used),
			  BLK_S_UNSUPP);
	assert_serves();
}
END_TEST

START_TEST(test_blk_long_serial)
{
	static const char serial[] = "0123456789abcdefghijKLMNOP";
	struct dev_config cfg = {.serial = serial};
	uint32_t used;
	uint8_t *id = g2h(DATA_GPA);

	dev_free(dev);
	ck_assert_int_eq(dev_new_at(&vblk_desc, 1, NULL, NULL, &cfg, &fake_ops,
				    &host, &dev), 0);
	driver_init();
	memset(id, 0xff, 32);
	ck_assert_uint_eq(blk_request(BLK_T_GET_ID, 0, DATA_GPA, 20, true,
				      &used), BLK_S_OK);
	ck_assert_mem_eq(id, serial, 20);	/* no NUL at 20 bytes */
	ck_assert_uint_eq(id[20], 0xff);

	/* no serial at all */
	ack_interrupts();
	dev_free(dev);
	cfg.serial = NULL;
	ck_assert_int_eq(dev_new_at(&vblk_desc, 2, NULL, NULL, &cfg, &fake_ops,
				    &host, &dev), 0);
	driver_init();
	memset(id, 0xff, 32);
	ck_assert_uint_eq(blk_request(BLK_T_GET_ID, 0, DATA_GPA, 20, true,
				      &used), BLK_S_OK);
	for (unsigned i = 0; i < 20; i++)
		ck_assert_uint_eq(id[i], 0);
}
END_TEST

START_TEST(test_blk_readonly)
{
	uint8_t *data = g2h(DATA_GPA);
	uint32_t used;

	ck_assert_uint_eq(device_features() & F(F_BLK_RO), F(F_BLK_RO));
	driver_init();
	memset(data, 0x11, 1024);
	ck_assert_uint_eq(blk_write(4, DATA_GPA, 1024), BLK_S_IOERR);
	ck_assert_uint_eq(host.pwrites, 0);
	for (size_t i = 0; i < DISK_SIZE; i++)
		if (host.disk[i] != disk_pattern(i))
			ck_abort_msg("disk changed at %zu", i);
	ck_assert_uint_eq(blk_read(4, DATA_GPA, 1024), BLK_S_OK);
	ck_assert_mem_eq(data, host.disk + 4 * 512, 1024);
	ck_assert_uint_eq(blk_request(BLK_T_FLUSH, 0, 0, 0, false, &used),
			  BLK_S_OK);
	ck_assert_uint_eq(blk_request(BLK_T_GET_ID, 0, DATA_GPA, 20, true,
				      &used), BLK_S_OK);
	ck_assert_mem_eq(data, "ro\0", 3);
}
END_TEST

START_TEST(test_blk_out_of_range)
{
	driver_init();
	ck_assert_uint_eq(blk_read(CAPACITY, DATA_GPA, 512), BLK_S_IOERR);
	ck_assert_uint_eq(blk_read(CAPACITY - 1, DATA_GPA, 1024), BLK_S_IOERR);
	ck_assert_uint_eq(blk_read(CAPACITY + 1, DATA_GPA, 0), BLK_S_IOERR);
	ck_assert_uint_eq(blk_read(1ull << 55, DATA_GPA, 512), BLK_S_IOERR);
	ck_assert_uint_eq(blk_read(~0ull, DATA_GPA, 512), BLK_S_IOERR);
	ck_assert_uint_eq(blk_read(~0ull / 512 + 1, DATA_GPA, 512),
			  BLK_S_IOERR);
	ck_assert_uint_eq(blk_write(CAPACITY, DATA_GPA, 512), BLK_S_IOERR);
	ck_assert_uint_eq(blk_write(~0ull, DATA_GPA, 512), BLK_S_IOERR);
	ck_assert_uint_eq(blk_write(CAPACITY - 1, DATA_GPA, 1024), BLK_S_IOERR);
	ck_assert_uint_eq(host.preads, 0);
	ck_assert_uint_eq(host.pwrites, 0);
	ck_assert_uint_eq(blk_read(CAPACITY - 2, DATA_GPA, 1024), BLK_S_OK);
}
END_TEST

START_TEST(test_blk_bad_requests)
{
	uint32_t used;

	driver_init();
	/* data not a multiple of 512 */
	ck_assert_uint_eq(blk_read(0, DATA_GPA, 100), BLK_S_IOERR);
	ck_assert_uint_eq(blk_read(0, DATA_GPA, 513), BLK_S_IOERR);
	ck_assert_uint_eq(blk_write(0, DATA_GPA, 511), BLK_S_IOERR);
	ck_assert_uint_eq(blk_write(0, DATA_GPA, 1), BLK_S_IOERR);
	ck_assert_uint_eq(host.preads + host.pwrites, 0);

	/* a header shorter than 16 bytes */
	put_hdr(HDR_GPA, BLK_T_IN, 0);
	put_desc(Q_DESC, 0, HDR_GPA, 8, D_NEXT, 1);
	put_desc(Q_DESC, 1, ST_GPA, 1, D_WRITE, 0);
	*status_byte() = SENTINEL;
	submit(0);
	expect_used(0, 1);
	ck_assert_uint_eq(*status_byte(), BLK_S_IOERR);

	/* IN with readable data after the header */
	put_desc(Q_DESC, 0, HDR_GPA, 16, D_NEXT, 1);
	put_desc(Q_DESC, 1, DATA_GPA, 512, D_NEXT, 2);
	put_desc(Q_DESC, 2, DATA_GPA + 512, 512, D_NEXT | D_WRITE, 3);
	put_desc(Q_DESC, 3, ST_GPA, 1, D_WRITE, 0);
	*status_byte() = SENTINEL;
	submit(0);
	expect_used(0, 1);
	ck_assert_uint_eq(*status_byte(), BLK_S_IOERR);

	/* OUT with writable data before the status */
	put_hdr(HDR_GPA, BLK_T_OUT, 0);
	put_desc(Q_DESC, 1, DATA_GPA, 512, D_NEXT, 2);
	put_desc(Q_DESC, 2, DATA_GPA + 512, 512, D_NEXT | D_WRITE, 3);
	*status_byte() = SENTINEL;
	submit(0);
	expect_used(0, 1);
	ck_assert_uint_eq(*status_byte(), BLK_S_IOERR);
	ck_assert_uint_eq(host.pwrites, 0);

	/* FLUSH carrying data */
	ck_assert_uint_eq(blk_request(BLK_T_FLUSH, 0, DATA_GPA, 512, false,
				      &used), BLK_S_IOERR);
	ck_assert_uint_eq(host.flushes, 0);
	assert_serves();
}
END_TEST

START_TEST(test_blk_backend)
{
	driver_init();
	/* errors become IOERR */
	host.fail_io = -EIO;
	ck_assert_uint_eq(blk_read(0, DATA_GPA, 512), BLK_S_IOERR);
	host.fail_io = -ENOSPC;
	ck_assert_uint_eq(blk_write(0, DATA_GPA, 512), BLK_S_IOERR);
	/* short transfers are continued */
	host.io_chunk = 100;
	memset(g2h(DATA_GPA), 0x77, 2048);
	ck_assert_uint_eq(blk_write(40, DATA_GPA, 2048), BLK_S_OK);
	ck_assert_uint_eq(host.disk[40 * 512 + 2047], 0x77);
	memset(g2h(DATA_GPA), 0, 2048);
	ck_assert_uint_eq(blk_read(39, DATA_GPA, 2048), BLK_S_OK);
	ck_assert_mem_eq(g2h(DATA_GPA), host.disk + 39 * 512, 2048);
	ck_assert_uint_ge(host.preads, 20);
}
END_TEST

START_TEST(test_blk_disk_shrank)
{
	driver_init();
	host.disk_eof = true;	/* the image is shorter than at start */
	ck_assert_uint_eq(blk_read(0, DATA_GPA, 512), BLK_S_IOERR);
	host.disk_eof = false;
	assert_serves();
}
END_TEST

START_TEST(test_ram_gone)
{
	/* Rings that were good at QueueReady but no longer map: the queue
	 * is not touched, NEEDS_RESET with a config interrupt. */
	driver_init();
	host.ram_gone = true;
	put_desc(Q_DESC, 0, DATA_GPA, 64, D_WRITE, 0);
	submit(0);
	ck_assert_uint_eq(used_pending(), 0);
	ck_assert_uint_eq(rd32(R_STATUS), ST_UP | ST_NEEDS_RESET);
	ck_assert_uint_eq(rd32(R_INT_STATUS), INT_CONFIG);
	ck_assert(host.base.level[0]);
	host.ram_gone = false;
	ack_interrupts();
	driver_init();
	assert_serves();
}
END_TEST

START_TEST(test_blk_no_backend)
{
	uint32_t used;

	dev_free(dev);
	ck_assert_int_eq(dev_new(&vblk_desc, 0, &fake_ops_no_blk, &host, &dev),
			 0);
	ck_assert_uint_eq(rd_n(R_CONFIG, 8), 0);
	driver_init();
	ck_assert_uint_eq(blk_read(0, DATA_GPA, 0), BLK_S_OK);
	ck_assert_uint_eq(blk_read(0, DATA_GPA, 512), BLK_S_IOERR);
	ck_assert_uint_eq(blk_request(BLK_T_FLUSH, 0, 0, 0, false, &used),
			  BLK_S_IOERR);
}
END_TEST

/* ---- hostile chains ----------------------------------------------------- */

static unsigned hostile_io;

/* A header and a status sentinel, and the disk counters noted. */
static void hostile_begin(uint32_t type)
{
	driver_init();
	put_hdr(HDR_GPA, type, 1);
	*status_byte() = SENTINEL;
	hostile_io = host.preads + host.pwrites;
}

/* head was refused: back with length 0, nothing done, device fine. */
static void hostile_refused(uint16_t head)
{
	expect_used(head, 0);
	ck_assert_uint_eq(*status_byte(), SENTINEL);
	ck_assert_uint_eq(host.preads + host.pwrites, hostile_io);
	ck_assert_uint_eq(rd32(R_STATUS), ST_UP);
	assert_serves();
	ck_assert_uint_eq(rd32(R_STATUS), ST_UP);
}

START_TEST(test_hostile_loops)
{
	/* 0 -> 1 -> 0 */
	hostile_begin(BLK_T_IN);
	put_desc(Q_DESC, 0, HDR_GPA, 16, D_NEXT, 1);
	put_desc(Q_DESC, 1, DATA_GPA, 512, D_NEXT | D_WRITE, 0);
	submit(0);
	hostile_refused(0);

	/* a descriptor naming itself */
	hostile_begin(BLK_T_IN);
	put_desc(Q_DESC, 4, HDR_GPA, 16, D_NEXT, 4);
	submit(4);
	hostile_refused(4);

	/* empty descriptors looping: no buffer ever fills the chain */
	hostile_begin(BLK_T_IN);
	put_desc(Q_DESC, 0, HDR_GPA, 16, D_NEXT, 1);
	put_desc(Q_DESC, 1, 0, 0, D_NEXT | D_WRITE, 2);
	put_desc(Q_DESC, 2, 0, 0, D_NEXT | D_WRITE, 1);
	submit(0);
	hostile_refused(0);

	/* a loop through every descriptor of the table, writable ones */
	hostile_begin(BLK_T_IN);
	put_desc(Q_DESC, 0, HDR_GPA, 16, D_NEXT, 1);
	for (unsigned i = 1; i < QNUM; i++)
		put_desc(Q_DESC, i, ST_GPA, 1, D_NEXT | D_WRITE,
			 (uint16_t)((i + 1) % QNUM));
	submit(0);
	hostile_refused(0);
}
END_TEST

START_TEST(test_hostile_indices)
{
	/* next outside the table; where an unchecked index would land (still
	 * in RAM) lies a status descriptor that would complete the request */
	hostile_begin(BLK_T_FLUSH);
	put_desc(Q_DESC, 0, HDR_GPA, 16, D_NEXT, QNUM);
	put_desc(Q_DESC, QNUM, ST_GPA, 1, D_WRITE, 0);
	submit(0);
	hostile_refused(0);
	hostile_begin(BLK_T_FLUSH);
	put_desc(Q_DESC, 0, HDR_GPA, 16, D_NEXT, 0xffff);
	put_desc(Q_DESC, 0xffff, ST_GPA, 1, D_WRITE, 0);
	submit(0);
	hostile_refused(0);
	ck_assert_uint_eq(host.flushes, 0);

	/* a head outside the table: skipped, NEEDS_RESET, config irq */
	hostile_begin(BLK_T_IN);
	submit(QNUM);
	ck_assert_uint_eq(used_pending(), 0);
	ck_assert_uint_eq(rd32(R_STATUS), ST_UP | ST_NEEDS_RESET);
	ck_assert_uint_eq(rd32(R_INT_STATUS), INT_CONFIG);
	ck_assert(host.base.level[0]);
	submit(0xffff);
	ck_assert_uint_eq(used_pending(), 0);
	ack_interrupts();
	/* the next request is served all the same */
	memset(g2h(DATA_GPA + 0x40000), 0, 1024);
	ck_assert_uint_eq(blk_read(3, DATA_GPA + 0x40000, 1024), BLK_S_OK);
	ck_assert_mem_eq(g2h(DATA_GPA + 0x40000), host.disk + 3 * 512, 1024);
}
END_TEST

START_TEST(test_hostile_avail_idx)
{
	uint16_t *avail = g2h(Q_AVAIL);

	/* idx jumps far ahead: the queue is broken, nothing is taken */
	hostile_begin(BLK_T_IN);
	put_desc(Q_DESC, 0, HDR_GPA, 16, D_NEXT, 1);
	put_desc(Q_DESC, 1, ST_GPA, 1, D_WRITE, 0);
	for (unsigned i = 0; i < QNUM; i++)
		avail[2 + i] = 0;
	publish_avail_idx((uint16_t)(drv.avail_idx + QNUM + 1));
	kick();
	ck_assert_uint_eq(used_pending(), 0);
	ck_assert_uint_eq(*status_byte(), SENTINEL);
	ck_assert_uint_eq(rd32(R_STATUS), ST_UP | ST_NEEDS_RESET);
	ck_assert_uint_eq(rd32(R_INT_STATUS), INT_CONFIG);
	publish_avail_idx(0x8000);
	kick();
	ck_assert_uint_eq(used_pending(), 0);
	ack_interrupts();
	/* the driver repairs its index: served again */
	publish_avail_idx(drv.avail_idx);
	assert_serves();

	/* exactly a full ring is fine */
	for (unsigned i = 0; i < QNUM; i++)
		avail[2 + (drv.avail_idx + i) % QNUM] = 0;
	drv.avail_idx = (uint16_t)(drv.avail_idx + QNUM);
	publish_avail_idx(drv.avail_idx);
	put_hdr(HDR_GPA, BLK_T_FLUSH, 0);
	put_desc(Q_DESC, 0, HDR_GPA, 16, D_NEXT, 1);
	put_desc(Q_DESC, 1, ST_GPA, 1, D_WRITE, 0);
	kick();
	ck_assert_uint_eq(used_pending(), QNUM);
	ck_assert_uint_eq(host.flushes, QNUM);
}
END_TEST

START_TEST(test_hostile_buffers)
{
	static const struct {
		uint64_t addr;
		uint32_t len;
	} bad[] = {
		{0, 512},				/* below RAM */
		{RAM_BASE - 512, 512},
		{RAM_BASE - 1, 512},			/* straddles the start */
		{RAM_END, 512},				/* past the end */
		{RAM_END - 256, 512},			/* straddles the end */
		{RAM_END - 1, 2},
		{0xfffffffffffffe00ull, 512},		/* wraps around */
		{DATA_GPA, 0xffffffffu},		/* absurd length */
		{DATA_GPA, 0x80000000u},
		{RAM_BASE, RAM_SIZE + 512},
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* as IN data */
		hostile_begin(BLK_T_IN);
		put_desc(Q_DESC, 0, HDR_GPA, 16, D_NEXT, 1);
		put_desc(Q_DESC, 1, bad[i].addr, bad[i].len, D_NEXT | D_WRITE,
			 2);
		put_desc(Q_DESC, 2, ST_GPA, 1, D_WRITE, 0);
		submit(0);
		hostile_refused(0);
		/* as OUT data */
		hostile_begin(BLK_T_OUT);
		put_desc(Q_DESC, 0, HDR_GPA, 16, D_NEXT, 1);
		put_desc(Q_DESC, 1, bad[i].addr, bad[i].len, D_NEXT, 2);
		put_desc(Q_DESC, 2, ST_GPA, 1, D_WRITE, 0);
		submit(0);
		hostile_refused(0);
		/* as the header */
		hostile_begin(BLK_T_OUT);
		put_desc(Q_DESC, 0, bad[i].addr, bad[i].len, D_NEXT, 2);
		put_desc(Q_DESC, 2, ST_GPA, 1, D_WRITE, 0);
		submit(0);
		hostile_refused(0);
		/* as the status */
		hostile_begin(BLK_T_FLUSH);
		put_desc(Q_DESC, 0, HDR_GPA, 16, D_NEXT, 1);
		put_desc(Q_DESC, 1, bad[i].addr, bad[i].len, D_WRITE, 0);
		submit(0);
		hostile_refused(0);
		ck_assert_uint_eq(host.flushes, 0);
	}
	/* The whole of RAM is a good buffer (here too long for the disk). */
	hostile_begin(BLK_T_IN);
	put_desc(Q_DESC, 0, HDR_GPA, 16, D_NEXT, 1);
	put_desc(Q_DESC, 1, RAM_BASE, RAM_SIZE, D_NEXT | D_WRITE, 2);
	put_desc(Q_DESC, 2, ST_GPA, 1, D_WRITE, 0);
	submit(0);
	expect_used(0, 1);
	ck_assert_uint_eq(*status_byte(), BLK_S_IOERR);
}
END_TEST

START_TEST(test_hostile_status)
{
	/* no device-writable byte at all: nothing done, length 0 */
	hostile_begin(BLK_T_OUT);
	put_desc(Q_DESC, 0, HDR_GPA, 16, D_NEXT, 1);
	put_desc(Q_DESC, 1, DATA_GPA, 512, D_NEXT, 2);
	put_desc(Q_DESC, 2, ST_GPA, 1, 0, 0);
	submit(0);
	hostile_refused(0);
	/* header alone */
	hostile_begin(BLK_T_FLUSH);
	put_desc(Q_DESC, 0, HDR_GPA, 16, 0, 0);
	submit(0);
	hostile_refused(0);
	ck_assert_uint_eq(host.flushes, 0);
	/* status read-only after writable data: order broken */
	hostile_begin(BLK_T_IN);
	put_desc(Q_DESC, 0, HDR_GPA, 16, D_NEXT, 1);
	put_desc(Q_DESC, 1, DATA_GPA, 512, D_NEXT | D_WRITE, 2);
	put_desc(Q_DESC, 2, ST_GPA, 1, 0, 0);
	submit(0);
	hostile_refused(0);
	/* readable header after a writable buffer */
	hostile_begin(BLK_T_IN);
	put_desc(Q_DESC, 0, DATA_GPA, 512, D_NEXT | D_WRITE, 1);
	put_desc(Q_DESC, 1, HDR_GPA, 16, D_NEXT, 2);
	put_desc(Q_DESC, 2, ST_GPA, 1, D_WRITE, 0);
	submit(0);
	hostile_refused(0);
	/* a writable, zero-length status: no status byte */
	hostile_begin(BLK_T_IN);
	put_desc(Q_DESC, 0, HDR_GPA, 16, D_NEXT, 1);
	put_desc(Q_DESC, 1, ST_GPA, 0, D_WRITE, 0);
	submit(0);
	hostile_refused(0);
}
END_TEST

START_TEST(test_hostile_too_many)
{
	/* header + 256 indirect buffers: one more than a chain may hold */
	hostile_begin(BLK_T_IN);
	put_desc(Q_DESC, 0, HDR_GPA, 16, D_NEXT, 1);
	put_desc(Q_DESC, 1, INDIRECT, 256 * 16, D_INDIRECT, 0);
	for (unsigned i = 0; i < 256; i++)
		put_desc(INDIRECT, i, DATA_GPA + 512ull * i, 512,
			 (uint16_t)(D_WRITE | (i < 255 ? D_NEXT : 0)),
			 (uint16_t)(i + 1));
	submit(0);
	hostile_refused(0);
	/* an indirect table of more than 256 entries */
	hostile_begin(BLK_T_IN);
	put_desc(Q_DESC, 0, INDIRECT, 257 * 16, D_INDIRECT, 0);
	submit(0);
	hostile_refused(0);
	/* buffers adding up past 256 MiB: each is in RAM (all of it) */
	hostile_begin(BLK_T_IN);
	put_desc(Q_DESC, 0, INDIRECT, 200 * 16, D_INDIRECT, 0);
	put_desc(INDIRECT, 0, HDR_GPA, 16, D_NEXT, 1);
	for (unsigned i = 1; i < 200; i++)
		put_desc(INDIRECT, i, RAM_BASE, RAM_SIZE,
			 (uint16_t)(D_WRITE | (i < 199 ? D_NEXT : 0)),
			 (uint16_t)(i + 1));
	submit(0);
	hostile_refused(0);
	/* 15 such buffers (30 MiB) are fine: the request fails on the disk */
	hostile_begin(BLK_T_IN);
	put_desc(Q_DESC, 0, HDR_GPA, 16, D_NEXT, 1);
	for (unsigned i = 1; i < QNUM - 1; i++)
		put_desc(Q_DESC, i, RAM_BASE, RAM_SIZE, D_NEXT | D_WRITE,
			 (uint16_t)(i + 1));
	put_desc(Q_DESC, QNUM - 1, ST_GPA, 1, D_WRITE, 0);
	submit(0);
	expect_used(0, 1);
	ck_assert_uint_eq(*status_byte(), BLK_S_IOERR);
}
END_TEST

START_TEST(test_hostile_indirect)
{
	static const struct {
		uint64_t addr;
		uint32_t len;
		uint16_t flags;
	} bad[] = {
		{INDIRECT, 0, D_INDIRECT},		/* empty */
		{INDIRECT, 56, D_INDIRECT},		/* not 16 * n */
		{INDIRECT, 0xfffffff0u, D_INDIRECT},	/* absurd */
		{INDIRECT, 48, D_INDIRECT | D_NEXT},	/* with NEXT */
		{0, 48, D_INDIRECT},			/* not in RAM */
		{RAM_END - 32, 48, D_INDIRECT},		/* straddles the end */
		{0xfffffffffffffff0ull, 48, D_INDIRECT},
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		hostile_begin(BLK_T_IN);
		put_desc(INDIRECT, 0, HDR_GPA, 16, D_NEXT, 1);
		put_desc(INDIRECT, 1, DATA_GPA, 512, D_NEXT | D_WRITE, 2);
		put_desc(INDIRECT, 2, ST_GPA, 1, D_WRITE, 0);
		put_desc(Q_DESC, 0, bad[i].addr, bad[i].len, bad[i].flags, 1);
		put_desc(Q_DESC, 1, ST_GPA, 1, D_WRITE, 0);
		submit(0);
		hostile_refused(0);
	}

	/* nested indirect */
	hostile_begin(BLK_T_IN);
	put_desc(Q_DESC, 0, INDIRECT, 32, D_INDIRECT, 0);
	put_desc(INDIRECT, 0, HDR_GPA, 16, D_NEXT, 1);
	put_desc(INDIRECT, 1, INDIRECT + 0x100, 32, D_INDIRECT, 0);
	put_desc(INDIRECT + 0x100, 0, DATA_GPA, 512, D_NEXT | D_WRITE, 1);
	put_desc(INDIRECT + 0x100, 1, ST_GPA, 1, D_WRITE, 0);
	submit(0);
	hostile_refused(0);

	/* next outside the indirect table (but inside the queue's) */
	hostile_begin(BLK_T_IN);
	put_desc(Q_DESC, 0, INDIRECT, 32, D_INDIRECT, 0);
	put_desc(INDIRECT, 0, HDR_GPA, 16, D_NEXT, 2);
	put_desc(INDIRECT, 2, ST_GPA, 1, D_WRITE, 0);
	submit(0);
	hostile_refused(0);

	/* a loop inside the table */
	hostile_begin(BLK_T_IN);
	put_desc(Q_DESC, 0, INDIRECT, 48, D_INDIRECT, 0);
	put_desc(INDIRECT, 0, HDR_GPA, 16, D_NEXT, 1);
	put_desc(INDIRECT, 1, ST_GPA, 1, D_NEXT | D_WRITE, 2);
	put_desc(INDIRECT, 2, ST_GPA, 1, D_NEXT | D_WRITE, 1);
	submit(0);
	hostile_refused(0);

	/* a good table, but INDIRECT_DESC was not negotiated */
	driver_init_with(device_features() & ~F(F_INDIRECT), QNUM);
	put_hdr(HDR_GPA, BLK_T_IN, 1);
	*status_byte() = SENTINEL;
	hostile_io = host.preads + host.pwrites;
	put_desc(Q_DESC, 0, INDIRECT, 48, D_INDIRECT, 0);
	put_desc(INDIRECT, 0, HDR_GPA, 16, D_NEXT, 1);
	put_desc(INDIRECT, 1, DATA_GPA, 512, D_NEXT | D_WRITE, 2);
	put_desc(INDIRECT, 2, ST_GPA, 1, D_WRITE, 0);
	submit(0);
	hostile_refused(0);
}
END_TEST

START_TEST(test_overlapping_buffers)
{
	/* The header is copied before it is used: a GET_ID whose data
	 * buffer is the header itself still answers. */
	uint8_t *id;

	driver_init();
	put_hdr(HDR_GPA, BLK_T_GET_ID, 0);
	put_desc(Q_DESC, 0, HDR_GPA, 16, D_NEXT, 1);
	put_desc(Q_DESC, 1, HDR_GPA, 20, D_NEXT | D_WRITE, 2);
	put_desc(Q_DESC, 2, ST_GPA, 1, D_WRITE, 0);
	*status_byte() = SENTINEL;
	submit(0);
	expect_used(0, 21);
	ck_assert_uint_eq(*status_byte(), BLK_S_OK);
	id = g2h(HDR_GPA);
	ck_assert_mem_eq(id, "bulkhead-disk-0", 15);
}
END_TEST

/*
 * A second CPU of the guest rewrites, as fast as it can, the data
 * descriptor (in RAM or past its end, sane or absurd length), the header's
 * sector (on the disk or far past it) and the descriptor links, while the
 * device serves requests. Each descriptor and the header are read once,
 * so nothing outside RAM or the disk is ever touched (the guard pages and
 * the fake disk's bounds would catch it) and every request completes.
 */
static volatile bool racer_stop;

static void *racer_main(void *arg)
{
	uint64_t *data_addr = g2h(Q_DESC + 16);
	uint32_t *data_len = g2h(Q_DESC + 16 + 8);
	uint16_t *data_next = g2h(Q_DESC + 16 + 14);
	uint64_t *sector = g2h(HDR_GPA + 8);
	uint32_t x = 1;

	(void)arg;
	while (!racer_stop) {
		x = x * 1103515245u + 12345u;
		__atomic_store_n(data_addr, x & 0x100 ? RAM_END - 256 :
					    DATA_GPA, __ATOMIC_RELAXED);
		__atomic_store_n(data_len, x & 0x200 ? 0xfffff000u : 512,
				 __ATOMIC_RELAXED);
		__atomic_store_n(data_next, x & 0x400 ? 1 : 2,
				 __ATOMIC_RELAXED);
		__atomic_store_n(sector, x & 0x800 ? CAPACITY * 3 : 5,
				 __ATOMIC_RELAXED);
	}
	return NULL;
}

START_TEST(test_racing_guest)
{
	pthread_t racer;
	unsigned ok = 0;

	driver_init();
	put_hdr(HDR_GPA, BLK_T_IN, 5);
	put_desc(Q_DESC, 0, HDR_GPA, 16, D_NEXT, 1);
	put_desc(Q_DESC, 1, DATA_GPA, 512, D_NEXT | D_WRITE, 2);
	put_desc(Q_DESC, 2, ST_GPA, 1, D_WRITE, 0);
	racer_stop = false;
	ck_assert_int_eq(pthread_create(&racer, NULL, racer_main, NULL), 0);
	for (unsigned i = 0; i < 20000; i++) {
		uint32_t id, len;

		*status_byte() = SENTINEL;
		submit(0);
		if (used_pending() != 1)
			ck_abort_msg("request %u not completed", i);
		take_used(&id, &len);
		if (id != 0)
			ck_abort_msg("request %u: id %u", i, id);
		/* refused (0), IOERR (1), or served: the racer may have sent
		 * the walk round descriptor 1 a few times (each visit a new
		 * read, at most QNUM steps in all) */
		ck_assert_msg(len <= 1 || ((len - 1) % 512 == 0 &&
					   len <= QNUM * 512 + 1),
			      "len %u", len);
		if (len > 1)
			ok++;
	}
	racer_stop = true;
	pthread_join(racer, NULL);
	ck_assert_uint_eq(host.disk_bad, 0);
	ck_assert_uint_eq(host.pwrites, 0);
	(void)ok;	/* how many got through depends on scheduling */
}
END_TEST

/* ---- interrupts and rings ----------------------------------------------- */

START_TEST(test_interrupt_suppression)
{
	uint16_t *avail = g2h(Q_AVAIL);

	driver_init();
	avail[0] = AVAIL_NO_INTERRUPT;
	assert_serves();
	ck_assert_uint_eq(rd32(R_INT_STATUS), 0);
	ck_assert(!host.base.level[0]);
	ck_assert_uint_eq(host.base.irq_calls, 0);
	avail[0] = 0;
	assert_serves();
	ck_assert_uint_eq(rd32(R_INT_STATUS), INT_VRING);
	ck_assert(host.base.level[0]);
	assert_serves();		/* still high: no new call */
	ck_assert_uint_eq(host.base.irq_calls, 1);
	wr32(R_INT_ACK, INT_CONFIG);	/* acking another bit: no change */
	ck_assert(host.base.level[0]);
	wr32(R_INT_ACK, INT_VRING);
	ck_assert(!host.base.level[0]);
	ck_assert_uint_eq(host.base.irq_calls, 2);
}
END_TEST

START_TEST(test_rng_used_wrap)
{
	const unsigned total = 70000;	/* past 65535: both indices wrap */

	driver_init_with(device_features(), 4);
	for (unsigned i = 0; i < 4; i++)
		put_desc(Q_DESC, i, DATA_GPA + 8 * i, 1 + i % 3, D_WRITE, 0);
	for (unsigned i = 0; i < total; i++) {
		uint16_t head = (uint16_t)(i % 4);
		uint64_t elem = Q_USED + 4 + 8ull * (drv.used_seen % 4);

		submit(head);
		/* plain checks: Check's asserts are slow in a hot loop */
		if (used_pending() != 1 || get_le(elem, 4) != head ||
		    get_le(elem + 4, 4) != 1u + head % 3)
			ck_abort_msg("request %u: wrong used entry", i);
		drv.used_seen++;
	}
	ck_assert_uint_eq(get_le(Q_USED + 2, 2), total % 65536);
	/* several at once, across the wrap */
	for (unsigned i = 0; i < 4; i++) {
		uint16_t *avail = g2h(Q_AVAIL);

		put_desc(Q_DESC, i, DATA_GPA + 16 * i, 16, D_WRITE, 0);
		avail[2 + (drv.avail_idx + i) % 4] = (uint16_t)(3 - i);
	}
	drv.avail_idx = (uint16_t)(drv.avail_idx + 4);
	publish_avail_idx(drv.avail_idx);
	kick();
	ck_assert_uint_eq(used_pending(), 4);
	for (unsigned i = 0; i < 4; i++) {
		uint32_t id, len;

		take_used(&id, &len);
		ck_assert_uint_eq(id, 3 - i);
		ck_assert_uint_eq(len, 16);
	}
}
END_TEST

/* ---- virtio-rng --------------------------------------------------------- */

START_TEST(test_rng_identity)
{
	ck_assert_uint_eq(rd32(R_MAGIC), 0x74726976);
	ck_assert_uint_eq(rd32(R_VERSION), 2);
	ck_assert_uint_eq(rd32(R_DEVICE_ID), 4);
	ck_assert_uint_eq(device_features(), F(F_VERSION_1) | F(F_INDIRECT));
	wr32(R_QUEUE_SEL, 0);
	ck_assert_uint_eq(rd32(R_QUEUE_NUM_MAX), 256);
	wr32(R_QUEUE_SEL, 1);
	ck_assert_uint_eq(rd32(R_QUEUE_NUM_MAX), 0);
	ck_assert_uint_eq(rd32(R_CONFIG), 0);
	ck_assert_uint_eq(rd_n(R_CONFIG, 1), 0);
	negotiate(F(F_VERSION_1) | F(F_BLK_SEG_MAX));
	ck_assert_uint_eq(rd32(R_STATUS), ST_ACK | ST_DRIVER);
}
END_TEST

static void check_entropy(uint64_t gpa, size_t len, uint32_t first)
{
	const uint8_t *p = g2h(gpa);

	for (size_t i = 0; i < len; i++)
		if (p[i] != entropy_byte(first + (uint32_t)i))
			ck_abort_msg("entropy byte %zu wrong", i);
}

START_TEST(test_rng_fill)
{
	uint8_t *tail;

	driver_init();
	/* three writable buffers */
	put_desc(Q_DESC, 0, DATA_GPA, 10, D_NEXT | D_WRITE, 1);
	put_desc(Q_DESC, 1, DATA_GPA + 0x100, 100, D_NEXT | D_WRITE, 2);
	put_desc(Q_DESC, 2, DATA_GPA + 0x1000, 1000, D_WRITE, 0);
	submit(0);
	expect_used(0, 1110);
	check_entropy(DATA_GPA, 10, 0);
	check_entropy(DATA_GPA + 0x100, 100, 10);
	check_entropy(DATA_GPA + 0x1000, 1000, 110);
	ck_assert(host.base.level[0]);
	ack_interrupts();

	/* more than 64 KiB: 64 KiB filled, the rest untouched */
	memset(g2h(DATA_GPA), 0, 0x30000);
	host.entropy_seq = 0;
	put_desc(Q_DESC, 3, DATA_GPA, 0x20000, D_WRITE, 0);
	submit(3);
	expect_used(3, 0x10000);
	check_entropy(DATA_GPA, 0x10000, 0);
	tail = g2h(DATA_GPA + 0x10000);
	for (unsigned i = 0; i < 0x10000; i++)
		ck_assert_uint_eq(tail[i], 0);

	/* readable buffers are ignored; short answers are continued */
	host.entropy_seq = 0;
	host.entropy_chunk = 7;
	memset(g2h(DATA_GPA), 0, 64);
	put_desc(Q_DESC, 4, DATA_GPA + 0x8000, 64, D_NEXT, 5);
	put_desc(Q_DESC, 5, DATA_GPA, 64, D_WRITE, 0);
	submit(4);
	expect_used(4, 64);
	check_entropy(DATA_GPA, 64, 0);

	/* a failing source: nothing filled */
	host.fail_entropy = -EAGAIN;
	put_desc(Q_DESC, 6, DATA_GPA, 64, D_WRITE, 0);
	submit(6);
	expect_used(6, 0);
	host.fail_entropy = 0;

	/* an empty chain, and a refused one */
	put_desc(Q_DESC, 7, DATA_GPA, 0, D_WRITE, 0);
	submit(7);
	expect_used(7, 0);
	put_desc(Q_DESC, 8, RAM_END - 8, 64, D_WRITE, 0);
	submit(8);
	expect_used(8, 0);
	assert_serves();
}
END_TEST

START_TEST(test_rng_no_entropy_op)
{
	dev_free(dev);
	ck_assert_int_eq(dev_new(&vrng_desc, 0, &fake_ops_no_blk, &host, &dev),
			 0);
	driver_init();
	put_desc(Q_DESC, 0, DATA_GPA, 64, D_WRITE, 0);
	submit(0);
	expect_used(0, 0);
}
END_TEST

START_TEST(test_construct_checks)
{
	struct dev *d2 = NULL;
	struct dev_region small = {DEV_MMIO, 0xd0000000, 0x100};
	struct dev_region moved = {DEV_MMIO, 0xd0001000, 0x200};
	unsigned irq = 11;

	/* a region too small for the register block is refused */
	ck_assert_int_eq(dev_new_at(&vblk_desc, 0, &small, NULL, NULL,
				    &fake_ops, &host, &d2), -EINVAL);
	ck_assert_ptr_null(d2);
	/* a moved instance works the same (offsets are region-relative) */
	ck_assert_int_eq(dev_new_at(&vrng_desc, 3, &moved, &irq, NULL,
				    &fake_ops, &host, &d2), 0);
	ck_assert_uint_eq(d2->regions[0].base, 0xd0001000);
	ck_assert_uint_eq(d2->irqs[0], 11);
	dev_free(d2);
}
END_TEST

/* ---- saved state -------------------------------------------------------- */

static void save(struct dev *d, uint8_t **buf, size_t *len)
{
	ck_assert_int_eq(d->desc->save(d, buf, len), 0);
	ck_assert_ptr_nonnull(*buf);
}

/* Loading bytes fails and leaves the device as it was. */
static void assert_load_fails(const uint8_t *bytes, size_t len,
			      uint32_t version)
{
	uint8_t *before, *after;
	size_t nbefore, nafter;

	save(dev, &before, &nbefore);
	ck_assert_int_lt(dev->desc->load(dev, bytes, len, version), 0);
	save(dev, &after, &nafter);
	ck_assert_uint_eq(nbefore, nafter);
	ck_assert_mem_eq(before, after, nbefore);
	free(before);
	free(after);
}

START_TEST(test_save_load)
{
	struct dev *first;
	uint8_t *buf;
	size_t len;

	driver_init();
	assert_serves();		/* used idx 1, interrupt pending */
	wr32(R_QUEUE_SEL, 0);
	save(dev, &buf, &len);

	/* a fresh device takes the state and carries on */
	first = dev;
	ck_assert_int_eq(dev_new(&vblk_desc, 1, &fake_ops, &host, &dev), 0);
	host.base.level[0] = false;		/* a new device, a new line */
	ck_assert_int_eq(dev->desc->load(dev, buf, len, 1), 0);
	ck_assert(host.base.level[0]);		/* the pending interrupt is driven */
	ck_assert_uint_eq(rd32(R_STATUS), ST_UP);
	ck_assert_uint_eq(rd32(R_INT_STATUS), INT_VRING);
	ck_assert_uint_eq(rd32(R_QUEUE_READY), 1);
	ack_interrupts();
	assert_serves();
	ck_assert_uint_eq(get_le(Q_USED + 2, 2), 2);
	dev_free(first);
	free(buf);

	/* a state saved before any setup loads too */
	dev->desc->reset(dev);
	save(dev, &buf, &len);
	ck_assert_int_eq(dev->desc->load(dev, buf, len, 1), 0);
	free(buf);
}
END_TEST

START_TEST(test_load_refuses)
{
	static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x08};
	VirtioState *st;
	uint8_t *buf, *bad;
	size_t len, blen;
	struct dev *rng;

	driver_init();
	assert_serves();
	save(dev, &buf, &len);

	assert_load_fails(garbage, sizeof(garbage), 1);
	assert_load_fails(buf, len, 2);			/* version */
	assert_load_fails(buf, len, 0);
	assert_load_fails(buf, len - 1, 1);		/* truncated */

	/* rng's state into blk */
	ck_assert_int_eq(dev_new(&vrng_desc, 0, &fake_ops, &host, &rng), 0);
	ck_assert_int_eq(rng->desc->save(rng, &bad, &blen), 0);
	assert_load_fails(bad, blen, 1);
	free(bad);
	dev_free(rng);

	/* One bad field at a time. */
	for (unsigned field = 0; field < 15; field++) {
		size_t nq;

		st = virtio_state__unpack(NULL, len, buf);
		ck_assert_ptr_nonnull(st);
		nq = st->n_queues;
		switch (field) {
		case 0: st->device_id = 4; break;
		case 1: st->status |= 0x100; break;
		case 2: st->status = ST_ACK | ST_DRIVER | ST_DRIVER_OK; break;
		case 3: st->driver_features |= F(F_EVENT_IDX); break;
		case 4: st->driver_features &= ~F(F_VERSION_1); break;
		case 5: st->driver_features_bad = true; break;
		case 6: st->interrupt_status = 4; break;
		case 7: st->n_queues = 0; break;
		case 8: st->queues[0]->num = 3; break;
		case 9: st->queues[0]->num = 512; break;
		case 10: st->queues[0]->desc_addr = RAM_END; break;
		case 11: st->queues[0]->device_addr = Q_USED + 2; break;
		case 12: st->queues[0]->last_avail = 0x10000; break;
		case 13: st->queues[0]->used_idx = 0xffffffff; break;
		case 14: st->queues[0]->driver_addr = RAM_END - 8; break;
		}
		blen = virtio_state__get_packed_size(st);
		bad = malloc(blen + 1);
		ck_assert_ptr_nonnull(bad);
		virtio_state__pack(st, bad);
		st->n_queues = nq;
		virtio_state__free_unpacked(st, NULL);
		assert_load_fails(bad, blen, 1);
		free(bad);
	}

	/* an extra queue is refused too */
	{
		VirtioQueueState q2 = VIRTIO_QUEUE_STATE__INIT;
		VirtioQueueState *qs[2];

		st = virtio_state__unpack(NULL, len, buf);
		qs[0] = st->queues[0];
		qs[1] = &q2;
		{
			VirtioQueueState **saved = st->queues;
			size_t n = st->n_queues;

			st->queues = qs;
			st->n_queues = 2;
			blen = virtio_state__get_packed_size(st);
			bad = malloc(blen);
			virtio_state__pack(st, bad);
			st->queues = saved;
			st->n_queues = n;
		}
		virtio_state__free_unpacked(st, NULL);
		assert_load_fails(bad, blen, 1);
		free(bad);
	}

	/* and the device still works */
	ck_assert_int_eq(dev->desc->load(dev, buf, len, 1), 0);
	assert_serves();
	free(buf);
}
END_TEST

/* ---- random soak -------------------------------------------------------- */

static uint64_t soak_rng_state;

static uint64_t soak_rand(void)
{
	/* xorshift64*: deterministic, good enough to pick cases */
	soak_rng_state ^= soak_rng_state >> 12;
	soak_rng_state ^= soak_rng_state << 25;
	soak_rng_state ^= soak_rng_state >> 27;
	return soak_rng_state * 0x2545f4914f6cdd1dull;
}

static uint64_t soak_addr(void)
{
	switch (soak_rand() % 8) {
	case 0:
		return soak_rand();
	case 1:
		return RAM_END - soak_rand() % 1024;
	case 2:
		return HDR_GPA + soak_rand() % 64;
	case 3:
		return ST_GPA + soak_rand() % 16;
	case 4:
		return INDIRECT + 16 * (soak_rand() % 64);
	case 5:
		return RAM_BASE - soak_rand() % 64;
	default:
		return DATA_GPA + soak_rand() % 0x100000;
	}
}

static uint32_t soak_len(void)
{
	switch (soak_rand() % 6) {
	case 0:
		return (uint32_t)soak_rand();
	case 1:
		return 512u * (uint32_t)(soak_rand() % 9);
	case 2:
		return 16u * (uint32_t)(soak_rand() % 40);
	case 3:
		return 1;
	default:
		return (uint32_t)(soak_rand() % 2048);
	}
}

static void soak_desc(uint64_t table, unsigned n)
{
	unsigned flags = (unsigned)soak_rand() & 7;

	if (soak_rand() % 4)	/* indirect mostly off */
		flags &= ~D_INDIRECT;
	put_desc(table, (unsigned)(soak_rand() % n), soak_addr(), soak_len(),
		 (uint16_t)flags,
		 (uint16_t)(soak_rand() % 8 ? soak_rand() % (n + 2) :
					      soak_rand()));
}

static void soak_header(void)
{
	static const uint32_t types[] = {BLK_T_IN, BLK_T_OUT, BLK_T_FLUSH,
					 BLK_T_GET_ID, BLK_T_DISCARD};
	uint64_t at = HDR_GPA + 16 * (soak_rand() % 4);
	uint32_t type = soak_rand() % 8 ? types[soak_rand() % 5] :
					  (uint32_t)soak_rand();
	uint64_t sector = soak_rand() % 4 ? soak_rand() % (CAPACITY + 8) :
					    soak_rand();

	put_hdr(at, type, sector);
}

/* A plausible request (blk: header, data, status; rng: one or two
 * buffers), direct or through an indirect table, sometimes with one field
 * broken, made available and usually notified. */
static void soak_request(void)
{
	static const uint32_t types[] = {BLK_T_IN, BLK_T_OUT, BLK_T_FLUSH,
					 BLK_T_GET_ID, BLK_T_IN, BLK_T_OUT};
	uint16_t *avail = g2h(Q_AVAIL);
	unsigned n = drv.num ? drv.num : 1;
	bool indirect = soak_rand() % 4 == 0;
	uint64_t table = indirect ? INDIRECT : Q_DESC;
	unsigned tn = indirect ? 3 : n;
	uint16_t head = (uint16_t)(soak_rand() % n);
	uint16_t idx[3];
	uint32_t type = types[soak_rand() % 6];
	uint32_t len = 512u * (uint32_t)(soak_rand() % 9);
	uint64_t hdr = HDR_GPA + 16 * (soak_rand() % 4);
	unsigned ndesc;

	if (soak_rand() % 8 == 0)
		len += (uint32_t)(soak_rand() % 512);
	for (unsigned i = 0; i < 3; i++)
		idx[i] = indirect ? (uint16_t)i :
		     i == 0 ? head : (uint16_t)(soak_rand() % n);
	if (dev->desc == &vrng_desc) {
		ndesc = 1 + (unsigned)(soak_rand() % 2);
		for (unsigned i = 0; i < ndesc; i++)
			put_desc(table, idx[i], DATA_GPA + 0x1000 * i,
				 len ? len : 64,
				 (uint16_t)(D_WRITE |
					    (i + 1 < ndesc ? D_NEXT : 0)),
				 idx[(i + 1) % 3]);
	} else {
		bool writes = type == BLK_T_IN || type == BLK_T_GET_ID;

		put_hdr(hdr, type, soak_rand() % 4 ? soak_rand() % CAPACITY :
						     soak_rand());
		if (type == BLK_T_GET_ID)
			len = 20;
		if (type == BLK_T_FLUSH || !len) {
			put_desc(table, idx[0], hdr, 16, D_NEXT, idx[2]);
		} else {
			put_desc(table, idx[0], hdr, 16, D_NEXT, idx[1]);
			put_desc(table, idx[1],
				 DATA_GPA + 512 * (soak_rand() % 1024), len,
				 (uint16_t)(D_NEXT | (writes ? D_WRITE : 0)),
				 idx[2]);
		}
		put_desc(table, idx[2], ST_GPA + soak_rand() % 16, 1, D_WRITE,
			 0);
	}
	if (soak_rand() % 4 == 0)
		soak_desc(table, tn);
	if (indirect)
		put_desc(Q_DESC, head, INDIRECT, 48, D_INDIRECT, 0);
	avail[2 + drv.avail_idx % n] = head;
	drv.avail_idx++;
	publish_avail_idx(drv.avail_idx);
	if (soak_rand() % 4)
		kick();
}

/* Catch up with the device's available index (from its saved state). */
static void soak_resync(void)
{
	VirtioState *st;
	uint8_t *buf;
	size_t len;

	save(dev, &buf, &len);
	st = virtio_state__unpack(NULL, len, buf);
	ck_assert_ptr_nonnull(st);
	ck_assert_uint_ge(st->n_queues, 1);
	drv.avail_idx = (uint16_t)st->queues[0]->last_avail;
	drv.used_seen = (uint16_t)st->queues[0]->used_idx;
	virtio_state__free_unpacked(st, NULL);
	free(buf);
}

static void soak_init(void)
{
	static const uint32_t nums[] = {1, 2, 4, 8, 16, 256, 3, 0, 512};
	uint32_t num = nums[soak_rand() % 9];
	uint64_t features = device_features();

	if (soak_rand() % 4 == 0)
		features ^= 1ull << (soak_rand() % 64);
	negotiate(features);
	wr32(R_QUEUE_SEL, (uint32_t)(soak_rand() % 8 ? 0 : soak_rand() % 3));
	wr32(R_QUEUE_NUM, num);
	set_queue_addrs(soak_rand() % 8 ? Q_DESC : soak_addr(),
			soak_rand() % 8 ? Q_AVAIL : soak_addr(),
			soak_rand() % 8 ? Q_USED : soak_addr());
	wr32(R_QUEUE_READY, 1);
	wr32(R_STATUS, ST_UP);
	drv.num = (uint16_t)(num && num <= 256 ? num : 1);
	if (soak_rand() % 4) {
		drv.avail_idx = 0;
		drv.used_seen = 0;
	}
}

static void soak_save_load(void)
{
	uint8_t *buf, *again;
	size_t len, alen;

	/* Whatever the driver did, what the device saves loads back. */
	save(dev, &buf, &len);
	ck_assert_int_eq(dev->desc->load(dev, buf, len, 1), 0);
	save(dev, &again, &alen);
	ck_assert_uint_eq(len, alen);
	ck_assert_mem_eq(buf, again, len);
	/* and a mangled copy either loads or changes nothing */
	if (len) {
		buf[soak_rand() % len] ^= (uint8_t)(1u << (soak_rand() % 8));
		if (dev->desc->load(dev, buf, len, 1) < 0) {
			uint8_t *after;
			size_t nafter;

			save(dev, &after, &nafter);
			ck_assert_uint_eq(nafter, alen);
			ck_assert_mem_eq(after, again, alen);
			free(after);
		}
	}
	free(buf);
	free(again);
}

static void soak_step(void)
{
	static const unsigned offs[] = {
		R_DEV_FEATURES_SEL, R_DRV_FEATURES, R_DRV_FEATURES_SEL,
		R_QUEUE_SEL, R_QUEUE_NUM, R_QUEUE_READY, R_QUEUE_NOTIFY,
		R_INT_ACK, R_STATUS, R_DESC_LO, R_DESC_HI, R_DRIVER_LO,
		R_DEVICE_LO,
	};
	uint16_t *avail = g2h(Q_AVAIL);
	unsigned n = drv.num ? drv.num : 1;

	switch (soak_rand() % 16) {
	case 0:
		if (soak_rand() % 16 == 0)
			soak_init();
		break;
	case 1: {	/* a random access anywhere in the block */
		static const unsigned lens[] = {1, 2, 4, 8, 3};
		unsigned off = (unsigned)(soak_rand() % 0x210);
		unsigned len = lens[soak_rand() % 5];
		uint64_t val = soak_rand();
		uint8_t b[8];

		memcpy(b, &val, sizeof(b));
		dev->desc->io(dev, (unsigned)(soak_rand() % 8 == 0), off, b,
			      len, soak_rand() % 2);
		break;
	}
	case 2: {	/* a register write with a plausible value */
		unsigned off = offs[soak_rand() % (sizeof(offs) /
						   sizeof(offs[0]))];
		uint32_t val = soak_rand() % 2 ? (uint32_t)(soak_rand() % 16) :
						 (uint32_t)soak_rand();

		if (off == R_STATUS && soak_rand() % 4)
			val = ST_UP | (val & ST_FAILED);
		wr32(off, val);
		break;
	}
	case 3:
	case 4:
	case 5:
		soak_desc(Q_DESC, 256);
		break;
	case 6:
		soak_desc(INDIRECT, 64);
		break;
	case 7:
		soak_header();
		break;
	case 8:
		soak_request();
		break;
	case 9: {	/* make entries available */
		if (soak_rand() % 4 == 0) {
			soak_resync();
			break;
		}
		unsigned k = 1 + (unsigned)(soak_rand() % 4);

		for (unsigned i = 0; i < k; i++) {
			avail[2 + drv.avail_idx % n] =
				(uint16_t)(soak_rand() % 8 ? soak_rand() % n :
							     soak_rand());
			drv.avail_idx++;
		}
		if (soak_rand() % 16 == 0)
			drv.avail_idx = (uint16_t)soak_rand();
		publish_avail_idx(drv.avail_idx);
		break;
	}
	case 10:
	case 11:
		kick();
		break;
	case 12:
		if (soak_rand() % 8 == 0)
			soak_save_load();
		break;
	case 13:
		wr32(R_INT_ACK, (uint32_t)soak_rand());
		break;
	case 14: {	/* the guest scribbles over its rings */
		uint8_t *ring = g2h(Q_AVAIL);

		ring[soak_rand() % 0x2000] = (uint8_t)soak_rand();
		break;
	}
	default:
		if (soak_rand() % 64 == 0)
			dev->desc->reset(dev);
		break;
	}
}

static void soak(uint64_t seed, unsigned steps)
{
	soak_rng_state = seed;
	driver_init();
	for (unsigned i = 0; i < steps; i++) {
		soak_step();
		/* the line always follows InterruptStatus */
		ck_assert(host.base.level[0] == (rd32(R_INT_STATUS) != 0));
		ck_assert_uint_eq(host.disk_bad, 0);
	}
	/* whatever happened, a reset and a clean start work */
	dev->desc->reset(dev);
	driver_init();
	assert_serves();
}

START_TEST(test_soak_blk)
{
	soak(0x5eed0001u, 60000);
	ck_assert_uint_gt(host.preads + host.pwrites, 0);
}
END_TEST

START_TEST(test_soak_rng)
{
	soak(0x5eed0002u, 30000);
	ck_assert_uint_gt(host.entropy_bytes, 0);
}
END_TEST

Suite *virtio_suite(void)
{
	Suite *s = suite_create("virtio");
	TCase *regs = tcase_create("registers");
	TCase *blk = tcase_create("blk");
	TCase *ro = tcase_create("blk-readonly");
	TCase *hostile = tcase_create("hostile");
	TCase *rng = tcase_create("rng");
	TCase *state = tcase_create("state");
	TCase *soaks = tcase_create("soak");
	TCase *soak_ro = tcase_create("soak-readonly");
	TCase *soak_rng = tcase_create("soak-rng");

	tcase_add_checked_fixture(regs, blk_setup, dev_teardown);
	tcase_add_test(regs, test_descriptors);
	tcase_add_test(regs, test_blk_identity);
	tcase_add_test(regs, test_register_widths);
	tcase_add_test(regs, test_negotiation);
	tcase_add_test(regs, test_status_rules);
	tcase_add_test(regs, test_reset);
	tcase_add_test(regs, test_queue_setup_checks);
	tcase_add_test(regs, test_interrupt_suppression);
	tcase_add_test(regs, test_construct_checks);
	suite_add_tcase(s, regs);

	tcase_add_checked_fixture(blk, blk_setup, dev_teardown);
	tcase_add_test(blk, test_blk_read_write);
	tcase_add_test(blk, test_blk_framing);
	tcase_add_test(blk, test_blk_flush_get_id);
	tcase_add_test(blk, test_blk_long_serial);
	tcase_add_test(blk, test_blk_out_of_range);
	tcase_add_test(blk, test_blk_bad_requests);
	tcase_add_test(blk, test_blk_backend);
	tcase_add_test(blk, test_blk_no_backend);
	tcase_add_test(blk, test_blk_disk_shrank);
	tcase_add_test(blk, test_ram_gone);
	tcase_add_test(blk, test_overlapping_buffers);
	tcase_add_test(blk, test_racing_guest);
	suite_add_tcase(s, blk);

	tcase_add_checked_fixture(ro, blk_ro_setup, dev_teardown);
	tcase_add_test(ro, test_blk_readonly);
	suite_add_tcase(s, ro);

	tcase_add_checked_fixture(hostile, blk_setup, dev_teardown);
	tcase_add_test(hostile, test_hostile_loops);
	tcase_add_test(hostile, test_hostile_indices);
	tcase_add_test(hostile, test_hostile_avail_idx);
	tcase_add_test(hostile, test_hostile_buffers);
	tcase_add_test(hostile, test_hostile_status);
	tcase_add_test(hostile, test_hostile_too_many);
	tcase_add_test(hostile, test_hostile_indirect);
	suite_add_tcase(s, hostile);

	tcase_add_checked_fixture(rng, rng_setup, dev_teardown);
	tcase_add_test(rng, test_rng_identity);
	tcase_add_test(rng, test_rng_fill);
	tcase_add_test(rng, test_rng_no_entropy_op);
	tcase_add_test(rng, test_no_service_before_driver_ok);
	tcase_add_test(rng, test_rng_used_wrap);
	tcase_set_timeout(rng, 30);
	suite_add_tcase(s, rng);

	tcase_add_checked_fixture(state, blk_setup, dev_teardown);
	tcase_add_test(state, test_save_load);
	tcase_add_test(state, test_load_refuses);
	suite_add_tcase(s, state);

	tcase_add_checked_fixture(soaks, blk_setup, dev_teardown);
	tcase_add_test(soaks, test_soak_blk);
	tcase_set_timeout(soaks, 60);
	suite_add_tcase(s, soaks);

	tcase_add_checked_fixture(soak_ro, blk_ro_setup, dev_teardown);
	tcase_add_test(soak_ro, test_soak_blk);
	tcase_set_timeout(soak_ro, 60);
	suite_add_tcase(s, soak_ro);

	tcase_add_checked_fixture(soak_rng, rng_setup, dev_teardown);
	tcase_add_test(soak_rng, test_soak_rng);
	tcase_set_timeout(soak_rng, 60);
	suite_add_tcase(s, soak_rng);

	return s;
}
