#!/bin/sh
# make check: the Check unit tests, then every integration test against the
# real binaries. Prints one closing line: "N passed, N failed, N skipped".
set -u
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

unit_status=0
echo "== unit tests (Check)"
CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-60} "$build/tests/check_unit" || unit_status=1

echo "== integration tests"
passed=0 failed=0 skipped=0
for t in tests/integration/test_*.sh; do
	name=$(basename "$t" .sh)
	log="$build/tests/$name.log"
	mkdir -p "$build/tests"
	start=$(date +%s)
	BUILD="$build" timeout 300 sh "$t" >"$log" 2>&1
	st=$?
	secs=$(( $(date +%s) - start ))
	case $st in
	0) passed=$((passed + 1)); echo "PASS $name (${secs}s)" ;;
	77) skipped=$((skipped + 1)); echo "SKIP $name: $(tail -n 1 "$log")" ;;
	*) failed=$((failed + 1)); echo "FAIL $name (status $st, ${secs}s); its log:"
	   sed 's/^/    /' "$log" ;;
	esac
done
[ $unit_status -eq 0 ] || { failed=$((failed + 1)); echo "FAIL unit tests"; }
[ $unit_status -eq 0 ] && passed=$((passed + 1))
echo "integration and unit: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
