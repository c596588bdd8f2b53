/* SPDX-License-Identifier: MIT */
/*
 * bulkhead-dev-<name>: one device in its own process. The same main() for
 * every device, built once per device with -DDEV_DESC=<its descriptor>
 * (device-procs/module.mk, from the device's device.mk).
 */
#include "device-procs/devhost/dev.h"

#ifndef DEV_DESC
#error "build with -DDEV_DESC=<the device core's struct dev_desc>"
#endif

int main(int argc, char **argv)
{
	return dev_main(argc, argv, &DEV_DESC);
}
