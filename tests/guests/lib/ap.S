/*
 * Bulkhead test guests: application processor start-up trampoline.
 *
 * ap_tramp_start..ap_tramp_end is copied by smp_start_aps() to
 * AP_TRAMP_ADDR (a page below 1 MiB) and entered there by a STARTUP IPI
 * with vector AP_TRAMP_ADDR >> 12, i.e. in real mode with CS = 0x0800,
 * IP = 0. The code is assembled here, at the kernel's link address, so
 * every reference to a trampoline label is written as an offset from
 * ap_tramp_start (real mode, CS-relative) or as AP_TRAMP_ADDR + offset
 * (flat 32/64-bit). Before each STARTUP the BSP fills in the parameter
 * block at the end: the GDTR of that AP's GDT (a copy of the boot GDT with
 * the AP's own TSS and a 32-bit code segment, SEL_KCODE32), the BSP's CR3
 * (boot.S's identity map) and the AP's stack top. APs are started one at
 * a time, so a single parameter block is enough.
 *
 * Path: real mode -> 32-bit protected mode (SEL_KCODE32) -> PAE, CR3,
 * EFER.LME, paging -> 64-bit (SEL_KCODE) at ap_entry64 in the kernel
 * image, which loads the stack and calls smp_ap_entry(). All of this is
 * CPL 0 code and runs in the hypervisor's instruction emulator on hosts
 * without hardware virtualization, so it stays short and uses nothing the
 * emulators lack (no int n, no 32-bit iret).
 */
#include "smp.h"

#define CR0_PE		0x00000001
#define CR0_PG		0x80000000
#define CR4_PAE		0x00000020
#define MSR_EFER	0xc0000080
#define EFER_LME	0x00000100

#define TRAMP(sym)	(AP_TRAMP_ADDR + (sym) - ap_tramp_start)

	.text
	.code16
	.balign 16
	.globl ap_tramp_start
ap_tramp_start:
	cli
	cld
	movw	%cs, %ax
	movw	%ax, %ds
	/* 0x66 prefix: load all 32 bits of the GDT base. */
	lgdtl	ap_tramp_gdtr - ap_tramp_start
	movl	%cr0, %eax
	orl	$CR0_PE, %eax
	movl	%eax, %cr0
	ljmpl	$SEL_KCODE32, $TRAMP(ap_tramp_pm32)

	.code32
ap_tramp_pm32:
	movl	$SEL_KDATA, %eax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movl	%cr4, %eax
	orl	$CR4_PAE, %eax
	movl	%eax, %cr4
	movl	TRAMP(ap_tramp_cr3), %eax
	movl	%eax, %cr3
	movl	$MSR_EFER, %ecx
	rdmsr
	orl	$EFER_LME, %eax
	wrmsr
	movl	%cr0, %eax
	orl	$CR0_PG, %eax
	movl	%eax, %cr0
	ljmpl	$SEL_KCODE, $ap_entry64	/* kernel address, not copied */

	/* Parameter block, written by the BSP in the copy. */
	.balign 8
	.globl ap_tramp_gdtr
ap_tramp_gdtr:
	.word 0				/* limit */
	.long 0				/* base (below 4 GiB) */
	.word 0
	.globl ap_tramp_cr3
ap_tramp_cr3:
	.long 0
	.long 0
	.globl ap_tramp_stack
ap_tramp_stack:
	.quad 0
	.globl ap_tramp_end
ap_tramp_end:

/* ---- 64-bit, CPL 0, still on the AP's copy of the boot GDT ------------------ */
	.code64
	.type ap_entry64, @function
ap_entry64:
	movl	$SEL_KDATA, %eax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	xorl	%eax, %eax
	movw	%ax, %fs
	movw	%ax, %gs
	movq	TRAMP(ap_tramp_stack), %rsp
	xorl	%ebp, %ebp
	call	smp_ap_entry		/* does not return */
1:	cli
	hlt
	jmp	1b
	.size ap_entry64, . - ap_entry64

/* ---- per-AP stacks: [CPL 0 stack | user stack] per APIC id, not cleared ---- */
	.section .stack, "aw", @nobits
	.balign 16
	.globl smp_stacks
smp_stacks:
	.space SMP_MAX_CPUS * (SMP_KSTACK_SIZE + SMP_USTACK_SIZE)

	.section .note.GNU-stack, "", @progbits
