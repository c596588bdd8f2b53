/* SPDX-License-Identifier: MIT */
/*
 * The VM options `run`, `create` and `restore` share: --mem, --cpus,
 * --cmdline, --initrd, --serial, --disk, --rng, --null-dev. One parser, so
 * that both spell and check them alike.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/cli.h"
#include "broker/control.h"
#include "broker/launch.h"

const struct option cli_vm_long_opts[] = {
	{ "mem", required_argument, NULL, CLI_OPT_MEM },
	{ "cpus", required_argument, NULL, CLI_OPT_CPUS },
	{ "cmdline", required_argument, NULL, CLI_OPT_CMDLINE },
	{ "initrd", required_argument, NULL, CLI_OPT_INITRD },
	{ "serial", required_argument, NULL, CLI_OPT_SERIAL },
	{ "disk", required_argument, NULL, CLI_OPT_DISK },
	{ "rng", no_argument, NULL, CLI_OPT_RNG },
	{ "null-dev", no_argument, NULL, CLI_OPT_NULL_DEV },
	{ NULL, 0, NULL, 0 },
};

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bulkhead: %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'bulkhead %s --help'.\n", cmd);
	return CLI_EXIT_USAGE;
}

int cli_merge_opts(const struct option *own, bool vm, struct option *out,
		   unsigned n)
{
	unsigned k = 0;

	for (const struct option *o = own; o->name; o++) {
		if (k + 1 >= n)
			return -1;
		out[k++] = *o;
	}
	for (const struct option *o = cli_vm_long_opts; vm && o->name; o++) {
		if (k + 1 >= n)
			return -1;
		out[k++] = *o;
	}
	out[k] = (struct option){ NULL, 0, NULL, 0 };
	return 0;
}

static int cli_vm_mem(const char *arg, struct cli_vm_opts *o, const char *cmd)
{
	if (brk_parse_size(arg, &o->mem_size) < 0)
		return cli_usage_error(cmd, "--mem: '%s' is not a size such as "
				       "64M or 1G", arg);
	if (o->mem_size < BRK_MIN_MEM || o->mem_size > BRK_MAX_MEM)
		return cli_usage_error(cmd, "--mem: %s is outside 2M..3G", arg);
	if (o->mem_size % 4096)
		return cli_usage_error(cmd, "--mem: %s is not a multiple of 4K",
				       arg);
	return 0;
}

static int cli_vm_cpus(const char *arg, struct cli_vm_opts *o, const char *cmd)
{
	char *end;
	long n = strtol(arg, &end, 10);

	if (*arg == '\0' || *end || n < 1 || n > BRK_MAX_CPUS)
		return cli_usage_error(cmd, "--cpus: '%s' is not a number from "
				       "1 to %u", arg, BRK_MAX_CPUS);
	o->cpus = (unsigned)n;
	return 0;
}

static int cli_vm_serial(const char *arg, struct cli_vm_opts *o, bool daemon,
			 const char *cmd)
{
	if (strcmp(arg, "null") == 0) {
		o->serial = CLI_SERIAL_NULL;
	} else if (strncmp(arg, "file:", 5) == 0 && arg[5]) {
		o->serial = CLI_SERIAL_FILE;
		o->serial_path = arg + 5;
	} else if (strcmp(arg, "stdio") == 0 && !daemon) {
		o->serial = CLI_SERIAL_STDIO;
	} else if (strcmp(arg, "console") == 0 && daemon) {
		o->serial = CLI_SERIAL_CONSOLE;
	} else if (strcmp(arg, "stdio") == 0) {
		return cli_usage_error(cmd, "--serial stdio is for 'run'; a "
				       "daemon VM's UART is reached with "
				       "'bulkhead console NAME' (--serial "
				       "console, the default)");
	} else {
		return cli_usage_error(cmd, "--serial: '%s' is not %s, null or "
				       "file:PATH", arg,
				       daemon ? "console" : "stdio");
	}
	return 0;
}

static int cli_vm_disk(char *arg, struct cli_vm_opts *o, const char *cmd)
{
	size_t n = strlen(arg);

	if (o->disk)
		return cli_usage_error(cmd, "--disk: only one disk is supported");
	if (n > 3 && strcmp(arg + n - 3, ",ro") == 0) {
		o->disk_ro = true;
		arg[n - 3] = '\0';
	}
	if (!*arg)
		return cli_usage_error(cmd, "--disk: no path given");
	o->disk = arg;
	return 0;
}

int cli_vm_opt(int opt, char *arg, struct cli_vm_opts *o, bool daemon,
	       const char *cmd)
{
	o->any = true;
	switch (opt) {
	case CLI_OPT_MEM:
		return cli_vm_mem(arg, o, cmd);
	case CLI_OPT_CPUS:
		return cli_vm_cpus(arg, o, cmd);
	case CLI_OPT_CMDLINE:
		o->cmdline = arg;
		return 0;
	case CLI_OPT_INITRD:
		o->initrd = arg;
		return 0;
	case CLI_OPT_SERIAL:
		return cli_vm_serial(arg, o, daemon, cmd);
	case CLI_OPT_DISK:
		return cli_vm_disk(arg, o, cmd);
	case CLI_OPT_RNG:
		o->rng = true;
		return 0;
	case CLI_OPT_NULL_DEV:
		o->null_dev = true;
		return 0;
	default:
		return cli_usage_error(cmd, "option %d is not a VM option", opt);
	}
}

/* The Linux boot protocol's header signature, "HdrS" at 0x202. */
#define CLI_BZ_MAGIC_OFF 0x202
#define CLI_BZ_MAGIC "HdrS"
/* Present where KVM runs on PVM, which emulates guest CPL 0 code. */
#define CLI_PVM_MODULE "/sys/module/kvm_pvm"

void cli_note_slow_kernel(int image_fd)
{
	char magic[sizeof(CLI_BZ_MAGIC) - 1];

	if (image_fd < 0 || access(CLI_PVM_MODULE, F_OK) != 0)
		return;
	if (pread(image_fd, magic, sizeof(magic), CLI_BZ_MAGIC_OFF) !=
		    (ssize_t)sizeof(magic) ||
	    memcmp(magic, CLI_BZ_MAGIC, sizeof(magic)) != 0)
		return;
	fprintf(stderr, "bulkhead: note: this host's KVM is KVM on PVM "
		"(kvm_pvm), which emulates guest kernel code instruction by "
		"instruction: a full Linux kernel takes hours to boot here (see "
		"docs/linux-boot.md)\n");
}
