# Every process of a running VM is confined (docs/sandbox.md): inspected
# through /proc while the VM runs, each process and each of its threads has
# seccomp filter mode (Seccomp: 2), NoNewPrivs 1, no capabilities in any
# set, its own non-root uid and gid (SBX_ID_BASE + its pid), pid, net, mnt,
# ipc and uts namespaces of its own, an empty read-only root, the rlimits of
# its policy, and exactly the fds listed below for its kind.
. tests/integration/lib.sh
need_kvm

SBX_ID_BASE=$((0x6b000000))

mkfifo "$TMP/in"
"$BIN/bulkhead" run --null-dev "$GUESTS/echo.elf" <"$TMP/in" >"$TMP/out" \
	2>"$TMP/err" &
vmm=$!
exec 4>"$TMP/in"   # keep the console open until we are done
wait_for "$TMP/out" "echo: ready"

# An fd's target, as a word: the expected lists below are made of these.
fd_kind() {  # PID FD
	t=$(readlink "/proc/$1/fd/$2") || return
	case $t in
	/null | /dev/null) echo null ;;
	pipe:*) echo pipe ;;
	socket:*) echo socket ;;
	"anon_inode:[eventfd]") echo eventfd ;;
	"anon_inode:[timerfd]") echo timerfd ;;
	anon_inode:kvm-vm) echo kvm-vm ;;
	anon_inode:kvm-vcpu:*) echo kvm-vcpu ;;
	/dev/kvm) echo kvm ;;
	"/memfd:bulkhead-guest-ram (deleted)") echo guest-ram ;;
	"$(readlink -f "$GUESTS/echo.elf")") echo image ;;
	"$TMP/in") echo console-in ;;
	"$TMP/out") echo console-out ;;
	*) echo "unexpected:$t" ;;
	esac
}

fd_list() {  # PID: the sorted kinds of all its fds, on one line
	for f in /proc/$1/fd/*; do
		fd_kind "$1" "${f##*/}"
	done | sort | tr '\n' ' ' | sed 's/ $//'
}

# Exactly these fds, per kind (one VM with 1 vCPU):
#  worker: 0-1 /dev/null, 2 the pipe to the broker, its broker channel and
#          one channel per device, the wake eventfd, /dev/kvm, guest RAM,
#          the image (kept for reset), the VM and its vCPU;
#  a device: 0-1, 2, its channel to the worker, the devhost timer, one
#          eventfd per IRQ line, and its backend:
#  uart:   IRQ 4, and the console the CLI handed over (our fifo and our
#          output file);
#  rtc:    IRQ 8;    i8042: IRQs 1 and 12;    acpi-pm: GSI 23 (the power
#          button);    debug-exit, null: no IRQ.
# A device kind not listed here fails the test: add its line.
want_device_base="null null pipe socket timerfd"
want_uart="console-in console-out eventfd null null pipe socket timerfd"
want_rtc="eventfd null null pipe socket timerfd"
want_i8042="eventfd eventfd null null pipe socket timerfd"

status_field() {  # FILE FIELD
	sed -n "s/^$2:[[:space:]]*//p" "$1"
}

check_task() {  # TASK-STATUS-FILE UID
	st=$1 want_id=$2
	[ "$(status_field "$st" Seccomp)" = 2 ] || fail "$st: Seccomp is not 2"
	[ "$(status_field "$st" NoNewPrivs)" = 1 ] || fail "$st: NoNewPrivs is not 1"
	for cap in CapInh CapPrm CapEff CapBnd CapAmb; do
		[ "$(status_field "$st" $cap)" = 0000000000000000 ] ||
			fail "$st: $cap is $(status_field "$st" $cap)"
	done
	for f in Uid Gid; do
		set -- $(status_field "$st" $f)
		for id in "$@"; do
			[ "$id" -ne 0 ] || fail "$st: $f is 0"
			[ "$id" -eq "$want_id" ] || fail "$st: $f $id, expected $want_id (SBX_ID_BASE + pid)"
		done
	done
}

limit() {  # PID NAME: the soft limit
	sed -n "s/^Max $2  *\([^ ]*\) .*/\1/p" "/proc/$1/limits"
}

kids=$(children $vmm)
echo "bulkhead run is pid $vmm; children:" $kids
ndevs=0
for k in $kids; do
	case $(basename "$(readlink /proc/$k/exe)") in
	bulkhead-dev-*) ndevs=$((ndevs + 1)) ;;
	esac
done
want_worker=$(printf '%s\n' eventfd guest-ram image kvm kvm-vcpu kvm-vm null null pipe \
	$(seq 0 $ndevs | sed 's/.*/socket/') | sort | tr '\n' ' ' | sed 's/ $//')
nkids=0 seen_ns=""
for k in $kids; do
	nkids=$((nkids + 1))
	exe=$(basename "$(readlink /proc/$k/exe)")
	uid=$((SBX_ID_BASE + k))
	echo "== $k $exe (uid $uid)"
	grep -E '^(Uid|Gid|Cap|NoNewPrivs|Seccomp)' /proc/$k/status | sed 's/^/   /'

	# Every thread, not just the main one: credentials are per thread.
	for t in /proc/$k/task/*; do
		check_task "$t/status" "$uid"
	done
	set -- $(status_field /proc/$k/status Uid)
	[ "$1" -eq "$uid" ] || fail "$exe: uid $1, expected $uid"

	# Namespaces of its own: not the broker's, not another child's.
	for ns in pid net mnt ipc uts; do
		mine=$(readlink /proc/$k/ns/$ns)
		[ "$mine" != "$(readlink /proc/$vmm/ns/$ns)" ] ||
			fail "$exe shares the broker's $ns namespace ($mine)"
		case " $seen_ns " in
		*" $mine "*) fail "$exe shares its $ns namespace with a sibling" ;;
		esac
		seen_ns="$seen_ns $mine"
	done

	# An empty root that cannot be written.
	[ -z "$(ls -A /proc/$k/root/)" ] ||
		fail "$exe: its root is not empty: $(ls -A /proc/$k/root/)"
	if touch /proc/$k/root/probe 2>/dev/null; then
		fail "$exe: its root is writable"
	fi

	# rlimits.
	[ "$(limit $k 'core file size')" = 0 ] || fail "$exe: core dumps allowed"
	nofile=$(limit $k 'open files')
	[ "$nofile" -le 128 ] || fail "$exe: NOFILE $nofile is not small"

	fds=$(fd_list $k)
	echo "   fds: $fds"
	echo "   limits: processes $(limit $k processes), file size $(limit $k 'file size'), open files $nofile"
	case $exe in
	bulkhead-worker)
		want=$want_worker
		# NPROC: exactly the tasks it may run (emt-worker/main.c):
		# the main thread, one EMT per vCPU, KVM's NX huge page
		# recovery thread (not on every host), the saver thread and
		# its encoder helpers, one per CPU it may use beyond the
		# first, for at most 4 encoders. Its threads now: no more.
		nproc=$(limit $k processes) ntasks=$(ls /proc/$k/task | wc -l)
		encoders=$(status_field /proc/$k/status Cpus_allowed_list |
			awk -F, '{ for (i = 1; i <= NF; i++) { n = split($i, r, "-");
				c += n == 2 ? r[2] - r[1] + 1 : 1 } } END { print c }')
		[ "$encoders" -le 4 ] || encoders=4
		vcpus=1
		want_nproc=$((1 + vcpus + 1 + 1 + encoders - 1))
		[ "$nproc" -eq "$want_nproc" ] ||
			fail "worker: NPROC $nproc, expected $want_nproc (1 vCPU, $encoders encoders)"
		[ "$ntasks" -le "$nproc" ] ||
			fail "worker: $ntasks threads but NPROC $nproc"
		# FSIZE: a save writes the stream into the user's file itself.
		[ "$(limit $k 'file size')" = unlimited ] ||
			fail "worker: FSIZE is not unlimited"
		# setup + run filters on every thread; EMTs stack their own
		[ "$(status_field /proc/$k/status Seccomp_filters)" = 2 ] ||
			fail "worker: main thread does not have 2 filters"
		for t in /proc/$k/task/*; do
			if [ "$(cat $t/comm)" = emt-0 ]; then
				[ "$(status_field $t/status Seccomp_filters)" = 3 ] ||
					fail "worker: emt-0 lacks its own filter"
			fi
		done
		;;
	bulkhead-dev-*)
		[ "$(limit $k processes)" = 2 ] || fail "$exe: NPROC is not 2"
		case $exe in
		bulkhead-dev-uart) want=$want_uart ;;
		bulkhead-dev-rtc | bulkhead-dev-acpi-pm) want=$want_rtc ;;
		bulkhead-dev-i8042) want=$want_i8042 ;;
		bulkhead-dev-debugexit | bulkhead-dev-null) want=$want_device_base ;;
		*) fail "$exe: no fd list for this device kind in $0" ;;
		esac
		# Only a device with a file backend may write regular files.
		case $exe in
		bulkhead-dev-uart) ;;
		*) [ "$(limit $k 'file size')" = 0 ] || fail "$exe: FSIZE is not 0" ;;
		esac
		;;
	*)
		fail "unexpected child $exe"
		;;
	esac
	[ "$fds" = "$want" ] || fail "$exe: fds are '$fds', expected '$want'"
	# Its stderr is the broker's relay pipe.
	relay=$(readlink /proc/$k/fd/2)
	ls -l /proc/$vmm/fd | grep -qF "$relay" ||
		fail "$exe: stderr $relay is not read by the broker"
done
[ "$nkids" -ge 4 ] || fail "expected the worker and at least uart, debug-exit and null, found $nkids children"

printf 'q' >&4
echo_vm_wait
expect_status 1
expect_line "$TMP/out" "echo: bye"
exit 0
