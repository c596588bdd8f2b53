/* SPDX-License-Identifier: MIT */
/*
 * Supervising one VM's processes: the broker's side of the worker protocol
 * (one table, shared by `bulkhead run` and bulkheadd through struct
 * brk_vm_hooks), reaping, how a VM ended and the `run` exit status for it,
 * and running one VM in the foreground for `bulkhead run`.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker/launch.h"
#include "ipc/log.h"
#include "proto/msgtypes.h"
#include "worker.pb-c.h"

/* How long devices get to exit on their own once the worker is gone. */
#define BRK_DEVICE_GRACE_MS 2000

/* ---- supervision -------------------------------------------------------- */

bool brk_child_reap(struct brk_child *c)
{
	siginfo_t si = { 0 };

	if (c->reaped)
		return true;
	if (c->pidfd < 0)
		return false;
	if (waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED | WNOHANG) < 0 ||
	    si.si_pid == 0)
		return false;
	if (si.si_code == CLD_EXITED)
		c->wstatus = (si.si_status & 0xff) << 8;
	else
		c->wstatus = si.si_status & 0x7f;  /* killed or dumped */
	c->reaped = true;
	close(c->pidfd);
	c->pidfd = -1;
	return true;
}

void brk_vm_kill_all(struct brk_vm *vm)
{
	if (!vm->worker.reaped && vm->worker.pid > 0)
		kill(vm->worker.pid, SIGKILL);
	for (unsigned i = 0; i < vm->ndevs; i++)
		if (!vm->devs[i].reaped)
			kill(vm->devs[i].pid, SIGKILL);
}

bool brk_vm_all_reaped(const struct brk_vm *vm)
{
	if (vm->worker.pid > 0 && !vm->worker.reaped)
		return false;
	for (unsigned i = 0; i < vm->ndevs; i++)
		if (!vm->devs[i].reaped)
			return false;
	return true;
}

/* The worker is less trusted: whatever it says is copied, bounded. */
static void brk_copy_str(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

static int brk_answer_ready(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct brk_vm *vm = ctx;
	const WorkerReady *wr = pb;

	vm->ready = true;
	/* A worker that reports its states says RUNNING itself. */
	if (!vm->state_events)
		snprintf(vm->state, sizeof(vm->state), "RUNNING");
	LOG_DBG("worker ready: %u vCPUs, %s image", wr->vcpus, wr->image_kind);
	if (vm->hooks && vm->hooks->ready)
		vm->hooks->ready(vm);
	return 0;
}

static int brk_answer_exited(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct brk_vm *vm = ctx;
	const VmExited *ex = pb;
	size_t off = 0;

	vm->have_end = true;
	vm->end_reason = ex->reason;
	vm->end_code = ex->code;
	brk_copy_str(vm->end_id, sizeof(vm->end_id), ex->error_id);
	brk_copy_str(vm->end_msg, sizeof(vm->end_msg), ex->message);
	snprintf(vm->state, sizeof(vm->state), "OFF");
	vm->counters[0] = '\0';
	for (size_t i = 0; i < ex->n_counters && off < sizeof(vm->counters); i++) {
		int n = snprintf(vm->counters + off, sizeof(vm->counters) - off,
				 "%s%s=%" PRIu64, off ? " " : "",
				 ex->counters[i]->name, ex->counters[i]->value);
		if (n < 0)
			break;
		off += (size_t)n;
	}
	if (vm->hooks && vm->hooks->exited)
		vm->hooks->exited(vm);
	return 0;
}

static int brk_answer_control(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct brk_vm *vm = ctx;
	const VmControlReply *rep = pb;

	if (rep->state && rep->state[0] && !vm->have_end)
		brk_copy_str(vm->state, sizeof(vm->state), rep->state);
	if (vm->hooks && vm->hooks->control_reply)
		vm->hooks->control_reply(vm, rep);
	else if (rep->status < 0 && rep->status != -ESHUTDOWN)
		LOG_WARN("worker refused the operation: %s", rep->message);
	return 0;
}

static int brk_answer_stats(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct brk_vm *vm = ctx;
	const VmStats *st = pb;

	if (vm->hooks && vm->hooks->stats)
		vm->hooks->stats(vm, st);
	return 0;
}

static int brk_answer_state(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct brk_vm *vm = ctx;
	const VmStateChanged *sc = pb;

	vm->state_events++;
	if (!vm->have_end)
		brk_copy_str(vm->state, sizeof(vm->state), sc->new_state);
	LOG_DBG("VM state %s -> %s", sc->old_state, sc->new_state);
	if (vm->hooks && vm->hooks->state_changed)
		vm->hooks->state_changed(vm);
	return 0;
}

static int brk_answer_runtime_error(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct brk_vm *vm = ctx;
	const VmRuntimeError *re = pb;

	vm->have_rt_error = true;
	vm->rt_flags = re->flags;
	brk_copy_str(vm->rt_id, sizeof(vm->rt_id), re->error_id);
	brk_copy_str(vm->rt_msg, sizeof(vm->rt_msg), re->message);
	if (vm->hooks && vm->hooks->runtime_error)
		vm->hooks->runtime_error(vm);
	return 0;
}

static int brk_answer_save(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct brk_vm *vm = ctx;
	const VmSaveReply *rep = pb;

	if (rep->state && rep->state[0] && !vm->have_end)
		brk_copy_str(vm->state, sizeof(vm->state), rep->state);
	if (vm->hooks && vm->hooks->save_reply)
		vm->hooks->save_reply(vm, rep);
	else
		LOG_DBG("save %u not awaited (status %d)", rep->seq, rep->status);
	return 0;
}

/* Everything a worker may send once it has its WorkerInit: no fds. */
static const struct ipc_handler brk_worker_tab[] = {
	{ .type = MSG_WORKER_READY, .flags = IPC_PERMIT | IPC_ONCE,
	  .desc = &worker_ready__descriptor, .fn = brk_answer_ready },
	{ .type = MSG_VM_EXITED, .flags = IPC_PERMIT | IPC_ONCE,
	  .desc = &vm_exited__descriptor, .fn = brk_answer_exited },
	{ .type = MSG_VM_CONTROL_REPLY, .flags = IPC_PERMIT,
	  .desc = &vm_control_reply__descriptor, .fn = brk_answer_control },
	{ .type = MSG_VM_STATS_REPLY, .flags = IPC_PERMIT,
	  .desc = &vm_stats__descriptor, .fn = brk_answer_stats },
	{ .type = MSG_VM_STATE, .flags = IPC_PERMIT,
	  .desc = &vm_state_changed__descriptor, .fn = brk_answer_state },
	{ .type = MSG_VM_RUNTIME_ERROR, .flags = IPC_PERMIT,
	  .desc = &vm_runtime_error__descriptor,
	  .fn = brk_answer_runtime_error },
	{ .type = MSG_VM_SAVE_REPLY, .flags = IPC_PERMIT,
	  .desc = &vm_save_reply__descriptor, .fn = brk_answer_save },
};
static const struct ipc_phase brk_worker_phase = {
	.name = "running", .tab = brk_worker_tab,
	.n = sizeof(brk_worker_tab) / sizeof(brk_worker_tab[0]),
};

int brk_vm_worker_recv(struct brk_vm *vm, struct ipc_msg *msg)
{
	int r = ipc_recv(&vm->chan, msg);

	if (r == -EAGAIN)
		return r;
	if (r == 0) {
		r = ipc_dispatch(&vm->chan, &brk_worker_phase, &vm->chan_st, vm,
				 msg);
		ipc_msg_close_fds(msg);
	}
	if (r < 0) {
		if (r != -ECONNRESET && r != -EBADF)
			LOG_ERR("worker broke protocol: %s", strerror(-r));
		ipc_chan_close(&vm->chan);
	}
	return r;
}

int brk_vm_send_control(struct brk_vm *vm, int op, uint32_t seq)
{
	VmControl vc = VM_CONTROL__INIT;

	vc.op = (VmControl__Op)op;
	vc.seq = seq;
	return ipc_send_pb(&vm->chan, MSG_VM_CONTROL, &vc.base, NULL, 0);
}

int brk_vm_send_stats_req(struct brk_vm *vm, uint32_t seq)
{
	VmStatsReq req = VM_STATS_REQ__INIT;

	req.seq = seq;
	return ipc_send_pb(&vm->chan, MSG_VM_STATS, &req.base, NULL, 0);
}

int brk_vm_send_save(struct brk_vm *vm, uint32_t seq, unsigned flags,
		     uint32_t max_downtime_ms, int file_fd)
{
	VmSave req = VM_SAVE__INIT;

	req.seq = seq;
	req.keep_running = flags & BRK_SAVE_KEEP_RUNNING;
	req.live = flags & BRK_SAVE_LIVE;
	req.stay_suspended = flags & BRK_SAVE_STAY_SUSPENDED;
	req.max_downtime_ms = max_downtime_ms;
	return ipc_send_pb(&vm->chan, MSG_VM_SAVE, &req.base, &file_fd, 1);
}

/* The device a "device-died" message names, if it is reaped. */
static const struct brk_child *brk_vm_dead_device(const struct brk_vm *vm,
						  const char *msg)
{
	for (unsigned i = 0; i < vm->ndevs; i++) {
		const struct brk_child *c = &vm->devs[i];
		const char *at = strstr(msg, c->label);
		size_t n = strlen(c->label);

		/* "uart#0" must not match inside "uart#01". */
		if (c->reaped && at && !(at[n] >= '0' && at[n] <= '9'))
			return c;
	}
	return NULL;
}

void brk_vm_explain(const struct brk_vm *vm, const char *error_id,
		    const char *msg, char *buf, size_t len)
{
	const struct brk_child *c = NULL;
	char how[96];

	if (strcmp(error_id, "device-died") == 0)
		c = brk_vm_dead_device(vm, msg);
	if (c) {
		brk_child_describe(c, how, sizeof(how));
		snprintf(buf, len, "device %s %s", c->label, how);
	} else if (strcmp(error_id, "bad-saved-state") == 0) {
		snprintf(buf, len, "the saved state was refused: %s", msg);
	} else {
		snprintf(buf, len, "%s", msg);
	}
}

/* The run exit status an error id stands for. */
static int brk_exit_for_id(const char *id)
{
	if (strcmp(id, "bad-image") == 0 || strcmp(id, "bad-saved-state") == 0)
		return BRK_EXIT_BADIMAGE;
	if (strncmp(id, "device-", 7) == 0)
		return BRK_EXIT_DEVICE;
	if (strcmp(id, "guest-fault") == 0)
		return BRK_EXIT_GUEST;
	return BRK_EXIT_INTERNAL;
}

int brk_vm_exit_status(const struct brk_vm *vm, char *err, size_t errlen)
{
	char how[96];

	err[0] = '\0';
	/* A runtime error that stopped the VM outranks how it then ended. */
	if (vm->have_rt_error && (vm->rt_flags & (BRK_RT_FATAL | BRK_RT_SUSPEND))) {
		brk_vm_explain(vm, vm->rt_id, vm->rt_msg, err, errlen);
		return brk_exit_for_id(vm->rt_id);
	}
	if (!vm->have_end) {
		brk_child_describe(&vm->worker, how, sizeof(how));
		snprintf(err, errlen, "the worker %s before the VM ended", how);
		return BRK_EXIT_INTERNAL;
	}
	switch (vm->end_reason) {
	case VM_EXITED__REASON__POWER_OFF:
		return BRK_EXIT_POWER_OFF;
	case VM_EXITED__REASON__DEBUG_EXIT:
		return (int)(((vm->end_code << 1) | 1) & 0xff);
	default:
		break;
	}
	brk_vm_explain(vm, vm->end_id, vm->end_msg, err, errlen);
	return brk_exit_for_id(vm->end_id);
}

int brk_stop_signals_fd(sigset_t *sigs)
{
	sigemptyset(sigs);
	sigaddset(sigs, SIGINT);
	sigaddset(sigs, SIGTERM);
	sigaddset(sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, sigs, NULL);
	return signalfd(-1, sigs, SFD_CLOEXEC);
}

int64_t brk_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How long `run` waits for the device a runtime error names to be reaped
 * before it reports the error without saying how the device died. */
#define BRK_RT_REPORT_WAIT_MS 500

/* Foreground supervision state, the hooks' context. */
struct brk_fg {
	bool powering_off;     /* we sent POWER_OFF */
	bool rt_report;        /* a runtime error waits to be printed */
	bool rt_reported;      /* and was */
	int64_t rt_at;
};

static void brk_fg_power_off(struct brk_vm *vm, struct brk_fg *fg)
{
	if (fg->powering_off || vm->chan.fd < 0)
		return;
	fg->powering_off = true;
	brk_vm_send_control(vm, VM_CONTROL__OP__POWER_OFF, 0);
}

/* A runtime error that suspended (or would stop) the VM: nobody can resume
 * it in the foreground, so report it and power the VM off. */
static void brk_fg_runtime_error(struct brk_vm *vm)
{
	struct brk_fg *fg = vm->hook_ctx;

	if (!(vm->rt_flags & (BRK_RT_FATAL | BRK_RT_SUSPEND))) {
		LOG_WARN("runtime error: %s", vm->rt_msg);
		return;
	}
	fg->rt_report = true;
	fg->rt_at = brk_now_ms();
	brk_fg_power_off(vm, fg);
}

static void brk_fg_report(struct brk_vm *vm, struct brk_fg *fg, bool force)
{
	char msg[384];

	if (!fg->rt_report)
		return;
	if (!force && strcmp(vm->rt_id, "device-died") == 0 &&
	    !brk_vm_dead_device(vm, vm->rt_msg) &&
	    brk_now_ms() - fg->rt_at < BRK_RT_REPORT_WAIT_MS)
		return;  /* say how the device died, once we know */
	brk_vm_explain(vm, vm->rt_id, vm->rt_msg, msg, sizeof(msg));
	LOG_ERR("VM %s: %s",
		(vm->rt_flags & BRK_RT_SUSPEND) ? "suspended" : "stopped", msg);
	fg->rt_report = false;
	fg->rt_reported = true;
}

static const struct brk_vm_hooks brk_fg_hooks = {
	.runtime_error = brk_fg_runtime_error,
};

/* Drain what the worker said before it went. */
static void brk_fg_drain(struct brk_vm *vm, struct ipc_msg *msg)
{
	while (vm->chan.fd >= 0) {
		struct pollfd q = { .fd = vm->chan.fd, .events = POLLIN };

		if (poll(&q, 1, 0) <= 0)
			break;
		if (brk_vm_worker_recv(vm, msg) < 0)
			break;
	}
}

/* What to poll: the signals, the worker's channel and pidfd, then each
 * device's pidfd. The number of entries of p. */
static unsigned brk_fg_pollset(struct brk_vm *vm, int sigfd,
			       struct pollfd *p)
{
	unsigned n = 0;

	p[n++] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
	p[n++] = (struct pollfd){ .fd = vm->chan.fd, .events = POLLIN };
	p[n++] = (struct pollfd){ .fd = vm->worker.pidfd, .events = POLLIN };
	for (unsigned i = 0; i < vm->ndevs; i++)
		p[n++] = (struct pollfd){ .fd = vm->devs[i].pidfd,
					  .events = POLLIN };
	return n;
}

/* How long to poll: a runtime error waiting to be reported, and the
 * devices' grace once the worker is gone (past it, they are killed). */
static int brk_fg_timeout(struct brk_vm *vm, const struct brk_fg *fg,
			  int64_t worker_gone_at)
{
	int timeout = -1;

	if (fg->rt_report)
		timeout = BRK_RT_REPORT_WAIT_MS / 5;
	if (worker_gone_at >= 0) {
		int64_t left = worker_gone_at + BRK_DEVICE_GRACE_MS -
			       brk_now_ms();

		if (left <= 0) {
			brk_vm_kill_all(vm);
			left = 100;
		}
		if (timeout < 0 || left < timeout)
			timeout = (int)left;
	}
	return timeout;
}

/* A signal: the first powers the VM off, another kills it. */
static void brk_fg_signal(struct brk_vm *vm, struct brk_fg *fg, int sigfd,
			  int *signals)
{
	struct signalfd_siginfo si;

	if (read(sigfd, &si, sizeof(si)) != sizeof(si))
		return;
	(*signals)++;
	if (*signals == 1 && vm->chan.fd >= 0 && !fg->powering_off) {
		LOG_INFO("%s: powering the VM off",
			 strsignal((int)si.ssi_signo));
		brk_fg_power_off(vm, fg);
	} else {
		LOG_INFO("%s again: killing the VM",
			 strsignal((int)si.ssi_signo));
		brk_vm_kill_all(vm);
	}
}

int brk_vm_run_foreground(struct brk_vm *vm, bool verbose, char *err,
			  size_t errlen)
{
	struct ipc_msg *msg = malloc(sizeof(*msg));
	struct brk_fg fg = { 0 };
	sigset_t sigs;
	int sigfd, signals = 0, status;
	int64_t worker_gone_at = -1;

	if (!msg) {
		snprintf(err, errlen, "out of memory");
		return BRK_EXIT_INTERNAL;
	}
	vm->hooks = &brk_fg_hooks;
	vm->hook_ctx = &fg;
	sigfd = brk_stop_signals_fd(&sigs);

	while (!brk_vm_all_reaped(vm)) {
		struct pollfd p[3 + BRK_MAX_DEVICES];
		unsigned n = brk_fg_pollset(vm, sigfd, p);
		int r;

		r = poll(p, n, brk_fg_timeout(vm, &fg, worker_gone_at));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		if (p[0].revents)
			brk_fg_signal(vm, &fg, sigfd, &signals);
		if (p[1].revents)
			brk_vm_worker_recv(vm, msg);
		if (p[2].revents) {
			brk_child_reap(&vm->worker);
			if (worker_gone_at < 0)
				worker_gone_at = brk_now_ms();
			brk_fg_drain(vm, msg);
		}
		for (unsigned i = 0; i < vm->ndevs; i++) {
			if (p[3 + i].revents)
				brk_child_reap(&vm->devs[i]);
		}
		brk_fg_report(vm, &fg, false);
	}
	if (sigfd >= 0)
		close(sigfd);
	sigprocmask(SIG_UNBLOCK, &sigs, NULL);
	brk_fg_report(vm, &fg, true);
	free(msg);
	status = brk_vm_exit_status(vm, err, errlen);
	if (fg.rt_reported)
		err[0] = '\0';  /* said already */
	if (verbose && vm->counters[0])
		LOG_INFO("counters: %s", vm->counters);
	vm->hooks = NULL;
	vm->hook_ctx = NULL;
	return status;
}

void brk_vm_free(struct brk_vm *vm)
{
	if (!vm)
		return;
	brk_vm_kill_all(vm);
	if (vm->worker.pidfd >= 0) {
		waitpid(vm->worker.pid, NULL, 0);
		close(vm->worker.pidfd);
	}
	for (unsigned i = 0; i < vm->ndevs; i++) {
		if (vm->devs[i].pidfd >= 0) {
			waitpid(vm->devs[i].pid, NULL, 0);
			close(vm->devs[i].pidfd);
		}
	}
	ipc_chan_close(&vm->chan);
	free(vm);
}
