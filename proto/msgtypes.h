/* SPDX-License-Identifier: MIT */
/*
 * Every IPC frame type, in one place. Requests are even, answers odd.
 * Ranges: 0x01xx broker<->worker, 0x02xx worker<->device and the device
 * bootstrap, 0x03xx CLI<->broker.
 */
#ifndef BULKHEAD_MSGTYPES_H
#define BULKHEAD_MSGTYPES_H

enum bh_msg_type {
	/* broker <-> worker */
	MSG_WORKER_INIT = 0x0100,      /* WorkerInit, broker -> worker */
	MSG_WORKER_READY = 0x0101,     /* WorkerReady, answer */
	MSG_VM_EXITED = 0x0104,        /* VmExited, worker -> broker (event) */
	MSG_VM_CONTROL = 0x0106,       /* VmControl, broker -> worker */
	MSG_VM_CONTROL_REPLY = 0x0107, /* VmControlReply, answer */
	MSG_VM_STATS = 0x0108,         /* VmStatsReq, broker -> worker */
	MSG_VM_STATS_REPLY = 0x0109,   /* VmStats, answer */
	MSG_VM_STATE = 0x010a,         /* VmStateChanged, worker event */
	MSG_VM_RUNTIME_ERROR = 0x010c, /* VmRuntimeError, worker event */

	/* device bootstrap and worker <-> device */
	MSG_DEV_INIT = 0x0200,         /* DevInit, broker -> device */
	MSG_DEV_REGISTER = 0x0202,     /* DevRegister, device -> worker */
	MSG_DEV_REGISTERED = 0x0203,   /* DevRegistered, answer */
	MSG_DEV_GUEST_EXIT = 0x0204,   /* DevGuestExit, device -> worker */
	MSG_DEV_DESTRUCT = 0x0206,     /* DevDestruct, worker -> device */
	MSG_DEV_DESTRUCT_DONE = 0x0207, /* DevDestructDone, answer */
	MSG_DEV_NOTIFY = 0x0208,       /* DevNotify, worker -> device */
	MSG_DEV_NOTIFY_DONE = 0x0209,  /* DevNotifyDone, answer */
	MSG_DEV_REQUEST_RESET = 0x020a,    /* DevRequestReset, device event */
	MSG_DEV_REQUEST_POWEROFF = 0x020c, /* DevRequestPowerOff, device event */
	MSG_DEV_SAVE = 0x020e,         /* DevSaveReq, worker -> device */
	MSG_DEV_SAVE_DATA = 0x020f,    /* DevStateData, answer */
	MSG_DEV_LOAD = 0x0210,         /* DevStateData, worker -> device */
	MSG_DEV_LOAD_DONE = 0x0211,    /* DevStateData (status only), answer */

	/* CLI <-> broker */
	MSG_HELLO = 0x0300,            /* Hello */
	MSG_HELLO_REPLY = 0x0301,      /* HelloReply */
	MSG_ERROR_REPLY = 0x0303,      /* ErrorReply, answer to anything */
};

#endif
