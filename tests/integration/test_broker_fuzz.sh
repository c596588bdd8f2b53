# A hostile client (build/tests/bin/brkfuzz, tests/integration/brkfuzz.c)
# sends malformed, truncated, oversized and out-of-phase messages, fds
# where none belong, half-open and silent connections and a flood it never
# reads; the broker answers with errors or drops that client, keeps serving
# well-behaved clients after every case, and the VM it runs meanwhile is
# not disturbed.
. tests/integration/lib.sh
. tests/integration/broker_lib.sh
need_kvm
FUZZ=$BUILD/tests/bin/brkfuzz
[ -x "$FUZZ" ] || fail "$FUZZ is not built (make check builds it)"

start_broker
bh_ok create steady --cmdline "$LONG_CMDLINE" "$LONG_GUEST"
bh_ok start steady
w=$(vm_pid steady worker)

st=0
timeout 120 "$FUZZ" "$SOCK" >"$TMP/fuzz.out" 2>&1 || st=$?
cat "$TMP/fuzz.out"
[ $st -eq 0 ] || fail "brkfuzz reported unexpected outcomes (status $st)"
expect_text "$TMP/fuzz.out" "OK: 0 unexpected outcome(s)"

broker_alive
expect_state steady RUNNING
[ "$(vm_pid steady worker)" = "$w" ] || fail "the VM's worker changed under the fuzzing"
# The log names each dropped client and why.
expect_text "$BRK_LOG" "malformed frame"
expect_text "$BRK_LOG" "no Hello within"
expect_text "$BRK_LOG" "it does not read what it is sent"
bh_ok pause steady
bh_ok resume steady
stop_broker
exit 0
