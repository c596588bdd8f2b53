#!/bin/sh
# Runs integration tests from a queue: tests/run-tests.sh calls it here and
# in each nest. QUEUE holds one file per test, named by its place in the
# order and holding the test's name; a runner claims an entry with mkdir
# (atomic, even between nests sharing the directory over 9p), so several
# runners can share one queue.
#
#   sh tests/run-integration.sh BUILD QUEUE WHERE
#
# For each test it writes BUILD/tests/NAME.log, .status, .secs and .where,
# and prints one line: PASS, FAIL or SKIP (with the reason), its time, and
# WHERE it ran.
set -u
build=$1 queue=$2 where=$3
results=$build/tests
# Each test's bound: under emulation (the nest) everything is 10-50x slower
# and the host's CPUs are shared.
limit=${TEST_TIMEOUT:-300}
# In the nest a test may also boot Debian twice (test_linux_debian).
[ "${BULKHEAD_IN_NEST:-0}" = 1 ] && limit=${TEST_TIMEOUT:-1200}
for entry in "$queue"/[0-9]*; do
	[ -f "$entry" ] || continue
	mkdir "$entry.claim" 2>/dev/null || continue
	name=$(cat "$entry")
	log=$results/$name.log
	start=$(date +%s)
	BUILD="$build" timeout "$limit" sh "tests/integration/$name.sh" >"$log" 2>&1
	st=$?
	secs=$(( $(date +%s) - start ))
	if [ "$st" != 0 ] && [ "$st" != 77 ] && [ "${BULKHEAD_IN_NEST:-0}" = 1 ]; then
		# What the nest's own kernel said (its KVM's warnings, stalls,
		# lockups) goes with a failure: it is gone once the nest stops.
		{
			echo "---- the nest's kernel log, last 40 lines:"
			dmesg 2>/dev/null | tail -n 40 | sed 's/^/    /'
		} >>"$log"
	fi
	echo "$secs" >"$results/$name.secs"
	echo "$where" >"$results/$name.where"
	echo "$st" >"$results/$name.status"
	case $st in
	0) echo "PASS $name (${secs}s, $where)" ;;
	77) echo "SKIP $name: $(tail -n 1 "$log")" ;;
	124) echo "FAIL $name (timed out after $limit s, $where)" ;;
	*) echo "FAIL $name (status $st, ${secs}s, $where)" ;;
	esac
done
exit 0
