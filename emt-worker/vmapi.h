/* SPDX-License-Identifier: MIT */
/*
 * The VM API of the worker (vmapi.c): the state transitions that gather
 * the EMTs, the device notifications that go with them, and requests to a
 * device process that an EMT waits for. It sits above the EMT layer
 * (emt.h), which reaches it only through struct emt_vm_ops.
 */
#ifndef BULKHEAD_EMT_WORKER_VMAPI_H
#define BULKHEAD_EMT_WORKER_VMAPI_H

#include "emt-worker/emt.h"

/* What vmapi.c offers the EMT layer: set as vm->ops by emt_vmapi_attach. */
void emt_vmapi_attach(struct emt_vm *vm);

/*
 * The VM API (VMR3PowerOn, VMR3Suspend, ...): each gathers the EMTs in a
 * descending rendezvous that stops on error, EMT(0) last, which notifies
 * the devices and completes the transition. Any thread may call them; they
 * return 0 or a negative errno with the reason in err.
 */
int emt_vm_power_on(struct emt_vm *vm, char *err, size_t errlen);
int emt_vm_suspend(struct emt_vm *vm, char *err, size_t errlen);
/* Live save's final suspend: RUNNING_LS -> SUSPENDING_LS -> SUSPENDED_LS. */
int emt_vm_suspend_ls(struct emt_vm *vm, char *err, size_t errlen);
int emt_vm_resume(struct emt_vm *vm, char *err, size_t errlen);
int emt_vm_reset(struct emt_vm *vm, char *err, size_t errlen);
int emt_vm_power_off(struct emt_vm *vm, char *err, size_t errlen);

/*
 * Device notifications, from EMT(0): send the event to every live device
 * and wait (up to EMT_NOTIFY_TIMEOUT_MS) for every answer. A device that
 * misses the deadline, has died or answers out of protocol is failed:
 * runtime error naming it and the cause.
 */
void emt_notify_devices(struct emt_vm *vm, enum emt_notify ev);
/* The main thread's side: a DevNotifyDone arrived from d. */
int emt_notify_answer(struct emt_vm *vm, struct emt_dev *d, int event,
		      uint32_t seq, int status);
/*
 * Send a request to device d and wait (up to timeout_ms) for its answer of
 * type answer, which the main thread routes back; *out is the unpacked
 * DevStateData (free with dev_state_data__free_unpacked). From an EMT.
 */
struct DevStateData;
int emt_dev_call(struct emt_vm *vm, struct emt_dev *d, uint16_t type,
		 const ProtobufCMessage *req, uint16_t answer, int timeout_ms,
		 struct DevStateData **out);
/* The main thread's side: a DevStateData answer of `type` arrived. */
int emt_dev_answer(struct emt_vm *vm, struct emt_dev *d, uint16_t type,
		   struct DevStateData *msg);

#endif
