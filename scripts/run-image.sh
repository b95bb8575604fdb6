#!/usr/bin/env bash
# run-image.sh: boot the appliance image in QEMU with its serial console in
# this terminal.
#
#   scripts/run-image.sh [bios|uefi]     (default bios)
#
# Quit: Ctrl-a x (QEMU's escape; the machine is stopped at once).
# Clean power off: Ctrl-a c for the QEMU monitor, then `system_powerdown`
# (the ACPI power button: Gate stops its services, unmounts and powers off).
# Ctrl-a c again goes back to the console.
#
# The image itself is never written: the VM runs on a copy-on-write overlay
# in out/run/, kept between runs (same node, same keys) and made anew when
# out/gate.raw is rebuilt. RESET=1 starts from a fresh overlay.
#
# Networking is QEMU user networking with restrict=on: the guest has a NIC
# but reaches nothing outside the VM. Software emulation (TCG) unless KVM=1
# and /dev/kvm exists.
set -euo pipefail

OUT=${OUT:-out}
fw=${1:-bios}
image=$OUT/gate.raw
[ -f "$image" ] || { echo "run-image: no $image (make image)" >&2; exit 1; }

run=$OUT/run
mkdir -p "$run"
overlay=$run/gate-$fw.qcow2
if [ "${RESET:-}" = 1 ] || [ ! -f "$overlay" ] || [ "$image" -nt "$overlay" ]; then
	rm -f "$overlay"
	qemu-img create -q -f qcow2 -F raw -b "$(realpath "$image")" "$overlay"
fi

args=(-machine q35 -m 1024 -smp 2 -nographic -no-reboot
	-drive "file=$overlay,format=qcow2,if=virtio"
	-nic user,restrict=on,model=virtio-net-pci
	-device virtio-rng-pci)
if [ "${KVM:-}" = 1 ] && [ -w /dev/kvm ]; then
	args+=(-accel kvm -cpu host)
else
	args+=(-accel tcg)
fi
case $fw in
bios) ;;
uefi)
	code=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
	vars=$run/OVMF_VARS_4M.fd
	[ -f "$vars" ] || cp "${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}" "$vars"
	args+=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$code"
		-drive "if=pflash,format=raw,unit=1,file=$vars")
	;;
*)
	echo "usage: $0 [bios|uefi]" >&2
	exit 2
	;;
esac

echo "run-image: booting $image ($fw); quit with Ctrl-a x, power off with Ctrl-a c then system_powerdown" >&2
exec qemu-system-x86_64 "${args[@]}"
