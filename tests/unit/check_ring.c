/* SPDX-License-Identifier: MIT */
/*
 * The access ring: create/map validation, round trips between threads and
 * between processes, the futex sleep and wake paths, stop and shutdown,
 * posted writes (order, room, wake-ups) and the heartbeat (nobody spins for
 * a peer that is asleep or not running). Behaviour is asserted from the
 * ring's counters and states, never from how long something took.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipc/ipc.h"
#include "tests/unit/suites.h"

#define R_SPIN_NS 50000u   /* device spin in most tests: 50 us */

static uint64_t r_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void r_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* What the test device answers to a read: depends on all three inputs. */
static uint64_t r_answer(uint64_t addr, uint64_t data, unsigned slot)
{
	return (addr * UINT64_C(0x9e3779b97f4a7c15)) ^ (data + 0x1234567) ^
	       ((uint64_t)slot << 56);
}

struct r_dev {
	atomic_ulong served;
	atomic_ulong writes;
	unsigned delay_us;        /* answer slowly (EMT sleep path) */
	bool hostile;             /* answer with out-of-range garbage */
	int fail_at;              /* return -EIO on this access (1-based) */
};

static int r_handler(void *ctx, unsigned slot, struct ipc_access *a)
{
	struct r_dev *d = ctx;
	unsigned long n = atomic_fetch_add(&d->served, 1) + 1;

	if (d->fail_at && n == (unsigned long)d->fail_at)
		return -EIO;
	if (d->delay_us)
		usleep(d->delay_us);
	if (d->hostile) {
		a->data = ~UINT64_C(0);
		a->flags = ~0u;
		return 0;
	}
	if (a->write) {
		atomic_fetch_add(&d->writes, 1);
		/* A write to 0xdead stops the VM with this code in the low
		 * 32 bits; any other write's data must not reach the EMT. */
		a->data = a->addr == 0xdead ? 0x1234500000042ull : 0xdeadbeef;
		a->flags = a->addr == 0xdead ? IPC_ACC_F_STOP : 0;
		return 0;
	}
	a->data = r_answer(a->addr, a->data, slot);
	a->flags = a->addr == 0xdead ? IPC_ACC_F_STOP : 0;
	return 0;
}

/* A device thread: ipc_ring_serve() with the given handler. */
struct r_server {
	pthread_t tid;
	struct ipc_ring *r;
	ipc_ring_handler_fn fn;
	void *ctx;
	uint64_t spin_ns;
	int ret;
	atomic_bool done;
};

static void *r_server_main(void *arg)
{
	struct r_server *s = arg;

	s->ret = ipc_ring_serve(s->r, s->fn, s->ctx, s->spin_ns);
	atomic_store(&s->done, true);
	return NULL;
}

static void r_server_run(struct r_server *s, struct ipc_ring *r,
			 ipc_ring_handler_fn fn, void *ctx, uint64_t spin_ns)
{
	s->r = r;
	s->fn = fn;
	s->ctx = ctx;
	s->spin_ns = spin_ns;
	s->ret = 1;
	atomic_init(&s->done, false);
	ck_assert_int_eq(pthread_create(&s->tid, NULL, r_server_main, s), 0);
}

static void r_server_start(struct r_server *s, struct ipc_ring *r,
			   struct r_dev *dev, uint64_t spin_ns)
{
	r_server_run(s, r, r_handler, dev, spin_ns);
}

/* Join, but fail rather than hang if the server does not return. */
static int r_server_join(struct r_server *s, unsigned timeout_ms)
{
	uint64_t end = r_now_ns() + (uint64_t)timeout_ms * 1000000u;

	while (!atomic_load(&s->done)) {
		ck_assert_msg(r_now_ns() < end,
			      "ipc_ring_serve did not return");
		r_sleep_ms(1);
	}
	ck_assert_int_eq(pthread_join(s->tid, NULL), 0);
	return s->ret;
}

static struct ipc_access r_read(uint64_t addr, uint64_t data)
{
	struct ipc_access a = {
		.space = IPC_SPACE_MMIO, .write = 0, .len = 8,
		.addr = addr, .off = addr & 0xfff, .data = data,
	};

	return a;
}

/* Fixture: a fresh 4-slot ring, mapped twice (EMT side, device side). */
static int r_fd = -1;
static struct ipc_ring *r_emt, *r_devr;

static void r_setup(void)
{
	r_fd = ipc_ring_create(4, "check-ring");
	ck_assert_int_ge(r_fd, 0);
	ck_assert_int_eq(ipc_ring_map(r_fd, &r_emt), 0);
	ck_assert_int_eq(ipc_ring_map(r_fd, &r_devr), 0);
}

static void r_teardown(void)
{
	ipc_ring_unmap(r_emt);
	ipc_ring_unmap(r_devr);
	close(r_fd);
}

/* ---- create and map ---------------------------------------------------- */

START_TEST(test_ring_size)
{
	for (unsigned n = 1; n <= IPC_RING_MAX_SLOTS; n++) {
		size_t sz = ipc_ring_size(n);

		ck_assert_uint_eq(sz % 4096, 0);
		ck_assert_uint_ge(sz, 4096 + n * 64);
	}
}
END_TEST

START_TEST(test_ring_create_nslots)
{
	int fd;

	ck_assert_int_eq(ipc_ring_create(0, "r"), -EINVAL);
	ck_assert_int_eq(ipc_ring_create(IPC_RING_MAX_SLOTS + 1, "r"), -EINVAL);
	ck_assert_int_eq(ipc_ring_create(1000, "r"), -EINVAL);
	for (unsigned n = 1; n <= IPC_RING_MAX_SLOTS; n += 21) {
		struct ipc_ring *r;

		fd = ipc_ring_create(n, "r");
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
		ck_assert_int_eq(lseek(fd, 0, SEEK_END),
				 (off_t)ipc_ring_size(n));
		/* Sealed: nobody can resize it under the other side. */
		ck_assert_int_lt(ftruncate(fd, 0), 0);
		ck_assert_int_lt(ftruncate(fd, (off_t)ipc_ring_size(n) * 2), 0);
		ck_assert_int_eq(ipc_ring_map(fd, &r), 0);
		ck_assert_uint_eq(ipc_ring_nslots(r), n);
		ck_assert(!ipc_ring_is_dead(r));
		ipc_ring_unmap(r);
		close(fd);
	}
}
END_TEST

/*
 * A copy of a valid ring's header with one 32-bit field replaced, in a new
 * memfd of `size` bytes, optionally sealed. The header layout is private to
 * ring.c; these offsets (magic 0, version 8, nslots 12, size 16) are what
 * the test pokes at, and the "valid" case below guards them.
 */
static int r_forge(size_t off, uint32_t val, bool patch, size_t size,
		   bool seal)
{
	char page[4096];
	int good, fd;

	good = ipc_ring_create(2, "good");
	ck_assert_int_ge(good, 0);
	ck_assert_int_eq(pread(good, page, sizeof(page), 0), sizeof(page));
	close(good);
	if (patch)
		memcpy(page + off, &val, sizeof(val));
	fd = memfd_create("forged", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	ck_assert_int_eq(pwrite(fd, page, sizeof(page), 0), sizeof(page));
	if (seal)
		ck_assert_int_eq(fcntl(fd, F_ADD_SEALS,
				       F_SEAL_SHRINK | F_SEAL_GROW), 0);
	return fd;
}

static int r_try_map(int fd)
{
	struct ipc_ring *r = NULL;
	int ret = ipc_ring_map(fd, &r);

	if (ret == 0) {
		ck_assert_ptr_nonnull(r);
		ipc_ring_unmap(r);
	} else {
		ck_assert_ptr_null(r);
	}
	close(fd);
	return ret;
}

START_TEST(test_ring_map_validation)
{
	size_t sz = ipc_ring_size(2);
	int p[2];

	/* The forging itself is sound: an unmodified copy maps. */
	ck_assert_int_eq(r_try_map(r_forge(0, 0, false, sz, true)), 0);
	/* Bad magic, bad version. */
	ck_assert_int_eq(r_try_map(r_forge(0, 0x12345678, true, sz, true)),
			 -EINVAL);
	ck_assert_int_eq(r_try_map(r_forge(8, 99, true, sz, true)), -EINVAL);
	/* Slot count 0, or beyond the maximum. */
	ck_assert_int_eq(r_try_map(r_forge(12, 0, true, sz, true)), -EINVAL);
	ck_assert_int_eq(r_try_map(r_forge(12, IPC_RING_MAX_SLOTS + 1, true, sz,
					   true)), -EINVAL);
	ck_assert_int_eq(r_try_map(r_forge(12, 0xffffffffu, true, sz, true)),
			 -EINVAL);
	/* Size field disagrees with the file. */
	ck_assert_int_eq(r_try_map(r_forge(16, (uint32_t)sz * 2, true, sz,
					   true)), -EINVAL);
	/* File size disagrees with the header (bigger, smaller, tiny). */
	ck_assert_int_eq(r_try_map(r_forge(0, 0, false, sz + 4096, true)),
			 -EINVAL);
	ck_assert_int_eq(r_try_map(r_forge(0, 0, false, 4096, true)), -EINVAL);
	/* Not sealed against shrinking: the other side could fault us. */
	ck_assert_int_eq(r_try_map(r_forge(0, 0, false, sz, false)), -EINVAL);
	/* Not a memfd at all. */
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_lt(r_try_map(p[0]), 0);
	close(p[1]);
	ck_assert_int_lt(r_try_map(-1), 0);
}
END_TEST

START_TEST(test_ring_scribbled_header_after_map)
{
	uint32_t evil = 1000;

	/* The device rewrites nslots after the EMT side mapped: ignored. */
	ck_assert_int_eq(pwrite(r_fd, &evil, sizeof(evil), 12), sizeof(evil));
	ck_assert_uint_eq(ipc_ring_nslots(r_emt), 4);
	{
		struct ipc_access a = r_read(1, 2);

		ck_assert_int_eq(ipc_ring_call(r_emt, 4, &a), -EINVAL);
		ck_assert_int_eq(ipc_ring_call(r_emt, 999, &a), -EINVAL);
	}
	/* A new mapping now refuses it. */
	{
		struct ipc_ring *r;

		ck_assert_int_eq(ipc_ring_map(r_fd, &r), -EINVAL);
	}
}
END_TEST

struct r_shutter {
	pthread_t tid;
	struct ipc_ring *r;
	unsigned after_ms;
	uint64_t at_ns;
};

static void *r_shutter_main(void *arg)
{
	struct r_shutter *s = arg;

	r_sleep_ms(s->after_ms);
	s->at_ns = r_now_ns();
	ipc_ring_shutdown(s->r);
	return NULL;
}

/* ---- round trips ------------------------------------------------------- */

START_TEST(test_ring_single_round_trip)
{
	struct r_dev dev = { 0 };
	struct r_server srv;
	struct ipc_access a = r_read(0x3f8, 42);

	r_server_start(&srv, r_devr, &dev, R_SPIN_NS);
	ck_assert_int_eq(ipc_ring_call(r_emt, 2, &a), 0);
	ck_assert_uint_eq(a.data, r_answer(0x3f8, 42, 2));
	ck_assert_uint_eq(a.flags, 0);
	ck_assert_uint_eq(a.addr, 0x3f8);   /* the rest is left alone */
	ck_assert_uint_eq(atomic_load(&dev.served), 1);

	/* A write: counted by the device, data not overwritten. */
	a = r_read(0x3f8, 0x41);
	a.write = 1;
	a.len = 1;
	ck_assert_int_eq(ipc_ring_call(r_emt, 0, &a), 0);
	ck_assert_uint_eq(a.data, 0x41);
	ck_assert_uint_eq(atomic_load(&dev.writes), 1);

	/* Answer flags come through. */
	a = r_read(0xdead, 0);
	ck_assert_int_eq(ipc_ring_call(r_emt, 3, &a), 0);
	ck_assert_uint_eq(a.flags, IPC_ACC_F_STOP);
	/* A stopping write's answer carries the exit code, 32 bits of it. */
	a = r_read(0xdead, 7);
	a.write = 1;
	ck_assert_int_eq(ipc_ring_call(r_emt, 3, &a), 0);
	ck_assert_uint_eq(a.flags, IPC_ACC_F_STOP);
	ck_assert_uint_eq(a.data, 0x42);

	ipc_ring_stop(r_devr);
	ck_assert_int_eq(r_server_join(&srv, 2000), 0);
	/* stop is the device's business: the ring is not dead. */
	ck_assert(!ipc_ring_is_dead(r_emt));
}
END_TEST

START_TEST(test_ring_hostile_answer_masked)
{
	struct r_dev dev = { .hostile = true };
	struct r_server srv;
	struct ipc_access a;

	r_server_start(&srv, r_devr, &dev, R_SPIN_NS);
	for (unsigned len = 1; len <= 8; len *= 2) {
		a = r_read(0x60, 0);
		a.len = (uint8_t)len;
		ck_assert_int_eq(ipc_ring_call(r_emt, 1, &a), 0);
		ck_assert_uint_eq(a.data, len == 8 ? ~UINT64_C(0) :
				  (UINT64_C(1) << (8 * len)) - 1);
		/* Only the known flag bits come through. */
		ck_assert_uint_eq(a.flags, IPC_ACC_F_STOP);
	}
	/* A write answered with STOP: the data is an exit code, never more
	 * than 32 bits. */
	a = r_read(0x60, 0x5a);
	a.write = 1;
	ck_assert_int_eq(ipc_ring_call(r_emt, 1, &a), 0);
	ck_assert_uint_eq(a.data, 0xffffffffu);
	ipc_ring_stop(r_devr);
	ck_assert_int_eq(r_server_join(&srv, 2000), 0);
}
END_TEST

START_TEST(test_ring_handler_error_stops_serving)
{
	struct r_dev dev = { .fail_at = 2 };
	struct r_shutter sh = { .r = r_emt, .after_ms = 50 };
	struct r_server srv;
	struct ipc_access a = r_read(1, 1);

	r_server_start(&srv, r_devr, &dev, R_SPIN_NS);
	ck_assert_int_eq(ipc_ring_call(r_emt, 0, &a), 0);
	/* The second access makes the handler fail: serve returns that, */
	ck_assert_int_eq(pthread_create(&sh.tid, NULL, r_shutter_main, &sh),
			 0);
	a = r_read(2, 2);
	/* and the access stays unanswered until the ring is shut down. */
	ck_assert_int_eq(ipc_ring_call(r_emt, 0, &a), -EPIPE);
	ck_assert_int_eq(pthread_join(sh.tid, NULL), 0);
	ck_assert_int_eq(r_server_join(&srv, 1000), -EIO);
	ck_assert_uint_eq(atomic_load(&dev.served), 2);
}
END_TEST

#define R_THREAD_CALLS 100000u

START_TEST(test_ring_threads_many)
{
	struct r_dev dev = { 0 };
	struct r_server srv;

	r_server_start(&srv, r_devr, &dev, R_SPIN_NS);
	for (unsigned i = 0; i < R_THREAD_CALLS; i++) {
		struct ipc_access a = r_read(0x1000 + i, i * 3u);
		unsigned slot = i & 3;

		ck_assert_int_eq(ipc_ring_call(r_emt, slot, &a), 0);
		ck_assert_uint_eq(a.data, r_answer(0x1000 + i, i * 3u, slot));
	}
	ck_assert_uint_eq(atomic_load(&dev.served), R_THREAD_CALLS);
	ipc_ring_shutdown(r_emt);
	ck_assert_int_eq(r_server_join(&srv, 2000), 0);
}
END_TEST

struct r_caller {
	pthread_t tid;
	struct ipc_ring *r;
	unsigned slot;
	unsigned calls;
	unsigned bad;      /* wrong answers */
	int err;           /* first error */
	unsigned gap_ms;   /* pause before each call */
	uint64_t max_ns;   /* slowest call */
	uint64_t sum_ns;
};

static void *r_caller_main(void *arg)
{
	struct r_caller *c = arg;

	for (unsigned i = 0; i < c->calls; i++) {
		uint64_t addr = ((uint64_t)c->slot << 32) | i;
		struct ipc_access a = r_read(addr, ~(uint64_t)i);
		uint64_t t0, dt;
		int ret;

		if (c->gap_ms)
			r_sleep_ms(c->gap_ms);
		t0 = r_now_ns();
		ret = ipc_ring_call(c->r, c->slot, &a);
		dt = r_now_ns() - t0;
		c->sum_ns += dt;
		if (dt > c->max_ns)
			c->max_ns = dt;
		if (ret < 0) {
			c->err = ret;
			break;
		}
		if (a.data != r_answer(addr, ~(uint64_t)i, c->slot))
			c->bad++;
	}
	return NULL;
}

/*
 * A device process: a child with its own mapping of the ring, serving it
 * with fn(ctx) until the ring is shut down. It exits 0, or 10 when it
 * cannot map the ring, 11 when ipc_ring_serve fails, or check(ctx) when
 * that is given and not 0. alarm_s bounds it.
 */
static pid_t r_fork_device(ipc_ring_handler_fn fn, void *ctx, uint64_t spin_ns,
			   int (*check)(void *ctx), unsigned alarm_s)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct ipc_ring *r;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(alarm_s);
		if (ipc_ring_map(r_fd, &r) < 0)
			_exit(10);
		if (ipc_ring_serve(r, fn, ctx, spin_ns) != 0)
			_exit(11);
		_exit(check ? check(ctx) : 0);
	}
	return pid;
}

/* Shut the ring down and see the device process exit cleanly. */
static void r_device_join(pid_t pid)
{
	int status;

	ipc_ring_shutdown(r_emt);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}

#define R_FORK_CALLS 30000u

/* The two-process device served every call of both callers. */
static int r_served_all(void *ctx)
{
	struct r_dev *dev = ctx;

	return atomic_load(&dev->served) == 2 * R_FORK_CALLS ? 0 : 12;
}

START_TEST(test_ring_two_processes)
{
	/* Static: the child's copy is the one that serves. */
	static struct r_dev dev;
	struct r_caller callers[2];
	pid_t pid;

	memset(&dev, 0, sizeof(dev));
	pid = r_fork_device(r_handler, &dev, R_SPIN_NS, r_served_all, 30);
	for (unsigned i = 0; i < 2; i++) {
		callers[i] = (struct r_caller){
			.r = r_emt, .slot = i * 3, .calls = R_FORK_CALLS,
		};
		ck_assert_int_eq(pthread_create(&callers[i].tid, NULL,
						r_caller_main, &callers[i]), 0);
	}
	for (unsigned i = 0; i < 2; i++) {
		ck_assert_int_eq(pthread_join(callers[i].tid, NULL), 0);
		ck_assert_int_eq(callers[i].err, 0);
		ck_assert_uint_eq(callers[i].bad, 0);
	}
	r_device_join(pid);
}
END_TEST

/* ---- sleeping and waking ----------------------------------------------- */

START_TEST(test_ring_wake_sleeping_device)
{
	struct r_dev dev = { 0 };
	struct r_server srv;
	struct r_caller c = {
		.r = r_emt, .slot = 1, .calls = 20, .gap_ms = 3,
	};

	/*
	 * The device spins 100 us, the caller waits 3 ms before each call:
	 * every call finds the device asleep on the doorbell. A lost wake
	 * would cost the device's 100 ms futex timeout per call.
	 */
	r_server_start(&srv, r_devr, &dev, 100000);
	r_caller_main(&c);
	ck_assert_int_eq(c.err, 0);
	ck_assert_uint_eq(c.bad, 0);
	ck_assert_uint_eq(atomic_load(&dev.served), 20);
	ck_assert_msg(c.sum_ns < UINT64_C(400) * 1000000u,
		      "20 calls to a sleeping device took %llu us",
		      (unsigned long long)(c.sum_ns / 1000));
	ipc_ring_stop(r_devr);
	ck_assert_int_eq(r_server_join(&srv, 2000), 0);
}
END_TEST

START_TEST(test_ring_wake_sleeping_emt)
{
	struct r_dev dev = { .delay_us = 2000 };
	struct r_server srv;
	struct r_caller c = { .r = r_emt, .slot = 0, .calls = 20 };

	/*
	 * The device takes 2 ms per access, far beyond the EMT's spin: the
	 * EMT sleeps on its slot and the device must wake it. A lost wake
	 * would cost the EMT's 50 ms futex timeout per call.
	 */
	r_server_start(&srv, r_devr, &dev, R_SPIN_NS);
	r_caller_main(&c);
	ck_assert_int_eq(c.err, 0);
	ck_assert_uint_eq(c.bad, 0);
	ck_assert_msg(c.sum_ns < UINT64_C(400) * 1000000u,
		      "20 slow calls took %llu us",
		      (unsigned long long)(c.sum_ns / 1000));
	ipc_ring_stop(r_devr);
	ck_assert_int_eq(r_server_join(&srv, 2000), 0);
}
END_TEST

/* A caller blocked on an unanswered access; shutdown via `via`. */
static void r_check_shutdown_wakes_caller(struct ipc_ring *via)
{
	struct r_shutter sh = { .r = via, .after_ms = 50 };
	struct ipc_access a = r_read(7, 7);
	uint64_t t0, t1;

	ck_assert_int_eq(pthread_create(&sh.tid, NULL, r_shutter_main, &sh),
			 0);
	/* Nobody serves the ring: only shutdown ends this call. */
	ck_assert_int_eq(ipc_ring_call(r_emt, 2, &a), -EPIPE);
	t1 = r_now_ns();
	ck_assert_int_eq(pthread_join(sh.tid, NULL), 0);
	/* Not before the shutdown, and promptly after it. */
	ck_assert_uint_ge(t1, sh.at_ns);
	ck_assert_msg(t1 - sh.at_ns < UINT64_C(40) * 1000000u,
		      "caller woke %llu us after shutdown",
		      (unsigned long long)((t1 - sh.at_ns) / 1000));
	ck_assert(ipc_ring_is_dead(r_emt));
	/* Later calls fail at once, on every slot. */
	a = r_read(8, 8);
	t0 = r_now_ns();
	ck_assert_int_eq(ipc_ring_call(r_emt, 0, &a), -EPIPE);
	ck_assert_int_eq(ipc_ring_call(r_emt, 3, &a), -EPIPE);
	ck_assert_uint_lt(r_now_ns() - t0, UINT64_C(10) * 1000000u);
}

START_TEST(test_ring_shutdown_wakes_caller)
{
	r_check_shutdown_wakes_caller(r_emt);
}
END_TEST

START_TEST(test_ring_shutdown_other_mapping_wakes_caller)
{
	/* Through the shared flag only: shut down from another mapping. */
	r_check_shutdown_wakes_caller(r_devr);
}
END_TEST

START_TEST(test_ring_shutdown_ends_serve)
{
	struct r_dev dev = { 0 };
	struct r_server srv;
	struct ipc_access a = r_read(5, 5);

	r_server_start(&srv, r_devr, &dev, 1000);
	ck_assert_int_eq(ipc_ring_call(r_emt, 0, &a), 0);
	r_sleep_ms(20);   /* long past the spin: asleep on the doorbell */
	ck_assert(!atomic_load(&srv.done));
	ipc_ring_shutdown(r_emt);
	ck_assert_int_eq(r_server_join(&srv, 50), 0);
	/* Serving a dead ring returns at once. */
	ck_assert_int_eq(ipc_ring_serve(r_devr, r_handler, &dev, 1000), 0);
}
END_TEST

START_TEST(test_ring_stop_ends_sleeping_serve)
{
	struct r_dev dev = { 0 };
	struct r_server srv;
	uint64_t t0;

	r_server_start(&srv, r_devr, &dev, 1000);
	r_sleep_ms(20);
	ck_assert(!atomic_load(&srv.done));
	t0 = r_now_ns();
	ipc_ring_stop(r_devr);
	ck_assert_int_eq(r_server_join(&srv, 50), 0);
	ck_assert_uint_lt(r_now_ns() - t0, UINT64_C(50) * 1000000u);
	ck_assert_uint_eq(atomic_load(&dev.served), 0);
	/* Stop is sticky: a later serve returns at once. */
	ck_assert_int_eq(ipc_ring_serve(r_devr, r_handler, &dev, 1000), 0);
	ck_assert(!ipc_ring_is_dead(r_emt));
}
END_TEST

START_TEST(test_ring_stop_ends_spinning_serve)
{
	struct r_dev dev = { 0 };
	struct r_server srv;

	/* A long spin: stop must be seen while spinning, not only asleep. */
	r_server_start(&srv, r_devr, &dev, UINT64_C(10) * 1000000000u);
	r_sleep_ms(5);
	ipc_ring_stop(r_devr);
	ck_assert_int_eq(r_server_join(&srv, 100), 0);
}
END_TEST

/* ---- posted writes ------------------------------------------------------ */

/* A device that logs what it sees, per slot, and answers a read with the
 * number of writes it has handled on that slot. It may hold every access
 * until a gate opens, or until its EMT is asleep. */
#define R_LOG_MAX 4096u

struct r_logdev {
	uint64_t log[IPC_RING_MAX_SLOTS][R_LOG_MAX];  /* addr | write << 63 */
	unsigned nlog[IPC_RING_MAX_SLOTS];
	uint64_t writes[IPC_RING_MAX_SLOTS];
	atomic_bool gate_closed;       /* hold accesses while set */
	struct ipc_ring *wait_emt_asleep;  /* hold until that EMT sleeps */
	atomic_ulong served;
};

static int r_log_handler(void *ctx, unsigned slot, struct ipc_access *a)
{
	struct r_logdev *d = ctx;
	uint64_t end = r_now_ns() + UINT64_C(5) * 1000000000u;

	while (atomic_load(&d->gate_closed) && r_now_ns() < end)
		usleep(100);
	while (d->wait_emt_asleep && !ipc_ring_emt_asleep(d->wait_emt_asleep,
							   slot) &&
	       r_now_ns() < end)
		usleep(100);
	if (d->nlog[slot] < R_LOG_MAX)
		d->log[slot][d->nlog[slot]++] =
			a->addr | ((uint64_t)a->write << 63);
	if (a->write)
		d->writes[slot]++;
	else
		a->data = d->writes[slot];
	atomic_fetch_add(&d->served, 1);
	return 0;
}

static void r_logserver_start(struct r_server *s, struct ipc_ring *r,
			      struct r_logdev *dev, uint64_t spin_ns)
{
	r_server_run(s, r, r_log_handler, dev, spin_ns);
}

/* Stop the device thread; it must return within 2 s, with 0. */
static void r_logserver_stop(struct r_server *s)
{
	ipc_ring_stop(s->r);
	ck_assert_int_eq(r_server_join(s, 2000), 0);
}

static struct ipc_access r_write(uint64_t addr, uint64_t data)
{
	struct ipc_access a = r_read(addr, data);

	a.write = 1;
	return a;
}

/* Wait (bounded) until cond(r) holds; false if it never did. */
static bool r_wait_until(bool (*cond)(const struct ipc_ring *),
			 const struct ipc_ring *r, unsigned timeout_ms)
{
	uint64_t end = r_now_ns() + (uint64_t)timeout_ms * 1000000u;

	while (!cond(r)) {
		if (r_now_ns() > end)
			return false;
		usleep(200);
	}
	return true;
}

START_TEST(test_ring_post_refuses_reads)
{
	struct ipc_access a = r_read(1, 1);

	ck_assert_int_eq(ipc_ring_post(r_emt, 0, &a), -EINVAL);
	a.write = 1;
	ck_assert_int_eq(ipc_ring_post(r_emt, 4, &a), -EINVAL);
	ck_assert_int_eq(ipc_ring_drain(r_emt, 4), -EINVAL);
	/* Nothing queued: draining is immediate, even with nobody serving. */
	ck_assert(!ipc_ring_pending(r_emt, 0));
	ck_assert_int_eq(ipc_ring_drain(r_emt, 0), 0);
}
END_TEST

START_TEST(test_ring_posted_writes_do_not_wait)
{
	static struct r_logdev dev;
	struct r_server srv;
	struct ipc_ring_stats st;
	struct ipc_access a;

	memset(&dev, 0, sizeof(dev));
	/* Nobody serves the ring yet: a queue's worth of posts returns. */
	for (unsigned i = 0; i < IPC_RING_DEPTH; i++) {
		a = r_write(0x100 + i, i);
		ck_assert_int_eq(ipc_ring_post(r_emt, 1, &a), 0);
	}
	ck_assert(ipc_ring_pending(r_emt, 1));
	ck_assert(!ipc_ring_pending(r_emt, 0));
	ipc_ring_get_stats(r_emt, &st);
	ck_assert_uint_eq(st.posted, IPC_RING_DEPTH);
	ck_assert_uint_eq(st.full_waits, 0);

	/* The device comes; a read after the writes sees all of them. */
	r_logserver_start(&srv, r_devr, &dev, R_SPIN_NS);
	a = r_read(0x999, 0);
	ck_assert_int_eq(ipc_ring_call(r_emt, 1, &a), 0);
	ck_assert_uint_eq(a.data, IPC_RING_DEPTH);
	ck_assert(!ipc_ring_pending(r_emt, 1));
	ck_assert_uint_eq(dev.nlog[1], IPC_RING_DEPTH + 1);
	for (unsigned i = 0; i < IPC_RING_DEPTH; i++)
		ck_assert_uint_eq(dev.log[1][i], (UINT64_C(1) << 63) | (0x100 + i));
	ck_assert_uint_eq(dev.log[1][IPC_RING_DEPTH], 0x999);
	r_logserver_stop(&srv);
}
END_TEST

/* Opens the device's gate once the EMT is waiting for room. */
struct r_gatekeeper {
	pthread_t tid;
	struct r_logdev *dev;
	bool saw_full_wait;
};

static void *r_gatekeeper_main(void *arg)
{
	struct r_gatekeeper *g = arg;
	uint64_t end = r_now_ns() + UINT64_C(5) * 1000000000u;
	struct ipc_ring_stats st;

	do {
		usleep(200);
		ipc_ring_get_stats(r_emt, &st);
	} while (st.full_waits == 0 && r_now_ns() < end);
	g->saw_full_wait = st.full_waits != 0;
	atomic_store(&g->dev->gate_closed, false);
	return NULL;
}

START_TEST(test_ring_posted_writes_wait_for_room_and_keep_order)
{
	static struct r_logdev dev;
	struct r_gatekeeper gk = { .dev = &dev };
	struct r_server srv;
	struct ipc_ring_stats st;
	struct ipc_access a;
	const unsigned n = 5 * IPC_RING_DEPTH + 3;

	memset(&dev, 0, sizeof(dev));
	atomic_store(&dev.gate_closed, true);
	r_logserver_start(&srv, r_devr, &dev, R_SPIN_NS);
	ck_assert_int_eq(pthread_create(&gk.tid, NULL, r_gatekeeper_main, &gk),
			 0);
	/* The device holds the first access: post DEPTH + 1 must wait. */
	for (unsigned i = 0; i < n; i++) {
		a = r_write(0x2000 + i, i);
		ck_assert_int_eq(ipc_ring_post(r_emt, 2, &a), 0);
	}
	ck_assert_int_eq(pthread_join(gk.tid, NULL), 0);
	ck_assert(gk.saw_full_wait);
	a = r_read(0x3000, 0);
	ck_assert_int_eq(ipc_ring_call(r_emt, 2, &a), 0);
	ck_assert_uint_eq(a.data, n);
	ck_assert_uint_eq(dev.nlog[2], n + 1);
	for (unsigned i = 0; i < n; i++)
		ck_assert_uint_eq(dev.log[2][i], (UINT64_C(1) << 63) | (0x2000 + i));
	/* And the drain after more posts: everything handled. */
	for (unsigned i = 0; i < 7; i++) {
		a = r_write(0x4000 + i, i);
		ck_assert_int_eq(ipc_ring_post(r_emt, 2, &a), 0);
	}
	ck_assert_int_eq(ipc_ring_drain(r_emt, 2), 0);
	ck_assert(!ipc_ring_pending(r_emt, 2));
	ck_assert_uint_eq(dev.writes[2], n + 7);
	ipc_ring_get_stats(r_emt, &st);
	ck_assert_uint_eq(st.posted, n + 7);
	ck_assert_uint_eq(st.calls, 1);
	r_logserver_stop(&srv);
}
END_TEST

static bool r_dev_is_asleep(const struct ipc_ring *r)
{
	return ipc_ring_dev_asleep(r);
}

START_TEST(test_ring_post_wakes_sleeping_device)
{
	static struct r_logdev dev;
	struct r_server srv;
	struct ipc_access a = r_write(0x77, 1);

	memset(&dev, 0, sizeof(dev));
	r_logserver_start(&srv, r_devr, &dev, 1000);
	ck_assert_msg(r_wait_until(r_dev_is_asleep, r_emt, 5000),
		      "the device never went to sleep");
	/* Nobody will ever wait for this write: the post itself must
	 * wake the device. */
	ck_assert_int_eq(ipc_ring_post(r_emt, 3, &a), 0);
	{
		uint64_t end = r_now_ns() + UINT64_C(5) * 1000000000u;

		while (atomic_load(&dev.served) == 0 && r_now_ns() < end)
			usleep(200);
	}
	ck_assert_uint_eq(atomic_load(&dev.served), 1);
	ck_assert_uint_eq(dev.writes[3], 1);
	r_logserver_stop(&srv);
}
END_TEST

/* ---- the heartbeat ------------------------------------------------------ */

START_TEST(test_ring_no_spin_for_sleeping_device)
{
	static struct r_logdev dev;
	struct r_server srv;
	struct ipc_ring_stats before, after;
	bool slept_at_once = false;

	memset(&dev, 0, sizeof(dev));
	/* Each answer waits until its EMT is asleep, so it cannot come
	 * before the EMT has decided how to wait. */
	dev.wait_emt_asleep = r_devr;
	r_logserver_start(&srv, r_devr, &dev, 1000);
	/*
	 * The device is asleep on the doorbell: the EMT rings it and sleeps
	 * at once instead of spinning. (A few tries: the device's 100 ms
	 * backstop timeout may wake it just as the call is made.)
	 */
	for (unsigned try = 0; try < 5 && !slept_at_once; try++) {
		struct ipc_access a = r_read(0x10 + try, 0);

		ck_assert_msg(r_wait_until(r_dev_is_asleep, r_emt, 5000),
			      "the device never went to sleep");
		ipc_ring_get_stats(r_emt, &before);
		ck_assert_int_eq(ipc_ring_call(r_emt, 0, &a), 0);
		ck_assert_uint_eq(a.data, 0);
		ipc_ring_get_stats(r_emt, &after);
		slept_at_once =
			after.sleeps_dev_asleep == before.sleeps_dev_asleep + 1 &&
			after.waits_spun == before.waits_spun &&
			after.sleeps_dev_stalled == before.sleeps_dev_stalled &&
			after.sleeps_spin_limit == before.sleeps_spin_limit;
	}
	ck_assert_msg(slept_at_once, "the EMT spun for a sleeping device");
	r_logserver_stop(&srv);
}
END_TEST

/* SIGCONTs the device process once the EMT has given up spinning. */
struct r_resumer {
	pthread_t tid;
	pid_t pid;
	struct ipc_ring_stats base;  /* the counters before the call */
	bool saw_stall;
};

static void *r_resumer_main(void *arg)
{
	struct r_resumer *rs = arg;
	uint64_t end = r_now_ns() + UINT64_C(5) * 1000000000u;
	struct ipc_ring_stats st;

	do {
		usleep(200);
		ipc_ring_get_stats(r_emt, &st);
	} while (st.sleeps_dev_stalled == rs->base.sleeps_dev_stalled &&
		 st.sleeps_spin_limit == rs->base.sleeps_spin_limit &&
		 r_now_ns() < end);
	rs->saw_stall = st.sleeps_dev_stalled != rs->base.sleeps_dev_stalled;
	kill(rs->pid, SIGCONT);
	return NULL;
}

/* Times to stop a spinning device before it is caught awake. */
#define R_AWAKE_TRIES 200u

START_TEST(test_ring_no_spin_for_stopped_device)
{
	struct r_resumer rs;
	struct ipc_ring_stats st0, st;
	struct ipc_access a;
	static struct r_dev dev;
	pid_t pid;
	int status;

	memset(&dev, 0, sizeof(dev));
	/* Spins for a minute after each access: asleep only if preempted. */
	pid = r_fork_device(r_handler, &dev, UINT64_C(60) * 1000000000u, NULL,
			    30);
	/* Stopped while spinning: it says it is awake, but its heartbeat
	 * stands still, and the EMT must sleep rather than spin. A device
	 * that finds itself preempted goes to sleep on its own, which a
	 * loaded host can make it do at any moment: stop it until it is
	 * caught awake (stopped, it cannot change its mind). */
	unsigned tries = 0;

	for (;;) {
		a = r_read(0x42, 1);
		ck_assert_int_eq(ipc_ring_call(r_emt, 1, &a), 0);
		ck_assert_uint_eq(a.data, r_answer(0x42, 1, 1));
		ck_assert_int_eq(kill(pid, SIGSTOP), 0);
		ck_assert_int_eq(waitpid(pid, &status, WUNTRACED), pid);
		ck_assert(WIFSTOPPED(status));
		if (!ipc_ring_dev_asleep(r_emt))
			break;
		ck_assert_msg(++tries < R_AWAKE_TRIES, "the spinning device was "
			      "asleep each of %u times it was stopped", tries);
		ck_assert_int_eq(kill(pid, SIGCONT), 0);
	}
	/* (The first call may have slept too, while the child started.) */
	ipc_ring_get_stats(r_emt, &st0);
	rs = (struct r_resumer){ .pid = pid, .base = st0 };
	ck_assert_int_eq(pthread_create(&rs.tid, NULL, r_resumer_main, &rs), 0);
	a = r_read(0x43, 2);
	ck_assert_int_eq(ipc_ring_call(r_emt, 1, &a), 0);
	ck_assert_uint_eq(a.data, r_answer(0x43, 2, 1));
	ck_assert_int_eq(pthread_join(rs.tid, NULL), 0);
	ck_assert_msg(rs.saw_stall, "the EMT spun its whole limit for a "
		      "stopped device instead of going by its heartbeat");
	ipc_ring_get_stats(r_emt, &st);
	ck_assert_uint_eq(st.sleeps_dev_stalled, st0.sleeps_dev_stalled + 1);
	ck_assert_uint_eq(st.sleeps_spin_limit, st0.sleeps_spin_limit);

	r_device_join(pid);
}
END_TEST

START_TEST(test_ring_device_stops_spinning_for_sleeping_emt)
{
	static struct r_logdev dev;
	struct r_server srv;
	struct ipc_ring_stats st;

	memset(&dev, 0, sizeof(dev));
	/*
	 * Every answer is held until its EMT is asleep, as when the EMT
	 * cannot get a CPU while the device runs. The device would spin a
	 * minute after each access if it spun regardless; after answers that
	 * had to wake their EMT it must go to sleep as soon as it is idle.
	 */
	dev.wait_emt_asleep = r_devr;
	r_logserver_start(&srv, r_devr, &dev, UINT64_C(60) * 1000000000u);
	for (unsigned i = 0; i < 3; i++) {
		struct ipc_access a = r_read(0x500 + i, 0);

		ck_assert_int_eq(ipc_ring_call(r_emt, 0, &a), 0);
	}
	ck_assert_msg(r_wait_until(r_dev_is_asleep, r_emt, 5000),
		      "the device kept spinning for an EMT that sleeps");
	ipc_ring_get_stats(r_devr, &st);
	ck_assert_uint_eq(st.answered, 3);
	ck_assert_uint_eq(st.emt_wakes, 3);
	ck_assert_uint_ge(st.idle_sleeps_at_once, 1);
	r_logserver_stop(&srv);
}
END_TEST

/* Two EMT threads in this process against a device process: writes posted
 * in bursts of every length up to beyond the queue, each burst followed by
 * a read that must see exactly the writes posted before it. */
#define R_POST_ROUNDS 3000u

struct r_poster {
	pthread_t tid;
	unsigned slot;
	unsigned bad;
	int err;
};

static void *r_poster_main(void *arg)
{
	struct r_poster *p = arg;
	uint64_t total = 0;

	for (unsigned i = 0; i < R_POST_ROUNDS && !p->err; i++) {
		unsigned burst = i % (2 * IPC_RING_DEPTH + 3);
		struct ipc_access a;
		int ret;

		for (unsigned k = 0; k < burst; k++) {
			a = r_write(((uint64_t)p->slot << 32) | total, k);
			ret = ipc_ring_post(r_emt, p->slot, &a);
			if (ret < 0) {
				p->err = ret;
				break;
			}
			total++;
		}
		a = r_read(0xfff, 0);
		ret = ipc_ring_call(r_emt, p->slot, &a);
		if (ret < 0)
			p->err = ret;
		else if (a.data != total)
			p->bad++;
	}
	return NULL;
}

START_TEST(test_ring_posted_two_processes)
{
	static struct r_logdev dev;
	struct r_poster posters[2];
	pid_t pid;

	memset(&dev, 0, sizeof(dev));
	pid = r_fork_device(r_log_handler, &dev, R_SPIN_NS, NULL, 60);
	for (unsigned i = 0; i < 2; i++) {
		posters[i] = (struct r_poster){ .slot = i * 3 };
		ck_assert_int_eq(pthread_create(&posters[i].tid, NULL,
						r_poster_main, &posters[i]), 0);
	}
	for (unsigned i = 0; i < 2; i++) {
		ck_assert_int_eq(pthread_join(posters[i].tid, NULL), 0);
		ck_assert_int_eq(posters[i].err, 0);
		ck_assert_uint_eq(posters[i].bad, 0);
	}
	r_device_join(pid);
}
END_TEST

START_TEST(test_ring_shutdown_fails_drain)
{
	struct r_shutter sh = { .r = r_emt, .after_ms = 20 };
	struct ipc_access a = r_write(9, 9);

	/* Posted, never served: the drain waits until the ring dies. */
	ck_assert_int_eq(ipc_ring_post(r_emt, 0, &a), 0);
	ck_assert_int_eq(pthread_create(&sh.tid, NULL, r_shutter_main, &sh),
			 0);
	ck_assert_int_eq(ipc_ring_drain(r_emt, 0), -EPIPE);
	ck_assert_int_eq(pthread_join(sh.tid, NULL), 0);
	ck_assert_int_eq(ipc_ring_post(r_emt, 0, &a), -EPIPE);
}
END_TEST

Suite *ring_suite(void)
{
	Suite *s = suite_create("ring");
	TCase *tc;

	tc = tcase_create("map");
	tcase_add_test(tc, test_ring_size);
	tcase_add_test(tc, test_ring_create_nslots);
	tcase_add_test(tc, test_ring_map_validation);
	suite_add_tcase(s, tc);

	tc = tcase_create("calls");
	tcase_add_checked_fixture(tc, r_setup, r_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_ring_scribbled_header_after_map);
	tcase_add_test(tc, test_ring_single_round_trip);
	tcase_add_test(tc, test_ring_hostile_answer_masked);
	tcase_add_test(tc, test_ring_handler_error_stops_serving);
	tcase_add_test(tc, test_ring_threads_many);
	tcase_add_test(tc, test_ring_two_processes);
	suite_add_tcase(s, tc);

	tc = tcase_create("sleep");
	tcase_add_checked_fixture(tc, r_setup, r_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_ring_wake_sleeping_device);
	tcase_add_test(tc, test_ring_wake_sleeping_emt);
	tcase_add_test(tc, test_ring_shutdown_wakes_caller);
	tcase_add_test(tc, test_ring_shutdown_other_mapping_wakes_caller);
	tcase_add_test(tc, test_ring_shutdown_ends_serve);
	tcase_add_test(tc, test_ring_stop_ends_sleeping_serve);
	tcase_add_test(tc, test_ring_stop_ends_spinning_serve);
	suite_add_tcase(s, tc);

	tc = tcase_create("posted");
	tcase_add_checked_fixture(tc, r_setup, r_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_ring_post_refuses_reads);
	tcase_add_test(tc, test_ring_posted_writes_do_not_wait);
	tcase_add_test(tc, test_ring_posted_writes_wait_for_room_and_keep_order);
	tcase_add_test(tc, test_ring_post_wakes_sleeping_device);
	tcase_add_test(tc, test_ring_posted_two_processes);
	tcase_add_test(tc, test_ring_shutdown_fails_drain);
	suite_add_tcase(s, tc);

	tc = tcase_create("heartbeat");
	tcase_add_checked_fixture(tc, r_setup, r_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_ring_no_spin_for_sleeping_device);
	tcase_add_test(tc, test_ring_no_spin_for_stopped_device);
	tcase_add_test(tc, test_ring_device_stops_spinning_for_sleeping_emt);
	suite_add_tcase(s, tc);

	return s;
}
