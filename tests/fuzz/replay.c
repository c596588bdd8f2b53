/* SPDX-License-Identifier: MIT */
/*
 * The replay main: links with one harness (tests/fuzz/fuzz-<target>.c),
 * built with the ordinary compiler, and runs every stored input through
 * LLVMFuzzerTestOneInput, so `make check` catches a regression without a
 * fuzzer. Arguments are files or folders (every regular file inside, in
 * name order).
 *
 *   build/tests/fuzz-replay-uart tests/fuzz/corpus/uart
 *
 * Prints one line per folder; a crash ends the process (with the
 * sanitizers' report when they are built in), so a non-zero exit status or
 * a signal names a failing input: the last "replaying" line printed with
 * -v, or the file bisected by running the files one by one.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzzlib.h"

/* Only some harnesses define it. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static bool replay_verbose;

static int replay_read(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f)
		return -errno;
	for (;;) {
		size_t got;

		if (n == cap) {
			uint8_t *nb;

			cap = cap ? cap * 2 : 4096;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		return -EIO;
	}
	fclose(f);
	*out = buf;
	*len = n;
	return 0;
}

static int replay_file(const char *path)
{
	uint8_t *buf, *exact;
	size_t len;
	int r = replay_read(path, &buf, &len);

	if (r < 0) {
		fprintf(stderr, "fuzz-replay: cannot read '%s': %s\n", path,
			strerror(-r));
		return r;
	}
	if (replay_verbose)
		fprintf(stderr, "replaying %s (%zu bytes)\n", path, len);
	/* An exactly sized copy, as libFuzzer passes it: over-reads show. */
	exact = malloc(len ? len : 1);
	if (!exact) {
		free(buf);
		return -ENOMEM;
	}
	if (len)
		memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

static int replay_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file in dir, in name order. Returns how many, or -errno. */
static int replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int ran = 0, r = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		char **nn;

		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			nn = realloc(names, cap * sizeof(*names));
			if (!nn) {
				r = -ENOMEM;
				goto out;
			}
			names = nn;
		}
		names[n] = strdup(e->d_name);
		if (!names[n]) {
			r = -ENOMEM;
			goto out;
		}
		n++;
	}
	if (n)
		qsort(names, n, sizeof(*names), replay_cmp);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		r = replay_file(path);
		if (r < 0)
			goto out;
		ran++;
	}
	r = ran;
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return r;
}

int main(int argc, char **argv)
{
	int first = 1, total = 0;

	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		replay_verbose = true;
		first = 2;
	}
	if (argc <= first) {
		fprintf(stderr, "usage: %s [-v] FILE|DIR...\n", argv[0]);
		return 2;
	}
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = first; i < argc; i++) {
		struct stat st;
		int r;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "fuzz-replay: cannot open '%s': %s\n",
				argv[i], strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			r = replay_dir(argv[i]);
			if (r < 0) {
				fprintf(stderr, "fuzz-replay: cannot replay '%s': "
					"%s\n", argv[i], strerror(-r));
				return 1;
			}
			printf("%s: %d inputs replayed\n", argv[i], r);
			total += r;
		} else {
			if (replay_file(argv[i]) < 0)
				return 1;
			total++;
		}
	}
	if (first < argc - 1)
		printf("%d inputs replayed\n", total);
	return 0;
}
