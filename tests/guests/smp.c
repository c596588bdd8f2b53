/*
 * smp: multiprocessor start-up test. Finds the MP table, starts every
 * application processor it lists with INIT / STARTUP / STARTUP, and has
 * each CPU print one "cpu <apic id>: hello" line. Exits with 0 once every
 * CPU has arrived, 2 if the MP table is missing or malformed, 3 if an AP
 * does not come up in time.
 */
#include "lib/smp.h"

static volatile uint32_t arrived;          /* APs that printed their line */
static volatile uint8_t ap_arrived[SMP_MAX_CPUS];

static void ap_main(unsigned apic_id)
{
	smp_kprintf("cpu %u: hello\n", apic_id);
	ap_arrived[apic_id] = 1;
	__atomic_fetch_add(&arrived, 1, __ATOMIC_RELEASE);
	/* returning halts this CPU (cli; hlt) */
}

void guest_main(uint32_t mb_magic, uint32_t mbi_addr)
{
	const struct smp_mp_info *mp = &smp_mp;

	(void)mbi_addr;
	kprintf("smp: bsp up\n");
	if (mb_magic != MULTIBOOT_BOOTLOADER_MAGIC) {
		kprintf("bad multiboot magic\n");
		debug_exit(GUEST_EXIT_BADARG);
	}
	if (smp_init() < 0)
		debug_exit(GUEST_EXIT_BADARG); /* smp_init printed why */
	kprintf("smp: mp table at 0x%x, %u cpus\n", mp->fps_addr, mp->ncpus);
	kprintf("smp: config at 0x%x, rev %u, oem '%s', product '%s', lapic 0x%x, "
		"%u entries (%u cpu, %u bus, %u ioapic, %u irq, %u lint)\n",
		mp->config_addr, mp->config_rev, mp->oem_id, mp->product_id,
		mp->lapic_addr, mp->nentries, mp->nproc, mp->nbus, mp->nioapic,
		mp->nirq, mp->nlint);

	smp_kprintf("cpu %u: hello\n", smp_apic_id());
	unsigned n = smp_start_aps(ap_main);

	uint64_t t0 = rdtsc();
	while (__atomic_load_n(&arrived, __ATOMIC_ACQUIRE) < n - 1) {
		if (rdtsc() - t0 > SMP_TIMEOUT_TSC) {
			for (unsigned i = 0; i < mp->ncpus; i++) {
				unsigned id = mp->apic_ids[i];
				if (id != mp->bsp_apic_id && !ap_arrived[id]) {
					smp_kprintf("smp: cpu %u did not start\n", id);
					break;
				}
			}
			debug_exit(3);
		}
		cpu_pause();
	}
	smp_kprintf("smp: all %u cpus up\n", n);
	debug_exit(GUEST_EXIT_OK);
}
