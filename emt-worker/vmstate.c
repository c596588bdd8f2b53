/* SPDX-License-Identifier: MIT */
/*
 * The VM state machine: VirtualBox's states and transition table
 * (shared/reference/vmstate.md) as data. An illegal transition is an error
 * returned to the caller, never an assert.
 */
#include <errno.h>

#include "emt-worker/vm.h"

static const char *const vm_state_names[VM_STATE_COUNT] = {
	[VM_STATE_CREATING] = "CREATING",
	[VM_STATE_CREATED] = "CREATED",
	[VM_STATE_LOADING] = "LOADING",
	[VM_STATE_POWERING_ON] = "POWERING_ON",
	[VM_STATE_RESUMING] = "RESUMING",
	[VM_STATE_RUNNING] = "RUNNING",
	[VM_STATE_RUNNING_LS] = "RUNNING_LS",
	[VM_STATE_RESETTING] = "RESETTING",
	[VM_STATE_RESETTING_LS] = "RESETTING_LS",
	[VM_STATE_SOFT_RESETTING] = "SOFT_RESETTING",
	[VM_STATE_SOFT_RESETTING_LS] = "SOFT_RESETTING_LS",
	[VM_STATE_SUSPENDING] = "SUSPENDING",
	[VM_STATE_SUSPENDING_LS] = "SUSPENDING_LS",
	[VM_STATE_SUSPENDING_EXT_LS] = "SUSPENDING_EXT_LS",
	[VM_STATE_SUSPENDED] = "SUSPENDED",
	[VM_STATE_SUSPENDED_LS] = "SUSPENDED_LS",
	[VM_STATE_SUSPENDED_EXT_LS] = "SUSPENDED_EXT_LS",
	[VM_STATE_SAVING] = "SAVING",
	[VM_STATE_DEBUGGING] = "DEBUGGING",
	[VM_STATE_DEBUGGING_LS] = "DEBUGGING_LS",
	[VM_STATE_POWERING_OFF] = "POWERING_OFF",
	[VM_STATE_POWERING_OFF_LS] = "POWERING_OFF_LS",
	[VM_STATE_OFF] = "OFF",
	[VM_STATE_OFF_LS] = "OFF_LS",
	[VM_STATE_FATAL_ERROR] = "FATAL_ERROR",
	[VM_STATE_FATAL_ERROR_LS] = "FATAL_ERROR_LS",
	[VM_STATE_GURU_MEDITATION] = "GURU_MEDITATION",
	[VM_STATE_GURU_MEDITATION_LS] = "GURU_MEDITATION_LS",
	[VM_STATE_LOAD_FAILURE] = "LOAD_FAILURE",
	[VM_STATE_DESTROYING] = "DESTROYING",
	[VM_STATE_TERMINATED] = "TERMINATED",
};

#define T(s) (1ull << VM_STATE_##s)

/* For each state, the set of states it may move to. */
static const uint64_t vm_state_next[VM_STATE_COUNT] = {
	[VM_STATE_CREATING] = T(CREATED),
	[VM_STATE_CREATED] = T(LOADING) | T(POWERING_ON) | T(POWERING_OFF),
	[VM_STATE_LOADING] = T(SUSPENDED) | T(LOAD_FAILURE),
	[VM_STATE_POWERING_ON] = T(RUNNING),
	[VM_STATE_RESUMING] = T(RUNNING),
	[VM_STATE_RUNNING] = T(POWERING_OFF) | T(SUSPENDING) | T(RESETTING) |
		T(SOFT_RESETTING) | T(RUNNING_LS) | T(DEBUGGING) |
		T(FATAL_ERROR) | T(GURU_MEDITATION),
	[VM_STATE_RUNNING_LS] = T(POWERING_OFF_LS) | T(SUSPENDING_LS) |
		T(SUSPENDING_EXT_LS) | T(RESETTING_LS) | T(SOFT_RESETTING_LS) |
		T(RUNNING) | T(DEBUGGING_LS) | T(FATAL_ERROR_LS) |
		T(GURU_MEDITATION_LS),
	[VM_STATE_RESETTING] = T(RUNNING),
	[VM_STATE_SOFT_RESETTING] = T(RUNNING),
	[VM_STATE_RESETTING_LS] = T(SUSPENDING_LS),
	[VM_STATE_SOFT_RESETTING_LS] = T(RUNNING_LS),
	[VM_STATE_SUSPENDING] = T(SUSPENDED),
	[VM_STATE_SUSPENDING_LS] = T(SUSPENDING) | T(SUSPENDED_LS),
	[VM_STATE_SUSPENDING_EXT_LS] = T(SUSPENDING) | T(SUSPENDED_EXT_LS),
	[VM_STATE_SUSPENDED] = T(POWERING_OFF) | T(SAVING) | T(RESETTING) |
		T(SOFT_RESETTING) | T(RESUMING) | T(LOADING),
	[VM_STATE_SUSPENDED_LS] = T(SUSPENDED) | T(SAVING),
	[VM_STATE_SUSPENDED_EXT_LS] = T(SUSPENDED) | T(SAVING),
	[VM_STATE_SAVING] = T(SUSPENDED),
	[VM_STATE_DEBUGGING] = T(RUNNING) | T(POWERING_OFF),
	[VM_STATE_DEBUGGING_LS] = T(DEBUGGING) | T(RUNNING_LS) |
		T(POWERING_OFF_LS),
	[VM_STATE_POWERING_OFF] = T(OFF),
	[VM_STATE_POWERING_OFF_LS] = T(POWERING_OFF) | T(OFF_LS),
	[VM_STATE_OFF] = T(DESTROYING),
	[VM_STATE_OFF_LS] = T(OFF),
	[VM_STATE_FATAL_ERROR] = T(POWERING_OFF),
	[VM_STATE_FATAL_ERROR_LS] = T(FATAL_ERROR) | T(POWERING_OFF_LS),
	[VM_STATE_GURU_MEDITATION] = T(DEBUGGING) | T(POWERING_OFF),
	[VM_STATE_GURU_MEDITATION_LS] = T(GURU_MEDITATION) | T(DEBUGGING_LS) |
		T(POWERING_OFF_LS),
	[VM_STATE_LOAD_FAILURE] = T(POWERING_OFF),
	[VM_STATE_DESTROYING] = T(TERMINATED),
	[VM_STATE_TERMINATED] = 0,
};

#undef T

const char *vm_state_name(enum vm_state s)
{
	if ((unsigned)s >= VM_STATE_COUNT)
		return "INVALID";
	return vm_state_names[s];
}

bool vm_state_legal(enum vm_state from, enum vm_state to)
{
	if ((unsigned)from >= VM_STATE_COUNT || (unsigned)to >= VM_STATE_COUNT)
		return false;
	return (vm_state_next[from] >> to) & 1;
}

bool vm_state_runs_guest(enum vm_state s)
{
	return s == VM_STATE_RUNNING || s == VM_STATE_RUNNING_LS;
}

void vm_sm_init(struct vm_sm *sm)
{
	pthread_mutex_init(&sm->lock, NULL);
	sm->state = VM_STATE_CREATING;
	sm->ncbs = 0;
}

int vm_sm_register(struct vm_sm *sm, vm_state_cb cb, void *ctx)
{
	int r = 0;

	pthread_mutex_lock(&sm->lock);
	if (sm->ncbs == VM_SM_MAX_CBS) {
		r = -ENOSPC;
	} else {
		sm->cbs[sm->ncbs].fn = cb;
		sm->cbs[sm->ncbs].ctx = ctx;
		sm->ncbs++;
	}
	pthread_mutex_unlock(&sm->lock);
	return r;
}

enum vm_state vm_sm_get(struct vm_sm *sm)
{
	enum vm_state s;

	pthread_mutex_lock(&sm->lock);
	s = sm->state;
	pthread_mutex_unlock(&sm->lock);
	return s;
}

int vm_sm_set(struct vm_sm *sm, int from, enum vm_state to)
{
	enum vm_state old;
	unsigned n;

	pthread_mutex_lock(&sm->lock);
	old = sm->state;
	if (from >= 0 && old != (enum vm_state)from) {
		pthread_mutex_unlock(&sm->lock);
		return -ESTALE;
	}
	if (!vm_state_legal(old, to)) {
		pthread_mutex_unlock(&sm->lock);
		return -EPERM;
	}
	sm->state = to;
	n = sm->ncbs;
	pthread_mutex_unlock(&sm->lock);
	/* Callbacks are registered before the VM runs; reading them unlocked
	 * after the change keeps a callback free to look at the state. */
	for (unsigned i = 0; i < n; i++)
		sm->cbs[i].fn(sm->cbs[i].ctx, old, to);
	return 0;
}
