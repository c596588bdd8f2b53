/*
 * bzImage test guest: the start of the protected-mode part. Like Linux's,
 * offset 0 is the 32-bit entry and offset 0x200 the 64-bit entry
 * (xloadflags XLF_KERNEL_64). All code is position independent: the image
 * is relocatable and may run at any kernel_alignment boundary.
 */
#include "bzimage.h"

	.section .text.bzhead, "ax"
	.code32
	.globl bz_startup_32
bz_startup_32:
	/* The 32-bit boot protocol is not what this image tests. */
	cli
	movl	$DEBUG_EXIT_PORT, %edx
	movb	$BZ_EXIT_ENTRY32, %al
	outb	%al, %dx
1:	hlt
	jmp	1b

	.org	0x200
	.code64
	.globl bz_startup_64
bz_startup_64:
	/*
	 * The 64-bit boot protocol: long mode, paging on with an identity
	 * map, CS = __BOOT_CS, DS/ES/SS = __BOOT_DS, interrupts off, RSI =
	 * boot_params. No stack is promised: take our own. Segment registers
	 * are left as they are so bz_main can check them.
	 */
	cld
	leaq	bz_stack_top(%rip), %rsp
	movq	%rsi, %rdi		/* boot_params */
	leaq	bz_startup_32(%rip), %rsi	/* where we were loaded */
	call	bz_main
1:	hlt
	jmp	1b

	.section .bss.stack, "aw", @nobits
	.balign 16
	.space	16384
bz_stack_top:

	.section .note.GNU-stack, "", @progbits
