/* SPDX-License-Identifier: MIT */
/*
 * policy: the policy parser (good and malformed policies, with the errors a
 * person gets), the libseccomp compiler (what the BPF decides, run through
 * sbx_bpf_run), the policies built into every binary, and real filters
 * killing a process with SIGSYS.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/kvm.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "device-procs/manifest.h"
#include "policy/sbx.h"
#include "tests/unit/suites.h"

/* The pthread_create clone flags the policies allow. */
#define P_THREAD_FLAGS (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | \
			CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS | \
			CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID)

/* Fixture: a scratch folder for policy files. */
static char p_dir[64];
static char p_err[512];

static void p_setup(void)
{
	snprintf(p_dir, sizeof(p_dir), "/tmp/bulkhead-policy.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(p_dir));
	p_err[0] = '\0';
}

static void p_teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p_dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Write name in the scratch folder; returns its path (static buffer). */
static const char *p_write(const char *name, const char *text)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", p_dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	return path;
}

/* Parse text as a.policy; returns the parser's status, message in p_err. */
static int p_parse(const char *text, struct sbx_pol **out)
{
	struct sbx_pol *pol = NULL;
	int r = sbx_pol_parse(p_write("a.policy", text), &pol, p_err,
			      sizeof(p_err));

	if (out)
		*out = pol;
	else
		sbx_pol_free(pol);
	return r;
}

/* text must be refused with a message containing want. */
static void p_refused(const char *text, const char *want)
{
	ck_assert_int_lt(p_parse(text, NULL), 0);
	if (!strstr(p_err, want))
		ck_abort_msg("policy \"%s\": error \"%s\" lacks \"%s\"", text,
			     p_err, want);
}

/* What a filter decides for syscall nr with args (native arch). */
static uint32_t p_decide_arch(const struct sock_filter *f, unsigned len,
			      uint32_t arch, int nr, uint64_t a0, uint64_t a1,
			      uint64_t a2)
{
	struct seccomp_data d = {
		.nr = nr, .arch = arch,
		.args = { a0, a1, a2, 0, 0, 0 },
	};

	return sbx_bpf_run(f, len, &d);
}

static uint32_t p_decide(const struct sock_filter *f, unsigned len, int nr,
			 uint64_t a0, uint64_t a1, uint64_t a2)
{
	return p_decide_arch(f, len, AUDIT_ARCH_X86_64, nr, a0, a1, a2);
}

static uint32_t p_action(uint32_t ret)
{
	return ret & SECCOMP_RET_ACTION_FULL;
}

/* ---- parsing ------------------------------------------------------------ */

START_TEST(test_parse_good)
{
	struct sbx_pol *pol;
	const struct sbx_rule *r;

	p_write("base.policy",
		"# the base\n"
		"read: 1\n"
		"@limit tasks 3\n"
		"ioctl: arg1 == KVM_RUN   # enter the guest\n");
	ck_assert_int_eq(p_parse(
		"@include base.policy\n"
		"\n"
		"  write: 1\n"
		"ioctl: arg1 == KVM_GET_REGS || arg1 == 0x1234\n"
		"mmap: arg2 in ~PROT_EXEC && arg3 & MAP_SHARED\n"
		"futex: arg1 == FUTEX_WAIT|FUTEX_PRIVATE_FLAG\n"
		"clone3: return ENOSYS\n"
		"@limit fsize unlimited\n"
		"@limit nofile 0x40\n", &pol), 0);
	ck_assert_str_eq(p_err, "");
	ck_assert_uint_eq(pol->nrules, 6);
	ck_assert_uint_eq(pol->limits.tasks, 3);
	ck_assert_uint_eq(pol->limits.nofile, 64);
	ck_assert(pol->limits.fsize == SBX_UNLIMITED);

	r = sbx_pol_rule(pol, SYS_read);
	ck_assert_ptr_nonnull(r);
	ck_assert(r->allow);
	ck_assert(strstr(r->where, "base.policy:2") != NULL);

	r = sbx_pol_rule(pol, SYS_ioctl);
	ck_assert_ptr_nonnull(r);
	ck_assert(!r->allow);
	ck_assert_uint_eq(r->nterms, 3);  /* lines add up */
	ck_assert_uint_eq(r->terms[0].cmps[0].arg, 1);
	ck_assert(r->terms[0].cmps[0].value == KVM_RUN);
	ck_assert(r->terms[1].cmps[0].value == KVM_GET_REGS);
	ck_assert(r->terms[2].cmps[0].value == 0x1234);

	r = sbx_pol_rule(pol, SYS_mmap);
	ck_assert_uint_eq(r->nterms, 1);
	ck_assert_uint_eq(r->terms[0].ncmps, 2);
	ck_assert_int_eq(r->terms[0].cmps[0].op, SBX_OP_IN);
	ck_assert(r->terms[0].cmps[0].value == ~(uint64_t)PROT_EXEC);
	ck_assert_int_eq(r->terms[0].cmps[1].op, SBX_OP_ALLSET);
	ck_assert_uint_eq(r->terms[0].cmps[1].arg, 3);

	r = sbx_pol_rule(pol, SYS_futex);
	ck_assert(r->terms[0].cmps[0].value == 128);

	r = sbx_pol_rule(pol, SYS_clone3);
	ck_assert_int_eq(r->errno_val, ENOSYS);
	ck_assert_ptr_null(sbx_pol_rule(pol, SYS_openat));
	sbx_pol_free(pol);
}
END_TEST

START_TEST(test_parse_defaults_and_duplicates)
{
	struct sbx_pol *pol;
	const struct sbx_rule *r;

	/* The same include twice (a diamond) and a repeated term are fine. */
	p_write("c.policy", "read: 1\nioctl: arg1 == KVM_RUN\n");
	p_write("b.policy", "@include c.policy\n");
	ck_assert_int_eq(p_parse("@include b.policy\n@include c.policy\n"
				 "ioctl: arg1 == KVM_RUN\nread: 1\n", &pol), 0);
	r = sbx_pol_rule(pol, SYS_ioctl);
	ck_assert_uint_eq(r->nterms, 1);
	ck_assert_uint_eq(pol->limits.tasks, 1);
	ck_assert_uint_eq(pol->limits.nofile, 16);
	ck_assert_uint_eq(pol->limits.fsize, 0);
	sbx_pol_free(pol);
}
END_TEST

START_TEST(test_parse_unknown_syscall)
{
	p_refused("read: 1\nopne: 1\n", "a.policy:2: unknown syscall 'opne'");
	p_refused("socketcall: 1\n", "does not exist on this architecture");
}
END_TEST

START_TEST(test_parse_bad_constant)
{
	p_refused("ioctl: arg1 == KVM_RUNN\n",
		  "a.policy:1: unknown constant 'KVM_RUNN'");
	p_refused("ioctl: arg1 == KVM_RUN|NOPE\n", "unknown constant 'NOPE'");
	p_refused("ioctl: arg1 == 0xzz\n", "'0xzz' is not a valid number");
	p_refused("ioctl: arg1 == 99999999999999999999999\n",
		  "is not a valid number");
	p_refused("ioctl: arg1 ==\n", "at the end of the line");
	p_refused("read: return EWHAT\n", "unknown errno 'EWHAT'");
	p_refused("read: return\n", "needs an errno name");
}
END_TEST

START_TEST(test_parse_include_loops)
{
	p_write("b.policy", "read: 1\n@include a.policy\n");
	p_refused("@include b.policy\n",
		  "b.policy:2: @include loop: a.policy -> b.policy -> a.policy");
	p_refused("write: 1\n@include a.policy\n",
		  "a.policy:2: @include loop: a.policy -> a.policy");
	p_refused("@include missing.policy\n",
		  "a.policy:1: cannot include");
	p_refused("@include /etc/passwd\n", "relative to this file");
	p_refused("@include\n", "needs a file name");
}
END_TEST

START_TEST(test_parse_bad_syntax)
{
	p_refused("read 1\n", "expected ':' after 'read'");
	p_refused("read:\n", "expected 1, 'return ERRNO'");
	p_refused("read: 0\n", "leave read out to forbid it");
	p_refused("read: 1 2\n", "unexpected '2'");
	p_refused("ioctl: arg6 == 1\n", "arg0 to arg5");
	p_refused("ioctl: argv == 1\n", "expected arg0 to arg5");
	p_refused("ioctl: arg1 = 1\n", "expected a comparison");
	p_refused("ioctl: arg1 == 1 && arg1 == 2\n", "arg1 is compared twice");
	p_refused("ioctl: arg1 == 1 ||\n", "expected arg0 to arg5");
	p_refused("@frequency x\n", "unknown directive");
	p_refused("@limit tasks 0\n", "unable to run");
	p_refused("@limit cpu 3\n", "unknown limit 'cpu'");
	p_refused("@limit fsize lots\n", "'lots' is not a number");
	p_refused(": 1\n", "expected a syscall name");
}
END_TEST

START_TEST(test_parse_conflicts)
{
	p_refused("read: 1\nread: return EPERM\n",
		  "a.policy:2: read is allowed at");
	p_refused("read: return EPERM\nread: 1\n", "cannot also be allowed");
	p_refused("ioctl: arg1 == 1\nioctl: return ENOTTY\n",
		  "cannot also return ENOTTY");
	p_refused("read: return EPERM\nread: return EACCES\n",
		  "already returns another errno");
	/* The same errno twice is fine. */
	ck_assert_int_eq(p_parse("read: return EPERM\nread: return EPERM\n",
				 NULL), 0);
}
END_TEST

START_TEST(test_parse_missing_file)
{
	struct sbx_pol *pol = NULL;

	ck_assert_int_eq(sbx_pol_parse("/nonexistent/x.policy", &pol, p_err,
				       sizeof(p_err)), -ENOENT);
	ck_assert(strstr(p_err, "cannot open policy '/nonexistent/x.policy'"));
	ck_assert_ptr_null(pol);
}
END_TEST

/* ---- compiling ---------------------------------------------------------- */

START_TEST(test_compile_decisions)
{
	struct sbx_pol *pol;
	struct sock_filter *f;
	unsigned len;

	ck_assert_int_eq(p_parse(
		"read: 1\n"
		"ioctl: arg1 == KVM_RUN || arg1 == KVM_GET_REGS\n"
		"mmap: arg2 in ~PROT_EXEC\n"
		"mprotect: arg2 & PROT_READ && arg1 < 0x10000\n"
		"clone: arg0 == CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|"
		"CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|"
		"CLONE_CHILD_CLEARTID\n"
		"clone3: return ENOSYS\n", &pol), 0);
	ck_assert_int_eq(sbx_pol_compile(pol, false, &f, &len, p_err,
					 sizeof(p_err)), 0);
	ck_assert_uint_gt(len, 0);

	ck_assert_uint_eq(p_decide(f, len, SYS_read, 0, 0, 0), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(p_decide(f, len, SYS_write, 2, 0, 0),
			  SECCOMP_RET_KILL_PROCESS);
	ck_assert_uint_eq(p_decide(f, len, SYS_openat, 0, 0, 0),
			  SECCOMP_RET_KILL_PROCESS);
	/* ioctl: by request number, 64-bit compares */
	ck_assert_uint_eq(p_decide(f, len, SYS_ioctl, 5, KVM_RUN, 0),
			  SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(p_decide(f, len, SYS_ioctl, 5, KVM_GET_REGS, 0),
			  SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(p_decide(f, len, SYS_ioctl, 5, KVM_CREATE_VM, 0),
			  SECCOMP_RET_KILL_PROCESS);
	ck_assert_uint_eq(p_decide(f, len, SYS_ioctl, 5,
				   KVM_RUN | (1ull << 32), 0),
			  SECCOMP_RET_KILL_PROCESS);
	/* mmap: anything but PROT_EXEC */
	ck_assert_uint_eq(p_decide(f, len, SYS_mmap, 0, 4096,
				   PROT_READ | PROT_WRITE), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(p_decide(f, len, SYS_mmap, 0, 4096, PROT_NONE),
			  SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(p_decide(f, len, SYS_mmap, 0, 4096,
				   PROT_READ | PROT_EXEC),
			  SECCOMP_RET_KILL_PROCESS);
	/* mprotect: PROT_READ set and length below 64 KiB, both */
	ck_assert_uint_eq(p_decide(f, len, SYS_mprotect, 0, 4096,
				   PROT_READ | PROT_WRITE), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(p_decide(f, len, SYS_mprotect, 0, 4096, PROT_WRITE),
			  SECCOMP_RET_KILL_PROCESS);
	ck_assert_uint_eq(p_decide(f, len, SYS_mprotect, 0, 0x10000, PROT_READ),
			  SECCOMP_RET_KILL_PROCESS);
	/* threads yes, fork no; clone3 fails */
	ck_assert_uint_eq(p_decide(f, len, SYS_clone, P_THREAD_FLAGS, 0, 0),
			  SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(p_decide(f, len, SYS_clone, CLONE_CHILD_CLEARTID |
				   CLONE_CHILD_SETTID | SIGCHLD, 0, 0),
			  SECCOMP_RET_KILL_PROCESS);
	ck_assert_uint_eq(p_decide(f, len, SYS_clone3, 0, 0, 0),
			  SECCOMP_RET_ERRNO | ENOSYS);
	/* a foreign architecture, and the x32 ABI, are killed */
	ck_assert_uint_eq(p_decide_arch(f, len, AUDIT_ARCH_I386, 3, 0, 0, 0),
			  SECCOMP_RET_KILL_PROCESS);
	ck_assert_uint_eq(p_decide(f, len, SYS_read | 0x40000000, 0, 0, 0),
			  SECCOMP_RET_KILL_PROCESS);
	free(f);

	/* The debug build traps (and logs) instead of killing. */
	ck_assert_int_eq(sbx_pol_compile(pol, true, &f, &len, p_err,
					 sizeof(p_err)), 0);
	ck_assert_uint_eq(p_action(p_decide(f, len, SYS_openat, 0, 0, 0)),
			  SECCOMP_RET_TRAP);
	ck_assert_uint_eq(p_decide(f, len, SYS_read, 0, 0, 0), SECCOMP_RET_ALLOW);
	free(f);
	sbx_pol_free(pol);
}
END_TEST

START_TEST(test_bpf_run_malformed)
{
	const struct sock_filter bad_load[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 4096),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	const struct sock_filter no_ret[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),
	};
	struct seccomp_data d = { .nr = SYS_read };

	ck_assert_uint_eq(sbx_bpf_run(bad_load, 2, &d), SECCOMP_RET_KILL_PROCESS);
	ck_assert_uint_eq(sbx_bpf_run(no_ret, 1, &d), SECCOMP_RET_KILL_PROCESS);
}
END_TEST

START_TEST(test_const_and_errno_lookup)
{
	uint64_t v;
	int e;

	ck_assert_int_eq(sbx_const_lookup("KVM_RUN", &v), 0);
	ck_assert(v == KVM_RUN);
	ck_assert_int_eq(sbx_const_lookup("AT_FDCWD", &v), 0);
	ck_assert(v == (uint64_t)(int64_t)AT_FDCWD);
	ck_assert_int_eq(sbx_const_lookup("KVM_GET_REGS", &v), 0);
	ck_assert(v == 0x8090ae81ull);  /* unsigned: no sign extension */
	ck_assert_int_eq(sbx_const_lookup("NOT_A_CONSTANT", &v), -ENOENT);
	ck_assert_int_eq(sbx_errno_lookup("EPERM", &e), 0);
	ck_assert_int_eq(e, EPERM);
	ck_assert_int_eq(sbx_errno_lookup("ENOSYS", &e), 0);
	ck_assert_int_eq(e, ENOSYS);
	ck_assert_int_eq(sbx_errno_lookup("EBOGUS", &e), -ENOENT);
}
END_TEST

/* ---- the policies built into the binaries ------------------------------- */

static uint32_t p_kill(void)
{
	return sbx_seccomp_debug ? SECCOMP_RET_TRAP : SECCOMP_RET_KILL_PROCESS;
}

static uint32_t p_builtin(const char *name, int nr, uint64_t a0, uint64_t a1,
			  uint64_t a2)
{
	const struct sbx_policy *p = sbx_policy_find(name);

	if (!p)
		ck_abort_msg("no built-in policy '%s'", name);
	return p_action(p_decide(p->filter, p->len, nr, a0, a1, a2));
}

START_TEST(test_builtin_every_process_has_a_policy)
{
	const char *kinds[] = { "worker-setup", "worker-run", "emt",
				"common-device" };
	char name[64];

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		ck_assert_msg(sbx_policy_find(kinds[i]) != NULL,
			      "no policy '%s'", kinds[i]);
	/* Every device in the manifest. */
	for (unsigned i = 0; i < dev_nmanifests; i++) {
		snprintf(name, sizeof(name), "dev-%s", dev_manifests[i]->name);
		ck_assert_msg(sbx_policy_find(name) != NULL,
			      "device '%s' has no policy/%s.policy",
			      dev_manifests[i]->name, name);
	}
	ck_assert_ptr_null(sbx_policy_find("dev-no-such-device"));
	ck_assert_uint_gt(sbx_nsyscall_names, SYS_openat);
	ck_assert_str_eq(sbx_syscall_names[SYS_openat], "openat");
}
END_TEST

START_TEST(test_builtin_common_device)
{
	const char *p = "common-device";
	const uint32_t kill = p_kill();

	/* What the issue lists: a device may do none of these. */
	ck_assert_uint_eq(p_builtin(p, SYS_openat, AT_FDCWD, 0, 0), kill);
	ck_assert_uint_eq(p_builtin(p, SYS_open, 0, 0, 0), kill);
	ck_assert_uint_eq(p_builtin(p, SYS_socket, AF_INET, SOCK_STREAM, 0), kill);
	ck_assert_uint_eq(p_builtin(p, SYS_socket, AF_UNIX, SOCK_STREAM, 0), kill);
	ck_assert_uint_eq(p_builtin(p, SYS_execve, 0, 0, 0), kill);
	ck_assert_uint_eq(p_builtin(p, SYS_execveat, 0, 0, 0), kill);
	ck_assert_uint_eq(p_builtin(p, SYS_ptrace, 0, 0, 0), kill);
	ck_assert_uint_eq(p_builtin(p, SYS_fork, 0, 0, 0), kill);
	ck_assert_uint_eq(p_builtin(p, SYS_vfork, 0, 0, 0), kill);
	ck_assert_uint_eq(p_builtin(p, SYS_clone, CLONE_CHILD_CLEARTID |
				    CLONE_CHILD_SETTID | SIGCHLD, 0, 0), kill);
	ck_assert_uint_eq(p_builtin(p, SYS_ioctl, 0, KVM_CREATE_VM, 0), kill);
	ck_assert_uint_eq(p_builtin(p, SYS_ioctl, 0, KVM_RUN, 0), kill);
	ck_assert_uint_eq(p_builtin(p, SYS_mprotect, 0, 4096,
				    PROT_READ | PROT_EXEC), kill);
	ck_assert_uint_eq(p_builtin(p, SYS_mmap, 0, 4096, PROT_EXEC), kill);
	ck_assert_uint_eq(p_builtin(p, SYS_setuid, 0, 0, 0), kill);
	ck_assert_uint_eq(p_builtin(p, SYS_unshare, 0, 0, 0), kill);
	ck_assert_uint_eq(p_builtin(p, SYS_kill, 1, SIGKILL, 0), kill);
	/* What it needs. */
	ck_assert_uint_eq(p_builtin(p, SYS_read, 0, 0, 0), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(p_builtin(p, SYS_write, 0, 0, 0), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(p_builtin(p, SYS_clone, P_THREAD_FLAGS, 0, 0),
			  SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(p_builtin(p, SYS_clone3, 0, 0, 0), SECCOMP_RET_ERRNO);
	ck_assert_uint_eq(p_builtin(p, SYS_futex, 0, 0 /* FUTEX_WAIT */, 0),
			  SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(p_builtin(p, SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE),
			  SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(p_builtin(p, SYS_exit_group, 0, 0, 0),
			  SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(p_builtin(p, SYS_rt_sigreturn, 0, 0, 0),
			  SECCOMP_RET_ALLOW);
}
END_TEST

START_TEST(test_builtin_worker_phases)
{
	const uint32_t kill = p_kill();

	/* Set-up creates the VM; the run phase cannot create another. */
	ck_assert_uint_eq(p_builtin("worker-setup", SYS_ioctl, 4, KVM_CREATE_VM, 0),
			  SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(p_builtin("worker-run", SYS_ioctl, 4, KVM_CREATE_VM, 0),
			  kill);
	ck_assert_uint_eq(p_builtin("worker-run", SYS_ioctl, 4, KVM_CREATE_VCPU, 0),
			  kill);
	ck_assert_uint_eq(p_builtin("worker-run", SYS_ioctl, 4, KVM_CREATE_IRQCHIP,
				    0), kill);
	ck_assert_uint_eq(p_builtin("worker-run", SYS_ioctl, 4, KVM_SET_TSS_ADDR, 0),
			  kill);
	ck_assert_uint_eq(p_builtin("worker-run", SYS_ioctl, 4, KVM_IRQFD, 0), kill);
	ck_assert_uint_eq(p_builtin("worker-run", SYS_eventfd2, 0, 0, 0), kill);
	/* The CPUID query (TSC deadline) is set-up's only. */
	ck_assert_uint_eq(p_builtin("worker-setup", SYS_ioctl, 4,
				    KVM_CHECK_EXTENSION, 0), SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(p_builtin("worker-run", SYS_ioctl, 4,
				    KVM_CHECK_EXTENSION, 0), kill);
	ck_assert_uint_eq(p_builtin("worker-run", SYS_ioctl, 4, KVM_RUN, 0),
			  SECCOMP_RET_ALLOW);
	/* No phase opens files or makes sockets or processes. */
	for (int i = 0; i < 3; i++) {
		const char *p = (const char *[]){ "worker-setup", "worker-run",
						  "emt" }[i];

		ck_assert_uint_eq(p_builtin(p, SYS_openat, AT_FDCWD, 0, 0), kill);
		ck_assert_uint_eq(p_builtin(p, SYS_socket, AF_UNIX, 0, 0), kill);
		ck_assert_uint_eq(p_builtin(p, SYS_execve, 0, 0, 0), kill);
		ck_assert_uint_eq(p_builtin(p, SYS_mprotect, 0, 4096, PROT_EXEC),
				  kill);
		ck_assert_uint_eq(p_builtin(p, SYS_clone, SIGCHLD, 0, 0), kill);
	}
	/* An EMT runs its vCPU and nothing of the main thread's. */
	ck_assert_uint_eq(p_builtin("emt", SYS_ioctl, 4, KVM_RUN, 0),
			  SECCOMP_RET_ALLOW);
	ck_assert_uint_eq(p_builtin("emt", SYS_ioctl, 4, KVM_IRQFD, 0), kill);
	ck_assert_uint_eq(p_builtin("emt", SYS_clone, P_THREAD_FLAGS, 0, 0), kill);
	ck_assert_uint_eq(p_builtin("emt", SYS_recvmsg, 3, 0, MSG_CMSG_CLOEXEC),
			  kill);
}
END_TEST

START_TEST(test_builtin_limits)
{
	const struct sbx_policy *p;

	p = sbx_policy_find("common-device");
	ck_assert_uint_eq(p->limits.tasks, 2);
	ck_assert_uint_eq(p->limits.fsize, 0);
	ck_assert_uint_le(p->limits.nofile, 64);
	p = sbx_policy_find("dev-uart");
	ck_assert(p->limits.fsize == SBX_UNLIMITED);  /* console to a file */
	p = sbx_policy_find("dev-debug-exit");
	ck_assert_uint_eq(p->limits.fsize, 0);
	p = sbx_policy_find("worker-setup");
	ck_assert(p->limits.fsize == SBX_UNLIMITED);  /* a save's file */
	/* main, 16 EMTs, the saver and 3 helpers, KVM's recovery thread */
	ck_assert_uint_eq(p->limits.tasks, 22);
}
END_TEST

/* ---- identities ---------------------------------------------------------- */

START_TEST(test_parse_ids)
{
	struct sbx_ids ids;
	char arg[64];

	snprintf(arg, sizeof(arg), "--sandbox=%u:%u", SBX_ID_BASE + 7,
		 SBX_ID_BASE + 9);
	ck_assert_int_eq(sbx_parse_ids(arg, &ids), 0);
	ck_assert_uint_eq(ids.uid, SBX_ID_BASE + 7);
	ck_assert_uint_eq(ids.gid, SBX_ID_BASE + 9);
	ck_assert(!ids.userns);
	snprintf(arg, sizeof(arg), "--sandbox=%u:%u:userns", SBX_ID_BASE,
		 SBX_ID_BASE);
	ck_assert_int_eq(sbx_parse_ids(arg, &ids), 0);
	ck_assert(ids.userns);

	ck_assert_int_eq(sbx_parse_ids(NULL, &ids), -EINVAL);
	ck_assert_int_eq(sbx_parse_ids("--sandbox=0:0", &ids), -EINVAL);
	ck_assert_int_eq(sbx_parse_ids("--sandbox=", &ids), -EINVAL);
	ck_assert_int_eq(sbx_parse_ids("--sandbox=1795162112", &ids), -EINVAL);
	ck_assert_int_eq(sbx_parse_ids("--sandbox=1795162112:x", &ids), -EINVAL);
	ck_assert_int_eq(sbx_parse_ids("--sandbox=1795162112:1795162112:root",
				       &ids), -EINVAL);
	ck_assert_int_eq(sbx_parse_ids("--sandbox=-1:1795162112", &ids), -EINVAL);
	snprintf(arg, sizeof(arg), "--sandbox=%u:%u", SBX_ID_BASE + SBX_ID_SPAN,
		 SBX_ID_BASE);
	ck_assert_int_eq(sbx_parse_ids(arg, &ids), -EINVAL);
	ck_assert_int_eq(sbx_parse_ids("--sanbox=1795162112:1795162112", &ids),
			 -EINVAL);
}
END_TEST

/* ---- real filters -------------------------------------------------------- */

/* Compile text and load it on this (forked test) process. */
static void p_load(const char *text)
{
	struct sbx_pol *pol;
	struct sock_filter *f;
	unsigned len;

	ck_assert_int_eq(p_parse(text, &pol), 0);
	ck_assert_int_eq(sbx_pol_compile(pol, false, &f, &len, p_err,
					 sizeof(p_err)), 0);
	sbx_pol_free(pol);
	/* The test ends with the process: no teardown will run. */
	p_teardown();
	ck_assert_int_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	ck_assert_int_eq(sbx_load_filter(f, len, true), 0);
	free(f);
}

START_TEST(test_filter_kills_forbidden_syscall)
{
	p_load("exit_group: 1\nexit: 1\nwrite: 1\nrt_sigreturn: 1\n");
	syscall(SYS_getppid);  /* not listed: SIGSYS */
	_exit(3);
}
END_TEST

START_TEST(test_filter_kills_forbidden_ioctl)
{
	p_load("exit_group: 1\nwrite: 1\nioctl: arg1 == FIONREAD\n");
	syscall(SYS_ioctl, 0, KVM_CREATE_VM, 0);
	_exit(3);
}
END_TEST

START_TEST(test_filter_allows_and_returns_errno)
{
	int n = 0;

	/* write: Check reports each passed assertion to its runner. */
	p_load("exit_group: 1\nwrite: 1\nioctl: arg1 == FIONREAD\n"
	       "clone3: return ENOSYS\nopenat: return EACCES\n");
	if (syscall(SYS_ioctl, 0, FIONREAD, &n) < 0 && errno != ENOTTY &&
	    errno != EINVAL)
		_exit(4);
	if (syscall(SYS_clone3, NULL, 0) != -1 || errno != ENOSYS)
		_exit(5);
	if (syscall(SYS_openat, AT_FDCWD, "/", O_RDONLY) != -1 ||
	    errno != EACCES)
		_exit(6);
	syscall(SYS_exit_group, 0);
}
END_TEST

Suite *policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_add_checked_fixture(tc, p_setup, p_teardown);
	tcase_add_test(tc, test_parse_good);
	tcase_add_test(tc, test_parse_defaults_and_duplicates);
	tcase_add_test(tc, test_parse_unknown_syscall);
	tcase_add_test(tc, test_parse_bad_constant);
	tcase_add_test(tc, test_parse_include_loops);
	tcase_add_test(tc, test_parse_bad_syntax);
	tcase_add_test(tc, test_parse_conflicts);
	tcase_add_test(tc, test_parse_missing_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("compile");
	tcase_add_checked_fixture(tc, p_setup, p_teardown);
	tcase_add_test(tc, test_compile_decisions);
	tcase_add_test(tc, test_bpf_run_malformed);
	tcase_add_test(tc, test_const_and_errno_lookup);
	suite_add_tcase(s, tc);

	tc = tcase_create("builtin");
	tcase_add_test(tc, test_builtin_every_process_has_a_policy);
	tcase_add_test(tc, test_builtin_common_device);
	tcase_add_test(tc, test_builtin_worker_phases);
	tcase_add_test(tc, test_builtin_limits);
	tcase_add_test(tc, test_parse_ids);
	suite_add_tcase(s, tc);

	/* These load filters: each runs in its own forked process (CK_FORK,
	 * Check's default), which the filter then kills or ends. */
	tc = tcase_create("filters");
	tcase_add_checked_fixture(tc, p_setup, p_teardown);
	tcase_add_test_raise_signal(tc, test_filter_kills_forbidden_syscall,
				    SIGSYS);
	tcase_add_test_raise_signal(tc, test_filter_kills_forbidden_ioctl,
				    SIGSYS);
	tcase_add_exit_test(tc, test_filter_allows_and_returns_errno, 0);
	suite_add_tcase(s, tc);
	return s;
}
