/* SPDX-License-Identifier: MIT */
/*
 * benchtool: the few measurements the bench scripts (bench/run-bench.sh)
 * cannot take precisely from a shell. Host-side only; it links nothing of
 * Bulkhead's.
 *
 *   benchtool tsc-hz
 *       The host's TSC rate (Hz), against CLOCK_MONOTONIC_RAW: the median
 *       of five 100 ms measurements. Guests report TSC ticks; KVM runs
 *       them at the host's rate (no TSC scaling on these hosts).
 *
 *   benchtool run [-m PREFIX] [-k] [-q QMP_SOCKET] [-t SECONDS] [-o FILE] -- CMD [ARG...]
 *       Runs CMD with its stdout on a pipe (stdin /dev/null, stderr
 *       inherited), copies that output to FILE, and prints one line:
 *         first_ns=<N> match_ns=<N> exit_ns=<N> status=<S>
 *       times from just before fork to the first complete output line,
 *       to the match, and to the exit (-1 for what did not happen). The
 *       match is the first line starting with PREFIX (-m), or with -q the
 *       moment QEMU's QMP query-status first says "running" (a "paused"
 *       VM, which is how an incoming migration of a stopped one ends, is
 *       sent "cont" first). -k: once matched, SIGTERM CMD (its exit time
 *       is then not the guest's). -t: SIGKILL CMD after that long
 *       (default 120 s), status=timeout. status: the exit status, or
 *       128 + the signal.
 *
 *   benchtool qmp SOCKET COMMAND...
 *       Connects to a QEMU QMP socket (retrying for up to 10 s), leaves
 *       capabilities negotiation mode and runs each COMMAND in turn: a JSON
 *       object, sent as is (its answer must be a "return"), or
 *         @migrate URI  migrate to URI and poll query-migrate every
 *                       millisecond until "completed" (prints
 *                       migrate_ns=<N> from the migrate command to then)
 *                       or "failed" (exit 1)
 *       With -v (first), every answer goes to stderr too.
 *
 * Exit status: 0, 1 on a failure (said on stderr), 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_LINE_MAX 65536

static int64_t bench_now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int bench_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static inline uint64_t bench_rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static int bench_tsc_hz(void)
{
	uint64_t hz[5];

	for (unsigned i = 0; i < 5; i++) {
		int64_t t0 = bench_now_ns(CLOCK_MONOTONIC_RAW);
		uint64_t c0 = bench_rdtsc();
		struct timespec d = { 0, 100000000 };

		nanosleep(&d, NULL);
		int64_t t1 = bench_now_ns(CLOCK_MONOTONIC_RAW);
		uint64_t c1 = bench_rdtsc();
		hz[i] = (uint64_t)((double)(c1 - c0) * 1e9 / (double)(t1 - t0));
	}
	qsort(hz, 5, sizeof(hz[0]), bench_cmp_u64);
	printf("%llu\n", (unsigned long long)hz[2]);
	return 0;
}

/* ---- QMP ------------------------------------------------------------------ */

struct bench_qmp {
	int fd;
	char buf[BENCH_LINE_MAX];
	size_t len;
	int verbose;
};

/* Connect to the QMP socket; retry while it does not exist yet. */
static int bench_qmp_connect(struct bench_qmp *q, const char *path, int tries_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "benchtool: QMP socket path too long: %s\n", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	q->len = 0;
	for (int t = 0;; t++) {
		q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (q->fd < 0)
			return -1;
		if (connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return 0;
		int e = errno;
		close(q->fd);
		q->fd = -1;
		if (t >= tries_ms) {
			if (tries_ms)
				fprintf(stderr, "benchtool: cannot connect to QMP at %s: %s\n", path,
					strerror(e));
			return -1;
		}
		usleep(1000);
	}
}

/* One line from QEMU (events included), without the line end. */
static int bench_qmp_line(struct bench_qmp *q, char *out, size_t outlen)
{
	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);

		if (nl) {
			size_t n = (size_t)(nl - q->buf);
			size_t c = n < outlen - 1 ? n : outlen - 1;

			memcpy(out, q->buf, c);
			out[c] = '\0';
			if (c && out[c - 1] == '\r')
				out[c - 1] = '\0';
			memmove(q->buf, nl + 1, q->len - n - 1);
			q->len -= n + 1;
			return 0;
		}
		if (q->len == sizeof(q->buf)) {
			fprintf(stderr, "benchtool: QMP line too long\n");
			return -1;
		}
		ssize_t r = read(q->fd, q->buf + q->len, sizeof(q->buf) - q->len);
		if (r <= 0) {
			fprintf(stderr, "benchtool: QMP connection closed\n");
			return -1;
		}
		q->len += (size_t)r;
	}
}

/* Send one command and return its answer (events are skipped). */
static int bench_qmp_cmd(struct bench_qmp *q, const char *cmd, char *ans, size_t anslen)
{
	size_t n = strlen(cmd);

	if (write(q->fd, cmd, n) != (ssize_t)n || write(q->fd, "\n", 1) != 1) {
		fprintf(stderr, "benchtool: QMP write: %s\n", strerror(errno));
		return -1;
	}
	for (;;) {
		if (bench_qmp_line(q, ans, anslen) < 0)
			return -1;
		if (strstr(ans, "\"event\""))
			continue;
		if (q->verbose)
			fprintf(stderr, "qmp: %s -> %s\n", cmd, ans);
		if (strstr(ans, "\"error\"")) {
			fprintf(stderr, "benchtool: QMP %s: %s\n", cmd, ans);
			return -1;
		}
		return 0;
	}
}

static int bench_qmp_open(struct bench_qmp *q, const char *path, int tries_ms)
{
	char line[BENCH_LINE_MAX];

	if (bench_qmp_connect(q, path, tries_ms) < 0)
		return -1;
	if (bench_qmp_line(q, line, sizeof(line)) < 0 || !strstr(line, "\"QMP\"")) {
		fprintf(stderr, "benchtool: no QMP greeting on %s\n", path);
		return -1;
	}
	return bench_qmp_cmd(q, "{\"execute\":\"qmp_capabilities\"}", line, sizeof(line));
}

static int bench_qmp_migrate(struct bench_qmp *q, const char *uri)
{
	char cmd[4096], ans[BENCH_LINE_MAX];
	int64_t t0;

	snprintf(cmd, sizeof(cmd),
		 "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"%s\"}}", uri);
	t0 = bench_now_ns(CLOCK_MONOTONIC);
	if (bench_qmp_cmd(q, cmd, ans, sizeof(ans)) < 0)
		return -1;
	for (;;) {
		if (bench_qmp_cmd(q, "{\"execute\":\"query-migrate\"}", ans, sizeof(ans)) < 0)
			return -1;
		if (strstr(ans, "\"status\": \"completed\"") ||
		    strstr(ans, "\"status\":\"completed\""))
			break;
		if (strstr(ans, "\"failed\"") || strstr(ans, "\"cancelled\"")) {
			fprintf(stderr, "benchtool: migration failed: %s\n", ans);
			return -1;
		}
		usleep(1000);
	}
	printf("migrate_ns=%lld\n", (long long)(bench_now_ns(CLOCK_MONOTONIC) - t0));
	return 0;
}

static int bench_qmp_main(int argc, char **argv)
{
	struct bench_qmp q = { .fd = -1 };
	char ans[BENCH_LINE_MAX];
	int i = 0, r = 0;

	if (argc > 0 && strcmp(argv[0], "-v") == 0) {
		q.verbose = 1;
		i++;
	}
	if (argc - i < 2) {
		fprintf(stderr, "usage: benchtool qmp [-v] SOCKET COMMAND...\n");
		return 2;
	}
	if (bench_qmp_open(&q, argv[i], 10000) < 0)
		return 1;
	for (i++; i < argc && r == 0; i++) {
		if (strcmp(argv[i], "@migrate") == 0 && i + 1 < argc)
			r = bench_qmp_migrate(&q, argv[++i]);
		else
			r = bench_qmp_cmd(&q, argv[i], ans, sizeof(ans));
	}
	close(q.fd);
	return r < 0 ? 1 : 0;
}

/* ---- run ------------------------------------------------------------------ */

/* Whether QEMU says it runs; -1 while QMP is not up yet. */
static int bench_qmp_running(struct bench_qmp *q, const char *path)
{
	char ans[BENCH_LINE_MAX];

	if (q->fd < 0) {
		if (access(path, F_OK) != 0 || bench_qmp_open(q, path, 0) < 0) {
			if (q->fd >= 0)
				close(q->fd);
			q->fd = -1;
			return -1;
		}
	}
	if (bench_qmp_cmd(q, "{\"execute\":\"query-status\"}", ans, sizeof(ans)) < 0)
		return -1;
	/* An incoming migration of a stopped VM ends paused: resume it. */
	if (strstr(ans, "\"status\": \"paused\"") &&
	    bench_qmp_cmd(q, "{\"execute\":\"cont\"}", ans, sizeof(ans)) == 0)
		return 0;
	return strstr(ans, "\"status\": \"running\"") != NULL;
}

/* One "run": its options, the command and what was seen of it. */
struct bench_run {
	const char *prefix, *qmp_path;
	int kill_on_match, timeout_s;
	pid_t pid;
	int64_t t0, first, match;    /* ns since t0; -1: not seen */
	struct bench_qmp q;
	FILE *out;                   /* copy of the output, or NULL */
	char line[BENCH_LINE_MAX];   /* the output line being gathered */
	size_t llen;
};

/* The match happened at when: note it, and with -k end the command. */
static void bench_run_matched(struct bench_run *br, int64_t when)
{
	br->match = when;
	if (br->kill_on_match)
		kill(br->pid, SIGTERM);
}

/* Fork CMD with stdin /dev/null and stdout on the pipe; its pid, or -1. */
static pid_t bench_run_spawn(char **cmd, const int pfd[2])
{
	pid_t pid = fork();

	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);

		dup2(nul, 0);
		dup2(pfd[1], 1);
		execvp(cmd[0], cmd);
		fprintf(stderr, "benchtool: cannot run %s: %s\n", cmd[0],
			strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Output read at now, cut into lines: the first line, the prefix match. */
static void bench_run_lines(struct bench_run *br, const char *buf, ssize_t n,
			    int64_t now)
{
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] != '\n') {
			if (br->llen < sizeof(br->line) - 1)
				br->line[br->llen++] = buf[i];
			continue;
		}
		br->line[br->llen] = '\0';
		br->llen = 0;
		if (br->first < 0)
			br->first = now;
		if (br->prefix && br->match < 0 &&
		    strncmp(br->line, br->prefix, strlen(br->prefix)) == 0)
			bench_run_matched(br, now);
	}
}

/* Watch the command's output (and QMP) until it closes; 1 on a timeout. */
static int bench_run_watch(struct bench_run *br, int fd)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t now = bench_now_ns(CLOCK_MONOTONIC);
		int qmp_wait = br->qmp_path && br->match < 0;

		if (now - br->t0 > (int64_t)br->timeout_s * 1000000000) {
			kill(br->pid, SIGKILL);
			return 1;
		}
		if (poll(&p, 1, qmp_wait ? 1 : 100) < 0 && errno != EINTR)
			return 0;
		if (qmp_wait && bench_qmp_running(&br->q, br->qmp_path) == 1)
			bench_run_matched(br, bench_now_ns(CLOCK_MONOTONIC) -
					      br->t0);
		if (!(p.revents & (POLLIN | POLLHUP)))
			continue;
		char buf[4096];
		ssize_t n = read(fd, buf, sizeof(buf));
		now = bench_now_ns(CLOCK_MONOTONIC) - br->t0;
		if (n <= 0)
			return 0;
		if (br->out)
			fwrite(buf, 1, (size_t)n, br->out);
		bench_run_lines(br, buf, n, now);
	}
}

static int bench_run_main(int argc, char **argv)
{
	struct bench_run br = { .timeout_s = 120, .first = -1, .match = -1,
				.q = { .fd = -1 } };
	const char *out_path = NULL;
	int opt, pfd[2], st = 0, timed_out;
	int64_t ended;

	while ((opt = getopt(argc, argv, "+m:kq:t:o:")) != -1) {
		switch (opt) {
		case 'm': br.prefix = optarg; break;
		case 'k': br.kill_on_match = 1; break;
		case 'q': br.qmp_path = optarg; break;
		case 't': br.timeout_s = atoi(optarg); break;
		case 'o': out_path = optarg; break;
		default:
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: benchtool run [-m PREFIX] [-k] [-q QMP] [-t S] [-o FILE] -- CMD...\n");
		return 2;
	}
	if (out_path && !(br.out = fopen(out_path, "w"))) {
		fprintf(stderr, "benchtool: cannot open %s: %s\n", out_path, strerror(errno));
		return 1;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return 1;
	br.t0 = bench_now_ns(CLOCK_MONOTONIC);
	br.pid = bench_run_spawn(argv + optind, pfd);
	if (br.pid < 0)
		return 1;
	close(pfd[1]);
	timed_out = bench_run_watch(&br, pfd[0]);
	close(pfd[0]);
	while (waitpid(br.pid, &st, 0) < 0 && errno == EINTR)
		;
	ended = bench_now_ns(CLOCK_MONOTONIC) - br.t0;
	if (br.q.fd >= 0)
		close(br.q.fd);
	if (br.out)
		fclose(br.out);
	if (timed_out)
		printf("first_ns=%lld match_ns=%lld exit_ns=%lld status=timeout\n",
		       (long long)br.first, (long long)br.match,
		       (long long)ended);
	else
		printf("first_ns=%lld match_ns=%lld exit_ns=%lld status=%d\n",
		       (long long)br.first, (long long)br.match,
		       (long long)ended,
		       WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 2 && strcmp(argv[1], "tsc-hz") == 0)
		return bench_tsc_hz();
	if (argc >= 2 && strcmp(argv[1], "run") == 0)
		return bench_run_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "qmp") == 0)
		return bench_qmp_main(argc - 2, argv + 2);
	fprintf(stderr, "usage: benchtool tsc-hz | run ... | qmp ...\n");
	return 2;
}
