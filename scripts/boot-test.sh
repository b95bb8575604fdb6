#!/usr/bin/env bash
# boot-test.sh: boot the appliance in QEMU (software emulation, no KVM) and
# expect its ready line on the serial console.
#
#   scripts/boot-test.sh direct  boot out/kernel/vmlinuz + out/initramfs.cpio.gz
#                                with -kernel/-initrd (no disk, state on tmpfs)
#   scripts/boot-test.sh bios    boot out/gate.raw with SeaBIOS
#   scripts/boot-test.sh uefi    boot out/gate.raw with OVMF
#   scripts/boot-test.sh all     bios, then uefi (the default)
#
# Disk boots run twice on a copy-on-write overlay of the image (the image
# itself is never written): the first boot makes the node's identity on the
# state partition and is powered off with the ACPI power button
# (system_powerdown, as a cloud's "power off" does); the second must come up
# with the same node ID. Each boot prints its time to the ready line (host
# wall clock, and the guest's uptime from the ready line); times are printed,
# never asserted. The network is off (-nic none). Exits non-zero on failure.
#
# Environment: OUT (default out), TIMEOUT seconds per boot (default 180),
# QEMU (default qemu-system-x86_64), KEEP=1 keeps the logs' directory.
set -euo pipefail

OUT=${OUT:-out}
TIMEOUT=${TIMEOUT:-180}
QEMU=${QEMU:-qemu-system-x86_64}
OVMF_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
OVMF_VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}

work=$(mktemp -d /tmp/gate-boot.XXXXXX)
qpid=""
cleanup() {
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then kill "$qpid" 2>/dev/null || true; fi
	exec 3>&- 2>/dev/null || true
	if [ "${KEEP:-}" = 1 ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	if [ -n "${log:-}" ] && [ -f "$log" ]; then
		echo "--- last lines of $log ---" >&2
		tail -n 40 "$log" | tr -d '\r' >&2
	fi
	exit 1
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# start_qemu LOG ARGS...: starts QEMU in the background, serial console to
# LOG, monitor on a pipe (fd 3 writes to it).
start_qemu() {
	log=$1
	shift
	rm -f "$work/mon.in" "$work/mon.out"
	mkfifo "$work/mon.in" "$work/mon.out"
	exec 3<>"$work/mon.in"
	cat "$work/mon.out" >/dev/null &
	"$QEMU" -machine q35 -m 1024 -smp 2 -accel tcg \
		-display none -vga std -nic none -no-reboot \
		-serial "file:$log" -monitor "pipe:$work/mon" \
		-device virtio-rng-pci \
		"$@" >"$log.qemu" 2>&1 &
	qpid=$!
	started=$(now)
}

# wait_for PATTERN SECONDS: waits for PATTERN in the serial log while QEMU
# runs.
wait_for() {
	local deadline=$(($(date +%s) + $2))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		if grep -aq "$1" "$log" 2>/dev/null; then return 0; fi
		if ! kill -0 "$qpid" 2>/dev/null; then
			grep -aq "$1" "$log" 2>/dev/null && return 0
			cat "$log.qemu" >&2
			fail "QEMU exited before '$1'"
		fi
		sleep 0.2
	done
	fail "no '$1' within $2 s"
}

ready_line() { grep -a "gate: ready" "$log" | head -n1 | tr -d '\r'; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }

# boot NAME: boots once (QEMU args in the qemu_args array), waits for the
# ready line, reports it and sets node.
boot() {
	local name=$1
	start_qemu "$work/$name.log" "${qemu_args[@]}"
	wait_for "gate: ready" "$TIMEOUT"
	local t line
	t=$(elapsed "$started")
	line=$(ready_line)
	node=$(field node <<<"$line")
	[ -n "$node" ] || fail "ready line without a node ID: $line"
	printf '%-14s ready in %5s s (host wall clock; guest uptime %s): %s\n' "$name" "$t" "$(field uptime <<<"$line")" "$line"
	if grep -aq "WARNING: state on tmpfs" "$log" && [ "$mode" != direct ]; then
		fail "$name: the state partition was not mounted"
	fi
	if grep -aq "kernel modules: " "$log"; then
		grep -a "kernel modules: " "$log" >&2
		fail "$name: a kernel module failed to load"
	fi
}

# poweroff: presses the ACPI power button and waits for a clean stop.
poweroff() {
	echo system_powerdown >&3
	wait_for "gate: power off" 60
	local deadline=$(($(date +%s) + 60))
	while kill -0 "$qpid" 2>/dev/null; do
		[ "$(date +%s)" -lt "$deadline" ] || fail "QEMU still running 60 s after power off"
		sleep 0.2
	done
	wait "$qpid" || true
	qpid=""
	grep -aq "stopped; kernel state removed" "$log" || fail "the daemon did not stop cleanly"
	echo "               powered off cleanly in $(elapsed "$started") s since start"
}

stop_qemu() {
	kill "$qpid" 2>/dev/null || true
	wait "$qpid" 2>/dev/null || true
	qpid=""
}

run_direct() {
	local kernel=$OUT/kernel/vmlinuz initrd=$OUT/initramfs.cpio.gz
	[ -f "$kernel" ] && [ -f "$initrd" ] || fail "need $kernel and $initrd (make initramfs)"
	qemu_args=(-kernel "$kernel" -initrd "$initrd"
		-append "console=tty0 console=ttyS0,115200 panic=-1 gate.state=tmpfs")
	boot direct
	poweroff
}

run_disk() {
	local fw=$1 image=$OUT/gate.raw
	[ -f "$image" ] || fail "need $image (make image)"
	qemu-img create -q -f qcow2 -F raw -b "$(realpath "$image")" "$work/$fw.qcow2"
	qemu_args=(-drive "file=$work/$fw.qcow2,format=qcow2,if=virtio")
	if [ "$fw" = uefi ]; then
		[ -f "$OVMF_CODE" ] || fail "need $OVMF_CODE (apt-get install ovmf)"
		cp "$OVMF_VARS" "$work/vars.fd"
		qemu_args+=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE"
			-drive "if=pflash,format=raw,unit=1,file=$work/vars.fd")
	fi
	boot "$fw"
	local first=$node
	poweroff
	boot "$fw-again"
	[ "$node" = "$first" ] || fail "$fw: node ID changed across a reboot ($first -> $node): state not kept"
	grep -aq "RNG seeded with" "$log" || fail "$fw: no RNG seed from the first boot"
	echo "               same node ID $node after a reboot (state partition kept)"
	poweroff
}

mode=${1:-all}
what=$mode
case $mode in
direct) run_direct ;;
bios | uefi) run_disk "$mode" ;;
all)
	mode=bios
	run_disk bios
	mode=uefi
	run_disk uefi
	;;
*)
	echo "usage: $0 [direct|bios|uefi|all]" >&2
	exit 2
	;;
esac
echo "boot-test $what: PASS"
