/* SPDX-License-Identifier: MIT */
/*
 * The named constants policy files may use, taken from the system headers
 * at build time (so KVM_RUN is whatever <linux/kvm.h> says). Add a name here
 * when a policy needs one; an unknown name is a compile error of the policy.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/kvm.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "policy/sbx.h"

struct sbx_const {
	const char *name;
	uint64_t value;
};

/* Ints are sign-extended, as the syscall wrappers pass them (AT_FDCWD). */
#define C(x) { #x, (uint64_t)(int64_t)(x) }
/* ioctl numbers and other unsigned values are not. */
#define U(x) { #x, (uint64_t)(unsigned long)(x) }

static const struct sbx_const sbx_consts[] = {
	/* KVM: system ioctls on /dev/kvm */
	U(KVM_GET_API_VERSION), U(KVM_CREATE_VM), U(KVM_CHECK_EXTENSION),
	U(KVM_GET_VCPU_MMAP_SIZE), U(KVM_GET_SUPPORTED_CPUID),
	U(KVM_GET_MSR_INDEX_LIST), U(KVM_GET_MSR_FEATURE_INDEX_LIST),
	U(KVM_GET_EMULATED_CPUID),
	/* KVM: VM ioctls */
	U(KVM_CREATE_VCPU), U(KVM_SET_USER_MEMORY_REGION), U(KVM_SET_TSS_ADDR),
	U(KVM_SET_IDENTITY_MAP_ADDR), U(KVM_CREATE_IRQCHIP), U(KVM_CREATE_PIT2),
	U(KVM_IRQ_LINE), U(KVM_IRQ_LINE_STATUS), U(KVM_GET_IRQCHIP),
	U(KVM_SET_IRQCHIP), U(KVM_GET_PIT2), U(KVM_SET_PIT2), U(KVM_GET_CLOCK),
	U(KVM_SET_CLOCK), U(KVM_IRQFD), U(KVM_IOEVENTFD), U(KVM_SET_GSI_ROUTING),
	U(KVM_GET_DIRTY_LOG), U(KVM_SIGNAL_MSI), U(KVM_ENABLE_CAP),
	U(KVM_REINJECT_CONTROL), U(KVM_SET_BOOT_CPU_ID),
	/* KVM: vCPU ioctls */
	U(KVM_RUN), U(KVM_GET_REGS), U(KVM_SET_REGS), U(KVM_GET_SREGS),
	U(KVM_SET_SREGS), U(KVM_GET_FPU), U(KVM_SET_FPU), U(KVM_GET_MSRS),
	U(KVM_SET_MSRS), U(KVM_SET_CPUID2), U(KVM_GET_CPUID2), U(KVM_GET_LAPIC),
	U(KVM_SET_LAPIC), U(KVM_GET_MP_STATE), U(KVM_SET_MP_STATE),
	U(KVM_GET_VCPU_EVENTS), U(KVM_SET_VCPU_EVENTS), U(KVM_GET_DEBUGREGS),
	U(KVM_SET_DEBUGREGS), U(KVM_GET_XSAVE), U(KVM_SET_XSAVE), U(KVM_GET_XCRS),
	U(KVM_SET_XCRS), U(KVM_KVMCLOCK_CTRL), U(KVM_SET_SIGNAL_MASK),
	U(KVM_INTERRUPT), U(KVM_NMI), U(KVM_SET_TSC_KHZ), U(KVM_GET_TSC_KHZ),
	U(KVM_SET_GUEST_DEBUG), U(KVM_TRANSLATE),
	/* terminals and generic ioctls */
	U(TCGETS), U(TCSETS), U(TIOCGWINSZ), U(FIONBIO), U(FIONREAD), U(FIOCLEX),
	U(FIONCLEX),
	/* memory */
	C(PROT_NONE), C(PROT_READ), C(PROT_WRITE), C(PROT_EXEC),
	C(MAP_SHARED), C(MAP_PRIVATE), C(MAP_ANONYMOUS), C(MAP_FIXED),
	C(MAP_NORESERVE), C(MAP_STACK), C(MAP_POPULATE), C(MAP_GROWSDOWN),
	C(MAP_FIXED_NOREPLACE),
	C(MADV_NORMAL), C(MADV_DONTNEED), C(MADV_FREE), C(MADV_WILLNEED),
	C(MADV_HUGEPAGE), C(MADV_NOHUGEPAGE), C(MADV_DONTDUMP), C(MADV_REMOVE),
	C(MREMAP_MAYMOVE), C(MREMAP_FIXED),
	/* files and fds */
	C(AT_FDCWD), C(AT_EMPTY_PATH), C(AT_SYMLINK_NOFOLLOW),
	C(O_RDONLY), C(O_WRONLY), C(O_RDWR), C(O_CREAT), C(O_EXCL), C(O_TRUNC),
	C(O_APPEND), C(O_NONBLOCK), C(O_CLOEXEC), C(O_DIRECTORY), C(O_NOFOLLOW),
	C(O_PATH),
	C(F_DUPFD), C(F_DUPFD_CLOEXEC), C(F_GETFD), C(F_SETFD), C(F_GETFL),
	C(F_SETFL), C(F_GET_SEALS), C(F_ADD_SEALS), C(F_SEAL_SEAL),
	C(F_SEAL_SHRINK), C(F_SEAL_GROW), C(F_SEAL_WRITE), C(FD_CLOEXEC),
	C(SEEK_SET), C(SEEK_CUR), C(SEEK_END), C(SEEK_DATA), C(SEEK_HOLE),
	/* futexes */
	C(FUTEX_WAIT), C(FUTEX_WAKE), C(FUTEX_REQUEUE), C(FUTEX_CMP_REQUEUE),
	C(FUTEX_WAKE_OP), C(FUTEX_LOCK_PI), C(FUTEX_UNLOCK_PI),
	C(FUTEX_TRYLOCK_PI), C(FUTEX_WAIT_BITSET), C(FUTEX_WAKE_BITSET),
	C(FUTEX_WAIT_REQUEUE_PI), C(FUTEX_CMP_REQUEUE_PI),
	C(FUTEX_PRIVATE_FLAG), C(FUTEX_CLOCK_REALTIME),
	/* sockets */
	C(AF_UNIX), C(AF_INET), C(AF_INET6), C(AF_NETLINK), C(AF_PACKET),
	C(SOCK_STREAM), C(SOCK_DGRAM), C(SOCK_SEQPACKET), C(SOCK_RAW),
	C(SOCK_CLOEXEC), C(SOCK_NONBLOCK),
	C(MSG_NOSIGNAL), C(MSG_CMSG_CLOEXEC), C(MSG_DONTWAIT), C(MSG_PEEK),
	C(MSG_TRUNC), C(MSG_WAITALL),
	C(SOL_SOCKET), C(SO_PEERCRED), C(SO_RCVBUF), C(SO_SNDBUF),
	/* eventfds */
	C(EFD_CLOEXEC), C(EFD_NONBLOCK), C(EFD_SEMAPHORE),
	/* processes and threads */
	C(CLONE_VM), C(CLONE_FS), C(CLONE_FILES), C(CLONE_SIGHAND),
	C(CLONE_PIDFD), C(CLONE_PTRACE), C(CLONE_VFORK), C(CLONE_PARENT),
	C(CLONE_THREAD), C(CLONE_NEWNS), C(CLONE_SYSVSEM), C(CLONE_SETTLS),
	C(CLONE_PARENT_SETTID), C(CLONE_CHILD_CLEARTID), C(CLONE_UNTRACED),
	C(CLONE_CHILD_SETTID), C(CLONE_NEWCGROUP), C(CLONE_NEWUTS),
	C(CLONE_NEWIPC), C(CLONE_NEWUSER), C(CLONE_NEWPID), C(CLONE_NEWNET),
	C(CLONE_IO),
	C(PR_SET_NAME), C(PR_GET_NAME), C(PR_SET_NO_NEW_PRIVS),
	C(PR_GET_NO_NEW_PRIVS), C(PR_SET_DUMPABLE), C(PR_GET_DUMPABLE),
	C(PR_SET_PDEATHSIG), C(PR_CAPBSET_DROP), C(PR_CAP_AMBIENT),
	C(PR_SET_SECCOMP), C(PR_SET_TIMERSLACK),
	C(SECCOMP_SET_MODE_STRICT), C(SECCOMP_SET_MODE_FILTER),
	C(SECCOMP_FILTER_FLAG_TSYNC), C(SECCOMP_FILTER_FLAG_LOG),
	C(RLIMIT_NPROC), C(RLIMIT_NOFILE), C(RLIMIT_FSIZE), C(RLIMIT_CORE),
	C(RLIMIT_AS), C(RLIMIT_STACK), C(RLIMIT_MEMLOCK), C(RLIMIT_DATA),
	/* signals */
	C(SIGHUP), C(SIGINT), C(SIGQUIT), C(SIGILL), C(SIGTRAP), C(SIGABRT),
	C(SIGBUS), C(SIGFPE), C(SIGKILL), C(SIGUSR1), C(SIGSEGV), C(SIGUSR2),
	C(SIGPIPE), C(SIGALRM), C(SIGTERM), C(SIGCHLD), C(SIGCONT), C(SIGSTOP),
	C(SIGTSTP), C(SIGTTIN), C(SIGTTOU), C(SIGURG), C(SIGXCPU), C(SIGXFSZ),
	C(SIGVTALRM), C(SIGPROF), C(SIGWINCH), C(SIGIO), C(SIGPWR), C(SIGSYS),
	C(SIG_BLOCK), C(SIG_UNBLOCK), C(SIG_SETMASK),
	/* clocks and randomness */
	C(CLOCK_REALTIME), C(CLOCK_MONOTONIC), C(CLOCK_MONOTONIC_RAW),
	C(CLOCK_BOOTTIME), C(CLOCK_PROCESS_CPUTIME_ID),
	C(CLOCK_THREAD_CPUTIME_ID), C(TIMER_ABSTIME),
	C(GRND_NONBLOCK), C(GRND_RANDOM),
};

int sbx_const_lookup(const char *name, uint64_t *out)
{
	for (size_t i = 0; i < sizeof(sbx_consts) / sizeof(sbx_consts[0]); i++) {
		if (strcmp(sbx_consts[i].name, name) == 0) {
			*out = sbx_consts[i].value;
			return 0;
		}
	}
	return -ENOENT;
}

int sbx_errno_lookup(const char *name, int *out)
{
	/* glibc names every errno it knows (strerrorname_np, 2.32). */
	for (int e = 1; e < 4096; e++) {
		const char *n = strerrorname_np(e);

		if (n && strcmp(n, name) == 0) {
			*out = e;
			return 0;
		}
	}
	return -ENOENT;
}
