/*
 * nullio: the exit-cost benchmark guest. Performs `count` port (or MMIO)
 * accesses in a tight loop at CPL 3, where 64-bit code runs natively even
 * when CPL 0 code would be emulated, so each iteration costs one VM exit
 * and little else.
 *
 * Command line (multiboot): port=<n> count=<n> [width=1|2|4] [read=0|1]
 *                           [mmio=<guest-physical address>] [cpl=3|0]
 *                           [check=0|1]
 * check=1: after the loop, one read of the same register, printed as
 * "nullio: read back N" (the null device answers with the writes it has
 * seen: posted writes must all be there).
 */
#include "lib/guest.h"

struct nullio_args {
	uint64_t port;
	uint64_t count;
	uint64_t width;
	uint64_t read;
	uint64_t mmio; /* 0: port I/O */
	uint64_t cpl;  /* 3 (default) or 0: where the loop runs */
	uint64_t check;
};

static void nullio_user(void *p)
{
	const struct nullio_args *a = p;
	const uint64_t count = a->count;
	const uint16_t port = (uint16_t)a->port;
	uint64_t t0 = rdtsc();

	if (a->mmio) {
		volatile uint32_t *reg = (volatile uint32_t *)(uintptr_t)a->mmio;
		if (a->read)
			for (uint64_t i = 0; i < count; i++)
				(void)*reg;
		else
			for (uint64_t i = 0; i < count; i++)
				*reg = (uint32_t)i;
	} else if (a->read) {
		switch (a->width) {
		case 1:
			for (uint64_t i = 0; i < count; i++)
				(void)inb(port);
			break;
		case 2:
			for (uint64_t i = 0; i < count; i++)
				(void)inw(port);
			break;
		default:
			for (uint64_t i = 0; i < count; i++)
				(void)inl(port);
			break;
		}
	} else {
		switch (a->width) {
		case 1:
			for (uint64_t i = 0; i < count; i++)
				outb(port, (uint8_t)i);
			break;
		case 2:
			for (uint64_t i = 0; i < count; i++)
				outw(port, (uint16_t)i);
			break;
		default:
			for (uint64_t i = 0; i < count; i++)
				outl(port, (uint32_t)i);
			break;
		}
	}

	uint64_t t1 = rdtsc();
	kprintf("nullio: tsc_delta=%lu cpl=%u\n", (unsigned long)(t1 - t0), cpu_cpl());
	if (a->check) {
		uint64_t v;

		if (a->mmio)
			v = *(volatile uint32_t *)(uintptr_t)a->mmio;
		else if (a->width == 1)
			v = inb(port);
		else if (a->width == 2)
			v = inw(port);
		else
			v = inl(port);
		kprintf("nullio: read back %lu\n", (unsigned long)v);
	}
	kprintf("nullio: done\n");
	debug_exit(GUEST_EXIT_OK);
}

static struct nullio_args args;

static void need(int r, const char *key, int required)
{
	if (r < 0 || (r == 0 && required)) {
		kprintf("nullio: %s %s=\n", r < 0 ? "invalid" : "missing", key);
		debug_exit(GUEST_EXIT_BADARG);
	}
}

void guest_main(uint32_t mb_magic, uint32_t mbi_addr)
{
	if (mb_magic != MULTIBOOT_BOOTLOADER_MAGIC) {
		kprintf("bad multiboot magic\n");
		debug_exit(GUEST_EXIT_BADARG);
	}
	const char *cl = multiboot_cmdline((const void *)(uintptr_t)mbi_addr);

	args.width = 1;
	args.cpl = 3;
	need(cmdline_get_u64(cl, "mmio", &args.mmio), "mmio", 0);
	need(cmdline_get_u64(cl, "port", &args.port), "port", !args.mmio);
	need(cmdline_get_u64(cl, "count", &args.count), "count", 1);
	need(cmdline_get_u64(cl, "width", &args.width), "width", 0);
	need(cmdline_get_u64(cl, "read", &args.read), "read", 0);
	need(cmdline_get_u64(cl, "cpl", &args.cpl), "cpl", 0);
	need(cmdline_get_u64(cl, "check", &args.check), "check", 0);
	if (args.cpl != 0 && args.cpl != 3)
		need(-1, "cpl", 1);
	if (args.port > 0xffff)
		need(-1, "port", 1);
	if (args.width != 1 && args.width != 2 && args.width != 4)
		need(-1, "width", 1);
	if (args.read > 1)
		need(-1, "read", 1);
	/* Only the first 4 GiB are mapped; MMIO accesses are 32 bits wide. */
	if (args.mmio && (args.mmio > 0xfffffffcull || (args.mmio & 3)))
		need(-1, "mmio", 1);

	if (args.mmio)
		kprintf("nullio: mmio=0x%lx count=%lu\n", (unsigned long)args.mmio,
			(unsigned long)args.count);
	else
		kprintf("nullio: port=0x%x count=%lu\n", (unsigned)args.port,
			(unsigned long)args.count);
	kprintf("nullio: width=%u op=%s\n", args.mmio ? 4 : (unsigned)args.width,
		args.mmio ? (args.read ? "read" : "write") : (args.read ? "in" : "out"));

	if (args.cpl == 0)
		nullio_user(&args); /* for comparison: emulated on some hosts */
	guest_enter_user(nullio_user, &args, guest_user_stack_top);
}
