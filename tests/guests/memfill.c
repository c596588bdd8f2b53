/*
 * memfill: fills guest RAM with a known mix of pages for the save/restore
 * benchmark (bench/), then idles.
 *
 * Command line: zero=<MiB> pattern=<MiB> random=<MiB> [seed=<n>]
 * From 4 MiB up, in this order: `zero` MiB written with zeros (touched,
 * but zero pages to any saver that looks), `pattern` MiB of compressible
 * pages (each a 256-byte pseudo-random block repeated 16 times), `random`
 * MiB of pseudo-random pages (xorshift64*, incompressible). RAM above that
 * is left untouched. The three must fit in RAM above 4 MiB.
 *
 * The filling runs at CPL 3, where 64-bit code runs natively even on
 * hosts that emulate CPL 0 code. Then it prints
 *   memfill: ready zero=<MiB> pattern=<MiB> random=<MiB> at 0x<start>
 * and goes idle: it executes hlt at CPL 3, whose #GP (gate 13, which it
 * pointed at memfill_idle beforehand) brings it to CPL 0, where it halts
 * with interrupts enabled (PICs masked, no timer) forever.
 * Bad keys: "memfill: invalid ..." and exit 2 (status 5).
 */
#include "lib/guest.h"
#include "lib/irq.h"

#define MEMFILL_BASE (4ull << 20)
#define MIB (1ull << 20)
#define PAGE 4096u
#define BLOCK 256u

struct memfill_args {
	uint64_t zero, pattern, random; /* MiB */
	uint64_t seed;
};

static struct memfill_args args;

/* The #GP gate's target: halt with interrupts enabled, forever. */
void memfill_idle(void);
__asm__(".text\n"
	".globl memfill_idle\n"
	".type memfill_idle, @function\n"
	"memfill_idle:\n"
	"1:	sti\n"
	"	hlt\n"
	"	jmp 1b\n"
	".size memfill_idle, . - memfill_idle\n");

static uint64_t xorshift64s(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static void fill_words(uint64_t *p, uint64_t words, uint64_t v)
{
	__asm__ volatile("rep stosq" : "+D"(p), "+c"(words) : "a"(v) : "memory");
}

static void memfill_user(void *p)
{
	const struct memfill_args *a = p;
	uint64_t *mem = (uint64_t *)(uintptr_t)MEMFILL_BASE;
	uint64_t s = a->seed | 1;

	fill_words(mem, a->zero * MIB / 8, 0);
	mem += a->zero * MIB / 8;

	for (uint64_t pg = 0; pg < a->pattern * MIB / PAGE; pg++) {
		uint64_t block[BLOCK / 8];

		for (unsigned i = 0; i < BLOCK / 8; i++)
			block[i] = xorshift64s(&s);
		for (unsigned r = 0; r < PAGE / BLOCK; r++)
			for (unsigned i = 0; i < BLOCK / 8; i++)
				*mem++ = block[i];
	}

	for (uint64_t w = 0; w < a->random * MIB / 8; w++)
		*mem++ = xorshift64s(&s);

	kprintf("memfill: ready zero=%lu pattern=%lu random=%lu at 0x%lx\n",
		(unsigned long)a->zero, (unsigned long)a->pattern,
		(unsigned long)a->random, (unsigned long)MEMFILL_BASE);
	for (;;)
		__asm__ volatile("hlt"); /* #GP at CPL 3: on to memfill_idle */
}

/* Point the #GP gate (vector 13) at memfill_idle; the rest stays. */
static void memfill_hook_gp(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr;
	uint8_t *gate;
	uint64_t a = (uintptr_t)memfill_idle;

	__asm__ volatile("sidt %0" : "=m"(idtr));
	gate = (uint8_t *)(uintptr_t)idtr.base + 16 * 13;
	*(uint16_t *)(gate + 0) = (uint16_t)a;
	*(uint16_t *)(gate + 6) = (uint16_t)(a >> 16);
	*(uint32_t *)(gate + 8) = (uint32_t)(a >> 32);
}

static void invalid(const char *what)
{
	kprintf("memfill: invalid %s\n", what);
	debug_exit(GUEST_EXIT_BADARG);
}

void guest_main(uint32_t mb_magic, uint32_t mbi_addr)
{
	const struct multiboot_info *mbi = (const void *)(uintptr_t)mbi_addr;
	extern uint8_t __image_end[];

	if (mb_magic != MULTIBOOT_BOOTLOADER_MAGIC) {
		kprintf("bad multiboot magic\n");
		debug_exit(GUEST_EXIT_BADARG);
	}
	const char *cl = multiboot_cmdline(mbi);
	args.seed = 1;
	if (cmdline_get_u64(cl, "zero", &args.zero) < 0 ||
	    cmdline_get_u64(cl, "pattern", &args.pattern) < 0 ||
	    cmdline_get_u64(cl, "random", &args.random) < 0 ||
	    cmdline_get_u64(cl, "seed", &args.seed) < 0)
		invalid("zero=, pattern=, random= or seed=");
	if (!(mbi->flags & MBI_FLAG_MEM))
		invalid("boot information: no memory size");
	/* RAM ends at 1 MiB + mem_upper KiB (contiguous for our VMMs). */
	uint64_t ram_end = MIB + (uint64_t)mbi->mem_upper * 1024;
	uint64_t want = args.zero + args.pattern + args.random;
	if ((uintptr_t)__image_end > MEMFILL_BASE || want > 4096 ||
	    MEMFILL_BASE + want * MIB > ram_end)
		invalid("sizes: more than the RAM above 4 MiB");

	pic_mask_all();
	memfill_hook_gp();
	guest_enter_user(memfill_user, &args, guest_user_stack_top);
}
