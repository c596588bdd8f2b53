/* SPDX-License-Identifier: MIT */
/* The device manifest (manifest.h): one entry per kind of device. */
#include <string.h>

#include "device-procs/manifest.h"

/* COM1: 8 registers at 0x3f8, IRQ 4 (the PC's standard assignment). */
const struct dev_manifest dev_mf_uart = {
	.name = "uart", .binary = "bulkhead-dev-uart",
	.regions = { { DEV_PIO, 0x3f8, 8 } }, .nregions = 1,
	.irqs = { 4 }, .nirqs = 1,
	.backend = DEV_BACKEND_CONSOLE,
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
	.irqs = { 8 }, .nirqs = 1,
};

/* 8042 keyboard controller: data 0x60, command/status 0x64; IRQ 1
 * (keyboard) and 12 (aux); its output port drives the reset line. */
const struct dev_manifest dev_mf_i8042 = {
	.name = "i8042", .binary = "bulkhead-dev-i8042",
	.regions = { { DEV_PIO, 0x60, 1 }, { DEV_PIO, 0x64, 1 } },
	.nregions = 2, .irqs = { 1, 12 }, .nirqs = 2,
	.flags = DEV_MF_RESET,
};

const struct dev_manifest dev_mf_virtio_blk = {
	.name = "virtio-blk", .binary = "bulkhead-dev-virtio-blk",
	.regions = { { DEV_MMIO, DEV_VIRTIO_BASE, DEV_VIRTIO_SLOT } },
	.nregions = 1, .irqs = { DEV_VIRTIO_IRQ }, .nirqs = 1,
	.flags = DEV_MF_DMA | DEV_MF_VIRTIO | DEV_MF_OPTIONAL,
	.backend = DEV_BACKEND_DISK, .virtio_id = DEV_VIRTIO_ID_BLOCK,
	.option = "--disk",
};

const struct dev_manifest dev_mf_virtio_rng = {
	.name = "virtio-rng", .binary = "bulkhead-dev-virtio-rng",
	.regions = { { DEV_MMIO, DEV_VIRTIO_BASE + DEV_VIRTIO_SLOT,
		       DEV_VIRTIO_SLOT } },
	.nregions = 1, .irqs = { DEV_VIRTIO_IRQ + 1 }, .nirqs = 1,
	.flags = DEV_MF_DMA | DEV_MF_VIRTIO | DEV_MF_OPTIONAL,
	.virtio_id = DEV_VIRTIO_ID_ENTROPY, .option = "--rng",
};

/* The test device: a port range and an MMIO page that do nothing. */
const struct dev_manifest dev_mf_null = {
	.name = "null", .binary = "bulkhead-dev-null",
	.regions = { { DEV_PIO, 0x510, 8 }, { DEV_MMIO, 0xd0100000, 0x1000 } },
	.nregions = 2, .flags = DEV_MF_OPTIONAL, .option = "--null-dev",
};

const struct dev_manifest *const dev_manifests[] = {
	&dev_mf_uart, &dev_mf_debugexit, &dev_mf_rtc, &dev_mf_i8042,
	&dev_mf_virtio_blk, &dev_mf_virtio_rng, &dev_mf_null,
};

const unsigned dev_nmanifests = sizeof(dev_manifests) / sizeof(dev_manifests[0]);

const struct dev_manifest *dev_manifest_find(const char *name)
{
	for (unsigned i = 0; i < dev_nmanifests; i++)
		if (name && strcmp(dev_manifests[i]->name, name) == 0)
			return dev_manifests[i];
	return NULL;
}
