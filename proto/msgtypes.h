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
	MSG_POWER_OFF = 0x0102,        /* PowerOffReq, broker -> worker */
	MSG_VM_EXITED = 0x0104,        /* VmExited, worker -> broker (event) */

	/* device bootstrap and worker <-> device */
	MSG_DEV_INIT = 0x0200,         /* DevInit, broker -> device */
	MSG_DEV_REGISTER = 0x0202,     /* DevRegister, device -> worker */
	MSG_DEV_REGISTERED = 0x0203,   /* DevRegistered, answer */
	MSG_DEV_GUEST_EXIT = 0x0204,   /* DevGuestExit, device -> worker */
	MSG_DEV_DESTRUCT = 0x0206,     /* DevDestruct, worker -> device */

	/* CLI <-> broker */
	MSG_HELLO = 0x0300,            /* Hello */
	MSG_HELLO_REPLY = 0x0301,      /* HelloReply */
	MSG_ERROR_REPLY = 0x0303,      /* ErrorReply, answer to anything */
};

#endif
