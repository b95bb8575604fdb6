#!/usr/bin/env bash
# Boot benchmark: image sizes, and the time from QEMU start to the ready
# line under TCG (no KVM) for Gate's initramfs and for a trivial init on the
# same kernel, REPS times each, direct kernel boot, no network, no disk
# (gate.state=tmpfs: PID 1 does not wait for a state partition). The ratio
# is Gate's own cost at boot. Writes out/bench/boot.json and prints a table.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/out/bench}
REPS=${REPS:-3}
TIMEOUT=${TIMEOUT:-180}
mkdir -p "$OUT"
work=$(mktemp -d /tmp/gate-bootbench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$ROOT"

CGO_ENABLED=0 go build -trimpath -o "$work/trivial" ./scripts/trivialinit
go run ./initramfs/cmd/mkinitramfs -init "$work/trivial" -kernel out/kernel -modules "" -ca "" -o "$work/trivial.cpio.gz" >/dev/null

# boot INITRD PATTERN: seconds from QEMU start to PATTERN on the serial line.
boot() {
	local log="$work/serial.log" t0 t1
	: >"$log"
	t0=$(date +%s.%N)
	qemu-system-x86_64 -machine q35 -m 1024 -smp 2 -accel tcg -display none -nic none -no-reboot \
		-serial "file:$log" -kernel out/kernel/vmlinuz -initrd "$1" \
		-append "console=ttyS0,115200 panic=10 gate.state=tmpfs" -device virtio-rng-pci >/dev/null 2>&1 &
	local q=$!
	local deadline=$(( $(date +%s) + TIMEOUT ))
	until grep -aq "$2" "$log"; do
		if [ "$(date +%s)" -ge "$deadline" ] || ! kill -0 $q 2>/dev/null; then
			kill $q 2>/dev/null || true; echo "boot of $1 never printed '$2'" >&2; tail -5 "$log" >&2; return 1
		fi
		sleep 0.05
	done
	t1=$(date +%s.%N)
	kill $q 2>/dev/null || true
	wait $q 2>/dev/null || true
	awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f\n", b - a}'
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

: >"$work/gate.t"; : >"$work/trivial.t"
for i in $(seq "$REPS"); do
	boot out/initramfs.cpio.gz "gate: ready" >>"$work/gate.t"
	boot "$work/trivial.cpio.gz" "trivial: ready" >>"$work/trivial.t"
done
g=$(median <"$work/gate.t"); t=$(median <"$work/trivial.t")
size() { jq --arg n "$1" '.files[] | select(.name==$n) | .bytes' out/manifest.json; }
jq -n --argjson g "$g" --argjson t "$t" --argjson gr "[$(paste -sd, "$work/gate.t")]" --argjson tr "[$(paste -sd, "$work/trivial.t")]" \
	--argjson raw "$(size gate.raw)" --argjson gz "$(size gate.raw.gz)" --argjson qcow2 "$(size gate.qcow2)" --argjson vmdk "$(size gate.vmdk)" \
	--arg kernel "$(jq -r .kernel.release out/manifest.json)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
	'{kernel:$kernel, loadavg:$load, image_bytes:{raw:$raw, gz:$gz, qcow2:$qcow2, vmdk:$vmdk},
	  boot_s:{gate:$g, trivial_init:$t, ratio:($g/$t), gate_reps:$gr, trivial_reps:$tr}}' >"$OUT/boot.json"
jq -r '"image: raw \(.image_bytes.raw/1048576|round) MiB, gz \(.image_bytes.gz/1e6*10|round/10) MB, qcow2 \(.image_bytes.qcow2/1e6*10|round/10) MB, vmdk \(.image_bytes.vmdk/1e6*10|round/10) MB",
	"boot to ready (TCG, direct kernel, median of \(.boot_s.gate_reps|length)): gate \(.boot_s.gate) s, trivial init \(.boot_s.trivial_init) s, ratio \(.boot_s.ratio*100|round/100)"' "$OUT/boot.json"
