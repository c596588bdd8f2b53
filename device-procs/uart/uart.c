/* SPDX-License-Identifier: MIT */
/*
 * uart: a 16550A UART at COM1 (ports 0x3f8-0x3ff, GSI 4), written from the
 * PC16550D datasheet.
 *
 * What is modelled:
 * - divisor latch (DLL/DLM) behind LCR.DLAB; LCR, MCR, SCR read back;
 * - a 16-byte receive FIFO filled by the backend (or by the transmitter in
 *   loopback), with FCR enable / RX reset / trigger level (1, 4, 8, 14);
 *   IIR bits 6-7 read 11 while FIFOs are enabled, which is how a driver
 *   tells a 16550A from a 16450;
 * - LSR: DR, OE (a byte arriving at a full FIFO is lost and sets OE, which
 *   reading LSR clears), THRE and TEMT;
 * - the four interrupt sources with their datasheet priorities and IIR
 *   semantics; the IRQ line is pending && MCR.OUT2 (the PC gates the UART's
 *   interrupt output with OUT2) and is only driven when its level changes;
 * - MCR loopback: transmitted bytes go to the receive FIFO, and the modem
 *   status inputs follow MCR (CTS=RTS, DSR=DTR, RI=OUT1, DCD=OUT2), with
 *   delta bits that reading MSR clears.
 *
 * Simplifications:
 * - Transmission is immediate: a THR write goes straight to the backend
 *   (or, in loopback, the receive FIFO), so THR and the transmitter are
 *   always empty: THRE and TEMT always read 1 and there is no TX FIFO.
 * - Character timeout: the real part raises it when data has sat below the
 *   trigger level for four character times. There is no time here, so it is
 *   reported (IIR 0xc) as soon as the FIFO holds data below the trigger
 *   level and the received-data interrupt is enabled.
 * - The receive FIFO buffers 16 bytes even with FIFOs disabled (16450
 *   mode); the interrupt then fires on any data, as on a 16450. The backend
 *   is paced by uart_backend_room, so this only avoids losing input.
 * - The line itself is not modelled: the divisor and the LCR word format
 *   have no effect, and no parity, framing or break errors are produced
 *   (an LCR break in loopback is not received either).
 * - In normal mode the modem status inputs are those of a connected
 *   terminal (DCD, DSR, CTS on, RI off) and never change.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "device-procs/devhost/dev.h"
#include "uart_state.pb-c.h"

/* Register offsets (PC16550D datasheet, Table II "Summary of Registers",
 * which also gives the bits below); with LCR.DLAB set, 0 and 1 are the
 * divisor latch. */
#define UART_RBR 0	/* read: receive buffer */
#define UART_THR 0	/* write: transmit holding */
#define UART_DLL 0	/* DLAB: divisor latch, low byte */
#define UART_IER 1	/* interrupt enable */
#define UART_DLM 1	/* DLAB: divisor latch, high byte */
#define UART_IIR 2	/* read: interrupt identification */
#define UART_FCR 2	/* write: FIFO control */
#define UART_LCR 3	/* line control */
#define UART_MCR 4	/* modem control */
#define UART_LSR 5	/* line status */
#define UART_MSR 6	/* modem status */
#define UART_SCR 7	/* scratch */
#define UART_NREGS 8

#define UART_IER_ERBFI 0x01	/* received data available (and timeout) */
#define UART_IER_ETBEI 0x02	/* transmitter holding register empty */
#define UART_IER_ELSI 0x04	/* receiver line status */
#define UART_IER_EDSSI 0x08	/* modem status */
#define UART_IER_MASK 0x0f	/* bits 4-7 are always 0 on a 16550A */

/* IIR bits 0-3, one value per source; bits 6-7 show FIFOs enabled. */
#define UART_IIR_NO_INT 0x01
#define UART_IIR_MSI 0x00	/* modem status */
#define UART_IIR_THRI 0x02	/* THR empty */
#define UART_IIR_RDI 0x04	/* received data at trigger level */
#define UART_IIR_RLSI 0x06	/* receiver line status */
#define UART_IIR_CTI 0x0c	/* character timeout */
#define UART_IIR_FIFOS 0xc0

#define UART_FCR_ENABLE 0x01
#define UART_FCR_CLEAR_RX 0x02
#define UART_FCR_CLEAR_TX 0x04
#define UART_FCR_DMA 0x08
#define UART_FCR_TRIGGER 0xc0
#define UART_FCR_TRIGGER_SHIFT 6

#define UART_LCR_DLAB 0x80

#define UART_MCR_DTR 0x01
#define UART_MCR_RTS 0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10
#define UART_MCR_MASK 0x1f	/* bits 5-7 are always 0 on a 16550A */

#define UART_LSR_DR 0x01	/* data ready */
#define UART_LSR_OE 0x02	/* overrun error */
#define UART_LSR_PE 0x04	/* parity error */
#define UART_LSR_FE 0x08	/* framing error */
#define UART_LSR_BI 0x10	/* break interrupt */
#define UART_LSR_THRE 0x20	/* THR empty */
#define UART_LSR_TEMT 0x40	/* transmitter empty */
#define UART_LSR_ERRORS \
	(UART_LSR_OE | UART_LSR_PE | UART_LSR_FE | UART_LSR_BI)

#define UART_MSR_DCTS 0x01	/* delta CTS */
#define UART_MSR_DDSR 0x02	/* delta DSR */
#define UART_MSR_TERI 0x04	/* trailing edge of RI */
#define UART_MSR_DDCD 0x08	/* delta DCD */
#define UART_MSR_CTS 0x10
#define UART_MSR_DSR 0x20
#define UART_MSR_RI 0x40
#define UART_MSR_DCD 0x80
#define UART_MSR_DELTAS 0x0f
#define UART_MSR_LINES 0xf0
/* The inputs in normal mode: a terminal is connected. */
#define UART_MSR_CONNECTED (UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS)

#define UART_FIFO_SIZE 16u

/*
 * Everything the UART remembers, in fixed-size fields (it is saved and
 * restored field by field). IIR and the DR/THRE/TEMT bits of LSR are not
 * stored: they follow from the rest.
 */
struct uart_state {
	uint8_t rx_fifo[UART_FIFO_SIZE];
	uint32_t rx_head;	/* index of the oldest byte in rx_fifo */
	uint32_t rx_count;	/* bytes in rx_fifo, at most UART_FIFO_SIZE */
	uint8_t dll;
	uint8_t dlm;
	uint8_t ier;		/* UART_IER_MASK bits */
	uint8_t fcr;		/* ENABLE, DMA, TRIGGER; 0 with FIFOs off */
	uint8_t lcr;
	uint8_t mcr;		/* UART_MCR_MASK bits */
	uint8_t lsr_errors;	/* UART_LSR_ERRORS bits, cleared by LSR read */
	uint8_t msr;		/* input lines (4-7) and their deltas (0-3) */
	uint8_t scr;
	uint8_t thr_pending;	/* 1: THR-empty interrupt pending */
	uint8_t irq_level;	/* last level driven on IRQ line 0 */
};

static unsigned uart_rx_count(const struct uart_state *s)
{
	/* Never trust the count beyond the array, e.g. after a restore. */
	return s->rx_count < UART_FIFO_SIZE ? s->rx_count : UART_FIFO_SIZE;
}

static void uart_rx_clear(struct uart_state *s)
{
	s->rx_head = 0;
	s->rx_count = 0;
}

/* A byte arrives at the receiver: into the FIFO, or lost as an overrun. */
static void uart_rx_push(struct uart_state *s, uint8_t byte)
{
	unsigned count = uart_rx_count(s);

	if (count == UART_FIFO_SIZE) {
		s->lsr_errors |= UART_LSR_OE;
		return;
	}
	s->rx_fifo[(s->rx_head + count) % UART_FIFO_SIZE] = byte;
	s->rx_count = count + 1;
}

static uint8_t uart_rx_pop(struct uart_state *s)
{
	unsigned count = uart_rx_count(s);
	uint8_t byte;

	if (!count)
		return 0;
	byte = s->rx_fifo[s->rx_head % UART_FIFO_SIZE];
	s->rx_head = (s->rx_head + 1) % UART_FIFO_SIZE;
	s->rx_count = count - 1;
	return byte;
}

static bool uart_fifos_enabled(const struct uart_state *s)
{
	return s->fcr & UART_FCR_ENABLE;
}

/* Bytes in the FIFO that raise the received-data interrupt. */
static unsigned uart_rx_trigger(const struct uart_state *s)
{
	static const uint8_t uart_trigger_levels[] = {1, 4, 8, 14};

	if (!uart_fifos_enabled(s))
		return 1;
	return uart_trigger_levels[(s->fcr & UART_FCR_TRIGGER) >>
				   UART_FCR_TRIGGER_SHIFT];
}

/* The highest-priority pending interrupt, as IIR bits 0-3. */
static uint8_t uart_pending_source(const struct uart_state *s)
{
	unsigned count = uart_rx_count(s);

	if ((s->ier & UART_IER_ELSI) && (s->lsr_errors & UART_LSR_ERRORS))
		return UART_IIR_RLSI;
	if ((s->ier & UART_IER_ERBFI) && count) {
		if (count >= uart_rx_trigger(s))
			return UART_IIR_RDI;
		return UART_IIR_CTI;	/* see "Character timeout" above */
	}
	if ((s->ier & UART_IER_ETBEI) && s->thr_pending)
		return UART_IIR_THRI;
	if ((s->ier & UART_IER_EDSSI) && (s->msr & UART_MSR_DELTAS))
		return UART_IIR_MSI;
	return UART_IIR_NO_INT;
}

/* Drive the IRQ line to pending && OUT2, if that changes it. */
static void uart_update_irq(struct dev *d)
{
	struct uart_state *s = d->state;
	bool level = uart_pending_source(s) != UART_IIR_NO_INT &&
		     (s->mcr & UART_MCR_OUT2);

	if (level != (bool)s->irq_level) {
		s->irq_level = level;
		dev_irq_set(d, 0, level);
	}
}

/* The modem status inputs as the UART sees them (MSR bits 4-7). */
static uint8_t uart_msr_lines(const struct uart_state *s)
{
	uint8_t lines = 0;

	if (!(s->mcr & UART_MCR_LOOP))
		return UART_MSR_CONNECTED;
	if (s->mcr & UART_MCR_RTS)
		lines |= UART_MSR_CTS;
	if (s->mcr & UART_MCR_DTR)
		lines |= UART_MSR_DSR;
	if (s->mcr & UART_MCR_OUT1)
		lines |= UART_MSR_RI;
	if (s->mcr & UART_MCR_OUT2)
		lines |= UART_MSR_DCD;
	return lines;
}

/* Take new input lines into MSR, setting the delta bits they cause. */
static void uart_update_msr(struct uart_state *s)
{
	uint8_t old = s->msr & UART_MSR_LINES;
	uint8_t lines = uart_msr_lines(s);
	uint8_t changed = old ^ lines;
	uint8_t deltas = s->msr & UART_MSR_DELTAS;

	if (changed & UART_MSR_CTS)
		deltas |= UART_MSR_DCTS;
	if (changed & UART_MSR_DSR)
		deltas |= UART_MSR_DDSR;
	if ((old & UART_MSR_RI) && !(lines & UART_MSR_RI))
		deltas |= UART_MSR_TERI;
	if (changed & UART_MSR_DCD)
		deltas |= UART_MSR_DDCD;
	s->msr = lines | deltas;
}

static void uart_transmit(struct dev *d, uint8_t byte)
{
	struct uart_state *s = d->state;

	/* Writing THR clears the THR-empty interrupt ... */
	s->thr_pending = 0;
	if (s->mcr & UART_MCR_LOOP)
		uart_rx_push(s, byte);
	else	/* a byte the backend loses is lost as on a noisy line */
		(void)dev_backend_write(d, &byte, 1);
	/* ... and the byte left at once, so THR is empty again. */
	if (s->ier & UART_IER_ETBEI)
		s->thr_pending = 1;
}

static void uart_write_ier(struct uart_state *s, uint8_t val)
{
	uint8_t old = s->ier;

	s->ier = val & UART_IER_MASK;
	if (!(s->ier & UART_IER_ETBEI))
		s->thr_pending = 0;
	else if (!(old & UART_IER_ETBEI))
		s->thr_pending = 1;	/* newly enabled while THR is empty */
}

static void uart_write_fcr(struct uart_state *s, uint8_t val)
{
	/* Turning the FIFOs on or off empties them. */
	if ((val ^ s->fcr) & UART_FCR_ENABLE)
		uart_rx_clear(s);
	/* The other bits are only programmed together with FCR0 = 1. */
	if (!(val & UART_FCR_ENABLE)) {
		s->fcr = 0;
		return;
	}
	if (val & UART_FCR_CLEAR_RX)
		uart_rx_clear(s);
	/* UART_FCR_CLEAR_TX: the transmitter never holds anything. */
	s->fcr = val & (UART_FCR_ENABLE | UART_FCR_DMA | UART_FCR_TRIGGER);
}

static void uart_write_reg(struct dev *d, unsigned reg, uint8_t val)
{
	struct uart_state *s = d->state;
	bool dlab = s->lcr & UART_LCR_DLAB;

	switch (reg) {
	case UART_THR:
		if (dlab)
			s->dll = val;
		else
			uart_transmit(d, val);
		break;
	case UART_IER:
		if (dlab)
			s->dlm = val;
		else
			uart_write_ier(s, val);
		break;
	case UART_FCR:
		uart_write_fcr(s, val);
		break;
	case UART_LCR:
		s->lcr = val;
		break;
	case UART_MCR:
		s->mcr = val & UART_MCR_MASK;
		uart_update_msr(s);
		break;
	case UART_LSR:
	case UART_MSR:
		break;	/* read-only (factory test on the real part) */
	case UART_SCR:
		s->scr = val;
		break;
	}
}

static uint8_t uart_read_reg(struct dev *d, unsigned reg)
{
	struct uart_state *s = d->state;
	bool dlab = s->lcr & UART_LCR_DLAB;
	uint8_t val = 0;

	switch (reg) {
	case UART_RBR:
		val = dlab ? s->dll : uart_rx_pop(s);
		break;
	case UART_IER:
		val = dlab ? s->dlm : s->ier;
		break;
	case UART_IIR:
		val = uart_pending_source(s);
		/* Reading IIR acknowledges a THR-empty interrupt it reports. */
		if (val == UART_IIR_THRI)
			s->thr_pending = 0;
		if (uart_fifos_enabled(s))
			val |= UART_IIR_FIFOS;
		break;
	case UART_LCR:
		val = s->lcr;
		break;
	case UART_MCR:
		val = s->mcr;
		break;
	case UART_LSR:
		val = s->lsr_errors | UART_LSR_THRE | UART_LSR_TEMT;
		if (uart_rx_count(s))
			val |= UART_LSR_DR;
		s->lsr_errors = 0;
		break;
	case UART_MSR:
		val = s->msr;
		s->msr &= ~UART_MSR_DELTAS;
		break;
	case UART_SCR:
		val = s->scr;
		break;
	}
	return val;
}

/*
 * Registers are one byte wide: a wider access reaches only the addressed
 * register, with its low byte; a wider read gets the register zero-extended.
 * Offsets outside the register file read as all ones and ignore writes.
 */
static void uart_io(struct dev *d, unsigned region, uint64_t off, void *data,
		    unsigned len, bool write)
{
	uint8_t *bytes = data;
	bool valid = region == 0 && off < UART_NREGS;

	if (!len)
		return;
	if (write) {
		if (valid)
			uart_write_reg(d, (unsigned)off, bytes[0]);
	} else if (valid) {
		memset(bytes, 0, len);
		bytes[0] = uart_read_reg(d, (unsigned)off);
	} else {
		memset(bytes, DEV_OPEN_BUS, len);
	}
	uart_update_irq(d);
}

static size_t uart_backend_room(struct dev *d)
{
	struct uart_state *s = d->state;

	/* In loopback the receiver is cut off from the line. */
	if (s->mcr & UART_MCR_LOOP)
		return 0;
	return UART_FIFO_SIZE - uart_rx_count(s);
}

static void uart_backend_input(struct dev *d, const uint8_t *buf, size_t len)
{
	struct uart_state *s = d->state;

	if (s->mcr & UART_MCR_LOOP)
		return;
	/* More than uart_backend_room allowed is an overrun, as on a line. */
	for (size_t i = 0; i < len; i++)
		uart_rx_push(s, buf[i]);
	uart_update_irq(d);
}

static void uart_reset(struct dev *d)
{
	struct uart_state *s = d->state;
	uint8_t irq_level = s->irq_level;

	/* LSR reads 0x60, IIR 0x01, everything else 0; FIFOs empty. */
	memset(s, 0, sizeof(*s));
	s->msr = UART_MSR_CONNECTED;
	/* Keep what the line is driven to, so that it can be lowered. */
	s->irq_level = irq_level;
	uart_update_irq(d);
}


/* ---- saved state --------------------------------------------------------- */


static int uart_save(struct dev *d, uint8_t **buf, size_t *len)
{
	const struct uart_state *s = d->state;
	UartState st = UART_STATE__INIT;
	uint8_t fifo[UART_FIFO_SIZE];
	unsigned count = uart_rx_count(s);
	size_t n;

	for (unsigned i = 0; i < count; i++)
		fifo[i] = s->rx_fifo[(s->rx_head + i) % UART_FIFO_SIZE];
	st.rx_fifo.data = fifo;
	st.rx_fifo.len = count;
	st.dll = s->dll;
	st.dlm = s->dlm;
	st.ier = s->ier;
	st.fcr = s->fcr;
	st.lcr = s->lcr;
	st.mcr = s->mcr;
	st.lsr_errors = s->lsr_errors;
	st.msr = s->msr;
	st.scr = s->scr;
	st.thr_pending = s->thr_pending;
	st.irq_level = s->irq_level;
	n = uart_state__get_packed_size(&st);
	*buf = malloc(n ? n : 1);
	if (!*buf)
		return -ENOMEM;
	*len = uart_state__pack(&st, *buf);
	return 0;
}

/* The bytes are hostile: every field must be something the chip can hold. */
static int uart_load(struct dev *d, const uint8_t *buf, size_t len,
		     uint32_t version)
{
	struct uart_state *s = d->state, n = { 0 };
	UartState *st;
	int r = -EINVAL;

	if (version != d->desc->mf->state_version)
		return -EINVAL;
	st = uart_state__unpack(NULL, len, buf);
	if (!st)
		return -EINVAL;
	if (st->rx_fifo.len > UART_FIFO_SIZE || st->dll > UINT8_MAX ||
	    st->dlm > UINT8_MAX || st->ier > UART_IER_MASK ||
	    st->fcr > UINT8_MAX ||
	    (st->fcr & ~(UART_FCR_ENABLE | UART_FCR_DMA | UART_FCR_TRIGGER)) ||
	    st->lcr > UINT8_MAX || st->mcr > UART_MCR_MASK ||
	    (st->lsr_errors & ~UART_LSR_ERRORS) || st->msr > UINT8_MAX ||
	    st->scr > UINT8_MAX)
		goto out;
	if (st->rx_fifo.len)  /* an empty bytes field has no data pointer */
		memcpy(n.rx_fifo, st->rx_fifo.data, st->rx_fifo.len);
	n.rx_count = (uint32_t)st->rx_fifo.len;
	n.dll = (uint8_t)st->dll;
	n.dlm = (uint8_t)st->dlm;
	n.ier = (uint8_t)st->ier;
	n.fcr = (uint8_t)st->fcr;
	n.lcr = (uint8_t)st->lcr;
	n.mcr = (uint8_t)st->mcr;
	n.lsr_errors = (uint8_t)st->lsr_errors;
	n.msr = (uint8_t)st->msr;
	n.scr = (uint8_t)st->scr;
	n.thr_pending = st->thr_pending;
	/* The new process's line starts low: drive it to what is due. */
	n.irq_level = 0;
	*s = n;
	uart_update_irq(d);
	r = 0;
out:
	uart_state__free_unpacked(st, NULL);
	return r;
}

/*
 * THR writes (and, under DLAB, DLL writes at the same offset) are posted.
 * The transmitter here is always empty (see "Transmission is immediate"
 * above): the transmit FIFO always has room, and a THR write changes
 * nothing the guest can see at once except through later reads of this
 * UART (LSR, IIR, RBR in loopback), which the ring answers after the write,
 * and the THR-empty interrupt, which real hardware raises later too. The
 * ring holds at most IPC_RING_DEPTH accesses of a vCPU, so a guest that
 * writes faster than the backend takes bytes waits, as at a full FIFO.
 */
static const struct dev_posted uart_posted[] = {
	{0, UART_THR, 1},
};

const struct dev_desc uart_desc = {
	.mf = &dev_mf_uart,
	.posted = uart_posted,
	.nposted = sizeof(uart_posted) / sizeof(uart_posted[0]),
	.state_size = sizeof(struct uart_state),
	.io = uart_io,
	.reset = uart_reset,
	.backend_room = uart_backend_room,
	.backend_input = uart_backend_input,
	.save = uart_save,
	.load = uart_load,
};
