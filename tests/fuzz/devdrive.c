/* SPDX-License-Identifier: MIT */
/*
 * bulkhead-devdrive: fuzzing one device process whole. It stands in for
 * the broker and the worker around one real device binary:
 *
 *  - spawns it with the broker's own brk_spawn() (broker/spawn.c): new
 *    namespaces, its own uid, an empty environment, the bootstrap channel
 *    as fd 3; the binary confines itself (policy/sbx.c, its seccomp
 *    policy) exactly as under `bulkhead run`;
 *  - hands it DevInit with the fds the broker would (channel, access ring,
 *    guest RAM for DMA devices, console or disk backends), answers its
 *    DevRegister as the worker does (irqfds, resample fds, doorbell
 *    ioeventfds) and powers it on (DevNotify);
 *  - plays the operations of an input file (the device format of
 *    tests/fuzz/fuzzlib.h, the same as the in-process harnesses'): register
 *    accesses through the access ring (ipc_ring_call, as an EMT), guest
 *    RAM contents written into the shared memfd, console input, doorbells,
 *    lifecycle notifications, time passing;
 *  - tells it to go (DevDestruct) and reaps it.
 *
 * When the device dies of a signal (a crash, or SIGSYS from its seccomp
 * policy) devdrive says which operation killed it and aborts, which is
 * what afl-fuzz counts as a crash:
 *
 *   afl-fuzz -n -i tests/fuzz/corpus/uart -o out -- \
 *       build/bin/bulkhead-devdrive uart @@
 *
 * Exit status: 0 the device served every operation and exited cleanly;
 * 1 bad arguments or set-up failure (the message says what); 2 the device
 * exited on its own with an error or broke protocol; 3 it hung (no answer
 * within --timeout seconds); SIGABRT when it was killed by a signal (or
 * status 4 with --no-abort, for scripts).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker/launch.h"
#include "device-procs/manifest.h"
#include "device.pb-c.h"
#include "ipc/ipc.h"
#include "ipc/log.h"
#include "proto/msgtypes.h"
#include "tests/fuzz/fuzzlib.h"

#define DD_ANSWER_MS 2000         /* registration, notifications, exit */
#define DD_MAX_SLEEP_NS 1000000ull  /* one TICK sleeps at most this */
#define DD_MAX_TOTAL_SLEEP_NS 20000000ull
#define DD_MAX_REGISTER_FDS 16u

struct dd_region {
	uint32_t space;
	uint64_t base, len;
};

struct dd {
	const struct dev_manifest *k;  /* what the broker gives it */
	const char *binary;
	bool verbose;
	bool no_abort;                 /* report a crash with status 4 */
	unsigned timeout_s;
	struct brk_child child;
	struct ipc_chan chan;          /* the worker's end */
	struct ipc_msg *msg;
	struct ipc_ring *ring;
	uint8_t *ram;
	size_t ram_size;
	int console_in;                /* our end of the console input */
	struct dd_region regions[DEV_MAX_REGIONS];
	unsigned nregions;
	int irqfds[DD_MAX_REGISTER_FDS];
	unsigned nirqfds;
	int doorbells[DEV_MAX_DOORBELLS];
	unsigned ndoorbells;
	uint32_t notify_seq;
	uint32_t save_seq;
	uint32_t state_version;        /* from the device's first save */
	bool have_version;
	uint64_t slept_ns;
	atomic_bool child_gone;
	unsigned op_index;             /* for the report */
	char op_text[128];
};

static struct dd *dd_self;  /* for the watchdog */

static void dd_usage(FILE *f)
{
	fprintf(f,
		"usage: bulkhead-devdrive [options] KIND [INPUT]\n"
		"Run the device process bulkhead-dev-KIND under its real sandbox "
		"and play the\noperations in INPUT (default: standard input) "
		"against it.\n\n"
		"  --binary NAME   spawn NAME (beside bulkhead-devdrive) instead "
		"of\n                  bulkhead-dev-KIND\n"
		"  --timeout S     a device that does not answer within S "
		"seconds has hung\n                  (default 10)\n"
		"  --print         only decode INPUT and print its operations\n"
		"  --no-abort      report a crash with exit status 4 instead of "
		"aborting\n"
		"  -v, --verbose   print each operation as it is played\n"
		"KIND:");
	for (unsigned i = 0; i < dev_nmanifests; i++)
		fprintf(f, " %s", dev_manifests[i]->name);
	fprintf(f, "\n");
}

static int dd_read_input(const char *path, uint8_t **out, size_t *len)
{
	int fd = (!path || strcmp(path, "-") == 0) ? STDIN_FILENO
						   : open(path, O_RDONLY);
	size_t cap = 4096, n = 0;
	uint8_t *buf;

	if (fd < 0)
		return -errno;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t got;

		if (n == cap) {
			uint8_t *nb = cap < (1u << 24) ? realloc(buf, cap * 2)
						       : NULL;

			if (!nb) {
				free(buf);
				return -E2BIG;
			}
			buf = nb;
			cap *= 2;
		}
		got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int e = -errno;

			free(buf);
			return e;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	if (fd != STDIN_FILENO)
		close(fd);
	*out = buf;
	*len = n;
	return 0;
}

/* ---- the child ----------------------------------------------------------- */

/* Watch the device: when it ends, shut the ring so no call waits on it. */
static void *dd_watch(void *arg)
{
	struct dd *d = arg;
	struct pollfd p = { .fd = d->child.pidfd, .events = POLLIN };

	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
	atomic_store(&d->child_gone, true);
	if (d->ring)
		ipc_ring_shutdown(d->ring);
	return NULL;
}

/* Reap the child (waiting up to ms); true once it is reaped. */
static bool dd_reap(struct dd *d, int ms)
{
	struct pollfd p = { .fd = d->child.pidfd, .events = POLLIN };
	siginfo_t si = { 0 };

	if (d->child.reaped)
		return true;
	if (poll(&p, 1, ms) <= 0)
		return false;
	if (waitid(P_PIDFD, (id_t)d->child.pidfd, &si, WEXITED) < 0)
		return false;
	d->child.wstatus = si.si_code == CLD_EXITED ?
			   (si.si_status & 0xff) << 8 : si.si_status & 0x7f;
	d->child.reaped = true;
	return true;
}

/* The device died of a signal: say how and after what, then abort. */
static void dd_report(struct dd *d)
{
	char how[96];

	brk_child_describe(&d->child, how, sizeof(how));
	if (WIFSIGNALED(d->child.wstatus)) {
		fprintf(stderr, "devdrive: CRASH: %s %s", d->binary, how);
		if (d->op_index)
			fprintf(stderr, " at operation %u (%s)", d->op_index,
				d->op_text);
		fputc('\n', stderr);
		if (d->no_abort)
			exit(4);
		abort();
	}
	if (WEXITSTATUS(d->child.wstatus) != 0) {
		fprintf(stderr, "devdrive: %s %s\n", d->binary, how);
		exit(2);
	}
}

static void dd_watchdog(int sig)
{
	static const char msg[] = "devdrive: HANG: the device did not answer "
				  "in time\n";

	(void)sig;
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(3);
	if (dd_self && dd_self->child.pid > 0)
		kill(dd_self->child.pid, SIGKILL);
	_exit(3);
}

/* ---- set-up, as the broker and the worker do it -------------------------- */

static int dd_memfd(const char *name, size_t size, const uint8_t *fill)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0 ||
	    (fill && pwrite(fd, fill, size, 0) != (ssize_t)size) ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

/* The fds DevInit carries after the channel and the ring, as the broker
 * gives them to this kind: guest RAM for DMA, the console's pipe and
 * output, the disk. Appends to fds[*nfds]; -1 after saying what failed. */
static int dd_init_backends(struct dd *d, const struct fz_dev_cfg *cfg,
			    DevInit *init, int *fds, int *nfds)
{
	int in[2] = { -1, -1 }, ram = -1, out = -1, disk = -1;

	if (d->k->flags & DEV_MF_DMA) {
		d->ram_size = FZ_RAM_SIZE;
		ram = dd_memfd("bulkhead-guest-ram", d->ram_size, NULL);
		d->ram = ram < 0 ? MAP_FAILED :
			 mmap(NULL, d->ram_size, PROT_READ | PROT_WRITE,
			      MAP_SHARED, ram, 0);
		if (d->ram == MAP_FAILED) {
			fprintf(stderr, "devdrive: cannot make guest RAM\n");
			return -1;
		}
		fds[(*nfds)++] = ram;
		init->has_ram = true;
	}
	if (d->k->backend == DEV_BACKEND_CONSOLE) {
		if (pipe2(in, O_CLOEXEC) < 0 ||
		    (out = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0) {
			fprintf(stderr, "devdrive: cannot make the console: %s\n",
				strerror(errno));
			return -1;
		}
		fcntl(in[1], F_SETFL, O_NONBLOCK);
		d->console_in = in[1];
		fds[(*nfds)++] = in[0];
		fds[(*nfds)++] = out;
		init->nbackend_fds = 2;
	}
	if (d->k->backend == DEV_BACKEND_DISK) {
		uint8_t *pattern = malloc(cfg->disk_size);

		if (!pattern)
			return -1;
		for (uint64_t i = 0; i < cfg->disk_size; i++)
			pattern[i] = (uint8_t)(i * 131 + (i >> 9));
		disk = dd_memfd("bulkhead-disk", cfg->disk_size, pattern);
		free(pattern);
		if (disk < 0) {
			fprintf(stderr, "devdrive: cannot make the disk\n");
			return -1;
		}
		fds[(*nfds)++] = disk;
		init->nbackend_fds = 1;
		init->readonly = cfg->readonly;
		init->serial = "devdrive-disk";
	}
	return 0;
}

static int dd_spawn(struct dd *d, const struct fz_dev_cfg *cfg)
{
	DevInit init = DEV_INIT__INIT;
	int boot[2] = { -1, -1 }, chan[2] = { -1, -1 };
	int fds[6], nfds = 0, ring = -1;
	struct ipc_chan bc;
	char err[256], label[48];
	int r;

	snprintf(label, sizeof(label), "%s#0", d->k->name);
	ring = ipc_ring_create(1, label);
	if (ring < 0 || ipc_chan_pair(boot) < 0 || ipc_chan_pair(chan) < 0) {
		fprintf(stderr, "devdrive: cannot make the ring and channels: "
			"%s\n", strerror(ring < 0 ? -ring : errno));
		return -1;
	}
	r = ipc_ring_map(ring, &d->ring);
	if (r < 0) {
		fprintf(stderr, "devdrive: cannot map the ring: %s\n",
			strerror(-r));
		return -1;
	}
	fds[nfds++] = chan[1];
	fds[nfds++] = ring;
	if (dd_init_backends(d, cfg, &init, fds, &nfds) < 0)
		return -1;
	init.kind = (char *)d->k->name;
	init.instance = 0;

	r = brk_spawn(d->binary, boot[1], label, &d->child, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "devdrive: %s\n", err);
		return -1;
	}
	ipc_chan_init(&bc, boot[0], label);
	r = ipc_send_pb(&bc, MSG_DEV_INIT, &init.base, fds, (unsigned)nfds);
	ipc_chan_close(&bc);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	close(boot[1]);
	ipc_chan_init(&d->chan, chan[0], label);
	if (r < 0) {
		fprintf(stderr, "devdrive: cannot send DevInit: %s\n",
			strerror(-r));
		return -1;
	}
	return 0;
}

/* Wait for a frame on the channel; -ETIMEDOUT, or ipc_recv's result. */
static int dd_recv(struct dd *d)
{
	struct pollfd p = { .fd = d->chan.fd, .events = POLLIN };
	int r;

	do
		r = poll(&p, 1, DD_ANSWER_MS);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return -ETIMEDOUT;
	return ipc_recv(&d->chan, d->msg);
}

/* Answer DevRegister as the worker does: one eventfd per IRQ line, one
 * more per level line (resample), one per doorbell. */
static int dd_register(struct dd *d)
{
	DevRegistered ok = DEV_REGISTERED__INIT;
	DevRegister *reg;
	int fds[DD_MAX_REGISTER_FDS];
	unsigned nfds = 0;
	int r;

	r = dd_recv(d);
	if (r < 0)
		return r;
	if (d->msg->type != MSG_DEV_REGISTER ||
	    !(reg = ipc_msg_unpack(d->msg, &dev_register__descriptor))) {
		ipc_msg_close_fds(d->msg);
		fprintf(stderr, "devdrive: expected DevRegister, got type "
			"0x%04x\n", d->msg->type);
		return -EPROTO;
	}
	ipc_msg_close_fds(d->msg);
	d->nregions = reg->n_regions < DEV_MAX_REGIONS ?
		      (unsigned)reg->n_regions : DEV_MAX_REGIONS;
	for (unsigned i = 0; i < d->nregions; i++) {
		d->regions[i].space = reg->regions[i]->space;
		d->regions[i].base = reg->regions[i]->addr;
		d->regions[i].len = reg->regions[i]->len;
	}
	for (size_t i = 0; i < reg->n_irqs && nfds < DD_MAX_REGISTER_FDS; i++) {
		fds[nfds++] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (i < reg->n_irq_flags && (reg->irq_flags[i] & 1) &&
		    nfds < DD_MAX_REGISTER_FDS)
			fds[nfds++] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	}
	d->nirqfds = nfds;
	for (size_t i = 0; i < reg->n_doorbells && i < DEV_MAX_DOORBELLS &&
			   nfds < DD_MAX_REGISTER_FDS; i++) {
		fds[nfds] = eventfd(0, EFD_CLOEXEC);
		d->doorbells[d->ndoorbells++] = fds[nfds++];
	}
	ok.nirqfds = (uint32_t)reg->n_irqs;
	ok.ndoorbells = d->ndoorbells;
	dev_register__free_unpacked(reg, NULL);
	for (unsigned i = 0; i < nfds; i++) {
		if (fds[i] < 0) {
			fprintf(stderr, "devdrive: eventfd: %s\n",
				strerror(errno));
			return -1;
		}
	}
	memcpy(d->irqfds, fds, sizeof(int) * d->nirqfds);
	return ipc_send_pb(&d->chan, MSG_DEV_REGISTERED, &ok.base, fds, nfds);
}

static int dd_answer(struct dd *d, uint16_t type);

/* A lifecycle notification, and its answer. */
static int dd_notify(struct dd *d, DevNotify__Event ev)
{
	DevNotify n = DEV_NOTIFY__INIT;
	int r;

	n.event = ev;
	n.seq = ++d->notify_seq;
	r = ipc_send_pb(&d->chan, MSG_DEV_NOTIFY, &n.base, NULL, 0);
	if (r < 0)
		return r;
	return dd_answer(d, MSG_DEV_NOTIFY_DONE);
}

/* Wait for an answer of type `type`, dropping the device's requests
 * (exit, reset, power-off) that may come first. */
static int dd_answer(struct dd *d, uint16_t type)
{
	for (;;) {
		int r = dd_recv(d);

		if (r < 0)
			return r;
		ipc_msg_close_fds(d->msg);
		if (d->msg->type == type)
			return 0;
	}
}

/* DevSaveReq with the dirty mode (0 plain, 1 start tracking, 2 save with
 * the pages written since); *out is the answer (free it). */
static int dd_save(struct dd *d, uint32_t dirty, DevStateData **out)
{
	DevSaveReq req = DEV_SAVE_REQ__INIT;
	int r;

	req.seq = ++d->save_seq;
	req.dirty = dirty;
	r = ipc_send_pb(&d->chan, MSG_DEV_SAVE, &req.base, NULL, 0);
	if (r == 0)
		r = dd_answer(d, MSG_DEV_SAVE_DATA);
	if (r < 0)
		return r;
	*out = ipc_msg_unpack(d->msg, &dev_state_data__descriptor);
	if (!*out)
		return -EPROTO;
	if (dirty != 1 && (*out)->status == 0) {
		d->state_version = (*out)->version;
		d->have_version = true;
	}
	return 0;
}

/* DevLoad, and its status in *status. The worker loads a suspended VM and
 * resumes it afterwards; so does this. */
static int dd_load(struct dd *d, const uint8_t *state, size_t len,
		   uint32_t version, uint64_t clock_ns, int *status)
{
	DevStateData st = DEV_STATE_DATA__INIT;
	DevStateData *done;
	int r;

	st.seq = ++d->save_seq;
	st.version = version;
	st.state.data = (uint8_t *)state;
	st.state.len = len;
	st.clock_ns = clock_ns;
	r = dd_notify(d, DEV_NOTIFY__EVENT__SUSPEND);
	if (r == 0)
		r = ipc_send_pb(&d->chan, MSG_DEV_LOAD, &st.base, NULL, 0);
	if (r == 0)
		r = dd_answer(d, MSG_DEV_LOAD_DONE);
	if (r < 0)
		return r;
	done = ipc_msg_unpack(d->msg, &dev_state_data__descriptor);
	if (!done)
		return -EPROTO;
	*status = done->status;
	dev_state_data__free_unpacked(done, NULL);
	return dd_notify(d, DEV_NOTIFY__EVENT__RESUME);
}

/* SAVE_LOAD (a: the dirty mode of the save): what the device saves it
 * must load. */
static int dd_play_save_load(struct dd *d, unsigned dirty)
{
	DevStateData *st;
	int r, status = 0;

	r = dd_save(d, dirty % 3, &st);
	if (r < 0)
		return r;
	if (st->status == 0 && dirty % 3 != 1) {
		r = dd_load(d, st->state.data, st->state.len, st->version,
			    st->clock_ns, &status);
		if (r == 0 && status != 0) {
			fprintf(stderr, "devdrive: BUG: %s refused its own "
				"saved state (%zu bytes): %s\n", d->binary,
				st->state.len, strerror(-status));
			abort();
		}
	}
	dev_state_data__free_unpacked(st, NULL);
	return r;
}

/* LOAD: hostile state, at the device's version plus a; any status. */
static int dd_play_load(struct dd *d, const struct fz_op *op)
{
	DevStateData *st;
	int r, status;

	if (!d->have_version) {
		r = dd_save(d, 0, &st);
		if (r < 0)
			return r;
		dev_state_data__free_unpacked(st, NULL);
	}
	return dd_load(d, op->bytes, op->nbytes, d->state_version + op->idx,
		       0, &status);
}

/* ---- playing the input ---------------------------------------------------- */

static int dd_play_io(struct dd *d, const struct fz_op *op)
{
	const struct dd_region *rg;
	struct ipc_access a = { 0 };
	int r;

	if (op->region >= d->nregions || d->regions[op->region].len == 0)
		return 0;   /* the worker routes only what was registered */
	rg = &d->regions[op->region];
	a.space = (uint8_t)rg->space;
	a.write = op->kind == FZ_OP_WRITE;
	a.len = (uint8_t)op->len;
	a.region = (uint8_t)op->region;
	a.off = op->off % rg->len;
	a.addr = rg->base + a.off;
	a.data = a.write ? op->data : 0;
	r = ipc_ring_call(d->ring, 0, &a);
	if (r == 0 && !a.write && d->verbose)
		fprintf(stderr, "devdrive:      -> 0x%llx\n",
			(unsigned long long)a.data);
	return r;
}

static void dd_play_tick(struct dd *d, uint64_t ns)
{
	struct timespec ts;

	/* Device time is real time: a little of it passes, within bounds. */
	if (ns > DD_MAX_SLEEP_NS)
		ns = DD_MAX_SLEEP_NS;
	if (d->slept_ns + ns > DD_MAX_TOTAL_SLEEP_NS)
		return;
	d->slept_ns += ns;
	ts.tv_sec = 0;
	ts.tv_nsec = (long)ns;
	nanosleep(&ts, NULL);
}

/* Drop what the device sent meanwhile (exit or reset requests), so that
 * it never blocks on a full channel. */
static void dd_drain(struct dd *d)
{
	struct pollfd p = { .fd = d->chan.fd, .events = POLLIN };

	while (d->chan.fd >= 0 && poll(&p, 1, 0) > 0 &&
	       ipc_recv(&d->chan, d->msg) == 0)
		ipc_msg_close_fds(d->msg);
}

static int dd_play(struct dd *d, const uint8_t *data, size_t size)
{
	static const DevNotify__Event lc[] = {
		DEV_NOTIFY__EVENT__POWER_ON, DEV_NOTIFY__EVENT__SUSPEND,
		DEV_NOTIFY__EVENT__RESUME, DEV_NOTIFY__EVENT__POWER_OFF,
	};
	struct fz_in in;
	struct fz_op op;
	int r = 0;

	fz_in_init(&in, data, size);
	(void)fz_u8(&in);   /* the configuration byte, used at set-up */
	while (r >= 0 && !atomic_load(&d->child_gone) &&
	       fz_op_next(&in, &op)) {
		uint64_t one = 1;

		d->op_index++;
		fz_op_describe(&op, d->op_text, sizeof(d->op_text));
		if (d->verbose)
			fprintf(stderr, "devdrive: %4u %s\n", d->op_index,
				d->op_text);
		switch (op.kind) {
		case FZ_OP_READ:
		case FZ_OP_WRITE:
			r = dd_play_io(d, &op);
			break;
		case FZ_OP_TICK:
			dd_play_tick(d, op.ns);
			break;
		case FZ_OP_MEM:
			if (d->ram && op.gpa < d->ram_size) {
				size_t n = op.nbytes;

				if (n > d->ram_size - op.gpa)
					n = d->ram_size - (size_t)op.gpa;
				memcpy(d->ram + op.gpa, op.bytes, n);
			}
			break;
		case FZ_OP_INPUT:
			/* What does not fit the pipe is lost, as on a line. */
			if (d->console_in >= 0 && op.nbytes &&
			    write(d->console_in, op.bytes, op.nbytes) < 0 &&
			    errno != EAGAIN)
				r = -errno;
			break;
		case FZ_OP_NOTIFY:
			if (op.idx < d->ndoorbells &&
			    write(d->doorbells[op.idx], &one, sizeof(one)) < 0)
				r = -errno;
			break;
		case FZ_OP_RESET:
			r = dd_notify(d, DEV_NOTIFY__EVENT__RESET);
			break;
		case FZ_OP_LIFECYCLE:
			r = dd_notify(d, lc[op.idx & 3]);
			break;
		case FZ_OP_SAVE_LOAD:
			r = dd_play_save_load(d, op.idx);
			break;
		case FZ_OP_LOAD:
			r = dd_play_load(d, &op);
			break;
		}
		dd_drain(d);
	}
	return r;
}

static void dd_print(const uint8_t *data, size_t size)
{
	struct fz_dev_cfg cfg;
	struct fz_in in;
	struct fz_op op;
	char line[128];
	unsigned n = 0;

	fz_in_init(&in, data, size);
	fz_dev_cfg_decode(fz_u8(&in), &cfg);
	printf("config: %s disk of %llu bytes, wall clock +%lld s\n",
	       cfg.readonly ? "read-only" : "writable",
	       (unsigned long long)cfg.disk_size, (long long)cfg.wall_offset);
	while (fz_op_next(&in, &op)) {
		fz_op_describe(&op, line, sizeof(line));
		printf("%4u %s\n", ++n, line);
	}
}

/* The options and the device kind into d and *print: 0 to go on, 1 after
 * --help, -1 after the usage for bad arguments. */
static int dd_options(int argc, char **argv, struct dd *d, bool *print)
{
	static const struct option opts[] = {
		{ "binary", required_argument, NULL, 'b' },
		{ "timeout", required_argument, NULL, 't' },
		{ "print", no_argument, NULL, 'p' },
		{ "no-abort", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			d->binary = optarg;
			break;
		case 't':
			d->timeout_s = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'p':
			*print = true;
			break;
		case 'n':
			d->no_abort = true;
			break;
		case 'v':
			d->verbose = true;
			break;
		case 'h':
			dd_usage(stdout);
			return 1;
		default:
			dd_usage(stderr);
			return -1;
		}
	}
	if (optind >= argc || argc - optind > 2) {
		dd_usage(stderr);
		return -1;
	}
	d->k = dev_manifest_find(argv[optind]);
	if (!d->k) {
		fprintf(stderr, "devdrive: unknown device kind '%s'\n",
			argv[optind]);
		dd_usage(stderr);
		return -1;
	}
	if (!d->binary)
		d->binary = d->k->binary;
	return 0;
}

/* One run: spawn the device, register and power it on, play the input,
 * tell it to go and reap it. Returns main's exit status (aborts when the
 * device was killed by a signal, see dd_report). */
static int dd_session(struct dd *d, const struct fz_dev_cfg *cfg,
		      const uint8_t *data, size_t size)
{
	DevDestruct dd = DEV_DESTRUCT__INIT;
	pthread_t watcher;
	int r;

	if (dd_spawn(d, cfg) < 0)
		return 1;
	r = pthread_create(&watcher, NULL, dd_watch, d);
	if (r != 0) {
		fprintf(stderr, "devdrive: cannot start a thread: %s\n",
			strerror(r));
		return 1;
	}
	r = dd_register(d);
	if (r == 0)
		r = dd_notify(d, DEV_NOTIFY__EVENT__POWER_ON);
	if (r < 0 && !atomic_load(&d->child_gone))
		fprintf(stderr, "devdrive: %s did not register and power on: "
			"%s\n", d->binary, strerror(-r));
	if (r == 0)
		r = dd_play(d, data, size);
	/* Done (or it failed): tell it to go, as the worker does. */
	if (!atomic_load(&d->child_gone))
		ipc_send_pb(&d->chan, MSG_DEV_DESTRUCT, &dd.base, NULL, 0);
	if (!dd_reap(d, DD_ANSWER_MS)) {
		fprintf(stderr, "devdrive: %s did not exit after DevDestruct\n",
			d->binary);
		kill(d->child.pid, SIGKILL);
		dd_reap(d, -1);
		return 3;
	}
	alarm(0);
	pthread_join(watcher, NULL);
	dd_report(d);   /* aborts on a crash */
	if (r < 0) {
		fprintf(stderr, "devdrive: the run failed: %s\n", strerror(-r));
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct dd d = { .console_in = -1, .timeout_s = 10,
			.chan = { .fd = -1 } };
	struct fz_dev_cfg cfg;
	bool print = false;
	uint8_t *data = NULL;
	size_t size = 0;
	int r;

	r = dd_options(argc, argv, &d, &print);
	if (r != 0)
		return r < 0 ? 1 : 0;
	r = dd_read_input(argc - optind == 2 ? argv[optind + 1] : NULL, &data,
			  &size);
	if (r < 0) {
		fprintf(stderr, "devdrive: cannot read the input: %s\n",
			strerror(-r));
		return 1;
	}
	if (print) {
		dd_print(data, size);
		free(data);
		return 0;
	}
	ipc_log_init("devdrive", d.verbose ? IPC_LOG_DEBUG : IPC_LOG_ERR);
	signal(SIGPIPE, SIG_IGN);
	fz_dev_cfg_decode(size ? data[0] : 0, &cfg);
	d.msg = malloc(sizeof(*d.msg));
	if (!d.msg)
		return 1;
	dd_self = &d;
	signal(SIGALRM, dd_watchdog);
	alarm(d.timeout_s);

	r = dd_session(&d, &cfg, data, size);
	if (r != 0)
		return r;
	if (d.verbose)
		fprintf(stderr, "devdrive: %u operations, the device exited "
			"cleanly\n", d.op_index);
	free(data);
	free(d.msg);
	return 0;
}
