# broker: the VM launcher shared by `bulkhead run` and bulkheadd, the CLI
# (bulkhead) and the broker daemon (bulkheadd).
broker_lib_SRCS += broker/spawn.c
broker_lib_SRCS += broker/vm.c
broker_lib_SRCS += broker/config.c
cli_SRCS += broker/cli.c
cli_SRCS += broker/cli_ctl.c
brokerd_SRCS += broker/daemon.c
brokerd_SRCS += broker/registry.c

# brkfuzz: a hostile client for tests/integration/test_broker_fuzz.sh.
BRKFUZZ_BIN := $(BUILD)/tests/bin/brkfuzz
TEST_BINS += $(BRKFUZZ_BIN)
$(BRKFUZZ_BIN): $(call obj,tests/integration/brkfuzz.c) $(call obj,$(ipc_SRCS)) \
		$(PROTO_OBJS)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_COMMON)
