/* SPDX-License-Identifier: MIT */
/*
 * The access ring: create/map validation, round trips between threads and
 * between processes, the futex sleep and wake paths, stop and shutdown.
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
		a->data = 0xdeadbeef;   /* must not reach the EMT */
		return 0;
	}
	a->data = r_answer(a->addr, a->data, slot);
	a->flags = a->addr == 0xdead ? IPC_ACC_F_STOP : 0;
	return 0;
}

struct r_server {
	pthread_t tid;
	struct ipc_ring *r;
	struct r_dev *dev;
	uint64_t spin_ns;
	int ret;
	atomic_bool done;
};

static void *r_server_main(void *arg)
{
	struct r_server *s = arg;

	s->ret = ipc_ring_serve(s->r, r_handler, s->dev, s->spin_ns);
	atomic_store(&s->done, true);
	return NULL;
}

static void r_server_start(struct r_server *s, struct ipc_ring *r,
			   struct r_dev *dev, uint64_t spin_ns)
{
	s->r = r;
	s->dev = dev;
	s->spin_ns = spin_ns;
	s->ret = 1;
	atomic_init(&s->done, false);
	ck_assert_int_eq(pthread_create(&s->tid, NULL, r_server_main, s), 0);
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
	a = r_read(0x60, 0x5a);
	a.write = 1;
	ck_assert_int_eq(ipc_ring_call(r_emt, 1, &a), 0);
	ck_assert_uint_eq(a.data, 0x5a);
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

#define R_FORK_CALLS 30000u

START_TEST(test_ring_two_processes)
{
	struct r_caller callers[2];
	pid_t pid;
	int status;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct r_dev dev = { 0 };
		struct ipc_ring *r;
		int ret;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(30);
		/* Its own mapping, as a device process would have. */
		if (ipc_ring_map(r_fd, &r) < 0)
			_exit(10);
		ret = ipc_ring_serve(r, r_handler, &dev, R_SPIN_NS);
		if (ret != 0)
			_exit(11);
		if (atomic_load(&dev.served) != 2 * R_FORK_CALLS)
			_exit(12);
		_exit(0);
	}

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
	ipc_ring_shutdown(r_emt);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
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

	return s;
}
