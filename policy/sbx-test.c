/* SPDX-License-Identifier: MIT */
/*
 * Test commands for the worker's run-phase filter, compiled only into the
 * test build of bulkhead-worker (build/tests/bin, -DBULKHEAD_TEST; never
 * installed): production binaries contain none of this.
 *
 * Just before the worker loads its run-phase policy, sbx_restrict() calls
 * sbx_test_arm(), which finds the /dev/kvm fd and installs two signal
 * handlers. Once the VM runs, tests/integration/test_seccomp_kill.sh sends
 *
 *   SIGUSR2: the worker attempts ioctl(kvm_fd, KVM_CREATE_VM, 0)
 *   SIGURG:  the worker attempts openat(AT_FDCWD, "/", O_RDONLY)
 *
 * and expects the worker to die of SIGSYS. If a call goes through, the
 * handler says so, and the test fails on that line.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "policy/sbx.h"

#define SBX_TEST_KVM_MAJOR 10
#define SBX_TEST_KVM_MINOR 232

static int sbx_test_kvm_fd = -1;

static void sbx_test_say(const char *what)
{
	if (write(STDERR_FILENO, what, strlen(what)) < 0)
		return;
}

static void sbx_test_create_vm(int sig)
{
	int fd;

	(void)sig;
	sbx_test_say("bulkhead-worker: test: attempting ioctl KVM_CREATE_VM in "
		     "the run phase\n");
	fd = ioctl(sbx_test_kvm_fd, KVM_CREATE_VM, 0);
	if (fd >= 0)
		sbx_test_say("bulkhead-worker: test: KVM_CREATE_VM was NOT "
			     "blocked\n");
	else
		sbx_test_say("bulkhead-worker: test: KVM_CREATE_VM failed but "
			     "the process was NOT killed\n");
}

static void sbx_test_open(int sig)
{
	int fd;

	(void)sig;
	sbx_test_say("bulkhead-worker: test: attempting openat in the run "
		     "phase\n");
	fd = openat(AT_FDCWD, "/", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		sbx_test_say("bulkhead-worker: test: openat was NOT blocked\n");
	else
		sbx_test_say("bulkhead-worker: test: openat failed but the "
			     "process was NOT killed\n");
}

void sbx_test_arm(const char *policy)
{
	struct sigaction sa = { .sa_handler = sbx_test_create_vm };
	struct stat st;

	if (strcmp(policy, "worker-run") != 0)
		return;
	for (int fd = 0; fd < 256; fd++) {
		if (fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) &&
		    major(st.st_rdev) == SBX_TEST_KVM_MAJOR &&
		    minor(st.st_rdev) == SBX_TEST_KVM_MINOR) {
			sbx_test_kvm_fd = fd;
			break;
		}
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = sbx_test_open;
	sigaction(SIGURG, &sa, NULL);
	sbx_test_say("bulkhead-worker: test: commands armed (SIGUSR2: "
		     "KVM_CREATE_VM, SIGURG: openat)\n");
}
