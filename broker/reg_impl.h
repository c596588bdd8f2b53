/* SPDX-License-Identifier: MIT */
/*
 * broker/reg_impl.h: what the registry's parts (broker/registry.c,
 * quota.c, console.c, ops.c, save.c, stats.c) share among themselves.
 * Nothing outside them includes it; the registry's interface is
 * broker/reg.h.
 */
#ifndef BULKHEAD_REG_IMPL_H
#define BULKHEAD_REG_IMPL_H

#include "broker/reg.h"

/* How long the start of a VM may take, up to WorkerReady. */
#define BRK_START_TIMEOUT_MS 30000
/* How long the worker has to answer pause, resume, reset or stats. */
#define BRK_CONTROL_TIMEOUT_MS 10000
#define BRK_STATS_TIMEOUT_MS 5000
/* How long a power-off may take before what is left is killed. */
#define BRK_POWER_OFF_TIMEOUT_MS 10000
/* How long the processes get to exit once the VM has ended. */
#define BRK_END_GRACE_MS 3000
/* How long a restore may take, up to RUNNING (big streams, busy hosts). */
#define BRK_RESTORE_TIMEOUT_MS 300000

/* ---- registry.c: records and answers ---------------------------------------- */

struct brk_rec *brk_reg_find(struct brk_reg *reg, uint32_t owner,
			     const char *name);
struct brk_rec *brk_reg_by_id(struct brk_reg *reg, uint32_t id);
/*
 * Check a CreateVm and the fds m carries for it (from index 0: the image
 * unless !has_image, the initrd, the serial file, the disk; then
 * extra_fds more for the caller), and build the record, not yet in the
 * registry. Returns 0, or a positive errno with a sentence in err.
 */
int brk_rec_build(struct brk_reg *reg, const struct brk_caller *c,
		  const CreateVm *cv, bool has_image, struct ipc_msg *m,
		  unsigned extra_fds, const char *verb, struct brk_rec **out,
		  char *err, size_t errlen);
/* Give a built record its id and put it in the registry. */
void brk_rec_insert(struct brk_reg *reg, struct brk_rec *rec,
		    const struct brk_caller *c, const char *how);
/* Take rec out of the registry (freed after the event batch). */
void brk_reg_remove(struct brk_reg *reg, struct brk_rec *rec);
void brk_rec_free(struct brk_rec *rec);
/* Is fd something we may hand a sandboxed reader (the image) or writer
 * (the serial file)? Only fstat and the open flags: no parsing. */
int brk_check_fd(int fd, bool writer, const char *what, char *err,
		 size_t errlen);

/* Storage for one VmInfo and what it points to. */
struct brk_info {
	VmInfo vm;
	ProcInfo procs[1 + BRK_MAX_DEVICES];
	ProcInfo *procp[1 + BRK_MAX_DEVICES];
	char ended[1 + BRK_MAX_DEVICES][96];
	DeviceReq dev[BRK_MAX_REQ_DEVICES];
	DeviceReq *devp[BRK_MAX_REQ_DEVICES];
	char state[24];
};
/* brief: for list (no command line, no 'ended' texts). */
void brk_info_fill(const struct brk_rec *rec, struct brk_info *in,
		   bool brief);

/* Frames to clients: sent now, or as the answer a waiting client gets. */
void brk_reg_send(struct brk_reg *reg, uint64_t client, uint16_t type,
		  const ProtobufCMessage *pb);
void brk_reg_fail(struct brk_reg *reg, const struct brk_caller *c,
		  int errno_code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void brk_reg_answer(struct brk_reg *reg, uint64_t client, uint16_t type,
		    const ProtobufCMessage *pb);
void brk_reg_answer_info(struct brk_reg *reg, uint64_t client,
			 const struct brk_rec *rec);
void brk_reg_answer_fail(struct brk_reg *reg, uint64_t client,
			 int errno_code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void brk_reg_set_mode(struct brk_reg *reg, uint64_t client,
		      enum brk_client_mode mode);
int brk_reg_watch(struct brk_reg *reg, int fd, uint32_t events,
		  struct brk_watch *w);
void brk_reg_unwatch(struct brk_reg *reg, int fd);

/* ---- quota.c ----------------------------------------------------------------- */

/* May uid have one more VM of mem bytes and cpus vCPUs? 0, or a negative
 * errno with the limit, its value and where it is set in err. */
int brk_reg_check_quota(struct brk_reg *reg, uint32_t uid, uint64_t mem,
			unsigned cpus, char *err, size_t errlen);

/* ---- console.c --------------------------------------------------------------- */

/* Copy what the UART wrote into the scrollback and to attached clients. */
void brk_console_read(struct brk_reg *reg, struct brk_rec *rec);
/* End the console sessions on rec (the VM ended or goes away). */
void brk_console_end(struct brk_reg *reg, struct brk_rec *rec,
		     const char *reason);

/* ---- ops.c ------------------------------------------------------------------- */

/* Launch rec's processes: booting its image, or restoring the saved state
 * restore_fd (-1: none; the worker gets its own copy). */
int brk_rec_launch(struct brk_reg *reg, struct brk_rec *rec, int restore_fd,
		   char *err, size_t errlen);
/* Ask the VM to power off (the answer comes when every process is gone). */
void brk_rec_ask_power_off(struct brk_rec *rec, uint32_t seq);
/* Every process reaped: the VM is OFF and the operation is answered. */
void brk_reg_check_end(struct brk_reg *reg, struct brk_rec *rec);
int64_t brk_min_deadline(int64_t a, int64_t b);

/* ---- save.c ------------------------------------------------------------------ */

void brk_save_close(struct brk_rec *rec);
/* Move a save on; called on every event that may end one of its phases. */
void brk_save_progress(struct brk_reg *reg, struct brk_rec *rec);
/* The worker answered the RESUME or POWER_OFF that ends a save. */
void brk_save_control_reply(struct brk_reg *reg, struct brk_rec *rec,
			    const VmControlReply *rep);
void brk_save_on_reply(struct brk_vm *vm, const VmSaveReply *rep);
/* The save's deadline passed; returns the next one, or -1. */
int64_t brk_save_timeout(struct brk_reg *reg, struct brk_rec *rec,
			 int64_t now);

/* ---- stats.c ----------------------------------------------------------------- */

void brk_stats_on_reply(struct brk_vm *vm, const VmStats *st);
/* Answer every stats request on rec with just the process part. */
void brk_stats_fail(struct brk_reg *reg, struct brk_rec *rec,
		    const char *why);
/* Stats requests past their deadline; returns the next one, or -1. */
int64_t brk_stats_tick(struct brk_reg *reg, struct brk_rec *rec,
		       int64_t now);

#endif
