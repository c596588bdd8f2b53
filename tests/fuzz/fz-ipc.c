/* SPDX-License-Identifier: MIT */
/*
 * The IPC frame decoder under fuzzing: one datagram, with fds and control
 * data, through a real SOCK_SEQPACKET pair into ipc_recv(), then its
 * payload through ipc_msg_unpack() as every message type, then through
 * ipc_dispatch() with a table holding each kind of entry.
 *
 * Input: one flags byte, then the datagram.
 *   bits 0-4  that many fds (/dev/null) ride along as SCM_RIGHTS (0-31)
 *   bit 5     the receiver has SO_PASSCRED on: foreign control data
 *   bit 6     raw: the length field is left as given (else it is set to
 *             match the datagram)
 *   bit 7     64 KiB of zeros are appended (frames over the limit)
 *
 * Oracle: ipc_recv() accepts exactly the frames ipc.h describes as valid,
 * returns them intact with close-on-exec fds, and on refusal closes the
 * channel and every fd that came with the frame.
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "control.pb-c.h"
#include "device.pb-c.h"
#include "ipc/ipc.h"
#include "tests/fuzz/fuzzlib.h"
#include "worker.pb-c.h"

#define FZ_IPC_PAD (64u * 1024u)

/* Every message a Bulkhead process may receive or send. */
static const ProtobufCMessageDescriptor *const fz_ipc_descs[] = {
	&hello__descriptor, &hello_reply__descriptor, &error_reply__descriptor,
	&dev_init__descriptor, &dev_register__descriptor,
	&dev_registered__descriptor, &dev_guest_exit__descriptor,
	&dev_destruct__descriptor, &dev_destruct_done__descriptor,
	&dev_notify__descriptor, &dev_notify_done__descriptor,
	&dev_request_reset__descriptor, &dev_request_power_off__descriptor,
	&dev_save_req__descriptor, &dev_state_data__descriptor,
	&worker_init__descriptor, &worker_ready__descriptor,
	&vm_control__descriptor, &vm_control_reply__descriptor,
	&vm_stats_req__descriptor, &vm_stats__descriptor,
	&vm_state_changed__descriptor, &vm_runtime_error__descriptor,
	&vm_exited__descriptor,
};

/* A dispatch table with one entry of each kind. */
static int fz_ipc_handler(void *ctx, const void *pb, struct ipc_msg *m)
{
	unsigned *calls = ctx;

	(void)pb;
	(*calls)++;
	return m->len & 1 ? -EINVAL : 0;  /* a failing handler passes through */
}

static const struct ipc_handler fz_ipc_tab[] = {
	{ .type = 0x0100, .flags = IPC_PERMIT, .fn = fz_ipc_handler,
	  .max_fds = IPC_MAX_FDS },
	{ .type = 0x0102, .flags = IPC_PERMIT | IPC_ONCE, .fn = fz_ipc_handler,
	  .max_fds = 2 },
	{ .type = 0x0104, .fn = fz_ipc_handler },  /* known, not permitted */
	{ .type = 0x0106, .flags = IPC_PERMIT },   /* permitted, no handler */
	/* typed: the payload must unpack as a VmControl */
	{ .type = 0x0108, .flags = IPC_PERMIT, .desc = &vm_control__descriptor,
	  .fn = fz_ipc_handler },
};
static const struct ipc_phase fz_ipc_phase = {
	.name = "fuzz", .tab = IPC_TAB(fz_ipc_tab),
};

static void fz_ipc_passcred(int sock, int on)
{
	if (setsockopt(sock, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0)
		abort();
}

static void fz_ipc_send_raw(int sock, const uint8_t *buf, size_t len,
			    unsigned nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 32)];
	} cbuf;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	int fds[32];

	for (unsigned i = 0; i < nfds; i++) {
		fds[i] = fz_fd_new(FZ_FD_DEVNULL);
	}
	if (nfds) {
		struct cmsghdr *cm;

		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	if (sendmsg(sock, &mh, MSG_NOSIGNAL) != (ssize_t)len)
		abort();
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
}

static void fz_ipc_check_accepted(const struct ipc_msg *m,
				  const uint8_t *dgram, size_t dlen,
				  unsigned nfds)
{
	FZ_CHECK(m->len == dlen - IPC_HDR_SIZE, "len %u for a %zu-byte datagram",
		 m->len, dlen);
	FZ_CHECK(m->type == (dgram[4] | dgram[5] << 8), "type 0x%x", m->type);
	FZ_CHECK(m->nfds == nfds, "%u fds of %u", m->nfds, nfds);
	FZ_CHECK(memcmp(m->payload, dgram + IPC_HDR_SIZE, m->len) == 0,
		 "payload changed");
	for (unsigned i = 0; i < IPC_MAX_FDS; i++) {
		if (i >= m->nfds) {
			FZ_CHECK(m->fds[i] == -1, "fds[%u] = %d past nfds", i,
				 m->fds[i]);
			continue;
		}
		FZ_CHECK(fcntl(m->fds[i], F_GETFD) == FD_CLOEXEC,
			 "received fd %d is not close-on-exec", m->fds[i]);
	}
}

/* The datagram from the input, in dgram: the body, 64 KiB of zeros when
 * pad, the length field set to match unless raw. Returns its length. */
static size_t fz_ipc_build(struct fz_in *in, uint8_t *dgram, bool raw,
			   bool pad)
{
	const uint8_t *body;
	size_t dlen = fz_bytes(in, 4096, &body);

	memcpy(dgram, body, dlen);
	if (pad) {
		memset(dgram + dlen, 0, FZ_IPC_PAD);
		dlen += FZ_IPC_PAD;
	}
	if (!raw && dlen >= 4) {
		uint32_t len = dlen >= IPC_HDR_SIZE ?
			       (uint32_t)(dlen - IPC_HDR_SIZE) : 0;

		dgram[0] = (uint8_t)len;
		dgram[1] = (uint8_t)(len >> 8);
		dgram[2] = (uint8_t)(len >> 16);
		dgram[3] = (uint8_t)(len >> 24);
	}
	return dlen;
}

/* An accepted frame: its payload unpacked as every message type, then
 * dispatched through a table holding each kind of entry. */
static void fz_ipc_use(struct ipc_chan *c, struct ipc_msg *m)
{
	struct ipc_phase_state st = { 0 };
	unsigned calls = 0;
	int r;

	for (size_t i = 0; i < sizeof(fz_ipc_descs) /
			       sizeof(fz_ipc_descs[0]); i++) {
		ProtobufCMessage *pb = ipc_msg_unpack(m, fz_ipc_descs[i]);

		if (pb)
			protobuf_c_message_free_unpacked(pb, NULL);
	}
	/* Twice: the second time a ONCE entry must refuse. */
	for (int i = 0; i < 2 && c->fd >= 0; i++) {
		r = ipc_dispatch(c, &fz_ipc_phase, &st, &calls, m);
		if (r == -EPROTO)
			FZ_CHECK(c->fd < 0 && m->nfds == 0,
				 "refused by the table, channel open");
	}
	ipc_msg_close_fds(m);
}

int fz_ipc_frame_run(const uint8_t *data, size_t size)
{
	static struct ipc_msg *m;
	static uint8_t *dgram;
	struct ipc_chan c;
	struct fz_in in;
	unsigned nfds;
	bool passcred, raw, pad, valid;
	size_t dlen;
	static int sv[2] = { -1, -1 };
	int r, delta;
	uint8_t flags;

	fz_quiet();
	if (!m) {
		m = malloc(sizeof(*m));
		dgram = malloc(IPC_MAX_FRAME + FZ_IPC_PAD + 4096);
		if (!m || !dgram)
			abort();
	}
	fz_in_init(&in, data, size);
	flags = fz_u8(&in);
	nfds = flags & 0x1f;
	passcred = flags & 0x20;
	raw = flags & 0x40;
	pad = flags & 0x80;
	dlen = fz_ipc_build(&in, dgram, raw, pad);
	/* What ipc.h promises to accept, and nothing else. */
	valid = !passcred && nfds <= IPC_MAX_FDS && dlen >= IPC_HDR_SIZE &&
		dlen - IPC_HDR_SIZE <= IPC_MAX_PAYLOAD &&
		(dgram[0] | dgram[1] << 8 | dgram[2] << 16 |
		 (uint32_t)dgram[3] << 24) == dlen - IPC_HDR_SIZE;

	fz_pair_open(sv);
	fz_fd_mark();
	if (passcred)
		fz_ipc_passcred(sv[1], 1);
	fz_ipc_send_raw(sv[0], dgram, dlen, nfds);
	ipc_chan_init(&c, sv[1], "fuzz-peer");
	memset(m, 0xa5, offsetof(struct ipc_msg, payload));
	r = ipc_recv(&c, m);

	if (dlen == 0) {
		FZ_CHECK(r == -ECONNRESET, "empty datagram: %d", r);
	} else if (valid) {
		FZ_CHECK(r == 0, "a valid frame was refused: %d", r);
		fz_ipc_check_accepted(m, dgram, dlen, nfds);
		fz_ipc_use(&c, m);
	} else {
		FZ_CHECK(r == -EPROTO, "a malformed frame gave %d", r);
		FZ_CHECK(c.fd < 0, "a malformed frame left the channel open");
		FZ_CHECK(m->nfds == 0, "a malformed frame left %u fds", m->nfds);
	}
	if (passcred && c.fd >= 0)
		fz_ipc_passcred(sv[1], 0);
	delta = fz_pair_end(sv, c.fd >= 0);
	fz_fd_check("ipc_recv", delta);
	return 0;
}
