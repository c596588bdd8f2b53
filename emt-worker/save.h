/* SPDX-License-Identifier: MIT */
/*
 * Saving and loading the whole VM (save.c): every unit of one SSM stream,
 * gathered from the worker and every device process
 * (docs/saved-state.md).
 */
#ifndef BULKHEAD_EMT_WORKER_SAVE_H
#define BULKHEAD_EMT_WORKER_SAVE_H

#include "emt-worker/emt.h"

struct emt_save_result {
	uint64_t bytes;
	uint32_t passes;
	uint64_t pages;
	uint32_t downtime_ms;
	int write_errno;        /* a write to fd failed with this (ENOSPC...) */
};

#define EMT_SAVE_KEEP_RUNNING 0x1u
#define EMT_SAVE_LIVE 0x2u
/* After a successful save leave the VM SUSPENDED (the broker decides). */
#define EMT_SAVE_STAY_SUSPENDED 0x4u

/*
 * Save the VM to fd (the save file, written from its current offset):
 * suspend it if it runs, SAVING, every unit
 * (with EMT_SAVE_LIVE: RAM first copied in passes while the guest runs, by
 * KVM dirty logging plus the pages device DMA touched, until what is left
 * fits max_downtime_ms; then the final pass with the guest stopped).
 * Not on an EMT: a live save must leave every vCPU running.
 * (vCPUs, irqchip, PIT, clock, RAM, boot image, each device's unit fetched
 * over its channel), then resume it (EMT_SAVE_KEEP_RUNNING) or power it
 * off. Returns 0 or a negative errno with the reason in err.
 */
int emt_vm_save(struct emt_vm *vm, int fd, unsigned flags,
		unsigned max_downtime_ms, struct emt_save_result *res,
		char *err, size_t errlen);
/*
 * Load a VM in CREATED state from fd: LOADING, every unit checked against
 * this VM's configuration (vCPU count, RAM size, device set), SUSPENDED.
 * A bad stream leaves it in LOAD_FAILURE with the reason (naming the unit
 * and stream offset) in err. On an EMT.
 */
int emt_vm_load(struct emt_vm *vm, int fd, char *err, size_t errlen);

#endif
