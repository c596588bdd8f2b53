/* SPDX-License-Identifier: MIT */
/*
 * emt-worker: the sandboxed process that owns one VM, runs its EMTs and
 * dispatches their exits. This header is what the worker's parts share and
 * what unit tests reach.
 */
#ifndef BULKHEAD_EMT_H
#define BULKHEAD_EMT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc/ipc.h"
#include "kdriver/kd.h"

/* ---- image loaders ---------------------------------------------------- */

/* Where things go in guest-physical memory. */
#define EMT_LOW_MEM_END 0x9fc00ull      /* top of conventional memory */
#define EMT_HIGH_MEM_START 0x100000ull  /* 1 MiB */
#define EMT_BOOTSECT_ADDR 0x7c00ull     /* raw images load here */
#define EMT_MBI_ADDR 0x9000ull          /* multiboot info area */
#define EMT_MBI_AREA_END 0x9f000ull     /* end of the multiboot info area */
#define EMT_RAW_MAX (EMT_LOW_MEM_END - EMT_BOOTSECT_ADDR)

enum emt_image_kind {
	EMT_IMAGE_MULTIBOOT = 1,  /* multiboot v1, ELF32/ELF64 or a.out kludge */
	EMT_IMAGE_RAW = 2,        /* boot sector / flat real-mode binary */
	EMT_IMAGE_BZIMAGE = 3,    /* Linux bzImage (detected; not loaded yet) */
};

enum emt_cpu_mode {
	EMT_MODE_REAL = 1,   /* CS:IP = 0:rip, all segments 0, real mode */
	EMT_MODE_PROT32 = 2, /* multiboot: flat 32-bit protected, paging off */
};

/* The boot processor's initial state, as a loader decides it. */
struct emt_boot {
	enum emt_image_kind kind;
	enum emt_cpu_mode mode;
	uint64_t rip;
	uint64_t rax, rbx, rdx, rsp;
	uint64_t image_end;   /* first byte after everything loaded */
};

/* What a loader gets: the image and its options, and guest RAM. */
struct emt_load_args {
	const uint8_t *image;
	size_t image_len;
	const uint8_t *initrd;   /* NULL: none */
	size_t initrd_len;
	const char *cmdline;     /* NULL or "": none */
	/*
	 * cmdline, multiboot: at most 4095 bytes; the info always has the
	 * CMDLINE flag, with "" when none was given. Raw images refuse a
	 * non-empty cmdline and any initrd. The initrd becomes module 0
	 * ("initrd") on the first 4 KiB boundary after the kernel.
	 */
	uint8_t *ram;            /* guest RAM, guest-physical 0 at ram[0] */
	uint64_t ram_size;
};

/*
 * Detect the image format and load it into guest RAM, filling *boot.
 * Returns 0, or a negative errno with a one-line explanation in err
 * (-ENOEXEC: not a format we load or malformed; -E2BIG: does not fit in
 * guest RAM; -EINVAL: bad arguments such as --initrd with a raw image).
 */
int emt_load_image(const struct emt_load_args *a, struct emt_boot *boot,
		   char *err, size_t errlen);
/* Format detection only (no loading). */
enum emt_image_kind emt_detect_image(const uint8_t *image, size_t len);

/* ---- the VM and its EMTs ---------------------------------------------- */

#define EMT_MAX_DEVICES 8u
#define EMT_MAX_DEV_REGIONS 4u
#define EMT_MAX_DEV_IRQS 4u

/* How a VM ended (the VmExited.Reason values). */
enum emt_end { EMT_END_POWER_OFF = 0, EMT_END_DEBUG_EXIT = 1,
	       EMT_END_ERROR = 2 };

struct emt_region {
	uint8_t space;  /* enum ipc_space */
	uint64_t base;
	uint64_t len;
};

/* A device process as the worker sees it. */
struct emt_dev {
	char label[48];               /* "uart#0" */
	char kind[24];
	uint32_t instance;
	struct emt_region regions[EMT_MAX_DEV_REGIONS];
	unsigned nregions;
	uint32_t irqs[EMT_MAX_DEV_IRQS];
	unsigned nirqs;
	bool may_request_exit;
	struct ipc_chan chan;
	struct ipc_ring *ring;
	bool dead;                    /* main thread only */
	atomic_uint_fast64_t accesses;
};

struct emt_vm;

struct emt_vcpu {
	struct emt_vm *vm;
	struct kd_vcpu *kv;
	pthread_t thread;
	bool started;
	/* Counters, written by this EMT only. */
	uint64_t exits;
	uint64_t unclaimed_reads;
	uint64_t unclaimed_writes;
};

struct emt_vm {
	struct kd_vm *kvm;
	uint8_t *ram;
	uint64_t ram_size;
	unsigned ncpus;
	struct emt_vcpu vcpus[KD_MAX_VCPUS];
	struct emt_dev devs[EMT_MAX_DEVICES];
	unsigned ndevs;
	/* Port -> device index + 1 (0: unclaimed), and region index. */
	uint8_t port_dev[65536];
	uint8_t port_region[65536];

	atomic_bool stopping;
	int wake_fd;                  /* eventfd: EMTs wake the main thread */
	pthread_mutex_t lock;         /* the end result, parking */
	pthread_cond_t park_cond;
	bool ended;
	enum emt_end end;
	uint32_t end_code;
	char end_id[32];
	char end_msg[256];
};

/*
 * Record how the VM ends (the first call wins) and wake the main thread.
 * Any thread. error_id is a short machine-readable id ("device-died").
 */
void emt_vm_end(struct emt_vm *vm, enum emt_end end, uint32_t code,
		const char *error_id, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Start one EMT per vCPU. */
int emt_vm_start_emts(struct emt_vm *vm);
/* Stop every EMT (poke out of KVM_RUN, shut the rings) and join them. */
void emt_vm_stop_emts(struct emt_vm *vm);
/* Install the signal used to poke EMTs out of KVM_RUN. */
int emt_poke_init(void);

#endif
