/* SPDX-License-Identifier: MIT */
/*
 * bulkhead-lifecycle: drives a VM's lifecycle from outside, the way the
 * broker does, through the real worker and device processes (it launches
 * them with the broker library and talks to the worker over its channel).
 *
 *   bulkhead-lifecycle stress IMAGE [CYCLES]   count.elf, 2 vCPUs: suspend
 *       and resume CYCLES times (default 1000); after every resume ask the
 *       guest for its count, which must keep rising and never go back
 *   bulkhead-lifecycle latency IMAGE [SAMPLES] spin.elf: how long from a
 *       suspend request until the VM is SUSPENDED while the guest spins
 *       with interrupts off; prints the figures; fails above 100 ms
 *   bulkhead-lifecycle kill IMAGE              echo.elf: SIGKILL the UART
 *       process; the VM must be suspended with a runtime error naming the
 *       device and the signal, and the worker must stay up
 *
 * Exit status 0 when the scenario holds, 1 when it does not, 77 when
 * /dev/kvm is missing.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "broker/launch.h"
#include "ipc/log.h"
#include "kdriver/kd.h"
#include "proto/msgtypes.h"
#include "worker.pb-c.h"

#define LC_TIMEOUT_MS 20000
#define LC_LATENCY_LIMIT_MS 100.0

struct lc {
	struct brk_vm *vm;
	struct ipc_msg *msg;
	int console;           /* our end of the UART's socket */
	char line[256];        /* console bytes not yet ended by a newline */
	size_t line_len;
	char last_line[256];
	bool new_line;
	unsigned rt_errors;
};

__attribute__((format(printf, 1, 2), noreturn))
static void lc_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stdout, "FAIL: ");
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	exit(1);
}

static double lc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void lc_on_rt(struct brk_vm *vm)
{
	struct lc *c = vm->hook_ctx;

	c->rt_errors++;
}

static const struct brk_vm_hooks lc_hooks = {
	.runtime_error = lc_on_rt,
};

/* Serve the worker channel and the console once (up to ms). */
static void lc_pump(struct lc *c, int ms)
{
	struct pollfd p[2] = {
		{ .fd = c->vm->chan.fd, .events = POLLIN },
		{ .fd = c->console, .events = POLLIN },
	};

	if (poll(p, 2, ms) <= 0)
		return;
	if (p[0].revents && brk_vm_worker_recv(c->vm, c->msg) < 0 &&
	    c->vm->chan.fd < 0)
		lc_fail("the worker went away (state %s)", c->vm->state);
	if (p[1].revents) {
		char buf[256];
		ssize_t n = read(c->console, buf, sizeof(buf));

		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n' || c->line_len == sizeof(c->line) - 1) {
				c->line[c->line_len] = '\0';
				memcpy(c->last_line, c->line, c->line_len + 1);
				c->line_len = 0;
				c->new_line = true;
			} else if (buf[i] != '\r') {
				c->line[c->line_len++] = buf[i];
			}
		}
	}
}

static void lc_wait_state(struct lc *c, const char *state)
{
	double t0 = lc_now_ms();

	while (strcmp(c->vm->state, state) != 0) {
		if (lc_now_ms() - t0 > LC_TIMEOUT_MS)
			lc_fail("timed out waiting for state %s (now %s)", state,
				c->vm->state);
		lc_pump(c, 50);
	}
}

/* Wait for a console line starting with prefix; returns it. */
static const char *lc_wait_line(struct lc *c, const char *prefix)
{
	double t0 = lc_now_ms();

	for (;;) {
		if (c->new_line) {
			c->new_line = false;
			if (strncmp(c->last_line, prefix, strlen(prefix)) == 0)
				return c->last_line;
		}
		if (lc_now_ms() - t0 > LC_TIMEOUT_MS)
			lc_fail("timed out waiting for '%s' on the console", prefix);
		lc_pump(c, 50);
	}
}

static void lc_control(struct lc *c, int op, const char *then)
{
	static uint32_t seq;

	if (brk_vm_send_control(c->vm, op, ++seq) < 0)
		lc_fail("cannot reach the worker");
	lc_wait_state(c, then);
}

static void lc_launch(struct lc *c, const char *image, unsigned cpus)
{
	struct brk_vm_config cfg = {
		.mem_size = 64ull << 20, .cpus = cpus, .image_fd = -1,
		.initrd_fd = -1, .serial = BRK_SERIAL_CONSOLE, .serial_out_fd = -1,
		.restore_fd = -1,
	};
	int sv[2], kvm;
	char err[256];

	kvm = kd_sys_open(NULL);
	if (kvm < 0) {
		printf("skipped: cannot open /dev/kvm: %s\n", strerror(-kvm));
		exit(77);
	}
	cfg.image_fd = open(image, O_RDONLY | O_CLOEXEC);
	if (cfg.image_fd < 0)
		lc_fail("cannot open %s: %s", image, strerror(errno));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		lc_fail("socketpair: %s", strerror(errno));
	cfg.console_fd = sv[1];
	c->console = sv[0];
	if (brk_vm_launch(kvm, &cfg, &c->vm, err, sizeof(err)))
		lc_fail("cannot start the VM: %s", err);
	close(sv[1]);
	close(kvm);
	c->vm->hooks = &lc_hooks;
	c->vm->hook_ctx = c;
	c->msg = malloc(sizeof(*c->msg));
	if (!c->msg)
		lc_fail("out of memory");
	lc_wait_state(c, "RUNNING");
}

static void lc_restore_launch(struct lc *c, const char *file, unsigned cpus)
{
	struct brk_vm_config cfg = {
		.mem_size = 64ull << 20, .cpus = cpus, .image_fd = -1,
		.initrd_fd = -1, .serial = BRK_SERIAL_CONSOLE, .serial_out_fd = -1,
		.restore_fd = -1,
	};
	int sv[2], kvm = kd_sys_open(NULL);
	char err[256];

	cfg.restore_fd = open(file, O_RDONLY | O_CLOEXEC);
	if (kvm < 0 || cfg.restore_fd < 0)
		lc_fail("cannot open /dev/kvm or %s", file);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		lc_fail("socketpair: %s", strerror(errno));
	cfg.console_fd = sv[1];
	c->console = sv[0];
	if (brk_vm_launch(kvm, &cfg, &c->vm, err, sizeof(err)))
		lc_fail("cannot start the VM: %s", err);
	close(sv[1]);
	close(kvm);
	close(cfg.restore_fd);
	c->vm->hooks = &lc_hooks;
	c->vm->hook_ctx = c;
	c->msg = malloc(sizeof(*c->msg));
	if (!c->msg)
		lc_fail("out of memory");
	lc_wait_state(c, "RUNNING");
}

/* Power off and wait until every process is gone. */
static void lc_finish(struct lc *c)
{
	double t0 = lc_now_ms();

	brk_vm_send_control(c->vm, 3 /* POWER_OFF */, 0);
	while (!brk_vm_all_reaped(c->vm)) {
		struct pollfd p = { .fd = c->vm->chan.fd, .events = POLLIN };

		if (lc_now_ms() - t0 > LC_TIMEOUT_MS)
			lc_fail("the VM did not go away after power off");
		if (c->vm->chan.fd >= 0 && poll(&p, 1, 20) > 0)
			brk_vm_worker_recv(c->vm, c->msg);
		else
			usleep(20000);
		brk_child_reap(&c->vm->worker);
		for (unsigned i = 0; i < c->vm->ndevs; i++)
			brk_child_reap(&c->vm->devs[i]);
	}
	brk_vm_free(c->vm);
}

static unsigned long long lc_query_count(struct lc *c)
{
	const char *l;

	if (write(c->console, "?", 1) != 1)
		lc_fail("cannot write to the console");
	l = lc_wait_line(c, "count=");
	return strtoull(l + 6, NULL, 10);
}

static int lc_stress(const char *image, unsigned cycles)
{
	struct lc c = { 0 };
	unsigned long long prev, now;
	unsigned requeried = 0;
	double t0;

	lc_launch(&c, image, 2);
	lc_wait_line(&c, "count: ready");
	prev = lc_query_count(&c);
	t0 = lc_now_ms();
	for (unsigned i = 1; i <= cycles; i++) {
		double t1;

		lc_control(&c, 0 /* SUSPEND */, "SUSPENDED");
		lc_control(&c, 1 /* RESUME */, "RUNNING");
		/*
		 * The counting vCPU may not have been scheduled yet when the
		 * other one answers (2 host cores, several busy threads): ask
		 * again until it moves. It must never go back, and it must
		 * move again within a second of every resume.
		 */
		t1 = lc_now_ms();
		for (;;) {
			now = lc_query_count(&c);
			if (now < prev)
				lc_fail("cycle %u: the count went back from %llu "
					"to %llu", i, prev, now);
			if (now > prev)
				break;
			if (lc_now_ms() - t1 > 1000)
				lc_fail("cycle %u: the count stayed at %llu for a "
					"second after the resume", i, now);
			requeried++;
			usleep(1000);
		}
		prev = now;
	}
	printf("stress: %u suspend/resume cycles in %.1f s; the count never "
	       "went back and rose after every resume (last %llu; %u times "
	       "it had to be asked again)\n", cycles,
	       (lc_now_ms() - t0) / 1e3, prev, requeried);
	lc_finish(&c);
	return 0;
}

static int lc_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int lc_latency(const char *image, unsigned samples)
{
	struct lc c = { 0 };
	double ms[256], worst;
	unsigned over = 0;

	if (samples > 256)
		samples = 256;
	lc_launch(&c, image, 1);
	lc_wait_line(&c, "spin: spinning with interrupts off");
	for (unsigned i = 0; i < samples; i++) {
		double t0;

		usleep(20000);  /* let it spin */
		t0 = lc_now_ms();
		lc_control(&c, 0 /* SUSPEND */, "SUSPENDED");
		ms[i] = lc_now_ms() - t0;
		lc_control(&c, 1 /* RESUME */, "RUNNING");
	}
	qsort(ms, samples, sizeof(ms[0]), lc_cmp_double);
	worst = ms[samples - 1];
	for (unsigned i = 0; i < samples; i++)
		over += ms[i] > LC_LATENCY_LIMIT_MS;
	printf("latency: a guest spinning with interrupts off was suspended in "
	       "%.2f ms (median), %.2f ms (fastest), %.2f ms (worst) over %u "
	       "requests; %u above %.0f ms\n", ms[samples / 2], ms[0], worst,
	       samples, over, LC_LATENCY_LIMIT_MS);
	lc_finish(&c);
	/* The median: one request that waited for a busy host CPU is the
	 * host's noise, not the VMM's. */
	if (ms[samples / 2] > LC_LATENCY_LIMIT_MS)
		lc_fail("suspend took %.2f ms (median)", ms[samples / 2]);
	return 0;
}

static int lc_kill(const char *image)
{
	struct lc c = { 0 };
	struct brk_child *uart = NULL;
	char why[300];
	double t0;

	lc_launch(&c, image, 1);
	lc_wait_line(&c, "echo: ready");
	for (unsigned i = 0; i < c.vm->ndevs; i++)
		if (strcmp(c.vm->devs[i].label, "uart#0") == 0)
			uart = &c.vm->devs[i];
	if (!uart)
		lc_fail("no uart#0 among the VM's processes");
	kill(uart->pid, SIGKILL);
	t0 = lc_now_ms();
	while (c.rt_errors == 0 || strcmp(c.vm->state, "SUSPENDED") != 0) {
		if (lc_now_ms() - t0 > LC_TIMEOUT_MS)
			lc_fail("no runtime error and suspend after the kill "
				"(state %s)", c.vm->state);
		lc_pump(&c, 50);
		brk_child_reap(uart);
	}
	while (!uart->reaped) {
		brk_child_reap(uart);
		usleep(10000);
	}
	brk_vm_explain(c.vm, c.vm->rt_id, c.vm->rt_msg, why, sizeof(why));
	printf("kill: VM %s, runtime error '%s' (flags 0x%x): %s\n", c.vm->state,
	       c.vm->rt_id, c.vm->rt_flags, why);
	if (!(c.vm->rt_flags & BRK_RT_SUSPEND))
		lc_fail("the runtime error does not ask for a suspend");
	if (!strstr(why, "uart#0") || !strstr(why, "signal 9"))
		lc_fail("the error does not name the device and the signal");
	/* The worker is still up and answering: resume is refused. */
	if (kill(c.vm->worker.pid, 0) < 0 || brk_child_reap(&c.vm->worker))
		lc_fail("the worker went down with the device");
	brk_vm_send_control(c.vm, 1 /* RESUME */, 77);
	usleep(200000);
	lc_pump(&c, 100);
	if (strcmp(c.vm->state, "SUSPENDED") != 0)
		lc_fail("a VM with a dead device resumed (state %s)", c.vm->state);
	printf("kill: the worker stayed up; resume was refused\n");
	lc_finish(&c);
	return 0;
}

/* Save through the worker's channel directly (VmSave + a pipe), reading
 * the reply ourselves; returns the stream's size. */
static void lc_save(struct lc *c, const char *file, bool live, bool keep)
{
	VmSave req = VM_SAVE__INIT;
	int p[2], out = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool eof = false, replied = false;
	double t0 = lc_now_ms();

	if (out < 0 || pipe2(p, O_CLOEXEC) < 0)
		lc_fail("cannot create %s: %s", file, strerror(errno));
	req.seq = 1;
	req.live = live;
	req.keep_running = keep;
	req.max_downtime_ms = 250;
	if (ipc_send_pb(&c->vm->chan, MSG_VM_SAVE, &req.base, &p[1], 1) < 0)
		lc_fail("cannot send the save request");
	close(p[1]);
	while (!eof || !replied) {
		struct pollfd q[2] = {
			{ .fd = eof ? -1 : p[0], .events = POLLIN },
			{ .fd = c->vm->chan.fd, .events = POLLIN },
		};

		if (lc_now_ms() - t0 > LC_TIMEOUT_MS * 3)
			lc_fail("the save did not finish");
		if (poll(q, 2, 100) <= 0)
			continue;
		if (q[0].revents) {
			char buf[65536];
			ssize_t n = read(p[0], buf, sizeof(buf));

			if (n <= 0)
				eof = true;
			else if (write(out, buf, (size_t)n) != n)
				lc_fail("write %s", file);
		}
		if (q[1].revents) {
			if (ipc_recv(&c->vm->chan, c->msg) < 0)
				lc_fail("the worker went away during the save");
			if (c->msg->type == MSG_VM_SAVE_REPLY) {
				VmSaveReply *rep = ipc_msg_unpack(c->msg,
								  &vm_save_reply__descriptor);

				if (!rep)
					lc_fail("malformed save reply");
				printf("save: status %d (%s), %llu bytes, %u passes, "
				       "%llu pages, downtime %u ms, state %s\n",
				       rep->status, rep->message,
				       (unsigned long long)rep->bytes, rep->passes,
				       (unsigned long long)rep->pages,
				       rep->downtime_ms, rep->state);
				if (rep->status < 0)
					lc_fail("the save failed");
				replied = true;
				vm_save_reply__free_unpacked(rep, NULL);
			} else if (c->msg->type == MSG_VM_STATE) {
				VmStateChanged *ev = ipc_msg_unpack(c->msg,
					&vm_state_changed__descriptor);

				if (ev) {
					snprintf(c->vm->state, sizeof(c->vm->state),
						 "%s", ev->new_state);
					vm_state_changed__free_unpacked(ev, NULL);
				}
			}
			ipc_msg_close_fds(c->msg);
		}
	}
	close(p[0]);
	fsync(out);
	close(out);
}

/* save FILE: count.elf is saved mid-run (live or not), restored from the
 * file into fresh processes, and keeps counting from where it was. */
static int lc_saverestore(const char *image, const char *file, bool live)
{
	struct lc c = { 0 }, d = { 0 };
	unsigned long long before, after;

	lc_launch(&c, image, 2);
	lc_wait_line(&c, "count: ready");
	before = lc_query_count(&c);
	usleep(200000);
	lc_save(&c, file, live, false);
	before = before > 0 ? before : 1;
	lc_finish(&c);
	lc_restore_launch(&d, file, 2);
	after = lc_query_count(&d);
	printf("restore: count %llu before the save, %llu after the restore\n",
	       before, after);
	if (after < before)
		lc_fail("the count went back");
	before = after;
	usleep(100000);
	after = lc_query_count(&d);
	if (after <= before)
		lc_fail("the restored guest does not count");
	lc_finish(&d);
	return 0;
}

int main(int argc, char **argv)
{
	ipc_log_init("bulkhead-lifecycle", IPC_LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 3 && strcmp(argv[1], "stress") == 0)
		return lc_stress(argv[2], argc > 3 ? (unsigned)atoi(argv[3]) : 1000);
	if (argc >= 3 && strcmp(argv[1], "latency") == 0)
		return lc_latency(argv[2], argc > 3 ? (unsigned)atoi(argv[3]) : 20);
	if (argc >= 3 && strcmp(argv[1], "kill") == 0)
		return lc_kill(argv[2]);
	if (argc >= 4 && strcmp(argv[1], "save") == 0)
		return lc_saverestore(argv[2], argv[3], false);
	if (argc >= 4 && strcmp(argv[1], "livesave") == 0)
		return lc_saverestore(argv[2], argv[3], true);
	fprintf(stderr, "usage: bulkhead-lifecycle stress|latency|kill IMAGE [N]\n");
	return 2;
}
