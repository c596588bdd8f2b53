/* SPDX-License-Identifier: MIT */
/*
 * The devhost's dispatch tables under fuzzing (bootstrap, registering,
 * running), as a device process meets them: frames sent with ipc_send on
 * a real SOCK_SEQPACKET pair, received with ipc_recv, dispatched with
 * ipc_dispatch through the devhost's own tables and handlers.
 *
 * Those are static in device-procs/devhost/devhost.c, so that file is
 * compiled into this one (a "tap"): the fuzzer runs exactly the code of a
 * device process, without a hook in it. If a phase table or a field used
 * below is renamed there, rename it here.
 *
 * Input (fuzzlib.h, frames): the selector byte picks the phase (sel % 3:
 * bootstrap, registering, running) and the device (sel / 3 % 3: uart,
 * debug-exit, virtio-blk); then the frames. Bootstrap and registering take
 * one frame, as the devhost does; running (with guest RAM mapped) takes
 * frames until the channel fails or DevDestruct stops it: notifications,
 * saves (with dirty-page tracking) and loads of hostile state.
 *
 * Oracle: no crash, no leak, no fd left open once everything the handlers
 * stored in struct devhost is released as dev_main would.
 */
#include "device-procs/devhost/devhost.c"

#include <sys/socket.h>

#include "tests/fuzz/fuzzlib.h"

static const uint16_t fz_devhost_types[] = {
	MSG_DEV_INIT, MSG_DEV_REGISTERED, MSG_DEV_NOTIFY, MSG_DEV_DESTRUCT,
	MSG_DEV_SAVE, MSG_DEV_LOAD, MSG_DEV_GUEST_EXIT, MSG_WORKER_INIT,
};

static const struct dev_desc *const fz_devhost_descs[] = {
	&uart_desc, &debugexit_desc, &vblk_desc,
};

/* Release what the handlers stored, as the end of dev_main does. */
static void fz_devhost_release(struct devhost *h)
{
	if (h->dev)
		dev_free(h->dev);
	if (h->ring)
		ipc_ring_unmap(h->ring);
	if (h->ram)
		munmap(h->ram, h->ram_size);
	free(h->dirty);
	ipc_chan_close(&h->chan);
	for (unsigned i = 0; i < DEVHOST_MAX_BACKEND_FDS; i++)
		if (h->backend_fd[i] >= 0)
			close(h->backend_fd[i]);
	for (unsigned i = 0; i < DEV_MAX_IRQS; i++) {
		if (h->irqfds[i] >= 0)
			close(h->irqfds[i]);
		if (h->resamplefds[i] >= 0)
			close(h->resamplefds[i]);
	}
	for (unsigned i = 0; i < DEV_MAX_DOORBELLS; i++)
		if (h->doorbells[i] >= 0)
			close(h->doorbells[i]);
	pthread_mutex_destroy(&h->lock);
}

/* The devhost's state before its first frame, as dev_main sets it up. */
static void fz_devhost_init(struct devhost *h, const struct dev_desc *desc,
			    int timerfd, struct ipc_msg *msg)
{
	memset(h, 0, sizeof(*h));
	h->desc = desc;
	h->backend_in = h->backend_out = -1;
	h->chan.fd = -1;
	h->timerfd = timerfd;
	h->msg = msg;
	for (unsigned i = 0; i < DEV_MAX_IRQS; i++)
		h->irqfds[i] = h->resamplefds[i] = -1;
	for (unsigned i = 0; i < DEV_MAX_DOORBELLS; i++)
		h->doorbells[i] = -1;
	for (unsigned i = 0; i < DEVHOST_MAX_BACKEND_FDS; i++)
		h->backend_fd[i] = -1;
	pthread_mutex_init(&h->lock, NULL);
	snprintf(h->label, sizeof(h->label), "%s#0", h->desc->mf->name);
}

/* Past bootstrap: the worker's channel on fd and the device built, with
 * guest RAM mapped when ram (as DevInit would have; saves track the pages
 * a device may write). */
static void fz_devhost_attach(struct devhost *h, int fd, bool ram)
{
	int r;

	ipc_chan_init(&h->chan, fd, "worker");
	r = dev_new_at(h->desc, 0, NULL, NULL, NULL, &devhost_ops, h, &h->dev);
	if (r < 0)
		abort();
	if (ram) {
		int mfd = fz_fd_new(FZ_FD_MEMFD);

		r = devhost_map_ram(h, mfd);
		close(mfd);
		if (r < 0)
			abort();
	}
}

/* The phase sel picks, the channel it reads (boot, or the worker's, on
 * the devhost's end fd of the pair) and how many frames it takes. */
static const struct ipc_phase *fz_devhost_phase(struct devhost *h,
						unsigned sel, int fd,
						struct ipc_chan *boot,
						struct ipc_chan **chan,
						unsigned *max_frames)
{
	const struct ipc_phase *phase;

	switch (sel % 3) {
	case 0:
		phase = &devhost_bootstrap_phase;
		ipc_chan_init(boot, fd, "broker");
		*chan = boot;
		*max_frames = 1;
		break;
	case 1:
	default:
		phase = sel % 3 == 1 ? &devhost_register_phase
				     : &devhost_running_phase;
		*max_frames = sel % 3 == 1 ? 1 : FZ_FRAMES_MAX;
		fz_devhost_attach(h, fd, sel % 3 == 2);
		*chan = &h->chan;
		break;
	}
	return phase;
}

/* The frame just sent, received and dispatched through the phase's table;
 * ipc_recv's or the handler's result. */
static int fz_devhost_deliver(struct devhost *h, struct ipc_chan *chan,
			      const struct ipc_phase *phase,
			      struct ipc_phase_state *st)
{
	int r = ipc_recv(chan, h->msg);

	if (r == 0) {
		r = ipc_dispatch(chan, phase, st, h, h->msg);
		ipc_msg_close_fds(h->msg);
	}
	/* A handler may have turned logging on (DevInit.debug). */
	fz_quiet();
	return r;
}

int fz_devhost_dispatch(const uint8_t *data, size_t size)
{
	static struct ipc_msg *msg;
	static int timerfd = -1;
	const struct itimerspec off = { { 0, 0 }, { 0, 0 } };
	struct ipc_phase_state st = { 0 };
	struct devhost h;
	struct ipc_chan boot = { .fd = -1 };
	struct ipc_chan *chan;
	const struct ipc_phase *phase;
	struct fz_frame f;
	struct fz_in in;
	static int sv[2] = { -1, -1 };
	unsigned sel, nframes = 0, max_frames;
	bool rx_open;
	int delta;

	fz_quiet();
	if (!msg) {
		msg = malloc(sizeof(*msg));
		timerfd = timerfd_create(CLOCK_MONOTONIC,
					 TFD_CLOEXEC | TFD_NONBLOCK);
		if (!msg || timerfd < 0)
			abort();
	}
	fz_in_init(&in, data, size);
	sel = fz_u8(&in);

	fz_pair_open(sv);
	fz_fd_mark();
	fz_devhost_init(&h, fz_devhost_descs[sel / 3 % 3], timerfd, msg);

	phase = fz_devhost_phase(&h, sel, sv[1], &boot, &chan, &max_frames);

	while (nframes < max_frames && !h.stop && chan->fd >= 0 &&
	       fz_frame_next(&in, fz_devhost_types,
			     sizeof(fz_devhost_types) /
			     sizeof(fz_devhost_types[0]), &f)) {
		if (fz_frame_send(sv[0], &f) < 0)
			continue;
		nframes++;
		if (fz_devhost_deliver(&h, chan, phase, &st) < 0)
			break;
	}

	/* The pair stays for the next run unless the devhost closed it. */
	rx_open = chan->fd >= 0;
	chan->fd = -1;
	fz_devhost_release(&h);
	delta = fz_pair_end(sv, rx_open);
	if (timerfd_settime(timerfd, 0, &off, NULL) < 0)
		abort();
	fz_fd_check("devhost", delta);
	return 0;
}
