# ipc: channels, framing, fd passing, dispatch tables, access ring
ipc_SRCS += ipc/chan.c
ipc_SRCS += ipc/ring.c
ipc_SRCS += ipc/log.c

# The module graph (tests/tools/modgraph.sh): each module, its sources.
MODULES += ipc
ipc_MODULE := $(ipc_SRCS)
