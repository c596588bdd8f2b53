# kdriver: the only code that issues KVM ioctls
kdriver_SRCS += kdriver/kd.c

MODULES += kdriver
kdriver_MODULE := $(kdriver_SRCS)
