/*
 * Bulkhead test guests: a tiny freestanding support library.
 *
 * Execution model (set up by boot.S):
 *   - multiboot v1 entry, then straight to 64-bit long mode at CPL 0;
 *   - the first 4 GiB are identity mapped with 2 MiB pages, user
 *     accessible, the top GiB (PCI hole, LAPIC, IOAPIC) uncached;
 *   - no interrupts (IF=0), an IDT that reports CPU exceptions on the
 *     UART and then exits through the debug-exit port;
 *   - guest_main(magic, mbi) is called; returning from it is the same as
 *     debug_exit(GUEST_EXIT_OK).
 *
 * This header is also included by boot.S (only the constants below).
 */
#ifndef BULKHEAD_GUEST_H
#define BULKHEAD_GUEST_H

/* GDT layout; ordered so that STAR can be used by syscall/sysret later:
 * STAR[47:32] = SEL_KCODE (kernel SS = SEL_KCODE + 8 = SEL_KDATA),
 * STAR[63:48] = SEL_KDATA (sysret: SS = +8 = SEL_UDATA, CS = +16 = SEL_UCODE). */
#define SEL_KCODE 0x08 /* 64-bit kernel code */
#define SEL_KDATA 0x10 /* kernel data */
#define SEL_UDATA 0x18 /* user data (DPL 3) */
#define SEL_UCODE 0x20 /* 64-bit user code (DPL 3) */
#define SEL_TSS   0x28 /* 64-bit TSS, two slots */

#define MULTIBOOT_HEADER_MAGIC     0x1BADB002
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002

#define UART_BASE      0x3f8
#define DEBUG_EXIT_PORT 0xf4

/* Values written to the debug-exit port; the VMM exits with (v << 1) | 1. */
#define GUEST_EXIT_OK        0 /* status 1: success */
#define GUEST_EXIT_FAIL      1 /* status 3: test failed */
#define GUEST_EXIT_BADARG    2 /* status 5: bad boot protocol / command line */
#define GUEST_EXIT_EXCEPTION 3 /* status 7: unexpected CPU exception */

#ifndef __ASSEMBLER__

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ---- port and MMIO access ------------------------------------------- */

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void mmio_write32(uint64_t addr, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)addr = v;
}

static inline uint32_t mmio_read32(uint64_t addr)
{
	return *(volatile uint32_t *)(uintptr_t)addr;
}

static inline void cpu_pause(void)
{
	__asm__ volatile("pause" ::: "memory");
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* Current privilege level (low two bits of CS). */
static inline unsigned cpu_cpl(void)
{
	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return cs & 3;
}

/* ---- console and exit ----------------------------------------------- */

/* Polled 16550 output at UART_BASE; no translation ('\n' is sent as is). */
void uart_putc(char c);
void uart_puts(const char *s);

/* printf subset: %s %c %d %i %u %x %X %p %%, flags '0' and '-', a field
 * width, length modifiers l, ll, z. No floating point. */
int kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int kvprintf(const char *fmt, va_list ap);

/* Write v to the debug-exit port, then spin forever (hlt at CPL 0,
 * pause at CPL 3). */
void debug_exit(uint8_t v) __attribute__((noreturn));

/* ---- privilege ------------------------------------------------------ */

/* Drop to CPL 3 (RFLAGS.IOPL=3, IF=0) and call fn(arg) on user_stack
 * (rounded down to 16 bytes). Never returns; if fn returns the guest
 * exits with debug_exit(GUEST_EXIT_OK). All memory below 4 GiB is user
 * accessible and port I/O is allowed at CPL 3. */
void guest_enter_user(void (*fn)(void *), void *arg, void *user_stack)
	__attribute__((noreturn));

/* Top of a 16 KiB stack reserved for guest_enter_user callers. */
extern uint8_t guest_user_stack_top[];

/* ---- interrupts ------------------------------------------------------ */

#define GUEST_LAPIC_BASE      0xfee00000u /* IA32_APIC_BASE's default */
#define GUEST_LAPIC_EOI       0x0b0u
#define GUEST_SPURIOUS_VECTOR 0xffu       /* what lib/irq.c puts in the SVR */

/*
 * Run fn(vector) when an interrupt arrives on vector (32-255), through a
 * 64-bit interrupt gate (IF=0 in the handler) and an assembly entry that
 * saves the registers, calls fn, writes the local APIC's EOI register and
 * returns with iretq. Every vector without a handler prints "guest:
 * unexpected interrupt, vector <v>" and exits with 3 (status 7), except
 * the spurious vector 0xff, which is ignored; no EOI is sent for 0xff.
 * Interrupts from the 8259 PIC need the handler to send the PIC's EOI
 * itself (the extra local APIC EOI is then harmless). The first call
 * fills the IDT's vectors 32-255; smp_start_aps copies the IDT register,
 * so install handlers before starting APs. Call at CPL 0.
 */
typedef void (*guest_irq_fn)(unsigned vector);
void guest_set_irq_handler(unsigned vector, guest_irq_fn fn);

static inline void irq_enable(void)
{
	__asm__ volatile("sti" ::: "memory");
}

static inline void irq_disable(void)
{
	__asm__ volatile("cli" ::: "memory");
}

/* With IF=0: enable interrupts and halt until one has been handled (sti's
 * one-instruction shadow closes the race with a check made just before),
 * then disable them again. */
static inline void irq_wait(void)
{
	__asm__ volatile("sti; hlt; cli" ::: "memory");
}

/* Entry point each guest provides. */
void guest_main(uint32_t mb_magic, uint32_t mbi_addr);

/* ---- multiboot v1 ---------------------------------------------------- */

#define MBI_FLAG_MEM     (1u << 0)
#define MBI_FLAG_BOOTDEV (1u << 1)
#define MBI_FLAG_CMDLINE (1u << 2)
#define MBI_FLAG_MODS    (1u << 3)
#define MBI_FLAG_MMAP    (1u << 6)
#define MBI_FLAG_LOADER  (1u << 9)

struct multiboot_info {
	uint32_t flags;
	uint32_t mem_lower; /* KiB below 1 MiB */
	uint32_t mem_upper; /* KiB above 1 MiB */
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count;
	uint32_t mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length;
	uint32_t mmap_addr;
	uint32_t drives_length;
	uint32_t drives_addr;
	uint32_t config_table;
	uint32_t boot_loader_name;
	uint32_t apm_table;
	uint32_t vbe_control_info;
	uint32_t vbe_mode_info;
	uint16_t vbe_mode;
	uint16_t vbe_interface_seg;
	uint16_t vbe_interface_off;
	uint16_t vbe_interface_len;
} __attribute__((packed));

/* 'size' does not count itself; the next entry is at +size+4. */
struct multiboot_mmap_entry {
	uint32_t size;
	uint64_t base_addr;
	uint64_t length;
	uint32_t type; /* 1 = available RAM */
} __attribute__((packed));

struct multiboot_module {
	uint32_t mod_start;
	uint32_t mod_end; /* exclusive */
	uint32_t string;
	uint32_t reserved;
} __attribute__((packed));

/* The command line from the multiboot info, or NULL if none was given. */
const char *multiboot_cmdline(const struct multiboot_info *mbi);

/* ---- command line ---------------------------------------------------- */

/* The command line is a list of whitespace separated tokens; "key=value"
 * tokens are options, anything else (e.g. the kernel file name that
 * QEMU and GRUB put first) is ignored. The first matching token wins. */

/* Pointer to the value of key (its length in *len), or NULL. */
const char *cmdline_find(const char *cmdline, const char *key, size_t *len);

/* Parse key as an unsigned number: "0x" prefix for hex, else decimal.
 * Returns 1 if found and valid, 0 if absent, -1 if present but invalid
 * (then *out is untouched). */
int cmdline_get_u64(const char *cmdline, const char *key, uint64_t *out);
/* Sort v[0..n) in place (insertion sort: n is small) and return the
 * median, v[n / 2]; n must be at least 1. */
uint64_t u64_sort_median(uint64_t *v, unsigned n);

/* Copy key's value into buf (NUL terminated, truncated to size-1).
 * Returns 1 if found, 0 if absent. */
int cmdline_get_str(const char *cmdline, const char *key, char *buf, size_t size);

/* ---- string helpers (also used by the compiler) ---------------------- */

size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#endif /* !__ASSEMBLER__ */
#endif
