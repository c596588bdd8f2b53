/* SPDX-License-Identifier: MIT */
/*
 * vm: the VM state machine, requests to EMTs and EMT rendezvous, after
 * VirtualBox's VMR3 (see shared/reference/vmstate.md). Independent of KVM,
 * so unit tests drive it with plain threads.
 */
#ifndef BULKHEAD_VM_H
#define BULKHEAD_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- states ------------------------------------------------------------- */

enum vm_state {
	VM_STATE_CREATING,
	VM_STATE_CREATED,
	VM_STATE_LOADING,
	VM_STATE_POWERING_ON,
	VM_STATE_RESUMING,
	VM_STATE_RUNNING,
	VM_STATE_RUNNING_LS,
	VM_STATE_RESETTING,
	VM_STATE_RESETTING_LS,
	VM_STATE_SOFT_RESETTING,
	VM_STATE_SOFT_RESETTING_LS,
	VM_STATE_SUSPENDING,
	VM_STATE_SUSPENDING_LS,
	VM_STATE_SUSPENDING_EXT_LS,
	VM_STATE_SUSPENDED,
	VM_STATE_SUSPENDED_LS,
	VM_STATE_SUSPENDED_EXT_LS,
	VM_STATE_SAVING,
	VM_STATE_DEBUGGING,
	VM_STATE_DEBUGGING_LS,
	VM_STATE_POWERING_OFF,
	VM_STATE_POWERING_OFF_LS,
	VM_STATE_OFF,
	VM_STATE_OFF_LS,
	VM_STATE_FATAL_ERROR,
	VM_STATE_FATAL_ERROR_LS,
	VM_STATE_GURU_MEDITATION,
	VM_STATE_GURU_MEDITATION_LS,
	VM_STATE_LOAD_FAILURE,
	VM_STATE_DESTROYING,
	VM_STATE_TERMINATED,
	VM_STATE_COUNT
};

/* "RUNNING", ...; "INVALID" for anything out of range. */
const char *vm_state_name(enum vm_state s);
/* Whether the transition table allows from -> to. */
bool vm_state_legal(enum vm_state from, enum vm_state to);
/* Whether EMTs run guest code in this state. */
bool vm_state_runs_guest(enum vm_state s);

typedef void (*vm_state_cb)(void *ctx, enum vm_state old_state,
			    enum vm_state new_state);

#define VM_SM_MAX_CBS 8

struct vm_sm {
	pthread_mutex_t lock;
	enum vm_state state;
	struct {
		vm_state_cb fn;
		void *ctx;
	} cbs[VM_SM_MAX_CBS];
	unsigned ncbs;
};

void vm_sm_init(struct vm_sm *sm);
/* Call cb(ctx, old, new) after every change (outside the lock). */
int vm_sm_register(struct vm_sm *sm, vm_state_cb cb, void *ctx);
enum vm_state vm_sm_get(struct vm_sm *sm);
/*
 * Change the state to `to`. With `from` >= 0 the current state must be
 * `from` (-ESTALE otherwise). A transition the table does not allow is
 * refused with -EPERM and changes nothing.
 */
int vm_sm_set(struct vm_sm *sm, int from, enum vm_state to);

/* ---- requests and rendezvous -------------------------------------------- */

#define VM_MAX_CPUS 16

/* Request targets besides a vCPU index. */
#define VM_CPU_ANY (-1)
#define VM_CPU_ALL (-2)          /* every EMT, ascending, one after another */
#define VM_CPU_ALL_REVERSE (-3)  /* every EMT, descending */

/* Request flags (VMREQFLAGS analogues). */
#define VM_REQ_WAIT 0x0u         /* the caller waits for the status */
#define VM_REQ_NO_WAIT 0x1u      /* fire and forget: the EMT frees it */
#define VM_REQ_PRIORITY 0x2u     /* served even inside a rendezvous */
#define VM_REQ_POKE 0x4u         /* kick the target out of guest code */

/* Rendezvous types and flags (VMMEMTRENDEZVOUS_FLAGS analogues). */
#define VM_RDV_ONCE 1u           /* the caller alone runs fn, all gather */
#define VM_RDV_ALL_AT_ONCE 2u    /* every EMT runs fn concurrently */
#define VM_RDV_ONE_BY_ONE 3u     /* every EMT, one at a time, any order */
#define VM_RDV_ASCENDING 4u      /* every EMT, 0 first */
#define VM_RDV_DESCENDING 5u     /* every EMT, highest first, 0 last */
#define VM_RDV_TYPE_MASK 0x7u
#define VM_RDV_STOP_ON_ERROR 0x8u  /* after a failure the rest skip fn */

typedef int (*vm_req_fn)(unsigned cpu, void *arg);

struct vm_req;

/*
 * The synchronisation between the EMTs of one VM. poke(ctx, cpu) must make
 * EMT `cpu` leave guest code and call vm_emt_service soon.
 */
struct vm_sync {
	unsigned ncpus;
	pthread_mutex_t lock;
	pthread_cond_t cond;         /* broadcast on every change */
	void (*poke)(void *ctx, unsigned cpu);
	void *poke_ctx;
	struct vm_req *queue[VM_MAX_CPUS];  /* per-EMT, FIFO */
	struct vm_req *any_queue;           /* served by whichever EMT */
	bool terminating;
	unsigned wake_gen;                  /* bumped by vm_sync_wake_all */
	/* Bumped (under lock) whenever an EMT may have work; EMTs read it
	 * without the lock after each guest exit to decide whether to
	 * call vm_emt_service. */
	unsigned work_gen;
	/* The rendezvous in progress, if any. */
	struct {
		bool active;
		unsigned type, flags;
		vm_req_fn fn;
		void *arg;
		unsigned caller;
		unsigned gen;
		unsigned arrived, done, left;
		int next;                /* ordered types: whose turn */
		bool busy;               /* one-by-one: someone is in fn */
		int status;
		unsigned seen_gen[VM_MAX_CPUS];
	} rdv;
};

int vm_sync_init(struct vm_sync *s, unsigned ncpus,
		 void (*poke)(void *ctx, unsigned cpu), void *poke_ctx);
void vm_sync_destroy(struct vm_sync *s);
/* Called by each EMT thread once, so that it knows which EMT it is. */
void vm_sync_emt_register(unsigned cpu);
/* This thread's EMT id, or -1 when it is not an EMT. */
int vm_sync_self(void);

/*
 * Run fn(cpu, arg) on the target EMT(s) and (unless VM_REQ_NO_WAIT) wait
 * for it; *status gets fn's result (for ALL targets the first failure, and
 * the remaining EMTs are still visited). A request from an EMT to itself
 * (or to ANY) runs inline. Returns 0 when the request was carried out, or
 * -ESHUTDOWN once the EMTs are terminating, -EINVAL for a bad target.
 */
int vm_req_call(struct vm_sync *s, int target, unsigned flags, vm_req_fn fn,
		void *arg, int *status);

/*
 * Gather every EMT and run fn according to the type (VM_RDV_*). Called on
 * an EMT; from another thread it becomes a request to any EMT. Returns the
 * first failure of fn, or 0. A rendezvous requested while another is in
 * progress waits for that one (joining it first).
 */
int vm_rendezvous(struct vm_sync *s, unsigned flags, vm_req_fn fn, void *arg);

/*
 * EMT side: join a pending rendezvous and run queued requests (only
 * priority ones when priority_only). Never blocks for long.
 */
void vm_emt_service(struct vm_sync *s, unsigned cpu, bool priority_only);
/*
 * EMT side: sleep until there is something to serve, a wake-up after
 * `seen` (the vm_sync_wake_gen() value read BEFORE deciding to sleep, so
 * that a wake-up in between is not lost), termination, or until timeout_ms
 * passes (-1: no timeout).
 */
void vm_emt_wait(struct vm_sync *s, unsigned cpu, unsigned seen, int timeout_ms);
unsigned vm_sync_wake_gen(struct vm_sync *s);
/* Wake every waiting EMT (after a state change, for example). */
void vm_sync_wake_all(struct vm_sync *s);
/* Make every EMT leave: waits end, new requests fail with -ESHUTDOWN. */
void vm_sync_terminate(struct vm_sync *s);
bool vm_sync_terminating(struct vm_sync *s);
/* Cheap check from an EMT: has anything been queued since *seen? */
static inline bool vm_sync_work_hint(struct vm_sync *s, unsigned *seen)
{
	unsigned g = __atomic_load_n(&s->work_gen, __ATOMIC_ACQUIRE);

	if (g == *seen)
		return false;
	*seen = g;
	return true;
}

#endif
