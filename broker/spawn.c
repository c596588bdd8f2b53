/* SPDX-License-Identifier: MIT */
/*
 * Spawning child processes: fork, then exec (never just fork: no broker
 * memory survives into the child), with exactly stdin/stdout on /dev/null,
 * stderr inherited for diagnostics and the bootstrap channel as fd 3.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker/brk.h"

#define BRK_CHILD_BOOTSTRAP_FD 3

/* The folder holding our own binary: helpers live beside it. */
static int brk_exe_dir(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	char *slash;

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	return 0;
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void brk_child_exec(const char *path, const char *argv0,
			   int bootstrap_fd, int err_pipe, pid_t parent)
{
	char *const argv[] = { (char *)argv0, NULL };
	char *const envp[] = { NULL };
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;
	int null_fd, e;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL);
	if (err_pipe == BRK_CHILD_BOOTSTRAP_FD) {
		err_pipe = fcntl(err_pipe, F_DUPFD_CLOEXEC, 10);
		if (err_pipe < 0)
			goto fail;
	}
	if (bootstrap_fd == BRK_CHILD_BOOTSTRAP_FD) {
		if (fcntl(bootstrap_fd, F_SETFD, 0) < 0)
			goto fail;
	} else if (dup2(bootstrap_fd, BRK_CHILD_BOOTSTRAP_FD) < 0) {
		goto fail;
	}
	null_fd = open("/dev/null", O_RDWR);
	if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0)
		goto fail;
	/* Everything else goes; err_pipe is close-on-exec. */
	for (int fd = BRK_CHILD_BOOTSTRAP_FD + 1; fd < 1024; fd++) {
		if (fd != err_pipe)
			close(fd);
	}
	execve(path, argv, envp);
fail:
	e = errno;
	if (write(err_pipe, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

int brk_spawn(const char *binary, int bootstrap_fd, const char *label,
	      struct brk_child *c, char *err, size_t errlen)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];
	int pipefd[2], e = 0;
	pid_t parent = getpid(), pid;
	ssize_t n;
	int r;

	r = brk_exe_dir(dir, sizeof(dir));
	if (r < 0) {
		snprintf(err, errlen, "cannot find our own binary: %s",
			 strerror(-r));
		return r;
	}
	/* Beside the CLI (the build tree), else ../libexec/bulkhead (installed). */
	snprintf(path, sizeof(path), "%s/%s", dir, binary);
	if (access(path, X_OK) < 0)
		snprintf(path, sizeof(path), "%s/../libexec/bulkhead/%s", dir,
			 binary);
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		r = -errno;
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return r;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot fork for %s: %s", binary,
			 strerror(errno));
		close(pipefd[0]);
		close(pipefd[1]);
		return r;
	}
	if (pid == 0) {
		close(pipefd[0]);
		brk_child_exec(path, binary, bootstrap_fd, pipefd[1], parent);
	}
	close(pipefd[1]);
	do
		n = read(pipefd[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(pipefd[0]);
	if (n == sizeof(e)) {
		waitpid(pid, NULL, 0);
		snprintf(err, errlen, "cannot run %s: %s", path, strerror(e));
		return -e;
	}
	snprintf(c->label, sizeof(c->label), "%s", label);
	c->pid = pid;
	c->reaped = false;
	c->wstatus = 0;
	c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (c->pidfd < 0) {
		r = -errno;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		snprintf(err, errlen, "pidfd_open: %s", strerror(-r));
		return r;
	}
	fcntl(c->pidfd, F_SETFD, FD_CLOEXEC);
	return 0;
}

void brk_child_describe(const struct brk_child *c, char *buf, size_t len)
{
	int st = c->wstatus;

	if (!c->reaped)
		snprintf(buf, len, "is still running");
	else if (WIFEXITED(st))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(st),
			 strsignal(WTERMSIG(st)));
	else
		snprintf(buf, len, "ended (wait status 0x%x)", st);
}

int brk_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;
	unsigned shift = 0;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K':
		shift = 10;
		break;
	case 'm': case 'M':
		shift = 20;
		break;
	case 'g': case 'G':
		shift = 30;
		break;
	default:
		return -EINVAL;
	}
	if (*end && end[1] != '\0')
		return -EINVAL;  /* one suffix letter, nothing after it */
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}
