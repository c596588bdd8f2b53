/* SPDX-License-Identifier: MIT */
/*
 * The sandbox every Bulkhead child confines itself in, first thing in
 * main() (see policy/sbx.h for the order, docs/sandbox.md for the reasons).
 *
 * The namespaces come from the broker, which clones the child into them;
 * everything else the child does itself, after the exec of its binary (the
 * dynamic loader and libraries must be reachable for that exec, and are not
 * once the root is empty). Any failure ends the process: a half-confined
 * process must not go on to talk to its peers.
 *
 * With `make SECCOMP_DEBUG=1` the filters trap instead of kill: a SIGSYS
 * handler prints the syscall with its arguments, makes the call itself
 * through one instruction the filters let through, and returns its result,
 * so one run shows everything a policy lacks.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/securebits.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "policy/sbx.h"

/* si_code of a SIGSYS from a seccomp filter (not in every libc's headers) */
#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1
#endif

/* Where the empty root is mounted before it becomes "/". */
static const char *const sbx_mount_spots[] = { "/tmp", "/mnt", "/proc", "/dev" };

/* The policies this process (and this thread) loaded, for debug reports. */
static char sbx_loaded[160];
static __thread const char *sbx_thread_policy;

/* ---- reporting ---------------------------------------------------------- */

static void sbx_vlog(const char *fmt, va_list ap)
{
	char line[512];
	int n;

	n = snprintf(line, sizeof(line), "%s: sandbox: ",
		     program_invocation_short_name);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		return;
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	n = (int)strlen(line);
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

static void sbx_die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void sbx_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sbx_vlog(fmt, ap);
	va_end(ap);
	_exit(SBX_EXIT_FAILED);
}

/* ---- the debug mode: log and carry on ----------------------------------- */

/*
 * long sbx_debug_syscall(long nr, long a0, ..., long a5): the only syscall
 * instruction a SECCOMP_DEBUG filter always lets through (it checks the
 * instruction pointer, which is sbx_debug_syscall_ret after the syscall).
 */
#if defined(__x86_64__)
__asm__(
	"	.text\n"
	"	.p2align 4\n"
	"	.hidden sbx_debug_syscall\n"
	"	.globl sbx_debug_syscall\n"
	"	.type sbx_debug_syscall, @function\n"
	"sbx_debug_syscall:\n"
	"	endbr64\n"
	"	movq %rdi, %rax\n"
	"	movq %rsi, %rdi\n"
	"	movq %rdx, %rsi\n"
	"	movq %rcx, %rdx\n"
	"	movq %r8, %r10\n"
	"	movq %r9, %r8\n"
	"	movq 8(%rsp), %r9\n"
	"	syscall\n"
	"	.hidden sbx_debug_syscall_ret\n"
	"	.globl sbx_debug_syscall_ret\n"
	"sbx_debug_syscall_ret:\n"
	"	ret\n"
	"	.size sbx_debug_syscall, .-sbx_debug_syscall\n");
#else
#error "the sandbox's debug mode knows only x86_64"
#endif
long sbx_debug_syscall(long nr, long a0, long a1, long a2, long a3, long a4,
		       long a5);
extern const char sbx_debug_syscall_ret[];

struct sbx_fmt {
	char *buf;
	size_t len;
	size_t off;
};

static void sbx_put(struct sbx_fmt *f, const char *s)
{
	while (*s && f->off + 1 < f->len)
		f->buf[f->off++] = *s++;
}

static void sbx_put_num(struct sbx_fmt *f, uint64_t v, unsigned base)
{
	char tmp[24];
	unsigned n = 0;

	if (base == 16)
		sbx_put(f, "0x");
	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n && f->off + 1 < f->len)
		f->buf[f->off++] = tmp[--n];
}

static void sbx_debug_sigsys(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	greg_t *g = uc->uc_mcontext.gregs;
	long nr = si->si_syscall;
	long a[6] = { g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10],
		      g[REG_R8], g[REG_R9] };
	char line[512];
	struct sbx_fmt f = { line, sizeof(line), 0 };
	bool run = si->si_arch == AUDIT_ARCH_X86_64;
	int saved_errno = errno;

	(void)sig;
	if (si->si_code != SYS_SECCOMP)
		return;  /* sent by someone, not by a filter */
	sbx_put(&f, program_invocation_short_name);
	sbx_put(&f, ": seccomp: ");
	sbx_put(&f, sbx_loaded);
	if (sbx_thread_policy) {
		sbx_put(&f, "+");
		sbx_put(&f, sbx_thread_policy);
	}
	sbx_put(&f, " would kill for ");
	if (nr >= 0 && (unsigned long)nr < sbx_nsyscall_names &&
	    sbx_syscall_names[nr]) {
		sbx_put(&f, sbx_syscall_names[nr]);
	} else {
		sbx_put(&f, "syscall ");
		sbx_put_num(&f, (uint64_t)nr, 10);
	}
	sbx_put(&f, "(");
	for (int i = 0; i < 6; i++) {
		if (i)
			sbx_put(&f, ", ");
		sbx_put_num(&f, (uint64_t)a[i], 16);
	}
	sbx_put(&f, ")");
	/* A thread's first instructions would run on our handler's stack. */
	if (nr == SYS_clone3 || (nr == SYS_clone && a[1] != 0)) {
		run = false;
		sbx_put(&f, "; fails with ENOSYS (debug mode cannot start a "
			"thread from its signal handler)");
	} else if (!run) {
		sbx_put(&f, "; foreign architecture, fails with ENOSYS");
	}
	sbx_put(&f, "\n");
	sbx_debug_syscall(SYS_write, STDERR_FILENO, (long)line, (long)f.off, 0,
			  0, 0);
	g[REG_RAX] = run ? sbx_debug_syscall(nr, a[0], a[1], a[2], a[3], a[4],
					     a[5])
			 : -ENOSYS;
	errno = saved_errno;
}

/* The filter preceded by: native arch and the debug stub's ip -> allow. */
static struct sock_filter *sbx_debug_filter(const struct sock_filter *filter,
					    unsigned len, unsigned *out_len)
{
	uint64_t ip = (uint64_t)(uintptr_t)sbx_debug_syscall_ret;
	const uint32_t ip_off = offsetof(struct seccomp_data, instruction_pointer);
	const struct sock_filter prologue[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 5),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ip_off),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)ip, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ip_off + 4),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(ip >> 32), 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	const unsigned np = sizeof(prologue) / sizeof(prologue[0]);
	struct sock_filter *f;

	if (len + np > BPF_MAXINSNS)
		return NULL;
	f = malloc((len + np) * sizeof(*f));
	if (!f)
		return NULL;
	memcpy(f, prologue, sizeof(prologue));
	memcpy(f + np, filter, len * sizeof(*f));
	*out_len = len + np;
	return f;
}

static int sbx_debug_install(void)
{
	static bool installed;
	struct sigaction sa = { .sa_sigaction = sbx_debug_sigsys,
				.sa_flags = SA_SIGINFO };

	if (installed)
		return 0;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return -errno;
	installed = true;
	return 0;
}

/* ---- filters ------------------------------------------------------------ */

const struct sbx_policy *sbx_policy_find(const char *name)
{
	for (unsigned i = 0; i < sbx_npolicies; i++)
		if (strcmp(sbx_policies[i].name, name) == 0)
			return &sbx_policies[i];
	return NULL;
}

int sbx_load_filter(const struct sock_filter *filter, unsigned len,
		    bool all_threads)
{
	struct sock_filter *dbg = NULL;
	struct sock_fprog prog;
	long r;
	int e;

	if (sbx_seccomp_debug) {
		r = sbx_debug_install();
		if (r < 0)
			return (int)r;
		dbg = sbx_debug_filter(filter, len, &len);
		if (!dbg)
			return -ENOMEM;
		filter = dbg;
	}
	if (len == 0 || len > BPF_MAXINSNS) {
		free(dbg);
		return -EINVAL;
	}
	prog.len = (unsigned short)len;
	prog.filter = (struct sock_filter *)filter;
	r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
		    all_threads ? SECCOMP_FILTER_FLAG_TSYNC : 0, &prog);
	e = errno;
	free(dbg);
	if (r > 0)
		return -EBUSY;  /* thread r has filters of its own */
	return r < 0 ? -e : 0;
}

static void sbx_note_loaded(const char *name)
{
	size_t n = strlen(sbx_loaded);

	snprintf(sbx_loaded + n, sizeof(sbx_loaded) - n, "%s%s", n ? "+" : "",
		 name);
}

/* ---- the steps of sbx_enter() ------------------------------------------- */

int sbx_parse_ids(const char *arg, struct sbx_ids *out)
{
	unsigned long uid, gid;
	const char *p;
	char *end;

	if (!arg || strncmp(arg, SBX_ARG_PREFIX, strlen(SBX_ARG_PREFIX)) != 0)
		return -EINVAL;
	p = arg + strlen(SBX_ARG_PREFIX);
	if (*p < '0' || *p > '9')
		return -EINVAL;
	errno = 0;
	uid = strtoul(p, &end, 10);
	if (errno || *end != ':' || end[1] < '0' || end[1] > '9')
		return -EINVAL;
	gid = strtoul(end + 1, &end, 10);
	if (errno)
		return -EINVAL;
	out->userns = false;
	if (strcmp(end, ":userns") == 0)
		out->userns = true;
	else if (*end)
		return -EINVAL;
	if (uid < SBX_ID_BASE || uid >= SBX_ID_BASE + SBX_ID_SPAN ||
	    gid < SBX_ID_BASE || gid >= SBX_ID_BASE + SBX_ID_SPAN)
		return -EINVAL;
	out->uid = (uint32_t)uid;
	out->gid = (uint32_t)gid;
	return 0;
}

/* Only stdin, stdout, stderr and the bootstrap channel stay open. */
static void sbx_close_fds(void)
{
	for (int fd = 0; fd <= SBX_BOOTSTRAP_FD; fd++)
		if (fcntl(fd, F_GETFD) < 0)
			sbx_die("fd %d is not open (not started by the broker?)",
				fd);
	if (syscall(SYS_close_range, SBX_BOOTSTRAP_FD + 1, ~0u, 0) < 0)
		sbx_die("close_range: %s", strerror(errno));
}

/*
 * Make "/" an empty, read-only tmpfs: mount it somewhere, pivot into it,
 * detach the old root. Mount events stay in our namespace (private).
 */
static void sbx_pivot_empty_root(void)
{
	const char *spot = NULL;
	struct stat st;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		sbx_die("cannot make the mounts private: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(sbx_mount_spots) / sizeof(sbx_mount_spots[0]); i++) {
		if (stat(sbx_mount_spots[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			spot = sbx_mount_spots[i];
			break;
		}
	}
	if (!spot)
		sbx_die("no directory to mount the empty root on");
	if (mount("bulkhead-root", spot, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "size=4k,nr_inodes=2,mode=0555") < 0)
		sbx_die("cannot mount a tmpfs on %s: %s", spot, strerror(errno));
	if (chdir(spot) < 0)
		sbx_die("chdir %s: %s", spot, strerror(errno));
	/* pivot_root(".", "."): the old root ends up stacked on ".". */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		sbx_die("pivot_root: %s", strerror(errno));
	if (umount2(".", MNT_DETACH) < 0)
		sbx_die("cannot detach the old root: %s", strerror(errno));
	if (chdir("/") < 0)
		sbx_die("chdir /: %s", strerror(errno));
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID |
		  MS_NODEV | MS_NOEXEC, NULL) < 0)
		sbx_die("cannot make the root read-only: %s", strerror(errno));
}

static void sbx_set_limit(int resource, const char *name, uint64_t want)
{
	struct rlimit old, rl;
	rlim_t v = want == SBX_UNLIMITED ? RLIM_INFINITY : (rlim_t)want;

	if (getrlimit(resource, &old) < 0)
		sbx_die("getrlimit %s: %s", name, strerror(errno));
	/* Never above what we were given (an unprivileged broker's limit). */
	if (old.rlim_max != RLIM_INFINITY && (v == RLIM_INFINITY || v > old.rlim_max))
		v = old.rlim_max;
	rl.rlim_cur = rl.rlim_max = v;
	if (setrlimit(resource, &rl) < 0)
		sbx_die("setrlimit %s: %s", name, strerror(errno));
}

static void sbx_set_limits(const struct sbx_limits *l)
{
	sbx_set_limit(RLIMIT_NPROC, "NPROC", l->tasks);
	sbx_set_limit(RLIMIT_FSIZE, "FSIZE", l->fsize);
	sbx_set_limit(RLIMIT_NOFILE, "NOFILE", l->nofile);
	sbx_set_limit(RLIMIT_CORE, "CORE", 0);
	sbx_set_limit(RLIMIT_MEMLOCK, "MEMLOCK", 0);
	sbx_set_limit(RLIMIT_MSGQUEUE, "MSGQUEUE", 0);
}

/*
 * Our own uid and gid. SECBIT_NO_SETUID_FIXUP keeps the capabilities across
 * setresuid(), so that the bounding set can be dropped and the securebits
 * locked (both need CAP_SETPCAP) afterwards, in the documented order.
 */
static void sbx_set_ids(const struct sbx_ids *ids)
{
	if (cap_set_secbits(SECBIT_NO_SETUID_FIXUP) < 0)
		sbx_die("cannot set the securebits: %s", strerror(errno));
	/* In a user namespace of an unprivileged broker, setgroups is denied
	 * (and the supplementary groups are not ours to drop). */
	if (!ids->userns && setgroups(0, NULL) < 0)
		sbx_die("setgroups: %s", strerror(errno));
	if (setresgid(ids->gid, ids->gid, ids->gid) < 0)
		sbx_die("setresgid %u: %s", ids->gid, strerror(errno));
	if (setresuid(ids->uid, ids->uid, ids->uid) < 0)
		sbx_die("setresuid %u: %s", ids->uid, strerror(errno));
}

static void sbx_drop_caps(void)
{
	const unsigned locked = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
				SECBIT_NO_SETUID_FIXUP |
				SECBIT_NO_SETUID_FIXUP_LOCKED |
				SECBIT_KEEP_CAPS_LOCKED |
				SECBIT_NO_CAP_AMBIENT_RAISE |
				SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
	cap_value_t max = (cap_value_t)cap_max_bits();
	cap_t none, now;
	int same;

	for (cap_value_t c = 0; c < max; c++)
		if (cap_drop_bound(c) < 0)
			sbx_die("cannot drop capability %d from the bounding "
				"set: %s", c, strerror(errno));
	if (cap_reset_ambient() < 0)
		sbx_die("cannot clear the ambient capabilities: %s",
			strerror(errno));
	if (cap_set_secbits(locked) < 0)
		sbx_die("cannot lock the securebits: %s", strerror(errno));
	none = cap_init();
	if (!none || cap_set_proc(none) < 0)
		sbx_die("cannot drop every capability: %s", strerror(errno));
	now = cap_get_proc();
	same = now ? cap_compare(now, none) : -1;
	cap_free(now);
	cap_free(none);
	if (same != 0)
		sbx_die("capabilities remain after dropping them all");
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		sbx_die("PR_SET_DUMPABLE: %s", strerror(errno));
}

/* What we asked for is what we got. */
static void sbx_verify(const struct sbx_ids *ids)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (getresuid(&r, &e, &s) < 0 || r != ids->uid || e != ids->uid ||
	    s != ids->uid)
		sbx_die("uid is not %u after setresuid", ids->uid);
	if (getresgid(&rg, &eg, &sg) < 0 || rg != ids->gid || eg != ids->gid ||
	    sg != ids->gid)
		sbx_die("gid is not %u after setresgid", ids->gid);
	if (prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) != 0)
		sbx_die("the bounding set still holds CAP_SYS_ADMIN");
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		sbx_die("NO_NEW_PRIVS is not set");
}

/* ---- entry points ------------------------------------------------------- */

void sbx_enter(int argc, char **argv, const char *policy)
{
	const struct sbx_policy *p = sbx_policy_find(policy);
	struct sbx_ids ids;
	int r;

	if (!p)
		sbx_die("no seccomp policy named '%s' is built in (add "
			"policy/%s.policy)", policy, policy);
	if (argc < 2 || sbx_parse_ids(argv[1], &ids) < 0)
		sbx_die("not started by the bulkhead broker (argv[1] must be "
			SBX_ARG_PREFIX "UID:GID)");
	sbx_close_fds();
	if (clearenv() != 0)
		sbx_die("cannot clear the environment");
	/*
	 * One malloc arena: a thread's first malloc would otherwise make
	 * glibc size its arenas by counting CPUs through /sys and /proc,
	 * which no policy allows (and the empty root lacks).
	 */
	if (mallopt(M_ARENA_MAX, 1) != 1)
		sbx_die("cannot limit malloc to one arena");
	/* The broker cloned us into new namespaces: we are their init. */
	if (getpid() != 1)
		sbx_die("not in a pid namespace of our own (pid %d)", getpid());
	sbx_pivot_empty_root();
	sbx_set_limits(&p->limits);
	sbx_set_ids(&ids);
	sbx_drop_caps();
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		sbx_die("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	sbx_verify(&ids);
	r = sbx_load_filter(p->filter, p->len, true);
	if (r < 0)
		sbx_die("cannot load the seccomp policy '%s': %s", policy,
			strerror(-r));
	sbx_note_loaded(policy);
}

void sbx_enter_device(int argc, char **argv, const char *device)
{
	char policy[64];

	snprintf(policy, sizeof(policy), "dev-%s", device);
	sbx_enter(argc, argv, policy);
}

void sbx_restrict(const char *policy, unsigned tasks)
{
	const struct sbx_policy *p = sbx_policy_find(policy);
	int r;

	if (!p)
		sbx_die("no seccomp policy named '%s' is built in", policy);
	if (tasks)
		sbx_set_limit(RLIMIT_NPROC, "NPROC", tasks);
#ifdef BULKHEAD_TEST
	sbx_test_arm(policy);
#endif
	r = sbx_load_filter(p->filter, p->len, true);
	if (r < 0)
		sbx_die("cannot load the seccomp policy '%s': %s", policy,
			strerror(-r));
	sbx_note_loaded(policy);
}

void sbx_thread_enter(const char *policy, const char *name_fmt, ...)
{
	const struct sbx_policy *p = sbx_policy_find(policy);
	char name[16];
	va_list ap;
	int r;

	if (!p)
		sbx_die("no seccomp policy named '%s' is built in", policy);
	if (name_fmt) {
		va_start(ap, name_fmt);
		vsnprintf(name, sizeof(name), name_fmt, ap);
		va_end(ap);
		if (prctl(PR_SET_NAME, name, 0, 0, 0) < 0)
			sbx_die("cannot name the thread: %s", strerror(errno));
	}
	r = sbx_load_filter(p->filter, p->len, false);
	if (r < 0)
		sbx_die("cannot load the seccomp policy '%s' on a thread: %s",
			policy, strerror(-r));
	sbx_thread_policy = p->name;
}
