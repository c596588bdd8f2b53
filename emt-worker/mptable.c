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
#define MP_CONFIG_ADDR (EMT_MPTABLE_ADDR + MP_FPS_SIZE)
/* Both structures must lie in the BIOS area, below 1 MiB (MP spec 4). */
#define MP_BIOS_AREA_END 0x100000

/* The floating pointer structure (MP spec 1.4, Table 4-1). */
#define MP_FPS_SIGNATURE "_MP_"
#define MP_FPS_SIZE 16
#define MP_FPS_PHYSPTR 4          /* the configuration table's address */
#define MP_FPS_LENGTH 8           /* in 16-byte units */
#define MP_FPS_SPEC_REV 9
#define MP_FPS_CHECKSUM 10

/* The configuration table header (Table 4-2). */
#define MP_CT_SIGNATURE "PCMP"
#define MP_CT_HDR_SIZE 44
#define MP_CT_LENGTH 4            /* base table length, header included */
#define MP_CT_SPEC_REV 6
#define MP_CT_CHECKSUM 7
#define MP_CT_OEM_ID 8            /* 8 bytes, space-padded */
#define MP_CT_OEM_ID_LEN 8
#define MP_CT_PRODUCT_ID 16       /* 12 bytes, space-padded */
#define MP_CT_PRODUCT_ID_LEN 12
#define MP_CT_ENTRY_COUNT 34
#define MP_CT_LAPIC_ADDR 36
#define MP_SPEC_REV_1_4 4         /* both structures' spec revision */

/* Entry types (Table 4-3), each entry's first byte, and their sizes. */
#define MP_ENTRY_PROCESSOR 0
#define MP_ENTRY_BUS 1
#define MP_ENTRY_IOAPIC 2
#define MP_ENTRY_IOINT 3          /* I/O interrupt assignment */
#define MP_ENTRY_LINT 4           /* local interrupt assignment */
#define MP_PROCESSOR_SIZE 20
#define MP_ENTRY_SIZE 8           /* every other kind */

/* Processor entries (Table 4-4; the feature flags as CPUID reports them,
 * Table 4-6). */
#define MP_CPU_LAPIC_VERSION 0x14
#define MP_CPU_EN 0x1             /* cpu flags: usable */
#define MP_CPU_BP 0x2             /* cpu flags: the bootstrap processor */
#define MP_CPU_SIGNATURE 0x600    /* family 6, model 0, stepping 0 */
#define MP_CPU_FEATURES 0x201     /* FPU (bit 0), APIC (bit 9) */

/* Bus entries (Tables 4-7 and 4-8). */
#define MP_BUS_ISA "ISA   "       /* 6 bytes, space-padded */
#define MP_BUS_TYPE_LEN 6
#define MP_ISA_BUS_ID 0           /* the only bus */

/* I/O APIC entries (Table 4-9). */
#define MP_IOAPIC_VERSION 0x11
#define MP_IOAPIC_EN 0x1

/* Interrupt entries (Tables 4-10 to 4-12). */
#define MP_INT_INT 0              /* vectored interrupt from the APIC */
#define MP_INT_NMI 1
#define MP_INT_EXTINT 3           /* from the 8259A, through the APIC */
#define MP_INT_CONFORMS 0         /* polarity and trigger of the bus */
#define MP_ALL_LAPICS 0xff        /* destination: every local APIC */
#define MP_ISA_IRQS 16
#define MP_ISA_CASCADE 2          /* the PIC cascade: no I/O APIC pin */
#define MP_LINTS 2                /* LINT0 (ExtINT) and LINT1 (NMI) */

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
	size_t len = MP_CT_HDR_SIZE + MP_PROCESSOR_SIZE * ncpus +
		     MP_ENTRY_SIZE + MP_ENTRY_SIZE +
		     (MP_ISA_IRQS - 1) * MP_ENTRY_SIZE +
		     MP_LINTS * MP_ENTRY_SIZE;
	uint8_t *fp = ram + EMT_MPTABLE_ADDR;
	uint8_t *ct = ram + MP_CONFIG_ADDR;
	uint8_t *e = ct + MP_CT_HDR_SIZE;
	uint16_t count = 0;
	uint8_t ioapic_id = (uint8_t)ncpus;

	if (ncpus < 1 || ncpus > KD_MAX_VCPUS || ram_size < MP_BIOS_AREA_END ||
	    MP_CONFIG_ADDR + len > MP_BIOS_AREA_END)
		return -EINVAL;
	memset(fp, 0, MP_FPS_SIZE + len);

	for (unsigned i = 0; i < ncpus; i++, e += MP_PROCESSOR_SIZE, count++) {
		e[0] = MP_ENTRY_PROCESSOR;
		e[1] = (uint8_t)i;                /* local APIC id */
		e[2] = MP_CPU_LAPIC_VERSION;
		e[3] = MP_CPU_EN | (i == 0 ? MP_CPU_BP : 0);
		mp_put32(e + 4, MP_CPU_SIGNATURE);
		mp_put32(e + 8, MP_CPU_FEATURES);
	}
	e[0] = MP_ENTRY_BUS;
	e[1] = MP_ISA_BUS_ID;
	memcpy(e + 2, MP_BUS_ISA, MP_BUS_TYPE_LEN);
	e += MP_ENTRY_SIZE;
	count++;
	e[0] = MP_ENTRY_IOAPIC;
	e[1] = ioapic_id;
	e[2] = MP_IOAPIC_VERSION;
	e[3] = MP_IOAPIC_EN;
	mp_put32(e + 4, MP_IOAPIC_ADDR);
	e += MP_ENTRY_SIZE;
	count++;
	for (unsigned irq = 0; irq < MP_ISA_IRQS; irq++) {
		if (irq == MP_ISA_CASCADE)
			continue;
		e[0] = MP_ENTRY_IOINT;
		e[1] = MP_INT_INT;
		mp_put16(e + 2, MP_INT_CONFORMS);
		e[4] = MP_ISA_BUS_ID;
		e[5] = (uint8_t)irq;
		e[6] = ioapic_id;
		e[7] = (uint8_t)irq;
		e += MP_ENTRY_SIZE;
		count++;
	}
	for (unsigned lint = 0; lint < MP_LINTS; lint++) {
		e[0] = MP_ENTRY_LINT;
		e[1] = lint == 0 ? MP_INT_EXTINT : MP_INT_NMI;
		mp_put16(e + 2, MP_INT_CONFORMS);
		e[4] = 0;
		e[5] = 0;
		e[6] = MP_ALL_LAPICS;
		e[7] = (uint8_t)lint;
		e += MP_ENTRY_SIZE;
		count++;
	}

	memcpy(ct, MP_CT_SIGNATURE, 4);
	mp_put16(ct + MP_CT_LENGTH, (uint16_t)len);
	ct[MP_CT_SPEC_REV] = MP_SPEC_REV_1_4;
	memcpy(ct + MP_CT_OEM_ID, "BULKHEAD", MP_CT_OEM_ID_LEN);
	memcpy(ct + MP_CT_PRODUCT_ID, "VIRTUAL PC  ", MP_CT_PRODUCT_ID_LEN);
	mp_put16(ct + MP_CT_ENTRY_COUNT, count);
	mp_put32(ct + MP_CT_LAPIC_ADDR, MP_LAPIC_ADDR);
	ct[MP_CT_CHECKSUM] = mp_checksum(ct, len);

	memcpy(fp, MP_FPS_SIGNATURE, 4);
	mp_put32(fp + MP_FPS_PHYSPTR, (uint32_t)MP_CONFIG_ADDR);
	fp[MP_FPS_LENGTH] = MP_FPS_SIZE / 16;
	fp[MP_FPS_SPEC_REV] = MP_SPEC_REV_1_4;
	fp[MP_FPS_CHECKSUM] = mp_checksum(fp, MP_FPS_SIZE);
	return 0;
}
