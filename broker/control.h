/* SPDX-License-Identifier: MIT */
/*
 * broker/control.h: what the bulkhead CLI and bulkheadd agree on about
 * their protocol beyond its messages (proto/control.proto) and frame types
 * (proto/msgtypes.h): its version, where the socket is, and how a VM may
 * be named, and how sizes are written. broker/control.c.
 */
#ifndef BULKHEAD_CONTROL_H
#define BULKHEAD_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

/* 2: one frame type per VM verb (start, pause, ...), VmRef. */
#define BRK_PROTO_VERSION 3u
#define BRK_DEFAULT_SOCKET "/run/bulkhead/bulkhead.sock"
#define BRK_SOCKET_ENV "BULKHEAD_SOCKET"
#define BRK_NAME_MAX 32u

/* Does name follow [A-Za-z0-9_.-]{1,32}? */
bool brk_name_valid(const char *name);
/* Parse a memory size such as 64M, 1G, 65536K or 4194304 (-EINVAL,
 * -ERANGE). */
int brk_parse_size(const char *s, uint64_t *out);

#endif
