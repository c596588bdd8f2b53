# `bulkhead console` under bulkheadd: shows the guest's output (the
# scrollback first), delivers typed input to a guest that echoes it, serves
# two clients at once, detaches on a signal (pipes) or on Ctrl-] (a
# terminal), and ends when the VM ends. A VM without a console says so.
. tests/integration/lib.sh
. tests/integration/broker_lib.sh
need_kvm
start_broker
bh_ok create e "$GUESTS/echo.elf"
bh_ok start e

# First client, from a pipe: the scrollback has "echo: ready".
mkfifo "$TMP/in1"
"$BIN/bulkhead" console e <"$TMP/in1" >"$TMP/out1" 2>"$TMP/err1" &
c1=$!
bg_started $c1
exec 4>"$TMP/in1"
wait_for "$TMP/out1" "echo: ready"
printf 'ping\n' >&4
wait_for "$TMP/out1" "ping"
bh_ok status e
expect_text "$TMP/o" "console:    1 attached"

# A second client sees new output only (--no-replay) and may type too.
mkfifo "$TMP/in2"
"$BIN/bulkhead" console --no-replay e <"$TMP/in2" >"$TMP/out2" 2>"$TMP/err2" &
c2=$!
bg_started $c2
exec 5>"$TMP/in2"
i=0
until bh status e && grep -q "console:    2 attached" "$TMP/o"; do
	i=$((i + 1)); [ $i -gt 50 ] && fail "the second console did not attach"
	sleep 0.1
done
printf 'pong\n' >&5
wait_for "$TMP/out1" "pong"
wait_for "$TMP/out2" "pong"
grep -q "echo: ready" "$TMP/out2" && fail "--no-replay replayed the scrollback"

# SIGTERM detaches a console client; the VM goes on.
kill -TERM $c2
st=0
wait $c2 || st=$?
bg_done $c2
exec 5>&-
cat "$TMP/err2"
[ $st -eq 0 ] || fail "the detached console exited $st"
expect_text "$TMP/err2" "detached"
expect_state e RUNNING

# A terminal: raw mode, Ctrl-] detaches (if script(1) is here to make one).
if command -v script >/dev/null 2>&1; then
	( sleep 0.5; printf 'tty\n'; sleep 0.5; printf '\035'; sleep 2 ) |
		timeout 20 script -q -e -c "$BIN/bulkhead console --no-replay e" \
			/dev/null >"$TMP/tty.out" 2>&1 || fail "console on a tty failed"
	cat "$TMP/tty.out"
	expect_text "$TMP/tty.out" "Ctrl-] detaches"
	expect_text "$TMP/tty.out" "tty"
	expect_text "$TMP/tty.out" "bulkhead: detached"
	expect_state e RUNNING
else
	echo "note: script(1) missing; the tty test is left out"
fi

# 'q' makes the guest say bye and exit: the console ends by itself.
printf 'q' >&4
st=0
wait $c1 || st=$?
bg_done $c1
exec 4>&-
cat "$TMP/out1" "$TMP/err1"
[ $st -eq 0 ] || fail "console exited $st when the VM ended"
expect_line "$TMP/out1" "echo: bye"
expect_text "$TMP/err1" "console closed: VM 'e' is OFF: the guest wrote 0 to debug-exit"
expect_state e OFF
bh_ok status e
expect_text "$TMP/o" "last exit:  the guest wrote 0 to debug-exit (run exit status 1)"

# The scrollback survives the run; a VM without a console refuses.
"$BIN/bulkhead" console e </dev/null >"$TMP/out3" 2>&1 &
c3=$!
bg_started $c3
wait_for "$TMP/out3" "echo: bye"
kill -TERM $c3
wait $c3 || true
bg_done $c3
bh_ok create quiet --serial null "$GUESTS/echo.elf"
bh_fails 1 "VM 'quiet' has no console" console quiet
stop_broker
exit 0
