/* SPDX-License-Identifier: MIT */
/*
 * devhost: the runtime of a device process.
 *
 *   fd 3: bootstrap channel from the broker, one DevInit frame carrying the
 *         channel to the worker, the access-ring memfd and backend fds.
 *   then: DevRegister to the worker, DevRegistered back with one irqfd per
 *         IRQ line; a thread serves the access ring while the main thread
 *         serves the channel and the backend input.
 *
 * The worker is more trusted than a device, but a device still checks what
 * it is sent: every frame goes through a per-phase dispatch table.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device-procs/devhost/dev.h"
#include "device.pb-c.h"
#include "ipc/ipc.h"
#include "ipc/log.h"
#include "proto/msgtypes.h"

#define DEVHOST_BOOTSTRAP_FD 3
#define DEVHOST_MAX_IRQS 8u
#define DEVHOST_MAX_BACKEND_FDS 2u
/* How long the ring thread spins after an access before sleeping. */
#define DEVHOST_SPIN_NS 200000ull
/* Poll period while backend input waits for room in the device. */
#define DEVHOST_INPUT_RETRY_MS 10

struct devhost {
	const struct dev_desc *desc;
	struct dev *dev;
	pthread_mutex_t lock;
	char label[48];              /* "uart#0" */
	uint32_t instance;
	struct ipc_chan chan;        /* to the worker */
	struct ipc_ring *ring;
	int irqfds[DEVHOST_MAX_IRQS];
	bool irq_level[DEVHOST_MAX_IRQS];
	int backend_in;
	int backend_out;
	atomic_bool exit_requested;  /* set by request_exit during an access */
	bool stop;
	int status;                  /* process exit status */
	struct ipc_msg *msg;         /* receive buffer */
};

/* ---- host services for the core ----------------------------------------- */

static void devhost_irq_set(void *host, unsigned line, bool level)
{
	struct devhost *h = host;
	uint64_t one = 1;

	if (line >= h->desc->nirqs || line >= DEVHOST_MAX_IRQS)
		return;
	/*
	 * ISA lines are edge-triggered at the PIC and IOAPIC as the MP table
	 * describes them: a rising edge is one pulse on the irqfd.
	 */
	if (level && !h->irq_level[line] && h->irqfds[line] >= 0) {
		if (write(h->irqfds[line], &one, sizeof(one)) < 0)
			LOG_WARN("%s: cannot signal IRQ %u: %s", h->label,
				 h->desc->irqs[line], strerror(errno));
	}
	h->irq_level[line] = level;
}

static ssize_t devhost_backend_write(void *host, const void *buf, size_t len)
{
	struct devhost *h = host;
	const uint8_t *p = buf;
	size_t done = 0;

	if (h->backend_out < 0)
		return (ssize_t)len;  /* no backend: output is discarded */
	while (done < len) {
		ssize_t n = write(h->backend_out, p + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			LOG_WARN("%s: backend output failed (%s); discarding "
				 "further output", h->label,
				 n < 0 ? strerror(errno) : "short write");
			close(h->backend_out);
			h->backend_out = -1;
			return (ssize_t)len;
		}
		done += (size_t)n;
	}
	return (ssize_t)len;
}

static void devhost_request_exit(void *host, uint32_t code)
{
	struct devhost *h = host;
	DevGuestExit ge = DEV_GUEST_EXIT__INIT;
	int r;

	ge.code = code;
	r = ipc_send_pb(&h->chan, MSG_DEV_GUEST_EXIT, &ge.base, NULL, 0);
	if (r < 0)
		LOG_ERR("%s: cannot send the guest's exit request: %s", h->label,
			strerror(-r));
	atomic_store(&h->exit_requested, true);
}

static const struct dev_host_ops devhost_ops = {
	.irq_set = devhost_irq_set,
	.backend_write = devhost_backend_write,
	.request_exit = devhost_request_exit,
};

/* ---- the access ring ---------------------------------------------------- */

static int devhost_serve_access(void *ctx, unsigned slot, struct ipc_access *a)
{
	struct devhost *h = ctx;
	const struct dev_region *rg;
	uint64_t data = a->data;
	unsigned len = a->len;

	a->flags = 0;
	if (a->region >= h->desc->nregions ||
	    (len != 1 && len != 2 && len != 4 && len != 8)) {
		LOG_WARN("%s: malformed access (region %u, len %u) refused",
			 h->label, a->region, len);
		a->data = ~0ull;
		return 0;
	}
	rg = &h->desc->regions[a->region];
	if (a->off >= rg->len) {
		a->data = ~0ull;
		return 0;
	}
	if (!a->write)
		data = 0;
	pthread_mutex_lock(&h->lock);
	h->desc->io(h->dev, a->region, a->off, &data, len, a->write);
	pthread_mutex_unlock(&h->lock);
	if (!a->write)
		a->data = data;
	if (atomic_exchange(&h->exit_requested, false))
		a->flags |= IPC_ACC_F_STOP;
	return 0;
}

static void *devhost_ring_thread(void *arg)
{
	struct devhost *h = arg;
	int r = ipc_ring_serve(h->ring, devhost_serve_access, h,
			       DEVHOST_SPIN_NS);

	if (r < 0)
		LOG_ERR("%s: access ring failed: %s", h->label, strerror(-r));
	return NULL;
}

/* ---- bootstrap ---------------------------------------------------------- */

static int devhost_on_init(void *ctx, struct ipc_msg *m)
{
	struct devhost *h = ctx;
	DevInit *init = ipc_msg_unpack(m, &dev_init__descriptor);
	int r = -EPROTO;
	int ring_fd;

	if (!init) {
		LOG_ERR("malformed DevInit from the broker");
		return -EPROTO;
	}
	if (strcmp(init->kind, h->desc->name) != 0) {
		LOG_ERR("broker asked for a '%s' device, this binary is '%s'",
			init->kind, h->desc->name);
		goto out;
	}
	if (init->nbackend_fds > DEVHOST_MAX_BACKEND_FDS ||
	    m->nfds != 2 + init->nbackend_fds) {
		LOG_ERR("DevInit carries %u fds, expected %u", m->nfds,
			2 + init->nbackend_fds);
		goto out;
	}
	h->instance = init->instance;
	snprintf(h->label, sizeof(h->label), "%s#%u", h->desc->name,
		 init->instance);
	ipc_chan_init(&h->chan, ipc_msg_take_fd(m, 0), "worker");
	ring_fd = ipc_msg_take_fd(m, 1);
	r = ipc_ring_map(ring_fd, &h->ring);
	close(ring_fd);
	if (r < 0) {
		LOG_ERR("%s: cannot map the access ring: %s", h->label,
			strerror(-r));
		goto out;
	}
	if (init->nbackend_fds >= 1)
		h->backend_in = ipc_msg_take_fd(m, 2);
	if (init->nbackend_fds >= 2)
		h->backend_out = ipc_msg_take_fd(m, 3);
	r = 0;
out:
	dev_init__free_unpacked(init, NULL);
	return r;
}

static const struct ipc_handler devhost_bootstrap_tab[] = {
	{ MSG_DEV_INIT, IPC_PERMIT | IPC_ONCE, devhost_on_init },
};
static const struct ipc_phase devhost_bootstrap_phase = {
	"bootstrap", devhost_bootstrap_tab, 1
};

static int devhost_bootstrap(struct devhost *h)
{
	struct ipc_phase_state st = { 0 };
	struct ipc_chan boot;
	int r;

	ipc_chan_init(&boot, DEVHOST_BOOTSTRAP_FD, "broker");
	r = ipc_recv(&boot, h->msg);
	if (r == 0) {
		r = ipc_dispatch(&boot, &devhost_bootstrap_phase, &st, h, h->msg);
		ipc_msg_close_fds(h->msg);
	}
	ipc_chan_close(&boot);
	if (r < 0)
		LOG_ERR("no usable DevInit from the broker (%s)", strerror(-r));
	return r;
}

/* ---- registration with the worker --------------------------------------- */

static int devhost_on_registered(void *ctx, struct ipc_msg *m)
{
	struct devhost *h = ctx;
	DevRegistered *reg = ipc_msg_unpack(m, &dev_registered__descriptor);
	int r = -EPROTO;

	if (!reg)
		return -EPROTO;
	if (reg->nirqfds != h->desc->nirqs || m->nfds != h->desc->nirqs) {
		LOG_ERR("%s: worker sent %u irqfds for %u IRQ lines", h->label,
			m->nfds, h->desc->nirqs);
		goto out;
	}
	for (unsigned i = 0; i < m->nfds; i++)
		h->irqfds[i] = ipc_msg_take_fd(m, i);
	r = 0;
out:
	dev_registered__free_unpacked(reg, NULL);
	return r;
}

static const struct ipc_handler devhost_register_tab[] = {
	{ MSG_DEV_REGISTERED, IPC_PERMIT | IPC_ONCE, devhost_on_registered },
};
static const struct ipc_phase devhost_register_phase = {
	"registering", devhost_register_tab, 1
};

static int devhost_register(struct devhost *h)
{
	DevRegion regions[8], *rp[8];
	DevRegister reg = DEV_REGISTER__INIT;
	struct ipc_phase_state st = { 0 };
	uint32_t irqs[DEVHOST_MAX_IRQS];
	unsigned nreg = h->desc->nregions;
	int r;

	if (nreg > 8 || h->desc->nirqs > DEVHOST_MAX_IRQS)
		return -EINVAL;
	reg.kind = (char *)h->desc->name;
	reg.instance = h->instance;
	for (unsigned i = 0; i < nreg; i++) {
		dev_region__init(&regions[i]);
		regions[i].space = h->desc->regions[i].space;
		regions[i].addr = h->desc->regions[i].base;
		regions[i].len = h->desc->regions[i].len;
		rp[i] = &regions[i];
	}
	reg.n_regions = nreg;
	reg.regions = rp;
	for (unsigned i = 0; i < h->desc->nirqs; i++)
		irqs[i] = h->desc->irqs[i];
	reg.n_irqs = h->desc->nirqs;
	reg.irqs = irqs;
	r = ipc_send_pb(&h->chan, MSG_DEV_REGISTER, &reg.base, NULL, 0);
	if (r < 0)
		return r;
	r = ipc_recv(&h->chan, h->msg);
	if (r < 0)
		return r;
	r = ipc_dispatch(&h->chan, &devhost_register_phase, &st, h, h->msg);
	ipc_msg_close_fds(h->msg);
	return r;
}

/* ---- running ------------------------------------------------------------ */

static int devhost_on_destruct(void *ctx, struct ipc_msg *m)
{
	struct devhost *h = ctx;

	h->stop = true;
	return 0;
}

static const struct ipc_handler devhost_running_tab[] = {
	{ MSG_DEV_DESTRUCT, IPC_PERMIT | IPC_ONCE, devhost_on_destruct },
};
static const struct ipc_phase devhost_running_phase = {
	"running", devhost_running_tab, 1
};

/* Read what the device has room for from its backend input. */
static void devhost_pump_input(struct devhost *h)
{
	uint8_t buf[256];
	size_t room;
	ssize_t n;

	pthread_mutex_lock(&h->lock);
	room = h->desc->backend_room(h->dev);
	pthread_mutex_unlock(&h->lock);
	if (room == 0)
		return;
	if (room > sizeof(buf))
		room = sizeof(buf);
	n = read(h->backend_in, buf, room);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* EOF or error: no more input, as if the line went quiet. */
		close(h->backend_in);
		h->backend_in = -1;
		return;
	}
	pthread_mutex_lock(&h->lock);
	h->desc->backend_input(h->dev, buf, (size_t)n);
	pthread_mutex_unlock(&h->lock);
}

static void devhost_loop(struct devhost *h)
{
	struct ipc_phase_state st = { 0 };

	while (!h->stop) {
		struct pollfd p[2] = {
			{ .fd = h->chan.fd, .events = POLLIN },
			{ .fd = -1, .events = POLLIN },
		};
		bool has_input = h->backend_in >= 0 && h->desc->backend_input;
		bool room = false;
		int timeout = -1;
		int r;

		if (has_input) {
			pthread_mutex_lock(&h->lock);
			room = h->desc->backend_room(h->dev) > 0;
			pthread_mutex_unlock(&h->lock);
			if (room)
				p[1].fd = h->backend_in;
			else
				timeout = DEVHOST_INPUT_RETRY_MS;
		}
		r = poll(p, 2, timeout);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			LOG_ERR("%s: poll: %s", h->label, strerror(errno));
			h->status = 1;
			return;
		}
		if (p[0].revents) {
			r = ipc_recv(&h->chan, h->msg);
			if (r == -ECONNRESET) {
				/* The worker has gone: nothing left to serve. */
				return;
			}
			if (r == 0) {
				r = ipc_dispatch(&h->chan, &devhost_running_phase,
						 &st, h, h->msg);
				ipc_msg_close_fds(h->msg);
			}
			if (r < 0) {
				LOG_ERR("%s: channel to the worker failed: %s",
					h->label, strerror(-r));
				h->status = 1;
				return;
			}
		}
		if (p[1].revents)
			devhost_pump_input(h);
	}
}

int dev_main(int argc, char **argv, const struct dev_desc *desc)
{
	struct devhost h = {
		.desc = desc, .backend_in = -1, .backend_out = -1,
		.chan = { .fd = -1 },
	};
	pthread_t ring_thread;
	char name[64];
	int r;

	snprintf(name, sizeof(name), "bulkhead-dev-%s", desc->name);
	ipc_log_init(name, IPC_LOG_INFO);
	signal(SIGPIPE, SIG_IGN);
	for (unsigned i = 0; i < DEVHOST_MAX_IRQS; i++)
		h.irqfds[i] = -1;
	pthread_mutex_init(&h.lock, NULL);
	h.msg = malloc(sizeof(*h.msg));
	if (!h.msg)
		return 1;
	if (devhost_bootstrap(&h) < 0)
		return 1;
	r = dev_new(desc, h.instance, &devhost_ops, &h, &h.dev);
	if (r < 0) {
		LOG_ERR("%s: cannot construct the device: %s", h.label,
			strerror(-r));
		return 1;
	}
	r = devhost_register(&h);
	if (r == -ECONNRESET || r == -EPIPE) {
		/* The worker gave up on the VM before we were wired up (it
		 * reports why); nothing to serve. */
		return 0;
	}
	if (r < 0) {
		LOG_ERR("%s: registration with the worker failed: %s", h.label,
			strerror(-r));
		return 1;
	}
	r = pthread_create(&ring_thread, NULL, devhost_ring_thread, &h);
	if (r != 0) {
		LOG_ERR("%s: cannot start the ring thread: %s", h.label,
			strerror(r));
		return 1;
	}
	devhost_loop(&h);
	ipc_ring_stop(h.ring);
	pthread_join(ring_thread, NULL);
	dev_free(h.dev);
	ipc_ring_unmap(h.ring);
	ipc_chan_close(&h.chan);
	free(h.msg);
	return h.status;
}
