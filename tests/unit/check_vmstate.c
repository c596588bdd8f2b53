/* SPDX-License-Identifier: MIT */
/*
 * The VM state machine against vmstate.md: every legal transition succeeds
 * (and calls the callbacks), every illegal one is refused with -EPERM and
 * changes nothing. The table below is transcribed from the reference by
 * state name, independently of the one in emt-worker/vmstate.c.
 */
#include <errno.h>
#include <string.h>

#include "emt-worker/vm.h"
#include "tests/unit/suites.h"

static const char *const legal[][2] = {
	{ "CREATING", "CREATED" },
	{ "CREATED", "LOADING" }, { "CREATED", "POWERING_ON" },
	{ "CREATED", "POWERING_OFF" },
	{ "LOADING", "SUSPENDED" }, { "LOADING", "LOAD_FAILURE" },
	{ "POWERING_ON", "RUNNING" },
	{ "RESUMING", "RUNNING" },
	{ "RUNNING", "POWERING_OFF" }, { "RUNNING", "SUSPENDING" },
	{ "RUNNING", "RESETTING" }, { "RUNNING", "SOFT_RESETTING" },
	{ "RUNNING", "RUNNING_LS" }, { "RUNNING", "DEBUGGING" },
	{ "RUNNING", "FATAL_ERROR" }, { "RUNNING", "GURU_MEDITATION" },
	{ "RUNNING_LS", "POWERING_OFF_LS" }, { "RUNNING_LS", "SUSPENDING_LS" },
	{ "RUNNING_LS", "SUSPENDING_EXT_LS" }, { "RUNNING_LS", "RESETTING_LS" },
	{ "RUNNING_LS", "SOFT_RESETTING_LS" }, { "RUNNING_LS", "RUNNING" },
	{ "RUNNING_LS", "DEBUGGING_LS" }, { "RUNNING_LS", "FATAL_ERROR_LS" },
	{ "RUNNING_LS", "GURU_MEDITATION_LS" },
	{ "RESETTING", "RUNNING" },
	{ "SOFT_RESETTING", "RUNNING" },
	{ "RESETTING_LS", "SUSPENDING_LS" },
	{ "SOFT_RESETTING_LS", "RUNNING_LS" },
	{ "SUSPENDING", "SUSPENDED" },
	{ "SUSPENDING_LS", "SUSPENDING" }, { "SUSPENDING_LS", "SUSPENDED_LS" },
	{ "SUSPENDING_EXT_LS", "SUSPENDING" },
	{ "SUSPENDING_EXT_LS", "SUSPENDED_EXT_LS" },
	{ "SUSPENDED", "POWERING_OFF" }, { "SUSPENDED", "SAVING" },
	{ "SUSPENDED", "RESETTING" }, { "SUSPENDED", "SOFT_RESETTING" },
	{ "SUSPENDED", "RESUMING" }, { "SUSPENDED", "LOADING" },
	{ "SUSPENDED_LS", "SUSPENDED" }, { "SUSPENDED_LS", "SAVING" },
	{ "SUSPENDED_EXT_LS", "SUSPENDED" }, { "SUSPENDED_EXT_LS", "SAVING" },
	{ "SAVING", "SUSPENDED" },
	{ "DEBUGGING", "RUNNING" }, { "DEBUGGING", "POWERING_OFF" },
	{ "DEBUGGING_LS", "DEBUGGING" }, { "DEBUGGING_LS", "RUNNING_LS" },
	{ "DEBUGGING_LS", "POWERING_OFF_LS" },
	{ "POWERING_OFF", "OFF" },
	{ "POWERING_OFF_LS", "POWERING_OFF" }, { "POWERING_OFF_LS", "OFF_LS" },
	{ "OFF", "DESTROYING" },
	{ "OFF_LS", "OFF" },
	{ "FATAL_ERROR", "POWERING_OFF" },
	{ "FATAL_ERROR_LS", "FATAL_ERROR" },
	{ "FATAL_ERROR_LS", "POWERING_OFF_LS" },
	{ "GURU_MEDITATION", "DEBUGGING" }, { "GURU_MEDITATION", "POWERING_OFF" },
	{ "GURU_MEDITATION_LS", "GURU_MEDITATION" },
	{ "GURU_MEDITATION_LS", "DEBUGGING_LS" },
	{ "GURU_MEDITATION_LS", "POWERING_OFF_LS" },
	{ "LOAD_FAILURE", "POWERING_OFF" },
	{ "DESTROYING", "TERMINATED" },
};
#define NLEGAL (sizeof(legal) / sizeof(legal[0]))

static int state_by_name(const char *name)
{
	for (int s = 0; s < VM_STATE_COUNT; s++)
		if (strcmp(vm_state_name((enum vm_state)s), name) == 0)
			return s;
	return -1;
}

static bool in_reference(int from, int to)
{
	for (size_t i = 0; i < NLEGAL; i++)
		if (state_by_name(legal[i][0]) == from &&
		    state_by_name(legal[i][1]) == to)
			return true;
	return false;
}

struct cb_log {
	int calls;
	enum vm_state old_state, new_state;
};

static void log_cb(void *ctx, enum vm_state o, enum vm_state n)
{
	struct cb_log *l = ctx;

	l->calls++;
	l->old_state = o;
	l->new_state = n;
}

START_TEST(test_names_unique_and_known)
{
	/* Every reference name maps to exactly one state. */
	for (size_t i = 0; i < NLEGAL; i++) {
		ck_assert_msg(state_by_name(legal[i][0]) >= 0, "%s", legal[i][0]);
		ck_assert_msg(state_by_name(legal[i][1]) >= 0, "%s", legal[i][1]);
	}
	for (int a = 0; a < VM_STATE_COUNT; a++)
		for (int b = a + 1; b < VM_STATE_COUNT; b++)
			ck_assert_str_ne(vm_state_name((enum vm_state)a),
					 vm_state_name((enum vm_state)b));
	ck_assert_str_eq(vm_state_name(VM_STATE_COUNT), "INVALID");
	ck_assert_str_eq(vm_state_name((enum vm_state)-1), "INVALID");
}
END_TEST

START_TEST(test_whole_table)
{
	unsigned nlegal = 0;

	for (int from = 0; from < VM_STATE_COUNT; from++) {
		for (int to = 0; to < VM_STATE_COUNT; to++) {
			struct vm_sm sm;
			struct cb_log log = { 0 };
			bool want = in_reference(from, to);
			int r;

			vm_sm_init(&sm);
			sm.state = (enum vm_state)from;
			ck_assert_int_eq(vm_sm_register(&sm, log_cb, &log), 0);
			ck_assert_int_eq(vm_state_legal((enum vm_state)from,
							(enum vm_state)to), want);
			r = vm_sm_set(&sm, from, (enum vm_state)to);
			if (want) {
				nlegal++;
				ck_assert_msg(r == 0, "%s -> %s refused (%d)",
					      vm_state_name((enum vm_state)from),
					      vm_state_name((enum vm_state)to), r);
				ck_assert_int_eq(vm_sm_get(&sm), to);
				ck_assert_int_eq(log.calls, 1);
				ck_assert_int_eq(log.old_state, from);
				ck_assert_int_eq(log.new_state, to);
			} else {
				ck_assert_msg(r == -EPERM, "%s -> %s gave %d",
					      vm_state_name((enum vm_state)from),
					      vm_state_name((enum vm_state)to), r);
				ck_assert_int_eq(vm_sm_get(&sm), from);
				ck_assert_int_eq(log.calls, 0);
			}
		}
	}
	ck_assert_uint_eq(nlegal, NLEGAL);
}
END_TEST

START_TEST(test_expected_from)
{
	struct vm_sm sm;

	vm_sm_init(&sm);
	ck_assert_int_eq(vm_sm_set(&sm, VM_STATE_CREATED, VM_STATE_POWERING_ON),
			 -ESTALE);
	ck_assert_int_eq(vm_sm_get(&sm), VM_STATE_CREATING);
	ck_assert_int_eq(vm_sm_set(&sm, -1, VM_STATE_CREATED), 0);
	ck_assert_int_eq(vm_sm_set(&sm, VM_STATE_CREATED, VM_STATE_POWERING_ON), 0);
	ck_assert_int_eq(vm_sm_set(&sm, -1, VM_STATE_RUNNING), 0);
	/* A whole life: suspend, resume, reset, power off, destroy. */
	ck_assert_int_eq(vm_sm_set(&sm, -1, VM_STATE_SUSPENDING), 0);
	ck_assert_int_eq(vm_sm_set(&sm, -1, VM_STATE_SUSPENDED), 0);
	ck_assert_int_eq(vm_sm_set(&sm, -1, VM_STATE_RUNNING), -EPERM);
	ck_assert_int_eq(vm_sm_set(&sm, -1, VM_STATE_RESUMING), 0);
	ck_assert_int_eq(vm_sm_set(&sm, -1, VM_STATE_RUNNING), 0);
	ck_assert_int_eq(vm_sm_set(&sm, -1, VM_STATE_RESETTING), 0);
	ck_assert_int_eq(vm_sm_set(&sm, -1, VM_STATE_RUNNING), 0);
	ck_assert_int_eq(vm_sm_set(&sm, -1, VM_STATE_POWERING_OFF), 0);
	ck_assert_int_eq(vm_sm_set(&sm, -1, VM_STATE_OFF), 0);
	ck_assert_int_eq(vm_sm_set(&sm, -1, VM_STATE_RUNNING), -EPERM);
	ck_assert_int_eq(vm_sm_set(&sm, -1, VM_STATE_DESTROYING), 0);
	ck_assert_int_eq(vm_sm_set(&sm, -1, VM_STATE_TERMINATED), 0);
	for (int to = 0; to < VM_STATE_COUNT; to++)
		ck_assert_int_eq(vm_sm_set(&sm, -1, (enum vm_state)to), -EPERM);
	ck_assert_int_eq(vm_sm_set(&sm, -1, VM_STATE_COUNT), -EPERM);
}
END_TEST

START_TEST(test_runs_guest)
{
	for (int s = 0; s < VM_STATE_COUNT; s++)
		ck_assert_int_eq(vm_state_runs_guest((enum vm_state)s),
				 s == VM_STATE_RUNNING || s == VM_STATE_RUNNING_LS);
}
END_TEST

Suite *vmstate_suite(void)
{
	Suite *s = suite_create("vmstate");
	TCase *tc = tcase_create("table");

	tcase_add_test(tc, test_names_unique_and_known);
	tcase_add_test(tc, test_whole_table);
	tcase_add_test(tc, test_expected_from);
	tcase_add_test(tc, test_runs_guest);
	suite_add_tcase(s, tc);
	return s;
}
