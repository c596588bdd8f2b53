/* SPDX-License-Identifier: MIT */
/*
 * broker/cli.h: the bulkhead command line. One table of commands
 * (broker/cli.c), each row naming its arguments, the options it takes and
 * its handler:
 *
 *   broker/cli.c         main(), global options, usage, the command table
 *   broker/cli_vmopts.c  the VM options run, create and restore share
 *   broker/cli_run.c     `bulkhead run`: one VM in the foreground, no daemon
 *   broker/cli_ctl.c     the commands that talk to bulkheadd
 *
 * Every file a command needs (the image, the initrd, a serial file, a
 * disk, a save file) is opened here with the user's own rights and handed
 * on as an fd: the broker opens no path on a client's behalf.
 */
#ifndef BULKHEAD_CLI_H
#define BULKHEAD_CLI_H

#include <getopt.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>

#include "device-procs/manifest.h"

/*
 * Exit status of the daemon commands (create, start, ..., stats). `run`
 * has its own (enum brk_exit, broker/launch.h).
 */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_REFUSED = 1,  /* the broker refused or the operation failed */
	CLI_EXIT_USAGE = 2,
	CLI_EXIT_NOBROKER = 3, /* cannot reach bulkheadd, or it hung up */
	CLI_EXIT_NOFILE = 4,   /* cannot open the image or another file */
};

/* ---- VM options (cli_vmopts.c) ------------------------------------------------ */

enum cli_serial {
	CLI_SERIAL_DEFAULT = 0,  /* run: stdio; create: console */
	CLI_SERIAL_STDIO,
	CLI_SERIAL_NULL,
	CLI_SERIAL_FILE,
	CLI_SERIAL_CONSOLE,
};

#define CLI_MAX_DEVS 12u  /* BRK_MAX_REQ_DEVICES */

struct cli_vm_opts {
	uint64_t mem_size;       /* 0: the default */
	unsigned cpus;           /* 0: the default */
	const char *cmdline;
	const char *initrd;
	enum cli_serial serial;
	const char *serial_path; /* CLI_SERIAL_FILE */
	/* The optional devices (--disk, --rng, ...: their manifest
	 * entries' options), in the order given. */
	struct cli_dev_opt {
		const struct dev_manifest *k;
		const char *path;    /* its backend file, NULL: none */
		bool ro;             /* PATH,ro */
	} devs[CLI_MAX_DEVS];
	unsigned ndevs;
	struct dev_tally tally;  /* of devs, as they are added */
	bool any;                /* some VM option was given */
};

/* getopt_long codes of the VM options; a command's own start at
 * CLI_OPT_OWN. */
enum {
	CLI_OPT_MEM = 256, CLI_OPT_CPUS, CLI_OPT_CMDLINE, CLI_OPT_INITRD,
	CLI_OPT_SERIAL,
	/* a device's option: CLI_OPT_DEV + its index in dev_manifests[] */
	CLI_OPT_DEV,
	CLI_OPT_VM_LAST = CLI_OPT_DEV + DEV_MF_MAX_KINDS - 1,
	CLI_OPT_OWN = 300,
};

/* Start a cli_vm_opts: no option given yet. */
void cli_vm_opts_init(struct cli_vm_opts *o);
/*
 * Apply VM option opt (with its argument). daemon: for create and restore
 * (--serial console, not stdio). Returns 0, or CLI_EXIT_USAGE after saying
 * what is wrong as "bulkhead: CMD: ...".
 */
int cli_vm_opt(int opt, char *arg, struct cli_vm_opts *o, bool daemon,
	       const char *cmd);
/* own + the VM options (if vm), the devices' from the manifest among
 * them, into out (room for n rows); 0 or -1. */
int cli_merge_opts(const struct option *own, bool vm, struct option *out,
		   unsigned n);
/*
 * KVM on PVM runs only CPL 3 code natively and emulates the rest, an
 * instruction at a time: a Linux kernel runs but takes hours to boot. For
 * a bzImage on such a host, say so on stderr at once rather than let the
 * user wait on a silent console. image_fd < 0: nothing.
 */
void cli_note_slow_kernel(int image_fd);
/* A usage error: "bulkhead: CMD: ..." and the hint; CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- commands --------------------------------------------------------------------- */

struct cli_cmd;
struct cli_ctl;

/* What a command is called with: its argv (argv[0] the command), where
 * bulkheadd is, and the output mode. */
struct cli_call {
	const struct cli_cmd *cmd;
	int argc;
	char **argv;
	const char *socket_path;
	bool json;
};

/* Which of the daemon commands' own options a command takes. */
#define CLI_TAKES_VM 0x1u       /* the VM options */
#define CLI_TAKES_SAVE 0x2u     /* --keep-running, --live, --max-downtime */
#define CLI_TAKES_REPLAY 0x4u   /* --no-replay */

struct cli_cmd {
	const char *name;
	const char *args;        /* for usage and messages: "NAME FILE" */
	int nargs;               /* positional arguments */
	int opt_nargs;           /* more that may follow them */
	unsigned takes;          /* CLI_TAKES_* */
	/* Parse argv and run: cli_cmd_run, or cli_ctl_main for every
	 * command that talks to bulkheadd, which then calls run. */
	int (*main)(const struct cli_call *call);
	int (*run)(struct cli_ctl *x);
	/* For the commands that act on one VM by name (start, pause, ...):
	 * the frame type and the word for the success line. */
	uint16_t verb;
	const char *done;
};

/* The command table (broker/cli.c), and the whole usage text. */
const struct cli_cmd *cli_find_cmd(const char *name);
void cli_usage(FILE *f);

/* broker/cli_run.c */
int cli_cmd_run(const struct cli_call *call);

/* broker/cli_ctl.c: parse a daemon command's options and arguments, then
 * run its handler, one of these. */
int cli_ctl_main(const struct cli_call *call);
int cli_ctl_create(struct cli_ctl *x);
int cli_ctl_verb(struct cli_ctl *x);       /* start, pause, ...: cmd->verb */
int cli_ctl_status(struct cli_ctl *x);
int cli_ctl_list(struct cli_ctl *x);
int cli_ctl_stats(struct cli_ctl *x);
int cli_ctl_console(struct cli_ctl *x);
int cli_ctl_save(struct cli_ctl *x);
int cli_ctl_restore(struct cli_ctl *x);

#endif
