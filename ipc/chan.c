/* SPDX-License-Identifier: MIT */
/*
 * ipc channels: framing over SOCK_SEQPACKET, fd passing, dispatch tables.
 *
 * One frame is one datagram: u32 LE length | u16 LE type | payload. fds
 * travel as SCM_RIGHTS and nowhere else; ipc_chan_sendmsg() and
 * ipc_chan_recvmsg() are the only places that touch control messages.
 *
 * The peer may be less trusted than we are. A frame that does not parse
 * exactly is not repaired: every fd it carried is closed, the channel is
 * closed and the caller gets -EPROTO.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ipc/ipc.h"
#include "ipc/log.h"

/* Payloads up to this size are packed on the stack by ipc_send_pb(). */
#define IPC_PB_STACK_BUF 512u

/*
 * Control buffer for receiving: room for one more fd than allowed, so that
 * "too many fds" shows up as a count rather than only as MSG_CTRUNC.
 */
#define IPC_CMSG_RX_FDS (IPC_MAX_FDS + 1u)

union ipc_cmsg_rx_buf {
	struct cmsghdr align;
	char buf[CMSG_SPACE(sizeof(int) * IPC_CMSG_RX_FDS)];
};

union ipc_cmsg_tx_buf {
	struct cmsghdr align;
	char buf[CMSG_SPACE(sizeof(int) * IPC_MAX_FDS)];
};

/* What ipc_chan_recvmsg() found in the control data. */
struct ipc_cmsg_rx {
	int fds[IPC_CMSG_RX_FDS];
	unsigned nfds;
	bool foreign;    /* a cmsg other than SOL_SOCKET/SCM_RIGHTS */
	bool too_many;   /* more fds than fit in fds[] */
};

static void ipc_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void ipc_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static uint32_t ipc_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint16_t ipc_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void ipc_close_fd_array(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

/*
 * Send one datagram made of iov[0..iovcnt) with nfds fds as SCM_RIGHTS.
 * The only place in Bulkhead that builds SCM_RIGHTS control data.
 * Returns the number of bytes sent or -errno.
 */
static ssize_t ipc_chan_sendmsg(int sock, struct iovec *iov, int iovcnt,
				const int *fds, unsigned nfds)
{
	union ipc_cmsg_tx_buf cbuf;
	struct msghdr mh = {
		.msg_iov = iov,
		.msg_iovlen = (size_t)iovcnt,
	};
	ssize_t n;

	if (nfds > 0) {
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
	do {
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/*
 * Receive one datagram into iov[0..iovcnt), collecting SCM_RIGHTS fds into
 * *rx (always, even when the caller will reject the frame, so that they can
 * be closed). Received fds are close-on-exec. Returns the number of bytes
 * received (0 on EOF) or -errno; *msg_flags gets the recvmsg flags.
 */
static ssize_t ipc_chan_recvmsg(int sock, struct iovec *iov, int iovcnt,
				struct ipc_cmsg_rx *rx, int *msg_flags)
{
	union ipc_cmsg_rx_buf cbuf;
	struct msghdr mh;
	struct cmsghdr *cm;
	ssize_t n;

	rx->nfds = 0;
	rx->foreign = false;
	rx->too_many = false;
	do {
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = iov;
		mh.msg_iovlen = (size_t)iovcnt;
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = sizeof(cbuf.buf);
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	*msg_flags = mh.msg_flags;

	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		size_t nbytes, count;

		if (cm->cmsg_level != SOL_SOCKET ||
		    cm->cmsg_type != SCM_RIGHTS) {
			/* We never ask for credentials or the like. */
			rx->foreign = true;
			continue;
		}
		if (cm->cmsg_len < CMSG_LEN(0))
			continue;
		nbytes = cm->cmsg_len - CMSG_LEN(0);
		count = nbytes / sizeof(int);
		for (size_t i = 0; i < count; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(int));
			if (rx->nfds < IPC_CMSG_RX_FDS) {
				rx->fds[rx->nfds++] = fd;
			} else {
				/* Cannot happen with this buffer size. */
				close(fd);
				rx->too_many = true;
			}
		}
	}
	return n;
}

void ipc_chan_init(struct ipc_chan *c, int fd, const char *peer)
{
	c->fd = fd;
	snprintf(c->peer, sizeof(c->peer), "%s", peer ? peer : "?");
}

void ipc_chan_close(struct ipc_chan *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

int ipc_chan_pair(int fds[2])
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
		return -errno;
	return 0;
}

int ipc_send(struct ipc_chan *c, uint16_t type, const void *payload,
	     size_t len, const int *fds, unsigned nfds)
{
	uint8_t hdr[IPC_HDR_SIZE];
	struct iovec iov[2];
	int iovcnt = 1;
	ssize_t n;

	if (len > IPC_MAX_PAYLOAD || nfds > IPC_MAX_FDS)
		return -EMSGSIZE;
	if (c->fd < 0)
		return -EBADF;

	ipc_put_le32(hdr, (uint32_t)len);
	ipc_put_le16(hdr + 4, type);
	iov[0].iov_base = hdr;
	iov[0].iov_len = sizeof(hdr);
	if (len > 0) {
		iov[1].iov_base = (void *)payload;
		iov[1].iov_len = len;
		iovcnt = 2;
	}
	n = ipc_chan_sendmsg(c->fd, iov, iovcnt, fds, nfds);
	if (n == -ECONNRESET || n == -ENOTCONN)
		return -EPIPE;
	if (n < 0)
		return (int)n;
	/* A SOCK_SEQPACKET send is all or nothing. */
	if ((size_t)n != sizeof(hdr) + len)
		return -EIO;
	return 0;
}

int ipc_send_pb(struct ipc_chan *c, uint16_t type,
		const ProtobufCMessage *pb, const int *fds, unsigned nfds)
{
	uint8_t stack_buf[IPC_PB_STACK_BUF];
	uint8_t *buf = stack_buf;
	size_t len;
	int ret;

	len = protobuf_c_message_get_packed_size(pb);
	if (len > IPC_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (len > sizeof(stack_buf)) {
		buf = malloc(len);
		if (!buf)
			return -ENOMEM;
	}
	if (protobuf_c_message_pack(pb, buf) != len) {
		ret = -EINVAL;
		goto out_free;
	}
	ret = ipc_send(c, type, buf, len, fds, nfds);
out_free:
	if (buf != stack_buf)
		free(buf);
	return ret;
}

/* Refuse a frame: close what it brought and the channel. */
static int ipc_recv_refuse(struct ipc_chan *c, struct ipc_cmsg_rx *rx,
			   const char *why, size_t got)
{
	LOG_ERR("closing channel to %s: malformed frame (%s; %zu bytes read, "
		"%u fds)", c->peer, why, got, rx->nfds);
	ipc_close_fd_array(rx->fds, rx->nfds);
	rx->nfds = 0;
	ipc_chan_close(c);
	return -EPROTO;
}

int ipc_recv(struct ipc_chan *c, struct ipc_msg *m)
{
	uint8_t hdr[IPC_HDR_SIZE];
	uint8_t spill;   /* one byte past the largest frame: oversize check */
	struct iovec iov[3] = {
		{ .iov_base = hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = m->payload, .iov_len = sizeof(m->payload) },
		{ .iov_base = &spill, .iov_len = 1 },
	};
	struct ipc_cmsg_rx rx;
	int flags = 0;
	uint32_t len;
	ssize_t n;

	m->type = 0;
	m->len = 0;
	m->nfds = 0;
	for (unsigned i = 0; i < IPC_MAX_FDS; i++)
		m->fds[i] = -1;
	if (c->fd < 0)
		return -EBADF;

	n = ipc_chan_recvmsg(c->fd, iov, 3, &rx, &flags);
	if (n < 0)
		return (int)n;
	if (n == 0) {
		/* EOF (or an empty datagram, which is no frame either). */
		ipc_close_fd_array(rx.fds, rx.nfds);
		return -ECONNRESET;
	}
	if (flags & MSG_CTRUNC)
		return ipc_recv_refuse(c, &rx, "control data truncated",
				       (size_t)n);
	if (rx.foreign)
		return ipc_recv_refuse(c, &rx, "control data not SCM_RIGHTS",
				       (size_t)n);
	if (rx.too_many || rx.nfds > IPC_MAX_FDS)
		return ipc_recv_refuse(c, &rx, "too many fds", (size_t)n);
	if (flags & MSG_TRUNC || (size_t)n > IPC_MAX_FRAME)
		return ipc_recv_refuse(c, &rx, "longer than the frame limit",
				       (size_t)n);
	if ((size_t)n < IPC_HDR_SIZE)
		return ipc_recv_refuse(c, &rx, "truncated", (size_t)n);
	len = ipc_get_le32(hdr);
	if (len > IPC_MAX_PAYLOAD)
		return ipc_recv_refuse(c, &rx, "length field too large",
				       (size_t)n);
	if ((size_t)len != (size_t)n - IPC_HDR_SIZE)
		return ipc_recv_refuse(c, &rx, "length field mismatch",
				       (size_t)n);

	m->type = ipc_get_le16(hdr + 4);
	m->len = len;
	m->nfds = rx.nfds;
	memcpy(m->fds, rx.fds, sizeof(int) * rx.nfds);
	return 0;
}

void ipc_msg_close_fds(struct ipc_msg *m)
{
	unsigned n = m->nfds < IPC_MAX_FDS ? m->nfds : IPC_MAX_FDS;

	ipc_close_fd_array(m->fds, n);
	m->nfds = 0;
}

int ipc_msg_take_fd(struct ipc_msg *m, unsigned i)
{
	int fd;

	if (i >= m->nfds || i >= IPC_MAX_FDS)
		return -1;
	fd = m->fds[i];
	m->fds[i] = -1;
	return fd;
}

void *ipc_msg_unpack(const struct ipc_msg *m,
		     const ProtobufCMessageDescriptor *desc)
{
	if (m->len > IPC_MAX_PAYLOAD)
		return NULL;
	return protobuf_c_message_unpack(desc, NULL, m->len, m->payload);
}

/* The most entries a phase table may have: one ONCE bit each. */
#define IPC_PHASE_MAX_ENTRIES 64u

static const struct ipc_handler *ipc_find_row(const struct ipc_phase *ph,
					      uint16_t type, uint64_t *bit)
{
	unsigned n = ph->n < IPC_PHASE_MAX_ENTRIES ? ph->n
						   : IPC_PHASE_MAX_ENTRIES;

	for (unsigned i = 0; i < n; i++) {
		if (ph->tab[i].type == type) {
			*bit = UINT64_C(1) << i;
			return &ph->tab[i];
		}
	}
	return NULL;
}

/* Unpack, check and handle one typed row's message. */
static int ipc_run_row(const struct ipc_phase *ph,
		       const struct ipc_handler *h, void *ctx,
		       struct ipc_msg *m, const char **why)
{
	ProtobufCMessage *pb = NULL;
	int r = 0;

	if (m->nfds > h->max_fds) {
		*why = "carries more fds than it may";
		return -EPROTO;
	}
	if (h->desc) {
		pb = ipc_msg_unpack(m, h->desc);
		if (!pb) {
			*why = "does not unpack as its message";
			return -EPROTO;
		}
	}
	if (ph->check)
		r = ph->check(ctx, h, pb, m);
	if (r == 0) {
		r = h->fn(ctx, pb, m);
		if (h->flags & IPC_KEEP)
			pb = NULL;  /* the handler's now */
	} else if (r > 0) {
		r = 0;
	}
	if (pb)
		protobuf_c_message_free_unpacked(pb, NULL);
	return r;
}

int ipc_dispatch(struct ipc_chan *c, const struct ipc_phase *ph,
		 struct ipc_phase_state *st, void *ctx, struct ipc_msg *m)
{
	const struct ipc_handler *h;
	const char *why = NULL;
	uint64_t bit = 0;
	int r;

	h = ipc_find_row(ph, m->type, &bit);
	if (!h) {
		why = "unknown";
		goto out_refuse;
	}
	if (!(h->flags & IPC_PERMIT) || !h->fn) {
		why = "not permitted";
		goto out_refuse;
	}
	if (h->flags & IPC_ONCE) {
		/* Without book-keeping we cannot tell: refuse. */
		if (!st || (st->seen & bit)) {
			why = "already received once";
			goto out_refuse;
		}
		st->seen |= bit;
	}
	r = ipc_run_row(ph, h, ctx, m, &why);
	if (why)
		goto out_refuse;
	return r;

out_refuse:
	LOG_ERR("closing channel to %s: message type 0x%04x %s in phase '%s'",
		c->peer, m->type, why, ph->name ? ph->name : "?");
	if (ph->refuse)
		ph->refuse(ctx, m, why);
	ipc_msg_close_fds(m);
	ipc_chan_close(c);
	return -EPROTO;
}
