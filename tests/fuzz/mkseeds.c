/* SPDX-License-Identifier: MIT */
/*
 * fuzz-mkseeds: writes the seed inputs of tests/fuzz/corpus/ (`make
 * fuzz-seeds`). Seeds are what a real peer or guest does (a driver's UART
 * set-up, a virtio driver's queue set-up and requests, every message a
 * process receives with the fds it comes with, real guest images), so the
 * fuzzers start deep in the code rather than at its first check. The
 * files are committed; run this again after changing an input format.
 *
 *   fuzz-mkseeds OUTDIR [GUESTDIR]
 *
 * writes OUTDIR/<target>/seed-<name>; GUESTDIR (build/guests) supplies
 * real images for the loader.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/control.h"
#include "control.pb-c.h"
#include "device.pb-c.h"
#include "emt-worker/ssm.h"
#include "proto/msgtypes.h"
#include "tests/fuzz/fuzzlib.h"
#include "virtio_state.pb-c.h"
#include "worker.pb-c.h"

#define SD_MAX (256u * 1024u)

/* One seed being built. */
struct sd {
	uint8_t b[SD_MAX];
	size_t n;
};

static const char *sd_outdir;

static void sd_put(struct sd *s, const void *p, size_t n)
{
	if (s->n + n > SD_MAX) {
		fprintf(stderr, "fuzz-mkseeds: seed too large\n");
		exit(1);
	}
	memcpy(s->b + s->n, p, n);
	s->n += n;
}

static void sd_le(struct sd *s, uint64_t v, unsigned n)
{
	uint8_t b[8];

	for (unsigned i = 0; i < n && i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	sd_put(s, b, n);
}

static void sd_u8(struct sd *s, uint8_t v)
{
	sd_le(s, v, 1);
}

/* Empty s and start it with the harness's lead byte. */
static void sd_start(struct sd *s, uint8_t lead)
{
	s->n = 0;
	sd_u8(s, lead);
}

static void sd_write_file(const char *target, const char *name,
			  const struct sd *s)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", sd_outdir, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/seed-%s", sd_outdir, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(s->b, 1, s->n, f) != s->n || fclose(f) != 0) {
		fprintf(stderr, "fuzz-mkseeds: cannot write %s: %s\n", path,
			strerror(errno));
		exit(1);
	}
}

/* ---- device operations (fuzzlib.h) -------------------------------------- */

static unsigned sd_log2(unsigned len)
{
	return len == 1 ? 0 : len == 2 ? 1 : len == 4 ? 2 : 3;
}

static void sd_rd(struct sd *s, unsigned region, uint16_t off, unsigned len)
{
	sd_u8(s, (uint8_t)(0 | (region | sd_log2(len) << 2) << 4));
	sd_le(s, off, 2);
}

static void sd_wr(struct sd *s, unsigned region, uint16_t off, unsigned len,
		  uint64_t v)
{
	sd_u8(s, (uint8_t)(4 | (region | sd_log2(len) << 2) << 4));
	sd_le(s, off, 2);
	sd_le(s, v, len);
}

static void sd_tick(struct sd *s, unsigned scale, uint16_t v)
{
	sd_u8(s, (uint8_t)(9 | scale << 4));
	sd_le(s, v, 2);
}

static void sd_mem(struct sd *s, uint32_t gpa, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		size_t k = n > 255 ? 255 : n;

		sd_u8(s, (uint8_t)(10 | (gpa >> 16) << 4));
		sd_le(s, gpa & 0xffff, 2);
		sd_u8(s, (uint8_t)k);
		sd_put(s, b, k);
		b += k;
		gpa += (uint32_t)k;
		n -= k;
	}
}

static void sd_input(struct sd *s, const char *text)
{
	size_t n = strlen(text);

	sd_u8(s, 11);
	sd_u8(s, (uint8_t)n);
	sd_put(s, text, n);
}

static void sd_notify(struct sd *s, unsigned idx)
{
	sd_u8(s, (uint8_t)(12 | idx << 4));
}

static void sd_reset(struct sd *s)
{
	sd_u8(s, 13);
}

static void sd_lifecycle(struct sd *s, enum fz_lifecycle e)
{
	sd_u8(s, (uint8_t)(13 | (1 | e << 1) << 4));
}

static void sd_save_load(struct sd *s)
{
	sd_u8(s, 14);
}

static void sd_load(struct sd *s, const void *p, size_t n)
{
	sd_u8(s, 15);
	sd_le(s, n, 2);
	sd_put(s, p, n);
}

/* ---- UART ----------------------------------------------------------------- */

enum { U_THR = 0, U_IER = 1, U_FCR = 2, U_IIR = 2, U_LCR = 3, U_MCR = 4,
       U_LSR = 5, U_MSR = 6, U_SCR = 7 };

static void sd_uart(void)
{
	struct sd s;

	/* Linux's 8250 set-up at 115200 8N1, FIFOs on, then talk. */
	sd_start(&s, 0);
	sd_wr(&s, 0, U_LCR, 1, 0x80);
	sd_wr(&s, 0, U_THR, 1, 0x01);
	sd_wr(&s, 0, U_IER, 1, 0x00);
	sd_wr(&s, 0, U_LCR, 1, 0x03);
	sd_wr(&s, 0, U_FCR, 1, 0xc7);
	sd_wr(&s, 0, U_MCR, 1, 0x0b);
	sd_wr(&s, 0, U_IER, 1, 0x0f);
	sd_rd(&s, 0, U_IIR, 1);
	sd_rd(&s, 0, U_LSR, 1);
	sd_wr(&s, 0, U_THR, 1, 'H');
	sd_wr(&s, 0, U_THR, 1, 'i');
	sd_rd(&s, 0, U_IIR, 1);
	sd_input(&s, "login\r");
	sd_rd(&s, 0, U_IIR, 1);
	sd_rd(&s, 0, U_LSR, 1);
	for (int i = 0; i < 6; i++)
		sd_rd(&s, 0, U_THR, 1);
	sd_rd(&s, 0, U_LSR, 1);
	sd_rd(&s, 0, U_MSR, 1);
	sd_write_file("uart", "linux-8250", &s);

	/* The loopback test of a driver probing for a 16550A, with the
	 * divisor latch open and the scratch register in use. */
	sd_start(&s, 0);
	sd_wr(&s, 0, U_SCR, 1, 0x5a);
	sd_rd(&s, 0, U_SCR, 1);
	sd_wr(&s, 0, U_MCR, 1, 0x1f);
	sd_rd(&s, 0, U_MSR, 1);
	sd_wr(&s, 0, U_LCR, 1, 0x83);
	sd_wr(&s, 0, U_SCR, 1, 0x3c);
	sd_rd(&s, 0, U_THR, 1);
	sd_wr(&s, 0, U_LCR, 1, 0x03);
	sd_wr(&s, 0, U_THR, 1, 0x55);
	sd_rd(&s, 0, U_LSR, 1);
	sd_rd(&s, 0, U_THR, 1);
	sd_wr(&s, 0, U_MCR, 1, 0x00);
	sd_rd(&s, 0, U_MSR, 1);
	sd_write_file("uart", "loopback-probe", &s);

	/* FIFO trigger levels and an overrun, 16-bit and 32-bit accesses,
	 * a reset in the middle. */
	sd_start(&s, 0);
	sd_wr(&s, 0, U_FCR, 1, 0x81);
	sd_wr(&s, 0, U_IER, 2, 0x0005);
	sd_wr(&s, 0, U_MCR, 1, 0x08);
	sd_input(&s, "0123456789abcdefghij");
	sd_rd(&s, 0, U_IIR, 4);
	sd_rd(&s, 0, U_LSR, 2);
	sd_rd(&s, 0, U_THR, 8);
	sd_wr(&s, 0, U_FCR, 1, 0x03);
	sd_rd(&s, 0, U_LSR, 1);
	sd_tick(&s, 10, 1000);
	sd_reset(&s);
	sd_rd(&s, 0, U_IIR, 1);
	sd_lifecycle(&s, FZ_LC_SUSPEND);
	sd_lifecycle(&s, FZ_LC_RESUME);
	sd_save_load(&s);
	sd_write_file("uart", "fifo-overrun", &s);
}

static void sd_small_devices(void)
{
	struct sd s;

	sd_start(&s, 0);
	sd_wr(&s, 0, 0, 1, 0x00);
	sd_wr(&s, 0, 0, 2, 0x1234);
	sd_wr(&s, 0, 0, 4, 0x31);
	sd_wr(&s, 0, 0, 8, 0x123456789abcdefull);
	sd_rd(&s, 0, 0, 1);
	sd_write_file("debugexit", "exit-codes", &s);

	sd_start(&s, 0);
	for (unsigned i = 0; i < 8; i++) {
		sd_wr(&s, 0, (uint16_t)i, 1, i);
		sd_rd(&s, 0, (uint16_t)i, 4);
	}
	sd_save_load(&s);
	sd_write_file("null", "every-port", &s);

	/* acpi-pm: a sleep state we do not offer, a wrong reset value, the
	 * status register, a wide write, then \_S5 and the reset value. */
	sd_start(&s, 0);
	sd_wr(&s, 0, ACPI_PM_SLEEP_CONTROL, 1, (3u << ACPI_PM_SLP_TYP_SHIFT) |
	      ACPI_PM_SLP_EN);
	sd_wr(&s, 0, ACPI_PM_RESET, 1, 0x42);
	sd_rd(&s, 0, ACPI_PM_SLEEP_STATUS, 1);
	sd_wr(&s, 0, ACPI_PM_SLEEP_STATUS, 1, 0xff);
	sd_wr(&s, 0, 0, 4, 0xffffffffu);
	sd_save_load(&s);
	sd_wr(&s, 0, ACPI_PM_SLEEP_CONTROL, 1,
	      (ACPI_PM_S5_TYPE << ACPI_PM_SLP_TYP_SHIFT) | ACPI_PM_SLP_EN);
	sd_wr(&s, 0, ACPI_PM_RESET, 1, ACPI_PM_RESET_VALUE);
	sd_write_file("acpi-pm", "registers", &s);
}

/* ---- RTC and i8042 ------------------------------------------------------- */

static void sd_rtc_reg(struct sd *s, uint8_t idx, int val)
{
	sd_wr(s, 0, 0, 1, idx);
	if (val >= 0)
		sd_wr(s, 0, 1, 1, (uint8_t)val);
	else
		sd_rd(s, 0, 1, 1);
}

static void sd_rtc(void)
{
	struct sd s;

	/* Linux reading the time (UIP, then every field, in BCD), setting
	 * it (SET), then periodic interrupts and an alarm. */
	sd_start(&s, 0x30);
	sd_lifecycle(&s, FZ_LC_POWER_ON);
	sd_rtc_reg(&s, 0x0a, -1);
	for (uint8_t r = 0; r <= 9; r++)
		sd_rtc_reg(&s, r, -1);
	sd_rtc_reg(&s, 0x32, -1);
	sd_rtc_reg(&s, 0x0b, -1);
	sd_rtc_reg(&s, 0x0b, 0x82);
	sd_rtc_reg(&s, 0x00, 0x59);
	sd_rtc_reg(&s, 0x02, 0x59);
	sd_rtc_reg(&s, 0x04, 0x23);
	sd_rtc_reg(&s, 0x07, 0x31);
	sd_rtc_reg(&s, 0x08, 0x12);
	sd_rtc_reg(&s, 0x09, 0x99);
	sd_rtc_reg(&s, 0x0b, 0x02);
	sd_tick(&s, 15, 1);
	sd_rtc_reg(&s, 0x00, -1);
	sd_rtc_reg(&s, 0x0a, 0x26);
	sd_rtc_reg(&s, 0x0b, 0x42);
	sd_tick(&s, 10, 1000);
	sd_rtc_reg(&s, 0x0c, -1);
	sd_rtc_reg(&s, 0x01, 0xc0);
	sd_rtc_reg(&s, 0x03, 0xc0);
	sd_rtc_reg(&s, 0x05, 0xc0);
	sd_rtc_reg(&s, 0x0b, 0x32);
	sd_tick(&s, 15, 2);
	sd_rtc_reg(&s, 0x0c, -1);
	sd_save_load(&s);
	sd_lifecycle(&s, FZ_LC_SUSPEND);
	sd_tick(&s, 15, 5);
	sd_lifecycle(&s, FZ_LC_RESUME);
	sd_rtc_reg(&s, 0x0c, -1);
	sd_reset(&s);
	sd_rtc_reg(&s, 0x0d, -1);
	sd_write_file("rtc", "linux", &s);

	/* NVRAM, binary mode, 12-hour mode, the divider held in reset. */
	sd_start(&s, 0x00);
	for (uint8_t r = 0x0e; r < 0x80; r += 9)
		sd_rtc_reg(&s, r, r ^ 0x5a);
	sd_rtc_reg(&s, 0x0b, 0x06);
	sd_rtc_reg(&s, 0x04, -1);
	sd_rtc_reg(&s, 0x0b, 0x04);
	sd_rtc_reg(&s, 0x04, -1);
	sd_rtc_reg(&s, 0x0a, 0x70);
	sd_tick(&s, 15, 3);
	sd_rtc_reg(&s, 0x0a, 0x20);
	sd_tick(&s, 14, 1);
	sd_rtc_reg(&s, 0x00, -1);
	sd_wr(&s, 0, 0, 1, 0x8f);
	sd_rd(&s, 0, 0, 1);
	sd_save_load(&s);
	sd_write_file("rtc", "nvram-modes", &s);
}

static void sd_i8042(void)
{
	struct sd s;

	/* Linux's i8042 probe and atkbd/psmouse set-up: the controller's
	 * self test, command byte, loopback, then keyboard and mouse
	 * commands. Region 0 is port 0x60, region 1 port 0x64. */
	sd_start(&s, 0);
	sd_wr(&s, 1, 0, 1, 0xaa);
	sd_rd(&s, 1, 0, 1);
	sd_rd(&s, 0, 0, 1);
	sd_wr(&s, 1, 0, 1, 0x20);
	sd_rd(&s, 0, 0, 1);
	sd_wr(&s, 1, 0, 1, 0x60);
	sd_wr(&s, 0, 0, 1, 0x47);
	sd_wr(&s, 1, 0, 1, 0xd3);
	sd_wr(&s, 0, 0, 1, 0x5a);
	sd_rd(&s, 1, 0, 1);
	sd_rd(&s, 0, 0, 1);
	sd_wr(&s, 1, 0, 1, 0xa8);
	sd_wr(&s, 1, 0, 1, 0xa9);
	sd_rd(&s, 0, 0, 1);
	sd_wr(&s, 0, 0, 1, 0xff);
	sd_rd(&s, 0, 0, 1);
	sd_rd(&s, 0, 0, 1);
	sd_wr(&s, 0, 0, 1, 0xf2);
	sd_rd(&s, 0, 0, 1);
	sd_rd(&s, 0, 0, 1);
	sd_rd(&s, 0, 0, 1);
	sd_wr(&s, 0, 0, 1, 0xed);
	sd_wr(&s, 0, 0, 1, 0x07);
	sd_wr(&s, 0, 0, 1, 0xf0);
	sd_wr(&s, 0, 0, 1, 0x00);
	sd_rd(&s, 0, 0, 1);
	sd_wr(&s, 1, 0, 1, 0xd4);
	sd_wr(&s, 0, 0, 1, 0xff);
	sd_rd(&s, 1, 0, 1);
	sd_rd(&s, 0, 0, 1);
	sd_wr(&s, 1, 0, 1, 0xd4);
	sd_wr(&s, 0, 0, 1, 0xf3);
	sd_wr(&s, 1, 0, 1, 0xd4);
	sd_wr(&s, 0, 0, 1, 0xc8);
	sd_wr(&s, 1, 0, 1, 0xd4);
	sd_wr(&s, 0, 0, 1, 0xeb);
	for (int i = 0; i < 5; i++)
		sd_rd(&s, 0, 0, 1);
	sd_save_load(&s);
	sd_wr(&s, 1, 0, 1, 0xd0);
	sd_rd(&s, 0, 0, 1);
	sd_wr(&s, 1, 0, 1, 0xfe);
	sd_write_file("i8042", "linux-probe", &s);
}

/* ---- virtio --------------------------------------------------------------- */

#define V_MAGIC 0x000
#define V_VERSION 0x004
#define V_DEVICE_ID 0x008
#define V_DEV_FEAT 0x010
#define V_DEV_FEAT_SEL 0x014
#define V_DRV_FEAT 0x020
#define V_DRV_FEAT_SEL 0x024
#define V_QUEUE_SEL 0x030
#define V_QUEUE_NUM_MAX 0x034
#define V_QUEUE_NUM 0x038
#define V_QUEUE_READY 0x044
#define V_QUEUE_NOTIFY 0x050
#define V_INT_STATUS 0x060
#define V_INT_ACK 0x064
#define V_STATUS 0x070
#define V_DESC_LO 0x080
#define V_DESC_HI 0x084
#define V_DRIVER_LO 0x090
#define V_DEVICE_LO 0x0a0
#define V_CONFIG 0x100

#define VQ_DESC 0x1000u
#define VQ_AVAIL 0x2000u
#define VQ_USED 0x3000u
#define VQ_NUM 8u

/* A virtio driver's set-up of queue 0 (virtio 1.2, 3.1.1). */
static void sd_virtio_init(struct sd *s, uint32_t feat_lo)
{
	sd_rd(s, 0, V_MAGIC, 4);
	sd_rd(s, 0, V_VERSION, 4);
	sd_rd(s, 0, V_DEVICE_ID, 4);
	sd_wr(s, 0, V_STATUS, 4, 0);
	sd_wr(s, 0, V_STATUS, 4, 1);
	sd_wr(s, 0, V_STATUS, 4, 3);
	sd_wr(s, 0, V_DEV_FEAT_SEL, 4, 0);
	sd_rd(s, 0, V_DEV_FEAT, 4);
	sd_wr(s, 0, V_DEV_FEAT_SEL, 4, 1);
	sd_rd(s, 0, V_DEV_FEAT, 4);
	sd_wr(s, 0, V_DRV_FEAT_SEL, 4, 0);
	sd_wr(s, 0, V_DRV_FEAT, 4, feat_lo);
	sd_wr(s, 0, V_DRV_FEAT_SEL, 4, 1);
	sd_wr(s, 0, V_DRV_FEAT, 4, 1);   /* VERSION_1 */
	sd_wr(s, 0, V_STATUS, 4, 0xb);
	sd_rd(s, 0, V_STATUS, 4);
	sd_wr(s, 0, V_QUEUE_SEL, 4, 0);
	sd_rd(s, 0, V_QUEUE_NUM_MAX, 4);
	sd_wr(s, 0, V_QUEUE_NUM, 4, VQ_NUM);
	sd_wr(s, 0, V_DESC_LO, 4, VQ_DESC);
	sd_wr(s, 0, V_DESC_HI, 4, 0);
	sd_wr(s, 0, V_DRIVER_LO, 4, VQ_AVAIL);
	sd_wr(s, 0, V_DEVICE_LO, 4, VQ_USED);
	sd_wr(s, 0, V_QUEUE_READY, 4, 1);
	sd_wr(s, 0, V_STATUS, 4, 0xf);
	sd_rd(s, 0, V_CONFIG, 4);
	sd_rd(s, 0, V_CONFIG + 4, 4);
}

struct sd_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

static void sd_descs(struct sd *s, uint32_t table, const struct sd_desc *d,
		     unsigned n)
{
	uint8_t b[16 * 32];

	for (unsigned i = 0; i < n; i++) {
		for (unsigned k = 0; k < 8; k++)
			b[16 * i + k] = (uint8_t)(d[i].addr >> (8 * k));
		for (unsigned k = 0; k < 4; k++)
			b[16 * i + 8 + k] = (uint8_t)(d[i].len >> (8 * k));
		b[16 * i + 12] = (uint8_t)d[i].flags;
		b[16 * i + 13] = (uint8_t)(d[i].flags >> 8);
		b[16 * i + 14] = (uint8_t)d[i].next;
		b[16 * i + 15] = (uint8_t)(d[i].next >> 8);
	}
	sd_mem(s, table, b, 16 * n);
}

/* Publish heads in the available ring (idx = n), then the doorbell. */
static void sd_avail(struct sd *s, const uint16_t *heads, unsigned n,
		     bool by_register)
{
	uint8_t b[4 + 2 * VQ_NUM] = { 0 };

	b[2] = (uint8_t)n;
	for (unsigned i = 0; i < n; i++)
		b[4 + 2 * i] = (uint8_t)heads[i];
	sd_mem(s, VQ_AVAIL, b, 4 + 2 * n);
	if (by_register)
		sd_wr(s, 0, V_QUEUE_NOTIFY, 4, 0);
	else
		sd_notify(s, 0);
	sd_rd(s, 0, V_INT_STATUS, 4);
	sd_wr(s, 0, V_INT_ACK, 4, 1);
}

static void sd_blk_hdr(struct sd *s, uint32_t gpa, uint32_t type,
		       uint64_t sector)
{
	uint8_t h[16] = { 0 };

	for (unsigned k = 0; k < 4; k++)
		h[k] = (uint8_t)(type >> (8 * k));
	for (unsigned k = 0; k < 8; k++)
		h[8 + k] = (uint8_t)(sector >> (8 * k));
	sd_mem(s, gpa, h, sizeof(h));
}

#define VF_NEXT 1
#define VF_WRITE 2
#define VF_INDIRECT 4
/* SEG_MAX | BLK_SIZE | FLUSH */
#define VBLK_FEATURES ((1u << 2) | (1u << 6) | (1u << 9))

/* virtio-blk: read sector 1 (header, 512 bytes in, status). */
static void sd_virtio_blk_read(void)
{
	static const uint16_t head0[] = { 0 };
	struct sd s;

	sd_start(&s, 0x02);
	sd_virtio_init(&s, VBLK_FEATURES);
	sd_blk_hdr(&s, 0x4000, 0, 1);
	{
		const struct sd_desc d[] = {
			{ 0x4000, 16, VF_NEXT, 1 },
			{ 0x5000, 512, VF_NEXT | VF_WRITE, 2 },
			{ 0x6000, 1, VF_WRITE, 0 },
		};
		sd_descs(&s, VQ_DESC, d, 3);
	}
	sd_avail(&s, head0, 1, false);
	sd_save_load(&s);
	sd_write_file("virtio-blk", "read", &s);
}

/* virtio-blk: write sector 2, then flush (two chains, one doorbell, by
 * the register this time); the same on a read-only disk. */
static void sd_virtio_blk_write(void)
{
	static const uint16_t heads[] = { 0, 3 };
	uint8_t data[512];
	struct sd s;

	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;

	sd_start(&s, 0x02);
	sd_virtio_init(&s, VBLK_FEATURES);
	sd_blk_hdr(&s, 0x4000, 1, 2);
	sd_mem(&s, 0x5000, data, sizeof(data));
	sd_blk_hdr(&s, 0x4100, 4, 0);
	{
		const struct sd_desc d[] = {
			{ 0x4000, 16, VF_NEXT, 1 },
			{ 0x5000, 512, VF_NEXT, 2 },
			{ 0x6000, 1, VF_WRITE, 0 },
			{ 0x4100, 16, VF_NEXT, 4 },
			{ 0x6001, 1, VF_WRITE, 0 },
		};
		sd_descs(&s, VQ_DESC, d, 5);
	}
	sd_avail(&s, heads, 2, true);
	sd_write_file("virtio-blk", "write-flush", &s);

	/* The same write on a read-only disk. */
	s.b[0] = 0x03;
	sd_write_file("virtio-blk", "write-readonly", &s);
}

/* virtio-blk: GET_ID, and a read through an indirect table split over
 * descriptors of odd sizes; then suspend, save, resume and reset. */
static void sd_virtio_blk_indirect(void)
{
	struct sd s;

	sd_start(&s, 0x06);
	sd_virtio_init(&s, VBLK_FEATURES | (1u << 28));
	sd_blk_hdr(&s, 0x4000, 8, 0);
	sd_blk_hdr(&s, 0x4100, 0, 3);
	{
		const struct sd_desc d[] = {
			{ 0x4000, 16, VF_NEXT, 1 },
			{ 0x5000, 20, VF_NEXT | VF_WRITE, 2 },
			{ 0x6000, 1, VF_WRITE, 0 },
			{ 0x7000, 4 * 16, VF_INDIRECT, 0 },
		};
		const struct sd_desc ind[] = {
			{ 0x4100, 8, VF_NEXT, 1 },
			{ 0x4108, 8, VF_NEXT, 2 },
			{ 0x5100, 300, VF_NEXT | VF_WRITE, 3 },
			{ 0x5300, 213, VF_WRITE, 0 },
		};
		sd_descs(&s, VQ_DESC, d, 4);
		sd_descs(&s, 0x7000, ind, 4);
	}
	{
		const uint16_t h[] = { 0, 3 };

		sd_avail(&s, h, 2, false);
	}
	sd_lifecycle(&s, FZ_LC_SUSPEND);
	sd_save_load(&s);
	sd_lifecycle(&s, FZ_LC_RESUME);
	sd_reset(&s);
	sd_rd(&s, 0, V_STATUS, 4);
	sd_write_file("virtio-blk", "get-id-indirect", &s);
}

/* Saved state, hostile or not: a real-looking VirtioState, loaded into
 * virtio-blk (then a request on it) and into virtio-rng. */
static void sd_virtio_load_state(void)
{
	VirtioState vs = VIRTIO_STATE__INIT;
	VirtioQueueState q = VIRTIO_QUEUE_STATE__INIT, *qp = &q;
	uint8_t buf[256];
	struct sd s;
	size_t n;

	vs.device_id = 2;
	vs.status = 0xf;
	vs.driver_features = (1ull << 32) | VBLK_FEATURES;
	q.num = VQ_NUM;
	q.ready = true;
	q.desc_addr = VQ_DESC;
	q.driver_addr = VQ_AVAIL;
	q.device_addr = VQ_USED;
	q.last_avail = 1;
	q.used_idx = 1;
	vs.n_queues = 1;
	vs.queues = &qp;
	n = virtio_state__pack(&vs, buf);
	sd_start(&s, 0x02);
	sd_load(&s, buf, n);
	sd_rd(&s, 0, V_STATUS, 4);
	sd_blk_hdr(&s, 0x4000, 0, 0);
	{
		const struct sd_desc d[] = {
			{ 0x4000, 16, VF_NEXT, 1 },
			{ 0x5000, 513, VF_WRITE, 0 },
		};
		sd_descs(&s, VQ_DESC, d, 2);
	}
	{
		uint8_t b[6] = { 0, 0, 2, 0, 0, 0 };

		sd_mem(&s, VQ_AVAIL, b, sizeof(b));
	}
	sd_notify(&s, 0);
	sd_save_load(&s);
	sd_write_file("virtio-blk", "load-state", &s);
	vs.device_id = 4;
	n = virtio_state__pack(&vs, buf);
	sd_start(&s, 0);
	sd_load(&s, buf, n);
	sd_notify(&s, 0);
	sd_write_file("virtio-rng", "load-state", &s);
}

static void sd_virtio_blk(void)
{
	sd_virtio_blk_read();
	sd_virtio_blk_write();
	sd_virtio_blk_indirect();
	sd_virtio_load_state();
}

static void sd_virtio_rng(void)
{
	static const uint16_t head0[] = { 0 };
	struct sd s;

	sd_start(&s, 0);
	sd_virtio_init(&s, 0);
	{
		const struct sd_desc d[] = {
			{ 0x5000, 64, VF_WRITE | VF_NEXT, 1 },
			{ 0x5100, 4096, VF_WRITE, 0 },
		};
		sd_descs(&s, VQ_DESC, d, 2);
	}
	sd_avail(&s, head0, 1, false);
	sd_save_load(&s);
	sd_write_file("virtio-rng", "entropy", &s);
}

/* ---- frames (dispatch harnesses) ------------------------------------------ */

/* A frame with its type spelled out (0xf0 escape, then the u16 type). */
static void sd_frame(struct sd *s, uint16_t type, const uint8_t *fd_kinds,
		     unsigned nfds, const ProtobufCMessage *pb)
{
	uint8_t buf[4096];
	size_t n = pb ? protobuf_c_message_pack(pb, buf) : 0;

	sd_u8(s, 0xf0);
	sd_le(s, type, 2);
	sd_u8(s, (uint8_t)nfds);
	for (unsigned i = 0; i < nfds; i++)
		sd_u8(s, fd_kinds[i]);
	sd_le(s, n, 2);
	sd_put(s, buf, n);
}

/* A seed of the lead byte and one frame, written as target's seed-name. */
static void sd_frame_seed(struct sd *s, const char *target, const char *name,
			  uint8_t lead, uint16_t type, const uint8_t *fd_kinds,
			  unsigned nfds, const ProtobufCMessage *pb)
{
	sd_start(s, lead);
	sd_frame(s, type, fd_kinds, nfds, pb);
	sd_write_file(target, name, s);
}

/* The devhost's bootstrap (selector 3 * device + 0): uart 0,
 * debug-exit 1. */
static void sd_devhost_init(void)
{
	DevInit di = DEV_INIT__INIT;
	const uint8_t fk[] = { FZ_FD_SOCKET, FZ_FD_RING, FZ_FD_PIPE,
			       FZ_FD_DEVNULL };
	struct sd s;

	di.kind = "uart";
	di.nbackend_fds = 2;
	sd_frame_seed(&s, "dispatch-devhost", "init-uart", 0, MSG_DEV_INIT, fk,
		      4, &di.base);

	di.kind = "debug-exit";
	di.nbackend_fds = 0;
	di.debug = 0;
	sd_frame_seed(&s, "dispatch-devhost", "init-debugexit", 3, MSG_DEV_INIT,
		      fk, 2, &di.base);
}

/* The devhost's bootstrap for virtio-blk (device 2): guest RAM, a
 * region, an IRQ and a read-only disk. */
static void sd_devhost_init_vblk(void)
{
	DevInit di = DEV_INIT__INIT;
	DevRegion rg = DEV_REGION__INIT, *rgp = &rg;
	uint32_t irq = 5;
	const uint8_t fk[] = { FZ_FD_SOCKET, FZ_FD_RING, FZ_FD_MEMFD,
			       FZ_FD_DEVNULL };
	struct sd s;

	di.kind = "virtio-blk";
	di.has_ram = true;
	di.nbackend_fds = 1;
	di.readonly = true;
	di.serial = "disk-0";
	rg.space = 1;
	rg.addr = 0xd0001000;
	rg.len = 0x200;
	di.n_regions = 1;
	di.regions = &rgp;
	di.n_irqs = 1;
	di.irqs = &irq;
	sd_frame_seed(&s, "dispatch-devhost", "init-virtio-blk", 6,
		      MSG_DEV_INIT, fk, 4, &di.base);
}

/* The devhost registering (3 * device + 1). */
static void sd_devhost_registered(void)
{
	DevRegistered ok = DEV_REGISTERED__INIT;
	const uint8_t fk[] = { FZ_FD_EVENTFD, FZ_FD_EVENTFD,
			       FZ_FD_EVENTFD };
	struct sd s;

	ok.nirqfds = 1;
	sd_frame_seed(&s, "dispatch-devhost", "registered-uart", 1,
		      MSG_DEV_REGISTERED, fk, 1, &ok.base);

	ok.ndoorbells = 1;
	sd_frame_seed(&s, "dispatch-devhost", "registered-virtio-blk", 7,
		      MSG_DEV_REGISTERED, fk, 3, &ok.base);
}

/* The devhost running (3 * device + 2): every notification, then
 * destruct. */
static void sd_devhost_running(void)
{
	static const DevNotify__Event ev[] = {
		DEV_NOTIFY__EVENT__POWER_ON, DEV_NOTIFY__EVENT__SUSPEND,
		DEV_NOTIFY__EVENT__RESUME, DEV_NOTIFY__EVENT__RESET,
		DEV_NOTIFY__EVENT__POWER_OFF,
	};
	struct sd s;

	for (unsigned dev = 0; dev < 3; dev += 2) {
		DevDestruct dd = DEV_DESTRUCT__INIT;

		sd_start(&s, (uint8_t)(3 * dev + 2));
		for (unsigned i = 0; i < 5; i++) {
			DevNotify n = DEV_NOTIFY__INIT;

			n.event = ev[i];
			n.seq = i + 1;
			sd_frame(&s, MSG_DEV_NOTIFY, NULL, 0, &n.base);
		}
		sd_frame(&s, MSG_DEV_DESTRUCT, NULL, 0, &dd.base);
		sd_write_file("dispatch-devhost",
			      dev ? "running-virtio-blk" : "running-uart", &s);
	}
}

static void sd_devhost(void)
{
	sd_devhost_init();
	sd_devhost_init_vblk();
	sd_devhost_registered();
	sd_devhost_running();
}

/* The worker's init phase: WorkerInit with a uart and a debug-exit, with
 * and without an initrd. */
static void sd_worker_init(void)
{
	WorkerInit wi = WORKER_INIT__INIT;
	DeviceSpec ds[2] = { DEVICE_SPEC__INIT, DEVICE_SPEC__INIT };
	DeviceSpec *dsp[2] = { &ds[0], &ds[1] };
	RegionSpec rs[2] = { REGION_SPEC__INIT, REGION_SPEC__INIT };
	RegionSpec *rsp[2] = { &rs[0], &rs[1] };
	uint32_t irq = 4;
	const uint8_t fk[] = { FZ_FD_DEVNULL, FZ_FD_MEMFD, FZ_FD_PIPE,
			       FZ_FD_SOCKET, FZ_FD_RING, FZ_FD_SOCKET,
			       FZ_FD_RING, FZ_FD_PIPE };
	const uint8_t fk2[] = { FZ_FD_DEVNULL, FZ_FD_MEMFD, FZ_FD_PIPE,
				FZ_FD_PIPE, FZ_FD_SOCKET, FZ_FD_RING,
				FZ_FD_SOCKET, FZ_FD_RING };
	struct sd s;

	wi.mem_size = 64 << 20;
	wi.cpus = 2;
	wi.cmdline = "console=ttyS0";
	ds[0].kind = "uart";
	rs[0].addr = 0x3f8;
	rs[0].len = 8;
	ds[0].n_regions = 1;
	ds[0].regions = &rsp[0];
	ds[0].n_irqs = 1;
	ds[0].irqs = &irq;
	ds[1].kind = "debug-exit";
	rs[1].addr = 0xf4;
	rs[1].len = 1;
	ds[1].n_regions = 1;
	ds[1].regions = &rsp[1];
	ds[1].may_request_exit = true;
	wi.n_devices = 2;
	wi.devices = dsp;
	sd_frame_seed(&s, "dispatch-worker", "init", 0, MSG_WORKER_INIT, fk, 7,
		      &wi.base);
	wi.has_initrd = true;
	sd_frame_seed(&s, "dispatch-worker", "init-initrd", 0, MSG_WORKER_INIT,
		      fk2, 8, &wi.base);
}

/* The worker's registering phase: DevRegister from a uart, a debug-exit
 * and a virtio-blk (with a doorbell and a level-triggered IRQ). */
static void sd_worker_register(void)
{
	DevRegister reg = DEV_REGISTER__INIT;
	DevRegion rg = DEV_REGION__INIT, *rgp = &rg;
	DevDoorbell db = DEV_DOORBELL__INIT, *dbp = &db;
	uint32_t irq = 4, level = 1;
	struct sd s;

	reg.kind = "uart";
	rg.addr = 0x3f8;
	rg.len = 8;
	reg.n_regions = 1;
	reg.regions = &rgp;
	reg.n_irqs = 1;
	reg.irqs = &irq;
	sd_frame_seed(&s, "dispatch-worker", "register-uart", 1,
		      MSG_DEV_REGISTER, NULL, 0, &reg.base);

	reg.kind = "debug-exit";
	rg.addr = 0xf4;
	rg.len = 1;
	reg.n_irqs = 0;
	sd_frame_seed(&s, "dispatch-worker", "register-debugexit", 1 + 4,
		      MSG_DEV_REGISTER, NULL, 0, &reg.base);

	reg.kind = "virtio-blk";
	rg.space = 1;
	rg.addr = 0xd0000000;
	rg.len = 0x200;
	irq = 5;
	reg.n_irqs = 1;
	reg.n_irq_flags = 1;
	reg.irq_flags = &level;
	db.off = 0x50;
	db.len = 4;
	reg.n_doorbells = 1;
	reg.doorbells = &dbp;
	sd_frame_seed(&s, "dispatch-worker", "register-virtio-blk", 1 + 8,
		      MSG_DEV_REGISTER, NULL, 0, &reg.base);
}

/* The broker's channel while running: every VmControl, VmStats, a live
 * VmSave. */
static void sd_worker_broker(void)
{
	VmStatsReq sr = VM_STATS_REQ__INIT;
	VmSave sv = VM_SAVE__INIT;
	const uint8_t fk[] = { FZ_FD_PIPE };
	struct sd s;

	sd_start(&s, 2);
	for (unsigned op = 0; op < 4; op++) {
		VmControl vc = VM_CONTROL__INIT;

		vc.op = (VmControl__Op)op;
		vc.seq = op + 1;
		sd_frame(&s, MSG_VM_CONTROL, NULL, 0, &vc.base);
	}
	sr.seq = 9;
	sd_frame(&s, MSG_VM_STATS, NULL, 0, &sr.base);
	sv.seq = 10;
	sv.live = true;
	sv.max_downtime_ms = 300;
	sd_frame(&s, MSG_VM_SAVE, fk, 1, &sv.base);
	sd_write_file("dispatch-worker", "broker-running", &s);
}

/* A device's channel while running: what a uart, a debug-exit and an
 * i8042 send. */
static void sd_worker_devices(void)
{
	DevNotifyDone nd = DEV_NOTIFY_DONE__INIT;
	DevGuestExit ge = DEV_GUEST_EXIT__INIT;
	DevDestructDone dd = DEV_DESTRUCT_DONE__INIT;
	DevRequestReset rr = DEV_REQUEST_RESET__INIT;
	DevRequestPowerOff po = DEV_REQUEST_POWER_OFF__INIT;
	struct sd s;

	nd.event = DEV_NOTIFY__EVENT__POWER_ON;
	nd.seq = 1;
	sd_start(&s, 3);
	sd_frame(&s, MSG_DEV_NOTIFY_DONE, NULL, 0, &nd.base);
	sd_frame(&s, MSG_DEV_DESTRUCT_DONE, NULL, 0, &dd.base);
	sd_write_file("dispatch-worker", "uart-running", &s);

	ge.code = 3;
	sd_start(&s, 3 + 4);
	sd_frame(&s, MSG_DEV_NOTIFY_DONE, NULL, 0, &nd.base);
	sd_frame(&s, MSG_DEV_GUEST_EXIT, NULL, 0, &ge.base);
	sd_frame(&s, MSG_DEV_DESTRUCT_DONE, NULL, 0, &dd.base);
	sd_write_file("dispatch-worker", "debugexit-running", &s);

	sd_start(&s, 3 + 12);
	sd_frame(&s, MSG_DEV_REQUEST_RESET, NULL, 0, &rr.base);
	sd_frame(&s, MSG_DEV_REQUEST_POWEROFF, NULL, 0, &po.base);
	sd_frame(&s, MSG_DEV_NOTIFY_DONE, NULL, 0, &nd.base);
	sd_write_file("dispatch-worker", "i8042-running", &s);
}

/* The worker (tests/fuzz/tap-worker.c): selector = phase + 4 * kind, with
 * phases init, registering, broker running, device running and kinds
 * uart, debug-exit, virtio-blk, i8042. */
static void sd_worker(void)
{
	sd_worker_init();
	sd_worker_register();
	sd_worker_broker();
	sd_worker_devices();
}

/* The broker's table for what a worker sends (tests/fuzz/fz-brkvm.c). */
static void sd_broker(void)
{
	WorkerReady wr = WORKER_READY__INIT;
	VmStateChanged sc = VM_STATE_CHANGED__INIT;
	VmControlReply cr = VM_CONTROL_REPLY__INIT;
	VmStats st = VM_STATS__INIT;
	VmRuntimeError re = VM_RUNTIME_ERROR__INIT;
	VmExited ex = VM_EXITED__INIT;
	ExitCounter c[2] = { EXIT_COUNTER__INIT, EXIT_COUNTER__INIT };
	ExitCounter *cp[2] = { &c[0], &c[1] };
	struct sd s;

	wr.vcpus = 1;
	wr.image_kind = "multiboot";
	sc.old_state = "POWERING_ON";
	sc.new_state = "RUNNING";
	cr.seq = 1;
	cr.status = -95;
	cr.message = "not supported";
	cr.state = "RUNNING";
	st.seq = 2;
	st.state = "RUNNING";
	re.flags = 2;
	re.error_id = "device-died";
	re.message = "device uart#0 exited or was killed";
	ex.reason = VM_EXITED__REASON__DEBUG_EXIT;
	ex.code = 7;
	c[0].name = "exits";
	c[0].value = 1000;
	c[1].name = "accesses:uart#0";
	c[1].value = 999;
	ex.n_counters = 2;
	ex.counters = cp;
	sd_start(&s, 0);
	sd_frame(&s, MSG_WORKER_READY, NULL, 0, &wr.base);
	sd_frame(&s, MSG_VM_STATE, NULL, 0, &sc.base);
	sd_frame(&s, MSG_VM_CONTROL_REPLY, NULL, 0, &cr.base);
	sd_frame(&s, MSG_VM_STATS_REPLY, NULL, 0, &st.base);
	sd_frame(&s, MSG_VM_RUNTIME_ERROR, NULL, 0, &re.base);
	sd_frame(&s, MSG_VM_EXITED, NULL, 0, &ex.base);
	sd_write_file("dispatch-broker", "worker-life", &s);
}

/* The control protocol (tests/fuzz/tap-daemon.c): selector = phase + 3 *
 * who, phases hello, ready, console, who root or uid 1000. */
static void sd_control(void)
{
	Hello h = HELLO__INIT;
	CreateVm cv = CREATE_VM__INIT;
	DeviceReq dnull = DEVICE_REQ__INIT, *devp[1] = { &dnull };
	StatusReq sr = STATUS_REQ__INIT;
	ListReq lr = LIST_REQ__INIT;
	StatsReq st = STATS_REQ__INIT;
	ConsoleAttach ca = CONSOLE_ATTACH__INIT;
	ConsoleData cd = CONSOLE_DATA__INIT;
	ConsoleDetach cdt = CONSOLE_DETACH__INIT;
	VmRef ref = VM_REF__INIT;
	static const uint16_t verbs[] = {
		MSG_CTL_START, MSG_CTL_PAUSE, MSG_CTL_RESUME, MSG_CTL_RESET,
		MSG_CTL_POWEROFF, MSG_CTL_DESTROY,
	};
	const uint8_t img[] = { FZ_FD_MEMFD, FZ_FD_MEMFD, FZ_FD_MEMFD };
	struct sd s;

	ref.name = "vm1";
	h.version = BRK_PROTO_VERSION;
	h.client = "bulkhead";
	cv.name = "vm1";
	cv.mem_size = 64 << 20;
	cv.cpus = 1;
	cv.cmdline = "console=ttyS0";
	cv.serial = SERIAL_MODE__SERIAL_NULL;
	cv.image_label = "hello.elf";
	sr.name = "vm1";
	st.name = "vm1";
	ca.name = "vm1";
	for (unsigned who = 0; who < 2; who++) {
		sd_start(&s, (uint8_t)(3 * who));
		sd_frame(&s, MSG_HELLO, NULL, 0, &h.base);
		sd_frame(&s, MSG_CTL_CREATE, img, 1, &cv.base);
		sd_frame(&s, MSG_CTL_STATUS, NULL, 0, &sr.base);
		sd_frame(&s, MSG_CTL_LIST, NULL, 0, &lr.base);
		sd_frame(&s, MSG_CTL_STATS, NULL, 0, &st.base);
		for (unsigned i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
			sd_frame(&s, verbs[i], NULL, 0, &ref.base);
		sd_write_file("control", who ? "user-session" : "root-session",
			      &s);
	}
	cv.has_initrd = true;
	cv.serial = SERIAL_MODE__SERIAL_FILE;
	dnull.kind = "null";
	cv.n_devices = 1;
	cv.devices = devp;
	sd_start(&s, 1 + 3);
	sd_frame(&s, MSG_CTL_CREATE, img, 3, &cv.base);
	sd_frame(&s, MSG_CTL_CONSOLE_ATTACH, NULL, 0, &ca.base);
	cd.data.data = (uint8_t *)"ls\r";
	cd.data.len = 3;
	sd_frame(&s, MSG_CTL_CONSOLE_INPUT, NULL, 0, &cd.base);
	sd_frame(&s, MSG_CTL_CONSOLE_DETACH, NULL, 0, &cdt.base);
	sd_write_file("control", "create-console", &s);
	sd_start(&s, 2);
	sd_frame(&s, MSG_CTL_CONSOLE_INPUT, NULL, 0, &cd.base);
	sd_frame(&s, MSG_CTL_CONSOLE_DETACH, NULL, 0, &cdt.base);
	sd_write_file("control", "console", &s);
}

/* ---- the IPC frame decoder ------------------------------------------------ */

static void sd_ipc_one(const char *name, uint8_t flags, uint16_t type,
		       const ProtobufCMessage *pb)
{
	uint8_t buf[4096];
	size_t n = pb ? protobuf_c_message_pack(pb, buf) : 0;
	struct sd s;

	sd_start(&s, flags);
	sd_le(&s, n, 4);
	sd_le(&s, type, 2);
	sd_put(&s, buf, n);
	sd_write_file("ipc-frame", name, &s);
}

static void sd_ipc(void)
{
	{
		DevInit di = DEV_INIT__INIT;

		di.kind = "uart";
		di.nbackend_fds = 2;
		sd_ipc_one("dev-init-4fds", 4, MSG_DEV_INIT, &di.base);
		sd_ipc_one("dev-init-17fds", 17, MSG_DEV_INIT, &di.base);
		sd_ipc_one("dev-init-passcred", 0x22, MSG_DEV_INIT, &di.base);
	}
	{
		WorkerInit wi = WORKER_INIT__INIT;
		DeviceSpec ds = DEVICE_SPEC__INIT, *dsp = &ds;
		RegionSpec rs = REGION_SPEC__INIT, *rsp = &rs;
		uint32_t irq = 4;

		wi.mem_size = 64 << 20;
		wi.cpus = 2;
		wi.cmdline = "console=ttyS0";
		ds.kind = "uart";
		rs.addr = 0x3f8;
		rs.len = 8;
		ds.n_regions = 1;
		ds.regions = &rsp;
		ds.n_irqs = 1;
		ds.irqs = &irq;
		wi.n_devices = 1;
		wi.devices = &dsp;
		sd_ipc_one("worker-init", 5, MSG_WORKER_INIT, &wi.base);
		sd_ipc_one("worker-init-raw", 0x45, MSG_WORKER_INIT, &wi.base);
	}
	{
		VmExited ex = VM_EXITED__INIT;
		ExitCounter c = EXIT_COUNTER__INIT, *cp = &c;

		ex.reason = VM_EXITED__REASON__VM_ERROR;
		ex.error_id = "device-died";
		ex.message = "device uart#0 exited or was killed";
		c.name = "exits";
		c.value = 12345;
		ex.n_counters = 1;
		ex.counters = &cp;
		sd_ipc_one("vm-exited", 0, MSG_VM_EXITED, &ex.base);
	}
	{
		Hello h = HELLO__INIT;

		h.version = 1;
		h.client = "bulkhead";
		sd_ipc_one("hello", 0, MSG_HELLO, &h.base);
		sd_ipc_one("hello-oversized", 0x80, MSG_HELLO, &h.base);
	}
	sd_ipc_one("empty-type-0100", 0, 0x0100, NULL);
	sd_ipc_one("empty-type-0102", 0, 0x0102, NULL);
	sd_ipc_one("empty-type-0104", 1, 0x0104, NULL);
}

/* ---- the image loaders ------------------------------------------------------ */

static void sd_loader_file(const char *name, uint8_t flags,
			   const char *initrd, const char *cmdline,
			   const uint8_t *img, size_t n)
{
	struct sd s;

	sd_start(&s, flags);
	if (flags & 1) {
		sd_le(&s, strlen(initrd), 2);
		sd_put(&s, initrd, strlen(initrd));
	}
	if (flags & 2) {
		sd_le(&s, strlen(cmdline), 2);
		sd_put(&s, cmdline, strlen(cmdline));
	}
	sd_put(&s, img, n);
	sd_write_file("loader", name, &s);
}

/*
 * A minimal multiboot ELF of one class (W is 32 or 64): the header, one
 * PT_LOAD at 1 MiB of memsz bytes, the multiboot header with flags mbf at
 * mb_off (in the first 8 KiB), the entry point on it.
 */
#define SD_DEFINE_ELF(name, W, machine, mb_off, memsz, mbf)		\
static size_t name(uint8_t *b)						\
{									\
	Elf##W##_Ehdr *e = (Elf##W##_Ehdr *)b;				\
	Elf##W##_Phdr *p = (Elf##W##_Phdr *)(b + sizeof(*e));		\
	uint32_t *mb = (uint32_t *)(b + (mb_off));			\
	size_t n = 0x100;						\
									\
	memset(b, 0, n);						\
	memcpy(e->e_ident, ELFMAG, SELFMAG);				\
	e->e_ident[EI_CLASS] = ELFCLASS##W;				\
	e->e_ident[EI_DATA] = ELFDATA2LSB;				\
	e->e_ident[EI_VERSION] = EV_CURRENT;				\
	e->e_type = ET_EXEC;						\
	e->e_machine = (machine);					\
	e->e_version = EV_CURRENT;					\
	e->e_entry = 0x100000 + (mb_off);				\
	e->e_phoff = sizeof(*e);					\
	e->e_ehsize = sizeof(*e);					\
	e->e_phentsize = sizeof(*p);					\
	e->e_phnum = 1;							\
	p->p_type = PT_LOAD;						\
	p->p_offset = 0;						\
	p->p_vaddr = p->p_paddr = 0x100000;				\
	p->p_filesz = (__typeof__(p->p_filesz))n;			\
	p->p_memsz = (memsz);						\
	p->p_flags = PF_R | PF_X;					\
	mb[0] = 0x1BADB002u;						\
	mb[1] = (mbf);							\
	mb[2] = (uint32_t)-(0x1BADB002u + (mbf));			\
	return n;							\
}

SD_DEFINE_ELF(sd_elf32, 32, EM_386, 0x80, 0x3000, 0x3)
SD_DEFINE_ELF(sd_elf64, 64, EM_X86_64, 0xc0, 0x2000, 0x2)

/* The a.out kludge: a flat image with the address fields (flag 16). */
static size_t sd_aout(uint8_t *b)
{
	uint32_t *mb = (uint32_t *)(b + 0x10);
	const uint32_t flags = (1u << 16) | 0x3;
	size_t n = 0x200;

	memset(b, 0x90, n);
	mb[0] = 0x1BADB002u;
	mb[1] = flags;
	mb[2] = (uint32_t)-(0x1BADB002u + flags);
	mb[3] = 0x100010;              /* header_addr */
	mb[4] = 0x100000;              /* load_addr */
	mb[5] = 0x100200;              /* load_end_addr */
	mb[6] = 0x104000;              /* bss_end_addr */
	mb[7] = 0x100100;              /* entry_addr */
	return n;
}

static void sd_loader_guest(const char *dir, const char *file,
			    const char *name, uint8_t flags)
{
	static uint8_t img[SD_MAX - 4096];
	char path[4096];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "fuzz-mkseeds: no %s; skipped\n", path);
		return;
	}
	n = fread(img, 1, sizeof(img), f);
	fclose(f);
	sd_loader_file(name, flags, "INITRD-CONTENTS", "console=ttyS0 quiet",
		       img, n);
}

static void sd_loader(const char *guests)
{
	uint8_t img[0x400];
	size_t n;

	n = sd_elf32(img);
	sd_loader_file("elf32", 0, NULL, NULL, img, n);
	sd_loader_file("elf32-initrd-cmdline", 3, "initrd!", "a=b c", img, n);
	n = sd_elf64(img);
	sd_loader_file("elf64", 0x4, NULL, NULL, img, n);
	n = sd_aout(img);
	sd_loader_file("aout-kludge", 1, "x", NULL, img, n);
	memset(img, 0xf4, 512);
	img[510] = 0x55;
	img[511] = 0xaa;
	sd_loader_file("raw", 0, NULL, NULL, img, 512);
	sd_loader_file("raw-cmdline", 2, NULL, "refused", img, 512);
	if (guests) {
		sd_loader_guest(guests, "hello.elf", "hello-elf", 0);
		sd_loader_guest(guests, "bootsect.bin", "bootsect", 0);
		sd_loader_guest(guests, "bzImage", "bzimage", 0x0b);
		sd_loader_guest(guests, "bzImage", "bzimage-32m", 0x08);
	}
}

/* ---- the saved-state stream ---------------------------------------------- */

static int sd_ssm_write(void *ctx, const void *buf, size_t len)
{
	return ssm_mem_write(ctx, buf, len);
}

/* A stream like a saved VM, into mem: a unit of scalars, one of pages
 * (zero, compressible, not), one with a device's blob and a string. */
static void sd_ssm_stream(struct ssm_mem *mem)
{
	static uint8_t page[SSM_PAGE_SIZE];
	struct ssm_sink sink = { sd_ssm_write, mem };
	struct ssm_writer *w;

	if (ssm_writer_open(&sink, 0, &w) < 0)
		exit(1);
	ssm_unit_begin(w, "cpu", 0, 1, SSM_PASS_FINAL);
	ssm_put_u8(w, 0x12);
	ssm_put_u16(w, 0x3456);
	ssm_put_u32(w, 0x789abcde);
	ssm_put_u64(w, 0x0123456789abcdefull);
	ssm_put_s32(w, -5);
	ssm_put_s64(w, -6);
	ssm_put_bool(w, true);
	ssm_unit_end(w);
	ssm_unit_begin(w, "ram", 0, 1, SSM_PASS_FINAL);
	memset(page, 0, sizeof(page));
	ssm_put_page(w, page);
	memset(page, 0x5a, sizeof(page));
	ssm_put_page(w, page);
	for (size_t i = 0; i < sizeof(page); i++)
		page[i] = (uint8_t)(i * 2654435761u >> 13);
	ssm_put_page(w, page);
	ssm_unit_end(w);
	ssm_unit_begin(w, "dev-uart", 0, 1, SSM_PASS_FINAL);
	ssm_put_str(w, "uart#0");
	ssm_put_blob(w, "\x08\x01\x10\x02", 4);
	ssm_put_bytes(w, page, 100);
	ssm_unit_end(w);
	if (ssm_writer_close(w) < 0)
		exit(1);
}

/* Read mode over that stream: whole reads, then 7-byte reads; scripts
 * that read each unit as written, or skip it. */
static void sd_ssm_read(const struct ssm_mem *mem)
{
	static const uint8_t script[] = {
		0, 1, 2, 3, 4, 5, 6, 11, 13,
		8, 8, 8, 11, 13,
		9, 20, 10, 2, 7, 7, 11,
	};
	static const uint8_t skip[] = { 12, 13, 12, 13, 12 };
	struct sd s;

	sd_start(&s, 0);
	sd_u8(&s, sizeof(script));
	sd_put(&s, script, sizeof(script));
	sd_put(&s, mem->data, mem->len);
	sd_write_file("ssm", "read-vm", &s);
	s.b[0] = 7 << 1;
	sd_write_file("ssm", "read-vm-7", &s);
	sd_start(&s, 3 << 1);
	sd_u8(&s, sizeof(skip));
	sd_put(&s, skip, sizeof(skip));
	sd_put(&s, mem->data, mem->len);
	sd_write_file("ssm", "skip-vm", &s);
}

/* Round trip: two units, a value of every kind. */
static void sd_ssm_roundtrip(void)
{
	struct sd s;

	sd_start(&s, 1);
	sd_u8(&s, 11);                       /* unit 1: 11 values */
	sd_u8(&s, 2);
	sd_put(&s, "cpu", 3);
	sd_u8(&s, 0);
	sd_u8(&s, 1);
	sd_u8(&s, 0); sd_u8(&s, 0xab);
	sd_u8(&s, 1); sd_le(&s, 0x1234, 2);
	sd_u8(&s, 2); sd_le(&s, 0x12345678, 4);
	sd_u8(&s, 3); sd_le(&s, 0x1122334455667788ull, 8);
	sd_u8(&s, 4); sd_le(&s, 0xfffffff0u, 4);
	sd_u8(&s, 5); sd_le(&s, ~0ull, 8);
	sd_u8(&s, 6); sd_u8(&s, 1);
	sd_u8(&s, 7); sd_u8(&s, 5); sd_put(&s, "bytes", 5); sd_u8(&s, 2);
	sd_u8(&s, 8); sd_u8(&s, 1); sd_u8(&s, 0); sd_put(&s, "z", 1);
	sd_u8(&s, 9); sd_u8(&s, 6); sd_put(&s, "string", 6);
	sd_u8(&s, 10); sd_le(&s, 4, 2); sd_put(&s, "blob", 4);
	sd_u8(&s, 2);                        /* unit 2: 2 pages */
	sd_u8(&s, 3);
	sd_put(&s, "ram", 3);
	sd_u8(&s, 1);
	sd_u8(&s, 2);
	sd_u8(&s, 8); sd_u8(&s, 2); sd_u8(&s, 16);
	sd_put(&s, "0123456789abcdef", 16);
	sd_u8(&s, 8); sd_u8(&s, 0); sd_u8(&s, 0); sd_put(&s, "-", 1);
	sd_write_file("ssm", "roundtrip", &s);
}

static void sd_ssm(void)
{
	struct ssm_mem mem = { 0 };

	sd_ssm_stream(&mem);
	sd_ssm_read(&mem);
	free(mem.data);
	sd_ssm_roundtrip();
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: fuzz-mkseeds OUTDIR [GUESTDIR]\n");
		return 2;
	}
	sd_outdir = argv[1];
	mkdir(sd_outdir, 0755);
	sd_uart();
	sd_small_devices();
	sd_rtc();
	sd_i8042();
	sd_virtio_blk();
	sd_virtio_rng();
	sd_devhost();
	sd_worker();
	sd_broker();
	sd_control();
	sd_ipc();
	sd_ssm();
	sd_loader(argc == 3 ? argv[2] : NULL);
	return 0;
}
