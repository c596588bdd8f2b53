/* SPDX-License-Identifier: MIT */
/*
 * Launching one VM (memfd, rings, channels, worker and device processes)
 * and supervising it in the foreground for `bulkhead run`.
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
struct brk_dev_kind {
	const char *kind;
	const char *binary;
	uint32_t space;
	uint64_t base;
	uint64_t len;
	int irq;                /* GSI, -1: none */
	bool may_request_exit;
	bool console;           /* gets the serial backend fds */
};

static const struct brk_dev_kind brk_dev_uart = {
	"uart", "bulkhead-dev-uart", IPC_SPACE_PIO, 0x3f8, 8, 4, false, true,
};
static const struct brk_dev_kind brk_dev_debugexit = {
	"debug-exit", "bulkhead-dev-debugexit", IPC_SPACE_PIO, 0xf4, 1, -1,
	true, false,
};
static const struct brk_dev_kind brk_dev_null = {
	"null", "bulkhead-dev-null", IPC_SPACE_PIO, 0x510, 8, -1, false, false,
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

/* Spawn one device process and send it its DevInit; *chan_out is the
 * worker's end of its channel, *ring_out the ring memfd. */
static int brk_launch_device(struct brk_vm *vm, const struct brk_vm_config *cfg,
			     const struct brk_dev_kind *k, unsigned instance,
			     int *chan_out, int *ring_out, char *err,
			     size_t errlen)
{
	struct brk_child *c = &vm->devs[vm->ndevs];
	DevInit init = DEV_INIT__INIT;
	int boot[2] = { -1, -1 }, chan[2] = { -1, -1 };
	int fds[4], nfds = 0, ring = -1, in_fd = -1, out_fd = -1;
	char label[48];
	struct ipc_chan bc;
	int r;

	snprintf(label, sizeof(label), "%s#%u", k->kind, instance);
	ring = ipc_ring_create(cfg->cpus, label);
	if (ring < 0) {
		r = ring;
		snprintf(err, errlen, "cannot create the access ring of %s: %s",
			 label, strerror(-r));
		goto out;
	}
	if (ipc_chan_pair(boot) < 0 || ipc_chan_pair(chan) < 0) {
		r = -errno;
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		goto out;
	}
	r = brk_spawn(k->binary, boot[1], label, c, err, errlen);
	if (r < 0)
		goto out;
	vm->ndevs++;
	fds[nfds++] = chan[1];
	fds[nfds++] = ring;
	if (k->console) {
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
	}
	init.kind = (char *)k->kind;
	init.instance = instance;
	ipc_chan_init(&bc, boot[0], label);
	boot[0] = -1;
	r = ipc_send_pb(&bc, MSG_DEV_INIT, &init.base, fds, (unsigned)nfds);
	ipc_chan_close(&bc);
	if (r < 0) {
		snprintf(err, errlen, "cannot hand %s its resources: %s", label,
			 strerror(-r));
		goto out;
	}
	*chan_out = chan[0];
	chan[0] = -1;
	*ring_out = ring;
	ring = -1;
	r = 0;
out:
	for (int i = 0; i < 2; i++) {
		if (boot[i] >= 0)
			close(boot[i]);
		if (chan[i] >= 0)
			close(chan[i]);
	}
	if (ring >= 0)
		close(ring);
	if (in_fd >= 0)
		close(in_fd);
	if (out_fd >= 0)
		close(out_fd);
	return r;
}

static void brk_fill_spec(DeviceSpec *s, RegionSpec *rg, RegionSpec **rgp,
			  uint32_t *irq, const struct brk_dev_kind *k,
			  unsigned instance)
{
	device_spec__init(s);
	region_spec__init(rg);
	s->kind = (char *)k->kind;
	s->instance = instance;
	rg->space = k->space;
	rg->addr = k->base;
	rg->len = k->len;
	*rgp = rg;
	s->n_regions = 1;
	s->regions = rgp;
	if (k->irq >= 0) {
		*irq = (uint32_t)k->irq;
		s->n_irqs = 1;
		s->irqs = irq;
	}
	s->may_request_exit = k->may_request_exit;
}

int brk_vm_launch(int kvm_fd, const struct brk_vm_config *cfg,
		  struct brk_vm **out, char *err, size_t errlen)
{
	const struct brk_dev_kind *kinds[BRK_MAX_DEVICES];
	DeviceSpec specs[BRK_MAX_DEVICES], *specp[BRK_MAX_DEVICES];
	RegionSpec regions[BRK_MAX_DEVICES], *regionp[BRK_MAX_DEVICES];
	uint32_t irqs[BRK_MAX_DEVICES];
	int dev_chan[BRK_MAX_DEVICES], dev_ring[BRK_MAX_DEVICES];
	int fds[4 + 2 * BRK_MAX_DEVICES];
	WorkerInit init = WORKER_INIT__INIT;
	unsigned nkinds = 0, nfds = 0;
	int wchan[2] = { -1, -1 }, ram = -1;
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
	for (unsigned i = 0; i < BRK_MAX_DEVICES; i++)
		dev_chan[i] = dev_ring[i] = -1;

	kinds[nkinds++] = &brk_dev_uart;
	kinds[nkinds++] = &brk_dev_debugexit;
	if (cfg->null_dev)
		kinds[nkinds++] = &brk_dev_null;

	ram = brk_make_ram(cfg->mem_size);
	if (ram < 0) {
		snprintf(err, errlen, "cannot create %" PRIu64 " bytes of guest "
			 "RAM: %s", cfg->mem_size, strerror(-ram));
		goto out;
	}
	for (unsigned i = 0; i < nkinds; i++) {
		r = brk_launch_device(vm, cfg, kinds[i], 0, &dev_chan[i],
				      &dev_ring[i], err, errlen);
		if (r < 0)
			goto out;
		brk_fill_spec(&specs[i], &regions[i], &regionp[i], &irqs[i],
			      kinds[i], 0);
		specp[i] = &specs[i];
	}

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
	init.cmdline = (char *)(cfg->cmdline ? cfg->cmdline : "");
	init.has_initrd = cfg->initrd_fd >= 0;
	init.n_devices = nkinds;
	init.devices = specp;
	fds[nfds++] = kvm_fd;
	fds[nfds++] = ram;
	fds[nfds++] = cfg->image_fd;
	if (cfg->initrd_fd >= 0)
		fds[nfds++] = cfg->initrd_fd;
	for (unsigned i = 0; i < nkinds; i++) {
		fds[nfds++] = dev_chan[i];
		fds[nfds++] = dev_ring[i];
	}
	r = ipc_send_pb(&vm->chan, MSG_WORKER_INIT, &init.base, fds, nfds);
	if (r < 0) {
		snprintf(err, errlen, "cannot hand the worker its resources: %s",
			 strerror(-r));
		goto out;
	}
	code = 0;
	*out = vm;
out:
	for (unsigned i = 0; i < BRK_MAX_DEVICES; i++) {
		if (dev_chan[i] >= 0)
			close(dev_chan[i]);
		if (dev_ring[i] >= 0)
			close(dev_ring[i]);
	}
	for (int i = 0; i < 2; i++)
		if (wchan[i] >= 0)
			close(wchan[i]);
	if (ram >= 0)
		close(ram);
	if (code) {
		/* Whatever was started goes; the caller reports err. */
		brk_vm_free(vm);
	}
	return code;
}

/* ---- supervision -------------------------------------------------------- */

static void brk_reap(struct brk_child *c)
{
	siginfo_t si = { 0 };

	if (c->reaped || c->pidfd < 0)
		return;
	if (waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED | WNOHANG) < 0 ||
	    si.si_pid == 0)
		return;
	if (si.si_code == CLD_EXITED)
		c->wstatus = (si.si_status & 0xff) << 8;
	else
		c->wstatus = si.si_status & 0x7f;  /* killed or dumped */
	c->reaped = true;
	close(c->pidfd);
	c->pidfd = -1;
}

static void brk_kill_all(struct brk_vm *vm)
{
	if (!vm->worker.reaped && vm->worker.pid > 0)
		kill(vm->worker.pid, SIGKILL);
	for (unsigned i = 0; i < vm->ndevs; i++)
		if (!vm->devs[i].reaped)
			kill(vm->devs[i].pid, SIGKILL);
}

static bool brk_all_reaped(const struct brk_vm *vm)
{
	if (vm->worker.pid > 0 && !vm->worker.reaped)
		return false;
	for (unsigned i = 0; i < vm->ndevs; i++)
		if (!vm->devs[i].reaped)
			return false;
	return true;
}

static int brk_on_ready(void *ctx, struct ipc_msg *m)
{
	struct brk_vm *vm = ctx;
	WorkerReady *wr = ipc_msg_unpack(m, &worker_ready__descriptor);

	if (!wr)
		return -EPROTO;
	vm->ready = true;
	LOG_DBG("worker ready: %u vCPUs, %s image", wr->vcpus, wr->image_kind);
	worker_ready__free_unpacked(wr, NULL);
	return 0;
}

static int brk_on_exited(void *ctx, struct ipc_msg *m)
{
	struct brk_vm *vm = ctx;
	VmExited *ex = ipc_msg_unpack(m, &vm_exited__descriptor);
	size_t off = 0;

	if (!ex)
		return -EPROTO;
	vm->have_end = true;
	vm->end_reason = ex->reason;
	vm->end_code = ex->code;
	snprintf(vm->end_id, sizeof(vm->end_id), "%s", ex->error_id);
	snprintf(vm->end_msg, sizeof(vm->end_msg), "%s", ex->message);
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
	return 0;
}

static int brk_on_control_reply(void *ctx, struct ipc_msg *m)
{
	VmControlReply *rep = ipc_msg_unpack(m, &vm_control_reply__descriptor);

	if (!rep)
		return -EPROTO;
	if (rep->status < 0)
		LOG_WARN("worker refused the operation: %s", rep->message);
	vm_control_reply__free_unpacked(rep, NULL);
	return 0;
}

static int brk_on_state(void *ctx, struct ipc_msg *m)
{
	VmStateChanged *ev = ipc_msg_unpack(m, &vm_state_changed__descriptor);

	if (!ev)
		return -EPROTO;
	LOG_DBG("VM state %s -> %s", ev->old_state, ev->new_state);
	vm_state_changed__free_unpacked(ev, NULL);
	return 0;
}

/* In the foreground a runtime error that suspends the VM ends the run:
 * nobody is there to resume it. */
static int brk_on_runtime_error(void *ctx, struct ipc_msg *m)
{
	struct brk_vm *vm = ctx;
	VmRuntimeError *ev = ipc_msg_unpack(m, &vm_runtime_error__descriptor);
	VmControl vc = VM_CONTROL__INIT;

	if (!ev)
		return -EPROTO;
	LOG_ERR("VM %s: %s", (ev->flags & 1) ? "stopped" : "suspended",
		ev->message);
	vm_runtime_error__free_unpacked(ev, NULL);
	vc.op = VM_CONTROL__OP__POWER_OFF;
	return ipc_send_pb(&vm->chan, MSG_VM_CONTROL, &vc.base, NULL, 0);
}

static const struct ipc_handler brk_worker_tab[] = {
	{ MSG_WORKER_READY, IPC_PERMIT | IPC_ONCE, brk_on_ready },
	{ MSG_VM_EXITED, IPC_PERMIT | IPC_ONCE, brk_on_exited },
	{ MSG_VM_CONTROL_REPLY, IPC_PERMIT, brk_on_control_reply },
	{ MSG_VM_STATE, IPC_PERMIT, brk_on_state },
	{ MSG_VM_RUNTIME_ERROR, IPC_PERMIT, brk_on_runtime_error },
};
static const struct ipc_phase brk_worker_phase = {
	"running", brk_worker_tab, 5
};

/* The status `bulkhead run` exits with, and the error text if any. */
static int brk_vm_status(struct brk_vm *vm, char *err, size_t errlen)
{
	char how[96];

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
	if (strcmp(vm->end_id, "device-died") == 0) {
		/* Say how it died: we are its parent, the worker is not. */
		for (unsigned i = 0; i < vm->ndevs; i++) {
			struct brk_child *c = &vm->devs[i];

			if (c->reaped && strstr(vm->end_msg, c->label)) {
				brk_child_describe(c, how, sizeof(how));
				snprintf(err, errlen, "device %s %s", c->label,
					 how);
				return BRK_EXIT_DEVICE;
			}
		}
	}
	snprintf(err, errlen, "%s", vm->end_msg);
	if (strcmp(vm->end_id, "bad-image") == 0)
		return BRK_EXIT_BADIMAGE;
	if (strncmp(vm->end_id, "device-", 7) == 0)
		return BRK_EXIT_DEVICE;
	if (strcmp(vm->end_id, "guest-fault") == 0)
		return BRK_EXIT_GUEST;
	return BRK_EXIT_INTERNAL;
}

static int64_t brk_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int brk_vm_run_foreground(struct brk_vm *vm, bool verbose, char *err,
			  size_t errlen)
{
	struct ipc_msg *msg = malloc(sizeof(*msg));
	struct ipc_phase_state st = { 0 };
	sigset_t sigs;
	int sigfd, signals = 0, status;
	int64_t worker_gone_at = -1;

	if (!msg) {
		snprintf(err, errlen, "out of memory");
		return BRK_EXIT_INTERNAL;
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);

	while (!brk_all_reaped(vm)) {
		struct pollfd p[3 + BRK_MAX_DEVICES];
		unsigned n = 0;
		int timeout = -1, r;

		p[n++] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = vm->chan.fd, .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = vm->worker.pidfd, .events = POLLIN };
		for (unsigned i = 0; i < vm->ndevs; i++)
			p[n++] = (struct pollfd){ .fd = vm->devs[i].pidfd,
						  .events = POLLIN };
		if (worker_gone_at >= 0) {
			int64_t left = worker_gone_at + BRK_DEVICE_GRACE_MS -
				       brk_now_ms();

			if (left <= 0) {
				brk_kill_all(vm);
				left = 100;
			}
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
				if (signals == 1 && vm->chan.fd >= 0) {
					VmControl vc = VM_CONTROL__INIT;

					vc.op = VM_CONTROL__OP__POWER_OFF;
					LOG_INFO("%s: powering the VM off",
						 strsignal((int)si.ssi_signo));
					ipc_send_pb(&vm->chan, MSG_VM_CONTROL,
						    &vc.base, NULL, 0);
				} else {
					LOG_INFO("%s again: killing the VM",
						 strsignal((int)si.ssi_signo));
					brk_kill_all(vm);
				}
			}
		}
		if (p[1].revents) {
			r = ipc_recv(&vm->chan, msg);
			if (r == 0) {
				r = ipc_dispatch(&vm->chan, &brk_worker_phase, &st,
						 vm, msg);
				ipc_msg_close_fds(msg);
			}
			if (r < 0) {
				if (r != -ECONNRESET)
					LOG_ERR("worker broke protocol: %s",
						strerror(-r));
				ipc_chan_close(&vm->chan);
			}
		}
		if (p[2].revents) {
			brk_reap(&vm->worker);
			if (worker_gone_at < 0)
				worker_gone_at = brk_now_ms();
			/* Drain what the worker said before it went. */
			while (vm->chan.fd >= 0) {
				struct pollfd q = { .fd = vm->chan.fd, .events = POLLIN };

				if (poll(&q, 1, 0) <= 0)
					break;
				r = ipc_recv(&vm->chan, msg);
				if (r == 0) {
					r = ipc_dispatch(&vm->chan,
							 &brk_worker_phase, &st,
							 vm, msg);
					ipc_msg_close_fds(msg);
				}
				if (r < 0)
					ipc_chan_close(&vm->chan);
			}
		}
		for (unsigned i = 0; i < vm->ndevs; i++) {
			if (p[3 + i].revents)
				brk_reap(&vm->devs[i]);
		}
	}
	if (sigfd >= 0)
		close(sigfd);
	sigprocmask(SIG_UNBLOCK, &sigs, NULL);
	free(msg);
	status = brk_vm_status(vm, err, errlen);
	if (verbose && vm->counters[0])
		LOG_INFO("counters: %s", vm->counters);
	return status;
}

void brk_vm_free(struct brk_vm *vm)
{
	if (!vm)
		return;
	brk_kill_all(vm);
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
