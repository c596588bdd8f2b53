/* SPDX-License-Identifier: MIT */
/*
 * Requests to EMTs (VMR3ReqCall*) and EMT rendezvous (VMMR3EmtRendezvous).
 *
 * One mutex and one condition variable per VM guard the request queues and
 * the rendezvous; every change broadcasts. With at most 16 EMTs and
 * operations that are rare (suspend, resume, reset, ...) simplicity wins
 * over finer locking. The hot path (guest exits) never touches any of this.
 *
 * Deadlock rules: an EMT that waits (for a request it sent to another EMT,
 * or inside a rendezvous) keeps joining rendezvous and serving priority
 * requests addressed to it, so two EMTs waiting on each other always make
 * progress. A rendezvous callback must not start another rendezvous.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "emt-worker/vm.h"

#define VM_MS_PER_SEC 1000
#define VM_NS_PER_MS 1000000
#define VM_NS_PER_SEC 1000000000

struct vm_req {
	vm_req_fn fn;
	void *arg;
	unsigned flags;
	int status;
	bool done;
	struct vm_req *next;
};

static __thread int vm_self = -1;

void vm_sync_emt_register(unsigned cpu)
{
	vm_self = (int)cpu;
}

int vm_sync_self(void)
{
	return vm_self;
}

int vm_sync_init(struct vm_sync *s, unsigned ncpus,
		 void (*poke)(void *ctx, unsigned cpu), void *poke_ctx)
{
	pthread_condattr_t ca;

	if (ncpus == 0 || ncpus > VM_MAX_CPUS)
		return -EINVAL;
	*s = (struct vm_sync){ .ncpus = ncpus, .poke = poke, .poke_ctx = poke_ctx };
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	return 0;
}

static void vm_free_queue(struct vm_req *r)
{
	while (r) {
		struct vm_req *next = r->next;

		/* Waited-for requests belong to their callers. */
		if (r->flags & VM_REQ_NO_WAIT)
			free(r);
		r = next;
	}
}

void vm_sync_destroy(struct vm_sync *s)
{
	for (unsigned i = 0; i < s->ncpus; i++)
		vm_free_queue(s->queue[i]);
	vm_free_queue(s->any_queue);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
}

static void vm_poke(struct vm_sync *s, unsigned cpu)
{
	if (s->poke)
		s->poke(s->poke_ctx, cpu);
}

static void vm_enqueue(struct vm_req **q, struct vm_req *r)
{
	while (*q)
		q = &(*q)->next;
	r->next = NULL;
	*q = r;
}

static bool vm_unlink(struct vm_req **q, struct vm_req *r)
{
	for (; *q; q = &(*q)->next) {
		if (*q == r) {
			*q = r->next;
			return true;
		}
	}
	return false;
}

/* Pop the first request cpu may serve now; lock held. */
static struct vm_req *vm_pop(struct vm_sync *s, unsigned cpu,
			     bool priority_only)
{
	struct vm_req **lists[2] = { &s->queue[cpu], &s->any_queue };

	for (int l = 0; l < 2; l++) {
		for (struct vm_req **q = lists[l]; *q; q = &(*q)->next) {
			struct vm_req *r = *q;

			if (priority_only && !(r->flags & VM_REQ_PRIORITY))
				continue;
			*q = r->next;
			return r;
		}
	}
	return NULL;
}

/* Run one popped request; lock held on entry and exit. */
static void vm_run_req(struct vm_sync *s, unsigned cpu, struct vm_req *r)
{
	int st;

	pthread_mutex_unlock(&s->lock);
	st = r->fn(cpu, r->arg);
	pthread_mutex_lock(&s->lock);
	if (r->flags & VM_REQ_NO_WAIT) {
		free(r);
	} else {
		r->status = st;
		r->done = true;
	}
	pthread_cond_broadcast(&s->cond);
}

/*
 * Wait on the condition variable, but first serve a priority request for
 * this EMT if one is queued. Lock held.
 */
static void vm_wait_locked(struct vm_sync *s, int cpu)
{
	struct vm_req *r = cpu >= 0 ? vm_pop(s, (unsigned)cpu, true) : NULL;

	if (r)
		vm_run_req(s, (unsigned)cpu, r);
	else
		pthread_cond_wait(&s->cond, &s->lock);
}

/* Run the rendezvous callback unless a failure stops the rest. Lock held. */
static void vm_rdv_run(struct vm_sync *s, unsigned cpu)
{
	int r;

	if ((s->rdv.flags & VM_RDV_STOP_ON_ERROR) && s->rdv.status < 0)
		return;
	pthread_mutex_unlock(&s->lock);
	r = s->rdv.fn(cpu, s->rdv.arg);
	pthread_mutex_lock(&s->lock);
	if (r < 0 && s->rdv.status == 0)
		s->rdv.status = r;
}

/*
 * Count this vCPU in *count (arrived, done) and wait until every vCPU has
 * been counted: 0, or -ESHUTDOWN when the VM ends first. Lock held.
 */
static int vm_rdv_gather_locked(struct vm_sync *s, unsigned cpu,
				unsigned *count)
{
	(*count)++;
	pthread_cond_broadcast(&s->cond);
	while (*count < s->ncpus && !s->terminating)
		vm_wait_locked(s, (int)cpu);
	return s->terminating ? -ESHUTDOWN : 0;
}

/*
 * Take part in the rendezvous in progress, if any, once. Returns its
 * status. Lock held on entry and exit.
 */
static int vm_rdv_participate_locked(struct vm_sync *s, unsigned cpu)
{
	unsigned n = s->ncpus;
	int st;

	if (!s->rdv.active || s->rdv.seen_gen[cpu] == s->rdv.gen)
		return 0;
	s->rdv.seen_gen[cpu] = s->rdv.gen;
	/* Everyone gathers first: nobody runs guest code during fn. */
	if (vm_rdv_gather_locked(s, cpu, &s->rdv.arrived) < 0)
		return -ESHUTDOWN;

	switch (s->rdv.type) {
	case VM_RDV_ONCE:
		if (cpu == s->rdv.caller)
			vm_rdv_run(s, cpu);
		break;
	case VM_RDV_ALL_AT_ONCE:
		vm_rdv_run(s, cpu);
		break;
	case VM_RDV_ONE_BY_ONE:
		while (s->rdv.busy && !s->terminating)
			vm_wait_locked(s, (int)cpu);
		s->rdv.busy = true;
		vm_rdv_run(s, cpu);
		s->rdv.busy = false;
		break;
	case VM_RDV_ASCENDING:
	case VM_RDV_DESCENDING:
		while (s->rdv.next != (int)cpu && !s->terminating)
			vm_wait_locked(s, (int)cpu);
		vm_rdv_run(s, cpu);
		s->rdv.next += s->rdv.type == VM_RDV_ASCENDING ? 1 : -1;
		break;
	}
	if (vm_rdv_gather_locked(s, cpu, &s->rdv.done) < 0)
		return -ESHUTDOWN;
	st = s->rdv.status;
	if (++s->rdv.left == n) {
		s->rdv.active = false;
		pthread_cond_broadcast(&s->cond);
	}
	return st;
}

struct vm_rdv_args {
	struct vm_sync *s;
	unsigned flags;
	vm_req_fn fn;
	void *arg;
};

static int vm_rdv_trampoline(unsigned cpu, void *arg)
{
	struct vm_rdv_args *a = arg;

	(void)cpu;
	return vm_rendezvous(a->s, a->flags, a->fn, a->arg);
}

int vm_rendezvous(struct vm_sync *s, unsigned flags, vm_req_fn fn, void *arg)
{
	unsigned type = flags & VM_RDV_TYPE_MASK;
	int self = vm_self;
	int st;

	if (!s || type < VM_RDV_ONCE || type > VM_RDV_DESCENDING ||
	    (flags & ~(VM_RDV_TYPE_MASK | VM_RDV_STOP_ON_ERROR)))
		return -EINVAL;
	if (self < 0) {
		struct vm_rdv_args a = { s, flags, fn, arg };
		int r;

		r = vm_req_call(s, VM_CPU_ANY, VM_REQ_WAIT | VM_REQ_POKE,
				vm_rdv_trampoline, &a, &st);
		return r < 0 ? r : st;
	}

	pthread_mutex_lock(&s->lock);
	while (s->rdv.active && !s->terminating) {
		/* Someone else's: take part in it, then wait for it to end. */
		vm_rdv_participate_locked(s, (unsigned)self);
		if (s->rdv.active && !s->terminating)
			vm_wait_locked(s, self);
	}
	if (s->terminating) {
		pthread_mutex_unlock(&s->lock);
		return -ESHUTDOWN;
	}
	s->rdv.active = true;
	s->rdv.type = type;
	s->rdv.flags = flags;
	s->rdv.fn = fn;
	s->rdv.arg = arg;
	s->rdv.caller = (unsigned)self;
	s->rdv.gen++;
	s->rdv.arrived = s->rdv.done = s->rdv.left = 0;
	s->rdv.next = type == VM_RDV_DESCENDING ? (int)s->ncpus - 1 : 0;
	s->rdv.busy = false;
	s->rdv.status = 0;
	__atomic_add_fetch(&s->work_gen, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	for (unsigned i = 0; i < s->ncpus; i++)
		if ((int)i != self)
			vm_poke(s, i);
	pthread_mutex_lock(&s->lock);
	st = vm_rdv_participate_locked(s, (unsigned)self);
	pthread_mutex_unlock(&s->lock);
	return st;
}

/* New work or news for every EMT: they all wake and look (lock held). */
static void vm_wake_locked(struct vm_sync *s)
{
	s->wake_gen++;
	__atomic_add_fetch(&s->work_gen, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&s->cond);
}

static int vm_req_one(struct vm_sync *s, int target, unsigned flags,
		      vm_req_fn fn, void *arg, int *status)
{
	struct vm_req *r = calloc(1, sizeof(*r));
	int self = vm_self;
	int ret = 0;

	if (!r)
		return -ENOMEM;
	r->fn = fn;
	r->arg = arg;
	r->flags = flags;
	pthread_mutex_lock(&s->lock);
	if (s->terminating) {
		pthread_mutex_unlock(&s->lock);
		free(r);
		return -ESHUTDOWN;
	}
	vm_enqueue(target >= 0 ? &s->queue[target] : &s->any_queue, r);
	vm_wake_locked(s);
	pthread_mutex_unlock(&s->lock);
	/* Every request kicks its EMT out of guest code unless the caller
	 * says it need not (then it is served at the next exit). */
	if (flags & VM_REQ_POKE)
		vm_poke(s, target >= 0 ? (unsigned)target : 0);
	if (flags & VM_REQ_NO_WAIT)
		return 0;

	pthread_mutex_lock(&s->lock);
	while (!r->done && !s->terminating) {
		if (self >= 0) {
			/* An EMT waiting on another EMT keeps its duties. */
			vm_rdv_participate_locked(s, (unsigned)self);
			if (r->done || s->terminating)
				break;
		}
		vm_wait_locked(s, self);
	}
	if (!r->done) {
		vm_unlink(target >= 0 ? &s->queue[target] : &s->any_queue, r);
		ret = -ESHUTDOWN;
	} else if (status) {
		*status = r->status;
	}
	pthread_mutex_unlock(&s->lock);
	free(r);
	return ret;
}

int vm_req_call(struct vm_sync *s, int target, unsigned flags, vm_req_fn fn,
		void *arg, int *status)
{
	int self = vm_self;
	int first = 0, r, st;

	if (target >= (int)s->ncpus || target < VM_CPU_ALL_REVERSE ||
	    (flags & ~(VM_REQ_NO_WAIT | VM_REQ_PRIORITY | VM_REQ_POKE)))
		return -EINVAL;
	if (target == VM_CPU_ANY && self >= 0)
		target = self;
	if (target >= 0 && target == self) {
		st = fn((unsigned)self, arg);  /* to ourselves: inline */
		if (status)
			*status = st;
		return 0;
	}
	if (target >= 0 || target == VM_CPU_ANY)
		return vm_req_one(s, target, flags, fn, arg, status);

	/* Every EMT in turn, ascending or descending. */
	for (unsigned k = 0; k < s->ncpus; k++) {
		unsigned cpu = target == VM_CPU_ALL ? k : s->ncpus - 1 - k;

		st = 0;
		if ((int)cpu == self) {
			st = fn(cpu, arg);
			r = 0;
		} else {
			r = vm_req_one(s, (int)cpu, flags, fn, arg, &st);
		}
		if (r < 0)
			return r;
		if (st < 0 && first == 0)
			first = st;
	}
	if (status)
		*status = first;
	return 0;
}

static bool vm_has_work_locked(struct vm_sync *s, unsigned cpu)
{
	return s->queue[cpu] || s->any_queue ||
	       (s->rdv.active && s->rdv.seen_gen[cpu] != s->rdv.gen);
}

void vm_emt_service(struct vm_sync *s, unsigned cpu, bool priority_only)
{
	struct vm_req *r;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		vm_rdv_participate_locked(s, cpu);
		r = vm_pop(s, cpu, priority_only);
		if (!r)
			break;
		vm_run_req(s, cpu, r);
	}
	pthread_mutex_unlock(&s->lock);
}

/* The wake generation, and in *terminating whether the VM is ending, as
 * of one moment. */
static unsigned vm_sync_peek(struct vm_sync *s, bool *terminating)
{
	unsigned g;

	pthread_mutex_lock(&s->lock);
	g = s->wake_gen;
	*terminating = s->terminating;
	pthread_mutex_unlock(&s->lock);
	return g;
}

unsigned vm_sync_wake_gen(struct vm_sync *s)
{
	bool t;

	return vm_sync_peek(s, &t);
}

void vm_emt_wait(struct vm_sync *s, unsigned cpu, unsigned gen, int timeout_ms)
{
	struct timespec dl;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	if (timeout_ms >= 0) {
		dl.tv_sec += timeout_ms / VM_MS_PER_SEC;
		dl.tv_nsec += (long)(timeout_ms % VM_MS_PER_SEC) * VM_NS_PER_MS;
		if (dl.tv_nsec >= VM_NS_PER_SEC) {
			dl.tv_sec++;
			dl.tv_nsec -= VM_NS_PER_SEC;
		}
	}
	pthread_mutex_lock(&s->lock);
	while (!s->terminating && gen == s->wake_gen &&
	       !vm_has_work_locked(s, cpu)) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&s->cond, &s->lock);
		} else if (pthread_cond_timedwait(&s->cond, &s->lock, &dl) ==
			   ETIMEDOUT) {
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
}

void vm_sync_wake_all(struct vm_sync *s)
{
	pthread_mutex_lock(&s->lock);
	vm_wake_locked(s);
	pthread_mutex_unlock(&s->lock);
}

bool vm_sync_terminating(struct vm_sync *s)
{
	bool t;

	vm_sync_peek(s, &t);
	return t;
}

void vm_sync_terminate(struct vm_sync *s)
{
	pthread_mutex_lock(&s->lock);
	s->terminating = true;
	vm_wake_locked(s);
	pthread_mutex_unlock(&s->lock);
	for (unsigned i = 0; i < s->ncpus; i++)
		vm_poke(s, i);
}
