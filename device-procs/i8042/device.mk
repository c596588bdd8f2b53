# i8042: the 8042 keyboard controller and its reset line.
DEVICES += i8042
i8042_CORE := device-procs/i8042/i8042.c
i8042_SRCS := $(i8042_CORE)
i8042_DESC := i8042_desc
