/* SPDX-License-Identifier: MIT */
/*
 * broker/srv.h: bulkheadd's server. broker/daemon.c runs the event loop
 * (epoll) over the control socket, the client connections, every VM's fds
 * (for the registry, broker/reg.h) and a signalfd; broker/verbs.c is the
 * control protocol: one table row per verb, with its message, its handler,
 * the fds it may carry, who may send it and in which VM states.
 *
 * Clients speak proto/control.proto on a SOCK_SEQPACKET socket
 * (docs/broker.md). Who they are is SO_PEERCRED; file modes on the socket
 * are not the access control. Each connection moves through phases, each
 * with its table: hello (only Hello), ready (any request), waiting (a
 * request is being worked on: nothing), console (console data and detach).
 * Anything else, a malformed frame, or a client that cannot keep up drops
 * that client; the others never notice.
 */
#ifndef BULKHEAD_SRV_H
#define BULKHEAD_SRV_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/reg.h"
#include "ipc/ipc.h"

/* A frame waiting for a slow client to read. */
struct brk_frame {
	struct brk_frame *next;
	uint16_t type;
	size_t len;
	uint8_t data[];
};

/* Phases of a client connection; each has its table (broker/verbs.c). */
enum brk_client_phase {
	BRK_PHASE_HELLO,    /* only Hello */
	BRK_PHASE_READY,    /* any request */
	BRK_PHASE_WAITING,  /* a request is being worked on: nothing */
	BRK_PHASE_CONSOLE,  /* ConsoleData and ConsoleDetach */
	BRK_NPHASES,
};

struct brk_client {
	struct brk_client *next;
	struct brk_caller who;        /* id, uid, pid */
	uint32_t gid;
	struct ipc_chan chan;
	struct brk_watch w;
	enum brk_client_phase phase;
	struct ipc_phase_state st;
	int64_t hello_deadline;
	struct brk_frame *out_head, *out_tail;
	size_t out_bytes;
	bool want_out;                /* EPOLLOUT is armed */
	bool dead;
};

struct brkd {
	struct brk_config cfg;
	const char *config_path;
	struct brk_reg reg;
	struct brk_outbox outbox;     /* how the registry reaches us */
	int epfd;
	int listen_fd;
	struct brk_watch w_listen;
	int sig_fd;
	struct brk_watch w_sig;
	struct brk_client *clients;
	unsigned nclients;
	uint64_t next_client_id;
	struct brk_client *grave_clients;  /* freed after each event batch */
	struct ipc_msg *msg;          /* receive buffer */
	int64_t shutdown_deadline;    /* once reg.shutting_down */
	bool shutdown_killed;
};

/* ---- daemon.c: clients ------------------------------------------------------ */

/* Send (or queue) a frame to a client; one that cannot keep up is dropped. */
void brk_srv_send(struct brkd *d, struct brk_client *c, uint16_t type,
		  const ProtobufCMessage *pb);
void brk_srv_send_error(struct brkd *d, struct brk_client *c, int errno_code,
			const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Tell a client what it did wrong, then drop it. */
void brk_srv_client_fail(struct brkd *d, struct brk_client *c,
			 int errno_code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void brk_srv_set_phase(struct brk_client *c, enum brk_client_phase phase);
/* A client's connection is readable: receive one frame and dispatch it
 * through its phase's table. */
void brk_srv_client_readable(struct brkd *d, struct brk_client *c);
/* Set up d->reg and d->outbox for d (before any client or VM). */
void brk_srv_init_registry(struct brkd *d);

/* ---- verbs.c: the control protocol ------------------------------------------- */

/* Who may send a verb (ipc_handler.who). */
enum brk_who {
	BRK_WHO_ANY = 0,      /* any client; the handler applies its own rules */
	BRK_WHO_OWNER,        /* the owner of the VM its "name" field names, or
			       * root (broker/registry.c: brk_reg_lookup) */
};

/* When a verb is accepted (ipc_handler.when, a bit mask). */
#define BRK_WHEN_SERVING 0x1u  /* bulkheadd is not shutting down */
#define BRK_WHEN_IDLE 0x2u     /* no other operation on the VM is in progress */
#define BRK_WHEN_UP 0x4u       /* the VM's processes run and its worker answers */
#define BRK_WHEN_DOWN 0x8u     /* the VM has no processes (CREATED, OFF) */

/* The request being dispatched: the handlers' context. */
struct brk_req {
	struct brkd *d;
	struct brk_client *c;
	struct brk_rec *rec;          /* BRK_WHO_OWNER: the VM it names */
};

/* The table of a phase. */
const struct ipc_phase *brk_verbs_phase(enum brk_client_phase phase);

#endif
