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

#include "emt-worker/loader.h"

/* ---- the VM and its EMTs ---------------------------------------------- */

#include "emt-worker/vm.h"

#define EMT_MAX_DEVICES IPC_MAX_DEVICES
#define EMT_MAX_DEV_REGIONS 4u
#define EMT_MAX_DEV_POSTED 4u
#define EMT_MAX_DEV_IRQS 4u
/* How long a device has to answer a lifecycle notification. */
#define EMT_NOTIFY_TIMEOUT_MS 2000

/* How a VM ended (the VmExited.Reason values). */
enum emt_end { EMT_END_POWER_OFF = 0, EMT_END_DEBUG_EXIT = 1,
	       EMT_END_ERROR = 2 };

/* Runtime error flags (VmRuntimeError.flags, VMSETRTERR_FLAGS_*). */
#define EMT_RTERR_FATAL 0x1u
#define EMT_RTERR_SUSPEND 0x2u
#define EMT_RTERR_NO_WAIT 0x4u

/* Device lifecycle notifications (DevNotify.Event values). */
enum emt_notify { EMT_NOTIFY_POWER_ON = 0, EMT_NOTIFY_RESET = 1,
		  EMT_NOTIFY_SUSPEND = 2, EMT_NOTIFY_RESUME = 3,
		  EMT_NOTIFY_POWER_OFF = 4 };

struct emt_region {
	uint8_t space;  /* enum ipc_space */
	uint64_t base;
	uint64_t len;
};

/* Writes of regions[region] + [off, off + len) may be posted: queued on
 * the ring without waiting for the device (the device's registration says
 * which; docs/design.md, "The access ring"). */
struct emt_posted_range {
	unsigned region;
	uint64_t off;
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
	struct emt_posted_range posted[EMT_MAX_DEV_POSTED];
	unsigned nposted;
	bool may_request_exit;
	bool may_request_reset;
	bool may_request_poweroff;
	struct ipc_chan chan;
	struct ipc_ring *ring;
	/* What it may send while running: built from the may_* flags. */
	struct ipc_handler tab[8];
	struct ipc_phase phase;
	/* Under vm->lock: */
	bool dead;
	uint32_t notify_sent;         /* seq of the notification in flight */
	uint32_t notify_acked;        /* seq of the last answer */
	int notify_status;
	int notify_event;
	bool destructed;
	uint16_t call_expect;         /* answer type awaited, 0: none */
	void *call_answer;            /* DevStateData, unpacked */
	/* Counters. */
	atomic_uint_fast64_t accesses;
	atomic_uint_fast64_t access_ns;
	atomic_uint_fast64_t posted_writes;
};

struct emt_vm;

struct emt_vcpu {
	struct emt_vm *vm;
	struct kd_vcpu *kv;
	pthread_t thread;
	bool started;
	unsigned seen_work;           /* vm->sync.work_gen last served */
	/* The state it was created in, restored on reset. */
	struct kvm_regs init_regs;
	struct kvm_sregs init_sregs;
	struct kvm_fpu init_fpu;
	struct kvm_lapic_state init_lapic;
	struct kvm_vcpu_events init_events;
	uint32_t init_mp_state;
	/* and its MSRs (vm->kvm->msr_index), kvm-clock's and the other
	 * paravirtual ones among them: left as the last boot set them, KVM
	 * would go on writing guest RAM at the addresses they hold, over the
	 * next boot's kernel. Allocated once, for the process's life. */
	struct kvm_msr_entry *init_msrs;
	unsigned init_nmsrs;
	/* Devices (bit = index) that may still have writes of this vCPU
	 * posted and not yet handled. */
	uint32_t posted_devs;
	/* Counters, written by this EMT only. */
	uint64_t exits;
	uint64_t io_exits;
	uint64_t mmio_exits;
	uint64_t unclaimed_reads;
	uint64_t unclaimed_writes;
};

/*
 * The VM operations above the EMT layer (vmapi.h) that the EMT layer needs
 * for what the guest does: a suspend after a device failed, a reset the
 * guest asked for, a power-off when it is done. Set by emt_vmapi_attach();
 * the EMT layer never calls up any other way. Each returns 0 or a negative
 * errno with the reason in err.
 */
struct emt_vm_ops {
	int (*suspend)(struct emt_vm *vm, char *err, size_t errlen);
	int (*reset)(struct emt_vm *vm, char *err, size_t errlen);
	int (*power_off)(struct emt_vm *vm, char *err, size_t errlen);
};

struct emt_vm {
	struct kd_vm *kvm;
	uint8_t *ram;
	uint64_t ram_size;
	int ram_fd;                   /* the memfd behind ram, for SEEK_DATA */
	unsigned save_encoders;       /* threads encoding a save's RAM, >= 1 */
	unsigned ncpus;
	struct emt_vcpu vcpus[KD_MAX_VCPUS];
	struct emt_dev devs[EMT_MAX_DEVICES];
	unsigned ndevs;
	/* Port -> device index + 1 (0: unclaimed), and region index. */
	uint8_t port_dev[65536];
	uint8_t port_region[65536];

	const struct emt_vm_ops *ops;  /* the VM API above, emt_vmapi_attach */
	struct vm_sm sm;
	struct vm_sync sync;
	atomic_bool guest_runs;       /* mirrors vm_state_runs_guest(state) */
	atomic_uint state_gen;        /* counts state changes */
	atomic_bool powering_off;     /* asked for: no vCPU runs guest code */
	struct ipc_chan *broker;      /* events go here (any thread) */

	/* The image, kept to boot it again on reset. */
	uint8_t *image;
	size_t image_len;
	uint8_t *initrd;
	size_t initrd_len;
	char *cmdline;
	struct emt_boot boot;
	/* The in-kernel devices' state at creation, restored on reset. */
	struct kvm_irqchip init_irqchip[3];
	struct kvm_pit_state2 init_pit;

	int wake_fd;                  /* eventfd: wakes the main thread */
	pthread_mutex_t lock;         /* devices' notify state, the end */
	pthread_cond_t cond;
	uint32_t notify_seq;
	bool ended;
	enum emt_end end;
	uint32_t end_code;
	char end_id[32];
	char end_msg[256];
};

/* Set up the fields above that need it (locks, sync, state machine). */
int emt_vm_init(struct emt_vm *vm, unsigned ncpus);

/*
 * Record how the VM ends (the first call wins) and wake the main thread.
 * Any thread. error_id is a short machine-readable id ("device-died").
 */
void emt_vm_end(struct emt_vm *vm, enum emt_end end, uint32_t code,
		const char *error_id, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Power the VM off on an EMT, soon; for a VM whose end is recorded. */
void emt_vm_request_power_off(struct emt_vm *vm);
/* Reset the VM on an EMT, soon (the guest asked: a triple fault, the
 * i8042's reset line); a reset that fails stops the VM in GURU_MEDITATION. */
void emt_vm_request_reset(struct emt_vm *vm);
/*
 * The guest asked to end the run (debug-exit) with code, through the device
 * called label: record it as the VM's end and power off. Any thread.
 */
void emt_vm_guest_exit(struct emt_vm *vm, uint32_t code, const char *label);
/*
 * A runtime error (VMSetRuntimeError): reported to the broker; with
 * EMT_RTERR_SUSPEND the VM is suspended, with EMT_RTERR_FATAL it stops in
 * GURU_MEDITATION. Any thread.
 */
void emt_vm_runtime_error(struct emt_vm *vm, unsigned flags,
			  const char *error_id, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Capture the freshly created VM's and vCPUs' state for reset. */
int emt_vm_capture_reset_state(struct emt_vm *vm);
/* Back to the state the vCPU was created in (INIT for application
 * processors, which then wait for a SIPI). On its own EMT. */
int emt_vcpu_reset(struct emt_vcpu *c);
/* Put the boot processor in the state the loader chose. */
int emt_vcpu_boot(struct emt_vcpu *c, const struct emt_boot *boot);

/* Start one EMT per vCPU. */
int emt_vm_start_emts(struct emt_vm *vm);
/* Make the EMTs leave and join them (after the VM is off). */
void emt_vm_stop_emts(struct emt_vm *vm);
/* Install the signal used to poke EMTs out of KVM_RUN. */
int emt_poke_init(void);

/* Mark a device failed: ring shut, channel closed, runtime error. */
void emt_dev_fail(struct emt_vm *vm, struct emt_dev *d, const char *error_id,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));


#endif
