# broker: the VM launcher shared by `bulkhead run` and bulkheadd, and the CLI
broker_lib_SRCS += broker/spawn.c
broker_lib_SRCS += broker/vm.c
cli_SRCS += broker/cli.c
