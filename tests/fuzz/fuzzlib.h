/* SPDX-License-Identifier: MIT */
/*
 * fuzzlib: what the fuzz harnesses in tests/fuzz/ share.
 *
 * Each harness (tests/fuzz/fuzz-<target>.c) holds only the libFuzzer entry
 * point and hands the input to one function here, which feeds it to the
 * real parser or device core. The same harness is built twice: with clang
 * and -fsanitize=fuzzer,address,undefined for `make fuzz`, and with the
 * ordinary compiler, linked to tests/fuzz/replay.c, for `make check`, which
 * replays the stored corpus (tests/fuzz/corpus/<target>/).
 *
 * Contents:
 *  - fz_in: reading the input; every read succeeds and yields zeros once
 *    the input is used up, so any byte string is a valid input;
 *  - device operations: the byte format that drives a device core (port
 *    and MMIO accesses, timer ticks, guest-memory contents, backend input,
 *    doorbells, lifecycle, saved state). The in-process device harnesses
 *    and the whole-process driver (bulkhead-devdrive) read the same format,
 *    so their corpora are interchangeable;
 *  - a fake device host: guest RAM for DMA, a virtual clock with timers,
 *    an in-memory disk, deterministic entropy, and checks of the device
 *    interface contract (dev.h) that abort when a core breaks it;
 *  - frames: the byte format that drives a receiver's dispatch tables
 *    (type, payload, and which kinds of fd ride along);
 *  - entry points for the harnesses that reach static code (the dispatch
 *    tables of the worker, devhost and broker) through tests/fuzz/tap-*.c.
 */
#ifndef BULKHEAD_FUZZLIB_H
#define BULKHEAD_FUZZLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device-procs/devhost/dev.h"

/* The libFuzzer entry points (declared here for -Wmissing-prototypes). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Abort with a message when a checked contract does not hold: the fuzzer
 * reports it as a crash, with the message above the stack trace. */
#define FZ_CHECK(cond, ...)                                                  \
	do {                                                                 \
		if (!(cond))                                                 \
			fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);     \
	} while (0)
void fz_fail(const char *file, int line, const char *cond, const char *fmt,
	     ...) __attribute__((noreturn, format(printf, 4, 5)));

/* Quiet the project's logging (harnesses log nothing unless FUZZ_VERBOSE
 * is set in the environment). Call again after code that may change the
 * log level. */
void fz_quiet(void);

/* ---- reading the input ------------------------------------------------- */

struct fz_in {
	const uint8_t *p;
	size_t n;
};

static inline void fz_in_init(struct fz_in *in, const uint8_t *data,
			      size_t size)
{
	in->p = data;
	in->n = size;
}

static inline bool fz_done(const struct fz_in *in)
{
	return in->n == 0;
}

uint8_t fz_u8(struct fz_in *in);
uint16_t fz_u16(struct fz_in *in);   /* little-endian */
uint32_t fz_u32(struct fz_in *in);
uint64_t fz_u64(struct fz_in *in);
/* nbytes (0..8) little-endian bytes as a number. */
uint64_t fz_uint(struct fz_in *in, unsigned nbytes);
/* Up to max bytes, pointing into the input; returns how many. */
size_t fz_bytes(struct fz_in *in, size_t max, const uint8_t **out);

/* ---- device operations ------------------------------------------------- */

/*
 * An input for a device is one configuration byte, then operations until
 * the input ends. Each operation starts with a byte: its low 4 bits pick
 * the operation (reads and writes have several codes, so they are the
 * most common), its high 4 bits are the operation's small argument `a`.
 *
 *   code      operation  a (high nibble)          then
 *   0-3       READ       bits 0-1 region,         u16 offset
 *                        bits 2-3 log2(len)
 *   4-8       WRITE      as READ                  u16 offset, len bytes
 *   9         TICK       scale s                  u16 v; clock += v << 2s ns
 *   10        MEM        bits 0-3 of the address  u16 low address bits,
 *                        above bit 16             u8 n, n bytes (DMA data)
 *   11        INPUT      -                        u8 n, n bytes of backend
 *                                                 input (what fits, as the
 *                                                 devhost does)
 *   12        NOTIFY     doorbell index           -
 *   13        RESET (a even), LIFECYCLE (a odd: (a >> 1) & 3 picks
 *             power_on, suspend, resume, power_off)
 *   14        SAVE_LOAD  a % 3: the dirty-page    save, load it back, save
 *                        mode of the save (whole- again: both saves equal
 *                        process mode only)
 *   15        LOAD       added to the state       u16 n, n bytes of hostile
 *                        version (0: the          saved state; a refused
 *                        device's own)            state leaves the device
 *                                                 as it was
 *
 * In the whole-process mode (bulkhead-devdrive) time is real: a TICK
 * sleeps, at most 1 ms each and 20 ms a run; RESET and LIFECYCLE are
 * DevNotify messages, SAVE_LOAD and LOAD are DevSave and DevLoad.
 *
 * The offset is taken modulo the region's length: the devhost refuses
 * accesses outside a region before the core sees them, so the core is
 * only ever asked about offsets inside.
 *
 * Configuration byte: bit 0 readonly (block), bits 1-3 disk size in
 * 4 KiB steps (1 + v pages), bits 4-7 wall clock offset in days.
 */
enum fz_op_kind {
	FZ_OP_READ = 0,
	FZ_OP_WRITE,
	FZ_OP_TICK,
	FZ_OP_MEM,
	FZ_OP_INPUT,
	FZ_OP_NOTIFY,
	FZ_OP_RESET,
	FZ_OP_LIFECYCLE,
	FZ_OP_SAVE_LOAD,
	FZ_OP_LOAD,
};

enum fz_lifecycle { FZ_LC_POWER_ON = 0, FZ_LC_SUSPEND, FZ_LC_RESUME,
		    FZ_LC_POWER_OFF };

/* One decoded operation. */
struct fz_op {
	enum fz_op_kind kind;
	unsigned region;      /* READ, WRITE: region index (unchecked) */
	uint64_t off;         /* READ, WRITE: raw offset (u16) */
	unsigned len;         /* READ, WRITE: 1, 2, 4 or 8 */
	uint64_t data;        /* WRITE: value, little-endian */
	uint64_t ns;          /* TICK: how far the clock moves */
	uint64_t gpa;         /* MEM: guest-physical address */
	const uint8_t *bytes; /* MEM, INPUT, LOAD: the bytes, in the input */
	size_t nbytes;
	unsigned idx;         /* NOTIFY: doorbell; LIFECYCLE: enum fz_lifecycle;
			       * SAVE_LOAD: dirty mode; LOAD: version skew */
};

/* The configuration byte, decoded. */
struct fz_dev_cfg {
	bool readonly;
	uint64_t disk_size;   /* bytes */
	int64_t wall_offset;  /* seconds added to FZ_WALL_CLOCK_BASE */
};

#define FZ_WALL_CLOCK_BASE 1700000000ll  /* 2023-11-14, a fixed epoch */

void fz_dev_cfg_decode(uint8_t b, struct fz_dev_cfg *cfg);
/* The next operation; false once the input is used up. */
bool fz_op_next(struct fz_in *in, struct fz_op *op);
/* One line describing op, for bulkhead-devdrive --print. */
void fz_op_describe(const struct fz_op *op, char *buf, size_t len);

/* ---- the fake host and the device driver -------------------------------- */

/* Guest RAM the fake host offers for DMA: guest-physical 0 .. this. */
#define FZ_RAM_SIZE (64u * 1024u)
#define FZ_DISK_MAX (32u * 1024u)
/* Timer expiries handled per TICK at most (a device that re-arms in the
 * past would otherwise spin forever; a real host would fire as time runs). */
#define FZ_MAX_FIRINGS_PER_TICK 1024u

/*
 * Run one input against a device core: build it (dev_new_at with the
 * decoded configuration), play every operation, free it. Every violation
 * of the device contract aborts. Returns 0.
 */
int fz_dev_run(const struct dev_desc *desc, const uint8_t *data, size_t size);

/* ---- frames for dispatch tables ----------------------------------------- */

/* Kinds of fd a fuzzed frame may carry (what the real peers send). */
enum fz_fd_kind {
	FZ_FD_DEVNULL = 0,   /* /dev/null, read-write */
	FZ_FD_SOCKET,        /* one end of a SOCK_SEQPACKET pair */
	FZ_FD_RING,          /* a valid access-ring memfd (1 slot) */
	FZ_FD_EVENTFD,
	FZ_FD_MEMFD,         /* a sealed 2 MiB memfd, like guest RAM */
	FZ_FD_PIPE,          /* the read end of a pipe */
	FZ_FD_KINDS
};

#define FZ_FRAME_MAX_FDS 16u  /* IPC_MAX_FDS: ipc_send sends no more */
#define FZ_FRAMES_MAX 12u     /* frames per input at most */

/*
 * A frame input: one selector byte (the harness decides what it picks,
 * e.g. a phase), then frames until the input ends:
 *
 *   u8 t      t < 0xf0: the type is types[t % ntypes]; else u16 type
 *   u8 f      f & 0x1f fds follow (at most FZ_FRAME_MAX_FDS), one kind
 *             byte each (enum fz_fd_kind, modulo)
 *   u16 len   then len payload bytes (what is left, if less)
 */
struct fz_frame {
	uint16_t type;
	const uint8_t *payload;
	size_t len;
	uint8_t fd_kinds[FZ_FRAME_MAX_FDS];
	unsigned nfds;
};

/* A fresh fd of that kind (abort on failure). */
int fz_fd_new(enum fz_fd_kind kind);

bool fz_frame_next(struct fz_in *in, const uint16_t *types, unsigned ntypes,
		   struct fz_frame *f);
/*
 * Send f on sock with the real ipc_send(), with a fresh fd of each kind
 * (closed here once in flight). Returns ipc_send's result.
 */
int fz_frame_send(int sock, const struct fz_frame *f);
/* Every message type in proto/msgtypes.h, for fz_frame_next. */
extern const uint16_t fz_all_types[];
extern const unsigned fz_all_ntypes;

/*
 * File-descriptor leak check: fz_fd_mark() counts the open fds,
 * fz_fd_check() aborts if the count changed (an fd opened since was left
 * open, or one opened before was closed). Call both in one harness run.
 */
void fz_fd_mark(void);
/* delta: the change the harness itself made (fz_pair_end's result). */
void fz_fd_check(const char *what, int delta);

/*
 * A SOCK_SEQPACKET pair kept from run to run (making one costs more than
 * the rest of a run): sv[0] is the harness's end, sv[1] the receiver's.
 * fz_pair_open() makes a new pair when the last one was used up (start
 * sv as {-1, -1}). After the run, fz_pair_end() with rx_open false (the
 * code under test closed sv[1]) closes sv[0] too; otherwise it drops what
 * is queued either way. Returns the fd count change it made (0 or -2).
 */
void fz_pair_open(int sv[2]);
int fz_pair_end(int sv[2], bool rx_open);

/* ---- harness bodies ----------------------------------------------------- */

/* tests/fuzz/fz-ipc.c: one datagram through ipc_recv and friends. */
int fz_ipc_frame_run(const uint8_t *data, size_t size);
/* tests/fuzz/fz-loader.c: emt_load_image. */
int fz_loader_run(const uint8_t *data, size_t size);
/* tests/fuzz/fz-ssm.c: the saved-state stream reader (and writer). */
int fz_ssm_run(const uint8_t *data, size_t size);

/* tests/fuzz/tap-*.c: the dispatch tables of each process, reached by
 * compiling the process's source into the tap (they are static). */

int fz_worker_dispatch(const uint8_t *data, size_t size);
int fz_devhost_dispatch(const uint8_t *data, size_t size);
int fz_daemon_dispatch(const uint8_t *data, size_t size);
/* tests/fuzz/fz-brkvm.c: the broker's table for what a worker sends. */
int fz_broker_dispatch(const uint8_t *data, size_t size);

#endif
