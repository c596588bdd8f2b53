/*
 * blk: a virtio block device test (virtio-mmio, one split virtqueue).
 *
 * Read-write disk (default): writes a pattern derived from `seed=` to
 * sectors 1-64 (8 requests of 8 sectors), FLUSH, reads them back into
 * another buffer (4 requests of 16 sectors, each split over two data
 * descriptors) and compares; then GET_ID, sector 0, and
 *   blk: ok capacity=<sectors> id='<id>'
 * With ro=1 the disk must offer VIRTIO_BLK_F_RO: one write to sector 1
 * must fail with VIRTIO_BLK_S_IOERR and leave the sector as it was.
 * disk=N (default 0) tests the N-th block device of the command line.
 * Runs at CPL 0. See README.md for the contract.
 */
#include "lib/guest.h"
#include "lib/irq.h"
#include "lib/virtio.h"
#include "blkpattern.h"

#define SECTOR 512u
#define FIRST 1u           /* first sector written */
#define COUNT 64u          /* sectors written */
#define WRITE_CHUNK 8u     /* sectors per write request */
#define READ_CHUNK 16u     /* sectors per read request (two descriptors) */
#define ID_BYTES 20u
#define BLK_VECTOR 0x30

/* Feature bits and request types / status values (virtio 1.x, 5.2). */
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

struct blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

static struct virtio_dev dev;
static struct virtq vq __attribute__((aligned(4096)));
static struct blk_req_hdr hdr __attribute__((aligned(16)));
static volatile uint8_t status;
static uint8_t wbuf[COUNT * SECTOR] __attribute__((aligned(4096)));
static uint8_t rbuf[COUNT * SECTOR] __attribute__((aligned(4096)));
static uint8_t sbuf[SECTOR] __attribute__((aligned(512)));
static char id[ID_BYTES + 1];

static void fill_sector(uint8_t *buf, uint64_t seed, uint64_t sector)
{
	uint64_t *w = (uint64_t *)buf, v = blk_pattern_base(seed, sector);

	for (unsigned i = 0; i < SECTOR / 8; i++, v += BLK_PATTERN_STEP)
		w[i] = v;
}

/*
 * Bulk clear and compare with string instructions: at CPL 0 this guest
 * may run in an instruction emulator, which repeats a string instruction
 * far faster than it runs a loop.
 */
static void zero_words(void *p, size_t words)
{
	__asm__ volatile("rep stosq" : "+D"(p), "+c"(words) : "a"(0ull) : "memory");
}

/* Index of the first 64-bit word that differs, or `words` if none does. */
static size_t cmp_words(const void *a, const void *b, size_t words)
{
	const uint64_t *pa = a;
	size_t left = words;
	uint8_t equal;

	if (!words)
		return 0;
	__asm__ volatile("repe cmpsq; sete %[eq]"
			 : "+S"(pa), "+D"(b), "+c"(left), [eq] "=r"(equal)
			 : : "memory", "cc");
	return equal ? words : (size_t)(pa - (const uint64_t *)a) - 1;
}

static void fail(void) __attribute__((noreturn));
static void fail(void)
{
	debug_exit(GUEST_EXIT_FAIL);
}

static const char *status_name(uint8_t s)
{
	switch (s) {
	case VIRTIO_BLK_S_OK: return "OK";
	case VIRTIO_BLK_S_IOERR: return "IOERR";
	case VIRTIO_BLK_S_UNSUPP: return "UNSUPP";
	case 0xff: return "not written";
	default: return "unknown";
	}
}

/*
 * One request: the header, up to two data buffers (data_len bytes split
 * in `pieces` equal parts), the status byte. Returns the status and the
 * used length in *used.
 */
static uint8_t blk_request(uint32_t type, uint64_t sector, void *data, uint32_t data_len,
			   unsigned pieces, uint32_t *used)
{
	struct virtq_buf b[4];
	unsigned n = 0;
	int in = type != VIRTIO_BLK_T_OUT;

	hdr.type = type;
	hdr.reserved = 0;
	hdr.sector = sector;
	status = 0xff;
	b[n++] = (struct virtq_buf){ &hdr, sizeof(hdr), 0 };
	if (data_len) {
		uint32_t part = data_len / pieces;
		for (unsigned i = 0; i < pieces; i++)
			b[n++] = (struct virtq_buf){ (uint8_t *)data + i * part, part, in };
	}
	b[n++] = (struct virtq_buf){ (void *)&status, 1, 1 };
	if (virtq_request(&dev, &vq, b, n, used, "blk") < 0)
		fail();
	return status;
}

static void blk_write(uint64_t sector, void *data, uint32_t nsect, uint8_t expect)
{
	uint32_t used;
	uint8_t st = blk_request(VIRTIO_BLK_T_OUT, sector, data, nsect * SECTOR, 1, &used);

	if (st != expect) {
		kprintf("blk: FAIL write of %u sectors at %lu: status %u (%s), expected %u (%s)\n",
			nsect, (unsigned long)sector, st, status_name(st), expect,
			status_name(expect));
		fail();
	}
}

static void blk_read(uint64_t sector, void *data, uint32_t nsect, unsigned pieces)
{
	uint32_t used;
	uint8_t st = blk_request(VIRTIO_BLK_T_IN, sector, data, nsect * SECTOR, pieces, &used);

	if (st != VIRTIO_BLK_S_OK) {
		kprintf("blk: FAIL read of %u sectors at %lu: status %u (%s)\n", nsect,
			(unsigned long)sector, st, status_name(st));
		fail();
	}
	if (used != nsect * SECTOR + 1) {
		kprintf("blk: FAIL read of %u sectors at %lu: used length %u, expected %u\n",
			nsect, (unsigned long)sector, used, nsect * SECTOR + 1);
		fail();
	}
}

static void blk_flush(void)
{
	uint32_t used;
	uint8_t st = blk_request(VIRTIO_BLK_T_FLUSH, 0, NULL, 0, 0, &used);

	if (st != VIRTIO_BLK_S_OK) {
		kprintf("blk: FAIL flush: status %u (%s)\n", st, status_name(st));
		fail();
	}
}

static void blk_get_id(void)
{
	static uint8_t raw[ID_BYTES] __attribute__((aligned(16)));
	uint32_t used;
	uint8_t st;

	memset(raw, 0, sizeof(raw));
	st = blk_request(VIRTIO_BLK_T_GET_ID, 0, raw, ID_BYTES, 1, &used);
	if (st != VIRTIO_BLK_S_OK) {
		kprintf("blk: FAIL GET_ID: status %u (%s)\n", st, status_name(st));
		fail();
	}
	/* Up to 20 bytes, NUL-padded, not terminated when all 20 are used. */
	unsigned i;
	for (i = 0; i < ID_BYTES && raw[i]; i++)
		id[i] = raw[i] >= 0x20 && raw[i] < 0x7f ? (char)raw[i] : '?';
	id[i] = '\0';
	kprintf("blk: id '%s'\n", id);
}

/* rbuf must equal wbuf, which holds what was written. */
static void check_pattern(void)
{
	size_t words = sizeof(rbuf) / 8, i = cmp_words(rbuf, wbuf, words);

	if (i != words) {
		kprintf("blk: FAIL sector %lu byte %lu: read 0x%016lx, wrote 0x%016lx\n",
			(unsigned long)(FIRST + i * 8 / SECTOR), (unsigned long)(i * 8 % SECTOR),
			(unsigned long)((uint64_t *)rbuf)[i], (unsigned long)((uint64_t *)wbuf)[i]);
		fail();
	}
}

static void read_write_test(uint64_t seed)
{
	if (dev.offered & (1ull << VIRTIO_BLK_F_RO)) {
		kprintf("blk: FAIL the disk is read-only (VIRTIO_BLK_F_RO) but ro=1 was not given\n");
		fail();
	}
	if (!(dev.features & (1ull << VIRTIO_BLK_F_FLUSH))) {
		kprintf("blk: FAIL VIRTIO_BLK_F_FLUSH not offered\n");
		fail();
	}
	for (unsigned s = 0; s < COUNT; s++)
		fill_sector(wbuf + s * SECTOR, seed, FIRST + s);
	for (unsigned s = 0; s < COUNT; s += WRITE_CHUNK)
		blk_write(FIRST + s, wbuf + s * SECTOR, WRITE_CHUNK, VIRTIO_BLK_S_OK);
	blk_flush();
	zero_words(rbuf, sizeof(rbuf) / 8);
	for (unsigned s = 0; s < COUNT; s += READ_CHUNK)
		blk_read(FIRST + s, rbuf + s * SECTOR, READ_CHUNK, 2);
	check_pattern();
	kprintf("blk: wrote, flushed and read back sectors %u-%u (seed %lu)\n", FIRST,
		FIRST + COUNT - 1, (unsigned long)seed);
}

static void read_only_test(uint64_t seed)
{
	if (!(dev.offered & (1ull << VIRTIO_BLK_F_RO))) {
		kprintf("blk: FAIL ro=1 but the disk does not offer VIRTIO_BLK_F_RO\n");
		fail();
	}
	blk_read(FIRST, rbuf, 1, 1);
	fill_sector(wbuf, seed, FIRST);
	if (cmp_words(wbuf, rbuf, SECTOR / 8) == SECTOR / 8)
		wbuf[0] ^= 0xff; /* make sure the write would change something */
	blk_write(FIRST, wbuf, 1, VIRTIO_BLK_S_IOERR);
	kprintf("blk: read-only disk refused the write\n");
	blk_read(FIRST, sbuf, 1, 1);
	if (cmp_words(sbuf, rbuf, SECTOR / 8) != SECTOR / 8) {
		kprintf("blk: FAIL sector %u changed on the read-only disk\n", FIRST);
		fail();
	}
}

void guest_main(uint32_t mb_magic, uint32_t mbi_addr)
{
	const struct multiboot_info *mbi = (const void *)(uintptr_t)mbi_addr;
	uint64_t seed = 1, ro = 0, irq = 0, disk = 0;

	if (mb_magic != MULTIBOOT_BOOTLOADER_MAGIC) {
		kprintf("bad multiboot magic\n");
		debug_exit(GUEST_EXIT_BADARG);
	}
	const char *cmdline = multiboot_cmdline(mbi);
	if (cmdline_get_u64(cmdline, "seed", &seed) < 0 ||
	    cmdline_get_u64(cmdline, "ro", &ro) < 0 || ro > 1 ||
	    cmdline_get_u64(cmdline, "irq", &irq) < 0 || irq > 1 ||
	    cmdline_get_u64(cmdline, "disk", &disk) < 0 || disk > 15) {
		kprintf("blk: invalid seed=, ro=, irq= or disk=\n");
		debug_exit(GUEST_EXIT_BADARG);
	}

	int r = virtio_find_nth(cmdline, VIRTIO_ID_BLOCK, (unsigned)disk, &dev,
				"blk");
	if (r < 0)
		debug_exit(GUEST_EXIT_BADARG);
	if (r == 0) {
		kprintf("blk: FAIL no virtio block device (no virtio_mmio.device= token names one)\n");
		fail();
	}
	if (virtio_negotiate(&dev, (1ull << VIRTIO_BLK_F_RO) | (1ull << VIRTIO_BLK_F_FLUSH),
			     "blk") < 0 ||
	    virtq_setup(&dev, &vq, 0, "blk") < 0)
		fail();
	if (irq) {
		pic_mask_all();
		lapic_enable();
		if (virtio_use_irq(&dev, BLK_VECTOR, "blk") < 0)
			fail();
	}
	if (virtio_driver_ok(&dev, "blk") < 0)
		fail();

	uint64_t capacity = virtio_config_read64(&dev, 0);
	kprintf("blk: features 0x%lx (offered 0x%lx), queue size %u, capacity %lu sectors\n",
		(unsigned long)dev.features, (unsigned long)dev.offered, vq.num,
		(unsigned long)capacity);
	if (capacity < FIRST + COUNT) {
		kprintf("blk: FAIL capacity %lu sectors, need at least %u\n",
			(unsigned long)capacity, FIRST + COUNT);
		fail();
	}

	if (ro)
		read_only_test(seed);
	else
		read_write_test(seed);

	blk_get_id();
	blk_read(0, sbuf, 1, 1);
	kprintf("blk: sector 0:");
	for (unsigned i = 0; i < 16; i++)
		kprintf(" %02x", sbuf[i]);
	kprintf("\n");
	if (irq)
		virtio_expect_irqs(&dev, "blk");
	kprintf("blk: ok capacity=%lu id='%s'\n", (unsigned long)capacity, id);
	debug_exit(GUEST_EXIT_OK);
}
