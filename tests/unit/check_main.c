/* SPDX-License-Identifier: MIT */
/* One runner for every unit suite. Exit status 0 only if all pass.
 * CK_RUN_SUITE=name (Check's own) runs one. */
#include <stdio.h>
#include <stdlib.h>

#include "tests/unit/suites.h"

int main(void)
{
	Suite *(*const suites[])(void) = {
#define UNIT_SUITE(name) name##_suite,
#include "unit-suites.h"
#undef UNIT_SUITE
	};
	SRunner *sr = srunner_create(NULL);
	int failed;

	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		srunner_add_suite(sr, suites[i]());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
