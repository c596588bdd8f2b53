# bench: `make bench` measures Bulkhead and QEMU side by side (interleaved,
# medians) and prints one table; see bench/run-bench.sh and
# docs/performance.md. QEMU comes from `scripts/install-deps.sh bench`.
# Without a usable /dev/kvm the script runs itself inside a nested KVM host
# (scripts/kvm-nest); BULKHEAD_NEST=0 refuses, BULKHEAD_NEST=1 forces it.
BENCHTOOL := $(BUILD)/bench/benchtool
$(BENCHTOOL): bench/benchtool.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $<

BENCH_DEPS_STAMP := $(BUILD)/.deps-bench
$(BENCH_DEPS_STAMP): scripts/install-deps.sh
	$(Q)mkdir -p $(BUILD)
	$(Q)sh scripts/install-deps.sh bench
	$(Q)touch $@

# `all` rather than $(BINARIES): this file is included before the top
# Makefile defines BINARIES, and prerequisites are expanded as read.
bench: all $(BENCHTOOL) $(BENCH_DEPS_STAMP)
	$(Q)sh bench/run-bench.sh $(BUILD)
