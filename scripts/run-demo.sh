#!/bin/sh
# make run: boot the demo guest through the whole process stack. Without a
# usable /dev/kvm here it boots it inside a nested KVM host under QEMU's
# emulation (scripts/kvm-nest), and says so. BULKHEAD_NEST=1 always nests,
# BULKHEAD_NEST=0 never does.
#
#   sh scripts/run-demo.sh BUILD GUEST
set -u
build=$1 guest=$2
bulkhead=$build/bin/bulkhead

nest=0
case ${BULKHEAD_NEST:-} in
1) nest=1 why="BULKHEAD_NEST=1" ;;
0) ;;
*)
	if [ ! -c /dev/kvm ]; then
		nest=1 why="this machine has no /dev/kvm"
	elif ! ( exec 3<>/dev/kvm ) 2>/dev/null; then
		nest=1 why="/dev/kvm cannot be opened by $(id -un)"
	fi
	;;
esac

if [ $nest -eq 1 ]; then
	echo "bulkhead: $why: booting $guest inside a nested KVM host under QEMU's emulation (scripts/kvm-nest; about 10 s; BULKHEAD_NEST=0 runs it here instead)" >&2
	sh scripts/install-deps.sh nest || exit 1
	st=0
	scripts/kvm-nest --quiet "$bulkhead" run "$guest" || st=$?
else
	echo "bulkhead: booting $guest (worker and devices in their own processes)" >&2
	st=0
	"$bulkhead" run "$guest" || st=$?
fi

# What the status says (README, "Exit status").
case $st in
0) what="the guest powered off" ;;
1) what="the guest wrote 0 to debug-exit: the demo's clean end" ;;
124) what="the nest timed out" ;;
125) what="the nest could not start (see above)" ;;
*)
	if [ $((st % 2)) -eq 1 ]; then
		what="the guest wrote $(( (st - 1) / 2 )) to debug-exit"
	else
		what="a VMM error (see the message above and the README's exit status table)"
	fi
	;;
esac
echo "bulkhead: exit status $st: $what" >&2
[ $st -eq 1 ]
