/* SPDX-License-Identifier: MIT */
/*
 * Save and restore. A save hands the worker the client's (emptied) file
 * with VmSave; the worker writes the saved-state stream into it and
 * answers with VmSaveReply. The broker then checks the file's size against
 * the worker's count and syncs it, and only then powers the VM off (unless
 * it keeps running), so a full disk never loses a VM. A restore launches a
 * VM whose worker loads the stream (parsing it in its sandbox) instead of
 * booting its image.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/reg_impl.h"
#include "ipc/log.h"
#include "proto/msgtypes.h"

/* A save fails when its file stops growing for this long. */
#define BRK_SAVE_IDLE_TIMEOUT_MS 60000
/* The longest final-pass budget a live save may ask for. */
#define BRK_SAVE_MAX_DOWNTIME_MS 600000u

/* Close what a save holds. */
void brk_save_close(struct brk_rec *rec)
{
	struct brk_save *s = &rec->save;

	if (s->file_fd >= 0) {
		close(s->file_fd);
		s->file_fd = -1;
	}
}

/* The save file's size now, or -1. */
static int64_t brk_save_file_size(const struct brk_save *s)
{
	struct stat st;

	return fstat(s->file_fd, &st) < 0 ? -1 : (int64_t)st.st_size;
}

/* A save is answered: if bulkheadd is shutting down, the VM goes now. */
static void brk_save_after(struct brk_reg *reg, struct brk_rec *rec)
{
	if (reg->shutting_down && rec->vm && !rec->ending) {
		LOG_INFO("VM %s (id %u): powering off", rec->name, rec->id);
		brk_rec_ask_power_off(rec, ++rec->seq);
	}
}

static void brk_save_answer_ok(struct brk_reg *reg, struct brk_rec *rec)
{
	struct brk_save *s = &rec->save;
	SaveReply rep = SAVE_REPLY__INIT;
	struct brk_info in;

	rec->op = BRK_OP_NONE;
	brk_save_close(rec);
	LOG_INFO("VM %s (id %u) saved: %" PRIu64 " bytes, %u pass(es), %" PRIu64
		 " pages, downtime %u ms%s", rec->name, rec->id, s->bytes,
		 s->passes, s->pages, s->downtime_ms,
		 rec->vm ? "" : "; powered off");
	brk_info_fill(rec, &in, false);
	rep.vm = &in.vm;
	rep.bytes = s->bytes;
	rep.passes = s->passes;
	rep.pages = s->pages;
	rep.downtime_ms = s->downtime_ms;
	rep.elapsed_ms = (uint64_t)(brk_now_ms() - s->started_ms);
	brk_reg_answer(reg, rec->op_client, MSG_CTL_SAVE_REPLY, &rep.base);
	brk_save_after(reg, rec);
}

__attribute__((format(printf, 3, 4)))
static void brk_save_answer_error(struct brk_reg *reg, struct brk_rec *rec,
				  const char *more, ...)
{
	struct brk_save *s = &rec->save;
	char tail[200] = "";
	va_list ap;

	if (more) {
		va_start(ap, more);
		vsnprintf(tail, sizeof(tail), more, ap);
		va_end(ap);
	} else {
		snprintf(tail, sizeof(tail), "; the VM is %s",
			 brk_rec_state(rec));
	}
	rec->op = BRK_OP_NONE;
	brk_save_close(rec);
	LOG_WARN("VM %s (id %u) was not saved: %s%s", rec->name, rec->id,
		 s->error, tail);
	brk_reg_answer_fail(reg, rec->op_client, s->error_errno ? s->error_errno :
			     EIO, "VM '%s' was not saved: %s%s", rec->name,
			     s->error, tail);
	brk_save_after(reg, rec);
}

/* Both the stream and the worker's answer are in: did the save work? The
 * reason goes to s->error. */
static void brk_save_judge(struct brk_rec *rec)
{
	struct brk_save *s = &rec->save;
	struct brk_vm *vm = rec->vm;
	int64_t size;

	s->error[0] = '\0';
	s->error_errno = EIO;
	if (!s->have_reply) {
		snprintf(s->error, sizeof(s->error), "its processes ended during "
			 "the save (%.300s)", rec->last_exit[0] ? rec->last_exit :
			 vm && vm->have_end ? vm->end_msg : "no answer");
	} else if (s->write_errno > 0 && s->write_errno < 4096) {
		/* The worker could not write the file (a full disk...). */
		s->error_errno = s->write_errno;
		snprintf(s->error, sizeof(s->error), "cannot write the file: %s",
			 strerror(s->write_errno));
	} else if (s->status < 0) {
		s->error_errno = -s->status;
		snprintf(s->error, sizeof(s->error), "%s (%s)",
			 s->message[0] ? s->message : "the worker failed",
			 strerror(-s->status));
	} else if ((size = brk_save_file_size(s)) != (int64_t)s->bytes) {
		snprintf(s->error, sizeof(s->error), "the worker reports %" PRIu64
			 " bytes written but the file holds %" PRId64, s->bytes,
			 size);
	} else if (fsync(s->file_fd) < 0 && errno != EINVAL) {
		s->error_errno = errno;
		snprintf(s->error, sizeof(s->error), "cannot sync the file: %s",
			 strerror(errno));
	}
}

void brk_save_progress(struct brk_reg *reg, struct brk_rec *rec)
{
	struct brk_save *s = &rec->save;
	struct brk_vm *vm = rec->vm;
	bool alive = vm && !rec->ending && vm->chan.fd >= 0 && !vm->have_end;

	if (rec->op != BRK_OP_SAVE)
		return;
	switch (s->phase) {
	case BRK_SAVE_WRITING:
		if (!s->have_reply && vm)
			return;
		brk_save_judge(rec);
		if (s->error[0]) {
			/*
			 * The worker saved but the file failed: it left the
			 * VM suspended for us; put it back as it was.
			 */
			if (alive && s->have_reply && s->status == 0 &&
			    (s->flags & BRK_SAVE_STAY_SUSPENDED) &&
			    s->was_running) {
				s->phase = BRK_SAVE_RESUMING;
				rec->op_seq = ++rec->seq;
				rec->op_deadline = brk_now_ms() +
						   BRK_CONTROL_TIMEOUT_MS;
				if (brk_vm_send_control(vm, VM_CONTROL__OP__RESUME,
							rec->op_seq) == 0)
					return;
				brk_save_answer_error(reg, rec, "; the VM could not "
						      "be resumed and is "
						      "SUSPENDED");
				return;
			}
			brk_save_answer_error(reg, rec, NULL);
			return;
		}
		if ((s->flags & BRK_SAVE_KEEP_RUNNING) || !vm) {
			brk_save_answer_ok(reg, rec);
			return;
		}
		/* The stream is safe in the file: now the VM may go. */
		s->phase = BRK_SAVE_POWERING_OFF;
		rec->op_seq = ++rec->seq;
		rec->op_deadline = brk_now_ms() + BRK_POWER_OFF_TIMEOUT_MS;
		rec->op_killed = false;
		brk_rec_ask_power_off(rec, rec->op_seq);
		brk_reg_check_end(reg, rec);
		return;
	case BRK_SAVE_POWERING_OFF:
		if (!vm)
			brk_save_answer_ok(reg, rec);
		return;
	case BRK_SAVE_RESUMING:
		if (!vm)
			brk_save_answer_error(reg, rec, "; then the VM ended (%s)",
					      rec->last_exit);
		return;
	}
}

void brk_save_on_reply(struct brk_vm *vm, const VmSaveReply *rep)
{
	struct brk_rec *rec = vm->hook_ctx;
	struct brk_save *s = &rec->save;

	if (rec->op != BRK_OP_SAVE || s->phase != BRK_SAVE_WRITING ||
	    s->have_reply || rep->seq != rec->op_seq) {
		LOG_DBG("VM %s: save reply %u not awaited", rec->name, rep->seq);
		return;
	}
	s->have_reply = true;
	s->status = rep->status > 0 ? -EIO : rep->status;
	s->write_errno = rep->write_errno;
	snprintf(s->message, sizeof(s->message), "%s",
		 rep->message ? rep->message : "");
	s->bytes = rep->bytes;
	s->passes = rep->passes;
	s->pages = rep->pages;
	s->downtime_ms = rep->downtime_ms;
	brk_save_progress(rec->reg, rec);
}

void brk_save_control_reply(struct brk_reg *reg, struct brk_rec *rec,
			    const VmControlReply *rep)
{
	struct brk_save *s = &rec->save;

	if (s->phase == BRK_SAVE_RESUMING) {
		if (rep->status < 0)
			brk_save_answer_error(reg, rec, "; resuming the VM failed "
					      "too (%s): it is SUSPENDED",
					      rep->message && rep->message[0] ?
					      rep->message :
					      strerror(-rep->status));
		else
			brk_save_answer_error(reg, rec, NULL);
		return;
	}
	/* POWERING_OFF: answered once every process is gone. */
	if (rep->status < 0 && rep->status != -ESHUTDOWN)
		LOG_WARN("VM %s: power off after the save: %s", rec->name,
			 rep->message);
}

int64_t brk_save_timeout(struct brk_reg *reg, struct brk_rec *rec,
			 int64_t now)
{
	struct brk_save *s = &rec->save;

	switch (s->phase) {
	case BRK_SAVE_WRITING: {
		int64_t size = brk_save_file_size(s);

		if (size > s->seen_size) {
			/* Still writing: a big VM, a slow disk. */
			s->seen_size = size;
			rec->op_deadline = now + BRK_SAVE_IDLE_TIMEOUT_MS;
			return rec->op_deadline;
		}
		s->error_errno = ETIMEDOUT;
		snprintf(s->error, sizeof(s->error), "its worker wrote nothing "
			 "for %d s", BRK_SAVE_IDLE_TIMEOUT_MS / 1000);
		brk_save_answer_error(reg, rec, "; check its state with 'bulkhead "
				      "status %s'", rec->name);
		return -1;
	}
	case BRK_SAVE_POWERING_OFF:
		if (rec->vm && !rec->op_killed) {
			LOG_WARN("VM %s (id %u) did not power off within %d s "
				 "after its save: killing it", rec->name,
				 rec->id, BRK_POWER_OFF_TIMEOUT_MS / 1000);
			brk_vm_kill_all(rec->vm);
			rec->op_killed = true;
			rec->op_deadline = now + BRK_END_GRACE_MS;
			return rec->op_deadline;
		}
		s->error_errno = ETIMEDOUT;
		snprintf(s->error, sizeof(s->error), "the file is complete, but "
			 "the VM's processes would not end");
		brk_save_answer_error(reg, rec, NULL);
		return -1;
	case BRK_SAVE_RESUMING:
		brk_save_answer_error(reg, rec, "; the worker did not answer the "
				      "resume within %d s",
				      BRK_CONTROL_TIMEOUT_MS / 1000);
		return -1;
	}
	return -1;
}

/* Whether the SaveVm may go ahead: one fd, and a running (or, not live,
 * a paused) VM. 0, or -EINVAL after answering the client. */
static int brk_save_check(struct brk_reg *reg, const struct brk_caller *c,
			  struct brk_rec *rec, const SaveVm *sv,
			  const struct ipc_msg *m)
{
	struct brk_vm *vm = rec->vm;

	if (m->nfds != 1) {
		brk_reg_fail(reg, c, EINVAL, "save needs 1 fd (the file) and "
			     "got %u", m->nfds);
		return -EINVAL;
	}
	if (!brk_rec_up(rec) || (strcmp(vm->state, "RUNNING") != 0 &&
				 strcmp(vm->state, "SUSPENDED") != 0)) {
		brk_reg_fail(reg, c, EINVAL, "cannot save VM '%s': it is not "
				   "running (state %s)%s", rec->name,
				   brk_rec_state(rec), vm ? "" :
				   "; only a running or paused VM has a state "
				   "to save");
		return -EINVAL;
	}
	if (sv->live && strcmp(vm->state, "RUNNING") != 0) {
		brk_reg_fail(reg, c, EINVAL, "cannot save VM '%s' live: it is "
				   "%s; resume it first, or save it without "
				   "--live", rec->name, vm->state);
		return -EINVAL;
	}
	if (sv->max_downtime_ms > BRK_SAVE_MAX_DOWNTIME_MS) {
		brk_reg_fail(reg, c, EINVAL, "--max-downtime must be at most "
				   "%u ms", BRK_SAVE_MAX_DOWNTIME_MS);
		return -EINVAL;
	}
	return 0;
}

/* The client's save file: writable, a regular file, and emptied. 0, or
 * -errno after saying why in why. */
static int brk_save_file_ready(int fd, char *why, size_t whylen)
{
	struct stat st;
	int r;

	r = brk_check_fd(fd, true, "save file", why, whylen);
	if (r == 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		snprintf(why, whylen, "the save file is not a regular file");
		r = -EINVAL;
	}
	/* The client opened it without O_TRUNC, so that a refused save (no
	 * such VM, busy, ...) leaves an existing file alone: empty it now. */
	if (r == 0 && (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0)) {
		r = -errno;
		snprintf(why, whylen, "cannot empty the save file: %s",
			 strerror(-r));
	}
	return r;
}

void brk_reg_save(struct brk_reg *reg, const struct brk_caller *c,
		  struct brk_rec *rec, const SaveVm *sv, struct ipc_msg *m)
{
	struct brk_vm *vm = rec->vm;
	struct brk_save *s = &rec->save;
	int fd = -1, r;
	unsigned flags;
	char why[256];

	if (brk_save_check(reg, c, rec, sv, m) < 0)
		return;
	fd = ipc_msg_take_fd(m, 0);
	r = brk_save_file_ready(fd, why, sizeof(why));
	if (r < 0) {
		brk_reg_fail(reg, c, -r, "cannot save VM '%s': %s", rec->name,
				   why);
		goto out;
	}
	memset(s, 0, sizeof(*s));
	s->file_fd = -1;
	/*
	 * Without --keep-running the worker leaves the VM suspended after the
	 * save; it is powered off only once the file is written and synced,
	 * so a full disk never loses the VM.
	 */
	flags = (sv->keep_running ? BRK_SAVE_KEEP_RUNNING :
		 BRK_SAVE_STAY_SUSPENDED) | (sv->live ? BRK_SAVE_LIVE : 0);
	rec->op_seq = ++rec->seq;
	r = brk_vm_send_save(vm, rec->op_seq, flags, sv->max_downtime_ms, fd);
	if (r < 0) {
		brk_reg_fail(reg, c, EIO, "cannot reach the worker of VM '%s': "
				   "%s", rec->name, strerror(-r));
		goto out;
	}
	s->file_fd = fd;
	fd = -1;
	s->phase = BRK_SAVE_WRITING;
	s->flags = flags;
	s->was_running = strcmp(vm->state, "RUNNING") == 0;
	s->started_ms = brk_now_ms();
	rec->op = BRK_OP_SAVE;
	rec->op_client = c->id;
	rec->op_deadline = s->started_ms + BRK_SAVE_IDLE_TIMEOUT_MS;
	brk_reg_set_mode(reg, c->id, BRK_MODE_WAITING);
	LOG_INFO("VM %s (id %u): saving%s%s", rec->name, rec->id,
		 sv->live ? " live" : "", sv->keep_running ? ", keeps running" :
		 ", then powering off");
out:
	if (fd >= 0)
		close(fd);
}

/* An existing VM to restore into: as it is configured, only the saved
 * state's fd, and it must not run. 0, or -errno after answering. */
static int brk_restore_check_existing(struct brk_reg *reg,
				      const struct brk_caller *c,
				      const struct brk_rec *rec,
				      const struct ipc_msg *m)
{
	if (m->nfds != 1) {
		brk_reg_fail(reg, c, EINVAL, "a restore into the existing VM "
				   "'%s' takes only the saved state's fd",
				   rec->name);
		return -EINVAL;
	}
	if (rec->op != BRK_OP_NONE) {
		brk_reg_fail(reg, c, EBUSY, "VM '%s' is busy: a %s is in "
				   "progress; try again when it is done",
				   rec->name, brk_op_name(rec->op));
		return -EBUSY;
	}
	if (rec->vm) {
		brk_reg_fail(reg, c, EBUSY, "VM '%s' is running (state %s): "
				   "power it off first, or restore under "
				   "another name", rec->name,
				   brk_rec_state(rec));
		return -EBUSY;
	}
	return 0;
}

/* The record a RestoreVm goes into: an existing VM (the caller's, or
 * root's UID/NAME), else a new one built from its CreateVm (*fresh, not
 * yet in the registry). 0, or -errno after answering the client. */
static int brk_restore_target(struct brk_reg *reg, const struct brk_caller *c,
			      const RestoreVm *rv, struct ipc_msg *m,
			      struct brk_rec **out, bool *fresh)
{
	const CreateVm *cv = rv->vm;
	struct brk_rec *rec = NULL;
	char err[512];
	int r, e;

	if (rv->existing && strchr(cv->name, '/')) {
		/* UID/NAME: root restoring somebody's VM. */
		r = brk_reg_lookup(reg, c, cv->name, &rec, err, sizeof(err));
		if (r < 0) {
			brk_reg_fail(reg, c, -r, "%s", err);
			return r;
		}
	} else if (rv->existing) {
		/* Names are per owner, as for create: one of the caller's own,
		 * else a new VM of the caller's. */
		rec = brk_reg_find(reg, c->uid, cv->name);
	}
	if (rec) {
		r = brk_restore_check_existing(reg, c, rec, m);
		if (r < 0)
			return r;
	} else {
		e = brk_rec_build(reg, c, cv, rv->has_image, m, 1, "restore",
				  &rec, err, sizeof(err));
		if (e) {
			brk_reg_fail(reg, c, e, "%s", err);
			return -e;
		}
		*fresh = true;
	}
	*out = rec;
	return 0;
}

void brk_reg_restore(struct brk_reg *reg, const struct brk_caller *c,
		     const RestoreVm *rv, struct ipc_msg *m)
{
	struct brk_rec *rec = NULL;
	bool fresh = false;
	int state_fd = -1, r;
	char err[512], why[256];

	if (!rv->vm) {
		brk_reg_fail(reg, c, EINVAL, "restore names no VM");
		return;
	}
	if (m->nfds < 1) {
		brk_reg_fail(reg, c, EINVAL, "restore needs the saved state's "
				   "fd");
		return;
	}
	if (brk_restore_target(reg, c, rv, m, &rec, &fresh) < 0)
		return;
	state_fd = ipc_msg_take_fd(m, m->nfds - 1);
	r = brk_check_fd(state_fd, false, "saved state", why, sizeof(why));
	if (r < 0) {
		brk_reg_fail(reg, c, -r, "cannot restore VM '%s': %s",
				   rec->name, why);
		goto out;
	}
	if (fresh) {
		brk_rec_insert(reg, rec, c, "created to restore it");
		fresh = false;
		rec->restore_fresh = true;
	} else {
		rec->restore_fresh = false;
	}
	r = brk_rec_launch(reg, rec, state_fd, err, sizeof(err));
	if (r < 0) {
		brk_reg_fail(reg, c, -r, "cannot restore VM '%s': %s",
				   rec->name, err);
		if (rec->restore_fresh)
			brk_reg_remove(reg, rec);
		goto out;
	}
	LOG_INFO("VM %s (id %u, uid %u) restoring: worker pid %d", rec->name,
		 rec->id, rec->owner, rec->vm->worker.pid);
	rec->op = BRK_OP_RESTORE;
	rec->op_client = c->id;
	rec->op_deadline = brk_now_ms() + BRK_RESTORE_TIMEOUT_MS;
	rec->op_killed = false;
	brk_reg_set_mode(reg, c->id, BRK_MODE_WAITING);
	brk_reg_check_end(reg, rec);
out:
	if (state_fd >= 0)
		close(state_fd);
	if (fresh)
		brk_rec_free(rec);
}
