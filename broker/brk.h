/* SPDX-License-Identifier: MIT */
/*
 * broker: launching and supervising one VM's processes. Used by
 * `bulkhead run` (no daemon) and by the bulkheadd broker.
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
	BRK_EXIT_BADIMAGE = 8,    /* the image was refused by the loader */
	BRK_EXIT_DEVICE = 10,     /* a device process died or broke protocol */
	BRK_EXIT_GUEST = 12,      /* the guest faulted (triple fault, ...) */
	BRK_EXIT_INTERNAL = 14,   /* the worker died or another VMM failure */
};

#define BRK_MAX_DEVICES 8u
#define BRK_DEFAULT_MEM (64ull << 20)
#define BRK_MIN_MEM (2ull << 20)
#define BRK_MAX_MEM (3ull << 30)
#define BRK_MAX_CPUS 16u

enum brk_serial { BRK_SERIAL_STDIO = 0, BRK_SERIAL_NULL, BRK_SERIAL_FILE };

/* A VM's configuration; every fd was opened by the user's own process. */
struct brk_vm_config {
	uint64_t mem_size;
	unsigned cpus;
	const char *cmdline;
	int image_fd;
	int initrd_fd;        /* -1: none */
	enum brk_serial serial;
	int serial_out_fd;    /* BRK_SERIAL_FILE: the opened file */
	bool null_dev;        /* add the null benchmarking device */
};

struct brk_child {
	char label[48];       /* "worker", "uart#0" */
	pid_t pid;
	int pidfd;            /* -1 once reaped */
	bool reaped;
	int wstatus;          /* as waitpid reports it */
};

struct brk_vm {
	struct brk_child worker;
	struct brk_child devs[BRK_MAX_DEVICES];
	unsigned ndevs;
	struct ipc_chan chan;  /* to the worker */
	bool ready;
	bool have_end;
	int end_reason;        /* VmExited.Reason */
	uint32_t end_code;
	char end_id[32];
	char end_msg[256];
	char counters[512];    /* "exits=N unclaimed-writes=N ..." */
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
 * reaped; SIGINT/SIGTERM power it off (a second one kills it). Returns the
 * `bulkhead run` exit status and describes a failure in err.
 */
int brk_vm_run_foreground(struct brk_vm *vm, bool verbose, char *err,
			  size_t errlen);
void brk_vm_free(struct brk_vm *vm);

/* Spawn `dir/binary` with bootstrap_fd as its fd 3; fills *c. */
int brk_spawn(const char *binary, int bootstrap_fd, const char *label,
	      struct brk_child *c, char *err, size_t errlen);
/* Describe how a reaped child ended: "exited with status 3", "killed by
 * signal 9 (Killed)". */
void brk_child_describe(const struct brk_child *c, char *buf, size_t len);

/* Parse a memory size such as 64M, 1G, 65536K or 4194304. */
int brk_parse_size(const char *s, uint64_t *out);

#endif
