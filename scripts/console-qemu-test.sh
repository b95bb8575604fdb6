#!/usr/bin/env bash
# The console over the serial line of the booted image, expect-style: QEMU
# (TCG) runs in tmux with the guest's ttyS0 on the pane, its NIC on a tap
# in a namespace holding dnsmasq and a controller (the host's bin/gate).
# Keystrokes set a static address through the console's form (kept with
# c) and join a network with a pre-allowed token; the namespace then pings
# the new address and the controller lists the member with its overlay
# address. Screens go to out/console/qemu-*.txt. Times are not asserted.
source "$(dirname "$0")/netns-lib.sh"
trap 'rc=$?; tmux -L "$RUN" kill-server 2>/dev/null || true; cleanup $rc' EXIT
require_tools
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/out}
IMAGE=$OUT/gate.raw
[ -f "$IMAGE" ] || { echo "need $IMAGE (make image)" >&2; exit 1; }
for t in dnsmasq tmux qemu-system-x86_64 qemu-img; do command -v $t >/dev/null || { echo "need $t (make deps image-deps)" >&2; exit 1; }; done
mkdir -p "$OUT/console"

say "a LAN with DHCP and a controller"
mkns wan
bridge wan br0
ip -n "$(ns wan)" addr add 10.0.77.1/24 dev br0
ip -n "$(ns wan)" tuntap add dev tap0 mode tap
ip -n "$(ns wan)" link set tap0 master br0 up
start dnsmasq wan dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --interface=br0 --bind-interfaces \
	--no-ping --dhcp-range=10.0.77.50,10.0.77.99,255.255.255.0,2m --dhcp-option=option:router,10.0.77.1 \
	--dhcp-leasefile="$WORK/leases" --log-dhcp --log-facility="$WORK/dnsmasq.log"
start ctl wan "$GATE" controller --state "$WORK/ctl" --listen 10.0.77.1:8443
wait_for 20 test -s "$WORK/ctl/controller.url"
admin() { ip netns exec "$(ns wan)" env GATE_CONTROLLER_STATE="$WORK/ctl" "$GATE" "$@"; }
wait_for 20 admin network list
NET=$(admin network create --name console --cidr 192.168.254.0/24 --json | jq -r .id)
JOIN=$(admin token create "$NET" --allow --address 192.168.254.11)

say "boot, serial console in tmux"
qemu-img create -q -f qcow2 -F raw -b "$IMAGE" "$WORK/vm.qcow2"
T="tmux -L $RUN"
$T new-session -d -s vm -x 80 -y 24 "ip netns exec $(ns wan) qemu-system-x86_64 -machine q35 -m 512 -smp 1 -accel tcg \
	-nographic -no-reboot -device virtio-rng-pci -drive file=$WORK/vm.qcow2,format=qcow2,if=virtio \
	-netdev tap,id=wan,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=wan,mac=52:54:00:00:77:01 \
	2>$WORK/qemu.err"
screen() { $T capture-pane -p -t vm; }
shows() { screen | grep -F -- "$1" >/dev/null; } # not -q: it may exit before screen has written all, and pipefail fails on its SIGPIPE
type() { local k; for k in "$@"; do $T send-keys -t vm "$k"; sleep 0.1; done; }
text() { $T send-keys -t vm -l "$1"; sleep 0.2; }
expect() { if wait_for "${2:-30}" shows "$1"; then pass "serial shows: $1"; else fail "serial never showed: $1"; screen | sed 's/^/        /'; fi; }
shot() { screen >"$OUT/console/qemu-$1.txt"; }
t0=$(date +%s)
expect "gate: ready" 240
expect "press Enter on ttyS0" 60
note "ready after $(( $(date +%s) - t0 )) s"
type Enter
expect "none joined: press j to join one" 60
narrow_ascii() { test "$(screen | LC_ALL=C awk 'length > 80 || /[^ -~]/' | wc -l)" = 0; }
check "80 columns of plain ASCII" narrow_ascii

say "a static address through the form, kept"
type i
expect "eth0"
type e
expect "Interface eth0"
type Space Tab C-u
text "10.0.77.300/24"
expect "not an address/prefix"
type C-u
text "10.0.77.200/24"
type Tab C-u
text "10.0.77.1"
type Enter
expect "reverts in"
shot static-pending
type c
expect "Kept" 30
check "the namespace reaches the new address" wait_for 30 in_ns wan ping -c1 -W1 10.0.77.200

say "join a network with a pre-allowed token"
type d j
expect "Join a network"
text "$JOIN"
type Enter
expect "Joined: 192.168.254.11/24" 60
shot joined
member_ok() { admin member list "$NET" --json | jq -e '.[] | select(.state=="allowed" and (.addresses|index("192.168.254.11")))'; }
check "the controller lists the appliance with its address" wait_for 20 member_ok
type d
shot dashboard
summary
