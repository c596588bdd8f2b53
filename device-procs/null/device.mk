# null: a test device whose registers do nothing.
DEVICES += null
null_CORE := device-procs/null/null.c
null_SRCS := $(null_CORE)
null_DESC := null_desc
