# The fuzz corpora, replayed without a fuzzer: every seed and crash
# reproducer in tests/fuzz/corpus/<target>/ goes through its harness built
# with the ordinary compiler (with AddressSanitizer and UBSan when it has
# them) as build/tests/fuzz-replay-<target> (tests/fuzz/replay.c), so a
# bug that fuzzing found and we fixed cannot come back unnoticed.
. tests/integration/lib.sh

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

n=0
for dir in tests/fuzz/corpus/*/; do
	t=$(basename "$dir")
	bin=$BUILD/tests/fuzz-replay-$t
	[ -x "$bin" ] || fail "$bin is not built (make check builds it)"
	files=$(find "$dir" -type f | wc -l)
	[ "$files" -gt 0 ] || fail "the corpus of $t is empty"
	if ! timeout 120 "$bin" "$dir" >"$TMP/$t.out" 2>&1; then
		tail -n 60 "$TMP/$t.out"
		fail "$t: a stored input fails (run '$bin -v $dir' to see which)"
	fi
	echo "ok $t: $files inputs"
	n=$((n + 1))
done
# Every harness has a corpus.
for bin in "$BUILD"/tests/fuzz-replay-*; do
	t=${bin##*/fuzz-replay-}
	[ -d "tests/fuzz/corpus/$t" ] || fail "harness $t has no tests/fuzz/corpus/$t"
done
[ $n -gt 0 ] || fail "no corpus in tests/fuzz/corpus"
echo "$n harnesses replayed their corpora"
