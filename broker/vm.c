/* SPDX-License-Identifier: MIT */
/*
 * Launching one VM (memfd, rings, channels, worker and device processes),
 * the broker's side of the worker protocol (one dispatch table, shared by
 * `bulkhead run` and bulkheadd through hooks), and supervising one VM in the
 * foreground for `bulkhead run`.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker/brk.h"
#include "device.pb-c.h"
#include "ipc/log.h"
#include "kdriver/kd.h"
#include "proto/msgtypes.h"
#include "worker.pb-c.h"

/* How long devices get to exit on their own once the worker is gone. */
#define BRK_DEVICE_GRACE_MS 2000

/* The device kinds the broker can configure, and what each may claim. */
enum brk_backend { BRK_BACKEND_NONE, BRK_BACKEND_CONSOLE, BRK_BACKEND_DISK };

struct brk_dev_kind {
	const char *kind;
	const char *binary;
	struct {
		uint32_t space;
		uint64_t base;
		uint64_t len;
	} regions[2];
	unsigned nregions;
	int irq;                /* GSI of the first line, -1: none */
	int irq2;               /* a second line (i8042 aux), 0: none */
	bool may_request_exit;
	bool may_request_reset;
	bool dma;               /* maps guest RAM (virtio) */
	bool virtio;            /* placed at the next virtio-mmio slot */
	enum brk_backend backend;
};

static const struct brk_dev_kind brk_dev_uart = {
	.kind = "uart", .binary = "bulkhead-dev-uart",
	.regions = { { IPC_SPACE_PIO, 0x3f8, 8 } }, .nregions = 1, .irq = 4,
	.backend = BRK_BACKEND_CONSOLE,
};
static const struct brk_dev_kind brk_dev_debugexit = {
	.kind = "debug-exit", .binary = "bulkhead-dev-debugexit",
	.regions = { { IPC_SPACE_PIO, 0xf4, 1 } }, .nregions = 1, .irq = -1,
	.may_request_exit = true,
};
static const struct brk_dev_kind brk_dev_rtc = {
	.kind = "rtc", .binary = "bulkhead-dev-rtc",
	.regions = { { IPC_SPACE_PIO, 0x70, 2 } }, .nregions = 1, .irq = 8,
};
static const struct brk_dev_kind brk_dev_i8042 = {
	.kind = "i8042", .binary = "bulkhead-dev-i8042",
	.regions = { { IPC_SPACE_PIO, 0x60, 1 }, { IPC_SPACE_PIO, 0x64, 1 } },
	.nregions = 2, .irq = 1, .irq2 = 12, .may_request_reset = true,
};
static const struct brk_dev_kind brk_dev_vblk = {
	.kind = "virtio-blk", .binary = "bulkhead-dev-virtio-blk",
	.regions = { { IPC_SPACE_MMIO, 0, BRK_VIRTIO_SIZE } }, .nregions = 1,
	.irq = 0, .dma = true, .virtio = true, .backend = BRK_BACKEND_DISK,
};
static const struct brk_dev_kind brk_dev_vrng = {
	.kind = "virtio-rng", .binary = "bulkhead-dev-virtio-rng",
	.regions = { { IPC_SPACE_MMIO, 0, BRK_VIRTIO_SIZE } }, .nregions = 1,
	.irq = 0, .dma = true, .virtio = true,
};
static const struct brk_dev_kind brk_dev_null = {
	.kind = "null", .binary = "bulkhead-dev-null",
	.regions = { { IPC_SPACE_PIO, 0x510, 8 },
		     { IPC_SPACE_MMIO, 0xd0100000, 0x1000 } },
	.nregions = 2, .irq = -1,
};

/* One device of this VM: its kind and where it was placed. */
struct brk_dev_slot {
	const struct brk_dev_kind *k;
	uint64_t base[2];
	int irq;
};

static int brk_make_ram(uint64_t size)
{
	int fd = memfd_create("bulkhead-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int r;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* A device's access ring and its channel to the worker: chan[0] is the
 * worker's end, chan[1] the device's. */
static int brk_device_links(const struct brk_vm_config *cfg,
			    const struct brk_dev_slot *slot, int *ring,
			    int chan[2], char *err, size_t errlen)
{
	char label[48];

	snprintf(label, sizeof(label), "%s#0", slot->k->kind);
	*ring = ipc_ring_create(cfg->cpus, label);
	if (*ring < 0) {
		snprintf(err, errlen, "cannot create the access ring of %s: %s",
			 label, strerror(-*ring));
		return *ring;
	}
	if (ipc_chan_pair(chan) < 0) {
		int e = errno;

		snprintf(err, errlen, "socketpair: %s", strerror(e));
		return -e;
	}
	return 0;
}

/* Spawn one device process and send it its DevInit with its end of its
 * channel (dev_chan) and the ring. */
static int brk_launch_device(struct brk_vm *vm, const struct brk_vm_config *cfg,
			     const struct brk_dev_slot *slot, int ram,
			     int dev_chan, int ring, char *err, size_t errlen)
{
	const struct brk_dev_kind *k = slot->k;
	struct brk_child *c = &vm->devs[vm->ndevs];
	DevInit init = DEV_INIT__INIT;
	DevRegion reg[2], *regp[2];
	uint32_t irq;
	int boot[2] = { -1, -1 };
	int fds[6], nfds = 0, in_fd = -1, out_fd = -1;
	char label[48];
	struct ipc_chan bc;
	int r;

	snprintf(label, sizeof(label), "%s#0", k->kind);
	if (ipc_chan_pair(boot) < 0) {
		r = -errno;
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		goto out;
	}
	r = brk_spawn(k->binary, boot[1], label, c, err, errlen);
	if (r < 0)
		goto out;
	vm->ndevs++;
	fds[nfds++] = dev_chan;
	fds[nfds++] = ring;
	if (k->dma) {
		fds[nfds++] = ram;
		init.has_ram = true;
	}
	if (k->backend == BRK_BACKEND_CONSOLE) {
		switch (cfg->serial) {
		case BRK_SERIAL_STDIO:
			in_fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0);
			out_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0);
			break;
		case BRK_SERIAL_NULL:
			in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			out_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
			break;
		case BRK_SERIAL_FILE:
			in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			out_fd = fcntl(cfg->serial_out_fd, F_DUPFD_CLOEXEC, 0);
			break;
		case BRK_SERIAL_CONSOLE:
			in_fd = fcntl(cfg->console_fd, F_DUPFD_CLOEXEC, 0);
			out_fd = fcntl(cfg->console_fd, F_DUPFD_CLOEXEC, 0);
			break;
		}
		if (in_fd < 0 || out_fd < 0) {
			r = -errno;
			snprintf(err, errlen, "cannot set up the serial console: %s",
				 strerror(errno));
			goto out;
		}
		fds[nfds++] = in_fd;
		fds[nfds++] = out_fd;
		init.nbackend_fds = 2;
	} else if (k->backend == BRK_BACKEND_DISK) {
		fds[nfds++] = cfg->disk_fd;
		init.nbackend_fds = 1;
		init.readonly = cfg->disk_ro;
		init.serial = "bulkhead-disk0";
	}
	if (k->virtio) {
		/* Placed by us, not at the device's defaults. */
		for (unsigned i = 0; i < k->nregions; i++) {
			dev_region__init(&reg[i]);
			reg[i].space = k->regions[i].space;
			reg[i].addr = slot->base[i];
			reg[i].len = k->regions[i].len;
			regp[i] = &reg[i];
		}
		init.n_regions = k->nregions;
		init.regions = regp;
		irq = (uint32_t)slot->irq;
		init.n_irqs = 1;
		init.irqs = &irq;
	}
	init.kind = (char *)k->kind;
	init.instance = 0;
	ipc_chan_init(&bc, boot[0], label);
	boot[0] = -1;
	r = ipc_send_pb(&bc, MSG_DEV_INIT, &init.base, fds, (unsigned)nfds);
	ipc_chan_close(&bc);
	if (r < 0) {
		snprintf(err, errlen, "cannot hand %s its resources: %s", label,
			 strerror(-r));
		goto out;
	}
	r = 0;
out:
	for (int i = 0; i < 2; i++)
		if (boot[i] >= 0)
			close(boot[i]);
	if (in_fd >= 0)
		close(in_fd);
	if (out_fd >= 0)
		close(out_fd);
	return r;
}

static void brk_fill_spec(DeviceSpec *s, RegionSpec *rg, RegionSpec **rgp,
			  uint32_t *irq, const struct brk_dev_slot *slot)
{
	const struct brk_dev_kind *k = slot->k;

	device_spec__init(s);
	s->kind = (char *)k->kind;
	s->instance = 0;
	for (unsigned i = 0; i < k->nregions; i++) {
		region_spec__init(&rg[i]);
		rg[i].space = k->regions[i].space;
		rg[i].addr = slot->base[i];
		rg[i].len = k->regions[i].len;
		rgp[i] = &rg[i];
	}
	s->n_regions = k->nregions;
	s->regions = rgp;
	if (slot->irq >= 0) {
		irq[0] = (uint32_t)slot->irq;
		s->n_irqs = 1;
		if (k->irq2 > 0)
			irq[s->n_irqs++] = (uint32_t)k->irq2;
		s->irqs = irq;
	}
	s->may_request_exit = k->may_request_exit;
	s->may_request_reset = k->may_request_reset;
}

/* The VM's devices, in order, with virtio-mmio devices given slots. */
static unsigned brk_plan_devices(const struct brk_vm_config *cfg,
				 struct brk_dev_slot *slots)
{
	const struct brk_dev_kind *kinds[BRK_MAX_DEVICES];
	unsigned n = 0, nvirtio = 0;

	kinds[n++] = &brk_dev_uart;
	kinds[n++] = &brk_dev_debugexit;
	kinds[n++] = &brk_dev_rtc;
	kinds[n++] = &brk_dev_i8042;
	if (cfg->disk_fd >= 0)
		kinds[n++] = &brk_dev_vblk;
	if (cfg->rng)
		kinds[n++] = &brk_dev_vrng;
	if (cfg->null_dev)
		kinds[n++] = &brk_dev_null;
	for (unsigned i = 0; i < n; i++) {
		const struct brk_dev_kind *k = kinds[i];

		slots[i].k = k;
		slots[i].irq = k->irq;
		for (unsigned j = 0; j < k->nregions; j++)
			slots[i].base[j] = k->regions[j].base;
		if (k->virtio) {
			slots[i].base[0] = BRK_VIRTIO_BASE + nvirtio * BRK_VIRTIO_SIZE;
			slots[i].irq = (int)(BRK_VIRTIO_IRQ + nvirtio);
			nvirtio++;
		}
	}
	return n;
}

/*
 * The guest's command line: the user's, then every virtio-mmio device in
 * the form Linux parses, virtio_mmio.device=<size>@<base>:<irq>.
 */
static char *brk_compose_cmdline(const char *user,
				 const struct brk_dev_slot *slots, unsigned n)
{
	size_t len = strlen(user ? user : "") + 1 + n * 64;
	char *s = malloc(len);
	size_t off;

	if (!s)
		return NULL;
	off = (size_t)snprintf(s, len, "%s", user ? user : "");
	for (unsigned i = 0; i < n; i++) {
		if (!slots[i].k->virtio)
			continue;
		off += (size_t)snprintf(s + off, len - off,
					"%svirtio_mmio.device=%llu@0x%llx:%d",
					off ? " " : "",
					(unsigned long long)slots[i].k->regions[0].len,
					(unsigned long long)slots[i].base[0],
					slots[i].irq);
	}
	return s;
}

int brk_vm_launch(int kvm_fd, const struct brk_vm_config *cfg,
		  struct brk_vm **out, char *err, size_t errlen)
{
	struct brk_dev_slot slots[BRK_MAX_DEVICES];
	DeviceSpec specs[BRK_MAX_DEVICES], *specp[BRK_MAX_DEVICES];
	RegionSpec regions[BRK_MAX_DEVICES][2], *regionp[BRK_MAX_DEVICES][2];
	uint32_t irqs[BRK_MAX_DEVICES][2];
	char *cmdline = NULL;
	int dev_chan[BRK_MAX_DEVICES][2], dev_ring[BRK_MAX_DEVICES];
	int fds[5 + 2 * BRK_MAX_DEVICES];
	WorkerInit init = WORKER_INIT__INIT;
	unsigned nkinds = 0, nfds = 0;
	int wchan[2] = { -1, -1 }, ram = -1;
	/* A restore takes the boot image (and initrd) from the stream. */
	int image_fd = cfg->restore_fd >= 0 ? -1 : cfg->image_fd;
	int initrd_fd = cfg->restore_fd >= 0 ? -1 : cfg->initrd_fd;
	struct brk_vm *vm;
	int r, code = BRK_EXIT_INTERNAL;

	r = kd_sys_check(kvm_fd, err, errlen);
	if (r < 0)
		return BRK_EXIT_NOKVM;
	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		snprintf(err, errlen, "out of memory");
		return BRK_EXIT_INTERNAL;
	}
	vm->chan.fd = -1;
	vm->worker.pidfd = -1;
	snprintf(vm->state, sizeof(vm->state), "STARTING");
	for (unsigned i = 0; i < BRK_MAX_DEVICES; i++)
		dev_chan[i][0] = dev_chan[i][1] = dev_ring[i] = -1;
	/*
	 * The worker reads the image from the start of the open file, which it
	 * shares with us (and the user); a VM started again reads it again.
	 */
	if (image_fd >= 0)
		lseek(image_fd, 0, SEEK_SET);
	if (initrd_fd >= 0)
		lseek(initrd_fd, 0, SEEK_SET);
	if (cfg->restore_fd >= 0)
		lseek(cfg->restore_fd, 0, SEEK_SET);

	nkinds = brk_plan_devices(cfg, slots);
	cmdline = brk_compose_cmdline(cfg->cmdline, slots, nkinds);
	if (!cmdline) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}

	ram = brk_make_ram(cfg->mem_size);
	if (ram < 0) {
		snprintf(err, errlen, "cannot create %" PRIu64 " bytes of guest "
			 "RAM: %s", cfg->mem_size, strerror(-ram));
		goto out;
	}
	for (unsigned i = 0; i < nkinds; i++) {
		if (brk_device_links(cfg, &slots[i], &dev_ring[i], dev_chan[i],
				     err, errlen) < 0)
			goto out;
		brk_fill_spec(&specs[i], regions[i], regionp[i], irqs[i],
			      &slots[i]);
		specp[i] = &specs[i];
	}
	/*
	 * The worker first: building its VM (KVM, RAM, the image) is the
	 * longest part of a start, and it goes on while the devices are
	 * spawned; the worker waits for each device's channel as it needs it.
	 */

	if (ipc_chan_pair(wchan) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		goto out;
	}
	r = brk_spawn("bulkhead-worker", wchan[1], "worker", &vm->worker, err,
		      errlen);
	if (r < 0)
		goto out;
	close(wchan[1]);
	wchan[1] = -1;
	ipc_chan_init(&vm->chan, wchan[0], "worker");
	wchan[0] = -1;

	init.mem_size = cfg->mem_size;
	init.cpus = cfg->cpus;
	init.cmdline = cmdline;
	init.has_initrd = initrd_fd >= 0;
	init.restore = cfg->restore_fd >= 0;
	init.no_image = image_fd < 0;
	init.n_devices = nkinds;
	init.devices = specp;
	fds[nfds++] = kvm_fd;
	fds[nfds++] = ram;
	if (image_fd >= 0)
		fds[nfds++] = image_fd;
	if (initrd_fd >= 0)
		fds[nfds++] = initrd_fd;
	if (cfg->restore_fd >= 0)
		fds[nfds++] = cfg->restore_fd;
	for (unsigned i = 0; i < nkinds; i++) {
		fds[nfds++] = dev_chan[i][0];
		fds[nfds++] = dev_ring[i];
	}
	r = ipc_send_pb(&vm->chan, MSG_WORKER_INIT, &init.base, fds, nfds);
	if (r < 0) {
		snprintf(err, errlen, "cannot hand the worker its resources: %s",
			 strerror(-r));
		goto out;
	}
	for (unsigned i = 0; i < nkinds; i++) {
		r = brk_launch_device(vm, cfg, &slots[i], ram, dev_chan[i][1],
				      dev_ring[i], err, errlen);
		if (r < 0)
			goto out;
	}
	code = 0;
	*out = vm;
out:
	for (unsigned i = 0; i < BRK_MAX_DEVICES; i++) {
		for (int j = 0; j < 2; j++)
			if (dev_chan[i][j] >= 0)
				close(dev_chan[i][j]);
		if (dev_ring[i] >= 0)
			close(dev_ring[i]);
	}
	for (int i = 0; i < 2; i++)
		if (wchan[i] >= 0)
			close(wchan[i]);
	if (ram >= 0)
		close(ram);
	free(cmdline);
	if (code) {
		/* Whatever was started goes; the caller reports err. */
		brk_vm_free(vm);
	}
	return code;
}

/* ---- supervision -------------------------------------------------------- */

bool brk_child_reap(struct brk_child *c)
{
	siginfo_t si = { 0 };

	if (c->reaped)
		return true;
	if (c->pidfd < 0)
		return false;
	if (waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED | WNOHANG) < 0 ||
	    si.si_pid == 0)
		return false;
	if (si.si_code == CLD_EXITED)
		c->wstatus = (si.si_status & 0xff) << 8;
	else
		c->wstatus = si.si_status & 0x7f;  /* killed or dumped */
	c->reaped = true;
	close(c->pidfd);
	c->pidfd = -1;
	return true;
}

void brk_vm_kill_all(struct brk_vm *vm)
{
	if (!vm->worker.reaped && vm->worker.pid > 0)
		kill(vm->worker.pid, SIGKILL);
	for (unsigned i = 0; i < vm->ndevs; i++)
		if (!vm->devs[i].reaped)
			kill(vm->devs[i].pid, SIGKILL);
}

bool brk_vm_all_reaped(const struct brk_vm *vm)
{
	if (vm->worker.pid > 0 && !vm->worker.reaped)
		return false;
	for (unsigned i = 0; i < vm->ndevs; i++)
		if (!vm->devs[i].reaped)
			return false;
	return true;
}

/* The worker is less trusted: whatever it says is copied, bounded. */
static void brk_copy_str(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

static int brk_answer_ready(void *ctx, struct ipc_msg *m)
{
	struct brk_vm *vm = ctx;
	WorkerReady *wr = ipc_msg_unpack(m, &worker_ready__descriptor);

	if (!wr)
		return -EPROTO;
	vm->ready = true;
	/* A worker that reports its states says RUNNING itself. */
	if (!vm->state_events)
		snprintf(vm->state, sizeof(vm->state), "RUNNING");
	LOG_DBG("worker ready: %u vCPUs, %s image", wr->vcpus, wr->image_kind);
	worker_ready__free_unpacked(wr, NULL);
	if (vm->hooks && vm->hooks->ready)
		vm->hooks->ready(vm);
	return 0;
}

static int brk_answer_exited(void *ctx, struct ipc_msg *m)
{
	struct brk_vm *vm = ctx;
	VmExited *ex = ipc_msg_unpack(m, &vm_exited__descriptor);
	size_t off = 0;

	if (!ex)
		return -EPROTO;
	vm->have_end = true;
	vm->end_reason = ex->reason;
	vm->end_code = ex->code;
	brk_copy_str(vm->end_id, sizeof(vm->end_id), ex->error_id);
	brk_copy_str(vm->end_msg, sizeof(vm->end_msg), ex->message);
	snprintf(vm->state, sizeof(vm->state), "OFF");
	vm->counters[0] = '\0';
	for (size_t i = 0; i < ex->n_counters && off < sizeof(vm->counters); i++) {
		int n = snprintf(vm->counters + off, sizeof(vm->counters) - off,
				 "%s%s=%" PRIu64, off ? " " : "",
				 ex->counters[i]->name, ex->counters[i]->value);
		if (n < 0)
			break;
		off += (size_t)n;
	}
	vm_exited__free_unpacked(ex, NULL);
	if (vm->hooks && vm->hooks->exited)
		vm->hooks->exited(vm);
	return 0;
}

static int brk_answer_control(void *ctx, struct ipc_msg *m)
{
	struct brk_vm *vm = ctx;
	VmControlReply *rep = ipc_msg_unpack(m, &vm_control_reply__descriptor);

	if (!rep)
		return -EPROTO;
	if (rep->state && rep->state[0] && !vm->have_end)
		brk_copy_str(vm->state, sizeof(vm->state), rep->state);
	if (vm->hooks && vm->hooks->control_reply)
		vm->hooks->control_reply(vm, rep);
	else if (rep->status < 0 && rep->status != -ESHUTDOWN)
		LOG_WARN("worker refused the operation: %s", rep->message);
	vm_control_reply__free_unpacked(rep, NULL);
	return 0;
}

static int brk_answer_stats(void *ctx, struct ipc_msg *m)
{
	struct brk_vm *vm = ctx;
	VmStats *st = ipc_msg_unpack(m, &vm_stats__descriptor);

	if (!st)
		return -EPROTO;
	if (vm->hooks && vm->hooks->stats)
		vm->hooks->stats(vm, st);
	vm_stats__free_unpacked(st, NULL);
	return 0;
}

static int brk_answer_state(void *ctx, struct ipc_msg *m)
{
	struct brk_vm *vm = ctx;
	VmStateChanged *sc = ipc_msg_unpack(m, &vm_state_changed__descriptor);

	if (!sc)
		return -EPROTO;
	vm->state_events++;
	if (!vm->have_end)
		brk_copy_str(vm->state, sizeof(vm->state), sc->new_state);
	LOG_DBG("VM state %s -> %s", sc->old_state, sc->new_state);
	vm_state_changed__free_unpacked(sc, NULL);
	if (vm->hooks && vm->hooks->state_changed)
		vm->hooks->state_changed(vm);
	return 0;
}

static int brk_answer_runtime_error(void *ctx, struct ipc_msg *m)
{
	struct brk_vm *vm = ctx;
	VmRuntimeError *re = ipc_msg_unpack(m, &vm_runtime_error__descriptor);

	if (!re)
		return -EPROTO;
	vm->have_rt_error = true;
	vm->rt_flags = re->flags;
	brk_copy_str(vm->rt_id, sizeof(vm->rt_id), re->error_id);
	brk_copy_str(vm->rt_msg, sizeof(vm->rt_msg), re->message);
	vm_runtime_error__free_unpacked(re, NULL);
	if (vm->hooks && vm->hooks->runtime_error)
		vm->hooks->runtime_error(vm);
	return 0;
}

static int brk_answer_save(void *ctx, struct ipc_msg *m)
{
	struct brk_vm *vm = ctx;
	VmSaveReply *rep = ipc_msg_unpack(m, &vm_save_reply__descriptor);

	if (!rep)
		return -EPROTO;
	if (rep->state && rep->state[0] && !vm->have_end)
		brk_copy_str(vm->state, sizeof(vm->state), rep->state);
	if (vm->hooks && vm->hooks->save_reply)
		vm->hooks->save_reply(vm, rep);
	else
		LOG_DBG("save %u not awaited (status %d)", rep->seq, rep->status);
	vm_save_reply__free_unpacked(rep, NULL);
	return 0;
}

/* Everything a worker may send once it has its WorkerInit. */
static const struct ipc_handler brk_worker_tab[] = {
	{ MSG_WORKER_READY, IPC_PERMIT | IPC_ONCE, brk_answer_ready },
	{ MSG_VM_EXITED, IPC_PERMIT | IPC_ONCE, brk_answer_exited },
	{ MSG_VM_CONTROL_REPLY, IPC_PERMIT, brk_answer_control },
	{ MSG_VM_STATS_REPLY, IPC_PERMIT, brk_answer_stats },
	{ MSG_VM_STATE, IPC_PERMIT, brk_answer_state },
	{ MSG_VM_RUNTIME_ERROR, IPC_PERMIT, brk_answer_runtime_error },
	{ MSG_VM_SAVE_REPLY, IPC_PERMIT, brk_answer_save },
};
static const struct ipc_phase brk_worker_phase = {
	"running", brk_worker_tab,
	sizeof(brk_worker_tab) / sizeof(brk_worker_tab[0]),
};

int brk_vm_worker_recv(struct brk_vm *vm, struct ipc_msg *msg)
{
	int r = ipc_recv(&vm->chan, msg);

	if (r == -EAGAIN)
		return r;
	if (r == 0) {
		/* A worker that sends fds to the broker breaks protocol. */
		if (msg->nfds) {
			LOG_ERR("worker sent %u unexpected fds", msg->nfds);
			r = -EPROTO;
		} else {
			r = ipc_dispatch(&vm->chan, &brk_worker_phase,
					 &vm->chan_st, vm, msg);
		}
		ipc_msg_close_fds(msg);
	}
	if (r < 0) {
		if (r != -ECONNRESET && r != -EBADF)
			LOG_ERR("worker broke protocol: %s", strerror(-r));
		ipc_chan_close(&vm->chan);
	}
	return r;
}

int brk_vm_send_control(struct brk_vm *vm, int op, uint32_t seq)
{
	VmControl vc = VM_CONTROL__INIT;

	vc.op = (VmControl__Op)op;
	vc.seq = seq;
	return ipc_send_pb(&vm->chan, MSG_VM_CONTROL, &vc.base, NULL, 0);
}

int brk_vm_send_stats_req(struct brk_vm *vm, uint32_t seq)
{
	VmStatsReq req = VM_STATS_REQ__INIT;

	req.seq = seq;
	return ipc_send_pb(&vm->chan, MSG_VM_STATS, &req.base, NULL, 0);
}

int brk_vm_send_save(struct brk_vm *vm, uint32_t seq, unsigned flags,
		     uint32_t max_downtime_ms, int file_fd)
{
	VmSave req = VM_SAVE__INIT;

	req.seq = seq;
	req.keep_running = flags & BRK_SAVE_KEEP_RUNNING;
	req.live = flags & BRK_SAVE_LIVE;
	req.stay_suspended = flags & BRK_SAVE_STAY_SUSPENDED;
	req.max_downtime_ms = max_downtime_ms;
	return ipc_send_pb(&vm->chan, MSG_VM_SAVE, &req.base, &file_fd, 1);
}

/* The device a "device-died" message names, if it is reaped. */
static const struct brk_child *brk_vm_dead_device(const struct brk_vm *vm,
						  const char *msg)
{
	for (unsigned i = 0; i < vm->ndevs; i++) {
		const struct brk_child *c = &vm->devs[i];
		const char *at = strstr(msg, c->label);
		size_t n = strlen(c->label);

		/* "uart#0" must not match inside "uart#01". */
		if (c->reaped && at && !(at[n] >= '0' && at[n] <= '9'))
			return c;
	}
	return NULL;
}

void brk_vm_explain(const struct brk_vm *vm, const char *error_id,
		    const char *msg, char *buf, size_t len)
{
	const struct brk_child *c = NULL;
	char how[96];

	if (strcmp(error_id, "device-died") == 0)
		c = brk_vm_dead_device(vm, msg);
	if (c) {
		brk_child_describe(c, how, sizeof(how));
		snprintf(buf, len, "device %s %s", c->label, how);
	} else if (strcmp(error_id, "bad-saved-state") == 0) {
		snprintf(buf, len, "the saved state was refused: %s", msg);
	} else {
		snprintf(buf, len, "%s", msg);
	}
}

/* The run exit status an error id stands for. */
static int brk_exit_for_id(const char *id)
{
	if (strcmp(id, "bad-image") == 0 || strcmp(id, "bad-saved-state") == 0)
		return BRK_EXIT_BADIMAGE;
	if (strncmp(id, "device-", 7) == 0)
		return BRK_EXIT_DEVICE;
	if (strcmp(id, "guest-fault") == 0)
		return BRK_EXIT_GUEST;
	return BRK_EXIT_INTERNAL;
}

int brk_vm_exit_status(const struct brk_vm *vm, char *err, size_t errlen)
{
	char how[96];

	err[0] = '\0';
	/* A runtime error that stopped the VM outranks how it then ended. */
	if (vm->have_rt_error && (vm->rt_flags & (BRK_RT_FATAL | BRK_RT_SUSPEND))) {
		brk_vm_explain(vm, vm->rt_id, vm->rt_msg, err, errlen);
		return brk_exit_for_id(vm->rt_id);
	}
	if (!vm->have_end) {
		brk_child_describe(&vm->worker, how, sizeof(how));
		snprintf(err, errlen, "the worker %s before the VM ended", how);
		return BRK_EXIT_INTERNAL;
	}
	switch (vm->end_reason) {
	case VM_EXITED__REASON__POWER_OFF:
		return BRK_EXIT_POWER_OFF;
	case VM_EXITED__REASON__DEBUG_EXIT:
		return (int)(((vm->end_code << 1) | 1) & 0xff);
	default:
		break;
	}
	brk_vm_explain(vm, vm->end_id, vm->end_msg, err, errlen);
	return brk_exit_for_id(vm->end_id);
}

int64_t brk_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How long `run` waits for the device a runtime error names to be reaped
 * before it reports the error without saying how the device died. */
#define BRK_RT_REPORT_WAIT_MS 500

/* Foreground supervision state, the hooks' context. */
struct brk_fg {
	bool powering_off;     /* we sent POWER_OFF */
	bool rt_report;        /* a runtime error waits to be printed */
	bool rt_reported;      /* and was */
	int64_t rt_at;
};

static void brk_fg_power_off(struct brk_vm *vm, struct brk_fg *fg)
{
	if (fg->powering_off || vm->chan.fd < 0)
		return;
	fg->powering_off = true;
	brk_vm_send_control(vm, VM_CONTROL__OP__POWER_OFF, 0);
}

/* A runtime error that suspended (or would stop) the VM: nobody can resume
 * it in the foreground, so report it and power the VM off. */
static void brk_fg_runtime_error(struct brk_vm *vm)
{
	struct brk_fg *fg = vm->hook_ctx;

	if (!(vm->rt_flags & (BRK_RT_FATAL | BRK_RT_SUSPEND))) {
		LOG_WARN("runtime error: %s", vm->rt_msg);
		return;
	}
	fg->rt_report = true;
	fg->rt_at = brk_now_ms();
	brk_fg_power_off(vm, fg);
}

static void brk_fg_report(struct brk_vm *vm, struct brk_fg *fg, bool force)
{
	char msg[384];

	if (!fg->rt_report)
		return;
	if (!force && strcmp(vm->rt_id, "device-died") == 0 &&
	    !brk_vm_dead_device(vm, vm->rt_msg) &&
	    brk_now_ms() - fg->rt_at < BRK_RT_REPORT_WAIT_MS)
		return;  /* say how the device died, once we know */
	brk_vm_explain(vm, vm->rt_id, vm->rt_msg, msg, sizeof(msg));
	LOG_ERR("VM %s: %s",
		(vm->rt_flags & BRK_RT_SUSPEND) ? "suspended" : "stopped", msg);
	fg->rt_report = false;
	fg->rt_reported = true;
}

static const struct brk_vm_hooks brk_fg_hooks = {
	.runtime_error = brk_fg_runtime_error,
};

/* Drain what the worker said before it went. */
static void brk_fg_drain(struct brk_vm *vm, struct ipc_msg *msg)
{
	while (vm->chan.fd >= 0) {
		struct pollfd q = { .fd = vm->chan.fd, .events = POLLIN };

		if (poll(&q, 1, 0) <= 0)
			break;
		if (brk_vm_worker_recv(vm, msg) < 0)
			break;
	}
}

int brk_vm_run_foreground(struct brk_vm *vm, bool verbose, char *err,
			  size_t errlen)
{
	struct ipc_msg *msg = malloc(sizeof(*msg));
	struct brk_fg fg = { 0 };
	sigset_t sigs;
	int sigfd, signals = 0, status;
	int64_t worker_gone_at = -1;

	if (!msg) {
		snprintf(err, errlen, "out of memory");
		return BRK_EXIT_INTERNAL;
	}
	vm->hooks = &brk_fg_hooks;
	vm->hook_ctx = &fg;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);

	while (!brk_vm_all_reaped(vm)) {
		struct pollfd p[3 + BRK_MAX_DEVICES];
		unsigned n = 0;
		int timeout = -1, r;

		p[n++] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = vm->chan.fd, .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = vm->worker.pidfd, .events = POLLIN };
		for (unsigned i = 0; i < vm->ndevs; i++)
			p[n++] = (struct pollfd){ .fd = vm->devs[i].pidfd,
						  .events = POLLIN };
		if (fg.rt_report)
			timeout = BRK_RT_REPORT_WAIT_MS / 5;
		if (worker_gone_at >= 0) {
			int64_t left = worker_gone_at + BRK_DEVICE_GRACE_MS -
				       brk_now_ms();

			if (left <= 0) {
				brk_vm_kill_all(vm);
				left = 100;
			}
			if (timeout < 0 || left < timeout)
				timeout = (int)left;
		}
		r = poll(p, n, timeout);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		if (p[0].revents) {
			struct signalfd_siginfo si;

			if (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
				signals++;
				if (signals == 1 && vm->chan.fd >= 0 &&
				    !fg.powering_off) {
					LOG_INFO("%s: powering the VM off",
						 strsignal((int)si.ssi_signo));
					brk_fg_power_off(vm, &fg);
				} else {
					LOG_INFO("%s again: killing the VM",
						 strsignal((int)si.ssi_signo));
					brk_vm_kill_all(vm);
				}
			}
		}
		if (p[1].revents)
			brk_vm_worker_recv(vm, msg);
		if (p[2].revents) {
			brk_child_reap(&vm->worker);
			if (worker_gone_at < 0)
				worker_gone_at = brk_now_ms();
			brk_fg_drain(vm, msg);
		}
		for (unsigned i = 0; i < vm->ndevs; i++) {
			if (p[3 + i].revents)
				brk_child_reap(&vm->devs[i]);
		}
		brk_fg_report(vm, &fg, false);
	}
	if (sigfd >= 0)
		close(sigfd);
	sigprocmask(SIG_UNBLOCK, &sigs, NULL);
	brk_fg_report(vm, &fg, true);
	free(msg);
	status = brk_vm_exit_status(vm, err, errlen);
	if (fg.rt_reported)
		err[0] = '\0';  /* said already */
	if (verbose && vm->counters[0])
		LOG_INFO("counters: %s", vm->counters);
	vm->hooks = NULL;
	vm->hook_ctx = NULL;
	return status;
}

void brk_vm_free(struct brk_vm *vm)
{
	if (!vm)
		return;
	brk_vm_kill_all(vm);
	if (vm->worker.pidfd >= 0) {
		waitpid(vm->worker.pid, NULL, 0);
		close(vm->worker.pidfd);
	}
	for (unsigned i = 0; i < vm->ndevs; i++) {
		if (vm->devs[i].pidfd >= 0) {
			waitpid(vm->devs[i].pid, NULL, 0);
			close(vm->devs[i].pidfd);
		}
	}
	ipc_chan_close(&vm->chan);
	free(vm);
}
