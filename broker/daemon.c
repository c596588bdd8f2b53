/* SPDX-License-Identifier: MIT */
/*
 * bulkheadd: the broker. One event loop (epoll) over the control socket,
 * the client connections, every VM's worker channel, every child's pidfd,
 * every console socket and a signalfd (broker/srv.h).
 *
 *   bulkheadd [--socket PATH] [--config FILE] [-v]
 *
 * Here: the loop, the socket, the client connections and their output
 * queues, the outbox through which the registry answers, signals and
 * main(). The protocol's verbs are broker/verbs.c; the VMs are the
 * registry's (broker/reg.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "broker/srv.h"
#include "ipc/log.h"
#include "proto/msgtypes.h"

#define BRKD_VERSION "0.1"
/* A client has this long to say Hello. */
#define BRK_HELLO_TIMEOUT_MS 5000
/* Bytes queued for a client that does not read before it is dropped. */
#define BRK_CLIENT_MAX_QUEUE (1024u * 1024u)
/* After SIGTERM: how long the VMs get to power off. */
#define BRK_SHUTDOWN_TIMEOUT_MS 10000
#define BRK_EPOLL_BATCH 64

/* ---- epoll -------------------------------------------------------------- */

static int brk_srv_watch(struct brkd *d, int fd, uint32_t events,
			 struct brk_watch *w)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

static void brk_srv_unwatch(struct brkd *d, int fd)
{
	if (fd >= 0)
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* ---- clients ------------------------------------------------------------ */

static void brk_srv_client_arm(struct brkd *d, struct brk_client *c, bool out)
{
	struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0),
				  .data.ptr = &c->w };

	if (c->want_out == out || c->chan.fd < 0)
		return;
	c->want_out = out;
	epoll_ctl(d->epfd, EPOLL_CTL_MOD, c->chan.fd, &ev);
}

static void brk_srv_client_drop(struct brkd *d, struct brk_client *c,
				const char *why)
{
	struct brk_client **pp;

	if (c->dead)
		return;
	if (why)
		LOG_INFO("dropping client pid %d uid %u: %s", c->who.pid,
			 c->who.uid, why);
	else
		LOG_DBG("client pid %d uid %u left", c->who.pid, c->who.uid);
	brk_reg_client_gone(&d->reg, c->who.id);
	c->dead = true;
	for (pp = &d->clients; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	d->nclients--;
	ipc_chan_close(&c->chan);  /* and out of the epoll set */
	while (c->out_head) {
		struct brk_frame *f = c->out_head;

		c->out_head = f->next;
		free(f);
	}
	c->out_bytes = 0;
	c->next = d->grave_clients;
	d->grave_clients = c;
}

/* Send what is queued, as far as the socket takes it. */
static void brk_srv_client_flush(struct brkd *d, struct brk_client *c)
{
	while (c->out_head && !c->dead) {
		struct brk_frame *f = c->out_head;
		int r = ipc_send(&c->chan, f->type, f->data, f->len, NULL, 0);

		if (r == -EAGAIN)
			break;
		if (r < 0) {
			brk_srv_client_drop(d, c, r == -EPIPE ? NULL :
					    "cannot send to it");
			return;
		}
		c->out_head = f->next;
		if (!c->out_head)
			c->out_tail = NULL;
		c->out_bytes -= f->len;
		free(f);
	}
	if (!c->dead)
		brk_srv_client_arm(d, c, c->out_head != NULL);
}

void brk_srv_send(struct brkd *d, struct brk_client *c, uint16_t type,
		  const ProtobufCMessage *pb)
{
	size_t len = protobuf_c_message_get_packed_size(pb);
	struct brk_frame *f;
	int r;

	if (c->dead)
		return;
	if (len > IPC_MAX_PAYLOAD) {
		LOG_ERR("answer 0x%04x to pid %d is too big (%zu bytes)", type,
			c->who.pid, len);
		brk_srv_client_drop(d, c, "answer too big");
		return;
	}
	f = malloc(sizeof(*f) + len);
	if (!f) {
		brk_srv_client_drop(d, c, "out of memory");
		return;
	}
	f->next = NULL;
	f->type = type;
	f->len = protobuf_c_message_pack(pb, f->data);
	if (!c->out_head) {
		r = ipc_send(&c->chan, type, f->data, f->len, NULL, 0);
		if (r == 0) {
			free(f);
			return;
		}
		if (r != -EAGAIN) {
			free(f);
			brk_srv_client_drop(d, c, r == -EPIPE ? NULL :
					    "cannot send to it");
			return;
		}
	}
	if (c->out_bytes + f->len > BRK_CLIENT_MAX_QUEUE) {
		free(f);
		brk_srv_client_drop(d, c, "it does not read what it is sent");
		return;
	}
	if (c->out_tail)
		c->out_tail->next = f;
	else
		c->out_head = f;
	c->out_tail = f;
	c->out_bytes += f->len;
	brk_srv_client_arm(d, c, true);
}

static void brk_srv_verror(struct brkd *d, struct brk_client *c,
			   int errno_code, const char *fmt, va_list ap)
{
	ErrorReply er = ERROR_REPLY__INIT;
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	er.errno_code = errno_code;
	er.message = msg;
	brk_srv_send(d, c, MSG_ERROR_REPLY, &er.base);
}

void brk_srv_send_error(struct brkd *d, struct brk_client *c, int errno_code,
			const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	brk_srv_verror(d, c, errno_code, fmt, ap);
	va_end(ap);
}

void brk_srv_client_fail(struct brkd *d, struct brk_client *c,
			 int errno_code, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	brk_srv_send_error(d, c, errno_code, "%s", why);
	brk_srv_client_drop(d, c, why);
}

static struct brk_client *brk_srv_client(struct brkd *d, uint64_t id)
{
	for (struct brk_client *c = d->clients; c; c = c->next)
		if (c->who.id == id)
			return c;
	return NULL;
}

void brk_srv_set_phase(struct brk_client *c, enum brk_client_phase phase)
{
	c->phase = phase;
	c->st.seen = 0;
}

/* ---- the registry's outbox ------------------------------------------------- */

static void brk_out_send(void *ctx, uint64_t client, uint16_t type,
			 const ProtobufCMessage *pb)
{
	struct brk_client *c = brk_srv_client(ctx, client);

	if (c)  /* else it went away meanwhile */
		brk_srv_send(ctx, c, type, pb);
}

static void brk_out_answer(void *ctx, uint64_t client, uint16_t type,
			   const ProtobufCMessage *pb)
{
	struct brk_client *c = brk_srv_client(ctx, client);

	if (!c || c->phase != BRK_PHASE_WAITING)
		return;  /* it went away meanwhile */
	brk_srv_set_phase(c, BRK_PHASE_READY);
	brk_srv_send(ctx, c, type, pb);
}

static void brk_out_set_mode(void *ctx, uint64_t client,
			     enum brk_client_mode mode)
{
	static const enum brk_client_phase phase[] = {
		[BRK_MODE_READY] = BRK_PHASE_READY,
		[BRK_MODE_WAITING] = BRK_PHASE_WAITING,
		[BRK_MODE_CONSOLE] = BRK_PHASE_CONSOLE,
	};
	struct brk_client *c = brk_srv_client(ctx, client);

	if (c && (unsigned)mode < sizeof(phase) / sizeof(phase[0]))
		brk_srv_set_phase(c, phase[mode]);
}

static int brk_out_watch(void *ctx, int fd, uint32_t events,
			 struct brk_watch *w)
{
	return brk_srv_watch(ctx, fd, events, w);
}

static void brk_out_unwatch(void *ctx, int fd)
{
	brk_srv_unwatch(ctx, fd);
}

void brk_srv_init_registry(struct brkd *d)
{
	d->outbox = (struct brk_outbox){
		.ctx = d, .send = brk_out_send, .answer = brk_out_answer,
		.set_mode = brk_out_set_mode, .watch = brk_out_watch,
		.unwatch = brk_out_unwatch,
	};
	d->reg.cfg = &d->cfg;
	d->reg.config_path = d->config_path;
	d->reg.out = &d->outbox;
	d->reg.msg = d->msg;
	if (!d->reg.next_vm_id)
		d->reg.next_vm_id = 1;
}

void brk_srv_client_readable(struct brkd *d, struct brk_client *c)
{
	const struct ipc_phase *ph = brk_verbs_phase(c->phase);
	struct brk_req q = { .d = d, .c = c };
	struct ipc_msg *m = d->msg;
	int r = ipc_recv(&c->chan, m);

	if (r == -EAGAIN)
		return;
	if (r == -EPROTO) {
		/* ipc_recv logged it and closed the socket. */
		brk_srv_client_drop(d, c, "malformed frame");
		return;
	}
	if (r < 0) {
		brk_srv_client_drop(d, c, r == -ECONNRESET ? NULL :
				    strerror(-r));
		return;
	}
	r = ipc_dispatch(&c->chan, ph, &c->st, &q, m);
	ipc_msg_close_fds(m);  /* any the handler did not take */
	if (r < 0)
		brk_srv_client_drop(d, c, "broke protocol");
}

static void brk_srv_accept(struct brkd *d)
{
	for (int i = 0; i < 16; i++) {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		struct brk_client *c;
		int fd = accept4(d->listen_fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				LOG_WARN("accept: %s", strerror(errno));
			return;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
			LOG_WARN("SO_PEERCRED: %s", strerror(errno));
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->who.id = ++d->next_client_id;
		c->who.uid = cred.uid;
		c->gid = cred.gid;
		c->who.pid = cred.pid;
		c->w = (struct brk_watch){ BRK_WATCH_CLIENT, c, 0 };
		ipc_chan_init(&c->chan, fd, "client");
		snprintf(c->chan.peer, sizeof(c->chan.peer), "client pid %d",
			 c->who.pid);
		c->hello_deadline = brk_now_ms() + BRK_HELLO_TIMEOUT_MS;
		c->next = d->clients;
		d->clients = c;
		d->nclients++;
		if (brk_srv_watch(d, fd, EPOLLIN, &c->w) < 0) {
			brk_srv_client_drop(d, c, "epoll failed");
			continue;
		}
		if (d->nclients > d->cfg.max_clients) {
			brk_srv_client_fail(d, c, EAGAIN, "bulkheadd serves at "
					    "most %u clients at a time; try "
					    "again later", d->cfg.max_clients);
			continue;
		}
		LOG_DBG("client pid %d uid %u connected", c->who.pid,
			c->who.uid);
	}
}

static void brk_srv_free_graves(struct brkd *d)
{
	while (d->grave_clients) {
		struct brk_client *c = d->grave_clients;

		d->grave_clients = c->next;
		free(c);
	}
	brk_reg_free_graves(&d->reg);
}

/* ---- the control socket ------------------------------------------------- */

/* mkdir -p for the socket's folder (only what is missing, mode 0755). */
static void brk_srv_mkdirs(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *p;

	snprintf(dir, sizeof(dir), "%s", path);
	p = strrchr(dir, '/');
	if (!p || p == dir)
		return;
	*p = '\0';
	for (p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(dir, 0755);
		*p = '/';
	}
	mkdir(dir, 0755);
}

static int brk_srv_listen(struct brkd *d, char *err, size_t errlen)
{
	const char *path = d->cfg.socket_path;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path '%s' is too long", path);
		return -ENAMETOOLONG;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	brk_srv_mkdirs(path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "'%s' exists and is not a socket; "
				 "remove it or choose another --socket", path);
			return -EEXIST;
		}
		/* A socket file: is anybody serving it? */
		fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(err, errlen, "socket: %s", strerror(errno));
			return -errno;
		}
		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		if (r == 0) {
			snprintf(err, errlen, "another bulkheadd is already "
				 "serving '%s'; stop it first or choose another "
				 "--socket", path);
			return -EADDRINUSE;
		}
		LOG_INFO("removing stale socket '%s' (nobody answers on it)",
			 path);
		if (unlink(path) < 0 && errno != ENOENT) {
			r = -errno;
			snprintf(err, errlen, "cannot remove stale socket '%s': "
				 "%s", path, strerror(errno));
			return r;
		}
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return r;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot bind '%s': %s", path,
			 strerror(errno));
		close(fd);
		return r;
	}
	/* Anyone may connect; SO_PEERCRED decides what they may do. */
	if (chmod(path, d->cfg.socket_mode) < 0 || listen(fd, 128) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot set up '%s': %s", path,
			 strerror(errno));
		close(fd);
		unlink(path);
		return r;
	}
	d->listen_fd = fd;
	return 0;
}

static void brk_srv_stop_listening(struct brkd *d)
{
	if (d->listen_fd < 0)
		return;
	close(d->listen_fd);
	d->listen_fd = -1;
	if (unlink(d->cfg.socket_path) < 0 && errno != ENOENT)
		LOG_WARN("cannot remove '%s': %s", d->cfg.socket_path,
			 strerror(errno));
}

/* ---- signals ------------------------------------------------------------ */

static void brk_srv_reload(struct brkd *d)
{
	struct brk_config cfg;
	char err[512];
	int r;

	brk_config_defaults(&cfg);
	r = brk_config_load(&cfg, d->config_path ? d->config_path :
			    BRK_DEFAULT_CONFIG, err, sizeof(err));
	if (r < 0 && !(r == -ENOENT && !d->config_path)) {
		LOG_ERR("SIGHUP: keeping the old configuration: %s", err);
		return;
	}
	/* The socket stays where it is. */
	snprintf(cfg.socket_path, sizeof(cfg.socket_path), "%s",
		 d->cfg.socket_path);
	cfg.socket_mode = d->cfg.socket_mode;
	d->cfg = cfg;
	LOG_INFO("SIGHUP: configuration reloaded");
}

static void brk_srv_signal(struct brkd *d)
{
	struct signalfd_siginfo si;

	while (read(d->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			brk_srv_reload(d);
			continue;
		}
		if (d->reg.shutting_down) {
			LOG_INFO("%s again: killing every VM",
				 strsignal((int)si.ssi_signo));
			brk_reg_kill_all(&d->reg);
			d->shutdown_killed = true;
			continue;
		}
		LOG_INFO("%s: powering off every VM and shutting down",
			 strsignal((int)si.ssi_signo));
		d->shutdown_deadline = brk_now_ms() + BRK_SHUTDOWN_TIMEOUT_MS;
		brk_srv_stop_listening(d);
		brk_reg_shutdown(&d->reg);
	}
}

/* ---- the loop ----------------------------------------------------------- */

static int64_t brk_srv_tick(struct brkd *d, int64_t now)
{
	int64_t next = brk_reg_tick(&d->reg, now);
	struct brk_client *n;

	for (struct brk_client *c = d->clients; c; c = n) {
		n = c->next;
		if (c->phase != BRK_PHASE_HELLO)
			continue;
		if (now >= c->hello_deadline) {
			brk_srv_client_fail(d, c, ETIMEDOUT, "no Hello within "
					    "%d ms", BRK_HELLO_TIMEOUT_MS);
			continue;
		}
		if (next < 0 || c->hello_deadline < next)
			next = c->hello_deadline;
	}
	if (d->reg.shutting_down) {
		if (now >= d->shutdown_deadline && !d->shutdown_killed) {
			LOG_WARN("VMs still running after %d s: killing them",
				 BRK_SHUTDOWN_TIMEOUT_MS / 1000);
			brk_reg_kill_all(&d->reg);
			d->shutdown_killed = true;
			d->shutdown_deadline = now + 2000;
		}
		if (next < 0 || d->shutdown_deadline < next)
			next = d->shutdown_deadline;
	}
	return next;
}

static void brk_srv_loop(struct brkd *d)
{
	struct epoll_event ev[BRK_EPOLL_BATCH];

	for (;;) {
		int64_t now = brk_now_ms(), next;
		int n, timeout = -1;

		next = brk_srv_tick(d, now);
		brk_srv_free_graves(d);
		if (d->reg.shutting_down && !brk_reg_any_running(&d->reg))
			return;
		if (d->reg.shutting_down && d->shutdown_killed &&
		    now >= d->shutdown_deadline) {
			LOG_ERR("some VM processes would not die; leaving");
			return;
		}
		if (next >= 0)
			timeout = next > now ? (int)(next - now) : 0;
		n = epoll_wait(d->epfd, ev, BRK_EPOLL_BATCH, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			LOG_ERR("epoll_wait: %s", strerror(errno));
			return;
		}
		for (int i = 0; i < n; i++) {
			struct brk_watch *w = ev[i].data.ptr;
			struct brk_client *c;

			switch (w->kind) {
			case BRK_WATCH_LISTEN:
				if (d->listen_fd >= 0)
					brk_srv_accept(d);
				break;
			case BRK_WATCH_SIGNAL:
				brk_srv_signal(d);
				break;
			case BRK_WATCH_CLIENT:
				c = w->obj;
				if (!c->dead && (ev[i].events & EPOLLOUT))
					brk_srv_client_flush(d, c);
				if (!c->dead && (ev[i].events &
						 (EPOLLIN | EPOLLHUP | EPOLLERR)))
					brk_srv_client_readable(d, c);
				break;
			default:
				brk_reg_event(&d->reg, w, ev[i].events);
				break;
			}
		}
	}
}

/* ---- main --------------------------------------------------------------- */

static void brkd_usage(FILE *f)
{
	fprintf(f,
"usage: bulkheadd [--socket PATH] [--config FILE] [-v]\n"
"\n"
"The Bulkhead broker: holds /dev/kvm and the VM registry, launches and\n"
"supervises each VM's worker and device processes, and serves the bulkhead\n"
"CLI on a UNIX socket. Runs in the foreground and logs to stderr; run it as\n"
"root (or a user in the kvm group). SIGTERM or SIGINT powers every VM off,\n"
"removes the socket and exits; SIGHUP re-reads the configuration file.\n"
"\n"
"  --socket PATH   the control socket (default %s)\n"
"  --config FILE   the configuration (default %s, optional)\n"
"  -v, --verbose   log debug lines\n"
"  -h, --help      this text\n"
"      --version   print the version\n"
"\n"
"Anyone may connect (mode 0666 unless socket_mode says otherwise); each VM\n"
"belongs to the uid that created it, and only that uid and root may see or\n"
"control it. Quotas and the configuration format: docs/broker.md.\n",
		BRK_DEFAULT_SOCKET, BRK_DEFAULT_CONFIG);
}

enum { OPT_SOCKET = 256, OPT_CONFIG, OPT_VERSION };

static const struct option brkd_opts[] = {
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static int brkd_setup(struct brkd *d, char *err, size_t errlen)
{
	sigset_t sigs;
	int r;

	d->msg = malloc(sizeof(*d->msg));
	if (!d->msg) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->epfd < 0) {
		snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
		return -errno;
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	d->sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (d->sig_fd < 0) {
		snprintf(err, errlen, "signalfd: %s", strerror(errno));
		return -errno;
	}
	d->w_sig = (struct brk_watch){ BRK_WATCH_SIGNAL, d, 0 };
	r = brk_srv_watch(d, d->sig_fd, EPOLLIN, &d->w_sig);
	if (r < 0) {
		snprintf(err, errlen, "epoll: %s", strerror(-r));
		return r;
	}
	r = brk_srv_listen(d, err, errlen);
	if (r < 0)
		return r;
	d->w_listen = (struct brk_watch){ BRK_WATCH_LISTEN, d, 0 };
	r = brk_srv_watch(d, d->listen_fd, EPOLLIN, &d->w_listen);
	if (r < 0) {
		snprintf(err, errlen, "epoll: %s", strerror(-r));
		return r;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct brkd d = { .epfd = -1, .listen_fd = -1, .sig_fd = -1 };
	const char *socket_path = NULL;
	int level = IPC_LOG_INFO, opt, r;
	char err[512];

	ipc_log_init("bulkheadd", IPC_LOG_INFO);
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":vh", brkd_opts, NULL)) != -1) {
		switch (opt) {
		case OPT_SOCKET:
			socket_path = optarg;
			break;
		case OPT_CONFIG:
			d.config_path = optarg;
			break;
		case 'v':
			level = IPC_LOG_DEBUG;
			break;
		case 'h':
			brkd_usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("bulkheadd %s (control protocol %u)\n",
			       BRKD_VERSION, BRK_PROTO_VERSION);
			return 0;
		case ':':
			fprintf(stderr, "bulkheadd: option '%s' needs a value\n"
				"Try 'bulkheadd --help'.\n", argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "bulkheadd: unknown option '%s'\n"
				"Try 'bulkheadd --help'.\n", argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bulkheadd: unexpected argument '%s'\n"
			"Try 'bulkheadd --help'.\n", argv[optind]);
		return 2;
	}
	ipc_log_init("bulkheadd", level);

	brk_config_defaults(&d.cfg);
	r = brk_config_load(&d.cfg, d.config_path ? d.config_path :
			    BRK_DEFAULT_CONFIG, err, sizeof(err));
	if (r < 0 && !(r == -ENOENT && !d.config_path)) {
		fprintf(stderr, "bulkheadd: bad configuration: %s\n", err);
		return 2;
	}
	if (socket_path) {
		if (strlen(socket_path) >= sizeof(d.cfg.socket_path)) {
			fprintf(stderr, "bulkheadd: --socket: path longer than "
				"%zu bytes\n", sizeof(d.cfg.socket_path) - 1);
			return 2;
		}
		snprintf(d.cfg.socket_path, sizeof(d.cfg.socket_path), "%s",
			 socket_path);
	}
	r = brkd_setup(&d, err, sizeof(err));
	brk_srv_init_registry(&d);
	if (r < 0) {
		fprintf(stderr, "bulkheadd: %s\n", err);
		return 1;
	}
	LOG_INFO("listening on %s (protocol %u; quotas per uid: %u VMs, "
		 "%llu MiB, %u vCPUs)", d.cfg.socket_path, BRK_PROTO_VERSION,
		 d.cfg.quota.max_vms,
		 (unsigned long long)(d.cfg.quota.max_mem >> 20),
		 d.cfg.quota.max_cpus);
	brk_srv_loop(&d);

	brk_srv_stop_listening(&d);
	while (d.clients)
		brk_srv_client_drop(&d, d.clients, NULL);
	brk_srv_free_graves(&d);
	brk_reg_free_all(&d.reg);
	LOG_INFO("stopped");
	return 0;
}
