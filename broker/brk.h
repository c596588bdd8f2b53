/* SPDX-License-Identifier: MIT */
/*
 * broker: launching and supervising one VM's processes (used by `bulkhead
 * run`, with no daemon, and by the bulkheadd broker), bulkheadd's
 * configuration, and the CLI's commands that talk to bulkheadd.
 *
 * The broker never parses guest-controlled bytes: it opens /dev/kvm, makes
 * the guest-RAM memfd, the channels and the access rings, spawns the worker
 * and one process per device, and moves fds and frames between them.
 */
#ifndef BULKHEAD_BRK_H
#define BULKHEAD_BRK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipc/ipc.h"
#include "control.pb-c.h"
#include "worker.pb-c.h"

/*
 * Exit status of `bulkhead run`: 0 when the guest powered off, (v << 1) | 1
 * (always odd) when it wrote v to debug-exit, and one of these even codes
 * when the VMM failed.
 */
enum brk_exit {
	BRK_EXIT_POWER_OFF = 0,
	BRK_EXIT_USAGE = 2,       /* bad command-line arguments */
	BRK_EXIT_NOFILE = 4,      /* cannot open the image, initrd or a file */
	BRK_EXIT_NOKVM = 6,       /* /dev/kvm missing, or lacks a capability */
	BRK_EXIT_BADIMAGE = 8,    /* the image (or the saved state) was refused */
	BRK_EXIT_DEVICE = 10,     /* a device process died or broke protocol */
	BRK_EXIT_GUEST = 12,      /* the guest faulted (triple fault, ...) */
	BRK_EXIT_INTERNAL = 14,   /* the worker died or another VMM failure */
};

#define BRK_MAX_DEVICES 8u
#define BRK_DEFAULT_MEM (64ull << 20)
#define BRK_MIN_MEM (2ull << 20)
#define BRK_MAX_MEM (3ull << 30)
#define BRK_MAX_CPUS 16u

enum brk_serial {
	BRK_SERIAL_STDIO = 0,  /* `run`: our stdin and stdout */
	BRK_SERIAL_NULL,
	BRK_SERIAL_FILE,       /* output to serial_out_fd, no input */
	BRK_SERIAL_CONSOLE,    /* bulkheadd: a socket the broker holds */
};

/* A VM's configuration; every fd was opened by the user's own process. */
struct brk_vm_config {
	uint64_t mem_size;
	unsigned cpus;
	const char *cmdline;
	int image_fd;
	int initrd_fd;        /* -1: none */
	enum brk_serial serial;
	int serial_out_fd;    /* BRK_SERIAL_FILE: the opened file */
	int console_fd;       /* BRK_SERIAL_CONSOLE: the UART's end of the
			       * broker's console socket (input and output) */
	bool null_dev;        /* add the null benchmarking device */
	int disk_fd;          /* --disk: the image, -1: none */
	bool disk_ro;         /* --disk PATH,ro */
	bool rng;             /* --rng: add virtio-rng */
	int restore_fd;       /* --restore: the saved-state file, -1: none;
			       * then the image and initrd are not handed to
			       * the worker (the stream carries them) */
};

struct brk_child {
	char label[48];       /* "worker", "uart#0" */
	pid_t pid;
	int pidfd;            /* -1 once reaped */
	bool reaped;
	int wstatus;          /* as waitpid reports it */
};

struct brk_vm;

/*
 * What a supervisor (the foreground `run`, or bulkheadd) wants to hear about
 * a VM's worker beyond what struct brk_vm records. Every hook is optional.
 * The messages are only lent for the duration of the call.
 */
struct brk_vm_hooks {
	void (*ready)(struct brk_vm *vm);
	void (*state_changed)(struct brk_vm *vm);           /* vm->state */
	void (*runtime_error)(struct brk_vm *vm);           /* vm->rt_* */
	void (*exited)(struct brk_vm *vm);                  /* vm->end_* */
	void (*control_reply)(struct brk_vm *vm, const VmControlReply *rep);
	void (*stats)(struct brk_vm *vm, const VmStats *st);
	void (*save_reply)(struct brk_vm *vm, const VmSaveReply *rep);
};

/* VmRuntimeError.flags */
#define BRK_RT_FATAL 0x1u
#define BRK_RT_SUSPEND 0x2u
#define BRK_RT_NO_WAIT 0x4u

struct brk_vm {
	struct brk_child worker;
	struct brk_child devs[BRK_MAX_DEVICES];
	unsigned ndevs;
	struct ipc_chan chan;  /* to the worker */
	struct ipc_phase_state chan_st;
	bool ready;
	char state[24];        /* as the worker last reported it */
	unsigned state_events; /* VmStateChanged frames seen */
	bool have_rt_error;    /* the last VmRuntimeError */
	uint32_t rt_flags;
	char rt_id[32];
	char rt_msg[256];
	bool have_end;
	int end_reason;        /* VmExited.Reason */
	uint32_t end_code;
	char end_id[32];
	char end_msg[256];
	char counters[512];    /* "exits=N unclaimed-writes=N ..." */
	const struct brk_vm_hooks *hooks;
	void *hook_ctx;
};

/*
 * Check /dev/kvm (kvm_fd) and launch a VM: memfd, rings, channels, worker
 * and device processes. On failure returns a brk_exit code (> 0) with the
 * reason in err; on success 0 and *out.
 */
int brk_vm_launch(int kvm_fd, const struct brk_vm_config *cfg,
		  struct brk_vm **out, char *err, size_t errlen);
/*
 * Run a launched VM in the foreground until it ends and every child is
 * reaped; SIGINT/SIGTERM power it off (a second one kills it), and so does
 * a runtime error that suspends it (printed as "VM suspended: ..."). Returns
 * the `bulkhead run` exit status and describes a failure in err (empty when
 * it was printed already).
 */
int brk_vm_run_foreground(struct brk_vm *vm, bool verbose, char *err,
			  size_t errlen);
void brk_vm_free(struct brk_vm *vm);

/*
 * Receive one frame from the worker and dispatch it through the worker
 * table (which calls vm->hooks). Returns 0, -EAGAIN when nothing is queued
 * on a non-blocking channel, or another negative errno once the channel is
 * closed (the worker went, or broke protocol: then it is logged).
 */
int brk_vm_worker_recv(struct brk_vm *vm, struct ipc_msg *msg);
/* Send VmControl / VmStatsReq to the worker (-EPIPE if it is gone). */
int brk_vm_send_control(struct brk_vm *vm, int op, uint32_t seq);
int brk_vm_send_stats_req(struct brk_vm *vm, uint32_t seq);
/*
 * Send VmSave with file_fd, the emptied save file the worker writes the
 * stream into (the caller keeps its own copy, to check and sync it).
 * flags: BRK_SAVE_*. Answered by VmSaveReply (hook save_reply).
 */
#define BRK_SAVE_KEEP_RUNNING 0x1u
#define BRK_SAVE_LIVE 0x2u
#define BRK_SAVE_STAY_SUSPENDED 0x4u
int brk_vm_send_save(struct brk_vm *vm, uint32_t seq, unsigned flags,
		     uint32_t max_downtime_ms, int file_fd);
/* Reap c if it has ended (never blocks); true if it is reaped. */
bool brk_child_reap(struct brk_child *c);
bool brk_vm_all_reaped(const struct brk_vm *vm);
/* SIGKILL every child not yet reaped. */
void brk_vm_kill_all(struct brk_vm *vm);
/*
 * Explain a worker-reported error for a person: for "device-died", say how
 * the device died (we are its parent, the worker is not): "device uart#0
 * was killed by signal 9 (Killed)". Falls back to msg.
 */
void brk_vm_explain(const struct brk_vm *vm, const char *error_id,
		    const char *msg, char *buf, size_t len);
/*
 * The `bulkhead run` exit status for how the VM ended (vm->have_end, or
 * the worker died first), with the error text in err ("" for none).
 */
int brk_vm_exit_status(const struct brk_vm *vm, char *err, size_t errlen);

/* ---- bulkheadd ---------------------------------------------------------- */

#define BRK_PROTO_VERSION 1u
#define BRK_DEFAULT_SOCKET "/run/bulkhead/bulkhead.sock"
#define BRK_DEFAULT_CONFIG "/etc/bulkhead/bulkheadd.conf"
#define BRK_SOCKET_ENV "BULKHEAD_SOCKET"
#define BRK_NAME_MAX 32u
#define BRK_MAX_UID_OVERRIDES 64u

/* Per-uid quotas: a VM counts from create until destroy. */
struct brk_quota {
	unsigned max_vms;
	uint64_t max_mem;
	unsigned max_cpus;
};

struct brk_uid_quota {
	uint32_t uid;
	struct brk_quota q;
	bool has_vms, has_mem, has_cpus;  /* which fields override */
};

/* bulkheadd's configuration file (docs/broker.md). */
struct brk_config {
	char socket_path[108];
	unsigned socket_mode;
	unsigned max_clients;
	unsigned max_vms;                 /* all owners together */
	struct brk_quota quota;           /* per uid, by default */
	struct brk_uid_quota uids[BRK_MAX_UID_OVERRIDES];
	unsigned nuids;
};

void brk_config_defaults(struct brk_config *cfg);
/*
 * Read path into *cfg (on top of what is there). A missing file is -ENOENT
 * (the caller decides whether that matters); a bad line is -EINVAL with
 * "FILE:LINE: what is wrong" in err.
 */
int brk_config_load(struct brk_config *cfg, const char *path, char *err,
		    size_t errlen);
/* The quota that applies to uid. */
struct brk_quota brk_config_quota(const struct brk_config *cfg, uint32_t uid);
/* Does name follow [A-Za-z0-9_.-]{1,32}? */
bool brk_name_valid(const char *name);

/* ---- bulkheadd internals (broker/daemon.c, broker/registry.c) ----------- */

struct brkd;
struct ipc_msg;

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

/* A frame waiting for a slow client to read. */
struct brk_frame {
	struct brk_frame *next;
	uint16_t type;
	size_t len;
	uint8_t data[];
};

/* Phases of a client connection; each has its dispatch table. */
enum brk_client_phase {
	BRK_PHASE_HELLO,    /* only Hello */
	BRK_PHASE_READY,    /* any request */
	BRK_PHASE_WAITING,  /* a request is being worked on: nothing */
	BRK_PHASE_CONSOLE,  /* ConsoleData and ConsoleDetach */
};

struct brk_client {
	struct brk_client *next;
	uint64_t id;
	struct ipc_chan chan;
	struct brk_watch w;
	uint32_t uid, gid;
	int32_t pid;
	enum brk_client_phase phase;
	struct ipc_phase_state st;
	int64_t hello_deadline;
	uint32_t console_vm;          /* the VM id in console phase */
	struct brk_frame *out_head, *out_tail;
	size_t out_bytes;
	bool want_out;                /* EPOLLOUT is armed */
	bool dead;
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

/*
 * A save in progress: the worker writes the stream into a pipe; the event
 * loop copies it into the client's file (non-blocking, a bounded buffer
 * per event), then syncs the file.
 */
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
#define BRK_SCROLLBACK (64u * 1024u)
#define BRK_CMDLINE_MAX 4095u
#define BRK_LABEL_MAX 200u

struct brk_stats_wait {
	uint32_t seq;
	uint64_t client;
	int64_t deadline;
};

/* One VM in the registry. */
struct brk_rec {
	struct brk_rec *next;
	struct brkd *d;
	uint32_t id;
	char name[BRK_NAME_MAX + 1];
	uint32_t owner;
	int64_t created_at;           /* seconds since the epoch */
	/* configuration and the client's fds (held until destroy) */
	uint64_t mem_size;
	unsigned cpus;
	char *cmdline;
	char image_label[BRK_LABEL_MAX + 1];
	int image_fd, initrd_fd, serial_fd, disk_fd;  /* image_fd -1: restored
						       * without an image */
	int serial;                   /* SerialMode */
	bool null_dev;
	bool disk_ro;
	bool rng;
	char disk_label[BRK_LABEL_MAX + 1];
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
	unsigned console_clients;
	bool dead;
};

struct brkd {
	struct brk_config cfg;
	const char *config_path;
	int epfd;
	int listen_fd;
	struct brk_watch w_listen;
	int sig_fd;
	struct brk_watch w_sig;
	struct brk_client *clients;
	unsigned nclients;
	uint64_t next_client_id;
	struct brk_rec *vms;          /* in creation order */
	unsigned nvms;
	uint32_t next_vm_id;
	struct brk_client *grave_clients;  /* freed after each event batch */
	struct brk_rec *grave_vms;
	struct ipc_msg *msg;          /* receive buffer */
	bool shutting_down;
	int64_t shutdown_deadline;
	bool shutdown_killed;
};

int64_t brk_now_ms(void);

/* daemon.c: the event loop and client connections. */
int brk_srv_watch(struct brkd *d, int fd, uint32_t events, struct brk_watch *w);
void brk_srv_unwatch(struct brkd *d, int fd);
/* Send (or queue) a frame to a client; a client that cannot keep up is
 * dropped. */
void brk_srv_send(struct brkd *d, struct brk_client *c, uint16_t type,
		  const ProtobufCMessage *pb);
void brk_srv_send_error(struct brkd *d, struct brk_client *c, int errno_code,
			const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
struct brk_client *brk_srv_client(struct brkd *d, uint64_t id);
void brk_srv_set_phase(struct brk_client *c, enum brk_client_phase phase);
/* Answer a client waiting on a request, by id (gone clients are skipped). */
void brk_srv_answer(struct brkd *d, uint64_t client, uint16_t type,
		    const ProtobufCMessage *pb);
void brk_srv_answer_error(struct brkd *d, uint64_t client, int errno_code,
			  const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* registry.c: the VMs. Handlers answer the client themselves. */
int brk_reg_lookup(struct brkd *d, const struct brk_client *c,
		   const char *name, struct brk_rec **out, char *err,
		   size_t errlen);
void brk_reg_create(struct brkd *d, struct brk_client *c,
		    const CreateVm *cv, struct ipc_msg *m);
void brk_reg_vm_op(struct brkd *d, struct brk_client *c, struct brk_rec *rec,
		   int op);
void brk_reg_status(struct brkd *d, struct brk_client *c,
		    struct brk_rec *rec);
void brk_reg_list(struct brkd *d, struct brk_client *c);
void brk_reg_stats(struct brkd *d, struct brk_client *c, struct brk_rec *rec);
/* Save (m carries the file's fd) and restore (m carries CreateVm's fds,
 * then the saved state's). */
void brk_reg_save(struct brkd *d, struct brk_client *c, struct brk_rec *rec,
		  const SaveVm *sv, struct ipc_msg *m);
void brk_reg_restore(struct brkd *d, struct brk_client *c,
		     const RestoreVm *rv, struct ipc_msg *m);
void brk_reg_console_attach(struct brkd *d, struct brk_client *c,
			    struct brk_rec *rec, bool replay);
void brk_reg_console_input(struct brkd *d, struct brk_client *c,
			   const uint8_t *data, size_t len);
void brk_reg_console_detach(struct brkd *d, struct brk_client *c);
/* A client went away (its console count, nothing else: answers to it are
 * dropped by id). */
void brk_reg_client_gone(struct brkd *d, struct brk_client *c);
/* An epoll event on a VM's fd. */
void brk_reg_event(struct brkd *d, struct brk_watch *w, uint32_t events);
/* Timeouts; returns the next deadline (ms, brk_now_ms clock) or -1. */
int64_t brk_reg_tick(struct brkd *d, int64_t now);
/* SIGTERM: power every VM off. */
void brk_reg_shutdown(struct brkd *d);
/* SIGTERM again, or the shutdown deadline: kill what is left. */
void brk_reg_kill_all(struct brkd *d);
bool brk_reg_any_running(const struct brkd *d);
void brk_reg_free_graves(struct brkd *d);
void brk_reg_free_all(struct brkd *d);

/* ---- the CLI ------------------------------------------------------------ */

/*
 * Exit status of the CLI's daemon commands (create, start, ..., stats).
 * `run` has its own (enum brk_exit).
 */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_REFUSED = 1,  /* the broker refused or the operation failed */
	CLI_EXIT_USAGE = 2,
	CLI_EXIT_NOBROKER = 3, /* cannot reach bulkheadd, or it hung up */
	CLI_EXIT_NOFILE = 4,   /* cannot open the image or another file */
};

/* Commands that talk to bulkheadd: argv[0] is the command name. */
bool cli_ctl_is_command(const char *name);
int cli_ctl_main(const char *socket_path, bool json, int argc, char **argv);

/*
 * Spawn `dir/binary` into its sandbox (docs/sandbox.md): new pid, net, ipc,
 * mount and uts namespaces (and a user namespace when we are not root),
 * uid = gid = SBX_ID_BASE + its pid passed as argv[1], bootstrap_fd as its
 * fd 3, its stderr relayed to ours. Fills *c (with a pidfd).
 */
int brk_spawn(const char *binary, int bootstrap_fd, const char *label,
	      struct brk_child *c, char *err, size_t errlen);
/* Describe how a reaped child ended: "exited with status 3", "was killed
 * by signal 9 (Killed)", "killed: seccomp violation" (SIGSYS). */
void brk_child_describe(const struct brk_child *c, char *buf, size_t len);

/* Parse a memory size such as 64M, 1G, 65536K or 4194304. */
int brk_parse_size(const char *s, uint64_t *out);

#endif
