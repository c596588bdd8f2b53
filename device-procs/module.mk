# device-procs: the devhost runtime and one folder per device.
# DEVICES names the binaries bulkhead-dev-<name>; <name>_SRCS their cores.
devhost_SRCS += device-procs/devhost/devhost.c
devhost_SRCS += device-procs/devhost/dev.c

DEVICES += uart
uart_SRCS += device-procs/uart/uart.c
uart_SRCS += device-procs/uart/main.c

DEVICES += debugexit
debugexit_SRCS += device-procs/debugexit/debugexit.c
debugexit_SRCS += device-procs/debugexit/main.c

DEVICES += null
null_SRCS += device-procs/null/null.c
null_SRCS += device-procs/null/main.c

# the cores without their mains, for unit tests
devcore_SRCS += device-procs/uart/uart.c
devcore_SRCS += device-procs/debugexit/debugexit.c
devcore_SRCS += device-procs/null/null.c
devcore_SRCS += device-procs/devhost/dev.c
