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
#include "emt-worker/emt.h"
#include "ipc/log.h"
#include "proto/msgtypes.h"
#include "worker.pb-c.h"

#define WK_BROKER_FD 3
#define WK_MIN_MEM (2ull << 20)
#define WK_MAX_MEM (3ull << 30)  /* below the 32-bit MMIO hole */
#define WK_REGISTER_TIMEOUT_MS 10000
#define WK_MAX_CMDLINE 4096

struct wk {
	struct emt_vm *vm;
	struct ipc_chan broker;
	struct ipc_msg *msg;
	WorkerInit *init;
	int kvm_fd, ram_fd, image_fd, initrd_fd;
	int dev_chan_fd[EMT_MAX_DEVICES];
	int dev_ring_fd[EMT_MAX_DEVICES];
	const char *image_kind;
};

/* ---- bootstrap: WorkerInit ---------------------------------------------- */

static int wk_check_init(const WorkerInit *in, unsigned nfds, char *err,
			 size_t errlen)
{
	unsigned want = 3 + (in->has_initrd ? 1 : 0) + 2 * (unsigned)in->n_devices;

	if (in->cpus < 1 || in->cpus > KD_MAX_VCPUS) {
		snprintf(err, errlen, "%u vCPUs requested, 1 to %u supported",
			 in->cpus, KD_MAX_VCPUS);
		return -EINVAL;
	}
	if (in->mem_size < WK_MIN_MEM || in->mem_size > WK_MAX_MEM ||
	    in->mem_size % 4096) {
		snprintf(err, errlen, "guest memory of %" PRIu64 " bytes is "
			 "outside 2 MiB..3 GiB or not page-aligned", in->mem_size);
		return -EINVAL;
	}
	if (strlen(in->cmdline) >= WK_MAX_CMDLINE) {
		snprintf(err, errlen, "command line is longer than %u bytes",
			 WK_MAX_CMDLINE - 1);
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
		    d->n_irqs > EMT_MAX_DEV_IRQS || strlen(d->kind) >= 24) {
			snprintf(err, errlen, "device %zu is malformed", i);
			return -EINVAL;
		}
		for (size_t j = 0; j < d->n_regions; j++) {
			const RegionSpec *rg = d->regions[j];

			if (rg->space > IPC_SPACE_MMIO || rg->len == 0 ||
			    rg->addr + rg->len < rg->addr ||
			    (rg->space == IPC_SPACE_PIO &&
			     rg->addr + rg->len > 0x10000)) {
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

static int wk_on_init(void *ctx, struct ipc_msg *m)
{
	struct wk *w = ctx;
	WorkerInit *in = ipc_msg_unpack(m, &worker_init__descriptor);
	char err[160];
	unsigned k = 0;
	int r;

	if (!in) {
		LOG_ERR("malformed WorkerInit from the broker");
		return -EPROTO;
	}
	r = wk_check_init(in, m->nfds, err, sizeof(err));
	if (r < 0) {
		LOG_ERR("bad WorkerInit: %s", err);
		worker_init__free_unpacked(in, NULL);
		return r;
	}
	w->init = in;
	w->kvm_fd = ipc_msg_take_fd(m, k++);
	w->ram_fd = ipc_msg_take_fd(m, k++);
	w->image_fd = ipc_msg_take_fd(m, k++);
	w->initrd_fd = in->has_initrd ? ipc_msg_take_fd(m, k++) : -1;
	for (size_t i = 0; i < in->n_devices; i++) {
		w->dev_chan_fd[i] = ipc_msg_take_fd(m, k++);
		w->dev_ring_fd[i] = ipc_msg_take_fd(m, k++);
	}
	return 0;
}

static const struct ipc_handler wk_init_tab[] = {
	{ MSG_WORKER_INIT, IPC_PERMIT | IPC_ONCE, wk_on_init },
};
static const struct ipc_phase wk_init_phase = { "init", wk_init_tab, 1 };

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
	vm->ram = mmap(NULL, vm->ram_size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_NORESERVE, w->ram_fd, 0);
	if (vm->ram == MAP_FAILED) {
		vm->ram = NULL;
		return -errno;
	}
	return 0;
}

static int wk_load(struct wk *w, struct emt_boot *boot, char *err,
		   size_t errlen)
{
	struct emt_vm *vm = w->vm;
	uint8_t *image = NULL, *initrd = NULL;
	size_t image_len = 0, initrd_len = 0;
	struct emt_load_args a;
	int r;

	r = wk_read_fd(w->image_fd, vm->ram_size, &image, &image_len);
	if (r < 0) {
		snprintf(err, errlen, "cannot read the image: %s%s",
			 strerror(-r), r == -E2BIG ? " (larger than guest RAM)" : "");
		return r;
	}
	if (w->initrd_fd >= 0) {
		r = wk_read_fd(w->initrd_fd, vm->ram_size, &initrd, &initrd_len);
		if (r < 0) {
			snprintf(err, errlen, "cannot read the initrd: %s%s",
				 strerror(-r),
				 r == -E2BIG ? " (larger than guest RAM)" : "");
			goto out;
		}
	}
	a = (struct emt_load_args){
		.image = image, .image_len = image_len,
		.initrd = initrd, .initrd_len = initrd_len,
		.cmdline = w->init->cmdline,
		.ram = vm->ram, .ram_size = vm->ram_size,
	};
	r = emt_load_image(&a, boot, err, errlen);
out:
	free(image);
	free(initrd);
	return r;
}

static int wk_setup_vcpus(struct wk *w, const struct emt_boot *boot)
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
	/*
	 * Only the boot processor is set up; application processors wait in
	 * KVM (wait-for-SIPI) until the guest starts them with INIT/SIPI.
	 */
	{
		struct kd_vcpu *bsp = vm->vcpus[0].kv;
		struct kvm_regs regs;

		if (boot->mode == EMT_MODE_REAL)
			r = kd_vcpu_setup_real(bsp, 0, (uint16_t)boot->rip);
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
		regs.rsp = boot->rsp;
		r = kd_vcpu_set_regs(bsp, &regs);
	}
	return r;
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

static int wk_on_register(void *ctx, struct ipc_msg *m)
{
	struct wk_reg_ctx *x = ctx;
	struct emt_vm *vm = x->w->vm;
	struct emt_dev *d = x->d;
	DevRegistered ok = DEV_REGISTERED__INIT;
	int irqfds[EMT_MAX_DEV_IRQS];
	unsigned nfds = 0;
	DevRegister *reg = ipc_msg_unpack(m, &dev_register__descriptor);
	int r;

	if (!reg) {
		snprintf(x->err, sizeof(x->err), "malformed DevRegister");
		return -EPROTO;
	}
	r = wk_check_registration(x, reg);
	dev_register__free_unpacked(reg, NULL);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < d->nirqs; i++) {
		int fd = eventfd(0, EFD_CLOEXEC);

		if (fd < 0) {
			r = -errno;
			goto out;
		}
		irqfds[nfds++] = fd;
		r = kd_vm_irqfd(vm->kvm, fd, d->irqs[i], -1);
		if (r < 0) {
			snprintf(x->err, sizeof(x->err), "cannot bind IRQ %u: "
				 "%s", d->irqs[i], strerror(-r));
			goto out;
		}
	}
	ok.nirqfds = nfds;
	r = ipc_send_pb(&d->chan, MSG_DEV_REGISTERED, &ok.base, irqfds, nfds);
out:
	for (unsigned i = 0; i < nfds; i++)
		close(irqfds[i]);  /* KVM and the device keep their own */
	return r;
}

static const struct ipc_handler wk_register_tab[] = {
	{ MSG_DEV_REGISTER, IPC_PERMIT | IPC_ONCE, wk_on_register },
};
static const struct ipc_phase wk_register_phase = {
	"registering", wk_register_tab, 1
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

static int wk_on_control(void *ctx, struct ipc_msg *m)
{
	struct wk *w = ctx;
	VmControl *vc = ipc_msg_unpack(m, &vm_control__descriptor);
	VmControlReply rep = VM_CONTROL_REPLY__INIT;
	int r;

	if (!vc)
		return -EPROTO;
	rep.seq = vc->seq;
	if (vc->op == VM_CONTROL__OP__POWER_OFF) {
		emt_vm_end(w->vm, EMT_END_POWER_OFF, 0, NULL,
			   "powered off by the host");
		rep.state = "POWERING_OFF";
	} else {
		rep.status = -ENOTSUP;
		rep.message = "not supported yet";
		rep.state = "RUNNING";
	}
	vm_control__free_unpacked(vc, NULL);
	r = ipc_send_pb(&w->broker, MSG_VM_CONTROL_REPLY, &rep.base, NULL, 0);
	return r;
}

static const struct ipc_handler wk_broker_running_tab[] = {
	{ MSG_VM_CONTROL, IPC_PERMIT, wk_on_control },
};
static const struct ipc_phase wk_broker_running_phase = {
	"running", wk_broker_running_tab, 1
};

struct wk_dev_ctx {
	struct wk *w;
	struct emt_dev *d;
};

static int wk_on_guest_exit(void *ctx, struct ipc_msg *m)
{
	struct wk_dev_ctx *x = ctx;
	DevGuestExit *ge = ipc_msg_unpack(m, &dev_guest_exit__descriptor);

	if (!ge)
		return -EPROTO;
	emt_vm_end(x->w->vm, EMT_END_DEBUG_EXIT, ge->code, NULL,
		   "guest wrote %u to %s", ge->code, x->d->label);
	dev_guest_exit__free_unpacked(ge, NULL);
	return 0;
}

/* What a running device may send: debug-exit may ask to end the run. */
static const struct ipc_handler wk_dev_exit_tab[] = {
	{ MSG_DEV_GUEST_EXIT, IPC_PERMIT, wk_on_guest_exit },
};
static const struct ipc_phase wk_dev_running_phase = {
	"running", wk_dev_exit_tab, 0
};
static const struct ipc_phase wk_dev_running_exit_phase = {
	"running", wk_dev_exit_tab, 1
};

static void wk_device_failed(struct wk *w, struct emt_dev *d, int r)
{
	struct emt_vm *vm = w->vm;

	d->dead = true;
	if (r == -ECONNRESET)
		emt_vm_end(vm, EMT_END_ERROR, 0, "device-died",
			   "device %s exited or was killed", d->label);
	else
		emt_vm_end(vm, EMT_END_ERROR, 0, "device-protocol",
			   "device %s broke protocol (%s)", d->label,
			   strerror(-r));
	ipc_chan_close(&d->chan);
	ipc_ring_shutdown(d->ring);
}

static void wk_run_loop(struct wk *w)
{
	struct emt_vm *vm = w->vm;
	struct ipc_phase_state bst = { 0 };

	for (;;) {
		struct pollfd p[2 + EMT_MAX_DEVICES];
		unsigned n = 0;
		int r;

		pthread_mutex_lock(&vm->lock);
		r = vm->ended;
		pthread_mutex_unlock(&vm->lock);
		if (r)
			return;
		p[n++] = (struct pollfd){ .fd = vm->wake_fd, .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = w->broker.fd, .events = POLLIN };
		for (unsigned i = 0; i < vm->ndevs; i++)
			p[n++] = (struct pollfd){
				.fd = vm->devs[i].dead ? -1 : vm->devs[i].chan.fd,
				.events = POLLIN,
			};
		r = poll(p, n, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			emt_vm_end(vm, EMT_END_ERROR, 0, "internal", "poll: %s",
				   strerror(errno));
			return;
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
				emt_vm_end(vm, EMT_END_ERROR, 0, "broker-gone",
					   "lost the broker (%s)", strerror(-r));
				return;
			}
		}
		for (unsigned i = 0; i < vm->ndevs; i++) {
			struct emt_dev *d = &vm->devs[i];
			struct wk_dev_ctx x = { w, d };
			struct ipc_phase_state dst = { 0 };

			if (d->dead || !p[2 + i].revents)
				continue;
			r = ipc_recv(&d->chan, w->msg);
			if (r == 0) {
				r = ipc_dispatch(&d->chan,
						 d->may_request_exit ?
						 &wk_dev_running_exit_phase :
						 &wk_dev_running_phase,
						 &dst, &x, w->msg);
				ipc_msg_close_fds(w->msg);
			}
			if (r < 0)
				wk_device_failed(w, d, r);
		}
	}
}

static void wk_send_exit(struct wk *w)
{
	struct emt_vm *vm = w->vm;
	VmExited ex = VM_EXITED__INIT;
	ExitCounter c[4 + EMT_MAX_DEVICES], *cp[4 + EMT_MAX_DEVICES];
	char names[EMT_MAX_DEVICES][64];
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
	for (unsigned i = 0; i < n; i++)
		cp[i] = &c[i];
	ex.reason = (VmExited__Reason)vm->end;
	ex.code = vm->end_code;
	ex.error_id = vm->end_id;
	ex.message = vm->end_msg;
	ex.n_counters = n;
	ex.counters = cp;
	r = ipc_send_pb(&w->broker, MSG_VM_EXITED, &ex.base, NULL, 0);
	if (r < 0)
		LOG_ERR("cannot report the VM's end to the broker: %s",
			strerror(-r));
}

static void wk_destruct_devices(struct emt_vm *vm)
{
	DevDestruct dd = DEV_DESTRUCT__INIT;

	for (unsigned i = 0; i < vm->ndevs; i++) {
		struct emt_dev *d = &vm->devs[i];

		if (!d->dead && d->chan.fd >= 0)
			ipc_send_pb(&d->chan, MSG_DEV_DESTRUCT, &dd.base, NULL, 0);
	}
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
	struct emt_boot boot;
	char err[256] = "";
	int r;

	vm->ncpus = w->init->cpus;
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
	r = wk_load(w, &boot, err, sizeof(err));
	if (r < 0) {
		emt_vm_end(vm, EMT_END_ERROR, 0, "bad-image",
			   "cannot load the image: %s", err);
		return r;
	}
	w->image_kind = wk_kind_name(boot.kind);
	r = wk_setup_vcpus(w, &boot);
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
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct wk w = { .kvm_fd = -1, .ram_fd = -1, .image_fd = -1,
			.initrd_fd = -1 };
	struct ipc_phase_state st = { 0 };
	WorkerReady ready = WORKER_READY__INIT;
	struct emt_vm *vm;
	int r;

	ipc_log_init("bulkhead-worker", IPC_LOG_INFO);
	signal(SIGPIPE, SIG_IGN);
	for (unsigned i = 0; i < EMT_MAX_DEVICES; i++)
		w.dev_chan_fd[i] = w.dev_ring_fd[i] = -1;
	w.msg = malloc(sizeof(*w.msg));
	vm = calloc(1, sizeof(*vm));
	if (!w.msg || !vm || emt_poke_init() < 0)
		return 1;
	w.vm = vm;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->park_cond, NULL);
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

	if (wk_build(&w) == 0) {
		ready.vcpus = vm->ncpus;
		ready.image_kind = (char *)w.image_kind;
		r = ipc_send_pb(&w.broker, MSG_WORKER_READY, &ready.base, NULL, 0);
		if (r < 0) {
			LOG_ERR("cannot reach the broker: %s", strerror(-r));
			return 1;
		}
		r = emt_vm_start_emts(vm);
		if (r < 0)
			emt_vm_end(vm, EMT_END_ERROR, 0, "internal",
				   "cannot start the EMTs: %s", strerror(-r));
		wk_run_loop(&w);
	}
	emt_vm_stop_emts(vm);
	wk_destruct_devices(vm);
	wk_send_exit(&w);
	return 0;
}
