/* SPDX-License-Identifier: MIT */
/* bulkhead-dev-null: the null device in its own process. */
#include "device-procs/devhost/dev.h"

int main(int argc, char **argv)
{
	return dev_main(argc, argv, &null_desc);
}
