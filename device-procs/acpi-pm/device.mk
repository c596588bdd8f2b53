# acpi-pm: the ACPI power-management registers and the power button.
DEVICES += acpi-pm
acpi-pm_CORE := device-procs/acpi-pm/acpipm.c
acpi-pm_SRCS := $(acpi-pm_CORE)
acpi-pm_DESC := acpipm_desc
