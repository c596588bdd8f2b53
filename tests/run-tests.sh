#!/bin/sh
# make check: the Check unit tests, then every integration test against the
# real binaries. Prints one closing line: "N passed, N failed, N skipped".
#
# Where the integration tests run. A test that needs KVM (it calls need_kvm)
# runs on this machine's /dev/kvm when a guest boots there, and otherwise
# inside nested KVM hosts booted under QEMU's emulation (scripts/kvm-nest),
# several at once, one per host CPU (at most 4), taking tests from a shared
# queue, longest first. A test that boots a full Linux kernel (need_kvm
# cpl0) also goes to the nest where this /dev/kvm emulates guest kernel code
# (KVM on PVM; tests/kvm-probe.sh tells), while the others run here. Tests
# that need no KVM, and the unit tests, run here meanwhile. The first lines
# say which was chosen and why.
#
#   BULKHEAD_NEST=1        always the nest
#   BULKHEAD_NEST=0        never: without a usable /dev/kvm, KVM tests skip,
#                          and so do need_kvm cpl0 tests where it emulates
#                          guest kernel code
#   BULKHEAD_NEST_PARALLEL how many nests (default: host CPUs, at most 4)
#   TESTS="hello smp"      only these integration tests (names without test_)
set -u
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
results=$build/tests
mkdir -p "$results"
started=$(date +%s)

# ---- which tests, and where ---------------------------------------------
all_tests=""
for t in tests/integration/test_*.sh; do
	name=$(basename "$t" .sh)
	if [ -n "${TESTS:-}" ]; then
		case " $TESTS " in
		*" ${name#test_} "* | *" $name "*) ;;
		*) continue ;;
		esac
	fi
	all_tests="$all_tests $name"
done
kvm_tests="" host_tests="" cpl0_tests=""
for name in $all_tests; do
	if grep -q '^need_kvm' "tests/integration/$name.sh"; then
		kvm_tests="$kvm_tests $name"
		grep -q '^need_kvm cpl0' "tests/integration/$name.sh" &&
			cpl0_tests="$cpl0_tests $name"
	else
		host_tests="$host_tests $name"
	fi
done

# Where the KVM tests go: here_tests on this machine's /dev/kvm (or skip
# there without one), nest_tests in the nests. A guest booting here is what
# "/dev/kvm works" means; tests that boot a full Linux kernel (need_kvm
# cpl0) also need guest kernel code to run at hardware speed.
BUILD=$build
. tests/kvm-probe.sh
here_tests="" nest_tests=""
export BULKHEAD_KVM_CPL0=native
if [ -z "$kvm_tests" ]; then
	:
elif [ "${BULKHEAD_IN_NEST:-0}" = 1 ]; then
	here_tests=$kvm_tests
	echo "== integration tests run on this machine's /dev/kvm (inside the nest)"
elif [ "${BULKHEAD_NEST:-}" = 1 ]; then
	nest_tests=$kvm_tests why="BULKHEAD_NEST=1"
elif kvm_boots; then
	here_tests=$kvm_tests
	if [ -n "$cpl0_tests" ] && ! kvm_runs_cpl0; then
		here_tests="" 
		for name in $kvm_tests; do
			case " $cpl0_tests " in
			*" $name "*) nest_tests="$nest_tests $name" ;;
			*) here_tests="$here_tests $name" ;;
			esac
		done
		if [ "${BULKHEAD_NEST:-}" = 0 ]; then
			here_tests=$kvm_tests nest_tests=""
			BULKHEAD_KVM_CPL0=emulated
			echo "== integration tests run on this machine's /dev/kvm, but those that boot a full Linux kernel ($(echo $cpl0_tests)) are skipped: $kvm_probe_why, and BULKHEAD_NEST=0"
		else
			why="they boot a full Linux kernel, and $kvm_probe_why"
			echo "== integration tests run on this machine's /dev/kvm (a guest boots on it), except $(echo $nest_tests)"
		fi
	else
		echo "== integration tests run on this machine's /dev/kvm ($kvm_probe_why)"
	fi
elif [ "${BULKHEAD_NEST:-}" = 0 ]; then
	here_tests=$kvm_tests
	echo "== integration tests that need KVM are skipped: BULKHEAD_NEST=0, and $kvm_probe_why"
else
	nest_tests=$kvm_tests why=$kvm_probe_why
fi

nests=0
if [ -n "$nest_tests" ]; then
	nests=${BULKHEAD_NEST_PARALLEL:-$(nproc 2>/dev/null || echo 1)}
	[ "$nests" -ge 1 ] 2>/dev/null || nests=1
	[ "$nests" -le 4 ] || nests=4
	n=$(echo $nest_tests | wc -w)
	[ "$nests" -le "$n" ] || nests=$n
	echo "== integration tests that need KVM$([ -n "$here_tests" ] && echo " ($(echo $nest_tests))") run in $nests nested KVM host(s) under QEMU's emulation (scripts/kvm-nest), because $why; set BULKHEAD_NEST=0 to skip them instead"
fi

# ---- the nests' queue ------------------------------------------------------
# Longest first, by the times of the last run here (tests/integration/
# nest-times otherwise), so that no long test starts last.
order_tests() {  # NAMES...: sorted by expected time, longest first
	timefile=tests/integration/nest-times
	[ -s "$results/times" ] && timefile=$results/times
	for name in "$@"; do
		secs=$(awk -v n="$name" '$1 == n { s = $2 } END { print s + 0 }' "$timefile")
		echo "$secs $name"
	done | sort -k1,1nr -k2 | awk '{ print $2 }'
}

make_queue() {  # DIR NAMES...: one entry per test, in order
	q=$1
	shift
	rm -rf "$q"
	mkdir -p "$q"
	i=0
	for name in "$@"; do
		i=$((i + 1))
		echo "$name" >"$q/$(printf %03d $i)"
	done
}

for name in $all_tests; do
	rm -f "$results/$name.status" "$results/$name.secs" "$results/$name.where"
done
queue=$results/queue
nestq=$results/nest-queue
make_queue "$queue" $(order_tests $here_tests)
make_queue "$nestq" $(order_tests $nest_tests)
nest_pids=""
start_nests() {
	[ "$nests" -gt 0 ] || return 0
	if ! sh scripts/install-deps.sh nest; then
		echo "FAIL: the nest's Debian packages are missing (scripts/install-deps.sh nest)"
		exit 1
	fi
	k=1
	while [ $k -le "$nests" ]; do
		scripts/kvm-nest --quiet --timeout 2400 sh tests/run-integration.sh \
			"$build" "$nestq" "nest $k" \
			>"$results/nest-$k.out" 2>"$results/nest-$k.err" &
		nest_pids="$nest_pids $!"
		k=$((k + 1))
	done
}
# Where every KVM test runs in the nests, they start first (they take
# seconds to boot). Where some run on this machine's /dev/kvm, the nests
# wait for this machine's tests: a nest is one QEMU thread emulating two
# CPUs, and on a busy host its nested guests slow down many times over
# (Debian's kernel was seen to stall there).
[ -z "$here_tests" ] && start_nests

# ---- here: unit tests, tests that need no KVM ---------------------------
unit_status=0
echo "== unit tests (Check), on this machine"
CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-60} "$build/tests/check_unit" || unit_status=1

if [ -n "$host_tests" ]; then
	echo "== integration tests that need no KVM, on this machine"
	hq=$results/host-queue
	make_queue "$hq" $host_tests
	sh tests/run-integration.sh "$build" "$hq" "host"
fi

if [ -n "$here_tests" ]; then
	echo "== integration tests that need KVM, on this machine"
	sh tests/run-integration.sh "$build" "$queue" "kvm"
fi
[ -n "$here_tests" ] && start_nests
if [ "$nests" -gt 0 ]; then
	echo "== integration tests that need KVM, in the nest (their lines come as each ends)"
	# Each nest's lines as they come; wait for all of them.
	k=1
	for p in $nest_pids; do
		tail -n +1 -f --pid="$p" "$results/nest-$k.out" 2>/dev/null &
		k=$((k + 1))
	done
	k=1
	for p in $nest_pids; do
		st=0
		wait "$p" || st=$?
		if [ $st -ne 0 ]; then
			echo "note: nest $k ended with status $st:"
			sed 's/^/    /' "$results/nest-$k.err"
		fi
		k=$((k + 1))
	done
	sleep 1.2   # the tails see their last lines and go
fi

# ---- the closing line ---------------------------------------------------
passed=0 failed=0 skipped=0
failed_names=""
for name in $all_tests; do
	if [ -f "$results/$name.status" ]; then
		st=$(cat "$results/$name.status")
	else
		st=none
	fi
	case $st in
	0) passed=$((passed + 1)) ;;
	77) skipped=$((skipped + 1)) ;;
	none)
		failed=$((failed + 1))
		echo "FAIL $name: it has no result (its nest stopped before it ended; see $results/nest-*.err)"
		;;
	*)
		failed=$((failed + 1))
		failed_names="$failed_names $name"
		;;
	esac
done
for name in $failed_names; do
	echo "---- the log of $name ($(cat "$results/$name.where" 2>/dev/null), status $(cat "$results/$name.status")):"
	sed 's/^/    /' "$results/$name.log"
done
# Long logs are often shown cut to their head and tail (CI): each failed
# test's reason once more, last.
for name in $failed_names; do
	why=$(grep '^FAIL: ' "$results/$name.log" | tail -n 1 | cut -c7-)
	echo "FAILED $name: ${why:-status $(cat "$results/$name.status"), its log above}"
done
# Times for the next run's order.
for name in $all_tests; do
	[ -f "$results/$name.secs" ] && echo "$name $(cat "$results/$name.secs")"
done >"$results/times.new"
[ -s "$results/times.new" ] && mv "$results/times.new" "$results/times"

[ $unit_status -eq 0 ] || { failed=$((failed + 1)); echo "FAIL unit tests"; }
[ $unit_status -eq 0 ] && passed=$((passed + 1))
echo "make check took $(( $(date +%s) - started )) s"
echo "integration and unit: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
