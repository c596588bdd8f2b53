/* SPDX-License-Identifier: MIT */
/*
 * bulkhead: the commands that talk to bulkheadd.
 *
 *   bulkhead [--socket PATH] [--json] create NAME [VM options] IMAGE
 *   bulkhead [--socket PATH] [--json] start|pause|resume|reset|poweroff|destroy NAME
 *   bulkhead [--socket PATH] [--json] status NAME | list | stats NAME
 *   bulkhead [--socket PATH] console [--no-replay] NAME
 *   bulkhead [--socket PATH] [--json] save [--keep-running] [--live]
 *            [--max-downtime MS] NAME FILE
 *   bulkhead [--socket PATH] [--json] restore NAME FILE [VM options] [IMAGE]
 *
 * Files (the image, the initrd, a serial output file, a disk) are opened
 * here, with the user's own rights, and passed to the broker as fds: the
 * broker opens no path on a client's behalf. Output is a human-readable
 * table or, with --json, one JSON object on stdout; errors go to stderr
 * (and, with --json, as {"error": ...} to stdout too). Each command is a
 * row of the table in broker/cli.c; its handler is below.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "broker/cli.h"
#include "broker/control.h"
#include "broker/launch.h"
#include "control.pb-c.h"
#include "ipc/log.h"
#include "proto/msgtypes.h"

/* How long the CLI waits for an answer (the broker bounds its own waits). */
#define CLI_REPLY_TIMEOUT_MS 120000
/* Save and restore move a whole guest's RAM: the broker bounds each of
 * their steps, the CLI only guards against a broker that hangs. */
#define CLI_SAVE_TIMEOUT_MS (60 * 60 * 1000)
/* The console's detach key: Ctrl-] as in telnet. */
#define CLI_DETACH_KEY 0x1d
#define CLI_CONSOLE_CHUNK 4096u

struct cli_conn {
	struct ipc_chan ch;
	struct ipc_msg *msg;
	const char *path;
	bool json;
	int timeout_ms;       /* for the answer; 0: CLI_REPLY_TIMEOUT_MS */
};

/* ---- output helpers ----------------------------------------------------- */

/* Strings from the broker (some come from the worker) are printed with
 * control characters replaced, so they cannot drive the terminal. */
static const char *cli_safe(const char *s, char *buf, size_t len)
{
	size_t i = 0;

	if (!s)
		s = "";
	for (; *s && i + 1 < len; s++)
		buf[i++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
	buf[i] = '\0';
	return buf;
}

static void cli_fmt_size(uint64_t v, char *buf, size_t len)
{
	if (v >= (1ull << 30) && v % (1ull << 30) == 0)
		snprintf(buf, len, "%" PRIu64 "G", v >> 30);
	else if (v >= (1ull << 20) && v % (1ull << 20) == 0)
		snprintf(buf, len, "%" PRIu64 "M", v >> 20);
	else if (v >= (1ull << 20))
		snprintf(buf, len, "%.1fM", (double)v / (1 << 20));
	else
		snprintf(buf, len, "%" PRIu64 "K", v >> 10);
}

static void cli_fmt_kb(uint64_t kb, char *buf, size_t len)
{
	if (!kb)
		snprintf(buf, len, "-");
	else if (kb >= 10240)
		snprintf(buf, len, "%.1fM", (double)kb / 1024);
	else
		snprintf(buf, len, "%" PRIu64 "K", kb);
}

static void cli_fmt_uptime(uint64_t ms, char *buf, size_t len)
{
	uint64_t s = ms / 1000;

	if (s >= 86400)
		snprintf(buf, len, "%" PRIu64 "d %02" PRIu64 ":%02" PRIu64
			 ":%02" PRIu64, s / 86400, s / 3600 % 24, s / 60 % 60,
			 s % 60);
	else
		snprintf(buf, len, "%" PRIu64 ":%02" PRIu64 ":%02" PRIu64,
			 s / 3600, s / 60 % 60, s % 60);
}

static void cli_fmt_owner(uint32_t uid, char *buf, size_t len)
{
	struct passwd *pw = getpwuid(uid);

	if (pw)
		snprintf(buf, len, "%s", pw->pw_name);
	else
		snprintf(buf, len, "%u", uid);
}

static const char *cli_serial_name(SerialMode m)
{
	switch (m) {
	case SERIAL_MODE__SERIAL_CONSOLE: return "console";
	case SERIAL_MODE__SERIAL_NULL: return "null";
	case SERIAL_MODE__SERIAL_FILE: return "file";
	default: return "?";
	}
}

static void cli_json_print(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o,
	       JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static struct json_object *cli_json_str_or_null(const char *s)
{
	return s && s[0] ? json_object_new_string(s) : NULL;
}

__attribute__((format(printf, 3, 4)))
static int cli_fail(const struct cli_conn *cc, int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "bulkhead: %s\n", msg);
	if (cc && cc->json) {
		struct json_object *o = json_object_new_object();
		struct json_object *e = json_object_new_object();

		json_object_object_add(e, "message", json_object_new_string(msg));
		json_object_object_add(o, "error", e);
		cli_json_print(o);
	}
	return code;
}

static int cli_fail_errno(const struct cli_conn *cc, int errno_code,
			  const char *message)
{
	char safe[600];

	fprintf(stderr, "bulkhead: %s\n", cli_safe(message, safe, sizeof(safe)));
	if (cc->json) {
		struct json_object *o = json_object_new_object();
		struct json_object *e = json_object_new_object();
		const char *name = strerrorname_np(errno_code);

		json_object_object_add(e, "errno", json_object_new_int(errno_code));
		json_object_object_add(e, "code", cli_json_str_or_null(name));
		json_object_object_add(e, "message", json_object_new_string(message));
		json_object_object_add(o, "error", e);
		cli_json_print(o);
	}
	return CLI_EXIT_REFUSED;
}

/* ---- talking to the broker ---------------------------------------------- */

static int cli_recv(struct cli_conn *cc, int timeout_ms)
{
	struct pollfd p = { .fd = cc->ch.fd, .events = POLLIN };
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return -ETIMEDOUT;
	if (r < 0)
		return -errno;
	return ipc_recv(&cc->ch, cc->msg);
}

static int cli_lost(const struct cli_conn *cc, int r)
{
	if (r == -ETIMEDOUT)
		return cli_fail(cc, CLI_EXIT_NOBROKER, "bulkheadd at %s did not "
				"answer within %d s", cc->path,
				(cc->timeout_ms ? cc->timeout_ms :
				 CLI_REPLY_TIMEOUT_MS) / 1000);
	return cli_fail(cc, CLI_EXIT_NOBROKER, "bulkheadd at %s closed the "
			"connection (%s); its log may say why", cc->path,
			r == -ECONNRESET ? "end of file" : strerror(-r));
}

/*
 * Send a request and wait for its answer of type want, unpacked into
 * *reply. An ErrorReply is printed. Returns 0 or a cli_exit code.
 */
static int cli_call(struct cli_conn *cc, uint16_t type,
		    const ProtobufCMessage *pb, const int *fds, unsigned nfds,
		    uint16_t want, const ProtobufCMessageDescriptor *desc,
		    void **reply)
{
	int r = ipc_send_pb(&cc->ch, type, pb, fds, nfds);

	if (r < 0)
		return cli_lost(cc, r);
	r = cli_recv(cc, cc->timeout_ms ? cc->timeout_ms : CLI_REPLY_TIMEOUT_MS);
	if (r < 0)
		return cli_lost(cc, r);
	ipc_msg_close_fds(cc->msg);
	if (cc->msg->type == MSG_ERROR_REPLY) {
		ErrorReply *er = ipc_msg_unpack(cc->msg, &error_reply__descriptor);

		if (!er)
			return cli_fail(cc, CLI_EXIT_NOBROKER, "bulkheadd sent a "
					"malformed error");
		r = cli_fail_errno(cc, er->errno_code, er->message);
		error_reply__free_unpacked(er, NULL);
		return r;
	}
	if (cc->msg->type != want)
		return cli_fail(cc, CLI_EXIT_NOBROKER, "bulkheadd answered with "
				"message type 0x%04x, expected 0x%04x",
				cc->msg->type, want);
	*reply = ipc_msg_unpack(cc->msg, desc);
	if (!*reply)
		return cli_fail(cc, CLI_EXIT_NOBROKER, "bulkheadd sent a "
				"malformed answer");
	return 0;
}

static int cli_connect(struct cli_conn *cc)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	Hello h = HELLO__INIT;
	HelloReply *hr = NULL;
	int fd, r;

	if (strlen(cc->path) >= sizeof(sa.sun_path))
		return cli_fail(cc, CLI_EXIT_USAGE, "--socket: path too long");
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", cc->path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cli_fail(cc, CLI_EXIT_NOBROKER, "socket: %s",
				strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		if (e == ENOENT || e == ECONNREFUSED)
			return cli_fail(cc, CLI_EXIT_NOBROKER, "cannot reach "
					"bulkheadd at %s: %s (is it running? "
					"start it as root with 'bulkheadd', or "
					"name its socket with --socket PATH or "
					"%s)", cc->path, strerror(e),
					BRK_SOCKET_ENV);
		return cli_fail(cc, CLI_EXIT_NOBROKER, "cannot reach bulkheadd "
				"at %s: %s", cc->path, strerror(e));
	}
	ipc_chan_init(&cc->ch, fd, "bulkheadd");
	h.version = BRK_PROTO_VERSION;
	h.client = "bulkhead";
	r = cli_call(cc, MSG_HELLO, &h.base, NULL, 0, MSG_HELLO_REPLY,
		     &hello_reply__descriptor, (void **)&hr);
	if (r)
		return r == CLI_EXIT_REFUSED ? CLI_EXIT_NOBROKER : r;
	hello_reply__free_unpacked(hr, NULL);
	return 0;
}

/* ---- VmInfo ------------------------------------------------------------- */

/* The optional devices: [{"kind": "virtio-blk", "backend": PATH, "ro":
 * false}, {"kind": "virtio-rng", "backend": null, "ro": false}]. */
static struct json_object *cli_json_devices(const VmInfo *v)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; i < v->n_devices; i++) {
		const DeviceReq *d = v->devices[i];
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "kind", json_object_new_string(d->kind));
		json_object_object_add(o, "backend", cli_json_str_or_null(d->label));
		json_object_object_add(o, "ro", json_object_new_boolean(d->ro));
		json_object_array_add(a, o);
	}
	return a;
}

static struct json_object *cli_json_vm(const VmInfo *v)
{
	struct json_object *o = json_object_new_object();
	struct json_object *procs = json_object_new_array();
	char owner[64];

	json_object_object_add(o, "id", json_object_new_int64(v->id));
	json_object_object_add(o, "name", json_object_new_string(v->name));
	json_object_object_add(o, "owner", json_object_new_int64(v->owner));
	cli_fmt_owner(v->owner, owner, sizeof(owner));
	json_object_object_add(o, "owner_name", json_object_new_string(owner));
	json_object_object_add(o, "state", json_object_new_string(v->state));
	json_object_object_add(o, "mem", json_object_new_int64((int64_t)v->mem_size));
	json_object_object_add(o, "cpus", json_object_new_int64(v->cpus));
	json_object_object_add(o, "image", json_object_new_string(v->image_label));
	json_object_object_add(o, "cmdline", json_object_new_string(v->cmdline));
	json_object_object_add(o, "serial",
			       json_object_new_string(cli_serial_name(v->serial)));
	json_object_object_add(o, "devices", cli_json_devices(v));
	json_object_object_add(o, "created_at", json_object_new_int64(v->created_at));
	json_object_object_add(o, "uptime_ms",
			       json_object_new_int64((int64_t)v->uptime_ms));
	for (size_t i = 0; i < v->n_procs; i++) {
		const ProcInfo *p = v->procs[i];
		struct json_object *po = json_object_new_object();

		json_object_object_add(po, "label", json_object_new_string(p->label));
		json_object_object_add(po, "pid", json_object_new_int(p->pid));
		json_object_object_add(po, "running",
				       json_object_new_boolean(p->running));
		json_object_object_add(po, "ended", cli_json_str_or_null(p->ended));
		json_object_array_add(procs, po);
	}
	json_object_object_add(o, "processes", procs);
	json_object_object_add(o, "error", cli_json_str_or_null(v->error));
	json_object_object_add(o, "last_exit", cli_json_str_or_null(v->last_exit));
	json_object_object_add(o, "exit_status", v->exit_status >= 0 ?
			       json_object_new_int(v->exit_status) : NULL);
	json_object_object_add(o, "console_clients",
			       json_object_new_int64(v->console_clients));
	return o;
}

static void cli_print_status(const VmInfo *v)
{
	char a[600], b[64];
	time_t t = (time_t)v->created_at;
	struct tm tm;

	printf("name:       %s\n", cli_safe(v->name, a, sizeof(a)));
	printf("id:         %u\n", v->id);
	cli_fmt_owner(v->owner, b, sizeof(b));
	printf("owner:      %s (uid %u)\n", b, v->owner);
	printf("state:      %s\n", cli_safe(v->state, a, sizeof(a)));
	cli_fmt_size(v->mem_size, b, sizeof(b));
	printf("memory:     %s\n", b);
	printf("vcpus:      %u\n", v->cpus);
	printf("image:      %s\n", cli_safe(v->image_label, a, sizeof(a)));
	if (v->cmdline && v->cmdline[0])
		printf("cmdline:    %s\n", cli_safe(v->cmdline, a, sizeof(a)));
	printf("serial:     %s\n", cli_serial_name(v->serial));
	for (size_t i = 0; i < v->n_devices; i++) {
		const DeviceReq *d = v->devices[i];

		printf("device:     %s", cli_safe(d->kind, b, sizeof(b)));
		if (d->label && d->label[0])
			printf(" %s", cli_safe(d->label, a, sizeof(a)));
		printf("%s\n", d->ro ? " (read-only)" : "");
	}
	if (localtime_r(&t, &tm) && strftime(a, sizeof(a), "%Y-%m-%d %H:%M:%S",
					     &tm))
		printf("created:    %s\n", a);
	if (v->n_procs) {
		cli_fmt_uptime(v->uptime_ms, b, sizeof(b));
		printf("uptime:     %s\n", b);
		printf("processes: ");
		for (size_t i = 0; i < v->n_procs; i++) {
			const ProcInfo *p = v->procs[i];

			printf("%s %s %d%s%s%s", i ? "," : "",
			       cli_safe(p->label, a, sizeof(a)), p->pid,
			       p->running ? "" : " (", p->running ? "" : p->ended,
			       p->running ? "" : ")");
		}
		printf("\n");
	}
	if (v->serial == SERIAL_MODE__SERIAL_CONSOLE)
		printf("console:    %u attached\n", v->console_clients);
	if (v->last_exit && v->last_exit[0]) {
		printf("last exit:  %s", cli_safe(v->last_exit, a, sizeof(a)));
		if (v->exit_status >= 0)
			printf(" (run exit status %d)", v->exit_status);
		printf("\n");
	}
	if (v->error && v->error[0])
		printf("error:      %s\n", cli_safe(v->error, a, sizeof(a)));
}

/* What a command prints on success: the VM after the operation. */
static int cli_show_vm(const struct cli_conn *cc, const VmInfo *v,
		       const char *verb)
{
	char a[200], b[64];

	if (cc->json) {
		cli_json_print(cli_json_vm(v));
		return 0;
	}
	if (!verb) {
		cli_print_status(v);
		return 0;
	}
	printf("VM '%s' %s", cli_safe(v->name, a, sizeof(a)), verb);
	if (strcmp(v->state, "DESTROYED") != 0)
		printf(" (id %u, state %s)", v->id, cli_safe(v->state, b, sizeof(b)));
	printf("\n");
	if (v->error && v->error[0])
		printf("error: %s\n", cli_safe(v->error, a, sizeof(a)));
	return 0;
}

/* ---- list --------------------------------------------------------------- */

#define CLI_LIST_COLS 9

static void cli_print_list(const ListReply *lr)
{
	static const char *const head[CLI_LIST_COLS] = {
		"ID", "NAME", "OWNER", "STATE", "CPUS", "MEM", "UPTIME",
		"WORKER", "ERROR",
	};
	char (*cell)[CLI_LIST_COLS][80] = NULL;
	size_t w[CLI_LIST_COLS];

	if (!lr->n_vms) {
		printf("no VMs\n");
		return;
	}
	cell = calloc(lr->n_vms, sizeof(*cell));
	if (!cell)
		return;
	for (size_t c = 0; c < CLI_LIST_COLS; c++)
		w[c] = strlen(head[c]);
	for (size_t i = 0; i < lr->n_vms; i++) {
		const VmInfo *v = lr->vms[i];
		char (*row)[80] = cell[i];

		snprintf(row[0], 80, "%u", v->id);
		cli_safe(v->name, row[1], 80);
		cli_fmt_owner(v->owner, row[2], 80);
		cli_safe(v->state, row[3], 80);
		snprintf(row[4], 80, "%u", v->cpus);
		cli_fmt_size(v->mem_size, row[5], 80);
		if (v->n_procs)
			cli_fmt_uptime(v->uptime_ms, row[6], 80);
		else
			snprintf(row[6], 80, "-");
		if (v->n_procs && v->procs[0]->running)
			snprintf(row[7], 80, "%d", v->procs[0]->pid);
		else
			snprintf(row[7], 80, "-");
		cli_safe(v->error && v->error[0] ? v->error : "-", row[8], 60);
		for (size_t c = 0; c < CLI_LIST_COLS; c++)
			if (strlen(row[c]) > w[c])
				w[c] = strlen(row[c]);
	}
	for (size_t c = 0; c < CLI_LIST_COLS; c++)
		printf("%-*s%s", c + 1 < CLI_LIST_COLS ? (int)w[c] : 0, head[c],
		       c + 1 < CLI_LIST_COLS ? "  " : "\n");
	for (size_t i = 0; i < lr->n_vms; i++)
		for (size_t c = 0; c < CLI_LIST_COLS; c++)
			printf("%-*s%s", c + 1 < CLI_LIST_COLS ? (int)w[c] : 0,
			       cell[i][c], c + 1 < CLI_LIST_COLS ? "  " : "\n");
	if (lr->truncated)
		printf("(more VMs than fit in one answer; the newest are not "
		       "shown)\n");
	free(cell);
}

/* ---- stats -------------------------------------------------------------- */

static struct json_object *cli_json_stats(const StatsReply *sr)
{
	struct json_object *o = json_object_new_object();
	struct json_object *procs = json_object_new_array();

	json_object_object_add(o, "vm", cli_json_vm(sr->vm));
	for (size_t i = 0; i < sr->n_procs; i++) {
		const ProcStats *p = sr->procs[i];
		struct json_object *po = json_object_new_object();

		json_object_object_add(po, "label", json_object_new_string(p->label));
		json_object_object_add(po, "pid", json_object_new_int(p->pid));
		json_object_object_add(po, "user_ms", json_object_new_int64((int64_t)p->user_ms));
		json_object_object_add(po, "sys_ms", json_object_new_int64((int64_t)p->sys_ms));
		json_object_object_add(po, "rss_kb", json_object_new_int64((int64_t)p->rss_kb));
		json_object_object_add(po, "pss_kb", json_object_new_int64((int64_t)p->pss_kb));
		json_object_object_add(po, "threads", json_object_new_int64(p->threads));
		json_object_array_add(procs, po);
	}
	json_object_object_add(o, "processes", procs);
	if (sr->worker) {
		const VmStats *ws = sr->worker;
		struct json_object *w = json_object_new_object();
		struct json_object *vc = json_object_new_array();
		struct json_object *dv = json_object_new_array();

		json_object_object_add(w, "state", json_object_new_string(ws->state));
		for (size_t i = 0; i < ws->n_vcpus; i++) {
			struct json_object *c = json_object_new_object();

			json_object_object_add(c, "id", json_object_new_int64(ws->vcpus[i]->id));
			json_object_object_add(c, "exits", json_object_new_int64((int64_t)ws->vcpus[i]->exits));
			json_object_object_add(c, "io_exits", json_object_new_int64((int64_t)ws->vcpus[i]->io_exits));
			json_object_object_add(c, "mmio_exits", json_object_new_int64((int64_t)ws->vcpus[i]->mmio_exits));
			json_object_array_add(vc, c);
		}
		for (size_t i = 0; i < ws->n_devices; i++) {
			const DeviceStats *ds = ws->devices[i];
			struct json_object *c = json_object_new_object();

			json_object_object_add(c, "label", json_object_new_string(ds->label));
			json_object_object_add(c, "accesses", json_object_new_int64((int64_t)ds->accesses));
			json_object_object_add(c, "access_ns_total", json_object_new_int64((int64_t)ds->access_ns_total));
			json_object_object_add(c, "avg_access_ns", ds->accesses ?
				json_object_new_int64((int64_t)(ds->access_ns_total / ds->accesses)) : NULL);
			json_object_object_add(c, "state", json_object_new_string(ds->state));
			json_object_array_add(dv, c);
		}
		json_object_object_add(w, "vcpus", vc);
		json_object_object_add(w, "devices", dv);
		json_object_object_add(w, "unclaimed_reads", json_object_new_int64((int64_t)ws->unclaimed_reads));
		json_object_object_add(w, "unclaimed_writes", json_object_new_int64((int64_t)ws->unclaimed_writes));
		json_object_object_add(o, "worker", w);
	} else {
		json_object_object_add(o, "worker", NULL);
	}
	json_object_object_add(o, "worker_error", cli_json_str_or_null(sr->worker_error));
	return o;
}

static void cli_print_stats(const StatsReply *sr)
{
	const VmInfo *v = sr->vm;
	char a[200], b[32], c[32];

	cli_fmt_uptime(v->uptime_ms, b, sizeof(b));
	printf("VM %s (id %u): %s", cli_safe(v->name, a, sizeof(a)), v->id,
	       v->state);
	if (v->n_procs)
		printf(", up %s", b);
	printf("\n");
	if (sr->n_procs) {
		printf("\n%-14s %8s %10s %10s %8s %9s %9s\n", "PROCESS", "PID",
		       "USER ms", "SYS ms", "THREADS", "RSS", "PSS");
		for (size_t i = 0; i < sr->n_procs; i++) {
			const ProcStats *p = sr->procs[i];

			cli_fmt_kb(p->rss_kb, b, sizeof(b));
			cli_fmt_kb(p->pss_kb, c, sizeof(c));
			printf("%-14s %8d %10" PRIu64 " %10" PRIu64 " %8u %9s %9s\n",
			       cli_safe(p->label, a, sizeof(a)), p->pid,
			       p->user_ms, p->sys_ms, p->threads, b, c);
		}
	}
	if (!sr->worker) {
		printf("\nworker counters: unavailable (%s)\n",
		       cli_safe(sr->worker_error, a, sizeof(a)));
		return;
	}
	printf("\n%-14s %12s %14s  %s\n", "DEVICE", "ACCESSES", "AVG LATENCY",
	       "STATE");
	for (size_t i = 0; i < sr->worker->n_devices; i++) {
		const DeviceStats *ds = sr->worker->devices[i];

		if (ds->accesses)
			snprintf(b, sizeof(b), "%.2f us",
				 (double)ds->access_ns_total / ds->accesses / 1000);
		else
			snprintf(b, sizeof(b), "-");
		printf("%-14s %12" PRIu64 " %14s  %s\n",
		       cli_safe(ds->label, a, sizeof(a)), ds->accesses, b,
		       cli_safe(ds->state, c, sizeof(c)));
	}
	printf("\n%-6s %14s %14s %14s\n", "VCPU", "EXITS", "IO EXITS",
	       "MMIO EXITS");
	for (size_t i = 0; i < sr->worker->n_vcpus; i++) {
		const VcpuStats *vs = sr->worker->vcpus[i];

		printf("%-6u %14" PRIu64 " %14" PRIu64 " %14" PRIu64 "\n", vs->id,
		       vs->exits, vs->io_exits, vs->mmio_exits);
	}
	printf("\nunclaimed accesses: %" PRIu64 " reads, %" PRIu64 " writes\n",
	       sr->worker->unclaimed_reads, sr->worker->unclaimed_writes);
}

/* ---- console ------------------------------------------------------------ */

static int cli_write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int cli_console_send(struct cli_conn *cc, const uint8_t *p, size_t n)
{
	ConsoleData cd = CONSOLE_DATA__INIT;

	if (!n)
		return 0;
	cd.data.data = (uint8_t *)p;
	cd.data.len = n;
	return ipc_send_pb(&cc->ch, MSG_CTL_CONSOLE_INPUT, &cd.base, NULL, 0);
}

/* One frame from the broker in console phase: > 0 ends the session with
 * that exit status + 1, 0 goes on. */
static int cli_console_frame(struct cli_conn *cc, bool tty)
{
	const char *nl = tty ? "\r\n" : "\n";
	struct ipc_msg *m = cc->msg;
	char safe[600];
	int r = cli_recv(cc, -1);

	if (r < 0)
		return 1 + cli_lost(cc, r);
	ipc_msg_close_fds(m);
	switch (m->type) {
	case MSG_CTL_CONSOLE_OUTPUT: {
		ConsoleData *cd = ipc_msg_unpack(m, &console_data__descriptor);

		if (!cd)
			return 1 + cli_fail(cc, CLI_EXIT_NOBROKER, "bulkheadd "
					    "sent malformed console data");
		r = cli_write_all(STDOUT_FILENO, cd->data.data, cd->data.len);
		console_data__free_unpacked(cd, NULL);
		return r < 0 ? 1 + CLI_EXIT_OK : 0;  /* stdout went: done */
	}
	case MSG_CTL_CONSOLE_END: {
		ConsoleEnd *ce = ipc_msg_unpack(m, &console_end__descriptor);

		fprintf(stderr, "%sbulkhead: console closed: %s%s", nl,
			ce ? cli_safe(ce->reason, safe, sizeof(safe)) : "?", nl);
		if (ce)
			console_end__free_unpacked(ce, NULL);
		return 1 + CLI_EXIT_OK;
	}
	case MSG_CTL_CONSOLE_DETACHED:
		fprintf(stderr, "%sbulkhead: detached%s", nl, nl);
		return 1 + CLI_EXIT_OK;
	case MSG_ERROR_REPLY: {
		ErrorReply *er = ipc_msg_unpack(m, &error_reply__descriptor);

		fprintf(stderr, "%sbulkhead: %s%s", nl,
			er ? cli_safe(er->message, safe, sizeof(safe)) : "?", nl);
		if (er)
			error_reply__free_unpacked(er, NULL);
		return 1 + CLI_EXIT_REFUSED;
	}
	default:
		return 1 + cli_fail(cc, CLI_EXIT_NOBROKER, "bulkheadd sent "
				    "message type 0x%04x on the console",
				    m->type);
	}
}

/* Stdin is readable: send what it holds to the console, up to the detach
 * key in raw mode (which sets *detach); at its end *in_open goes false.
 * 1: interrupted, poll again; 0: go on; < 0: the broker is gone. */
static int cli_console_input(struct cli_conn *cc, bool raw, bool *in_open,
			     bool *detach)
{
	uint8_t buf[CLI_CONSOLE_CHUNK];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
	uint8_t *key;

	if (n < 0 && errno == EINTR)
		return 1;
	if (n <= 0) {
		/* Input ended; the output goes on until the VM ends or a
		 * signal detaches. */
		*in_open = false;
		return 0;
	}
	key = raw ? memchr(buf, CLI_DETACH_KEY, (size_t)n) : NULL;
	if (key) {
		n = key - buf;
		*detach = true;
	}
	return cli_console_send(cc, buf, (size_t)n) < 0 ? -1 : 0;
}

/* The attached session: the broker's frames to stdout, stdin to the
 * broker, until the VM's console ends or a signal (or Ctrl-]) detaches.
 * The exit status. */
static int cli_console_loop(struct cli_conn *cc, bool raw, int sigfd)
{
	ConsoleDetach det = CONSOLE_DETACH__INIT;
	bool in_open = true, detaching = false;
	int r, status = CLI_EXIT_OK;

	for (;;) {
		struct pollfd p[3] = {
			{ .fd = cc->ch.fd, .events = POLLIN },
			{ .fd = in_open && !detaching ? STDIN_FILENO : -1,
			  .events = POLLIN },
			{ .fd = sigfd, .events = POLLIN },
		};
		bool detach = false;

		r = poll(p, 3, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			status = cli_fail(cc, CLI_EXIT_NOBROKER, "poll: %s",
					  strerror(errno));
			break;
		}
		if (p[0].revents) {
			r = cli_console_frame(cc, raw);
			if (r > 0) {
				status = r - 1;
				break;
			}
		}
		if (p[1].revents) {
			r = cli_console_input(cc, raw, &in_open, &detach);
			if (r > 0)
				continue;
			if (r < 0) {
				status = cli_lost(cc, -EPIPE);
				break;
			}
		}
		if (p[2].revents) {
			struct signalfd_siginfo si;

			if (read(sigfd, &si, sizeof(si)) == sizeof(si))
				detach = true;
		}
		if (detach && !detaching) {
			detaching = true;
			if (ipc_send_pb(&cc->ch, MSG_CTL_CONSOLE_DETACH, &det.base,
					NULL, 0) < 0) {
				status = cli_lost(cc, -EPIPE);
				break;
			}
		}
	}
	return status;
}

static int cli_console(struct cli_conn *cc, const char *name, bool replay)
{
	ConsoleAttach ca = CONSOLE_ATTACH__INIT;
	ConsoleAttached *att = NULL;
	bool tty = isatty(STDIN_FILENO), raw = false;
	struct termios saved, t;
	sigset_t sigs;
	int sigfd, r, status;

	ca.name = (char *)name;
	ca.no_replay = !replay;
	r = cli_call(cc, MSG_CTL_CONSOLE_ATTACH, &ca.base, NULL, 0,
		     MSG_CTL_CONSOLE_ATTACHED, &console_attached__descriptor,
		     (void **)&att);
	if (r)
		return r;
	if (tty && tcgetattr(STDIN_FILENO, &saved) == 0) {
		t = saved;
		cfmakeraw(&t);
		/* Guests end lines with a bare \n: keep ONLCR on output. */
		t.c_oflag |= OPOST | ONLCR;
		raw = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
	}
	if (tty)
		fprintf(stderr, "bulkhead: attached to VM '%s' (%s); Ctrl-] "
			"detaches%s", name, att->vm ? att->vm->state : "?",
			raw ? "\r\n" : "\n");
	console_attached__free_unpacked(att, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigfd = brk_stop_signals_fd(&sigs);

	status = cli_console_loop(cc, raw, sigfd);
	if (raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	if (sigfd >= 0)
		close(sigfd);
	return status;
}

/* ---- commands ----------------------------------------------------------- */

struct cli_save_opts {
	bool keep_running;
	bool live;
	uint32_t max_downtime_ms;
};

/* A daemon command being run: its row, its options, its arguments. */
struct cli_ctl {
	const struct cli_cmd *cmd;
	struct cli_conn cc;
	struct cli_vm_opts vm;
	struct cli_save_opts so;
	bool replay;
	char **args;                  /* the positional arguments */
	int nargs;
};

enum { OPT_JSON = CLI_OPT_OWN, OPT_SOCKET, OPT_NO_REPLAY, OPT_KEEP_RUNNING,
       OPT_LIVE, OPT_MAX_DOWNTIME };

static const struct option cli_ctl_own_opts[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "no-replay", no_argument, NULL, OPT_NO_REPLAY },
	{ "keep-running", no_argument, NULL, OPT_KEEP_RUNNING },
	{ "live", no_argument, NULL, OPT_LIVE },
	{ "max-downtime", required_argument, NULL, OPT_MAX_DOWNTIME },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int cli_open_file(const struct cli_conn *cc, const char *what,
			 const char *path, int flags, int *out)
{
	int fd = open(path, flags | O_CLOEXEC, 0644);

	if (fd < 0)
		return cli_fail(cc, CLI_EXIT_NOFILE, "cannot open %s '%s': %s",
				what, path, strerror(errno));
	*out = fd;
	return 0;
}

struct cli_create_opts {
	CreateVm cv;
	const char *initrd;
	const char *serial_path;
	DeviceReq dev[CLI_MAX_DEVS], *devp[CLI_MAX_DEVS];
	const char *dev_path[CLI_MAX_DEVS];  /* a device's backend file */
};

/* The CreateVm of the VM options given. */
static void cli_create_from(const struct cli_vm_opts *o, const char *name,
			    struct cli_create_opts *co)
{
	*co = (struct cli_create_opts){ .cv = CREATE_VM__INIT };
	co->cv.name = (char *)name;
	co->cv.mem_size = o->mem_size;
	co->cv.cpus = o->cpus;
	if (o->cmdline)
		co->cv.cmdline = (char *)o->cmdline;
	switch (o->serial) {
	case CLI_SERIAL_NULL:
		co->cv.serial = SERIAL_MODE__SERIAL_NULL;
		break;
	case CLI_SERIAL_FILE:
		co->cv.serial = SERIAL_MODE__SERIAL_FILE;
		co->serial_path = o->serial_path;
		break;
	default:
		co->cv.serial = SERIAL_MODE__SERIAL_CONSOLE;
		break;
	}
	co->initrd = o->initrd;
	for (unsigned i = 0; i < o->ndevs; i++) {
		device_req__init(&co->dev[i]);
		co->dev[i].kind = (char *)o->devs[i].k->name;
		co->dev[i].ro = o->devs[i].ro;
		co->dev_path[i] = o->devs[i].path;
		co->devp[i] = &co->dev[i];
	}
	co->cv.n_devices = o->ndevs;
	co->cv.devices = co->devp;
}

/* The files of a VM's configuration, opened with the user's rights. */
struct cli_vm_files {
	int fds[3 + CLI_MAX_DEVS];
	unsigned nfds;
	char label[PATH_MAX + 64], dev_label[CLI_MAX_DEVS][PATH_MAX];
};

static void cli_close_files(struct cli_vm_files *f)
{
	for (unsigned i = 0; i < f->nfds; i++)
		close(f->fds[i]);
	f->nfds = 0;
}

/* Open the image (unless NULL), initrd, serial file and the devices'
 * backend files, in CreateVm's fd order. On failure every fd is closed
 * again. */
static int cli_open_vm_files(const struct cli_conn *cc,
			     struct cli_create_opts *o, const char *image,
			     struct cli_vm_files *f)
{
	int fd = -1, r;

	f->nfds = 0;
	if (image) {
		r = cli_open_file(cc, "image", image, O_RDONLY, &fd);
		if (r)
			return r;
		f->fds[f->nfds++] = fd;
		cli_note_slow_kernel(fd);
		if (!realpath(image, f->label))
			snprintf(f->label, sizeof(f->label), "%s", image);
		o->cv.image_label = f->label;
	}
	if (o->initrd) {
		r = cli_open_file(cc, "initrd", o->initrd, O_RDONLY, &fd);
		if (r)
			goto fail;
		f->fds[f->nfds++] = fd;
		o->cv.has_initrd = true;
	}
	if (o->serial_path) {
		r = cli_open_file(cc, "serial output file", o->serial_path,
				  O_WRONLY | O_CREAT | O_APPEND, &fd);
		if (r)
			goto fail;
		f->fds[f->nfds++] = fd;
	}
	for (size_t i = 0; i < o->cv.n_devices; i++) {
		const char *path = o->dev_path[i];

		if (!path)
			continue;
		r = cli_open_file(cc, "disk image", path, o->dev[i].ro ?
				  O_RDONLY : O_RDWR, &fd);
		if (r)
			goto fail;
		f->fds[f->nfds++] = fd;
		if (!realpath(path, f->dev_label[i]))
			snprintf(f->dev_label[i], sizeof(f->dev_label[i]), "%s",
				 path);
		o->dev[i].label = f->dev_label[i];
	}
	return 0;
fail:
	cli_close_files(f);
	return r;
}

static int cli_do_create(struct cli_conn *cc, struct cli_create_opts *o,
			 const char *image)
{
	struct cli_vm_files f;
	VmInfoReply *rep = NULL;
	int r;

	r = cli_open_vm_files(cc, o, image, &f);
	if (r)
		return r;
	r = cli_connect(cc);
	if (r)
		goto out;
	r = cli_call(cc, MSG_CTL_CREATE, &o->cv.base, f.fds, f.nfds,
		     MSG_CTL_VM_INFO, &vm_info_reply__descriptor, (void **)&rep);
	if (r)
		goto out;
	r = cli_show_vm(cc, rep->vm, "created");
	vm_info_reply__free_unpacked(rep, NULL);
out:
	cli_close_files(&f);
	return r;
}

static void cli_print_saved(const struct cli_conn *cc, const SaveReply *sr,
			    const char *file)
{
	char a[200], b[64], c[PATH_MAX + 64], st[64];

	if (cc->json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "vm", cli_json_vm(sr->vm));
		json_object_object_add(o, "file", json_object_new_string(file));
		json_object_object_add(o, "bytes",
				       json_object_new_int64((int64_t)sr->bytes));
		json_object_object_add(o, "passes",
				       json_object_new_int64(sr->passes));
		json_object_object_add(o, "pages",
				       json_object_new_int64((int64_t)sr->pages));
		json_object_object_add(o, "downtime_ms",
				       json_object_new_int64(sr->downtime_ms));
		json_object_object_add(o, "elapsed_ms",
				       json_object_new_int64((int64_t)sr->elapsed_ms));
		cli_json_print(o);
		return;
	}
	cli_fmt_size(sr->bytes, b, sizeof(b));
	printf("VM '%s' saved to %s: %s (%" PRIu64 " bytes), %u RAM pass%s, "
	       "%" PRIu64 " pages, downtime %u ms, %.1f s (state %s)\n",
	       cli_safe(sr->vm->name, a, sizeof(a)),
	       cli_safe(file, c, sizeof(c)), b, sr->bytes, sr->passes,
	       sr->passes == 1 ? "" : "es", sr->pages, sr->downtime_ms,
	       (double)sr->elapsed_ms / 1000,
	       cli_safe(sr->vm->state, st, sizeof(st)));
}

/*
 * The file is opened without O_TRUNC, so that a save the broker refuses
 * (no such VM, busy, ...) leaves an existing file alone; the broker
 * empties it when the save starts. A save that fails after that leaves
 * nothing worth keeping: the file is removed.
 */
static int cli_do_save(struct cli_conn *cc, const char *name,
		       const char *file, const struct cli_save_opts *so)
{
	SaveVm sv = SAVE_VM__INIT;
	SaveReply *rep = NULL;
	struct stat before, after, now;
	bool created = false;
	int fd, r;

	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0)
		created = true;
	else if (errno == EEXIST)
		fd = open(file, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return cli_fail(cc, CLI_EXIT_NOFILE, "cannot open save file '%s': "
				"%s", file, strerror(errno));
	if (fstat(fd, &before) < 0 || !S_ISREG(before.st_mode)) {
		close(fd);
		return cli_fail(cc, CLI_EXIT_NOFILE, "save file '%s' is not a "
				"regular file", file);
	}
	sv.name = (char *)name;
	sv.keep_running = so->keep_running;
	sv.live = so->live;
	sv.max_downtime_ms = so->max_downtime_ms;
	r = cli_connect(cc);
	if (!r) {
		cc->timeout_ms = CLI_SAVE_TIMEOUT_MS;
		r = cli_call(cc, MSG_CTL_SAVE, &sv.base, &fd, 1,
			     MSG_CTL_SAVE_REPLY, &save_reply__descriptor,
			     (void **)&rep);
	}
	if (!r) {
		cli_print_saved(cc, rep, file);
		save_reply__free_unpacked(rep, NULL);
	} else if (fstat(fd, &after) == 0 &&
		   (created || after.st_size != before.st_size ||
		    after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
		    after.st_mtim.tv_nsec != before.st_mtim.tv_nsec) &&
		   stat(file, &now) == 0 && now.st_dev == after.st_dev &&
		   now.st_ino == after.st_ino) {
		/* Ours, or emptied by the broker: not a saved state. */
		unlink(file);
	}
	close(fd);
	return r;
}

static int cli_do_restore(struct cli_conn *cc, struct cli_create_opts *o,
			  const char *file, const char *image, bool options)
{
	RestoreVm rv = RESTORE_VM__INIT;
	struct cli_vm_files f;
	VmInfoReply *rep = NULL;
	char path[PATH_MAX];
	int fd = -1, r;

	r = cli_open_file(cc, "saved state", file, O_RDONLY, &fd);
	if (r)
		return r;
	r = cli_open_vm_files(cc, o, image, &f);
	if (r) {
		close(fd);
		return r;
	}
	f.fds[f.nfds++] = fd;
	if (!image) {
		if (!realpath(file, path))
			snprintf(path, sizeof(path), "%s", file);
		snprintf(f.label, sizeof(f.label), "(from saved state %s)", path);
		o->cv.image_label = f.label;
	}
	rv.vm = &o->cv;
	rv.has_image = image != NULL;
	/* Without options, an existing VM of that name is restored with its
	 * own configuration. */
	rv.existing = !options && !image;
	r = cli_connect(cc);
	if (r)
		goto out;
	cc->timeout_ms = CLI_SAVE_TIMEOUT_MS;
	r = cli_call(cc, MSG_CTL_RESTORE, &rv.base, f.fds, f.nfds,
		     MSG_CTL_VM_INFO, &vm_info_reply__descriptor, (void **)&rep);
	if (r)
		goto out;
	r = cli_show_vm(cc, rep->vm, "restored");
	vm_info_reply__free_unpacked(rep, NULL);
out:
	cli_close_files(&f);
	return r;
}

int cli_ctl_create(struct cli_ctl *x)
{
	struct cli_create_opts co;

	cli_create_from(&x->vm, x->args[0], &co);
	return cli_do_create(&x->cc, &co, x->args[1]);
}

int cli_ctl_restore(struct cli_ctl *x)
{
	struct cli_create_opts co;

	cli_create_from(&x->vm, x->args[0], &co);
	return cli_do_restore(&x->cc, &co, x->args[1],
			      x->nargs > 2 ? x->args[2] : NULL, x->vm.any);
}

int cli_ctl_save(struct cli_ctl *x)
{
	return cli_do_save(&x->cc, x->args[0], x->args[1], &x->so);
}

int cli_ctl_verb(struct cli_ctl *x)
{
	VmRef ref = VM_REF__INIT;
	VmInfoReply *rep = NULL;
	int r = cli_connect(&x->cc);

	if (r)
		return r;
	ref.name = x->args[0];
	r = cli_call(&x->cc, x->cmd->verb, &ref.base, NULL, 0,
		     MSG_CTL_VM_INFO, &vm_info_reply__descriptor, (void **)&rep);
	if (r)
		return r;
	r = cli_show_vm(&x->cc, rep->vm, x->cmd->done);
	vm_info_reply__free_unpacked(rep, NULL);
	return r;
}

int cli_ctl_status(struct cli_ctl *x)
{
	StatusReq sr = STATUS_REQ__INIT;
	VmInfoReply *rep = NULL;
	int r = cli_connect(&x->cc);

	if (r)
		return r;
	sr.name = x->args[0];
	r = cli_call(&x->cc, MSG_CTL_STATUS, &sr.base, NULL, 0,
		     MSG_CTL_VM_INFO, &vm_info_reply__descriptor, (void **)&rep);
	if (r)
		return r;
	r = cli_show_vm(&x->cc, rep->vm, NULL);
	vm_info_reply__free_unpacked(rep, NULL);
	return r;
}

int cli_ctl_list(struct cli_ctl *x)
{
	ListReq lr = LIST_REQ__INIT;
	ListReply *l = NULL;
	int r = cli_connect(&x->cc);

	if (r)
		return r;
	r = cli_call(&x->cc, MSG_CTL_LIST, &lr.base, NULL, 0,
		     MSG_CTL_LIST_REPLY, &list_reply__descriptor, (void **)&l);
	if (r)
		return r;
	if (x->cc.json) {
		struct json_object *o = json_object_new_object();
		struct json_object *a = json_object_new_array();

		for (size_t i = 0; i < l->n_vms; i++)
			json_object_array_add(a, cli_json_vm(l->vms[i]));
		json_object_object_add(o, "vms", a);
		json_object_object_add(o, "truncated",
				       json_object_new_boolean(l->truncated));
		cli_json_print(o);
	} else {
		cli_print_list(l);
	}
	list_reply__free_unpacked(l, NULL);
	return 0;
}

int cli_ctl_stats(struct cli_ctl *x)
{
	StatsReq sr = STATS_REQ__INIT;
	StatsReply *rep = NULL;
	int r = cli_connect(&x->cc);

	if (r)
		return r;
	sr.name = x->args[0];
	r = cli_call(&x->cc, MSG_CTL_STATS, &sr.base, NULL, 0,
		     MSG_CTL_STATS_REPLY, &stats_reply__descriptor,
		     (void **)&rep);
	if (r)
		return r;
	if (x->cc.json)
		cli_json_print(cli_json_stats(rep));
	else
		cli_print_stats(rep);
	stats_reply__free_unpacked(rep, NULL);
	return 0;
}

int cli_ctl_console(struct cli_ctl *x)
{
	int r = cli_connect(&x->cc);

	return r ? r : cli_console(&x->cc, x->args[0], x->replay);
}

/* ---- options and arguments ------------------------------------------------- */

static int cli_ctl_help(const struct cli_cmd *cmd)
{
	printf("usage: bulkhead [--socket PATH] [--json] %s%s%s\n", cmd->name,
	       cmd->takes & CLI_TAKES_VM && cmd->nargs == 2 && !cmd->opt_nargs ?
	       " NAME [VM options] IMAGE" : *cmd->args ? " " : "",
	       cmd->takes & CLI_TAKES_VM && !cmd->opt_nargs ? "" : cmd->args);
	printf("See 'bulkhead --help'.\n");
	return 0;
}

static int cli_ctl_downtime(const char *arg, struct cli_ctl *x)
{
	char *end;
	unsigned long n = strtoul(arg, &end, 10);

	if (*arg < '0' || *arg > '9' || *end || n < 1 || n > 600000)
		return cli_usage_error(x->cmd->name, "--max-downtime: '%s' is not "
				       "a number of milliseconds from 1 to "
				       "600000", arg);
	x->so.max_downtime_ms = (uint32_t)n;
	return 0;
}

/* One of a daemon command's own options; 0, -1 after --help, or a code. */
static int cli_ctl_opt(int opt, const struct option *opts, int li,
		       char **argv, struct cli_ctl *x, const char **socket)
{
	const char *cmd = x->cmd->name;
	unsigned takes = x->cmd->takes;
	bool save_opt = opt >= OPT_KEEP_RUNNING && opt <= OPT_MAX_DOWNTIME;

	if (opt >= CLI_OPT_MEM && opt <= CLI_OPT_VM_LAST) {
		if (!(takes & CLI_TAKES_VM))
			return cli_usage_error(cmd, "option '--%s' is for create "
					       "and restore", opts[li].name);
		return cli_vm_opt(opt, optarg, &x->vm, true, cmd);
	}
	if (save_opt && !(takes & CLI_TAKES_SAVE))
		return cli_usage_error(cmd, "option '--%s' is for save",
				       opts[li].name);
	switch (opt) {
	case OPT_JSON:
		x->cc.json = true;
		return 0;
	case OPT_SOCKET:
		*socket = optarg;
		return 0;
	case OPT_KEEP_RUNNING:
		x->so.keep_running = true;
		return 0;
	case OPT_LIVE:
		x->so.live = true;
		return 0;
	case OPT_MAX_DOWNTIME:
		return cli_ctl_downtime(optarg, x);
	case OPT_NO_REPLAY:
		if (!(takes & CLI_TAKES_REPLAY))
			return cli_usage_error(cmd, "--no-replay is for console");
		x->replay = false;
		return 0;
	case 'h':
		cli_ctl_help(x->cmd);
		return -1;
	case ':':
		return cli_usage_error(cmd, "option '%s' needs a value",
				       argv[optind - 1]);
	default:
		return cli_usage_error(cmd, "unknown option '%s'",
				       argv[optind - 1]);
	}
}

/* The positional arguments: their number, and NAME. */
static int cli_ctl_args(struct cli_ctl *x)
{
	const struct cli_cmd *cmd = x->cmd;

	if (x->nargs < cmd->nargs)
		return cli_usage_error(cmd->name, "expected %s", cmd->args);
	if (x->nargs > cmd->nargs + cmd->opt_nargs)
		return cli_usage_error(cmd->name, "unexpected argument '%s'",
				       x->args[cmd->nargs + cmd->opt_nargs]);
	if (x->so.max_downtime_ms && !x->so.live)
		return cli_usage_error(cmd->name, "--max-downtime is for a live "
				       "save (--live)");
	/* NAME, or UID/NAME (for root) except when creating. */
	if (cmd->nargs && !brk_name_valid(x->args[0]) &&
	    (cmd->run == cli_ctl_create || !strchr(x->args[0], '/')))
		return cli_usage_error(cmd->name, "'%s' is not a VM name: use 1 "
				       "to 32 of A-Z a-z 0-9 _ . -", x->args[0]);
	return 0;
}

int cli_ctl_main(const struct cli_call *call)
{
	struct cli_ctl x = { .cmd = call->cmd, .replay = true,
			     .cc = { .ch = { .fd = -1 }, .json = call->json } };
	const char *socket = call->socket_path;
	struct option opts[32];
	int opt, r, li = 0;

	cli_vm_opts_init(&x.vm);
	if (cli_merge_opts(cli_ctl_own_opts, true, opts, 32) < 0)
		return CLI_EXIT_USAGE;
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(call->argc, call->argv, ":h", opts,
				  &li)) != -1) {
		r = cli_ctl_opt(opt, opts, li, call->argv, &x, &socket);
		if (r)
			return r < 0 ? 0 : r;
	}
	x.args = call->argv + optind;
	x.nargs = call->argc - optind;
	r = cli_ctl_args(&x);
	if (r)
		return r;
	x.cc.path = socket ? socket : BRK_DEFAULT_SOCKET;
	x.cc.msg = malloc(sizeof(*x.cc.msg));
	if (!x.cc.msg)
		return cli_fail(&x.cc, CLI_EXIT_NOBROKER, "out of memory");
	r = x.cmd->run(&x);
	ipc_chan_close(&x.cc.ch);
	free(x.cc.msg);
	return r;
}
