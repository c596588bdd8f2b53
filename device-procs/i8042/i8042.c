/* SPDX-License-Identifier: MIT */
/*
 * i8042: the PS/2 keyboard controller at ports 0x60 (data) and 0x64
 * (status / command), keyboard IRQ 1 and aux (mouse) IRQ 12, with a
 * keyboard and a mouse attached, written from the 8042 and PS/2 device
 * documentation and what Linux's i8042, atkbd and psmouse drivers do.
 *
 * The controller:
 * - 32 bytes of RAM, byte 0 the command byte (read 0x20-0x3f, written
 *   0x60-0x7f with the next data byte): KBDINT, AUXINT, the system flag,
 *   KBDDIS, AUXDIS, XLATE;
 * - self test 0xaa (answers 0x55 and sets the system flag), interface tests
 *   0xab and 0xa9 (0x00), password test 0xa4 (0xf1: none), 0xad/0xae and
 *   0xa7/0xa8 disable and enable the keyboard and aux interfaces, 0xd0
 *   reads and 0xd1 writes the output port, 0xd2 and 0xd3 put the next data
 *   byte into the output buffer as if from the keyboard or the mouse (the
 *   loopback Linux's probe uses), 0xd4 sends it to the mouse, and 0xf0-0xff
 *   pulse the output port's low bits: bit 0 is the CPU reset line, so 0xfe
 *   (and a 0xd1 write with bit 0 clear) asks the host to reset the VM;
 * - one output buffer with OBF and AUXDATA in the status register, refilled
 *   from three queues of 16 bytes in this order: controller replies, then
 *   the keyboard's bytes while its interface is enabled, then the mouse's
 *   while the aux interface is enabled. A full queue drops what arrives.
 * - IRQ 1 is OBF with a keyboard byte and KBDINT, IRQ 12 OBF with a mouse
 *   byte and AUXINT; each line is driven only when it changes, and reading
 *   the data port lowers it before the next byte raises it again, so every
 *   byte is one edge.
 * - Unknown controller commands are ignored, as by the 8042.
 *
 * The keyboard (MF2, ID 0xab 0x83) answers commands written to port 0x60:
 * reset 0xff (0xfa 0xaa), identify 0xf2, echo 0xee, enable / disable
 * scanning 0xf4 / 0xf5, defaults 0xf6, LEDs 0xed, typematic 0xf3, scancode
 * set 0xf0 (0 reads it back), the set-3 all-key commands 0xf7-0xfa (ack
 * only), resend 0xfe; anything else gets 0xfe. While it waits for an
 * argument, a byte 0xed-0xff is taken as a new command, as no argument can
 * be one.
 *
 * The mouse: rather than "no device" on the aux port, a standard PS/2 mouse
 * (ID 0x00, three buttons, no wheel) whose buttons never change and which
 * never moves. That lets guests find a working aux port and gives later
 * pointer input a place to go. It answers reset 0xff (0xfa 0xaa 0x00), get
 * ID 0xf2, status 0xe9, read data 0xeb (an empty packet), sample rate 0xf3
 * and resolution 0xe8 with their argument, scaling 0xe6 / 0xe7, stream /
 * remote mode 0xea / 0xf0, wrap mode 0xee / 0xec (echoing all else),
 * enable / disable reporting 0xf4 / 0xf5, defaults 0xf6 and resend 0xfe;
 * anything else gets 0xfe.
 *
 * Simplifications: no key or mouse input exists yet, so scanning, LEDs,
 * typematic, rate and resolution are only remembered; XLATE does not
 * translate (the keyboard's bytes, including its ID, reach the guest
 * untranslated); IBF is always 0 and commands complete at once; there are
 * no timeout or parity errors; the output port's A20 bit has no effect.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "device-procs/devhost/dev.h"
#include "i8042_state.pb-c.h"


#define I8042_REGION_DATA 0u	/* 0x60 */
#define I8042_REGION_CMD 1u	/* 0x64 */

#define I8042_LINE_KBD 0u	/* IRQ 1 */
#define I8042_LINE_AUX 1u	/* IRQ 12 */
#define I8042_NLINES 2u

/* Status register. */
#define I8042_STR_OBF 0x01
#define I8042_STR_IBF 0x02
#define I8042_STR_SYSFLAG 0x04
#define I8042_STR_CMDDAT 0x08	/* last write was to 0x64 */
#define I8042_STR_KEYLOCK 0x10	/* 1: keyboard not inhibited */
#define I8042_STR_AUXDATA 0x20
#define I8042_STR_TIMEOUT 0x40
#define I8042_STR_PARITY 0x80

/* Command byte (RAM byte 0). */
#define I8042_CTR_KBDINT 0x01
#define I8042_CTR_AUXINT 0x02
#define I8042_CTR_SYSFLAG 0x04
#define I8042_CTR_IGNKEYLOCK 0x08
#define I8042_CTR_KBDDIS 0x10
#define I8042_CTR_AUXDIS 0x20
#define I8042_CTR_XLATE 0x40
/* As firmware leaves it: keyboard on with its interrupt, no mouse set up. */
#define I8042_CTR_DEFAULT \
	(I8042_CTR_KBDINT | I8042_CTR_SYSFLAG | I8042_CTR_AUXDIS | \
	 I8042_CTR_XLATE)

/* Controller commands. */
#define I8042_CMD_READ_RAM 0x20		/* 0x20-0x3f */
#define I8042_CMD_WRITE_RAM 0x60	/* 0x60-0x7f */
#define I8042_CMD_RAM_MASK 0x1f
#define I8042_CMD_PASSWORD_TEST 0xa4
#define I8042_CMD_AUX_DISABLE 0xa7
#define I8042_CMD_AUX_ENABLE 0xa8
#define I8042_CMD_AUX_TEST 0xa9
#define I8042_CMD_SELF_TEST 0xaa
#define I8042_CMD_KBD_TEST 0xab
#define I8042_CMD_KBD_DISABLE 0xad
#define I8042_CMD_KBD_ENABLE 0xae
#define I8042_CMD_READ_OUTPORT 0xd0
#define I8042_CMD_WRITE_OUTPORT 0xd1
#define I8042_CMD_KBD_LOOP 0xd2
#define I8042_CMD_AUX_LOOP 0xd3
#define I8042_CMD_AUX_SEND 0xd4
#define I8042_CMD_PULSE 0xf0		/* 0xf0-0xff: low nibble 0 bits pulse */

#define I8042_SELF_TEST_OK 0x55
#define I8042_TEST_OK 0x00
#define I8042_NO_PASSWORD 0xf1

/* Output port: bit 0 is the reset line (active low), bit 1 A20; bits 4
 * and 5 show OBF for the keyboard and the mouse; the rest are idle lines. */
#define I8042_OUT_RESET 0x01
#define I8042_OUT_A20 0x02
#define I8042_OUT_KBD_OBF 0x10
#define I8042_OUT_AUX_OBF 0x20
#define I8042_OUT_DEFAULT 0xcf

#define I8042_RAM_SIZE 32u
#define I8042_QUEUE_SIZE 16u
#define I8042_AUX_BYTE 0x100u	/* queue entry flag: from the aux port */
/* The largest queue entry: a data byte with the aux flag. */
#define I8042_QUEUE_ENTRY_MAX (I8042_AUX_BYTE | 0xff)

/* Keyboard and mouse bytes. */
#define PS2_ACK 0xfa
#define PS2_RESEND 0xfe
#define PS2_BAT_OK 0xaa
#define KBD_CMD_LEDS 0xed
#define KBD_CMD_ECHO 0xee
#define KBD_CMD_SCANSET 0xf0
#define KBD_CMD_GETID 0xf2
#define KBD_CMD_TYPEMATIC 0xf3
#define KBD_CMD_ENABLE 0xf4
#define KBD_CMD_DISABLE 0xf5
#define KBD_CMD_DEFAULTS 0xf6
#define KBD_CMD_SET3_FIRST 0xf7	/* 0xf7-0xfa: all keys typematic etc. */
#define KBD_CMD_SET3_LAST 0xfa
#define KBD_CMD_RESEND 0xfe
#define KBD_CMD_RESET 0xff
#define KBD_CMD_FIRST 0xed	/* no argument byte is this high */
#define KBD_ID_1 0xab
#define KBD_ID_2 0x83
#define KBD_TYPEMATIC_DEFAULT 0x2b	/* 10.9 cps, 500 ms */
#define KBD_TYPEMATIC_MASK 0x7f	/* KBD_CMD_TYPEMATIC: bit 7 is 0 */
#define KBD_LEDS_MASK 0x07	/* KBD_CMD_LEDS: scroll, num, caps */
#define KBD_SCANSET_MAX 3	/* KBD_CMD_SCANSET: 1-3; 0 reads it */

#define AUX_CMD_SCALE11 0xe6
#define AUX_CMD_SCALE21 0xe7
#define AUX_CMD_RESOLUTION 0xe8
#define AUX_CMD_STATUS 0xe9
#define AUX_CMD_STREAM 0xea
#define AUX_CMD_READ_DATA 0xeb
#define AUX_CMD_RESET_WRAP 0xec
#define AUX_CMD_WRAP 0xee
#define AUX_CMD_REMOTE 0xf0
#define AUX_CMD_GETID 0xf2
#define AUX_CMD_RATE 0xf3
#define AUX_CMD_ENABLE 0xf4
#define AUX_CMD_DISABLE 0xf5
#define AUX_CMD_DEFAULTS 0xf6
#define AUX_CMD_RESEND 0xfe
#define AUX_CMD_RESET 0xff
#define AUX_CMD_FIRST 0xe6	/* no argument byte is this high */
#define AUX_ID 0x00
#define AUX_RATE_DEFAULT 100
#define AUX_RESOLUTION_DEFAULT 2	/* 4 counts/mm */
#define AUX_RESOLUTION_MASK 0x03	/* AUX_CMD_RESOLUTION: 1-8 counts/mm */
#define AUX_PACKET_SYNC 0x08		/* bit 3 of a packet's first byte */
#define AUX_STATUS_SCALING21 0x10
#define AUX_STATUS_REPORTING 0x20
#define AUX_STATUS_REMOTE 0x40

/* Bytes waiting for the output buffer; entries are byte | I8042_AUX_BYTE. */
struct i8042_queue {
	uint16_t buf[I8042_QUEUE_SIZE];
	uint8_t head;		/* < I8042_QUEUE_SIZE */
	uint8_t count;		/* <= I8042_QUEUE_SIZE */
};

struct i8042_kbd {
	uint8_t pending;	/* command waiting for its argument, 0 none */
	uint8_t scanning;
	uint8_t set;		/* scancode set 1-3 */
	uint8_t leds;
	uint8_t typematic;
	uint8_t last;		/* last byte sent, for resend */
};

struct i8042_aux {
	uint8_t pending;
	uint8_t reporting;
	uint8_t remote;
	uint8_t wrap;
	uint8_t scaling21;
	uint8_t resolution;
	uint8_t rate;
	uint8_t last;
};

struct i8042_state {
	uint8_t ram[I8042_RAM_SIZE];	/* ram[0]: the command byte */
	uint8_t output_port;
	uint8_t pending;		/* command waiting for a data byte */
	uint8_t last_was_command;
	uint8_t obf;
	uint16_t out;			/* the output buffer, | I8042_AUX_BYTE */
	struct i8042_queue ctrlq;	/* controller replies and loopback */
	struct i8042_queue kbdq;	/* from the keyboard */
	struct i8042_queue auxq;	/* from the mouse */
	struct i8042_kbd kbd;
	struct i8042_aux aux;
	uint8_t irq_level[I8042_NLINES];	/* as last driven */
};

/* ---- queues and the output buffer --------------------------------------- */

static void i8042_queue_push(struct i8042_queue *q, uint16_t val)
{
	if (q->count >= I8042_QUEUE_SIZE)
		return;		/* overrun: the byte is lost */
	q->buf[(q->head + q->count) % I8042_QUEUE_SIZE] = val;
	q->count++;
}

static uint16_t i8042_queue_pop(struct i8042_queue *q)
{
	uint16_t val;

	if (!q->count)
		return 0;
	val = q->buf[q->head % I8042_QUEUE_SIZE];
	q->head = (uint8_t)((q->head + 1) % I8042_QUEUE_SIZE);
	q->count--;
	return val;
}

static uint8_t i8042_ctr(const struct i8042_state *s)
{
	return s->ram[0];
}

/* An empty output buffer takes the next byte that may reach the guest. */
static void i8042_refill(struct i8042_state *s)
{
	if (s->obf)
		return;
	if (s->ctrlq.count)
		s->out = i8042_queue_pop(&s->ctrlq);
	else if (s->kbdq.count && !(i8042_ctr(s) & I8042_CTR_KBDDIS))
		s->out = i8042_queue_pop(&s->kbdq);
	else if (s->auxq.count && !(i8042_ctr(s) & I8042_CTR_AUXDIS))
		s->out = i8042_queue_pop(&s->auxq);
	else
		return;
	s->obf = 1;
}

static void i8042_update_irq(struct dev *d)
{
	struct i8042_state *s = d->state;
	bool aux = s->out & I8042_AUX_BYTE;
	bool level[I8042_NLINES] = {
		[I8042_LINE_KBD] = s->obf && !aux &&
				   (i8042_ctr(s) & I8042_CTR_KBDINT),
		[I8042_LINE_AUX] = s->obf && aux &&
				   (i8042_ctr(s) & I8042_CTR_AUXINT),
	};

	for (unsigned line = 0; line < I8042_NLINES; line++) {
		if (level[line] != (bool)s->irq_level[line]) {
			s->irq_level[line] = level[line];
			dev_irq_set(d, line, level[line]);
		}
	}
}

static void i8042_sync(struct dev *d)
{
	i8042_refill(d->state);
	i8042_update_irq(d);
}

/* A byte from the controller itself, as keyboard or as aux data. */
static void i8042_reply(struct i8042_state *s, uint16_t val)
{
	i8042_queue_push(&s->ctrlq, val);
}

/* ---- the keyboard ------------------------------------------------------- */

static void i8042_kbd_send(struct i8042_state *s, uint8_t byte)
{
	i8042_queue_push(&s->kbdq, byte);
	s->kbd.last = byte;
}

static void i8042_kbd_defaults(struct i8042_kbd *k)
{
	k->typematic = KBD_TYPEMATIC_DEFAULT;
}

static void i8042_kbd_power_on(struct i8042_kbd *k)
{
	memset(k, 0, sizeof(*k));
	i8042_kbd_defaults(k);
	k->scanning = 1;
	k->set = 2;
	k->last = PS2_BAT_OK;
}

/* The argument of a pending command; false if it is refused. */
static bool i8042_kbd_argument(struct i8042_state *s, uint8_t cmd,
			       uint8_t val)
{
	struct i8042_kbd *k = &s->kbd;

	switch (cmd) {
	case KBD_CMD_LEDS:
		k->leds = val & KBD_LEDS_MASK;
		break;
	case KBD_CMD_TYPEMATIC:
		k->typematic = val & KBD_TYPEMATIC_MASK;
		break;
	case KBD_CMD_SCANSET:
		if (val > KBD_SCANSET_MAX)
			return false;
		i8042_kbd_send(s, PS2_ACK);
		if (val)
			k->set = val;
		else
			i8042_kbd_send(s, k->set);
		return true;
	}
	i8042_kbd_send(s, PS2_ACK);
	return true;
}

static void i8042_kbd_write(struct i8042_state *s, uint8_t val)
{
	struct i8042_kbd *k = &s->kbd;

	if (k->pending && val < KBD_CMD_FIRST) {
		if (i8042_kbd_argument(s, k->pending, val))
			k->pending = 0;
		else
			i8042_kbd_send(s, PS2_RESEND);	/* still waiting */
		return;
	}
	k->pending = 0;
	switch (val) {
	case KBD_CMD_LEDS:
	case KBD_CMD_SCANSET:
	case KBD_CMD_TYPEMATIC:
		i8042_kbd_send(s, PS2_ACK);
		k->pending = val;
		break;
	case KBD_CMD_ECHO:
		i8042_kbd_send(s, KBD_CMD_ECHO);
		break;
	case KBD_CMD_GETID:
		i8042_kbd_send(s, PS2_ACK);
		i8042_kbd_send(s, KBD_ID_1);
		i8042_kbd_send(s, KBD_ID_2);
		break;
	case KBD_CMD_ENABLE:
		i8042_kbd_send(s, PS2_ACK);
		k->scanning = 1;
		break;
	case KBD_CMD_DISABLE:
		i8042_kbd_send(s, PS2_ACK);
		i8042_kbd_defaults(k);
		k->scanning = 0;
		break;
	case KBD_CMD_DEFAULTS:
		i8042_kbd_send(s, PS2_ACK);
		i8042_kbd_defaults(k);
		break;
	case KBD_CMD_RESEND:
		i8042_kbd_send(s, k->last);
		break;
	case KBD_CMD_RESET:
		i8042_kbd_power_on(k);
		i8042_kbd_send(s, PS2_ACK);
		i8042_kbd_send(s, PS2_BAT_OK);
		break;
	default:
		if (val >= KBD_CMD_SET3_FIRST && val <= KBD_CMD_SET3_LAST)
			i8042_kbd_send(s, PS2_ACK);
		else
			i8042_kbd_send(s, PS2_RESEND);
		break;
	}
}

/* ---- the mouse ---------------------------------------------------------- */

static void i8042_aux_send(struct i8042_state *s, uint8_t byte)
{
	i8042_queue_push(&s->auxq, I8042_AUX_BYTE | byte);
	s->aux.last = byte;
}

static void i8042_aux_defaults(struct i8042_aux *m)
{
	m->reporting = 0;
	m->remote = 0;
	m->scaling21 = 0;
	m->resolution = AUX_RESOLUTION_DEFAULT;
	m->rate = AUX_RATE_DEFAULT;
}

static void i8042_aux_power_on(struct i8042_aux *m)
{
	memset(m, 0, sizeof(*m));
	i8042_aux_defaults(m);
	m->last = AUX_ID;	/* the end of its power-on 0xaa 0x00 */
}

static void i8042_aux_write(struct i8042_state *s, uint8_t val)
{
	struct i8042_aux *m = &s->aux;

	if (m->wrap && val != AUX_CMD_RESET_WRAP && val != AUX_CMD_RESET) {
		i8042_aux_send(s, val);
		return;
	}
	if (m->pending && val < AUX_CMD_FIRST) {
		if (m->pending == AUX_CMD_RESOLUTION)
			m->resolution = val & AUX_RESOLUTION_MASK;
		else
			m->rate = val;
		m->pending = 0;
		i8042_aux_send(s, PS2_ACK);
		return;
	}
	m->pending = 0;
	switch (val) {
	case AUX_CMD_SCALE11:
	case AUX_CMD_SCALE21:
		i8042_aux_send(s, PS2_ACK);
		m->scaling21 = val == AUX_CMD_SCALE21;
		break;
	case AUX_CMD_RESOLUTION:
	case AUX_CMD_RATE:
		i8042_aux_send(s, PS2_ACK);
		m->pending = val;
		break;
	case AUX_CMD_STATUS:
		i8042_aux_send(s, PS2_ACK);
		i8042_aux_send(s, (m->remote ? AUX_STATUS_REMOTE : 0) |
				  (m->reporting ? AUX_STATUS_REPORTING : 0) |
				  (m->scaling21 ? AUX_STATUS_SCALING21 : 0));
		i8042_aux_send(s, m->resolution);
		i8042_aux_send(s, m->rate);
		break;
	case AUX_CMD_STREAM:
	case AUX_CMD_REMOTE:
		i8042_aux_send(s, PS2_ACK);
		m->remote = val == AUX_CMD_REMOTE;
		break;
	case AUX_CMD_READ_DATA:
		i8042_aux_send(s, PS2_ACK);
		i8042_aux_send(s, AUX_PACKET_SYNC);
		i8042_aux_send(s, 0);
		i8042_aux_send(s, 0);
		break;
	case AUX_CMD_RESET_WRAP:
	case AUX_CMD_WRAP:
		i8042_aux_send(s, PS2_ACK);
		m->wrap = val == AUX_CMD_WRAP;
		break;
	case AUX_CMD_GETID:
		i8042_aux_send(s, PS2_ACK);
		i8042_aux_send(s, AUX_ID);
		break;
	case AUX_CMD_ENABLE:
	case AUX_CMD_DISABLE:
		i8042_aux_send(s, PS2_ACK);
		m->reporting = val == AUX_CMD_ENABLE;
		break;
	case AUX_CMD_DEFAULTS:
		i8042_aux_send(s, PS2_ACK);
		i8042_aux_defaults(m);
		break;
	case AUX_CMD_RESEND:
		i8042_aux_send(s, m->last);
		break;
	case AUX_CMD_RESET:
		i8042_aux_power_on(m);
		i8042_aux_send(s, PS2_ACK);
		i8042_aux_send(s, PS2_BAT_OK);
		i8042_aux_send(s, AUX_ID);
		break;
	default:
		i8042_aux_send(s, PS2_RESEND);
		break;
	}
}

/* ---- the controller ----------------------------------------------------- */

static uint8_t i8042_read_output_port(const struct i8042_state *s)
{
	uint8_t val = s->output_port & ~(I8042_OUT_KBD_OBF | I8042_OUT_AUX_OBF);

	if (s->obf)
		val |= s->out & I8042_AUX_BYTE ? I8042_OUT_AUX_OBF :
						 I8042_OUT_KBD_OBF;
	return val;
}

static uint8_t i8042_read_status(const struct i8042_state *s)
{
	uint8_t val = I8042_STR_KEYLOCK;

	if (s->obf) {
		val |= I8042_STR_OBF;
		if (s->out & I8042_AUX_BYTE)
			val |= I8042_STR_AUXDATA;
	}
	if (i8042_ctr(s) & I8042_CTR_SYSFLAG)
		val |= I8042_STR_SYSFLAG;
	if (s->last_was_command)
		val |= I8042_STR_CMDDAT;
	return val;
}

static void i8042_command(struct dev *d, uint8_t cmd)
{
	struct i8042_state *s = d->state;

	s->pending = 0;
	if ((cmd & ~I8042_CMD_RAM_MASK) == I8042_CMD_READ_RAM) {
		i8042_reply(s, s->ram[cmd & I8042_CMD_RAM_MASK]);
		return;
	}
	if ((cmd & ~I8042_CMD_RAM_MASK) == I8042_CMD_WRITE_RAM) {
		s->pending = cmd;
		return;
	}
	if (cmd >= I8042_CMD_PULSE) {
		if (!(cmd & I8042_OUT_RESET))
			dev_request_reset(d);
		return;
	}
	switch (cmd) {
	case I8042_CMD_PASSWORD_TEST:
		i8042_reply(s, I8042_NO_PASSWORD);
		break;
	case I8042_CMD_AUX_DISABLE:
		s->ram[0] |= I8042_CTR_AUXDIS;
		break;
	case I8042_CMD_AUX_ENABLE:
		s->ram[0] &= ~I8042_CTR_AUXDIS;
		break;
	case I8042_CMD_AUX_TEST:
	case I8042_CMD_KBD_TEST:
		i8042_reply(s, I8042_TEST_OK);
		break;
	case I8042_CMD_SELF_TEST:
		s->ram[0] |= I8042_CTR_SYSFLAG;
		i8042_reply(s, I8042_SELF_TEST_OK);
		break;
	case I8042_CMD_KBD_DISABLE:
		s->ram[0] |= I8042_CTR_KBDDIS;
		break;
	case I8042_CMD_KBD_ENABLE:
		s->ram[0] &= ~I8042_CTR_KBDDIS;
		break;
	case I8042_CMD_READ_OUTPORT:
		i8042_reply(s, i8042_read_output_port(s));
		break;
	case I8042_CMD_WRITE_OUTPORT:
	case I8042_CMD_KBD_LOOP:
	case I8042_CMD_AUX_LOOP:
	case I8042_CMD_AUX_SEND:
		s->pending = cmd;
		break;
	default:
		break;	/* unknown: ignored */
	}
}

/* A byte written to port 0x60. */
static void i8042_write_data(struct dev *d, uint8_t val)
{
	struct i8042_state *s = d->state;
	uint8_t cmd = s->pending;

	s->pending = 0;
	if ((cmd & ~I8042_CMD_RAM_MASK) == I8042_CMD_WRITE_RAM) {
		s->ram[cmd & I8042_CMD_RAM_MASK] = val;
		return;
	}
	switch (cmd) {
	case I8042_CMD_WRITE_OUTPORT:
		s->output_port = val;
		if (!(val & I8042_OUT_RESET))
			dev_request_reset(d);
		break;
	case I8042_CMD_KBD_LOOP:
		i8042_reply(s, val);
		break;
	case I8042_CMD_AUX_LOOP:
		i8042_reply(s, I8042_AUX_BYTE | val);
		break;
	case I8042_CMD_AUX_SEND:
		i8042_aux_write(s, val);
		break;
	default:
		i8042_kbd_write(s, val);
		break;
	}
}

/* Reading port 0x60 empties the output buffer: the lines drop, and the
 * next byte, if any, raises them again. */
static uint8_t i8042_read_data(struct dev *d)
{
	struct i8042_state *s = d->state;
	uint8_t val = (uint8_t)s->out;

	if (s->obf) {
		s->obf = 0;
		i8042_update_irq(d);
	}
	return val;
}

/*
 * Each port is one byte: a wider access reaches it with its low byte, and
 * the bytes above read as all ones (they are other devices' ports).
 */
static void i8042_io(struct dev *d, unsigned region, uint64_t off,
		     void *data, unsigned len, bool write)
{
	struct i8042_state *s = d->state;
	uint8_t *bytes = data;

	if (!len)
		return;
	if (!write)
		memset(bytes, DEV_OPEN_BUS, len);
	if (off != 0 || (region != I8042_REGION_DATA &&
			 region != I8042_REGION_CMD))
		return;
	if (region == I8042_REGION_DATA) {
		if (write) {
			s->last_was_command = 0;
			i8042_write_data(d, bytes[0]);
		} else {
			bytes[0] = i8042_read_data(d);
		}
	} else {
		if (write) {
			s->last_was_command = 1;
			i8042_command(d, bytes[0]);
		} else {
			bytes[0] = i8042_read_status(s);
		}
	}
	i8042_sync(d);
}

/* ---- lifecycle ---------------------------------------------------------- */

static void i8042_reset(struct dev *d)
{
	struct i8042_state *s = d->state;
	uint8_t irq_level[I8042_NLINES];

	memcpy(irq_level, s->irq_level, sizeof(irq_level));
	memset(s, 0, sizeof(*s));
	/* Keep what the lines are driven to, so that they can be lowered. */
	memcpy(s->irq_level, irq_level, sizeof(irq_level));
	s->ram[0] = I8042_CTR_DEFAULT;
	s->output_port = I8042_OUT_DEFAULT;
	i8042_kbd_power_on(&s->kbd);
	i8042_aux_power_on(&s->aux);
	i8042_sync(d);
}

/* ---- saved state -------------------------------------------------------- */

/* The entries of q, oldest first, into vals (I8042_QUEUE_SIZE of them). */
static size_t i8042_queue_save(const struct i8042_queue *q, uint32_t *vals)
{
	for (unsigned i = 0; i < q->count; i++)
		vals[i] = q->buf[(q->head + i) % I8042_QUEUE_SIZE];
	return q->count;
}

static int i8042_save(struct dev *d, uint8_t **buf, size_t *len)
{
	const struct i8042_state *s = d->state;
	uint32_t ctrlq[I8042_QUEUE_SIZE], kbdq[I8042_QUEUE_SIZE];
	uint32_t auxq[I8042_QUEUE_SIZE];
	uint8_t ram[I8042_RAM_SIZE];
	I8042State m = I8042_STATE__INIT;
	size_t size;
	uint8_t *out;

	memcpy(ram, s->ram, sizeof(ram));
	m.ram.data = ram;
	m.ram.len = sizeof(ram);
	m.output_port = s->output_port;
	m.pending = s->pending;
	m.last_was_command = s->last_was_command;
	m.obf = s->obf;
	m.out = s->out;
	m.n_ctrl_queue = i8042_queue_save(&s->ctrlq, ctrlq);
	m.ctrl_queue = ctrlq;
	m.n_kbd_queue = i8042_queue_save(&s->kbdq, kbdq);
	m.kbd_queue = kbdq;
	m.n_aux_queue = i8042_queue_save(&s->auxq, auxq);
	m.aux_queue = auxq;
	m.kbd_pending = s->kbd.pending;
	m.kbd_scanning = s->kbd.scanning;
	m.kbd_set = s->kbd.set;
	m.kbd_leds = s->kbd.leds;
	m.kbd_typematic = s->kbd.typematic;
	m.kbd_last = s->kbd.last;
	m.aux_pending = s->aux.pending;
	m.aux_reporting = s->aux.reporting;
	m.aux_remote = s->aux.remote;
	m.aux_wrap = s->aux.wrap;
	m.aux_scaling21 = s->aux.scaling21;
	m.aux_resolution = s->aux.resolution;
	m.aux_rate = s->aux.rate;
	m.aux_last = s->aux.last;

	size = i8042_state__get_packed_size(&m);
	out = malloc(size ? size : 1);
	if (!out)
		return -ENOMEM;
	i8042_state__pack(&m, out);
	*buf = out;
	*len = size;
	return 0;
}

/* A saved queue: at most I8042_QUEUE_SIZE bytes, each with the aux flag
 * when aux_flag says so (-1: either). */
static bool i8042_queue_valid(const uint32_t *vals, size_t n, int aux_flag)
{
	if (n > I8042_QUEUE_SIZE)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (vals[i] > I8042_QUEUE_ENTRY_MAX)
			return false;
		if (aux_flag >= 0 &&
		    !!(vals[i] & I8042_AUX_BYTE) != aux_flag)
			return false;
	}
	return true;
}

static void i8042_queue_load(struct i8042_queue *q, const uint32_t *vals,
			     size_t n)
{
	memset(q, 0, sizeof(*q));
	for (size_t i = 0; i < n; i++)
		i8042_queue_push(q, (uint16_t)vals[i]);
}

static bool i8042_pending_valid(uint32_t cmd)
{
	return cmd == 0 ||
	       (cmd & ~(uint32_t)I8042_CMD_RAM_MASK) == I8042_CMD_WRITE_RAM ||
	       cmd == I8042_CMD_WRITE_OUTPORT || cmd == I8042_CMD_KBD_LOOP ||
	       cmd == I8042_CMD_AUX_LOOP || cmd == I8042_CMD_AUX_SEND;
}

static bool i8042_state_valid(const I8042State *m)
{
	return m->ram.len == I8042_RAM_SIZE &&
	       m->output_port <= UINT8_MAX &&
	       i8042_pending_valid(m->pending) &&
	       m->out <= I8042_QUEUE_ENTRY_MAX &&
	       i8042_queue_valid(m->ctrl_queue, m->n_ctrl_queue, -1) &&
	       i8042_queue_valid(m->kbd_queue, m->n_kbd_queue, 0) &&
	       i8042_queue_valid(m->aux_queue, m->n_aux_queue, 1) &&
	       (m->kbd_pending == 0 || m->kbd_pending == KBD_CMD_LEDS ||
		m->kbd_pending == KBD_CMD_SCANSET ||
		m->kbd_pending == KBD_CMD_TYPEMATIC) &&
	       m->kbd_set >= 1 && m->kbd_set <= KBD_SCANSET_MAX &&
	       m->kbd_leds <= KBD_LEDS_MASK &&
	       m->kbd_typematic <= KBD_TYPEMATIC_MASK &&
	       m->kbd_last <= UINT8_MAX &&
	       (m->aux_pending == 0 || m->aux_pending == AUX_CMD_RESOLUTION ||
		m->aux_pending == AUX_CMD_RATE) &&
	       m->aux_resolution <= AUX_RESOLUTION_MASK &&
	       m->aux_rate <= UINT8_MAX && m->aux_last <= UINT8_MAX;
}

static int i8042_load(struct dev *d, const uint8_t *buf, size_t len,
		      uint32_t version)
{
	struct i8042_state *s = d->state;
	struct i8042_state n;
	I8042State *m;

	if (version != d->desc->mf->state_version || (!buf && len))
		return -EINVAL;
	m = i8042_state__unpack(NULL, len, buf);
	if (!m)
		return -EBADMSG;
	if (!i8042_state_valid(m)) {
		i8042_state__free_unpacked(m, NULL);
		return -EINVAL;
	}

	memset(&n, 0, sizeof(n));
	memcpy(n.ram, m->ram.data, I8042_RAM_SIZE);
	n.output_port = (uint8_t)m->output_port;
	n.pending = (uint8_t)m->pending;
	n.last_was_command = m->last_was_command;
	n.obf = m->obf;
	n.out = (uint16_t)m->out;
	i8042_queue_load(&n.ctrlq, m->ctrl_queue, m->n_ctrl_queue);
	i8042_queue_load(&n.kbdq, m->kbd_queue, m->n_kbd_queue);
	i8042_queue_load(&n.auxq, m->aux_queue, m->n_aux_queue);
	n.kbd.pending = (uint8_t)m->kbd_pending;
	n.kbd.scanning = m->kbd_scanning;
	n.kbd.set = (uint8_t)m->kbd_set;
	n.kbd.leds = (uint8_t)m->kbd_leds;
	n.kbd.typematic = (uint8_t)m->kbd_typematic;
	n.kbd.last = (uint8_t)m->kbd_last;
	n.aux.pending = (uint8_t)m->aux_pending;
	n.aux.reporting = m->aux_reporting;
	n.aux.remote = m->aux_remote;
	n.aux.wrap = m->aux_wrap;
	n.aux.scaling21 = m->aux_scaling21;
	n.aux.resolution = (uint8_t)m->aux_resolution;
	n.aux.rate = (uint8_t)m->aux_rate;
	n.aux.last = (uint8_t)m->aux_last;
	/* What the lines are driven to now, so only differences are sent. */
	memcpy(n.irq_level, s->irq_level, sizeof(n.irq_level));
	i8042_state__free_unpacked(m, NULL);

	*s = n;
	i8042_sync(d);
	return 0;
}

static const uint8_t i8042_irq_flags[] = {DEV_IRQ_EDGE, DEV_IRQ_EDGE};

const struct dev_desc i8042_desc = {
	.mf = &dev_mf_i8042,
	.irq_flags = i8042_irq_flags,
	.state_size = sizeof(struct i8042_state),
	.io = i8042_io,
	.reset = i8042_reset,
	.save = i8042_save,
	.load = i8042_load,
};
