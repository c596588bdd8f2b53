# rtc: the MC146818 CMOS real-time clock.
DEVICES += rtc
rtc_CORE := device-procs/rtc/rtc.c
rtc_SRCS := $(rtc_CORE)
rtc_DESC := rtc_desc
