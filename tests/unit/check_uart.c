/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the device cores (uart, debug-exit, null) and dev_new,
 * driven through their descriptors against a fake host that records IRQ
 * level changes, backend output and exit requests.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "device-procs/devhost/dev.h"
#include "tests/unit/fakehost.h"
#include "tests/unit/suites.h"
#include "uart_state.pb-c.h"

/* UART registers and bits the tests use, from the PC16550D datasheet. */
enum {
	RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2,
	LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7,
};
#define IER_ERBFI 0x01
#define IER_ETBEI 0x02
#define IER_ELSI 0x04
#define IER_EDSSI 0x08
#define LCR_DLAB 0x80
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_IDLE 0x60		/* THRE | TEMT */
#define MSR_CONNECTED 0xb0	/* DCD | DSR | CTS */
#define FIFO_SIZE 16

/* ---- fake host ---------------------------------------------------------- */

/* The UART, debug-exit and null devices drive one line at most. */
static struct fakehost host;
static struct dev *dev;

static void new_dev(const struct dev_desc *desc)
{
	ck_assert_int_eq(dev_new(desc, 0, &fakehost_bare_ops, &host, &dev), 0);
	ck_assert_ptr_nonnull(dev);
}

static void host_setup(void)
{
	fakehost_reset(&host, 1);
	dev = NULL;
}

static void uart_setup(void)
{
	host_setup();
	new_dev(&uart_desc);
}

static void dev_teardown(void)
{
	/* Whatever a test did, the IRQ line was only driven on changes. */
	fakehost_dev_free(&host, &dev);
}

/* ---- access helpers ----------------------------------------------------- */

static uint8_t rd(unsigned off)
{
	return fakehost_rd8(dev, 0, off, 0xaa);
}

static void wr(unsigned off, uint8_t val)
{
	fakehost_wr8(dev, 0, off, val);
}

static uint64_t rd_wide(unsigned off, unsigned len)
{
	uint8_t b[8];
	uint64_t val = 0;

	memset(b, 0xaa, sizeof(b));
	dev->desc->io(dev, 0, off, b, len, false);
	for (unsigned i = 0; i < len; i++)
		val |= (uint64_t)b[i] << (8 * i);
	return val;
}

static void wr_wide(unsigned off, uint64_t val, unsigned len)
{
	uint8_t b[8];

	for (unsigned i = 0; i < len; i++)
		b[i] = (uint8_t)(val >> (8 * i));
	dev->desc->io(dev, 0, off, b, len, true);
}

static void input(const void *buf, size_t len)
{
	dev->desc->backend_input(dev, buf, len);
}

static size_t room(void)
{
	return dev->desc->backend_room(dev);
}

/* ---- uart: registers ---------------------------------------------------- */

START_TEST(test_uart_descriptor)
{
	ck_assert_str_eq(uart_desc.mf->name, "uart");
	ck_assert_uint_eq(uart_desc.mf->nregions, 1);
	ck_assert_int_eq(uart_desc.mf->regions[0].space, DEV_PIO);
	ck_assert_uint_eq(uart_desc.mf->regions[0].base, 0x3f8);
	ck_assert_uint_eq(uart_desc.mf->regions[0].len, 8);
	ck_assert_uint_eq(uart_desc.mf->nirqs, 1);
	ck_assert_uint_eq(uart_desc.mf->irqs[0], 4);
	ck_assert_ptr_nonnull(uart_desc.io);
	ck_assert_ptr_nonnull(uart_desc.backend_room);
	ck_assert_ptr_nonnull(uart_desc.backend_input);
	/* Only THR writes are posted (offset 0, one byte). */
	ck_assert_uint_eq(uart_desc.nposted, 1);
	ck_assert_uint_eq(uart_desc.posted[0].region, 0);
	ck_assert_uint_eq(uart_desc.posted[0].off, 0);
	ck_assert_uint_eq(uart_desc.posted[0].len, 1);
}
END_TEST

START_TEST(test_uart_reset_values)
{
	ck_assert_uint_eq(rd(IER), 0x00);
	ck_assert_uint_eq(rd(IIR), 0x01);
	ck_assert_uint_eq(rd(LCR), 0x00);
	ck_assert_uint_eq(rd(MCR), 0x00);
	ck_assert_uint_eq(rd(LSR), LSR_IDLE);
	ck_assert_uint_eq(rd(MSR), MSR_CONNECTED);
	ck_assert_uint_eq(rd(SCR), 0x00);
	ck_assert_uint_eq(rd(RBR), 0x00);	/* empty FIFO */
	wr(LCR, LCR_DLAB);
	ck_assert_uint_eq(rd(DLL), 0x00);
	ck_assert_uint_eq(rd(DLM), 0x00);
	ck_assert_uint_eq(room(), FIFO_SIZE);
	ck_assert_uint_eq(host.irq_calls, 0);
	ck_assert_uint_eq(host.nout, 0);
}
END_TEST

START_TEST(test_uart_reset_restores)
{
	wr(SCR, 0x12);
	wr(LCR, LCR_DLAB | 0x03);
	wr(DLL, 0x0c);
	wr(DLM, 0x01);
	wr(LCR, 0x03);
	wr(FCR, 0xc1);
	wr(MCR, MCR_OUT2 | MCR_DTR);
	wr(IER, 0x0f);
	input("ab", 2);
	ck_assert(host.level[0]);

	dev->desc->reset(dev);
	ck_assert(!host.level[0]);	/* the line is lowered */
	ck_assert_uint_eq(rd(IER), 0x00);
	ck_assert_uint_eq(rd(IIR), 0x01);
	ck_assert_uint_eq(rd(LCR), 0x00);
	ck_assert_uint_eq(rd(MCR), 0x00);
	ck_assert_uint_eq(rd(LSR), LSR_IDLE);
	ck_assert_uint_eq(rd(MSR), MSR_CONNECTED);
	ck_assert_uint_eq(rd(SCR), 0x00);
	ck_assert_uint_eq(room(), FIFO_SIZE);
	wr(LCR, LCR_DLAB);
	ck_assert_uint_eq(rd(DLL), 0x00);
	ck_assert_uint_eq(rd(DLM), 0x00);
}
END_TEST

START_TEST(test_uart_thr_to_backend)
{
	wr(THR, 'h');
	wr(THR, 'i');
	ck_assert_uint_eq(host.nout, 2);
	ck_assert_mem_eq(host.out, "hi", 2);
	ck_assert_uint_eq(rd(LSR), LSR_IDLE);	/* THRE, TEMT stay set */
	ck_assert_uint_eq(host.irq_calls, 0);	/* no interrupt enabled */
}
END_TEST

START_TEST(test_uart_dlab)
{
	wr(IER, IER_ERBFI | IER_ELSI);
	wr(LCR, LCR_DLAB | 0x03);
	ck_assert_uint_eq(rd(LCR), LCR_DLAB | 0x03);
	wr(DLL, 0x0c);
	wr(DLM, 0x01);
	ck_assert_uint_eq(rd(DLL), 0x0c);
	ck_assert_uint_eq(rd(DLM), 0x01);
	ck_assert_uint_eq(host.nout, 0);	/* DLL write is no THR write */

	/* Data waiting is not consumed by a DLL read. */
	input("x", 1);
	ck_assert_uint_eq(rd(DLL), 0x0c);
	ck_assert_uint_eq(rd(LSR) & LSR_DR, LSR_DR);

	wr(LCR, 0x03);
	ck_assert_uint_eq(rd(IER), IER_ERBFI | IER_ELSI);
	ck_assert_uint_eq(rd(RBR), 'x');
	wr(THR, 'y');
	ck_assert_uint_eq(host.nout, 1);
	ck_assert_uint_eq(host.out[0], 'y');

	/* The latch keeps its value across DLAB. */
	wr(LCR, LCR_DLAB);
	ck_assert_uint_eq(rd(DLL), 0x0c);
	ck_assert_uint_eq(rd(DLM), 0x01);
}
END_TEST

START_TEST(test_uart_ier_mask)
{
	/* Linux's probe: IER keeps bits 0-3 only. */
	wr(IER, 0xff);
	ck_assert_uint_eq(rd(IER), 0x0f);
	wr(IER, 0x00);
	ck_assert_uint_eq(rd(IER), 0x00);
	wr(MCR, 0xff);
	ck_assert_uint_eq(rd(MCR), 0x1f);
}
END_TEST

START_TEST(test_uart_fifo_iir)
{
	wr(FCR, 0x01);
	ck_assert_uint_eq(rd(IIR), 0xc1);
	wr(FCR, 0xc7);
	ck_assert_uint_eq(rd(IIR), 0xc1);
	/* IIR is readable with DLAB set too (Linux's EFR probe). */
	wr(LCR, 0xbf);
	ck_assert_uint_eq(rd(IIR), 0xc1);
	wr(LCR, 0x00);
	wr(FCR, 0x00);
	ck_assert_uint_eq(rd(IIR), 0x01);
	/* 64-byte FIFO bit of a 16750: not on a 16550A. */
	wr(FCR, 0x21);
	ck_assert_uint_eq(rd(IIR) & 0x30, 0);
}
END_TEST

START_TEST(test_uart_scratch)
{
	wr(SCR, 0x5a);
	ck_assert_uint_eq(rd(SCR), 0x5a);
	wr(SCR, 0xa5);
	ck_assert_uint_eq(rd(SCR), 0xa5);
	wr(LCR, LCR_DLAB);
	ck_assert_uint_eq(rd(SCR), 0xa5);
}
END_TEST

START_TEST(test_uart_lsr_msr_read_only)
{
	wr(LSR, 0xff);
	wr(MSR, 0xff);
	ck_assert_uint_eq(rd(LSR), LSR_IDLE);
	ck_assert_uint_eq(rd(MSR), MSR_CONNECTED);
}
END_TEST

/* ---- uart: receive ------------------------------------------------------ */

START_TEST(test_uart_rx_order)
{
	wr(FCR, 0x01);
	input("abc", 3);
	ck_assert_uint_eq(room(), FIFO_SIZE - 3);
	ck_assert_uint_eq(rd(LSR), LSR_IDLE | LSR_DR);
	ck_assert_uint_eq(rd(RBR), 'a');
	ck_assert_uint_eq(room(), FIFO_SIZE - 2);
	ck_assert_uint_eq(rd(RBR), 'b');
	ck_assert_uint_eq(rd(LSR), LSR_IDLE | LSR_DR);
	ck_assert_uint_eq(rd(RBR), 'c');
	ck_assert_uint_eq(rd(LSR), LSR_IDLE);
	ck_assert_uint_eq(room(), FIFO_SIZE);

	/* Wrapping around the ring keeps the order. */
	for (int round = 0; round < 5; round++) {
		uint8_t buf[11];

		for (unsigned i = 0; i < sizeof(buf); i++)
			buf[i] = (uint8_t)(round * 16 + i);
		input(buf, sizeof(buf));
		for (unsigned i = 0; i < sizeof(buf); i++)
			ck_assert_uint_eq(rd(RBR), buf[i]);
		ck_assert_uint_eq(rd(LSR) & LSR_DR, 0);
	}
}
END_TEST

START_TEST(test_uart_rx_fifo_disabled)
{
	/* 16450 mode still buffers; data is reported at one byte. */
	wr(IER, IER_ERBFI);
	input("pq", 2);
	ck_assert_uint_eq(rd(IIR), 0x04);
	ck_assert_uint_eq(rd(RBR), 'p');
	ck_assert_uint_eq(rd(IIR), 0x04);
	ck_assert_uint_eq(rd(RBR), 'q');
	ck_assert_uint_eq(rd(IIR), 0x01);
}
END_TEST

START_TEST(test_uart_overrun)
{
	uint8_t buf[FIFO_SIZE + 1];

	wr(FCR, 0x01);
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)('A' + i);
	input(buf, FIFO_SIZE);
	ck_assert_uint_eq(room(), 0);
	ck_assert_uint_eq(rd(LSR), LSR_IDLE | LSR_DR);	/* no overrun yet */
	input(buf + FIFO_SIZE, 1);			/* one too many */
	ck_assert_uint_eq(room(), 0);
	ck_assert_uint_eq(rd(LSR), LSR_IDLE | LSR_DR | LSR_OE);
	ck_assert_uint_eq(rd(LSR), LSR_IDLE | LSR_DR);	/* OE cleared by read */
	for (unsigned i = 0; i < FIFO_SIZE; i++)
		ck_assert_uint_eq(rd(RBR), buf[i]);	/* the 17th was lost */
	ck_assert_uint_eq(rd(LSR), LSR_IDLE);
	ck_assert_uint_eq(room(), FIFO_SIZE);
}
END_TEST

START_TEST(test_uart_fifo_reset)
{
	wr(FCR, 0x01);
	input("abcd", 4);
	wr(FCR, 0x03);		/* reset RX FIFO */
	ck_assert_uint_eq(rd(LSR), LSR_IDLE);
	ck_assert_uint_eq(room(), FIFO_SIZE);
	ck_assert_uint_eq(rd(IIR), 0xc1);

	input("ef", 2);
	wr(FCR, 0x00);		/* disabling the FIFOs empties them */
	ck_assert_uint_eq(rd(LSR), LSR_IDLE);
	input("g", 1);
	wr(FCR, 0x01);		/* and so does enabling them */
	ck_assert_uint_eq(rd(LSR), LSR_IDLE);

	input("h", 1);
	wr(FCR, 0x05);		/* TX reset alone keeps RX data */
	ck_assert_uint_eq(rd(RBR), 'h');
}
END_TEST

START_TEST(test_uart_rx_trigger_levels)
{
	static const struct { uint8_t fcr; unsigned level; } levels[] = {
		{0x01, 1}, {0x41, 4}, {0x81, 8}, {0xc1, 14},
	};

	wr(IER, IER_ERBFI);
	wr(MCR, MCR_OUT2);
	for (unsigned t = 0; t < sizeof(levels) / sizeof(levels[0]); t++) {
		wr(FCR, levels[t].fcr | 0x02);
		ck_assert_uint_eq(rd(IIR), 0xc1);
		ck_assert(!host.level[0]);
		for (unsigned n = 1; n <= FIFO_SIZE; n++) {
			input("z", 1);
			/* below trigger: timeout indication; at it: data */
			ck_assert_uint_eq(rd(IIR), n < levels[t].level ?
					  0xcc : 0xc4);
			ck_assert(host.level[0]);
		}
		/* reading below the trigger falls back to timeout */
		for (unsigned n = FIFO_SIZE; n > 0; n--) {
			ck_assert_uint_eq(rd(IIR), n < levels[t].level ?
					  0xcc : 0xc4);
			rd(RBR);
		}
		ck_assert_uint_eq(rd(IIR), 0xc1);
		ck_assert(!host.level[0]);
	}
}
END_TEST

START_TEST(test_uart_rx_interrupt_disabled)
{
	wr(FCR, 0x81);		/* trigger at 8 */
	wr(MCR, MCR_OUT2);
	input("abc", 3);
	ck_assert_uint_eq(rd(IIR), 0xc1);
	ck_assert_uint_eq(host.irq_calls, 0);
	wr(IER, IER_ERBFI);	/* enabling raises it for waiting data */
	ck_assert_uint_eq(rd(IIR), 0xcc);
	ck_assert(host.level[0]);
	wr(IER, 0);
	ck_assert(!host.level[0]);
}
END_TEST

/* ---- uart: THR empty, priorities, IRQ line ------------------------------ */

START_TEST(test_uart_thre_interrupt)
{
	wr(MCR, MCR_OUT2);
	wr(IER, IER_ETBEI);		/* newly enabled, THR empty */
	ck_assert(host.level[0]);
	ck_assert_uint_eq(rd(IIR), 0x02);
	ck_assert(!host.level[0]);		/* acknowledged by the IIR read */
	ck_assert_uint_eq(rd(IIR), 0x01);

	wr(THR, 'a');			/* THR empties again at once */
	ck_assert(host.level[0]);
	ck_assert_uint_eq(host.nout, 1);
	wr(THR, 'b');
	ck_assert(host.level[0]);
	ck_assert_uint_eq(rd(IIR), 0x02);
	ck_assert_uint_eq(rd(IIR), 0x01);

	wr(IER, IER_ETBEI);		/* not newly enabled: nothing */
	ck_assert_uint_eq(rd(IIR), 0x01);
	wr(IER, IER_ETBEI | IER_ERBFI);	/* ETBEI was already on */
	ck_assert_uint_eq(rd(IIR), 0x01);

	wr(IER, IER_ETBEI);
	wr(THR, 'c');
	ck_assert(host.level[0]);
	wr(IER, 0);			/* disabling drops it */
	ck_assert(!host.level[0]);
	ck_assert_uint_eq(rd(IIR), 0x01);
	wr(IER, IER_ETBEI);
	ck_assert_uint_eq(rd(IIR), 0x02);

	/* A THR write without ETBEI raises nothing. */
	wr(IER, 0);
	wr(THR, 'd');
	ck_assert_uint_eq(rd(IIR), 0x01);
	ck_assert(!host.level[0]);
}
END_TEST

START_TEST(test_uart_linux_thre_probe)
{
	/* serial8250_do_startup's check for a UART that misses THRE. */
	uint8_t iir1, iir;

	wr(LCR, 0x03);
	wr(IER, IER_ETBEI);
	iir1 = rd(IIR);
	wr(IER, 0);
	wr(IER, IER_ETBEI);
	iir = rd(IIR);
	wr(IER, 0);
	ck_assert_uint_eq(iir1 & 0x01, 0);
	ck_assert_uint_eq(iir & 0x01, 0);
}
END_TEST

START_TEST(test_uart_linux_loopback_probe)
{
	/* autoconfig: MCR = LOOP | OUT2 | RTS must read MSR & 0xf0 = 0x90. */
	wr(MCR, MCR_LOOP | 0x0a);
	ck_assert_uint_eq(rd(MSR) & 0xf0, 0x90);
	wr(MCR, 0);
	ck_assert_uint_eq(rd(MSR) & 0xf0, MSR_CONNECTED);
}
END_TEST

START_TEST(test_uart_priorities)
{
	uint8_t buf[FIFO_SIZE + 1];

	memset(buf, 'x', sizeof(buf));
	wr(FCR, 0x01);
	wr(MCR, MCR_OUT2);
	wr(IER, 0x0f);			/* THRE now pending */
	ck_assert(host.level[0]);
	input(buf, sizeof(buf));	/* data and an overrun */
	/* enter loopback with RTS and OUT2: DSR drops, a modem delta */
	wr(MCR, MCR_LOOP | MCR_OUT2 | MCR_RTS);

	ck_assert_uint_eq(rd(IIR), 0xc6);	/* line status first */
	ck_assert_uint_eq(rd(IIR), 0xc6);	/* IIR read does not clear it */
	ck_assert_uint_eq(rd(LSR) & LSR_OE, LSR_OE);
	ck_assert_uint_eq(rd(IIR), 0xc4);	/* then received data */
	for (unsigned i = 0; i < FIFO_SIZE; i++)
		rd(RBR);
	ck_assert_uint_eq(rd(IIR), 0xc2);	/* then THR empty */
	ck_assert_uint_eq(rd(IIR), 0xc0);	/* then modem status */
	ck_assert(host.level[0]);
	ck_assert_uint_eq(rd(MSR), 0x90 | 0x02);	/* CTS, DCD; DDSR */
	ck_assert_uint_eq(rd(IIR), 0xc1);
	ck_assert(!host.level[0]);
}
END_TEST

START_TEST(test_uart_timeout_below_line_status)
{
	wr(FCR, 0x81);
	wr(IER, IER_ERBFI | IER_ELSI);
	wr(MCR, MCR_OUT2);
	input("a", 1);
	ck_assert_uint_eq(rd(IIR), 0xcc);
	/* a THRE interrupt is below received data */
	wr(IER, IER_ERBFI | IER_ELSI | IER_ETBEI);
	ck_assert_uint_eq(rd(IIR), 0xcc);
	ck_assert_uint_eq(rd(RBR), 'a');
	ck_assert_uint_eq(rd(IIR), 0xc2);
	ck_assert_uint_eq(rd(IIR), 0xc1);
}
END_TEST

START_TEST(test_uart_out2_gating)
{
	wr(IER, IER_ETBEI);
	wr(THR, 'a');
	ck_assert_uint_eq(host.irq_calls, 0);	/* pending, but OUT2 is off */
	wr(MCR, MCR_OUT2);
	ck_assert(host.level[0]);
	ck_assert_uint_eq(host.irq_calls, 1);
	wr(MCR, MCR_DTR | MCR_RTS);
	ck_assert(!host.level[0]);
	ck_assert_uint_eq(host.irq_calls, 2);
	ck_assert_uint_eq(rd(IIR), 0x02);	/* still pending inside */
	wr(MCR, MCR_OUT2 | MCR_DTR | MCR_RTS);
	ck_assert(!host.level[0]);			/* acknowledged meanwhile */
	ck_assert_uint_eq(host.irq_calls, 2);

	/* Received data, too. */
	wr(MCR, 0);
	wr(IER, IER_ERBFI);
	input("b", 1);
	ck_assert_uint_eq(host.irq_calls, 2);
	wr(MCR, MCR_OUT2);
	ck_assert(host.level[0]);
	ck_assert_uint_eq(host.irq_calls, 3);
}
END_TEST

START_TEST(test_uart_irq_only_on_change)
{
	wr(MCR, MCR_OUT2);
	wr(IER, IER_ETBEI | IER_ERBFI);
	ck_assert_uint_eq(host.irq_calls, 1);
	for (int i = 0; i < 100; i++) {
		wr(THR, 'x');
		wr(SCR, (uint8_t)i);
		rd(LSR);
		rd(MSR);
		input("y", 1);
	}
	ck_assert(host.level[0]);
	ck_assert_uint_eq(host.irq_calls, 1);
	ck_assert_uint_eq(host.irq_redundant, 0);
	while (rd(LSR) & LSR_DR)
		rd(RBR);
	ck_assert_uint_eq(rd(IIR), 0x02);
	ck_assert(!host.level[0]);
	ck_assert_uint_eq(host.irq_calls, 2);
}
END_TEST

/* ---- uart: loopback and modem status ------------------------------------ */

START_TEST(test_uart_loopback)
{
	wr(FCR, 0x01);
	wr(MCR, MCR_LOOP);
	ck_assert_uint_eq(room(), 0);
	wr(THR, 'x');
	wr(THR, 'y');
	ck_assert_uint_eq(host.nout, 0);	/* nothing leaves */
	ck_assert_uint_eq(rd(LSR), LSR_IDLE | LSR_DR);
	input("z", 1);				/* the line is cut off */
	ck_assert_uint_eq(rd(RBR), 'x');
	ck_assert_uint_eq(rd(RBR), 'y');
	ck_assert_uint_eq(rd(LSR), LSR_IDLE);

	/* overrun in loopback */
	for (int i = 0; i < FIFO_SIZE + 1; i++)
		wr(THR, (uint8_t)i);
	ck_assert_uint_eq(rd(LSR), LSR_IDLE | LSR_DR | LSR_OE);
	for (int i = 0; i < FIFO_SIZE; i++)
		ck_assert_uint_eq(rd(RBR), i);

	/* interrupts still work in loopback */
	wr(MCR, MCR_LOOP | MCR_OUT2);
	wr(IER, IER_ERBFI);
	wr(THR, 'q');
	ck_assert(host.level[0]);
	ck_assert_uint_eq(rd(IIR), 0xc4);
	ck_assert_uint_eq(rd(RBR), 'q');
	ck_assert(!host.level[0]);

	wr(MCR, 0);
	ck_assert_uint_eq(room(), FIFO_SIZE);
	wr(THR, 'w');
	ck_assert_uint_eq(host.nout, 1);
	ck_assert_uint_eq(host.out[0], 'w');
}
END_TEST

START_TEST(test_uart_loopback_msr_mirror)
{
	static const struct { uint8_t mcr, lines; } map[] = {
		{0, 0x00},
		{MCR_RTS, 0x10},	/* CTS */
		{MCR_DTR, 0x20},	/* DSR */
		{MCR_OUT1, 0x40},	/* RI */
		{MCR_OUT2, 0x80},	/* DCD */
		{0x0f, 0xf0},
		{MCR_DTR | MCR_OUT2, 0xa0},
	};

	for (unsigned i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		wr(MCR, MCR_LOOP | map[i].mcr);
		ck_assert_uint_eq(rd(MSR) & 0xf0, map[i].lines);
		ck_assert_uint_eq(rd(MCR), MCR_LOOP | map[i].mcr);
	}
}
END_TEST

START_TEST(test_uart_msr_deltas)
{
	wr(MCR, MCR_LOOP);		/* CTS, DSR, DCD drop */
	ck_assert_uint_eq(rd(MSR), 0x0b);
	ck_assert_uint_eq(rd(MSR), 0x00);	/* deltas cleared by read */
	wr(MCR, MCR_LOOP | MCR_OUT1);	/* RI rises: no TERI */
	ck_assert_uint_eq(rd(MSR), 0x40);
	wr(MCR, MCR_LOOP);		/* RI falls: TERI */
	ck_assert_uint_eq(rd(MSR), 0x04);
	ck_assert_uint_eq(rd(MSR), 0x00);
	wr(MCR, MCR_LOOP | MCR_RTS);
	wr(MCR, MCR_LOOP);		/* deltas accumulate until read */
	ck_assert_uint_eq(rd(MSR), 0x01);
	wr(MCR, MCR_LOOP | MCR_DTR);
	ck_assert_uint_eq(rd(MSR), 0x22);
	wr(MCR, 0);			/* back to the terminal */
	ck_assert_uint_eq(rd(MSR), MSR_CONNECTED | 0x09);
	ck_assert_uint_eq(rd(MSR), MSR_CONNECTED);
}
END_TEST

START_TEST(test_uart_modem_status_interrupt)
{
	wr(IER, IER_EDSSI);
	wr(MCR, MCR_OUT2);
	ck_assert(!host.level[0]);
	wr(MCR, MCR_LOOP | MCR_OUT2);	/* DCD stays, CTS and DSR drop */
	ck_assert(host.level[0]);
	ck_assert_uint_eq(rd(IIR), 0x00);
	ck_assert_uint_eq(rd(IIR), 0x00);	/* IIR read does not clear it */
	ck_assert_uint_eq(rd(MSR), 0x80 | 0x03);
	ck_assert(!host.level[0]);
	ck_assert_uint_eq(rd(IIR), 0x01);
}
END_TEST

/* ---- uart: access widths ------------------------------------------------ */

START_TEST(test_uart_wide_access)
{
	wr_wide(THR, 0x4241, 2);		/* only the low byte is sent */
	ck_assert_uint_eq(host.nout, 1);
	ck_assert_uint_eq(host.out[0], 0x41);
	wr_wide(THR, 0x44434241, 4);
	ck_assert_uint_eq(host.nout, 2);
	wr_wide(THR, 0x4847464544434241ull, 8);
	ck_assert_uint_eq(host.nout, 3);

	ck_assert_uint_eq(rd_wide(LSR, 4), LSR_IDLE);	/* zero-extended */
	ck_assert_uint_eq(rd_wide(LSR, 2), LSR_IDLE);
	ck_assert_uint_eq(rd_wide(LSR, 8), LSR_IDLE);

	wr_wide(SCR, 0x11223344, 4);		/* no spill past the end */
	ck_assert_uint_eq(rd(SCR), 0x44);
	ck_assert_uint_eq(rd_wide(SCR, 2), 0x44);

	wr_wide(LCR, 0x0003, 2);		/* does not touch MCR */
	ck_assert_uint_eq(rd(MCR), 0);
	ck_assert_uint_eq(rd(LCR), 0x03);

	wr_wide(FCR, 0xffc1, 2);
	ck_assert_uint_eq(rd_wide(IIR, 8), 0xc1);

	input("ab", 2);				/* a wide read pops one byte */
	ck_assert_uint_eq(rd_wide(RBR, 4), 'a');
	ck_assert_uint_eq(rd_wide(RBR, 2), 'b');
	ck_assert_uint_eq(rd(LSR), LSR_IDLE);
}
END_TEST

START_TEST(test_uart_every_offset_and_length)
{
	static const unsigned lens[] = {1, 2, 4, 8};

	for (int dlab = 0; dlab < 2; dlab++) {
		for (unsigned off = 0; off < 12; off++) {
			for (unsigned l = 0; l < 4; l++) {
				uint8_t buf[9];
				unsigned len = lens[l];

				wr(LCR, dlab ? LCR_DLAB : 0);
				memset(buf, 0xaa, sizeof(buf));
				dev->desc->io(dev, 0, off, buf, len, false);
				for (unsigned i = 1; i < len; i++)
					ck_assert_uint_eq(buf[i],
							  off < 8 ? 0 : 0xff);
				if (off >= 8)
					ck_assert_uint_eq(buf[0], 0xff);
				ck_assert_uint_eq(buf[len], 0xaa);

				/* write back what was read (not to MCR:
				 * loopback would hide the backend) */
				if (off != MCR)
					dev->desc->io(dev, 0, off, buf, len,
						      true);
				input("k", 1);
			}
		}
	}
	/* A region index the UART does not have reads all ones. */
	{
		uint8_t buf[4] = {0};

		dev->desc->io(dev, 1, 0, buf, 4, false);
		ck_assert_uint_eq(buf[0] & buf[1] & buf[2] & buf[3], 0xff);
		dev->desc->io(dev, 1, 0, buf, 4, true);
		dev->desc->io(dev, 0, UINT64_MAX, buf, 4, false);
		dev->desc->io(dev, 0, UINT64_MAX, buf, 4, true);
	}
	ck_assert_uint_le(room(), FIFO_SIZE);
}
END_TEST

/* ---- uart: random soak -------------------------------------------------- */

static uint64_t soak_rng = 0x9e3779b97f4a7c15ull;

static uint64_t soak_next(void)
{
	/* xorshift64*: fixed seed, same run every time */
	soak_rng ^= soak_rng >> 12;
	soak_rng ^= soak_rng << 25;
	soak_rng ^= soak_rng >> 27;
	return soak_rng * 0x2545f4914f6cdd1dull;
}

/* Check the IRQ line and drain the FIFO, comparing with backend_room. */
static void soak_check_and_drain(void)
{
	uint8_t mcr = rd(MCR);
	bool level = host.level[0];
	uint8_t iir = rd(IIR);
	bool loop = mcr & MCR_LOOP;
	size_t room_before = room();
	unsigned drained = 0;

	ck_assert_int_eq(level, !(iir & 0x01) && (mcr & MCR_OUT2));
	ck_assert_uint_eq(iir & 0x30, 0);
	if (loop)
		ck_assert_uint_eq(room_before, 0);

	wr(LCR, rd(LCR) & ~LCR_DLAB);
	while ((rd(LSR) & LSR_DR) && drained <= 2 * FIFO_SIZE) {
		rd(RBR);
		drained++;
	}
	ck_assert_uint_le(drained, FIFO_SIZE);
	if (!loop) {
		ck_assert_uint_eq(room_before + drained, FIFO_SIZE);
		ck_assert_uint_eq(room(), FIFO_SIZE);
	}
}

START_TEST(test_uart_soak)
{
	static const unsigned lens[] = {1, 2, 4, 8};
	uint8_t buf[FIFO_SIZE + 8];

	for (int step = 0; step < 100000; step++) {
		uint64_t r = soak_next();
		unsigned what = r % 100;

		if (what < 15) {
			size_t n = room();

			if ((r >> 8) % 10 == 0)
				n += (r >> 16) % 4;	/* overrun at times */
			else if (n)
				n = 1 + (r >> 16) % n;
			for (size_t i = 0; i < n; i++)
				buf[i] = (uint8_t)(r >> (i % 8));
			input(buf, n);
		} else if (what < 16) {
			soak_check_and_drain();
		} else {
			uint64_t val = soak_next();
			unsigned off = (r >> 8) % 8;
			unsigned len = lens[(r >> 16) % 4];
			bool write = (r >> 20) & 1;

			if ((r >> 24) % 64 == 0)
				off = (r >> 32) % 64;	/* out of range */
			memset(buf, 0, sizeof(buf));
			for (unsigned i = 0; i < 8; i++)
				buf[i] = (uint8_t)(val >> (8 * i));
			dev->desc->io(dev, 0, off, buf, len, write);
		}

		ck_assert_uint_le(room(), FIFO_SIZE);
		if (rd(MCR) & MCR_LOOP)
			ck_assert_uint_eq(room(), 0);
		ck_assert_uint_eq(host.irq_redundant, 0);
	}
	soak_check_and_drain();
	/* the random run did drive the line and the backend */
	ck_assert_uint_gt(host.irq_calls, 0);
	ck_assert_uint_gt(host.nout_total, 0);
}
END_TEST

/* ---- debug-exit and null ------------------------------------------------ */

START_TEST(test_debugexit)
{
	ck_assert_str_eq(debugexit_desc.mf->name, "debug-exit");
	ck_assert_uint_eq(debugexit_desc.mf->nregions, 1);
	/* It stops the VM: every write must be answered before the vCPU runs on. */
	ck_assert_uint_eq(debugexit_desc.nposted, 0);
	ck_assert_int_eq(debugexit_desc.mf->regions[0].space, DEV_PIO);
	ck_assert_uint_eq(debugexit_desc.mf->regions[0].base, 0xf4);
	ck_assert_uint_eq(debugexit_desc.mf->regions[0].len, 1);
	ck_assert_uint_eq(debugexit_desc.mf->nirqs, 0);

	new_dev(&debugexit_desc);
	wr(0, 0);
	ck_assert_uint_eq(host.exits, 1);
	ck_assert_uint_eq(host.exit_code, 0);
	wr(0, 5);
	ck_assert_uint_eq(host.exits, 2);
	ck_assert_uint_eq(host.exit_code, 5);
	wr_wide(0, 0x1234, 2);
	ck_assert_uint_eq(host.exit_code, 0x1234);
	wr_wide(0, 0xdeadbeef, 4);
	ck_assert_uint_eq(host.exit_code, 0xdeadbeef);
	ck_assert_uint_eq(host.exits, 4);

	ck_assert_uint_eq(rd(0), 0xff);
	ck_assert_uint_eq(rd_wide(0, 4), 0xffffffff);
	ck_assert_uint_eq(host.exits, 4);	/* reads ask for nothing */
	ck_assert_uint_eq(host.irq_calls, 0);
}
END_TEST

START_TEST(test_null)
{
	const uint64_t *writes;

	ck_assert_str_eq(null_desc.mf->name, "null");
	ck_assert_uint_eq(null_desc.mf->nregions, 2);
	ck_assert_int_eq(null_desc.mf->regions[0].space, DEV_PIO);
	ck_assert_uint_eq(null_desc.mf->regions[0].base, 0x510);
	ck_assert_uint_eq(null_desc.mf->regions[0].len, 8);
	ck_assert_int_eq(null_desc.mf->regions[1].space, DEV_MMIO);
	ck_assert_uint_eq(null_desc.mf->regions[1].base, 0xd0100000);
	ck_assert_uint_eq(null_desc.mf->regions[1].len, 0x1000);
	ck_assert_uint_eq(null_desc.mf->nirqs, 0);

	new_dev(&null_desc);
	writes = dev->state;	/* null's state starts with the count */
	ck_assert_uint_eq(*writes, 0);
	for (unsigned i = 0; i < 10; i++)
		wr(i % 8, (uint8_t)i);
	wr_wide(0, 0x1122334455667788ull, 8);
	ck_assert_uint_eq(*writes, 11);
	/* A read answers the writes seen so far, masked to its width. */
	ck_assert_uint_eq(rd(3), 11);
	ck_assert_uint_eq(rd_wide(0, 8), 11);
	ck_assert_uint_eq(*writes, 11);
	for (unsigned i = 0; i < 250; i++)
		wr(0, 0);
	ck_assert_uint_eq(rd(0), 261 & 0xff);
	ck_assert_uint_eq(rd_wide(0, 2), 261);
	/* The MMIO page (region 1) behaves the same: 32-bit accesses. */
	uint32_t v = 0xdeadbeef;
	dev->desc->io(dev, 1, 0xffc, &v, 4, true);
	ck_assert_uint_eq(*writes, 262);
	dev->desc->io(dev, 1, 0, &v, 4, false);
	ck_assert_uint_eq(v, 262);
	ck_assert_uint_eq(*writes, 262);
	/* Every write may be posted: both regions whole. */
	ck_assert_uint_eq(null_desc.nposted, 2);
	for (unsigned i = 0; i < 2; i++) {
		ck_assert_uint_eq(null_desc.posted[i].region, i);
		ck_assert_uint_eq(null_desc.posted[i].off, 0);
		ck_assert_uint_eq(null_desc.posted[i].len,
				  null_desc.mf->regions[i].len);
	}
	ck_assert_uint_eq(host.nout, 0);
	ck_assert_uint_eq(host.exits, 0);
	ck_assert_uint_eq(host.irq_calls, 0);
}
END_TEST

/* ---- dev_new ------------------------------------------------------------ */

static int order_log[4];
static unsigned order_n;

struct probe_state {
	uint32_t word[4];
};

static int probe_construct(struct dev *d)
{
	const struct probe_state *s = d->state;

	/* state arrives zeroed */
	for (unsigned i = 0; i < 4; i++)
		if (s->word[i])
			return -EBADMSG;
	order_log[order_n++ % 4] = 1;
	return 0;
}

static int probe_construct_fail(struct dev *d)
{
	(void)d;
	order_log[order_n++ % 4] = 1;
	return -EIO;
}

static void probe_reset(struct dev *d)
{
	(void)d;
	order_log[order_n++ % 4] = 2;
}

/* A manifest entry for the probe cores below. */
static const struct dev_manifest probe_mf = {
	.name = "probe", .binary = "bulkhead-dev-probe",
	.regions = { { DEV_PIO, 0x500, 1 } }, .nregions = 1,
};

START_TEST(test_dev_new_order)
{
	const struct dev_desc desc = {
		.mf = &probe_mf,
		.state_size = sizeof(struct probe_state),
		.construct = probe_construct,
		.reset = probe_reset,
	};

	order_n = 0;
	ck_assert_int_eq(dev_new(&desc, 3, &fakehost_bare_ops, &host, &dev), 0);
	ck_assert_uint_eq(order_n, 2);
	ck_assert_int_eq(order_log[0], 1);
	ck_assert_int_eq(order_log[1], 2);
	ck_assert_ptr_eq(dev->desc, &desc);
	ck_assert_uint_eq(dev->instance, 3);
	ck_assert_ptr_eq(dev->ops, &fakehost_bare_ops);
	ck_assert_ptr_eq(dev->host, &host);
	ck_assert_ptr_nonnull(dev->state);
	dev_free(dev);
	dev = NULL;
}
END_TEST

START_TEST(test_dev_new_construct_fails)
{
	const struct dev_desc desc = {
		.mf = &probe_mf,
		.state_size = 8,
		.construct = probe_construct_fail,
		.reset = probe_reset,
	};
	static struct dev sentinel;
	struct dev *d = &sentinel;		/* must be overwritten */

	order_n = 0;
	ck_assert_int_eq(dev_new(&desc, 0, &fakehost_bare_ops, &host, &d), -EIO);
	ck_assert_ptr_null(d);
	ck_assert_uint_eq(order_n, 1);		/* no reset after failure */
}
END_TEST

START_TEST(test_dev_new_no_callbacks)
{
	const struct dev_desc desc = {.mf = &probe_mf};
	const struct dev_desc no_entry = {.state_size = 8};

	/* A core without its manifest entry is refused. */
	ck_assert_int_eq(dev_new(&no_entry, 0, &fakehost_bare_ops, &host, &dev),
			 -EINVAL);
	ck_assert_ptr_null(dev);
	ck_assert_int_eq(dev_new(&desc, 0, &fakehost_bare_ops, &host, &dev), 0);
	ck_assert_ptr_null(dev->state);
	dev_free(dev);
	dev = NULL;
	dev_free(NULL);
}
END_TEST

/* ---- saved state ------------------------------------------------------- */

START_TEST(test_uart_save_load_round_trip)
{
	const uint8_t in[] = { 'a', 'b', 'c' };
	struct dev *saved = dev;
	uint8_t *buf = NULL;
	size_t len = 0;

	wr(3, 0x80);                 /* DLAB: divisor 0x0c01 */
	wr(0, 0x01);
	wr(1, 0x0c);
	wr(3, 0x03);                 /* 8N1 */
	wr(2, 0xc1);                 /* FIFO on, trigger 14 */
	wr(4, 0x0b);                 /* DTR, RTS, OUT2 */
	wr(7, 0x5a);
	wr(1, 0x01);                 /* receive interrupts */
	dev->desc->backend_input(dev, in, sizeof(in));
	ck_assert_int_eq(dev->desc->save(dev, &buf, &len), 0);
	ck_assert_uint_gt(len, 0);

	/* A fresh device (a new process: its line starts low) takes the
	 * state over exactly, and drives the line as the state says. */
	ck_assert(host.level[0]);
	host.level[0] = false;
	ck_assert_int_eq(dev_new(&uart_desc, 0, &fakehost_bare_ops, &host, &dev), 0);
	ck_assert_int_eq(dev->desc->load(dev, buf, len, uart_desc.mf->state_version), 0);
	ck_assert(host.level[0]);
	ck_assert_int_eq(rd(7), 0x5a);
	ck_assert_int_eq(rd(3), 0x03);
	ck_assert_int_eq(rd(4), 0x0b);
	ck_assert_int_eq(rd(1), 0x01);
	ck_assert_int_eq(rd(2) & 0xc0, 0xc0);
	wr(3, 0x83);
	ck_assert_int_eq(rd(0), 0x01);
	ck_assert_int_eq(rd(1), 0x0c);
	wr(3, 0x03);
	ck_assert_int_eq(rd(5) & 0x01, 0x01);
	ck_assert_int_eq(rd(0), 'a');
	ck_assert_int_eq(rd(0), 'b');
	ck_assert_int_eq(rd(0), 'c');
	ck_assert_int_eq(rd(5) & 0x01, 0x00);
	dev_free(saved);
	free(buf);
}
END_TEST

START_TEST(test_uart_load_hostile)
{
	uint8_t junk[64];
	uint8_t *buf = NULL;
	size_t len = 0;

	wr(7, 0x33);
	/* Garbage, a wrong version, and fields no 16550A can hold. */
	for (unsigned i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	ck_assert_int_lt(dev->desc->load(dev, junk, sizeof(junk), 1), 0);
	ck_assert_int_eq(dev->desc->save(dev, &buf, &len), 0);
	ck_assert_int_lt(dev->desc->load(dev, buf, len, 2), 0);
	free(buf);
	{
		UartState st = UART_STATE__INIT;
		uint8_t big[17] = { 0 }, out[256];

		st.rx_fifo.data = big;       /* 17 bytes in a 16-byte FIFO */
		st.rx_fifo.len = sizeof(big);
		ck_assert_int_lt(dev->desc->load(dev, out, uart_state__pack(&st, out),
						 1), 0);
		st.rx_fifo.len = 0;
		st.ier = 0xff;                /* bits 4-7 do not exist */
		ck_assert_int_lt(dev->desc->load(dev, out, uart_state__pack(&st, out),
						 1), 0);
		st.ier = 0;
		st.dll = 0x100;
		ck_assert_int_lt(dev->desc->load(dev, out, uart_state__pack(&st, out),
						 1), 0);
	}
	/* Unchanged by every refusal. */
	ck_assert_int_eq(rd(7), 0x33);
}
END_TEST

Suite *uart_suite(void)
{
	Suite *s = suite_create("uart");
	TCase *regs = tcase_create("registers");
	TCase *rx = tcase_create("receive");
	TCase *irq = tcase_create("interrupts");
	TCase *modem = tcase_create("loopback-modem");
	TCase *access = tcase_create("access");
	TCase *others = tcase_create("debugexit-null-devnew");

	tcase_add_checked_fixture(regs, uart_setup, dev_teardown);
	tcase_add_test(regs, test_uart_descriptor);
	tcase_add_test(regs, test_uart_reset_values);
	tcase_add_test(regs, test_uart_reset_restores);
	tcase_add_test(regs, test_uart_thr_to_backend);
	tcase_add_test(regs, test_uart_dlab);
	tcase_add_test(regs, test_uart_ier_mask);
	tcase_add_test(regs, test_uart_fifo_iir);
	tcase_add_test(regs, test_uart_scratch);
	tcase_add_test(regs, test_uart_lsr_msr_read_only);
	tcase_add_test(regs, test_uart_save_load_round_trip);
	tcase_add_test(regs, test_uart_load_hostile);
	suite_add_tcase(s, regs);

	tcase_add_checked_fixture(rx, uart_setup, dev_teardown);
	tcase_add_test(rx, test_uart_rx_order);
	tcase_add_test(rx, test_uart_rx_fifo_disabled);
	tcase_add_test(rx, test_uart_overrun);
	tcase_add_test(rx, test_uart_fifo_reset);
	tcase_add_test(rx, test_uart_rx_trigger_levels);
	tcase_add_test(rx, test_uart_rx_interrupt_disabled);
	suite_add_tcase(s, rx);

	tcase_add_checked_fixture(irq, uart_setup, dev_teardown);
	tcase_add_test(irq, test_uart_thre_interrupt);
	tcase_add_test(irq, test_uart_linux_thre_probe);
	tcase_add_test(irq, test_uart_priorities);
	tcase_add_test(irq, test_uart_timeout_below_line_status);
	tcase_add_test(irq, test_uart_out2_gating);
	tcase_add_test(irq, test_uart_irq_only_on_change);
	suite_add_tcase(s, irq);

	tcase_add_checked_fixture(modem, uart_setup, dev_teardown);
	tcase_add_test(modem, test_uart_loopback);
	tcase_add_test(modem, test_uart_loopback_msr_mirror);
	tcase_add_test(modem, test_uart_linux_loopback_probe);
	tcase_add_test(modem, test_uart_msr_deltas);
	tcase_add_test(modem, test_uart_modem_status_interrupt);
	suite_add_tcase(s, modem);

	tcase_add_checked_fixture(access, uart_setup, dev_teardown);
	tcase_add_test(access, test_uart_wide_access);
	tcase_add_test(access, test_uart_every_offset_and_length);
	tcase_add_test(access, test_uart_soak);
	tcase_set_timeout(access, 60);
	suite_add_tcase(s, access);

	tcase_add_checked_fixture(others, host_setup, dev_teardown);
	tcase_add_test(others, test_debugexit);
	tcase_add_test(others, test_null);
	tcase_add_test(others, test_dev_new_order);
	tcase_add_test(others, test_dev_new_construct_fails);
	tcase_add_test(others, test_dev_new_no_callbacks);
	suite_add_tcase(s, others);

	return s;
}
