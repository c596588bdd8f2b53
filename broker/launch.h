/* SPDX-License-Identifier: MIT */
/*
 * broker/launch.h: launching and supervising one VM's processes, shared by
 * `bulkhead run` (no daemon) and bulkheadd. broker/launch.c makes the
 * guest-RAM memfd, the channels and the access rings and spawns the worker
 * and one process per device (broker/spawn.c); broker/supervise.c speaks
 * the broker's side of the worker protocol and runs a VM in the
 * foreground.
 *
 * The broker never parses guest-controlled bytes: it opens /dev/kvm, makes
 * the memfd, the channels and the rings, spawns the processes, and moves
 * fds and frames between them.
 */
#ifndef BULKHEAD_LAUNCH_H
#define BULKHEAD_LAUNCH_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipc/ipc.h"
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

#define BRK_MAX_DEVICES IPC_MAX_DEVICES
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

struct dev_manifest;

/* One optional device a VM asks for (a DEV_MF_OPTIONAL manifest entry). */
struct brk_dev_req {
	const struct dev_manifest *k;
	int fd;               /* its backend file (a disk image), -1: none */
	bool ro;              /* the guest may not write the backend */
};

/* Optional devices per VM: all but the fixed ones. */
#define BRK_MAX_REQ_DEVICES 12u

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
	/* The optional devices, in the order given; the broker places them
	 * after the fixed ones, in the manifest's order of kinds. */
	struct brk_dev_req devs[BRK_MAX_REQ_DEVICES];
	unsigned ndevs;
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

int64_t brk_now_ms(void);
/*
 * SIGINT, SIGTERM and SIGHUP (the set, in *sigs) blocked and read from the
 * signalfd returned (close-on-exec; -1 with errno where it cannot be made).
 */
int brk_stop_signals_fd(sigset_t *sigs);

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


#endif
