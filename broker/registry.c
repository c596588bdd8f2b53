/* SPDX-License-Identifier: MIT */
/*
 * bulkheadd's VM registry: every VM with its owner, configuration, the fds
 * its owner's CLI passed, its processes (supervised through pidfds), its
 * state, the last error and its console scrollback.
 *
 * A VM is recorded by `create` (state CREATED, no processes) and launched
 * by `start`; `poweroff` leaves it OFF in the registry; `destroy` powers it
 * off if needed and forgets it. Lifecycle operations go to the worker as
 * VmControl; one operation per VM is in progress at a time.
 *
 * The broker moves bytes and fds: it never parses what the guest or an
 * image controls. Console bytes are copied, not read.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker/brk.h"
#include "ipc/log.h"
#include "kdriver/kd.h"
#include "proto/msgtypes.h"

/* How long the start of a VM may take, up to WorkerReady. */
#define BRK_START_TIMEOUT_MS 30000
/* How long the worker has to answer pause, resume, reset or stats. */
#define BRK_CONTROL_TIMEOUT_MS 10000
#define BRK_STATS_TIMEOUT_MS 5000
/* How long a power-off may take before what is left is killed. */
#define BRK_POWER_OFF_TIMEOUT_MS 10000
/* How long the processes get to exit once the VM has ended. */
#define BRK_END_GRACE_MS 3000
/* Console: bytes read from the UART per event, and per frame. */
#define BRK_CONSOLE_READS 16
#define BRK_CONSOLE_CHUNK 4096u

static const char *brk_op_name(enum brk_op op)
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

static const char *brk_rec_state(const struct brk_rec *rec)
{
	if (!rec->vm)
		return rec->state;
	if (rec->ending)
		return "POWERING_OFF";
	return rec->vm->state;
}

/* ---- lookup and authorization ------------------------------------------ */

static struct brk_rec *brk_reg_find(struct brkd *d, uint32_t owner,
				    const char *name)
{
	for (struct brk_rec *r = d->vms; r; r = r->next)
		if (r->owner == owner && strcmp(r->name, name) == 0)
			return r;
	return NULL;
}

int brk_reg_lookup(struct brkd *d, const struct brk_client *c,
		   const char *name, struct brk_rec **out, char *err,
		   size_t errlen)
{
	const char *slash = strchr(name, '/');
	struct brk_rec *found = NULL;
	unsigned others = 0;
	uint32_t other_uid = 0;

	if (slash) {
		/* UID/NAME */
		unsigned long uid;
		char *end;

		errno = 0;
		uid = strtoul(name, &end, 10);
		if (end != slash || end == name || errno || uid > UINT32_MAX ||
		    !brk_name_valid(slash + 1)) {
			snprintf(err, errlen, "'%s' is neither a VM name nor "
				 "UID/NAME", name);
			return -EINVAL;
		}
		if (c->uid != 0 && uid != c->uid) {
			snprintf(err, errlen, "permission denied: VMs of uid %lu "
				 "belong to that user; only its owner and root "
				 "may see or control them", uid);
			return -EPERM;
		}
		found = brk_reg_find(d, (uint32_t)uid, slash + 1);
		if (!found) {
			snprintf(err, errlen, "uid %lu has no VM named '%s'; "
				 "'bulkhead list' shows the VMs", uid, slash + 1);
			return -ENOENT;
		}
		*out = found;
		return 0;
	}
	if (!brk_name_valid(name)) {
		snprintf(err, errlen, "'%s' is not a VM name (1 to 32 of "
			 "A-Z a-z 0-9 _ . -)", name);
		return -EINVAL;
	}
	found = brk_reg_find(d, c->uid, name);
	if (found) {
		*out = found;
		return 0;
	}
	for (struct brk_rec *r = d->vms; r; r = r->next) {
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

/* Storage for one VmInfo and what it points to. */
struct brk_info {
	VmInfo vm;
	ProcInfo procs[1 + BRK_MAX_DEVICES];
	ProcInfo *procp[1 + BRK_MAX_DEVICES];
	char ended[1 + BRK_MAX_DEVICES][96];
	char state[24];
};

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

/* brief: for list (no command line, no 'ended' texts). */
static void brk_info_fill(const struct brk_rec *rec, struct brk_info *in,
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
	v->null_dev = rec->null_dev;
	v->image_label = (char *)rec->image_label;
	v->created_at = rec->created_at;
	v->disk = (char *)rec->disk_label;
	v->disk_ro = rec->disk_ro;
	v->rng = rec->rng;
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

static void brk_reg_answer_info(struct brkd *d, uint64_t client,
				const struct brk_rec *rec)
{
	struct brk_info in;
	VmInfoReply rep = VM_INFO_REPLY__INIT;

	brk_info_fill(rec, &in, false);
	rep.vm = &in.vm;
	brk_srv_answer(d, client, MSG_CTL_VM_INFO, &rep.base);
}

void brk_reg_status(struct brkd *d, struct brk_client *c, struct brk_rec *rec)
{
	struct brk_info in;
	VmInfoReply rep = VM_INFO_REPLY__INIT;

	brk_info_fill(rec, &in, false);
	rep.vm = &in.vm;
	brk_srv_send(d, c, MSG_CTL_VM_INFO, &rep.base);
}

void brk_reg_list(struct brkd *d, struct brk_client *c)
{
	ListReply rep = LIST_REPLY__INIT;
	struct brk_info *in = NULL;
	VmInfo **vp = NULL;
	size_t n = 0;

	if (d->nvms) {
		in = calloc(d->nvms, sizeof(*in));
		vp = calloc(d->nvms, sizeof(*vp));
		if (!in || !vp) {
			brk_srv_send_error(d, c, ENOMEM, "bulkheadd is out of "
					   "memory; try again");
			goto out;
		}
	}
	for (struct brk_rec *r = d->vms; r; r = r->next) {
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
	brk_srv_send(d, c, MSG_CTL_LIST_REPLY, &rep.base);
out:
	free(in);
	free(vp);
}

/* ---- create ------------------------------------------------------------- */

/* A human size: 64M, 1.5G. */
static void brk_fmt_size(uint64_t v, char *buf, size_t len)
{
	if (v >= (1ull << 30) && v % (1ull << 30) == 0)
		snprintf(buf, len, "%" PRIu64 "G", v >> 30);
	else if (v >= (1ull << 20) && v % (1ull << 20) == 0)
		snprintf(buf, len, "%" PRIu64 "M", v >> 20);
	else if (v % 1024 == 0)
		snprintf(buf, len, "%" PRIu64 "K", v >> 10);
	else
		snprintf(buf, len, "%" PRIu64, v);
}

/* Is fd something we may hand a sandboxed reader (the image) or writer
 * (the serial file)? Only fstat and the open flags: no parsing. */
static int brk_check_fd(int fd, bool writer, const char *what, char *err,
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

static int brk_reg_check_quota(struct brkd *d, uint32_t uid, uint64_t mem,
			       unsigned cpus, char *err, size_t errlen)
{
	struct brk_quota q = brk_config_quota(&d->cfg, uid);
	unsigned nvms = 0, ncpus = 0;
	uint64_t nmem = 0;
	char a[24], b[24], c[24];
	const char *cfgp = d->config_path ? d->config_path : BRK_DEFAULT_CONFIG;

	if (d->nvms >= d->cfg.max_vms) {
		snprintf(err, errlen, "bulkheadd holds its limit of %u VMs "
			 "(max_vms in %s); destroy one first", d->cfg.max_vms,
			 cfgp);
		return -EAGAIN;
	}
	for (struct brk_rec *r = d->vms; r; r = r->next) {
		if (r->owner != uid)
			continue;
		nvms++;
		nmem += r->mem_size;
		ncpus += r->cpus;
	}
	if (nvms + 1 > q.max_vms) {
		snprintf(err, errlen, "quota exceeded: uid %u may have at most "
			 "%u VMs and has %u; destroy one first, or raise "
			 "max_vms_per_uid (or uid.%u.max_vms) in %s", uid,
			 q.max_vms, nvms, uid, cfgp);
		return -EDQUOT;
	}
	if (nmem + mem > q.max_mem || nmem + mem < nmem) {
		brk_fmt_size(q.max_mem, a, sizeof(a));
		brk_fmt_size(nmem, b, sizeof(b));
		brk_fmt_size(mem, c, sizeof(c));
		snprintf(err, errlen, "quota exceeded: uid %u may use %s of "
			 "guest RAM in all, has %s and asks for %s more; use "
			 "less --mem or raise max_mem_per_uid (or "
			 "uid.%u.max_mem) in %s", uid, a, b, c, uid, cfgp);
		return -EDQUOT;
	}
	if (ncpus + cpus > q.max_cpus) {
		snprintf(err, errlen, "quota exceeded: uid %u may use %u vCPUs "
			 "in all, has %u and asks for %u more; use fewer --cpus "
			 "or raise max_cpus_per_uid (or uid.%u.max_cpus) in %s",
			 uid, q.max_cpus, ncpus, cpus, uid, cfgp);
		return -EDQUOT;
	}
	return 0;
}

/* Close what a save holds. */
static void brk_save_close(struct brk_rec *rec)
{
	struct brk_save *s = &rec->save;

	if (s->file_fd >= 0) {
		close(s->file_fd);
		s->file_fd = -1;
	}
}

static void brk_rec_free(struct brk_rec *rec)
{
	brk_save_close(rec);
	if (rec->image_fd >= 0)
		close(rec->image_fd);
	if (rec->initrd_fd >= 0)
		close(rec->initrd_fd);
	if (rec->serial_fd >= 0)
		close(rec->serial_fd);
	if (rec->disk_fd >= 0)
		close(rec->disk_fd);
	if (rec->console_fd >= 0)
		close(rec->console_fd);
	brk_vm_free(rec->vm);
	free(rec->cmdline);
	free(rec->sb);
	free(rec);
}

/*
 * Check a CreateVm and the fds m carries for it (from index 0: the image
 * unless !has_image, the initrd, the serial file, the disk; then
 * extra_fds more for the caller), and build the record, not yet in the
 * registry. Returns 0, or a positive errno with a sentence in err.
 */
static int brk_rec_build(struct brkd *d, const struct brk_client *c,
			 const CreateVm *cv, bool has_image, struct ipc_msg *m,
			 unsigned extra_fds, const char *verb,
			 struct brk_rec **out, char *err, size_t errlen)
{
	unsigned want_fds = has_image ? 1 : 0, k = 0;
	struct brk_rec *rec = NULL;
	char why[384];
	uint64_t mem = cv->mem_size ? cv->mem_size : BRK_DEFAULT_MEM;
	unsigned cpus = cv->cpus ? cv->cpus : 1;
	int r;

	if (!brk_name_valid(cv->name)) {
		snprintf(err, errlen, "'%s' is not a valid VM name: use 1 to 32 "
			 "of A-Z a-z 0-9 _ . -", cv->name);
		return EINVAL;
	}
	rec = brk_reg_find(d, c->uid, cv->name);
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
	if (cv->has_initrd)
		want_fds++;
	if (cv->serial == SERIAL_MODE__SERIAL_FILE)
		want_fds++;
	if (cv->has_disk)
		want_fds++;
	if (m->nfds != want_fds + extra_fds) {
		snprintf(err, errlen, "%s needs %u fds (%s%s%s%s%s) and got %u",
			 verb, want_fds + extra_fds, has_image ? "image" : "",
			 cv->has_initrd ? ", initrd" : "",
			 cv->serial == SERIAL_MODE__SERIAL_FILE ?
			 ", serial file" : "", cv->has_disk ? ", disk" : "",
			 extra_fds ? ", saved state" : "", m->nfds);
		return EINVAL;
	}
	r = brk_reg_check_quota(d, c->uid, mem, cpus, err, errlen);
	if (r < 0)
		return -r;
	rec = calloc(1, sizeof(*rec));
	if (!rec)
		goto out_nomem;
	rec->d = d;
	rec->image_fd = rec->initrd_fd = rec->serial_fd = rec->console_fd = -1;
	rec->disk_fd = -1;
	rec->save.file_fd = -1;
	rec->kill_at = -1;
	rec->exit_status = -1;
	rec->cmdline = strdup(cv->cmdline);
	rec->sb = malloc(BRK_SCROLLBACK);
	if (!rec->cmdline || !rec->sb)
		goto out_nomem;
	if (has_image)
		rec->image_fd = ipc_msg_take_fd(m, k++);
	if (cv->has_initrd)
		rec->initrd_fd = ipc_msg_take_fd(m, k++);
	if (cv->serial == SERIAL_MODE__SERIAL_FILE)
		rec->serial_fd = ipc_msg_take_fd(m, k++);
	if (cv->has_disk)
		rec->disk_fd = ipc_msg_take_fd(m, k++);
	r = rec->image_fd >= 0 ? brk_check_fd(rec->image_fd, false, "image",
					       why, sizeof(why)) : 0;
	if (!r && rec->initrd_fd >= 0)
		r = brk_check_fd(rec->initrd_fd, false, "initrd", why,
				 sizeof(why));
	if (!r && rec->serial_fd >= 0)
		r = brk_check_fd(rec->serial_fd, true, "serial file", why,
				 sizeof(why));
	if (!r && rec->disk_fd >= 0)
		r = brk_check_disk_fd(rec->disk_fd, cv->disk_ro, why,
				      sizeof(why));
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
	rec->null_dev = cv->null_dev;
	rec->disk_ro = cv->disk_ro;
	rec->rng = cv->rng;
	if (cv->has_disk)
		snprintf(rec->disk_label, sizeof(rec->disk_label), "%s",
			 cv->disk_label[0] ? cv->disk_label : "(disk)");
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

/* Give a built record its id and put it in the registry. */
static void brk_rec_insert(struct brkd *d, struct brk_rec *rec,
			   const struct brk_client *c, const char *how)
{
	struct brk_rec **tail;

	rec->id = d->next_vm_id++;
	for (tail = &d->vms; *tail; tail = &(*tail)->next)
		;
	*tail = rec;
	d->nvms++;
	LOG_INFO("VM %s (id %u) %s by uid %u (pid %d)", rec->name, rec->id, how,
		 c->uid, c->pid);
}

void brk_reg_create(struct brkd *d, struct brk_client *c, const CreateVm *cv,
		    struct ipc_msg *m)
{
	struct brk_rec *rec = NULL;
	char err[512];
	int e;

	if (d->shutting_down) {
		brk_srv_send_error(d, c, ESHUTDOWN, "bulkheadd is shutting down");
		return;
	}
	e = brk_rec_build(d, c, cv, true, m, 0, "create", &rec, err,
			  sizeof(err));
	if (e) {
		brk_srv_send_error(d, c, e, "%s", err);
		return;
	}
	brk_rec_insert(d, rec, c, "created");
	brk_reg_status(d, c, rec);
}

/* ---- console ------------------------------------------------------------ */

static void brk_sb_append(struct brk_rec *rec, const uint8_t *p, size_t n)
{
	if (n >= BRK_SCROLLBACK) {
		p += n - BRK_SCROLLBACK;
		n = BRK_SCROLLBACK;
	}
	while (n) {
		size_t k = BRK_SCROLLBACK - rec->sb_head;

		if (k > n)
			k = n;
		memcpy(rec->sb + rec->sb_head, p, k);
		rec->sb_head = (rec->sb_head + k) % BRK_SCROLLBACK;
		rec->sb_len = rec->sb_len + k > BRK_SCROLLBACK ? BRK_SCROLLBACK
							     : rec->sb_len + k;
		p += k;
		n -= k;
	}
}

static void brk_console_send(struct brkd *d, struct brk_client *c,
			     const uint8_t *p, size_t n)
{
	while (n && !c->dead) {
		ConsoleData cd = CONSOLE_DATA__INIT;
		size_t k = n < BRK_CONSOLE_CHUNK ? n : BRK_CONSOLE_CHUNK;

		cd.data.data = (uint8_t *)p;
		cd.data.len = k;
		brk_srv_send(d, c, MSG_CTL_CONSOLE_OUTPUT, &cd.base);
		p += k;
		n -= k;
	}
}

static void brk_console_forward(struct brkd *d, struct brk_rec *rec,
				const uint8_t *p, size_t n)
{
	struct brk_client *next;

	for (struct brk_client *c = d->clients; c; c = next) {
		next = c->next;  /* a slow client may be dropped on the way */
		if (c->phase == BRK_PHASE_CONSOLE && c->console_vm == rec->id)
			brk_console_send(d, c, p, n);
	}
}

static void brk_console_read(struct brkd *d, struct brk_rec *rec)
{
	uint8_t buf[BRK_CONSOLE_CHUNK];

	for (int i = 0; i < BRK_CONSOLE_READS && rec->console_fd >= 0; i++) {
		ssize_t n = recv(rec->console_fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			/* The UART is gone: nobody writes to it any more. */
			brk_srv_unwatch(d, rec->console_fd);
			close(rec->console_fd);
			rec->console_fd = -1;
			return;
		}
		brk_sb_append(rec, buf, (size_t)n);
		brk_console_forward(d, rec, buf, (size_t)n);
	}
}

/* End the console sessions on rec (the VM ended or goes away). */
static void brk_console_end(struct brkd *d, struct brk_rec *rec,
			    const char *reason)
{
	ConsoleEnd ce = CONSOLE_END__INIT;
	struct brk_client *next;

	ce.reason = (char *)reason;
	for (struct brk_client *c = d->clients; c; c = next) {
		next = c->next;
		if (c->phase != BRK_PHASE_CONSOLE || c->console_vm != rec->id)
			continue;
		brk_srv_set_phase(c, BRK_PHASE_READY);
		c->console_vm = 0;
		brk_srv_send(d, c, MSG_CTL_CONSOLE_END, &ce.base);
	}
	rec->console_clients = 0;
}

void brk_reg_console_attach(struct brkd *d, struct brk_client *c,
			    struct brk_rec *rec, bool replay)
{
	ConsoleAttached rep = CONSOLE_ATTACHED__INIT;
	struct brk_info in;

	if (rec->serial != SERIAL_MODE__SERIAL_CONSOLE) {
		brk_srv_send_error(d, c, EINVAL, "VM '%s' has no console: its "
				   "UART goes to %s (create it with --serial "
				   "console, the default)", rec->name,
				   rec->serial == SERIAL_MODE__SERIAL_NULL ?
				   "null" : "a file");
		return;
	}
	brk_info_fill(rec, &in, false);
	in.vm.console_clients++;  /* counting this one */
	rep.vm = &in.vm;
	brk_srv_send(d, c, MSG_CTL_CONSOLE_ATTACHED, &rep.base);
	if (c->dead)
		return;
	rec->console_clients++;
	brk_srv_set_phase(c, BRK_PHASE_CONSOLE);
	c->console_vm = rec->id;
	if (replay && rec->sb_len) {
		size_t start = (rec->sb_head + BRK_SCROLLBACK - rec->sb_len) %
			       BRK_SCROLLBACK;
		size_t first = BRK_SCROLLBACK - start;

		if (first > rec->sb_len)
			first = rec->sb_len;
		brk_console_send(d, c, rec->sb + start, first);
		brk_console_send(d, c, rec->sb, rec->sb_len - first);
	}
}

static struct brk_rec *brk_reg_by_id(struct brkd *d, uint32_t id)
{
	for (struct brk_rec *r = d->vms; r; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

void brk_reg_console_input(struct brkd *d, struct brk_client *c,
			   const uint8_t *data, size_t len)
{
	struct brk_rec *rec = brk_reg_by_id(d, c->console_vm);
	ssize_t n;

	if (!rec || rec->console_fd < 0 || !len)
		return;  /* not running: typed input goes nowhere */
	/*
	 * The UART takes input as the guest reads it; what the socket
	 * cannot hold now is dropped, never waited for.
	 */
	n = send(rec->console_fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0 || (size_t)n < len)
		LOG_DBG("VM %s: console input dropped (%zu bytes)", rec->name,
			n < 0 ? len : len - (size_t)n);
}

void brk_reg_console_detach(struct brkd *d, struct brk_client *c)
{
	ConsoleDetached rep = CONSOLE_DETACHED__INIT;
	struct brk_rec *rec = brk_reg_by_id(d, c->console_vm);

	if (rec && rec->console_clients)
		rec->console_clients--;
	c->console_vm = 0;
	brk_srv_set_phase(c, BRK_PHASE_READY);
	brk_srv_send(d, c, MSG_CTL_CONSOLE_DETACHED, &rep.base);
}

void brk_reg_client_gone(struct brkd *d, struct brk_client *c)
{
	struct brk_rec *rec;

	if (c->phase != BRK_PHASE_CONSOLE)
		return;
	rec = brk_reg_by_id(d, c->console_vm);
	if (rec && rec->console_clients)
		rec->console_clients--;
}

/* ---- the end of a run --------------------------------------------------- */

static void brk_reg_remove(struct brkd *d, struct brk_rec *rec)
{
	struct brk_rec **pp;

	brk_console_end(d, rec, "the VM was destroyed");
	for (pp = &d->vms; *pp; pp = &(*pp)->next) {
		if (*pp == rec) {
			*pp = rec->next;
			break;
		}
	}
	d->nvms--;
	rec->dead = true;
	rec->next = d->grave_vms;
	d->grave_vms = rec;
	LOG_INFO("VM %s (id %u, uid %u) destroyed", rec->name, rec->id,
		 rec->owner);
}

static void brk_reg_answer_destroyed(struct brkd *d, struct brk_rec *rec,
				     uint64_t client)
{
	snprintf(rec->state, sizeof(rec->state), "DESTROYED");
	brk_reg_answer_info(d, client, rec);
	brk_reg_remove(d, rec);
}

/* Answer every stats request on rec with just the process part. */
static void brk_reg_stats_fail(struct brkd *d, struct brk_rec *rec,
			       const char *why);

/* Saves and restores (below). */
static void brk_save_progress(struct brkd *d, struct brk_rec *rec);
static void brk_save_control_reply(struct brkd *d, struct brk_rec *rec,
				   const VmControlReply *rep);
static void brk_reg_on_save_reply(struct brk_vm *vm, const VmSaveReply *rep);
static void brk_reg_power_off(struct brk_rec *rec, uint32_t seq);

/* Every process of the run is reaped: the VM is OFF. */
static void brk_reg_vm_ended(struct brkd *d, struct brk_rec *rec)
{
	struct brk_vm *vm = rec->vm;
	char err[384], what[460];
	enum brk_op op = rec->op;
	int status;

	if (rec->console_fd >= 0) {
		brk_console_read(d, rec);  /* the last words */
		if (rec->console_fd >= 0) {
			brk_srv_unwatch(d, rec->console_fd);
			close(rec->console_fd);
			rec->console_fd = -1;
		}
	}
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
	brk_console_end(d, rec, what);
	brk_reg_stats_fail(d, rec, "the VM ended");

	if (op == BRK_OP_SAVE) {
		brk_save_progress(d, rec);
		return;
	}
	rec->op = BRK_OP_NONE;
	switch (op) {
	case BRK_OP_NONE:
		break;
	case BRK_OP_START:
		brk_srv_answer_error(d, rec->op_client, EIO, "VM '%s' did not "
				     "start: %s", rec->name,
				     rec->error[0] ? rec->error : rec->last_exit);
		break;
	case BRK_OP_POWER_OFF:
		brk_reg_answer_info(d, rec->op_client, rec);
		break;
	case BRK_OP_DESTROY:
		brk_reg_answer_destroyed(d, rec, rec->op_client);
		break;
	case BRK_OP_RESTORE:
		brk_srv_answer_error(d, rec->op_client, rec->error[0] ? EINVAL :
				     EIO, "VM '%s' was not restored: %s%s",
				     rec->name, rec->error[0] ? rec->error :
				     rec->last_exit, rec->restore_fresh ?
				     "" : "; it is OFF");
		/* A record made for this restore goes with it. */
		if (rec->restore_fresh)
			brk_reg_remove(d, rec);
		break;
	default:
		brk_srv_answer_error(d, rec->op_client, EIO, "VM '%s' ended "
				     "before its worker answered %s: %s",
				     rec->name, brk_op_name(op), rec->last_exit);
		break;
	}
}

static void brk_reg_check_end(struct brkd *d, struct brk_rec *rec)
{
	if (rec->vm && brk_vm_all_reaped(rec->vm))
		brk_reg_vm_ended(d, rec);
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
		brk_reg_answer_info(rec->d, rec->op_client, rec);
		return;
	}
	if (rec->op != BRK_OP_START || !vm->ready ||
	    brk_state_powering_on(vm->state))
		return;
	LOG_INFO("VM %s (id %u) is %s", rec->name, rec->id, vm->state);
	rec->op = BRK_OP_NONE;
	brk_reg_answer_info(rec->d, rec->op_client, rec);
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
		brk_reg_power_off(rec, ++rec->seq);
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
	struct brkd *d = rec->d;
	enum brk_op op = rec->op;

	if (op == BRK_OP_NONE || op == BRK_OP_START || op == BRK_OP_RESTORE ||
	    rep->seq != rec->op_seq) {
		LOG_DBG("VM %s: control reply %u not awaited", rec->name,
			rep->seq);
		return;
	}
	if (op == BRK_OP_SAVE) {
		brk_save_control_reply(d, rec, rep);
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
		brk_srv_answer_error(d, rec->op_client, -rep->status,
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
	brk_reg_answer_info(d, rec->op_client, rec);
}

/* CPU time and memory of one child, from /proc (kernel data, bounded). */
static void brk_proc_stats(const struct brk_child *c, ProcStats *ps)
{
	static long ticks;
	char path[64], buf[1024], *p;
	FILE *f;
	int fd;
	ssize_t n;

	proc_stats__init(ps);
	ps->label = (char *)c->label;
	ps->pid = c->pid;
	if (c->reaped)
		return;
	if (!ticks)
		ticks = sysconf(_SC_CLK_TCK);
	snprintf(path, sizeof(path), "/proc/%d/stat", c->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			unsigned long long ut = 0, stt = 0, thr = 0;

			buf[n] = '\0';
			/* comm may hold anything: fields start after the
			 * last ')'. */
			p = strrchr(buf, ')');
			if (p && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u "
					"%*u %*u %*u %*u %llu %llu %*d %*d %*d "
					"%*d %llu", &ut, &stt, &thr) == 3 &&
			    ticks > 0) {
				ps->user_ms = ut * 1000 / (unsigned long)ticks;
				ps->sys_ms = stt * 1000 / (unsigned long)ticks;
				ps->threads = (uint32_t)thr;
			}
		}
	}
	snprintf(path, sizeof(path), "/proc/%d/status", c->pid);
	f = fopen(path, "re");
	if (f) {
		while (fgets(buf, sizeof(buf), f)) {
			unsigned long long kb;

			if (sscanf(buf, "VmRSS: %llu kB", &kb) == 1)
				ps->rss_kb = kb;
		}
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", c->pid);
	f = fopen(path, "re");
	if (f) {
		while (fgets(buf, sizeof(buf), f)) {
			unsigned long long kb;

			if (sscanf(buf, "Pss: %llu kB", &kb) == 1)
				ps->pss_kb = kb;
		}
		fclose(f);
	}
}

/* Answer one stats request: processes from /proc, counters if given. */
static void brk_reg_answer_stats(struct brkd *d, struct brk_rec *rec,
				 uint64_t client, const VmStats *st,
				 const char *why)
{
	StatsReply rep = STATS_REPLY__INIT;
	ProcStats ps[1 + BRK_MAX_DEVICES], *psp[1 + BRK_MAX_DEVICES];
	struct brk_info in;
	size_t n = 0;

	brk_info_fill(rec, &in, false);
	rep.vm = &in.vm;
	if (rec->vm) {
		brk_proc_stats(&rec->vm->worker, &ps[n]);
		psp[n] = &ps[n];
		n++;
		for (unsigned i = 0; i < rec->vm->ndevs; i++, n++) {
			brk_proc_stats(&rec->vm->devs[i], &ps[n]);
			psp[n] = &ps[n];
		}
	}
	rep.procs = psp;
	rep.n_procs = n;
	rep.worker = (VmStats *)st;
	rep.worker_error = (char *)(why ? why : "");
	brk_srv_answer(d, client, MSG_CTL_STATS_REPLY, &rep.base);
}

static void brk_reg_on_stats(struct brk_vm *vm, const VmStats *st)
{
	struct brk_rec *rec = vm->hook_ctx;

	for (unsigned i = 0; i < rec->nstats; i++) {
		if (rec->stats[i].seq != st->seq)
			continue;
		brk_reg_answer_stats(rec->d, rec, rec->stats[i].client, st,
				     NULL);
		rec->stats[i] = rec->stats[--rec->nstats];
		return;
	}
	LOG_DBG("VM %s: stats %u not awaited", rec->name, st->seq);
}

static void brk_reg_stats_fail(struct brkd *d, struct brk_rec *rec,
			       const char *why)
{
	while (rec->nstats) {
		uint64_t client = rec->stats[--rec->nstats].client;

		brk_reg_answer_stats(d, rec, client, NULL, why);
	}
}

static const struct brk_vm_hooks brk_reg_hooks = {
	.ready = brk_reg_on_ready,
	.state_changed = brk_reg_on_state,
	.runtime_error = brk_reg_on_runtime_error,
	.exited = brk_reg_on_exited,
	.control_reply = brk_reg_on_control_reply,
	.stats = brk_reg_on_stats,
	.save_reply = brk_reg_on_save_reply,
};

/* ---- operations --------------------------------------------------------- */

/* Launch rec's processes: booting its image, or restoring the saved state
 * restore_fd (-1: none; the worker gets its own copy). */
static int brk_reg_launch(struct brkd *d, struct brk_rec *rec, int restore_fd,
			  char *err, size_t errlen)
{
	struct brk_vm_config cfg = {
		.mem_size = rec->mem_size, .cpus = rec->cpus,
		.cmdline = rec->cmdline, .image_fd = rec->image_fd,
		.initrd_fd = rec->initrd_fd, .serial_out_fd = -1,
		.console_fd = -1, .null_dev = rec->null_dev,
		.disk_fd = rec->disk_fd, .disk_ro = rec->disk_ro,
		.rng = rec->rng, .restore_fd = restore_fd,
	};
	int sv[2] = { -1, -1 };
	struct brk_vm *vm = NULL;
	int kvm_fd, r;

	kvm_fd = kd_sys_open(NULL);
	if (kvm_fd < 0) {
		snprintf(err, errlen, "bulkheadd cannot open /dev/kvm: %s (it "
			 "must run as root or in the kvm group, on a host with "
			 "KVM)", strerror(-kvm_fd));
		return -ENODEV;
	}
	switch (rec->serial) {
	case SERIAL_MODE__SERIAL_CONSOLE:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
			r = -errno;
			snprintf(err, errlen, "socketpair: %s", strerror(errno));
			goto out;
		}
		cfg.serial = BRK_SERIAL_CONSOLE;
		cfg.console_fd = sv[1];
		break;
	case SERIAL_MODE__SERIAL_FILE:
		cfg.serial = BRK_SERIAL_FILE;
		cfg.serial_out_fd = rec->serial_fd;
		break;
	default:
		cfg.serial = BRK_SERIAL_NULL;
		break;
	}
	r = brk_vm_launch(kvm_fd, &cfg, &vm, err, errlen);
	if (r) {
		r = r == BRK_EXIT_NOKVM ? -ENODEV : -EIO;
		goto out;
	}
	vm->hooks = &brk_reg_hooks;
	vm->hook_ctx = rec;
	/* A stuck worker must not block the broker. */
	fcntl(vm->chan.fd, F_SETFL, fcntl(vm->chan.fd, F_GETFL) | O_NONBLOCK);
	rec->w_chan = (struct brk_watch){ BRK_WATCH_WORKER, rec, 0 };
	rec->w_worker = (struct brk_watch){ BRK_WATCH_CHILD, rec, -1 };
	r = brk_srv_watch(d, vm->chan.fd, EPOLLIN, &rec->w_chan);
	if (!r)
		r = brk_srv_watch(d, vm->worker.pidfd, EPOLLIN, &rec->w_worker);
	for (unsigned i = 0; !r && i < vm->ndevs; i++) {
		rec->w_devs[i] = (struct brk_watch){ BRK_WATCH_CHILD, rec,
						     (int)i };
		r = brk_srv_watch(d, vm->devs[i].pidfd, EPOLLIN,
				  &rec->w_devs[i]);
	}
	if (!r && sv[0] >= 0) {
		rec->w_console = (struct brk_watch){ BRK_WATCH_CONSOLE, rec, 0 };
		fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
		r = brk_srv_watch(d, sv[0], EPOLLIN, &rec->w_console);
	}
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

/* Ask the VM to power off (the answer comes when every process is gone). */
static void brk_reg_power_off(struct brk_rec *rec, uint32_t seq)
{
	struct brk_vm *vm = rec->vm;

	rec->ending = true;
	if (vm->chan.fd >= 0 && !vm->have_end &&
	    brk_vm_send_control(vm, VM_CONTROL__OP__POWER_OFF, seq) == 0)
		return;
	/* No worker to ask: what is left goes. */
	brk_vm_kill_all(vm);
}

void brk_reg_vm_op(struct brkd *d, struct brk_client *c, struct brk_rec *rec,
		   int op_code)
{
	static const enum brk_op ops[] = {
		[VM_OP__OP__START] = BRK_OP_START,
		[VM_OP__OP__PAUSE] = BRK_OP_PAUSE,
		[VM_OP__OP__RESUME] = BRK_OP_RESUME,
		[VM_OP__OP__RESET] = BRK_OP_RESET,
		[VM_OP__OP__POWER_OFF] = BRK_OP_POWER_OFF,
		[VM_OP__OP__DESTROY] = BRK_OP_DESTROY,
	};
	static const int wops[] = {
		[BRK_OP_PAUSE] = VM_CONTROL__OP__SUSPEND,
		[BRK_OP_RESUME] = VM_CONTROL__OP__RESUME,
		[BRK_OP_RESET] = VM_CONTROL__OP__RESET,
	};
	struct brk_vm *vm = rec->vm;
	enum brk_op op;
	int64_t now = brk_now_ms();
	char err[384];
	int r;

	if (op_code < 0 || (size_t)op_code >= sizeof(ops) / sizeof(ops[0])) {
		brk_srv_send_error(d, c, EINVAL, "unknown operation %d", op_code);
		return;
	}
	op = ops[op_code];
	if (rec->op != BRK_OP_NONE) {
		brk_srv_send_error(d, c, EBUSY, "VM '%s' is busy: a %s is in "
				   "progress; try again when it is done",
				   rec->name, brk_op_name(rec->op));
		return;
	}
	if (d->shutting_down) {
		brk_srv_send_error(d, c, ESHUTDOWN, "bulkheadd is shutting down");
		return;
	}
	switch (op) {
	case BRK_OP_START:
		if (vm) {
			brk_srv_send_error(d, c, EBUSY, "VM '%s' is already "
					   "started (state %s)", rec->name,
					   brk_rec_state(rec));
			return;
		}
		if (rec->image_fd < 0) {
			brk_srv_send_error(d, c, EINVAL, "VM '%s' has no image "
					   "to boot: it was restored from saved "
					   "state without one; restore it again "
					   "('bulkhead restore %s FILE') or "
					   "destroy it", rec->name, rec->name);
			return;
		}
		r = brk_reg_launch(d, rec, -1, err, sizeof(err));
		if (r < 0) {
			brk_srv_send_error(d, c, -r, "cannot start VM '%s': %s",
					   rec->name, err);
			return;
		}
		LOG_INFO("VM %s (id %u, uid %u) starting: worker pid %d",
			 rec->name, rec->id, rec->owner, rec->vm->worker.pid);
		rec->op_deadline = now + BRK_START_TIMEOUT_MS;
		break;
	case BRK_OP_PAUSE:
	case BRK_OP_RESUME:
	case BRK_OP_RESET:
		if (!vm || rec->ending || !vm->ready || vm->chan.fd < 0) {
			brk_srv_send_error(d, c, EINVAL, "cannot %s VM '%s': it "
					   "is not running (state %s)%s",
					   brk_op_name(op), rec->name,
					   brk_rec_state(rec),
					   vm ? "" : "; start it first");
			return;
		}
		rec->op_seq = ++rec->seq;
		r = brk_vm_send_control(vm, wops[op], rec->op_seq);
		if (r < 0) {
			brk_srv_send_error(d, c, EIO, "cannot reach the worker of "
					   "VM '%s': %s", rec->name,
					   strerror(-r));
			return;
		}
		rec->op_deadline = now + BRK_CONTROL_TIMEOUT_MS;
		break;
	case BRK_OP_POWER_OFF:
	case BRK_OP_DESTROY:
		if (!vm && op == BRK_OP_DESTROY) {
			snprintf(rec->state, sizeof(rec->state), "DESTROYED");
			brk_reg_status(d, c, rec);
			brk_reg_remove(d, rec);
			return;
		}
		if (!vm) {
			brk_srv_send_error(d, c, EINVAL, "VM '%s' is already off "
					   "(state %s)", rec->name,
					   brk_rec_state(rec));
			return;
		}
		rec->op_seq = ++rec->seq;
		brk_reg_power_off(rec, rec->op_seq);
		rec->op_deadline = now + BRK_POWER_OFF_TIMEOUT_MS;
		rec->op_killed = false;
		break;
	case BRK_OP_NONE:
	case BRK_OP_SAVE:
	case BRK_OP_RESTORE:
		return;
	}
	rec->op = op;
	rec->op_client = c->id;
	brk_srv_set_phase(c, BRK_PHASE_WAITING);
	/* The processes may all be gone already (killed, nothing to wait). */
	brk_reg_check_end(d, rec);
}

void brk_reg_stats(struct brkd *d, struct brk_client *c, struct brk_rec *rec)
{
	struct brk_vm *vm = rec->vm;
	struct brk_stats_wait *w;
	int r;

	brk_srv_set_phase(c, BRK_PHASE_WAITING);
	if (!vm || !vm->ready || vm->chan.fd < 0 || rec->ending) {
		brk_reg_answer_stats(d, rec, c->id, NULL, vm ?
				     "the VM is not running" :
				     "the VM has no processes");
		return;
	}
	if (rec->nstats == BRK_MAX_STATS_WAITS) {
		brk_reg_answer_stats(d, rec, c->id, NULL, "too many stats "
				     "requests are waiting for this worker");
		return;
	}
	w = &rec->stats[rec->nstats];
	w->seq = ++rec->seq;
	w->client = c->id;
	w->deadline = brk_now_ms() + BRK_STATS_TIMEOUT_MS;
	r = brk_vm_send_stats_req(vm, w->seq);
	if (r < 0) {
		brk_reg_answer_stats(d, rec, c->id, NULL, "cannot reach the "
				     "worker");
		return;
	}
	rec->nstats++;
}

/* ---- save and restore --------------------------------------------------- */

/* A save fails when its file stops growing for this long. */
#define BRK_SAVE_IDLE_TIMEOUT_MS 60000
/* The longest final-pass budget a live save may ask for. */
#define BRK_SAVE_MAX_DOWNTIME_MS 600000u
/* How long a restore may take, up to RUNNING (big streams, busy hosts). */
#define BRK_RESTORE_TIMEOUT_MS 300000

/* The save file's size now, or -1. */
static int64_t brk_save_file_size(const struct brk_save *s)
{
	struct stat st;

	return fstat(s->file_fd, &st) < 0 ? -1 : (int64_t)st.st_size;
}

/* A save is answered: if bulkheadd is shutting down, the VM goes now. */
static void brk_save_after(struct brkd *d, struct brk_rec *rec)
{
	if (d->shutting_down && rec->vm && !rec->ending) {
		LOG_INFO("VM %s (id %u): powering off", rec->name, rec->id);
		brk_reg_power_off(rec, ++rec->seq);
	}
}

static void brk_save_answer_ok(struct brkd *d, struct brk_rec *rec)
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
	brk_srv_answer(d, rec->op_client, MSG_CTL_SAVE_REPLY, &rep.base);
	brk_save_after(d, rec);
}

__attribute__((format(printf, 3, 4)))
static void brk_save_answer_error(struct brkd *d, struct brk_rec *rec,
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
	brk_srv_answer_error(d, rec->op_client, s->error_errno ? s->error_errno :
			     EIO, "VM '%s' was not saved: %s%s", rec->name,
			     s->error, tail);
	brk_save_after(d, rec);
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

/* Move a save on; called on every event that may end one of its phases. */
static void brk_save_progress(struct brkd *d, struct brk_rec *rec)
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
				brk_save_answer_error(d, rec, "; the VM could not "
						      "be resumed and is "
						      "SUSPENDED");
				return;
			}
			brk_save_answer_error(d, rec, NULL);
			return;
		}
		if ((s->flags & BRK_SAVE_KEEP_RUNNING) || !vm) {
			brk_save_answer_ok(d, rec);
			return;
		}
		/* The stream is safe in the file: now the VM may go. */
		s->phase = BRK_SAVE_POWERING_OFF;
		rec->op_seq = ++rec->seq;
		rec->op_deadline = brk_now_ms() + BRK_POWER_OFF_TIMEOUT_MS;
		rec->op_killed = false;
		brk_reg_power_off(rec, rec->op_seq);
		brk_reg_check_end(d, rec);
		return;
	case BRK_SAVE_POWERING_OFF:
		if (!vm)
			brk_save_answer_ok(d, rec);
		return;
	case BRK_SAVE_RESUMING:
		if (!vm)
			brk_save_answer_error(d, rec, "; then the VM ended (%s)",
					      rec->last_exit);
		return;
	}
}

static void brk_reg_on_save_reply(struct brk_vm *vm, const VmSaveReply *rep)
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
	brk_save_progress(rec->d, rec);
}

/* The worker answered the RESUME or POWER_OFF that ends a save. */
static void brk_save_control_reply(struct brkd *d, struct brk_rec *rec,
				   const VmControlReply *rep)
{
	struct brk_save *s = &rec->save;

	if (s->phase == BRK_SAVE_RESUMING) {
		if (rep->status < 0)
			brk_save_answer_error(d, rec, "; resuming the VM failed "
					      "too (%s): it is SUSPENDED",
					      rep->message && rep->message[0] ?
					      rep->message :
					      strerror(-rep->status));
		else
			brk_save_answer_error(d, rec, NULL);
		return;
	}
	/* POWERING_OFF: answered once every process is gone. */
	if (rep->status < 0 && rep->status != -ESHUTDOWN)
		LOG_WARN("VM %s: power off after the save: %s", rec->name,
			 rep->message);
}

/* The save's deadline passed; returns the next one, or -1. */
static int64_t brk_save_timeout(struct brkd *d, struct brk_rec *rec,
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
		brk_save_answer_error(d, rec, "; check its state with 'bulkhead "
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
		brk_save_answer_error(d, rec, NULL);
		return -1;
	case BRK_SAVE_RESUMING:
		brk_save_answer_error(d, rec, "; the worker did not answer the "
				      "resume within %d s",
				      BRK_CONTROL_TIMEOUT_MS / 1000);
		return -1;
	}
	return -1;
}

void brk_reg_save(struct brkd *d, struct brk_client *c, struct brk_rec *rec,
		  const SaveVm *sv, struct ipc_msg *m)
{
	struct brk_vm *vm = rec->vm;
	struct brk_save *s = &rec->save;
	int fd = -1, r;
	unsigned flags;
	struct stat st;
	char why[256];

	if (m->nfds != 1) {
		brk_srv_send_error(d, c, EINVAL, "save needs 1 fd (the file) and "
				   "got %u", m->nfds);
		return;
	}
	if (d->shutting_down) {
		brk_srv_send_error(d, c, ESHUTDOWN, "bulkheadd is shutting down");
		return;
	}
	if (rec->op != BRK_OP_NONE) {
		brk_srv_send_error(d, c, EBUSY, "VM '%s' is busy: a %s is in "
				   "progress; try again when it is done",
				   rec->name, brk_op_name(rec->op));
		return;
	}
	if (!vm || rec->ending || !vm->ready || vm->chan.fd < 0 ||
	    (strcmp(vm->state, "RUNNING") != 0 &&
	     strcmp(vm->state, "SUSPENDED") != 0)) {
		brk_srv_send_error(d, c, EINVAL, "cannot save VM '%s': it is not "
				   "running (state %s)%s", rec->name,
				   brk_rec_state(rec), vm ? "" :
				   "; only a running or paused VM has a state "
				   "to save");
		return;
	}
	if (sv->live && strcmp(vm->state, "RUNNING") != 0) {
		brk_srv_send_error(d, c, EINVAL, "cannot save VM '%s' live: it is "
				   "%s; resume it first, or save it without "
				   "--live", rec->name, vm->state);
		return;
	}
	if (sv->max_downtime_ms > BRK_SAVE_MAX_DOWNTIME_MS) {
		brk_srv_send_error(d, c, EINVAL, "--max-downtime must be at most "
				   "%u ms", BRK_SAVE_MAX_DOWNTIME_MS);
		return;
	}
	fd = ipc_msg_take_fd(m, 0);
	r = brk_check_fd(fd, true, "save file", why, sizeof(why));
	if (r == 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		snprintf(why, sizeof(why), "the save file is not a regular file");
		r = -EINVAL;
	}
	/* The client opened it without O_TRUNC, so that a refused save (no
	 * such VM, busy, ...) leaves an existing file alone: empty it now. */
	if (r == 0 && (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0)) {
		r = -errno;
		snprintf(why, sizeof(why), "cannot empty the save file: %s",
			 strerror(-r));
	}
	if (r < 0) {
		brk_srv_send_error(d, c, -r, "cannot save VM '%s': %s", rec->name,
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
		brk_srv_send_error(d, c, EIO, "cannot reach the worker of VM '%s': "
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
	brk_srv_set_phase(c, BRK_PHASE_WAITING);
	LOG_INFO("VM %s (id %u): saving%s%s", rec->name, rec->id,
		 sv->live ? " live" : "", sv->keep_running ? ", keeps running" :
		 ", then powering off");
out:
	if (fd >= 0)
		close(fd);
}

void brk_reg_restore(struct brkd *d, struct brk_client *c,
		     const RestoreVm *rv, struct ipc_msg *m)
{
	const CreateVm *cv = rv->vm;
	struct brk_rec *rec = NULL;
	bool fresh = false;
	int state_fd = -1, r, e;
	char err[512], why[256];

	if (!cv) {
		brk_srv_send_error(d, c, EINVAL, "restore names no VM");
		return;
	}
	if (d->shutting_down) {
		brk_srv_send_error(d, c, ESHUTDOWN, "bulkheadd is shutting down");
		return;
	}
	if (m->nfds < 1) {
		brk_srv_send_error(d, c, EINVAL, "restore needs the saved state's "
				   "fd");
		return;
	}
	if (rv->existing && strchr(cv->name, '/')) {
		/* UID/NAME: root restoring somebody's VM. */
		r = brk_reg_lookup(d, c, cv->name, &rec, err, sizeof(err));
		if (r < 0) {
			brk_srv_send_error(d, c, -r, "%s", err);
			return;
		}
	} else if (rv->existing) {
		/* Names are per owner, as for create: one of the caller's own,
		 * else a new VM of the caller's. */
		rec = brk_reg_find(d, c->uid, cv->name);
	}
	if (rec) {
		/* Into the VM as it is configured: it must not run. */
		if (m->nfds != 1) {
			brk_srv_send_error(d, c, EINVAL, "a restore into the "
					   "existing VM '%s' takes only the "
					   "saved state's fd", rec->name);
			return;
		}
		if (rec->op != BRK_OP_NONE) {
			brk_srv_send_error(d, c, EBUSY, "VM '%s' is busy: a %s is "
					   "in progress; try again when it is "
					   "done", rec->name,
					   brk_op_name(rec->op));
			return;
		}
		if (rec->vm) {
			brk_srv_send_error(d, c, EBUSY, "VM '%s' is running "
					   "(state %s): power it off first, or "
					   "restore under another name",
					   rec->name, brk_rec_state(rec));
			return;
		}
	} else {
		e = brk_rec_build(d, c, cv, rv->has_image, m, 1, "restore", &rec,
				  err, sizeof(err));
		if (e) {
			brk_srv_send_error(d, c, e, "%s", err);
			return;
		}
		fresh = true;
	}
	state_fd = ipc_msg_take_fd(m, m->nfds - 1);
	r = brk_check_fd(state_fd, false, "saved state", why, sizeof(why));
	if (r < 0) {
		brk_srv_send_error(d, c, -r, "cannot restore VM '%s': %s",
				   rec->name, why);
		goto out;
	}
	if (fresh) {
		brk_rec_insert(d, rec, c, "created to restore it");
		fresh = false;
		rec->restore_fresh = true;
	} else {
		rec->restore_fresh = false;
	}
	r = brk_reg_launch(d, rec, state_fd, err, sizeof(err));
	if (r < 0) {
		brk_srv_send_error(d, c, -r, "cannot restore VM '%s': %s",
				   rec->name, err);
		if (rec->restore_fresh)
			brk_reg_remove(d, rec);
		goto out;
	}
	LOG_INFO("VM %s (id %u, uid %u) restoring: worker pid %d", rec->name,
		 rec->id, rec->owner, rec->vm->worker.pid);
	rec->op = BRK_OP_RESTORE;
	rec->op_client = c->id;
	rec->op_deadline = brk_now_ms() + BRK_RESTORE_TIMEOUT_MS;
	rec->op_killed = false;
	brk_srv_set_phase(c, BRK_PHASE_WAITING);
	brk_reg_check_end(d, rec);
out:
	if (state_fd >= 0)
		close(state_fd);
	if (fresh)
		brk_rec_free(rec);
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

static void brk_reg_worker_readable(struct brkd *d, struct brk_rec *rec)
{
	/* A few frames per event, so one worker cannot starve the rest. */
	for (int i = 0; i < 8 && rec->vm && rec->vm->chan.fd >= 0; i++) {
		int r = brk_vm_worker_recv(rec->vm, d->msg);

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

static void brk_reg_child_ended(struct brkd *d, struct brk_rec *rec, int idx)
{
	struct brk_vm *vm = rec->vm;
	struct brk_child *c = idx < 0 ? &vm->worker : &vm->devs[idx];
	char how[96];

	if (!brk_child_reap(c))
		return;
	brk_child_describe(c, how, sizeof(how));
	if (idx < 0) {
		/* Whatever it said before it went counts. */
		while (vm->chan.fd >= 0 && brk_vm_worker_recv(vm, d->msg) == 0)
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

void brk_reg_event(struct brkd *d, struct brk_watch *w, uint32_t events)
{
	struct brk_rec *rec = w->obj;

	if (rec->dead)
		return;
	if (!rec->vm)
		return;
	switch (w->kind) {
	case BRK_WATCH_WORKER:
		brk_reg_worker_readable(d, rec);
		break;
	case BRK_WATCH_CHILD:
		brk_reg_child_ended(d, rec, w->idx);
		break;
	case BRK_WATCH_CONSOLE:
		brk_console_read(d, rec);
		break;
	default:
		break;
	}
	if (!rec->dead)
		brk_reg_check_end(d, rec);
}

static int64_t brk_min_deadline(int64_t a, int64_t b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

static int64_t brk_reg_tick_one(struct brkd *d, struct brk_rec *rec,
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
	for (unsigned i = 0; i < rec->nstats;) {
		if (now >= rec->stats[i].deadline) {
			uint64_t client = rec->stats[i].client;

			rec->stats[i] = rec->stats[--rec->nstats];
			brk_reg_answer_stats(d, rec, client, NULL, "the worker "
					     "did not answer within 5 s");
			continue;
		}
		next = brk_min_deadline(next, rec->stats[i].deadline);
		i++;
	}
	if (rec->op == BRK_OP_NONE)
		return next;
	if (now < rec->op_deadline)
		return brk_min_deadline(next, rec->op_deadline);
	switch (rec->op) {
	case BRK_OP_SAVE:
		return brk_min_deadline(next, brk_save_timeout(d, rec, now));
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
		brk_srv_answer_error(d, rec->op_client, ETIMEDOUT, "VM '%s' was "
				     "not restored: %s", rec->name,
				     rec->error[0] ? rec->error : "timed out");
		break;
	case BRK_OP_START:
		rec->op = BRK_OP_NONE;
		if (rec->vm) {
			rec->ending = true;
			brk_vm_kill_all(rec->vm);
		}
		brk_srv_answer_error(d, rec->op_client, ETIMEDOUT, "VM '%s' did "
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
		brk_srv_answer_error(d, rec->op_client, ETIMEDOUT, "the worker "
				     "of VM '%s' did not answer %s within %d s",
				     rec->name, brk_op_name(rec->op),
				     BRK_CONTROL_TIMEOUT_MS / 1000);
		rec->op = BRK_OP_NONE;
		break;
	}
	return next;
}

int64_t brk_reg_tick(struct brkd *d, int64_t now)
{
	int64_t next = -1;
	struct brk_rec *n;

	for (struct brk_rec *r = d->vms; r; r = n) {
		n = r->next;  /* destroy may unlink r */
		next = brk_min_deadline(next, brk_reg_tick_one(d, r, now));
	}
	return next;
}

void brk_reg_shutdown(struct brkd *d)
{
	for (struct brk_rec *r = d->vms; r; r = r->next) {
		if (r->op == BRK_OP_SAVE && r->vm) {
			/* A VM being saved cannot be powered off: let the save
			 * finish (within the shutdown deadline); the VM is
			 * powered off when it is answered. */
			LOG_INFO("VM %s (id %u): powering off after its save",
				 r->name, r->id);
			continue;
		}
		if (r->op != BRK_OP_NONE) {
			brk_srv_answer_error(d, r->op_client, ESHUTDOWN,
					     "bulkheadd is shutting down: every "
					     "VM is being powered off");
			r->op = BRK_OP_NONE;
			brk_save_close(r);
		}
		if (!r->vm)
			continue;
		LOG_INFO("VM %s (id %u): powering off", r->name, r->id);
		brk_reg_power_off(r, ++r->seq);
	}
}

void brk_reg_kill_all(struct brkd *d)
{
	for (struct brk_rec *r = d->vms; r; r = r->next)
		if (r->vm)
			brk_vm_kill_all(r->vm);
}

bool brk_reg_any_running(const struct brkd *d)
{
	for (const struct brk_rec *r = d->vms; r; r = r->next)
		if (r->vm)
			return true;
	return false;
}

void brk_reg_free_graves(struct brkd *d)
{
	while (d->grave_vms) {
		struct brk_rec *r = d->grave_vms;

		d->grave_vms = r->next;
		brk_rec_free(r);
	}
}

void brk_reg_free_all(struct brkd *d)
{
	while (d->vms) {
		struct brk_rec *r = d->vms;

		d->vms = r->next;
		brk_rec_free(r);
	}
	d->nvms = 0;
	brk_reg_free_graves(d);
}
