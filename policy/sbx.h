/* SPDX-License-Identifier: MIT */
/*
 * policy: the sandbox every Bulkhead child confines itself in (sbx_enter and
 * friends, at run time), and the policy language that says which syscalls
 * each kind of process may make (parsed and compiled to BPF with libseccomp
 * at build time, by bulkhead-policyc and the unit tests).
 *
 * The broker spawns each child in new pid, net, ipc, mount and uts
 * namespaces (and a user namespace when it is unprivileged) and passes the
 * child's own uid and gid as argv[1] ("--sandbox=UID:GID[:userns]"). The
 * child execs its binary and, first thing in main(), calls sbx_enter(),
 * which in this order: closes every fd above 3, clears the environment,
 * pivots into an empty read-only tmpfs, sets its rlimits, switches to its
 * uid/gid, drops every capability (effective, permitted, inheritable,
 * bounding, ambient), locks the securebits, sets NO_NEW_PRIVS and loads its
 * seccomp filter on every thread. docs/sandbox.md has the whole story.
 */
#ifndef BULKHEAD_SBX_H
#define BULKHEAD_SBX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/filter.h>
#include <linux/seccomp.h>

/* ---- what the broker and its children agree on ------------------------- */

/*
 * Every child runs as uid = gid = SBX_ID_BASE + its pid in the broker's pid
 * namespace: unique among running processes, so unique per VM and per
 * process, with no registry. Pids stay below 2^22 (PID_MAX_LIMIT), so the
 * range is [SBX_ID_BASE, SBX_ID_BASE + SBX_ID_SPAN).
 */
#define SBX_ID_BASE 0x6b000000u
#define SBX_ID_SPAN 0x00400000u
/* argv[1] of every child: "--sandbox=UID:GID" or "--sandbox=UID:GID:userns" */
#define SBX_ARG_PREFIX "--sandbox="
/* The fds every child keeps: stdin and stdout (/dev/null), stderr, and its
 * bootstrap channel. */
#define SBX_BOOTSTRAP_FD 3
/* Exit status of a child that could not confine itself. */
#define SBX_EXIT_FAILED 125

struct sbx_ids {
	uint32_t uid;
	uint32_t gid;
	bool userns;   /* in a user namespace the broker made (unprivileged) */
};

/* Parse the "--sandbox=..." argument. -EINVAL if malformed or out of range. */
int sbx_parse_ids(const char *arg, struct sbx_ids *out);

/* ---- compiled policies (build/policy/policies.c) ------------------------ */

#define SBX_UNLIMITED UINT64_MAX

/* Resource limits a policy asks for (`@limit` lines). */
struct sbx_limits {
	uint64_t tasks;    /* RLIMIT_NPROC: threads the process runs */
	uint64_t nofile;   /* RLIMIT_NOFILE */
	uint64_t fsize;    /* RLIMIT_FSIZE: 0 unless it writes regular files */
};
#define SBX_DEFAULT_LIMITS { .tasks = 1, .nofile = 16, .fsize = 0 }

struct sbx_policy {
	const char *name;               /* "worker-setup", "dev-uart" */
	const struct sock_filter *filter;
	unsigned short len;
	struct sbx_limits limits;
};

/* Emitted by bulkhead-policyc; every binary that sandboxes itself links one
 * table. */
extern const struct sbx_policy sbx_policies[];
extern const unsigned sbx_npolicies;
/* Syscall names by number, for SECCOMP_DEBUG reports. */
extern const char *const sbx_syscall_names[];
extern const unsigned sbx_nsyscall_names;
/* 1 when built with `make SECCOMP_DEBUG=1`: filters trap instead of kill. */
extern const int sbx_seccomp_debug;

const struct sbx_policy *sbx_policy_find(const char *name);

/* ---- run time: confining this process ----------------------------------- */

/*
 * Enter the sandbox, with the policy named policy (the first filter of the
 * process). Call it first thing in main(), before reading anything from a
 * peer. Never returns on failure: it prints why and exits with
 * SBX_EXIT_FAILED, since a process that cannot confine itself must not go on.
 */
void sbx_enter(int argc, char **argv, const char *policy);
/* sbx_enter() with the policy of device kind `device`: "dev-<device>". */
void sbx_enter_device(int argc, char **argv, const char *device);
/*
 * Stack a stricter filter on every thread of the process (TSYNC), and lower
 * RLIMIT_NPROC to tasks unless tasks is 0. Never returns on failure.
 */
void sbx_restrict(const char *policy, unsigned tasks);
/*
 * For a thread of its own kind (EMT): name the calling thread (printf-style,
 * NULL for no name), then stack policy on this thread only. Never returns on
 * failure.
 */
void sbx_thread_enter(const char *policy, const char *name_fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Load one filter; all_threads: TSYNC. Returns 0 or -errno. */
int sbx_load_filter(const struct sock_filter *filter, unsigned len,
		    bool all_threads);

/*
 * Defined only in test builds (build/tests/bin, never installed, compiled
 * with -DBULKHEAD_TEST): called by sbx_restrict() before it loads policy, to
 * arm the test commands that prove the filter works (policy/sbx-test.c).
 */
void sbx_test_arm(const char *policy);

/* ---- build time: the policy language ------------------------------------ */

/*
 * One line per syscall, as in crosvm and minijail:
 *
 *   # comment
 *   @include common.policy        (relative to the including file)
 *   @limit tasks 2                (tasks, nofile, fsize; a number or
 *                                  `unlimited`; the last one seen wins)
 *   read: 1                       (always allowed)
 *   ioctl: arg1 == KVM_RUN || arg1 == KVM_GET_REGS
 *   mmap: arg2 in ~PROT_EXEC      (no bit outside the mask)
 *   clone3: return ENOSYS         (fails with that errno)
 *
 * Comparisons: argN (0-5) with ==, !=, <, <=, >, >=, & (every bit of the
 * value set), in (no bit outside the value); values are numbers or named
 * constants joined with |, optionally negated with a leading ~; terms are
 * joined with && (each argument at most once per term), terms with ||.
 * Several lines for one syscall add up (their terms are or-ed); a syscall
 * cannot be both allowed and made to return an errno. Anything not listed
 * kills the process.
 */
enum sbx_op {
	SBX_OP_EQ, SBX_OP_NE, SBX_OP_LT, SBX_OP_LE, SBX_OP_GT, SBX_OP_GE,
	SBX_OP_ALLSET,   /* argN & V: (arg & V) == V */
	SBX_OP_IN,       /* argN in V: (arg & ~V) == 0 */
};

#define SBX_MAX_ARGS 6u

struct sbx_cmp {
	unsigned arg;
	enum sbx_op op;
	uint64_t value;
};

/* Comparisons that must all hold. */
struct sbx_term {
	unsigned ncmps;
	struct sbx_cmp cmps[SBX_MAX_ARGS];
};

struct sbx_rule {
	char name[40];
	int nr;
	bool allow;              /* `name: 1` */
	int errno_val;           /* `name: return E`, > 0 */
	struct sbx_term *terms;  /* otherwise allowed when any term holds */
	unsigned nterms;
	char where[128];         /* "file:line" of its first line */
};

struct sbx_pol {
	struct sbx_rule *rules;
	unsigned nrules;
	struct sbx_limits limits;
};

/*
 * Parse the policy file at path and every file it includes. Returns 0 and
 * *out, or -EINVAL (malformed: unknown syscall or constant, include loop,
 * conflicting rules), -ENOENT, ... with "file:line: what" in err.
 */
int sbx_pol_parse(const char *path, struct sbx_pol **out, char *err,
		  size_t errlen);
void sbx_pol_free(struct sbx_pol *p);
/* The rule for syscall nr, or NULL. */
const struct sbx_rule *sbx_pol_rule(const struct sbx_pol *p, int nr);
/*
 * Compile to BPF with libseccomp: the default action kills the process
 * (traps when debug), a foreign architecture kills it too. *out is malloc'ed.
 */
int sbx_pol_compile(const struct sbx_pol *p, bool debug,
		    struct sock_filter **out, unsigned *len, char *err,
		    size_t errlen);

/* A named constant (KVM_RUN, PROT_EXEC, ...). Returns 0 or -ENOENT. */
int sbx_const_lookup(const char *name, uint64_t *out);
/* An errno name (EPERM) to its number, or -ENOENT. */
int sbx_errno_lookup(const char *name, int *out);

/*
 * Run a seccomp BPF program on one syscall, as the kernel would (for tests
 * and for checking what a compiled policy does). Returns the SECCOMP_RET_*
 * value, or SECCOMP_RET_KILL_PROCESS for a malformed program.
 */
uint32_t sbx_bpf_run(const struct sock_filter *f, unsigned len,
		     const struct seccomp_data *d);

#endif
