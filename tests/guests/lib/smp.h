/*
 * Bulkhead test guests: multiprocessor support (lib/smp.c, lib/ap.S).
 *
 * The BSP finds the Intel MultiProcessor Specification 1.4 table
 * (smp_init), then starts the application processors listed there, one
 * at a time, with INIT / STARTUP / STARTUP through its local APIC
 * (smp_start_aps). Each AP runs a real-mode trampoline copied to
 * AP_TRAMP_ADDR, switches to long mode with the BSP's page tables and a
 * copy of the boot GDT, and calls ap_main(apic_id) at CPL 0 with IF=0 on
 * a stack of its own. Per-CPU data is indexed by local APIC id, so ids
 * must be below SMP_MAX_CPUS.
 *
 * Linked only into the guests that need it (see module.mk). Also included
 * by ap.S (only the constants).
 */
#ifndef BULKHEAD_GUEST_SMP_H
#define BULKHEAD_GUEST_SMP_H

#include "guest.h"

#define SMP_MAX_CPUS    32      /* local APIC ids 0..31 */
#define AP_TRAMP_ADDR   0x8000  /* trampoline page; STARTUP vector 0x08 */
#define SEL_KCODE32     0x38    /* 32-bit code, only in the AP GDTs */
#define SMP_KSTACK_SIZE 8192    /* per-AP CPL 0 stack (also its TSS.RSP0) */
#define SMP_USTACK_SIZE 8192    /* per-AP stack for guest_enter_user */

#ifndef __ASSEMBLER__

/* What smp_init() learned from the MP table. */
struct smp_mp_info {
	uint32_t fps_addr;     /* MP floating pointer structure */
	uint32_t config_addr;  /* MP configuration table */
	uint32_t lapic_addr;   /* from the configuration table */
	uint8_t fps_rev;       /* spec revision: 1 (1.1) or 4 (1.4) */
	uint8_t config_rev;
	char oem_id[9];        /* NUL terminated, trailing blanks kept */
	char product_id[13];
	unsigned nentries;     /* base table entries */
	unsigned nproc, nbus, nioapic, nirq, nlint; /* entries by type */
	unsigned ncpus;        /* enabled processor entries */
	unsigned bsp_apic_id;
	uint8_t apic_ids[SMP_MAX_CPUS]; /* enabled processors, table order */
	unsigned ioapic_id;    /* first enabled I/O APIC entry, if any */
	uint32_t ioapic_addr;  /* 0: no enabled I/O APIC entry */
	char isa_bus;          /* 1 if a bus entry says "ISA" */
};

extern struct smp_mp_info smp_mp;

/*
 * Find the MP floating pointer structure (first KiB of the EBDA, last KiB
 * of base memory, then 0xF0000-0xFFFFF; 16-byte aligned, signature,
 * length 1 and checksum), check it and the base configuration table
 * strictly (signatures, lengths, checksums, revisions, every entry's
 * type and size, exactly one enabled BSP whose id is this CPU's local
 * APIC id, the local APIC address against IA32_APIC_BASE) and fill
 * smp_mp. Returns 0, or -1 after printing one "smp: <reason>" line.
 * Call at CPL 0 (it reads IA32_APIC_BASE).
 */
int smp_init(void);

/*
 * Start every enabled non-BSP processor of smp_mp, in table order: INIT
 * (assert, deassert), 10 ms, STARTUP, 200 us, STARTUP, 200 us, then wait
 * up to SMP_TIMEOUT_TSC for the AP to check in from 64-bit code. Each AP
 * then calls ap_main(its local APIC id) at CPL 0 with IF=0 on its own
 * stack, with its own TSS (RSP0 = top of that stack, I/O bitmap allowing
 * every port) and the BSP's IDT; when ap_main returns the AP halts (cli;
 * hlt). An AP that does not check in makes this print "smp: cpu <id> did
 * not start" and debug_exit(3). Returns the number of CPUs running, the
 * BSP included. Call once, at CPL 0, after smp_init() succeeded.
 */
unsigned smp_start_aps(void (*ap_main)(unsigned apic_id));

/* This CPU's local APIC id (LAPIC ID register bits 31:24). */
unsigned smp_apic_id(void);

/* Top of the guest_enter_user stack reserved for an AP (16-byte aligned). */
void *smp_user_stack_top(unsigned apic_id);

/* Delays and timeouts count TSC ticks, assuming a TSC of at most 4 GHz
 * (so a delay lasts at least as long as asked). The start-up timeout is
 * 10^10 ticks: 2.5 s at 4 GHz, 5 s at 2 GHz. */
#define SMP_TSC_PER_US  4000ull
#define SMP_TIMEOUT_TSC 10000000000ull
void smp_delay_us(uint64_t us);

/* ---- locking ----------------------------------------------------------- */

typedef struct {
	volatile uint32_t locked;
} smp_spinlock_t;

static inline void smp_spin_lock(smp_spinlock_t *l)
{
	while (__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE))
		while (l->locked)
			cpu_pause();
}

static inline void smp_spin_unlock(smp_spinlock_t *l)
{
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}

/* kprintf under a lock shared by all CPUs (the UART is polled byte by
 * byte, so unlocked output from two CPUs interleaves). Works at CPL 3. */
extern smp_spinlock_t smp_console_lock;
int smp_kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* !__ASSEMBLER__ */
#endif
