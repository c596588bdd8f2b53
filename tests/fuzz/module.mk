# tests/fuzz: fuzz harnesses for every parser of untrusted bytes and every
# device core, their replay in `make check`, and `make fuzz`.
#
#   make fuzz [FUZZ_SECONDS=N] [FUZZ_ONLY="uart loader"]
#       builds build/fuzz/<target> with clang and
#       -fsanitize=fuzzer,address,undefined, runs each for N seconds
#       (default 30) on tests/fuzz/corpus/<target> (new inputs go to
#       build/fuzz/corpus/<target>), and prints executions per second,
#       coverage and crashes per target; then the whole-process mode under
#       afl-fuzz when AFL++ is installed (scripts/install-deps.sh fuzz).
#   make check
#       builds build/tests/fuzz-replay-<target> with $(CC) (and ASan/UBSan
#       when it has them) and tests/integration/test_fuzz_replay.sh runs
#       every stored input through it.
#
# A target is its harness tests/fuzz/fuzz-<target>.c (a device's:
# fuzz-dev.c with its descriptor) plus the real code it feeds, listed in
# fuzz_<target>_SRCS; every target also gets
# FUZZ_COMMON_SRCS and the protobuf-c code.

FUZZ_OUT := $(BUILD)/fuzz
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 30
FUZZ_ONLY ?=

FUZZ_COMMON_SRCS := tests/fuzz/fuzzlib.c device-procs/devhost/dev.c \
	device-procs/manifest.c $(ipc_SRCS)

# ---- targets: a device core each (device-procs/*/device.mk), then the
# parsers
FUZZ_TARGETS += $(DEVICES)
$(foreach d,$(DEVICES),$(eval fuzz_$(d)_SRCS := $($(d)_CORE)))

FUZZ_TARGETS += ipc-frame
fuzz_ipc-frame_SRCS := tests/fuzz/fz-ipc.c
FUZZ_TARGETS += loader
fuzz_loader_SRCS := tests/fuzz/fz-loader.c emt-worker/loader.c
FUZZ_TARGETS += ssm
fuzz_ssm_SRCS := tests/fuzz/fz-ssm.c $(SSM_SRCS)

# The dispatch tables of each process (tests/fuzz/tap-*.c compile the
# process's source, whose tables are static).
FUZZ_TARGETS += dispatch-devhost
fuzz_dispatch-devhost_SRCS := tests/fuzz/tap-devhost.c \
	device-procs/uart/uart.c device-procs/debugexit/debugexit.c \
	device-procs/virtio/virtio_mmio.c device-procs/virtio-blk/vblk.c \
	$(sbx_SRCS)
FUZZ_TARGETS += dispatch-broker
fuzz_dispatch-broker_SRCS := tests/fuzz/fz-brkvm.c $(broker_lib_SRCS) \
	$(kdriver_SRCS)
# The control protocol: bulkheadd without /dev/kvm (the tap's kd stubs
# stand in for kdriver/kd.c).
FUZZ_TARGETS += control
fuzz_control_SRCS := tests/fuzz/tap-daemon.c \
	$(filter-out broker/daemon.c,$(brokerd_SRCS)) $(broker_lib_SRCS)
FUZZ_TARGETS += dispatch-worker
fuzz_dispatch-worker_SRCS := tests/fuzz/tap-worker.c \
	$(filter-out emt-worker/main.c,$(worker_main_SRCS)) \
	$(worker_lib_SRCS) $(kdriver_SRCS)

# ---- building: libFuzzer (clang) and replay ($(CC)) -------------------------
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=gnu11 -O1 -g -fno-omit-frame-pointer \
	$(filter-out -Werror,$(WARN)) -D_GNU_SOURCE -pthread -MD -MP \
	-I. -I$(BUILD)/proto -I$(BUILD)/gen $(PKG_CFLAGS) $(FUZZ_SAN)

# The replay carries AddressSanitizer and UBSan when $(CC) can build with
# them (gcc and clang on Debian can); `make FUZZ_REPLAY_SAN=` turns that off.
# Probed once, and only when a replay object is built.
FUZZ_REPLAY_SAN = $(eval FUZZ_REPLAY_SAN := $(shell \
	printf 'int main(void){return 0;}\n' | \
	$(CC) -fsanitize=address,undefined -x c - -o /dev/null 2>/dev/null && \
	echo "-fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer"))$(FUZZ_REPLAY_SAN)
FUZZ_REPLAY_OUT := $(BUILD)/fuzz-replay

# A device's harness is tests/fuzz/fuzz-dev.c built with its descriptor
# (dev-harness/<device>.o, below); any other target's is fuzz-<target>.c.
fuzz_is_dev = $(filter $(1),$(DEVICES))
fuzz_srcs = $(if $(call fuzz_is_dev,$(1)),,tests/fuzz/fuzz-$(1).c) \
	$(fuzz_$(1)_SRCS) $(FUZZ_COMMON_SRCS) $(PROTO_C)
fuzz_objs = $(patsubst %.c,$(FUZZ_OUT)/obj/%.o,$(sort $(call fuzz_srcs,$(1)))) \
	$(if $(call fuzz_is_dev,$(1)),$(FUZZ_OUT)/obj/dev-harness/$(1).o)
fuzz_replay_objs = $(patsubst %.c,$(FUZZ_REPLAY_OUT)/obj/%.o,\
	$(sort tests/fuzz/replay.c $(call fuzz_srcs,$(1)))) \
	$(if $(call fuzz_is_dev,$(1)),$(FUZZ_REPLAY_OUT)/obj/dev-harness/$(1).o)

# clang, libFuzzer and AFL++ are installed on first use (install-deps.sh
# fuzz), not by make all or make check.
FUZZ_DEPS_STAMP := $(BUILD)/.deps-fuzz
$(FUZZ_DEPS_STAMP): scripts/install-deps.sh
	$(Q)mkdir -p $(BUILD)
	$(Q)sh scripts/install-deps.sh fuzz
	$(Q)touch $@

# Coverage feedback comes from the real code (and the taps, which compile
# it); the harnesses' own helpers only slow each run down with it.
FUZZ_COV := -fsanitize=fuzzer-no-link
$(FUZZ_OUT)/obj/tests/fuzz/fuzzlib.o $(FUZZ_OUT)/obj/tests/fuzz/fz-%.o: FUZZ_COV :=

$(FUZZ_OUT)/obj/%.o: %.c $(DEPS_STAMP) | $(GEN_H) $(FUZZ_DEPS_STAMP)
	$(call msg,FUZZCC,$<)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_COV) $(if $(findstring .pb-c.,$<),-Wno-missing-prototypes) -c -o $@ $<

$(FUZZ_REPLAY_OUT)/obj/%.o: %.c $(DEPS_STAMP) | $(GEN_H)
	$(call msg,CC,$<)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) $(FUZZ_REPLAY_SAN) $(if $(findstring .pb-c.,$<),-Wno-missing-prototypes) -c -o $@ $<

# Static pattern rules, for the reason given in device-procs/module.mk.
$(patsubst %,$(FUZZ_OUT)/obj/dev-harness/%.o,$(DEVICES)): \
		$(FUZZ_OUT)/obj/dev-harness/%.o: tests/fuzz/fuzz-dev.c $(DEPS_STAMP) | $(GEN_H) $(FUZZ_DEPS_STAMP)
	$(call msg,FUZZCC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -DDEV_DESC=$($*_DESC) -c -o $@ $<

$(patsubst %,$(FUZZ_REPLAY_OUT)/obj/dev-harness/%.o,$(DEVICES)): \
		$(FUZZ_REPLAY_OUT)/obj/dev-harness/%.o: tests/fuzz/fuzz-dev.c $(DEPS_STAMP) | $(GEN_H)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) $(FUZZ_REPLAY_SAN) -DDEV_DESC=$($*_DESC) -c -o $@ $<

define fuzz_target
$(FUZZ_OUT)/$(1): $(call fuzz_objs,$(1))
	$$(call msg,LD,$$@)
	$$(Q)$$(FUZZ_CC) -fsanitize=fuzzer $$(FUZZ_SAN) -o $$@ $$^ $$(LDLIBS_COMMON)

$(BUILD)/tests/fuzz-replay-$(1): $(call fuzz_replay_objs,$(1))
	$$(call msg,LD,$$@)
	$$(Q)mkdir -p $$(dir $$@)
	$$(Q)$$(CC) $$(LDFLAGS) $$(FUZZ_REPLAY_SAN) -o $$@ $$^ $$(LDLIBS_COMMON)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_target,$(t))))

FUZZ_BINS := $(patsubst %,$(FUZZ_OUT)/%,$(FUZZ_TARGETS))
FUZZ_REPLAY_BINS := $(patsubst %,$(BUILD)/tests/fuzz-replay-%,$(FUZZ_TARGETS))
TEST_BINS += $(FUZZ_REPLAY_BINS)

# ---- the whole-process mode -------------------------------------------------
# bulkhead-devdrive runs one real device binary under its real sandbox and
# plays an input file (or afl-fuzz's) against it. It sits beside the device
# binaries, where brk_spawn looks for them.
DEVDRIVE := $(BUILD)/bin/bulkhead-devdrive
devdrive_SRCS := tests/fuzz/devdrive.c tests/fuzz/fuzzlib.c broker/spawn.c \
	device-procs/devhost/dev.c device-procs/manifest.c $(ipc_SRCS)
$(DEVDRIVE): $(call obj,$(devdrive_SRCS)) $(PROTO_OBJS)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_COMMON)
all: $(DEVDRIVE)

# Test-only, in build/tests/bin (never installed): a UART binary with a
# planted bug (tests/fuzz/seeded-uart.c, -DBULKHEAD_SEEDED_BUG) and a
# devdrive beside it, to show that the whole-process mode finds it.
SEEDED_UART := $(TEST_BIN)/bulkhead-dev-uart-seeded
SEEDED_UART_OBJ := $(BUILD)/obj/tests/fuzz/seeded-uart.o
$(SEEDED_UART_OBJ): tests/fuzz/seeded-uart.c $(DEPS_STAMP) | $(GEN_H)
	$(call msg,CC,$< -DBULKHEAD_SEEDED_BUG)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -DBULKHEAD_SEEDED_BUG -c -o $@ $<
$(SEEDED_UART): $(SEEDED_UART_OBJ) $(call obj,$(devhost_SRCS)) \
		$(call obj,$(ipc_SRCS)) $(PROTO_OBJS)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_COMMON)
$(TEST_BIN)/bulkhead-devdrive: $(DEVDRIVE)
	$(Q)mkdir -p $(dir $@)
	$(Q)cp -f $< $@
TEST_BINS += $(DEVDRIVE) $(SEEDED_UART) $(TEST_BIN)/bulkhead-devdrive

# ---- seeds ------------------------------------------------------------------
# tests/fuzz/corpus/<target>/seed-* come from tests/fuzz/mkseeds.c; run
# `make fuzz-seeds` after changing an input format (and commit the result).
FUZZ_MKSEEDS := $(BUILD)/tests/fuzz-mkseeds
$(FUZZ_MKSEEDS): $(call obj,tests/fuzz/mkseeds.c $(SSM_SRCS)) $(PROTO_OBJS)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_COMMON)
fuzz-seeds: $(FUZZ_MKSEEDS) $(GUESTS)
	$(Q)$(FUZZ_MKSEEDS) tests/fuzz/corpus $(BUILD)/guests

FUZZ_RUN := $(if $(FUZZ_ONLY),$(filter $(FUZZ_ONLY),$(FUZZ_TARGETS)),$(FUZZ_TARGETS))

fuzz: $(patsubst %,$(FUZZ_OUT)/%,$(FUZZ_RUN)) $(TEST_BIN)/bulkhead-devdrive \
		$(SEEDED_UART) $(TEST_BIN)/bulkhead-dev-uart \
		$(TEST_BIN)/bulkhead-dev-virtio-blk
	$(Q)sh tests/fuzz/run-fuzz.sh $(BUILD) $(FUZZ_SECONDS) $(FUZZ_RUN)

# Fold what make fuzz found (build/fuzz/corpus/) into the stored corpus:
# libFuzzer -merge=1 on edges alone (-use_counters=0) keeps, for every edge
# not yet reached by a stored input, one small input that reaches it.
# Review and commit the new files: make check replays them.
fuzz-merge: $(patsubst %,$(FUZZ_OUT)/%,$(FUZZ_RUN))
	$(Q)for t in $(FUZZ_RUN); do \
		mkdir -p tests/fuzz/corpus/$$t $(FUZZ_OUT)/corpus/$$t $(FUZZ_OUT)/logs; \
		$(FUZZ_OUT)/$$t -merge=1 -use_counters=0 tests/fuzz/corpus/$$t \
			$(FUZZ_OUT)/corpus/$$t >$(FUZZ_OUT)/logs/merge-$$t.log 2>&1 || \
			{ echo "fuzz-merge: $$t failed: see $(FUZZ_OUT)/logs/merge-$$t.log"; exit 1; }; \
		echo "$$t: $$(ls tests/fuzz/corpus/$$t | wc -l) stored inputs"; \
	done

fuzz-build: $(FUZZ_BINS)
fuzz-replay: $(FUZZ_REPLAY_BINS)

.PHONY: fuzz fuzz-build fuzz-replay fuzz-seeds fuzz-merge

-include $(shell find $(FUZZ_OUT)/obj $(FUZZ_REPLAY_OUT)/obj -name '*.d' 2>/dev/null)
