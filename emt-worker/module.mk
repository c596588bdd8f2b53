# emt-worker: bulkhead-worker. worker_lib_SRCS are also linked into tests.
worker_lib_SRCS += emt-worker/loader.c
worker_lib_SRCS += emt-worker/vmstate.c
worker_lib_SRCS += emt-worker/vmsync.c
worker_lib_SRCS += emt-worker/mptable.c
worker_lib_SRCS += emt-worker/aml.c
worker_lib_SRCS += emt-worker/acpi.c
worker_lib_SRCS += emt-worker/boottab.c
# the device manifest: what each device announces in the boot tables
worker_lib_SRCS += device-procs/manifest.c
worker_lib_SRCS += emt-worker/devrules.c
worker_main_SRCS += emt-worker/main.c
worker_main_SRCS += emt-worker/emt.c
worker_main_SRCS += emt-worker/vmapi.c
worker_main_SRCS += emt-worker/save.c
# The saved-state stream: shared parts, writer, reader.
SSM_SRCS := emt-worker/ssm_common.c emt-worker/ssm_write.c emt-worker/ssm_read.c
worker_lib_SRCS += $(SSM_SRCS)
# bulkhead-ssm-dump: lists the units of a saved-state stream (debugging aid).
SSM_DUMP_SRCS := emt-worker/ssm_dump.c $(SSM_SRCS)
$(BUILD)/bin/bulkhead-ssm-dump: $(call obj,$(SSM_DUMP_SRCS))
	$(call msg,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_COMMON)
all: $(BUILD)/bin/bulkhead-ssm-dump

# Modules (tests/tools/modgraph.sh): each with its public header.
MODULES += loader vmstate vmsync mptable aml acpi boottab devrules ssm emt vmapi save worker
loader_MODULE := emt-worker/loader.c
vmstate_MODULE := emt-worker/vmstate.c
vmsync_MODULE := emt-worker/vmsync.c
mptable_MODULE := emt-worker/mptable.c
aml_MODULE := emt-worker/aml.c
acpi_MODULE := emt-worker/acpi.c
boottab_MODULE := emt-worker/boottab.c
devrules_MODULE := emt-worker/devrules.c
ssm_MODULE := $(SSM_SRCS)
# The worker's layers, each calling only down: main.c -> save.c (saved
# state) -> vmapi.c (the VM API) -> emt.c (the EMTs; up only through
# struct emt_vm_ops).
emt_MODULE := emt-worker/emt.c
vmapi_MODULE := emt-worker/vmapi.c
save_MODULE := emt-worker/save.c
worker_MODULE := emt-worker/main.c
