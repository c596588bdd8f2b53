# uart: the 16550A UART on COM1, the serial console.
DEVICES += uart
uart_CORE := device-procs/uart/uart.c
uart_SRCS := $(uart_CORE)
uart_DESC := uart_desc
