#!/bin/sh
# make check: the Check unit tests, then every integration test against the
# real binaries. Prints one closing line: "N passed, N failed, N skipped".
#
# Where the integration tests run. A test that needs KVM (it calls need_kvm)
# runs on this machine's /dev/kvm when a guest boots there, and otherwise
# inside nested KVM hosts booted under QEMU's emulation (scripts/kvm-nest),
# several at once, one per host CPU (at most 4), taking tests from a shared
# queue, longest first. Tests that need no KVM, and the unit tests, run here
# meanwhile. The first line says which was chosen and why.
#
#   BULKHEAD_NEST=1        always the nest
#   BULKHEAD_NEST=0        never: without a usable /dev/kvm, KVM tests skip
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
kvm_tests="" host_tests=""
for name in $all_tests; do
	if grep -q '^need_kvm' "tests/integration/$name.sh"; then
		kvm_tests="$kvm_tests $name"
	else
		host_tests="$host_tests $name"
	fi
done

# A guest boots here: that is what "/dev/kvm works" means.
kvm_works() {
	[ -c /dev/kvm ] && ( exec 3<>/dev/kvm ) 2>/dev/null || return 1
	st=0
	timeout 60 "$build/bin/bulkhead" run --serial null "$build/guests/hello.elf" \
		</dev/null >/dev/null 2>"$results/kvm-probe.err" || st=$?
	[ $st -eq 1 ]
}

mode=kvm
why=""
if [ -z "$kvm_tests" ]; then
	mode=none
elif [ "${BULKHEAD_IN_NEST:-0}" = 1 ]; then
	why="inside the nest"
elif [ "${BULKHEAD_NEST:-}" = 1 ]; then
	mode=nest why="BULKHEAD_NEST=1"
elif kvm_works; then
	why="a guest boots on it"
elif [ "${BULKHEAD_NEST:-}" = 0 ]; then
	mode=skip why="BULKHEAD_NEST=0, and no guest boots on this machine's /dev/kvm"
else
	mode=nest
	if [ -c /dev/kvm ]; then
		why="no guest boots on this machine's /dev/kvm ($(tail -n 1 "$results/kvm-probe.err" 2>/dev/null))"
	else
		why="this machine has no /dev/kvm"
	fi
fi

nests=1
if [ $mode = nest ]; then
	nests=${BULKHEAD_NEST_PARALLEL:-$(nproc 2>/dev/null || echo 1)}
	[ "$nests" -ge 1 ] 2>/dev/null || nests=1
	[ "$nests" -le 4 ] || nests=4
	n=$(echo $kvm_tests | wc -w)
	[ "$nests" -le "$n" ] || nests=$n
fi
case $mode in
kvm) echo "== integration tests run on this machine's /dev/kvm ($why)" ;;
nest) echo "== integration tests that need KVM run in $nests nested KVM host(s) under QEMU's emulation (scripts/kvm-nest), because $why; set BULKHEAD_NEST=0 to skip them instead" ;;
skip) echo "== integration tests that need KVM are skipped: $why" ;;
none) ;;
esac

# ---- start the nests first: they take seconds to boot -------------------
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

queue=$results/queue
rm -rf "$queue"
for name in $all_tests; do
	rm -f "$results/$name.status" "$results/$name.secs" "$results/$name.where"
done
nest_pids=""
if [ $mode != none ]; then
	mkdir -p "$queue"
	i=0
	for name in $(order_tests $kvm_tests); do
		i=$((i + 1))
		echo "$name" >"$queue/$(printf %03d $i)"
	done
fi
if [ $mode = nest ]; then
	if ! sh scripts/install-deps.sh nest; then
		echo "FAIL: the nest's Debian packages are missing (scripts/install-deps.sh nest)"
		exit 1
	fi
	k=1
	while [ $k -le "$nests" ]; do
		scripts/kvm-nest --quiet --timeout 2400 sh tests/run-integration.sh \
			"$build" "$queue" "nest $k" \
			>"$results/nest-$k.out" 2>"$results/nest-$k.err" &
		nest_pids="$nest_pids $!"
		k=$((k + 1))
	done
fi

# ---- here: unit tests, tests that need no KVM ---------------------------
unit_status=0
echo "== unit tests (Check), on this machine"
CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-60} "$build/tests/check_unit" || unit_status=1

if [ -n "$host_tests" ]; then
	echo "== integration tests that need no KVM, on this machine"
	hq=$results/host-queue
	rm -rf "$hq"
	mkdir -p "$hq"
	i=0
	for name in $host_tests; do
		i=$((i + 1))
		echo "$name" >"$hq/$(printf %03d $i)"
	done
	sh tests/run-integration.sh "$build" "$hq" "host"
fi

case $mode in
kvm | skip)
	echo "== integration tests that need KVM, on this machine"
	sh tests/run-integration.sh "$build" "$queue" "kvm"
	;;
nest)
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
	;;
esac

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
