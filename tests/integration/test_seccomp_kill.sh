# Seccomp kills, and the broker says so.
#
# 1. The test-only device testbad (device-procs/testbad, standing in for the
#    null device in $BUILD/tests/bin, under the common device policy) tries,
#    when the guest writes to port 0x510 + N, to open a file, create a
#    socket, execve, ptrace, fork, issue a KVM ioctl or mprotect PROT_EXEC.
#    Each attempt must kill it with SIGSYS, and the VM must end (or be
#    suspended, once that exists) with "device null#0 killed: seccomp
#    violation", exit status 10.
# 2. The test build of the worker (-DBULKHEAD_TEST, policy/sbx-test.c), in
#    its run phase, tries KVM_CREATE_VM (on SIGUSR2) and openat (on SIGURG):
#    each must kill it with SIGSYS, reported as a seccomp violation.
. tests/integration/lib.sh
need_kvm
TBIN=$BUILD/tests/bin
for b in bulkhead bulkhead-worker bulkhead-dev-null bulkhead-dev-uart \
	 bulkhead-dev-debugexit; do
	[ -x "$TBIN/$b" ] || fail "$TBIN/$b is not built (make check builds it)"
done
if grep -q "SECCOMP_DEBUG" "$BUILD/policy/policies.c" 2>/dev/null; then
	echo "skipped: built with SECCOMP_DEBUG=1, where violations are logged, not killed"
	exit 77
fi

# The broker's report of a seccomp death, whether the VM ended or was
# suspended with the error. The syscall's name, when the broker could read
# the kernel's audit record (root; not rate-limited), must be the right one.
expect_violation() {  # FILE WHO SYSCALL
	grep -qE "(VM failed|VM suspended|VM stopped): $2 killed: seccomp violation" "$1" ||
		fail "no '$2 killed: seccomp violation' report in $1"
	if grep -q "$2 killed: seccomp violation (" "$1"; then
		grep -q "$2 killed: seccomp violation ($3)" "$1" ||
			fail "the report names the wrong syscall (expected $3)"
	fi
	if grep -q "NOT blocked\|NOT killed" "$1"; then
		fail "a forbidden syscall went through: $(grep 'NOT' "$1")"
	fi
}

# The device works under its policy: a write to 0x510 is harmless.
status=0
timeout 60 "$TBIN/bulkhead" run --null-dev --cmdline "port=0x510 count=3 width=1" \
	"$GUESTS/nullio.elf" </dev/null >"$TMP/out" 2>"$TMP/err" || status=$?
cat "$TMP/out" "$TMP/err"
expect_status 1
expect_line "$TMP/out" "nullio: done"

n=0
for what in "open a file (openat)" "create a socket (socket)" \
	    "execute a program (execve)" "trace a process (ptrace)" \
	    "fork (clone)" "issue a KVM ioctl (ioctl KVM_CREATE_VM)" \
	    "map memory executable (mprotect PROT_EXEC)"; do
	n=$((n + 1))
	sys=$(echo "$what" | sed 's/.*(\([a-z0-9]*\).*/\1/')
	echo "== port 0x51$n: $what"
	status=0
	timeout 60 "$TBIN/bulkhead" run --null-dev \
		--cmdline "port=0x51$n count=1 width=1" "$GUESTS/nullio.elf" \
		</dev/null >"$TMP/out" 2>"$TMP/err" || status=$?
	sed 's/^/   /' "$TMP/err"
	expect_status 10
	expect_text "$TMP/err" "testbad: attempting to $what"
	expect_violation "$TMP/err" "device null#0" "$sys"
	grep -q "nullio: done" "$TMP/out" && fail "the guest went on after the device died"
done

# The worker in its run phase.
for sig in USR2 URG; do
	case $sig in
	USR2) what="ioctl KVM_CREATE_VM" sys=ioctl ;;
	URG) what="openat" sys=openat ;;
	esac
	echo "== worker: SIGUSR2/SIGURG test command: $what"
	rm -f "$TMP/in"
	mkfifo "$TMP/in"
	"$TBIN/bulkhead" run "$GUESTS/echo.elf" <"$TMP/in" >"$TMP/out" 2>"$TMP/err" &
	vmm=$!
	exec 4>"$TMP/in"
	wait_for "$TMP/out" "echo: ready"
	wait_for "$TMP/err" "test: commands armed"
	worker=""
	for k in $(children $vmm); do
		[ "$(basename "$(readlink /proc/$k/exe)")" = bulkhead-worker ] && worker=$k
	done
	[ -n "$worker" ] || fail "no worker process"
	kill -s $sig "$worker"
	status=0
	wait $vmm || status=$?
	exec 4>&-
	sed 's/^/   /' "$TMP/err"
	expect_text "$TMP/err" "test: attempting $what in the run phase"
	expect_violation "$TMP/err" "the worker" "$sys"
	[ "$status" -ne 0 ] && [ $((status & 1)) -eq 0 ] ||
		fail "expected an even VMM error status, got $status"
done
exit 0
