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
	MSG_VM_SAVE = 0x010e,          /* VmSave + stream fd, broker -> worker */
	MSG_VM_SAVE_REPLY = 0x010f,    /* VmSaveReply, answer */

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

	/* CLI <-> broker (proto/control.proto, docs/broker.md) */
	MSG_HELLO = 0x0300,            /* Hello */
	MSG_HELLO_REPLY = 0x0301,      /* HelloReply */
	MSG_ERROR_REPLY = 0x0303,      /* ErrorReply, answer to anything */
	MSG_CTL_CREATE = 0x0304,       /* CreateVm + fds */
	MSG_CTL_VM_INFO = 0x0305,      /* VmInfoReply: create, op, status */
	MSG_CTL_START = 0x0306,        /* VmRef: launch its processes */
	MSG_CTL_STATUS = 0x0308,       /* StatusReq */
	MSG_CTL_LIST = 0x030a,         /* ListReq */
	MSG_CTL_LIST_REPLY = 0x030b,   /* ListReply */
	MSG_CTL_STATS = 0x030c,        /* StatsReq */
	MSG_CTL_STATS_REPLY = 0x030d,  /* StatsReply */
	MSG_CTL_CONSOLE_ATTACH = 0x030e,   /* ConsoleAttach */
	MSG_CTL_CONSOLE_ATTACHED = 0x030f, /* ConsoleAttached */
	MSG_CTL_CONSOLE_INPUT = 0x0310,    /* ConsoleData, client -> broker */
	MSG_CTL_CONSOLE_OUTPUT = 0x0312,   /* ConsoleData, broker event */
	MSG_CTL_CONSOLE_DETACH = 0x0314,   /* ConsoleDetach */
	MSG_CTL_CONSOLE_DETACHED = 0x0315, /* ConsoleDetached */
	MSG_CTL_CONSOLE_END = 0x0316,      /* ConsoleEnd, broker event */
	MSG_CTL_SAVE = 0x0318,             /* SaveVm + the file's fd */
	MSG_CTL_SAVE_REPLY = 0x0319,       /* SaveReply */
	MSG_CTL_RESTORE = 0x031a,          /* RestoreVm + fds; VmInfoReply */
	MSG_CTL_PAUSE = 0x031c,            /* VmRef; VmInfoReply */
	MSG_CTL_RESUME = 0x031e,           /* VmRef; VmInfoReply */
	MSG_CTL_RESET = 0x0320,            /* VmRef; VmInfoReply */
	MSG_CTL_POWEROFF = 0x0322,         /* VmRef; VmInfoReply when it is OFF */
	MSG_CTL_DESTROY = 0x0324,          /* VmRef; VmInfoReply, DESTROYED */
};

#endif
