/* SPDX-License-Identifier: MIT */
/*
 * The VM API, run the way VirtualBox runs it: every operation gathers the
 * EMTs in a descending rendezvous that stops on error. The highest EMT,
 * first in, moves the VM into the *-ING state (which fails, and stops the
 * rendezvous, when the operation is not legal now); EMT(0), last in,
 * notifies the device processes and completes the transition.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "device.pb-c.h"
#include "emt-worker/boottab.h"
#include "emt-worker/vmapi.h"
#include "ipc/log.h"
#include "proto/msgtypes.h"

#define EMT_MS_PER_SEC 1000
#define EMT_NS_PER_MS 1000000
#define EMT_NS_PER_SEC 1000000000

struct emt_op {
	struct emt_vm *vm;
	enum vm_state from[5];  /* accepted starting states */
	unsigned nfrom;
	enum vm_state during;   /* the *-ING state */
	enum vm_state to;
	int notify;             /* enum emt_notify, or -1 */
	bool reset;             /* reset every vCPU and reload the image */
	enum vm_state found;    /* the state the highest EMT found */
};

static const char *const emt_notify_names[] = {
	"power-on", "reset", "suspend", "resume", "power-off",
};

/* ---- device notifications ----------------------------------------------- */

static void emt_deadline(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / EMT_MS_PER_SEC;
	ts->tv_nsec += (long)(ms % EMT_MS_PER_SEC) * EMT_NS_PER_MS;
	if (ts->tv_nsec >= EMT_NS_PER_SEC) {
		ts->tv_sec++;
		ts->tv_nsec -= EMT_NS_PER_SEC;
	}
}

void emt_notify_devices(struct emt_vm *vm, enum emt_notify ev)
{
	DevNotify n = DEV_NOTIFY__INIT;
	struct emt_dev *failed[EMT_MAX_DEVICES];
	const char *why[EMT_MAX_DEVICES];
	char unreachable[EMT_MAX_DEVICES][48];
	unsigned nfailed = 0;
	struct timespec dl;
	uint32_t seq;

	pthread_mutex_lock(&vm->lock);
	seq = ++vm->notify_seq;
	pthread_mutex_unlock(&vm->lock);
	n.event = (DevNotify__Event)ev;
	n.seq = seq;
	for (unsigned i = 0; i < vm->ndevs; i++) {
		struct emt_dev *d = &vm->devs[i];
		bool dead;

		pthread_mutex_lock(&vm->lock);
		dead = d->dead;
		d->notify_sent = seq;
		d->notify_event = (int)ev;
		pthread_mutex_unlock(&vm->lock);
		if (dead)
			continue;
		int r = ipc_send_pb(&d->chan, MSG_DEV_NOTIFY, &n.base, NULL, 0);

		if (r < 0) {
			snprintf(unreachable[nfailed], sizeof(unreachable[0]),
				 "could not be reached (%s)", strerror(-r));
			failed[nfailed] = d;
			why[nfailed] = unreachable[nfailed];
			nfailed++;
		}
	}

	emt_deadline(&dl, EMT_NOTIFY_TIMEOUT_MS);
	pthread_mutex_lock(&vm->lock);
	for (;;) {
		bool waiting = false;

		for (unsigned i = 0; i < vm->ndevs; i++) {
			struct emt_dev *d = &vm->devs[i];

			if (!d->dead && d->notify_acked != seq)
				waiting = true;
		}
		if (!waiting)
			break;
		if (pthread_cond_timedwait(&vm->cond, &vm->lock, &dl) == ETIMEDOUT)
			break;
	}
	for (unsigned i = 0; i < vm->ndevs && nfailed < EMT_MAX_DEVICES; i++) {
		struct emt_dev *d = &vm->devs[i];
		bool listed = false;

		for (unsigned k = 0; k < nfailed; k++)
			listed |= failed[k] == d;
		if (d->dead || listed)
			continue;
		if (d->notify_acked != seq) {
			failed[nfailed] = d;
			why[nfailed++] = "did not answer in time";
		} else if (d->notify_status < 0) {
			failed[nfailed] = d;
			why[nfailed++] = "reported a failure";
		}
	}
	pthread_mutex_unlock(&vm->lock);
	for (unsigned k = 0; k < nfailed; k++)
		emt_dev_fail(vm, failed[k], "device-notify",
			     "device %s %s (%s notification, %d ms deadline)",
			     failed[k]->label, why[k], emt_notify_names[ev],
			     EMT_NOTIFY_TIMEOUT_MS);
}

int emt_notify_answer(struct emt_vm *vm, struct emt_dev *d, int event,
		      uint32_t seq, int status)
{
	int r = 0;

	pthread_mutex_lock(&vm->lock);
	if (seq != d->notify_sent || seq == d->notify_acked ||
	    event != d->notify_event) {
		r = -EPROTO;  /* an answer to nothing we asked */
	} else {
		d->notify_acked = seq;
		d->notify_status = status;
		pthread_cond_broadcast(&vm->cond);
	}
	pthread_mutex_unlock(&vm->lock);
	return r;
}

/* ---- request and answer -------------------------------------------------- */

int emt_dev_call(struct emt_vm *vm, struct emt_dev *d, uint16_t type,
		 const ProtobufCMessage *req, uint16_t answer, int timeout_ms,
		 DevStateData **out)
{
	struct timespec dl;
	int r;

	*out = NULL;
	pthread_mutex_lock(&vm->lock);
	if (d->dead) {
		pthread_mutex_unlock(&vm->lock);
		return -ENODEV;
	}
	d->call_expect = answer;
	d->call_answer = NULL;
	pthread_mutex_unlock(&vm->lock);
	r = ipc_send_pb(&d->chan, type, req, NULL, 0);
	if (r < 0) {
		pthread_mutex_lock(&vm->lock);
		d->call_expect = 0;
		pthread_mutex_unlock(&vm->lock);
		return r;
	}
	emt_deadline(&dl, timeout_ms);
	pthread_mutex_lock(&vm->lock);
	while (!d->call_answer && !d->dead) {
		if (pthread_cond_timedwait(&vm->cond, &vm->lock, &dl) == ETIMEDOUT)
			break;
	}
	*out = d->call_answer;
	d->call_answer = NULL;
	d->call_expect = 0;
	r = *out ? 0 : d->dead ? -ENODEV : -ETIMEDOUT;
	pthread_mutex_unlock(&vm->lock);
	return r;
}

int emt_dev_answer(struct emt_vm *vm, struct emt_dev *d, uint16_t type,
		   DevStateData *msg)
{
	int r = 0;

	pthread_mutex_lock(&vm->lock);
	if (d->call_expect != type || d->call_answer) {
		r = -EPROTO;  /* nobody asked */
	} else {
		d->call_answer = msg;
		pthread_cond_broadcast(&vm->cond);
	}
	pthread_mutex_unlock(&vm->lock);
	return r;
}

/* ---- the operations ----------------------------------------------------- */

static bool emt_op_accepts(const struct emt_op *op, enum vm_state s)
{
	for (unsigned i = 0; i < op->nfrom; i++)
		if (op->from[i] == s)
			return true;
	return false;
}

/* EMT(0)'s extra work on reset: in-kernel devices, image, boot state. */
static int emt_reset_machine(struct emt_vm *vm)
{
	struct emt_load_args a = {
		.image = vm->image, .image_len = vm->image_len,
		.initrd = vm->initrd, .initrd_len = vm->initrd_len,
		.cmdline = vm->cmdline, .ram = vm->ram, .ram_size = vm->ram_size,
	};
	char err[200];
	int r;

	for (unsigned i = 0; i < 3; i++) {
		r = kd_vm_set_irqchip(vm->kvm, &vm->init_irqchip[i]);
		if (r < 0)
			return r;
	}
	r = kd_vm_set_pit(vm->kvm, &vm->init_pit);
	if (r < 0)
		return r;
	/* Conventional memory is cleared; the image loads again. */
	memset(vm->ram, 0, EMT_HIGH_MEM_START);
	r = emt_load_image(&a, &vm->boot, err, sizeof(err));
	if (r < 0) {
		LOG_ERR("reset: cannot load the image again: %s", err);
		return r;
	}
	r = emt_vm_boot_tables(vm, err, sizeof(err));
	if (r < 0) {
		LOG_ERR("reset: %s", err);
		return r;
	}
	return emt_vcpu_boot(&vm->vcpus[0], &vm->boot);
}

static int emt_op_one(unsigned cpu, void *arg)
{
	struct emt_op *op = arg;
	struct emt_vm *vm = op->vm;
	int r;

	if (cpu == vm->ncpus - 1) {
		/* First in: is the operation legal now? */
		enum vm_state s = vm_sm_get(&vm->sm);

		op->found = s;
		if (!emt_op_accepts(op, s))
			return -EPERM;
		r = vm_sm_set(&vm->sm, (int)s, op->during);
		if (r < 0)
			return r;
	}
	if (op->reset) {
		r = emt_vcpu_reset(&vm->vcpus[cpu]);
		if (r < 0)
			return r;
	}
	if (cpu == 0) {
		/* Last in: the devices, then the new state. */
		if (op->reset) {
			r = emt_reset_machine(vm);
			if (r < 0)
				return r;
		}
		if (op->notify >= 0)
			emt_notify_devices(vm, (enum emt_notify)op->notify);
		return vm_sm_set(&vm->sm, (int)op->during, op->to);
	}
	return 0;
}

static int emt_op_run(struct emt_op *op, const char *what, char *err,
		      size_t errlen)
{
	int r;

	op->found = VM_STATE_COUNT;
	r = vm_rendezvous(&op->vm->sync, VM_RDV_DESCENDING | VM_RDV_STOP_ON_ERROR,
			  emt_op_one, op);
	if (r == -EPERM && op->found != VM_STATE_COUNT)
		snprintf(err, errlen, "cannot %s a VM that is %s", what,
			 vm_state_name(op->found));
	else if (r < 0)
		snprintf(err, errlen, "%s failed: %s", what, strerror(-r));
	else if (errlen)
		err[0] = '\0';
	return r;
}

int emt_vm_power_on(struct emt_vm *vm, char *err, size_t errlen)
{
	struct emt_op op = {
		.vm = vm, .from = { VM_STATE_CREATED }, .nfrom = 1,
		.during = VM_STATE_POWERING_ON, .to = VM_STATE_RUNNING,
		.notify = EMT_NOTIFY_POWER_ON,
	};

	return emt_op_run(&op, "power on", err, errlen);
}

int emt_vm_suspend(struct emt_vm *vm, char *err, size_t errlen)
{
	struct emt_op op = {
		.vm = vm, .from = { VM_STATE_RUNNING }, .nfrom = 1,
		.during = VM_STATE_SUSPENDING, .to = VM_STATE_SUSPENDED,
		.notify = EMT_NOTIFY_SUSPEND,
	};

	return emt_op_run(&op, "suspend", err, errlen);
}

/* The suspend at the end of a live save: RUNNING_LS -> SUSPENDED_LS. */
int emt_vm_suspend_ls(struct emt_vm *vm, char *err, size_t errlen)
{
	struct emt_op op = {
		.vm = vm, .from = { VM_STATE_RUNNING_LS }, .nfrom = 1,
		.during = VM_STATE_SUSPENDING_LS, .to = VM_STATE_SUSPENDED_LS,
		.notify = EMT_NOTIFY_SUSPEND,
	};

	return emt_op_run(&op, "suspend", err, errlen);
}

/* A device that is dead cannot be resumed into: say which. */
static int emt_check_devices(struct emt_vm *vm, const char *what, char *err,
			     size_t errlen)
{
	int r = 0;

	pthread_mutex_lock(&vm->lock);
	for (unsigned i = 0; i < vm->ndevs; i++) {
		if (vm->devs[i].dead) {
			snprintf(err, errlen, "cannot %s: device %s has failed; "
				 "power the VM off", what, vm->devs[i].label);
			r = -ENODEV;
			break;
		}
	}
	pthread_mutex_unlock(&vm->lock);
	return r;
}

int emt_vm_resume(struct emt_vm *vm, char *err, size_t errlen)
{
	struct emt_op op = {
		.vm = vm, .from = { VM_STATE_SUSPENDED }, .nfrom = 1,
		.during = VM_STATE_RESUMING, .to = VM_STATE_RUNNING,
		.notify = EMT_NOTIFY_RESUME,
	};
	int r = emt_check_devices(vm, "resume", err, errlen);

	return r < 0 ? r : emt_op_run(&op, "resume", err, errlen);
}

int emt_vm_reset(struct emt_vm *vm, char *err, size_t errlen)
{
	/* The table has RESETTING -> RUNNING only: a suspended VM that is
	 * reset runs again afterwards. */
	struct emt_op op = {
		.vm = vm, .from = { VM_STATE_RUNNING, VM_STATE_SUSPENDED },
		.nfrom = 2, .during = VM_STATE_RESETTING, .to = VM_STATE_RUNNING,
		.notify = EMT_NOTIFY_RESET, .reset = true,
	};
	int r = emt_check_devices(vm, "reset", err, errlen);

	return r < 0 ? r : emt_op_run(&op, "reset", err, errlen);
}

int emt_vm_power_off(struct emt_vm *vm, char *err, size_t errlen)
{
	struct emt_op op = {
		.vm = vm,
		.from = { VM_STATE_RUNNING, VM_STATE_SUSPENDED,
			  VM_STATE_GURU_MEDITATION, VM_STATE_CREATED,
			  VM_STATE_LOAD_FAILURE },
		.nfrom = 5, .during = VM_STATE_POWERING_OFF, .to = VM_STATE_OFF,
		.notify = EMT_NOTIFY_POWER_OFF,
	};

	return emt_op_run(&op, "power off", err, errlen);
}

static const struct emt_vm_ops emt_vmapi_ops = {
	.suspend = emt_vm_suspend,
	.reset = emt_vm_reset,
	.power_off = emt_vm_power_off,
};

void emt_vmapi_attach(struct emt_vm *vm)
{
	vm->ops = &emt_vmapi_ops;
}
