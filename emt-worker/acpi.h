/* SPDX-License-Identifier: MIT */
/*
 * emt-worker/acpi.h: the ACPI tables of one VM (ACPI 6.5), built by the
 * worker into guest RAM from its device list, as Firecracker and Cloud
 * Hypervisor do: hardware-reduced ACPI, with
 *
 *   RSDP  at EMT_ACPI_ADDR, where guests look for it (0xE0000-0xFFFFF)
 *   XSDT  pointing at the FADT and the MADT
 *   FADT  hardware-reduced; the sleep control and status registers and
 *         the reset register of the ACPI PM device
 *   MADT  every vCPU's local APIC, the I/O APIC, an interrupt source
 *         override for each level-triggered ISA line, the local NMIs
 *   DSDT  one device per legacy device and per virtio-mmio transport
 *         (LNRO0005), each with its ports, memory and interrupts in _CRS;
 *         the power button (PNP0C0C) and the generic event device
 *         (ACPI0013) that notifies it; \_S5 for power-off
 *
 * The MP table (emt_mptable_build) stays for guests that read it.
 */
#ifndef BULKHEAD_ACPI_H
#define BULKHEAD_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where the tables go: the BIOS area below the MP table at 0xF0000. */
#define EMT_ACPI_ADDR 0xe0000ull
#define EMT_ACPI_END 0xf0000ull

#define ACPI_MAX_DEVICES 24u
#define ACPI_MAX_RES 4u
#define ACPI_MAX_IRQS 4u
#define ACPI_MAX_CPUS 255u

enum acpi_space { ACPI_SPACE_IO = 0, ACPI_SPACE_MEM = 1 };

struct acpi_res {
	enum acpi_space space;
	uint64_t base;
	uint64_t len;
};

/* One device of the DSDT. */
struct acpi_device {
	const char *name;         /* its AML name: 1-4 of A-Z 0-9 _, "COM1" */
	const char *hid;          /* an EISA id ("PNP0501") or a string id
				   * ("LNRO0005") */
	unsigned uid;
	struct acpi_res res[ACPI_MAX_RES];
	unsigned nres;
	uint32_t irqs[ACPI_MAX_IRQS];   /* GSIs */
	unsigned nirqs;
	bool level;               /* its lines are level-triggered */
};

/* The ACPI PM device: its registers and the power button's interrupt. */
struct acpi_pm {
	uint16_t sleep_control;   /* I/O port of SLEEP_CONTROL_REG */
	uint16_t sleep_status;    /* I/O port of SLEEP_STATUS_REG */
	uint16_t reset;           /* I/O port of RESET_REG */
	uint8_t reset_value;      /* what the guest writes there to reset */
	uint8_t s5_type;          /* SLP_TYP of \_S5 (power off) */
	uint32_t button_gsi;      /* the GED's interrupt: the power button */
};

struct acpi_machine {
	unsigned ncpus;
	uint8_t ioapic_id;
	struct acpi_device devs[ACPI_MAX_DEVICES];
	unsigned ndevs;
	bool has_pm;
	struct acpi_pm pm;
};

/*
 * Write the tables for m into guest RAM at [EMT_ACPI_ADDR, EMT_ACPI_END).
 * Returns 0 with the RSDP's address in *rsdp, or a negative errno with the
 * reason in err (a device name or id out of range, too many devices, the
 * tables too big).
 */
int acpi_build(uint8_t *ram, uint64_t ram_size, const struct acpi_machine *m,
	       uint64_t *rsdp, char *err, size_t errlen);

/* The sleep control register's bits are ACPI_PM_SLP_* in
 * device-procs/manifest.h: the ACPI PM device serves them. */

#endif
