# policy: the sandbox every child enters (sbx.c), its seccomp policies
# (*.policy) and bulkhead-policyc, which compiles them to BPF with
# libseccomp at build time into build/policy/policies.c; that table is linked
# into the worker and every device, so nothing is read at run time.
#
#   make SECCOMP_DEBUG=1   filters trap instead of kill: a forbidden syscall
#                          is logged with its arguments and carried out
#                          (for writing policies; never for production)
#
# Included after the modules whose binaries sandbox themselves (emt-worker,
# device-procs) and before tests/.

SECCOMP_DEBUG ?= 0

POLICYC := $(BUILD)/bin/bulkhead-policyc
policyc_SRCS += policy/policyc.c
policyc_SRCS += policy/compile.c
policyc_SRCS += policy/consts.c
POLICY_FILES := $(sort $(wildcard policy/*.policy))

# The stamp names the mode, so switching SECCOMP_DEBUG regenerates the BPF.
SBX_MODE := $(if $(filter-out 0,$(SECCOMP_DEBUG)),debug,kill)
SBX_MODE_STAMP := $(BUILD)/policy/mode-$(SBX_MODE)
POLICYC_FLAGS := $(if $(filter debug,$(SBX_MODE)),-d)

$(SBX_MODE_STAMP):
	$(Q)mkdir -p $(dir $@)
	$(Q)rm -f $(BUILD)/policy/mode-*
	$(Q)touch $@

$(POLICYC): $(call obj,$(policyc_SRCS))
	$(call msg,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ -lseccomp

SBX_GEN_C := $(BUILD)/policy/policies.c
$(SBX_GEN_C): $(POLICYC) $(POLICY_FILES) $(SBX_MODE_STAMP)
	$(call msg,POLICYC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(POLICYC) $(POLICYC_FLAGS) -o $@ $(POLICY_FILES)

# Every process that sandboxes itself links the runtime and the table.
sbx_SRCS += policy/sbx.c
sbx_SRCS += $(SBX_GEN_C)
devhost_SRCS += $(sbx_SRCS)
worker_main_SRCS += $(sbx_SRCS)
LDLIBS_COMMON += -lcap

# The broker names the syscall that killed a child (broker/spawn.c).
SBX_NAMES_C := $(BUILD)/policy/syscall-names.c
$(SBX_NAMES_C): $(POLICYC)
	$(call msg,POLICYC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(POLICYC) -n -o $@
broker_lib_SRCS += $(SBX_NAMES_C)

# Unit tests (tests/unit/check_policy.c): the parser, the compiler, the
# runtime and the real compiled policies.
UNIT_LINK_SRCS += policy/compile.c
UNIT_LINK_SRCS += policy/consts.c
UNIT_LINK_SRCS += $(sbx_SRCS)
UNIT_LDLIBS += -lseccomp -lcap

# ---- the test-only build: build/tests/bin (never installed) --------------
#
# test_seccomp_kill.sh runs `bulkhead run` from here. Beside the production
# CLI and devices it finds:
#  - bulkhead-dev-null: the testbad device (device-procs/testbad), which
#    registers as the null device (null_desc's regions, --null-dev) and
#    attempts a forbidden syscall when the guest writes to one of its
#    ports; linked with a policy table in which its policy is
#    common-device.policy, the base every device shares;
#  - bulkhead-worker: built with -DBULKHEAD_TEST, which adds
#    policy/sbx-test.c: signals that make the worker attempt KVM_CREATE_VM
#    or openat once its run-phase filter is loaded.
TEST_BIN := $(BUILD)/tests/bin
testbad_SRCS += device-procs/testbad/testbad.c
testbad_SRCS += device-procs/null/null.c

SBX_TEST_GEN_C := $(BUILD)/tests/policy/policies.c
$(SBX_TEST_GEN_C): $(POLICYC) $(POLICY_FILES) $(SBX_MODE_STAMP)
	$(call msg,POLICYC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(POLICYC) $(POLICYC_FLAGS) -o $@ dev-null=policy/common-device.policy

SBX_TEST_OBJ := $(BUILD)/obj/tests/policy/sbx-test-build.o
$(SBX_TEST_OBJ): policy/sbx.c $(DEPS_STAMP)
	$(call msg,CC,$< -DBULKHEAD_TEST)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -DBULKHEAD_TEST -c -o $@ $<

$(TEST_BIN)/bulkhead-dev-null: $(call obj,$(testbad_SRCS)) \
		$(filter-out $(call obj,$(SBX_GEN_C)),$(call obj,$(devhost_SRCS))) \
		$(call obj,$(SBX_TEST_GEN_C)) $(call obj,$(ipc_SRCS)) $(PROTO_OBJS)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_COMMON)

$(TEST_BIN)/bulkhead-worker: \
		$(filter-out $(call obj,policy/sbx.c),$(call obj,$(worker_main_SRCS))) \
		$(SBX_TEST_OBJ) $(call obj,policy/sbx-test.c) \
		$(call obj,$(worker_lib_SRCS)) $(call obj,$(kdriver_SRCS)) \
		$(call obj,$(ipc_SRCS)) $(PROTO_OBJS)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_COMMON)

# The CLI and the other devices are the production binaries, copied (the
# CLI runs helpers from its own folder).
$(TEST_BIN)/bulkhead: $(BUILD)/bin/bulkhead
	$(Q)mkdir -p $(dir $@)
	$(Q)cp -f $< $@
$(TEST_BIN)/bulkhead-dev-%: $(BUILD)/bin/bulkhead-dev-%
	$(Q)mkdir -p $(dir $@)
	$(Q)cp -f $< $@

TEST_BINS += $(TEST_BIN)/bulkhead $(TEST_BIN)/bulkhead-worker
TEST_BINS += $(TEST_BIN)/bulkhead-dev-null
TEST_BINS += $(patsubst %,$(TEST_BIN)/bulkhead-dev-%,$(filter-out null,$(DEVICES)))

# Modules (tests/tools/modgraph.sh).
MODULES += sbx policyc
sbx_MODULE := policy/sbx.c
policyc_MODULE := $(policyc_SRCS)
