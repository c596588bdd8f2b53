/* SPDX-License-Identifier: MIT */
/*
 * A VM's lifecycle in the registry: start (launching its processes),
 * pause, resume and reset (a VmControl to its worker), power off and
 * destroy; the worker's events (struct brk_vm_hooks), the processes' ends
 * (pidfds), and the deadlines of every operation. One operation per VM is
 * in progress at a time; the client that asked waits for its answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker/reg_impl.h"
#include "ipc/log.h"
#include "kdriver/kd.h"
#include "proto/msgtypes.h"

static void brk_reg_answer_destroyed(struct brk_reg *reg,
				     struct brk_rec *rec, uint64_t client)
{
	snprintf(rec->state, sizeof(rec->state), "DESTROYED");
	brk_reg_answer_info(reg, client, rec);
	brk_reg_remove(reg, rec);
}

/* How the run ended, into rec: its exit status, its error (unless one was
 * recorded already) and last_exit, the line `status` shows. */
static void brk_rec_note_end(struct brk_rec *rec, enum brk_op op)
{
	struct brk_vm *vm = rec->vm;
	char err[384];
	int status;

	status = brk_vm_exit_status(vm, err, sizeof(err));
	rec->exit_status = status;
	if (err[0] && !(status & 1) && status != BRK_EXIT_POWER_OFF &&
	    !rec->error[0])
		snprintf(rec->error, sizeof(rec->error), "%s", err);
	if (!vm->have_end) {
		snprintf(rec->last_exit, sizeof(rec->last_exit), "%s",
			 rec->error[0] ? rec->error : err);
	} else if (vm->end_reason == VM_EXITED__REASON__POWER_OFF) {
		snprintf(rec->last_exit, sizeof(rec->last_exit), "%s",
			 vm->end_msg[0] ? vm->end_msg : "powered off");
	} else if (vm->end_reason == VM_EXITED__REASON__DEBUG_EXIT) {
		snprintf(rec->last_exit, sizeof(rec->last_exit),
			 "the guest wrote %u to debug-exit", vm->end_code);
	} else {
		char expl[384];

		brk_vm_explain(vm, vm->end_id, vm->end_msg, expl, sizeof(expl));
		snprintf(rec->last_exit, sizeof(rec->last_exit), "VMM error: %s",
			 expl);
	}
	if (op == BRK_OP_SAVE && rec->save.phase == BRK_SAVE_POWERING_OFF &&
	    vm->have_end && vm->end_reason == VM_EXITED__REASON__POWER_OFF)
		snprintf(rec->last_exit, sizeof(rec->last_exit),
			 "saved and powered off");
}

/* The VM is OFF: answer the client of the operation op that was in
 * progress (other than a save) as that operation's end. */
static void brk_reg_answer_ended(struct brk_reg *reg, struct brk_rec *rec,
				 enum brk_op op)
{
	switch (op) {
	case BRK_OP_NONE:
		break;
	case BRK_OP_START:
		brk_reg_answer_fail(reg, rec->op_client, EIO, "VM '%s' did not "
				     "start: %s", rec->name,
				     rec->error[0] ? rec->error : rec->last_exit);
		break;
	case BRK_OP_POWER_OFF:
		brk_reg_answer_info(reg, rec->op_client, rec);
		break;
	case BRK_OP_DESTROY:
		brk_reg_answer_destroyed(reg, rec, rec->op_client);
		break;
	case BRK_OP_RESTORE:
		brk_reg_answer_fail(reg, rec->op_client, rec->error[0] ? EINVAL :
				     EIO, "VM '%s' was not restored: %s%s",
				     rec->name, rec->error[0] ? rec->error :
				     rec->last_exit, rec->restore_fresh ?
				     "" : "; it is OFF");
		/* A record made for this restore goes with it. */
		if (rec->restore_fresh)
			brk_reg_remove(reg, rec);
		break;
	default:
		brk_reg_answer_fail(reg, rec->op_client, EIO, "VM '%s' ended "
				     "before its worker answered %s: %s",
				     rec->name, brk_op_name(op), rec->last_exit);
		break;
	}
}

/* Every process of the run is reaped: the VM is OFF. */
static void brk_reg_vm_ended(struct brk_reg *reg, struct brk_rec *rec)
{
	struct brk_vm *vm = rec->vm;
	char what[460];
	enum brk_op op = rec->op;

	if (rec->console_fd >= 0) {
		brk_console_read(reg, rec);  /* the last words */
		if (rec->console_fd >= 0) {
			brk_reg_unwatch(reg, rec->console_fd);
			close(rec->console_fd);
			rec->console_fd = -1;
		}
	}
	brk_rec_note_end(rec, op);
	if (rec->error[0] && !strstr(rec->last_exit, rec->error))
		LOG_INFO("VM %s (id %u, uid %u) is off: %s; error: %s",
			 rec->name, rec->id, rec->owner, rec->last_exit,
			 rec->error);
	else
		LOG_INFO("VM %s (id %u, uid %u) is off: %s", rec->name, rec->id,
			 rec->owner, rec->last_exit);
	brk_vm_free(vm);
	rec->vm = NULL;
	rec->ending = false;
	rec->kill_at = -1;
	snprintf(rec->state, sizeof(rec->state), "OFF");
	snprintf(what, sizeof(what), "VM '%s' is OFF: %s", rec->name,
		 rec->last_exit);
	brk_console_end(reg, rec, what);
	brk_stats_fail(reg, rec, "the VM ended");

	if (op == BRK_OP_SAVE) {
		brk_save_progress(reg, rec);
		return;
	}
	rec->op = BRK_OP_NONE;
	brk_reg_answer_ended(reg, rec, op);
}

void brk_reg_check_end(struct brk_reg *reg, struct brk_rec *rec)
{
	if (rec->vm && brk_vm_all_reaped(rec->vm))
		brk_reg_vm_ended(reg, rec);
}

/* ---- worker events (struct brk_vm_hooks) ------------------------------- */

/* Is the VM still on its way up (so `start` is not answered yet)? */
static bool brk_state_powering_on(const char *state)
{
	return strcmp(state, "STARTING") == 0 || strcmp(state, "CREATING") == 0 ||
	       strcmp(state, "CREATED") == 0 ||
	       strcmp(state, "POWERING_ON") == 0;
}

/* Answer `start` once the worker is ready and out of POWERING_ON. */
static void brk_reg_start_done(struct brk_rec *rec)
{
	struct brk_vm *vm = rec->vm;

	/* A restore is done when the loaded VM runs (LOADING, SUSPENDED and
	 * RESUMING come first). */
	if (rec->op == BRK_OP_RESTORE && vm->ready && !rec->ending &&
	    strcmp(vm->state, "RUNNING") == 0) {
		LOG_INFO("VM %s (id %u) restored: RUNNING", rec->name, rec->id);
		rec->op = BRK_OP_NONE;
		brk_reg_answer_info(rec->reg, rec->op_client, rec);
		return;
	}
	if (rec->op != BRK_OP_START || !vm->ready ||
	    brk_state_powering_on(vm->state))
		return;
	LOG_INFO("VM %s (id %u) is %s", rec->name, rec->id, vm->state);
	rec->op = BRK_OP_NONE;
	brk_reg_answer_info(rec->reg, rec->op_client, rec);
}

static void brk_reg_on_ready(struct brk_vm *vm)
{
	brk_reg_start_done(vm->hook_ctx);
}

static void brk_reg_on_state(struct brk_vm *vm)
{
	brk_reg_start_done(vm->hook_ctx);
}

static void brk_reg_on_runtime_error(struct brk_vm *vm)
{
	struct brk_rec *rec = vm->hook_ctx;

	brk_vm_explain(vm, vm->rt_id, vm->rt_msg, rec->error,
		       sizeof(rec->error));
	LOG_WARN("VM %s (id %u): runtime error%s: %s", rec->name, rec->id,
		 (vm->rt_flags & BRK_RT_SUSPEND) ? " (VM suspended)" :
		 (vm->rt_flags & BRK_RT_FATAL) ? " (fatal)" : "", rec->error);
	/* A restore that failed leaves nothing worth keeping: power off; the
	 * client is answered once the processes are gone. */
	if (rec->op == BRK_OP_RESTORE &&
	    (vm->rt_flags & (BRK_RT_FATAL | BRK_RT_SUSPEND)) && !rec->ending) {
		rec->op_deadline = brk_now_ms() + BRK_POWER_OFF_TIMEOUT_MS;
		brk_rec_ask_power_off(rec, ++rec->seq);
	}
}

static void brk_reg_on_exited(struct brk_vm *vm)
{
	struct brk_rec *rec = vm->hook_ctx;

	rec->ending = true;
	if (vm->end_reason == VM_EXITED__REASON__VM_ERROR)
		brk_vm_explain(vm, vm->end_id, vm->end_msg, rec->error,
			       sizeof(rec->error));
	if (rec->kill_at < 0)
		rec->kill_at = brk_now_ms() + BRK_END_GRACE_MS;
}

static void brk_reg_on_control_reply(struct brk_vm *vm,
				     const VmControlReply *rep)
{
	struct brk_rec *rec = vm->hook_ctx;
	struct brk_reg *reg = rec->reg;
	enum brk_op op = rec->op;

	if (op == BRK_OP_NONE || op == BRK_OP_START || op == BRK_OP_RESTORE ||
	    rep->seq != rec->op_seq) {
		LOG_DBG("VM %s: control reply %u not awaited", rec->name,
			rep->seq);
		return;
	}
	if (op == BRK_OP_SAVE) {
		brk_save_control_reply(reg, rec, rep);
		return;
	}
	/* Powering off a VM that is already going down: wait for the end. */
	if (rep->status == -ESHUTDOWN &&
	    (op == BRK_OP_POWER_OFF || op == BRK_OP_DESTROY))
		return;
	if (rep->status < 0) {
		rec->op = BRK_OP_NONE;
		if (op == BRK_OP_POWER_OFF || op == BRK_OP_DESTROY)
			rec->ending = false;
		brk_reg_answer_fail(reg, rec->op_client, -rep->status,
				     "cannot %s VM '%s': %s (%s; state %s)",
				     brk_op_name(op), rec->name,
				     rep->message && rep->message[0] ?
				     rep->message : "the worker refused",
				     strerror(-rep->status),
				     brk_rec_state(rec));
		return;
	}
	if (op == BRK_OP_POWER_OFF || op == BRK_OP_DESTROY)
		return;  /* answered once every process is gone */
	rec->op = BRK_OP_NONE;
	brk_reg_answer_info(reg, rec->op_client, rec);
}

static const struct brk_vm_hooks brk_reg_hooks = {
	.ready = brk_reg_on_ready,
	.state_changed = brk_reg_on_state,
	.runtime_error = brk_reg_on_runtime_error,
	.exited = brk_reg_on_exited,
	.control_reply = brk_reg_on_control_reply,
	.stats = brk_stats_on_reply,
	.save_reply = brk_save_on_reply,
};

/* ---- operations --------------------------------------------------------- */

/* The serial backend a record asks for, into cfg: for a console, a socket
 * pair of which sv[1] goes to the UART and sv[0] stays with us. 0, or
 * -errno after saying why. */
static int brk_rec_serial(const struct brk_rec *rec,
			  struct brk_vm_config *cfg, int sv[2], char *err,
			  size_t errlen)
{
	int r;

	switch (rec->serial) {
	case SERIAL_MODE__SERIAL_CONSOLE:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
			r = -errno;
			snprintf(err, errlen, "socketpair: %s", strerror(errno));
			return r;
		}
		cfg->serial = BRK_SERIAL_CONSOLE;
		cfg->console_fd = sv[1];
		break;
	case SERIAL_MODE__SERIAL_FILE:
		cfg->serial = BRK_SERIAL_FILE;
		cfg->serial_out_fd = rec->serial_fd;
		break;
	default:
		cfg->serial = BRK_SERIAL_NULL;
		break;
	}
	return 0;
}

/* Watch the launched VM's worker channel, its processes' pidfds and our
 * end of its console (console_fd, -1: none). 0, or -errno. */
static int brk_rec_watch(struct brk_reg *reg, struct brk_rec *rec,
			 struct brk_vm *vm, int console_fd)
{
	int r;

	rec->w_chan = (struct brk_watch){ BRK_WATCH_WORKER, rec, 0 };
	rec->w_worker = (struct brk_watch){ BRK_WATCH_CHILD, rec, -1 };
	r = brk_reg_watch(reg, vm->chan.fd, EPOLLIN, &rec->w_chan);
	if (!r)
		r = brk_reg_watch(reg, vm->worker.pidfd, EPOLLIN, &rec->w_worker);
	for (unsigned i = 0; !r && i < vm->ndevs; i++) {
		rec->w_devs[i] = (struct brk_watch){ BRK_WATCH_CHILD, rec,
						     (int)i };
		r = brk_reg_watch(reg, vm->devs[i].pidfd, EPOLLIN,
				  &rec->w_devs[i]);
	}
	if (!r && console_fd >= 0) {
		rec->w_console = (struct brk_watch){ BRK_WATCH_CONSOLE, rec, 0 };
		fcntl(console_fd, F_SETFL, fcntl(console_fd, F_GETFL) |
		      O_NONBLOCK);
		r = brk_reg_watch(reg, console_fd, EPOLLIN, &rec->w_console);
	}
	return r;
}

int brk_rec_launch(struct brk_reg *reg, struct brk_rec *rec, int restore_fd,
		   char *err, size_t errlen)
{
	struct brk_vm_config cfg = {
		.mem_size = rec->mem_size, .cpus = rec->cpus,
		.cmdline = rec->cmdline, .image_fd = rec->image_fd,
		.initrd_fd = rec->initrd_fd, .serial_out_fd = -1,
		.console_fd = -1, .restore_fd = restore_fd,
		.ndevs = rec->ndevs,
	};
	int sv[2] = { -1, -1 };
	struct brk_vm *vm = NULL;
	int kvm_fd, r;

	memcpy(cfg.devs, rec->devs, sizeof(cfg.devs));
	kvm_fd = kd_sys_open(NULL);
	if (kvm_fd < 0) {
		snprintf(err, errlen, "bulkheadd cannot open /dev/kvm: %s (it "
			 "must run as root or in the kvm group, on a host with "
			 "KVM)", strerror(-kvm_fd));
		return -ENODEV;
	}
	r = brk_rec_serial(rec, &cfg, sv, err, errlen);
	if (r < 0)
		goto out;
	r = brk_vm_launch(kvm_fd, &cfg, &vm, err, errlen);
	if (r) {
		r = r == BRK_EXIT_NOKVM ? -ENODEV : -EIO;
		goto out;
	}
	vm->hooks = &brk_reg_hooks;
	vm->hook_ctx = rec;
	/* A stuck worker must not block the broker. */
	fcntl(vm->chan.fd, F_SETFL, fcntl(vm->chan.fd, F_GETFL) | O_NONBLOCK);
	r = brk_rec_watch(reg, rec, vm, sv[0]);
	if (r < 0) {
		snprintf(err, errlen, "epoll: %s", strerror(-r));
		/* Closing the fds takes them out of the epoll set. */
		brk_vm_free(vm);
		goto out;
	}
	rec->vm = vm;
	rec->console_fd = sv[0];
	sv[0] = -1;
	rec->started_ms = brk_now_ms();
	rec->ending = false;
	rec->kill_at = -1;
	rec->error[0] = '\0';
	rec->seq = 0;
	r = 0;
out:
	close(kvm_fd);
	for (int i = 0; i < 2; i++)
		if (sv[i] >= 0)
			close(sv[i]);
	return r;
}

void brk_rec_ask_power_off(struct brk_rec *rec, uint32_t seq)
{
	struct brk_vm *vm = rec->vm;

	rec->ending = true;
	if (vm->chan.fd >= 0 && !vm->have_end &&
	    brk_vm_send_control(vm, VM_CONTROL__OP__POWER_OFF, seq) == 0)
		return;
	/* No worker to ask: what is left goes. */
	brk_vm_kill_all(vm);
}

void brk_reg_start(struct brk_reg *reg, const struct brk_caller *c,
		   struct brk_rec *rec)
{
	char err[384];
	int r;

	if (rec->image_fd < 0) {
		brk_reg_fail(reg, c, EINVAL, "VM '%s' has no image to boot: it "
			     "was restored from saved state without one; "
			     "restore it again ('bulkhead restore %s FILE') or "
			     "destroy it", rec->name, rec->name);
		return;
	}
	r = brk_rec_launch(reg, rec, -1, err, sizeof(err));
	if (r < 0) {
		brk_reg_fail(reg, c, -r, "cannot start VM '%s': %s", rec->name,
			     err);
		return;
	}
	LOG_INFO("VM %s (id %u, uid %u) starting: worker pid %d", rec->name,
		 rec->id, rec->owner, rec->vm->worker.pid);
	rec->op = BRK_OP_START;
	rec->op_client = c->id;
	rec->op_deadline = brk_now_ms() + BRK_START_TIMEOUT_MS;
	brk_reg_set_mode(reg, c->id, BRK_MODE_WAITING);
	/* The processes may all be gone already (nothing to wait for). */
	brk_reg_check_end(reg, rec);
}

void brk_reg_control(struct brk_reg *reg, const struct brk_caller *c,
		     struct brk_rec *rec, enum brk_op op)
{
	static const int wops[] = {
		[BRK_OP_PAUSE] = VM_CONTROL__OP__SUSPEND,
		[BRK_OP_RESUME] = VM_CONTROL__OP__RESUME,
		[BRK_OP_RESET] = VM_CONTROL__OP__RESET,
	};
	int r;

	if (op != BRK_OP_PAUSE && op != BRK_OP_RESUME && op != BRK_OP_RESET) {
		brk_reg_fail(reg, c, EINVAL, "%s is not a VM control",
			     brk_op_name(op));
		return;
	}
	rec->op_seq = ++rec->seq;
	r = brk_vm_send_control(rec->vm, wops[op], rec->op_seq);
	if (r < 0) {
		brk_reg_fail(reg, c, EIO, "cannot reach the worker of VM '%s': "
			     "%s", rec->name, strerror(-r));
		return;
	}
	rec->op = op;
	rec->op_client = c->id;
	rec->op_deadline = brk_now_ms() + BRK_CONTROL_TIMEOUT_MS;
	brk_reg_set_mode(reg, c->id, BRK_MODE_WAITING);
}

void brk_reg_power_off(struct brk_reg *reg, const struct brk_caller *c,
		       struct brk_rec *rec, enum brk_op op)
{
	if (!rec->vm && op == BRK_OP_DESTROY) {
		snprintf(rec->state, sizeof(rec->state), "DESTROYED");
		brk_reg_status(reg, c, rec);
		brk_reg_remove(reg, rec);
		return;
	}
	if (!rec->vm) {
		brk_reg_fail(reg, c, EINVAL, "VM '%s' is already off (state %s)",
			     rec->name, brk_rec_state(rec));
		return;
	}
	rec->op_seq = ++rec->seq;
	brk_rec_ask_power_off(rec, rec->op_seq);
	rec->op = op;
	rec->op_client = c->id;
	rec->op_deadline = brk_now_ms() + BRK_POWER_OFF_TIMEOUT_MS;
	rec->op_killed = false;
	brk_reg_set_mode(reg, c->id, BRK_MODE_WAITING);
	/* The processes may all be gone already (killed, nothing to wait). */
	brk_reg_check_end(reg, rec);
}

/* ---- events and timers -------------------------------------------------- */

/* The worker went or broke protocol: the VM is ending. */
static void brk_reg_worker_lost(struct brk_rec *rec, int r)
{
	struct brk_vm *vm = rec->vm;

	if (r != -ECONNRESET && r != -EBADF && !vm->worker.reaped) {
		/* Fail closed: a worker that breaks protocol is killed. */
		kill(vm->worker.pid, SIGKILL);
		if (!rec->error[0])
			snprintf(rec->error, sizeof(rec->error), "the worker "
				 "broke protocol (%s) and was killed",
				 strerror(-r));
	}
	rec->ending = true;
	if (rec->kill_at < 0)
		rec->kill_at = brk_now_ms() + BRK_END_GRACE_MS;
}

static void brk_reg_worker_readable(struct brk_reg *reg, struct brk_rec *rec)
{
	/* A few frames per event, so one worker cannot starve the rest. */
	for (int i = 0; i < 8 && rec->vm && rec->vm->chan.fd >= 0; i++) {
		int r = brk_vm_worker_recv(rec->vm, reg->msg);

		if (r == -EAGAIN)
			return;
		if (r < 0) {
			brk_reg_worker_lost(rec, r);
			return;
		}
		if (rec->dead || !rec->vm)
			return;
	}
}

static void brk_reg_child_ended(struct brk_reg *reg, struct brk_rec *rec, int idx)
{
	struct brk_vm *vm = rec->vm;
	struct brk_child *c = idx < 0 ? &vm->worker : &vm->devs[idx];
	char how[96];

	if (!brk_child_reap(c))
		return;
	brk_child_describe(c, how, sizeof(how));
	if (idx < 0) {
		/* Whatever it said before it went counts. */
		while (vm->chan.fd >= 0 && brk_vm_worker_recv(vm, reg->msg) == 0)
			;
		if (!vm->have_end && !rec->error[0])
			snprintf(rec->error, sizeof(rec->error), "the worker %s "
				 "before the VM ended", how);
		if (!vm->have_end)
			LOG_WARN("VM %s (id %u): the worker %s", rec->name,
				 rec->id, how);
		brk_reg_worker_lost(rec, -ECONNRESET);
		return;
	}
	if (rec->ending)
		return;
	/*
	 * A device ended under a running VM. If the worker already reported
	 * it (device-died), say how it died: we are its parent. A device that
	 * exits 0 is normal at the end of a run (the worker destructs the
	 * devices before it sends VmExited), so only an abnormal end counts
	 * as an error before the worker's word.
	 */
	if (rec->error[0] && strstr(rec->error, c->label)) {
		snprintf(rec->error, sizeof(rec->error), "device %s %s",
			 c->label, how);
	} else if (!(WIFEXITED(c->wstatus) && WEXITSTATUS(c->wstatus) == 0)) {
		LOG_WARN("VM %s (id %u): device %s %s", rec->name, rec->id,
			 c->label, how);
		if (!rec->error[0])
			snprintf(rec->error, sizeof(rec->error), "device %s %s",
				 c->label, how);
	}
}

void brk_reg_event(struct brk_reg *reg, struct brk_watch *w, uint32_t events)
{
	struct brk_rec *rec = w->obj;

	if (rec->dead)
		return;
	if (!rec->vm)
		return;
	switch (w->kind) {
	case BRK_WATCH_WORKER:
		brk_reg_worker_readable(reg, rec);
		break;
	case BRK_WATCH_CHILD:
		brk_reg_child_ended(reg, rec, w->idx);
		break;
	case BRK_WATCH_CONSOLE:
		brk_console_read(reg, rec);
		break;
	default:
		break;
	}
	if (!rec->dead)
		brk_reg_check_end(reg, rec);
}

int64_t brk_min_deadline(int64_t a, int64_t b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

/* rec's operation is past its deadline: kill what is left of the VM and
 * wait a grace, or answer the client that it timed out. The next deadline,
 * with next (the record's other deadlines) in it. */
static int64_t brk_reg_op_expired(struct brk_reg *reg, struct brk_rec *rec,
				  int64_t now, int64_t next)
{
	switch (rec->op) {
	case BRK_OP_SAVE:
		return brk_min_deadline(next, brk_save_timeout(reg, rec, now));
	case BRK_OP_RESTORE:
		if (rec->vm && !rec->op_killed) {
			if (!rec->error[0])
				snprintf(rec->error, sizeof(rec->error), "it did "
					 "not run within %d s (it was killed)",
					 BRK_RESTORE_TIMEOUT_MS / 1000);
			rec->ending = true;
			brk_vm_kill_all(rec->vm);
			rec->op_killed = true;
			rec->op_deadline = now + BRK_END_GRACE_MS;
			return brk_min_deadline(next, rec->op_deadline);
		}
		rec->op = BRK_OP_NONE;
		brk_reg_answer_fail(reg, rec->op_client, ETIMEDOUT, "VM '%s' was "
				     "not restored: %s", rec->name,
				     rec->error[0] ? rec->error : "timed out");
		break;
	case BRK_OP_START:
		rec->op = BRK_OP_NONE;
		if (rec->vm) {
			rec->ending = true;
			brk_vm_kill_all(rec->vm);
		}
		brk_reg_answer_fail(reg, rec->op_client, ETIMEDOUT, "VM '%s' did "
				     "not start within %d s; it was killed",
				     rec->name, BRK_START_TIMEOUT_MS / 1000);
		break;
	case BRK_OP_POWER_OFF:
	case BRK_OP_DESTROY:
		if (!rec->op_killed && rec->vm) {
			LOG_WARN("VM %s (id %u) did not power off within %d s: "
				 "killing it", rec->name, rec->id,
				 BRK_POWER_OFF_TIMEOUT_MS / 1000);
			brk_vm_kill_all(rec->vm);
			rec->op_killed = true;
			rec->op_deadline = now + BRK_END_GRACE_MS;
			return brk_min_deadline(next, rec->op_deadline);
		}
		/* fall through */
	default:
		brk_reg_answer_fail(reg, rec->op_client, ETIMEDOUT, "the worker "
				     "of VM '%s' did not answer %s within %d s",
				     rec->name, brk_op_name(rec->op),
				     BRK_CONTROL_TIMEOUT_MS / 1000);
		rec->op = BRK_OP_NONE;
		break;
	}
	return next;
}

static int64_t brk_reg_tick_one(struct brk_reg *reg, struct brk_rec *rec,
				int64_t now)
{
	int64_t next = -1;

	if (rec->vm && rec->kill_at >= 0) {
		if (now >= rec->kill_at) {
			LOG_WARN("VM %s (id %u): killing what is left of it",
				 rec->name, rec->id);
			brk_vm_kill_all(rec->vm);
			rec->kill_at = -1;
		} else {
			next = rec->kill_at;
		}
	}
	next = brk_min_deadline(next, brk_stats_tick(reg, rec, now));
	if (rec->op == BRK_OP_NONE)
		return next;
	if (now < rec->op_deadline)
		return brk_min_deadline(next, rec->op_deadline);
	return brk_reg_op_expired(reg, rec, now, next);
}

int64_t brk_reg_tick(struct brk_reg *reg, int64_t now)
{
	int64_t next = -1;
	struct brk_rec *n;

	for (struct brk_rec *r = reg->vms; r; r = n) {
		n = r->next;  /* destroy may unlink r */
		next = brk_min_deadline(next, brk_reg_tick_one(reg, r, now));
	}
	return next;
}

void brk_reg_shutdown(struct brk_reg *reg)
{
	reg->shutting_down = true;
	for (struct brk_rec *r = reg->vms; r; r = r->next) {
		if (r->op == BRK_OP_SAVE && r->vm) {
			/* A VM being saved cannot be powered off: let the save
			 * finish (within the shutdown deadline); the VM is
			 * powered off when it is answered. */
			LOG_INFO("VM %s (id %u): powering off after its save",
				 r->name, r->id);
			continue;
		}
		if (r->op != BRK_OP_NONE) {
			brk_reg_answer_fail(reg, r->op_client, ESHUTDOWN,
					     "bulkheadd is shutting down: every "
					     "VM is being powered off");
			r->op = BRK_OP_NONE;
			brk_save_close(r);
		}
		if (!r->vm)
			continue;
		LOG_INFO("VM %s (id %u): powering off", r->name, r->id);
		brk_rec_ask_power_off(r, ++r->seq);
	}
}

void brk_reg_kill_all(struct brk_reg *reg)
{
	for (struct brk_rec *r = reg->vms; r; r = r->next)
		if (r->vm)
			brk_vm_kill_all(r->vm);
}

bool brk_reg_any_running(const struct brk_reg *reg)
{
	for (const struct brk_rec *r = reg->vms; r; r = r->next)
		if (r->vm)
			return true;
	return false;
}
