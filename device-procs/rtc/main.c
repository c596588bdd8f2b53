/* SPDX-License-Identifier: MIT */
/* bulkhead-dev-rtc: the rtc device in its own process. */
#include "device-procs/devhost/dev.h"

int main(int argc, char **argv)
{
	return dev_main(argc, argv, &rtc_desc);
}
