/* SPDX-License-Identifier: MIT */
/*
 * broker/reg.h: bulkheadd's VM registry. Every VM with its owner, its
 * configuration, the fds its owner's CLI passed, its processes (supervised
 * through pidfds), its state, the last error and its console scrollback;
 * the lifecycle operations on it, saves and restores, stats and consoles.
 *
 * The registry knows nothing of the server that feeds it: it is called
 * with who asks (struct brk_caller) and answers through struct
 * brk_outbox, which the server provides. Its parts:
 *
 *   broker/registry.c  records: build, find, look up by name, remove; VmInfo
 *   broker/quota.c     the per-uid and global limits a new VM must fit
 *   broker/console.c   scrollback and console sessions
 *   broker/ops.c       start, pause, resume, reset, power off, destroy; the
 *                      worker's events, the processes' ends, timeouts
 *   broker/save.c      save and restore
 *   broker/stats.c     stats from /proc and from the worker
 *
 * The broker moves bytes and fds: it never parses what the guest or an
 * image controls. Console bytes are copied, not read.
 */
#ifndef BULKHEAD_REG_H
#define BULKHEAD_REG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/config.h"
#include "broker/control.h"
#include "broker/launch.h"
#include "control.pb-c.h"

struct ipc_msg;

/* Who asks: a client connection, as the server knows it. */
struct brk_caller {
	uint64_t id;          /* answers go to this id; gone ids are skipped */
	uint32_t uid;
	int32_t pid;
};

/* What a client connection does, as far as the registry decides it. */
enum brk_client_mode {
	BRK_MODE_READY,       /* it may send any request */
	BRK_MODE_WAITING,     /* its request is being worked on: nothing */
	BRK_MODE_CONSOLE,     /* console input and detach only */
};

/* What an epoll event is about; embedded in the object that owns the fd. */
enum brk_watch_kind {
	BRK_WATCH_LISTEN,
	BRK_WATCH_SIGNAL,
	BRK_WATCH_CLIENT,
	BRK_WATCH_WORKER,      /* a VM's worker channel */
	BRK_WATCH_CHILD,       /* a VM's child pidfd; idx -1 worker, else device */
	BRK_WATCH_CONSOLE,     /* a VM's console socket */
};

struct brk_watch {
	enum brk_watch_kind kind;
	void *obj;
	int idx;
};

/*
 * How the registry reaches clients and the event loop: provided by the
 * server, so that the registry never calls up into it.
 */
struct brk_outbox {
	void *ctx;
	/* Send a frame to a client without ending its wait (console data). */
	void (*send)(void *ctx, uint64_t client, uint16_t type,
		     const ProtobufCMessage *pb);
	/* Answer a client's request: it goes back to BRK_MODE_READY. */
	void (*answer)(void *ctx, uint64_t client, uint16_t type,
		       const ProtobufCMessage *pb);
	void (*answer_error)(void *ctx, uint64_t client, int errno_code,
			     const char *message);
	void (*set_mode)(void *ctx, uint64_t client, enum brk_client_mode mode);
	int (*watch)(void *ctx, int fd, uint32_t events, struct brk_watch *w);
	void (*unwatch)(void *ctx, int fd);
};

enum brk_op {
	BRK_OP_NONE = 0, BRK_OP_START, BRK_OP_PAUSE, BRK_OP_RESUME,
	BRK_OP_RESET, BRK_OP_POWER_OFF, BRK_OP_DESTROY, BRK_OP_SAVE,
	BRK_OP_RESTORE,
};

/* Where a save stands (the op is BRK_OP_SAVE throughout). */
enum brk_save_phase {
	BRK_SAVE_WRITING,      /* the worker writes the stream into the file */
	BRK_SAVE_POWERING_OFF, /* saved and synced: the VM is being powered off */
	BRK_SAVE_RESUMING,     /* the file failed: the VM is being resumed */
};

/* A save in progress: the worker writes the stream into the client's
 * file; the broker checks its size against the worker's count, syncs it. */
struct brk_save {
	int file_fd;                  /* the client's file; -1: none */
	int64_t seen_size;            /* its size at the last deadline */
	enum brk_save_phase phase;
	unsigned flags;               /* BRK_SAVE_* as asked */
	bool was_running;
	int64_t started_ms;
	bool have_reply;              /* VmSaveReply */
	int32_t status;
	int32_t write_errno;          /* the worker's, when the file failed */
	char message[256];
	uint64_t bytes, pages;
	uint32_t passes, downtime_ms;
	char error[400];              /* what to tell the client, "" if fine */
	int error_errno;
};

#define BRK_MAX_STATS_WAITS 8u
#define BRK_MAX_CONSOLES 16u      /* clients attached to one VM's console */
#define BRK_SCROLLBACK (64u * 1024u)
#define BRK_CMDLINE_MAX 4095u
#define BRK_LABEL_MAX 200u

struct brk_stats_wait {
	uint32_t seq;
	uint64_t client;
	int64_t deadline;
};

struct brk_reg;

/* One VM in the registry. */
struct brk_rec {
	struct brk_rec *next;
	struct brk_reg *reg;
	uint32_t id;
	char name[BRK_NAME_MAX + 1];
	uint32_t owner;
	int64_t created_at;           /* seconds since the epoch */
	/* configuration and the client's fds (held until destroy) */
	uint64_t mem_size;
	unsigned cpus;
	char *cmdline;
	char image_label[BRK_LABEL_MAX + 1];
	int image_fd, initrd_fd, serial_fd;  /* image_fd -1: restored
					      * without an image */
	int serial;                   /* SerialMode */
	/* the optional devices, with their backend files' fds */
	struct brk_dev_req devs[BRK_MAX_REQ_DEVICES];
	unsigned ndevs;
	char dev_label[BRK_MAX_REQ_DEVICES][BRK_LABEL_MAX + 1];
	/* the processes of the current run; NULL when there are none */
	struct brk_vm *vm;
	struct brk_watch w_chan, w_worker, w_devs[BRK_MAX_DEVICES], w_console;
	int console_fd;               /* our end of the UART's socket */
	int64_t started_ms;
	int64_t kill_at;              /* SIGKILL what is left then; -1 */
	bool ending;                  /* the processes are expected to go */
	char state[24];               /* CREATED or OFF while vm is NULL */
	char error[384];              /* the last VMM error */
	char last_exit[400];
	int exit_status;              /* as `bulkhead run` would; -1 */
	/* the one lifecycle operation in progress */
	enum brk_op op;
	uint64_t op_client;
	uint32_t op_seq;
	int64_t op_deadline;
	bool op_killed;
	struct brk_stats_wait stats[BRK_MAX_STATS_WAITS];
	unsigned nstats;
	struct brk_save save;         /* op BRK_OP_SAVE */
	bool restore_fresh;           /* op BRK_OP_RESTORE made this record:
				       * forget it if the restore fails */
	uint32_t seq;
	/* console scrollback: a ring of BRK_SCROLLBACK bytes */
	uint8_t *sb;
	size_t sb_head, sb_len;
	/* the clients attached to its console */
	uint64_t consoles[BRK_MAX_CONSOLES];
	unsigned console_clients;
	bool dead;
};

/* The registry. */
struct brk_reg {
	const struct brk_config *cfg;
	const char *config_path;      /* for messages about limits */
	const struct brk_outbox *out;
	struct ipc_msg *msg;          /* receive buffer for worker frames */
	struct brk_rec *vms;          /* in creation order */
	unsigned nvms;
	uint32_t next_vm_id;
	struct brk_rec *graves;       /* freed after each event batch */
	bool shutting_down;
};

/* ---- the state of a VM, for requests --------------------------------------- */

/* The state a VM is shown in: CREATED, RUNNING, ..., OFF. */
const char *brk_rec_state(const struct brk_rec *rec);
/* Its processes are up and the worker answers requests. */
bool brk_rec_up(const struct brk_rec *rec);
/* An operation is in progress (its name, for messages). */
const char *brk_op_name(enum brk_op op);

/* ---- requests: each answers the caller itself ------------------------------ */

/*
 * Find the VM a client names: NAME (its own, or for root anybody's when
 * only one user has that name) or UID/NAME. Returns 0, or a negative errno
 * with a sentence in err (no such VM, permission, ambiguous).
 */
int brk_reg_lookup(struct brk_reg *reg, const struct brk_caller *c,
		   const char *name, struct brk_rec **out, char *err,
		   size_t errlen);
void brk_reg_create(struct brk_reg *reg, const struct brk_caller *c,
		    const CreateVm *cv, struct ipc_msg *m);
void brk_reg_start(struct brk_reg *reg, const struct brk_caller *c,
		   struct brk_rec *rec);
/* pause, resume, reset: a VmControl to the worker. */
void brk_reg_control(struct brk_reg *reg, const struct brk_caller *c,
		     struct brk_rec *rec, enum brk_op op);
void brk_reg_power_off(struct brk_reg *reg, const struct brk_caller *c,
		       struct brk_rec *rec, enum brk_op op);
void brk_reg_status(struct brk_reg *reg, const struct brk_caller *c,
		    const struct brk_rec *rec);
void brk_reg_list(struct brk_reg *reg, const struct brk_caller *c);
void brk_reg_stats(struct brk_reg *reg, const struct brk_caller *c,
		   struct brk_rec *rec);
/* Save (m carries the file's fd) and restore (m carries CreateVm's fds,
 * then the saved state's). */
void brk_reg_save(struct brk_reg *reg, const struct brk_caller *c,
		  struct brk_rec *rec, const SaveVm *sv, struct ipc_msg *m);
void brk_reg_restore(struct brk_reg *reg, const struct brk_caller *c,
		     const RestoreVm *rv, struct ipc_msg *m);
void brk_reg_console_attach(struct brk_reg *reg, const struct brk_caller *c,
			    struct brk_rec *rec, bool replay);
void brk_reg_console_input(struct brk_reg *reg, const struct brk_caller *c,
			   const uint8_t *data, size_t len);
void brk_reg_console_detach(struct brk_reg *reg, const struct brk_caller *c);
/* A client went away: it leaves any console it was attached to (answers
 * to it are dropped by id). */
void brk_reg_client_gone(struct brk_reg *reg, uint64_t client);

/* ---- the event loop's side --------------------------------------------------- */

/* An epoll event on a VM's fd (BRK_WATCH_WORKER, _CHILD, _CONSOLE). */
void brk_reg_event(struct brk_reg *reg, struct brk_watch *w, uint32_t events);
/* Timeouts; returns the next deadline (ms, brk_now_ms clock) or -1. */
int64_t brk_reg_tick(struct brk_reg *reg, int64_t now);
/* SIGTERM: power every VM off. */
void brk_reg_shutdown(struct brk_reg *reg);
/* SIGTERM again, or the shutdown deadline: kill what is left. */
void brk_reg_kill_all(struct brk_reg *reg);
bool brk_reg_any_running(const struct brk_reg *reg);
void brk_reg_free_graves(struct brk_reg *reg);
void brk_reg_free_all(struct brk_reg *reg);

#endif
