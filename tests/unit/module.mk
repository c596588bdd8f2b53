# Check unit tests: every tests/unit/check_<module>.c, gathered by
# check_main.c. Each must define Suite *<module>_suite(void): the list of
# suites is made from the file names (build/tests/unit-suites.h), so a
# suite cannot be left out, and a file without its suite fails to link.
# They link against the module libraries below; a module whose tests need
# more adds it to UNIT_LINK_SRCS.
unit_SRCS := $(wildcard tests/unit/check_*.c)
UNIT_SUITES := $(patsubst tests/unit/check_%.c,%,$(filter-out \
	tests/unit/check_main.c,$(unit_SRCS)))
# The device cores' fake host, shared by their suites.
unit_SRCS += tests/unit/fakehost.c
# Helpers the other suites share (testlib.h).
unit_SRCS += tests/unit/testlib.c
UNIT_SUITES_H := $(BUILD)/tests/unit-suites.h
$(UNIT_SUITES_H): $(MAKEFILE_LIST) $(unit_SRCS)
	$(call msg,GEN,$@)
	$(shell mkdir -p $(dir $@))
	$(file >$@.tmp,/* Generated from tests/unit/check_*.c: one suite each. */$(newline)$(foreach n,$(UNIT_SUITES),UNIT_SUITE($(n))$(newline)))
	$(Q)cmp -s $@.tmp $@ 2>/dev/null && rm -f $@.tmp || mv $@.tmp $@
$(call obj,$(unit_SRCS)): $(UNIT_SUITES_H)
$(call obj,$(unit_SRCS)): ALL_CFLAGS += -I$(BUILD)/tests
UNIT_LINK_SRCS += $(worker_lib_SRCS) $(devcore_SRCS) $(ipc_SRCS)

UNIT_BIN := $(BUILD)/tests/check_unit
TEST_BINS += $(UNIT_BIN)
$(UNIT_BIN): $(call obj,$(unit_SRCS)) $(call obj,$(sort $(UNIT_LINK_SRCS))) \
		$(PROTO_OBJS)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_COMMON) $(UNIT_LDLIBS) \
		$(shell pkg-config --libs check)
