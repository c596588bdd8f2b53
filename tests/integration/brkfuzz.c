/* SPDX-License-Identifier: MIT */
/*
 * brkfuzz: a hostile client for bulkheadd (tests/integration/
 * test_broker_fuzz.sh). It sends malformed, truncated, oversized and
 * out-of-phase messages, leaves connections half-open, floods without
 * reading, and after every case checks that a well-behaved client is still
 * served. Each case says what the broker did: answered with an error,
 * dropped the connection, or both.
 *
 *   brkfuzz SOCKET
 *
 * Exit status 0 when the broker met every expectation, 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "broker/control.h"
#include "control.pb-c.h"
#include "ipc/ipc.h"
#include "ipc/log.h"
#include "proto/msgtypes.h"

static const char *fz_path;
static struct ipc_msg fz_msg;
static int fz_failures;

static int fz_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fz_path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "brkfuzz: cannot connect to %s: %s\n", fz_path,
			strerror(errno));
		exit(1);
	}
	return fd;
}

static void fz_raw(int fd, const void *buf, size_t len)
{
	if (send(fd, buf, len, MSG_NOSIGNAL) < 0)
		printf("  (send: %s)\n", strerror(errno));
}

static void fz_frame(int fd, uint32_t len_field, uint16_t type,
		     const void *payload, size_t len)
{
	uint8_t *b = calloc(1, 6 + len);

	b[0] = (uint8_t)len_field;
	b[1] = (uint8_t)(len_field >> 8);
	b[2] = (uint8_t)(len_field >> 16);
	b[3] = (uint8_t)(len_field >> 24);
	b[4] = (uint8_t)type;
	b[5] = (uint8_t)(type >> 8);
	if (len)
		memcpy(b + 6, payload, len);
	fz_raw(fd, b, 6 + len);
	free(b);
}

static void fz_pb(int fd, uint16_t type, const ProtobufCMessage *pb,
		  const int *fds, unsigned nfds)
{
	struct ipc_chan c;

	ipc_chan_init(&c, fd, "bulkheadd");
	if (ipc_send_pb(&c, type, pb, fds, nfds) < 0)
		printf("  (send failed)\n");
}

static void fz_hello(int fd, uint32_t version)
{
	Hello h = HELLO__INIT;

	h.version = version;
	h.client = "brkfuzz";
	fz_pb(fd, MSG_HELLO, &h.base, NULL, 0);
}

/* What the broker did within timeout_ms. */
struct fz_outcome {
	int errors;            /* ErrorReply frames */
	int answers;           /* other frames */
	bool dropped;          /* EOF */
	char last_error[256];
};

static struct fz_outcome fz_watch(int fd, int timeout_ms, bool until_frame)
{
	struct fz_outcome o = { 0 };
	struct ipc_chan c;

	ipc_chan_init(&c, fd, "bulkheadd");
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, timeout_ms);

		if (r <= 0)
			break;
		r = ipc_recv(&c, &fz_msg);
		if (r < 0) {
			o.dropped = true;
			break;
		}
		ipc_msg_close_fds(&fz_msg);
		if (fz_msg.type == MSG_ERROR_REPLY) {
			ErrorReply *er = ipc_msg_unpack(&fz_msg,
							&error_reply__descriptor);

			o.errors++;
			snprintf(o.last_error, sizeof(o.last_error), "%s",
				 er ? er->message : "(malformed)");
			if (er)
				error_reply__free_unpacked(er, NULL);
		} else {
			o.answers++;
		}
		if (until_frame)
			break;
	}
	return o;
}

/* A well-behaved client: Hello, List; true if both are answered. */
static bool fz_good_client(void)
{
	int fd = fz_connect();
	ListReq lr = LIST_REQ__INIT;
	struct fz_outcome o;
	bool ok;

	fz_hello(fd, BRK_PROTO_VERSION);
	o = fz_watch(fd, 5000, true);
	ok = o.answers == 1;
	if (ok) {
		fz_pb(fd, MSG_CTL_LIST, &lr.base, NULL, 0);
		o = fz_watch(fd, 5000, true);
		ok = o.answers == 1 && !o.errors;
	}
	close(fd);
	return ok;
}

enum fz_expect { FZ_DROP, FZ_ERROR_KEEP };

static void fz_check(const char *name, int fd, enum fz_expect want,
		     int timeout_ms)
{
	struct fz_outcome o = fz_watch(fd, timeout_ms, want == FZ_ERROR_KEEP);
	bool ok, good;

	if (want == FZ_DROP)
		ok = o.dropped;
	else
		ok = o.errors == 1 && !o.dropped;
	printf("case %-28s %s%s%s%s%s\n", name,
	       o.errors ? "error reply: '" : "", o.errors ? o.last_error : "",
	       o.errors ? "'" : "no error reply",
	       o.dropped ? ", dropped" : ", still connected",
	       ok ? "" : "  <-- UNEXPECTED");
	good = fz_good_client();
	if (!good)
		printf("  a well-behaved client was NOT served after this case\n");
	if (!ok || !good)
		fz_failures++;
	close(fd);
}

static int64_t fz_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Malformed frames: garbage, short or lying headers, oversized, empty. */
static void fz_cases_malformed(const uint8_t *junk, size_t njunk)
{
	uint8_t *big;
	int fd;

	fd = fz_connect();
	fz_raw(fd, junk, njunk);
	fz_check("garbage", fd, FZ_DROP, 3000);

	fd = fz_connect();
	fz_raw(fd, "\x01\x00\x00", 3);
	fz_check("truncated-header", fd, FZ_DROP, 3000);

	fd = fz_connect();
	fz_frame(fd, 100, MSG_HELLO, junk, 10);
	fz_check("length-mismatch", fd, FZ_DROP, 3000);

	fd = fz_connect();
	fz_frame(fd, 0xffffffffu, MSG_HELLO, junk, 10);
	fz_check("length-field-huge", fd, FZ_DROP, 3000);

	fd = fz_connect();
	big = calloc(1, 70000);
	fz_frame(fd, 70000, MSG_HELLO, big, 70000);
	free(big);
	fz_check("oversized", fd, FZ_DROP, 3000);

	fd = fz_connect();
	fz_raw(fd, "", 0);
	fz_check("empty-datagram", fd, FZ_DROP, 3000);
}

/* Out of phase, or not protocol at all. */
static void fz_cases_phase(void)
{
	ListReq lr = LIST_REQ__INIT;
	int fd;

	fd = fz_connect();
	fz_pb(fd, MSG_CTL_LIST, &lr.base, NULL, 0);
	fz_check("request-before-hello", fd, FZ_DROP, 3000);

	fd = fz_connect();
	fz_hello(fd, 999);
	fz_check("wrong-version", fd, FZ_DROP, 3000);

	fd = fz_connect();
	fz_hello(fd, BRK_PROTO_VERSION);
	fz_watch(fd, 3000, true);
	fz_hello(fd, BRK_PROTO_VERSION);
	fz_check("hello-twice", fd, FZ_DROP, 3000);

	fd = fz_connect();
	fz_hello(fd, BRK_PROTO_VERSION);
	fz_watch(fd, 3000, true);
	fz_frame(fd, 3, MSG_CTL_STATUS, "\xff\xff\xff", 3);
	fz_check("malformed-protobuf", fd, FZ_DROP, 3000);

	fd = fz_connect();
	fz_hello(fd, BRK_PROTO_VERSION);
	fz_watch(fd, 3000, true);
	fz_frame(fd, 2, MSG_CTL_CONSOLE_INPUT, "\x0a\x00", 2);
	fz_check("console-data-not-attached", fd, FZ_DROP, 3000);

	fd = fz_connect();
	fz_hello(fd, BRK_PROTO_VERSION);
	fz_watch(fd, 3000, true);
	fz_frame(fd, 0, 0x7776, NULL, 0);
	fz_check("unknown-type", fd, FZ_DROP, 3000);

	fd = fz_connect();
	fz_hello(fd, BRK_PROTO_VERSION);
	fz_watch(fd, 3000, true);
	fz_frame(fd, 0, MSG_HELLO_REPLY, NULL, 0);
	fz_check("answer-type-from-client", fd, FZ_DROP, 3000);
}

/* A List request carrying 17 fds, one more than ipc_send allows: the
 * message is built by hand. */
static void fz_send_17_fds(int fd, const int *fds)
{
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int) * 17)]; } cb;
	uint8_t hdr[6] = { 0, 0, 0, 0, MSG_CTL_LIST & 0xff,
			   MSG_CTL_LIST >> 8 };
	struct iovec iov = { hdr, sizeof(hdr) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cb.b,
			     .msg_controllen = sizeof(cb.b) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * 17);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * 17);
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
		printf("  (sendmsg: %s)\n", strerror(errno));
}

/* fds where none belong, and too many. */
static void fz_cases_fds(void)
{
	ListReq lr = LIST_REQ__INIT;
	int fd, fds[17];

	fd = fz_connect();
	fz_hello(fd, BRK_PROTO_VERSION);
	fz_watch(fd, 3000, true);
	fds[0] = open("/dev/null", O_RDONLY);
	fz_pb(fd, MSG_CTL_LIST, &lr.base, fds, 1);
	close(fds[0]);
	fz_check("fds-on-list", fd, FZ_DROP, 3000);

	fd = fz_connect();
	fz_hello(fd, BRK_PROTO_VERSION);
	fz_watch(fd, 3000, true);
	for (int i = 0; i < 17; i++)
		fds[i] = open("/dev/null", O_RDONLY);
	fz_send_17_fds(fd, fds);
	for (int i = 0; i < 17; i++)
		close(fds[i]);
	fz_check("too-many-fds", fd, FZ_DROP, 3000);
}

/* The optional devices a client asks for, against the manifest: no kind
 * of it, a fixed kind, past a limit, ro without a backend, a disk whose fd
 * is missing or a directory. */
static void fz_cases_devices(void)
{
	static const struct {
		const char *name, *kind;
		unsigned n, nfds;
		bool ro, dir;
	} dc[] = {
		{ "create-device-unknown", "no-such-device", 1, 1, false, false },
		{ "create-device-fixed", "uart", 1, 1, false, false },
		{ "create-device-too-many", "virtio-rng", 2, 1, false, false },
		{ "create-device-ro-no-backend", "virtio-rng", 1, 1, true, false },
		{ "create-disk-without-fd", "virtio-blk", 1, 1, false, false },
		{ "create-disk-directory", "virtio-blk", 1, 2, false, true },
		{ "create-disks-past-limit", "virtio-blk", 7, 1, false, false },
	};
	CreateVm cv = CREATE_VM__INIT;
	DeviceReq dr[8], *drp[8];
	int fd, fds[2];

	for (size_t c = 0; c < sizeof(dc) / sizeof(dc[0]); c++) {
		cv.name = "fuzzdev";
		for (unsigned i = 0; i < dc[c].n; i++) {
			device_req__init(&dr[i]);
			dr[i].kind = (char *)dc[c].kind;
			dr[i].ro = dc[c].ro;
			drp[i] = &dr[i];
		}
		cv.n_devices = dc[c].n;
		cv.devices = drp;
		fd = fz_connect();
		fz_hello(fd, BRK_PROTO_VERSION);
		fz_watch(fd, 3000, true);
		fds[0] = open("/dev/null", O_RDONLY);
		for (unsigned i = 1; i < dc[c].nfds; i++)
			fds[i] = dc[c].dir ? open("/", O_RDONLY | O_DIRECTORY)
					   : open("/dev/null", O_RDWR);
		fz_pb(fd, MSG_CTL_CREATE, &cv.base, fds, dc[c].nfds);
		for (unsigned i = 0; i < dc[c].nfds; i++)
			close(fds[i]);
		fz_check(dc[c].name, fd, FZ_ERROR_KEEP, 3000);
	}
}

/* Wrong but well-formed requests: an error, and the client stays. */
static void fz_cases_requests(void)
{
	StatusReq sr = STATUS_REQ__INIT;
	CreateVm cv = CREATE_VM__INIT;
	int fd, fds[1];

	fd = fz_connect();
	fz_hello(fd, BRK_PROTO_VERSION);
	fz_watch(fd, 3000, true);
	cv.name = "fuzz";
	fz_pb(fd, MSG_CTL_CREATE, &cv.base, NULL, 0);
	fz_check("create-without-fds", fd, FZ_ERROR_KEEP, 3000);

	fd = fz_connect();
	fz_hello(fd, BRK_PROTO_VERSION);
	fz_watch(fd, 3000, true);
	fds[0] = open("/", O_RDONLY | O_DIRECTORY);
	fz_pb(fd, MSG_CTL_CREATE, &cv.base, fds, 1);
	close(fds[0]);
	fz_check("create-with-directory-fd", fd, FZ_ERROR_KEEP, 3000);

	fd = fz_connect();
	fz_hello(fd, BRK_PROTO_VERSION);
	fz_watch(fd, 3000, true);
	cv.name = "../../etc";
	fds[0] = open("/dev/null", O_RDONLY);
	fz_pb(fd, MSG_CTL_CREATE, &cv.base, fds, 1);
	close(fds[0]);
	fz_check("create-bad-name", fd, FZ_ERROR_KEEP, 3000);

	fz_cases_devices();

	fd = fz_connect();
	fz_hello(fd, BRK_PROTO_VERSION);
	fz_watch(fd, 3000, true);
	sr.name = "no-such-vm";
	fz_pb(fd, MSG_CTL_STATUS, &sr.base, NULL, 0);
	fz_check("status-unknown-vm", fd, FZ_ERROR_KEEP, 3000);
}

/* Half-open connections: silent, half shut, gone before the answers, and
 * many idle at once. */
static void fz_cases_half_open(void)
{
	ListReq lr = LIST_REQ__INIT;
	int fd, idle[40];
	int64_t t0;
	bool good;

	t0 = fz_now_ms();
	fd = fz_connect();
	good = fz_good_client();  /* while fd says nothing */
	printf("case %-28s a well-behaved client %s while it idles\n",
	       "silent-connection", good ? "is served" : "is NOT served");
	if (!good)
		fz_failures++;
	fz_check("silent-connection", fd, FZ_DROP, 8000);
	printf("  (dropped after %lld ms)\n", (long long)(fz_now_ms() - t0));

	fd = fz_connect();
	fz_hello(fd, BRK_PROTO_VERSION);
	fz_watch(fd, 3000, true);
	shutdown(fd, SHUT_WR);
	fz_check("shutdown-write", fd, FZ_DROP, 3000);

	fd = fz_connect();
	fz_hello(fd, BRK_PROTO_VERSION);
	fz_pb(fd, MSG_CTL_LIST, &lr.base, NULL, 0);
	close(fd);  /* gone before the answers */
	printf("case %-28s %s\n", "close-before-answer",
	       fz_good_client() ? "others still served" :
	       "others NOT served  <-- UNEXPECTED");

	for (size_t i = 0; i < sizeof(idle) / sizeof(idle[0]); i++)
		idle[i] = fz_connect();
	good = fz_good_client();
	printf("case %-28s %s\n", "40-idle-connections", good ?
	       "others still served" : "others NOT served  <-- UNEXPECTED");
	if (!good)
		fz_failures++;
	for (size_t i = 0; i < sizeof(idle) / sizeof(idle[0]); i++)
		close(idle[i]);
}

/* A client that sends and never reads. */
static void fz_case_flood(void)
{
	ListReq lr = LIST_REQ__INIT;
	struct ipc_chan c;
	int fd, sent = 0, r = 0;
	int64_t t0;

	fd = fz_connect();
	fz_hello(fd, BRK_PROTO_VERSION);
	fz_watch(fd, 3000, true);
	t0 = fz_now_ms();
	ipc_chan_init(&c, fd, "bulkheadd");
	fcntl(fd, F_SETFL, O_NONBLOCK);
	while (fz_now_ms() - t0 < 5000) {
		r = ipc_send_pb(&c, MSG_CTL_LIST, &lr.base, NULL, 0);
		if (r == -EAGAIN) {
			usleep(1000);
			continue;
		}
		if (r < 0)
			break;
		sent++;
	}
	printf("case %-28s sent %d requests without reading (%s)\n",
	       "flood-without-reading", sent,
	       r < 0 && r != -EAGAIN ? "then the broker hung up" :
	       "the broker stopped reading");
	fcntl(fd, F_SETFL, 0);
	if (!fz_good_client()) {
		printf("  a well-behaved client was NOT served\n");
		fz_failures++;
	}
	close(fd);
}

int main(int argc, char **argv)
{
	uint8_t junk[256];

	if (argc != 2) {
		fprintf(stderr, "usage: brkfuzz SOCKET\n");
		return 2;
	}
	ipc_log_init("brkfuzz", IPC_LOG_ERR - 1);  /* quiet */
	fz_path = argv[1];
	srand(42);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)rand();

	if (!fz_good_client()) {
		printf("the broker does not serve a well-behaved client\n");
		return 1;
	}
	fz_cases_malformed(junk, sizeof(junk));
	fz_cases_phase();
	fz_cases_fds();
	fz_cases_requests();
	fz_cases_half_open();
	fz_case_flood();

	printf("%s: %d unexpected outcome(s)\n", fz_failures ? "FAILED" : "OK",
	       fz_failures);
	return fz_failures ? 1 : 0;
}
