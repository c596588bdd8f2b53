/* SPDX-License-Identifier: MIT */
/*
 * The VM options `run`, `create` and `restore` share: --mem, --cpus,
 * --cmdline, --initrd, --serial, and one option per optional device of
 * the manifest (--disk, --rng, --null-dev). One parser, so that both spell
 * and check them alike.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/cli.h"
#include "broker/control.h"
#include "broker/launch.h"

static const struct option cli_vm_long_opts[] = {
	{ "mem", required_argument, NULL, CLI_OPT_MEM },
	{ "cpus", required_argument, NULL, CLI_OPT_CPUS },
	{ "cmdline", required_argument, NULL, CLI_OPT_CMDLINE },
	{ "initrd", required_argument, NULL, CLI_OPT_INITRD },
	{ "serial", required_argument, NULL, CLI_OPT_SERIAL },
	{ NULL, 0, NULL, 0 },
};

_Static_assert(CLI_MAX_DEVS == BRK_MAX_REQ_DEVICES,
	       "the CLI and the broker disagree on optional devices per VM");

void cli_vm_opts_init(struct cli_vm_opts *o)
{
	memset(o, 0, sizeof(*o));
	dev_tally_init(&o->tally);
}

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
	for (unsigned i = 0; vm && i < dev_nmanifests; i++) {
		const struct dev_manifest *m = dev_manifests[i];

		if (!m->option)
			continue;
		if (k + 1 >= n)
			return -1;
		out[k++] = (struct option){ m->option, m->option_arg ?
					    required_argument : no_argument,
					    NULL, CLI_OPT_DEV + (int)i };
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

/* A device's option: --disk PATH[,ro] (a backend file), --rng (a flag). */
static int cli_vm_dev(const struct dev_manifest *k, char *arg,
		      struct cli_vm_opts *o, const char *cmd)
{
	struct cli_dev_opt *d = &o->devs[o->ndevs];
	char why[128];

	if (o->ndevs >= CLI_MAX_DEVS)
		return cli_usage_error(cmd, "--%s: at most %u optional devices",
				       k->option, CLI_MAX_DEVS);
	if (dev_tally_add(&o->tally, k, why, sizeof(why)) < 0)
		return cli_usage_error(cmd, "%s", why);
	*d = (struct cli_dev_opt){ .k = k };
	if (k->option_arg) {
		size_t n = strlen(arg);

		if (n > 3 && strcmp(arg + n - 3, ",ro") == 0) {
			d->ro = true;
			arg[n - 3] = '\0';
		}
		if (!*arg)
			return cli_usage_error(cmd, "--%s: no path given",
					       k->option);
		d->path = arg;
	}
	o->ndevs++;
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
	default:
		if (opt >= CLI_OPT_DEV && opt < CLI_OPT_DEV + (int)dev_nmanifests &&
		    dev_manifests[opt - CLI_OPT_DEV]->option)
			return cli_vm_dev(dev_manifests[opt - CLI_OPT_DEV], arg, o,
					  cmd);
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
