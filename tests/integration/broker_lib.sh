# Helpers for the bulkheadd tests (test_broker*.sh, test_console.sh); source
# after lib.sh. Each test runs its own bulkheadd on a private socket with its
# own configuration file, so nothing on the host is touched.

# Every process a broker test starts in the background is recorded here and
# killed by pid on exit, whatever the outcome (lib.sh's cleanup cannot see
# background jobs from its command substitution under dash). bulkheadd's
# children die with it (PR_SET_PDEATHSIG).
BRK_BG_PIDS=""
bg_started() { BRK_BG_PIDS="$BRK_BG_PIDS $1"; }
bg_done() {  # PID: waited for; never kill that number later
	l=""
	for p in $BRK_BG_PIDS; do [ "$p" = "$1" ] || l="$l $p"; done
	BRK_BG_PIDS=$l
}
broker_cleanup() {
	for p in $BRK_BG_PIDS; do kill -9 "$p" 2>/dev/null; done
	cleanup
}
trap 'broker_cleanup' EXIT

SOCK=$TMP/bulkhead.sock
BRK_CONF=$TMP/bulkheadd.conf
BRK_LOG=$TMP/bulkheadd.log
BRK_PID=""
export BULKHEAD_SOCKET="$SOCK"
: >"$BRK_CONF"

# The long-running guest: port writes nobody claims, for a very long time.
LONG_GUEST=$GUESTS/nullio.elf
LONG_CMDLINE="port=0x510 count=100000000000 cpl=3"

# start_broker [bulkheadd args]: start bulkheadd and wait for its socket.
start_broker() {
	# The log exists before the broker does: the background job's own
	# redirection may come after the first look below, and grep -c on a
	# missing file prints nothing, which the test of the loop cannot read.
	: >>"$BRK_LOG"
	before=$(grep -c "listening on $SOCK" "$BRK_LOG")
	"$BIN/bulkheadd" --socket "$SOCK" --config "$BRK_CONF" "$@" \
		>>"$BRK_LOG" 2>&1 &
	BRK_PID=$!
	bg_started "$BRK_PID"
	i=0
	while [ "$(grep -c "listening on $SOCK" "$BRK_LOG")" -le "$before" ]; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$BRK_PID" 2>/dev/null; then
			cat "$BRK_LOG"
			fail "bulkheadd did not start"
		fi
		sleep 0.05
	done
}

# stop_broker: SIGTERM, wait, expect status 0 and the socket gone.
stop_broker() {
	kill -TERM "$BRK_PID"
	st=0
	wait "$BRK_PID" || st=$?
	bg_done "$BRK_PID"
	[ $st -eq 0 ] || { cat "$BRK_LOG"; fail "bulkheadd exited with $st after SIGTERM"; }
	[ -e "$SOCK" ] && fail "bulkheadd left its socket $SOCK behind"
	BRK_PID=""
}

broker_alive() {
	kill -0 "$BRK_PID" 2>/dev/null || { cat "$BRK_LOG"; fail "bulkheadd died"; }
}

# bh ARGS...: run the CLI, output in $TMP/o and $TMP/e, status in $status.
bh() {
	status=0
	timeout 60 "$BIN/bulkhead" "$@" >"$TMP/o" 2>"$TMP/e" || status=$?
	echo "\$ bulkhead $* -> $status"
	sed 's/^/  /' "$TMP/o" "$TMP/e"
}

# bh_ok ARGS...: must succeed.
bh_ok() {
	bh "$@"
	[ "$status" -eq 0 ] || fail "'bulkhead $*' exited $status"
}

# bh_fails STATUS TEXT ARGS...: must exit STATUS with TEXT on stderr.
bh_fails() {
	want=$1; text=$2; shift 2
	bh "$@"
	[ "$status" -eq "$want" ] || fail "'bulkhead $*' exited $status, expected $want"
	grep -qF -- "$text" "$TMP/e" || fail "'bulkhead $*': no '$text' in its errors"
}

# json_vm_field FILE NAME KEY: the value of KEY in the VM object named NAME
# of a `bulkhead --json list` or `status` output (json-c pretty printing:
# one "key":value per line; "name" comes before the other scalar keys).
json_vm_field() {
	awk -v name="\"name\":\"$2\"," -v key="\"$3\":" '
		index($0, name) { found = 1; next }
		found && index($0, key) == 1 {
			v = substr($0, length(key) + 1); sub(/,$/, "", v)
			gsub(/"/, "", v); print v; exit
		}' "$1" | head -n 1
}

# expect_state NAME STATE: in status (text, JSON) and list (text, JSON).
expect_state() {
	bh_ok status "$1"
	grep -qx "state: *$2" "$TMP/o" || fail "status $1: state is not $2"
	bh_ok --json status "$1"
	sed 's/^ *//' "$TMP/o" >"$TMP/j"
	[ "$(json_vm_field "$TMP/j" "$1" state)" = "$2" ] || \
		fail "status --json $1: state is not $2"
	bh_ok list
	awk -v n="$1" -v s="$2" 'NR > 1 && $2 == n && $4 == s { ok = 1 } END { exit !ok }' \
		"$TMP/o" || fail "list: $1 is not $2"
	bh_ok list --json
	sed 's/^ *//' "$TMP/o" >"$TMP/j"
	[ "$(json_vm_field "$TMP/j" "$1" state)" = "$2" ] || \
		fail "list --json: $1 is not $2"
}

# status_until NAME PATTERN TRIES MESSAGE: runs status NAME every 0.1 s
# until its output has a line matching PATTERN (grep), failing with MESSAGE
# after TRIES more tries.
status_until() {
	i=0
	while :; do
		bh_ok status "$1"
		grep -q "$2" "$TMP/o" && break
		i=$((i + 1))
		[ $i -gt "$3" ] && fail "$4"
		sleep 0.1
	done
}

# vm_pid NAME LABEL: the pid of the VM's process LABEL (worker, uart#0, ...)
vm_pid() {
	timeout 60 "$BIN/bulkhead" status "$1" | sed -n 's/^processes: *//p' |
		tr ',' '\n' | awk -v l="$2" '$1 == l { print $2 }'
}

need_setpriv() {
	if ! command -v setpriv >/dev/null 2>&1; then
		echo "skipped: setpriv (util-linux) is not installed"
		exit 77
	fi
	if [ "$(id -u)" -ne 0 ]; then
		echo "skipped: needs root to run bulkheadd and switch uids"
		exit 77
	fi
}
