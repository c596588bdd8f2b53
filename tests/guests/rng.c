/*
 * rng: a virtio entropy device test (virtio-mmio, one split virtqueue).
 * Reads `count=` (default 4) requests of `bytes=` (default 64, at most
 * 256) bytes, each into its own buffer (a device may fill less than asked:
 * a request is repeated for the rest), checks that the bytes are not all
 * zero and that no two requests returned the same bytes, prints
 *   rng: ok <count * bytes> bytes
 * and exits with 0. Runs at CPL 0. See README.md for the contract.
 */
#include "lib/guest.h"
#include "lib/irq.h"
#include "lib/virtio.h"

#define RNG_MAX_REQS 16
#define RNG_MAX_BYTES 256
#define RNG_VECTOR 0x31

static struct virtio_dev dev;
static struct virtq vq __attribute__((aligned(4096)));
static uint8_t buf[RNG_MAX_REQS][RNG_MAX_BYTES] __attribute__((aligned(64)));

static void fail(void) __attribute__((noreturn));
static void fail(void)
{
	debug_exit(GUEST_EXIT_FAIL);
}

/* Fill buf[i] with n bytes; returns the number of requests it took. */
static unsigned rng_fill(unsigned i, uint32_t n)
{
	uint32_t got = 0;
	unsigned reqs = 0;

	while (got < n) {
		struct virtq_buf b = { buf[i] + got, n - got, 1 };
		uint32_t used;

		if (virtq_request(&dev, &vq, &b, 1, &used, "rng") < 0)
			fail();
		reqs++;
		if (used > n - got) {
			kprintf("rng: FAIL used length %u for a %u-byte buffer\n", used, n - got);
			fail();
		}
		if (used == 0 && reqs > 8) {
			kprintf("rng: FAIL the device returns no bytes\n");
			fail();
		}
		got += used;
	}
	return reqs;
}

void guest_main(uint32_t mb_magic, uint32_t mbi_addr)
{
	const struct multiboot_info *mbi = (const void *)(uintptr_t)mbi_addr;
	uint64_t count = 4, bytes = 64, irq = 0;

	if (mb_magic != MULTIBOOT_BOOTLOADER_MAGIC) {
		kprintf("bad multiboot magic\n");
		debug_exit(GUEST_EXIT_BADARG);
	}
	const char *cmdline = multiboot_cmdline(mbi);
	if (cmdline_get_u64(cmdline, "count", &count) < 0 || count < 2 ||
	    count > RNG_MAX_REQS ||
	    cmdline_get_u64(cmdline, "bytes", &bytes) < 0 || bytes < 8 ||
	    bytes > RNG_MAX_BYTES ||
	    cmdline_get_u64(cmdline, "irq", &irq) < 0 || irq > 1) {
		kprintf("rng: invalid count= (2-%u), bytes= (8-%u) or irq= (0-1)\n",
			RNG_MAX_REQS, RNG_MAX_BYTES);
		debug_exit(GUEST_EXIT_BADARG);
	}

	int r = virtio_find(cmdline, VIRTIO_ID_ENTROPY, &dev, "rng");
	if (r < 0)
		debug_exit(GUEST_EXIT_BADARG);
	if (r == 0) {
		kprintf("rng: FAIL no virtio entropy device (no virtio_mmio.device= token names one)\n");
		fail();
	}
	if (virtio_negotiate(&dev, 0, "rng") < 0 || virtq_setup(&dev, &vq, 0, "rng") < 0)
		fail();
	if (irq) {
		pic_mask_all();
		lapic_enable();
		if (virtio_use_irq(&dev, RNG_VECTOR, "rng") < 0)
			fail();
	}
	if (virtio_driver_ok(&dev, "rng") < 0)
		fail();

	unsigned reqs = 0;
	for (unsigned i = 0; i < count; i++)
		reqs += rng_fill(i, (uint32_t)bytes);

	int nonzero = 0;
	for (unsigned i = 0; i < count; i++)
		for (unsigned j = 0; j < bytes; j++)
			nonzero |= buf[i][j] != 0;
	if (!nonzero) {
		kprintf("rng: FAIL all %lu bytes are zero\n", (unsigned long)(count * bytes));
		fail();
	}
	for (unsigned i = 0; i < count; i++)
		for (unsigned j = i + 1; j < count; j++)
			if (memcmp(buf[i], buf[j], bytes) == 0) {
				kprintf("rng: FAIL requests %u and %u returned the same bytes\n", i, j);
				fail();
			}
	kprintf("rng: %u requests, first bytes:", reqs);
	for (unsigned j = 0; j < 8; j++)
		kprintf(" %02x", buf[0][j]);
	kprintf("\n");
	if (irq)
		virtio_expect_irqs(&dev, "rng");
	kprintf("rng: ok %lu bytes\n", (unsigned long)(count * bytes));
	debug_exit(GUEST_EXIT_OK);
}
