/* SPDX-License-Identifier: MIT */
/*
 * Requests and rendezvous with plain threads standing in for EMTs: each
 * "EMT" serves its queue and joins rendezvous in a loop, as the worker's
 * EMTs do between guest exits.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "emt-worker/vm.h"
#include "tests/unit/suites.h"

#define NCPU 4

struct fixture {
	struct vm_sync s;
	pthread_t th[NCPU];
	atomic_bool stop;
	atomic_int pokes;
};

static struct fixture fx;

static void fake_poke(void *ctx, unsigned cpu)
{
	struct fixture *f = ctx;

	(void)cpu;
	atomic_fetch_add(&f->pokes, 1);
}

static void *fake_emt(void *arg)
{
	unsigned cpu = (unsigned)(uintptr_t)arg;

	vm_sync_emt_register(cpu);
	while (!atomic_load(&fx.stop)) {
		unsigned gen = vm_sync_wake_gen(&fx.s);

		vm_emt_service(&fx.s, cpu, false);
		vm_emt_wait(&fx.s, cpu, gen, 20);
	}
	return NULL;
}

static void setup(void)
{
	atomic_store(&fx.stop, false);
	atomic_store(&fx.pokes, 0);
	ck_assert_int_eq(vm_sync_init(&fx.s, NCPU, fake_poke, &fx), 0);
	for (unsigned i = 0; i < NCPU; i++)
		pthread_create(&fx.th[i], NULL, fake_emt, (void *)(uintptr_t)i);
}

static void teardown(void)
{
	atomic_store(&fx.stop, true);
	vm_sync_terminate(&fx.s);
	for (unsigned i = 0; i < NCPU; i++)
		pthread_join(fx.th[i], NULL);
	vm_sync_destroy(&fx.s);
}

/* ---- a log of who ran what, in order ------------------------------------ */

static int order[64];
static atomic_int norder;

static void log_reset(void)
{
	atomic_store(&norder, 0);
}

static int log_cpu(unsigned cpu, void *arg)
{
	int i = atomic_fetch_add(&norder, 1);

	(void)arg;
	if (i < 64)
		order[i] = (int)cpu;
	return 0;
}

static int return_self(unsigned cpu, void *arg)
{
	ck_assert_int_eq(vm_sync_self(), (int)cpu);
	*(int *)arg = (int)cpu;
	return 100 + (int)cpu;
}

START_TEST(test_req_one_cpu)
{
	for (int cpu = 0; cpu < NCPU; cpu++) {
		int ran = -1, st = 0;

		ck_assert_int_eq(vm_req_call(&fx.s, cpu, VM_REQ_POKE, return_self,
					     &ran, &st), 0);
		ck_assert_int_eq(ran, cpu);
		ck_assert_int_eq(st, 100 + cpu);
	}
	ck_assert_int_ge(atomic_load(&fx.pokes), NCPU);
	ck_assert_int_eq(vm_sync_self(), -1);
}
END_TEST

START_TEST(test_req_any)
{
	int ran = -1, st = 0;

	ck_assert_int_eq(vm_req_call(&fx.s, VM_CPU_ANY, VM_REQ_POKE, return_self,
				     &ran, &st), 0);
	ck_assert_int_ge(ran, 0);
	ck_assert_int_lt(ran, NCPU);
	ck_assert_int_eq(st, 100 + ran);
}
END_TEST

START_TEST(test_req_all_orders)
{
	int st = -1;

	log_reset();
	ck_assert_int_eq(vm_req_call(&fx.s, VM_CPU_ALL, 0, log_cpu, NULL, &st), 0);
	ck_assert_int_eq(st, 0);
	ck_assert_int_eq(atomic_load(&norder), NCPU);
	for (int i = 0; i < NCPU; i++)
		ck_assert_int_eq(order[i], i);
	log_reset();
	ck_assert_int_eq(vm_req_call(&fx.s, VM_CPU_ALL_REVERSE, 0, log_cpu, NULL,
				     &st), 0);
	ck_assert_int_eq(atomic_load(&norder), NCPU);
	for (int i = 0; i < NCPU; i++)
		ck_assert_int_eq(order[i], NCPU - 1 - i);
}
END_TEST

static atomic_int nowait_runs;

static int count_run(unsigned cpu, void *arg)
{
	(void)cpu;
	(void)arg;
	atomic_fetch_add(&nowait_runs, 1);
	return -EIO;  /* nobody waits for it: the status is dropped */
}

START_TEST(test_req_no_wait)
{
	atomic_store(&nowait_runs, 0);
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(vm_req_call(&fx.s, i % NCPU, VM_REQ_NO_WAIT,
					     count_run, NULL, NULL), 0);
	for (int i = 0; i < 200 && atomic_load(&nowait_runs) < 50; i++)
		usleep(10000);
	ck_assert_int_eq(atomic_load(&nowait_runs), 50);
}
END_TEST

/* A request from an EMT to itself runs inline; to another EMT it waits. */
static int nested(unsigned cpu, void *arg)
{
	int ran = -1, st = 0;

	(void)arg;
	ck_assert_int_eq(vm_req_call(&fx.s, (int)cpu, 0, return_self, &ran, &st), 0);
	ck_assert_int_eq(ran, (int)cpu);
	ck_assert_int_eq(vm_req_call(&fx.s, VM_CPU_ANY, 0, return_self, &ran, &st), 0);
	ck_assert_int_eq(ran, (int)cpu);  /* ANY from an EMT: itself */
	ck_assert_int_eq(vm_req_call(&fx.s, (int)(cpu + 1) % NCPU, VM_REQ_POKE,
				     return_self, &ran, &st), 0);
	ck_assert_int_eq(ran, (int)(cpu + 1) % NCPU);
	return 7;
}

START_TEST(test_req_inline_and_cross)
{
	int st = 0;

	ck_assert_int_eq(vm_req_call(&fx.s, 2, 0, nested, NULL, &st), 0);
	ck_assert_int_eq(st, 7);
}
END_TEST

START_TEST(test_req_bad_args)
{
	ck_assert_int_eq(vm_req_call(&fx.s, NCPU, 0, log_cpu, NULL, NULL), -EINVAL);
	ck_assert_int_eq(vm_req_call(&fx.s, -4, 0, log_cpu, NULL, NULL), -EINVAL);
	ck_assert_int_eq(vm_req_call(&fx.s, 0, 0x100, log_cpu, NULL, NULL), -EINVAL);
	ck_assert_int_eq(vm_rendezvous(&fx.s, 0, log_cpu, NULL), -EINVAL);
	ck_assert_int_eq(vm_rendezvous(&fx.s, 6, log_cpu, NULL), -EINVAL);
}
END_TEST

/* ---- rendezvous --------------------------------------------------------- */

struct rdv_arg {
	unsigned type;
	int caller;
};

static int start_rdv(unsigned cpu, void *arg)
{
	struct rdv_arg *a = arg;

	a->caller = (int)cpu;
	return vm_rendezvous(&fx.s, a->type, log_cpu, NULL);
}

START_TEST(test_rdv_once)
{
	struct rdv_arg a = { VM_RDV_ONCE, -1 };
	int st = -1;

	log_reset();
	ck_assert_int_eq(vm_req_call(&fx.s, 1, VM_REQ_POKE, start_rdv, &a, &st), 0);
	ck_assert_int_eq(st, 0);
	ck_assert_int_eq(atomic_load(&norder), 1);
	ck_assert_int_eq(order[0], 1);
}
END_TEST

START_TEST(test_rdv_ordered)
{
	struct rdv_arg a = { VM_RDV_ASCENDING, -1 };
	int st = -1;

	log_reset();
	ck_assert_int_eq(vm_req_call(&fx.s, 2, VM_REQ_POKE, start_rdv, &a, &st), 0);
	ck_assert_int_eq(atomic_load(&norder), NCPU);
	for (int i = 0; i < NCPU; i++)
		ck_assert_int_eq(order[i], i);
	a.type = VM_RDV_DESCENDING;
	log_reset();
	ck_assert_int_eq(vm_req_call(&fx.s, 1, VM_REQ_POKE, start_rdv, &a, &st), 0);
	ck_assert_int_eq(atomic_load(&norder), NCPU);
	for (int i = 0; i < NCPU; i++)
		ck_assert_int_eq(order[i], NCPU - 1 - i);  /* EMT(0) last */
}
END_TEST

static atomic_int inside, max_inside, arrived;

static int all_at_once_fn(unsigned cpu, void *arg)
{
	struct timespec t0, t;

	(void)cpu;
	(void)arg;
	atomic_fetch_add(&arrived, 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* Concurrent: every EMT is inside before any leaves. */
	while (atomic_load(&arrived) < NCPU) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 5)
			return -ETIMEDOUT;
	}
	return 0;
}

static int one_by_one_fn(unsigned cpu, void *arg)
{
	int n = atomic_fetch_add(&inside, 1) + 1;
	int m = atomic_load(&max_inside);

	(void)cpu;
	(void)arg;
	while (n > m && !atomic_compare_exchange_weak(&max_inside, &m, n))
		;
	usleep(2000);
	atomic_fetch_sub(&inside, 1);
	atomic_fetch_add(&arrived, 1);
	return 0;
}

START_TEST(test_rdv_all_at_once_and_one_by_one)
{
	atomic_store(&arrived, 0);
	/* From a non-EMT thread: becomes a request to an EMT. */
	ck_assert_int_eq(vm_rendezvous(&fx.s, VM_RDV_ALL_AT_ONCE, all_at_once_fn,
				       NULL), 0);
	ck_assert_int_eq(atomic_load(&arrived), NCPU);

	atomic_store(&arrived, 0);
	atomic_store(&inside, 0);
	atomic_store(&max_inside, 0);
	ck_assert_int_eq(vm_rendezvous(&fx.s, VM_RDV_ONE_BY_ONE, one_by_one_fn,
				       NULL), 0);
	ck_assert_int_eq(atomic_load(&arrived), NCPU);
	ck_assert_int_eq(atomic_load(&max_inside), 1);
}
END_TEST

static int fail_on_top(unsigned cpu, void *arg)
{
	log_cpu(cpu, arg);
	return cpu == NCPU - 1 ? -EIO : 0;
}

START_TEST(test_rdv_stop_on_error)
{
	log_reset();
	ck_assert_int_eq(vm_rendezvous(&fx.s, VM_RDV_DESCENDING |
				       VM_RDV_STOP_ON_ERROR, fail_on_top, NULL),
			 -EIO);
	ck_assert_int_eq(atomic_load(&norder), 1);  /* the rest skipped */
	ck_assert_int_eq(order[0], NCPU - 1);
	log_reset();
	ck_assert_int_eq(vm_rendezvous(&fx.s, VM_RDV_DESCENDING, fail_on_top,
				       NULL), -EIO);
	ck_assert_int_eq(atomic_load(&norder), NCPU);  /* all visited */
}
END_TEST

/* Inside a rendezvous only priority requests are served. */
static atomic_bool flag_prio, flag_normal;

static int set_flag(unsigned cpu, void *arg)
{
	(void)cpu;
	atomic_store((atomic_bool *)arg, true);
	return 0;
}

static bool wait_flag(atomic_bool *f, int ms)
{
	for (int i = 0; i < ms && !atomic_load(f); i++)
		usleep(1000);
	return atomic_load(f);
}

static int priority_probe(unsigned cpu, void *arg)
{
	(void)arg;
	if (cpu != 0)
		return 0;
	/* EMT(0) runs first (ascending); EMT 3 is waiting for its turn. */
	vm_req_call(&fx.s, 3, VM_REQ_NO_WAIT, set_flag, &flag_normal, NULL);
	vm_req_call(&fx.s, 3, VM_REQ_NO_WAIT | VM_REQ_PRIORITY, set_flag,
		    &flag_prio, NULL);
	if (!wait_flag(&flag_prio, 3000))
		return -ETIMEDOUT;
	/* The normal one must wait until the rendezvous is over. */
	return wait_flag(&flag_normal, 200) ? -EBUSY : 0;
}

START_TEST(test_priority_during_rendezvous)
{
	atomic_store(&flag_prio, false);
	atomic_store(&flag_normal, false);
	ck_assert_int_eq(vm_rendezvous(&fx.s, VM_RDV_ASCENDING, priority_probe,
				       NULL), 0);
	ck_assert(wait_flag(&flag_normal, 3000));
}
END_TEST

/* Several threads starting rendezvous and requests at once. */
static atomic_int total;

static int add_one(unsigned cpu, void *arg)
{
	(void)cpu;
	(void)arg;
	atomic_fetch_add(&total, 1);
	return 0;
}

static void *stress_thread(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;

	for (int i = 0; i < 100; i++) {
		unsigned k = rand_r(&seed) % 3;

		if (k == 0)
			vm_rendezvous(&fx.s, VM_RDV_ONE_BY_ONE, add_one, NULL);
		else if (k == 1)
			vm_req_call(&fx.s, VM_CPU_ALL, VM_REQ_POKE, add_one, NULL,
				    NULL);
		else
			vm_rendezvous(&fx.s, VM_RDV_DESCENDING, add_one, NULL);
	}
	return NULL;
}

START_TEST(test_concurrent_callers)
{
	pthread_t th[3];

	atomic_store(&total, 0);
	for (int i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, stress_thread, (void *)(uintptr_t)(i + 1));
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	/* Every operation visits every EMT exactly once. */
	ck_assert_int_eq(atomic_load(&total), 3 * 100 * NCPU);
}
END_TEST

START_TEST(test_terminate_fails_requests)
{
	vm_sync_terminate(&fx.s);
	ck_assert_int_eq(vm_req_call(&fx.s, 1, 0, log_cpu, NULL, NULL),
			 -ESHUTDOWN);
}
END_TEST

Suite *vmreq_suite(void)
{
	Suite *s = suite_create("vmreq");
	TCase *tc = tcase_create("requests");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_req_one_cpu);
	tcase_add_test(tc, test_req_any);
	tcase_add_test(tc, test_req_all_orders);
	tcase_add_test(tc, test_req_no_wait);
	tcase_add_test(tc, test_req_inline_and_cross);
	tcase_add_test(tc, test_req_bad_args);
	tcase_add_test(tc, test_rdv_once);
	tcase_add_test(tc, test_rdv_ordered);
	tcase_add_test(tc, test_rdv_all_at_once_and_one_by_one);
	tcase_add_test(tc, test_rdv_stop_on_error);
	tcase_add_test(tc, test_priority_during_rendezvous);
	tcase_add_test(tc, test_concurrent_callers);
	tcase_add_test(tc, test_terminate_fails_requests);
	suite_add_tcase(s, tc);
	return s;
}
