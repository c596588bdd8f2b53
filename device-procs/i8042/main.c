/* SPDX-License-Identifier: MIT */
/* bulkhead-dev-i8042: the i8042 device in its own process. */
#include "device-procs/devhost/dev.h"

int main(int argc, char **argv)
{
	return dev_main(argc, argv, &i8042_desc);
}
