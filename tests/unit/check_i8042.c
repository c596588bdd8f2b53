/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the i8042 PS/2 controller core with its keyboard and
 * mouse, driven through the descriptor against a fake host that records
 * both IRQ lines and reset requests.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "device-procs/devhost/dev.h"
#include "i8042_state.pb-c.h"
#include "tests/unit/fakehost.h"
#include "tests/unit/suites.h"

#define DATA 0u		/* region of port 0x60 */
#define CMD 1u		/* region of port 0x64 */

#define STR_OBF 0x01
#define STR_IBF 0x02
#define STR_SYSFLAG 0x04
#define STR_CMDDAT 0x08
#define STR_KEYLOCK 0x10
#define STR_AUXDATA 0x20

#define CTR_KBDINT 0x01
#define CTR_AUXINT 0x02
#define CTR_SYSFLAG 0x04
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE 0x40

#define ACK 0xfa
#define RESEND 0xfe
#define QUEUE 16u

/* ---- fake host ---------------------------------------------------------- */

static struct fakehost host;
static struct dev *dev;

static void kbc_setup(void)
{
	fakehost_dev_new(&host, 2, &i8042_desc, &dev);
}

static void kbc_teardown(void)
{
	fakehost_dev_free(&host, &dev);
}

/* ---- access helpers ----------------------------------------------------- */

static void out_data(uint8_t val)
{
	fakehost_wr8(dev, DATA, 0, val);
}

static void out_cmd(uint8_t val)
{
	fakehost_wr8(dev, CMD, 0, val);
}

static uint8_t in_data(void)
{
	return fakehost_rd8(dev, DATA, 0, 0xaa);
}

static uint8_t in_status(void)
{
	return fakehost_rd8(dev, CMD, 0, 0xaa);
}

/* The next byte waiting, from the keyboard side or the aux port. */
static void expect_byte(uint8_t val, bool aux)
{
	uint8_t st = in_status();

	ck_assert_uint_eq(st & STR_OBF, STR_OBF);
	ck_assert_uint_eq(st & STR_AUXDATA, aux ? STR_AUXDATA : 0);
	ck_assert_uint_eq(st & STR_IBF, 0);
	ck_assert_uint_eq(in_data(), val);
}

static void expect_empty(void)
{
	ck_assert_uint_eq(in_status() & (STR_OBF | STR_AUXDATA), 0);
}

/* A controller command with one reply. */
static uint8_t command(uint8_t cmd)
{
	out_cmd(cmd);
	ck_assert_uint_eq(in_status() & STR_OBF, STR_OBF);
	return in_data();
}

static uint8_t read_ctr(void)
{
	return command(0x20);
}

static void write_ctr(uint8_t val)
{
	out_cmd(0x60);
	out_data(val);
}

/* Send to the mouse through 0xd4. */
static void aux_send(uint8_t val)
{
	out_cmd(0xd4);
	out_data(val);
}

/* Read and throw away whatever is waiting (Linux's i8042_flush). */
static unsigned flush(void)
{
	unsigned n = 0;

	while ((in_status() & STR_OBF) && n < 1000) {
		in_data();
		n++;
	}
	return n;
}

static I8042State *saved_state(void)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	I8042State *m;

	ck_assert_int_eq(dev->desc->save(dev, &buf, &len), 0);
	m = i8042_state__unpack(NULL, len, buf);
	free(buf);
	ck_assert_ptr_nonnull(m);
	return m;
}

/* ---- registers and controller commands ---------------------------------- */

START_TEST(test_i8042_descriptor)
{
	ck_assert_str_eq(i8042_desc.mf->name, "i8042");
	ck_assert_uint_eq(i8042_desc.mf->nregions, 2);
	ck_assert_int_eq(i8042_desc.mf->regions[0].space, DEV_PIO);
	ck_assert_uint_eq(i8042_desc.mf->regions[0].base, 0x60);
	ck_assert_uint_eq(i8042_desc.mf->regions[0].len, 1);
	ck_assert_int_eq(i8042_desc.mf->regions[1].space, DEV_PIO);
	ck_assert_uint_eq(i8042_desc.mf->regions[1].base, 0x64);
	ck_assert_uint_eq(i8042_desc.mf->regions[1].len, 1);
	ck_assert_uint_eq(i8042_desc.mf->nirqs, 2);
	ck_assert_uint_eq(i8042_desc.mf->irqs[0], 1);
	ck_assert_uint_eq(i8042_desc.mf->irqs[1], 12);
	ck_assert(i8042_desc.irq_flags == NULL ||
		  (i8042_desc.irq_flags[0] == DEV_IRQ_EDGE &&
		   i8042_desc.irq_flags[1] == DEV_IRQ_EDGE));
	ck_assert_uint_eq(i8042_desc.mf->state_version, 1);
}
END_TEST

START_TEST(test_i8042_reset_values)
{
	ck_assert_uint_eq(in_status(), STR_KEYLOCK | STR_SYSFLAG);
	ck_assert_uint_eq(host.edges[0] + host.edges[1], 0);
	ck_assert_uint_eq(read_ctr(), CTR_KBDINT | CTR_SYSFLAG | CTR_AUXDIS |
				      CTR_XLATE);
	ck_assert_uint_eq(in_status(), STR_KEYLOCK | STR_SYSFLAG | STR_CMDDAT);
	ck_assert_uint_eq(command(0xd0), 0xcf);	/* output port, idle */
}
END_TEST

START_TEST(test_i8042_linux_probe)
{
	unsigned edges;
	uint8_t ctr;

	/* i8042_controller_check / selftest (with the firmware's KBDINT on,
	 * the replies raise IRQ 1 as on real hardware) */
	flush();
	ck_assert_uint_eq(command(0xaa), 0x55);
	/* i8042_controller_init: read the CTR until stable, then write it
	 * with interrupts off and both ports disabled. */
	ctr = read_ctr();
	ck_assert_uint_eq(read_ctr(), ctr);
	ctr &= (uint8_t)~(CTR_KBDINT | CTR_AUXINT);
	ctr |= CTR_KBDDIS;
	write_ctr(ctr);
	ck_assert_uint_eq(read_ctr(), ctr);
	flush();
	/* keyboard port test */
	ck_assert_uint_eq(command(0xab), 0x00);
	/* i8042_check_mux: three loopbacks, the last is not changed, so
	 * this is no active multiplexer */
	out_cmd(0xd3);
	out_data(0xf0);
	expect_byte(0xf0, true);
	out_cmd(0xd3);
	out_data(0x56);
	expect_byte(0x56, true);
	out_cmd(0xd3);
	out_data(0xa4);
	expect_byte(0xa4, true);
	/* i8042_check_aux: loop, then disable and enable */
	out_cmd(0xd3);
	out_data(0x5a);
	expect_byte(0x5a, true);
	ck_assert_uint_eq(command(0xa9), 0x00);
	out_cmd(0xa7);
	ck_assert_uint_eq(read_ctr() & CTR_AUXDIS, CTR_AUXDIS);
	out_cmd(0xa8);
	ck_assert_uint_eq(read_ctr() & CTR_AUXDIS, 0);
	/* the aux IRQ delivery test */
	ctr = read_ctr();
	ctr &= (uint8_t)~CTR_AUXDIS;
	ctr |= CTR_AUXINT;
	write_ctr(ctr);
	ck_assert_uint_eq(host.edges[1], 0);
	out_cmd(0xd3);
	out_data(0xa5);
	ck_assert(host.level[1]);
	ck_assert_uint_eq(host.edges[1], 1);
	ck_assert(!host.level[0]);
	expect_byte(0xa5, true);
	ck_assert(!host.level[1]);

	/* i8042_setup_kbd: enable the port and its interrupt; atkbd probe */
	ctr &= (uint8_t)~CTR_KBDDIS;
	ctr |= CTR_KBDINT;
	write_ctr(ctr);
	edges = host.edges[0];
	out_data(0xf2);
	ck_assert(host.level[0]);
	expect_byte(ACK, false);
	ck_assert(host.level[0]);	/* raised again for the next byte */
	expect_byte(0xab, false);
	expect_byte(0x83, false);
	ck_assert(!host.level[0]);
	ck_assert_uint_eq(host.edges[0], edges + 3);
	expect_empty();
	/* atkbd: reset-disable, LEDs, scancode set, enable */
	out_data(0xf5);
	expect_byte(ACK, false);
	out_data(0xed);
	expect_byte(ACK, false);
	out_data(0x07);
	expect_byte(ACK, false);
	out_data(0xf0);
	expect_byte(ACK, false);
	out_data(0x02);
	expect_byte(ACK, false);
	out_data(0xf4);
	expect_byte(ACK, false);
	expect_empty();

	/* psmouse: reset and identify through 0xd4 */
	aux_send(0xff);
	ck_assert(host.level[1]);
	expect_byte(ACK, true);
	expect_byte(0xaa, true);
	expect_byte(0x00, true);
	aux_send(0xf2);
	expect_byte(ACK, true);
	expect_byte(0x00, true);
	expect_empty();
	ck_assert(!host.level[0]);
	ck_assert(!host.level[1]);
	ck_assert_uint_eq(host.resets, 0);
}
END_TEST

START_TEST(test_i8042_command_byte)
{
	write_ctr(0x00);
	ck_assert_uint_eq(read_ctr(), 0x00);
	/* the system flag in the status follows the command byte */
	ck_assert_uint_eq(in_status() & STR_SYSFLAG, 0);
	write_ctr(CTR_SYSFLAG | CTR_XLATE);
	ck_assert_uint_eq(in_status() & STR_SYSFLAG, STR_SYSFLAG);
	ck_assert_uint_eq(read_ctr(), CTR_SYSFLAG | CTR_XLATE);
	/* self test sets it */
	write_ctr(0);
	ck_assert_uint_eq(command(0xaa), 0x55);
	ck_assert_uint_eq(read_ctr(), CTR_SYSFLAG);
	/* disable / enable commands edit it */
	out_cmd(0xad);
	ck_assert_uint_eq(read_ctr(), CTR_SYSFLAG | CTR_KBDDIS);
	out_cmd(0xa7);
	ck_assert_uint_eq(read_ctr(), CTR_SYSFLAG | CTR_KBDDIS | CTR_AUXDIS);
	out_cmd(0xae);
	out_cmd(0xa8);
	ck_assert_uint_eq(read_ctr(), CTR_SYSFLAG);
	/* the rest of the RAM */
	for (unsigned i = 1; i < 32; i++) {
		out_cmd((uint8_t)(0x60 + i));
		out_data((uint8_t)(i * 9));
	}
	for (unsigned i = 1; i < 32; i++)
		ck_assert_uint_eq(command((uint8_t)(0x20 + i)),
				  (uint8_t)(i * 9));
	ck_assert_uint_eq(read_ctr(), CTR_SYSFLAG);
	/* password test: none installed */
	ck_assert_uint_eq(command(0xa4), 0xf1);
}
END_TEST

START_TEST(test_i8042_status_cmd_data_bit)
{
	out_cmd(0xae);
	ck_assert_uint_eq(in_status() & STR_CMDDAT, STR_CMDDAT);
	out_data(0xee);
	ck_assert_uint_eq(in_status() & STR_CMDDAT, 0);
	expect_byte(0xee, false);	/* echo */
}
END_TEST

START_TEST(test_i8042_output_order)
{
	/* Several replies queue in order. */
	write_ctr(CTR_XLATE);		/* both ports on, no interrupts */
	out_cmd(0x20);
	out_cmd(0xaa);
	out_cmd(0xab);
	out_cmd(0xa9);
	expect_byte(CTR_XLATE, false);
	expect_byte(0x55, false);
	expect_byte(0x00, false);
	expect_byte(0x00, false);
	expect_empty();
	/* Keyboard bytes and aux bytes behind controller replies. */
	out_data(0xf2);			/* FA AB 83 from the keyboard */
	aux_send(0xf2);			/* FA 00 from the mouse */
	out_cmd(0xd2);
	out_data(0x11);			/* a controller loopback */
	/* the first keyboard byte was in the buffer already */
	expect_byte(ACK, false);
	expect_byte(0x11, false);
	expect_byte(0xab, false);
	expect_byte(0x83, false);
	expect_byte(ACK, true);
	expect_byte(0x00, true);
	expect_empty();
	/* An empty buffer reads the last byte again, harmlessly. */
	ck_assert_uint_eq(in_data(), 0x00);
	ck_assert_uint_eq(host.edges[0] + host.edges[1], 0);
}
END_TEST

START_TEST(test_i8042_queue_bounded)
{
	I8042State *m;
	unsigned n;

	write_ctr(0);
	for (unsigned i = 0; i < 40; i++) {
		out_data(0xf2);
		aux_send(0xe9);
		out_cmd(0x20);
	}
	m = saved_state();
	ck_assert_uint_le(m->n_ctrl_queue, QUEUE);
	ck_assert_uint_le(m->n_kbd_queue, QUEUE);
	ck_assert_uint_le(m->n_aux_queue, QUEUE);
	ck_assert_uint_eq(m->n_ctrl_queue + m->n_kbd_queue + m->n_aux_queue,
			  3 * QUEUE);
	i8042_state__free_unpacked(m, NULL);
	n = flush();
	ck_assert_uint_eq(n, 3 * QUEUE + 1);
	expect_empty();
}
END_TEST

/* ---- interrupts --------------------------------------------------------- */

START_TEST(test_i8042_irq_per_byte)
{
	write_ctr(CTR_KBDINT | CTR_AUXINT);
	ck_assert(!host.level[0]);
	out_data(0xff);			/* FA AA */
	ck_assert(host.level[0]);
	ck_assert_uint_eq(host.edges[0], 1);
	in_data();
	ck_assert(host.level[0]);
	ck_assert_uint_eq(host.edges[0], 2);
	in_data();
	ck_assert(!host.level[0]);
	ck_assert_uint_eq(host.edges[0], 2);
	ck_assert_uint_eq(host.edges[1], 0);
	/* reading the status does not acknowledge */
	out_data(0xee);
	in_status();
	ck_assert(host.level[0]);
	in_data();
	ck_assert(!host.level[0]);

	/* aux bytes go to line 1 only */
	aux_send(0xf4);
	ck_assert(host.level[1]);
	ck_assert(!host.level[0]);
	in_data();
	ck_assert(!host.level[1]);
	ck_assert_uint_eq(host.edges[1], 1);
}
END_TEST

START_TEST(test_i8042_irq_enable_bits)
{
	write_ctr(0);
	out_data(0xee);
	ck_assert(!host.level[0]);
	/* enabling with a byte waiting raises the line */
	write_ctr(CTR_KBDINT);
	ck_assert(host.level[0]);
	/* and disabling lowers it */
	write_ctr(0);
	ck_assert(!host.level[0]);
	expect_byte(0xee, false);
	/* an aux byte with only KBDINT raises nothing */
	write_ctr(CTR_KBDINT);
	out_cmd(0xd3);
	out_data(0x33);
	ck_assert(!host.level[0]);
	ck_assert(!host.level[1]);
	write_ctr(CTR_KBDINT | CTR_AUXINT);
	ck_assert(host.level[1]);
	expect_byte(0x33, true);
	/* a controller reply raises IRQ 1 like keyboard data */
	out_cmd(0xab);
	ck_assert(host.level[0]);
	in_data();
	ck_assert(!host.level[0]);
}
END_TEST

START_TEST(test_i8042_port_disable_holds_bytes)
{
	write_ctr(CTR_KBDINT | CTR_AUXINT);
	out_cmd(0xad);
	out_data(0xf2);			/* the keyboard answers, held back */
	expect_empty();
	ck_assert(!host.level[0]);
	ck_assert_uint_eq(command(0xab), 0x00);	/* controller still talks */
	out_cmd(0xae);
	ck_assert(host.level[0]);
	expect_byte(ACK, false);
	expect_byte(0xab, false);
	expect_byte(0x83, false);

	out_cmd(0xa7);
	aux_send(0xf2);
	expect_empty();
	out_cmd(0xa8);
	ck_assert(host.level[1]);
	expect_byte(ACK, true);
	expect_byte(0x00, true);
	expect_empty();
}
END_TEST

/* ---- reset line and output port ----------------------------------------- */

START_TEST(test_i8042_reset_pulse)
{
	out_cmd(0xfe);
	ck_assert_uint_eq(host.resets, 1);
	out_cmd(0xff);			/* pulses nothing */
	ck_assert_uint_eq(host.resets, 1);
	out_cmd(0xf0);			/* pulses all four, reset included */
	ck_assert_uint_eq(host.resets, 2);
	out_cmd(0xfd);			/* bit 1 only */
	ck_assert_uint_eq(host.resets, 2);
	expect_empty();
}
END_TEST

START_TEST(test_i8042_output_port)
{
	out_cmd(0xd1);
	out_data(0xdf);			/* reset line high: no reset */
	ck_assert_uint_eq(host.resets, 0);
	ck_assert_uint_eq(command(0xd0), 0xcf);	/* bits 4-5 read live */
	out_cmd(0xd1);
	out_data(0x03);
	ck_assert_uint_eq(host.resets, 0);
	ck_assert_uint_eq(command(0xd0), 0x03);
	out_cmd(0xd1);
	out_data(0xfe);			/* reset line low */
	ck_assert_uint_eq(host.resets, 1);
	/* the VM reset resets the controller */
	dev->desc->reset(dev);
	ck_assert_uint_eq(command(0xd0), 0xcf);
	/* a keyboard byte waiting shows as output port bit 4 */
	write_ctr(0);
	out_data(0xee);
	out_cmd(0xd0);
	expect_byte(0xee, false);
	expect_byte(0xcf | 0x10, false);
}
END_TEST

START_TEST(test_i8042_reset_callback)
{
	write_ctr(CTR_KBDINT);
	out_data(0xf0);
	out_data(0x01);
	out_data(0xee);
	ck_assert(host.level[0]);
	dev->desc->reset(dev);
	ck_assert(!host.level[0]);
	expect_empty();
	ck_assert_uint_eq(read_ctr(), 0x65);
	out_data(0xf0);
	out_data(0x00);
	expect_byte(ACK, false);
	expect_byte(ACK, false);
	expect_byte(0x02, false);	/* set 2 again */
}
END_TEST

/* ---- unknown commands, keyboard and mouse details ----------------------- */

START_TEST(test_i8042_unknown_commands)
{
	static const uint8_t unknown[] = {0x00, 0x1f, 0x80, 0xa0, 0xa1, 0xc8,
					  0xe1};
	I8042State *before, *after;

	write_ctr(0);
	before = saved_state();
	for (unsigned i = 0; i < sizeof(unknown); i++)
		out_cmd(unknown[i]);
	after = saved_state();
	/* ignored: nothing queued, nothing changed */
	expect_empty();
	ck_assert_mem_eq(before->ram.data, after->ram.data, 32);
	ck_assert_uint_eq(after->pending, 0);
	i8042_state__free_unpacked(before, NULL);
	i8042_state__free_unpacked(after, NULL);

	/* the keyboard answers anything unknown with resend */
	out_data(0x55);
	expect_byte(RESEND, false);
	out_data(0xe8);
	expect_byte(RESEND, false);
	/* and resend repeats the last byte */
	out_data(0xf2);
	flush();
	out_data(0xfe);
	expect_byte(0x83, false);
	/* the mouse too */
	aux_send(0x42);
	expect_byte(RESEND, true);
	aux_send(0xf2);
	flush();
	aux_send(0xfe);
	expect_byte(0x00, true);
	/* a new command drops a half-sent one */
	out_cmd(0x60);
	out_cmd(0xab);
	expect_byte(0x00, false);
	out_data(0xee);
	expect_byte(0xee, false);	/* to the keyboard, not the CTR */
	ck_assert_uint_eq(read_ctr(), 0);
}
END_TEST

START_TEST(test_i8042_keyboard_commands)
{
	write_ctr(0);
	/* reset: ACK, BAT ok */
	out_data(0xff);
	expect_byte(ACK, false);
	expect_byte(0xaa, false);
	/* scancode sets */
	out_data(0xf0);
	out_data(0x00);
	expect_byte(ACK, false);
	expect_byte(ACK, false);
	expect_byte(0x02, false);
	out_data(0xf0);
	out_data(0x03);
	expect_byte(ACK, false);
	expect_byte(ACK, false);
	out_data(0xf0);
	out_data(0x00);
	expect_byte(ACK, false);
	expect_byte(ACK, false);
	expect_byte(0x03, false);
	/* a bad set is refused, the command still waits */
	out_data(0xf0);
	out_data(0x07);
	expect_byte(ACK, false);
	expect_byte(RESEND, false);
	out_data(0x01);
	expect_byte(ACK, false);
	out_data(0xf0);
	out_data(0x00);
	flush();
	/* LEDs and typematic take one argument each */
	out_data(0xed);
	out_data(0x02);
	expect_byte(ACK, false);
	expect_byte(ACK, false);
	out_data(0xf3);
	out_data(0x20);
	expect_byte(ACK, false);
	expect_byte(ACK, false);
	/* a command where an argument was due starts over */
	out_data(0xed);
	out_data(0xf4);
	expect_byte(ACK, false);
	expect_byte(ACK, false);
	out_data(0x00);			/* no longer an argument */
	expect_byte(RESEND, false);
	/* set-3 key type commands are acknowledged */
	out_data(0xf8);
	expect_byte(ACK, false);
	out_data(0xf6);
	expect_byte(ACK, false);
	expect_empty();
}
END_TEST

START_TEST(test_i8042_mouse_commands)
{
	static const uint8_t status_default[] = {ACK, 0x00, 0x02, 100};
	static const uint8_t status_set[] = {ACK, 0x70, 0x03, 200};

	write_ctr(CTR_AUXINT);
	aux_send(0xe9);
	for (unsigned i = 0; i < 4; i++)
		expect_byte(status_default[i], true);
	aux_send(0xf3);
	aux_send(0xc8);
	expect_byte(ACK, true);
	expect_byte(ACK, true);
	aux_send(0xe8);
	aux_send(0x03);
	expect_byte(ACK, true);
	expect_byte(ACK, true);
	aux_send(0xe7);
	aux_send(0xf4);
	aux_send(0xf0);
	flush();
	aux_send(0xe9);
	for (unsigned i = 0; i < 4; i++)
		expect_byte(status_set[i], true);
	/* read data: an empty packet */
	aux_send(0xeb);
	expect_byte(ACK, true);
	expect_byte(0x08, true);
	expect_byte(0x00, true);
	expect_byte(0x00, true);
	/* wrap mode echoes until 0xec */
	aux_send(0xee);
	expect_byte(ACK, true);
	aux_send(0x12);
	expect_byte(0x12, true);
	aux_send(0xf2);
	expect_byte(0xf2, true);
	aux_send(0xec);
	expect_byte(ACK, true);
	aux_send(0xf2);
	expect_byte(ACK, true);
	expect_byte(0x00, true);
	/* defaults */
	aux_send(0xf6);
	aux_send(0xe9);
	expect_byte(ACK, true);
	for (unsigned i = 0; i < 4; i++)
		expect_byte(status_default[i], true);
	/* the intellimouse knock still finds a plain mouse */
	aux_send(0xf3);
	aux_send(200);
	aux_send(0xf3);
	aux_send(100);
	aux_send(0xf3);
	aux_send(80);
	flush();
	aux_send(0xf2);
	expect_byte(ACK, true);
	expect_byte(0x00, true);
	expect_empty();
}
END_TEST

START_TEST(test_i8042_wide_access)
{
	uint8_t b[4];

	write_ctr(0);
	out_data(0xee);
	memset(b, 0, sizeof(b));
	dev->desc->io(dev, CMD, 0, b, 2, false);
	ck_assert_uint_eq(b[0] & STR_OBF, STR_OBF);
	ck_assert_uint_eq(b[1], 0xff);
	dev->desc->io(dev, DATA, 0, b, 4, false);
	ck_assert_uint_eq(b[0], 0xee);
	ck_assert_uint_eq(b[1], 0xff);
	ck_assert_uint_eq(b[3], 0xff);
	/* a stray offset or region reads all ones and changes nothing */
	dev->desc->io(dev, DATA, 1, b, 1, false);
	ck_assert_uint_eq(b[0], 0xff);
	dev->desc->io(dev, 2, 0, b, 1, false);
	ck_assert_uint_eq(b[0], 0xff);
	b[0] = 0xfe;
	dev->desc->io(dev, 2, 0, b, 1, true);
	dev->desc->io(dev, CMD, 5, b, 1, true);
	ck_assert_uint_eq(host.resets, 0);
	/* a 16-bit write to 0x64 is one command */
	b[0] = 0xaa;
	b[1] = 0xfe;
	dev->desc->io(dev, CMD, 0, b, 2, true);
	ck_assert_uint_eq(host.resets, 0);
	expect_byte(0x55, false);
	dev->desc->io(dev, CMD, 0, b, 0, true);
}
END_TEST

/* ---- saved state -------------------------------------------------------- */

static void save(uint8_t **buf, size_t *len)
{
	fakehost_save(dev, buf, len);
}

START_TEST(test_i8042_save_load_round_trip)
{
	uint8_t *a, *b;
	size_t alen, blen;

	write_ctr(CTR_KBDINT | CTR_AUXINT | CTR_XLATE);
	out_cmd(0x7f);
	out_data(0x99);
	out_cmd(0xd1);
	out_data(0xcb);
	out_data(0xf0);
	out_data(0x03);
	out_data(0xed);
	out_data(0x05);
	out_data(0xf3);
	out_data(0x11);
	out_data(0xf5);
	aux_send(0xe8);
	aux_send(0x01);
	aux_send(0xf0);
	aux_send(0xf4);
	aux_send(0xe7);
	aux_send(0xf3);			/* argument pending */
	out_data(0xf2);
	out_cmd(0x20);
	out_cmd(0xd4);			/* command pending */
	ck_assert(host.level[0]);
	save(&a, &alen);

	dev_free(dev);
	fakehost_dev_new(&host, 2, &i8042_desc, &dev);
	ck_assert_int_eq(dev->desc->load(dev, a, alen, 1), 0);
	save(&b, &blen);
	ck_assert_uint_eq(alen, blen);
	ck_assert_mem_eq(a, b, alen);
	free(a);
	free(b);
	ck_assert(host.level[0]);	/* the waiting byte's IRQ */

	/* and it behaves on */
	out_data(0x28);			/* the pending 0xd4, then 0xf3 arg */
	ck_assert_uint_eq(flush(), 12 + 1 + 4 + 1);
	aux_send(0xe9);
	expect_byte(ACK, true);
	expect_byte(0x70, true);
	expect_byte(0x01, true);
	expect_byte(0x28, true);
	ck_assert_uint_eq(command(0x3f), 0x99);
	ck_assert_uint_eq(command(0xd0), 0xcb);
	out_data(0xf0);
	out_data(0x00);
	flush();
	out_data(0xfe);
	expect_byte(0x03, false);
}
END_TEST

START_TEST(test_i8042_load_hostile)
{
	struct fakehost_saved sv;
	uint32_t big[QUEUE + 1], bad_aux[1] = {0x012}, bad_kbd[1] = {0x1fa};
	uint32_t too_wide[1] = {0x200};
	uint8_t *orig;
	size_t orig_len;
	I8042State *good;
	I8042State m;

	write_ctr(CTR_KBDINT);
	out_data(0xf2);
	aux_send(0xf2);
	save(&orig, &orig_len);
	sv = (struct fakehost_saved){ dev, orig, orig_len };
	good = i8042_state__unpack(NULL, orig_len, orig);
	ck_assert_ptr_nonnull(good);
	for (unsigned i = 0; i <= QUEUE; i++)
		big[i] = 0x55;

	fakehost_refuse(&sv, orig, orig_len, 0);
	fakehost_refuse(&sv, orig, orig_len, 2);
	fakehost_refuse(&sv, (const uint8_t *)"\x0a\xff\xff", 3, 1);
	fakehost_refuse(&sv, NULL, 5, 1);
	fakehost_refuse(&sv, NULL, 0, 1);

#define REFUSE(field, value) do {				\
		m = *good;					\
		m.field = value;				\
		fakehost_refuse_msg(&sv, &m.base);		\
	} while (0)
	REFUSE(ram.len, 31);
	REFUSE(ram.len, 0);
	REFUSE(output_port, 0x100);
	REFUSE(pending, 0x20);
	REFUSE(pending, 0xd5);
	REFUSE(pending, 0x160);
	REFUSE(out, 0x200);
	REFUSE(kbd_pending, 0xf2);
	REFUSE(kbd_set, 0);
	REFUSE(kbd_set, 4);
	REFUSE(kbd_leds, 8);
	REFUSE(kbd_typematic, 0x80);
	REFUSE(kbd_last, 0x100);
	REFUSE(aux_pending, 0xe9);
	REFUSE(aux_resolution, 4);
	REFUSE(aux_rate, 256);
	REFUSE(aux_last, 0x1fa);
#define REFUSE_QUEUE(queue, n, values) do {			\
		m = *good;					\
		m.n_##queue = (n);				\
		m.queue = (values);				\
		fakehost_refuse_msg(&sv, &m.base);		\
	} while (0)
	REFUSE_QUEUE(ctrl_queue, QUEUE + 1, big);
	REFUSE_QUEUE(kbd_queue, QUEUE + 1, big);
	REFUSE_QUEUE(kbd_queue, 1, bad_kbd);
	REFUSE_QUEUE(aux_queue, 1, bad_aux);
	REFUSE_QUEUE(ctrl_queue, 1, too_wide);
#undef REFUSE_QUEUE
#undef REFUSE

	/* random corruption: refused and unchanged, or accepted */
	{
		uint8_t *buf = malloc(orig_len);
		uint64_t x = 88172645463325252ull;
		unsigned accepted = 0, refused = 0;

		ck_assert_ptr_nonnull(buf);
		for (unsigned round = 0; round < 3000; round++) {
			size_t len = orig_len;

			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			memcpy(buf, orig, orig_len);
			if (x % 4 == 0)
				len = (size_t)(x >> 8) % orig_len;
			buf[(x >> 16) % orig_len] ^= (uint8_t)(1u << (x >> 40) % 8);
			if (dev->desc->load(dev, buf, len, 1) == 0) {
				accepted++;
				flush();
				ck_assert_int_eq(dev->desc->load(dev, orig,
								 orig_len, 1),
						 0);
			} else {
				refused++;
				fakehost_refuse(&sv, buf, len, 1);
			}
		}
		ck_assert_uint_gt(accepted, 0);
		ck_assert_uint_gt(refused, 0);
		free(buf);
	}

	ck_assert_int_eq(dev->desc->load(dev, orig, orig_len, 1), 0);
	expect_byte(ACK, false);
	i8042_state__free_unpacked(good, NULL);
	free(orig);
}
END_TEST

/* ---- soak --------------------------------------------------------------- */

static uint64_t soak_state;

static uint64_t soak_next(void)
{
	/* xorshift64*, fixed seed: the same run every time */
	soak_state ^= soak_state >> 12;
	soak_state ^= soak_state << 25;
	soak_state ^= soak_state >> 27;
	return soak_state * 0x2545f4914f6cdd1dull;
}

START_TEST(test_i8042_soak)
{
	/* Bytes worth sending more often than chance would. */
	static const uint8_t cmds[] = {
		0x20, 0x60, 0x7f, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xad, 0xae,
		0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xfe, 0xff, 0xa4,
	};
	static const uint8_t devcmds[] = {
		0xed, 0xee, 0xf0, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xfe, 0xff,
		0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0x00, 0x01, 0x03,
	};
	static const unsigned lens[] = {1, 2, 4, 8};
	unsigned resets_expected_min = 0;

	soak_state = 0x0123456789abcdefull;
	for (unsigned step = 0; step < 100000; step++) {
		uint64_t r = soak_next();
		unsigned what = r % 100;
		uint8_t b[8];

		memset(b, (uint8_t)(r >> 8), sizeof(b));
		if (what < 25) {
			b[0] = cmds[(r >> 16) % sizeof(cmds)];
			if (b[0] == 0xfe)
				resets_expected_min++;
			dev->desc->io(dev, CMD, 0, b, 1, true);
		} else if (what < 50) {
			b[0] = devcmds[(r >> 16) % sizeof(devcmds)];
			dev->desc->io(dev, DATA, 0, b, 1, true);
		} else if (what < 60) {
			dev->desc->io(dev, (unsigned)(r >> 16) % 3,
				      (r >> 20) % 64 == 0 ? (r >> 24) % 4 : 0,
				      b, lens[(r >> 28) % 4],
				      (r >> 32) & 1);
		} else if (what < 85) {
			dev->desc->io(dev, DATA, 0, b, 1, false);
		} else if (what < 99) {
			dev->desc->io(dev, CMD, 0, b, 1, false);
		} else if ((r >> 16) % 50 == 0) {
			dev->desc->reset(dev);
		}

		ck_assert_uint_eq(host.irq_redundant, 0);
		if (step % 97 == 0) {
			I8042State *m = saved_state();

			ck_assert_uint_le(m->n_ctrl_queue, QUEUE);
			ck_assert_uint_le(m->n_kbd_queue, QUEUE);
			ck_assert_uint_le(m->n_aux_queue, QUEUE);
			i8042_state__free_unpacked(m, NULL);
		}
	}
	ck_assert_uint_ge(host.resets, resets_expected_min);
	ck_assert_uint_gt(host.edges[0], 0);
	ck_assert_uint_gt(host.edges[1], 0);
	/* still a working controller */
	flush();
	ck_assert_uint_eq(command(0xaa), 0x55);
	ck_assert_uint_le(flush(), 3 * QUEUE);
}
END_TEST

Suite *i8042_suite(void)
{
	Suite *s = suite_create("i8042");
	TCase *ctl = tcase_create("controller");
	TCase *irq = tcase_create("interrupts-reset");
	TCase *devs = tcase_create("keyboard-mouse");
	TCase *state = tcase_create("saved-state-soak");

	tcase_add_checked_fixture(ctl, kbc_setup, kbc_teardown);
	tcase_add_test(ctl, test_i8042_descriptor);
	tcase_add_test(ctl, test_i8042_reset_values);
	tcase_add_test(ctl, test_i8042_linux_probe);
	tcase_add_test(ctl, test_i8042_command_byte);
	tcase_add_test(ctl, test_i8042_status_cmd_data_bit);
	tcase_add_test(ctl, test_i8042_output_order);
	tcase_add_test(ctl, test_i8042_queue_bounded);
	tcase_add_test(ctl, test_i8042_wide_access);
	suite_add_tcase(s, ctl);

	tcase_add_checked_fixture(irq, kbc_setup, kbc_teardown);
	tcase_add_test(irq, test_i8042_irq_per_byte);
	tcase_add_test(irq, test_i8042_irq_enable_bits);
	tcase_add_test(irq, test_i8042_port_disable_holds_bytes);
	tcase_add_test(irq, test_i8042_reset_pulse);
	tcase_add_test(irq, test_i8042_output_port);
	tcase_add_test(irq, test_i8042_reset_callback);
	suite_add_tcase(s, irq);

	tcase_add_checked_fixture(devs, kbc_setup, kbc_teardown);
	tcase_add_test(devs, test_i8042_unknown_commands);
	tcase_add_test(devs, test_i8042_keyboard_commands);
	tcase_add_test(devs, test_i8042_mouse_commands);
	suite_add_tcase(s, devs);

	tcase_add_checked_fixture(state, kbc_setup, kbc_teardown);
	tcase_add_test(state, test_i8042_save_load_round_trip);
	tcase_add_test(state, test_i8042_load_hostile);
	tcase_add_test(state, test_i8042_soak);
	tcase_set_timeout(state, 120);
	suite_add_tcase(s, state);

	return s;
}
