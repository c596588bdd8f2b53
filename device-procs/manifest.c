/* SPDX-License-Identifier: MIT */
/* The device manifest (manifest.h): one entry per kind of device. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "device-procs/manifest.h"

/* COM1: 8 registers at 0x3f8, IRQ 4 (the PC's standard assignment). */
const struct dev_manifest dev_mf_uart = {
	.name = "uart", .binary = "bulkhead-dev-uart",
	.regions = { { DEV_PIO, 0x3f8, 8 } }, .nregions = 1,
	.irqs = { 4 }, .nirqs = 1,
	.backend = DEV_BACKEND_CONSOLE, .state_version = 1,
	.acpi_hid = "PNP0501", .acpi_name = "COM1",
};

/* QEMU's isa-debug-exit convention: one port at 0xf4. */
const struct dev_manifest dev_mf_debugexit = {
	.name = "debug-exit", .binary = "bulkhead-dev-debugexit",
	.regions = { { DEV_PIO, 0xf4, 1 } }, .nregions = 1,
	.flags = DEV_MF_EXIT,
};

/* MC146818 CMOS/RTC: index and data ports at 0x70, IRQ 8. */
const struct dev_manifest dev_mf_rtc = {
	.name = "rtc", .binary = "bulkhead-dev-rtc",
	.regions = { { DEV_PIO, 0x70, 2 } }, .nregions = 1,
	.irqs = { 8 }, .nirqs = 1, .state_version = 1,
	.acpi_hid = "PNP0B00", .acpi_name = "RTC0",
};

/* 8042 keyboard controller: data 0x60, command/status 0x64; IRQ 1
 * (keyboard) and 12 (aux); its output port drives the reset line. */
const struct dev_manifest dev_mf_i8042 = {
	.name = "i8042", .binary = "bulkhead-dev-i8042",
	.regions = { { DEV_PIO, 0x60, 1 }, { DEV_PIO, 0x64, 1 } },
	.nregions = 2, .irqs = { 1, 12 }, .nirqs = 2,
	.flags = DEV_MF_RESET, .state_version = 1,
};

/* The ACPI PM registers (ACPI_PM_* in manifest.h) at 0x600, free on a PC,
 * and the power button's line: GSI 23, the I/O APIC's last pin, which no
 * ISA device claims; only an ACPI guest finds it (the GED's _CRS). */
const struct dev_manifest dev_mf_acpi_pm = {
	.name = "acpi-pm", .binary = "bulkhead-dev-acpi-pm",
	.regions = { { DEV_PIO, 0x600, ACPI_PM_NREGS } }, .nregions = 1,
	.irqs = { 23 }, .nirqs = 1,
	.flags = DEV_MF_RESET | DEV_MF_POWEROFF,
	.state_version = 1,
};

/* The ISA lines our PC leaves free: not the PIT (0), keyboard (1),
 * cascade (2), COM2 and COM1 (3, 4), RTC (8), aux (12) or FPU (13). */
const unsigned dev_virtio_irqs[DEV_VIRTIO_SLOTS] = { 5, 6, 7, 9, 10, 11, 14, 15 };

/* virtio-mmio devices: their regions and IRQ here are a slot's, the one
 * a core alone (a unit test, a fuzzer) uses; the broker gives each its
 * own. */
const struct dev_manifest dev_mf_virtio_blk = {
	.name = "virtio-blk", .binary = "bulkhead-dev-virtio-blk",
	.regions = { { DEV_MMIO, DEV_VIRTIO_BASE, DEV_VIRTIO_SLOT } },
	.nregions = 1, .irqs = { 5 }, .nirqs = 1,
	.flags = DEV_MF_DMA | DEV_MF_VIRTIO | DEV_MF_OPTIONAL,
	.backend = DEV_BACKEND_DISK, .virtio_id = DEV_VIRTIO_ID_BLOCK,
	.state_version = 1, .option = "disk", .option_arg = "PATH[,ro]",
	.option_help = "a virtio-blk disk on the raw image PATH (,ro: the\n"
		       "guest cannot write it); up to 6, each in its own process",
	.max_instances = 6, .acpi_hid = "LNRO0005", .acpi_name = "VBK",
};

const struct dev_manifest dev_mf_virtio_rng = {
	.name = "virtio-rng", .binary = "bulkhead-dev-virtio-rng",
	.regions = { { DEV_MMIO, DEV_VIRTIO_BASE + DEV_VIRTIO_SLOT,
		       DEV_VIRTIO_SLOT } },
	.nregions = 1, .irqs = { 6 }, .nirqs = 1,
	.flags = DEV_MF_DMA | DEV_MF_VIRTIO | DEV_MF_OPTIONAL,
	.virtio_id = DEV_VIRTIO_ID_ENTROPY, .state_version = 1,
	.option = "rng", .option_help = "a virtio-rng entropy device",
	.max_instances = 1, .acpi_hid = "LNRO0005", .acpi_name = "VRN",
};

/* The test device: a port range and an MMIO page that do nothing. */
const struct dev_manifest dev_mf_null = {
	.name = "null", .binary = "bulkhead-dev-null",
	.regions = { { DEV_PIO, 0x510, 8 }, { DEV_MMIO, 0xd0100000, 0x1000 } },
	.nregions = 2, .flags = DEV_MF_OPTIONAL, .option = "null-dev",
	.option_help = "add the null device (ports 0x510-0x517) in its own\n"
		       "process; for benchmarks",
	.max_instances = 1,
};

const struct dev_manifest *const dev_manifests[] = {
	&dev_mf_uart, &dev_mf_debugexit, &dev_mf_rtc, &dev_mf_i8042,
	&dev_mf_acpi_pm, &dev_mf_virtio_blk, &dev_mf_virtio_rng, &dev_mf_null,
};

const unsigned dev_nmanifests = sizeof(dev_manifests) / sizeof(dev_manifests[0]);

const struct dev_manifest *dev_manifest_find(const char *name)
{
	for (unsigned i = 0; i < dev_nmanifests; i++)
		if (name && strcmp(dev_manifests[i]->name, name) == 0)
			return dev_manifests[i];
	return NULL;
}

unsigned dev_manifest_index(const struct dev_manifest *k)
{
	for (unsigned i = 0; i < dev_nmanifests; i++)
		if (dev_manifests[i] == k)
			return i;
	return dev_nmanifests;
}

void dev_tally_init(struct dev_tally *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < dev_nmanifests; i++)
		if (!(dev_manifests[i]->flags & DEV_MF_OPTIONAL))
			t->total++;
}

int dev_tally_add(struct dev_tally *t, const struct dev_manifest *k,
		  char *why, size_t len)
{
	unsigned i = dev_manifest_index(k);

	if (i >= dev_nmanifests || !(k->flags & DEV_MF_OPTIONAL)) {
		snprintf(why, len, "%s is not a device a VM may ask for",
			 k ? k->name : "(null)");
		return -EINVAL;
	}
	if (t->count[i] >= k->max_instances) {
		snprintf(why, len, "--%s: at most %u %s device%s", k->option,
			 k->max_instances, k->name,
			 k->max_instances == 1 ? "" : "s");
		return -E2BIG;
	}
	if ((k->flags & DEV_MF_VIRTIO) && t->virtio >= DEV_VIRTIO_SLOTS) {
		snprintf(why, len, "--%s: at most %u virtio devices in all",
			 k->option, DEV_VIRTIO_SLOTS);
		return -E2BIG;
	}
	if (t->total >= DEV_MAX_PER_VM) {
		snprintf(why, len, "--%s: at most %u devices in all", k->option,
			 DEV_MAX_PER_VM);
		return -E2BIG;
	}
	t->count[i]++;
	t->total++;
	if (k->flags & DEV_MF_VIRTIO)
		t->virtio++;
	return 0;
}
