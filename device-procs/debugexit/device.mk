# debugexit: the debug-exit port (QEMU's isa-debug-exit convention).
DEVICES += debugexit
debugexit_CORE := device-procs/debugexit/debugexit.c
debugexit_SRCS := $(debugexit_CORE)
debugexit_DESC := debugexit_desc
