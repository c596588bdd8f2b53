/* SPDX-License-Identifier: MIT */
/*
 * bulkhead: the command-line interface (broker/cli.h).
 *
 *   bulkhead run [VM options] IMAGE                 (broker/cli_run.c)
 *   bulkhead [--socket PATH] [--json] COMMAND ...   (broker/cli_ctl.c)
 *
 * `run` needs no daemon: this process plays the broker for one VM. The
 * other commands talk to bulkheadd. Either way every file is opened with
 * the user's own rights and the fds are handed on. Here: the global
 * options, the usage text and the command table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/cli.h"
#include "broker/control.h"
#include "device-procs/manifest.h"
#include "ipc/log.h"
#include "proto/msgtypes.h"

#define CLI_VERSION "0.1"

/* The devices' options, from the manifest: "  --disk PATH[,ro]   ..." with
 * each line of the help after the first indented under it. */
static void cli_usage_devices(FILE *f)
{
	for (unsigned i = 0; i < dev_nmanifests; i++) {
		const struct dev_manifest *m = dev_manifests[i];
		char opt[48];
		const char *h, *nl;

		if (!m->option)
			continue;
		snprintf(opt, sizeof(opt), "--%s%s%s", m->option,
			 m->option_arg ? " " : "",
			 m->option_arg ? m->option_arg : "");
		fprintf(f, "  %-18s ", opt);
		for (h = m->option_help; (nl = strchr(h, '\n')); h = nl + 1)
			fprintf(f, "%.*s\n%21s", (int)(nl - h), h, "");
		fprintf(f, "%s\n", h);
	}
}

void cli_usage(FILE *f)
{
	fprintf(f,
"usage: bulkhead run [VM options] IMAGE\n"
"       bulkhead run --restore FILE [VM options] [IMAGE]\n"
"       bulkhead [--socket PATH] [--json] COMMAND [options] [NAME] ...\n"
"\n"
"Run one VM in the foreground: the worker (which runs the vCPUs) and every\n"
"device run in processes of their own. IMAGE is a multiboot (v1) ELF kernel,\n"
"a Linux bzImage, or a raw real-mode boot sector / flat binary; the format\n"
"is detected.\n"
"The guest finds its devices in ACPI tables and an MP table; every\n"
"virtio-mmio device is also announced on the guest's command line as\n"
"virtio_mmio.device=<size>@<base>:<irq>, after --cmdline.\n"
"\n"
"VM options:\n"
"  --mem SIZE         guest RAM, e.g. 64M or 1G (default 64M, 2M..3G)\n"
"  --cpus N           virtual CPUs, 1..16 (default 1)\n"
"  --cmdline STRING   the kernel command line\n"
"  --initrd FILE      Linux's initrd, or multiboot module 0\n"
"  --serial MODE      the UART's backend: stdio (run's default), null,\n"
"                     file:PATH, console (create's default)\n");
	cli_usage_devices(f);
	fprintf(f,
"  --restore FILE     (run) resume the VM saved in FILE (bulkhead save)\n"
"                     instead of booting IMAGE, which may be left out; the\n"
"                     VM options must match the saved VM's (RAM, vCPUs,\n"
"                     and the same devices in the same order)\n"
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

/* Every command: its arguments, options, handler. */
static const struct cli_cmd cli_cmds[] = {
	{ .name = "run", .args = "[VM options] IMAGE", .main = cli_cmd_run },
	{ .name = "create", .args = "NAME IMAGE", .nargs = 2,
	  .takes = CLI_TAKES_VM, .main = cli_ctl_main, .run = cli_ctl_create },
	{ .name = "start", .args = "NAME", .nargs = 1, .main = cli_ctl_main,
	  .run = cli_ctl_verb, .verb = MSG_CTL_START, .done = "started" },
	{ .name = "pause", .args = "NAME", .nargs = 1, .main = cli_ctl_main,
	  .run = cli_ctl_verb, .verb = MSG_CTL_PAUSE, .done = "paused" },
	{ .name = "resume", .args = "NAME", .nargs = 1, .main = cli_ctl_main,
	  .run = cli_ctl_verb, .verb = MSG_CTL_RESUME, .done = "resumed" },
	{ .name = "reset", .args = "NAME", .nargs = 1, .main = cli_ctl_main,
	  .run = cli_ctl_verb, .verb = MSG_CTL_RESET, .done = "reset" },
	{ .name = "poweroff", .args = "NAME", .nargs = 1, .main = cli_ctl_main,
	  .run = cli_ctl_verb, .verb = MSG_CTL_POWEROFF,
	  .done = "powered off" },
	{ .name = "destroy", .args = "NAME", .nargs = 1, .main = cli_ctl_main,
	  .run = cli_ctl_verb, .verb = MSG_CTL_DESTROY, .done = "destroyed" },
	{ .name = "status", .args = "NAME", .nargs = 1, .main = cli_ctl_main,
	  .run = cli_ctl_status },
	{ .name = "list", .args = "", .main = cli_ctl_main,
	  .run = cli_ctl_list },
	{ .name = "stats", .args = "NAME", .nargs = 1, .main = cli_ctl_main,
	  .run = cli_ctl_stats },
	{ .name = "console", .args = "[--no-replay] NAME", .nargs = 1,
	  .takes = CLI_TAKES_REPLAY, .main = cli_ctl_main,
	  .run = cli_ctl_console },
	{ .name = "save", .args = "[--keep-running] [--live] "
	  "[--max-downtime MS] NAME FILE", .nargs = 2,
	  .takes = CLI_TAKES_SAVE, .main = cli_ctl_main, .run = cli_ctl_save },
	{ .name = "restore", .args = "NAME FILE [VM options] [IMAGE]",
	  .nargs = 2, .opt_nargs = 1, .takes = CLI_TAKES_VM,
	  .main = cli_ctl_main, .run = cli_ctl_restore },
};

const struct cli_cmd *cli_find_cmd(const char *name)
{
	for (size_t i = 0; i < sizeof(cli_cmds) / sizeof(cli_cmds[0]); i++)
		if (strcmp(cli_cmds[i].name, name) == 0)
			return &cli_cmds[i];
	return NULL;
}

enum { OPT_G_SOCKET = CLI_OPT_OWN, OPT_G_JSON, OPT_G_VERSION };

static const struct option cli_global_opts[] = {
	{ "socket", required_argument, NULL, OPT_G_SOCKET },
	{ "json", no_argument, NULL, OPT_G_JSON },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_G_VERSION },
	{ NULL, 0, NULL, 0 },
};

/* Options before the command; the index of the command, or < 0 for an
 * exit status (negated). */
static int cli_global_opts_parse(int argc, char **argv, struct cli_call *call)
{
	int opt;

	opterr = 0;
	/* "+" stops at the command. */
	while ((opt = getopt_long(argc, argv, "+:h", cli_global_opts,
				  NULL)) != -1) {
		switch (opt) {
		case OPT_G_SOCKET:
			call->socket_path = optarg;
			break;
		case OPT_G_JSON:
			call->json = true;
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
			return -CLI_EXIT_USAGE;
		default:
			fprintf(stderr, "bulkhead: unknown option '%s'\n",
				argv[optind - 1]);
			cli_usage(stderr);
			return -CLI_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		cli_usage(stderr);
		return -CLI_EXIT_USAGE;
	}
	return optind;
}

int main(int argc, char **argv)
{
	struct cli_call call = { .socket_path = getenv(BRK_SOCKET_ENV) };
	int at;

	ipc_log_init("bulkhead", IPC_LOG_INFO);
	if (call.socket_path && !*call.socket_path)
		call.socket_path = NULL;
	at = cli_global_opts_parse(argc, argv, &call);
	if (at <= 0)
		return -at;
	if (strcmp(argv[at], "help") == 0) {
		cli_usage(stdout);
		return 0;
	}
	call.cmd = cli_find_cmd(argv[at]);
	if (!call.cmd) {
		fprintf(stderr, "bulkhead: unknown command '%s'\n", argv[at]);
		cli_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	call.argc = argc - at;
	call.argv = argv + at;
	return call.cmd->main(&call);
}
