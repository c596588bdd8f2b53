/* SPDX-License-Identifier: MIT */
/*
 * fuzzlib: the input decoders, the fake device host and the frame sender
 * the harnesses share. See fuzzlib.h for the formats.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ipc/ipc.h"
#include "ipc/log.h"
#include "proto/msgtypes.h"
#include "tests/fuzz/fuzzlib.h"

void fz_fail(const char *file, int line, const char *cond, const char *fmt,
	     ...)
{
	va_list ap;

	fprintf(stderr, "fuzz: contract broken at %s:%d (%s): ", file, line,
		cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void fz_quiet(void)
{
	static int level = -2;

	/* Below IPC_LOG_ERR nothing is printed. */
	if (level == -2)
		level = getenv("FUZZ_VERBOSE") ? IPC_LOG_DEBUG : -1;
	ipc_log_init("fuzz", level);
}

/* ---- reading the input ------------------------------------------------- */

uint64_t fz_uint(struct fz_in *in, unsigned nbytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < nbytes && i < 8; i++) {
		if (in->n) {
			v |= (uint64_t)in->p[0] << (8 * i);
			in->p++;
			in->n--;
		}
	}
	return v;
}

uint8_t fz_u8(struct fz_in *in)
{
	return (uint8_t)fz_uint(in, 1);
}

uint16_t fz_u16(struct fz_in *in)
{
	return (uint16_t)fz_uint(in, 2);
}

uint32_t fz_u32(struct fz_in *in)
{
	return (uint32_t)fz_uint(in, 4);
}

uint64_t fz_u64(struct fz_in *in)
{
	return fz_uint(in, 8);
}

size_t fz_bytes(struct fz_in *in, size_t max, const uint8_t **out)
{
	size_t n = max < in->n ? max : in->n;

	*out = in->p;
	in->p += n;
	in->n -= n;
	return n;
}

/* ---- device operations ------------------------------------------------- */

void fz_dev_cfg_decode(uint8_t b, struct fz_dev_cfg *cfg)
{
	cfg->readonly = b & 1;
	cfg->disk_size = (1 + ((b >> 1) & 7)) * 4096ull;
	cfg->wall_offset = (int64_t)(b >> 4) * 86400;
}

bool fz_op_next(struct fz_in *in, struct fz_op *op)
{
	uint8_t b, code, a;

	if (fz_done(in))
		return false;
	memset(op, 0, sizeof(*op));
	b = fz_u8(in);
	code = b & 0xf;
	a = b >> 4;
	switch (code) {
	case 0: case 1: case 2: case 3:
	case 4: case 5: case 6: case 7: case 8:
		op->kind = code <= 3 ? FZ_OP_READ : FZ_OP_WRITE;
		op->region = a & 3;
		op->len = 1u << ((a >> 2) & 3);
		op->off = fz_u16(in);
		if (op->kind == FZ_OP_WRITE)
			op->data = fz_uint(in, op->len);
		break;
	case 9:
		op->kind = FZ_OP_TICK;
		op->ns = (uint64_t)fz_u16(in) << (2 * a);
		break;
	case 10:
		op->kind = FZ_OP_MEM;
		op->gpa = (uint64_t)a << 16 | fz_u16(in);
		op->nbytes = fz_bytes(in, fz_u8(in), &op->bytes);
		break;
	case 11:
		op->kind = FZ_OP_INPUT;
		op->nbytes = fz_bytes(in, fz_u8(in), &op->bytes);
		break;
	case 12:
		op->kind = FZ_OP_NOTIFY;
		op->idx = a;
		break;
	case 13:
		if (a & 1) {
			op->kind = FZ_OP_LIFECYCLE;
			op->idx = (a >> 1) & 3;
		} else {
			op->kind = FZ_OP_RESET;
		}
		break;
	case 14:
		op->kind = FZ_OP_SAVE_LOAD;
		op->idx = a % 3;
		break;
	default:
		op->kind = FZ_OP_LOAD;
		op->idx = a;   /* version skew: 0 is the device's own */
		op->nbytes = fz_bytes(in, fz_u16(in), &op->bytes);
		break;
	}
	return true;
}

void fz_op_describe(const struct fz_op *op, char *buf, size_t len)
{
	static const char *const lc[] = { "power-on", "suspend", "resume",
					  "power-off" };

	switch (op->kind) {
	case FZ_OP_READ:
		snprintf(buf, len, "read   region %u off 0x%04" PRIx64 " len %u",
			 op->region, op->off, op->len);
		break;
	case FZ_OP_WRITE:
		snprintf(buf, len, "write  region %u off 0x%04" PRIx64
			 " len %u data 0x%" PRIx64, op->region, op->off,
			 op->len, op->data);
		break;
	case FZ_OP_TICK:
		snprintf(buf, len, "tick   %" PRIu64 " ns", op->ns);
		break;
	case FZ_OP_MEM:
		snprintf(buf, len, "mem    gpa 0x%05" PRIx64 " %zu bytes",
			 op->gpa, op->nbytes);
		break;
	case FZ_OP_INPUT:
		snprintf(buf, len, "input  %zu bytes", op->nbytes);
		break;
	case FZ_OP_NOTIFY:
		snprintf(buf, len, "notify doorbell %u", op->idx);
		break;
	case FZ_OP_RESET:
		snprintf(buf, len, "reset");
		break;
	case FZ_OP_LIFECYCLE:
		snprintf(buf, len, "%s", lc[op->idx & 3]);
		break;
	case FZ_OP_SAVE_LOAD:
		snprintf(buf, len, "save, load, save (dirty mode %u)", op->idx);
		break;
	case FZ_OP_LOAD:
		snprintf(buf, len, "load   %zu bytes of state (version +%u)",
			 op->nbytes, op->idx);
		break;
	}
}

/* ---- the fake host ------------------------------------------------------ */

struct fz_host {
	const struct dev_desc *desc;
	struct dev *d;
	bool readonly;
	uint8_t *ram;              /* FZ_RAM_SIZE bytes, exactly */
	bool *ram_dirty;           /* set once anything may have written it */
	uint8_t *disk;             /* disk_size bytes, exactly */
	uint64_t disk_size;
	uint64_t now;              /* virtual clock, ns */
	int64_t wall;              /* wall clock at now == 0, seconds */
	uint64_t timer_when[DEV_MAX_TIMERS];  /* 0: disarmed */
	uint64_t entropy;          /* xorshift state */
	uint8_t sink;              /* keeps backend output "used" */
};

static void fz_host_irq_set(void *host, unsigned line, bool level)
{
	struct fz_host *h = host;

	FZ_CHECK(line < h->d->nirqs, "%s drove IRQ line %u of %u",
		 h->desc->mf->name, line, h->d->nirqs);
	(void)level;
}

static ssize_t fz_host_backend_write(void *host, const void *buf, size_t len)
{
	struct fz_host *h = host;
	const volatile uint8_t *p = buf;

	FZ_CHECK(buf || !len, "%s wrote %zu bytes from NULL", h->desc->mf->name,
		 len);
	/* Touch every byte, so reading past the core's buffer is caught. */
	for (size_t i = 0; i < len; i++)
		h->sink ^= p[i];
	return (ssize_t)len;
}

static void fz_host_request_exit(void *host, uint32_t code)
{
	(void)host;
	(void)code;
}

static void fz_host_request(void *host)
{
	(void)host;
}

static void *fz_host_mem_map(void *host, uint64_t gpa, uint64_t len)
{
	struct fz_host *h = host;

	if (gpa > FZ_RAM_SIZE || len > FZ_RAM_SIZE - gpa)
		return NULL;
	*h->ram_dirty = true;
	return h->ram + gpa;
}

/* The disk is made on first use: most devices never touch it. Its bytes
 * are a fixed pattern, so that reads are not all zeros. */
static void fz_host_disk(struct fz_host *h)
{
	static uint8_t pattern[FZ_DISK_MAX];

	if (h->disk)
		return;
	if (!pattern[1]) {
		for (size_t i = 0; i < FZ_DISK_MAX; i++)
			pattern[i] = (uint8_t)(i * 131 + (i >> 9));
	}
	h->disk = malloc(h->disk_size);
	if (!h->disk)
		abort();
	memcpy(h->disk, pattern, h->disk_size);
}

static ssize_t fz_host_blk_pread(void *host, void *buf, size_t len,
				 uint64_t off)
{
	struct fz_host *h = host;
	size_t n;

	fz_host_disk(h);

	/* Like pread(2) on a file of disk_size bytes. */
	if (off >= h->disk_size)
		return 0;
	n = len < h->disk_size - off ? len : (size_t)(h->disk_size - off);
	memcpy(buf, h->disk + off, n);
	return (ssize_t)n;
}

static ssize_t fz_host_blk_pwrite(void *host, const void *buf, size_t len,
				  uint64_t off)
{
	struct fz_host *h = host;
	size_t n;

	FZ_CHECK(!h->readonly, "%s wrote %zu bytes at %" PRIu64
		 " to a read-only disk", h->desc->mf->name, len, off);
	fz_host_disk(h);
	/* Like pwrite(2) on a file that may not grow (sealed, or a device). */
	if (off >= h->disk_size)
		return -ENOSPC;
	n = len < h->disk_size - off ? len : (size_t)(h->disk_size - off);
	memcpy(h->disk + off, buf, n);
	return (ssize_t)n;
}

static int fz_host_blk_flush(void *host)
{
	(void)host;
	return 0;
}

static uint64_t fz_host_blk_size(void *host)
{
	struct fz_host *h = host;

	return h->disk_size;
}

static ssize_t fz_host_entropy(void *host, void *buf, size_t len)
{
	struct fz_host *h = host;
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++) {
		h->entropy ^= h->entropy << 13;
		h->entropy ^= h->entropy >> 7;
		h->entropy ^= h->entropy << 17;
		p[i] = (uint8_t)h->entropy;
	}
	return (ssize_t)len;
}

static uint64_t fz_host_clock_ns(void *host)
{
	struct fz_host *h = host;

	return h->now;
}

static int64_t fz_host_wall_clock(void *host)
{
	struct fz_host *h = host;

	return h->wall + (int64_t)(h->now / 1000000000u);
}

static void fz_host_timer_arm(void *host, unsigned id, uint64_t when_ns)
{
	struct fz_host *h = host;

	FZ_CHECK(id < DEV_MAX_TIMERS, "%s armed timer %u", h->desc->mf->name, id);
	FZ_CHECK(h->desc->timer, "%s armed timer %u without a timer callback",
		 h->desc->mf->name, id);
	h->timer_when[id] = when_ns;
}

static const struct dev_host_ops fz_host_ops = {
	.irq_set = fz_host_irq_set,
	.backend_write = fz_host_backend_write,
	.request_exit = fz_host_request_exit,
	.request_reset = fz_host_request,
	.request_poweroff = fz_host_request,
	.mem_map = fz_host_mem_map,
	.blk_pread = fz_host_blk_pread,
	.blk_pwrite = fz_host_blk_pwrite,
	.blk_flush = fz_host_blk_flush,
	.blk_size = fz_host_blk_size,
	.entropy = fz_host_entropy,
	.clock_ns = fz_host_clock_ns,
	.wall_clock = fz_host_wall_clock,
	.timer_arm = fz_host_timer_arm,
};

/* ---- the device driver -------------------------------------------------- */

/* Access buffers of exactly 1, 2, 4 and 8 bytes, so that a core touching
 * more than len bytes of an access is caught by AddressSanitizer. */
static uint8_t *fz_iobuf[4];

static uint8_t *fz_iobuf_get(unsigned len)
{
	unsigned i = len == 1 ? 0 : len == 2 ? 1 : len == 4 ? 2 : 3;

	if (!fz_iobuf[i]) {
		fz_iobuf[i] = malloc(len);
		if (!fz_iobuf[i])
			abort();
	}
	return fz_iobuf[i];
}

static void fz_dev_io(struct fz_host *h, const struct fz_op *op)
{
	struct dev *d = h->d;
	uint8_t *buf;
	uint64_t rlen, off;

	/* What the devhost refuses never reaches the core. */
	if (op->region >= d->nregions)
		return;
	rlen = d->regions[op->region].len;
	if (rlen == 0)
		return;
	off = op->off % rlen;
	buf = fz_iobuf_get(op->len);
	if (op->kind == FZ_OP_WRITE) {
		for (unsigned i = 0; i < op->len; i++)
			buf[i] = (uint8_t)(op->data >> (8 * i));
	} else {
		memset(buf, 0, op->len);
	}
	h->desc->io(d, op->region, off, buf, op->len,
		    op->kind == FZ_OP_WRITE);
}

static void fz_dev_tick(struct fz_host *h, uint64_t ns)
{
	uint64_t target = ns > UINT64_MAX - h->now ? UINT64_MAX : h->now + ns;

	for (unsigned n = 0; n < FZ_MAX_FIRINGS_PER_TICK; n++) {
		unsigned id = DEV_MAX_TIMERS;
		uint64_t when = 0;

		for (unsigned i = 0; i < DEV_MAX_TIMERS; i++) {
			uint64_t w = h->timer_when[i];

			if (w && w <= target && (id == DEV_MAX_TIMERS || w < when)) {
				id = i;
				when = w;
			}
		}
		if (id == DEV_MAX_TIMERS)
			break;
		/* Time runs to the deadline, then the timer fires. */
		if (when > h->now)
			h->now = when;
		h->timer_when[id] = 0;
		h->desc->timer(h->d, id);
	}
	h->now = target;
}

static void fz_dev_input(struct fz_host *h, const struct fz_op *op)
{
	const struct dev_desc *desc = h->desc;
	size_t room, n = op->nbytes;
	uint8_t *copy;

	if (!desc->backend_room || !desc->backend_input || !n)
		return;
	/* The devhost reads at most what the core has room for, 256 at once. */
	room = desc->backend_room(h->d);
	if (room > 256)
		room = 256;
	if (n > room)
		n = room;
	if (!n)
		return;
	copy = malloc(n);
	if (!copy)
		abort();
	memcpy(copy, op->bytes, n);
	desc->backend_input(h->d, copy, n);
	free(copy);
}

static void fz_dev_lifecycle(struct fz_host *h, unsigned event)
{
	const struct dev_desc *desc = h->desc;
	void (*fn)(struct dev *) = NULL;

	switch (event) {
	case FZ_LC_POWER_ON: fn = desc->power_on; break;
	case FZ_LC_SUSPEND: fn = desc->suspend; break;
	case FZ_LC_RESUME: fn = desc->resume; break;
	case FZ_LC_POWER_OFF: fn = desc->power_off; break;
	}
	if (fn)
		fn(h->d);
}

/* Save the device; false if it has no save callback or it failed. */
static bool fz_dev_save(struct fz_host *h, uint8_t **buf, size_t *len)
{
	int r;

	*buf = NULL;
	*len = 0;
	if (!h->desc->save)
		return false;
	r = h->desc->save(h->d, buf, len);
	FZ_CHECK(r <= 0, "%s save returned %d", h->desc->mf->name, r);
	if (r < 0) {
		free(*buf);
		*buf = NULL;
		return false;
	}
	return true;
}

static bool fz_same(const uint8_t *a, size_t alen, const uint8_t *b,
		    size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* What the device saves it must load, and load to the same state. */
static void fz_dev_save_load(struct fz_host *h)
{
	const struct dev_desc *desc = h->desc;
	uint8_t *s1, *s2;
	size_t l1, l2;
	int r;

	if (!desc->load || !fz_dev_save(h, &s1, &l1))
		return;
	r = desc->load(h->d, s1, l1, desc->mf->state_version);
	FZ_CHECK(r == 0, "%s refused its own saved state (%zu bytes): %d",
		 desc->mf->name, l1, r);
	if (fz_dev_save(h, &s2, &l2)) {
		FZ_CHECK(fz_same(s1, l1, s2, l2), "%s saved %zu bytes, loaded "
			 "them, and then saved %zu different bytes", desc->mf->name,
			 l1, l2);
		free(s2);
	}
	free(s1);
}

/* Hostile saved state: accepted, or refused with the device unchanged. */
static void fz_dev_load(struct fz_host *h, const struct fz_op *op)
{
	const struct dev_desc *desc = h->desc;
	uint8_t *before = NULL, *after, *copy;
	size_t lb = 0, la;
	bool saved;
	int r;

	if (!desc->load)
		return;
	saved = fz_dev_save(h, &before, &lb);
	/* An exactly sized copy: reading past the state is caught. */
	copy = malloc(op->nbytes ? op->nbytes : 1);
	if (!copy)
		abort();
	if (op->nbytes)
		memcpy(copy, op->bytes, op->nbytes);
	r = desc->load(h->d, copy, op->nbytes, desc->mf->state_version + op->idx);
	free(copy);
	FZ_CHECK(r <= 0, "%s load returned %d", desc->mf->name, r);
	if (r < 0 && saved && fz_dev_save(h, &after, &la)) {
		FZ_CHECK(fz_same(before, lb, after, la), "%s refused a saved "
			 "state (%d) but changed anyway", desc->mf->name, r);
		free(after);
	}
	free(before);
}

int fz_dev_run(const struct dev_desc *desc, const uint8_t *data, size_t size)
{
	static uint8_t *ram;
	static bool ram_dirty = true;
	struct fz_host h = { .desc = desc, .entropy = 0x9e3779b97f4a7c15ull };
	struct dev_config cfg = { .serial = "fuzz-disk" };
	struct fz_dev_cfg fc;
	struct fz_in in;
	struct fz_op op;
	int r;

	fz_quiet();
	if (!ram) {
		ram = malloc(FZ_RAM_SIZE);
		if (!ram)
			abort();
	}
	/* Every run starts from zeroed RAM (cleared only if it was used). */
	if (ram_dirty)
		memset(ram, 0, FZ_RAM_SIZE);
	ram_dirty = false;
	h.ram = ram;
	h.ram_dirty = &ram_dirty;

	fz_in_init(&in, data, size);
	fz_dev_cfg_decode(fz_u8(&in), &fc);
	h.readonly = cfg.readonly = fc.readonly;
	h.disk_size = fc.disk_size;
	h.wall = FZ_WALL_CLOCK_BASE + fc.wall_offset;

	r = dev_new_at(desc, 0, NULL, NULL, &cfg, &fz_host_ops, &h, &h.d);
	FZ_CHECK(r == 0, "%s: dev_new failed: %d", desc->mf->name, r);

	while (fz_op_next(&in, &op)) {
		switch (op.kind) {
		case FZ_OP_READ:
		case FZ_OP_WRITE:
			fz_dev_io(&h, &op);
			break;
		case FZ_OP_TICK:
			fz_dev_tick(&h, op.ns);
			break;
		case FZ_OP_MEM:
			if (op.gpa < FZ_RAM_SIZE) {
				size_t n = op.nbytes;

				if (n > FZ_RAM_SIZE - op.gpa)
					n = FZ_RAM_SIZE - (size_t)op.gpa;
				memcpy(ram + op.gpa, op.bytes, n);
				ram_dirty = true;
			}
			break;
		case FZ_OP_INPUT:
			fz_dev_input(&h, &op);
			break;
		case FZ_OP_NOTIFY:
			if (op.idx < desc->ndoorbells && desc->notify)
				desc->notify(h.d, op.idx);
			break;
		case FZ_OP_RESET:
			if (desc->reset)
				desc->reset(h.d);
			break;
		case FZ_OP_LIFECYCLE:
			fz_dev_lifecycle(&h, op.idx);
			break;
		case FZ_OP_SAVE_LOAD:
			fz_dev_save_load(&h);
			break;
		case FZ_OP_LOAD:
			fz_dev_load(&h, &op);
			break;
		}
	}
	dev_free(h.d);
	free(h.disk);
	return 0;
}

/* ---- frames for dispatch tables ----------------------------------------- */

const uint16_t fz_all_types[] = {
	MSG_WORKER_INIT, MSG_WORKER_READY, MSG_VM_EXITED, MSG_VM_CONTROL,
	MSG_VM_CONTROL_REPLY, MSG_VM_STATS, MSG_VM_STATS_REPLY, MSG_VM_STATE,
	MSG_VM_RUNTIME_ERROR,
	MSG_DEV_INIT, MSG_DEV_REGISTER, MSG_DEV_REGISTERED, MSG_DEV_GUEST_EXIT,
	MSG_DEV_DESTRUCT, MSG_DEV_DESTRUCT_DONE, MSG_DEV_NOTIFY,
	MSG_DEV_NOTIFY_DONE, MSG_DEV_REQUEST_RESET, MSG_DEV_REQUEST_POWEROFF,
	MSG_DEV_SAVE, MSG_DEV_SAVE_DATA, MSG_DEV_LOAD, MSG_DEV_LOAD_DONE,
	MSG_HELLO, MSG_HELLO_REPLY, MSG_ERROR_REPLY,
};
const unsigned fz_all_ntypes = sizeof(fz_all_types) / sizeof(fz_all_types[0]);

bool fz_frame_next(struct fz_in *in, const uint16_t *types, unsigned ntypes,
		   struct fz_frame *f)
{
	uint8_t t, fl;

	if (fz_done(in))
		return false;
	memset(f, 0, sizeof(*f));
	t = fz_u8(in);
	if (t < 0xf0 && ntypes)
		f->type = types[t % ntypes];
	else
		f->type = fz_u16(in);
	fl = fz_u8(in);
	f->nfds = fl & 0x1f;
	if (f->nfds > FZ_FRAME_MAX_FDS)
		f->nfds = FZ_FRAME_MAX_FDS;
	for (unsigned i = 0; i < f->nfds; i++)
		f->fd_kinds[i] = fz_u8(in) % FZ_FD_KINDS;
	f->len = fz_bytes(in, fz_u16(in), &f->payload);
	return true;
}

/* Long-lived fds that fresh ones are duplicated from. */
static int fz_devnull_fd = -1, fz_ring_fd = -1, fz_memfd = -1;
static int fz_sock_fd = -1, fz_pipe_fd = -1;

static void fz_fd_cache_init(void)
{
	int p[2];

	if (fz_devnull_fd >= 0)
		return;
	fz_devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	fz_ring_fd = ipc_ring_create(1, "fuzz-ring");
	fz_memfd = memfd_create("fuzz-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fz_devnull_fd < 0 || fz_ring_fd < 0 || fz_memfd < 0 ||
	    ftruncate(fz_memfd, 2 << 20) < 0 ||
	    fcntl(fz_memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
		  F_SEAL_SEAL) < 0)
		abort();
	/* One end of a pair whose peer is gone, and a pipe's read end. */
	if (ipc_chan_pair(p) < 0)
		abort();
	close(p[1]);
	fz_sock_fd = p[0];
	if (pipe2(p, O_CLOEXEC) < 0)
		abort();
	close(p[1]);
	fz_pipe_fd = p[0];
}

/* A fresh fd of the kind: a duplicate of a long-lived one (cheap; the
 * receiver cannot tell), or a new eventfd. */
int fz_fd_new(enum fz_fd_kind kind)
{
	int src, fd;

	fz_fd_cache_init();
	switch (kind) {
	case FZ_FD_DEVNULL: src = fz_devnull_fd; break;
	case FZ_FD_SOCKET: src = fz_sock_fd; break;
	case FZ_FD_RING: src = fz_ring_fd; break;
	case FZ_FD_MEMFD: src = fz_memfd; break;
	case FZ_FD_EVENTFD: src = -1; break;
	case FZ_FD_PIPE:
	default: src = fz_pipe_fd; break;
	}
	fd = src >= 0 ? fcntl(src, F_DUPFD_CLOEXEC, 0)
		      : eventfd(0, EFD_CLOEXEC);
	if (fd < 0)
		abort();
	return fd;
}

void fz_pair_open(int sv[2])
{
	if (sv[0] >= 0 && sv[1] >= 0)
		return;
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	if (ipc_chan_pair(sv) < 0)
		abort();
}

int fz_pair_end(int sv[2], bool rx_open)
{
	char buf[256];

	if (!rx_open) {
		/* The code under test closed its end: so does the harness. */
		sv[1] = -1;
		close(sv[0]);
		sv[0] = -1;
		return -2;
	}
	/* Drop what the receiver answered (answers carry no fds). */
	while (recv(sv[0], buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
	/* And anything sent but never received. */
	while (recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
	return 0;
}

int fz_frame_send(int sock, const struct fz_frame *f)
{
	struct ipc_chan c = { .fd = sock, .peer = "fuzz" };
	int fds[FZ_FRAME_MAX_FDS];
	unsigned n = f->nfds < IPC_MAX_FDS ? f->nfds : IPC_MAX_FDS;
	int r;

	fz_fd_cache_init();
	for (unsigned i = 0; i < n; i++)
		fds[i] = fz_fd_new((enum fz_fd_kind)f->fd_kinds[i]);
	r = ipc_send(&c, f->type, f->payload, f->len, fds, n);
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
	return r;
}

/*
 * Open fds, counted from /proc/self/fd through one directory fd kept open
 * (rewound each time): two system calls, whatever the number of fds.
 */
static int fz_fd_dir = -1;
static unsigned fz_fd_marked;

static unsigned fz_fd_count(void)
{
	char buf[4096];
	unsigned n = 0;
	long got;

	if (fz_fd_dir < 0) {
		fz_fd_dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY |
				 O_CLOEXEC);
		if (fz_fd_dir < 0)
			abort();
	}
	if (lseek(fz_fd_dir, 0, SEEK_SET) < 0)
		abort();
	while ((got = syscall(SYS_getdents64, fz_fd_dir, buf,
			      sizeof(buf))) > 0) {
		for (long off = 0; off < got;) {
			struct {
				uint64_t ino;
				int64_t off;
				unsigned short reclen;
				unsigned char type;
				char name[];
			} *e = (void *)(buf + off);

			if (e->name[0] != '.')
				n++;
			off += e->reclen;
		}
	}
	if (got < 0)
		abort();
	return n;
}

void fz_fd_mark(void)
{
	fz_fd_cache_init();
	fz_fd_marked = fz_fd_count();
}

void fz_fd_check(const char *what, int delta)
{
	unsigned now = fz_fd_count();

	FZ_CHECK(now == fz_fd_marked + delta, "%s: %u fds open before, %u "
		 "after (%+d expected)", what, fz_fd_marked, now, delta);
}
