/* SPDX-License-Identifier: MIT */
/* bulkhead-dev-uart: the uart device in its own process. */
#include "device-procs/devhost/dev.h"

int main(int argc, char **argv)
{
	return dev_main(argc, argv, &uart_desc);
}
