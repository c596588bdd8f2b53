/* SPDX-License-Identifier: MIT */
/* ipc channels: framing, protobuf payloads, fd passing, refusal, dispatch. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc/ipc.h"
#include "tests/unit/suites.h"
#include "worker.pb-c.h"

#define T_TYPE 0x0142u

/* Fixture: a connected pair, "a" sends, "b" receives, and one message. */
static struct ipc_chan t_a, t_b;
static struct ipc_msg *t_m;

static void t_setup(void)
{
	int fds[2];

	ck_assert_int_eq(ipc_chan_pair(fds), 0);
	ipc_chan_init(&t_a, fds[0], "peer-a");
	ipc_chan_init(&t_b, fds[1], "peer-b");
	t_m = malloc(sizeof(*t_m));
	ck_assert_ptr_nonnull(t_m);
	memset(t_m, 0xa5, sizeof(*t_m));
}

static void t_teardown(void)
{
	ipc_msg_close_fds(t_m);
	free(t_m);
	ipc_chan_close(&t_a);
	ipc_chan_close(&t_b);
}

static unsigned t_count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;  /* the directory's own fd */
}

/* A raw datagram, bypassing ipc_send, with optional fds. */
static void t_send_raw(int sock, const void *buf, size_t len, const int *fds,
		       unsigned nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 64)];
	} cbuf;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	ck_assert_uint_le(nfds, 64);
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
	ck_assert_int_eq(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

static void t_put_hdr(uint8_t *p, uint32_t len, uint16_t type)
{
	p[0] = (uint8_t)len;
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)(len >> 16);
	p[3] = (uint8_t)(len >> 24);
	p[4] = (uint8_t)type;
	p[5] = (uint8_t)(type >> 8);
}

/* After a refusal: -EPROTO, b closed, a sees the hang-up. */
static void t_assert_refused(int ret)
{
	ck_assert_int_eq(ret, -EPROTO);
	ck_assert_int_eq(t_b.fd, -1);
	ck_assert_uint_eq(t_m->nfds, 0);
	for (unsigned i = 0; i < IPC_MAX_FDS; i++)
		ck_assert_int_eq(t_m->fds[i], -1);
	ck_assert_int_eq(ipc_send(&t_a, T_TYPE, "x", 1, NULL, 0), -EPIPE);
}

/* ---- framing ----------------------------------------------------------- */

START_TEST(test_frame_round_trip)
{
	static const char msg[] = "hello, device";

	ck_assert_int_eq(ipc_send(&t_a, T_TYPE, msg, sizeof(msg), NULL, 0), 0);
	ck_assert_int_eq(ipc_recv(&t_b, t_m), 0);
	ck_assert_uint_eq(t_m->type, T_TYPE);
	ck_assert_uint_eq(t_m->len, sizeof(msg));
	ck_assert_mem_eq(t_m->payload, msg, sizeof(msg));
	ck_assert_uint_eq(t_m->nfds, 0);
	for (unsigned i = 0; i < IPC_MAX_FDS; i++)
		ck_assert_int_eq(t_m->fds[i], -1);
}
END_TEST

START_TEST(test_frame_empty_payload)
{
	ck_assert_int_eq(ipc_send(&t_a, 0x0203, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(ipc_recv(&t_b, t_m), 0);
	ck_assert_uint_eq(t_m->type, 0x0203);
	ck_assert_uint_eq(t_m->len, 0);
	ck_assert_uint_eq(t_m->nfds, 0);
}
END_TEST

START_TEST(test_frame_order_and_wire_format)
{
	uint8_t raw[16];
	ssize_t n;

	/* Frames keep their boundaries and order. */
	ck_assert_int_eq(ipc_send(&t_a, 1, "ab", 2, NULL, 0), 0);
	ck_assert_int_eq(ipc_send(&t_a, 2, "cde", 3, NULL, 0), 0);
	ck_assert_int_eq(ipc_recv(&t_b, t_m), 0);
	ck_assert_uint_eq(t_m->type, 1);
	ck_assert_uint_eq(t_m->len, 2);
	ck_assert_int_eq(ipc_recv(&t_b, t_m), 0);
	ck_assert_uint_eq(t_m->type, 2);
	ck_assert_mem_eq(t_m->payload, "cde", 3);

	/* On the wire: u32 LE length, u16 LE type, payload. */
	ck_assert_int_eq(ipc_send(&t_a, 0x1234, "xyz", 3, NULL, 0), 0);
	n = recv(t_b.fd, raw, sizeof(raw), 0);
	ck_assert_int_eq(n, 9);
	ck_assert_mem_eq(raw, "\x03\x00\x00\x00\x34\x12xyz", 9);
}
END_TEST

START_TEST(test_frame_max_payload)
{
	uint8_t *big = malloc(IPC_MAX_PAYLOAD + 1);

	ck_assert_ptr_nonnull(big);
	for (size_t i = 0; i <= IPC_MAX_PAYLOAD; i++)
		big[i] = (uint8_t)(i * 7);
	ck_assert_int_eq(ipc_send(&t_a, T_TYPE, big, IPC_MAX_PAYLOAD, NULL, 0),
			 0);
	ck_assert_int_eq(ipc_recv(&t_b, t_m), 0);
	ck_assert_uint_eq(t_m->len, IPC_MAX_PAYLOAD);
	ck_assert_mem_eq(t_m->payload, big, IPC_MAX_PAYLOAD);
	/* One byte more is refused by the sender. */
	ck_assert_int_eq(ipc_send(&t_a, T_TYPE, big, IPC_MAX_PAYLOAD + 1, NULL,
				  0), -EMSGSIZE);
	free(big);
}
END_TEST

START_TEST(test_send_too_many_fds)
{
	int fds[IPC_MAX_FDS + 1];

	for (unsigned i = 0; i <= IPC_MAX_FDS; i++)
		fds[i] = 0;
	ck_assert_int_eq(ipc_send(&t_a, T_TYPE, NULL, 0, fds, IPC_MAX_FDS + 1),
			 -EMSGSIZE);
}
END_TEST

START_TEST(test_send_to_closed_peer)
{
	ipc_chan_close(&t_b);
	/* No SIGPIPE (MSG_NOSIGNAL): this test would die of it. */
	ck_assert_int_eq(ipc_send(&t_a, T_TYPE, "x", 1, NULL, 0), -EPIPE);
	ck_assert_int_eq(ipc_send(&t_a, T_TYPE, NULL, 0, NULL, 0), -EPIPE);
	/* A closed channel of our own is not a peer problem. */
	ipc_chan_close(&t_a);
	ipc_chan_close(&t_a);
	ck_assert_int_eq(ipc_send(&t_a, T_TYPE, "x", 1, NULL, 0), -EBADF);
}
END_TEST

START_TEST(test_recv_eof)
{
	ipc_chan_close(&t_a);
	ck_assert_int_eq(ipc_recv(&t_b, t_m), -ECONNRESET);
	ck_assert_uint_eq(t_m->nfds, 0);
}
END_TEST

START_TEST(test_recv_nonblocking)
{
	int fl = fcntl(t_b.fd, F_GETFL);

	ck_assert_int_eq(fcntl(t_b.fd, F_SETFL, fl | O_NONBLOCK), 0);
	ck_assert_int_eq(ipc_recv(&t_b, t_m), -EAGAIN);
	ck_assert_int_ge(t_b.fd, 0);
	ck_assert_int_eq(ipc_send(&t_a, T_TYPE, "q", 1, NULL, 0), 0);
	ck_assert_int_eq(ipc_recv(&t_b, t_m), 0);
	ck_assert_uint_eq(t_m->payload[0], 'q');
}
END_TEST

/* ---- protobuf ---------------------------------------------------------- */

START_TEST(test_pb_round_trip)
{
	WorkerInit wi = WORKER_INIT__INIT;
	DeviceSpec ds = DEVICE_SPEC__INIT;
	DeviceSpec *devs[1] = { &ds };
	WorkerInit *got;

	wi.mem_size = UINT64_C(256) << 20;
	wi.cpus = 2;
	wi.cmdline = "console=ttyS0 quiet";
	wi.has_initrd = true;
	ds.kind = "uart";
	ds.instance = 3;
	wi.n_devices = 1;
	wi.devices = devs;

	ck_assert_int_eq(ipc_send_pb(&t_a, T_TYPE, &wi.base, NULL, 0), 0);
	ck_assert_int_eq(ipc_recv(&t_b, t_m), 0);
	ck_assert_uint_eq(t_m->type, T_TYPE);
	ck_assert_uint_eq(t_m->len, worker_init__get_packed_size(&wi));
	got = ipc_msg_unpack(t_m, &worker_init__descriptor);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(got->mem_size, UINT64_C(256) << 20);
	ck_assert_uint_eq(got->cpus, 2);
	ck_assert_str_eq(got->cmdline, "console=ttyS0 quiet");
	ck_assert(got->has_initrd);
	ck_assert_uint_eq(got->n_devices, 1);
	ck_assert_str_eq(got->devices[0]->kind, "uart");
	ck_assert_uint_eq(got->devices[0]->instance, 3);
	protobuf_c_message_free_unpacked(&got->base, NULL);
}
END_TEST

START_TEST(test_pb_large_and_invalid)
{
	WorkerInit wi = WORKER_INIT__INIT;
	char *line = malloc(IPC_MAX_PAYLOAD + 16);
	WorkerInit *got;

	ck_assert_ptr_nonnull(line);
	/* Bigger than the stack buffer, smaller than the cap: heap path. */
	memset(line, 'k', 4000);
	line[4000] = '\0';
	wi.cmdline = line;
	ck_assert_int_eq(ipc_send_pb(&t_a, T_TYPE, &wi.base, NULL, 0), 0);
	ck_assert_int_eq(ipc_recv(&t_b, t_m), 0);
	got = ipc_msg_unpack(t_m, &worker_init__descriptor);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(strlen(got->cmdline), 4000);
	protobuf_c_message_free_unpacked(&got->base, NULL);

	/* Over the cap: refused before anything is sent. */
	memset(line, 'k', IPC_MAX_PAYLOAD + 8);
	line[IPC_MAX_PAYLOAD + 8] = '\0';
	ck_assert_int_eq(ipc_send_pb(&t_a, T_TYPE, &wi.base, NULL, 0),
			 -EMSGSIZE);
	free(line);

	/* Garbage payload: unpack says no. */
	ck_assert_int_eq(ipc_send(&t_a, T_TYPE, "\xff\xff\xff", 3, NULL, 0), 0);
	ck_assert_int_eq(ipc_recv(&t_b, t_m), 0);
	ck_assert_ptr_null(ipc_msg_unpack(t_m, &worker_init__descriptor));
}
END_TEST

/* ---- malformed frames -------------------------------------------------- */

START_TEST(test_bad_truncated)
{
	ck_assert_int_eq(send(t_a.fd, "\x01\x00\x00", 3, MSG_NOSIGNAL), 3);
	t_assert_refused(ipc_recv(&t_b, t_m));
}
END_TEST

START_TEST(test_bad_length_mismatch)
{
	uint8_t raw[IPC_HDR_SIZE + 5];

	t_put_hdr(raw, 10, T_TYPE);  /* says 10, carries 5 */
	memcpy(raw + IPC_HDR_SIZE, "12345", 5);
	t_send_raw(t_a.fd, raw, sizeof(raw), NULL, 0);
	t_assert_refused(ipc_recv(&t_b, t_m));
}
END_TEST

START_TEST(test_bad_length_short)
{
	uint8_t raw[IPC_HDR_SIZE + 5];

	t_put_hdr(raw, 4, T_TYPE);  /* says 4, carries 5 */
	t_send_raw(t_a.fd, raw, sizeof(raw), NULL, 0);
	t_assert_refused(ipc_recv(&t_b, t_m));
}
END_TEST

START_TEST(test_bad_oversized)
{
	size_t len = IPC_MAX_FRAME + 100;
	uint8_t *raw = calloc(1, len);
	int sndbuf = 1 << 20;
	int pipefd[2];
	char c;

	ck_assert_ptr_nonnull(raw);
	ck_assert_int_eq(setsockopt(t_a.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf,
				    sizeof(sndbuf)), 0);
	/* A self-consistent header: only the size is wrong. */
	t_put_hdr(raw, (uint32_t)(len - IPC_HDR_SIZE), T_TYPE);
	ck_assert_int_eq(pipe(pipefd), 0);
	t_send_raw(t_a.fd, raw, len, &pipefd[1], 1);
	close(pipefd[1]);
	t_assert_refused(ipc_recv(&t_b, t_m));
	/* The fd that came with it was closed: the pipe has no writer. */
	ck_assert_int_eq(read(pipefd[0], &c, 1), 0);
	close(pipefd[0]);
	free(raw);
}
END_TEST

START_TEST(test_bad_one_past_max)
{
	size_t len = IPC_MAX_FRAME + 1;
	uint8_t *raw = calloc(1, len);

	ck_assert_ptr_nonnull(raw);
	t_put_hdr(raw, (uint32_t)(len - IPC_HDR_SIZE), T_TYPE);
	t_send_raw(t_a.fd, raw, len, NULL, 0);
	t_assert_refused(ipc_recv(&t_b, t_m));
	free(raw);
}
END_TEST

START_TEST(test_bad_too_many_fds)
{
	enum { N = IPC_MAX_FDS + 4 };
	uint8_t raw[IPC_HDR_SIZE];
	int fds[N];
	unsigned before;
	int devnull;

	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(devnull, 0);
	before = t_count_open_fds();
	for (unsigned i = 0; i < N; i++)
		fds[i] = devnull;
	t_put_hdr(raw, 0, T_TYPE);
	t_send_raw(t_a.fd, raw, sizeof(raw), fds, N);
	t_assert_refused(ipc_recv(&t_b, t_m));
	/* Every received fd was closed again; only b itself is gone. */
	ck_assert_uint_eq(t_count_open_fds(), before - 1);
	close(devnull);
}
END_TEST

START_TEST(test_bad_max_fds_plus_one)
{
	uint8_t raw[IPC_HDR_SIZE];
	int fds[IPC_MAX_FDS + 1];

	for (unsigned i = 0; i <= IPC_MAX_FDS; i++)
		fds[i] = STDERR_FILENO;
	t_put_hdr(raw, 0, T_TYPE);
	t_send_raw(t_a.fd, raw, sizeof(raw), fds, IPC_MAX_FDS + 1);
	t_assert_refused(ipc_recv(&t_b, t_m));
}
END_TEST

START_TEST(test_bad_foreign_cmsg)
{
	int on = 1;

	/* With SO_PASSCRED every datagram carries SCM_CREDENTIALS. */
	ck_assert_int_eq(setsockopt(t_b.fd, SOL_SOCKET, SO_PASSCRED, &on,
				    sizeof(on)), 0);
	ck_assert_int_eq(ipc_send(&t_a, T_TYPE, "ok", 2, NULL, 0), 0);
	t_assert_refused(ipc_recv(&t_b, t_m));
}
END_TEST

/* ---- fd passing -------------------------------------------------------- */

START_TEST(test_fd_pass_pipe)
{
	int p[2], w;
	char buf[8];

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(ipc_send(&t_a, T_TYPE, "fd", 2, &p[1], 1), 0);
	close(p[1]);
	ck_assert_int_eq(ipc_recv(&t_b, t_m), 0);
	ck_assert_uint_eq(t_m->nfds, 1);
	ck_assert_int_eq(ipc_msg_take_fd(t_m, 1), -1);
	w = ipc_msg_take_fd(t_m, 0);
	ck_assert_int_ge(w, 0);
	ck_assert_int_eq(t_m->fds[0], -1);
	ck_assert_int_eq(ipc_msg_take_fd(t_m, 0), -1);
	ck_assert_int_eq(fcntl(w, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	ck_assert_int_eq(write(w, "ping", 4), 4);
	close(w);
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 4);
	ck_assert_mem_eq(buf, "ping", 4);
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 0);  /* no writer left */
	close(p[0]);
}
END_TEST

START_TEST(test_fd_pass_many)
{
	int rd[IPC_MAX_FDS], wr[IPC_MAX_FDS];
	char c;

	for (unsigned i = 0; i < IPC_MAX_FDS; i++) {
		int p[2];

		ck_assert_int_eq(pipe(p), 0);   /* not CLOEXEC on purpose */
		rd[i] = p[0];
		wr[i] = p[1];
	}
	ck_assert_int_eq(ipc_send(&t_a, T_TYPE, NULL, 0, wr, IPC_MAX_FDS), 0);
	for (unsigned i = 0; i < IPC_MAX_FDS; i++)
		close(wr[i]);
	ck_assert_int_eq(ipc_recv(&t_b, t_m), 0);
	ck_assert_uint_eq(t_m->nfds, IPC_MAX_FDS);
	for (unsigned i = 0; i < IPC_MAX_FDS; i++) {
		char v = (char)('A' + i);

		ck_assert_int_eq(fcntl(t_m->fds[i], F_GETFD) & FD_CLOEXEC,
				 FD_CLOEXEC);
		/* Order is preserved: fd i is the write end of pipe i. */
		ck_assert_int_eq(write(t_m->fds[i], &v, 1), 1);
		ck_assert_int_eq(read(rd[i], &c, 1), 1);
		ck_assert_int_eq(c, v);
	}
	/* ipc_msg_close_fds drops them all: every pipe sees EOF. */
	ipc_msg_close_fds(t_m);
	for (unsigned i = 0; i < IPC_MAX_FDS; i++) {
		ck_assert_int_eq(t_m->fds[i], -1);
		ck_assert_int_eq(read(rd[i], &c, 1), 0);
		close(rd[i]);
	}
}
END_TEST

START_TEST(test_fd_no_leak)
{
	/* Ordinary frames after fd frames still work; fds do not leak. */
	unsigned before = t_count_open_fds();

	for (int i = 0; i < 50; i++) {
		int fd = STDIN_FILENO;

		ck_assert_int_eq(ipc_send(&t_a, T_TYPE, "z", 1, &fd, 1), 0);
		ck_assert_int_eq(ipc_recv(&t_b, t_m), 0);
		ck_assert_uint_eq(t_m->nfds, 1);
		ipc_msg_close_fds(t_m);
	}
	ck_assert_uint_eq(t_count_open_fds(), before);
}
END_TEST

/* ---- dispatch ---------------------------------------------------------- */

struct t_ctx {
	int calls_a;
	int calls_b;
	uint16_t last_type;
};

static int t_handle_a(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct t_ctx *tc = ctx;

	(void)pb;
	tc->calls_a++;
	tc->last_type = m->type;
	return 7;
}

static int t_handle_b(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct t_ctx *tc = ctx;

	(void)pb;
	tc->calls_b++;
	tc->last_type = m->type;
	return -ENOENT;
}

/* Rows without a message (desc NULL): the payload is not looked at. */
static const struct ipc_handler t_tab[] = {
	{ .type = 0x0202, .flags = IPC_PERMIT | IPC_ONCE, .fn = t_handle_a },
	{ .type = 0x0204, .fn = t_handle_a },     /* known, not permitted */
	{ .type = 0x0206, .flags = IPC_PERMIT, .fn = t_handle_a, .max_fds = 1 },
	{ .type = 0x0208, .flags = IPC_PERMIT, .fn = t_handle_b },
};
static const struct ipc_phase t_phase = {
	.name = "registered", .tab = t_tab, .n = 4,
};

/* Send one frame a -> b (with one pipe write end) and receive it. */
static int t_recv_with_pipe(uint16_t type, int *rd)
{
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(ipc_send(&t_a, type, "d", 1, &p[1], 1), 0);
	close(p[1]);
	*rd = p[0];
	return ipc_recv(&t_b, t_m);
}

static void t_assert_dispatch_refused(int ret, int rd)
{
	char c;

	ck_assert_int_eq(ret, -EPROTO);
	ck_assert_int_eq(t_b.fd, -1);
	/* m's fds were closed: the pipe has no writer left. */
	ck_assert_int_eq(t_m->fds[0], -1);
	ck_assert_int_eq(read(rd, &c, 1), 0);
	close(rd);
	/* The peer sees the channel go away. */
	ck_assert_int_eq(ipc_recv(&t_a, t_m), -ECONNRESET);
}

START_TEST(test_dispatch_permitted)
{
	struct ipc_phase_state st = { 0 };
	struct t_ctx tc = { 0 };
	int rd;

	ck_assert_int_eq(t_recv_with_pipe(0x0206, &rd), 0);
	ck_assert_int_eq(ipc_dispatch(&t_b, &t_phase, &st, &tc, t_m), 7);
	ck_assert_int_eq(tc.calls_a, 1);
	ck_assert_uint_eq(tc.last_type, 0x0206);
	/* The handler did not take the fd: still m's. */
	ck_assert_int_ge(t_m->fds[0], 0);
	ipc_msg_close_fds(t_m);
	close(rd);
	/* Non-ONCE entries may repeat; the channel stays open. */
	ck_assert_int_eq(ipc_send(&t_a, 0x0206, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(ipc_recv(&t_b, t_m), 0);
	ck_assert_int_eq(ipc_dispatch(&t_b, &t_phase, &st, &tc, t_m), 7);
	ck_assert_int_eq(tc.calls_a, 2);
	ck_assert_int_ge(t_b.fd, 0);
	/* A handler's error is passed through and closes nothing. */
	ck_assert_int_eq(ipc_send(&t_a, 0x0208, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(ipc_recv(&t_b, t_m), 0);
	ck_assert_int_eq(ipc_dispatch(&t_b, &t_phase, &st, &tc, t_m), -ENOENT);
	ck_assert_int_eq(tc.calls_b, 1);
	ck_assert_int_ge(t_b.fd, 0);
}
END_TEST

START_TEST(test_dispatch_unknown)
{
	struct ipc_phase_state st = { 0 };
	struct t_ctx tc = { 0 };
	int rd, ret;

	ck_assert_int_eq(t_recv_with_pipe(0x0300, &rd), 0);
	ret = ipc_dispatch(&t_b, &t_phase, &st, &tc, t_m);
	t_assert_dispatch_refused(ret, rd);
	ck_assert_int_eq(tc.calls_a + tc.calls_b, 0);
}
END_TEST

START_TEST(test_dispatch_not_permitted)
{
	struct ipc_phase_state st = { 0 };
	struct t_ctx tc = { 0 };
	int rd, ret;

	ck_assert_int_eq(t_recv_with_pipe(0x0204, &rd), 0);
	ret = ipc_dispatch(&t_b, &t_phase, &st, &tc, t_m);
	t_assert_dispatch_refused(ret, rd);
	ck_assert_int_eq(tc.calls_a, 0);
}
END_TEST

START_TEST(test_dispatch_once)
{
	struct ipc_phase_state st = { 0 };
	struct t_ctx tc = { 0 };
	int rd, ret;

	ck_assert_int_eq(ipc_send(&t_a, 0x0202, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(ipc_recv(&t_b, t_m), 0);
	ck_assert_int_eq(ipc_dispatch(&t_b, &t_phase, &st, &tc, t_m), 7);
	ck_assert_int_eq(tc.calls_a, 1);
	ck_assert_uint_ne(st.seen, 0);

	ck_assert_int_eq(t_recv_with_pipe(0x0202, &rd), 0);
	ret = ipc_dispatch(&t_b, &t_phase, &st, &tc, t_m);
	t_assert_dispatch_refused(ret, rd);
	ck_assert_int_eq(tc.calls_a, 1);
}
END_TEST

START_TEST(test_dispatch_once_fresh_state)
{
	struct ipc_phase_state st = { 0 };
	struct t_ctx tc = { 0 };

	/* A reset state (new phase) permits the ONCE type again. */
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(ipc_send(&t_a, 0x0202, NULL, 0, NULL, 0), 0);
		ck_assert_int_eq(ipc_recv(&t_b, t_m), 0);
		ck_assert_int_eq(ipc_dispatch(&t_b, &t_phase, &st, &tc, t_m),
				 7);
		st = (struct ipc_phase_state){ 0 };
	}
	ck_assert_int_eq(tc.calls_a, 2);
}
END_TEST

/* ---- typed rows: unpacking, fd counts, checks, refusals -------------------- */

struct t_typed {
	int calls;
	uint32_t seq;                 /* what the handler saw */
	int check_ret;                /* what the check returns */
	int checks;
	const char *refused;          /* why, as the refuse hook heard it */
	void *kept;                   /* an IPC_KEEP handler's message */
};

static int t_typed_fn(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct t_typed *t = ctx;
	const VmControl *vc = pb;

	(void)m;
	t->calls++;
	t->seq = vc->seq;
	return 0;
}

static int t_typed_keep(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct t_typed *t = ctx;

	(void)m;
	t->calls++;
	t->kept = (void *)pb;
	return 0;
}

static int t_typed_check(void *ctx, const struct ipc_handler *h,
			 const void *pb, struct ipc_msg *m)
{
	struct t_typed *t = ctx;

	(void)m;
	ck_assert_ptr_nonnull(pb);           /* unpacked before the check */
	ck_assert_uint_eq(h->who, 3);        /* the row's own fields */
	ck_assert_uint_eq(h->when, 5);
	t->checks++;
	return t->check_ret;
}

static void t_typed_refuse(void *ctx, const struct ipc_msg *m,
			   const char *why)
{
	struct t_typed *t = ctx;

	(void)m;
	t->refused = why;
}

static const struct ipc_handler t_typed_tab[] = {
	{ .type = 0x0106, .flags = IPC_PERMIT, .name = "control",
	  .desc = &vm_control__descriptor, .fn = t_typed_fn, .max_fds = 1,
	  .who = 3, .when = 5 },
	{ .type = 0x0108, .flags = IPC_PERMIT | IPC_KEEP, .name = "keep",
	  .desc = &vm_control__descriptor, .fn = t_typed_keep,
	  .who = 3, .when = 5 },
};
static const struct ipc_phase t_typed_phase = {
	.name = "typed", .tab = IPC_TAB(t_typed_tab), .check = t_typed_check,
	.refuse = t_typed_refuse,
};

static void t_send_control(uint16_t type, uint32_t seq, const int *fds,
			   unsigned nfds)
{
	VmControl vc = VM_CONTROL__INIT;

	vc.seq = seq;
	ck_assert_int_eq(ipc_send_pb(&t_a, type, &vc.base, fds, nfds), 0);
	ck_assert_int_eq(ipc_recv(&t_b, t_m), 0);
}

START_TEST(test_typed_unpacks)
{
	struct t_typed t = { 0 };
	struct ipc_phase_state st = { 0 };

	t_send_control(0x0106, 42, NULL, 0);
	ck_assert_int_eq(ipc_dispatch(&t_b, &t_typed_phase, &st, &t, t_m), 0);
	ck_assert_int_eq(t.checks, 1);
	ck_assert_int_eq(t.calls, 1);
	ck_assert_uint_eq(t.seq, 42);
	ck_assert_ptr_null(t.refused);
	ck_assert_int_ge(t_b.fd, 0);
}
END_TEST

START_TEST(test_typed_malformed_payload)
{
	struct t_typed t = { 0 };
	struct ipc_phase_state st = { 0 };
	/* field 1 (op) as a varint whose continuation never ends */
	static const uint8_t junk[] = { 0x08, 0xff, 0xff, 0xff };

	ck_assert_int_eq(ipc_send(&t_a, 0x0106, junk, sizeof(junk), NULL, 0),
			 0);
	ck_assert_int_eq(ipc_recv(&t_b, t_m), 0);
	ck_assert_int_eq(ipc_dispatch(&t_b, &t_typed_phase, &st, &t, t_m),
			 -EPROTO);
	ck_assert_int_eq(t.calls + t.checks, 0);
	ck_assert_str_eq(t.refused, "does not unpack as its message");
	ck_assert_int_eq(t_b.fd, -1);
}
END_TEST

START_TEST(test_typed_too_many_fds)
{
	struct t_typed t = { 0 };
	struct ipc_phase_state st = { 0 };
	int p[2], q[2];
	int fds[2];

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(pipe(q), 0);
	fds[0] = p[1];
	fds[1] = q[1];
	/* One fd is allowed: the handler runs and the fd stays in m. */
	t_send_control(0x0106, 1, fds, 1);
	ck_assert_int_eq(ipc_dispatch(&t_b, &t_typed_phase, &st, &t, t_m), 0);
	ck_assert_int_eq(t.calls, 1);
	ipc_msg_close_fds(t_m);
	/* Two are not: refused, both closed, the channel too. */
	t_send_control(0x0106, 2, fds, 2);
	close(p[1]);
	close(q[1]);
	ck_assert_int_eq(ipc_dispatch(&t_b, &t_typed_phase, &st, &t, t_m),
			 -EPROTO);
	ck_assert_int_eq(t.calls, 1);
	ck_assert_str_eq(t.refused, "carries more fds than it may");
	t_assert_dispatch_refused(-EPROTO, p[0]);
	close(q[0]);
}
END_TEST

START_TEST(test_typed_check_refuses)
{
	struct t_typed t = { .check_ret = 1 };
	struct ipc_phase_state st = { 0 };

	/* 1: refused politely (the check answered), channel open. */
	t_send_control(0x0106, 7, NULL, 0);
	ck_assert_int_eq(ipc_dispatch(&t_b, &t_typed_phase, &st, &t, t_m), 0);
	ck_assert_int_eq(t.checks, 1);
	ck_assert_int_eq(t.calls, 0);
	ck_assert_int_ge(t_b.fd, 0);
	/* < 0: passed through; the caller closes what it wants. */
	t.check_ret = -EPERM;
	t_send_control(0x0106, 8, NULL, 0);
	ck_assert_int_eq(ipc_dispatch(&t_b, &t_typed_phase, &st, &t, t_m),
			 -EPERM);
	ck_assert_int_eq(t.calls, 0);
}
END_TEST

START_TEST(test_typed_keep)
{
	struct t_typed t = { 0 };
	struct ipc_phase_state st = { 0 };

	t_send_control(0x0108, 9, NULL, 0);
	ck_assert_int_eq(ipc_dispatch(&t_b, &t_typed_phase, &st, &t, t_m), 0);
	ck_assert_ptr_nonnull(t.kept);
	/* Still valid: ipc_dispatch did not free it (ASan would tell). */
	ck_assert_uint_eq(((VmControl *)t.kept)->seq, 9);
	protobuf_c_message_free_unpacked(t.kept, NULL);
}
END_TEST

START_TEST(test_typed_unknown_told)
{
	struct t_typed t = { 0 };
	struct ipc_phase_state st = { 0 };

	t_send_control(0x0300, 1, NULL, 0);
	ck_assert_int_eq(ipc_dispatch(&t_b, &t_typed_phase, &st, &t, t_m),
			 -EPROTO);
	ck_assert_str_eq(t.refused, "unknown");
	ck_assert_int_eq(t.checks, 0);
}
END_TEST

Suite *ipc_suite(void)
{
	Suite *s = suite_create("ipc");
	TCase *tc;

	tc = tcase_create("framing");
	tcase_add_checked_fixture(tc, t_setup, t_teardown);
	tcase_add_test(tc, test_frame_round_trip);
	tcase_add_test(tc, test_frame_empty_payload);
	tcase_add_test(tc, test_frame_order_and_wire_format);
	tcase_add_test(tc, test_frame_max_payload);
	tcase_add_test(tc, test_send_too_many_fds);
	tcase_add_test(tc, test_send_to_closed_peer);
	tcase_add_test(tc, test_recv_eof);
	tcase_add_test(tc, test_recv_nonblocking);
	suite_add_tcase(s, tc);

	tc = tcase_create("protobuf");
	tcase_add_checked_fixture(tc, t_setup, t_teardown);
	tcase_add_test(tc, test_pb_round_trip);
	tcase_add_test(tc, test_pb_large_and_invalid);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_checked_fixture(tc, t_setup, t_teardown);
	tcase_add_test(tc, test_bad_truncated);
	tcase_add_test(tc, test_bad_length_mismatch);
	tcase_add_test(tc, test_bad_length_short);
	tcase_add_test(tc, test_bad_oversized);
	tcase_add_test(tc, test_bad_one_past_max);
	tcase_add_test(tc, test_bad_too_many_fds);
	tcase_add_test(tc, test_bad_max_fds_plus_one);
	tcase_add_test(tc, test_bad_foreign_cmsg);
	suite_add_tcase(s, tc);

	tc = tcase_create("fds");
	tcase_add_checked_fixture(tc, t_setup, t_teardown);
	tcase_add_test(tc, test_fd_pass_pipe);
	tcase_add_test(tc, test_fd_pass_many);
	tcase_add_test(tc, test_fd_no_leak);
	suite_add_tcase(s, tc);

	tc = tcase_create("dispatch");
	tcase_add_checked_fixture(tc, t_setup, t_teardown);
	tcase_add_test(tc, test_dispatch_permitted);
	tcase_add_test(tc, test_dispatch_unknown);
	tcase_add_test(tc, test_dispatch_not_permitted);
	tcase_add_test(tc, test_dispatch_once);
	tcase_add_test(tc, test_dispatch_once_fresh_state);
	tcase_add_test(tc, test_typed_unpacks);
	tcase_add_test(tc, test_typed_malformed_payload);
	tcase_add_test(tc, test_typed_too_many_fds);
	tcase_add_test(tc, test_typed_check_refuses);
	tcase_add_test(tc, test_typed_keep);
	tcase_add_test(tc, test_typed_unknown_told);
	suite_add_tcase(s, tc);

	return s;
}
