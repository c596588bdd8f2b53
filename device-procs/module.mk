# device-procs: the devhost runtime, the device manifest and one folder per
# device. A device's device.mk is its make side: its name <name> (the
# binary bulkhead-dev-<name>, the fuzz target <name>), <name>_CORE (what
# the unit tests and the fuzz harness link), <name>_SRCS (the binary's
# sources) and <name>_DESC (its core's struct dev_desc). Its main() and
# its fuzz harness are the same for every device (devhost/main.c,
# tests/fuzz/fuzz-dev.c), built with -DDEV_DESC=<name>_DESC. What the
# device is (regions, IRQs, what it may ask of the VM, its backend, its
# option, its saved-state version) is its entry in device-procs/manifest.c;
# its policy is policy/dev-<kind>.policy.
devhost_SRCS += device-procs/devhost/devhost.c
devhost_SRCS += device-procs/devhost/dev.c
devhost_SRCS += device-procs/manifest.c

include $(sort $(wildcard device-procs/*/device.mk))

# Every core's descriptor, for dev.h's declarations and the unit tests'
# list of cores (check_manifest).
$(DEV_CORES_H): $(MAKEFILE_LIST)
	$(call msg,GEN,$@)
	$(shell mkdir -p $(dir $@))
	$(file >$@.tmp,/* Generated from the devices' device.mk files: DEV_CORE(kind, descriptor) each. */$(newline)$(subst $(newline) ,$(newline),$(foreach d,$(DEVICES),DEV_CORE($(d), $($(d)_DESC))$(newline))))
	$(Q)cmp -s $@.tmp $@ 2>/dev/null && rm -f $@.tmp || mv $@.tmp $@

# Each device's main(): devhost/main.c with its descriptor. A static
# pattern rule: a plain one, whose prerequisite always exists, would let
# make's built-in `%: %.o` try to remake the included .d files from it.
DEV_MAIN_OBJS := $(patsubst %,$(BUILD)/obj/dev-main/%.o,$(DEVICES))
$(DEV_MAIN_OBJS): $(BUILD)/obj/dev-main/%.o: device-procs/devhost/main.c $(DEPS_STAMP) | $(GEN_H)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -DDEV_DESC=$($*_DESC) -c -o $@ $<

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
