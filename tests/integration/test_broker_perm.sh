# Authorization by SO_PEERCRED and per-uid quotas: run as another uid
# (nobody, 65534), the CLI cannot see, pause, destroy, start or attach to
# root's VMs and gets a clear permission error; root sees and controls
# everybody's; quotas from the configuration file refuse an over-limit
# create with a message that says which limit and where to raise it.
. tests/integration/lib.sh
. tests/integration/broker_lib.sh
need_kvm
need_setpriv

# nobody must reach the socket (authorization is not by file modes) and
# read its own image.
chmod 755 "$TMP"
cp "$GUESTS/echo.elf" "$TMP/echo.elf"
chmod 644 "$TMP/echo.elf"
cat >"$BRK_CONF" <<EOF
# test quotas
max_vms_per_uid = 8
uid.65534.max_vms = 2
uid.65534.max_mem = 160M
uid.65534.max_cpus = 3
EOF
start_broker
[ "$(stat -c %a "$SOCK")" = 666 ] || fail "socket mode is not 0666"

NOBODY="setpriv --reuid 65534 --regid 65534 --clear-groups"
ABS_BIN=$(cd "$BIN" && pwd)
nb() {  # like bh, as nobody
	status=0
	( cd "$TMP" && timeout 60 $NOBODY "$ABS_BIN/bulkhead" "$@" ) \
		>"$TMP/o" 2>"$TMP/e" || status=$?
	echo "\$ [nobody] bulkhead $* -> $status"
	sed 's/^/  /' "$TMP/o" "$TMP/e"
}
nb_fails() {  # STATUS TEXT ARGS...
	want=$1; text=$2; shift 2
	nb "$@"
	[ "$status" -eq "$want" ] || fail "[nobody] 'bulkhead $*' exited $status, expected $want"
	grep -qF -- "$text" "$TMP/e" || fail "[nobody] 'bulkhead $*': no '$text'"
}

bh_ok create rootvm --cmdline "$LONG_CMDLINE" "$LONG_GUEST"
bh_ok start rootvm
bh_ok create rootidle "$GUESTS/echo.elf"

# nobody sees none of them and may touch none of them.
nb list
[ "$status" -eq 0 ] || fail "nobody cannot list"
expect_line "$TMP/o" "no VMs"
nb list --json
grep -q rootvm "$TMP/o" && fail "nobody's list shows root's VM"
DENIED="permission denied: VM 'rootvm' belongs to another user"
for op in status pause resume reset poweroff destroy stats start; do
	nb_fails 1 "$DENIED" "$op" rootvm
done
nb_fails 1 "permission denied" console rootvm
nb_fails 1 "permission denied: VMs of uid 0" status 0/rootvm
nb_fails 1 "permission denied" --json destroy rootvm
expect_text "$TMP/o" '"code":"EPERM"'
nb_fails 1 "permission denied" start rootidle
# ... and root's VM is untouched.
expect_state rootvm RUNNING
expect_state rootidle CREATED

# The CLI opens files with the user's rights: root's files stay closed.
chmod 600 "$TMP/bulkheadd.log"
nb_fails 4 "cannot open image '$TMP/bulkheadd.log': Permission denied" \
	create sneaky "$TMP/bulkheadd.log"
nb_fails 4 "cannot open disk image '$TMP/bulkheadd.log': Permission denied" \
	create sneaky --disk "$TMP/bulkheadd.log" "$TMP/echo.elf"

# nobody's own VMs, within its quotas: 2 VMs, 160M, 3 vCPUs.
nb create a --mem 64M "$TMP/echo.elf"
[ "$status" -eq 0 ] || fail "nobody cannot create a VM"
nb_fails 1 "quota exceeded: uid 65534 may use 160M of guest RAM" \
	create b --mem 128M "$TMP/echo.elf"
nb_fails 1 "quota exceeded: uid 65534 may use 3 vCPUs" \
	create b --cpus 3 "$TMP/echo.elf"
nb create b --mem 64M --cpus 2 "$TMP/echo.elf"
[ "$status" -eq 0 ] || fail "nobody cannot create a second VM"
nb_fails 1 "quota exceeded: uid 65534 may have at most 2 VMs and has 2" \
	create c --mem 16M "$TMP/echo.elf"
expect_text "$TMP/e" "uid.65534.max_vms"
# Names are per owner: nobody may have its own 'rootvm'... once quota allows.
nb destroy b
[ "$status" -eq 0 ] || fail "nobody cannot destroy its own VM"
nb create rootvm --mem 16M "$TMP/echo.elf"
[ "$status" -eq 0 ] || fail "nobody cannot reuse a name root uses"
nb status rootvm
expect_text "$TMP/o" "owner:      nobody (uid 65534)"

# nobody runs and controls its own VM.
nb start a
[ "$status" -eq 0 ] || fail "nobody cannot start its VM"
nb pause a
[ "$status" -eq 0 ] || fail "nobody cannot pause its VM"
nb list
grep -q "SUSPENDED" "$TMP/o" || fail "nobody's list lacks its paused VM"
grep -q "rootidle" "$TMP/o" && fail "nobody's list shows root's VMs"

# root sees everybody's VMs and may control them; UID/NAME disambiguates.
bh_ok list
expect_text "$TMP/o" "nobody"
bh_fails 1 "neither a VM name nor UID/NAME" status 65534/rootvm/x
bh_ok status rootvm
expect_text "$TMP/o" "owner:      root (uid 0)"
bh_ok status 65534/rootvm
expect_text "$TMP/o" "owner:      nobody (uid 65534)"
bh_ok resume a
bh_ok destroy 65534/a
nb_fails 1 "no VM named 'a'" status a

# The broker never died of any of it.
broker_alive
expect_state rootvm RUNNING
stop_broker
exit 0
