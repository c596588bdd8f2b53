/*
 * echo: a UART receive test. Prints "echo: ready", then echoes every byte
 * it receives (polling the line status register) until it reads 'q', then
 * prints "echo: bye" and exits through debug-exit with 0. A line of input
 * "x<digit>" makes it exit with that digit instead. Runs at CPL 3 so that
 * the polling loop costs only its exits.
 */
#include "lib/guest.h"

#define UART_RBR 0x3f8
#define UART_LSR 0x3fd
#define UART_LSR_DR 0x01

static char echo_getc(void)
{
	while (!(inb(UART_LSR) & UART_LSR_DR))
		cpu_pause();
	return (char)inb(UART_RBR);
}

static void echo_loop(void *arg)
{
	char prev = 0;

	(void)arg;
	kprintf("echo: ready\n");
	for (;;) {
		char c = echo_getc();

		if (c == 'q') {
			kprintf("echo: bye\n");
			debug_exit(0);
		}
		if (prev == 'x' && c >= '0' && c <= '9')
			debug_exit((uint8_t)(c - '0'));
		uart_putc(c);
		prev = c;
	}
}

void guest_main(uint32_t mb_magic, uint32_t mbi_addr)
{
	(void)mb_magic;
	(void)mbi_addr;
	guest_enter_user(echo_loop, NULL, guest_user_stack_top);
}
