# Shared helpers for integration tests. Each test is a sh script run from the
# top directory with BUILD set; exit 0 pass, 77 skip (with a reason as the
# last line), anything else fail.
set -u
BUILD=${BUILD:-build}
BIN=$BUILD/bin
GUESTS=$BUILD/guests
TMP=$(mktemp -d "${TMPDIR:-/tmp}/bulkhead-test.XXXXXX")
trap 'cleanup' EXIT
cleanup() {
	# `jobs -p` is empty inside dash's EXIT trap: kill our children by
	# parent pid instead (a VM's own processes die with their broker).
	pkill -9 -P $$ 2>/dev/null
	rm -rf "$TMP"
}

fail() { echo "FAIL: $*"; exit 1; }

# need_kvm [cpl0]: skip without a usable /dev/kvm. With cpl0 (a test that
# boots a full Linux kernel) also where this /dev/kvm emulates guest kernel
# code (tests/kvm-probe.sh): make check runs such tests in a nested KVM host
# then. tests/run-tests.sh passes its probe's answer in BULKHEAD_KVM_CPL0
# (native or emulated); a test run by hand probes for itself.
need_kvm() {
	if [ ! -c /dev/kvm ] || ! ( exec 3<>/dev/kvm ) 2>/dev/null; then
		echo "skipped: /dev/kvm is missing or not usable by $(id -un) (make check runs this test in a nested KVM host then, unless BULKHEAD_NEST=0)"
		exit 77
	fi
	[ "${1:-}" = cpl0 ] || return 0
	[ "${BULKHEAD_IN_NEST:-0}" = 1 ] && return 0
	case ${BULKHEAD_KVM_CPL0:-} in
	native) return 0 ;;
	emulated) kvm_probe_why="make check found that this machine's /dev/kvm emulates guest kernel code" ;;
	*)
		. tests/kvm-probe.sh
		kvm_runs_cpl0 && return 0
		;;
	esac
	echo "skipped: this test boots a full Linux kernel, and $kvm_probe_why (make check runs it in a nested KVM host then, unless BULKHEAD_NEST=0)"
	exit 77
}

# run_vm OUTFILE [bulkhead run args...]: runs to completion, sets $status.
run_vm() {
	out=$1; shift
	status=0
	timeout 120 "$BIN/bulkhead" run "$@" </dev/null >"$out" 2>"$out.err" || status=$?
	echo "bulkhead run $* -> status $status"
	sed 's/^/  stdout: /' "$out"
	sed 's/^/  stderr: /' "$out.err"
}

# run_vm_watched OUTFILE [bulkhead run args...]: run_vm for a guest that
# prints as it goes (a Linux kernel's boot log) on a host of unknown speed,
# such as a nest on a busy machine, where a boot that takes 20 s on one
# machine took over 120 s on another. The VM is stopped only when it has
# printed nothing for VM_IDLE_LIMIT s (default 120) or has run for
# VM_RUN_LIMIT s in all (default 540; the nest allows a test 1200 s);
# then $status is 124 and the log says which limit it hit.
run_vm_watched() {
	out=$1; shift
	status=0
	"$BIN/bulkhead" run "$@" </dev/null >"$out" 2>"$out.err" &
	vm_pid=$!
	vm_start=$(date +%s)
	vm_seen=$vm_start vm_size=0 vm_why=""
	while kill -0 "$vm_pid" 2>/dev/null; do
		sleep 1
		now=$(date +%s)
		size=$(wc -c <"$out")
		if [ "$size" != "$vm_size" ]; then
			vm_size=$size vm_seen=$now
		elif [ $((now - vm_seen)) -ge "${VM_IDLE_LIMIT:-120}" ]; then
			vm_why="it printed nothing for ${VM_IDLE_LIMIT:-120} s"
		fi
		[ $((now - vm_start)) -ge "${VM_RUN_LIMIT:-540}" ] &&
			vm_why="it ran for ${VM_RUN_LIMIT:-540} s"
		[ -n "$vm_why" ] && break
	done
	if [ -n "$vm_why" ]; then
		kill -TERM "$vm_pid" 2>/dev/null
		i=0
		while kill -0 "$vm_pid" 2>/dev/null && [ $i -lt 30 ]; do
			sleep 1
			i=$((i + 1))
		done
		kill -KILL "$vm_pid" 2>/dev/null
		wait "$vm_pid"
		status=124
	else
		wait "$vm_pid" || status=$?
	fi
	echo "bulkhead run $* -> status $status"
	sed 's/^/  stdout: /' "$out"
	sed 's/^/  stderr: /' "$out.err"
	[ -z "$vm_why" ] || echo "  stopped by the test: $vm_why"
}

expect_status() {  # STATUS [WHAT ELSE TO SAY ON FAILURE]
	[ "$status" -eq "$1" ] || fail "expected exit status $1, got $status${2:+; $2}"
}

expect_line() {  # FILE LINE: LINE must appear as a whole line
	tr -d '\r' <"$1" | grep -qxF -- "$2" || fail "missing line '$2' in $1"
}

expect_text() {  # FILE TEXT
	grep -qF -- "$2" "$1" || fail "missing '$2' in $1"
}

# wait_for FILE TEXT [SECONDS]
wait_for() {
	i=0
	while ! grep -qF -- "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt $(( ${3:-30} * 10 )) ] && fail "timed out waiting for '$2' in $1"
		sleep 0.1
	done
}

# children PID: the pids whose parent is PID
children() {
	for d in /proc/[0-9]*; do
		[ -r "$d/stat" ] || continue
		pp=$(sed 's/^.*) [A-Za-z] \([0-9]*\).*$/\1/' "$d/stat" 2>/dev/null)
		[ "$pp" = "$1" ] && echo "${d#/proc/}"
	done
}

# debian_kernel: sets $kernel to Debian's newest /boot/vmlinuz-* (or
# $BULKHEAD_LINUX_IMAGE), $kver to its version and $kmods to its modules'
# folder, failing with what to install where one is missing.
debian_kernel() {
	kernel=${BULKHEAD_LINUX_IMAGE:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)}
	[ -n "$kernel" ] && [ -r "$kernel" ] ||
		fail "no readable Debian kernel in /boot: sh scripts/install-deps.sh check installs linux-image-amd64"
	kver=${kernel##*/vmlinuz-}
	kmods=/lib/modules/$kver
	[ -x /bin/busybox ] ||
		fail "no /bin/busybox: sh scripts/install-deps.sh check installs busybox-static"
	echo "kernel: $kernel ($(dpkg -S "$kernel" 2>/dev/null | cut -d: -f1))"
}

# busybox_initramfs DIR APPLET...: DIR/bin/busybox (static) with a link for
# each applet, and empty proc, sys and dev folders for /init to mount.
busybox_initramfs() {
	dir=$1; shift
	mkdir -p "$dir/bin" "$dir/proc" "$dir/sys" "$dir/dev"
	cp /bin/busybox "$dir/bin/busybox"
	for a in "$@"; do
		ln -s busybox "$dir/bin/$a"
	done
}

# debian_modules DIR MODULE...: copies each module of $kver (by name, with
# - or _) into DIR, uncompressed, in the order given (dependencies first).
debian_modules() {
	dir=$1; shift
	mkdir -p "$dir"
	for m in "$@"; do
		f=$(find "$kmods/kernel" -name "$m.ko*" | head -n 1)
		[ -n "$f" ] || fail "no module $m in $kmods"
		case $f in
		*.xz) xz -dc "$f" >"$dir/$m.ko" ;;
		*.zst) zstd -qdc "$f" >"$dir/$m.ko" ;;
		*) cp "$f" "$dir/$m.ko" ;;
		esac || fail "cannot copy $f"
	done
}

# nest_stalled FILE: true where a run_vm_watched boot in the nest ended the
# one way a nested guest fails on its own (docs/linux-boot.md, "Known
# problems in the nest"): its console silent until the watchdog, no panic
# or oops in FILE. The tests that boot Debian's kernel then try it again
# (at most twice more), saying so, with the first attempt's log above.
nest_stalled() {
	[ "${BULKHEAD_IN_NEST:-0}" = 1 ] && [ "$status" -eq 124 ] &&
		[ "$vm_why" = "it printed nothing for ${VM_IDLE_LIMIT:-120} s" ] &&
		! grep -q -e "Kernel panic" -e "Oops" "$1"
}

# boot_watched FILE FUNC STATUS: FUNC boots with run_vm_watched into FILE
# (VM_IDLE_LIMIT 60 s unless set). The nest's known stall (nest_stalled) is
# tried again, at most twice; then the exit status must be STATUS. CI shows
# a long log's head and tail: the reason goes in the last line.
boot_watched() {
	VM_IDLE_LIMIT=${VM_IDLE_LIMIT:-60}
	$2
	for again in 1 2; do
		nest_stalled "$1" || break
		echo "NOTE: the nested guest stalled ($vm_why); booting it again ($again)"
		$2
	done
	expect_status "$3" "${vm_why:+stopped: $vm_why; }the console's last line: $(tr -d '\r' <"$1" | tail -n 1)"
}

# echo_vm_start: `bulkhead run` of echo.elf in the background ($vmm), its
# console a fifo held open on fd 4 until echo_vm_wait, once it is ready.
echo_vm_start() {
	mkfifo "$TMP/in"
	"$BIN/bulkhead" run "$GUESTS/echo.elf" <"$TMP/in" >"$TMP/out" 2>"$TMP/err" &
	vmm=$!
	exec 4>"$TMP/in"
	wait_for "$TMP/out" "echo: ready"
}

# echo_vm_wait: waits for echo_vm_start's VM ($status), closes its console
# and shows its output.
echo_vm_wait() {
	status=0
	wait $vmm || status=$?
	exec 4>&-
	cat "$TMP/out" "$TMP/err"
}

# children_gone PID...: none of them outlives the VM (a zombie may).
children_gone() {
	sleep 0.2
	for p in "$@"; do
		[ -e "/proc/$p" ] && [ "$(cut -d' ' -f3 /proc/$p/stat)" != Z ] && fail "child $p outlived the VM"
	done
	return 0
}

# initrd_make FILE TEXT BYTES: FILE holds the line TEXT, then BYTES random
# bytes; sets $size to its size and $sum to the 32-bit sum of its bytes, as
# the test guests print it.
initrd_make() {
	printf '%s\n' "$2" >"$1"
	head -c "$3" /dev/urandom >>"$1"
	size=$(stat -c %s "$1")
	sum=$(od -An -v -tu1 "$1" | tr -s ' ' '\n' | awk 'NF{s=(s+$1)%4294967296} END{printf "0x%x", s}')
}
