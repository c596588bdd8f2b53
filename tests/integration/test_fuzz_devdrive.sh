# The whole-process mode (bulkhead-devdrive, tests/fuzz/devdrive.c): the
# real device processes (UART, virtio-blk and every other), spawned as the
# broker spawns them and confined by their real seccomp policies, are
# driven with the stored inputs of their in-process harnesses and survive
# every one (a syscall their policy lacks would kill them); and the bug
# planted in the test-only build/tests/bin/bulkhead-dev-uart-seeded
# (-DBULKHEAD_SEEDED_BUG) is found: the device dies with SIGSEGV, devdrive
# names the operation and aborts, as afl-fuzz expects of a crash.
. tests/integration/lib.sh

DD=$BUILD/bin/bulkhead-devdrive
TDD=$BUILD/tests/bin/bulkhead-devdrive
REPRO=tests/fuzz/seeded/uart-seeded-crash
for f in "$DD" "$TDD" "$BUILD/tests/bin/bulkhead-dev-uart-seeded"; do
	[ -x "$f" ] || fail "$f is not built (make check builds it)"
done

# Can we spawn a sandboxed device here at all?
st=0
"$DD" uart /dev/null >"$TMP/probe" 2>&1 || st=$?
if [ $st -ne 0 ] && grep -q "cannot create the sandbox" "$TMP/probe"; then
	cat "$TMP/probe"
	echo "skipped: cannot create namespaces for the device sandbox here"
	exit 77
fi
[ $st -eq 0 ] || { cat "$TMP/probe"; fail "devdrive cannot run an empty input against the UART"; }

# At most this many stored inputs per device (the largest ones, which
# reach furthest), to keep make check quick.
MAX=${DEVDRIVE_MAX_INPUTS:-40}
nopolicy=""
# Every device of the manifest (build/devices.txt: kind, make name, ...);
# its stored inputs are those of its fuzz target, named after its make name.
[ -s "$BUILD/devices.txt" ] || fail "no $BUILD/devices.txt (make builds it)"
for entry in $(awk '{ print $1 ":" $2 }' "$BUILD/devices.txt"); do
	kind=${entry%%:*} mkname=${entry#*:}
	dir=tests/fuzz/corpus/$mkname
	n=0
	for f in $(ls -S "$dir" | head -n "$MAX"); do
		st=0
		timeout 30 "$DD" --timeout 20 "$kind" "$dir/$f" >"$TMP/out" 2>&1 || st=$?
		if [ $st -ne 0 ] && grep -q "no seccomp policy named" "$TMP/out"; then
			# Its policy is not written yet: it cannot run as in
			# production, so it is not run at all (reported below).
			cat "$TMP/out"
			nopolicy="$nopolicy $kind"
			break
		fi
		if [ $st -ne 0 ]; then
			cat "$TMP/out"
			"$DD" --print "$kind" "$dir/$f" | head -n 40
			fail "bulkhead-dev-$kind failed on $dir/$f (status $st)"
		fi
		n=$((n + 1))
	done
	case " $nopolicy " in *" $kind "*) continue ;; esac
	[ $n -gt 0 ] || fail "no stored inputs for $kind in $dir"
	echo "ok: the $kind process under its policy survived $n stored inputs"
done

# The planted bug: found in the seeded binary, absent from the real one.
st=0
timeout 30 "$TDD" --binary bulkhead-dev-uart-seeded uart "$REPRO" >"$TMP/seeded" 2>&1 || st=$?
cat "$TMP/seeded"
[ $st -eq 134 ] || fail "devdrive did not abort on the seeded crash (status $st)"
expect_text "$TMP/seeded" "CRASH: bulkhead-dev-uart-seeded was killed by signal 11"
st=0
timeout 30 "$TDD" uart "$REPRO" >"$TMP/real" 2>&1 || st=$?
[ $st -eq 0 ] || { cat "$TMP/real"; fail "the real UART fails on the seeded reproducer (status $st)"; }
echo "ok: the seeded bug is found by the whole-process mode; the real UART is unaffected"
if [ -n "$nopolicy" ]; then
	echo "skipped in part: no seccomp policy is built in for the devices:$nopolicy (policy/dev-<kind>.policy); everything else passed"
	exit 77
fi
