/* SPDX-License-Identifier: MIT */
/*
 * emt-worker/boottab.h: the tables a guest reads at boot, written for the
 * VM's devices: the MP table (mptable.h) and the ACPI tables (acpi.h).
 * What each device announces comes from its manifest entry
 * (device-procs/manifest.h: acpi_hid, acpi_name, DEV_MF_POWEROFF). Built
 * at power-on and again at each reset, after conventional memory is
 * cleared.
 */
#ifndef BULKHEAD_EMT_WORKER_BOOTTAB_H
#define BULKHEAD_EMT_WORKER_BOOTTAB_H

#include <stddef.h>
#include <stdint.h>

#include "emt-worker/acpi.h"
#include "emt-worker/emt.h"

/* A machine for acpi_build, with the storage of its devices' AML names. */
#define EMT_ACPI_NAME_LEN 5u          /* 4 characters and a NUL */
struct emt_acpi_desc {
	struct acpi_machine m;
	char names[ACPI_MAX_DEVICES][EMT_ACPI_NAME_LEN]; /* m.devs[i].name */
};

/*
 * Describe the machine for acpi_build: ncpus vCPUs, the I/O APIC after
 * them (as the MP table numbers it) and devs[ndevs]. Returns 0, or
 * -EINVAL with the reason in err (a device kind the manifest does not
 * know, an instance past the name's one hex digit).
 */
int emt_acpi_machine(struct emt_acpi_desc *desc, unsigned ncpus,
		     const struct emt_dev *devs, unsigned ndevs,
		     char *err, size_t errlen);

/*
 * Write both tables into the VM's RAM for its vCPUs and devices (vm->devs
 * set up). Returns 0, or a negative errno with the reason in err.
 */
int emt_vm_boot_tables(struct emt_vm *vm, char *err, size_t errlen);

#endif
