/* SPDX-License-Identifier: MIT */
/*
 * The registry's records: a VM is recorded by `create` (state CREATED, no
 * processes) and launched by `start` (broker/ops.c); `poweroff` leaves it
 * OFF in the registry; `destroy` powers it off if needed and forgets it.
 * Here: building a record from a CreateVm and the client's fds, finding
 * one by name (with the owner rules), removing one, describing one
 * (VmInfo), and the answers through the server's outbox.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker/reg_impl.h"
#include "device-procs/manifest.h"
#include "ipc/log.h"
#include "proto/msgtypes.h"

const char *brk_op_name(enum brk_op op)
{
	switch (op) {
	case BRK_OP_START: return "start";
	case BRK_OP_PAUSE: return "pause";
	case BRK_OP_RESUME: return "resume";
	case BRK_OP_RESET: return "reset";
	case BRK_OP_POWER_OFF: return "poweroff";
	case BRK_OP_DESTROY: return "destroy";
	case BRK_OP_SAVE: return "save";
	case BRK_OP_RESTORE: return "restore";
	case BRK_OP_NONE: break;
	}
	return "none";
}

const char *brk_rec_state(const struct brk_rec *rec)
{
	if (!rec->vm)
		return rec->state;
	if (rec->ending)
		return "POWERING_OFF";
	return rec->vm->state;
}

bool brk_rec_up(const struct brk_rec *rec)
{
	return rec->vm && !rec->ending && rec->vm->ready && rec->vm->chan.fd >= 0;
}

/* ---- answers, through the server's outbox ----------------------------------- */

void brk_reg_send(struct brk_reg *reg, uint64_t client, uint16_t type,
		  const ProtobufCMessage *pb)
{
	reg->out->send(reg->out->ctx, client, type, pb);
}

void brk_reg_answer(struct brk_reg *reg, uint64_t client, uint16_t type,
		    const ProtobufCMessage *pb)
{
	reg->out->answer(reg->out->ctx, client, type, pb);
}

static void brk_reg_verror(struct brk_reg *reg, uint64_t client, bool answer,
			   int errno_code, const char *fmt, va_list ap)
{
	ErrorReply er = ERROR_REPLY__INIT;
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	er.errno_code = errno_code;
	er.message = msg;
	if (answer)
		brk_reg_answer(reg, client, MSG_ERROR_REPLY, &er.base);
	else
		brk_reg_send(reg, client, MSG_ERROR_REPLY, &er.base);
}

void brk_reg_fail(struct brk_reg *reg, const struct brk_caller *c,
		  int errno_code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	brk_reg_verror(reg, c->id, false, errno_code, fmt, ap);
	va_end(ap);
}

void brk_reg_answer_fail(struct brk_reg *reg, uint64_t client,
			 int errno_code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	brk_reg_verror(reg, client, true, errno_code, fmt, ap);
	va_end(ap);
}

void brk_reg_set_mode(struct brk_reg *reg, uint64_t client,
		      enum brk_client_mode mode)
{
	reg->out->set_mode(reg->out->ctx, client, mode);
}

int brk_reg_watch(struct brk_reg *reg, int fd, uint32_t events,
		  struct brk_watch *w)
{
	return reg->out->watch(reg->out->ctx, fd, events, w);
}

void brk_reg_unwatch(struct brk_reg *reg, int fd)
{
	if (fd >= 0)
		reg->out->unwatch(reg->out->ctx, fd);
}

/* ---- lookup and authorization ------------------------------------------ */

struct brk_rec *brk_reg_find(struct brk_reg *reg, uint32_t owner,
			     const char *name)
{
	for (struct brk_rec *r = reg->vms; r; r = r->next)
		if (r->owner == owner && strcmp(r->name, name) == 0)
			return r;
	return NULL;
}

struct brk_rec *brk_reg_by_id(struct brk_reg *reg, uint32_t id)
{
	for (struct brk_rec *r = reg->vms; r; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

/* A UID/NAME (slash at its '/'): another user's VM, for root or that
 * user. 0, or -errno after saying why. */
static int brk_reg_lookup_qualified(struct brk_reg *reg,
				    const struct brk_caller *c,
				    const char *name, const char *slash,
				    struct brk_rec **out, char *err,
				    size_t errlen)
{
	struct brk_rec *found;
	unsigned long uid;
	char *end;

	errno = 0;
	uid = strtoul(name, &end, 10);
	if (end != slash || end == name || errno || uid > UINT32_MAX ||
	    !brk_name_valid(slash + 1)) {
		snprintf(err, errlen, "'%s' is neither a VM name nor UID/NAME",
			 name);
		return -EINVAL;
	}
	if (c->uid != 0 && uid != c->uid) {
		snprintf(err, errlen, "permission denied: VMs of uid %lu belong "
			 "to that user; only its owner and root may see or "
			 "control them", uid);
		return -EPERM;
	}
	found = brk_reg_find(reg, (uint32_t)uid, slash + 1);
	if (!found) {
		snprintf(err, errlen, "uid %lu has no VM named '%s'; 'bulkhead "
			 "list' shows the VMs", uid, slash + 1);
		return -ENOENT;
	}
	*out = found;
	return 0;
}

int brk_reg_lookup(struct brk_reg *reg, const struct brk_caller *c,
		   const char *name, struct brk_rec **out, char *err,
		   size_t errlen)
{
	const char *slash = strchr(name, '/');
	struct brk_rec *found = NULL;
	unsigned others = 0;
	uint32_t other_uid = 0;

	if (slash)
		return brk_reg_lookup_qualified(reg, c, name, slash, out, err,
						errlen);
	if (!brk_name_valid(name)) {
		snprintf(err, errlen, "'%s' is not a VM name (1 to 32 of "
			 "A-Z a-z 0-9 _ . -)", name);
		return -EINVAL;
	}
	found = brk_reg_find(reg, c->uid, name);
	if (found) {
		*out = found;
		return 0;
	}
	for (struct brk_rec *r = reg->vms; r; r = r->next) {
		if (strcmp(r->name, name) == 0) {
			others++;
			other_uid = r->owner;
			found = r;
		}
	}
	if (c->uid == 0 && others == 1) {
		*out = found;
		return 0;
	}
	if (c->uid == 0 && others > 1) {
		snprintf(err, errlen, "%u users have a VM named '%s'; name it "
			 "as UID/NAME, e.g. %u/%s", others, name, other_uid,
			 name);
		return -ENOTUNIQ;
	}
	if (others) {
		snprintf(err, errlen, "permission denied: VM '%s' belongs to "
			 "another user; only its owner and root may see or "
			 "control it", name);
		return -EPERM;
	}
	snprintf(err, errlen, "no VM named '%s'; 'bulkhead list' shows yours",
		 name);
	return -ENOENT;
}

/* ---- VmInfo ------------------------------------------------------------- */

static void brk_info_proc(struct brk_info *in, const struct brk_child *c,
			  bool brief)
{
	unsigned i = (unsigned)in->vm.n_procs;
	ProcInfo *p = &in->procs[i];

	proc_info__init(p);
	p->label = (char *)c->label;
	p->pid = c->pid;
	p->running = !c->reaped;
	if (c->reaped && !brief) {
		brk_child_describe(c, in->ended[i], sizeof(in->ended[i]));
		p->ended = in->ended[i];
	}
	in->procp[i] = p;
	in->vm.n_procs = i + 1;
}

void brk_info_fill(const struct brk_rec *rec, struct brk_info *in,
		   bool brief)
{
	VmInfo *v = &in->vm;

	vm_info__init(v);
	v->id = rec->id;
	v->name = (char *)rec->name;
	v->owner = rec->owner;
	snprintf(in->state, sizeof(in->state), "%s", brk_rec_state(rec));
	v->state = in->state;
	v->mem_size = rec->mem_size;
	v->cpus = rec->cpus;
	if (!brief)
		v->cmdline = rec->cmdline;
	v->serial = (SerialMode)rec->serial;
	v->image_label = (char *)rec->image_label;
	v->created_at = rec->created_at;
	for (unsigned i = 0; i < rec->ndevs; i++) {
		device_req__init(&in->dev[i]);
		in->dev[i].kind = (char *)rec->devs[i].k->name;
		in->dev[i].ro = rec->devs[i].ro;
		in->dev[i].label = (char *)rec->dev_label[i];
		in->devp[i] = &in->dev[i];
	}
	v->n_devices = rec->ndevs;
	v->devices = in->devp;
	if (rec->vm) {
		v->uptime_ms = (uint64_t)(brk_now_ms() - rec->started_ms);
		v->procs = in->procp;
		brk_info_proc(in, &rec->vm->worker, brief);
		for (unsigned i = 0; i < rec->vm->ndevs; i++)
			brk_info_proc(in, &rec->vm->devs[i], brief);
	}
	v->error = (char *)rec->error;
	v->last_exit = (char *)rec->last_exit;
	v->exit_status = rec->exit_status;
	v->console_clients = rec->console_clients;
}

void brk_reg_answer_info(struct brk_reg *reg, uint64_t client,
			 const struct brk_rec *rec)
{
	struct brk_info in;
	VmInfoReply rep = VM_INFO_REPLY__INIT;

	brk_info_fill(rec, &in, false);
	rep.vm = &in.vm;
	brk_reg_answer(reg, client, MSG_CTL_VM_INFO, &rep.base);
}

void brk_reg_status(struct brk_reg *reg, const struct brk_caller *c,
		    const struct brk_rec *rec)
{
	struct brk_info in;
	VmInfoReply rep = VM_INFO_REPLY__INIT;

	brk_info_fill(rec, &in, false);
	rep.vm = &in.vm;
	brk_reg_send(reg, c->id, MSG_CTL_VM_INFO, &rep.base);
}

void brk_reg_list(struct brk_reg *reg, const struct brk_caller *c)
{
	ListReply rep = LIST_REPLY__INIT;
	struct brk_info *in = NULL;
	VmInfo **vp = NULL;
	size_t n = 0;

	if (reg->nvms) {
		in = calloc(reg->nvms, sizeof(*in));
		vp = calloc(reg->nvms, sizeof(*vp));
		if (!in || !vp) {
			brk_reg_fail(reg, c, ENOMEM, "bulkheadd is out of "
					   "memory; try again");
			goto out;
		}
	}
	for (struct brk_rec *r = reg->vms; r; r = r->next) {
		if (c->uid != 0 && r->owner != c->uid)
			continue;
		brk_info_fill(r, &in[n], true);
		vp[n] = &in[n].vm;
		n++;
	}
	rep.vms = vp;
	rep.n_vms = n;
	/* One frame holds the list; the newest VMs go if it does not fit. */
	while (rep.n_vms && protobuf_c_message_get_packed_size(&rep.base) >
	       IPC_MAX_PAYLOAD) {
		rep.n_vms--;
		rep.truncated = true;
	}
	brk_reg_send(reg, c->id, MSG_CTL_LIST_REPLY, &rep.base);
out:
	free(in);
	free(vp);
}

/* ---- create ------------------------------------------------------------- */

int brk_check_fd(int fd, bool writer, const char *what, char *err,
		 size_t errlen)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "the %s fd is not usable: %s", what,
			 strerror(errno));
		return -EBADF;
	}
	if (fl & O_PATH) {
		snprintf(err, errlen, "the %s fd is an O_PATH fd; open the "
			 "file for %s", what, writer ? "writing" : "reading");
		return -EBADF;
	}
	if (!writer && !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "the %s is not a regular file", what);
		return -EINVAL;
	}
	if (writer && S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "the %s is a directory", what);
		return -EINVAL;
	}
	if (writer ? (fl & O_ACCMODE) == O_RDONLY
		   : (fl & O_ACCMODE) == O_WRONLY) {
		snprintf(err, errlen, "the %s fd is not open for %s", what,
			 writer ? "writing" : "reading");
		return -EBADF;
	}
	return 0;
}

/* A disk: a regular file or block device, open for reading, and for
 * writing unless read-only. */
static int brk_check_disk_fd(int fd, bool ro, char *err, size_t errlen)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fstat(fd, &st) < 0 || (fl & O_PATH)) {
		snprintf(err, errlen, "the disk fd is not usable");
		return -EBADF;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		snprintf(err, errlen, "the disk is neither a regular file nor a "
			 "block device");
		return -EINVAL;
	}
	if ((fl & O_ACCMODE) == O_WRONLY ||
	    (!ro && (fl & O_ACCMODE) != O_RDWR)) {
		snprintf(err, errlen, "the disk fd is not open for %s (open it "
			 "read-write, or add ',ro')", ro ? "reading" :
			 "reading and writing");
		return -EBADF;
	}
	return 0;
}

void brk_rec_free(struct brk_rec *rec)
{
	brk_save_close(rec);
	if (rec->image_fd >= 0)
		close(rec->image_fd);
	if (rec->initrd_fd >= 0)
		close(rec->initrd_fd);
	if (rec->serial_fd >= 0)
		close(rec->serial_fd);
	for (unsigned i = 0; i < rec->ndevs; i++)
		if (rec->devs[i].fd >= 0)
			close(rec->devs[i].fd);
	if (rec->console_fd >= 0)
		close(rec->console_fd);
	brk_vm_free(rec->vm);
	free(rec->cmdline);
	free(rec->sb);
	free(rec);
}

/*
 * The optional devices a CreateVm asks for: kinds of the manifest that a
 * VM may be given, each within its limits. The number of backend files
 * (fds) they bring, or -errno after saying why.
 */
static int brk_devs_check(const CreateVm *cv, char *err, size_t errlen)
{
	struct dev_tally t;
	int nfds = 0;

	if (cv->n_devices > BRK_MAX_REQ_DEVICES) {
		snprintf(err, errlen, "%zu optional devices, at most %u",
			 cv->n_devices, BRK_MAX_REQ_DEVICES);
		return -E2BIG;
	}
	dev_tally_init(&t);
	for (size_t i = 0; i < cv->n_devices; i++) {
		const DeviceReq *d = cv->devices[i];
		const struct dev_manifest *k = dev_manifest_find(d->kind);

		if (!k || !(k->flags & DEV_MF_OPTIONAL)) {
			snprintf(err, errlen, "device %zu is of no kind a VM may "
				 "be given (virtio-blk, virtio-rng, null)", i);
			return -EINVAL;
		}
		if (dev_tally_add(&t, k, err, errlen) < 0)
			return -E2BIG;
		if (k->backend == DEV_BACKEND_DISK)
			nfds++;
		else if (d->ro)
			return snprintf(err, errlen, "%s has no backend file to "
					"make read-only", k->name), -EINVAL;
	}
	return nfds;
}

/* Take the devices' backend fds (after the fixed ones, k on) and check
 * them. 0, or -errno after saying why in err. */
static int brk_devs_take(struct brk_rec *rec, const CreateVm *cv,
			 struct ipc_msg *m, unsigned k, char *err, size_t errlen)
{
	int r = 0;

	for (size_t i = 0; i < cv->n_devices; i++) {
		const DeviceReq *d = cv->devices[i];
		struct brk_dev_req *q = &rec->devs[rec->ndevs++];

		*q = (struct brk_dev_req){ .k = dev_manifest_find(d->kind),
					   .fd = -1, .ro = d->ro };
		if (q->k->backend == DEV_BACKEND_DISK) {
			q->fd = ipc_msg_take_fd(m, k++);
			snprintf(rec->dev_label[i], sizeof(rec->dev_label[i]),
				 "%s", d->label[0] ? d->label : "(disk)");
			if (!r)
				r = brk_check_disk_fd(q->fd, q->ro, err, errlen);
		}
	}
	return r;
}

/* The CreateVm's own fields: a valid name not yet the caller's, memory,
 * CPUs, command line and serial mode within bounds. 0, or a positive errno
 * after saying why. */
static int brk_rec_check_args(struct brk_reg *reg, const struct brk_caller *c,
			      const CreateVm *cv, uint64_t mem, unsigned cpus,
			      char *err, size_t errlen)
{
	struct brk_rec *rec;

	if (!brk_name_valid(cv->name)) {
		snprintf(err, errlen, "'%s' is not a valid VM name: use 1 to 32 "
			 "of A-Z a-z 0-9 _ . -", cv->name);
		return EINVAL;
	}
	rec = brk_reg_find(reg, c->uid, cv->name);
	if (rec) {
		snprintf(err, errlen, "you already have a VM named '%s' (id %u, "
			 "%s); pick another name or destroy it first", rec->name,
			 rec->id, brk_rec_state(rec));
		return EEXIST;
	}
	if (mem < BRK_MIN_MEM || mem > BRK_MAX_MEM || mem % 4096) {
		snprintf(err, errlen, "--mem must be a multiple of 4K from 2M "
			 "to 3G");
		return EINVAL;
	}
	if (cpus > BRK_MAX_CPUS) {
		snprintf(err, errlen, "--cpus must be 1 to %u", BRK_MAX_CPUS);
		return EINVAL;
	}
	if (strlen(cv->cmdline) > BRK_CMDLINE_MAX) {
		snprintf(err, errlen, "the command line is longer than %u bytes",
			 BRK_CMDLINE_MAX);
		return EINVAL;
	}
	if (cv->serial != SERIAL_MODE__SERIAL_CONSOLE &&
	    cv->serial != SERIAL_MODE__SERIAL_NULL &&
	    cv->serial != SERIAL_MODE__SERIAL_FILE) {
		snprintf(err, errlen, "unknown serial mode %d", (int)cv->serial);
		return EINVAL;
	}
	return 0;
}

/* The devices asked for, and as many fds as the CreateVm says it brings
 * (image, initrd, serial file, disks, then extra_fds). 0, or a positive
 * errno after saying why. */
static int brk_rec_check_fds(const CreateVm *cv, bool has_image,
			     const struct ipc_msg *m, unsigned extra_fds,
			     const char *verb, char *err, size_t errlen)
{
	unsigned want_fds = has_image ? 1 : 0;
	int ndisks;

	ndisks = brk_devs_check(cv, err, errlen);
	if (ndisks < 0)
		return -ndisks;
	if (cv->has_initrd)
		want_fds++;
	if (cv->serial == SERIAL_MODE__SERIAL_FILE)
		want_fds++;
	want_fds += (unsigned)ndisks;
	if (m->nfds != want_fds + extra_fds) {
		snprintf(err, errlen, "%s needs %u fds (%s%s%s, %d disks%s) and "
			 "got %u", verb, want_fds + extra_fds,
			 has_image ? "image" : "",
			 cv->has_initrd ? ", initrd" : "",
			 cv->serial == SERIAL_MODE__SERIAL_FILE ?
			 ", serial file" : "", ndisks,
			 extra_fds ? ", saved state" : "", m->nfds);
		return EINVAL;
	}
	return 0;
}

/* Take the client's fds into rec, in the order they come, and check them.
 * 0, or -errno after saying why in why. */
static int brk_rec_take_fds(struct brk_rec *rec, const CreateVm *cv,
			    bool has_image, struct ipc_msg *m, char *why,
			    size_t whylen)
{
	unsigned k = 0;
	int r;

	if (has_image)
		rec->image_fd = ipc_msg_take_fd(m, k++);
	if (cv->has_initrd)
		rec->initrd_fd = ipc_msg_take_fd(m, k++);
	if (cv->serial == SERIAL_MODE__SERIAL_FILE)
		rec->serial_fd = ipc_msg_take_fd(m, k++);
	r = brk_devs_take(rec, cv, m, k, why, whylen);
	if (!r && rec->image_fd >= 0)
		r = brk_check_fd(rec->image_fd, false, "image", why, whylen);
	if (!r && rec->initrd_fd >= 0)
		r = brk_check_fd(rec->initrd_fd, false, "initrd", why, whylen);
	if (!r && rec->serial_fd >= 0)
		r = brk_check_fd(rec->serial_fd, true, "serial file", why,
				 whylen);
	return r;
}

int brk_rec_build(struct brk_reg *reg, const struct brk_caller *c,
		  const CreateVm *cv, bool has_image, struct ipc_msg *m,
		  unsigned extra_fds, const char *verb, struct brk_rec **out,
		  char *err, size_t errlen)
{
	struct brk_rec *rec = NULL;
	char why[384];
	uint64_t mem = cv->mem_size ? cv->mem_size : BRK_DEFAULT_MEM;
	unsigned cpus = cv->cpus ? cv->cpus : 1;
	int r;

	r = brk_rec_check_args(reg, c, cv, mem, cpus, err, errlen);
	if (r)
		return r;
	r = brk_rec_check_fds(cv, has_image, m, extra_fds, verb, err, errlen);
	if (r)
		return r;
	r = brk_reg_check_quota(reg, c->uid, mem, cpus, err, errlen);
	if (r < 0)
		return -r;
	rec = calloc(1, sizeof(*rec));
	if (!rec)
		goto out_nomem;
	rec->reg = reg;
	rec->image_fd = rec->initrd_fd = rec->serial_fd = rec->console_fd = -1;
	rec->save.file_fd = -1;
	rec->kill_at = -1;
	rec->exit_status = -1;
	rec->cmdline = strdup(cv->cmdline);
	rec->sb = malloc(BRK_SCROLLBACK);
	if (!rec->cmdline || !rec->sb)
		goto out_nomem;
	r = brk_rec_take_fds(rec, cv, has_image, m, why, sizeof(why));
	if (r < 0) {
		snprintf(err, errlen, "cannot %s VM '%s': %s", verb, cv->name,
			 why);
		brk_rec_free(rec);
		return -r;
	}
	snprintf(rec->name, sizeof(rec->name), "%s", cv->name);
	snprintf(rec->image_label, sizeof(rec->image_label), "%s",
		 cv->image_label);
	rec->owner = c->uid;
	rec->mem_size = mem;
	rec->cpus = cpus;
	rec->serial = cv->serial;
	rec->created_at = (int64_t)time(NULL);
	snprintf(rec->state, sizeof(rec->state), "CREATED");
	*out = rec;
	return 0;

out_nomem:
	snprintf(err, errlen, "cannot %s VM '%s': bulkheadd is out of memory; "
		 "try again", verb, cv->name);
	if (rec)
		brk_rec_free(rec);
	return ENOMEM;
}

void brk_rec_insert(struct brk_reg *reg, struct brk_rec *rec,
		    const struct brk_caller *c, const char *how)
{
	struct brk_rec **tail;

	rec->id = reg->next_vm_id++;
	for (tail = &reg->vms; *tail; tail = &(*tail)->next)
		;
	*tail = rec;
	reg->nvms++;
	LOG_INFO("VM %s (id %u) %s by uid %u (pid %d)", rec->name, rec->id, how,
		 c->uid, c->pid);
}

void brk_reg_create(struct brk_reg *reg, const struct brk_caller *c, const CreateVm *cv,
		    struct ipc_msg *m)
{
	struct brk_rec *rec = NULL;
	char err[512];
	int e;

	e = brk_rec_build(reg, c, cv, true, m, 0, "create", &rec, err,
			  sizeof(err));
	if (e) {
		brk_reg_fail(reg, c, e, "%s", err);
		return;
	}
	brk_rec_insert(reg, rec, c, "created");
	brk_reg_status(reg, c, rec);
}

/* ---- removal ----------------------------------------------------------- */

void brk_reg_remove(struct brk_reg *reg, struct brk_rec *rec)
{
	struct brk_rec **pp;

	brk_console_end(reg, rec, "the VM was destroyed");
	for (pp = &reg->vms; *pp; pp = &(*pp)->next) {
		if (*pp == rec) {
			*pp = rec->next;
			break;
		}
	}
	reg->nvms--;
	rec->dead = true;
	rec->next = reg->graves;
	reg->graves = rec;
	LOG_INFO("VM %s (id %u, uid %u) destroyed", rec->name, rec->id,
		 rec->owner);
}

void brk_reg_free_graves(struct brk_reg *reg)
{
	while (reg->graves) {
		struct brk_rec *r = reg->graves;

		reg->graves = r->next;
		brk_rec_free(r);
	}
}

void brk_reg_free_all(struct brk_reg *reg)
{
	while (reg->vms) {
		struct brk_rec *r = reg->vms;

		reg->vms = r->next;
		brk_rec_free(r);
	}
	reg->nvms = 0;
	brk_reg_free_graves(reg);
}
