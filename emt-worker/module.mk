# emt-worker: bulkhead-worker. worker_lib_SRCS are also linked into tests.
worker_lib_SRCS += emt-worker/loader.c
worker_lib_SRCS += emt-worker/vmstate.c
worker_lib_SRCS += emt-worker/vmsync.c
worker_lib_SRCS += emt-worker/mptable.c
worker_main_SRCS += emt-worker/main.c
worker_main_SRCS += emt-worker/emt.c
worker_main_SRCS += emt-worker/vmapi.c
