/* SPDX-License-Identifier: MIT */
/*
 * bulkhead: the command-line interface.
 *
 *   bulkhead run [VM options] IMAGE
 *   bulkhead [--socket PATH] [--json] COMMAND ...   (broker/cli_ctl.c)
 *
 * `run` needs no daemon: this process plays the broker for one VM. The
 * other commands talk to bulkheadd. Either way every file is opened with the
 * user's own rights and the fds are handed on.
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
"       bulkhead run --restore FILE [VM options] [IMAGE]\n"
"       bulkhead [--socket PATH] [--json] COMMAND [options] [NAME] ...\n"
"\n"
"Run one VM in the foreground: the worker (which runs the vCPUs) and every\n"
"device run in processes of their own. IMAGE is a multiboot (v1) ELF kernel\n"
"or a raw real-mode boot sector / flat binary; the format is detected.\n"
"Every virtio-mmio device is announced on the guest's command line as\n"
"virtio_mmio.device=<size>@<base>:<irq>, after --cmdline.\n"
"\n"
"VM options:\n"
"  --mem SIZE         guest RAM, e.g. 64M or 1G (default 64M, 2M..3G)\n"
"  --cpus N           virtual CPUs, 1..16 (default 1)\n"
"  --cmdline STRING   kernel command line (multiboot)\n"
"  --initrd FILE      passed as multiboot module 0\n"
"  --serial MODE      the UART's backend: stdio (run's default), null,\n"
"                     file:PATH, console (create's default)\n"
"  --disk PATH[,ro]   a virtio-blk disk on the raw image PATH (,ro: the\n"
"                     guest cannot write it)\n"
"  --rng              a virtio-rng entropy device\n"
"  --null-dev         add the null device (ports 0x510-0x517) in its own\n"
"                     process; for benchmarks\n"
"  --restore FILE     (run) resume the VM saved in FILE (bulkhead save)\n"
"                     instead of booting IMAGE, which may be left out; the\n"
"                     VM options must match the saved VM's (RAM, vCPUs,\n"
"                     devices: --disk, --rng, --null-dev)\n"
"  -v, --verbose      (run) report exit counters when the VM ends\n"
"  -h, --help         this text\n"
"\n"
"Exit status of run: 0 when the guest powered off, (v << 1) | 1 when it\n"
"wrote v to the debug-exit port 0xf4, and an even code when Bulkhead failed:\n"
"  2 bad arguments, 4 a file could not be opened, 6 /dev/kvm is missing or\n"
"  lacks a capability, 8 the image or the saved state was refused (the\n"
"  message names the unit and stream offset, or the option that differs),\n"
"  10 a device process died or broke protocol, 12 the guest faulted,\n"
"  14 internal error.\n"
"\n"
"Commands served by the broker, bulkheadd (NAME may be UID/NAME for root):\n"
"  create NAME [VM options] IMAGE   record a VM (state CREATED)\n"
"  start NAME                       launch its processes; RUNNING\n"
"  pause NAME | resume NAME | reset NAME\n"
"  poweroff NAME                    power off; the VM stays, OFF\n"
"  destroy NAME                     power off if needed and forget it\n"
"  status NAME | list | stats NAME  tables, or JSON with --json\n"
"  console [--no-replay] NAME       attach to the UART (Ctrl-] detaches)\n"
"  save [--keep-running] [--live] [--max-downtime MS] NAME FILE\n"
"                                   save the VM's state into FILE, then\n"
"                                   power it off (or let it run on); --live\n"
"                                   copies RAM while the guest runs, then\n"
"                                   stops it for a final pass with a budget\n"
"                                   of MS (default 250)\n"
"  restore NAME FILE [VM options] [IMAGE]\n"
"                                   run a VM from FILE: a new VM NAME with\n"
"                                   these options (as create; they must\n"
"                                   match the saved VM), or without options\n"
"                                   the existing VM NAME, OFF or CREATED\n"
"\n"
"  --socket PATH      bulkheadd's socket (default $%s, else %s)\n"
"  --json             print JSON on stdout (errors too, as {\"error\": ...})\n"
"\n"
"Exit status of these: 0 done, 1 refused or failed (the message says why),\n"
"2 bad arguments, 3 bulkheadd cannot be reached, 4 a file cannot be opened.\n",
		BRK_SOCKET_ENV, BRK_DEFAULT_SOCKET);
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
       OPT_NULL_DEV, OPT_DISK, OPT_RNG, OPT_RESTORE };

static const struct option cli_run_opts[] = {
	{ "mem", required_argument, NULL, OPT_MEM },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "serial", required_argument, NULL, OPT_SERIAL },
	{ "null-dev", no_argument, NULL, OPT_NULL_DEV },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "rng", no_argument, NULL, OPT_RNG },
	{ "restore", required_argument, NULL, OPT_RESTORE },
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
		.disk_fd = -1, .restore_fd = -1,
	};
	const char *initrd = NULL, *serial_path = NULL, *disk = NULL;
	const char *restore = NULL;
	struct brk_vm *vm = NULL;
	bool verbose = false;
	char err[512] = "";
	int opt, r, kvm_fd = -1;

	optind = 0;  /* a fresh scan of this argv */
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
		case OPT_DISK: {
			size_t n = strlen(optarg);

			if (disk)
				return cli_bad("--disk: only one disk is supported");
			if (n > 3 && strcmp(optarg + n - 3, ",ro") == 0) {
				cfg.disk_ro = true;
				optarg[n - 3] = '\0';
			}
			if (!*optarg)
				return cli_bad("--disk: no path given");
			disk = optarg;
			break;
		}
		case OPT_RNG:
			cfg.rng = true;
			break;
		case OPT_RESTORE:
			restore = optarg;
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
	if (restore && optind == argc) {
		/* The image comes with the saved state. */
	} else if (optind != argc - 1) {
		if (optind >= argc)
			return cli_bad("run: no IMAGE given");
		return cli_bad("run: unexpected argument '%s' after IMAGE",
			       argv[optind + 1]);
	}
	if (verbose)
		ipc_log_init("bulkhead", IPC_LOG_DEBUG);

	r = optind < argc ? cli_open("image", argv[optind], O_RDONLY,
				     &cfg.image_fd) : 0;
	if (!r && disk)
		r = cli_open("disk image", disk, cfg.disk_ro ? O_RDONLY : O_RDWR,
			     &cfg.disk_fd);
	if (!r && restore)
		r = cli_open("saved state", restore, O_RDONLY, &cfg.restore_fd);
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
	if (r && !(r & 1) && err[0])
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
	if (cfg.disk_fd >= 0)
		close(cfg.disk_fd);
	if (cfg.restore_fd >= 0)
		close(cfg.restore_fd);
	return r;
}

enum { OPT_G_SOCKET = 400, OPT_G_JSON, OPT_G_VERSION };

static const struct option cli_global_opts[] = {
	{ "socket", required_argument, NULL, OPT_G_SOCKET },
	{ "json", no_argument, NULL, OPT_G_JSON },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_G_VERSION },
	{ NULL, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
	const char *socket_path = getenv(BRK_SOCKET_ENV);
	bool json = false;
	const char *cmd;
	int opt;

	ipc_log_init("bulkhead", IPC_LOG_INFO);
	if (socket_path && !*socket_path)
		socket_path = NULL;
	opterr = 0;
	/* Options before the command; "+" stops at the command. */
	while ((opt = getopt_long(argc, argv, "+:h", cli_global_opts,
				  NULL)) != -1) {
		switch (opt) {
		case OPT_G_SOCKET:
			socket_path = optarg;
			break;
		case OPT_G_JSON:
			json = true;
			break;
		case 'h':
			cli_usage(stdout);
			return 0;
		case OPT_G_VERSION:
			printf("bulkhead %s (control protocol %u)\n", CLI_VERSION,
			       BRK_PROTO_VERSION);
			return 0;
		case ':':
			fprintf(stderr, "bulkhead: option '%s' needs a value\n",
				argv[optind - 1]);
			cli_usage(stderr);
			return BRK_EXIT_USAGE;
		default:
			fprintf(stderr, "bulkhead: unknown option '%s'\n",
				argv[optind - 1]);
			cli_usage(stderr);
			return BRK_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		cli_usage(stderr);
		return BRK_EXIT_USAGE;
	}
	cmd = argv[optind];
	if (strcmp(cmd, "run") == 0)
		return cli_run(argc - optind, argv + optind);
	if (cli_ctl_is_command(cmd))
		return cli_ctl_main(socket_path, json, argc - optind,
				    argv + optind);
	if (strcmp(cmd, "help") == 0) {
		cli_usage(stdout);
		return 0;
	}
	fprintf(stderr, "bulkhead: unknown command '%s'\n", cmd);
	cli_usage(stderr);
	return BRK_EXIT_USAGE;
}
