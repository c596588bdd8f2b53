/* SPDX-License-Identifier: MIT */
/*
 * Spawning child processes into their sandbox (docs/sandbox.md).
 *
 * clone3 puts the child in new pid, net, ipc, mount and uts namespaces (and
 * a new user namespace when we are not root) and hands us a pidfd to
 * supervise it with. The child then waits for its identity: uid = gid =
 * SBX_ID_BASE + its pid as we see it, unique among running processes. It
 * execs its binary (exec, never just fork: no broker memory survives into
 * it) with exactly stdin/stdout on /dev/null, stderr a pipe to us, the
 * bootstrap channel as fd 3, an empty environment and argv[1] =
 * "--sandbox=UID:GID[:userns]". The binary confines itself in main()
 * (policy/sbx.c): after the exec, because the dynamic loader must still be
 * reachable for it.
 *
 * Children's diagnostics go through that pipe: a thread of ours copies them
 * to our own stderr. A child's RLIMIT_FSIZE is 0, so were its stderr the
 * regular file ours may be (`2>log`), its every message would fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker/launch.h"
#include "policy/sbx.h"

/* Where the child moves its pipes before it lays out fds 0-3. */
#define BRK_CHILD_HIGH_FD 10

#define BRK_CHILD_NAMESPACES (CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | \
			      CLONE_NEWNS | CLONE_NEWUTS)

/* How long to wait for the kernel's audit record of a seccomp kill. */
#define BRK_AUDIT_TRIES 5
#define BRK_AUDIT_WAIT_MS 10

/*
 * Syscall names (build/policy/syscall-names.c, in the broker's library);
 * weak, so that a tool linking spawn.c alone still links: it then reports
 * numbers.
 */
extern const char *const sbx_syscall_names[] __attribute__((weak));
extern const unsigned sbx_nsyscall_names __attribute__((weak));

/* What the child waits for after clone3 (one write on the go pipe). */
struct brk_spawn_go {
	char sandbox_arg[64];   /* "--sandbox=UID:GID[:userns]" */
	bool userns;
};

/* ---- the children's stderr ---------------------------------------------- */

/* The pipe every child writes its diagnostics to; [0] is non-blocking. */
static int brk_log_pipe[2] = { -1, -1 };
/* Held while copying, so that brk_log_drain() misses nothing in flight. */
static pthread_mutex_t brk_log_lock = PTHREAD_MUTEX_INITIALIZER;

/* Copy whatever is in the pipe to our stderr. Call with brk_log_lock. */
static void brk_log_copy(void)
{
	char buf[4096];

	for (;;) {
		ssize_t n = read(brk_log_pipe[0], buf, sizeof(buf));
		ssize_t off = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		while (off < n) {
			ssize_t w = write(STDERR_FILENO, buf + off,
					  (size_t)(n - off));

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;  /* our stderr is gone: drop it */
			off += w;
		}
	}
}

static void *brk_log_thread(void *arg)
{
	struct pollfd p = { .fd = brk_log_pipe[0], .events = POLLIN };

	(void)arg;
	for (;;) {
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			return NULL;
		pthread_mutex_lock(&brk_log_lock);
		brk_log_copy();
		pthread_mutex_unlock(&brk_log_lock);
	}
}

/* At exit: every child's last words are in the pipe by now. */
static void brk_log_drain(void)
{
	pthread_mutex_lock(&brk_log_lock);
	brk_log_copy();
	pthread_mutex_unlock(&brk_log_lock);
}

/* The pipe and its copying thread, made with the first child. */
static int brk_log_start(void)
{
	static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
	sigset_t all, old;
	pthread_t t;
	int r = 0;

	pthread_mutex_lock(&once);
	if (brk_log_pipe[0] >= 0)
		goto out;
	if (pipe2(brk_log_pipe, O_CLOEXEC) < 0) {
		r = -errno;
		goto out;
	}
	fcntl(brk_log_pipe[0], F_SETFL, O_NONBLOCK);
	/* The thread takes no signal: SIGINT and friends are the main
	 * thread's (signalfd). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = -pthread_create(&t, NULL, brk_log_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		close(brk_log_pipe[0]);
		close(brk_log_pipe[1]);
		brk_log_pipe[0] = brk_log_pipe[1] = -1;
		goto out;
	}
	pthread_detach(t);
	atexit(brk_log_drain);
out:
	pthread_mutex_unlock(&once);
	return r;
}

/* ---- spawning ------------------------------------------------------------ */

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

/*
 * In a user namespace the child's uid is not 0, so exec would drop the
 * capabilities it needs to confine itself (mount, pivot_root, setting its
 * ids and securebits). Raise them all into the ambient set, which exec
 * keeps; sbx_enter() clears it again. Only raw syscalls: we are between
 * clone and exec.
 */
static int brk_child_keep_caps(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		data[i].inheritable = data[i].permitted;
	if (syscall(SYS_capset, &hdr, data) < 0)
		return -errno;
	for (unsigned long cap = 0; cap < 64; cap++) {
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0) {
			if (errno == EINVAL)
				break;  /* past the last capability */
			return -errno;
		}
	}
	return 0;
}

/* In the child, between clone3 and exec: only async-signal-safe calls. */
static void brk_child_exec(const char *path, const char *argv0,
			   int bootstrap_fd, int log_fd, int err_pipe,
			   int go_pipe)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	struct brk_spawn_go go;
	char *argv[] = { (char *)argv0, go.sandbox_arg, NULL };
	char *const envp[] = { NULL };
	sigset_t none;
	ssize_t n;
	int null_fd, e;

	/* Our parent is outside our pid namespace: if it is already gone,
	 * the go pipe reads EOF and we never run. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* Keep our pipes clear of the fds 0-3 we are about to set up. */
	err_pipe = fcntl(err_pipe, F_DUPFD_CLOEXEC, BRK_CHILD_HIGH_FD);
	go_pipe = fcntl(go_pipe, F_DUPFD_CLOEXEC, BRK_CHILD_HIGH_FD);
	log_fd = fcntl(log_fd, F_DUPFD_CLOEXEC, BRK_CHILD_HIGH_FD);
	if (err_pipe < 0 || go_pipe < 0 || log_fd < 0)
		_exit(127);
	do
		n = read(go_pipe, &go, sizeof(go));
	while (n < 0 && errno == EINTR);
	if (n != sizeof(go))
		_exit(127);
	go.sandbox_arg[sizeof(go.sandbox_arg) - 1] = '\0';
	close(go_pipe);

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL);
	if (bootstrap_fd == SBX_BOOTSTRAP_FD) {
		if (fcntl(bootstrap_fd, F_SETFD, 0) < 0)
			goto fail;
	} else if (dup2(bootstrap_fd, SBX_BOOTSTRAP_FD) < 0) {
		goto fail;
	}
	null_fd = open("/dev/null", O_RDWR);
	if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0 ||
	    dup2(log_fd, 2) < 0)
		goto fail;
	/* Everything else goes; err_pipe is close-on-exec. */
	if (syscall(SYS_close_range, SBX_BOOTSTRAP_FD + 1, err_pipe - 1, 0) < 0 ||
	    syscall(SYS_close_range, err_pipe + 1, ~0u, 0) < 0)
		goto fail;
	if (go.userns) {
		e = brk_child_keep_caps();
		if (e < 0) {
			errno = -e;
			goto fail;
		}
	}
	execve(path, argv, envp);
fail:
	e = errno;
	if (write(err_pipe, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

/* Write text to /proc/<pid>/<file> (the child's user namespace maps). */
static int brk_write_proc(pid_t pid, const char *file, const char *text)
{
	char path[64];
	ssize_t n;
	int fd, r = 0;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	if (n < 0)
		r = -errno;
	else if ((size_t)n != strlen(text))
		r = -EIO;
	close(fd);
	return r;
}

/*
 * Map the child's uid and gid onto ours: as an unprivileged user that is
 * the one mapping we may write, and setgroups must be denied first.
 */
static int brk_map_ids(pid_t pid, uint32_t id, char *err, size_t errlen)
{
	char map[64];
	int r;

	snprintf(map, sizeof(map), "%u %u 1\n", id, (unsigned)geteuid());
	r = brk_write_proc(pid, "uid_map", map);
	if (r == 0)
		r = brk_write_proc(pid, "setgroups", "deny\n");
	if (r == 0) {
		snprintf(map, sizeof(map), "%u %u 1\n", id, (unsigned)getegid());
		r = brk_write_proc(pid, "gid_map", map);
	}
	if (r < 0)
		snprintf(err, errlen, "cannot map the ids of the child's user "
			 "namespace: %s", strerror(-r));
	return r;
}

static pid_t brk_clone(bool userns, int *pidfd)
{
	struct clone_args ca = {
		.flags = BRK_CHILD_NAMESPACES | CLONE_PIDFD |
			 (userns ? CLONE_NEWUSER : 0),
		.pidfd = (uint64_t)(uintptr_t)pidfd,
		.exit_signal = SIGCHLD,
	};

	return (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
}

/* The binary's path, beside the CLI (the build tree), else in
 * ../libexec/bulkhead (installed); and the children's stderr, started.
 * 0, or -errno after saying why. */
static int brk_spawn_path(const char *binary, char *path, size_t pathlen,
			  char *err, size_t errlen)
{
	char dir[PATH_MAX];
	int r;

	r = brk_exe_dir(dir, sizeof(dir));
	if (r < 0) {
		snprintf(err, errlen, "cannot find our own binary: %s",
			 strerror(-r));
		return r;
	}
	r = brk_log_start();
	if (r < 0) {
		snprintf(err, errlen, "cannot set up the children's stderr: %s",
			 strerror(-r));
		return r;
	}
	snprintf(path, pathlen, "%s/%s", dir, binary);
	if (access(path, X_OK) < 0)
		snprintf(path, pathlen, "%s/../libexec/bulkhead/%s", dir,
			 binary);
	return 0;
}

/* Clone the child into its namespaces; root without CAP_SYS_ADMIN (a
 * container) is retried as unprivileged, setting go->userns. */
static pid_t brk_spawn_clone(struct brk_spawn_go *go, int *pidfd)
{
	pid_t pid = brk_clone(go->userns, pidfd);

	if (pid < 0 && errno == EPERM && !go->userns) {
		go->userns = true;
		pid = brk_clone(true, pidfd);
	}
	return pid;
}

/* Let the child (pid) go on: its sandbox ids, mapped in its user namespace
 * if it has one, sent on go_fd. 0, or -errno after saying why. */
static int brk_spawn_release(pid_t pid, struct brk_spawn_go *go, int go_fd,
			     const char *binary, char *err, size_t errlen)
{
	uint32_t id = SBX_ID_BASE + (uint32_t)pid;
	int r;

	snprintf(go->sandbox_arg, sizeof(go->sandbox_arg), "%s%u:%u%s",
		 SBX_ARG_PREFIX, id, id, go->userns ? ":userns" : "");
	r = (uint32_t)pid < SBX_ID_SPAN ? 0 : -ERANGE;
	if (r < 0)
		snprintf(err, errlen, "pid %d is beyond the sandbox id range",
			 (int)pid);
	if (r == 0 && go->userns)
		r = brk_map_ids(pid, id, err, errlen);
	if (r == 0 && send(go_fd, go, sizeof(*go), MSG_NOSIGNAL) !=
		      sizeof(*go)) {
		r = -EPIPE;
		snprintf(err, errlen, "cannot start %s: it is gone", binary);
	}
	return r;
}

/* Whether the child's execve of path failed: it writes its errno to
 * err_fd, which closes unwritten on a successful exec. 0, or -errno after
 * reaping the child and saying why. */
static int brk_spawn_exec_result(pid_t pid, int err_fd, const char *path,
				 char *err, size_t errlen)
{
	ssize_t n;
	int e = 0;

	do
		n = read(err_fd, &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	if (n == sizeof(e)) {
		waitpid(pid, NULL, 0);
		snprintf(err, errlen, "cannot run %s: %s", path, strerror(e));
		return -e;
	}
	return 0;
}

int brk_spawn(const char *binary, int bootstrap_fd, const char *label,
	      struct brk_child *c, char *err, size_t errlen)
{
	char path[PATH_MAX + 64];
	struct brk_spawn_go go = { .userns = geteuid() != 0 };
	int err_pipe[2] = { -1, -1 }, go_pipe[2] = { -1, -1 };
	int pidfd = -1, r;
	pid_t pid;

	r = brk_spawn_path(binary, path, sizeof(path), err, errlen);
	if (r < 0)
		return r;
	/* go: a socket, so that a child gone early costs us no SIGPIPE */
	if (pipe2(err_pipe, O_CLOEXEC) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, go_pipe) < 0) {
		r = -errno;
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto out;
	}
	pid = brk_spawn_clone(&go, &pidfd);
	if (pid < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot create the sandbox of %s (clone3 "
			 "with new namespaces): %s", binary, strerror(errno));
		goto out;
	}
	if (pid == 0) {
		close(err_pipe[0]);
		close(go_pipe[1]);
		brk_child_exec(path, binary, bootstrap_fd, brk_log_pipe[1],
			       err_pipe[1], go_pipe[0]);
	}
	close(err_pipe[1]);
	err_pipe[1] = -1;
	close(go_pipe[0]);
	go_pipe[0] = -1;

	r = brk_spawn_release(pid, &go, go_pipe[1], binary, err, errlen);
	close(go_pipe[1]);
	go_pipe[1] = -1;
	if (r < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto out;
	}
	r = brk_spawn_exec_result(pid, err_pipe[0], path, err, errlen);
	if (r < 0)
		goto out;
	snprintf(c->label, sizeof(c->label), "%s", label);
	c->pid = pid;
	c->pidfd = pidfd;
	pidfd = -1;
	c->reaped = false;
	c->wstatus = 0;
	r = 0;
out:
	for (int i = 0; i < 2; i++) {
		if (err_pipe[i] >= 0)
			close(err_pipe[i]);
		if (go_pipe[i] >= 0)
			close(go_pipe[i]);
	}
	if (pidfd >= 0)
		close(pidfd);
	return r;
}

/*
 * The syscall a seccomp filter killed pid for, from the kernel's audit
 * record ("audit: type=1326 ... pid=N ... sig=31 ... syscall=257 ..."), or
 * -1 when /dev/kmsg is not ours to read (an unprivileged broker) or the
 * record was dropped. The kernel tells a parent nothing more than SIGSYS.
 */
static long brk_audit_syscall(pid_t pid)
{
	char want[32], rec[2048];
	long nr = -1;

	snprintf(want, sizeof(want), " pid=%d ", (int)pid);
	for (int i = 0; i < BRK_AUDIT_TRIES && nr < 0; i++) {
		int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

		if (fd < 0)
			return -1;
		if (i)  /* kauditd may not have written it yet */
			poll(NULL, 0, BRK_AUDIT_WAIT_MS);
		for (;;) {
			ssize_t n = read(fd, rec, sizeof(rec) - 1);
			const char *p;

			if (n < 0 && errno == EPIPE)
				continue;  /* records overwritten under us */
			if (n <= 0)
				break;     /* EAGAIN: the end */
			rec[n] = '\0';
			if (!strstr(rec, "type=1326") || !strstr(rec, want) ||
			    !strstr(rec, " sig=31 "))
				continue;
			p = strstr(rec, " syscall=");
			if (p)
				nr = strtol(p + 9, NULL, 10);  /* the last one wins */
		}
		close(fd);
	}
	return nr;
}

void brk_child_describe(const struct brk_child *c, char *buf, size_t len)
{
	int st = c->wstatus;

	if (!c->reaped) {
		snprintf(buf, len, "is still running");
	} else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS) {
		/* Nothing else can send it SIGSYS: its filter killed it. */
		long nr = brk_audit_syscall(c->pid);

		if (nr >= 0 && &sbx_nsyscall_names && sbx_syscall_names &&
		    (unsigned long)nr < sbx_nsyscall_names &&
		    sbx_syscall_names[nr])
			snprintf(buf, len, "killed: seccomp violation (%s)",
				 sbx_syscall_names[nr]);
		else if (nr >= 0)
			snprintf(buf, len, "killed: seccomp violation (syscall "
				 "%ld)", nr);
		else
			snprintf(buf, len, "killed: seccomp violation");
	} else if (WIFEXITED(st) && WEXITSTATUS(st) == SBX_EXIT_FAILED) {
		snprintf(buf, len, "could not enter its sandbox (exit status "
			 "%d; its message says why)", SBX_EXIT_FAILED);
	} else if (WIFEXITED(st)) {
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
	} else if (WIFSIGNALED(st)) {
		snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(st),
			 strsignal(WTERMSIG(st)));
	} else {
		snprintf(buf, len, "ended (wait status 0x%x)", st);
	}
}
