/*
 * bzImage test guest: the real-mode part of a Linux bzImage, that is the
 * boot sector and the setup header (Linux/x86 boot protocol 2.15,
 * Documentation/arch/x86/boot.rst), two 512-byte sectors in all. The
 * protected-mode part (head64.S, main.c) follows it in the file.
 *
 * Neither the boot sector nor the 16-bit setup entry does anything but
 * report that it was entered (debug-exit 10): this image is meant to be
 * booted through the 64-bit boot protocol only.
 */
#include "bzimage.h"

	.section .bzsetup, "ax"
	.code16
	.globl bz_bootsect
bz_bootsect:
	/* Entered by a BIOS as a boot sector, or by a loader at the 16-bit
	 * setup entry (0x200 jumps to setup16 below): say so and stop. */
setup16:
	cli
	movw	$DEBUG_EXIT_PORT, %dx
	movb	$BZ_EXIT_ENTRY16, %al
	outb	%al, %dx
1:	hlt
	jmp	1b

/* ---- the setup header, at its fixed offset ------------------------------ */
	.org	0x1f1
	.byte	BZ_SETUP_SECTS		/* setup_sects */
	.word	0			/* root_flags */
	.long	__bz_syssize		/* syssize: protected-mode size / 16 */
	.word	0			/* ram_size (obsolete) */
	.word	0xffff			/* vid_mode: normal */
	.word	0			/* root_dev */
	.word	0xaa55			/* boot_flag */
	/* 0x200: the 16-bit entry; its second byte gives the header's end */
	.byte	0xeb			/* jmp short */
	.byte	setup_hdr_end - 1f
1:	.ascii	"HdrS"			/* 0x202 header */
	.word	BZ_VERSION		/* 0x206 version */
	.long	0			/* 0x208 realmode_swtch */
	.word	0			/* 0x20c start_sys_seg (obsolete) */
	.word	0			/* 0x20e kernel_version: none */
	.byte	0			/* 0x210 type_of_loader: the loader's */
	.byte	BZ_LOADED_HIGH		/* 0x211 loadflags */
	.word	0			/* 0x212 setup_move_size */
	.long	0x100000		/* 0x214 code32_start */
	.long	0			/* 0x218 ramdisk_image: the loader's */
	.long	0			/* 0x21c ramdisk_size: the loader's */
	.long	0			/* 0x220 bootsect_kludge */
	.word	0			/* 0x224 heap_end_ptr: the loader's */
	.byte	0			/* 0x226 ext_loader_ver */
	.byte	0			/* 0x227 ext_loader_type */
	.long	0			/* 0x228 cmd_line_ptr: the loader's */
	.long	BZ_INITRD_ADDR_MAX	/* 0x22c initrd_addr_max */
	.long	BZ_KERNEL_ALIGNMENT	/* 0x230 kernel_alignment */
	.byte	1			/* 0x234 relocatable_kernel */
	.byte	BZ_MIN_ALIGNMENT_LOG2	/* 0x235 min_alignment */
	.word	BZ_XLF_KERNEL_64	/* 0x236 xloadflags */
	.long	BZ_CMDLINE_SIZE		/* 0x238 cmdline_size */
	.long	0			/* 0x23c hardware_subarch: PC */
	.quad	0			/* 0x240 hardware_subarch_data */
	.long	0			/* 0x248 payload_offset: not compressed */
	.long	0			/* 0x24c payload_length */
	.quad	0			/* 0x250 setup_data */
	.quad	BZ_PREF_ADDRESS		/* 0x258 pref_address */
	.long	__bz_init_size		/* 0x260 init_size */
	.long	0			/* 0x264 handover_offset: no EFI */
	.long	0			/* 0x268 kernel_info_offset */
	.globl	setup_hdr_end		/* bzimage.ld checks it is 0x26c */
setup_hdr_end:
	jmp	setup16

	/* The setup sectors: the boot sector plus BZ_SETUP_SECTS. */
	.org	(BZ_SETUP_SECTS + 1) * 512

	.section .note.GNU-stack, "", @progbits
