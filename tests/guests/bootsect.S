/*
 * bootsect: a 512-byte real-mode boot sector. Loaded at 0x7c00 and entered
 * with CS:IP = 0000:7C00; assumes nothing else (no BIOS services, no
 * stack, unknown segment registers). Prints one line on the 16550 UART at
 * 0x3f8 by polling, then writes 0 to the debug-exit port 0xf4.
 */
#define UART_THR	0x3f8
#define UART_LSR	0x3fd
#define LSR_THRE	0x20
#define DEBUG_EXIT	0xf4

	.code16
	.text
	.globl start
start:
	cli
	cld
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	$0x7c00, %sp
	ljmp	$0, $1f			/* normalise CS:IP */
1:
	movw	$msg, %si
next:
	lodsb
	testb	%al, %al
	jz	done
	movb	%al, %bl
	movw	$UART_LSR, %dx
wait:
	inb	%dx, %al
	testb	$LSR_THRE, %al
	jz	wait
	movw	$UART_THR, %dx
	movb	%bl, %al
	outb	%al, %dx
	jmp	next
done:
	movw	$DEBUG_EXIT, %dx
	xorb	%al, %al
	outb	%al, %dx
halt:
	hlt
	jmp	halt

msg:
	.asciz	"Hello from a Bulkhead boot sector!\n"

	.org	510
	.byte	0x55, 0xaa

	.section .note.GNU-stack, "", @progbits
