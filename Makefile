# Bulkhead: one non-recursive Makefile. Each folder lists its sources in a
# module.mk; everything generated or built goes under build/.
#
#   make            build everything
#   make run        boot the demo guest through the whole process stack
#   make check      build and run every test
#   make bench      benchmarks (prints ratios measured side by side; in a
#                   nested KVM host when there is no /dev/kvm)
#   make clean
#
# Options: V=1 (show commands), WERROR=0 (warnings are not errors),
# SECCOMP_DEBUG=1 (seccomp violations are logged instead of killing).

BUILD ?= build
CC ?= gcc
V ?= 0
WERROR ?= 1

ifeq ($(V),0)
Q := @
msg = @printf '  %-7s %s\n' $(1) $(2)
else
Q :=
msg = @true
endif

PKGS := libprotobuf-c libseccomp libcap liblzf zlib check json-c
# liblzf ships no .pc file in Debian; link it by name.
PKG_CFLAGS = $(shell pkg-config --cflags libprotobuf-c 2>/dev/null)

WARN := -Wall -Wextra -Wmissing-prototypes -Wstrict-prototypes -Wshadow \
	-Wno-unused-parameter -Wformat=2
ifneq ($(WERROR),0)
WARN += -Werror
endif
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(CFLAGS) $(WARN) -D_GNU_SOURCE -pthread -MD -MP \
	-I. -I$(BUILD)/proto -I$(BUILD)/gen $(PKG_CFLAGS)
LDFLAGS ?=
LDLIBS_COMMON := -pthread -lprotobuf-c -llzf -lz

all:

define newline


endef

# ---- dependencies -------------------------------------------------------
DEPS_STAMP := $(BUILD)/.deps-build
$(DEPS_STAMP): scripts/install-deps.sh
	$(Q)mkdir -p $(BUILD)
	$(Q)sh scripts/install-deps.sh build
	$(Q)touch $@
deps: $(DEPS_STAMP)

# ---- protobuf -----------------------------------------------------------
PROTOS := $(wildcard proto/*.proto)
PROTO_C := $(patsubst proto/%.proto,$(BUILD)/proto/%.pb-c.c,$(PROTOS))
PROTO_H := $(PROTO_C:.c=.h)
$(BUILD)/proto/%.pb-c.c $(BUILD)/proto/%.pb-c.h: proto/%.proto $(DEPS_STAMP)
	$(call msg,PROTOC,$<)
	$(Q)mkdir -p $(BUILD)/proto
	$(Q)protoc-c --proto_path=proto --c_out=$(BUILD)/proto $<
PROTO_OBJS := $(patsubst %.c,%.o,$(PROTO_C))
.SECONDARY: $(PROTO_C) $(PROTO_H)
# Generated headers every compile may need (the protobuf code, and
# dev-cores.h from the devices' device.mk files: device-procs/module.mk).
DEV_CORES_H := $(BUILD)/gen/dev-cores.h
GEN_H = $(PROTO_H) $(DEV_CORES_H)

# ---- modules ------------------------------------------------------------
obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

include ipc/module.mk
include kdriver/module.mk
include emt-worker/module.mk
include device-procs/module.mk
include broker/module.mk
include policy/module.mk
include tests/module.mk
include bench/module.mk

$(BUILD)/obj/%.o: %.c $(DEPS_STAMP) | $(GEN_H)
	$(call msg,CC,$<)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/proto/%.pb-c.o: $(BUILD)/proto/%.pb-c.c
	$(call msg,CC,$<)
	$(Q)$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -c -o $@ $<

IPC_OBJS := $(call obj,$(ipc_SRCS))
KD_OBJS := $(call obj,$(kdriver_SRCS))
WORKER_LIB_OBJS := $(call obj,$(worker_lib_SRCS))
WORKER_MAIN_OBJS := $(call obj,$(worker_main_SRCS))
DEVHOST_OBJS := $(call obj,$(devhost_SRCS))
BROKER_LIB_OBJS := $(call obj,$(broker_lib_SRCS))
CLI_OBJS := $(call obj,$(cli_SRCS))
BROKERD_OBJS := $(call obj,$(brokerd_SRCS))

BIN := $(BUILD)/bin
BINARIES := $(BIN)/bulkhead $(BIN)/bulkheadd $(BIN)/bulkhead-worker \
	$(foreach d,$(DEVICES),$(BIN)/bulkhead-dev-$(d))

$(BIN)/bulkhead: $(CLI_OBJS) $(BROKER_LIB_OBJS) $(KD_OBJS) $(IPC_OBJS) $(PROTO_OBJS)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(BIN)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_COMMON) -ljson-c

$(BIN)/bulkheadd: $(BROKERD_OBJS) $(BROKER_LIB_OBJS) $(KD_OBJS) $(IPC_OBJS) $(PROTO_OBJS)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(BIN)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_COMMON)

$(BIN)/bulkhead-worker: $(WORKER_MAIN_OBJS) $(WORKER_LIB_OBJS) $(KD_OBJS) $(IPC_OBJS) $(PROTO_OBJS)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(BIN)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_COMMON)

# One binary per device: devhost + that device's core.
define device_bin
$(BIN)/bulkhead-dev-$(1): $(call obj,$($(1)_SRCS)) $(BUILD)/obj/dev-main/$(1).o \
		$(DEVHOST_OBJS) $(IPC_OBJS) $(PROTO_OBJS)
	$$(call msg,LD,$$@)
	$$(Q)mkdir -p $(BIN)
	$$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS_COMMON)
endef
$(foreach d,$(DEVICES),$(eval $(call device_bin,$(d))))

all: $(BINARIES) $(GUESTS)

# ---- running ------------------------------------------------------------
# Without a usable /dev/kvm, through a nested KVM host (scripts/kvm-nest).
run: $(BINARIES) $(GUESTS)
	@sh scripts/run-demo.sh $(BUILD) $(DEMO_GUEST)

PREFIX ?= /usr/local
# The CLI goes on PATH; the worker and device binaries beside each other in
# libexec, where the CLI looks for them.
install: $(BINARIES)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin \
		$(DESTDIR)$(PREFIX)/libexec/bulkhead
	install -m 755 $(BIN)/bulkhead $(DESTDIR)$(PREFIX)/bin/bulkhead
	install -m 755 $(BIN)/bulkheadd $(DESTDIR)$(PREFIX)/sbin/bulkheadd
	install -m 755 $(filter-out $(BIN)/bulkhead $(BIN)/bulkheadd,$(BINARIES)) \
		$(DESTDIR)$(PREFIX)/libexec/bulkhead/

check: all $(TEST_BINS)
	$(Q)sh tests/run-tests.sh $(BUILD)

# Everything make check runs, built but not run.
test-bins: all $(TEST_BINS)

clean:
	rm -rf $(BUILD)

.PHONY: all run check test-bins clean deps bench install

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
