/* SPDX-License-Identifier: MIT */
/* The boot tables for a VM's devices (boottab.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "device-procs/manifest.h"
#include "emt-worker/boottab.h"
#include "emt-worker/mptable.h"

/* A 3-character AML name takes the instance as its fourth, one hex digit. */
#define BOOTTAB_NAME_PREFIX 3u
#define BOOTTAB_MAX_INSTANCE 0xfu

/* The ACPI PM device: the FADT's registers and the power button's GSI.
 * They must be ports (the FADT's GAS here is I/O space). */
static int boottab_pm(struct acpi_machine *m, const struct emt_dev *d,
		      char *err, size_t errlen)
{
	const struct emt_region *rg = &d->regions[0];
	uint16_t base = (uint16_t)rg->base;

	if (rg->space != IPC_SPACE_PIO || rg->len < ACPI_PM_NREGS ||
	    rg->base + ACPI_PM_NREGS > UINT16_MAX + 1ull) {
		snprintf(err, errlen, "%s: its registers are not %u I/O ports",
			 d->label, ACPI_PM_NREGS);
		return -EINVAL;
	}
	m->has_pm = true;
	m->pm = (struct acpi_pm){
		.sleep_control = (uint16_t)(base + ACPI_PM_SLEEP_CONTROL),
		.sleep_status = (uint16_t)(base + ACPI_PM_SLEEP_STATUS),
		.reset = (uint16_t)(base + ACPI_PM_RESET),
		.reset_value = ACPI_PM_RESET_VALUE,
		.s5_type = ACPI_PM_S5_TYPE,
		.button_gsi = d->nirqs ? d->irqs[0] : 0,
	};
	return 0;
}

/* One device of the DSDT, named and placed as the manifest says. */
static int boottab_device(struct emt_acpi_desc *desc,
			  const struct dev_manifest *k, const struct emt_dev *d,
			  char *err, size_t errlen)
{
	struct acpi_machine *m = &desc->m;
	struct acpi_device *a;
	char *name;

	if (m->ndevs >= ACPI_MAX_DEVICES) {
		snprintf(err, errlen, "more than %u devices to announce",
			 ACPI_MAX_DEVICES);
		return -EINVAL;
	}
	a = &m->devs[m->ndevs];
	name = desc->names[m->ndevs];
	if (strlen(k->acpi_name) == BOOTTAB_NAME_PREFIX) {
		if (d->instance > BOOTTAB_MAX_INSTANCE) {
			snprintf(err, errlen, "%s: instance %u has no ACPI name "
				 "(at most %u)", d->label, d->instance,
				 BOOTTAB_MAX_INSTANCE);
			return -EINVAL;
		}
		snprintf(name, EMT_ACPI_NAME_LEN, "%s%X", k->acpi_name, d->instance);
	} else {
		snprintf(name, EMT_ACPI_NAME_LEN, "%s", k->acpi_name);
	}
	*a = (struct acpi_device){ .name = name, .hid = k->acpi_hid,
				   .uid = d->instance };
	for (unsigned i = 0; i < d->nregions && i < ACPI_MAX_RES; i++)
		a->res[a->nres++] = (struct acpi_res){
			.space = d->regions[i].space == IPC_SPACE_PIO ?
				 ACPI_SPACE_IO : ACPI_SPACE_MEM,
			.base = d->regions[i].base, .len = d->regions[i].len };
	for (unsigned i = 0; i < d->nirqs && i < ACPI_MAX_IRQS; i++)
		a->irqs[a->nirqs++] = d->irqs[i];
	m->ndevs++;
	return 0;
}

int emt_acpi_machine(struct emt_acpi_desc *desc, unsigned ncpus,
		     const struct emt_dev *devs, unsigned ndevs,
		     char *err, size_t errlen)
{
	struct acpi_machine *m = &desc->m;

	memset(desc, 0, sizeof(*desc));
	m->ncpus = ncpus;
	m->ioapic_id = (uint8_t)ncpus;  /* as emt_mptable_build numbers it */
	for (unsigned i = 0; i < ndevs; i++) {
		const struct emt_dev *d = &devs[i];
		const struct dev_manifest *k = dev_manifest_find(d->kind);
		int r;

		if (!k) {
			snprintf(err, errlen, "%s: the manifest has no kind "
				 "%.24s", d->label, d->kind);
			return -EINVAL;
		}
		r = 0;
		if ((k->flags & DEV_MF_POWEROFF) && d->nregions)
			r = boottab_pm(m, d, err, errlen);
		if (r == 0 && k->acpi_hid && k->acpi_name)
			r = boottab_device(desc, k, d, err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

int emt_vm_boot_tables(struct emt_vm *vm, char *err, size_t errlen)
{
	struct emt_acpi_desc desc;
	uint64_t rsdp;
	int r;

	r = emt_mptable_build(vm->ram, vm->ram_size, vm->ncpus);
	if (r < 0) {
		snprintf(err, errlen, "cannot write the MP table: %s",
			 strerror(-r));
		return r;
	}
	r = emt_acpi_machine(&desc, vm->ncpus, vm->devs, vm->ndevs, err,
			     errlen);
	if (r == 0)
		r = acpi_build(vm->ram, vm->ram_size, &desc.m, &rsdp, err,
			       errlen);
	return r;
}
