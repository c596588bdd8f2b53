/* SPDX-License-Identifier: MIT */
/*
 * The device manifest: one entry per kind of device, as data.
 *
 * Whatever needs to know what a device is reads it here and nowhere else:
 *   - the broker (broker/launch.c): which binary to spawn, where the device
 *     sits, what it may ask of the VM, which backend fd it gets, how a
 *     virtio-mmio device is placed and announced;
 *   - the device's own core: its dev_desc points at its entry, and the
 *     device runtime (devhost) and the unit tests take its default regions
 *     and IRQ lines from it;
 *   - the tests: check_manifest and check_policy walk dev_manifests[], and
 *     build/devices.txt (tests/tools/devlist.c) lists them for shell tests.
 * The make side of a device (its sources, its binary, its fuzz harness)
 * is device-procs/<name>/device.mk; its policy is policy/dev-<name>.policy.
 * See docs/design.md, "Adding a device".
 */
#ifndef BULKHEAD_DEVICE_MANIFEST_H
#define BULKHEAD_DEVICE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "ipc/ipc.h"

enum dev_space { DEV_PIO = 0, DEV_MMIO = 1 };

/* A port-I/O or MMIO range the device claims. */
struct dev_region {
	enum dev_space space;
	uint64_t base;
	uint64_t len;
};

#define DEV_MF_MAX_REGIONS 2u
#define DEV_MF_MAX_IRQS 2u

/* What a device may ask of its VM, and what it is given. */
#define DEV_MF_EXIT (1u << 0)   /* may end the VM (debug-exit): no posted writes */
#define DEV_MF_RESET (1u << 1)  /* may pull the reset line (i8042) */
#define DEV_MF_DMA (1u << 2)    /* maps guest RAM (virtio) */
#define DEV_MF_VIRTIO (1u << 3) /* virtio-mmio: the broker places it (below) */
#define DEV_MF_OPTIONAL (1u << 4) /* only when its CLI option asks for it */
/* May power the VM off: the ACPI PM device, whose first region holds the
 * ACPI_PM_* registers the FADT points at and whose first IRQ is the power
 * button's (the DSDT's generic event device). */
#define DEV_MF_POWEROFF (1u << 5)

/* The fd the broker hands the device for its backend, if any. */
enum dev_backend {
	DEV_BACKEND_NONE,
	DEV_BACKEND_CONSOLE, /* the serial console: input and output */
	DEV_BACKEND_DISK,    /* a disk image */
};

/*
 * virtio-mmio slots: the n-th virtio device of a VM sits at
 * DEV_VIRTIO_BASE + n * DEV_VIRTIO_SLOT with IRQ dev_virtio_irqs[n], and is
 * announced on the guest's command line (virtio_mmio.device=). The slot is
 * the register block of the virtio 1.2 spec, section 4.2.2 (0x100 bytes of
 * registers and the device's configuration space after them). The IRQs
 * are ISA lines no fixed device uses (check_manifest holds them to that),
 * so that the MP table's ISA routing covers them.
 */
#define DEV_VIRTIO_BASE 0xd0000000ull
#define DEV_VIRTIO_SLOT 0x200ull
#define DEV_VIRTIO_SLOTS 8u
extern const unsigned dev_virtio_irqs[DEV_VIRTIO_SLOTS];
/* Where the n-th virtio device sits (n < DEV_VIRTIO_SLOTS). */
static inline uint64_t dev_virtio_slot_base(unsigned n)
{
	return DEV_VIRTIO_BASE + (uint64_t)n * DEV_VIRTIO_SLOT;
}

/*
 * The ACPI PM device's byte registers, from its region's base (ACPI 6.5,
 * 4.8.3): the worker's FADT points at them, the device serves them.
 */
#define ACPI_PM_SLEEP_CONTROL 0u  /* SLEEP_CONTROL_REG, 4.8.3.7 */
#define ACPI_PM_SLEEP_STATUS 1u   /* SLEEP_STATUS_REG, 4.8.3.8 */
#define ACPI_PM_RESET 2u          /* RESET_REG, 4.8.3.6 */
#define ACPI_PM_NREGS 3u
#define ACPI_PM_RESET_VALUE 0x01u /* FADT RESET_VALUE */
#define ACPI_PM_S5_TYPE 5u        /* SLP_TYP of \_S5, power off */
#define ACPI_PM_SLP_TYP_SHIFT 2u  /* SLEEP_CONTROL_REG bits, 4.8.3.7 */
#define ACPI_PM_SLP_TYP_MASK 0x1cu
#define ACPI_PM_SLP_EN 0x20u

/* Device IDs, virtio 1.2 section 5. */
#define DEV_VIRTIO_ID_BLOCK 2u
#define DEV_VIRTIO_ID_ENTROPY 4u

struct dev_manifest {
	const char *name;   /* the kind: "uart"; policy dev-<name> */
	const char *binary; /* bulkhead-dev-<name> (the make name, see device.mk) */
	/* Its regions and IRQ lines (GSIs); a virtio device's are those of
	 * the first slot, moved to its own slot by the broker. */
	struct dev_region regions[DEV_MF_MAX_REGIONS];
	unsigned nregions;
	unsigned irqs[DEV_MF_MAX_IRQS];
	unsigned nirqs;
	unsigned flags; /* DEV_MF_* */
	enum dev_backend backend;
	uint32_t virtio_id; /* DEV_VIRTIO_ID_*, 0: not virtio */
	/*
	 * Its saved state: the SSM unit is named after the kind, one per
	 * instance, and written at this version (the core's load() is given
	 * the version it finds; docs/saved-state.md).
	 */
	uint32_t state_version;
	/*
	 * A DEV_MF_OPTIONAL device: the `bulkhead run`/`create`/`restore`
	 * option that adds one (without the dashes), its argument (NULL: a
	 * flag; a disk's "PATH[,ro]"), its line of the usage text, and how
	 * many one VM may have. The CLI's option table, its usage text and
	 * the broker's checks all come from these.
	 */
	const char *option;
	const char *option_arg;
	const char *option_help;
	unsigned max_instances;
	/*
	 * Its announcement in the ACPI tables (emt-worker/acpi.c): a device
	 * of the DSDT with this _HID (an EISA id, "PNP0501", or a string id,
	 * "LNRO0005") and AML name, its regions and IRQs in its _CRS. A name
	 * of 3 characters is completed with the instance's hex digit ("VBK"
	 * -> VBK0, VBK1, ...). NULL: not in the DSDT (debug-exit, the i8042,
	 * which the FADT's 8042 flag announces, and the ACPI PM device, whose
	 * registers the FADT names: DEV_MF_POWEROFF).
	 */
	const char *acpi_hid;
	const char *acpi_name;
};

extern const struct dev_manifest dev_mf_uart, dev_mf_debugexit, dev_mf_rtc,
	dev_mf_i8042, dev_mf_acpi_pm, dev_mf_virtio_blk, dev_mf_virtio_rng,
	dev_mf_null;

/* Every kind, in the order the broker gives a VM its devices. */
extern const struct dev_manifest *const dev_manifests[];
extern const unsigned dev_nmanifests;

/* The entry named name, or NULL. */
const struct dev_manifest *dev_manifest_find(const char *name);
/* Its index in dev_manifests[]. */
unsigned dev_manifest_index(const struct dev_manifest *k);

/* The most devices one VM has, fixed and optional ones together. */
#define DEV_MAX_PER_VM IPC_MAX_DEVICES
#define DEV_MF_MAX_KINDS 16u

/*
 * How many optional devices of each kind a VM asks for, checked as they
 * are added: by the CLI as it parses options, by the broker on what a
 * client sends.
 */
struct dev_tally {
	unsigned count[DEV_MF_MAX_KINDS];
	unsigned virtio;   /* virtio-mmio slots taken */
	unsigned total;    /* devices in all, fixed ones included */
};
void dev_tally_init(struct dev_tally *t);
/* Count one more k; 0, or -E2BIG after saying why in why[len]. */
int dev_tally_add(struct dev_tally *t, const struct dev_manifest *k,
		  char *why, size_t len);

#endif
