/* SPDX-License-Identifier: MIT */
/*
 * The boot tables for a VM's devices (emt-worker/boottab.c): what each
 * device announces, from its manifest entry (names completed with the
 * instance, the ACPI PM device's registers in the FADT's fields, devices
 * without an ACPI entry left out), and the refusals.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device-procs/manifest.h"
#include "emt-worker/boottab.h"
#include "emt-worker/mptable.h"
#include "tests/unit/suites.h"

static struct emt_dev devs[8];
static unsigned ndevs;
static struct emt_acpi_desc desc;
static char err[256];

static void add(const struct dev_manifest *k, unsigned instance,
		uint64_t base, uint32_t irq)
{
	struct emt_dev *d = &devs[ndevs++];

	memset(d, 0, sizeof(*d));
	snprintf(d->kind, sizeof(d->kind), "%s", k->name);
	snprintf(d->label, sizeof(d->label), "%s#%u", k->name, instance);
	d->instance = instance;
	d->regions[0] = (struct emt_region){
		.space = (uint8_t)k->regions[0].space, .base = base,
		.len = k->regions[0].len };
	d->nregions = 1;
	if (irq) {
		d->irqs[0] = irq;
		d->nirqs = 1;
	}
}

static void machine(void)
{
	ndevs = 0;
	add(&dev_mf_uart, 0, 0x3f8, 4);
	add(&dev_mf_debugexit, 0, 0xf4, 0);
	add(&dev_mf_acpi_pm, 0, 0x600, 23);
	add(&dev_mf_virtio_blk, 0, DEV_VIRTIO_BASE, 5);
	add(&dev_mf_virtio_blk, 1, DEV_VIRTIO_BASE + DEV_VIRTIO_SLOT, 6);
	add(&dev_mf_virtio_rng, 0, DEV_VIRTIO_BASE + 2 * DEV_VIRTIO_SLOT, 7);
}

static const struct acpi_device *find(const char *name)
{
	for (unsigned i = 0; i < desc.m.ndevs; i++)
		if (strcmp(desc.m.devs[i].name, name) == 0)
			return &desc.m.devs[i];
	return NULL;
}

START_TEST(test_boottab_devices)
{
	const struct acpi_device *d;

	machine();
	ck_assert_int_eq(emt_acpi_machine(&desc, 2, devs, ndevs, err,
					  sizeof(err)), 0);
	ck_assert_uint_eq(desc.m.ncpus, 2);
	ck_assert_uint_eq(desc.m.ioapic_id, 2);
	/* uart, two disks, the rng: debug-exit and acpi-pm are not devices
	 * of the DSDT */
	ck_assert_uint_eq(desc.m.ndevs, 4);
	d = find("COM1");
	ck_assert_ptr_nonnull(d);
	ck_assert_str_eq(d->hid, "PNP0501");
	ck_assert_uint_eq(d->res[0].space, ACPI_SPACE_IO);
	ck_assert_uint_eq(d->res[0].base, 0x3f8);
	ck_assert_uint_eq(d->irqs[0], 4);
	d = find("VBK1");
	ck_assert_ptr_nonnull(d);
	ck_assert_str_eq(d->hid, "LNRO0005");
	ck_assert_uint_eq(d->uid, 1);
	ck_assert_uint_eq(d->res[0].space, ACPI_SPACE_MEM);
	ck_assert_uint_eq(d->res[0].base, DEV_VIRTIO_BASE + DEV_VIRTIO_SLOT);
	ck_assert_uint_eq(d->res[0].len, DEV_VIRTIO_SLOT);
	ck_assert_uint_eq(d->irqs[0], 6);
	ck_assert_ptr_nonnull(find("VBK0"));
	ck_assert_ptr_nonnull(find("VRN0"));
}
END_TEST

START_TEST(test_boottab_pm)
{
	machine();
	ck_assert_int_eq(emt_acpi_machine(&desc, 1, devs, ndevs, err,
					  sizeof(err)), 0);
	ck_assert(desc.m.has_pm);
	ck_assert_uint_eq(desc.m.pm.sleep_control, 0x600 + ACPI_PM_SLEEP_CONTROL);
	ck_assert_uint_eq(desc.m.pm.sleep_status, 0x600 + ACPI_PM_SLEEP_STATUS);
	ck_assert_uint_eq(desc.m.pm.reset, 0x600 + ACPI_PM_RESET);
	ck_assert_uint_eq(desc.m.pm.reset_value, ACPI_PM_RESET_VALUE);
	ck_assert_uint_eq(desc.m.pm.s5_type, ACPI_PM_S5_TYPE);
	ck_assert_uint_eq(desc.m.pm.button_gsi, 23);
	/* without the device: no PM registers in the FADT */
	ndevs = 1;
	ck_assert_int_eq(emt_acpi_machine(&desc, 1, devs, ndevs, err,
					  sizeof(err)), 0);
	ck_assert(!desc.m.has_pm);
}
END_TEST

START_TEST(test_boottab_refuses)
{
	machine();
	snprintf(devs[1].kind, sizeof(devs[1].kind), "warp-drive");
	ck_assert_int_eq(emt_acpi_machine(&desc, 1, devs, ndevs, err,
					  sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "no kind warp-drive"), "%s", err);
	/* a 3-character name has room for instances 0-15 only */
	machine();
	devs[4].instance = 16;
	ck_assert_int_eq(emt_acpi_machine(&desc, 1, devs, ndevs, err,
					  sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "instance 16 has no ACPI name"), "%s", err);
	/* the PM registers must be ports */
	machine();
	devs[2].regions[0].space = IPC_SPACE_MMIO;
	ck_assert_int_eq(emt_acpi_machine(&desc, 1, devs, ndevs, err,
					  sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "acpi-pm#0: its registers are not 3 I/O ports"),
		      "%s", err);
}
END_TEST

START_TEST(test_boottab_write)
{
	struct emt_vm *vm = calloc(1, sizeof(*vm));

	ck_assert_ptr_nonnull(vm);
	vm->ram_size = 2u << 20;
	vm->ram = calloc(1, vm->ram_size);
	ck_assert_ptr_nonnull(vm->ram);
	vm->ncpus = 2;
	machine();
	memcpy(vm->devs, devs, sizeof(devs));
	vm->ndevs = ndevs;
	ck_assert_int_eq(emt_vm_boot_tables(vm, err, sizeof(err)), 0);
	/* both: the RSDP where guests scan for it, the MP table after it */
	ck_assert_int_eq(memcmp(vm->ram + EMT_ACPI_ADDR, "RSD PTR ", 8), 0);
	ck_assert_int_eq(memcmp(vm->ram + EMT_MPTABLE_ADDR, "_MP_", 4), 0);
	/* too little RAM for the tables: refused, saying so */
	vm->ram_size = EMT_ACPI_ADDR;
	ck_assert_int_lt(emt_vm_boot_tables(vm, err, sizeof(err)), 0);
	free(vm->ram);
	free(vm);
}
END_TEST

Suite *boottab_suite(void)
{
	Suite *s = suite_create("boottab");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_boottab_devices);
	tcase_add_test(tc, test_boottab_pm);
	tcase_add_test(tc, test_boottab_refuses);
	tcase_add_test(tc, test_boottab_write);
	suite_add_tcase(s, tc);
	return s;
}
