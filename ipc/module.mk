# ipc: channels, framing, fd passing, dispatch tables, access ring
ipc_SRCS += ipc/chan.c
ipc_SRCS += ipc/ring.c
ipc_SRCS += ipc/log.c
