/* Bulkhead test guests: console, exit, traps, command line, strings. */
#include "guest.h"

/* ---- console ---------------------------------------------------------- */

#define UART_THR (UART_BASE + 0)
#define UART_LSR (UART_BASE + 5)
#define LSR_THRE 0x20

void uart_putc(char c)
{
	while (!(inb(UART_LSR) & LSR_THRE))
		cpu_pause();
	outb(UART_THR, (uint8_t)c);
}

void uart_puts(const char *s)
{
	while (*s)
		uart_putc(*s++);
}

static int put_padded(const char *s, size_t len, int width, int left, char pad)
{
	int n = 0;

	if (!left)
		for (; width > (int)len; width--, n++)
			uart_putc(pad);
	for (size_t i = 0; i < len; i++, n++)
		uart_putc(s[i]);
	if (left)
		for (; width > (int)len; width--, n++)
			uart_putc(' ');
	return n;
}

int kvprintf(const char *fmt, va_list ap)
{
	int n = 0;

	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			uart_putc(*fmt);
			n++;
			continue;
		}
		fmt++;
		int left = 0;
		char pad = ' ';
		for (;; fmt++) {
			if (*fmt == '-')
				left = 1;
			else if (*fmt == '0')
				pad = '0';
			else
				break;
		}
		int width = 0;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		int lng = 0;
		while (*fmt == 'l' || *fmt == 'z') {
			lng = 1;
			fmt++;
		}

		char buf[24];
		char *end = buf + sizeof(buf), *p = end;
		uint64_t v;
		unsigned base = 10;
		int neg = 0;

		switch (*fmt) {
		case '\0':
			return n;
		case '%':
			uart_putc('%');
			n++;
			continue;
		case 'c':
			buf[0] = (char)va_arg(ap, int);
			n += put_padded(buf, 1, width, left, ' ');
			continue;
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			n += put_padded(s, strlen(s), width, left, ' ');
			continue;
		}
		case 'd':
		case 'i': {
			int64_t sv = lng ? va_arg(ap, long) : va_arg(ap, int);
			neg = sv < 0;
			v = neg ? -(uint64_t)sv : (uint64_t)sv;
			break;
		}
		case 'p':
			v = (uintptr_t)va_arg(ap, void *);
			base = 16;
			uart_putc('0');
			uart_putc('x');
			n += 2;
			break;
		case 'x':
		case 'X':
			base = 16;
			/* fall through */
		case 'u':
			v = lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
			break;
		default: /* unknown conversion: print it verbatim */
			uart_putc('%');
			uart_putc(*fmt);
			n += 2;
			continue;
		}

		const char *digits = *fmt == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
		do {
			*--p = digits[v % base];
			v /= base;
		} while (v);
		if (neg) {
			if (pad == '0' && !left) {
				uart_putc('-');
				n++;
				width--;
			} else {
				*--p = '-';
			}
		}
		n += put_padded(p, (size_t)(end - p), width, left, left ? ' ' : pad);
	}
	return n;
}

int kprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = kvprintf(fmt, ap);
	va_end(ap);
	return n;
}

void debug_exit(uint8_t v)
{
	outb(DEBUG_EXIT_PORT, v);
	if (cpu_cpl() == 0)
		for (;;)
			__asm__ volatile("cli; hlt");
	for (;;)
		cpu_pause();
}

/* ---- traps -------------------------------------------------------------- */

struct idt_gate {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t reserved;
} __attribute__((packed));

struct tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
	/* All ports allowed (0 bits), plus the required all-ones byte. */
	uint8_t iomap[65536 / 8 + 1];
} __attribute__((packed));

struct exc_frame {
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

extern uint64_t gdt[];
extern uint8_t exc_stubs[];
extern uint8_t irq_stubs[];
extern uint8_t exc_stack_top[];

/* Only the 32 exception gates are filled and loaded at boot (that is
 * cheap where CPL 0 code is emulated); the first guest_set_irq_handler
 * call fills 32-255 and reloads the IDTR with the full limit. */
static struct idt_gate idt[256];
static unsigned idt_entries;
static struct tss64 tss;
static guest_irq_fn irq_handlers[256];

void guest_arch_init(void);
void guest_exception(struct exc_frame *f) __attribute__((noreturn));
void guest_irq_dispatch(uint64_t vector);

static void idt_set_gate(unsigned i, uint64_t a)
{
	idt[i].off_lo = (uint16_t)a;
	idt[i].sel = SEL_KCODE;
	idt[i].ist = 0;
	idt[i].type_attr = 0x8e; /* present, DPL 0, interrupt gate */
	idt[i].off_mid = (uint16_t)(a >> 16);
	idt[i].off_hi = (uint32_t)(a >> 32);
	idt[i].reserved = 0;
}

static void idt_load(unsigned entries)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = { (uint16_t)(entries * sizeof(idt[0]) - 1),
					   (uintptr_t)idt };

	idt_entries = entries;
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

/* Called once from boot.S at CPL 0, before guest_main. */
void guest_arch_init(void)
{
	for (unsigned i = 0; i < 32; i++)
		idt_set_gate(i, (uintptr_t)exc_stubs + 16 * i);
	tss.rsp[0] = (uintptr_t)exc_stack_top; /* used for faults at CPL 3 */
	/*
	 * Port I/O at CPL 3 is granted twice: by RFLAGS.IOPL=3 (see
	 * guest_enter_user) and by an all-zero I/O permission bitmap. The
	 * bitmap matters where the hypervisor cannot give user code a real
	 * IOPL (e.g. KVM on PVM: CPL 3 runs on the host's ring 3 with IOPL 0,
	 * and the resulting #GP is emulated against this bitmap).
	 */
	tss.iomap_base = offsetof(struct tss64, iomap);
	tss.iomap[sizeof(tss.iomap) - 1] = 0xff;

	uint64_t base = (uintptr_t)&tss, limit = sizeof(tss) - 1;
	gdt[SEL_TSS / 8] = (limit & 0xffff) | ((base & 0xffffff) << 16) |
			   (0x89ull << 40) | (((limit >> 16) & 0xf) << 48) |
			   (((base >> 24) & 0xff) << 56);
	gdt[SEL_TSS / 8 + 1] = base >> 32;

	idt_load(32);
	__asm__ volatile("ltr %w0" : : "r"((uint16_t)SEL_TSS));
}

void guest_set_irq_handler(unsigned vector, guest_irq_fn fn)
{
	if (vector < 32 || vector > 255) {
		kprintf("\nguest: no interrupt handler possible for vector %u\n", vector);
		debug_exit(GUEST_EXIT_BADARG);
	}
	if (idt_entries < 256) {
		for (unsigned i = 32; i < 256; i++)
			idt_set_gate(i, (uintptr_t)irq_stubs + 16 * (i - 32));
		idt_load(256);
	}
	irq_handlers[vector] = fn;
}

/* Called by irq_common (boot.S) with IF=0, on the interrupted stack at
 * CPL 0 or on TSS.RSP0 when CPL 3 was interrupted. */
void guest_irq_dispatch(uint64_t vector)
{
	guest_irq_fn fn = irq_handlers[vector & 0xff];

	if (fn)
		fn((unsigned)vector);
	else if (vector != GUEST_SPURIOUS_VECTOR) {
		kprintf("\nguest: unexpected interrupt, vector %lu\n", vector);
		debug_exit(GUEST_EXIT_EXCEPTION);
	}
	/* A spurious interrupt sets no in-service bit: no EOI for it. */
	if (vector != GUEST_SPURIOUS_VECTOR)
		mmio_write32(GUEST_LAPIC_BASE + GUEST_LAPIC_EOI, 0);
}

void guest_exception(struct exc_frame *f)
{
	uint64_t cr2;

	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	kprintf("\nguest: exception %lu error=0x%lx rip=0x%lx cs=0x%lx "
		"rflags=0x%lx rsp=0x%lx cr2=0x%lx\n",
		f->vector, f->error, f->rip, f->cs, f->rflags, f->rsp, cr2);
	debug_exit(GUEST_EXIT_EXCEPTION);
}

/* ---- multiboot and command line ---------------------------------------- */

const char *multiboot_cmdline(const struct multiboot_info *mbi)
{
	if (!(mbi->flags & MBI_FLAG_CMDLINE) || !mbi->cmdline)
		return NULL;
	return (const char *)(uintptr_t)mbi->cmdline;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

const char *cmdline_find(const char *cmdline, const char *key, size_t *len)
{
	size_t klen = strlen(key);
	const char *p = cmdline;

	if (!p)
		return NULL;
	while (*p) {
		while (is_space(*p))
			p++;
		const char *tok = p;
		while (*p && !is_space(*p))
			p++;
		if ((size_t)(p - tok) > klen && strncmp(tok, key, klen) == 0 &&
		    tok[klen] == '=') {
			*len = (size_t)(p - tok) - klen - 1;
			return tok + klen + 1;
		}
	}
	return NULL;
}

uint64_t u64_sort_median(uint64_t *v, unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && v[j - 1] > v[j]; j--) {
			uint64_t t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return v[n / 2];
}

int cmdline_get_u64(const char *cmdline, const char *key, uint64_t *out)
{
	size_t len;
	const char *v = cmdline_find(cmdline, key, &len);
	uint64_t r = 0;
	unsigned base = 10;

	if (!v)
		return 0;
	if (len > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
		base = 16;
		v += 2;
		len -= 2;
	}
	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = v[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return -1;
		if (r > (UINT64_MAX - d) / base)
			return -1; /* overflow */
		r = r * base + d;
	}
	*out = r;
	return 1;
}

int cmdline_get_str(const char *cmdline, const char *key, char *buf, size_t size)
{
	size_t len;
	const char *v = cmdline_find(cmdline, key, &len);

	if (!v)
		return 0;
	if (size) {
		if (len > size - 1)
			len = size - 1;
		memcpy(buf, v, len);
		buf[len] = '\0';
	}
	return 1;
}

/* ---- strings ---------------------------------------------------------------
 * guest.c is built with -fno-tree-loop-distribute-patterns so these loops
 * are not turned back into calls to themselves. */

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			break;
	}
	return 0;
}

void *memset(void *d, int c, size_t n)
{
	uint8_t *p = d;
	while (n--)
		*p++ = (uint8_t)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	uint8_t *dp = d;
	const uint8_t *sp = s;
	while (n--)
		*dp++ = *sp++;
	return d;
}

void *memmove(void *d, const void *s, size_t n)
{
	uint8_t *dp = d;
	const uint8_t *sp = s;
	if (dp < sp) {
		while (n--)
			*dp++ = *sp++;
	} else {
		while (n--)
			dp[n] = sp[n];
	}
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}
