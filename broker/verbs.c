/* SPDX-License-Identifier: MIT */
/*
 * The control protocol: every verb a client may send is one row of its
 * phase's table, naming its frame type, its message, its handler, how many
 * fds it may carry, who may send it and when (broker/srv.h: brk_who,
 * BRK_WHEN_*). ipc_dispatch() unpacks the message and frees it; before the
 * handler runs, brk_verb_check() applies the row's rules alike for every
 * verb: it refuses while bulkheadd shuts down, finds the VM the message's
 * "name" field names and checks the caller may use it, refuses a VM that
 * is busy, and one that is not up (or not down) when the verb needs it.
 * A handler then only does its verb, through the registry (broker/reg.h).
 *
 * To add a verb: a frame type in proto/msgtypes.h, its message in
 * proto/control.proto if none fits, a row below and its handler, and the
 * CLI's command (broker/cli_ctl.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "broker/srv.h"
#include "ipc/log.h"
#include "proto/msgtypes.h"

#define BRKD_VERSION "0.1"

/* ---- the rules every row is checked against ---------------------------------- */

/* The string field "name" of a request, or NULL if its message has none. */
static const char *brk_verb_name(const ProtobufCMessageDescriptor *desc,
				 const void *pb)
{
	const ProtobufCFieldDescriptor *f;

	if (!desc || !pb)
		return NULL;
	f = protobuf_c_message_descriptor_get_field_by_name(desc, "name");
	if (!f || f->type != PROTOBUF_C_TYPE_STRING ||
	    f->label == PROTOBUF_C_LABEL_REPEATED)
		return NULL;
	return *(const char *const *)((const char *)pb + f->offset);
}

static int brk_verb_check_state(struct brk_req *q, const struct ipc_handler *h)
{
	struct brk_rec *rec = q->rec;
	const char *verb = h->name ? h->name : "use";

	if ((h->when & BRK_WHEN_IDLE) && rec->op != BRK_OP_NONE) {
		brk_srv_send_error(q->d, q->c, EBUSY, "VM '%s' is busy: a %s is "
				   "in progress; try again when it is done",
				   rec->name, brk_op_name(rec->op));
		return 1;
	}
	if ((h->when & BRK_WHEN_UP) && !brk_rec_up(rec)) {
		brk_srv_send_error(q->d, q->c, EINVAL, "cannot %s VM '%s': it is "
				   "not running (state %s)%s", verb, rec->name,
				   brk_rec_state(rec),
				   rec->vm ? "" : "; start it first");
		return 1;
	}
	if ((h->when & BRK_WHEN_DOWN) && rec->vm) {
		brk_srv_send_error(q->d, q->c, EBUSY, "cannot %s VM '%s': it is "
				   "already started (state %s)", verb,
				   rec->name, brk_rec_state(rec));
		return 1;
	}
	return 0;
}

/* ipc_phase.check for every table: 0 go on, 1 refused (answered). */
static int brk_verb_check(void *ctx, const struct ipc_handler *h,
			  const void *pb, struct ipc_msg *m)
{
	struct brk_req *q = ctx;
	const char *name;
	char err[384];
	int r;

	(void)m;
	if ((h->when & BRK_WHEN_SERVING) && q->d->reg.shutting_down) {
		brk_srv_send_error(q->d, q->c, ESHUTDOWN, "bulkheadd is shutting "
				   "down");
		return 1;
	}
	if (h->who != BRK_WHO_OWNER)
		return 0;
	name = brk_verb_name(h->desc, pb);
	if (!name) {
		/* A row that names no VM: a bug in the table, not the client. */
		LOG_ERR("verb 0x%04x has no name field to look its VM up by",
			h->type);
		brk_srv_send_error(q->d, q->c, EPROTO, "bulkheadd cannot tell "
				   "which VM this request is about");
		return 1;
	}
	r = brk_reg_lookup(&q->d->reg, &q->c->who, name, &q->rec, err,
			   sizeof(err));
	if (r < 0) {
		brk_srv_send_error(q->d, q->c, -r, "%s", err);
		return 1;
	}
	return brk_verb_check_state(q, h);
}

/* ipc_phase.refuse: say why before the connection closes. */
static void brk_verb_refuse(void *ctx, const struct ipc_msg *m,
			    const char *why)
{
	struct brk_req *q = ctx;

	brk_srv_send_error(q->d, q->c, EPROTO, "message type 0x%04x %s in "
			   "phase '%s'; closing the connection", m->type, why,
			   brk_verbs_phase(q->c->phase)->name);
}

/* ---- the verbs ------------------------------------------------------------------- */

static int brk_verb_hello(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct brk_req *q = ctx;
	const Hello *h = pb;
	HelloReply rep = HELLO_REPLY__INIT;

	(void)m;
	if (h->version != BRK_PROTO_VERSION) {
		brk_srv_client_fail(q->d, q->c, EPROTONOSUPPORT, "this "
				    "bulkheadd speaks protocol version %u, the "
				    "client %u; use a bulkhead CLI from the same "
				    "release", BRK_PROTO_VERSION, h->version);
		return -EPROTO;
	}
	rep.version = BRK_PROTO_VERSION;
	rep.server = "bulkheadd " BRKD_VERSION;
	rep.uid = q->c->who.uid;
	brk_srv_set_phase(q->c, BRK_PHASE_READY);
	brk_srv_send(q->d, q->c, MSG_HELLO_REPLY, &rep.base);
	return 0;
}

static int brk_verb_create(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct brk_req *q = ctx;

	brk_reg_create(&q->d->reg, &q->c->who, pb, m);
	return 0;
}

static int brk_verb_start(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct brk_req *q = ctx;

	(void)pb;
	(void)m;
	brk_reg_start(&q->d->reg, &q->c->who, q->rec);
	return 0;
}

static int brk_verb_pause(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct brk_req *q = ctx;

	(void)pb;
	(void)m;
	brk_reg_control(&q->d->reg, &q->c->who, q->rec, BRK_OP_PAUSE);
	return 0;
}

static int brk_verb_resume(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct brk_req *q = ctx;

	(void)pb;
	(void)m;
	brk_reg_control(&q->d->reg, &q->c->who, q->rec, BRK_OP_RESUME);
	return 0;
}

static int brk_verb_reset(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct brk_req *q = ctx;

	(void)pb;
	(void)m;
	brk_reg_control(&q->d->reg, &q->c->who, q->rec, BRK_OP_RESET);
	return 0;
}

static int brk_verb_power_off(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct brk_req *q = ctx;

	(void)pb;
	(void)m;
	brk_reg_power_off(&q->d->reg, &q->c->who, q->rec, BRK_OP_POWER_OFF);
	return 0;
}

static int brk_verb_destroy(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct brk_req *q = ctx;

	(void)pb;
	(void)m;
	brk_reg_power_off(&q->d->reg, &q->c->who, q->rec, BRK_OP_DESTROY);
	return 0;
}

static int brk_verb_status(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct brk_req *q = ctx;

	(void)pb;
	(void)m;
	brk_reg_status(&q->d->reg, &q->c->who, q->rec);
	return 0;
}

static int brk_verb_list(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct brk_req *q = ctx;

	(void)pb;
	(void)m;
	brk_reg_list(&q->d->reg, &q->c->who);
	return 0;
}

static int brk_verb_stats(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct brk_req *q = ctx;

	(void)pb;
	(void)m;
	brk_reg_stats(&q->d->reg, &q->c->who, q->rec);
	return 0;
}

static int brk_verb_console_attach(void *ctx, const void *pb,
				   struct ipc_msg *m)
{
	struct brk_req *q = ctx;
	const ConsoleAttach *ca = pb;

	(void)m;
	brk_reg_console_attach(&q->d->reg, &q->c->who, q->rec, !ca->no_replay);
	return 0;
}

static int brk_verb_save(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct brk_req *q = ctx;

	brk_reg_save(&q->d->reg, &q->c->who, q->rec, pb, m);
	return 0;
}

static int brk_verb_restore(void *ctx, const void *pb, struct ipc_msg *m)
{
	struct brk_req *q = ctx;

	brk_reg_restore(&q->d->reg, &q->c->who, pb, m);
	return 0;
}

static int brk_verb_console_input(void *ctx, const void *pb,
				  struct ipc_msg *m)
{
	struct brk_req *q = ctx;
	const ConsoleData *cd = pb;

	(void)m;
	brk_reg_console_input(&q->d->reg, &q->c->who, cd->data.data,
			      cd->data.len);
	return 0;
}

static int brk_verb_console_detach(void *ctx, const void *pb,
				   struct ipc_msg *m)
{
	struct brk_req *q = ctx;

	(void)pb;
	(void)m;
	brk_reg_console_detach(&q->d->reg, &q->c->who);
	return 0;
}

/* ---- the tables ------------------------------------------------------------------ */

/* A row: a verb's frame type, name, message, handler, fds, who, when. */
#define BRK_VERB(type_, name_, desc_, fn_, fds_, who_, when_)               \
	{ .type = (type_), .flags = IPC_PERMIT, .name = (name_),            \
	  .desc = &(desc_), .fn = (fn_), .max_fds = (fds_), .who = (who_),  \
	  .when = (when_) }

/* Each VM verb that starts an operation needs the VM idle and bulkheadd
 * serving. */
#define BRK_OPERATION (BRK_WHEN_SERVING | BRK_WHEN_IDLE)

static const struct ipc_handler brk_hello_tab[] = {
	{ .type = MSG_HELLO, .flags = IPC_PERMIT | IPC_ONCE, .name = "hello",
	  .desc = &hello__descriptor, .fn = brk_verb_hello },
};

static const struct ipc_handler brk_ready_tab[] = {
	/* Hello once is enough. */
	{ .type = MSG_HELLO, .name = "hello" },
	/* fds: the image, the initrd, the serial file, the disk */
	BRK_VERB(MSG_CTL_CREATE, "create", create_vm__descriptor,
		 brk_verb_create, 4, BRK_WHO_ANY, BRK_WHEN_SERVING),
	BRK_VERB(MSG_CTL_START, "start", vm_ref__descriptor,
		 brk_verb_start, 0, BRK_WHO_OWNER,
		 BRK_OPERATION | BRK_WHEN_DOWN),
	BRK_VERB(MSG_CTL_PAUSE, "pause", vm_ref__descriptor,
		 brk_verb_pause, 0, BRK_WHO_OWNER,
		 BRK_OPERATION | BRK_WHEN_UP),
	BRK_VERB(MSG_CTL_RESUME, "resume", vm_ref__descriptor,
		 brk_verb_resume, 0, BRK_WHO_OWNER,
		 BRK_OPERATION | BRK_WHEN_UP),
	BRK_VERB(MSG_CTL_RESET, "reset", vm_ref__descriptor,
		 brk_verb_reset, 0, BRK_WHO_OWNER,
		 BRK_OPERATION | BRK_WHEN_UP),
	/* A VM that is off already: poweroff says so, destroy forgets it. */
	BRK_VERB(MSG_CTL_POWEROFF, "power off", vm_ref__descriptor,
		 brk_verb_power_off, 0, BRK_WHO_OWNER, BRK_OPERATION),
	BRK_VERB(MSG_CTL_DESTROY, "destroy", vm_ref__descriptor,
		 brk_verb_destroy, 0, BRK_WHO_OWNER, BRK_OPERATION),
	BRK_VERB(MSG_CTL_STATUS, "see", status_req__descriptor,
		 brk_verb_status, 0, BRK_WHO_OWNER, 0),
	BRK_VERB(MSG_CTL_LIST, "list", list_req__descriptor,
		 brk_verb_list, 0, BRK_WHO_ANY, 0),
	BRK_VERB(MSG_CTL_STATS, "get the stats of", stats_req__descriptor,
		 brk_verb_stats, 0, BRK_WHO_OWNER, 0),
	BRK_VERB(MSG_CTL_CONSOLE_ATTACH, "attach to",
		 console_attach__descriptor, brk_verb_console_attach, 0,
		 BRK_WHO_OWNER, 0),
	/* fds: the save file */
	BRK_VERB(MSG_CTL_SAVE, "save", save_vm__descriptor,
		 brk_verb_save, 1, BRK_WHO_OWNER,
		 BRK_OPERATION | BRK_WHEN_UP),
	/* fds: create's, then the saved state. The VM is named inside
	 * RestoreVm.vm, new or existing: the handler looks it up. */
	BRK_VERB(MSG_CTL_RESTORE, "restore", restore_vm__descriptor,
		 brk_verb_restore, 5, BRK_WHO_ANY, BRK_WHEN_SERVING),
};

static const struct ipc_handler brk_console_tab[] = {
	BRK_VERB(MSG_CTL_CONSOLE_INPUT, "type into", console_data__descriptor,
		 brk_verb_console_input, 0, BRK_WHO_ANY, 0),
	BRK_VERB(MSG_CTL_CONSOLE_DETACH, "detach from",
		 console_detach__descriptor, brk_verb_console_detach, 0,
		 BRK_WHO_ANY, 0),
};

static const struct ipc_phase brk_phases[BRK_NPHASES] = {
	[BRK_PHASE_HELLO] = { "hello", IPC_TAB(brk_hello_tab), brk_verb_check,
			      brk_verb_refuse },
	[BRK_PHASE_READY] = { "ready", IPC_TAB(brk_ready_tab), brk_verb_check,
			      brk_verb_refuse },
	[BRK_PHASE_WAITING] = { "waiting for an answer", NULL, 0,
				brk_verb_check, brk_verb_refuse },
	[BRK_PHASE_CONSOLE] = { "console", IPC_TAB(brk_console_tab),
				brk_verb_check, brk_verb_refuse },
};

const struct ipc_phase *brk_verbs_phase(enum brk_client_phase phase)
{
	return &brk_phases[phase < BRK_NPHASES ? phase : BRK_PHASE_WAITING];
}
