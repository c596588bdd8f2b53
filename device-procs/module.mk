# device-procs: the devhost runtime, the device manifest and one folder per
# device. A device's device.mk is its make side: its name <name> (the
# binary bulkhead-dev-<name>, the fuzz harness tests/fuzz/fuzz-<name>.c),
# <name>_CORE (what the unit tests and the fuzz harness link) and
# <name>_SRCS (the binary's sources). What the device is (regions, IRQs,
# what it may ask of the VM, its backend, its option) is its entry in
# device-procs/manifest.c; its policy is policy/dev-<kind>.policy.
devhost_SRCS += device-procs/devhost/devhost.c
devhost_SRCS += device-procs/devhost/dev.c
devhost_SRCS += device-procs/manifest.c

include $(sort $(wildcard device-procs/*/device.mk))

# the cores without their mains, for unit tests
devcore_SRCS := $(sort device-procs/devhost/dev.c device-procs/manifest.c \
	$(foreach d,$(DEVICES),$($(d)_CORE)))

# Modules (tests/tools/modgraph.sh): the runtime, the manifest, the virtio
# transport, and each device (its core and its main).
MODULES += devhost manifest virtio $(addprefix dev-,$(DEVICES))
devhost_MODULE := device-procs/devhost/devhost.c device-procs/devhost/dev.c
manifest_MODULE := device-procs/manifest.c
virtio_MODULE := device-procs/virtio/virtio_mmio.c
$(foreach d,$(DEVICES),$(eval dev-$(d)_MODULE := $(filter-out \
	device-procs/virtio/virtio_mmio.c,$($(d)_SRCS))))
