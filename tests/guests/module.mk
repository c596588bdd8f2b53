# tests/guests: guest payloads booted by the integration tests and benchmarks.
# Freestanding 64-bit code, built with the system toolchain and its own flags
# (never the host CFLAGS), converted to ELF32 multiboot kernels.

GUEST_DIR := tests/guests
GUEST_OUT := $(BUILD)/guests
GUEST_OBJ := $(GUEST_OUT)/obj

GUEST_CC ?= gcc
GUEST_LD ?= ld
GUEST_OBJCOPY ?= objcopy

GUEST_WARN := -Wall -Wextra -Wmissing-prototypes -Wstrict-prototypes -Wshadow \
	-Wno-unused-parameter
ifneq ($(WERROR),0)
GUEST_WARN += -Werror
endif
GUEST_CFLAGS := -m64 -std=gnu11 -O2 -g -ffreestanding -fno-builtin -nostdlib \
	-fno-pic -fno-pie -mcmodel=small -mno-red-zone -mgeneral-regs-only \
	-fno-stack-protector -fcf-protection=none -fno-asynchronous-unwind-tables \
	-fno-strict-aliasing -fno-tree-loop-distribute-patterns \
	-I$(GUEST_DIR)/lib -MD -MP $(GUEST_WARN)
GUEST_ASFLAGS := -m64 -ffreestanding -fno-pic -I$(GUEST_DIR)/lib -MD -MP
GUEST_LDSCRIPT := $(GUEST_DIR)/lib/guest.ld
GUEST_LDFLAGS := -m elf_x86_64 -nostdlib -static -z max-page-size=0x1000 \
	-z noexecstack -z noseparate-code --build-id=none -T $(GUEST_LDSCRIPT)

GUEST_LIB_OBJS := $(GUEST_OBJ)/lib/boot.o $(GUEST_OBJ)/lib/guest.o
# Multiprocessor support (MP table, AP start-up), linked only where used.
GUEST_SMP_OBJS := $(GUEST_OBJ)/lib/smp.o $(GUEST_OBJ)/lib/ap.o
GUEST_SMP_KERNELS := smp count spin
# Interrupt hardware (PIC, I/O APIC, local APIC, PIT) and the virtio-mmio
# driver library, likewise linked only where used.
GUEST_IRQ_OBJS := $(GUEST_OBJ)/lib/irq.o
GUEST_VIRTIO_OBJS := $(GUEST_OBJ)/lib/virtio.o $(GUEST_IRQ_OBJS)
GUEST_IRQ_KERNELS := rtc pit
GUEST_VIRTIO_KERNELS := blk rng
GUEST_DEV_KERNELS := i8042 $(GUEST_IRQ_KERNELS) $(GUEST_VIRTIO_KERNELS)
# Benchmark guests (bench/): an idle guest, a RAM filler for save/restore,
# a virtio-blk throughput driver.
GUEST_BENCH_KERNELS := idle memfill blkbench
GUEST_KERNELS := hello nullio echo reset kloop $(GUEST_SMP_KERNELS) $(GUEST_DEV_KERNELS) \
	$(GUEST_BENCH_KERNELS)
GUEST_ELF64 := $(patsubst %,$(GUEST_OUT)/%.elf64,$(GUEST_KERNELS))
GUEST_ELF := $(patsubst %,$(GUEST_OUT)/%.elf,$(GUEST_KERNELS))

GUESTS += $(BUILD)/guests/hello.elf $(BUILD)/guests/bootsect.bin $(BUILD)/guests/nullio.elf
GUESTS += $(BUILD)/guests/echo.elf $(BUILD)/guests/reset.elf $(BUILD)/guests/kloop.elf
GUESTS += $(patsubst %,$(GUEST_OUT)/%.elf,$(GUEST_SMP_KERNELS))
GUESTS += $(patsubst %,$(GUEST_OUT)/%.elf,$(GUEST_DEV_KERNELS))
GUESTS += $(patsubst %,$(GUEST_OUT)/%.elf,$(GUEST_BENCH_KERNELS))
DEMO_GUEST := $(BUILD)/guests/hello.elf

$(GUEST_OBJ)/%.o: $(GUEST_DIR)/%.c
	$(call msg,GCC,$<)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

$(GUEST_OBJ)/%.o: $(GUEST_DIR)/%.S
	$(call msg,GAS,$<)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(GUEST_CC) $(GUEST_ASFLAGS) -c -o $@ $<

# 64-bit link (kept, with debug info, for gdb and objdump).
$(GUEST_ELF64): $(GUEST_OUT)/%.elf64: $(GUEST_OBJ)/%.o $(GUEST_LIB_OBJS) $(GUEST_LDSCRIPT)
	$(call msg,GLD,$@)
	$(Q)$(GUEST_LD) $(GUEST_LDFLAGS) -o $@ $(filter %.o,$^)

$(patsubst %,$(GUEST_OUT)/%.elf64,$(GUEST_SMP_KERNELS)): $(GUEST_SMP_OBJS)
$(patsubst %,$(GUEST_OUT)/%.elf64,$(GUEST_IRQ_KERNELS)): $(GUEST_IRQ_OBJS)
$(patsubst %,$(GUEST_OUT)/%.elf64,$(GUEST_VIRTIO_KERNELS)): $(GUEST_VIRTIO_OBJS)
$(GUEST_OUT)/idle.elf64 $(GUEST_OUT)/memfill.elf64: $(GUEST_IRQ_OBJS)
$(GUEST_OUT)/blkbench.elf64: $(GUEST_VIRTIO_OBJS)

# blkpattern: the host side of blk.elf's data pattern, for
# tests/integration/test_devices.sh (test-only, never installed).
BLKPATTERN_BIN := $(BUILD)/tests/bin/blkpattern
TEST_BINS += $(BLKPATTERN_BIN)
$(BLKPATTERN_BIN): $(call obj,$(GUEST_DIR)/blkpattern.c)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^

# Multiboot loaders (QEMU's -kernel included) only take ELF32.
$(GUEST_ELF): $(GUEST_OUT)/%.elf: $(GUEST_OUT)/%.elf64
	$(call msg,OBJCOPY,$@)
	$(Q)$(GUEST_OBJCOPY) -O elf32-i386 --strip-debug $< $@

# Boot sector: 16-bit code, flat binary loaded at 0x7c00.
$(GUEST_OUT)/bootsect.bin: $(GUEST_OBJ)/bootsect16.o
	$(call msg,GLD,$@)
	$(Q)$(GUEST_LD) -m elf_i386 -nostdlib -static --build-id=none -Ttext 0x7c00 \
		-e start --oformat binary -o $@ $<
	$(Q)test `stat -c %s $@` -eq 512 || { echo "$@: not 512 bytes" >&2; rm -f $@; exit 1; }

$(GUEST_OBJ)/bootsect16.o: $(GUEST_DIR)/bootsect.S
	$(call msg,GAS,$<)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(GUEST_CC) -m32 -ffreestanding -fno-pic -MD -MP -c -o $@ $<

# The guests the documentation names are also reachable as
# tests/guests/hello.elf and tests/guests/bootsect.bin (links into build/).
GUEST_LINKS := $(GUEST_DIR)/hello.elf $(GUEST_DIR)/bootsect.bin
$(GUEST_LINKS): $(GUEST_DIR)/%: $(GUEST_OUT)/%
	$(Q)ln -sfn $(abspath $<) $@
GUESTS += $(GUEST_LINKS)

# bzImage: a Linux-style bzImage (setup header, 64-bit entry at 0x200 of
# the protected-mode part) that checks the boot protocol from inside. The
# protected-mode code is position independent (the image is relocatable):
# the link fails if its objects carry any absolute relocation.
GUEST_READELF ?= readelf
BZ_GUEST_DIR := $(GUEST_DIR)/bzimage
BZ_GUEST_PM_OBJS := $(GUEST_OBJ)/bzimage/head64.o $(GUEST_OBJ)/bzimage/main.o
BZ_GUEST_OBJS := $(GUEST_OBJ)/bzimage/setup.o $(BZ_GUEST_PM_OBJS)
$(GUEST_OBJ)/bzimage/main.o: GUEST_CFLAGS += -fpie -fvisibility=hidden

$(GUEST_OUT)/bzImage.elf: $(BZ_GUEST_OBJS) $(BZ_GUEST_DIR)/bzimage.ld
	$(call msg,GLD,$@)
	$(Q)$(GUEST_READELF) -rW $(BZ_GUEST_PM_OBJS) | awk \
		'/^Relocation section/ { dbg = ($$3 ~ /debug/) } \
		 /^[0-9a-f]+ / && !dbg && $$3 !~ /^R_X86_64_(PC32|PLT32|PC64)$$/ \
		 { print "bzImage guest: not position independent: " $$0; bad = 1 } \
		 END { exit bad }' >&2
	$(Q)$(GUEST_LD) -m elf_x86_64 -nostdlib -static -z noexecstack --no-warn-rwx-segments \
		--build-id=none -T $(BZ_GUEST_DIR)/bzimage.ld -o $@ $(BZ_GUEST_OBJS)

$(GUEST_OUT)/bzImage: $(GUEST_OUT)/bzImage.elf
	$(call msg,OBJCOPY,$@)
	$(Q)$(GUEST_OBJCOPY) -O binary $< $@
GUESTS += $(GUEST_OUT)/bzImage

guests: $(GUESTS)
.PHONY: guests

-include $(wildcard $(GUEST_OBJ)/*.d $(GUEST_OBJ)/lib/*.d $(GUEST_OBJ)/bzimage/*.d)
