# Check unit tests: one check_<module>.c each, gathered by check_main.c
unit_SRCS += tests/unit/check_main.c
unit_SRCS += tests/unit/check_ipc.c
unit_SRCS += tests/unit/check_ring.c
unit_SRCS += tests/unit/check_loader.c
unit_SRCS += tests/unit/check_uart.c

UNIT_BIN := $(BUILD)/tests/check_unit
TEST_BINS += $(UNIT_BIN)
$(UNIT_BIN): $(call obj,$(unit_SRCS)) $(call obj,$(worker_lib_SRCS)) \
		$(call obj,$(devcore_SRCS)) $(call obj,$(ipc_SRCS)) $(PROTO_OBJS)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_COMMON) $(shell pkg-config --libs check)
