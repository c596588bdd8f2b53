/*
 * count: a guest for VM lifecycle stress tests (pause/resume, save/restore,
 * signals). One CPU increments a 64-bit counter in guest memory forever at
 * CPL 3, where it runs natively even when CPL 0 code is emulated; the BSP
 * serves the UART from CPL 3: '?' prints "count=<value>", 'q' prints
 * "count: bye" and exits with 0.
 *
 * With two or more CPUs in the MP table, the first AP counts and the other
 * APs are not started. With one CPU, the BSP counts and polls the UART
 * every 2^20 increments.
 */
#include "lib/smp.h"

#define UART_RBR    0x3f8
#define UART_LSR    0x3fd
#define UART_LSR_DR 0x01
#define POLL_EVERY  (1u << 20)

/* The counter: only the counting CPU writes it; aligned 64-bit loads
 * from the BSP are atomic. On its own cache line. */
static volatile uint64_t counter __attribute__((aligned(64)));

static void count_forever(void *arg)
{
	(void)arg;
	for (;;)
		counter++;
}

static void count_ap_main(unsigned apic_id)
{
	guest_enter_user(count_forever, NULL, smp_user_stack_top(apic_id));
}

/* Handle one received byte; returns only if it was not 'q'. */
static void serve_byte(char c)
{
	if (c == '?') {
		smp_kprintf("count=%lu\n", (unsigned long)counter);
	} else if (c == 'q') {
		smp_kprintf("count: bye\n");
		debug_exit(GUEST_EXIT_OK);
	}
}

static void serve_uart(void *arg)
{
	(void)arg;
	smp_kprintf("count: ready\n");
	for (;;) {
		while (!(inb(UART_LSR) & UART_LSR_DR))
			cpu_pause();
		serve_byte((char)inb(UART_RBR));
	}
}

static void count_and_serve(void *arg)
{
	(void)arg;
	smp_kprintf("count: ready\n");
	for (;;) {
		for (unsigned i = 0; i < POLL_EVERY; i++)
			counter++;
		if (inb(UART_LSR) & UART_LSR_DR)
			serve_byte((char)inb(UART_RBR));
	}
}

void guest_main(uint32_t mb_magic, uint32_t mbi_addr)
{
	(void)mbi_addr;
	if (mb_magic != MULTIBOOT_BOOTLOADER_MAGIC) {
		kprintf("bad multiboot magic\n");
		debug_exit(GUEST_EXIT_BADARG);
	}
	if (smp_init() < 0)
		debug_exit(GUEST_EXIT_BADARG); /* smp_init printed why */

	if (smp_mp.ncpus < 2) {
		counter = 1; /* the count is never 0 after "count: ready" */
		guest_enter_user(count_and_serve, NULL, guest_user_stack_top);
	}

	/* Start only the first AP in the table: keep a copy of the table
	 * info with the AP list cut down to the BSP and that AP. */
	unsigned ap = 0;
	for (unsigned i = 0; i < smp_mp.ncpus; i++)
		if (smp_mp.apic_ids[i] != smp_mp.bsp_apic_id) {
			ap = smp_mp.apic_ids[i];
			break;
		}
	smp_mp.apic_ids[0] = (uint8_t)smp_mp.bsp_apic_id;
	smp_mp.apic_ids[1] = (uint8_t)ap;
	smp_mp.ncpus = 2;
	smp_start_aps(count_ap_main);

	uint64_t t0 = rdtsc();
	while (counter == 0) {
		if (rdtsc() - t0 > SMP_TIMEOUT_TSC) {
			smp_kprintf("count: cpu %u is not counting\n", ap);
			debug_exit(3);
		}
		cpu_pause();
	}
	guest_enter_user(serve_uart, NULL, guest_user_stack_top);
}
