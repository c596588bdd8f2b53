/* SPDX-License-Identifier: MIT */
/*
 * The access ring: register accesses from EMT threads (worker process) to a
 * device process, through a sealed memfd both map.
 *
 * Layout: one header page, then nslots slots, each a control line and a
 * queue of RING_DEPTH entries (one struct ipc_access each).
 *
 *   header  magic, version, nslots, size        written once, at create
 *           dead                                set by ipc_ring_shutdown()
 *           doorbell, dev_sleeping              device's futex and flag
 *           dev_beat                            the device's heartbeat
 *   slot i  req_seq, ack_seq, emt_sleeping; entries[RING_DEPTH]
 *
 * An access: the EMT writes it into entry seq % RING_DEPTH of its slot and
 * publishes it with req_seq = seq (release). The device takes every entry
 * from ack_seq + 1 to req_seq in order, copies each out, runs the handler,
 * writes data and flags back into the entry and publishes ack_seq = that
 * entry's seq (release). A call waits until ack_seq reaches its seq and
 * copies the answer out; a posted write (ipc_ring_post) does not wait at
 * all, and later accesses on the slot queue behind it, so the device sees
 * a vCPU's accesses in the order the guest made them. When both sides are
 * spinning a call is two cache-line transfers and no syscall.
 *
 * Waiting (docs/design.md, "The access ring"): a side spins only while it
 * sees the other running, and otherwise sleeps at once.
 *   - The device bumps dev_beat every few passes of its spin loop and
 *     before each handler. An EMT waiting for an answer spins while the
 *     beat moves; when the device was asleep at the time of the post, or
 *     its beat has not moved for RING_BEAT_STALE_NS (its thread is not on
 *     a CPU: preempted, or on a CPU the EMT itself is keeping busy), the
 *     EMT sleeps on the futex instead, and the device wakes it with the
 *     answer. RING_EMT_SPIN_NS bounds any spin.
 *   - The device, when idle, spins for the next access (for up to the
 *     spin_ns its host asked for) only while its EMTs are seen running:
 *     a batch that found its EMT spinning for it, or that was posted while
 *     the device spun, says so. Batches that had to wake a sleeping EMT
 *     (RING_DEV_MISSES in a row), or a spin loop that finds itself taken
 *     off its CPU (RING_DEV_PREEMPTED_NS between two checks), say that the
 *     two do not have a CPU each; then the device sleeps as soon as it is
 *     idle, which leaves the CPU to the EMT it has just woken. Every
 *     RING_DEV_PROBE_MIN to RING_DEV_PROBE_MAX idle periods (the gap
 *     doubles with each probe and each preemption, and halves after
 *     RING_DEV_CALM idle periods spun through) it spins once more, to see
 *     whether spinning pays again: it does when the next access arrives
 *     while it spins and its EMT has not had to sleep.
 *
 * Sleeping, on either side, is a Dekker handshake: the sleeper sets its
 * flag (seq_cst) and re-checks the condition before FUTEX_WAIT; the waker
 * publishes (release), fences (seq_cst) and then reads the flag. Either the
 * sleeper sees the work or the waker sees the flag. The device sleeps on
 * the doorbell, which every waker (EMT, stop, shutdown) increments before
 * FUTEX_WAKE so that a wake cannot fall between the check and the wait; an
 * EMT clears dev_sleeping as it rings, so of several EMTs only the first
 * makes the system call. The EMT sleeps on its slot's emt_sleeping word
 * itself: the device and ipc_ring_shutdown() clear it before waking, with
 * the same effect.
 *
 * Trust: the device may be hostile and may scribble over the whole shared
 * mapping at any time. Nothing read from it after ipc_ring_map() is used to
 * index or size anything: the slot count, the EMT's sequence numbers and a
 * "dead" flag are kept in the process-private struct ipc_ring, entries are
 * indexed by the EMT's own sequence numbers, and the EMT copies back only
 * the read data (masked to the access width), the answer flags (masked
 * to the known ones) and a stopping write's 32-bit exit code. A device that lies about ack_seq only confuses its
 * own accesses. The futexes are shared (no FUTEX_PRIVATE_FLAG): waiter and
 * waker are in different processes.
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
#define RING_VERSION 3u
#define RING_PAGE 4096u
#define RING_LINE 64u

/* Entries per slot: accesses one vCPU may have in flight (posted writes
 * and one call). A power of two. */
#define RING_DEPTH IPC_RING_DEPTH

/* EMT: never spin longer than this for an answer before sleeping. */
#define RING_EMT_SPIN_NS 30000u
/* EMT: a device whose heartbeat has not moved for this long is not
 * running; sleep rather than spin for it. */
#define RING_BEAT_STALE_NS 5000u
/* Device: bump the heartbeat every this many passes of the spin loop. */
#define RING_BEAT_EVERY 8u
/* Device: after this many answers in a row that had to wake their EMT,
 * stop spinning when idle. */
#define RING_DEV_MISSES 2u
/* Device, not spinning: spin once after this many idle periods; the gap
 * doubles with every probe and every preemption, and halves again after
 * RING_DEV_CALM idle periods spun through. */
#define RING_DEV_PROBE_MIN 4u
#define RING_DEV_PROBE_MAX 256u
/* Device: spinning idle periods after which the gap between probes halves
 * again. */
#define RING_DEV_CALM 64u
/* Device: a spin loop whose checks (RING_SPIN_CHECK_EVERY passes apart,
 * a few microseconds) come this far apart was off its CPU in between:
 * more threads want to run than there are CPUs, and its spinning only
 * takes CPU time from the EMT it waits for. */
#define RING_DEV_PREEMPTED_NS 100000u
/* Futex timeouts: a backstop only, every wake is explicit. */
#define RING_EMT_WAIT_NS 50000000L
#define RING_DEV_WAIT_NS 100000000L
/* Spin iterations between clock and flag checks. */
#define RING_SPIN_CHECK_EVERY 64u

#define RING_ACC_F_KNOWN (IPC_ACC_F_STOP)
/* Request flag, EMT -> device, in the entry's flags: nobody waits for the
 * answer. Cleared before the handler runs. */
#define RING_REQ_F_POSTED 0x80000000u
#define RING_NS_PER_SEC 1000000000L

struct ring_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t nslots;
	uint64_t size;
	/* Written once, at shutdown: its own line so readers never miss. */
	alignas(RING_LINE) _Atomic uint32_t dead;
	alignas(RING_LINE) _Atomic uint32_t doorbell;
	_Atomic uint32_t dev_sleeping;  /* device sets, EMTs clear as they ring */
	/* Written often by the device: a line of its own. */
	alignas(RING_LINE) _Atomic uint32_t dev_beat;
};

struct ring_slot {
	alignas(RING_LINE) _Atomic uint32_t req_seq;  /* EMT writes */
	_Atomic uint32_t ack_seq;                     /* device writes */
	_Atomic uint32_t emt_sleeping;  /* EMT sets, device/shutdown clear */
	alignas(RING_LINE) struct ipc_access ent[RING_DEPTH];
};

_Static_assert(sizeof(struct ring_hdr) <= RING_PAGE, "header fits a page");
_Static_assert(sizeof(struct ipc_access) == 32, "two entries per line");
_Static_assert(sizeof(struct ring_slot) % RING_LINE == 0, "slots on lines");
_Static_assert((RING_DEPTH & (RING_DEPTH - 1)) == 0 && RING_DEPTH >= 2,
	       "the depth is a power of two");
_Static_assert(IPC_RING_MAX_SLOTS <= 64u, "slot count fits the tables");

/* Counters, each written by one thread only (relaxed; readers may be
 * anywhere). */
typedef _Atomic uint64_t ring_counter;

static void ring_count(ring_counter *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static uint64_t ring_counter_get(const ring_counter *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* Per-slot state private to the EMT side, one line each (no false sharing
 * between EMT threads). */
struct ring_emt_slot {
	alignas(RING_LINE) uint32_t seq;  /* last req_seq this side posted */
	ring_counter calls, posted, full_waits;
	ring_counter waits_spun, sleeps_dev_asleep, sleeps_dev_stalled,
		     sleeps_spin_limit;
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
	/* Device side, the serving thread only. */
	alignas(RING_LINE) uint32_t beat;
	unsigned miss_run;      /* answers in a row that woke their EMT */
	unsigned probe_gap;     /* idle periods between probes */
	unsigned probe_left;    /* idle periods until the next probe */
	unsigned calm;          /* idle periods spun through since the last
				 * fall-back to sleeping */
	bool spinning;          /* in an idle period it spins through */
	ring_counter answered, emt_wakes, idle_spins, idle_sleeps_at_once,
		     probes, preempted;
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
	return (uint64_t)ts.tv_sec * RING_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* Cross-process futexes: no FUTEX_PRIVATE_FLAG. */
static void ring_futex_wait(_Atomic uint32_t *word, uint32_t val, long ns)
{
	struct timespec ts = {
		.tv_sec = ns / RING_NS_PER_SEC,
		.tv_nsec = ns % RING_NS_PER_SEC,
	};

	/* EAGAIN (value changed), EINTR, ETIMEDOUT: the caller re-checks. */
	syscall(SYS_futex, word, FUTEX_WAIT, val, &ts, NULL, 0);
}

static void ring_futex_wake(_Atomic uint32_t *word, int n)
{
	syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
}

/* Sequence numbers wrap: has `ack` reached `target`? */
static bool ring_seq_reached(uint32_t ack, uint32_t target)
{
	return (int32_t)(ack - target) >= 0;
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
	r->probe_gap = RING_DEV_PROBE_MIN;
	r->probe_left = RING_DEV_PROBE_MIN;
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

/* ---- the EMT side --------------------------------------------------------- */

/*
 * EMT: spin while the device is seen running. 1 when ack_seq reached
 * target, 0 to sleep instead (counted by why), -EPIPE.
 */
static int ring_emt_spin(struct ipc_ring *r, struct ring_slot *s,
			 struct ring_emt_slot *e, uint32_t target)
{
	uint32_t beat = atomic_load_explicit(&r->hdr->dev_beat,
					     memory_order_relaxed);
	uint64_t start = 0, alive = 0, now;

	for (unsigned i = 1;; i++) {
		if (ring_seq_reached(atomic_load_explicit(&s->ack_seq,
							  memory_order_acquire),
				     target)) {
			ring_count(&e->waits_spun);
			return 1;
		}
		ring_cpu_relax();
		if (i % RING_SPIN_CHECK_EVERY)
			continue;
		/* Every few iterations: the dead flag, the heartbeat and the
		 * clock. */
		if (ipc_ring_is_dead(r))
			return -EPIPE;
		now = ring_now_ns();
		if (!start)
			start = alive = now;
		if (atomic_load_explicit(&r->hdr->dev_beat,
					 memory_order_relaxed) != beat) {
			beat = atomic_load_explicit(&r->hdr->dev_beat,
						    memory_order_relaxed);
			alive = now;
		} else if (now - alive > RING_BEAT_STALE_NS) {
			ring_count(&e->sleeps_dev_stalled);
			return 0;
		}
		if (now - start > RING_EMT_SPIN_NS) {
			ring_count(&e->sleeps_spin_limit);
			return 0;
		}
	}
}

/* EMT: sleep until ack_seq reached target (0) or the ring is dead
 * (-EPIPE). */
static int ring_emt_sleep(struct ipc_ring *r, struct ring_slot *s,
			  uint32_t target)
{
	int ret = 0;

	for (;;) {
		/* Dekker with ring_dev_answer() and ipc_ring_shutdown(). */
		atomic_store(&s->emt_sleeping, 1);
		atomic_thread_fence(memory_order_seq_cst);
		if (ring_seq_reached(atomic_load_explicit(&s->ack_seq,
							  memory_order_acquire),
				     target))
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

/*
 * EMT: wait until the device has done everything up to seq `target` on
 * this slot. dev_asleep: the device was asleep when the last access was
 * posted (it has just been rung): sleep without spinning.
 */
static int ring_emt_wait(struct ipc_ring *r, unsigned slot, uint32_t target,
			 bool dev_asleep)
{
	struct ring_slot *s = &r->slots[slot];
	struct ring_emt_slot *e = &r->emt[slot];
	int ret;

	if (ring_seq_reached(atomic_load_explicit(&s->ack_seq,
						  memory_order_acquire), target))
		return 0;
	if (dev_asleep) {
		ring_count(&e->sleeps_dev_asleep);
	} else {
		ret = ring_emt_spin(r, s, e, target);
		if (ret != 0)
			return ret < 0 ? ret : 0;
	}
	return ring_emt_sleep(r, s, target);
}

/*
 * EMT: queue *a on the slot (waiting for room first if the queue is full)
 * and ring the device if it sleeps. Sets *seq to the access's sequence
 * number and *dev_asleep to whether the device had to be rung.
 */
static int ring_emt_post(struct ipc_ring *r, unsigned slot,
			 const struct ipc_access *a, uint32_t req_flags,
			 uint32_t *seq, bool *dev_asleep)
{
	struct ring_hdr *h = r->hdr;
	struct ring_slot *s = &r->slots[slot];
	struct ring_emt_slot *e = &r->emt[slot];
	struct ipc_access *ent;
	uint32_t next = e->seq + 1;
	int ret;

	*dev_asleep = false;
	if (ipc_ring_is_dead(r))
		return -EPIPE;
	/* The entry about to be reused must be done with. */
	if (!ring_seq_reached(atomic_load_explicit(&s->ack_seq,
						   memory_order_acquire),
			      next - RING_DEPTH)) {
		ring_count(&e->full_waits);
		ret = ring_emt_wait(r, slot, next - RING_DEPTH, false);
		if (ret < 0)
			return ret;
	}
	ent = &s->ent[next % RING_DEPTH];
	*ent = *a;
	ent->flags = req_flags;
	e->seq = next;
	atomic_store_explicit(&s->req_seq, next, memory_order_release);
	/*
	 * Dekker with the device going to sleep in ring_dev_idle(). Only a
	 * sleeping device needs the doorbell, so a busy ring costs one fence
	 * and one read of a line nobody writes.
	 */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&h->dev_sleeping, memory_order_relaxed) &&
	    atomic_exchange(&h->dev_sleeping, 0)) {
		atomic_fetch_add(&h->doorbell, 1);
		ring_futex_wake(&h->doorbell, 1);
		*dev_asleep = true;
	}
	*seq = next;
	return 0;
}

/* EMT: take the answer from the untrusted page, each field read once. */
static void ring_emt_take_answer(const struct ipc_access *ent,
				 struct ipc_access *a)
{
	const volatile struct ipc_access *va = ent;
	uint64_t data = va->data;
	uint32_t flags = va->flags;

	a->flags = flags & RING_ACC_F_KNOWN;
	if (!a->write)
		a->data = ring_mask_data(data, a->len);
	else if (a->flags & IPC_ACC_F_STOP)
		a->data = data & IPC_ACC_STOP_CODE_MASK;
}

int ipc_ring_call(struct ipc_ring *r, unsigned slot, struct ipc_access *a)
{
	uint32_t seq;
	bool asleep;
	int ret;

	if (slot >= r->nslots)
		return -EINVAL;
	ret = ring_emt_post(r, slot, a, 0, &seq, &asleep);
	if (ret < 0)
		return ret;
	ring_count(&r->emt[slot].calls);
	ret = ring_emt_wait(r, slot, seq, asleep);
	if (ret < 0)
		return ret;
	ring_emt_take_answer(&r->slots[slot].ent[seq % RING_DEPTH], a);
	return 0;
}

int ipc_ring_post(struct ipc_ring *r, unsigned slot,
		  const struct ipc_access *a)
{
	uint32_t seq;
	bool asleep;
	int ret;

	if (slot >= r->nslots || !a->write)
		return -EINVAL;
	ret = ring_emt_post(r, slot, a, RING_REQ_F_POSTED, &seq, &asleep);
	if (ret == 0)
		ring_count(&r->emt[slot].posted);
	return ret;
}

int ipc_ring_drain(struct ipc_ring *r, unsigned slot)
{
	if (slot >= r->nslots)
		return -EINVAL;
	return ring_emt_wait(r, slot, r->emt[slot].seq, false);
}

bool ipc_ring_pending(const struct ipc_ring *r, unsigned slot)
{
	if (slot >= r->nslots)
		return false;
	return !ring_seq_reached(atomic_load_explicit(&r->slots[slot].ack_seq,
						      memory_order_acquire),
				 r->emt[slot].seq);
}

/* ---- the device side ------------------------------------------------------ */

static void ring_dev_beat(struct ipc_ring *r)
{
	atomic_store_explicit(&r->hdr->dev_beat, ++r->beat,
			      memory_order_relaxed);
}

/* Device: a batch went out that its EMT waited for (a call, or room in a
 * full queue), or that came while it spun; was the EMT spinning, or had it
 * to be woken? */
static void ring_dev_note_answer(struct ipc_ring *r, bool emt_slept)
{
	if (!emt_slept)
		r->miss_run = 0;
	else if (r->miss_run < UINT_MAX)
		r->miss_run++;
}

/* Device: it was preempted while spinning. Spin no more for now, and probe
 * less often: the CPUs are oversubscribed. */
static void ring_dev_note_contention(struct ipc_ring *r)
{
	if (r->miss_run < RING_DEV_MISSES)
		r->miss_run = RING_DEV_MISSES;
	r->calm = 0;
	if (r->probe_gap < RING_DEV_PROBE_MAX)
		r->probe_gap *= 2;
	r->probe_left = r->probe_gap;
}

/* Device: how long to spin in the idle period that starts now. */
static uint64_t ring_dev_spin_window(struct ipc_ring *r, uint64_t spin_ns)
{
	if (r->miss_run < RING_DEV_MISSES) {
		/* Spinning pays; once it has for a while, a later fall-back
		 * to sleeping probes sooner again. */
		if (++r->calm >= RING_DEV_CALM) {
			r->calm = 0;
			if (r->probe_gap > RING_DEV_PROBE_MIN)
				r->probe_gap /= 2;
		}
		return spin_ns;
	}
	r->calm = 0;
	if (--r->probe_left)
		return 0;
	/* A probe: spin through this idle period once. */
	ring_count(&r->probes);
	if (r->probe_gap < RING_DEV_PROBE_MAX)
		r->probe_gap *= 2;
	r->probe_left = r->probe_gap;
	return spin_ns;
}

/*
 * Device: serve slot i's queue, in order. The number of entries done, or
 * <0 to stop.
 */
static int ring_dev_answer(struct ipc_ring *r, unsigned i,
			   ipc_ring_handler_fn fn, void *ctx)
{
	struct ring_slot *s = &r->slots[i];
	struct ipc_access a;
	uint32_t req, seq;
	bool called = false;
	int ret, done = 0;

	req = atomic_load_explicit(&s->req_seq, memory_order_acquire);
	seq = atomic_load_explicit(&s->ack_seq, memory_order_relaxed);
	if (req == seq)
		return 0;
	/* More than a queue's worth cannot happen with a sound EMT; skip
	 * what would have been overwritten. */
	if (req - seq > RING_DEPTH)
		seq = req - RING_DEPTH;

	do {
		struct ipc_access *ent = &s->ent[++seq % RING_DEPTH];
		bool posted;

		/* One local copy; the handler never sees the shared slot. */
		memcpy(&a, ent, sizeof(a));
		posted = a.flags & RING_REQ_F_POSTED;
		a.flags = 0;
		ring_dev_beat(r);
		ret = fn(ctx, i, &a);
		if (ret < 0)
			return ret;   /* unanswered; the worker will shut the ring */
		if (!posted) {
			ent->data = a.data;
			ent->flags = a.flags;
			called = true;
		}
		atomic_store_explicit(&s->ack_seq, seq, memory_order_release);
		ring_count(&r->answered);
		done++;
	} while (seq != req);

	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&s->emt_sleeping, memory_order_relaxed)) {
		/* It waited asleep, for an answer or for room. */
		atomic_store_explicit(&s->emt_sleeping, 0,
				      memory_order_relaxed);
		ring_futex_wake(&s->emt_sleeping, 1);
		ring_count(&r->emt_wakes);
		ring_dev_note_answer(r, true);
	} else if (called || r->spinning) {
		/* Its EMT spun for the answer, or posted while we spun. */
		ring_dev_note_answer(r, false);
	}
	return done;
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

/* Device: sleep on the doorbell until it rings (or the backstop timeout). */
static int ring_dev_idle(struct ipc_ring *r, ipc_ring_handler_fn fn,
			 void *ctx)
{
	struct ring_hdr *h = r->hdr;
	uint32_t bell;
	int ret;

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
out_awake:
	atomic_store_explicit(&h->dev_sleeping, 0, memory_order_relaxed);
	return ret;
}

int ipc_ring_serve(struct ipc_ring *r, ipc_ring_handler_fn fn, void *ctx,
		   uint64_t spin_ns)
{
	uint64_t idle_since = ring_now_ns(), window = spin_ns, last = idle_since;
	uint64_t now;
	bool worked = false;
	int ret;

	r->spinning = window != 0;
	for (unsigned i = 1;; i++) {
		ret = ring_dev_scan(r, fn, ctx);
		if (ret < 0)
			return ret;
		if (ret > 0)
			worked = true;
		else
			ring_cpu_relax();
		if (i % RING_BEAT_EVERY == 0)
			ring_dev_beat(r);
		if (i % RING_SPIN_CHECK_EVERY)
			continue;

		/* Every few passes: flags and the clock, never per access. */
		if (ring_dev_should_return(r))
			return 0;
		now = ring_now_ns();
		if (now - last > RING_DEV_PREEMPTED_NS && window) {
			/* Preempted while spinning: stop spinning now, and
			 * until an EMT is seen spinning again. */
			ring_count(&r->preempted);
			ring_dev_note_contention(r);
			window = 0;
			r->spinning = false;
		}
		last = now;
		if (worked) {
			idle_since = now;
			window = ring_dev_spin_window(r, spin_ns);
			r->spinning = window != 0;
			worked = false;
			continue;
		}
		if (now - idle_since < window)
			continue;

		ring_count(window ? &r->idle_spins : &r->idle_sleeps_at_once);
		ret = ring_dev_idle(r, fn, ctx);
		if (ret < 0)
			return ret;
		if (ring_dev_should_return(r))
			return 0;
		/* Woken by the doorbell, the device finds the work within the
		 * next passes and chooses the window again then; after the
		 * backstop timeout (or a wake-up with nothing to do) it sleeps
		 * again at the next check: an idle device does not spin. */
		if (ret > 0)
			worked = true;
		idle_since = last = ring_now_ns();
		window = 0;
		r->spinning = false;
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

void ipc_ring_get_stats(const struct ipc_ring *r, struct ipc_ring_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (unsigned i = 0; i < r->nslots; i++) {
		const struct ring_emt_slot *e = &r->emt[i];

		st->calls += ring_counter_get(&e->calls);
		st->posted += ring_counter_get(&e->posted);
		st->full_waits += ring_counter_get(&e->full_waits);
		st->waits_spun += ring_counter_get(&e->waits_spun);
		st->sleeps_dev_asleep += ring_counter_get(&e->sleeps_dev_asleep);
		st->sleeps_dev_stalled +=
			ring_counter_get(&e->sleeps_dev_stalled);
		st->sleeps_spin_limit += ring_counter_get(&e->sleeps_spin_limit);
	}
	st->answered = ring_counter_get(&r->answered);
	st->emt_wakes = ring_counter_get(&r->emt_wakes);
	st->idle_spins = ring_counter_get(&r->idle_spins);
	st->idle_sleeps_at_once = ring_counter_get(&r->idle_sleeps_at_once);
	st->probes = ring_counter_get(&r->probes);
	st->preempted = ring_counter_get(&r->preempted);
}

bool ipc_ring_dev_asleep(const struct ipc_ring *r)
{
	return atomic_load(&r->hdr->dev_sleeping) != 0;
}

bool ipc_ring_emt_asleep(const struct ipc_ring *r, unsigned slot)
{
	return slot < r->nslots &&
	       atomic_load(&r->slots[slot].emt_sleeping) != 0;
}
