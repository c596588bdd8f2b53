#!/bin/sh
# make fuzz: run every libFuzzer harness for SECONDS each, then the
# whole-process mode under afl-fuzz, and print one line per target.
#
#   tests/fuzz/run-fuzz.sh BUILD SECONDS TARGET...
#
# Per target: build/fuzz/<target> reads tests/fuzz/corpus/<target> (seeds
# and reproducers, never written) and build/fuzz/corpus/<target> (what it
# found, kept between runs); a crash is saved in build/fuzz/crashes/; the
# whole log is build/fuzz/logs/<target>.log. Exit status 1 if anything
# crashed.
set -u
build=$1 secs=$2
shift 2
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
logs=$build/fuzz/logs
mkdir -p "$logs"
MIN_EXECS=10000
crashed=0 slow=""

# The last "#N ... cov: C ft: F corp: K/..." line of a libFuzzer log.
field() {  # LOG NAME
	grep -E '^#[0-9]+' "$1" | tail -n 1 | sed -n "s/.* $2: \([0-9]*\).*/\1/p"
}
lf_stat() {   # LOG NAME
	sed -n "s/^stat::$2: *\([0-9]*\).*/\1/p" "$1" | tail -n 1
}

echo "fuzzing each harness for $secs s (libFuzzer, ASan, UBSan)"
printf '%-18s %9s %10s %6s %7s %7s  %s\n' target exec/s execs cov ft corpus result
for t in "$@"; do
	bin=$build/fuzz/$t
	work=$build/fuzz/corpus/$t
	arts=$build/fuzz/crashes/$t
	log=$logs/$t.log
	mkdir -p "$work" "$arts"
	seeds=tests/fuzz/corpus/$t
	[ -d "$seeds" ] || seeds=
	st=0
	"$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 \
		-rss_limit_mb=2048 -artifact_prefix="$arts/" \
		"$work" $seeds >"$log" 2>&1 || st=$?
	eps=$(lf_stat "$log" average_exec_per_sec)
	execs=$(lf_stat "$log" number_of_executed_units)
	art=$(grep -o "Test unit written to [^ ]*" "$log" | tail -n 1 | sed 's/.* to //')
	if [ -n "$art" ]; then
		result="CRASH: $art"
		crashed=1
	elif [ $st -ne 0 ]; then
		result="FAILED (status $st): see $log"
		crashed=1
	else
		result=ok
	fi
	if [ -n "$eps" ] && [ "$eps" -lt $MIN_EXECS ]; then
		slow="$slow $t"
	fi
	printf '%-18s %9s %10s %6s %7s %7s  %s\n' "$t" "${eps:--}" \
		"${execs:--}" "$(field "$log" cov)" "$(field "$log" ft)" \
		"$(field "$log" corp | head -c 12)" "$result"
done
[ -z "$slow" ] || echo "below $MIN_EXECS exec/s:$slow (a busy machine slows every harness)"

# ---- the whole-process mode under afl-fuzz ------------------------------
if ! command -v afl-fuzz >/dev/null 2>&1; then
	echo "whole-process mode: afl-fuzz is not installed" \
	     "(sh scripts/install-deps.sh fuzz); skipped"
	[ $crashed -eq 0 ]
	exit
fi
echo
echo "whole-process mode: afl-fuzz -n drives bulkhead-devdrive, which runs the"
echo "real device binary under its real sandbox, $secs s each"
printf '%-22s %9s %10s %8s  %s\n' device exec/s execs crashes result
afl_run() {  # NAME KIND BINARY EXPECT(crash|clean)
	name=$1 kind=$2 binary=$3 expect=$4
	out=$build/fuzz/afl/$name
	# The hand-written seeds only: without coverage feedback afl-fuzz
	# does best mutating a few inputs that reach deep.
	seeds=$build/fuzz/afl-seeds/$name
	rm -rf "$out" "$seeds"
	mkdir -p "$out" "$seeds"
	cp tests/fuzz/corpus/"$kind"/seed-* "$seeds"/
	st=0
	AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 \
	AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CRASHES=1 \
	AFL_NO_WARN_INSTABILITY=1 \
		timeout $((secs + 60)) afl-fuzz -n -V "$secs" -t 5000 \
		-i "$seeds" -o "$out" -- \
		"$build/tests/bin/bulkhead-devdrive" --timeout 4 \
		--binary "$binary" "$kind" @@ >"$logs/afl-$name.log" 2>&1 || st=$?
	# afl-fuzz -n writes to OUT itself, a coverage-guided one to OUT/default.
	base=$out
	[ -d "$out/default" ] && base=$out/default
	# plot_data's last line: ... execs_per_sec, total_execs, edges_found
	last=$(grep -v '^#' "$base/plot_data" 2>/dev/null | tail -n 1)
	# (its last execs_per_sec is momentary: average over the run instead)
	eps=$(echo "$last" | awk -F', *' 'NF >= 12 && $1 > 0 { printf "%d", $12 / $1 }')
	execs=$(echo "$last" | awk -F', *' 'NF >= 12 { print $12 }')
	ncrash=$(find "$base/crashes" -name 'id:*' 2>/dev/null | wc -l)
	if [ -z "$last" ]; then
		result="afl-fuzz did not run (status $st): see $logs/afl-$name.log"
		crashed=1
	elif [ "$expect" = crash ]; then
		first=$(find "$base/crashes" -name 'id:*' | sort | head -n 1)
		if [ -n "$first" ] && "$build/tests/bin/bulkhead-devdrive" \
			--no-abort --binary "$binary" "$kind" "$first" 2>&1 |
			grep -q "CRASH: $binary was killed by signal 11"; then
			t=$(echo "$first" | sed -n 's/.*,time:\([0-9]*\),.*/\1/p')
			result="planted bug found after $((t / 1000)) s: $first"
		else
			# Not a failure: a short run may miss it (make check
			# replays the stored reproducer).
			result="planted bug not found in $secs s (it usually takes seconds)"
		fi
	elif [ "$ncrash" -gt 0 ]; then
		result="CRASH: $base/crashes"
		crashed=1
	else
		result=ok
	fi
	printf '%-22s %9s %10s %8s  %s\n' "$name" "${eps:--}" "${execs:--}" \
		"$ncrash" "$result"
}
afl_run uart-seeded uart bulkhead-dev-uart-seeded crash
afl_run uart uart bulkhead-dev-uart clean
afl_run virtio-blk virtio-blk bulkhead-dev-virtio-blk clean
[ $crashed -eq 0 ]
