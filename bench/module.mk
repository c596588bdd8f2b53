# bench: `make bench` measures Bulkhead and QEMU side by side (interleaved,
# medians) and prints one table; see bench/run-bench.sh and
# docs/performance.md. QEMU comes from `scripts/install-deps.sh bench`.
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
