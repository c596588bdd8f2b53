/*
 * Bulkhead test guests: MP table parsing and application processor
 * start-up (see smp.h). Runs on the BSP at CPL 0, except smp_ap_entry,
 * which each AP reaches from ap.S.
 */
#include "smp.h"

#define LAPIC_ID      0x020
#define LAPIC_SVR     0x0f0
#define LAPIC_ICR_LO  0x300
#define LAPIC_ICR_HI  0x310
#define SVR_ENABLE    0x100
#define ICR_BUSY      (1u << 12) /* delivery status: send pending */
#define ICR_ASSERT    (1u << 14)
#define ICR_LEVEL     (1u << 15)
#define ICR_INIT      0x500
#define ICR_STARTUP   0x600

#define MSR_APIC_BASE 0x1b

#define MP_FPS_SIG    0x5f504d5fu /* "_MP_" */
#define MP_CFG_SIG    0x504d4350u /* "PCMP" */
#define MP_CFG_HDR    44

enum { MP_PROC, MP_BUS, MP_IOAPIC, MP_IOINT, MP_LINT };

#define IOMAP_BYTES (65536 / 8)

struct smp_mp_info smp_mp;
smp_spinlock_t smp_console_lock;

/* 64-bit TSS without the I/O bitmap (104 bytes). */
struct tss64_hdr {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));
_Static_assert(sizeof(struct tss64_hdr) == 104, "TSS layout");

/*
 * The APs' TSSs share one I/O permission bitmap (all ports allowed; see
 * guest.c for why it matters at CPL 3): each TSS segment runs from its own
 * header to the end of the common bitmap, which is at most 64 KiB away as
 * the I/O map base requires. In long mode the CPU never writes a TSS, so
 * the overlap is harmless.
 */
static struct {
	struct tss64_hdr tss[SMP_MAX_CPUS];
	uint8_t iomap[IOMAP_BYTES + 1]; /* + the all-ones terminator byte */
} __attribute__((packed, aligned(16))) ap_tss;

/* Per-AP GDT: the boot GDT's first five entries, the AP's TSS at SEL_TSS
 * and a 32-bit code segment for the trampoline at SEL_KCODE32. */
#define AP_GDT_ENTRIES (SEL_KCODE32 / 8 + 1)
static uint64_t ap_gdt[SMP_MAX_CPUS][AP_GDT_ENTRIES] __attribute__((aligned(16)));

struct desc_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

static struct desc_ptr bsp_idtr;
static void (*ap_main_fn)(unsigned apic_id);
static volatile uint32_t ap_checkin; /* APIC id of the AP that checked in */
static uint32_t lapic_base = 0xfee00000u;

extern uint64_t gdt[];                  /* boot.S */
extern uint8_t smp_stacks[];            /* ap.S */
extern uint8_t ap_tramp_start[], ap_tramp_end[];
extern uint8_t ap_tramp_gdtr[], ap_tramp_cr3[], ap_tramp_stack[];

void smp_ap_entry(void) __attribute__((noreturn));

/* ---- small helpers -------------------------------------------------------- */

/* The trampoline copy's address of a symbol inside ap_tramp_start..end. */
static void *tramp_ptr(const uint8_t *sym)
{
	return (void *)(AP_TRAMP_ADDR + ((uintptr_t)sym - (uintptr_t)ap_tramp_start));
}

/* A pointer to low physical memory. Laundered through asm: GCC treats
 * constant addresses below 4 KiB (the BIOS data area) as null pointer
 * arithmetic and warns about every access. */
static const uint8_t *phys(uintptr_t a)
{
	__asm__("" : "+r"(a));
	return (const uint8_t *)a;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint8_t sum8(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static uint32_t lapic_read(uint32_t reg)
{
	return mmio_read32(lapic_base + reg);
}

static void lapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(lapic_base + reg, v);
}

unsigned smp_apic_id(void)
{
	return lapic_read(LAPIC_ID) >> 24;
}

void smp_delay_us(uint64_t us)
{
	uint64_t t0 = rdtsc();
	while (rdtsc() - t0 < us * SMP_TSC_PER_US)
		cpu_pause();
}

int smp_kprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	smp_spin_lock(&smp_console_lock);
	int n = kvprintf(fmt, ap);
	smp_spin_unlock(&smp_console_lock);
	va_end(ap);
	return n;
}

static uint8_t *ap_stack_base(unsigned apic_id)
{
	return smp_stacks + (size_t)apic_id * (SMP_KSTACK_SIZE + SMP_USTACK_SIZE);
}

void *smp_user_stack_top(unsigned apic_id)
{
	return ap_stack_base(apic_id) + SMP_KSTACK_SIZE + SMP_USTACK_SIZE;
}

/* ---- MP table ------------------------------------------------------------- */

static int mp_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int mp_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kprintf("smp: ");
	kvprintf(fmt, ap);
	kprintf("\n");
	va_end(ap);
	return -1;
}

/* First valid floating pointer structure in [base, base + len): 16-byte
 * aligned, "_MP_", length 1 paragraph, bytes summing to 0. *bad is set to
 * the first signature match that failed the other checks. */
static uint32_t mp_scan(uint32_t base, uint32_t len, uint32_t *bad)
{
	for (uint32_t a = base; a + 16 <= base + len; a += 16) {
		const uint8_t *p = phys(a);
		if (*(const volatile uint32_t *)p != MP_FPS_SIG)
			continue;
		if (p[8] == 1 && sum8(p, 16) == 0)
			return a;
		if (!*bad)
			*bad = a;
	}
	return 0;
}

static uint32_t mp_find_fps(uint32_t *bad)
{
	const uint8_t *bda = phys(0x400);
	uint32_t ebda = (uint32_t)rd16(bda + 0x0e) << 4;
	uint32_t base_kib = rd16(bda + 0x13);
	uint32_t a = 0;

	/* Only trust BIOS data area values that look sane (a VMM without a
	 * BIOS may leave it zero). */
	if (ebda >= 0x80000 && ebda < 0xa0000)
		a = mp_scan(ebda, 1024, bad);
	if (!a) {
		if (base_kib < 512 || base_kib > 640)
			base_kib = 640;
		a = mp_scan(base_kib * 1024 - 1024, 1024, bad);
	}
	if (!a)
		a = mp_scan(0xf0000, 0x10000, bad);
	return a;
}

static void copy_id(char *dst, const uint8_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = (char)src[i];
	dst[n] = '\0';
}

/* The floating pointer structure: found, a known revision, pointing to a
 * configuration table. */
static int mp_read_fps(struct smp_mp_info *mp)
{
	uint32_t bad = 0;

	mp->fps_addr = mp_find_fps(&bad);
	if (!mp->fps_addr) {
		if (bad)
			return mp_fail("_MP_ at 0x%x has a bad length or checksum", bad);
		return mp_fail("no MP floating pointer structure found");
	}

	const uint8_t *fps = phys(mp->fps_addr);
	mp->fps_rev = fps[9];
	if (mp->fps_rev != 1 && mp->fps_rev != 4)
		return mp_fail("MP floating pointer: unknown spec revision %u", fps[9]);
	if (fps[11])
		return mp_fail("MP floating pointer: default configuration %u, no table "
			       "(not supported)", fps[11]);
	mp->config_addr = rd32(fps + 4);
	if (!mp->config_addr)
		return mp_fail("MP floating pointer: null configuration table pointer");
	return 0;
}

/* The configuration table's header: signature, length, revision and
 * checksums; its base length into *len. */
static int mp_read_config(struct smp_mp_info *mp, unsigned *len)
{
	const uint8_t *cfg = phys(mp->config_addr);
	if (rd32(cfg) != MP_CFG_SIG)
		return mp_fail("no PCMP signature at 0x%x", mp->config_addr);
	*len = rd16(cfg + 4);
	if (*len < MP_CFG_HDR)
		return mp_fail("MP config table: base length %u too short", *len);
	mp->config_rev = cfg[6];
	if (mp->config_rev != 1 && mp->config_rev != 4)
		return mp_fail("MP config table: unknown spec revision %u", cfg[6]);
	if (sum8(cfg, *len))
		return mp_fail("MP config table: bad checksum (sum 0x%x over %u bytes)",
			       sum8(cfg, *len), *len);
	unsigned ext_len = rd16(cfg + 40);
	if (ext_len && (uint8_t)(sum8(cfg + *len, ext_len) + cfg[42]))
		return mp_fail("MP config table: bad extended table checksum");
	copy_id(mp->oem_id, cfg + 8, 8);
	copy_id(mp->product_id, cfg + 16, 12);
	mp->nentries = rd16(cfg + 34);
	mp->lapic_addr = rd32(cfg + 36);
	return 0;
}

/* A processor entry: an enabled CPU's APIC id (below SMP_MAX_CPUS, listed
 * once, marked in seen) is recorded; *nbsp counts those flagged BSP. */
static int mp_read_proc(struct smp_mp_info *mp, const uint8_t *e,
			uint32_t *seen, unsigned *nbsp)
{
	unsigned id = e[1], flags = e[3];
	mp->nproc++;
	if ((flags & 2) && !(flags & 1))
		return mp_fail("MP config table: BSP (apic id %u) is disabled", id);
	if (!(flags & 1))
		return 0;
	if (id >= SMP_MAX_CPUS)
		return mp_fail("MP config table: apic id %u (supported: < %u)",
			       id, SMP_MAX_CPUS);
	if (seen[id / 32] & (1u << (id % 32)))
		return mp_fail("MP config table: apic id %u listed twice", id);
	seen[id / 32] |= 1u << (id % 32);
	mp->apic_ids[mp->ncpus++] = (uint8_t)id;
	if (flags & 2) {
		(*nbsp)++;
		mp->bsp_apic_id = id;
	}
	return 0;
}

/* The table's entries, each inside the base length, which they must fill;
 * *nbsp counts the enabled processors flagged BSP. */
static int mp_read_entries(struct smp_mp_info *mp, unsigned len,
			   unsigned *nbsp)
{
	const uint8_t *cfg = phys(mp->config_addr);
	uint32_t seen[SMP_MAX_CPUS / 32] = { 0 };

	unsigned off = MP_CFG_HDR;
	for (unsigned i = 0; i < mp->nentries; i++) {
		if (off >= len)
			return mp_fail("MP config table: entry %u starts past the base "
				       "length %u", i, len);
		const uint8_t *e = cfg + off;
		unsigned size = e[0] == MP_PROC ? 20 : e[0] <= MP_LINT ? 8 : 0;
		if (!size)
			return mp_fail("MP config table: entry %u has unknown type %u", i, e[0]);
		if (off + size > len)
			return mp_fail("MP config table: entry %u (type %u) ends past the "
				       "base length %u", i, e[0], len);
		switch (e[0]) {
		case MP_PROC:
			if (mp_read_proc(mp, e, seen, nbsp) < 0)
				return -1;
			break;
		case MP_BUS:
			mp->nbus++;
			if (!memcmp(e + 2, "ISA   ", 6))
				mp->isa_bus = 1;
			break;
		case MP_IOAPIC:
			mp->nioapic++;
			if ((e[3] & 1) && !mp->ioapic_addr) {
				mp->ioapic_id = e[1];
				mp->ioapic_addr = rd32(e + 4);
			}
			break;
		case MP_IOINT:
			mp->nirq++;
			break;
		case MP_LINT:
			mp->nlint++;
			break;
		}
		off += size;
	}
	if (off != len)
		return mp_fail("MP config table: base length %u but the %u entries end at %u",
			       len, mp->nentries, off);
	return 0;
}

int smp_init(void)
{
	struct smp_mp_info *mp = &smp_mp;
	unsigned len = 0, nbsp = 0;

	memset(mp, 0, sizeof(*mp));
	if (mp_read_fps(mp) < 0 || mp_read_config(mp, &len) < 0 ||
	    mp_read_entries(mp, len, &nbsp) < 0)
		return -1;
	if (nbsp != 1)
		return mp_fail("MP config table: %u enabled processors flagged BSP", nbsp);

	uint32_t msr_base = (uint32_t)(rdmsr(MSR_APIC_BASE) & 0xfffff000u);
	if (mp->lapic_addr != msr_base)
		return mp_fail("MP config table: local APIC at 0x%x but IA32_APIC_BASE "
			       "says 0x%x", mp->lapic_addr, msr_base);
	lapic_base = mp->lapic_addr;
	unsigned me = smp_apic_id();
	if (me != mp->bsp_apic_id)
		return mp_fail("MP config table: BSP is apic id %u but this CPU is %u",
			       mp->bsp_apic_id, me);
	return 0;
}

/* ---- AP start-up ---------------------------------------------------------- */

static void lapic_wait_idle(void)
{
	uint64_t t0 = rdtsc();
	while ((lapic_read(LAPIC_ICR_LO) & ICR_BUSY) && rdtsc() - t0 < SMP_TIMEOUT_TSC)
		cpu_pause();
}

static void lapic_ipi(unsigned dest, uint32_t lo)
{
	lapic_wait_idle();
	lapic_write(LAPIC_ICR_HI, (uint32_t)dest << 24);
	lapic_write(LAPIC_ICR_LO, lo);
	lapic_wait_idle();
}

static void ap_prepare(unsigned id)
{
	struct tss64_hdr *t = &ap_tss.tss[id];
	uint64_t base = (uintptr_t)t;
	uint64_t limit = (uintptr_t)&ap_tss.iomap[IOMAP_BYTES] - base;
	uint64_t *g = ap_gdt[id];

	memset(t, 0, sizeof(*t));
	t->rsp[0] = (uintptr_t)(ap_stack_base(id) + SMP_KSTACK_SIZE);
	t->iomap_base = (uint16_t)((uintptr_t)ap_tss.iomap - base);

	for (unsigned i = 0; i < SEL_TSS / 8; i++)
		g[i] = gdt[i];
	g[SEL_TSS / 8] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
			 (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
	g[SEL_TSS / 8 + 1] = base >> 32;
	g[SEL_KCODE32 / 8] = 0x00cf9a000000ffffull; /* 32-bit code, 4 GiB flat */

	uint8_t *gdtr = tramp_ptr(ap_tramp_gdtr);
	uint16_t glimit = sizeof(ap_gdt[0]) - 1;
	uint32_t gbase = (uint32_t)(uintptr_t)g;
	memcpy(gdtr, &glimit, 2);
	memcpy(gdtr + 2, &gbase, 4);
	uint64_t stack = (uintptr_t)(ap_stack_base(id) + SMP_KSTACK_SIZE);
	memcpy(tramp_ptr(ap_tramp_stack), &stack, 8);
}

/* INIT, STARTUP, STARTUP (MP spec 1.4, appendix B.4), then wait for the AP
 * to check in. Returns 0, or -1 on timeout. */
static int ap_start(unsigned id)
{
	const uint32_t vector = AP_TRAMP_ADDR >> 12;

	ap_prepare(id);
	__atomic_store_n(&ap_checkin, 0xffffffffu, __ATOMIC_SEQ_CST);

	lapic_ipi(id, ICR_INIT | ICR_LEVEL | ICR_ASSERT);
	lapic_ipi(id, ICR_INIT | ICR_LEVEL);
	smp_delay_us(10000);
	for (int i = 0; i < 2; i++) {
		lapic_ipi(id, ICR_STARTUP | ICR_ASSERT | vector);
		smp_delay_us(200);
	}

	uint64_t t0 = rdtsc();
	while (__atomic_load_n(&ap_checkin, __ATOMIC_ACQUIRE) == 0xffffffffu) {
		if (rdtsc() - t0 > SMP_TIMEOUT_TSC)
			return -1;
		cpu_pause();
	}
	return 0;
}

unsigned smp_start_aps(void (*ap_main)(unsigned apic_id))
{
	unsigned online = 1;

	if (smp_mp.ncpus <= 1)
		return online;

	size_t tlen = (size_t)(ap_tramp_end - ap_tramp_start);
	if (tlen > 4096) {
		smp_kprintf("smp: trampoline too large (%zu bytes)\n", tlen);
		debug_exit(GUEST_EXIT_FAIL);
	}
	memcpy((void *)(uintptr_t)AP_TRAMP_ADDR, ap_tramp_start, tlen);
	uint64_t cr3;
	__asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
	uint32_t cr3_32 = (uint32_t)cr3; /* boot.S's tables are below 4 GiB */
	memcpy(tramp_ptr(ap_tramp_cr3), &cr3_32, 4);
	__asm__ volatile("sidt %0" : "=m"(bsp_idtr));
	ap_main_fn = ap_main;
	ap_tss.iomap[IOMAP_BYTES] = 0xff;

	/* Software-enable the local APIC (spurious vector 0xff; IF stays 0). */
	lapic_write(LAPIC_SVR, lapic_read(LAPIC_SVR) | SVR_ENABLE | 0xff);
	__asm__ volatile("" ::: "memory");

	for (unsigned i = 0; i < smp_mp.ncpus; i++) {
		unsigned id = smp_mp.apic_ids[i];
		if (id == smp_mp.bsp_apic_id)
			continue;
		if (ap_start(id) < 0) {
			smp_kprintf("smp: cpu %u did not start\n", id);
			debug_exit(3);
		}
		if (ap_checkin != id) {
			smp_kprintf("smp: cpu %u started but reports apic id %u\n", id,
				    ap_checkin);
			debug_exit(3);
		}
		online++;
	}
	return online;
}

/* Each AP, from ap_entry64: 64-bit, CPL 0, IF=0, on its own stack. */
void smp_ap_entry(void)
{
	__asm__ volatile("lidt %0" : : "m"(bsp_idtr));
	__asm__ volatile("ltr %w0" : : "r"((uint16_t)SEL_TSS));
	unsigned id = smp_apic_id();
	__atomic_store_n(&ap_checkin, id, __ATOMIC_RELEASE);
	ap_main_fn(id);
	for (;;)
		__asm__ volatile("cli; hlt");
}
