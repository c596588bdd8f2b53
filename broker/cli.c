/* SPDX-License-Identifier: MIT */
/*
 * bulkhead: the command-line interface.
 *
 *   bulkhead run [VM options] IMAGE
 *
 * `run` needs no daemon: this process plays the broker for one VM. It opens
 * every file with the user's own rights and hands the fds on.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/brk.h"
#include "ipc/log.h"
#include "kdriver/kd.h"

#define CLI_VERSION "0.1"

static void cli_usage(FILE *f)
{
	fprintf(f,
"usage: bulkhead run [VM options] IMAGE\n"
"\n"
"Run one VM in the foreground: the worker (which runs the vCPUs) and every\n"
"device run in processes of their own. IMAGE is a multiboot (v1) ELF kernel\n"
"or a raw real-mode boot sector / flat binary; the format is detected.\n"
"\n"
"VM options:\n"
"  --mem SIZE         guest RAM, e.g. 64M or 1G (default 64M, 2M..3G)\n"
"  --cpus N           virtual CPUs, 1..16 (default 1)\n"
"  --cmdline STRING   kernel command line (multiboot)\n"
"  --initrd FILE      passed as multiboot module 0\n"
"  --serial MODE      the UART's backend: stdio (default), null, file:PATH\n"
"  --null-dev         add the null device (ports 0x510-0x517) in its own\n"
"                     process; for benchmarks\n"
"  -v, --verbose      report exit counters when the VM ends\n"
"  -h, --help         this text\n"
"\n"
"Exit status: 0 when the guest powered off, (v << 1) | 1 when it wrote v to\n"
"the debug-exit port 0xf4, and an even code when Bulkhead failed:\n"
"  2 bad arguments, 4 a file could not be opened, 6 /dev/kvm is missing or\n"
"  lacks a capability, 8 the image was refused, 10 a device process died or\n"
"  broke protocol, 12 the guest faulted, 14 internal error.\n");
}

static int cli_open(const char *what, const char *path, int flags, int *out)
{
	int fd = open(path, flags | O_CLOEXEC, 0644);

	if (fd < 0) {
		fprintf(stderr, "bulkhead: cannot open %s '%s': %s\n", what, path,
			strerror(errno));
		return BRK_EXIT_NOFILE;
	}
	*out = fd;
	return 0;
}

enum { OPT_MEM = 256, OPT_CPUS, OPT_CMDLINE, OPT_INITRD, OPT_SERIAL,
       OPT_NULL_DEV };

static const struct option cli_run_opts[] = {
	{ "mem", required_argument, NULL, OPT_MEM },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "serial", required_argument, NULL, OPT_SERIAL },
	{ "null-dev", no_argument, NULL, OPT_NULL_DEV },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

__attribute__((format(printf, 1, 2)))
static int cli_bad(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bulkhead: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'bulkhead run --help'.\n");
	return BRK_EXIT_USAGE;
}

static int cli_run(int argc, char **argv)
{
	struct brk_vm_config cfg = {
		.mem_size = BRK_DEFAULT_MEM, .cpus = 1, .image_fd = -1,
		.initrd_fd = -1, .serial = BRK_SERIAL_STDIO, .serial_out_fd = -1,
	};
	const char *initrd = NULL, *serial_path = NULL;
	struct brk_vm *vm = NULL;
	bool verbose = false;
	char err[512] = "";
	int opt, r, kvm_fd = -1;

	optind = 1;
	opterr = 0;  /* we word the errors ourselves */
	while ((opt = getopt_long(argc, argv, "+:vh", cli_run_opts, NULL)) != -1) {
		switch (opt) {
		case OPT_MEM:
			if (brk_parse_size(optarg, &cfg.mem_size) < 0)
				return cli_bad("--mem: '%s' is not a size such as "
					       "64M or 1G", optarg);
			if (cfg.mem_size < BRK_MIN_MEM || cfg.mem_size > BRK_MAX_MEM)
				return cli_bad("--mem: %s is outside 2M..3G", optarg);
			if (cfg.mem_size % 4096)
				return cli_bad("--mem: %s is not a multiple of 4K",
					       optarg);
			break;
		case OPT_CPUS: {
			char *end;
			long n = strtol(optarg, &end, 10);

			if (*optarg == '\0' || *end || n < 1 || n > BRK_MAX_CPUS)
				return cli_bad("--cpus: '%s' is not a number from "
					       "1 to 16", optarg);
			cfg.cpus = (unsigned)n;
			break;
		}
		case OPT_CMDLINE:
			cfg.cmdline = optarg;
			break;
		case OPT_INITRD:
			initrd = optarg;
			break;
		case OPT_SERIAL:
			if (strcmp(optarg, "stdio") == 0) {
				cfg.serial = BRK_SERIAL_STDIO;
			} else if (strcmp(optarg, "null") == 0) {
				cfg.serial = BRK_SERIAL_NULL;
			} else if (strncmp(optarg, "file:", 5) == 0 && optarg[5]) {
				cfg.serial = BRK_SERIAL_FILE;
				serial_path = optarg + 5;
			} else {
				return cli_bad("--serial: '%s' is not stdio, null "
					       "or file:PATH", optarg);
			}
			break;
		case OPT_NULL_DEV:
			cfg.null_dev = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			cli_usage(stdout);
			return 0;
		case ':':
			return cli_bad("run: option '%s' needs a value",
				       argv[optind - 1]);
		default:
			return cli_bad("run: unknown option '%s'",
				       argv[optind - 1]);
		}
	}
	if (optind != argc - 1) {
		if (optind >= argc)
			return cli_bad("run: no IMAGE given");
		return cli_bad("run: unexpected argument '%s' after IMAGE",
			       argv[optind + 1]);
	}
	if (verbose)
		ipc_log_init("bulkhead", IPC_LOG_DEBUG);

	r = cli_open("image", argv[optind], O_RDONLY, &cfg.image_fd);
	if (!r && initrd)
		r = cli_open("initrd", initrd, O_RDONLY, &cfg.initrd_fd);
	if (!r && serial_path)
		r = cli_open("serial output file", serial_path,
			     O_WRONLY | O_CREAT | O_APPEND, &cfg.serial_out_fd);
	if (r)
		goto out;
	kvm_fd = kd_sys_open(NULL);
	if (kvm_fd < 0) {
		fprintf(stderr, "bulkhead: cannot open /dev/kvm: %s (is KVM "
			"enabled, and may you use it?)\n", strerror(-kvm_fd));
		r = BRK_EXIT_NOKVM;
		goto out;
	}
	r = brk_vm_launch(kvm_fd, &cfg, &vm, err, sizeof(err));
	if (r) {
		fprintf(stderr, "bulkhead: cannot start the VM: %s\n", err);
		goto out;
	}
	/* The worker has its own copies now. */
	close(kvm_fd);
	kvm_fd = -1;
	r = brk_vm_run_foreground(vm, verbose, err, sizeof(err));
	if (r && !(r & 1))
		fprintf(stderr, "bulkhead: VM failed: %s\n", err);
	brk_vm_free(vm);
out:
	if (kvm_fd >= 0)
		close(kvm_fd);
	if (cfg.image_fd >= 0)
		close(cfg.image_fd);
	if (cfg.initrd_fd >= 0)
		close(cfg.initrd_fd);
	if (cfg.serial_out_fd >= 0)
		close(cfg.serial_out_fd);
	return r;
}

int main(int argc, char **argv)
{
	ipc_log_init("bulkhead", IPC_LOG_INFO);
	if (argc < 2) {
		cli_usage(stderr);
		return BRK_EXIT_USAGE;
	}
	if (strcmp(argv[1], "run") == 0)
		return cli_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		cli_usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("bulkhead %s\n", CLI_VERSION);
		return 0;
	}
	fprintf(stderr, "bulkhead: unknown command '%s'\n", argv[1]);
	cli_usage(stderr);
	return BRK_EXIT_USAGE;
}
