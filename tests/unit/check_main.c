/* SPDX-License-Identifier: MIT */
/* One runner for every unit suite. Exit status 0 only if all pass. */
#include <stdio.h>
#include <stdlib.h>

#include "tests/unit/suites.h"

int main(void)
{
	Suite *(*const suites[])(void) = {
		ipc_suite, ring_suite, loader_suite, uart_suite, vmstate_suite,
		vmreq_suite, ssm_suite, policy_suite, rtc_suite, i8042_suite,
		virtio_suite, bzimage_suite, fuzzreplay_suite, acpi_suite,
		mptable_suite,
	};
	SRunner *sr = srunner_create(NULL);
	unsigned n = 0;
	int failed;

	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		if (suites[i]) {
			srunner_add_suite(sr, suites[i]());
			n++;
		}
	}
	if (n == 0) {
		fprintf(stderr, "check_unit: no suites linked in\n");
		return EXIT_FAILURE;
	}
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
