/* SPDX-License-Identifier: MIT */
/* bulkhead-dev-debugexit: the debugexit device in its own process. */
#include "device-procs/devhost/dev.h"

int main(int argc, char **argv)
{
	return dev_main(argc, argv, &debugexit_desc);
}
