# Check unit tests: every tests/unit/check_<module>.c, gathered by
# check_main.c (suites.h lists the suites). They link against the module
# libraries below; a module whose tests need more adds it to UNIT_LINK_SRCS.
unit_SRCS := $(wildcard tests/unit/check_*.c)
UNIT_LINK_SRCS += $(worker_lib_SRCS) $(devcore_SRCS) $(ipc_SRCS)

UNIT_BIN := $(BUILD)/tests/check_unit
TEST_BINS += $(UNIT_BIN)
$(UNIT_BIN): $(call obj,$(unit_SRCS)) $(call obj,$(sort $(UNIT_LINK_SRCS))) \
		$(PROTO_OBJS)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_COMMON) $(UNIT_LDLIBS) \
		$(shell pkg-config --libs check)
