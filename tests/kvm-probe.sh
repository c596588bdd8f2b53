# What this machine's /dev/kvm can do, asked by booting guests on it.
# Sourced by tests/run-tests.sh and tests/integration/lib.sh; BUILD must
# be set. Each function leaves its reason in $kvm_probe_why.
#
#   kvm_boots         a guest boots: /dev/kvm opens and hello.elf runs to
#                     its clean end
#   kvm_runs_cpl0     guest kernel code (CPL 0) runs at hardware speed:
#                     kloop.elf's 20 million loops at CPL 0 end within
#                     KVM_PROBE_CPL0_SECS (5) seconds. Hardware-assisted KVM
#                     (VMX, SVM, nested or not) takes milliseconds; a KVM
#                     that emulates CPL 0 code instruction by instruction
#                     (KVM on PVM, where only CPL 3 code runs natively)
#                     takes about 30 s, and a full Linux kernel would take
#                     hours to boot there.
#
# The bound is a capability probe with a margin of a thousand either way,
# not a performance assertion.
KVM_PROBE_CPL0_SECS=${KVM_PROBE_CPL0_SECS:-5}
kvm_probe_why=""

kvm_boots() {
	if [ ! -c /dev/kvm ]; then
		kvm_probe_why="this machine has no /dev/kvm"
		return 1
	fi
	if ! ( exec 3<>/dev/kvm ) 2>/dev/null; then
		kvm_probe_why="/dev/kvm cannot be opened by $(id -un)"
		return 1
	fi
	kp_st=0
	kp_err=$(timeout 60 "$BUILD/bin/bulkhead" run --serial null \
		"$BUILD/guests/hello.elf" </dev/null 2>&1 >/dev/null) || kp_st=$?
	if [ $kp_st -ne 1 ]; then
		kvm_probe_why="no guest boots on this machine's /dev/kvm (hello.elf: status $kp_st, $(echo "$kp_err" | tail -n 1))"
		return 1
	fi
	kvm_probe_why="a guest boots on it"
	return 0
}

# The name of the host's KVM module, for the reason (kvm_intel, kvm_amd,
# kvm_pvm), or "unknown".
kvm_module() {
	for m in kvm_intel kvm_amd kvm_pvm; do
		[ -d "/sys/module/$m" ] && { echo "$m"; return; }
	done
	echo unknown
}

kvm_runs_cpl0() {
	kp_st=0
	kp_start=$(date +%s%N)
	timeout "$KVM_PROBE_CPL0_SECS" "$BUILD/bin/bulkhead" run --serial null \
		"$BUILD/guests/kloop.elf" </dev/null >/dev/null 2>&1 || kp_st=$?
	kp_ms=$(( ($(date +%s%N) - kp_start) / 1000000 ))
	case $kp_st in
	1)
		kvm_probe_why="guest kernel code runs at hardware speed here (kloop.elf: 20 million loops at CPL 0 in $kp_ms ms, $(kvm_module))"
		return 0
		;;
	124)
		kvm_probe_why="this machine's /dev/kvm ($(kvm_module)) emulates guest kernel code: kloop.elf's 20 million loops at CPL 0 did not end within $KVM_PROBE_CPL0_SECS s, where hardware-assisted KVM takes milliseconds"
		;;
	*)
		kvm_probe_why="kloop.elf did not run on this machine's /dev/kvm (status $kp_st)"
		;;
	esac
	return 1
}
