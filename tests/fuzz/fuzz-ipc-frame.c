/* SPDX-License-Identifier: MIT */
/* Fuzz the IPC frame decoder: ipc_recv, ipc_msg_unpack, ipc_dispatch. */
#include "tests/fuzz/fuzzlib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_ipc_frame_run(data, size);
}
