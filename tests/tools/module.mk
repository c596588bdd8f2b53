# tests/tools: small programs the integration tests drive.
# load-image: the worker's image loader on a file, outside any VM.
LOAD_IMAGE_BIN := $(BUILD)/tests/load-image
TEST_BINS += $(LOAD_IMAGE_BIN)
$(LOAD_IMAGE_BIN): $(call obj,tests/tools/load-image.c emt-worker/loader.c)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^

# The Debian kernel for tests/integration/test_linux_debian.sh, fetched once
# at set-up by the install script (best effort: without network that test
# is skipped, saying how to get the kernel).
LINUX_KERNEL_STAMP := $(BUILD)/.linux-kernel
TEST_BINS += $(LINUX_KERNEL_STAMP)
$(LINUX_KERNEL_STAMP): scripts/install-deps.sh
	$(Q)sh scripts/install-deps.sh linux-kernel || echo "bulkhead: no" \
		"Debian kernel image: test_linux_debian will be skipped" >&2
	$(Q)mkdir -p $(dir $@)
	$(Q)touch $@
