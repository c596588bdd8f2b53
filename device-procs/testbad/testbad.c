/* SPDX-License-Identifier: MIT */
/*
 * testbad: a test-only device that misbehaves on command, to prove that the
 * common device policy kills a device process that tries what no device
 * may do. Built only into build/tests/bin (policy/module.mk), never
 * installed.
 *
 * It stands in for the null device (kind "null", added with --null-dev,
 * with null_desc's name, regions and IRQs) so that the production broker
 * configures it unchanged, and its policy table maps "dev-null" to
 * common-device.policy, the base every device shares. A guest write to
 * port 0x510 + N (its port I/O region) makes it attempt:
 *
 *   N = 0  nothing (the device answers like the null device)
 *       1  openat a file            2  socket          3  execve
 *       4  ptrace                   5  fork            6  a KVM ioctl
 *       7  mprotect with PROT_EXEC
 *
 * Each must end the process with SIGSYS before the call does anything;
 * if one returns, the device says so on stderr and the test fails.
 * tests/integration/test_seccomp_kill.sh drives it with the nullio guest
 * (cmdline "port=0x51N count=1 width=1").
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <unistd.h>

#include "device-procs/devhost/dev.h"
#include "ipc/log.h"

#define TESTBAD_NPORTS 8u

struct testbad_attempt {
	const char *what;
	const char *syscall;
};

static const struct testbad_attempt testbad_attempts[TESTBAD_NPORTS] = {
	{ NULL, NULL },
	{ "open a file", "openat" },
	{ "create a socket", "socket" },
	{ "execute a program", "execve" },
	{ "trace a process", "ptrace" },
	{ "fork", "clone" },
	{ "issue a KVM ioctl", "ioctl KVM_CREATE_VM" },
	{ "map memory executable", "mprotect PROT_EXEC" },
};

/* A page of our own to try to make executable. */
static uint8_t testbad_page[4096] __attribute__((aligned(4096)));

static long testbad_try(unsigned n)
{
	char *const argv[] = { "sh", "-c", "true", NULL };
	char *const envp[] = { NULL };
	pid_t pid;

	switch (n) {
	case 1:
		return openat(AT_FDCWD, "/etc/passwd", O_RDONLY | O_CLOEXEC);
	case 2:
		return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	case 3:
		return execve("/bin/sh", argv, envp);
	case 4:
		return ptrace(PTRACE_TRACEME, 0, NULL, NULL);
	case 5:
		pid = fork();
		if (pid == 0)
			_exit(0);
		return pid;
	case 6:
		return ioctl(STDIN_FILENO, KVM_CREATE_VM, 0);
	case 7:
		return mprotect(testbad_page, sizeof(testbad_page),
				PROT_READ | PROT_EXEC);
	}
	return 0;
}

static void testbad_io(struct dev *d, unsigned region, uint64_t off,
		       void *data, unsigned len, bool write)
{
	const struct testbad_attempt *a;
	long r;

	if (!write) {
		memset(data, 0, len);
		return;
	}
	if (d->regions[region].space != DEV_PIO || off >= TESTBAD_NPORTS ||
	    !testbad_attempts[off].what)
		return;
	a = &testbad_attempts[off];
	LOG_INFO("testbad: attempting to %s (%s)", a->what, a->syscall);
	r = testbad_try((unsigned)off);
	LOG_ERR("testbad: %s (%s) was NOT blocked: it returned %ld (%s)",
		a->what, a->syscall, r, r < 0 ? strerror(errno) : "success");
}

int main(int argc, char **argv)
{
	/* Registered as the null device is, whatever its regions are. */
	struct dev_desc testbad_desc = {
		.mf = null_desc.mf,
		.irq_flags = null_desc.irq_flags,
		.io = testbad_io,
	};

	return dev_main(argc, argv, &testbad_desc);
}
