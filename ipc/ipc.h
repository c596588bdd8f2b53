/* SPDX-License-Identifier: MIT */
/*
 * ipc: channels between Bulkhead processes and the shared-memory access ring.
 *
 * Channels are SOCK_SEQPACKET sockets. One frame is one datagram:
 *
 *   u32 payload length (little-endian) | u16 type (little-endian) | payload
 *
 * with at most IPC_MAX_PAYLOAD payload bytes and at most IPC_MAX_FDS file
 * descriptors attached as SCM_RIGHTS. A frame whose length field disagrees
 * with the datagram, that is truncated or oversized, or that carries more fds
 * than allowed is a protocol error: the receiver closes the channel.
 *
 * Receivers dispatch through a per-phase table (OpenSSH monitor style): a
 * type not in the table, or not permitted, or a ONCE type seen twice, closes
 * the channel.
 *
 * The access ring carries register accesses (port I/O, MMIO) from EMTs to a
 * device process: one slot per vCPU in a shared memfd, each a queue of
 * IPC_RING_DEPTH accesses, so that writes the guest cannot observe can be
 * posted without waiting. Each side spins only while it sees the other
 * running (a heartbeat in the shared page) and otherwise sleeps on a futex
 * at once. No syscalls on the fast path.
 */
#ifndef BULKHEAD_IPC_H
#define BULKHEAD_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#define IPC_HDR_SIZE 6u
#define IPC_MAX_PAYLOAD (64u * 1024u)
#define IPC_MAX_FRAME (IPC_HDR_SIZE + IPC_MAX_PAYLOAD)
/* Devices per VM: the worker and the broker size their tables by it. */
#define IPC_MAX_DEVICES 16u
/* fds per frame: WorkerInit's five and a channel and a ring per device,
 * with room to spare (the kernel allows 253, SCM_MAX_FD). */
#define IPC_MAX_FDS (8u + 2u * IPC_MAX_DEVICES)

struct ipc_chan {
	int fd;           /* the SOCK_SEQPACKET socket, -1 once closed */
	char peer[32];    /* who is on the other end, for messages */
};

/* One received frame. fds are owned by the message until taken. */
struct ipc_msg {
	uint16_t type;
	uint32_t len;
	int fds[IPC_MAX_FDS];
	unsigned nfds;
	uint8_t payload[IPC_MAX_PAYLOAD];
};

/* Wrap an existing socket. Takes ownership of fd. */
void ipc_chan_init(struct ipc_chan *c, int fd, const char *peer);
/* Close the socket (idempotent). */
void ipc_chan_close(struct ipc_chan *c);
/* A connected SOCK_SEQPACKET | SOCK_CLOEXEC pair. */
int ipc_chan_pair(int fds[2]);

/*
 * Send one frame. Returns 0, -EMSGSIZE if len > IPC_MAX_PAYLOAD or
 * nfds > IPC_MAX_FDS, -EPIPE if the peer has gone, -EBADF if c is closed,
 * or another -errno. Never raises SIGPIPE.
 */
int ipc_send(struct ipc_chan *c, uint16_t type, const void *payload,
	     size_t len, const int *fds, unsigned nfds);
/* Pack a protobuf-c message and send it (-EMSGSIZE if it packs too big). */
int ipc_send_pb(struct ipc_chan *c, uint16_t type,
		const ProtobufCMessage *pb, const int *fds, unsigned nfds);

/*
 * Receive one frame into *m (blocking unless the socket is non-blocking).
 * Returns 0; -ECONNRESET on orderly close by the peer (EOF); -EAGAIN if
 * non-blocking and nothing is queued; -EPROTO on a malformed frame
 * (truncated, oversized, length mismatch, too many fds, control data that is
 * not SCM_RIGHTS). On -EPROTO every fd that arrived is closed and the
 * channel is closed too (one line is logged naming c->peer). -EBADF if c
 * is already closed. Received fds are close-on-exec. m->fds beyond m->nfds
 * are -1.
 */
int ipc_recv(struct ipc_chan *c, struct ipc_msg *m);
/* Close every fd still held by m (those not taken with ipc_msg_take_fd). */
void ipc_msg_close_fds(struct ipc_msg *m);
/* Take fd i out of m (m no longer closes it); -1 if i >= nfds. */
int ipc_msg_take_fd(struct ipc_msg *m, unsigned i);

/*
 * Unpack m's payload as the given protobuf message type; NULL if invalid.
 * Free with protobuf_c_message_free_unpacked(msg, NULL).
 */
void *ipc_msg_unpack(const struct ipc_msg *m,
		     const ProtobufCMessageDescriptor *desc);

/*
 * Protocol tables, one per receiver and phase (OpenSSH monitor style): each
 * message type a peer may send is one row, naming its payload's protobuf
 * message, its handler, how many fds it may carry and, for the receiver's
 * own check, who may send it and in which states. ipc_dispatch() does the
 * rest for every row alike: the lookup, the ONCE book-keeping, the fd
 * count, the unpacking and freeing, and the check.
 */
#define IPC_PERMIT 0x1u  /* the type is accepted in this phase */
#define IPC_ONCE 0x2u    /* accepted at most once per ipc_phase_state */
#define IPC_KEEP 0x4u    /* the handler takes the unpacked message: it frees
			  * it (protobuf_c_message_free_unpacked), or keeps it */

struct ipc_msg;
struct ipc_handler;
/* A row's handler: pb is the unpacked payload (desc's message), owned by
 * ipc_dispatch; fds stay in m until taken with ipc_msg_take_fd. */
typedef int (*ipc_handler_fn)(void *ctx, const void *pb, struct ipc_msg *m);
/* Before the handler, for every row of the phase: 0 goes on, 1 refused
 * (the check has answered the peer; the channel stays), < 0 a protocol
 * error (the channel is closed). */
typedef int (*ipc_check_fn)(void *ctx, const struct ipc_handler *h,
			    const void *pb, struct ipc_msg *m);

struct ipc_handler {
	uint16_t type;
	unsigned flags;                /* IPC_PERMIT, IPC_ONCE */
	const char *name;              /* the verb, for messages ("pause") */
	/* The payload's message; NULL: the payload is not looked at. */
	const ProtobufCMessageDescriptor *desc;
	ipc_handler_fn fn;
	unsigned max_fds;              /* more fds close the channel */
	unsigned who;                  /* the receiver's: who may send it */
	unsigned when;                 /* the receiver's: in which states */
};

struct ipc_phase {
	const char *name;              /* for error messages */
	const struct ipc_handler *tab;
	unsigned n;                    /* at most 64 entries */
	ipc_check_fn check;            /* NULL: none */
	/* NULL, or told why a frame closes the channel, before it closes
	 * (to tell the peer): "unknown", "not permitted", ... */
	void (*refuse)(void *ctx, const struct ipc_msg *m, const char *why);
};

#define IPC_TAB(t) (t), sizeof(t) / sizeof((t)[0])

/* Book-keeping for ONCE entries; zero-initialise, reset per phase. */
struct ipc_phase_state {
	uint64_t seen;  /* bit i set: tab[i] already used */
};

/*
 * Look m->type up in the phase table and run its row. Returns the
 * handler's result (or the check's, see ipc_check_fn); -EPROTO (and logs
 * one line naming c->peer, the phase and the type, closes m's fds and
 * closes c) if the type is unknown, not permitted (no IPC_PERMIT or no
 * handler), a ONCE type already seen (a ONCE entry counts as seen before
 * its handler runs; st NULL refuses ONCE entries), carries more than
 * max_fds fds, or does not unpack as desc. A handler returning a negative
 * value is passed through; the caller decides whether that closes the
 * channel.
 */
int ipc_dispatch(struct ipc_chan *c, const struct ipc_phase *ph,
		 struct ipc_phase_state *st, void *ctx, struct ipc_msg *m);

/* ---- access ring ------------------------------------------------------ */

#define IPC_RING_MAX_SLOTS 64u
/* Accesses one slot holds: posted writes in flight, plus one call. */
#define IPC_RING_DEPTH 16u

enum ipc_space { IPC_SPACE_PIO = 0, IPC_SPACE_MMIO = 1 };

/* Flags a device may set on its answer. */
/* The device asked for the VM to end (debug-exit): the vCPU stops, and the
 * answer's data is the exit code, in its low 32 bits. */
#define IPC_ACC_F_STOP 0x1u
#define IPC_ACC_STOP_CODE_MASK 0xffffffffull

/* One register access, as the EMT posts it and the device answers it. */
struct ipc_access {
	uint8_t space;    /* enum ipc_space */
	uint8_t write;    /* 1: write, 0: read */
	uint8_t len;      /* 1, 2, 4 or 8 */
	uint8_t region;   /* index of the device's region */
	uint32_t flags;   /* answer flags, IPC_ACC_F_* (device -> EMT) */
	uint64_t addr;    /* absolute port or guest-physical address */
	uint64_t off;     /* offset within the region */
	uint64_t data;    /* write data, or read result (little-endian value) */
};

struct ipc_ring;

/* Bytes of shared memory a ring with nslots slots needs (page multiple). */
size_t ipc_ring_size(unsigned nslots);
/*
 * Create a sealed memfd holding an initialised ring with nslots slots.
 * Returns the fd (>= 0) or -errno. Called by the broker.
 */
int ipc_ring_create(unsigned nslots, const char *name);
/*
 * Map a ring from its memfd and validate its header (magic, version, slot
 * count, size against the fd's size) and its seals (F_SEAL_SHRINK and
 * F_SEAL_GROW, so the other side cannot fault us by resizing it). Either
 * side. The fd is not consumed. -EINVAL if anything does not match. The
 * slot count is copied at map time; later changes to the shared header are
 * ignored.
 */
int ipc_ring_map(int memfd, struct ipc_ring **out);
void ipc_ring_unmap(struct ipc_ring *r);
unsigned ipc_ring_nslots(const struct ipc_ring *r);

/*
 * EMT side: post *a on slot (the vCPU id), wait for the answer and copy it
 * back into *a. Returns 0, -EINVAL if slot >= nslots, or -EPIPE if the ring
 * was shut down (device gone) before or while waiting. Only one thread may
 * use a given slot. The device is not trusted: for a read, only data
 * (masked to len bytes) is copied back; for a write, data is left alone;
 * flags is masked to the known IPC_ACC_F_* bits.
 */
int ipc_ring_call(struct ipc_ring *r, unsigned slot, struct ipc_access *a);
/*
 * EMT side: a posted write. Queue the write *a on slot and return without
 * waiting for the device, unless the slot's queue is full (then wait for
 * room first). The device handles a slot's accesses in the order they were
 * queued, so a later ipc_ring_call() on the same slot is answered after
 * every write posted before it. The answer (flags included) is never read:
 * only for writes whose effect the guest cannot observe except through
 * later accesses to the same device. 0, -EINVAL (not a write, bad slot) or
 * -EPIPE.
 */
int ipc_ring_post(struct ipc_ring *r, unsigned slot,
		  const struct ipc_access *a);
/* EMT side: wait until the device has handled everything queued on slot.
 * 0, -EINVAL or -EPIPE. */
int ipc_ring_drain(struct ipc_ring *r, unsigned slot);
/* EMT side: something queued on slot is not handled yet. */
bool ipc_ring_pending(const struct ipc_ring *r, unsigned slot);

/*
 * Device side: serve accesses until ipc_ring_shutdown() or ipc_ring_stop().
 * handler fills a->data for reads and may set a->flags; its return value is
 * ignored except that a negative one stops serving and is returned (that
 * access is left unanswered; its EMT waits until ipc_ring_shutdown()).
 * Each slot's accesses are handled in the order they were queued. After
 * the last access it spins for up to spin_ns before sleeping on the futex,
 * but only while its EMTs are seen spinning for their answers; when they
 * have had to be woken, it sleeps as soon as it is idle (ring.c).
 * Only one thread may serve a ring.
 */
typedef int (*ipc_ring_handler_fn)(void *ctx, unsigned slot,
				   struct ipc_access *a);
int ipc_ring_serve(struct ipc_ring *r, ipc_ring_handler_fn fn, void *ctx,
		   uint64_t spin_ns);
/*
 * Make ipc_ring_serve return 0 (device side, e.g. at destruct). Affects only
 * this mapping, and is sticky: a later ipc_ring_serve returns at once.
 */
void ipc_ring_stop(struct ipc_ring *r);
/*
 * Mark the ring dead and wake every waiter on both sides: pending and future
 * ipc_ring_call()s return -EPIPE, ipc_ring_serve() returns 0. Used by the
 * worker when the device process dies.
 */
void ipc_ring_shutdown(struct ipc_ring *r);
bool ipc_ring_is_dead(const struct ipc_ring *r);
/* The device side is asleep on the doorbell (for tests and diagnostics;
 * read from the shared page, so a hostile device may lie). */
bool ipc_ring_dev_asleep(const struct ipc_ring *r);
/* The EMT of slot is asleep waiting for an answer (likewise). */
bool ipc_ring_emt_asleep(const struct ipc_ring *r, unsigned slot);

/*
 * What this mapping's side did: the EMT side's counters summed over the
 * slots, the device side's from ipc_ring_serve(). Counted, never timed.
 */
struct ipc_ring_stats {
	/* EMT side */
	uint64_t calls;              /* ipc_ring_call() */
	uint64_t posted;             /* ipc_ring_post() */
	uint64_t full_waits;         /* posts that waited for room */
	uint64_t waits_spun;         /* waits that ended while spinning */
	uint64_t sleeps_dev_asleep;  /* slept at once: the device was asleep */
	uint64_t sleeps_dev_stalled; /* slept: the device's heartbeat stopped */
	uint64_t sleeps_spin_limit;  /* slept: spun for the longest allowed */
	/* device side */
	uint64_t answered;           /* accesses handled */
	uint64_t emt_wakes;          /* answers that had to wake their EMT */
	uint64_t idle_spins;         /* idle periods spun before sleeping */
	uint64_t idle_sleeps_at_once;/* idle periods slept without spinning */
	uint64_t probes;             /* spins tried while not spinning */
	uint64_t preempted;          /* spins cut short: taken off the CPU */
};
void ipc_ring_get_stats(const struct ipc_ring *r, struct ipc_ring_stats *st);

#endif
