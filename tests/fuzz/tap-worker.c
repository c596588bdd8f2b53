/* SPDX-License-Identifier: MIT */
/*
 * The worker's dispatch tables under fuzzing, as bulkhead-worker meets
 * them: the init phase (WorkerInit from the broker), the registering phase
 * (DevRegister from a device, checked against the broker's DeviceSpec),
 * the running phase of the broker's channel (VmControl, VmStats, VmSave)
 * and each device's running table (built from what the broker allowed it).
 * Frames go through ipc_send, a real SOCK_SEQPACKET pair, ipc_recv and
 * ipc_dispatch into the worker's own handlers.
 *
 * The tables and handlers are static in emt-worker/main.c, which is
 * compiled into this file (its main() renamed): the fuzzer runs the
 * worker's exact code without a hook in it. If a table, handler or field
 * used below is renamed there, rename it here.
 *
 * Around the handlers the VM is real but has no KVM behind it: its EMT
 * synchronisation is terminating (a request to the EMTs fails at once, as
 * while the VM shuts down), its kd_vm's fd is /dev/null (every KVM ioctl
 * fails, which the handlers must handle) and a save is always in progress
 * (the saver thread would outlive the run).
 *
 * Input (fuzzlib.h, frames): the selector byte picks the phase (sel % 4:
 * init, registering, broker running, device running) and, for the device
 * phases, what the broker configured (sel / 4 % 4: uart, debug-exit,
 * virtio-blk, i8042 with what each may request).
 */
#define main fz_worker_real_main
int fz_worker_real_main(int argc, char **argv);
#include "emt-worker/main.c"
#undef main

#include <fcntl.h>

#include "tests/fuzz/fuzzlib.h"

/* What the broker configures for each kind (broker/vm.c). */
struct fz_wk_kind {
	const char *kind;
	uint32_t space;
	uint64_t base, len;
	int irq;
	bool exit, reset, poweroff;
};

static const struct fz_wk_kind fz_wk_kinds[] = {
	{ "uart", IPC_SPACE_PIO, 0x3f8, 8, 4, false, false, false },
	{ "debug-exit", IPC_SPACE_PIO, 0xf4, 1, -1, true, false, false },
	{ "virtio-blk", IPC_SPACE_MMIO, 0xd0000000, 0x200, 5, false, false,
	  false },
	{ "i8042", IPC_SPACE_PIO, 0x60, 1, 1, false, true, true },
};

static const uint16_t fz_wk_types[] = {
	MSG_WORKER_INIT, MSG_DEV_REGISTER, MSG_VM_CONTROL, MSG_VM_STATS,
	MSG_VM_SAVE, MSG_DEV_NOTIFY_DONE, MSG_DEV_DESTRUCT_DONE,
	MSG_DEV_GUEST_EXIT, MSG_DEV_REQUEST_RESET, MSG_DEV_REQUEST_POWEROFF,
	MSG_DEV_SAVE_DATA,
};

static struct emt_vm *fz_wk_vm;
static struct kd_vm fz_wk_kvm;
static struct ipc_ring *fz_wk_ring;

/* The VM every run uses: built once, as wk_build would, minus KVM. */
static void fz_wk_setup(void)
{
	struct emt_vm *vm;
	int fd;

	vm = calloc(1, sizeof(*vm));
	if (!vm || emt_vm_init(vm, 1) < 0)
		abort();
	vm_sync_terminate(&vm->sync);
	vm->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	fz_wk_kvm.kvm_fd = -1;
	fz_wk_kvm.vm_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (vm->wake_fd < 0 || fz_wk_kvm.vm_fd < 0)
		abort();
	vm->kvm = &fz_wk_kvm;
	/* One ring for every device; once shut down it stays so, which
	 * only matters to accesses, and no run makes any. */
	fd = fz_fd_new(FZ_FD_RING);
	if (ipc_ring_map(fd, &fz_wk_ring) < 0)
		abort();
	close(fd);
	fz_wk_vm = vm;
}

/* The broker's DeviceSpec for a kind, and the worker's emt_dev for it. */
static void fz_wk_device(const struct fz_wk_kind *k, DeviceSpec *spec,
			 RegionSpec *rs, RegionSpec **rsp, uint32_t *irq,
			 struct emt_dev *d)
{
	device_spec__init(spec);
	region_spec__init(rs);
	spec->kind = (char *)k->kind;
	rs->space = k->space;
	rs->addr = k->base;
	rs->len = k->len;
	*rsp = rs;
	spec->n_regions = 1;
	spec->regions = rsp;
	if (k->irq >= 0) {
		*irq = (uint32_t)k->irq;
		spec->n_irqs = 1;
		spec->irqs = irq;
	}
	spec->may_request_exit = k->exit;

	memset(d, 0, offsetof(struct emt_dev, accesses));
	snprintf(d->kind, sizeof(d->kind), "%s", k->kind);
	snprintf(d->label, sizeof(d->label), "%s#0", k->kind);
	d->regions[0].space = (uint8_t)k->space;
	d->regions[0].base = k->base;
	d->regions[0].len = k->len;
	d->nregions = 1;
	d->nirqs = k->irq >= 0 ? 1 : 0;
	d->irqs[0] = k->irq >= 0 ? (uint32_t)k->irq : 0;
	d->may_request_exit = k->exit;
	d->may_request_reset = k->reset;
	d->may_request_poweroff = k->poweroff;
	d->chan.fd = -1;
	d->ring = fz_wk_ring;
	/* A power-on notification (seq 1) is waiting for its answer. */
	d->notify_sent = 1;
	d->notify_event = EMT_NOTIFY_POWER_ON;
	wk_dev_build_phase(d);
}

/* Release what wk_on_init stored, as the worker would at its end. */
static void fz_wk_release(struct wk *w)
{
	int *fds[] = { &w->kvm_fd, &w->ram_fd, &w->image_fd, &w->initrd_fd,
		       &w->stream_fd };

	if (w->init)
		worker_init__free_unpacked(w->init, NULL);
	w->init = NULL;
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	for (unsigned i = 0; i < EMT_MAX_DEVICES; i++) {
		if (w->dev_chan_fd[i] >= 0)
			close(w->dev_chan_fd[i]);
		if (w->dev_ring_fd[i] >= 0)
			close(w->dev_ring_fd[i]);
		w->dev_chan_fd[i] = w->dev_ring_fd[i] = -1;
	}
}

/* The worker's state for one run, around the VM every run uses. */
static void fz_wk_begin(struct wk *w, struct emt_vm *vm, struct ipc_msg *msg)
{
	for (unsigned i = 0; i < EMT_MAX_DEVICES; i++)
		w->dev_chan_fd[i] = w->dev_ring_fd[i] = -1;
	w->vm = vm;
	w->msg = msg;
	/* A save runs on a thread of its own that drives the EMTs and KVM;
	 * none may outlive a run, so every VmSave finds one in progress
	 * (and is answered and closed as such). */
	w->saving = true;
	vm->ended = false;
	vm->broker = &w->broker;
	vm->ndevs = 1;
}

/* The channel the phase reads from, on the worker's end (fd) of the pair,
 * and how many frames the worker reads there. */
static struct ipc_chan *fz_wk_phase_chan(struct wk *w, struct emt_dev *d,
					 unsigned phase, int fd,
					 unsigned *max_frames)
{
	struct ipc_chan *chan;

	switch (phase) {
	case 0:
		ipc_chan_init(&w->broker, fd, "broker");
		chan = &w->broker;
		*max_frames = 1;   /* the worker reads one WorkerInit */
		break;
	case 1:
		ipc_chan_init(&d->chan, fd, d->label);
		chan = &d->chan;
		*max_frames = 1;   /* and one DevRegister per device */
		break;
	case 2:
		ipc_chan_init(&w->broker, fd, "broker");
		chan = &w->broker;
		*max_frames = FZ_FRAMES_MAX;
		break;
	default:
		ipc_chan_init(&d->chan, fd, d->label);
		chan = &d->chan;
		*max_frames = FZ_FRAMES_MAX;
		break;
	}
	return chan;
}

/* The frame just sent, received and handled as the phase does; negative
 * when the run ends (the channel failed or the device died). */
static int fz_wk_deliver(struct wk_reg_ctx *x, struct ipc_chan *chan,
			 unsigned phase, struct ipc_phase_state *st)
{
	struct wk *w = x->w;
	int r;

	if (phase == 3) {
		/* The run loop's own function for a device channel. */
		wk_serve_device(w, x->d, st);
		return x->d->dead ? -EPIPE : 0;
	}
	r = ipc_recv(chan, w->msg);
	if (r == 0) {
		r = ipc_dispatch(chan, phase == 0 ? &wk_init_phase :
				 phase == 1 ? &wk_register_phase :
				 &wk_broker_running_phase,
				 st, phase == 1 ? (void *)x : (void *)w,
				 w->msg);
		ipc_msg_close_fds(w->msg);
	}
	fz_quiet();
	return r;
}

int fz_worker_dispatch(const uint8_t *data, size_t size)
{
	static struct ipc_msg *msg;
	static int sv[2] = { -1, -1 };
	struct ipc_phase_state st = { 0 };
	struct wk w = { .kvm_fd = -1, .ram_fd = -1, .image_fd = -1,
			.initrd_fd = -1, .stream_fd = -1, .broker = { .fd = -1 } };
	DeviceSpec spec;
	RegionSpec rs, *rsp;
	uint32_t irq;
	struct wk_reg_ctx x;
	struct emt_vm *vm;
	struct emt_dev *d;
	struct ipc_chan *chan;
	struct fz_frame f;
	struct fz_in in;
	unsigned sel, phase, nframes = 0, max_frames;
	uint64_t v;
	int delta;
	bool rx_open;

	fz_quiet();
	if (!fz_wk_vm) {
		msg = malloc(sizeof(*msg));
		if (!msg)
			abort();
		fz_wk_setup();
	}
	vm = fz_wk_vm;
	d = &vm->devs[0];
	fz_in_init(&in, data, size);
	sel = fz_u8(&in);
	phase = sel % 4;

	fz_pair_open(sv);
	fz_fd_mark();
	fz_wk_begin(&w, vm, msg);
	fz_wk_device(&fz_wk_kinds[sel / 4 % 4], &spec, &rs, &rsp, &irq, d);
	x = (struct wk_reg_ctx){ .w = &w, .d = d, .spec = &spec };
	chan = fz_wk_phase_chan(&w, d, phase, sv[1], &max_frames);

	while (nframes < max_frames && chan->fd >= 0 &&
	       fz_frame_next(&in, fz_wk_types,
			     sizeof(fz_wk_types) / sizeof(fz_wk_types[0]), &f)) {
		if (fz_frame_send(sv[0], &f) < 0)
			continue;
		nframes++;
		if (fz_wk_deliver(&x, chan, phase, &st) < 0)
			break;
	}

	rx_open = chan->fd >= 0;
	chan->fd = -1;
	vm->broker = NULL;
	fz_wk_release(&w);
	while (read(vm->wake_fd, &v, sizeof(v)) > 0)
		;
	delta = fz_pair_end(sv, rx_open);
	fz_fd_check("worker", delta);
	return 0;
}
