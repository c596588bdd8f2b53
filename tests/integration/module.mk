# bulkhead-lifecycle: drives VM lifecycles from outside for the lifecycle
# tests. It launches VMs with the broker library, which finds the worker and
# device binaries beside its own binary, so it is built into build/bin (but
# never installed).
LIFECYCLE_BIN := $(BUILD)/bin/bulkhead-lifecycle
TEST_BINS += $(LIFECYCLE_BIN)
$(LIFECYCLE_BIN): $(call obj,tests/integration/lifecycle.c) \
		$(call obj,$(broker_lib_SRCS)) $(call obj,$(kdriver_SRCS)) \
		$(call obj,$(ipc_SRCS)) $(PROTO_OBJS)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_COMMON)
