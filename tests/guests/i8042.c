/*
 * i8042: probes the 8042 keyboard controller the way a driver does, then
 * resets the machine through it (command 0xfe pulses the output port's
 * bit 0, the CPU reset line) and checks that it booted again. RAM above
 * the image survives a reset, so a marker at 8 MiB tells the two boots
 * apart (as in reset.c; a different marker value).
 *
 *   first boot:  "i8042: controller ok", "i8042: pulsing the reset line",
 *                then 0xfe to port 0x64
 *   second boot: "i8042: controller ok",
 *                "i8042: second boot after the reset line", exit 0
 * Needs --mem of at least 16M. Runs at CPL 0, polling (no interrupts).
 */
#include "lib/guest.h"

#define I8042_DATA 0x60
#define I8042_STATUS 0x64 /* read */
#define I8042_CMD 0x64    /* write */

#define STATUS_OBF 0x01 /* output buffer full: a byte for us at 0x60 */
#define STATUS_IBF 0x02 /* input buffer full: the controller is busy */
#define STATUS_SYS 0x04 /* system flag (set by a passed self test) */

#define CMD_READ_CMDBYTE 0x20
#define CMD_DISABLE_AUX 0xa7
#define CMD_SELF_TEST 0xaa
#define CMD_TEST_KBD 0xab
#define CMD_DISABLE_KBD 0xad
#define CMD_PULSE_RESET 0xfe

#define FLUSH_MAX 64
#define I8042_TIMEOUT_TSC 4000000000ull /* >= 1 s up to 4 GHz */

#define MARKER_ADDR 0x800000ull
#define MARKER 0x3234303869383034ull /* "4080i842" backwards; not reset.c's */

static void fail(void) __attribute__((noreturn));
static void fail(void)
{
	debug_exit(GUEST_EXIT_FAIL);
}

static void send_cmd(uint8_t cmd)
{
	uint64_t t0 = rdtsc();

	while (inb(I8042_STATUS) & STATUS_IBF) {
		if (rdtsc() - t0 > I8042_TIMEOUT_TSC) {
			kprintf("i8042: FAIL input buffer stays full before command 0x%02x\n", cmd);
			fail();
		}
	}
	outb(I8042_CMD, cmd);
}

/* The controller's answer to cmd, or -1 if none came in time. */
static int read_reply(void)
{
	uint64_t t0 = rdtsc();

	while (!(inb(I8042_STATUS) & STATUS_OBF)) {
		if (rdtsc() - t0 > I8042_TIMEOUT_TSC)
			return -1;
	}
	return inb(I8042_DATA);
}

static uint8_t command(uint8_t cmd, const char *what)
{
	send_cmd(cmd);
	int r = read_reply();
	if (r < 0) {
		kprintf("i8042: FAIL no reply to %s (0x%02x)\n", what, cmd);
		fail();
	}
	return (uint8_t)r;
}

static void probe(void)
{
	uint8_t st = inb(I8042_STATUS);

	if (st == 0xff) {
		kprintf("i8042: FAIL no controller (status port reads 0xff)\n");
		fail();
	}
	send_cmd(CMD_DISABLE_KBD);
	send_cmd(CMD_DISABLE_AUX);

	unsigned flushed = 0;
	while (inb(I8042_STATUS) & STATUS_OBF) {
		(void)inb(I8042_DATA);
		if (++flushed > FLUSH_MAX) {
			kprintf("i8042: FAIL output buffer never empties\n");
			fail();
		}
	}

	uint8_t r = command(CMD_SELF_TEST, "self test");
	if (r != 0x55) {
		kprintf("i8042: FAIL self test answered 0x%02x, expected 0x55\n", r);
		fail();
	}
	uint8_t cb = command(CMD_READ_CMDBYTE, "read command byte");
	r = command(CMD_TEST_KBD, "keyboard interface test");
	if (r != 0x00) {
		kprintf("i8042: FAIL keyboard interface test answered 0x%02x, expected 0x00\n", r);
		fail();
	}
	kprintf("i8042: status 0x%02x, command byte 0x%02x, %u bytes flushed\n",
		inb(I8042_STATUS), cb, flushed);
	kprintf("i8042: controller ok\n");
}

void guest_main(uint32_t mb_magic, uint32_t mbi_addr)
{
	volatile uint64_t *marker = (volatile uint64_t *)MARKER_ADDR;

	(void)mbi_addr;
	if (mb_magic != MULTIBOOT_BOOTLOADER_MAGIC) {
		kprintf("bad multiboot magic\n");
		debug_exit(GUEST_EXIT_BADARG);
	}
	probe();
	if (*marker == MARKER) {
		*marker = 0;
		kprintf("i8042: second boot after the reset line\n");
		debug_exit(GUEST_EXIT_OK);
	}
	*marker = MARKER;
	kprintf("i8042: pulsing the reset line\n");
	send_cmd(CMD_PULSE_RESET);

	/* The reset should come at once; give it a second. */
	uint64_t t0 = rdtsc();
	while (rdtsc() - t0 < I8042_TIMEOUT_TSC)
		cpu_pause();
	*marker = 0;
	kprintf("i8042: FAIL still running after the reset pulse\n");
	fail();
}
