/*
 * Bulkhead test guests: multiboot v1 entry and the switch to long mode.
 *
 * The loader enters _start in flat 32-bit protected mode, paging off,
 * EAX = 0x2BADB002, EBX = physical address of the multiboot info. On
 * hosts without hardware virtualization everything that runs at CPL 0 or
 * in 32-bit mode goes through the hypervisor's instruction emulator, so
 * the path to guest_main is kept as short as possible: all tables are
 * built by the assembler, not at run time.
 */
#include "guest.h"

#define MB_FLAGS	0x00000003	/* bit 0: page-align modules, bit 1: memory info */

#define CR0_PE		0x00000001
#define CR0_PG		0x80000000
#define CR4_PAE		0x00000020
#define MSR_EFER	0xc0000080
#define EFER_LME	0x00000100

#define PTE_P		0x001
#define PTE_RW		0x002
#define PTE_US		0x004
#define PTE_PWT		0x008
#define PTE_PCD		0x010
#define PTE_PS		0x080

/* ---- multiboot header: first thing in the image ------------------------ */
	.section .multiboot, "a"
	.balign 4
	.long MULTIBOOT_HEADER_MAGIC
	.long MB_FLAGS
	.long -(MULTIBOOT_HEADER_MAGIC + MB_FLAGS)

/* ---- 32-bit entry -------------------------------------------------------- */
	.section .text.boot, "ax"
	.code32
	.globl _start
	.type _start, @function
_start:
	cli
	movl	%eax, %esi		/* multiboot magic */
	movl	%ebx, %edi		/* multiboot info address */
	lgdt	gdt_desc
	movl	%cr4, %eax
	orl	$CR4_PAE, %eax
	movl	%eax, %cr4
	movl	$pml4, %eax
	movl	%eax, %cr3
	movl	$MSR_EFER, %ecx
	rdmsr
	orl	$EFER_LME, %eax
	wrmsr
	movl	%cr0, %eax
	orl	$(CR0_PG | CR0_PE), %eax
	movl	%eax, %cr0
	ljmp	$SEL_KCODE, $start64

/* ---- 64-bit, CPL 0 --------------------------------------------------------- */
	.code64
start64:
	movl	$SEL_KDATA, %eax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	xorl	%eax, %eax
	movw	%ax, %fs
	movw	%ax, %gs
	movl	%esi, %r12d		/* zero-extends: upper halves are undefined */
	movl	%edi, %r13d
	/* Zero .bss (the loader should have, but do not rely on it). The
	 * stacks live after __bss_end and are not cleared. */
	cld
	movl	$__bss_start, %edi
	movl	$__bss_end, %ecx
	subl	%edi, %ecx
	shrl	$3, %ecx
	rep stosq
	movl	$boot_stack_top, %esp
	xorl	%ebp, %ebp
	call	guest_arch_init
	movl	%r12d, %edi
	movl	%r13d, %esi
	call	guest_main
	xorl	%edi, %edi		/* returning from guest_main = success */
	call	debug_exit
1:	hlt
	jmp	1b
	.size _start, . - _start

/*
 * void guest_enter_user(void (*fn)(void *), void *arg, void *user_stack)
 * iretq to CPL 3 with IOPL=3 and IF=0, then call fn(arg).
 */
	.text
	.globl guest_enter_user
	.type guest_enter_user, @function
guest_enter_user:
	andq	$-16, %rdx
	movl	$(SEL_UDATA | 3), %eax
	movw	%ax, %ds
	movw	%ax, %es
	pushq	$(SEL_UDATA | 3)	/* SS */
	pushq	%rdx			/* RSP */
	pushq	$0x3002			/* RFLAGS: IOPL=3, reserved bit 1 */
	pushq	$(SEL_UCODE | 3)	/* CS */
	leaq	user_trampoline(%rip), %rax
	pushq	%rax			/* RIP */
	movq	%rdi, %rax
	movq	%rsi, %rdi
	iretq
	.size guest_enter_user, . - guest_enter_user

	.type user_trampoline, @function
user_trampoline:
	call	*%rax			/* RSP is 16-byte aligned here */
	xorl	%edi, %edi
	call	debug_exit
	.size user_trampoline, . - user_trampoline

/*
 * Exception entry stubs: 32 of them, 16 bytes apart, so the IDT can be
 * filled from exc_stubs + 16 * vector. Each leaves (vector, error code,
 * CPU frame) on the stack and jumps to the common path, which hands a
 * pointer to that to guest_exception() (it never returns).
 */
	.globl exc_stubs
	.balign 16
exc_stubs:
	.set vec, 0
	.rept 32
	.balign 16
	.if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq	$0			/* no error code from the CPU */
	.endif
	pushq	$vec
	jmp	exc_common
	.set vec, vec + 1
	.endr

exc_common:
	cld
	movq	%rsp, %rdi
	andq	$-16, %rsp
	call	guest_exception
1:	hlt
	jmp	1b

/*
 * Interrupt entry stubs for vectors 32-255, 16 bytes apart from
 * irq_stubs (the stub of vector v is at irq_stubs + 16 * (v - 32)). Each
 * pushes its vector; the common path saves every caller-saved register
 * (and RBX, used to undo the stack alignment), calls
 * guest_irq_dispatch(vector), which runs the handler and sends the local
 * APIC EOI, and returns with iretq. Interrupt gates: IF is 0 throughout.
 */
	.globl irq_stubs
	.balign 16
irq_stubs:
	.set vec, 32
	.rept 224
	.balign 16
	pushq	$vec
	jmp	irq_common
	.set vec, vec + 1
	.endr

irq_common:
	cld
	pushq	%rax
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	pushq	%rbx
	movq	80(%rsp), %rdi		/* the vector the stub pushed */
	movq	%rsp, %rbx
	andq	$-16, %rsp
	call	guest_irq_dispatch
	movq	%rbx, %rsp
	popq	%rbx
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rdi
	popq	%rsi
	popq	%rdx
	popq	%rcx
	popq	%rax
	addq	$8, %rsp		/* the vector */
	iretq

/* ---- descriptor tables ------------------------------------------------------ */
	.data
	.balign 16
	.globl gdt
gdt:
	.quad 0				/* 0x00 null */
	.quad 0x00af9a000000ffff	/* 0x08 kernel code, 64-bit */
	.quad 0x00cf92000000ffff	/* 0x10 kernel data */
	.quad 0x00cff2000000ffff	/* 0x18 user data, DPL 3 */
	.quad 0x00affa000000ffff	/* 0x20 user code, 64-bit, DPL 3 */
	.quad 0, 0			/* 0x28 TSS, filled by guest_arch_init */
gdt_end:

	.balign 8
	.globl gdt_desc
gdt_desc:
	.word gdt_end - gdt - 1
	.quad gdt

/*
 * Page tables: identity map 0..4 GiB with 2 MiB pages, all user accessible
 * (US at every level). The last GiB holds the PCI hole, IOAPIC and LAPIC
 * and is mapped uncached.
 */
	.section .data.pagetables, "aw"
	.balign 4096
pml4:
	.quad pdpt + (PTE_P | PTE_RW | PTE_US)
	.fill 511, 8, 0
pdpt:
	.quad pd0 + (PTE_P | PTE_RW | PTE_US)
	.quad pd1 + (PTE_P | PTE_RW | PTE_US)
	.quad pd2 + (PTE_P | PTE_RW | PTE_US)
	.quad pd3 + (PTE_P | PTE_RW | PTE_US)
	.fill 508, 8, 0
	.set addr, 0
pd0:
	.rept 512
	.quad addr + (PTE_P | PTE_RW | PTE_US | PTE_PS)
	.set addr, addr + 0x200000
	.endr
pd1:
	.rept 512
	.quad addr + (PTE_P | PTE_RW | PTE_US | PTE_PS)
	.set addr, addr + 0x200000
	.endr
pd2:
	.rept 512
	.quad addr + (PTE_P | PTE_RW | PTE_US | PTE_PS)
	.set addr, addr + 0x200000
	.endr
pd3:
	.rept 512
	.quad addr + (PTE_P | PTE_RW | PTE_US | PTE_PS | PTE_PCD | PTE_PWT)
	.set addr, addr + 0x200000
	.endr

/* ---- stacks (not cleared at boot; see guest.ld) ----------------------------- */
	.section .stack, "aw", @nobits
	.balign 16
	.space 16384
	.globl boot_stack_top
boot_stack_top:
	.space 4096
	.globl exc_stack_top
exc_stack_top:
	.space 16384
	.globl guest_user_stack_top
guest_user_stack_top:

	.section .note.GNU-stack, "", @progbits
