/* SPDX-License-Identifier: MIT */
/*
 * The control protocol under fuzzing: bulkheadd's per-phase verb tables
 * (hello, ready, console; broker/verbs.c) and everything behind them in
 * the registry (create, VM operations, status, list, stats, console, save,
 * restore), fed by a hostile client. Each frame goes through ipc_send on a
 * real SOCK_SEQPACKET pair and brk_srv_client_readable(), the daemon's own
 * function for a readable client connection.
 *
 * broker/daemon.c is compiled into this file (its main() renamed), for its
 * static helpers (accepting a client, dropping one, the epoll set). If
 * something used below is renamed there, rename it here.
 *
 * The daemon under fuzzing has no /dev/kvm: kd_sys_open() and
 * kd_sys_check() below fail, so a VM the fuzzer creates and starts is
 * refused at launch, without spawning anything.
 *
 * Input (fuzzlib.h, frames): the selector byte picks the client's phase
 * (sel % 3: hello, ready, console) and who it is (sel / 3 % 2: root, or
 * uid 1000); then frames, until the daemon drops the client.
 */
#define main fz_brkd_real_main
int fz_brkd_real_main(int argc, char **argv);
#include "broker/daemon.c"
#undef main

#include "kdriver/kd.h"
#include "tests/fuzz/fuzzlib.h"

int kd_sys_open(const char *path)
{
	(void)path;
	return -ENODEV;
}

int kd_sys_check(int kvm_fd, char *err, size_t errlen)
{
	(void)kvm_fd;
	snprintf(err, errlen, "no /dev/kvm under fuzzing");
	return -ENODEV;
}

static const uint16_t fz_brkd_types[] = {
	MSG_HELLO, MSG_CTL_CREATE, MSG_CTL_START, MSG_CTL_STATUS,
	MSG_CTL_LIST, MSG_CTL_STATS, MSG_CTL_CONSOLE_ATTACH,
	MSG_CTL_CONSOLE_INPUT, MSG_CTL_CONSOLE_DETACH, MSG_CTL_PAUSE,
	MSG_CTL_RESUME, MSG_CTL_RESET, MSG_CTL_POWEROFF, MSG_CTL_DESTROY,
	MSG_CTL_SAVE, MSG_CTL_RESTORE,
};

int fz_daemon_dispatch(const uint8_t *data, size_t size)
{
	static struct brkd d = { .epfd = -1, .listen_fd = -1, .sig_fd = -1 };
	static int sv[2] = { -1, -1 };
	struct brk_client *c, **pp;
	struct fz_frame f;
	struct fz_in in;
	unsigned sel, nframes = 0;
	bool rx_open;
	int delta;

	fz_quiet();
	if (d.epfd < 0) {
		d.msg = malloc(sizeof(*d.msg));
		d.epfd = epoll_create1(EPOLL_CLOEXEC);
		if (!d.msg || d.epfd < 0)
			abort();
		brk_config_defaults(&d.cfg);
		brk_srv_init_registry(&d);
	}
	fz_in_init(&in, data, size);
	sel = fz_u8(&in);
	fz_pair_open(sv);
	fz_fd_mark();

	/* A client as brk_srv_accept() takes it in. */
	c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	c->who.id = ++d.next_client_id;
	c->who.uid = c->gid = sel / 3 % 2 ? 1000 : 0;
	c->who.pid = getpid();
	c->w = (struct brk_watch){ BRK_WATCH_CLIENT, c, 0 };
	ipc_chan_init(&c->chan, sv[1], "client");
	c->hello_deadline = brk_now_ms() + BRK_HELLO_TIMEOUT_MS;
	c->next = d.clients;
	d.clients = c;
	d.nclients++;
	if (brk_srv_watch(&d, sv[1], EPOLLIN, &c->w) < 0)
		abort();
	if (sel % 3 == 1)
		brk_srv_set_phase(c, BRK_PHASE_READY);
	else if (sel % 3 == 2)
		brk_srv_set_phase(c, BRK_PHASE_CONSOLE);

	while (nframes < FZ_FRAMES_MAX && !c->dead &&
	       fz_frame_next(&in, fz_brkd_types,
			     sizeof(fz_brkd_types) / sizeof(fz_brkd_types[0]),
			     &f)) {
		if (fz_frame_send(sv[0], &f) < 0)
			continue;
		nframes++;
		brk_srv_client_readable(&d, c);
		fz_quiet();
	}

	/* Let the client go, keeping the pair when the daemon did not close
	 * it; then forget every VM it made. */
	rx_open = c->chan.fd >= 0;
	if (rx_open) {
		brk_srv_unwatch(&d, sv[1]);
		c->chan.fd = -1;
	}
	if (!c->dead) {
		brk_srv_client_drop(&d, c, NULL);
	} else {
		for (pp = &d.clients; *pp; pp = &(*pp)->next)
			FZ_CHECK(*pp != c, "a dropped client is still listed");
	}
	brk_srv_free_graves(&d);
	brk_reg_free_all(&d.reg);
	FZ_CHECK(!d.clients && d.nclients == 0, "%u clients left",
		 d.nclients);
	delta = fz_pair_end(sv, rx_open);
	fz_fd_check("bulkheadd", delta);
	return 0;
}
