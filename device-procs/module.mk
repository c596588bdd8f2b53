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

DEVICES += virtio-blk
virtio-blk_SRCS += device-procs/virtio/virtio_mmio.c
virtio-blk_SRCS += device-procs/virtio-blk/vblk.c
virtio-blk_SRCS += device-procs/virtio-blk/main.c

DEVICES += virtio-rng
virtio-rng_SRCS += device-procs/virtio/virtio_mmio.c
virtio-rng_SRCS += device-procs/virtio-rng/vrng.c
virtio-rng_SRCS += device-procs/virtio-rng/main.c

# the cores without their mains, for unit tests
devcore_SRCS += device-procs/uart/uart.c
devcore_SRCS += device-procs/debugexit/debugexit.c
devcore_SRCS += device-procs/null/null.c
devcore_SRCS += device-procs/virtio/virtio_mmio.c
devcore_SRCS += device-procs/virtio-blk/vblk.c
devcore_SRCS += device-procs/virtio-rng/vrng.c
devcore_SRCS += device-procs/devhost/dev.c

DEVICES += rtc
rtc_SRCS += device-procs/rtc/rtc.c
rtc_SRCS += device-procs/rtc/main.c
devcore_SRCS += device-procs/rtc/rtc.c

DEVICES += i8042
i8042_SRCS += device-procs/i8042/i8042.c
i8042_SRCS += device-procs/i8042/main.c
devcore_SRCS += device-procs/i8042/i8042.c

# Modules (tests/tools/modgraph.sh): the runtime, the virtio transport, and
# each device (its core and its main).
MODULES += devhost virtio $(addprefix dev-,$(DEVICES))
devhost_MODULE := device-procs/devhost/devhost.c device-procs/devhost/dev.c
virtio_MODULE := device-procs/virtio/virtio_mmio.c
$(foreach d,$(DEVICES),$(eval dev-$(d)_MODULE := $(filter-out \
	device-procs/virtio/virtio_mmio.c,$($(d)_SRCS))))
