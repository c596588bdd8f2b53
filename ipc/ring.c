/* SPDX-License-Identifier: MIT */
/*
 * The access ring: register accesses from EMT threads (worker process) to a
 * device process, through a sealed memfd both map.
 *
 * Layout: one header page, then nslots slots of one cache line each.
 *
 *   header  magic, version, nslots, size        written once, at create
 *           dead                                set by ipc_ring_shutdown()
 *           doorbell, dev_sleeping              device's futex and flag
 *   slot i  req_seq, ack_seq, emt_sleeping, struct ipc_access
 *
 * A call: the EMT writes the access into its slot and publishes it with
 * req_seq = seq + 1 (release). The device sees req_seq != ack_seq, copies the
 * access out, runs the handler, writes data and flags back and publishes
 * ack_seq = req_seq (release). The EMT sees ack_seq == its seq and copies
 * the answer out. When both sides are spinning that is two cache-line
 * transfers and no syscall.
 *
 * Sleeping, on either side, is a Dekker handshake: the sleeper sets its
 * flag (seq_cst) and re-checks the condition before FUTEX_WAIT; the waker
 * publishes (release), fences (seq_cst) and then reads the flag. Either the
 * sleeper sees the work or the waker sees the flag. The device sleeps on
 * the doorbell, which every waker (EMT, stop, shutdown) increments before
 * FUTEX_WAKE so that a wake cannot fall between the check and the wait. The
 * EMT sleeps on its slot's emt_sleeping word itself: the device and
 * ipc_ring_shutdown() clear it before waking, with the same effect.
 *
 * Trust: the device may be hostile and may scribble over the whole shared
 * mapping at any time. Nothing read from it after ipc_ring_map() is used to
 * index or size anything: the slot count, the EMT's sequence numbers and a
 * "dead" flag are kept in the process-private struct ipc_ring, and the EMT
 * copies back only the read data (masked to the access width) and the
 * answer flags (masked to the known ones). The futexes are shared (no
 * FUTEX_PRIVATE_FLAG): waiter and waker are in different processes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ipc/ipc.h"

#define RING_MAGIC UINT64_C(0x474e495248424b42)  /* "BKBHRING", LE */
#define RING_VERSION 1u
#define RING_PAGE 4096u
#define RING_LINE 64u

/* EMT: spin this long for an answer before sleeping on the futex. */
#define RING_EMT_SPIN_NS 30000u
/* Futex timeouts: a backstop only, every wake is explicit. */
#define RING_EMT_WAIT_NS 50000000L
#define RING_DEV_WAIT_NS 100000000L
/* Spin iterations between clock and flag checks. */
#define RING_SPIN_CHECK_EVERY 64u

#define RING_ACC_F_KNOWN (IPC_ACC_F_STOP)

struct ring_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t nslots;
	uint64_t size;
	/* Written once, at shutdown: its own line so readers never miss. */
	alignas(RING_LINE) _Atomic uint32_t dead;
	alignas(RING_LINE) _Atomic uint32_t doorbell;
	_Atomic uint32_t dev_sleeping;
};

struct ring_slot {
	alignas(RING_LINE) _Atomic uint32_t req_seq;  /* EMT writes */
	_Atomic uint32_t ack_seq;                     /* device writes */
	_Atomic uint32_t emt_sleeping;  /* EMT sets, device/shutdown clear */
	uint32_t pad;
	struct ipc_access acc;
};

_Static_assert(sizeof(struct ring_hdr) <= RING_PAGE, "header fits a page");
_Static_assert(sizeof(struct ring_slot) == RING_LINE, "one line per slot");
_Static_assert(IPC_RING_MAX_SLOTS <= 64u, "slot count fits the tables");

/* Per-slot state private to the EMT side, one line each (no false sharing
 * between EMT threads). */
struct ring_emt_slot {
	alignas(RING_LINE) uint32_t seq;  /* last req_seq this side posted */
};

struct ipc_ring {
	/* Read-mostly. */
	struct ring_hdr *hdr;
	struct ring_slot *slots;
	size_t size;
	unsigned nslots;
	/* Process-private flags: the shared copies cannot be trusted. */
	alignas(RING_LINE) atomic_bool stop;
	atomic_bool dead;
	struct ring_emt_slot emt[IPC_RING_MAX_SLOTS];
};

static void ring_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

static uint64_t ring_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Cross-process futexes: no FUTEX_PRIVATE_FLAG. */
static void ring_futex_wait(_Atomic uint32_t *word, uint32_t val, long ns)
{
	struct timespec ts = {
		.tv_sec = ns / 1000000000L,
		.tv_nsec = ns % 1000000000L,
	};

	/* EAGAIN (value changed), EINTR, ETIMEDOUT: the caller re-checks. */
	syscall(SYS_futex, word, FUTEX_WAIT, val, &ts, NULL, 0);
}

static void ring_futex_wake(_Atomic uint32_t *word, int n)
{
	syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
}

size_t ipc_ring_size(unsigned nslots)
{
	size_t bytes = RING_PAGE + (size_t)nslots * sizeof(struct ring_slot);

	return (bytes + RING_PAGE - 1) / RING_PAGE * RING_PAGE;
}

int ipc_ring_create(unsigned nslots, const char *name)
{
	struct ring_hdr hdr;
	size_t size;
	int fd, ret;

	if (nslots == 0 || nslots > IPC_RING_MAX_SLOTS)
		return -EINVAL;
	size = ipc_ring_size(nslots);

	fd = memfd_create(name ? name : "bulkhead-ring",
			  MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		ret = -errno;
		goto out_close;
	}
	/* The file is zero-filled: sequences start at 0, nobody sleeps. */
	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = RING_MAGIC;
	hdr.version = RING_VERSION;
	hdr.nslots = nslots;
	hdr.size = size;
	if (pwrite(fd, &hdr, offsetof(struct ring_hdr, dead), 0) !=
	    (ssize_t)offsetof(struct ring_hdr, dead)) {
		ret = -EIO;
		goto out_close;
	}
	/* Neither side may resize it under the other (SIGBUS). */
	if (fcntl(fd, F_ADD_SEALS,
		  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		ret = -errno;
		goto out_close;
	}
	return fd;

out_close:
	close(fd);
	return ret;
}

int ipc_ring_map(int memfd, struct ipc_ring **out)
{
	const unsigned need_seals = F_SEAL_SHRINK | F_SEAL_GROW;
	struct ipc_ring *r;
	struct stat st;
	uint64_t magic, size;
	uint32_t version, nslots;
	void *p;
	int seals, ret;

	*out = NULL;
	if (fstat(memfd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)ipc_ring_size(1) ||
	    st.st_size > (off_t)ipc_ring_size(IPC_RING_MAX_SLOTS))
		return -EINVAL;
	/* Unsealed, the other side could shrink it and fault us. */
	seals = fcntl(memfd, F_GET_SEALS);
	if (seals < 0 || ((unsigned)seals & need_seals) != need_seals)
		return -EINVAL;

	p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 memfd, 0);
	if (p == MAP_FAILED)
		return -errno;

	/* Read each header field once; validate the copies, use only them. */
	{
		volatile struct ring_hdr *vh = p;

		magic = vh->magic;
		version = vh->version;
		nslots = vh->nslots;
		size = vh->size;
	}
	if (magic != RING_MAGIC || version != RING_VERSION || nslots == 0 ||
	    nslots > IPC_RING_MAX_SLOTS || size != (uint64_t)st.st_size ||
	    size != ipc_ring_size(nslots)) {
		ret = -EINVAL;
		goto out_unmap;
	}

	r = aligned_alloc(RING_LINE, sizeof(*r));
	if (!r) {
		ret = -ENOMEM;
		goto out_unmap;
	}
	memset(r, 0, sizeof(*r));
	r->hdr = p;
	r->slots = (struct ring_slot *)((char *)p + RING_PAGE);
	r->size = (size_t)size;
	r->nslots = nslots;
	atomic_init(&r->stop, false);
	atomic_init(&r->dead, false);
	for (unsigned i = 0; i < nslots; i++)
		r->emt[i].seq = atomic_load_explicit(&r->slots[i].req_seq,
						     memory_order_relaxed);
	*out = r;
	return 0;

out_unmap:
	munmap(p, (size_t)st.st_size);
	return ret;
}

void ipc_ring_unmap(struct ipc_ring *r)
{
	if (!r)
		return;
	munmap(r->hdr, r->size);
	free(r);
}

unsigned ipc_ring_nslots(const struct ipc_ring *r)
{
	return r->nslots;
}

bool ipc_ring_is_dead(const struct ipc_ring *r)
{
	return atomic_load(&r->dead) || atomic_load(&r->hdr->dead) != 0;
}

/* Mask a read result to the access width the EMT asked for. */
static uint64_t ring_mask_data(uint64_t v, uint8_t len)
{
	switch (len) {
	case 1: return v & 0xffu;
	case 2: return v & 0xffffu;
	case 4: return v & 0xffffffffu;
	default: return v;
	}
}

/* EMT: spin for the answer. 1 if it came, 0 if the spin ran out, -EPIPE. */
static int ring_emt_spin(struct ipc_ring *r, struct ring_slot *s,
			 uint32_t seq)
{
	uint64_t start = 0;

	for (unsigned i = 1;; i++) {
		if (atomic_load_explicit(&s->ack_seq, memory_order_acquire) ==
		    seq)
			return 1;
		ring_cpu_relax();
		if (i % RING_SPIN_CHECK_EVERY)
			continue;
		/* Every few iterations: the dead flag and the clock. */
		if (ipc_ring_is_dead(r))
			return -EPIPE;
		if (!start)
			start = ring_now_ns();
		else if (ring_now_ns() - start > RING_EMT_SPIN_NS)
			return 0;
	}
}

/* EMT: sleep until the answer is in (0) or the ring is dead (-EPIPE). */
static int ring_emt_sleep(struct ipc_ring *r, struct ring_slot *s,
			  uint32_t seq)
{
	int ret = 0;

	for (;;) {
		/* Dekker with ring_dev_answer() and ipc_ring_shutdown(). */
		atomic_store(&s->emt_sleeping, 1);
		atomic_thread_fence(memory_order_seq_cst);
		if (atomic_load_explicit(&s->ack_seq, memory_order_acquire) ==
		    seq)
			break;
		if (ipc_ring_is_dead(r)) {
			ret = -EPIPE;
			break;
		}
		ring_futex_wait(&s->emt_sleeping, 1, RING_EMT_WAIT_NS);
	}
	atomic_store_explicit(&s->emt_sleeping, 0, memory_order_relaxed);
	return ret;
}

/* EMT: take the answer from the untrusted page, each field read once. */
static void ring_emt_take_answer(const struct ring_slot *s,
				 struct ipc_access *a)
{
	const volatile struct ipc_access *va = &s->acc;
	uint64_t data = va->data;
	uint32_t flags = va->flags;

	if (!a->write)
		a->data = ring_mask_data(data, a->len);
	a->flags = flags & RING_ACC_F_KNOWN;
}

int ipc_ring_call(struct ipc_ring *r, unsigned slot, struct ipc_access *a)
{
	struct ring_hdr *h = r->hdr;
	struct ring_slot *s;
	uint32_t seq;
	int ret;

	if (slot >= r->nslots)
		return -EINVAL;
	if (ipc_ring_is_dead(r))
		return -EPIPE;
	s = &r->slots[slot];
	seq = r->emt[slot].seq + 1;
	r->emt[slot].seq = seq;

	s->acc = *a;
	s->acc.flags = 0;
	atomic_store_explicit(&s->req_seq, seq, memory_order_release);
	/*
	 * Dekker with the device going to sleep in ring_dev_idle(). Only a
	 * sleeping device needs the doorbell, so a busy ring costs one fence
	 * and one read of a line nobody writes.
	 */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&h->dev_sleeping, memory_order_relaxed)) {
		atomic_fetch_add(&h->doorbell, 1);
		ring_futex_wake(&h->doorbell, 1);
	}

	ret = ring_emt_spin(r, s, seq);
	if (ret == 0)
		ret = ring_emt_sleep(r, s, seq);
	if (ret < 0)
		return ret;
	ring_emt_take_answer(s, a);
	return 0;
}

/* Device: answer slot i if it has a request. 1 if it did, <0 to stop. */
static int ring_dev_answer(struct ipc_ring *r, unsigned i,
			   ipc_ring_handler_fn fn, void *ctx)
{
	struct ring_slot *s = &r->slots[i];
	struct ipc_access a;
	uint32_t req;
	int ret;

	req = atomic_load_explicit(&s->req_seq, memory_order_acquire);
	if (req == atomic_load_explicit(&s->ack_seq, memory_order_relaxed))
		return 0;

	/* One local copy; the handler never sees the shared slot. */
	memcpy(&a, &s->acc, sizeof(a));
	a.flags = 0;
	ret = fn(ctx, i, &a);
	if (ret < 0)
		return ret;   /* unanswered; the worker will shut the ring */

	s->acc.data = a.data;
	s->acc.flags = a.flags;
	atomic_store_explicit(&s->ack_seq, req, memory_order_release);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&s->emt_sleeping, memory_order_relaxed)) {
		atomic_store_explicit(&s->emt_sleeping, 0,
				      memory_order_relaxed);
		ring_futex_wake(&s->emt_sleeping, 1);
	}
	return 1;
}

/* Device: one pass over every slot. Number answered, or <0 to stop. */
static int ring_dev_scan(struct ipc_ring *r, ipc_ring_handler_fn fn,
			 void *ctx)
{
	int done = 0;

	for (unsigned i = 0; i < r->nslots; i++) {
		int ret = ring_dev_answer(r, i, fn, ctx);

		if (ret < 0)
			return ret;
		done += ret;
	}
	return done;
}

static bool ring_dev_should_return(const struct ipc_ring *r)
{
	return atomic_load_explicit(&r->stop, memory_order_acquire) ||
	       ipc_ring_is_dead(r);
}

/* Device: nothing to do for spin_ns; sleep on the doorbell. */
/*
 * Sleep on the doorbell. *rung says whether something happened (a request,
 * a wake-up) rather than the periodic timeout, so that an idle device goes
 * straight back to sleep instead of spinning after every timeout.
 */
static int ring_dev_idle(struct ipc_ring *r, ipc_ring_handler_fn fn,
			 void *ctx, bool *rung)
{
	struct ring_hdr *h = r->hdr;
	uint32_t bell;
	int ret;

	*rung = true;
	atomic_store(&h->dev_sleeping, 1);
	atomic_thread_fence(memory_order_seq_cst);
	bell = atomic_load(&h->doorbell);
	if (ring_dev_should_return(r)) {
		ret = 0;
		goto out_awake;
	}
	/* A request posted before our flag was visible: serve it now. */
	ret = ring_dev_scan(r, fn, ctx);
	if (ret != 0)
		goto out_awake;
	ring_futex_wait(&h->doorbell, bell, RING_DEV_WAIT_NS);
	*rung = atomic_load(&h->doorbell) != bell;
out_awake:
	atomic_store_explicit(&h->dev_sleeping, 0, memory_order_relaxed);
	return ret;
}

int ipc_ring_serve(struct ipc_ring *r, ipc_ring_handler_fn fn, void *ctx,
		   uint64_t spin_ns)
{
	uint64_t idle_since = ring_now_ns();
	bool worked = false, rung;
	int ret;

	for (unsigned i = 1;; i++) {
		ret = ring_dev_scan(r, fn, ctx);
		if (ret < 0)
			return ret;
		if (ret > 0)
			worked = true;
		else
			ring_cpu_relax();
		if (i % RING_SPIN_CHECK_EVERY)
			continue;

		/* Every few passes: flags and the clock, never per access. */
		if (ring_dev_should_return(r))
			return 0;
		if (worked) {
			idle_since = ring_now_ns();
			worked = false;
			continue;
		}
		if (ring_now_ns() - idle_since < spin_ns)
			continue;

		ret = ring_dev_idle(r, fn, ctx, &rung);
		if (ret < 0)
			return ret;
		if (ring_dev_should_return(r))
			return 0;
		/* Spin again only when woken by the doorbell; after a quiet
		 * timeout, sleep again at the next check. */
		idle_since = ret > 0 || rung ? ring_now_ns() : 0;
	}
}

static void ring_ring_doorbell(struct ipc_ring *r)
{
	atomic_fetch_add(&r->hdr->doorbell, 1);
	ring_futex_wake(&r->hdr->doorbell, INT_MAX);
}

void ipc_ring_stop(struct ipc_ring *r)
{
	atomic_store(&r->stop, true);
	ring_ring_doorbell(r);
}

void ipc_ring_shutdown(struct ipc_ring *r)
{
	atomic_store(&r->dead, true);
	atomic_store(&r->hdr->dead, 1);
	atomic_thread_fence(memory_order_seq_cst);
	ring_ring_doorbell(r);
	for (unsigned i = 0; i < r->nslots; i++) {
		atomic_store(&r->slots[i].emt_sleeping, 0);
		ring_futex_wake(&r->slots[i].emt_sleeping, INT_MAX);
	}
}
