/* SPDX-License-Identifier: MIT */
/*
 * bulkhead-worker: builds one VM from what the broker hands over on fd 3,
 * wires up the device processes, runs the EMTs and reports how the VM ended.
 *
 *   fd 3: channel to the broker. First frame: WorkerInit with the fds
 *         /dev/kvm, guest-RAM memfd, image, [initrd], and per device its
 *         channel and access-ring memfd.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "device.pb-c.h"
#include "emt-worker/boottab.h"
#include "emt-worker/devrules.h"
#include "emt-worker/emt.h"
#include "emt-worker/save.h"
#include "emt-worker/vmapi.h"
#include "ipc/log.h"
#include "policy/sbx.h"
#include "proto/msgtypes.h"
#include "worker.pb-c.h"

#define WK_BROKER_FD 3
#define WK_MIN_MEM (2ull << 20)
#define WK_MAX_MEM (3ull << 30)  /* below the 32-bit MMIO hole */
#define WK_REGISTER_TIMEOUT_MS 10000
#define WK_MAX_CMDLINE 4096
/* Guest memory comes in whole pages. */
#define WK_PAGE_SIZE 4096
/* The x86 I/O port space: ports 0-0xffff (emt.h's port_dev[]). */
#define WK_PIO_SPACE 0x10000
/* A device kind must fit struct emt_dev's kind[] with its NUL. */
#define WK_MAX_KIND sizeof(((struct emt_dev *)0)->kind)
/* A live save's final-pass budget when VmSave gives none (0). */
#define WK_DEFAULT_MAX_DOWNTIME_MS 250

struct wk {
	struct emt_vm *vm;
	struct ipc_chan broker;
	struct ipc_msg *msg;
	WorkerInit *init;
	int kvm_fd, ram_fd, image_fd, initrd_fd, stream_fd;
	pthread_mutex_t save_lock;
	bool saving;                  /* a saver thread runs */
	int dev_chan_fd[EMT_MAX_DEVICES];
	int dev_ring_fd[EMT_MAX_DEVICES];
	const char *image_kind;
};

/* ---- bootstrap: WorkerInit ---------------------------------------------- */

static int wk_check_init(const WorkerInit *in, unsigned nfds, char *err,
			 size_t errlen)
{
	unsigned want = 2 + (in->no_image ? 0 : 1) + (in->has_initrd ? 1 : 0) +
			(in->restore ? 1 : 0) + 2 * (unsigned)in->n_devices;

	if (in->cpus < 1 || in->cpus > KD_MAX_VCPUS) {
		snprintf(err, errlen, "%u vCPUs requested, 1 to %u supported",
			 in->cpus, KD_MAX_VCPUS);
		return -EINVAL;
	}
	if (in->mem_size < WK_MIN_MEM || in->mem_size > WK_MAX_MEM ||
	    in->mem_size % WK_PAGE_SIZE) {
		snprintf(err, errlen, "guest memory of %" PRIu64 " bytes is "
			 "outside 2 MiB..3 GiB or not page-aligned", in->mem_size);
		return -EINVAL;
	}
	if (strlen(in->cmdline) >= WK_MAX_CMDLINE) {
		snprintf(err, errlen, "command line is longer than %u bytes",
			 WK_MAX_CMDLINE - 1);
		return -EINVAL;
	}
	if (in->no_image && !in->restore) {
		snprintf(err, errlen, "no image to boot");
		return -EINVAL;
	}
	if (in->n_devices > EMT_MAX_DEVICES) {
		snprintf(err, errlen, "%zu devices, at most %u", in->n_devices,
			 EMT_MAX_DEVICES);
		return -EINVAL;
	}
	for (size_t i = 0; i < in->n_devices; i++) {
		const DeviceSpec *d = in->devices[i];

		if (d->n_regions > EMT_MAX_DEV_REGIONS ||
		    d->n_irqs > EMT_MAX_DEV_IRQS ||
		    strlen(d->kind) >= WK_MAX_KIND) {
			snprintf(err, errlen, "device %zu is malformed", i);
			return -EINVAL;
		}
		for (size_t j = 0; j < d->n_regions; j++) {
			const RegionSpec *rg = d->regions[j];

			if (rg->space > IPC_SPACE_MMIO || rg->len == 0 ||
			    rg->addr + rg->len < rg->addr ||
			    (rg->space == IPC_SPACE_PIO &&
			     rg->addr + rg->len > WK_PIO_SPACE)) {
				snprintf(err, errlen, "device %s has a bad "
					 "region", d->kind);
				return -EINVAL;
			}
		}
	}
	if (nfds != want) {
		snprintf(err, errlen, "WorkerInit carries %u fds, expected %u",
			 nfds, want);
		return -EPROTO;
	}
	return 0;
}

/* IPC_KEEP: the worker keeps its WorkerInit (w->init). */
static int wk_on_init(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct wk *w = ctx;
	WorkerInit *in = (WorkerInit *)pb;
	char err[160];
	unsigned k = 0;
	int r;

	r = wk_check_init(in, m->nfds, err, sizeof(err));
	if (r < 0) {
		LOG_ERR("bad WorkerInit: %s", err);
		worker_init__free_unpacked(in, NULL);
		return r;
	}
	w->init = in;
	w->kvm_fd = ipc_msg_take_fd(m, k++);
	w->ram_fd = ipc_msg_take_fd(m, k++);
	w->image_fd = in->no_image ? -1 : ipc_msg_take_fd(m, k++);
	w->initrd_fd = in->has_initrd ? ipc_msg_take_fd(m, k++) : -1;
	w->stream_fd = in->restore ? ipc_msg_take_fd(m, k++) : -1;
	for (size_t i = 0; i < in->n_devices; i++) {
		w->dev_chan_fd[i] = ipc_msg_take_fd(m, k++);
		w->dev_ring_fd[i] = ipc_msg_take_fd(m, k++);
	}
	return 0;
}

/* WorkerInit's fds: /dev/kvm, guest RAM, the image, the initrd, the saved
 * state, and a channel and a ring per device (wk_check_init counts). */
#define WK_INIT_MAX_FDS (5 + 2 * EMT_MAX_DEVICES)
static const struct ipc_handler wk_init_tab[] = {
	{ .type = MSG_WORKER_INIT, .flags = IPC_PERMIT | IPC_ONCE | IPC_KEEP,
	  .name = "init", .desc = &worker_init__descriptor, .fn = wk_on_init,
	  .max_fds = WK_INIT_MAX_FDS },
};
static const struct ipc_phase wk_init_phase = { .name = "init",
						.tab = wk_init_tab, .n = 1 };

/* Read a whole file from fd, at most max bytes. */
static int wk_read_fd(int fd, size_t max, uint8_t **out, size_t *out_len)
{
	size_t cap = 1 << 20, len = 0;
	uint8_t *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			uint8_t *nb;

			if (cap > max) {
				free(buf);
				return -E2BIG;
			}
			cap *= 2;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = -errno;

			free(buf);
			return e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		free(buf);
		return -E2BIG;
	}
	*out = buf;
	*out_len = len;
	return 0;
}

/* ---- building the VM ---------------------------------------------------- */

static int wk_map_ram(struct wk *w)
{
	struct emt_vm *vm = w->vm;
	struct stat st;

	if (fstat(w->ram_fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size != w->init->mem_size)
		return -EINVAL;
	vm->ram_size = w->init->mem_size;
	vm->ram_fd = w->ram_fd;
	vm->ram = mmap(NULL, vm->ram_size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_NORESERVE, w->ram_fd, 0);
	if (vm->ram == MAP_FAILED) {
		vm->ram = NULL;
		return -errno;
	}
	return 0;
}

/* Read the image (and initrd) and load it; the buffers stay with the VM
 * so that a reset can boot the image again. */
static int wk_load(struct wk *w, char *err, size_t errlen)
{
	struct emt_vm *vm = w->vm;
	struct emt_load_args a;
	int r;

	if (w->image_fd < 0)
		return 0;  /* restoring: the image comes with the saved state */
	r = wk_read_fd(w->image_fd, vm->ram_size, &vm->image, &vm->image_len);
	if (r < 0) {
		snprintf(err, errlen, "cannot read the image: %s%s",
			 strerror(-r), r == -E2BIG ? " (larger than guest RAM)" : "");
		return r;
	}
	if (w->initrd_fd >= 0) {
		r = wk_read_fd(w->initrd_fd, vm->ram_size, &vm->initrd,
			       &vm->initrd_len);
		if (r < 0) {
			snprintf(err, errlen, "cannot read the initrd: %s%s",
				 strerror(-r),
				 r == -E2BIG ? " (larger than guest RAM)" : "");
			return r;
		}
	}
	vm->cmdline = strdup(w->init->cmdline);
	if (!vm->cmdline)
		return -ENOMEM;
	a = (struct emt_load_args){
		.image = vm->image, .image_len = vm->image_len,
		.initrd = vm->initrd, .initrd_len = vm->initrd_len,
		.cmdline = vm->cmdline,
		.ram = vm->ram, .ram_size = vm->ram_size,
	};
	return emt_load_image(&a, &vm->boot, err, errlen);
}

/*
 * Create the vCPUs, remember everyone's power-on state for reset, then
 * set up the boot processor. Application processors stay in KVM's
 * wait-for-SIPI state until the guest starts them with INIT/SIPI.
 */
static int wk_setup_vcpus(struct wk *w)
{
	struct emt_vm *vm = w->vm;
	int r;

	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct emt_vcpu *c = &vm->vcpus[i];

		c->vm = vm;
		r = kd_vcpu_create(vm->kvm, i, &c->kv);
		if (r < 0)
			return r;
		r = kd_vcpu_set_cpuid(c->kv);
		if (r < 0)
			return r;
	}
	r = emt_vm_capture_reset_state(vm);
	if (r < 0)
		return r;
	if (w->init->restore)
		return 0;  /* RAM and vCPU state come from the stream */
	return emt_vcpu_boot(&vm->vcpus[0], &vm->boot);
}

/* ---- devices ------------------------------------------------------------ */

struct wk_reg_ctx {
	struct wk *w;
	struct emt_dev *d;
	const DeviceSpec *spec;
	char err[160];
};

/* A registration must be exactly what the broker configured. */
static int wk_check_registration(struct wk_reg_ctx *x, const DevRegister *reg)
{
	const DeviceSpec *s = x->spec;

	if (strcmp(reg->kind, s->kind) != 0 || reg->instance != s->instance) {
		snprintf(x->err, sizeof(x->err), "registered as %.24s#%u",
			 reg->kind, reg->instance);
		return -EPERM;
	}
	if (reg->n_regions != s->n_regions || reg->n_irqs != s->n_irqs) {
		snprintf(x->err, sizeof(x->err), "registered %zu regions and %zu "
			 "IRQs, configured %zu and %zu", reg->n_regions,
			 reg->n_irqs, s->n_regions, s->n_irqs);
		return -EPERM;
	}
	for (size_t i = 0; i < reg->n_regions; i++) {
		const DevRegion *a = reg->regions[i];
		const RegionSpec *b = s->regions[i];

		if (a->space != b->space || a->addr != b->addr ||
		    a->len != b->len) {
			snprintf(x->err, sizeof(x->err), "region %zu differs "
				 "from the configuration", i);
			return -EPERM;
		}
	}
	for (size_t i = 0; i < reg->n_irqs; i++) {
		if (reg->irqs[i] != s->irqs[i]) {
			snprintf(x->err, sizeof(x->err), "IRQ %u is not the "
				 "configured %u", reg->irqs[i], s->irqs[i]);
			return -EPERM;
		}
	}
	return 0;
}

#define WK_MAX_REG_FDS (2 * EMT_MAX_DEV_IRQS + 8)

/*
 * Posted-write ranges and doorbells must lie inside the device's regions;
 * the posted ones are recorded as they pass.
 */
static int wk_reg_take_ranges(struct wk_reg_ctx *x, const DevRegister *reg)
{
	struct emt_dev *d = x->d;
	int r = 0;

	for (size_t i = 0; r == 0 && i < reg->n_posted; i++) {
		const DevPosted *p = reg->posted[i];

		if (!emt_dev_posted_ok(d, p->region, p->off, p->len)) {
			snprintf(x->err, sizeof(x->err), "posted-write range "
				 "%zu lies outside the device's regions, or "
				 "the device may stop the VM", i);
			r = -EPERM;
			break;
		}
		d->posted[i].region = p->region;
		d->posted[i].off = p->off;
		d->posted[i].len = p->len;
		d->nposted = (unsigned)i + 1;
	}
	for (size_t i = 0; r == 0 && i < reg->n_doorbells; i++) {
		if (!emt_dev_doorbell_ok(d, reg->doorbells[i]->region,
					 reg->doorbells[i]->off,
					 reg->doorbells[i]->len)) {
			snprintf(x->err, sizeof(x->err), "doorbell %zu lies "
				 "outside the device's regions", i);
			r = -EPERM;
		}
	}
	return r;
}

/*
 * An irqfd for each of the device's IRQs (with a resample fd for a level
 * one), added to fds[*nfds] for the device.
 */
static int wk_reg_bind_irqs(struct wk_reg_ctx *x, const DevRegister *reg,
			    int *fds, unsigned *nfds)
{
	struct emt_vm *vm = x->w->vm;
	struct emt_dev *d = x->d;
	int r = 0;

	for (unsigned i = 0; r == 0 && i < d->nirqs; i++) {
		bool level = reg->n_irq_flags && (reg->irq_flags[i] & 1);
		int fd = eventfd(0, EFD_CLOEXEC), rfd = -1;

		if (fd < 0) {
			r = -errno;
			break;
		}
		fds[(*nfds)++] = fd;
		if (level) {
			rfd = eventfd(0, EFD_CLOEXEC);
			if (rfd < 0) {
				r = -errno;
				break;
			}
			fds[(*nfds)++] = rfd;
		}
		r = kd_vm_irqfd(vm->kvm, fd, d->irqs[i], rfd);
		if (r < 0)
			snprintf(x->err, sizeof(x->err), "cannot bind IRQ %u: "
				 "%s", d->irqs[i], strerror(-r));
	}
	return r;
}

/* An ioeventfd for each doorbell, added to fds[*nfds] for the device. */
static int wk_reg_bind_doorbells(struct wk_reg_ctx *x, const DevRegister *reg,
				 int *fds, unsigned *nfds)
{
	struct emt_vm *vm = x->w->vm;
	struct emt_dev *d = x->d;
	int r = 0;

	for (size_t i = 0; r == 0 && i < reg->n_doorbells; i++) {
		const DevDoorbell *b = reg->doorbells[i];
		const struct emt_region *rg = &d->regions[b->region];
		int fd = eventfd(0, EFD_CLOEXEC);

		if (fd < 0) {
			r = -errno;
			break;
		}
		fds[(*nfds)++] = fd;
		r = kd_vm_ioeventfd(vm->kvm, fd, rg->base + b->off, b->len,
				    rg->space == IPC_SPACE_PIO);
		if (r < 0)
			snprintf(x->err, sizeof(x->err), "cannot set doorbell "
				 "%zu: %s", i, strerror(-r));
	}
	return r;
}

static int wk_on_register(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct wk_reg_ctx *x = ctx;
	struct emt_dev *d = x->d;
	DevRegistered ok = DEV_REGISTERED__INIT;
	int fds[WK_MAX_REG_FDS];
	unsigned nfds = 0;
	const DevRegister *reg = pb;
	int r;

	r = wk_check_registration(x, reg);
	if (r == 0 && ((reg->n_irq_flags && reg->n_irq_flags != reg->n_irqs) ||
		       reg->n_doorbells > 8 ||
		       reg->n_posted > EMT_MAX_DEV_POSTED)) {
		snprintf(x->err, sizeof(x->err), "malformed IRQ flags, "
			 "doorbells or posted writes");
		r = -EPROTO;
	}
	if (r == 0)
		r = wk_reg_take_ranges(x, reg);
	if (r == 0)
		r = wk_reg_bind_irqs(x, reg, fds, &nfds);
	if (r == 0)
		r = wk_reg_bind_doorbells(x, reg, fds, &nfds);
	ok.nirqfds = d->nirqs;
	ok.ndoorbells = (uint32_t)reg->n_doorbells;
	if (r == 0)
		r = ipc_send_pb(&d->chan, MSG_DEV_REGISTERED, &ok.base, fds, nfds);
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);  /* KVM and the device keep their own */
	return r;
}

/* A device's first word: its registration, no fds. */
static const struct ipc_handler wk_register_tab[] = {
	{ .type = MSG_DEV_REGISTER, .flags = IPC_PERMIT | IPC_ONCE,
	  .name = "register", .desc = &dev_register__descriptor,
	  .fn = wk_on_register },
};
static const struct ipc_phase wk_register_phase = {
	.name = "registering", .tab = wk_register_tab, .n = 1,
};

static int wk_claim_ports(struct emt_vm *vm, unsigned idx, char *err,
			  size_t errlen)
{
	struct emt_dev *d = &vm->devs[idx];

	for (unsigned j = 0; j < d->nregions; j++) {
		const struct emt_region *rg = &d->regions[j];

		if (rg->space != IPC_SPACE_PIO)
			continue;
		for (uint64_t p = rg->base; p < rg->base + rg->len; p++) {
			if (vm->port_dev[p]) {
				snprintf(err, errlen, "port 0x%" PRIx64 " of %s "
					 "is already claimed by %s", p, d->label,
					 vm->devs[vm->port_dev[p] - 1].label);
				return -EBUSY;
			}
			vm->port_dev[p] = (uint8_t)(idx + 1);
			vm->port_region[p] = (uint8_t)j;
		}
	}
	return 0;
}

static int wk_setup_device(struct wk *w, unsigned idx, char *err,
			   size_t errlen)
{
	struct emt_vm *vm = w->vm;
	const DeviceSpec *s = w->init->devices[idx];
	struct emt_dev *d = &vm->devs[idx];
	struct wk_reg_ctx x = { .w = w, .d = d, .spec = s };
	struct ipc_phase_state st = { 0 };
	struct pollfd p;
	int r;

	snprintf(d->kind, sizeof(d->kind), "%s", s->kind);
	d->instance = s->instance;
	snprintf(d->label, sizeof(d->label), "%s#%u", s->kind, s->instance);
	d->nregions = (unsigned)s->n_regions;
	for (unsigned j = 0; j < d->nregions; j++) {
		d->regions[j].space = (uint8_t)s->regions[j]->space;
		d->regions[j].base = s->regions[j]->addr;
		d->regions[j].len = s->regions[j]->len;
	}
	d->nirqs = (unsigned)s->n_irqs;
	for (unsigned j = 0; j < d->nirqs; j++)
		d->irqs[j] = s->irqs[j];
	d->may_request_exit = s->may_request_exit;
	d->may_request_reset = s->may_request_reset;
	d->may_request_poweroff = s->may_request_poweroff;
	ipc_chan_init(&d->chan, w->dev_chan_fd[idx], d->label);
	w->dev_chan_fd[idx] = -1;
	r = ipc_ring_map(w->dev_ring_fd[idx], &d->ring);
	close(w->dev_ring_fd[idx]);
	w->dev_ring_fd[idx] = -1;
	if (r < 0) {
		snprintf(err, errlen, "cannot map the access ring of %s: %s",
			 d->label, strerror(-r));
		return r;
	}
	if (ipc_ring_nslots(d->ring) < vm->ncpus) {
		snprintf(err, errlen, "the access ring of %s has too few slots",
			 d->label);
		return -EINVAL;
	}
	r = wk_claim_ports(vm, idx, err, errlen);
	if (r < 0)
		return r;

	p = (struct pollfd){ .fd = d->chan.fd, .events = POLLIN };
	r = poll(&p, 1, WK_REGISTER_TIMEOUT_MS);
	if (r == 0) {
		snprintf(err, errlen, "device %s did not register within %d ms",
			 d->label, WK_REGISTER_TIMEOUT_MS);
		return -ETIMEDOUT;
	}
	r = ipc_recv(&d->chan, w->msg);
	if (r < 0) {
		snprintf(err, errlen, "device %s failed before registering (%s)",
			 d->label, r == -ECONNRESET ? "it exited" : strerror(-r));
		return r;
	}
	r = ipc_dispatch(&d->chan, &wk_register_phase, &st, &x, w->msg);
	ipc_msg_close_fds(w->msg);
	if (r < 0) {
		snprintf(err, errlen, "device %s: registration refused: %s",
			 d->label, x.err[0] ? x.err : strerror(-r));
		return r;
	}
	return 0;
}

/* ---- running ------------------------------------------------------------ */

/* A lifecycle operation for the broker, run on an EMT (the main thread
 * must stay free to read device answers); the EMT sends the reply. */
struct wk_ctl {
	struct wk *w;
	VmControl__Op op;
	uint32_t seq;
};

static void wk_reply(struct wk *w, uint32_t seq, int status, const char *msg)
{
	VmControlReply rep = VM_CONTROL_REPLY__INIT;

	rep.seq = seq;
	rep.status = status;
	rep.message = (char *)msg;
	rep.state = (char *)vm_state_name(vm_sm_get(&w->vm->sm));
	if (ipc_send_pb(&w->broker, MSG_VM_CONTROL_REPLY, &rep.base, NULL, 0) < 0)
		LOG_WARN("cannot answer the broker");
}

static int wk_ctl_run(unsigned cpu, void *arg)
{
	struct wk_ctl *ctl = arg;
	struct emt_vm *vm = ctl->w->vm;
	char err[200] = "";
	int r;

	(void)cpu;
	switch (ctl->op) {
	case VM_CONTROL__OP__SUSPEND:
		r = emt_vm_suspend(vm, err, sizeof(err));
		break;
	case VM_CONTROL__OP__RESUME:
		r = emt_vm_resume(vm, err, sizeof(err));
		break;
	case VM_CONTROL__OP__RESET:
		r = emt_vm_reset(vm, err, sizeof(err));
		break;
	case VM_CONTROL__OP__POWER_OFF:
		emt_vm_end(vm, EMT_END_POWER_OFF, 0, NULL,
			   "powered off by the host");
		r = emt_vm_power_off(vm, err, sizeof(err));
		break;
	default:
		r = -EINVAL;
		snprintf(err, sizeof(err), "unknown operation %d", ctl->op);
		break;
	}
	if (r == -ESHUTDOWN)
		snprintf(err, sizeof(err), "the VM is already shutting down");
	wk_reply(ctl->w, ctl->seq, r, err);
	free(ctl);
	return r;
}

static int wk_on_control(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct wk *w = ctx;
	const VmControl *vc = pb;
	struct wk_ctl *ctl;
	int r;

	ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return -ENOMEM;
	ctl->w = w;
	ctl->op = vc->op;
	ctl->seq = vc->seq;
	r = vm_req_call(&w->vm->sync, VM_CPU_ANY, VM_REQ_NO_WAIT | VM_REQ_POKE,
			wk_ctl_run, ctl, NULL);
	if (r < 0) {
		wk_reply(w, ctl->seq, r, "the VM is shutting down");
		free(ctl);
	}
	return 0;
}

static int wk_on_stats(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct wk *w = ctx;
	struct emt_vm *vm = w->vm;
	const VmStatsReq *req = pb;
	VmStats st = VM_STATS__INIT;
	VcpuStats vs[KD_MAX_VCPUS], *vsp[KD_MAX_VCPUS];
	DeviceStats ds[EMT_MAX_DEVICES], *dsp[EMT_MAX_DEVICES];
	int r;

	st.seq = req->seq;
	st.state = (char *)vm_state_name(vm_sm_get(&vm->sm));
	for (unsigned i = 0; i < vm->ncpus; i++) {
		const struct emt_vcpu *c = &vm->vcpus[i];

		vcpu_stats__init(&vs[i]);
		vs[i].id = i;
		/* Counters of running EMTs: aligned 64-bit loads. */
		vs[i].exits = c->exits;
		vs[i].io_exits = c->io_exits;
		vs[i].mmio_exits = c->mmio_exits;
		st.unclaimed_reads += c->unclaimed_reads;
		st.unclaimed_writes += c->unclaimed_writes;
		vsp[i] = &vs[i];
	}
	st.n_vcpus = vm->ncpus;
	st.vcpus = vsp;
	pthread_mutex_lock(&vm->lock);
	for (unsigned i = 0; i < vm->ndevs; i++) {
		struct emt_dev *d = &vm->devs[i];

		device_stats__init(&ds[i]);
		ds[i].label = d->label;
		ds[i].accesses = atomic_load(&d->accesses);
		ds[i].access_ns_total = atomic_load(&d->access_ns);
		ds[i].state = d->dead ? "failed" : "ok";
		dsp[i] = &ds[i];
	}
	pthread_mutex_unlock(&vm->lock);
	st.n_devices = vm->ndevs;
	st.devices = dsp;
	r = ipc_send_pb(&w->broker, MSG_VM_STATS_REPLY, &st.base, NULL, 0);
	return r;
}

struct wk_save {
	struct wk *w;
	uint32_t seq;
	int fd;
	unsigned flags;
	unsigned max_downtime_ms;
};

/* The saver thread: not an EMT, so a live save leaves every vCPU running. */
static void *wk_save_run(void *arg)
{
	struct wk_save *sv = arg;
	VmSaveReply rep = VM_SAVE_REPLY__INIT;
	struct emt_save_result res;
	char err[256];
	int r;

	r = emt_vm_save(sv->w->vm, sv->fd, sv->flags, sv->max_downtime_ms, &res,
			err, sizeof(err));
	close(sv->fd);  /* done with the file before the broker checks it */
	rep.seq = sv->seq;
	rep.status = r;
	rep.message = err;
	rep.bytes = res.bytes;
	rep.write_errno = res.write_errno;
	rep.passes = res.passes;
	rep.pages = res.pages;
	rep.downtime_ms = res.downtime_ms;
	rep.state = (char *)vm_state_name(vm_sm_get(&sv->w->vm->sm));
	if (ipc_send_pb(&sv->w->broker, MSG_VM_SAVE_REPLY, &rep.base, NULL, 0) < 0)
		LOG_WARN("cannot answer the broker's save request");
	pthread_mutex_lock(&sv->w->save_lock);
	sv->w->saving = false;
	pthread_mutex_unlock(&sv->w->save_lock);
	free(sv);
	return NULL;
}

static int wk_on_save(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct wk *w = ctx;
	const VmSave *req = pb;
	struct wk_save *sv;
	int r;

	if (m->nfds != 1)
		return -EPROTO;  /* the save file is not optional */
	sv = calloc(1, sizeof(*sv));
	if (!sv)
		return -ENOMEM;
	sv->w = w;
	sv->seq = req->seq;
	sv->fd = ipc_msg_take_fd(m, 0);
	sv->flags = (req->keep_running ? EMT_SAVE_KEEP_RUNNING : 0) |
		    (req->live ? EMT_SAVE_LIVE : 0) |
		    (req->stay_suspended ? EMT_SAVE_STAY_SUSPENDED : 0);
	sv->max_downtime_ms = req->max_downtime_ms ? req->max_downtime_ms :
			      WK_DEFAULT_MAX_DOWNTIME_MS;
	pthread_mutex_lock(&w->save_lock);
	r = w->saving ? -EBUSY : 0;
	if (r == 0) {
		pthread_attr_t a;
		pthread_t t;

		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		r = -pthread_create(&t, &a, wk_save_run, sv);
		pthread_attr_destroy(&a);
		w->saving = r == 0;
	}
	pthread_mutex_unlock(&w->save_lock);
	if (r < 0) {
		VmSaveReply rep = VM_SAVE_REPLY__INIT;

		rep.seq = sv->seq;
		rep.status = r;
		rep.message = r == -EBUSY ? "a save is already in progress" :
			      "cannot start saving";
		ipc_send_pb(&w->broker, MSG_VM_SAVE_REPLY, &rep.base, NULL, 0);
		close(sv->fd);
		free(sv);
	}
	return 0;
}

/* What the broker may ask of a running worker. */
static const struct ipc_handler wk_broker_running_tab[] = {
	{ .type = MSG_VM_CONTROL, .flags = IPC_PERMIT, .name = "control",
	  .desc = &vm_control__descriptor, .fn = wk_on_control },
	{ .type = MSG_VM_STATS, .flags = IPC_PERMIT, .name = "stats",
	  .desc = &vm_stats_req__descriptor, .fn = wk_on_stats },
	/* fds: the save file */
	{ .type = MSG_VM_SAVE, .flags = IPC_PERMIT, .name = "save",
	  .desc = &vm_save__descriptor, .fn = wk_on_save, .max_fds = 1 },
};
static const struct ipc_phase wk_broker_running_phase = {
	.name = "running", .tab = IPC_TAB(wk_broker_running_tab),
};

/* ---- what devices may send while running -------------------------------- */

struct wk_dev_ctx {
	struct wk *w;
	struct emt_dev *d;
};

static int wk_on_notify_done(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct wk_dev_ctx *x = ctx;
	const DevNotifyDone *nd = pb;
	int r;

	r = emt_notify_answer(x->w->vm, x->d, (int)nd->event, nd->seq,
			      nd->status);
	return r;
}

static int wk_on_guest_exit(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct wk_dev_ctx *x = ctx;
	struct emt_vm *vm = x->w->vm;
	const DevGuestExit *ge = pb;

	/* Also said by the access's answer (IPC_ACC_F_STOP), which usually
	 * comes first: the first one ends the VM. */
	emt_vm_guest_exit(vm, ge->code, x->d->label);
	return 0;
}

static int wk_on_request_reset(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct wk_dev_ctx *x = ctx;
	struct emt_vm *vm = x->w->vm;

	LOG_INFO("%s pulled the reset line: resetting the VM", x->d->label);
	emt_vm_request_reset(vm);
	return 0;
}

static int wk_on_request_poweroff(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct wk_dev_ctx *x = ctx;
	struct emt_vm *vm = x->w->vm;

	emt_vm_end(vm, EMT_END_POWER_OFF, 0, NULL, "the guest powered off");
	emt_vm_request_power_off(vm);
	return 0;
}

/* IPC_KEEP: the answer goes to the EMT that asked, which frees it. */
static int wk_on_state_data(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct wk_dev_ctx *x = ctx;
	DevStateData *st = (DevStateData *)pb;
	int r;

	r = emt_dev_answer(x->w->vm, x->d, m->type, st);
	if (r < 0)
		dev_state_data__free_unpacked(st, NULL);
	return r;
}

static int wk_on_destruct_done(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct wk_dev_ctx *x = ctx;

	pthread_mutex_lock(&x->w->vm->lock);
	x->d->destructed = true;
	pthread_mutex_unlock(&x->w->vm->lock);
	return 0;
}

/* Each device's running table: every type is known; what it may send
 * depends on what the broker configured it for. */
static void wk_dev_build_phase(struct emt_dev *d)
{
	unsigned n = 0;

	d->tab[n++] = (struct ipc_handler){ .type = MSG_DEV_NOTIFY_DONE,
		.flags = IPC_PERMIT, .name = "notify-done",
		.desc = &dev_notify_done__descriptor, .fn = wk_on_notify_done };
	d->tab[n++] = (struct ipc_handler){ .type = MSG_DEV_DESTRUCT_DONE,
		.flags = IPC_PERMIT | IPC_ONCE, .name = "destruct-done",
		.desc = &dev_destruct_done__descriptor,
		.fn = wk_on_destruct_done };
	d->tab[n++] = (struct ipc_handler){ .type = MSG_DEV_GUEST_EXIT,
		.flags = d->may_request_exit ? IPC_PERMIT : 0,
		.name = "guest-exit", .desc = &dev_guest_exit__descriptor,
		.fn = wk_on_guest_exit };
	d->tab[n++] = (struct ipc_handler){ .type = MSG_DEV_REQUEST_RESET,
		.flags = d->may_request_reset ? IPC_PERMIT : 0,
		.name = "request-reset", .desc = &dev_request_reset__descriptor,
		.fn = wk_on_request_reset };
	d->tab[n++] = (struct ipc_handler){ .type = MSG_DEV_REQUEST_POWEROFF,
		.flags = d->may_request_poweroff ? IPC_PERMIT : 0,
		.name = "request-poweroff",
		.desc = &dev_request_power_off__descriptor,
		.fn = wk_on_request_poweroff };
	d->tab[n++] = (struct ipc_handler){ .type = MSG_DEV_SAVE_DATA,
		.flags = IPC_PERMIT | IPC_KEEP, .name = "save-data",
		.desc = &dev_state_data__descriptor, .fn = wk_on_state_data };
	d->tab[n++] = (struct ipc_handler){ .type = MSG_DEV_LOAD_DONE,
		.flags = IPC_PERMIT | IPC_KEEP, .name = "load-done",
		.desc = &dev_state_data__descriptor, .fn = wk_on_state_data };
	d->phase = (struct ipc_phase){ .name = "running", .tab = d->tab,
				       .n = n };
}

static void wk_device_failed(struct wk *w, struct emt_dev *d, int r)
{
	if (r == -ECONNRESET)
		emt_dev_fail(w->vm, d, "device-died",
			     "device %s exited or was killed", d->label);
	else
		emt_dev_fail(w->vm, d, "device-protocol",
			     "device %s broke protocol (%s)", d->label,
			     strerror(-r));
	ipc_chan_close(&d->chan);
}

/* Serve one readable device channel. */
static void wk_serve_device(struct wk *w, struct emt_dev *d,
			    struct ipc_phase_state *st)
{
	struct wk_dev_ctx x = { w, d };
	int r = ipc_recv(&d->chan, w->msg);

	if (r == 0) {
		r = ipc_dispatch(&d->chan, &d->phase, st, &x, w->msg);
		ipc_msg_close_fds(w->msg);
	}
	if (r < 0)
		wk_device_failed(w, d, r);
}

static bool wk_dev_alive(struct emt_vm *vm, struct emt_dev *d)
{
	bool alive;

	pthread_mutex_lock(&vm->lock);
	alive = !d->dead && d->chan.fd >= 0;
	pthread_mutex_unlock(&vm->lock);
	return alive;
}

/* Until the VM is off: the broker's requests, the devices' messages. */
static void wk_run_loop(struct wk *w)
{
	struct emt_vm *vm = w->vm;
	struct ipc_phase_state bst = { 0 };
	struct ipc_phase_state dst[EMT_MAX_DEVICES] = { { 0 } };

	while (vm_sm_get(&vm->sm) != VM_STATE_OFF) {
		struct pollfd p[2 + EMT_MAX_DEVICES];
		unsigned n = 0;
		int r;

		p[n++] = (struct pollfd){ .fd = vm->wake_fd, .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = w->broker.fd, .events = POLLIN };
		for (unsigned i = 0; i < vm->ndevs; i++)
			p[n++] = (struct pollfd){
				.fd = wk_dev_alive(vm, &vm->devs[i]) ?
				      vm->devs[i].chan.fd : -1,
				.events = POLLIN,
			};
		r = poll(p, n, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			LOG_ERR("poll: %s", strerror(errno));
			break;
		}
		if (p[0].revents) {
			uint64_t v;

			if (read(vm->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				LOG_WARN("wake fd: %s", strerror(errno));
		}
		if (p[1].revents) {
			r = ipc_recv(&w->broker, w->msg);
			if (r == 0) {
				r = ipc_dispatch(&w->broker,
						 &wk_broker_running_phase, &bst,
						 w, w->msg);
				ipc_msg_close_fds(w->msg);
			}
			if (r < 0) {
				/* Without a broker nobody can drive the VM. */
				emt_vm_end(vm, EMT_END_ERROR, 0, "broker-gone",
					   "lost the broker (%s)", strerror(-r));
				ipc_chan_close(&w->broker);
				emt_vm_request_power_off(vm);
			}
		}
		for (unsigned i = 0; i < vm->ndevs; i++) {
			if (p[2 + i].fd >= 0 && p[2 + i].revents)
				wk_serve_device(w, &vm->devs[i], &dst[i]);
		}
	}
}

#define WK_DESTRUCT_TIMEOUT_MS 1000

/* OFF -> DESTROYING -> TERMINATED: devices told to go, EMTs joined. */
static void wk_destroy(struct wk *w)
{
	struct emt_vm *vm = w->vm;
	DevDestruct dd = DEV_DESTRUCT__INIT;
	struct ipc_phase_state dst[EMT_MAX_DEVICES] = { { 0 } };
	int waited = 0;

	vm_sm_set(&vm->sm, VM_STATE_OFF, VM_STATE_DESTROYING);
	for (unsigned i = 0; i < vm->ndevs; i++) {
		struct emt_dev *d = &vm->devs[i];

		if (wk_dev_alive(vm, d))
			ipc_send_pb(&d->chan, MSG_DEV_DESTRUCT, &dd.base, NULL, 0);
	}
	while (waited < WK_DESTRUCT_TIMEOUT_MS) {
		struct pollfd p[EMT_MAX_DEVICES];
		bool pending = false;

		for (unsigned i = 0; i < vm->ndevs; i++) {
			struct emt_dev *d = &vm->devs[i];
			bool wait_for = wk_dev_alive(vm, d) && !d->destructed;

			p[i] = (struct pollfd){ .fd = wait_for ? d->chan.fd : -1,
						.events = POLLIN };
			pending |= wait_for;
		}
		if (!pending)
			break;
		if (poll(p, vm->ndevs, 50) < 0 && errno != EINTR)
			break;
		waited += 50;
		for (unsigned i = 0; i < vm->ndevs; i++)
			if (p[i].fd >= 0 && p[i].revents)
				wk_serve_device(w, &vm->devs[i], &dst[i]);
	}
	emt_vm_stop_emts(vm);
	vm_sm_set(&vm->sm, VM_STATE_DESTROYING, VM_STATE_TERMINATED);
}

static void wk_send_exit(struct wk *w)
{
	struct emt_vm *vm = w->vm;
	VmExited ex = VM_EXITED__INIT;
	ExitCounter c[4 + 2 * EMT_MAX_DEVICES], *cp[4 + 2 * EMT_MAX_DEVICES];
	char names[2 * EMT_MAX_DEVICES][64];
	uint64_t exits = 0, ur = 0, uw = 0;
	unsigned n = 0;
	int r;

	for (unsigned i = 0; i < vm->ncpus; i++) {
		exits += vm->vcpus[i].exits;
		ur += vm->vcpus[i].unclaimed_reads;
		uw += vm->vcpus[i].unclaimed_writes;
	}
	exit_counter__init(&c[n]);
	c[n].name = "exits";
	c[n++].value = exits;
	exit_counter__init(&c[n]);
	c[n].name = "unclaimed-reads";
	c[n++].value = ur;
	exit_counter__init(&c[n]);
	c[n].name = "unclaimed-writes";
	c[n++].value = uw;
	for (unsigned i = 0; i < vm->ndevs; i++) {
		snprintf(names[i], sizeof(names[i]), "accesses:%s",
			 vm->devs[i].label);
		exit_counter__init(&c[n]);
		c[n].name = names[i];
		c[n++].value = atomic_load(&vm->devs[i].accesses);
	}
	for (unsigned i = 0; i < vm->ndevs; i++) {
		if (!vm->devs[i].nposted)
			continue;
		snprintf(names[EMT_MAX_DEVICES + i], sizeof(names[0]),
			 "posted-writes:%s", vm->devs[i].label);
		exit_counter__init(&c[n]);
		c[n].name = names[EMT_MAX_DEVICES + i];
		c[n++].value = atomic_load(&vm->devs[i].posted_writes);
	}
	for (unsigned i = 0; i < n; i++)
		cp[i] = &c[i];
	pthread_mutex_lock(&vm->lock);
	if (!vm->ended) {
		vm->end = EMT_END_POWER_OFF;
		snprintf(vm->end_msg, sizeof(vm->end_msg), "powered off");
	}
	ex.reason = (VmExited__Reason)vm->end;
	ex.code = vm->end_code;
	ex.error_id = vm->end_id;
	ex.message = vm->end_msg;
	pthread_mutex_unlock(&vm->lock);
	ex.n_counters = n;
	ex.counters = cp;
	if (w->broker.fd < 0)
		return;
	r = ipc_send_pb(&w->broker, MSG_VM_EXITED, &ex.base, NULL, 0);
	if (r < 0)
		LOG_ERR("cannot report the VM's end to the broker: %s",
			strerror(-r));
}

static const char *wk_kind_name(enum emt_image_kind k)
{
	switch (k) {
	case EMT_IMAGE_MULTIBOOT:
		return "multiboot";
	case EMT_IMAGE_RAW:
		return "raw";
	case EMT_IMAGE_BZIMAGE:
		return "bzImage";
	}
	return "unknown";
}

/* Build the VM: everything between WorkerInit and the EMTs starting. */
static int wk_build(struct wk *w)
{
	struct emt_vm *vm = w->vm;
	char err[256] = "";
	int r;

	r = emt_vm_init(vm, w->init->cpus);
	if (r < 0) {
		emt_vm_end(vm, EMT_END_ERROR, 0, "internal",
			   "cannot set up the VM: %s", strerror(-r));
		return r;
	}
	emt_vmapi_attach(vm);
	vm->broker = &w->broker;
	r = wk_map_ram(w);
	if (r < 0) {
		emt_vm_end(vm, EMT_END_ERROR, 0, "internal",
			   "cannot map guest RAM: %s", strerror(-r));
		return r;
	}
	r = kd_vm_create(w->kvm_fd, &vm->kvm);
	if (r < 0) {
		emt_vm_end(vm, EMT_END_ERROR, 0, "kvm", "cannot create the VM: %s",
			   strerror(-r));
		return r;
	}
	r = kd_vm_set_memory(vm->kvm, 0, 0, vm->ram_size, vm->ram);
	if (r < 0) {
		emt_vm_end(vm, EMT_END_ERROR, 0, "kvm",
			   "cannot map guest RAM into the VM: %s", strerror(-r));
		return r;
	}
	r = wk_load(w, err, sizeof(err));
	if (r < 0) {
		emt_vm_end(vm, EMT_END_ERROR, 0, "bad-image",
			   "cannot load the image: %s", err);
		return r;
	}
	w->image_kind = w->init->restore ? "saved state" :
			wk_kind_name(vm->boot.kind);
	r = wk_setup_vcpus(w);
	if (r < 0) {
		emt_vm_end(vm, EMT_END_ERROR, 0, "kvm",
			   "cannot set up the vCPUs: %s", strerror(-r));
		return r;
	}
	vm->ndevs = (unsigned)w->init->n_devices;
	for (unsigned i = 0; i < vm->ndevs; i++) {
		r = wk_setup_device(w, i, err, sizeof(err));
		if (r < 0) {
			emt_vm_end(vm, EMT_END_ERROR, 0,
				   r == -ECONNRESET ? "device-died" : "device-protocol",
				   "%s", err);
			return r;
		}
		wk_dev_build_phase(&vm->devs[i]);
	}
	if (!w->init->restore) {
		/* RAM comes from the stream on restore, tables and all. */
		r = emt_vm_boot_tables(vm, err, sizeof(err));
		if (r < 0) {
			emt_vm_end(vm, EMT_END_ERROR, 0, "boot-tables", "%s", err);
			return r;
		}
	}
	return vm_sm_set(&vm->sm, VM_STATE_CREATING, VM_STATE_CREATED);
}

/* Restore: load the stream into the CREATED VM, then resume it. */
static int wk_restore_req(unsigned cpu, void *arg)
{
	struct wk *w = arg;
	struct emt_vm *vm = w->vm;
	char err[300];
	int r;

	(void)cpu;
	r = emt_vm_load(vm, w->stream_fd, err, sizeof(err));
	close(w->stream_fd);
	w->stream_fd = -1;
	if (r == 0)
		r = emt_vm_resume(vm, err, sizeof(err));
	if (r < 0)
		emt_vm_runtime_error(vm, EMT_RTERR_FATAL, "bad-saved-state",
				     "%s", err);
	return r;
}

static int wk_power_on_req(unsigned cpu, void *arg)
{
	struct emt_vm *vm = arg;
	char err[160];
	int r;

	(void)cpu;
	r = emt_vm_power_on(vm, err, sizeof(err));
	if (r < 0)
		emt_vm_runtime_error(vm, EMT_RTERR_FATAL, "power-on",
				     "%s", err);
	return r;
}

/*
 * How many threads encode a save's RAM: the host CPUs we may run on, up to
 * WK_SAVE_MAX_ENCODERS. A save without --live stops the vCPUs, so they
 * are free; a live one shares them with the guest for a while.
 */
#define WK_SAVE_MAX_ENCODERS 4u

static unsigned wk_save_encoders(void)
{
	cpu_set_t set;
	int n;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 1;
	n = CPU_COUNT(&set);
	return n < 1 ? 1 : n > (int)WK_SAVE_MAX_ENCODERS ?
	       WK_SAVE_MAX_ENCODERS : (unsigned)n;
}

/*
 * Lost PIT ticks are dropped, not made up later, as QEMU's user-space PIT
 * does (guests keep time by the TSC, kvmclock or the RTC). KVM's default is
 * to make them up, and leaving that mode costs one SRCU grace period per
 * notifier the PIT drops. That is quick while KVM's IRQ SRCU has been quiet
 * for a while, and 5-20 ms on this kind of host otherwise. If the mode were
 * still on when the VM is destroyed, KVM would leave it then, with the
 * SRCU busy from the teardown: 15 ms between the guest's exit and ours.
 * Just after the EMTs start, the SRCU has been quiet since the devices were
 * wired up, and a slow switch would only hold up this thread's loop, not
 * the guest. Failing to switch changes nothing a guest can see.
 */
static void wk_pit_drop_lost_ticks(struct emt_vm *vm)
{
	int r = kd_vm_set_pit_reinject(vm->kvm, false);

	if (r < 0)
		LOG_WARN("the PIT keeps making up lost ticks (%s); the VM's "
			 "teardown will be slower", strerror(-r));
}

int main(int argc, char **argv)
{
	struct wk w = { .kvm_fd = -1, .ram_fd = -1, .image_fd = -1,
			.initrd_fd = -1, .stream_fd = -1 };
	struct ipc_phase_state st = { 0 };
	WorkerReady ready = WORKER_READY__INIT;
	struct emt_vm *vm;
	int r;

	sbx_enter(argc, argv, "worker-setup");
	ipc_log_init("bulkhead-worker", IPC_LOG_INFO);
	signal(SIGPIPE, SIG_IGN);
	for (unsigned i = 0; i < EMT_MAX_DEVICES; i++)
		w.dev_chan_fd[i] = w.dev_ring_fd[i] = -1;
	w.msg = malloc(sizeof(*w.msg));
	vm = calloc(1, sizeof(*vm));
	if (!w.msg || !vm || emt_poke_init() < 0)
		return 1;
	w.vm = vm;
	vm->save_encoders = wk_save_encoders();
	pthread_mutex_init(&w.save_lock, NULL);
	vm->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->wake_fd < 0)
		return 1;

	ipc_chan_init(&w.broker, WK_BROKER_FD, "broker");
	r = ipc_recv(&w.broker, w.msg);
	if (r == 0) {
		r = ipc_dispatch(&w.broker, &wk_init_phase, &st, &w, w.msg);
		ipc_msg_close_fds(w.msg);
	}
	if (r < 0) {
		LOG_ERR("no usable WorkerInit from the broker (%s)", strerror(-r));
		return 1;
	}

	if (wk_build(&w) < 0) {
		/* Nothing ran: report why and go (devices see us go). */
		wk_send_exit(&w);
		return 0;
	}
	/* Tasks: main thread, EMTs, the saver thread and its encoder helpers,
	 * and KVM's NX huge page recovery thread. */
	sbx_restrict("worker-run", vm->ncpus + 3 + vm->save_encoders - 1);
	ready.vcpus = vm->ncpus;
	ready.image_kind = (char *)w.image_kind;
	r = ipc_send_pb(&w.broker, MSG_WORKER_READY, &ready.base, NULL, 0);
	if (r < 0) {
		LOG_ERR("cannot reach the broker: %s", strerror(-r));
		return 1;
	}
	r = emt_vm_start_emts(vm);
	if (r < 0) {
		emt_vm_end(vm, EMT_END_ERROR, 0, "internal",
			   "cannot start the EMTs: %s", strerror(-r));
		emt_vm_stop_emts(vm);
		wk_send_exit(&w);
		return 0;
	}
	if (w.init->restore)
		vm_req_call(&vm->sync, VM_CPU_ANY, VM_REQ_NO_WAIT | VM_REQ_POKE,
			    wk_restore_req, &w, NULL);
	else
		vm_req_call(&vm->sync, VM_CPU_ANY, VM_REQ_NO_WAIT | VM_REQ_POKE,
			    wk_power_on_req, vm, NULL);
	wk_pit_drop_lost_ticks(vm);
	wk_run_loop(&w);
	wk_destroy(&w);
	wk_send_exit(&w);
	return 0;
}
