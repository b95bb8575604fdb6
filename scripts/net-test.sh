#!/usr/bin/env bash
# net-test.sh: the booted appliance on a network, in QEMU (TCG), wired only
# to network namespaces this script makes (tap devices; no user networking).
#
#   scripts/net-test.sh dhcp   one appliance whose NIC is a tap in a namespace
#                              running dnsmasq: it gets its address, default
#                              route and DNS, answers ping, and renews
#   scripts/net-test.sh pair   two appliances and a controller (the host's
#                              bin/gate in a namespace), configured only by a
#                              preseed file on each image's ESP: both join,
#                              get their addresses, and carry traffic to each
#                              other over the tunnel; one reboots and comes
#                              back with the same node ID, address and tunnel
#   scripts/net-test.sh nocloud  one appliance configured only by a NoCloud
#                              seed volume (a second virtio disk: vfat labelled
#                              CIDATA, made with mkfs.vfat and mcopy) whose
#                              user-data joins a controller with a pre-allowed
#                              single-use token; a `gate up` member in a
#                              namespace pings its overlay address. Then a
#                              second boot with broken user-data (an unknown
#                              key, an invalid value): the error is on the
#                              serial console, nothing of it is applied, the
#                              network joined before still carries traffic
#   scripts/net-test.sh all    dhcp and pair (the default)
#
# How "traffic over the tunnel between the two appliances" is observed
# without a shell in the guests: each appliance is the gateway of a LAN
# (a second NIC, static by preseed) holding one host, and the two LANs'
# only connection is appliance A -> WireGuard -> appliance B (the LAN
# namespaces have no other link; the VMs share only the WAN bridge, whose
# namespace has no route to the LANs, and each appliance reaches the other
# LAN only by the controller's route via the other's overlay address). So
# a ping from host A to host B, and to B's overlay address, crosses the
# A<->B tunnel, or fails.
#
# Each VM boots a sparse copy of out/gate.raw whose ESP gets the preseed
# with mtools (no loop mount). Times are printed, never asserted.
# Environment: OUT (default out), TIMEOUT per boot (default 180), KEEP=1.
source "$(dirname "$0")/netns-lib.sh"
trap 'rc=$?; cleanup_vms; cleanup $rc' EXIT
require_tools

OUT=${OUT:-out}
TIMEOUT=${TIMEOUT:-180}
QEMU=${QEMU:-qemu-system-x86_64}
IMAGE=$OUT/gate.raw
[ -f "$IMAGE" ] || { echo "need $IMAGE (make image)" >&2; exit 1; }
command -v dnsmasq >/dev/null || { echo "need dnsmasq (make deps)" >&2; exit 1; }
command -v mcopy >/dev/null || { echo "need mtools (make image-deps)" >&2; exit 1; }
ESP_OFFSET=$(jq -r .layout.esp_offset "$OUT/manifest.json")

VMS=()
cleanup_vms() {
	for v in "${VMS[@]}"; do
		local pid; pid=$(cat "$WORK/$v.pid" 2>/dev/null || true)
		[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	done
	if [ "${KEEP:-}" = 1 ]; then FAILED=$((FAILED + 0)); echo "logs in $WORK"; fi
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# image NAME [PRESEED]: a sparse per-VM copy of the image, preseed on its ESP.
image() {
	cp --sparse=always "$IMAGE" "$WORK/$1.raw"
	if [ -n "${2:-}" ]; then
		printf '%s\n' "$2" >"$WORK/$1.preseed.yaml"
		MTOOLS_SKIP_CHECK=1 mcopy -o -i "$WORK/$1.raw@@$ESP_OFFSET" "$WORK/$1.preseed.yaml" ::gate-preseed.yaml
	fi
}

# boot NAME NS TAP MAC [LANTAP LANMAC]: boots NAME's image in namespace NS,
# eth0 on TAP (and eth1 on LANTAP), serial console to WORK/NAME.serial.N
# (N counts the boots). The NICs sit in fixed PCI slots so that eth0 and
# eth1 are always the same NICs.
boot() {
	local name=$1 n=$2 tap=$3 mac=$4 lantap=${5:-} lanmac=${6:-}
	local count; count=$(($(cat "$WORK/$name.boots" 2>/dev/null || echo 0) + 1))
	echo "$count" >"$WORK/$name.boots"
	local serial=$WORK/$name.serial.$count
	local args=(-machine q35 -m 512 -smp 1 -accel tcg -display none -vga none -no-reboot
		-serial "file:$serial" -monitor "unix:$WORK/$name.mon,server,nowait"
		-device virtio-rng-pci -drive "file=$WORK/$name.raw,format=raw,if=virtio"
		-netdev "tap,id=wan,ifname=$tap,script=no,downscript=no" -device "virtio-net-pci,netdev=wan,mac=$mac,addr=0x3")
	if [ -n "$lantap" ]; then
		args+=(-netdev "tap,id=lan,ifname=$lantap,script=no,downscript=no" -device "virtio-net-pci,netdev=lan,mac=$lanmac,addr=0x4")
	fi
	# SEED_IMG: a NoCloud seed volume, the second virtio disk.
	if [ -n "${SEED_IMG:-}" ]; then
		args+=(-drive "file=$SEED_IMG,format=raw,if=virtio")
	fi
	ip netns exec "$(ns "$n")" "$QEMU" "${args[@]}" >"$WORK/$name.qemu" 2>&1 &
	echo $! >"$WORK/$name.pid"
	eval "STARTED_$name=$(now)"
	SERIAL=$serial
	VMS+=("$name")
}

# serial_wait NAME PATTERN SECONDS: waits for PATTERN on NAME's current
# serial console, failing early if QEMU exits.
serial_wait() {
	local name=$1 pat=$2 secs=$3
	local serial; serial=$WORK/$name.serial.$(cat "$WORK/$name.boots")
	local pid; pid=$(cat "$WORK/$name.pid")
	local deadline=$((SECONDS + secs))
	while [ $SECONDS -lt $deadline ]; do
		grep -aq -- "$pat" "$serial" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || { cat "$WORK/$name.qemu" >&2; tail -20 "$serial" | tr -d '\r' >&2; return 1; }
		sleep 0.2
	done
	echo "no '$pat' on $name's console within $secs s; last lines:" >&2
	tail -n 30 "$serial" | tr -d '\r' >&2
	return 1
}

serial_line() { grep -a -- "$2" "$WORK/$1.serial.$(cat "$WORK/$1.boots")" | head -n1 | tr -d '\r'; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }

# up NAME: waits for NAME's ready and network lines, prints the times,
# sets NODE_<name> and ADDR_<name>.
up() {
	local name=$1 started line net
	started=$(eval echo "\$STARTED_$name")
	serial_wait "$name" "gate: ready" "$TIMEOUT" || { fail "$name: no ready line"; return 1; }
	line=$(serial_line "$name" "gate: ready")
	local t_ready; t_ready=$(since "$started")
	serial_wait "$name" "gate: network wan=" 60 || { fail "$name: no WAN address"; return 1; }
	net=$(serial_line "$name" "gate: network wan=")
	note "$name: ready after ${t_ready} s host wall clock (guest uptime $(field uptime <<<"$line")), WAN address after $(since "$started") s (guest uptime $(field uptime <<<"$net")): $net"
	eval "NODE_$name=$(field node <<<"$line")"
	eval "ADDR_$name=$(field address <<<"$net" | cut -d/ -f1)"
}

# poweroff NAME: the ACPI power button, then a clean stop.
poweroff() {
	local name=$1 pid; pid=$(cat "$WORK/$name.pid")
	echo system_powerdown | nc -U -N "$WORK/$name.mon" >/dev/null 2>&1 || true
	serial_wait "$name" "gate: power off" 60 || return 1
	local deadline=$((SECONDS + 60))
	while kill -0 "$pid" 2>/dev/null; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.2
	done
	grep -aq "stopped; kernel state removed" "$WORK/$name.serial.$(cat "$WORK/$name.boots")"
}

# dhcp_server NS IFACE: dnsmasq (DHCP only) on IFACE, which holds
# 10.0.77.1/24: a 2-minute lease with T1 5 s and T2 10 s, so the guest
# renews within seconds.
dhcp_server() {
	start dnsmasq "$1" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 \
		--interface="$2" --bind-interfaces --no-ping \
		--dhcp-range=10.0.77.50,10.0.77.99,255.255.255.0,2m \
		--dhcp-option=option:router,10.0.77.1 --dhcp-option=option:dns-server,10.0.77.53 \
		--dhcp-option=option:domain-name,gate.test --dhcp-option=58,5 --dhcp-option=59,10 \
		--dhcp-leasefile="$WORK/leases" --pid-file="$WORK/dnsmasq.pid" --log-dhcp --log-facility="$WORK/dnsmasq.log"
	wait_for 10 grep -q "sockets bound" "$WORK/dnsmasq.log"
}

# wan: namespace "wan" with bridge br0 (10.0.77.1/24) and dnsmasq on it.
wan() {
	mkns wan
	bridge wan br0
	ip -n "$(ns wan)" addr add 10.0.77.1/24 dev br0
	dhcp_server wan br0
}

tap() { ip -n "$(ns "$1")" tuntap add dev "$2" mode tap; ip -n "$(ns "$1")" link set "$2" up; }

acks() { grep -c "DHCPACK(br0) $1 " "$WORK/dnsmasq.log" || true; }

run_dhcp() {
	say "dhcp: one appliance, its NIC a tap in a namespace running dnsmasq"
	wan
	tap wan tap0
	plug wan br0 tap0
	image dhcp
	local mac=52:54:00:77:00:0a
	boot dhcp wan tap0 $mac
	up dhcp || return 1
	local addr=$ADDR_dhcp
	check "address $addr from the pool" sh -c "echo $addr | grep -Eq '^10\.0\.77\.(5[0-9]|[6-9][0-9])$'"
	check "dnsmasq leased $addr to $mac" grep -q "$mac $addr " "$WORK/leases"
	check "network line: default route via 10.0.77.1, DNS 10.0.77.53" sh -c "grep -a 'gate: network wan=eth0' $SERIAL | grep -q 'gateway=10.0.77.1 dns=10.0.77.53 mode=dhcp default_route=true'"
	check "resolv.conf written with the lease's DNS and domain" grep -aq "wrote /etc/resolv.conf: nameservers \[10.0.77.53\], search \[gate.test\]" "$SERIAL"
	check "the namespace pings the appliance at $addr" in_ns wan ping -c3 -i0.3 -W2 "$addr"
	local t0=$SECONDS
	check "the appliance renews (T1 5 s): a second ACK in dnsmasq's log" wait_for 30 sh -c "[ \$(grep -c 'DHCPACK(br0) $addr ' $WORK/dnsmasq.log) -ge 2 ]"
	check "and says so on its console" serial_wait dhcp "dhcp eth0: renewed $addr/24" 20
	note "renewal seen $((SECONDS - t0)) s after the check began; ACKs for $addr: $(acks "$addr")"
	check "still answers ping after renewing" in_ns wan ping -c2 -i0.3 -W2 "$addr"
	check "clean power off" poweroff dhcp
	stop dnsmasq
	for n in "${NAMESPACES[@]}"; do ip netns del "$n" 2>/dev/null || true; done
	NAMESPACES=()
}

CTL=10.0.77.1:8443
NET_CIDR=192.168.254.0/24

run_pair() {
	say "pair: two appliances and a controller, configured by preseed files"
	wan
	for t in tapA tapB; do tap wan $t; plug wan br0 $t; done
	# QEMU opens its taps in its own namespace, so each LAN segment is a
	# bridge there too (brLA: tapLA and a veth to the host's namespace),
	# with no address: the WAN namespace has no IP path into the LANs.
	for x in A B; do
		mkns lan$x
		bridge wan br$x
		tap wan tapL$x
		plug wan br$x tapL$x
	done
	link lanA eth0 172.16.1.10/24 wan pLA -
	link lanB eth0 172.16.2.10/24 wan pLB -
	plug wan brA pLA
	plug wan brB pLB
	in_ns lanA ip route add default via 172.16.1.1
	in_ns lanB ip route add default via 172.16.2.1

	start ctl wan "$GATE" controller --state "$WORK/ctl" --listen $CTL
	wait_for 20 test -s "$WORK/ctl/controller.url" || { cat "$WORK/ctl.log"; return 1; }
	admin() { ip netns exec "$(ns wan)" env GATE_CONTROLLER_STATE="$WORK/ctl" "$GATE" "$@"; }
	wait_for 20 admin network list
	NET=$(admin network create --name clouds --cidr $NET_CIDR --json | jq -r .id)
	check "route 172.16.1.0/24 via A (192.168.254.11)" admin network route add "$NET" 172.16.1.0/24 via 192.168.254.11
	check "route 172.16.2.0/24 via B (192.168.254.12)" admin network route add "$NET" 172.16.2.0/24 via 192.168.254.12
	local joinA joinB
	# A route's next hop is kept for what an admin gives it to: here the
	# tokens (the preseeds' own address: is only a request).
	joinA=$(admin token create "$NET" --allow --address 192.168.254.11)
	joinB=$(admin token create "$NET" --allow --address 192.168.254.12)
	preseed() { # JOIN OVERLAY LANADDR SERVE
		cat <<-EOF
		version: 1
		interfaces:
		  eth0: {dhcp: true}
		  eth1: {address: $3}
		networks:
		  - join: $1
		    address: $2
		    gateway:
		      serve: [$4]
		      lan: eth1
		EOF
	}
	image a "$(preseed "$joinA" 192.168.254.11 172.16.1.1/24 172.16.1.0/24)"
	image b "$(preseed "$joinB" 192.168.254.12 172.16.2.1/24 172.16.2.0/24)"
	boot a wan tapA 52:54:00:77:00:a1 tapLA 52:54:00:77:01:a1
	boot b wan tapB 52:54:00:77:00:b1 tapLB 52:54:00:77:01:b1
	up a || return 1
	up b || return 1
	local t0=$SECONDS
	member() { admin member list "$NET" --json | jq -e --arg n "$1" --arg a "$2" '.[] | select(.node_id==$n and .state=="allowed" and (.addresses | index($a)) != null)'; }
	check "A joined by its preseed, allowed, 192.168.254.11" wait_for 90 member "$NODE_a" 192.168.254.11
	check "B joined by its preseed, allowed, 192.168.254.12" wait_for 90 member "$NODE_b" 192.168.254.12
	admin member list "$NET" --json | jq -c '.[] | {node_id, state, addresses, endpoints}' | sed 's/^/        /' || true
	check "host A pings host B through A -> tunnel -> B" wait_for 90 in_ns lanA ping -c1 -W1 172.16.2.10
	note "first ping across $((SECONDS - t0)) s after both were up"
	check "host B pings host A" in_ns lanB ping -c3 -i0.3 -W2 172.16.1.10
	check "host A pings B's overlay address 192.168.254.12" in_ns lanA ping -c3 -i0.3 -W2 192.168.254.12
	check "host B pings A's overlay address 192.168.254.11" in_ns lanB ping -c3 -i0.3 -W2 192.168.254.11
	refute "the WAN namespace has no path to the LANs" in_ns wan ping -c1 -W1 172.16.2.10

	say "pair: A reboots"
	check "A powers off cleanly" poweroff a
	refute "with A down, host B cannot reach host A" in_ns lanB ping -c1 -W1 172.16.1.10
	local nodeA=$NODE_a addrA=$ADDR_a
	boot a wan tapA 52:54:00:77:00:a1 tapLA 52:54:00:77:01:a1
	up a || return 1
	check "same node ID after the reboot ($nodeA)" test "$NODE_a" = "$nodeA"
	check "same WAN address ($addrA)" test "$ADDR_a" = "$addrA"
	check "the preseed is not applied twice" sh -c "! grep -aq 'preseed: joined' $WORK/a.serial.2"
	check "same overlay address 192.168.254.11" member "$NODE_a" 192.168.254.11
	t0=$SECONDS
	check "tunnel back: host A pings host B" wait_for 90 in_ns lanA ping -c1 -W1 172.16.2.10
	note "tunnel back $((SECONDS - t0)) s after A was up again"
	check "host B pings host A" in_ns lanB ping -c3 -i0.3 -W2 172.16.1.10
	check "A powers off cleanly" poweroff a
	check "B powers off cleanly" poweroff b
}

# seed_volume FILE META-DATA USER-DATA: a NoCloud seed as cloud-init
# defines it: a vfat filesystem labelled CIDATA holding meta-data and
# user-data. No root, no loop device: mkfs.vfat -C makes the file, mcopy
# writes into it.
seed_volume() {
	rm -f "$1"
	mkfs.vfat -n CIDATA -C "$1" 1024 >/dev/null
	printf '%s\n' "$2" >"$WORK/meta-data"
	printf '%s\n' "$3" >"$WORK/user-data"
	MTOOLS_SKIP_CHECK=1 mcopy -o -i "$1" "$WORK/meta-data" "$WORK/user-data" ::
}

run_nocloud() {
	say "nocloud: an appliance configured only by a NoCloud seed volume joins a controller; then broken user-data"
	command -v mkfs.vfat >/dev/null || { fail "need mkfs.vfat (make deps)"; return 1; }
	wan
	tap wan tap0
	plug wan br0 tap0
	# A member on the WAN bridge: `gate up` in namespace m.
	mkns m
	link m eth0 10.0.77.5/24 wan pM -
	plug wan br0 pM
	start ctl wan "$GATE" controller --state "$WORK/ctl" --listen $CTL
	wait_for 20 test -s "$WORK/ctl/controller.url" || { cat "$WORK/ctl.log"; return 1; }
	admin() { ip netns exec "$(ns wan)" env GATE_CONTROLLER_STATE="$WORK/ctl" "$GATE" "$@"; }
	member() { admin member list "$NET" --json | jq -e --arg n "$1" --arg a "$2" '.[] | select(.node_id==$n and .state=="allowed" and (.addresses | index($a)) != null)'; }
	wait_for 20 admin network list
	NET=$(admin network create --name cloud --cidr $NET_CIDR --json | jq -r .id)
	local join joinM
	# What an operator puts in user-data: single-use, pre-allowed, with
	# the appliance's static overlay address.
	join=$(admin token create "$NET" --allow --address 192.168.254.21 --expires 1h --note nocloud-seed)
	joinM=$(admin token create "$NET" --allow --address 192.168.254.5)
	start memberm m "$GATE" up --state "$WORK/m" --socket "$WORK/m.sock" --allow-input ""
	check "the namespace member joins" wait_for 20 in_ns m "$GATE" join --socket "$WORK/m.sock" "$joinM"
	local meta="instance-id: iid-gate-nocloud-1
local-hostname: gate-nocloud"
	seed_volume "$WORK/seed.img" "$meta" "#cloud-config
ssh_authorized_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample ops]
gate:
  networks:
    - join: $join
      address: 192.168.254.21"
	image nc
	SEED_IMG=$WORK/seed.img boot nc wan tap0 52:54:00:77:00:c1
	up nc || return 1
	local t0=$SECONDS
	check "console: config applied from the cidata volume, instance iid-gate-nocloud-1, first boot" \
		serial_wait nc 'gate: config state=applied source="nocloud: /dev/vdb.*instance=iid-gate-nocloud-1 first_boot=true' 60
	note "$(serial_line nc 'gate: config state=' | cut -c1-240)"
	check "console: the ignored cloud-config key is noted" sh -c "grep -a 'gate: config state=applied' $SERIAL | grep -q 'cloud-config keys ignored.*ssh_authorized_keys'"
	check "the controller lists the appliance allowed, with 192.168.254.21" wait_for 90 member "$NODE_nc" 192.168.254.21
	check "the namespace member pings the appliance's overlay address 192.168.254.21" wait_for 90 in_ns m ping -c1 -W1 192.168.254.21
	note "joined and reachable $((SECONDS - t0)) s after the appliance was up, no console interaction"
	check "the hostname from meta-data is set" grep -aq "config: hostname gate-nocloud" "$SERIAL"
	check "the appliance powers off cleanly" poweroff nc

	say "nocloud: second boot, broken user-data (an unknown key, an invalid value)"
	seed_volume "$WORK/seed.img" "$meta" "#cloud-config
gate:
  colour: blue
  networks:
    - join: $join
      address: 192.168.254.300"
	SEED_IMG=$WORK/seed.img boot nc wan tap0 52:54:00:77:00:c1
	up nc || return 1
	check "console: config rejected" serial_wait nc 'gate: config state=rejected' 60
	local line; line=$(serial_line nc 'gate: config state=rejected')
	note "$(cut -c1-300 <<<"$line")"
	check "console: the error names the key, the layer and the line" grep -qF 'error: gate.networks[0].address: "192.168.254.300" is not an IP address (user-data (nocloud), line 6)' <<<"$line"
	check "console: the unknown key is a warning" grep -qF 'warning: gate.colour: unknown key' <<<"$line"
	check "the log has the error on a line of its own" grep -aqF 'config error: gate.networks[0].address' "$SERIAL"
	check "nothing is joined again" sh -c "! grep -aq 'user-data (nocloud): joined' $SERIAL"
	check "the controller still lists the appliance allowed, with 192.168.254.21" member "$NODE_nc" 192.168.254.21
	check "the network joined before still carries traffic: the member pings 192.168.254.21" wait_for 90 in_ns m ping -c1 -W1 192.168.254.21
	check "the appliance powers off cleanly" poweroff nc
	stop memberm
}

mode=${1:-all}
case $mode in
dhcp) run_dhcp ;;
pair) run_pair ;;
nocloud) run_nocloud ;;
all) run_dhcp && run_pair ;;
*) echo "usage: $0 [dhcp|pair|nocloud|all]" >&2; exit 2 ;;
esac
summary
