/*
 * bzImage test guest: what its setup header says and the debug-exit codes
 * it reports (status = code * 2 + 1). Shared by the assembly and main.c.
 */
#ifndef BULKHEAD_BZIMAGE_GUEST_H
#define BULKHEAD_BZIMAGE_GUEST_H

#define DEBUG_EXIT_PORT 0xf4
#define UART_BASE 0x3f8

/* The setup header (setup.S); main.c checks that boot_params echoes it. */
#define BZ_SETUP_SECTS 1
#define BZ_VERSION 0x020f		/* boot protocol 2.15 */
#define BZ_LOADED_HIGH 0x01
#define BZ_CAN_USE_HEAP 0x80
#define BZ_XLF_KERNEL_64 0x0001
#define BZ_INITRD_ADDR_MAX 0x7fffffff
#define BZ_KERNEL_ALIGNMENT 0x200000
#define BZ_MIN_ALIGNMENT_LOG2 21
#define BZ_CMDLINE_SIZE 2047
#define BZ_PREF_ADDRESS 0x1000000

/* debug-exit codes */
#define BZ_EXIT_OK 0		/* every check passed */
#define BZ_EXIT_BOOT_PARAMS 2	/* boot_params: signature or header wrong */
#define BZ_EXIT_CPU_STATE 4	/* not the 64-bit boot protocol's CPU state */
#define BZ_EXIT_E820 5		/* e820 map missing or inconsistent */
#define BZ_EXIT_CMDLINE 6	/* no command line, or not terminated */
#define BZ_EXIT_INITRD 7	/* initrd misplaced */
#define BZ_EXIT_PLACEMENT 8	/* loaded at a wrong address */
#define BZ_EXIT_ENTRY32 9	/* entered at the 32-bit entry (unsupported) */
#define BZ_EXIT_ENTRY16 10	/* entered at the 16-bit entry (unsupported) */

#endif
