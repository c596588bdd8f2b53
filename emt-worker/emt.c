/* SPDX-License-Identifier: MIT */
/*
 * EMTs: one thread per vCPU running KVM_RUN and dispatching its exits.
 *
 * Port I/O and MMIO go to the device that registered the range, through
 * that device's access ring (slot = vCPU id). Unclaimed ports read as all
 * ones and drop writes; both are counted.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "emt-worker/emt.h"
#include "ipc/log.h"

#define EMT_POKE_SIGNAL SIGUSR1

void emt_vm_end(struct emt_vm *vm, enum emt_end end, uint32_t code,
		const char *error_id, const char *fmt, ...)
{
	uint64_t one = 1;
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
	if (write(vm->wake_fd, &one, sizeof(one)) < 0)
		LOG_ERR("cannot wake the main thread: %s", strerror(errno));
}

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

/* Wait, off the CPU, until the VM stops. */
static void emt_park(struct emt_vcpu *c)
{
	struct emt_vm *vm = c->vm;

	pthread_mutex_lock(&vm->lock);
	while (!atomic_load(&vm->stopping))
		pthread_cond_wait(&vm->park_cond, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
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
	int r;

	if (write)
		memcpy(&a.data, data, len);
	r = ipc_ring_call(d->ring, c->kv->id, &a);
	atomic_fetch_add_explicit(&d->accesses, 1, memory_order_relaxed);
	if (r < 0) {
		/* The main thread saw the device go and is ending the VM. */
		if (!write)
			memset(data, 0xff, len);
		return false;
	}
	if (!write)
		memcpy(data, &a.data, len);
	if (a.flags & IPC_ACC_F_STOP) {
		if (!d->may_request_exit) {
			emt_vm_end(c->vm, EMT_END_ERROR, 0, "device-protocol",
				   "device %s asked to stop the VM, which it "
				   "may not do", d->label);
		}
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
			memset(data, 0xff, len);
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

	if ((size != 1 && size != 2 && size != 4) ||
	    run->io.data_offset + span > (uint64_t)c->kv->vm->run_size) {
		emt_vm_end(c->vm, EMT_END_ERROR, 0, "kvm",
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

	if (len == 0 || len > 8) {
		emt_vm_end(vm, EMT_END_ERROR, 0, "kvm",
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
		memset(run->mmio.data, 0xff, len);
		c->unclaimed_reads++;
	}
	return true;
}

/* Handle one exit; false when this vCPU must stop running guest code. */
static bool emt_handle_exit(struct emt_vcpu *c)
{
	struct kvm_run *run = c->kv->run;
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
		emt_vm_end(c->vm, EMT_END_ERROR, 0, "guest-fault",
			   "vCPU %u: triple fault (the guest reset itself; "
			   "guest reset is not supported yet)", id);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN) {
			emt_vm_end(c->vm, EMT_END_POWER_OFF, 0, NULL,
				   "guest powered off");
			return false;
		}
		emt_vm_end(c->vm, EMT_END_ERROR, 0, "guest-fault",
			   "vCPU %u: unsupported system event %u", id,
			   run->system_event.type);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		emt_vm_end(c->vm, EMT_END_ERROR, 0, "guest-fault",
			   "vCPU %u: KVM internal error, suberror %u (an "
			   "instruction KVM cannot emulate?)", id,
			   run->internal.suberror);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		emt_vm_end(c->vm, EMT_END_ERROR, 0, "guest-fault",
			   "vCPU %u: VM entry failed, reason 0x%llx", id,
			   (unsigned long long)
				   run->fail_entry.hardware_entry_failure_reason);
		return false;
	default:
		emt_vm_end(c->vm, EMT_END_ERROR, 0, "kvm",
			   "vCPU %u: unexpected exit reason %u", id,
			   run->exit_reason);
		return false;
	}
}

static void *emt_thread(void *arg)
{
	struct emt_vcpu *c = arg;
	struct emt_vm *vm = c->vm;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, EMT_POKE_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	while (!atomic_load(&vm->stopping)) {
		int r = kd_vcpu_run(c->kv);

		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r < 0) {
			emt_vm_end(vm, EMT_END_ERROR, 0, "kvm",
				   "vCPU %u: KVM_RUN failed: %s", c->kv->id,
				   strerror(-r));
			break;
		}
		c->exits++;
		if (!emt_handle_exit(c))
			break;
	}
	emt_park(c);
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
		char name[16];

		r = -pthread_create(&c->thread, NULL, emt_thread, c);
		if (r < 0)
			break;
		c->started = true;
		snprintf(name, sizeof(name), "emt-%u", i);
		pthread_setname_np(c->thread, name);
	}
	return r;
}

void emt_vm_stop_emts(struct emt_vm *vm)
{
	atomic_store(&vm->stopping, true);
	pthread_mutex_lock(&vm->lock);
	pthread_cond_broadcast(&vm->park_cond);
	pthread_mutex_unlock(&vm->lock);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct emt_vcpu *c = &vm->vcpus[i];

		if (!c->started)
			continue;
		c->kv->run->immediate_exit = 1;
		pthread_kill(c->thread, EMT_POKE_SIGNAL);
	}
	/* An EMT waiting on a device answer must not wait for ever. */
	for (unsigned i = 0; i < vm->ndevs; i++)
		ipc_ring_shutdown(vm->devs[i].ring);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct emt_vcpu *c = &vm->vcpus[i];

		if (c->started)
			pthread_join(c->thread, NULL);
		c->started = false;
	}
}
