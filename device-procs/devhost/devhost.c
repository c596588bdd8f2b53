/* SPDX-License-Identifier: MIT */
/*
 * devhost: the runtime of a device process.
 *
 *   fd 3: bootstrap channel from the broker, one DevInit frame carrying the
 *         channel to the worker, the access-ring memfd, the guest-RAM memfd
 *         (devices that do DMA) and backend fds.
 *   then: DevRegister to the worker (regions, IRQ lines, doorbells);
 *         DevRegistered back with the irqfds (plus resample fds for level
 *         lines) and the doorbells' ioeventfds. A thread serves the access
 *         ring; the main thread serves the channel (lifecycle
 *         notifications), the backend input, doorbells, IRQ resamples and
 *         timers.
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
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "device-procs/devhost/dev.h"
#include "device.pb-c.h"
#include "ipc/ipc.h"
#include "ipc/log.h"
#include "policy/sbx.h"
#include "proto/msgtypes.h"

#define DEVHOST_BOOTSTRAP_FD 3
#define DEVHOST_MAX_BACKEND_FDS 2u
/* How long the ring thread spins after an access before sleeping. */
#define DEVHOST_SPIN_NS 200000ull
/* Poll period while backend input waits for room in the device. */
#define DEVHOST_INPUT_RETRY_MS 10
/* The most backend input read in one go. */
#define DEVHOST_INPUT_CHUNK 256
#define DEVHOST_NS_PER_SEC 1000000000ull
/* Guest pages, as the dirty record counts them. */
#define DEVHOST_PAGE_SHIFT 12
#define DEVHOST_PAGE_SIZE 4096
_Static_assert(DEVHOST_PAGE_SIZE == 1 << DEVHOST_PAGE_SHIFT,
	       "page size and shift disagree");
/* The dirty record: one bit per page in 64-bit words. */
#define DEVHOST_DIRTY_WORD_BITS 64
/* DevSaveReq.dirty (proto/device.proto): start recording, or report. */
#define DEVHOST_DIRTY_START 1
#define DEVHOST_DIRTY_REPORT 2

struct devhost {
	const struct dev_desc *desc;
	struct dev *dev;
	pthread_mutex_t lock;        /* held around every core callback */
	char label[48];              /* "uart#0" */
	uint32_t instance;
	struct dev_region regions[DEV_MAX_REGIONS];
	unsigned irqs[DEV_MAX_IRQS];
	bool placed;                 /* regions/irqs from DevInit */
	struct dev_config cfg;
	char serial[64];
	struct ipc_chan chan;        /* to the worker */
	struct ipc_ring *ring;
	/* IRQ lines. */
	int irqfds[DEV_MAX_IRQS];
	int resamplefds[DEV_MAX_IRQS];
	bool irq_level[DEV_MAX_IRQS];
	/* Doorbells (ioeventfds). */
	int doorbells[DEV_MAX_DOORBELLS];
	/* Backends. */
	int backend_fd[DEVHOST_MAX_BACKEND_FDS];
	unsigned nbackend;
	int backend_in;              /* console input, -1 at EOF */
	int backend_out;             /* console output */
	/* Guest RAM, for DMA. */
	uint8_t *ram;
	uint64_t ram_size;
	uint64_t *dirty;             /* live save: pages we may have written */
	/* The virtual clock: stops while the VM is suspended. */
	bool clock_running;
	uint64_t clock_host_base;    /* host ns when it last started */
	uint64_t clock_virt_base;    /* virtual ns at that moment */
	uint64_t timer_when[DEV_MAX_TIMERS];  /* virtual ns, 0: off */
	int timerfd;
	atomic_bool exit_requested;  /* set by request_exit during an access */
	atomic_uint exit_code;       /* its code, for the access's answer */
	bool stop;
	int status;                  /* process exit status */
	struct ipc_msg *msg;         /* receive buffer */
};

static uint64_t devhost_host_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * DEVHOST_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* ---- the virtual clock and timers (lock held) ---------------------------- */

static uint64_t devhost_clock_now(struct devhost *h)
{
	if (!h->clock_running)
		return h->clock_virt_base;
	return h->clock_virt_base + (devhost_host_ns() - h->clock_host_base);
}

/* Arm the timerfd for the earliest deadline, or disarm it. */
static void devhost_timers_kick(struct devhost *h)
{
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };
	uint64_t first = 0;

	for (unsigned i = 0; i < DEV_MAX_TIMERS; i++)
		if (h->timer_when[i] && (!first || h->timer_when[i] < first))
			first = h->timer_when[i];
	if (first && h->clock_running) {
		uint64_t host = h->clock_host_base +
				(first > h->clock_virt_base ?
				 first - h->clock_virt_base : 0);

		if (host == 0)
			host = 1;  /* 0 would disarm */
		its.it_value.tv_sec = (time_t)(host / DEVHOST_NS_PER_SEC);
		its.it_value.tv_nsec = (long)(host % DEVHOST_NS_PER_SEC);
	}
	if (timerfd_settime(h->timerfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		LOG_WARN("%s: timerfd: %s", h->label, strerror(errno));
}

static void devhost_clock_pause(struct devhost *h)
{
	if (!h->clock_running)
		return;
	h->clock_virt_base = devhost_clock_now(h);
	h->clock_running = false;
	devhost_timers_kick(h);
}

static void devhost_clock_resume(struct devhost *h)
{
	if (h->clock_running)
		return;
	h->clock_host_base = devhost_host_ns();
	h->clock_running = true;
	devhost_timers_kick(h);
}

/* Run every timer that is due. */
static void devhost_timers_fire(struct devhost *h)
{
	uint64_t expirations;

	if (read(h->timerfd, &expirations, sizeof(expirations)) < 0 &&
	    errno != EAGAIN)
		LOG_WARN("%s: timerfd read: %s", h->label, strerror(errno));
	pthread_mutex_lock(&h->lock);
	for (unsigned i = 0; i < DEV_MAX_TIMERS; i++) {
		uint64_t now = devhost_clock_now(h);

		if (h->timer_when[i] && h->timer_when[i] <= now) {
			h->timer_when[i] = 0;
			if (h->desc->timer)
				h->desc->timer(h->dev, i);
		}
	}
	devhost_timers_kick(h);
	pthread_mutex_unlock(&h->lock);
}

/* ---- host services for the core (called with the lock held) ------------- */

static void devhost_irq_set(void *host, unsigned line, bool level)
{
	struct devhost *h = host;
	uint64_t one = 1;
	bool was;

	if (line >= h->desc->mf->nirqs)
		return;
	was = h->irq_level[line];
	h->irq_level[line] = level;
	/*
	 * Edge lines (ISA): a rising level is one pulse. Level lines: the
	 * irqfd asserts the line until the guest's EOI; the resample fd
	 * then tells us to assert again if the level is still high.
	 */
	if (level && !was && h->irqfds[line] >= 0) {
		if (write(h->irqfds[line], &one, sizeof(one)) < 0)
			LOG_WARN("%s: cannot signal IRQ %u: %s", h->label,
				 h->irqs[line], strerror(errno));
	}
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
	atomic_store(&h->exit_code, code);
	atomic_store(&h->exit_requested, true);
}

static void devhost_request_reset(void *host)
{
	struct devhost *h = host;
	DevRequestReset rr = DEV_REQUEST_RESET__INIT;

	if (ipc_send_pb(&h->chan, MSG_DEV_REQUEST_RESET, &rr.base, NULL, 0) < 0)
		LOG_ERR("%s: cannot ask for a reset", h->label);
}

static void devhost_request_poweroff(void *host)
{
	struct devhost *h = host;
	DevRequestPowerOff po = DEV_REQUEST_POWER_OFF__INIT;

	if (ipc_send_pb(&h->chan, MSG_DEV_REQUEST_POWEROFF, &po.base, NULL, 0) < 0)
		LOG_ERR("%s: cannot ask for a power-off", h->label);
}

/* The only way a core reaches guest memory: bounds-checked, overflow-safe. */
static void *devhost_mem_map(void *host, uint64_t gpa, uint64_t len)
{
	struct devhost *h = host;

	if (!h->ram || gpa > h->ram_size || len > h->ram_size - gpa)
		return NULL;
	if (h->dirty && len) {
		/* A live save is running: the worker's dirty log does not see
		 * our writes, so every page we could touch counts. */
		for (uint64_t p = gpa >> DEVHOST_PAGE_SHIFT;
		     p <= (gpa + len - 1) >> DEVHOST_PAGE_SHIFT; p++)
			h->dirty[p / DEVHOST_DIRTY_WORD_BITS] |=
				1ull << (p % DEVHOST_DIRTY_WORD_BITS);
	}
	return h->ram + gpa;
}

static ssize_t devhost_blk_pread(void *host, void *buf, size_t len,
				 uint64_t off)
{
	struct devhost *h = host;
	size_t done = 0;

	if (h->nbackend < 1)
		return -ENODEV;
	while (done < len) {
		ssize_t n = pread(h->backend_fd[0], (uint8_t *)buf + done,
				  len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {
			/* Past the end of a file that shrank: zeros. */
			memset((uint8_t *)buf + done, 0, len - done);
			break;
		}
		done += (size_t)n;
	}
	return (ssize_t)len;
}

static ssize_t devhost_blk_pwrite(void *host, const void *buf, size_t len,
				  uint64_t off)
{
	struct devhost *h = host;
	size_t done = 0;

	if (h->nbackend < 1)
		return -ENODEV;
	if (h->cfg.readonly)
		return -EROFS;
	while (done < len) {
		ssize_t n = pwrite(h->backend_fd[0], (const uint8_t *)buf + done,
				   len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return (ssize_t)len;
}

static int devhost_blk_flush(void *host)
{
	struct devhost *h = host;

	if (h->nbackend < 1)
		return -ENODEV;
	return fdatasync(h->backend_fd[0]) < 0 ? -errno : 0;
}

static uint64_t devhost_blk_size(void *host)
{
	struct devhost *h = host;
	struct stat st;

	if (h->nbackend < 1 || fstat(h->backend_fd[0], &st) < 0)
		return 0;
	return (uint64_t)st.st_size;
}

static ssize_t devhost_entropy(void *host, void *buf, size_t len)
{
	ssize_t n = getrandom(buf, len, 0);

	(void)host;
	return n < 0 ? -errno : n;
}

static uint64_t devhost_clock_ns(void *host)
{
	return devhost_clock_now(host);
}

static int64_t devhost_wall_clock(void *host)
{
	(void)host;
	return (int64_t)time(NULL);
}

static void devhost_timer_arm(void *host, unsigned id, uint64_t when_ns)
{
	struct devhost *h = host;

	if (id >= DEV_MAX_TIMERS)
		return;
	h->timer_when[id] = when_ns;
	devhost_timers_kick(h);
}

static const struct dev_host_ops devhost_ops = {
	.irq_set = devhost_irq_set,
	.backend_write = devhost_backend_write,
	.request_exit = devhost_request_exit,
	.request_reset = devhost_request_reset,
	.request_poweroff = devhost_request_poweroff,
	.mem_map = devhost_mem_map,
	.blk_pread = devhost_blk_pread,
	.blk_pwrite = devhost_blk_pwrite,
	.blk_flush = devhost_blk_flush,
	.blk_size = devhost_blk_size,
	.entropy = devhost_entropy,
	.clock_ns = devhost_clock_ns,
	.wall_clock = devhost_wall_clock,
	.timer_arm = devhost_timer_arm,
};

/* ---- the access ring ---------------------------------------------------- */

static int devhost_serve_access(void *ctx, unsigned slot, struct ipc_access *a)
{
	struct devhost *h = ctx;
	const struct dev_region *rg;
	uint64_t data = a->data;
	unsigned len = a->len;

	a->flags = 0;
	if (a->region >= h->dev->nregions ||
	    (len != 1 && len != 2 && len != 4 && len != 8)) {
		LOG_WARN("%s: malformed access (region %u, len %u) refused",
			 h->label, a->region, len);
		a->data = ~0ull;
		return 0;
	}
	rg = &h->dev->regions[a->region];
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
	if (atomic_exchange(&h->exit_requested, false)) {
		a->flags |= IPC_ACC_F_STOP;
		if (a->write)
			a->data = atomic_load(&h->exit_code);
	}
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

static int devhost_map_ram(struct devhost *h, int fd)
{
	struct stat st;
	void *p;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size <= 0)
		return -EINVAL;
	p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	h->ram = p;
	h->ram_size = (uint64_t)st.st_size;
	return 0;
}

static int devhost_on_init(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct devhost *h = ctx;
	const DevInit *init = pb;
	unsigned k = 0, want;
	int r = -EPROTO;
	int fd;

	if (strcmp(init->kind, h->desc->mf->name) != 0) {
		LOG_ERR("broker asked for a '%s' device, this binary is '%s'",
			init->kind, h->desc->mf->name);
		goto out;
	}
	want = 2 + (init->has_ram ? 1 : 0) + init->nbackend_fds;
	if (init->nbackend_fds > DEVHOST_MAX_BACKEND_FDS || m->nfds != want) {
		LOG_ERR("DevInit carries %u fds, expected %u", m->nfds, want);
		goto out;
	}
	if ((init->n_regions && init->n_regions != h->desc->mf->nregions) ||
	    (init->n_irqs && init->n_irqs != h->desc->mf->nirqs)) {
		LOG_ERR("DevInit places %zu regions and %zu IRQs; the device "
			"has %u and %u", init->n_regions, init->n_irqs,
			h->desc->mf->nregions, h->desc->mf->nirqs);
		goto out;
	}
	for (unsigned i = 0; i < h->desc->mf->nregions; i++) {
		h->regions[i] = h->desc->mf->regions[i];
		if (init->n_regions)
			h->regions[i].base = init->regions[i]->addr;
	}
	for (unsigned i = 0; i < h->desc->mf->nirqs; i++)
		h->irqs[i] = init->n_irqs ? init->irqs[i] : h->desc->mf->irqs[i];
	h->placed = true;
	h->instance = init->instance;
	h->cfg.readonly = init->readonly;
	snprintf(h->serial, sizeof(h->serial), "%s", init->serial);
	h->cfg.serial = h->serial;
	if (init->debug)
		ipc_log_init("bulkhead-dev", (int)init->debug);
	snprintf(h->label, sizeof(h->label), "%s#%u", h->desc->mf->name,
		 init->instance);
	ipc_chan_init(&h->chan, ipc_msg_take_fd(m, k++), "worker");
	fd = ipc_msg_take_fd(m, k++);
	r = ipc_ring_map(fd, &h->ring);
	close(fd);
	if (r < 0) {
		LOG_ERR("%s: cannot map the access ring: %s", h->label,
			strerror(-r));
		goto out;
	}
	if (init->has_ram) {
		fd = ipc_msg_take_fd(m, k++);
		r = devhost_map_ram(h, fd);
		close(fd);
		if (r < 0) {
			LOG_ERR("%s: cannot map guest RAM: %s", h->label,
				strerror(-r));
			goto out;
		}
	}
	h->nbackend = init->nbackend_fds;
	for (unsigned i = 0; i < h->nbackend; i++)
		h->backend_fd[i] = ipc_msg_take_fd(m, k++);
	/* A console device reads the first backend fd and writes the second. */
	if (h->desc->backend_input && h->nbackend == 2) {
		h->backend_in = h->backend_fd[0];
		h->backend_out = h->backend_fd[1];
	}
	r = 0;
out:
	return r;
}

/* DevInit's fds: the channel to the worker, the ring, guest RAM, and the
 * backend's (devhost_on_init counts them exactly). */
#define DEVHOST_INIT_MAX_FDS (3 + DEVHOST_MAX_BACKEND_FDS)
static const struct ipc_handler devhost_bootstrap_tab[] = {
	{ .type = MSG_DEV_INIT, .flags = IPC_PERMIT | IPC_ONCE, .name = "init",
	  .desc = &dev_init__descriptor, .fn = devhost_on_init,
	  .max_fds = DEVHOST_INIT_MAX_FDS },
};
static const struct ipc_phase devhost_bootstrap_phase = {
	.name = "bootstrap", .tab = devhost_bootstrap_tab, .n = 1,
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

static bool devhost_irq_is_level(const struct devhost *h, unsigned line)
{
	return h->desc->irq_flags && (h->desc->irq_flags[line] & DEV_IRQ_LEVEL);
}

static int devhost_on_registered(void *ctx, const void *pb,
				 struct ipc_msg *m)
{
	struct devhost *h = ctx;
	const DevRegistered *reg = pb;
	const struct dev_desc *desc = h->desc;
	unsigned want = desc->mf->nirqs + desc->ndoorbells, k = 0;
	int r = -EPROTO;

	for (unsigned i = 0; i < desc->mf->nirqs; i++)
		want += devhost_irq_is_level(h, i);
	if (reg->nirqfds != desc->mf->nirqs || reg->ndoorbells != desc->ndoorbells ||
	    m->nfds != want) {
		LOG_ERR("%s: worker sent %u fds for %u IRQ lines and %u "
			"doorbells", h->label, m->nfds, desc->mf->nirqs,
			desc->ndoorbells);
		goto out;
	}
	for (unsigned i = 0; i < desc->mf->nirqs; i++) {
		h->irqfds[i] = ipc_msg_take_fd(m, k++);
		if (devhost_irq_is_level(h, i))
			h->resamplefds[i] = ipc_msg_take_fd(m, k++);
	}
	for (unsigned i = 0; i < desc->ndoorbells; i++)
		h->doorbells[i] = ipc_msg_take_fd(m, k++);
	r = 0;
out:
	return r;
}

/* DevRegistered's fds: an irqfd per line, a resample fd per level line,
 * an eventfd per doorbell (devhost_on_registered counts them exactly). */
#define DEVHOST_REGISTERED_MAX_FDS IPC_MAX_FDS
static const struct ipc_handler devhost_register_tab[] = {
	{ .type = MSG_DEV_REGISTERED, .flags = IPC_PERMIT | IPC_ONCE,
	  .name = "registered", .desc = &dev_registered__descriptor,
	  .fn = devhost_on_registered, .max_fds = DEVHOST_REGISTERED_MAX_FDS },
};
static const struct ipc_phase devhost_register_phase = {
	.name = "registering", .tab = devhost_register_tab, .n = 1,
};

static int devhost_register(struct devhost *h)
{
	const struct dev_desc *desc = h->desc;
	DevRegion regions[DEV_MAX_REGIONS], *rp[DEV_MAX_REGIONS];
	DevDoorbell bells[DEV_MAX_DOORBELLS], *bp[DEV_MAX_DOORBELLS];
	DevPosted posted[DEV_MAX_POSTED], *pp[DEV_MAX_POSTED];
	DevRegister reg = DEV_REGISTER__INIT;
	struct ipc_phase_state st = { 0 };
	uint32_t irqs[DEV_MAX_IRQS], flags[DEV_MAX_IRQS];
	int r;

	reg.kind = (char *)desc->mf->name;
	reg.instance = h->instance;
	for (unsigned i = 0; i < h->dev->nregions; i++) {
		dev_region__init(&regions[i]);
		regions[i].space = h->dev->regions[i].space;
		regions[i].addr = h->dev->regions[i].base;
		regions[i].len = h->dev->regions[i].len;
		rp[i] = &regions[i];
	}
	reg.n_regions = h->dev->nregions;
	reg.regions = rp;
	for (unsigned i = 0; i < h->dev->nirqs; i++) {
		irqs[i] = h->dev->irqs[i];
		flags[i] = devhost_irq_is_level(h, i) ? 1 : 0;
	}
	reg.n_irqs = reg.n_irq_flags = h->dev->nirqs;
	reg.irqs = irqs;
	reg.irq_flags = flags;
	for (unsigned i = 0; i < desc->ndoorbells; i++) {
		dev_doorbell__init(&bells[i]);
		bells[i].region = desc->doorbells[i].region;
		bells[i].off = desc->doorbells[i].off;
		bells[i].len = desc->doorbells[i].len;
		bp[i] = &bells[i];
	}
	reg.n_doorbells = desc->ndoorbells;
	reg.doorbells = bp;
	for (unsigned i = 0; i < desc->nposted; i++) {
		dev_posted__init(&posted[i]);
		posted[i].region = desc->posted[i].region;
		posted[i].off = desc->posted[i].off;
		posted[i].len = desc->posted[i].len;
		pp[i] = &posted[i];
	}
	reg.n_posted = desc->nposted;
	reg.posted = pp;
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

static int devhost_on_destruct(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct devhost *h = ctx;
	DevDestructDone done = DEV_DESTRUCT_DONE__INIT;

	h->stop = true;
	return ipc_send_pb(&h->chan, MSG_DEV_DESTRUCT_DONE, &done.base, NULL, 0);
}

/* A lifecycle notification from EMT(0): run the core's callback, answer. */
static int devhost_on_notify(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct devhost *h = ctx;
	const DevNotify *n = pb;
	DevNotifyDone done = DEV_NOTIFY_DONE__INIT;
	const struct dev_desc *desc = h->desc;

	done.event = n->event;
	done.seq = n->seq;
	pthread_mutex_lock(&h->lock);
	switch (n->event) {
	case DEV_NOTIFY__EVENT__POWER_ON:
		devhost_clock_resume(h);
		if (desc->power_on)
			desc->power_on(h->dev);
		break;
	case DEV_NOTIFY__EVENT__RESET:
		if (desc->reset)
			desc->reset(h->dev);
		break;
	case DEV_NOTIFY__EVENT__SUSPEND:
		devhost_clock_pause(h);
		if (desc->suspend)
			desc->suspend(h->dev);
		break;
	case DEV_NOTIFY__EVENT__RESUME:
		devhost_clock_resume(h);
		if (desc->resume)
			desc->resume(h->dev);
		break;
	case DEV_NOTIFY__EVENT__POWER_OFF:
		devhost_clock_pause(h);
		if (desc->power_off)
			desc->power_off(h->dev);
		break;
	default:
		done.status = -EINVAL;
		break;
	}
	pthread_mutex_unlock(&h->lock);
	return ipc_send_pb(&h->chan, MSG_DEV_NOTIFY_DONE, &done.base, NULL, 0);
}

#define DEVHOST_MAX_DIRTY_RUNS 4096u  /* pairs: 32 KiB in a frame */

/* The recorded pages as (first, count) runs; all when there are too many. */
static void devhost_dirty_runs(struct devhost *h, uint64_t *runs, size_t *n,
			       protobuf_c_boolean *all)
{
	uint64_t pages = h->ram_size / DEVHOST_PAGE_SIZE, p = 0;

	*n = 0;
	*all = false;
	while (p < pages) {
		uint64_t first;

		if (!(h->dirty[p / DEVHOST_DIRTY_WORD_BITS] &
		      (1ull << (p % DEVHOST_DIRTY_WORD_BITS)))) {
			p++;
			continue;
		}
		first = p;
		while (p < pages &&
		       (h->dirty[p / DEVHOST_DIRTY_WORD_BITS] &
			(1ull << (p % DEVHOST_DIRTY_WORD_BITS))))
			p++;
		if (*n + 2 > DEVHOST_MAX_DIRTY_RUNS) {
			*all = true;
			*n = 0;
			return;
		}
		runs[(*n)++] = first;
		runs[(*n)++] = p - first;
	}
}

/* Saved state: the core's protobuf message, and our virtual clock. */
static int devhost_on_save(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct devhost *h = ctx;
	const DevSaveReq *req = pb;
	DevStateData st = DEV_STATE_DATA__INIT;
	uint64_t runs[DEVHOST_MAX_DIRTY_RUNS];
	uint8_t *buf = NULL;
	size_t len = 0;
	uint32_t dirty;
	int r = 0;

	st.seq = req->seq;
	dirty = req->dirty;
	pthread_mutex_lock(&h->lock);
	if (dirty == DEVHOST_DIRTY_START) {
		/* Start recording; nothing to save yet. */
		uint64_t pages = (h->ram_size + DEVHOST_PAGE_SIZE - 1) /
				 DEVHOST_PAGE_SIZE;

		free(h->dirty);
		h->dirty = h->ram ?
			   calloc((pages + DEVHOST_DIRTY_WORD_BITS - 1) /
				  DEVHOST_DIRTY_WORD_BITS, sizeof(*h->dirty)) :
			   NULL;
		if (h->ram && !h->dirty)
			r = -ENOMEM;
		pthread_mutex_unlock(&h->lock);
		st.status = r;
		return ipc_send_pb(&h->chan, MSG_DEV_SAVE_DATA, &st.base, NULL, 0);
	}
	if (dirty == DEVHOST_DIRTY_REPORT && h->dirty) {
		devhost_dirty_runs(h, runs, &st.n_dirty_runs, &st.dirty_all);
		st.dirty_runs = runs;
		free(h->dirty);
		h->dirty = NULL;
	}
	if (h->desc->save)
		r = h->desc->save(h->dev, &buf, &len);
	st.clock_ns = devhost_clock_now(h);
	pthread_mutex_unlock(&h->lock);
	st.status = r;
	st.version = h->desc->mf->state_version;
	st.state.data = buf;
	st.state.len = r == 0 ? len : 0;
	r = ipc_send_pb(&h->chan, MSG_DEV_SAVE_DATA, &st.base, NULL, 0);
	free(buf);
	return r;
}

static int devhost_on_load(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct devhost *h = ctx;
	const DevStateData *st = pb;
	DevStateData done = DEV_STATE_DATA__INIT;
	int r = 0;

	done.seq = st->seq;
	pthread_mutex_lock(&h->lock);
	if (h->desc->load)
		r = h->desc->load(h->dev, st->state.data, st->state.len,
				  st->version);
	else if (st->state.len)
		r = -EINVAL;  /* state for a device that keeps none */
	if (r == 0) {
		/* Carry on from the saved virtual time (still paused). */
		h->clock_running = false;
		h->clock_virt_base = st->clock_ns;
		devhost_timers_kick(h);
	}
	pthread_mutex_unlock(&h->lock);
	if (r < 0)
		LOG_WARN("%s: refused its saved state: %s", h->label,
			 strerror(-r));
	done.status = r;
	return ipc_send_pb(&h->chan, MSG_DEV_LOAD_DONE, &done.base, NULL, 0);
}

static const struct ipc_handler devhost_running_tab[] = {
	{ .type = MSG_DEV_NOTIFY, .flags = IPC_PERMIT, .name = "notify",
	  .desc = &dev_notify__descriptor, .fn = devhost_on_notify },
	{ .type = MSG_DEV_DESTRUCT, .flags = IPC_PERMIT | IPC_ONCE,
	  .name = "destruct", .desc = &dev_destruct__descriptor,
	  .fn = devhost_on_destruct },
	{ .type = MSG_DEV_SAVE, .flags = IPC_PERMIT, .name = "save",
	  .desc = &dev_save_req__descriptor, .fn = devhost_on_save },
	{ .type = MSG_DEV_LOAD, .flags = IPC_PERMIT, .name = "load",
	  .desc = &dev_state_data__descriptor, .fn = devhost_on_load },
};
static const struct ipc_phase devhost_running_phase = {
	.name = "running", .tab = IPC_TAB(devhost_running_tab),
};

/* Read what the device has room for from its backend input. */
static void devhost_pump_input(struct devhost *h)
{
	uint8_t buf[DEVHOST_INPUT_CHUNK];
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
		h->backend_in = -1;
		return;
	}
	pthread_mutex_lock(&h->lock);
	h->desc->backend_input(h->dev, buf, (size_t)n);
	pthread_mutex_unlock(&h->lock);
}

static void devhost_doorbell(struct devhost *h, unsigned idx)
{
	uint64_t v;

	if (read(h->doorbells[idx], &v, sizeof(v)) < 0)
		return;
	pthread_mutex_lock(&h->lock);
	if (h->desc->notify)
		h->desc->notify(h->dev, idx);
	pthread_mutex_unlock(&h->lock);
}

/* The guest acknowledged a level line: assert it again if still high. */
static void devhost_resample(struct devhost *h, unsigned line)
{
	uint64_t v, one = 1;

	if (read(h->resamplefds[line], &v, sizeof(v)) < 0)
		return;
	pthread_mutex_lock(&h->lock);
	if (h->irq_level[line] &&
	    write(h->irqfds[line], &one, sizeof(one)) < 0)
		LOG_WARN("%s: cannot re-assert IRQ %u", h->label, h->irqs[line]);
	pthread_mutex_unlock(&h->lock);
}

enum { DH_CHAN, DH_INPUT, DH_TIMER, DH_BELL0 };

static void devhost_loop(struct devhost *h)
{
	struct ipc_phase_state st = { 0 };
	const unsigned nb = h->desc->ndoorbells, ni = h->desc->mf->nirqs;

	while (!h->stop) {
		struct pollfd p[DH_BELL0 + DEV_MAX_DOORBELLS + DEV_MAX_IRQS];
		bool has_input = h->backend_in >= 0 && h->desc->backend_input;
		int timeout = -1;
		int r;

		p[DH_CHAN] = (struct pollfd){ .fd = h->chan.fd, .events = POLLIN };
		p[DH_INPUT] = (struct pollfd){ .fd = -1, .events = POLLIN };
		p[DH_TIMER] = (struct pollfd){ .fd = h->timerfd, .events = POLLIN };
		for (unsigned i = 0; i < nb; i++)
			p[DH_BELL0 + i] = (struct pollfd){ .fd = h->doorbells[i],
							   .events = POLLIN };
		for (unsigned i = 0; i < ni; i++)
			p[DH_BELL0 + nb + i] = (struct pollfd){
				.fd = h->resamplefds[i], .events = POLLIN };
		if (has_input) {
			bool room;

			pthread_mutex_lock(&h->lock);
			room = h->desc->backend_room(h->dev) > 0;
			pthread_mutex_unlock(&h->lock);
			if (room)
				p[DH_INPUT].fd = h->backend_in;
			else
				timeout = DEVHOST_INPUT_RETRY_MS;
		}
		r = poll(p, DH_BELL0 + nb + ni, timeout);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			LOG_ERR("%s: poll: %s", h->label, strerror(errno));
			h->status = 1;
			return;
		}
		for (unsigned i = 0; i < nb; i++)
			if (p[DH_BELL0 + i].revents)
				devhost_doorbell(h, i);
		for (unsigned i = 0; i < ni; i++)
			if (p[DH_BELL0 + nb + i].fd >= 0 &&
			    p[DH_BELL0 + nb + i].revents)
				devhost_resample(h, i);
		if (p[DH_TIMER].revents)
			devhost_timers_fire(h);
		if (p[DH_CHAN].revents) {
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
		if (p[DH_INPUT].fd >= 0 && p[DH_INPUT].revents)
			devhost_pump_input(h);
	}
}

int dev_main(int argc, char **argv, const struct dev_desc *desc)
{
	struct devhost h = {
		.desc = desc, .backend_in = -1, .backend_out = -1,
		.chan = { .fd = -1 }, .timerfd = -1,
	};
	pthread_t ring_thread;
	char name[64];
	int r;

	sbx_enter_device(argc, argv, desc->mf->name);
	snprintf(name, sizeof(name), "bulkhead-dev-%s", desc->mf->name);
	ipc_log_init(name, IPC_LOG_INFO);
	signal(SIGPIPE, SIG_IGN);
	for (unsigned i = 0; i < DEV_MAX_IRQS; i++)
		h.irqfds[i] = h.resamplefds[i] = -1;
	for (unsigned i = 0; i < DEV_MAX_DOORBELLS; i++)
		h.doorbells[i] = -1;
	for (unsigned i = 0; i < DEVHOST_MAX_BACKEND_FDS; i++)
		h.backend_fd[i] = -1;
	pthread_mutex_init(&h.lock, NULL);
	h.msg = malloc(sizeof(*h.msg));
	h.timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (!h.msg || h.timerfd < 0 || desc->mf->nregions > DEV_MAX_REGIONS ||
	    desc->mf->nirqs > DEV_MAX_IRQS || desc->ndoorbells > DEV_MAX_DOORBELLS ||
	    desc->nposted > DEV_MAX_POSTED)
		return 1;
	if (devhost_bootstrap(&h) < 0)
		return 1;
	r = dev_new_at(desc, h.instance, h.regions, h.irqs, &h.cfg, &devhost_ops,
		       &h, &h.dev);
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
