/* SPDX-License-Identifier: MIT */
/*
 * The Intel MultiProcessor Specification (1.4) table, so guests can find
 * their CPUs: a floating pointer structure and a configuration table in the
 * BIOS area at 0xF0000, with one processor entry per vCPU (local APIC id =
 * vCPU index), the ISA bus, the in-kernel I/O APIC (id = ncpus) and the
 * interrupt wiring KVM's default routing gives ISA IRQs (IRQ n -> IOAPIC
 * pin n).
 */
#include <errno.h>
#include <string.h>

#include "emt-worker/mptable.h"
#include "kdriver/kd.h"

#define MP_LAPIC_ADDR 0xfee00000u
#define MP_IOAPIC_ADDR 0xfec00000u
#define MP_CONFIG_ADDR (EMT_MPTABLE_ADDR + 16)

static void mp_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void mp_put32(uint8_t *p, uint32_t v)
{
	mp_put16(p, (uint16_t)v);
	mp_put16(p + 2, (uint16_t)(v >> 16));
}

static uint8_t mp_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)(0 - sum);
}

int emt_mptable_build(uint8_t *ram, uint64_t ram_size, unsigned ncpus)
{
	/* Header, processors, bus, I/O APIC, 15 ISA IRQs, 2 local. */
	size_t len = 44 + 20u * ncpus + 8 + 8 + 15 * 8 + 2 * 8;
	uint8_t *fp = ram + EMT_MPTABLE_ADDR;
	uint8_t *ct = ram + MP_CONFIG_ADDR;
	uint8_t *e = ct + 44;
	uint16_t count = 0;
	uint8_t ioapic_id = (uint8_t)ncpus;

	if (ncpus < 1 || ncpus > KD_MAX_VCPUS || ram_size < 0x100000 ||
	    MP_CONFIG_ADDR + len > 0x100000)
		return -EINVAL;
	memset(fp, 0, 16 + len);

	for (unsigned i = 0; i < ncpus; i++, e += 20, count++) {
		e[0] = 0;                         /* processor */
		e[1] = (uint8_t)i;                /* local APIC id */
		e[2] = 0x14;                      /* local APIC version */
		e[3] = 0x1 | (i == 0 ? 0x2 : 0);  /* enabled, BSP */
		mp_put32(e + 4, 0x600);           /* family 6 */
		mp_put32(e + 8, 0x201);           /* FPU, APIC */
	}
	e[0] = 1;                                 /* bus */
	e[1] = 0;
	memcpy(e + 2, "ISA   ", 6);
	e += 8;
	count++;
	e[0] = 2;                                 /* I/O APIC */
	e[1] = ioapic_id;
	e[2] = 0x11;
	e[3] = 0x1;
	mp_put32(e + 4, MP_IOAPIC_ADDR);
	e += 8;
	count++;
	for (unsigned irq = 0; irq < 16; irq++) {
		if (irq == 2)
			continue;                 /* the PIC cascade */
		e[0] = 3;                         /* I/O interrupt */
		e[1] = 0;                         /* INT */
		mp_put16(e + 2, 0);               /* conforms to the bus */
		e[4] = 0;                         /* ISA */
		e[5] = (uint8_t)irq;
		e[6] = ioapic_id;
		e[7] = (uint8_t)irq;
		e += 8;
		count++;
	}
	for (unsigned lint = 0; lint < 2; lint++) {
		e[0] = 4;                         /* local interrupt */
		e[1] = lint == 0 ? 3 : 1;         /* ExtINT, NMI */
		mp_put16(e + 2, 0);
		e[4] = 0;
		e[5] = 0;
		e[6] = 0xff;                      /* every local APIC */
		e[7] = (uint8_t)lint;
		e += 8;
		count++;
	}

	memcpy(ct, "PCMP", 4);
	mp_put16(ct + 4, (uint16_t)len);
	ct[6] = 4;                                /* spec revision 1.4 */
	memcpy(ct + 8, "BULKHEAD", 8);
	memcpy(ct + 16, "VIRTUAL PC  ", 12);
	mp_put16(ct + 34, count);
	mp_put32(ct + 36, MP_LAPIC_ADDR);
	ct[7] = mp_checksum(ct, len);

	memcpy(fp, "_MP_", 4);
	mp_put32(fp + 4, (uint32_t)MP_CONFIG_ADDR);
	fp[8] = 1;                                /* 16 bytes */
	fp[9] = 4;
	fp[10] = mp_checksum(fp, 16);
	return 0;
}
