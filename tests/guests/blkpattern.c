/*
 * blkpattern SEED FIRST COUNT: print to stdout the COUNT 512-byte sectors
 * that blk.elf writes from sector FIRST on with seed=SEED (a host tool for
 * tests/integration/test_devices.sh; built into build/tests/bin).
 */
#include <stdio.h>
#include <stdlib.h>

#include "tests/guests/blkpattern.h"

static unsigned long long arg(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	if (!*s || *end) {
		fprintf(stderr, "blkpattern: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: blkpattern SEED FIRST COUNT\n");
		return 2;
	}
	unsigned long long seed = arg(argv[1]), first = arg(argv[2]), count = arg(argv[3]);

	for (unsigned long long s = first; s < first + count; s++)
		for (unsigned w = 0; w < 64; w++) {
			uint64_t v = blk_pattern(seed, s, w);
			for (unsigned b = 0; b < 8; b++)
				putchar((int)(v >> (8 * b)) & 0xff);
		}
	return fflush(stdout) == 0 ? 0 : 1;
}
