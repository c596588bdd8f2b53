/* SPDX-License-Identifier: MIT */
/*
 * EMTs: one thread per vCPU running KVM_RUN and dispatching its exits.
 *
 * Port I/O and MMIO go to the device that registered the range, through
 * that device's access ring (slot = vCPU id). Unclaimed ports read as all
 * ones and drop writes; both are counted.
 *
 * Between exits an EMT serves requests and rendezvous (vm.h). It runs
 * guest code only while the VM state says so; otherwise it sleeps until
 * there is work. Anyone who needs it out of KVM_RUN pokes it: a signal plus
 * immediate_exit, so even a guest spinning with interrupts off stops.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "emt-worker/emt.h"
#include "ipc/log.h"
#include "policy/sbx.h"
#include "proto/msgtypes.h"
#include "worker.pb-c.h"

#define EMT_POKE_SIGNAL SIGUSR1
/* KVM_RUN failing with EAGAIN this many times in a row is fatal. */
#define EMT_MAX_EAGAIN 100000u
#define EMT_NS_PER_SEC 1000000000ull
/* What a read nobody answers returns: all ones, as from an undriven bus. */
#define EMT_OPEN_BUS 0xff

static void emt_wake_main(struct emt_vm *vm)
{
	uint64_t one = 1;

	if (write(vm->wake_fd, &one, sizeof(one)) < 0)
		LOG_ERR("cannot wake the main thread: %s", strerror(errno));
}

void emt_vm_end(struct emt_vm *vm, enum emt_end end, uint32_t code,
		const char *error_id, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&vm->lock);
	if (!vm->ended) {
		vm->ended = true;
		vm->end = end;
		vm->end_code = code;
		snprintf(vm->end_id, sizeof(vm->end_id), "%s",
			 error_id ? error_id : "");
		va_start(ap, fmt);
		vsnprintf(vm->end_msg, sizeof(vm->end_msg), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&vm->lock);
	emt_wake_main(vm);
}

static int emt_power_off_req(unsigned cpu, void *arg)
{
	struct emt_vm *vm = arg;
	char err[160];

	(void)cpu;
	return vm->ops->power_off(vm, err, sizeof(err));
}

void emt_vm_request_power_off(struct emt_vm *vm)
{
	atomic_store(&vm->powering_off, true);
	vm_req_call(&vm->sync, VM_CPU_ANY, VM_REQ_NO_WAIT | VM_REQ_POKE,
		    emt_power_off_req, vm, NULL);
}

void emt_vm_guest_exit(struct emt_vm *vm, uint32_t code, const char *label)
{
	emt_vm_end(vm, EMT_END_DEBUG_EXIT, code, NULL, "guest wrote %u to %s",
		   code, label);
	emt_vm_request_power_off(vm);
}

static int emt_suspend_req(unsigned cpu, void *arg)
{
	struct emt_vm *vm = arg;
	char err[160];

	(void)cpu;
	/* Refused quietly when the VM is not running (already suspended,
	 * powering off, ...): the error has been reported either way. */
	vm->ops->suspend(vm, err, sizeof(err));
	return 0;
}

static int emt_guru_one(unsigned cpu, void *arg)
{
	struct emt_vm *vm = arg;

	(void)cpu;
	return vm_sm_set(&vm->sm, VM_STATE_RUNNING, VM_STATE_GURU_MEDITATION);
}

static int emt_guru_req(unsigned cpu, void *arg)
{
	struct emt_vm *vm = arg;

	(void)cpu;
	vm_rendezvous(&vm->sync, VM_RDV_ONCE, emt_guru_one, vm);
	return 0;
}

void emt_vm_runtime_error(struct emt_vm *vm, unsigned flags,
			  const char *error_id, const char *fmt, ...)
{
	VmRuntimeError ev = VM_RUNTIME_ERROR__INIT;
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	LOG_WARN("runtime error (%s): %s", error_id, msg);
	/* Should the VM end from here on, this is why. */
	if (flags & (EMT_RTERR_FATAL | EMT_RTERR_SUSPEND))
		emt_vm_end(vm, EMT_END_ERROR, 0, error_id, "%s", msg);
	ev.flags = flags;
	ev.error_id = (char *)error_id;
	ev.message = msg;
	if (vm->broker && vm->broker->fd >= 0)
		ipc_send_pb(vm->broker, MSG_VM_RUNTIME_ERROR, &ev.base, NULL, 0);
	/* The state change itself happens on an EMT, after this returns. */
	if (flags & EMT_RTERR_FATAL)
		vm_req_call(&vm->sync, VM_CPU_ANY, VM_REQ_NO_WAIT | VM_REQ_POKE,
			    emt_guru_req, vm, NULL);
	else if (flags & EMT_RTERR_SUSPEND)
		vm_req_call(&vm->sync, VM_CPU_ANY, VM_REQ_NO_WAIT | VM_REQ_POKE,
			    emt_suspend_req, vm, NULL);
}

/* ---- device failure ----------------------------------------------------- */

static void emt_dev_fail_locked(struct emt_vm *vm, struct emt_dev *d)
{
	d->dead = true;
	pthread_cond_broadcast(&vm->cond);
}

void emt_dev_fail(struct emt_vm *vm, struct emt_dev *d, const char *error_id,
		  const char *fmt, ...)
{
	char msg[200];
	bool was_dead;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&vm->lock);
	was_dead = d->dead;
	emt_dev_fail_locked(vm, d);
	pthread_mutex_unlock(&vm->lock);
	if (was_dead)
		return;
	/*
	 * The suspend is queued first: an EMT that sees the ring fail below
	 * stops running guest code, and must find the suspend waiting when
	 * it looks for work, not a window in which it could run on.
	 */
	emt_vm_runtime_error(vm, EMT_RTERR_SUSPEND, error_id, "%s", msg);
	/* Pending and future accesses fail at once instead of hanging. */
	ipc_ring_shutdown(d->ring);
}

/* ---- poking ------------------------------------------------------------- */

static void emt_poke_handler(int sig)
{
	(void)sig;  /* only here to interrupt KVM_RUN */
}

int emt_poke_init(void)
{
	struct sigaction sa = { .sa_handler = emt_poke_handler };

	sigemptyset(&sa.sa_mask);
	return sigaction(EMT_POKE_SIGNAL, &sa, NULL) < 0 ? -errno : 0;
}

static void emt_poke(void *ctx, unsigned cpu)
{
	struct emt_vm *vm = ctx;
	struct emt_vcpu *c = &vm->vcpus[cpu];

	if (cpu >= vm->ncpus || !c->kv)
		return;
	kd_vcpu_request_exit(c->kv, true);
	if (c->started)
		pthread_kill(c->thread, EMT_POKE_SIGNAL);
}

static void emt_state_changed(void *ctx, enum vm_state old_state,
			      enum vm_state new_state)
{
	struct emt_vm *vm = ctx;
	VmStateChanged ev = VM_STATE_CHANGED__INIT;

	atomic_store(&vm->guest_runs, vm_state_runs_guest(new_state));
	atomic_fetch_add(&vm->state_gen, 1);
	LOG_DBG("state %s -> %s", vm_state_name(old_state),
		vm_state_name(new_state));
	ev.old_state = (char *)vm_state_name(old_state);
	ev.new_state = (char *)vm_state_name(new_state);
	if (vm->broker && vm->broker->fd >= 0)
		ipc_send_pb(vm->broker, MSG_VM_STATE, &ev.base, NULL, 0);
	/* Sleeping EMTs start running; the main thread sees OFF. */
	vm_sync_wake_all(&vm->sync);
	emt_wake_main(vm);
}

int emt_vm_init(struct emt_vm *vm, unsigned ncpus)
{
	pthread_condattr_t ca;
	int r;

	vm->ncpus = ncpus;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&vm->cond, &ca);
	pthread_condattr_destroy(&ca);
	vm_sm_init(&vm->sm);
	r = vm_sm_register(&vm->sm, emt_state_changed, vm);
	if (r < 0)
		return r;
	return vm_sync_init(&vm->sync, ncpus, emt_poke, vm);
}

/* ---- exits -------------------------------------------------------------- */

static uint64_t emt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * EMT_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

_Static_assert(EMT_MAX_DEVICES <= 32, "posted_devs has a bit per device");

/* May this write be posted (its result is not observable at once)? */
static bool emt_dev_write_posted(const struct emt_dev *d, unsigned region,
				 uint64_t off, unsigned len)
{
	for (unsigned i = 0; i < d->nposted; i++) {
		const struct emt_posted_range *p = &d->posted[i];

		if (p->region == region && off >= p->off &&
		    off - p->off < p->len && len <= p->len - (off - p->off))
			return true;
	}
	return false;
}

/*
 * Wait until the devices have handled every write this vCPU posted, except
 * on `except` (whose ring keeps them in order with what follows anyway).
 * So an access that waits for its answer, or anything the EMT does outside
 * its run loop (a rendezvous, a save, the end), sees every earlier write
 * of the vCPU done: posting reorders a write only with the guest's own
 * instructions and with interrupts. False when a device is gone.
 */
static bool emt_drain_posted(struct emt_vcpu *c, const struct emt_dev *except)
{
	struct emt_vm *vm = c->vm;
	bool ok = true;

	for (unsigned i = 0; c->posted_devs && i < vm->ndevs; i++) {
		struct emt_dev *d = &vm->devs[i];

		if (!(c->posted_devs & (1u << i)) || d == except)
			continue;
		if (ipc_ring_drain(d->ring, c->kv->id) < 0)
			ok = false;
		c->posted_devs &= ~(1u << i);
	}
	return ok;
}

/*
 * Forward one access to a device process. Returns false when the vCPU must
 * stop running guest code (device gone, or it asked for the VM to stop).
 */
static bool emt_dev_access(struct emt_vcpu *c, struct emt_dev *d,
			   unsigned region, uint64_t addr, uint8_t *data,
			   unsigned len, bool write)
{
	struct ipc_access a = {
		.space = (uint8_t)d->regions[region].space,
		.write = write,
		.len = (uint8_t)len,
		.region = (uint8_t)region,
		.addr = addr,
		.off = addr - d->regions[region].base,
	};
	uint64_t t0 = emt_now_ns();
	int r;

	if (write)
		memcpy(&a.data, data, len);
	if (write && emt_dev_write_posted(d, region, a.off, len)) {
		r = ipc_ring_post(d->ring, c->kv->id, &a);
		c->posted_devs |= 1u << (unsigned)(d - c->vm->devs);
		atomic_fetch_add_explicit(&d->posted_writes, 1,
					  memory_order_relaxed);
	} else {
		if (c->posted_devs && !emt_drain_posted(c, d))
			r = -EPIPE;
		else
			r = ipc_ring_call(d->ring, c->kv->id, &a);
	}
	atomic_fetch_add_explicit(&d->access_ns, emt_now_ns() - t0,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&d->accesses, 1, memory_order_relaxed);
	if (r < 0) {
		/* The device is gone and the VM is being suspended because of
		 * it: this vCPU stops here rather than run on a bogus value. */
		if (!write)
			memset(data, EMT_OPEN_BUS, len);
		return false;
	}
	if (!write)
		memcpy(data, &a.data, len);
	if (a.flags & IPC_ACC_F_STOP) {
		if (!d->may_request_exit) {
			emt_dev_fail(c->vm, d, "device-protocol",
				     "device %s asked to stop the VM, which it "
				     "may not do", d->label);
			return true;
		}
		/* debug-exit: the VM ends here, before any vCPU passes this
		 * write (the device's message on the channel would come too
		 * late: another vCPU could reset the machine meanwhile). */
		emt_vm_guest_exit(c->vm, (uint32_t)a.data, d->label);
		return false;
	}
	return true;
}

static bool emt_pio(struct emt_vcpu *c, uint16_t port, uint8_t *data,
		    unsigned len, bool write)
{
	struct emt_vm *vm = c->vm;
	unsigned idx = vm->port_dev[port];

	if (idx == 0) {
		if (write) {
			c->unclaimed_writes++;
		} else {
			memset(data, EMT_OPEN_BUS, len);
			c->unclaimed_reads++;
		}
		return true;
	}
	return emt_dev_access(c, &vm->devs[idx - 1], vm->port_region[port],
			      port, data, len, write);
}

static bool emt_exit_io(struct emt_vcpu *c)
{
	struct kvm_run *run = c->kv->run;
	unsigned size = run->io.size, count = run->io.count;
	bool write = run->io.direction == KVM_EXIT_IO_OUT;
	uint8_t *p = (uint8_t *)run + run->io.data_offset;
	uint64_t span = (uint64_t)size * count;

	c->io_exits++;
	if ((size != 1 && size != 2 && size != 4) ||
	    run->io.data_offset + span > (uint64_t)c->kv->vm->run_size) {
		emt_vm_runtime_error(c->vm, EMT_RTERR_FATAL, "kvm",
				     "vCPU %u: malformed port I/O exit", c->kv->id);
		return false;
	}
	for (unsigned i = 0; i < count; i++, p += size) {
		if (!emt_pio(c, run->io.port, p, size, write))
			return false;
	}
	return true;
}

static bool emt_exit_mmio(struct emt_vcpu *c)
{
	struct kvm_run *run = c->kv->run;
	struct emt_vm *vm = c->vm;
	uint64_t addr = run->mmio.phys_addr;
	unsigned len = run->mmio.len;
	bool write = run->mmio.is_write;

	c->mmio_exits++;
	if (len == 0 || len > 8) {
		emt_vm_runtime_error(vm, EMT_RTERR_FATAL, "kvm",
				     "vCPU %u: malformed MMIO exit", c->kv->id);
		return false;
	}
	for (unsigned i = 0; i < vm->ndevs; i++) {
		struct emt_dev *d = &vm->devs[i];

		for (unsigned j = 0; j < d->nregions; j++) {
			const struct emt_region *rg = &d->regions[j];

			if (rg->space == IPC_SPACE_MMIO && addr >= rg->base &&
			    addr - rg->base < rg->len)
				return emt_dev_access(c, d, j, addr,
						      run->mmio.data, len, write);
		}
	}
	if (write) {
		c->unclaimed_writes++;
	} else {
		memset(run->mmio.data, EMT_OPEN_BUS, len);
		c->unclaimed_reads++;
	}
	return true;
}

static int emt_reset_req(unsigned cpu, void *arg)
{
	struct emt_vm *vm = arg;
	char err[160];
	int r;

	(void)cpu;
	r = vm->ops->reset(vm, err, sizeof(err));
	if (r < 0)
		emt_vm_runtime_error(vm, EMT_RTERR_FATAL, "reset-failed",
				     "guest reset failed: %s", err);
	return r;
}

void emt_vm_request_reset(struct emt_vm *vm)
{
	vm_req_call(&vm->sync, VM_CPU_ANY, VM_REQ_NO_WAIT | VM_REQ_POKE,
		    emt_reset_req, vm, NULL);
}

/* Handle one exit; false when this vCPU must stop running guest code. */
static bool emt_handle_exit(struct emt_vcpu *c)
{
	struct kvm_run *run = c->kv->run;
	struct emt_vm *vm = c->vm;
	unsigned id = c->kv->id;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		return emt_exit_io(c);
	case KVM_EXIT_MMIO:
		return emt_exit_mmio(c);
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_HLT:
		/* Only without an in-kernel LAPIC; we always have one. */
		return true;
	case KVM_EXIT_SHUTDOWN:
		/* A triple fault resets the machine, as on a PC. */
		LOG_INFO("vCPU %u: triple fault: resetting the VM", id);
		emt_vm_request_reset(vm);
		return true;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_RESET) {
			emt_vm_request_reset(vm);
			return true;
		}
		emt_vm_runtime_error(vm, EMT_RTERR_FATAL, "guest-fault",
				     "vCPU %u: unsupported system event %u", id,
				     run->system_event.type);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		emt_vm_runtime_error(vm, EMT_RTERR_FATAL, "guest-fault",
				     "vCPU %u: KVM internal error, suberror %u (an "
				     "instruction KVM cannot emulate?)", id,
				     run->internal.suberror);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		emt_vm_runtime_error(vm, EMT_RTERR_FATAL, "guest-fault",
				     "vCPU %u: VM entry failed, reason 0x%llx", id,
				     (unsigned long long)
				     run->fail_entry.hardware_entry_failure_reason);
		return false;
	default:
		emt_vm_runtime_error(vm, EMT_RTERR_FATAL, "kvm",
				     "vCPU %u: unexpected exit reason %u", id,
				     run->exit_reason);
		return false;
	}
}

/*
 * Run guest code until someone wants this vCPU (a request, a pause, the
 * end); false when it must park after an exit or error it cannot pass.
 */
static bool emt_run_guest(struct emt_vcpu *c, unsigned *eagain)
{
	struct emt_vm *vm = c->vm;
	unsigned id = c->kv->id;
	int r;

	do {
		r = kd_vcpu_run(c->kv);
		if (r == -EAGAIN && ++*eagain > EMT_MAX_EAGAIN) {
			/* KVM cannot start a thread it needs (the task
			 * limit?): say so instead of spinning. */
			emt_vm_runtime_error(vm, EMT_RTERR_FATAL, "kvm",
					     "vCPU %u: KVM_RUN keeps failing "
					     "with EAGAIN", id);
			return false;
		}
		if (r == -EINTR || r == -EAGAIN) {
			kd_vcpu_request_exit(c->kv, false);
			break;
		}
		*eagain = 0;
		if (r < 0) {
			emt_vm_runtime_error(vm, EMT_RTERR_FATAL, "kvm",
					     "vCPU %u: KVM_RUN failed: %s",
					     id, strerror(-r));
			return false;
		}
		c->exits++;
		if (!emt_handle_exit(c))
			return false;
		/* Stay in the fast loop unless someone wants us. */
	} while (atomic_load_explicit(&vm->guest_runs,
				      memory_order_relaxed) &&
		 !atomic_load_explicit(&vm->powering_off,
				       memory_order_relaxed) &&
		 !vm_sync_work_hint(&vm->sync, &c->seen_work));
	return true;
}

static void *emt_thread(void *arg)
{
	struct emt_vcpu *c = arg;
	struct emt_vm *vm = c->vm;
	unsigned id = c->kv->id;
	/* false after an exit this vCPU cannot pass, until the VM's state
	 * changes (a reset, a resume): park_gen is the state then. */
	bool may_run = true;
	unsigned park_gen = 0;
	unsigned eagain = 0;
	sigset_t set;

	sbx_thread_enter("emt", "emt-%u", id);
	vm_sync_emt_register(id);
	sigemptyset(&set);
	sigaddset(&set, EMT_POKE_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	for (;;) {
		/* Read before looking at the state: a change after this
		 * point wakes the wait below instead of being missed. */
		unsigned gen = vm_sync_wake_gen(&vm->sync);
		unsigned sgen = atomic_load(&vm->state_gen);

		vm_emt_service(&vm->sync, id, false);
		if (vm_sync_terminating(&vm->sync))
			break;
		if (!atomic_load(&vm->guest_runs) || !may_run ||
		    atomic_load(&vm->powering_off)) {
			vm_emt_wait(&vm->sync, id, gen, -1);
			/* A new state (reset, resume) gives another chance;
			 * any other wake-up does not. */
			if (!may_run && atomic_load(&vm->state_gen) != park_gen)
				may_run = true;
			continue;
		}
		if (!emt_run_guest(c, &eagain)) {
			may_run = false;
			park_gen = sgen;
		}
		/* Whatever comes next (a request, a rendezvous, a save, the
		 * end) sees this vCPU's posted writes done. */
		if (c->posted_devs)
			emt_drain_posted(c, NULL);
		if (!may_run)
			vm_emt_wait(&vm->sync, id, gen, -1);
	}
	return NULL;
}

int emt_vm_start_emts(struct emt_vm *vm)
{
	sigset_t set, old;
	int r = 0;

	/* EMTs unblock the poke signal themselves; others keep it blocked. */
	sigemptyset(&set);
	sigaddset(&set, EMT_POKE_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct emt_vcpu *c = &vm->vcpus[i];

		/* Each EMT names itself ("emt-N") as it enters its sandbox:
		 * naming another thread needs /proc, which the sandbox lacks. */
		r = -pthread_create(&c->thread, NULL, emt_thread, c);
		if (r < 0)
			break;
		c->started = true;
	}
	return r;
}

void emt_vm_stop_emts(struct emt_vm *vm)
{
	/* An EMT waiting on a device answer must not wait for ever. */
	for (unsigned i = 0; i < vm->ndevs; i++)
		ipc_ring_shutdown(vm->devs[i].ring);
	vm_sync_terminate(&vm->sync);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct emt_vcpu *c = &vm->vcpus[i];

		if (c->started)
			pthread_join(c->thread, NULL);
		c->started = false;
	}
}

/* ---- reset state -------------------------------------------------------- */

int emt_vm_capture_reset_state(struct emt_vm *vm)
{
	int r;

	for (unsigned i = 0; i < 3; i++) {
		vm->init_irqchip[i].chip_id = i;
		r = kd_vm_get_irqchip(vm->kvm, &vm->init_irqchip[i]);
		if (r < 0)
			return r;
	}
	r = kd_vm_get_pit(vm->kvm, &vm->init_pit);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct emt_vcpu *c = &vm->vcpus[i];

		if ((r = kd_vcpu_get_regs(c->kv, &c->init_regs)) < 0 ||
		    (r = kd_vcpu_get_sregs(c->kv, &c->init_sregs)) < 0 ||
		    (r = kd_vcpu_get_fpu(c->kv, &c->init_fpu)) < 0 ||
		    (r = kd_vcpu_get_lapic(c->kv, &c->init_lapic)) < 0 ||
		    (r = kd_vcpu_get_events(c->kv, &c->init_events)) < 0 ||
		    (r = kd_vcpu_get_mp_state(c->kv, &c->init_mp_state)) < 0)
			return r;
		c->init_msrs = calloc(vm->kvm->nmsrs ? vm->kvm->nmsrs : 1,
				      sizeof(*c->init_msrs));
		if (!c->init_msrs)
			return -ENOMEM;
		c->init_nmsrs = vm->kvm->nmsrs;
		r = kd_vcpu_get_msrs(c->kv, vm->kvm->msr_index, c->init_msrs,
				     &c->init_nmsrs);
		if (r < 0)
			return r;
	}
	return 0;
}

int emt_vcpu_reset(struct emt_vcpu *c)
{
	struct kd_vcpu *v = c->kv;
	int r;

	if ((r = kd_vcpu_set_sregs(v, &c->init_sregs)) < 0 ||
	    (r = kd_vcpu_set_regs(v, &c->init_regs)) < 0 ||
	    (r = kd_vcpu_set_fpu(v, &c->init_fpu)) < 0 ||
	    (r = kd_vcpu_set_lapic(v, &c->init_lapic)) < 0 ||
	    (r = kd_vcpu_set_events(v, &c->init_events)) < 0 ||
	    (r = kd_vcpu_set_mp_state(v, c->init_mp_state)) < 0 ||
	    (r = kd_vcpu_set_msrs(v, c->init_msrs, c->init_nmsrs)) < 0)
		return r;
	return 0;
}

int emt_vcpu_boot(struct emt_vcpu *c, const struct emt_boot *boot)
{
	struct kd_vcpu *bsp = c->kv;
	struct kvm_regs regs;
	int r;

	if (boot->mode == EMT_MODE_REAL)
		r = kd_vcpu_setup_real(bsp, 0, (uint16_t)boot->rip);
	else if (boot->mode == EMT_MODE_LONG64)
		r = kd_vcpu_setup_long64(bsp, boot->rip, boot->cr3,
					 boot->gdt_base, boot->gdt_limit);
	else
		r = kd_vcpu_setup_prot32(bsp, (uint32_t)boot->rip);
	if (r < 0)
		return r;
	r = kd_vcpu_get_regs(bsp, &regs);
	if (r < 0)
		return r;
	regs.rax = boot->rax;
	regs.rbx = boot->rbx;
	regs.rdx = boot->rdx;
	regs.rsi = boot->rsi;
	regs.rsp = boot->rsp;
	return kd_vcpu_set_regs(bsp, &regs);
}
