# tests/tools: small programs the integration tests drive.
# load-image: the worker's image loader on a file, outside any VM.
LOAD_IMAGE_BIN := $(BUILD)/tests/load-image
TEST_BINS += $(LOAD_IMAGE_BIN)
$(LOAD_IMAGE_BIN): $(call obj,tests/tools/load-image.c emt-worker/loader.c)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^

# ssm-damage: damaged copies of saved-state streams, and their check by the
# saved-state reader in process (tests/integration/test_saved_state_hostile.sh).
SSM_DAMAGE_BIN := $(BUILD)/tests/ssm-damage
TEST_BINS += $(SSM_DAMAGE_BIN)
$(SSM_DAMAGE_BIN): $(call obj,tests/tools/ssm-damage.c $(SSM_SRCS))
	$(call msg,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_COMMON)

# devlist: the device manifest as text; build/devices.txt, which shell
# tests read for the list of devices.
DEVLIST_BIN := $(BUILD)/tests/devlist
DEVICES_FILE := $(BUILD)/devices.txt
TEST_BINS += $(DEVICES_FILE)
$(DEVLIST_BIN): $(call obj,tests/tools/devlist.c device-procs/manifest.c)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^
$(DEVICES_FILE): $(DEVLIST_BIN)
	$(call msg,GEN,$@)
	$(Q)$(DEVLIST_BIN) >$@.tmp && mv $@.tmp $@

# What the integration tests use on the host (Debian's kernel, busybox,
# cpio): installed once by the install script. QEMU, for the nest, is
# installed by tests/run-tests.sh only when the nest is needed.
CHECK_DEPS_STAMP := $(BUILD)/.deps-check
TEST_BINS += $(CHECK_DEPS_STAMP)
$(CHECK_DEPS_STAMP): scripts/install-deps.sh
	$(Q)mkdir -p $(BUILD)
	$(Q)sh scripts/install-deps.sh check
	$(Q)touch $@

# The module graph for tests/integration/test_module_graph.sh: one line per
# module, its name and its objects (tests/tools/modgraph.sh reads it).
MODULES_FILE := $(BUILD)/modules.txt
TEST_BINS += $(MODULES_FILE)
$(MODULES_FILE): $(MAKEFILE_LIST) $(foreach m,$(MODULES),$(call obj,$($(m)_MODULE)))
	$(call msg,GEN,$@)
	$(shell mkdir -p $(dir $@))
	$(file >$@,$(foreach m,$(MODULES),$(m) $(call obj,$($(m)_MODULE))$(newline)))

# acpi-dump: the worker's boot tables for a list of devices, as files for
# iasl -d (tests/integration/test_acpi_tables.sh).
ACPI_DUMP_BIN := $(BUILD)/tests/acpi-dump
TEST_BINS += $(ACPI_DUMP_BIN)
$(ACPI_DUMP_BIN): $(call obj,tests/tools/acpi-dump.c emt-worker/boottab.c \
		emt-worker/acpi.c emt-worker/aml.c emt-worker/mptable.c \
		device-procs/manifest.c)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^
