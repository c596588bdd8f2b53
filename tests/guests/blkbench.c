/*
 * blkbench: virtio-blk throughput benchmark (bench/). Finds the block
 * device from the virtio_mmio.device= tokens (lib/virtio.c), negotiates
 * at CPL 0, then drops to CPL 3 (where 64-bit code runs natively even on
 * hosts that emulate CPL 0 code) for four timed phases:
 *
 *   seqwrite  the first `mib` MiB of the disk, `seqkb` KiB per request
 *   seqread   the same range, same request size
 *   randwrite `rand` requests of 4 KiB at pseudo-random 4 KiB-aligned
 *             offsets anywhere on the disk
 *   randread  `rand` such reads (other offsets)
 *
 * with up to `qd` requests in flight, completions polled from the used
 * ring (VIRTQ_AVAIL_F_NO_INTERRUPT set: no interrupts), the device
 * notified only when it has not set VIRTQ_USED_F_NO_NOTIFY. Nothing is
 * flushed. Each phase prints
 *   blkbench: <phase> bytes=<n> requests=<n> tsc=<TSC ticks>
 * (MB/s = bytes / (ticks / TSC Hz); bench/ converts with the host's TSC
 * rate), then "blkbench: done" and exit 0 (status 1).
 *
 * Command line: [mib=<n> (16)] [seqkb=<4-512, multiple of 4> (128)]
 * [rand=<n> (4096)] [qd=<1-32> (4)] [seed=<n> (1)] and the device's
 * virtio_mmio.device= token. Failures: "blkbench: FAIL <why>", exit 1;
 * bad keys: "blkbench: invalid ...", exit 2. Needs RAM up to 32 MiB.
 */
#include "lib/guest.h"
#include "lib/virtio.h"

#define SECTOR 512u
#define QSIZE 128u              /* descriptors; 3 per request */
#define MAX_QD 32u
#define DATA_BASE (16ull << 20)  /* request buffers: qd * seqkb KiB */
#define DATA_MAX (16ull << 20)

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

struct blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

/* A split virtqueue of QSIZE entries (alignments 16, 2, 4). */
struct bq {
	struct virtq_desc desc[QSIZE] __attribute__((aligned(16)));
	struct {
		uint16_t flags;
		uint16_t idx;
		uint16_t ring[QSIZE];
		uint16_t used_event;
	} avail __attribute__((aligned(16)));
	struct {
		uint16_t flags;
		uint16_t idx;
		struct virtq_used_elem ring[QSIZE];
		uint16_t avail_event;
	} used __attribute__((aligned(16)));
};

struct bench_args {
	uint64_t mib, seqkb, rand, qd, seed;
	uint64_t capacity; /* sectors */
};

static struct virtio_dev dev;
static struct bq q __attribute__((aligned(4096)));
static struct blk_req_hdr hdrs[MAX_QD] __attribute__((aligned(16)));
static volatile uint8_t stat[MAX_QD];
static struct bench_args args;
static uint16_t avail_idx, used_seen;

static inline void barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

/* Orders our ring stores before the used->flags read and the notify. */
static inline void full_barrier(void)
{
	__asm__ volatile("lock; addl $0, (%%rsp)" ::: "memory", "cc");
}

static void fail(const char *why, uint64_t v) __attribute__((noreturn));
static void fail(const char *why, uint64_t v)
{
	kprintf("blkbench: FAIL %s (%lu)\n", why, (unsigned long)v);
	debug_exit(GUEST_EXIT_FAIL);
}

/* Put request slot k (descriptors 3k..3k+2) on the available ring. */
static void submit(unsigned k, uint32_t type, uint64_t sector, uint32_t len)
{
	struct virtq_desc *d = &q.desc[3 * k];
	uint8_t *buf = (uint8_t *)(uintptr_t)(DATA_BASE + (uint64_t)k * args.seqkb * 1024);

	hdrs[k].type = type;
	hdrs[k].reserved = 0;
	hdrs[k].sector = sector;
	stat[k] = 0xff;
	d[0] = (struct virtq_desc){ (uintptr_t)&hdrs[k], sizeof(hdrs[k]), VIRTQ_DESC_F_NEXT,
				    (uint16_t)(3 * k + 1) };
	d[1] = (struct virtq_desc){ (uintptr_t)buf, len,
				    (uint16_t)(VIRTQ_DESC_F_NEXT |
					       (type == VIRTIO_BLK_T_IN ? VIRTQ_DESC_F_WRITE : 0)),
				    (uint16_t)(3 * k + 2) };
	d[2] = (struct virtq_desc){ (uintptr_t)&stat[k], 1, VIRTQ_DESC_F_WRITE, 0 };
	q.avail.ring[avail_idx % QSIZE] = (uint16_t)(3 * k);
	barrier();
	avail_idx++;
	*(volatile uint16_t *)&q.avail.idx = avail_idx;
}

static void notify(void)
{
	full_barrier();
	if (!(*(volatile uint16_t *)&q.used.flags & VIRTQ_USED_F_NO_NOTIFY))
		virtio_write(&dev, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

/* Sector of request i of a phase: sequential, or pseudo-random 4 KiB. */
static uint64_t next_sector(int random, uint64_t i, uint64_t *rs, uint32_t len)
{
	if (!random)
		return i * (len / SECTOR);
	uint64_t x = *rs;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*rs = x;
	return (x * 0x2545f4914f6cdd1dull >> 11) % (args.capacity / 8) * 8;
}

/* One phase: n requests of len bytes, at most qd in flight. */
static void phase(const char *name, uint32_t type, int random, uint64_t n, uint32_t len)
{
	uint64_t rs = args.seed * 0x9e3779b97f4a7c15ull + type + 1, issued = 0, done = 0;
	unsigned inflight = 0;
	uint64_t t0 = rdtsc();

	while (issued < n && inflight < args.qd) {
		submit(inflight, type, next_sector(random, issued, &rs, len), len);
		inflight++;
		issued++;
	}
	notify();
	while (done < n) {
		uint16_t now = *(volatile uint16_t *)&q.used.idx;
		if (now == used_seen) {
			cpu_pause();
			if (rdtsc() - t0 > 20 * VIRTIO_TIMEOUT_TSC)
				fail("a phase timed out; requests done", done);
			continue;
		}
		barrier();
		int again = 0;
		while (used_seen != now) {
			struct virtq_used_elem e = q.used.ring[used_seen % QSIZE];
			unsigned k = e.id / 3;
			used_seen++;
			done++;
			if (e.id % 3 || k >= args.qd)
				fail("used element not a request head", e.id);
			if (stat[k] != 0)
				fail("request status", stat[k]);
			if (issued < n) {
				submit(k, type, next_sector(random, issued, &rs, len), len);
				issued++;
				again = 1;
			}
		}
		if (again)
			notify();
	}
	uint64_t t1 = rdtsc();
	kprintf("blkbench: %s bytes=%lu requests=%lu tsc=%lu\n", name,
		(unsigned long)(n * len), (unsigned long)n, (unsigned long)(t1 - t0));
}

static void blkbench_user(void *p)
{
	const struct bench_args *a = p;
	uint32_t seq = (uint32_t)(a->seqkb * 1024);
	uint64_t nseq = a->mib * (1ull << 20) / seq;

	/* Something other than zeros to write. */
	uint64_t *w = (uint64_t *)(uintptr_t)DATA_BASE, s = a->seed | 1;
	for (uint64_t i = 0; i < a->qd * seq / 8; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		w[i] = s;
	}
	phase("seqwrite", VIRTIO_BLK_T_OUT, 0, nseq, seq);
	phase("seqread", VIRTIO_BLK_T_IN, 0, nseq, seq);
	phase("randwrite", VIRTIO_BLK_T_OUT, 1, a->rand, 4096);
	phase("randread", VIRTIO_BLK_T_IN, 1, a->rand, 4096);
	kprintf("blkbench: done\n");
	debug_exit(GUEST_EXIT_OK);
}

static int queue_setup(void)
{
	virtio_write(&dev, VIRTIO_MMIO_QUEUE_SEL, 0);
	uint32_t max = virtio_read(&dev, VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (max < QSIZE) {
		kprintf("blkbench: FAIL QueueNumMax %u, need %u\n", max, QSIZE);
		return -1;
	}
	virtio_write(&dev, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	virtio_write(&dev, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)(uintptr_t)q.desc);
	virtio_write(&dev, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	virtio_write(&dev, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)(uintptr_t)&q.avail);
	virtio_write(&dev, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
	virtio_write(&dev, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)(uintptr_t)&q.used);
	virtio_write(&dev, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
	q.avail.flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	virtio_write(&dev, VIRTIO_MMIO_QUEUE_READY, 1);
	if (virtio_read(&dev, VIRTIO_MMIO_QUEUE_READY) != 1) {
		kprintf("blkbench: FAIL the queue did not become ready\n");
		return -1;
	}
	return 0;
}

static void invalid(const char *what)
{
	kprintf("blkbench: invalid %s\n", what);
	debug_exit(GUEST_EXIT_BADARG);
}

void guest_main(uint32_t mb_magic, uint32_t mbi_addr)
{
	const struct multiboot_info *mbi = (const void *)(uintptr_t)mbi_addr;

	if (mb_magic != MULTIBOOT_BOOTLOADER_MAGIC) {
		kprintf("bad multiboot magic\n");
		debug_exit(GUEST_EXIT_BADARG);
	}
	const char *cl = multiboot_cmdline(mbi);
	args.mib = 16;
	args.seqkb = 128;
	args.rand = 4096;
	args.qd = 4;
	args.seed = 1;
	if (cmdline_get_u64(cl, "mib", &args.mib) < 0 ||
	    cmdline_get_u64(cl, "seqkb", &args.seqkb) < 0 ||
	    cmdline_get_u64(cl, "rand", &args.rand) < 0 ||
	    cmdline_get_u64(cl, "qd", &args.qd) < 0 ||
	    cmdline_get_u64(cl, "seed", &args.seed) < 0)
		invalid("mib=, seqkb=, rand=, qd= or seed=");
	if (args.seqkb < 4 || args.seqkb > 512 || args.seqkb % 4)
		invalid("seqkb= (4-512, a multiple of 4)");
	if (args.qd < 1 || args.qd > MAX_QD || args.qd * args.seqkb * 1024 > DATA_MAX)
		invalid("qd= (1-32, qd * seqkb at most 16 MiB)");
	if (!(mbi->flags & MBI_FLAG_MEM) ||
	    (1ull << 20) + (uint64_t)mbi->mem_upper * 1024 < DATA_BASE + DATA_MAX)
		invalid("RAM size (32 MiB needed)");

	int r = virtio_find(cl, VIRTIO_ID_BLOCK, &dev, "blkbench");
	if (r < 0)
		debug_exit(GUEST_EXIT_BADARG);
	if (r == 0)
		fail("no virtio block device on the command line", 0);
	if (virtio_negotiate(&dev, 0, "blkbench") < 0 || queue_setup() < 0 ||
	    virtio_driver_ok(&dev, "blkbench") < 0)
		debug_exit(GUEST_EXIT_FAIL);
	args.capacity = virtio_config_read64(&dev, 0);
	if (args.capacity < args.mib * 2048 || args.capacity < 8)
		fail("disk smaller than mib= (sectors)", args.capacity);
	kprintf("blkbench: capacity %lu sectors, queue %u, qd %lu, seq %lu KiB x %lu MiB, "
		"rand %lu x 4 KiB\n", (unsigned long)args.capacity, QSIZE,
		(unsigned long)args.qd, (unsigned long)args.seqkb, (unsigned long)args.mib,
		(unsigned long)args.rand);
	guest_enter_user(blkbench_user, &args, guest_user_stack_top);
}
