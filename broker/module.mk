# broker: the VM launcher shared by `bulkhead run` and bulkheadd, the CLI
# (bulkhead) and the broker daemon (bulkheadd).
#   launch (launch.h): launch.c supervise.c spawn.c
#   config (config.h), control (control.h)
#   registry (reg.h): registry.c quota.c console.c ops.c save.c stats.c
#   server (srv.h): daemon.c verbs.c
#   cli (cli.h): cli.c cli_ctl.c
broker_lib_SRCS += broker/spawn.c
broker_lib_SRCS += device-procs/manifest.c
broker_lib_SRCS += broker/launch.c
broker_lib_SRCS += broker/supervise.c
broker_lib_SRCS += broker/config.c
broker_lib_SRCS += broker/control.c
cli_SRCS += broker/cli.c
cli_SRCS += broker/cli_ctl.c
cli_SRCS += broker/cli_run.c
cli_SRCS += broker/cli_vmopts.c
brokerd_SRCS += broker/daemon.c
brokerd_SRCS += broker/verbs.c
brokerd_SRCS += broker/registry.c
brokerd_SRCS += broker/quota.c
brokerd_SRCS += broker/console.c
brokerd_SRCS += broker/ops.c
brokerd_SRCS += broker/save.c
brokerd_SRCS += broker/stats.c

# Modules (tests/tools/modgraph.sh), each with its public header.
MODULES += launch config control registry server cli
launch_MODULE := broker/launch.c broker/supervise.c broker/spawn.c
config_MODULE := broker/config.c
control_MODULE := broker/control.c
registry_MODULE := broker/registry.c broker/quota.c broker/console.c \
	broker/ops.c broker/save.c broker/stats.c
server_MODULE := broker/daemon.c broker/verbs.c
cli_MODULE := $(cli_SRCS)

# brkfuzz: a hostile client for tests/integration/test_broker_fuzz.sh.
BRKFUZZ_BIN := $(BUILD)/tests/bin/brkfuzz
TEST_BINS += $(BRKFUZZ_BIN)
$(BRKFUZZ_BIN): $(call obj,tests/integration/brkfuzz.c) $(call obj,$(ipc_SRCS)) \
		$(PROTO_OBJS)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_COMMON)
