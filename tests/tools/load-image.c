/* SPDX-License-Identifier: MIT */
/*
 * load-image: run the worker's image loader (emt_load_image) on a file,
 * outside any VM, and print where it put things. For tests that check how
 * a real kernel is placed (tests/integration/test_linux_debian.sh).
 *
 *   load-image [--mem MIB] [--cmdline STRING] [--initrd FILE] IMAGE
 *
 * Prints "kind=... mode=... rip=0x... rsi=0x... cr3=0x... image_end=0x..."
 * and, for a bzImage, the kernel's and initrd's places, the e820 map and
 * whether the protected-mode kernel in guest RAM matches the file. Exit
 * status: 0 loaded, 8 refused (the loader's message on stderr), 2 usage,
 * 4 a file could not be read, 1 the loaded kernel does not match.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "emt-worker/loader.h"

static int load_image_read(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f)
		return -errno;
	for (;;) {
		if (n == cap) {
			uint8_t *nb = realloc(buf, cap ? cap * 2 : 1 << 20);

			if (!nb) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = nb;
			cap = cap ? cap * 2 : 1 << 20;
		}
		size_t got = fread(buf + n, 1, cap - n, f);

		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	*out = buf;
	*len = n;
	return 0;
}

static uint64_t load_image_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	while (n--)
		v = (v << 8) | p[n];
	return v;
}

static const char *load_image_kind(enum emt_image_kind k)
{
	switch (k) {
	case EMT_IMAGE_MULTIBOOT:
		return "multiboot";
	case EMT_IMAGE_RAW:
		return "raw";
	case EMT_IMAGE_BZIMAGE:
		return "bzImage";
	}
	return "unknown";
}

/* Report a bzImage's placement from boot_params; 0 if the kernel matches. */
static int load_image_bz_report(const uint8_t *ram, const uint8_t *img,
				size_t img_len, const struct emt_boot *b)
{
	const uint8_t *bp = ram + b->rsi;
	unsigned sects = img[0x1f1] ? img[0x1f1] : 4;
	size_t setup_len = (sects + 1) * 512u;
	uint64_t load = b->rip - 0x200;
	unsigned n = bp[0x1e8];
	bool same = memcmp(ram + load, img + setup_len, img_len - setup_len) == 0;

	printf("kernel=0x%" PRIx64 " size=%zu pref_address=0x%" PRIx64
	       " init_size=0x%" PRIx64 "\n", load, img_len - setup_len,
	       load_image_le(bp + 0x258, 8), load_image_le(bp + 0x260, 4));
	printf("protocol=%u.%02u type_of_loader=0x%x loadflags=0x%x\n",
	       bp[0x207], bp[0x206], bp[0x210], bp[0x211]);
	printf("cmdline=0x%" PRIx64 " '%s'\n", load_image_le(bp + 0x228, 4),
	       (const char *)ram + load_image_le(bp + 0x228, 4));
	printf("initrd=0x%" PRIx64 " size=%" PRIu64 "\n",
	       load_image_le(bp + 0x218, 4), load_image_le(bp + 0x21c, 4));
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = bp + 0x2d0 + 20 * i;

		printf("e820: base=0x%" PRIx64 " len=0x%" PRIx64 " type=%u\n",
		       load_image_le(e, 8), load_image_le(e + 8, 8),
		       (unsigned)load_image_le(e + 16, 4));
	}
	printf("kernel bytes: %s\n", same ? "match" : "DIFFER");
	return same ? 0 : 1;
}

int main(int argc, char **argv)
{
	uint64_t mem = 64;
	const char *cmdline = NULL, *initrd_path = NULL, *image_path = NULL;
	uint8_t *img = NULL, *initrd = NULL, *ram;
	size_t img_len = 0, initrd_len = 0;
	struct emt_load_args a;
	struct emt_boot b;
	char err[256];
	int r;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--mem") && i + 1 < argc)
			mem = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--cmdline") && i + 1 < argc)
			cmdline = argv[++i];
		else if (!strcmp(argv[i], "--initrd") && i + 1 < argc)
			initrd_path = argv[++i];
		else if (argv[i][0] != '-' && !image_path)
			image_path = argv[i];
		else
			image_path = NULL, i = argc;
	}
	if (!image_path || mem < 2 || mem > 3072) {
		fprintf(stderr, "usage: load-image [--mem MIB] [--cmdline S] "
			"[--initrd FILE] IMAGE\n");
		return 2;
	}
	r = load_image_read(image_path, &img, &img_len);
	if (r == 0 && initrd_path)
		r = load_image_read(initrd_path, &initrd, &initrd_len);
	if (r < 0) {
		fprintf(stderr, "load-image: cannot read %s: %s\n",
			img ? initrd_path : image_path, strerror(-r));
		return 4;
	}
	ram = mmap(NULL, mem << 20, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED) {
		perror("load-image: mmap");
		return 4;
	}
	a = (struct emt_load_args){
		.image = img, .image_len = img_len,
		.initrd = initrd_path ? initrd : NULL, .initrd_len = initrd_len,
		.cmdline = cmdline, .ram = ram, .ram_size = mem << 20,
	};
	r = emt_load_image(&a, &b, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "load-image: refused: %s\n", err);
		return 8;
	}
	printf("kind=%s mode=%d rip=0x%" PRIx64 " rsi=0x%" PRIx64 " cr3=0x%"
	       PRIx64 " image_end=0x%" PRIx64 "\n", load_image_kind(b.kind),
	       (int)b.mode, b.rip, b.rsi, b.cr3, b.image_end);
	if (b.kind == EMT_IMAGE_BZIMAGE)
		return load_image_bz_report(ram, img, img_len, &b);
	return 0;
}
