/* SPDX-License-Identifier: MIT */
/*
 * The image loaders under fuzzing: emt_load_image() on a hostile image,
 * initrd and command line, into guest RAM of a few sizes.
 *
 * Input: one flags byte, then
 *   bit 0      an initrd follows: u16 length, then that many bytes
 *   bit 1      a command line follows: u16 length, then that many bytes
 *              (cut at the first NUL, as a C string is)
 *   bits 2-3   guest RAM: 2 MiB, 4 MiB, 32 MiB, or 1 MiB (too small)
 *   the rest   the image
 *
 * Image, initrd and RAM are exactly sized heap buffers, so a read or
 * write past any of them is caught. Oracle: a load either succeeds with
 * everything inside RAM, or fails with -ENOEXEC, -E2BIG or -EINVAL and a
 * one-line reason.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "emt-worker/loader.h"
#include "tests/fuzz/fuzzlib.h"

static const uint64_t fz_loader_ram_sizes[4] = {
	2ull << 20, 4ull << 20, 32ull << 20, 1ull << 20,
};

/* An exactly sized heap copy (at least one byte, for malloc). */
static uint8_t *fz_loader_copy(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);

	if (!c)
		abort();
	if (n)
		memcpy(c, p, n);
	return c;
}

int fz_loader_run(const uint8_t *data, size_t size)
{
	static uint8_t *ram[4];
	struct emt_load_args a = { 0 };
	struct emt_boot boot;
	const uint8_t *initrd = NULL, *cmdline = NULL, *image;
	size_t initrd_len = 0, cmdline_len = 0, image_len;
	uint8_t *image_copy, *initrd_copy = NULL;
	char *cmdline_copy = NULL;
	char err[256];
	struct fz_in in;
	unsigned ram_sel;
	uint8_t flags;
	int r;

	fz_quiet();
	fz_in_init(&in, data, size);
	flags = fz_u8(&in);
	if (flags & 1)
		initrd_len = fz_bytes(&in, fz_u16(&in), &initrd);
	if (flags & 2)
		cmdline_len = fz_bytes(&in, fz_u16(&in), &cmdline);
	ram_sel = (flags >> 2) & 3;
	image_len = fz_bytes(&in, in.n, &image);

	if (!ram[ram_sel]) {
		/* Contents left from earlier runs do not matter: loaders
		 * only write guest RAM. */
		ram[ram_sel] = calloc(1, fz_loader_ram_sizes[ram_sel]);
		if (!ram[ram_sel])
			abort();
	}
	image_copy = fz_loader_copy(image, image_len);
	a.image = image_copy;
	a.image_len = image_len;
	if (flags & 1) {
		initrd_copy = fz_loader_copy(initrd, initrd_len);
		a.initrd = initrd_copy;
		a.initrd_len = initrd_len;
	}
	if (flags & 2) {
		cmdline_copy = malloc(cmdline_len + 1);
		if (!cmdline_copy)
			abort();
		memcpy(cmdline_copy, cmdline, cmdline_len);
		cmdline_copy[cmdline_len] = '\0';
		a.cmdline = cmdline_copy;
	}
	a.ram = ram[ram_sel];
	a.ram_size = fz_loader_ram_sizes[ram_sel];

	memset(&boot, 0, sizeof(boot));
	memset(err, 0, sizeof(err));
	r = emt_load_image(&a, &boot, err, sizeof(err));
	if (r == 0) {
		FZ_CHECK(boot.image_end <= a.ram_size, "loaded up to 0x%llx of "
			 "0x%llx bytes of RAM", (unsigned long long)boot.image_end,
			 (unsigned long long)a.ram_size);
		FZ_CHECK(boot.kind == emt_detect_image(image_copy, image_len),
			 "loaded as kind %d, detected as %d", boot.kind,
			 emt_detect_image(image_copy, image_len));
	} else {
		FZ_CHECK(r == -ENOEXEC || r == -E2BIG || r == -EINVAL,
			 "load failed with %d", r);
		FZ_CHECK(err[0] && memchr(err, '\0', sizeof(err)) &&
			 !strchr(err, '\n'), "load failed (%d) without a "
			 "one-line reason: '%.*s'", r, (int)sizeof(err), err);
	}
	free(image_copy);
	free(initrd_copy);
	free(cmdline_copy);
	return 0;
}
