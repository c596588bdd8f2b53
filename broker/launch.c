/* SPDX-License-Identifier: MIT */
/*
 * Launching one VM: the guest-RAM memfd, a ring and a channel per device,
 * the worker and one process per device, each handed its resources
 * (WorkerInit, DevInit). Shared by `bulkhead run` and bulkheadd.
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

#include "broker/launch.h"
#include "device-procs/manifest.h"
#include "device.pb-c.h"
#include "ipc/log.h"
#include "kdriver/kd.h"
#include "proto/msgtypes.h"
#include "worker.pb-c.h"

/* The manifest's spaces are the wire's (RegionSpec.space). */
_Static_assert((int)DEV_PIO == (int)IPC_SPACE_PIO &&
	       (int)DEV_MMIO == (int)IPC_SPACE_MMIO,
	       "device-procs/manifest.h and ipc/ipc.h disagree on spaces");

/* One device of this VM: its kind, which one of that kind, what it was
 * asked with (NULL: a fixed device) and where it was placed. */
struct brk_dev_slot {
	const struct dev_manifest *k;
	unsigned instance;
	const struct brk_dev_req *req;
	uint64_t base[DEV_MF_MAX_REGIONS];
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

	snprintf(label, sizeof(label), "%s#%u", slot->k->name, slot->instance);
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

/* The two fds of the serial console's backend (input, output), as
 * cfg->serial asks. 0, or -errno after saying why. */
static int brk_console_fds(const struct brk_vm_config *cfg, int *in_fd,
			   int *out_fd, char *err, size_t errlen)
{
	int r;

	switch (cfg->serial) {
	case BRK_SERIAL_STDIO:
		*in_fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0);
		*out_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0);
		break;
	case BRK_SERIAL_NULL:
		*in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		*out_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		break;
	case BRK_SERIAL_FILE:
		*in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		*out_fd = fcntl(cfg->serial_out_fd, F_DUPFD_CLOEXEC, 0);
		break;
	case BRK_SERIAL_CONSOLE:
		*in_fd = fcntl(cfg->console_fd, F_DUPFD_CLOEXEC, 0);
		*out_fd = fcntl(cfg->console_fd, F_DUPFD_CLOEXEC, 0);
		break;
	}
	if (*in_fd < 0 || *out_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot set up the serial console: %s",
			 strerror(errno));
		return r;
	}
	return 0;
}

/* A virtio-mmio device's DevInit: its regions and IRQ as placed by us, not
 * at the device's defaults. */
static void brk_dev_init_place(DevInit *init, const struct brk_dev_slot *slot,
			       DevRegion *reg, DevRegion **regp, uint32_t *irq)
{
	const struct dev_manifest *k = slot->k;

	for (unsigned i = 0; i < k->nregions; i++) {
		dev_region__init(&reg[i]);
		reg[i].space = k->regions[i].space;
		reg[i].addr = slot->base[i];
		reg[i].len = k->regions[i].len;
		regp[i] = &reg[i];
	}
	init->n_regions = k->nregions;
	init->regions = regp;
	*irq = (uint32_t)slot->irq;
	init->n_irqs = 1;
	init->irqs = irq;
}

/* Spawn one device process and send it its DevInit with its end of its
 * channel (dev_chan) and the ring. */
static int brk_launch_device(struct brk_vm *vm, const struct brk_vm_config *cfg,
			     const struct brk_dev_slot *slot, int ram,
			     int dev_chan, int ring, char *err, size_t errlen)
{
	const struct dev_manifest *k = slot->k;
	struct brk_child *c = &vm->devs[vm->ndevs];
	DevInit init = DEV_INIT__INIT;
	DevRegion reg[2], *regp[2];
	uint32_t irq;
	int boot[2] = { -1, -1 };
	int fds[6], nfds = 0, in_fd = -1, out_fd = -1;
	char label[48];
	char serial[32];
	struct ipc_chan bc;
	int r;

	snprintf(label, sizeof(label), "%s#%u", k->name, slot->instance);
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
	if (k->flags & DEV_MF_DMA) {
		fds[nfds++] = ram;
		init.has_ram = true;
	}
	if (k->backend == DEV_BACKEND_CONSOLE) {
		r = brk_console_fds(cfg, &in_fd, &out_fd, err, errlen);
		if (r < 0)
			goto out;
		fds[nfds++] = in_fd;
		fds[nfds++] = out_fd;
		init.nbackend_fds = 2;
	} else if (k->backend == DEV_BACKEND_DISK) {
		fds[nfds++] = slot->req->fd;
		init.nbackend_fds = 1;
		init.readonly = slot->req->ro;
		snprintf(serial, sizeof(serial), "bulkhead-disk%u",
			 slot->instance);
		init.serial = serial;
	}
	if (k->flags & DEV_MF_VIRTIO)
		brk_dev_init_place(&init, slot, reg, regp, &irq);
	init.kind = (char *)k->name;
	init.instance = slot->instance;
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
	const struct dev_manifest *k = slot->k;

	device_spec__init(s);
	s->kind = (char *)k->name;
	s->instance = slot->instance;
	for (unsigned i = 0; i < k->nregions; i++) {
		region_spec__init(&rg[i]);
		rg[i].space = k->regions[i].space;
		rg[i].addr = slot->base[i];
		rg[i].len = k->regions[i].len;
		rgp[i] = &rg[i];
	}
	s->n_regions = k->nregions;
	s->regions = rgp;
	if (k->nirqs > 0) {
		irq[0] = (uint32_t)slot->irq;
		for (unsigned i = 1; i < k->nirqs; i++)
			irq[i] = k->irqs[i];
		s->n_irqs = k->nirqs;
		s->irqs = irq;
	}
	s->may_request_exit = (k->flags & DEV_MF_EXIT) != 0;
	s->may_request_reset = (k->flags & DEV_MF_RESET) != 0;
	s->may_request_poweroff = (k->flags & DEV_MF_POWEROFF) != 0;
}

/* Place device n of the plan: kind k, instance inst, asked with req. */
static int brk_plan_one(struct brk_dev_slot *slots, unsigned *n,
			const struct dev_manifest *k, unsigned inst,
			const struct brk_dev_req *req, unsigned *nvirtio,
			char *err, size_t errlen)
{
	struct brk_dev_slot *slot = &slots[*n];

	if (*n >= BRK_MAX_DEVICES) {
		snprintf(err, errlen, "more than %u devices", BRK_MAX_DEVICES);
		return -E2BIG;
	}
	slot->k = k;
	slot->instance = inst;
	slot->req = req;
	slot->irq = k->nirqs ? (int)k->irqs[0] : -1;
	for (unsigned j = 0; j < k->nregions; j++)
		slot->base[j] = k->regions[j].base;
	if (k->flags & DEV_MF_VIRTIO) {
		if (*nvirtio >= DEV_VIRTIO_SLOTS) {
			snprintf(err, errlen, "more than %u virtio devices",
				 DEV_VIRTIO_SLOTS);
			return -E2BIG;
		}
		slot->base[0] = dev_virtio_slot_base(*nvirtio);
		slot->irq = (int)dev_virtio_irqs[*nvirtio];
		(*nvirtio)++;
	}
	(*n)++;
	return 0;
}

/*
 * The VM's devices: the manifest's kinds in its order, a fixed one once
 * and an optional one as often as the configuration asks, in the order
 * asked; virtio-mmio devices take slots in that order. The number of
 * devices, or -errno after saying why.
 */
static int brk_plan_devices(const struct brk_vm_config *cfg,
			    struct brk_dev_slot *slots, char *err, size_t errlen)
{
	unsigned n = 0, nvirtio = 0, used = 0;
	int r = 0;

	for (unsigned i = 0; i < dev_nmanifests && r == 0; i++) {
		const struct dev_manifest *k = dev_manifests[i];
		unsigned inst = 0;

		if (!(k->flags & DEV_MF_OPTIONAL)) {
			r = brk_plan_one(slots, &n, k, 0, NULL, &nvirtio, err,
					 errlen);
			continue;
		}
		for (unsigned d = 0; d < cfg->ndevs && r == 0; d++) {
			if (cfg->devs[d].k != k)
				continue;
			used++;
			r = brk_plan_one(slots, &n, k, inst++, &cfg->devs[d],
					 &nvirtio, err, errlen);
		}
	}
	if (r == 0 && used != cfg->ndevs) {
		snprintf(err, errlen, "a device was asked for that is not an "
			 "optional kind of the manifest");
		r = -EINVAL;
	}
	return r < 0 ? r : (int)n;
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
		if (!(slots[i].k->flags & DEV_MF_VIRTIO))
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

/* What one launch holds until the worker and the devices have their
 * shares: the plan, the worker's DeviceSpecs and the fds still ours. */
struct brk_launch {
	const struct brk_vm_config *cfg;
	struct brk_dev_slot slots[BRK_MAX_DEVICES];
	unsigned nkinds;
	DeviceSpec specs[BRK_MAX_DEVICES], *specp[BRK_MAX_DEVICES];
	RegionSpec regions[BRK_MAX_DEVICES][2], *regionp[BRK_MAX_DEVICES][2];
	uint32_t irqs[BRK_MAX_DEVICES][2];
	char *cmdline;
	int dev_chan[BRK_MAX_DEVICES][2], dev_ring[BRK_MAX_DEVICES];
	int wchan[2], ram;
	int image_fd, initrd_fd;
};

/* The guest's command line, its RAM, and each device's ring, channel and
 * DeviceSpec. 0, or < 0 after saying why. */
static int brk_launch_prepare(struct brk_launch *l, char *err, size_t errlen)
{
	const struct brk_vm_config *cfg = l->cfg;

	l->cmdline = brk_compose_cmdline(cfg->cmdline, l->slots, l->nkinds);
	if (!l->cmdline) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	l->ram = brk_make_ram(cfg->mem_size);
	if (l->ram < 0) {
		snprintf(err, errlen, "cannot create %" PRIu64 " bytes of guest "
			 "RAM: %s", cfg->mem_size, strerror(-l->ram));
		return l->ram;
	}
	for (unsigned i = 0; i < l->nkinds; i++) {
		int r = brk_device_links(cfg, &l->slots[i], &l->dev_ring[i],
					 l->dev_chan[i], err, errlen);

		if (r < 0)
			return r;
		brk_fill_spec(&l->specs[i], l->regions[i], l->regionp[i],
			      l->irqs[i], &l->slots[i]);
		l->specp[i] = &l->specs[i];
	}
	return 0;
}

/* Spawn the worker and make vm->chan its channel. 0, or < 0 after saying
 * why. */
static int brk_launch_worker(struct brk_launch *l, struct brk_vm *vm,
			     char *err, size_t errlen)
{
	int r;

	if (ipc_chan_pair(l->wchan) < 0) {
		r = -errno;
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return r;
	}
	r = brk_spawn("bulkhead-worker", l->wchan[1], "worker", &vm->worker,
		      err, errlen);
	if (r < 0)
		return r;
	close(l->wchan[1]);
	l->wchan[1] = -1;
	ipc_chan_init(&vm->chan, l->wchan[0], "worker");
	l->wchan[0] = -1;
	return 0;
}

/* Hand the worker its WorkerInit with /dev/kvm, the RAM, the boot files or
 * the saved state, and each device's channel and ring. 0, or < 0 after
 * saying why. */
static int brk_launch_worker_init(struct brk_launch *l, struct brk_vm *vm,
				  int kvm_fd, char *err, size_t errlen)
{
	const struct brk_vm_config *cfg = l->cfg;
	int fds[5 + 2 * BRK_MAX_DEVICES];
	WorkerInit init = WORKER_INIT__INIT;
	unsigned nfds = 0;
	int r;

	init.mem_size = cfg->mem_size;
	init.cpus = cfg->cpus;
	init.cmdline = l->cmdline;
	init.has_initrd = l->initrd_fd >= 0;
	init.restore = cfg->restore_fd >= 0;
	init.no_image = l->image_fd < 0;
	init.n_devices = l->nkinds;
	init.devices = l->specp;
	fds[nfds++] = kvm_fd;
	fds[nfds++] = l->ram;
	if (l->image_fd >= 0)
		fds[nfds++] = l->image_fd;
	if (l->initrd_fd >= 0)
		fds[nfds++] = l->initrd_fd;
	if (cfg->restore_fd >= 0)
		fds[nfds++] = cfg->restore_fd;
	for (unsigned i = 0; i < l->nkinds; i++) {
		fds[nfds++] = l->dev_chan[i][0];
		fds[nfds++] = l->dev_ring[i];
	}
	r = ipc_send_pb(&vm->chan, MSG_WORKER_INIT, &init.base, fds, nfds);
	if (r < 0)
		snprintf(err, errlen, "cannot hand the worker its resources: %s",
			 strerror(-r));
	return r;
}

/*
 * The worker reads the image from the start of the open file, which it
 * shares with us (and the user); a VM started again reads it again.
 */
static void brk_launch_rewind(const struct brk_launch *l)
{
	if (l->image_fd >= 0)
		lseek(l->image_fd, 0, SEEK_SET);
	if (l->initrd_fd >= 0)
		lseek(l->initrd_fd, 0, SEEK_SET);
	if (l->cfg->restore_fd >= 0)
		lseek(l->cfg->restore_fd, 0, SEEK_SET);
}

/* Close what the launch still holds; the worker and the devices have
 * their own copies by now. */
static void brk_launch_release(struct brk_launch *l)
{
	for (unsigned i = 0; i < BRK_MAX_DEVICES; i++) {
		for (int j = 0; j < 2; j++)
			if (l->dev_chan[i][j] >= 0)
				close(l->dev_chan[i][j]);
		if (l->dev_ring[i] >= 0)
			close(l->dev_ring[i]);
	}
	for (int i = 0; i < 2; i++)
		if (l->wchan[i] >= 0)
			close(l->wchan[i]);
	if (l->ram >= 0)
		close(l->ram);
	free(l->cmdline);
}

int brk_vm_launch(int kvm_fd, const struct brk_vm_config *cfg,
		  struct brk_vm **out, char *err, size_t errlen)
{
	struct brk_launch l = {
		.cfg = cfg, .wchan = { -1, -1 }, .ram = -1,
		/* A restore takes the boot image (and initrd) from the
		 * stream. */
		.image_fd = cfg->restore_fd >= 0 ? -1 : cfg->image_fd,
		.initrd_fd = cfg->restore_fd >= 0 ? -1 : cfg->initrd_fd,
	};
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
		l.dev_chan[i][0] = l.dev_chan[i][1] = l.dev_ring[i] = -1;
	brk_launch_rewind(&l);

	r = brk_plan_devices(cfg, l.slots, err, errlen);
	if (r < 0) {
		code = BRK_EXIT_USAGE;
		goto out;
	}
	l.nkinds = (unsigned)r;
	if (brk_launch_prepare(&l, err, errlen) < 0)
		goto out;
	/*
	 * The worker first: building its VM (KVM, RAM, the image) is the
	 * longest part of a start, and it goes on while the devices are
	 * spawned; the worker waits for each device's channel as it needs it.
	 */
	if (brk_launch_worker(&l, vm, err, errlen) < 0 ||
	    brk_launch_worker_init(&l, vm, kvm_fd, err, errlen) < 0)
		goto out;
	for (unsigned i = 0; i < l.nkinds; i++) {
		r = brk_launch_device(vm, cfg, &l.slots[i], l.ram,
				      l.dev_chan[i][1], l.dev_ring[i], err,
				      errlen);
		if (r < 0)
			goto out;
	}
	code = 0;
	*out = vm;
out:
	brk_launch_release(&l);
	if (code) {
		/* Whatever was started goes; the caller reports err. */
		brk_vm_free(vm);
	}
	return code;
}
