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
GUEST_KERNELS := hello nullio echo reset $(GUEST_SMP_KERNELS)
GUEST_ELF64 := $(patsubst %,$(GUEST_OUT)/%.elf64,$(GUEST_KERNELS))
GUEST_ELF := $(patsubst %,$(GUEST_OUT)/%.elf,$(GUEST_KERNELS))

GUESTS += $(BUILD)/guests/hello.elf $(BUILD)/guests/bootsect.bin $(BUILD)/guests/nullio.elf
GUESTS += $(BUILD)/guests/echo.elf $(BUILD)/guests/reset.elf
GUESTS += $(patsubst %,$(GUEST_OUT)/%.elf,$(GUEST_SMP_KERNELS))
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

guests: $(GUESTS)
.PHONY: guests

-include $(wildcard $(GUEST_OBJ)/*.d $(GUEST_OBJ)/lib/*.d)
