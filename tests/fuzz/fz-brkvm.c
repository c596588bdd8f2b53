/* SPDX-License-Identifier: MIT */
/*
 * The broker's side of the worker channel under fuzzing: frames from a
 * hostile worker (WorkerReady, VmExited, VmControlReply, VmStats,
 * VmStateChanged, VmRuntimeError, and anything else), through ipc_send, a
 * real SOCK_SEQPACKET pair and brk_vm_worker_recv() (broker/vm.c), which
 * receives, refuses fds and dispatches through the broker's worker table,
 * as `bulkhead run` does.
 *
 * Input (fuzzlib.h, frames): the selector byte is unused; then frames
 * until the channel closes. Oracle: no crash or leak; what the broker
 * keeps of the worker's strings is bounded and terminated.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/launch.h"
#include "proto/msgtypes.h"
#include "tests/fuzz/fuzzlib.h"

static const uint16_t fz_brk_types[] = {
	MSG_WORKER_READY, MSG_VM_EXITED, MSG_VM_CONTROL_REPLY,
	MSG_VM_STATS_REPLY, MSG_VM_STATE, MSG_VM_RUNTIME_ERROR,
	MSG_VM_SAVE_REPLY, MSG_WORKER_INIT,
};

int fz_broker_dispatch(const uint8_t *data, size_t size)
{
	static struct ipc_msg *msg;
	static int sv[2] = { -1, -1 };
	struct brk_vm *vm;
	struct fz_frame f;
	struct fz_in in;
	unsigned nframes = 0;
	bool rx_open;
	int delta;

	fz_quiet();
	if (!msg) {
		msg = malloc(sizeof(*msg));
		if (!msg)
			abort();
	}
	fz_in_init(&in, data, size);
	(void)fz_u8(&in);
	fz_pair_open(sv);
	fz_fd_mark();
	/* As brk_vm_launch leaves it once the worker has its WorkerInit. */
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		abort();
	vm->worker.pidfd = -1;
	snprintf(vm->state, sizeof(vm->state), "STARTING");
	ipc_chan_init(&vm->chan, sv[1], "worker");

	while (nframes < FZ_FRAMES_MAX && vm->chan.fd >= 0 &&
	       fz_frame_next(&in, fz_brk_types,
			     sizeof(fz_brk_types) / sizeof(fz_brk_types[0]),
			     &f)) {
		if (fz_frame_send(sv[0], &f) < 0)
			continue;
		nframes++;
		if (brk_vm_worker_recv(vm, msg) < 0)
			break;
		fz_quiet();
	}
	FZ_CHECK(memchr(vm->state, '\0', sizeof(vm->state)) &&
		 memchr(vm->end_id, '\0', sizeof(vm->end_id)) &&
		 memchr(vm->end_msg, '\0', sizeof(vm->end_msg)) &&
		 memchr(vm->rt_msg, '\0', sizeof(vm->rt_msg)) &&
		 memchr(vm->counters, '\0', sizeof(vm->counters)),
		 "a string the broker kept is not terminated");

	rx_open = vm->chan.fd >= 0;
	vm->chan.fd = -1;
	free(vm);
	delta = fz_pair_end(sv, rx_open);
	fz_fd_check("broker", delta);
	return 0;
}
