/* SPDX-License-Identifier: MIT */
/*
 * bulkhead run [VM options] IMAGE
 * bulkhead run --restore FILE [VM options] [IMAGE]
 *
 * One VM in the foreground, no daemon: this process plays the broker for
 * it (broker/launch.h). Its exit status is the guest's or the VMM's (enum
 * brk_exit).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "broker/cli.h"
#include "broker/launch.h"
#include "ipc/log.h"
#include "kdriver/kd.h"

enum { OPT_RESTORE = CLI_OPT_OWN };

static const struct option cli_run_own_opts[] = {
	{ "restore", required_argument, NULL, OPT_RESTORE },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* What `run` was asked for. */
struct cli_run_args {
	struct cli_vm_opts vm;
	const char *image;
	const char *restore;
	bool verbose;
};

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

/* Options and arguments; 0, -1 after --help, or a brk_exit code. */
static int cli_run_parse(int argc, char **argv, struct cli_run_args *a)
{
	struct option opts[32];
	int opt, r;

	if (cli_merge_opts(cli_run_own_opts, true, opts, 32) < 0)
		return BRK_EXIT_USAGE;
	optind = 0;  /* a fresh scan of this argv */
	opterr = 0;  /* we word the errors ourselves */
	while ((opt = getopt_long(argc, argv, "+:vh", opts, NULL)) != -1) {
		if (opt >= CLI_OPT_MEM && opt <= CLI_OPT_VM_LAST) {
			r = cli_vm_opt(opt, optarg, &a->vm, false, "run");
			if (r)
				return BRK_EXIT_USAGE;
			continue;
		}
		switch (opt) {
		case OPT_RESTORE:
			a->restore = optarg;
			break;
		case 'v':
			a->verbose = true;
			break;
		case 'h':
			cli_usage(stdout);
			return -1;
		case ':':
			return cli_usage_error("run", "option '%s' needs a value",
					       argv[optind - 1]);
		default:
			return cli_usage_error("run", "unknown option '%s'",
					       argv[optind - 1]);
		}
	}
	if (a->restore && optind == argc)
		return 0;  /* the image comes with the saved state */
	if (optind >= argc)
		return cli_usage_error("run", "no IMAGE given");
	if (optind != argc - 1)
		return cli_usage_error("run", "unexpected argument '%s' after "
				       "IMAGE", argv[optind + 1]);
	a->image = argv[optind];
	return 0;
}

/* Open every file of the configuration with our own rights. */
static int cli_run_open(const struct cli_run_args *a,
			struct brk_vm_config *cfg)
{
	const struct cli_vm_opts *o = &a->vm;
	int r = a->image ? cli_open("image", a->image, O_RDONLY,
				    &cfg->image_fd) : 0;

	for (unsigned i = 0; i < o->ndevs && !r; i++) {
		struct brk_dev_req *d = &cfg->devs[cfg->ndevs++];

		*d = (struct brk_dev_req){ .k = o->devs[i].k, .fd = -1,
					   .ro = o->devs[i].ro };
		if (o->devs[i].path)
			r = cli_open("disk image", o->devs[i].path,
				     d->ro ? O_RDONLY : O_RDWR, &d->fd);
	}
	if (!r && a->restore)
		r = cli_open("saved state", a->restore, O_RDONLY,
			     &cfg->restore_fd);
	if (!r && o->initrd)
		r = cli_open("initrd", o->initrd, O_RDONLY, &cfg->initrd_fd);
	if (!r && o->serial_path)
		r = cli_open("serial output file", o->serial_path,
			     O_WRONLY | O_CREAT | O_APPEND, &cfg->serial_out_fd);
	return r;
}

static void cli_run_close(struct brk_vm_config *cfg)
{
	int *fds[] = { &cfg->image_fd, &cfg->initrd_fd, &cfg->serial_out_fd,
		       &cfg->restore_fd };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	for (unsigned i = 0; i < cfg->ndevs; i++) {
		if (cfg->devs[i].fd >= 0)
			close(cfg->devs[i].fd);
		cfg->devs[i].fd = -1;
	}
	cfg->ndevs = 0;
}

static enum brk_serial cli_run_serial(enum cli_serial s)
{
	switch (s) {
	case CLI_SERIAL_NULL: return BRK_SERIAL_NULL;
	case CLI_SERIAL_FILE: return BRK_SERIAL_FILE;
	default: return BRK_SERIAL_STDIO;
	}
}

/* Launch the VM and supervise it until it ends. */
static int cli_run_vm(const struct brk_vm_config *cfg, bool verbose)
{
	struct brk_vm *vm = NULL;
	char err[512] = "";
	int kvm_fd, r;

	kvm_fd = kd_sys_open(NULL);
	if (kvm_fd < 0) {
		fprintf(stderr, "bulkhead: cannot open /dev/kvm: %s (is KVM "
			"enabled, and may you use it?)\n", strerror(-kvm_fd));
		return BRK_EXIT_NOKVM;
	}
	cli_note_slow_kernel(cfg->image_fd);
	r = brk_vm_launch(kvm_fd, cfg, &vm, err, sizeof(err));
	/* The worker has its own copy now. */
	close(kvm_fd);
	if (r) {
		fprintf(stderr, "bulkhead: cannot start the VM: %s\n", err);
		return r;
	}
	r = brk_vm_run_foreground(vm, verbose, err, sizeof(err));
	if (r && !(r & 1) && err[0])
		fprintf(stderr, "bulkhead: VM failed: %s\n", err);
	brk_vm_free(vm);
	return r;
}

int cli_cmd_run(const struct cli_call *call)
{
	struct cli_run_args a = { 0 };
	struct brk_vm_config cfg = {
		.mem_size = BRK_DEFAULT_MEM, .cpus = 1, .image_fd = -1,
		.initrd_fd = -1, .serial_out_fd = -1, .console_fd = -1,
		.restore_fd = -1,
	};
	int r;

	cli_vm_opts_init(&a.vm);
	r = cli_run_parse(call->argc, call->argv, &a);

	if (r)
		return r < 0 ? 0 : r;
	if (a.verbose)
		ipc_log_init("bulkhead", IPC_LOG_DEBUG);
	if (a.vm.mem_size)
		cfg.mem_size = a.vm.mem_size;
	if (a.vm.cpus)
		cfg.cpus = a.vm.cpus;
	cfg.cmdline = a.vm.cmdline;
	cfg.serial = cli_run_serial(a.vm.serial);
	r = cli_run_open(&a, &cfg);
	if (!r)
		r = cli_run_vm(&cfg, a.verbose);
	cli_run_close(&cfg);
	return r;
}
