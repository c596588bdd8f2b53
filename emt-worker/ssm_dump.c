/* SPDX-License-Identifier: MIT */
/*
 * bulkhead-ssm-dump: list the units of a saved-state stream with their
 * record statistics, and check the whole stream (every CRC, the directory
 * and the footer). A debugging aid; it reads strictly forward, so a pipe
 * works too ("-" is standard input).
 *
 *   bulkhead-ssm-dump [--quiet] FILE
 *
 * Exit status: 0 if the stream is intact, 1 if not, 2 on usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "emt-worker/ssm.h"

static void ssm_dump_usage(FILE *f)
{
	fprintf(f, "usage: bulkhead-ssm-dump [--quiet] FILE\n"
		   "List the units of a Bulkhead saved-state stream and check "
		   "it.\n"
		   "FILE may be - for standard input.\n"
		   "  -q, --quiet   print only errors and the final verdict\n"
		   "  -h, --help    this text\n");
}

static void ssm_dump_pass(uint32_t pass, char *buf, size_t len)
{
	if (pass == SSM_PASS_FINAL)
		snprintf(buf, len, "final");
	else
		snprintf(buf, len, "%" PRIu32, pass);
}

/* What the listing adds up. */
struct ssm_dump_totals {
	uint64_t nunits, nfinal, data;
};

/* Parse the options into *quiet; -1 to go on, else the exit status. */
static int ssm_dump_args(int argc, char **argv, bool *quiet)
{
	static const struct option opts[] = {
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			*quiet = true;
			break;
		case 'h':
			ssm_dump_usage(stdout);
			return 0;
		default:
			ssm_dump_usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		ssm_dump_usage(stderr);
		return 2;
	}
	return -1;
}

/* The stream's header line and the column titles. */
static void ssm_dump_header(const char *path, const struct ssm_stream_info *si)
{
	printf("%s: format %u.%u, flags 0x%" PRIx32
	       "%s, host page size %" PRIu32
	       ", %u-bit host, producer %" PRIu32 "\n",
	       path, si->version_major, si->version_minor, si->flags,
	       si->flags & SSM_F_LIVE_SAVE ? " (live save)" : "",
	       si->page_size, si->host_bits, si->producer);
	printf("%-12s %-24s %8s %8s %6s %8s %8s %8s %6s %12s %12s\n",
	       "offset", "unit", "instance", "version", "pass", "raw",
	       "lzf", "zero", "skip", "stream", "data");
}

/* Skip through every unit, adding up t and (unless quiet) listing each. */
static int ssm_dump_units(struct ssm_reader *r, bool quiet,
			  struct ssm_dump_totals *t)
{
	struct ssm_unit_info ui;
	struct ssm_unit_stats st;
	char pass[16];
	int rc;

	while ((rc = ssm_reader_next_unit(r, &ui)) == 0) {
		rc = ssm_unit_skip(r);
		if (rc < 0)
			break;
		ssm_reader_unit_stats(r, &st);
		t->nunits++;
		t->nfinal += ui.pass == SSM_PASS_FINAL;
		t->data += st.data_bytes;
		if (quiet)
			continue;
		ssm_dump_pass(ui.pass, pass, sizeof(pass));
		printf("0x%010" PRIx64 " %-24s %8" PRIu32 " %8" PRIu32
		       " %6s %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %6" PRIu64
		       " %12" PRIu64 " %12" PRIu64 "\n",
		       ui.offset, ui.name, ui.instance, ui.version, pass,
		       st.records[SSM_REC_RAW], st.records[SSM_REC_RAW_LZF],
		       st.records[SSM_REC_RAW_ZERO], st.skipped,
		       st.stream_bytes, st.data_bytes);
	}
	return rc;
}

int main(int argc, char **argv)
{
	struct ssm_source src = {ssm_fd_read, NULL};
	struct ssm_reader *r = NULL;
	struct ssm_stream_info si;
	struct ssm_dump_totals t = {0};
	const char *path;
	char err[256];
	bool quiet = false;
	int fd, rc, status = 1;

	rc = ssm_dump_args(argc, argv, &quiet);
	if (rc >= 0)
		return rc;
	path = argv[optind];
	if (strcmp(path, "-") == 0) {
		fd = STDIN_FILENO;
	} else {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr,
				"bulkhead-ssm-dump: cannot open '%s': %s\n",
				path, strerror(errno));
			return 1;
		}
	}
	src.ctx = &fd;

	rc = ssm_reader_open(&src, &r, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "bulkhead-ssm-dump: %s: %s\n", path, err);
		goto out_close;
	}
	ssm_reader_info(r, &si);
	if (!quiet)
		ssm_dump_header(path, &si);
	rc = ssm_dump_units(r, quiet, &t);
	if (rc < 0) {
		fprintf(stderr, "bulkhead-ssm-dump: %s: %s\n", path,
			ssm_reader_error(r));
		goto out_close;
	}
	printf("%s: %" PRIu64 " units (%" PRIu64 " final), %" PRIu64
	       " data bytes: intact (every CRC, directory and footer "
	       "checked)\n",
	       path, t.nunits, t.nfinal, t.data);
	status = 0;

out_close:
	ssm_reader_close(r);
	if (fd != STDIN_FILENO)
		close(fd);
	return status;
}
