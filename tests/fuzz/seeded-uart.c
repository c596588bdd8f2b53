/* SPDX-License-Identifier: MIT */
/*
 * A UART device binary with a planted memory bug, to show that the
 * whole-process mode (bulkhead-devdrive) finds a device crash as it would
 * happen in production. Test-only: built as
 * build/tests/bin/bulkhead-dev-uart-seeded with -DBULKHEAD_SEEDED_BUG,
 * never installed, never linked into bulkhead-dev-uart.
 *
 * The planted bug: in loopback (MCR.LOOP) with the divisor latch open
 * (LCR.DLAB), a write of v >= 0x80 to the scratch register is stored
 * "into the receive FIFO" at index v << 20, far outside the device state:
 * the process takes a SIGSEGV. The sequence is three register writes, so
 * afl-fuzz finds it from the seed corpus, which programs loopback and
 * DLAB with other values.
 */
#ifndef BULKHEAD_SEEDED_BUG
#error "seeded-uart.c plants a bug: build it only with -DBULKHEAD_SEEDED_BUG"
#endif

#include "device-procs/uart/uart.c"

static void uart_seeded_io(struct dev *d, unsigned region, uint64_t off,
			   void *data, unsigned len, bool write)
{
	struct uart_state *s = d->state;
	uint8_t v = *(uint8_t *)data;

	if (write && region == 0 && off == UART_SCR &&
	    (s->mcr & UART_MCR_LOOP) && (s->lcr & UART_LCR_DLAB) && v >= 0x80)
		((volatile uint8_t *)s->rx_fifo)[(size_t)v << 20] = v;
	uart_io(d, region, off, data, len, write);
}

int main(int argc, char **argv)
{
	static struct dev_desc seeded;

	seeded = uart_desc;
	seeded.io = uart_seeded_io;
	return dev_main(argc, argv, &seeded);
}
