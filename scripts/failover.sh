#!/usr/bin/env bash
# Two gateways for one subnet, for real, in network namespaces, through the
# gate command line only (issue 16):
#
#   vpchost 172.16.1.100 ---- VPC LAN bridge ---- gw1 eth1 172.16.1.10   gw2 eth1 172.16.1.11
#                                                 gw1 eth0 198.51.100.11 gw2 eth0 198.51.100.12
#   controller 198.51.100.10 ---- internet bridge ----+---------------------+---- droplet 198.51.100.20
#
# The route 172.16.0.0/16 goes via gw1 (192.168.254.11), then gw2
# (192.168.254.12); both masquerade into the LAN (as on a cloud without
# route tables). The droplet sends a datagram every 10 ms to an echo
# server on the VPC host (scripts/gap) while gw1 fails, in turn:
#   kill     its gate process is killed (-9)
#   gone     the whole instance is gone: killed, and both its links cut
#   lan      its LAN link goes down
#   probe    its probe target stops answering it (an ICMP probe)
#   ctldown  its gate process is killed with the controller stopped
# and each time comes back; the longest gap in the echoes is the failover
# time. Each trial also kills gw1 under an open TCP connection, to say
# what masquerade does to it (it is reset; when, and when a new one
# connects). Then the gateways forward without masquerade, with the VPC's
# route table played by scripts/fakeaws: TCP streams must survive a
# failover and a failback, and, the gateways being the VPC's NAT instances
# too (web 198.51.100.50 is the internet), the VPC host's own UDP and TCP
# to the internet are measured across the same failover.
# TRIALS=N runs each kind N times (default 1); OUT=FILE writes the times
# as JSON. Run as root: scripts/failover.sh (after make).
source "$(dirname "$0")/netns-lib.sh"
trap cleanup EXIT
require_tools
TRIALS=${TRIALS:-1}
NET_CIDR=192.168.254.0/24
GW1=192.168.254.11
GW2=192.168.254.12
CTL=198.51.100.10:8443
HOLD=3s
ROOT=$(cd "$(dirname "$0")/.." && pwd)

say "topology"
for n in inet lan ctl gw1 gw2 droplet vpchost web; do mkns $n; done
bridge inet br0
bridge lan br0
for pair in "ctl 198.51.100.10/24" "droplet 198.51.100.20/24" "gw1 198.51.100.11/24" "gw2 198.51.100.12/24" "web 198.51.100.50/24"; do
	set -- $pair
	link "$1" eth0 "$2" inet "p-$1" -
	plug inet br0 "p-$1"
done
for pair in "gw1 172.16.1.10/24" "gw2 172.16.1.11/24" "vpchost 172.16.1.100/24"; do
	set -- $pair
	link "$1" eth1 "$2" lan "p-$1" -
	plug lan br0 "p-$1"
done
(cd "$ROOT" && go build -o "$WORK/gap" ./scripts/gap)
start echo vpchost "$WORK/gap" -serve 0.0.0.0:7000
start sink vpchost "$WORK/gap" -sink 0.0.0.0:7001
start webecho web "$WORK/gap" -serve 0.0.0.0:7000
start websink web "$WORK/gap" -sink 0.0.0.0:7001

say "controller, network, the route with two gateways"
# The controller's host runs `gate up` too, its firewall strict with
# nothing open: the controller asks that daemon to hold its port open
# while it runs (a controller beside a gateway, as a small site runs it).
start ctlnode ctl "$GATE" up --state "$WORK/ctlnode" --socket "$WORK/ctlnode.sock" --hostname ctlnode --firewall strict --allow-input ""
wait_for 20 env GATE_SOCKET="$WORK/ctlnode.sock" "$GATE" status || { cat "$WORK/ctlnode.log"; exit 1; }
ctl_start() { start ctl ctl "$GATE" controller --state "$WORK/ctl" --listen $CTL --daemon-socket "$WORK/ctlnode.sock"; }
ctl_start
wait_for 20 test -s "$WORK/ctl/controller.url" || { cat "$WORK/ctl.log"; exit 1; }
ctl_open() { GATE_SOCKET="$WORK/ctlnode.sock" "$GATE" status | grep -q "input open: tcp/8443 (the controller beside this daemon"; }
check "the controller's host opens its port for it, and says so" wait_for 10 ctl_open
admin() { ip netns exec "$(ns ctl)" env GATE_CONTROLLER_STATE="$WORK/ctl" "$GATE" "$@"; }
wait_for 20 admin network list
NET=$(admin network create --name ha --cidr $NET_CIDR --json | jq -r .id)
check "route 172.16.0.0/16 via $GW1 via $GW2, failback $HOLD, probe 172.16.1.100/icmp" \
	admin network route add "$NET" 172.16.0.0/16 via $GW1 via $GW2 --failback $HOLD --probe 172.16.1.100/icmp
show_has() { admin network show "$NET" | grep -qF "$1"; }
check "network show lists both gateways" show_has "172.16.0.0/16 via $GW1, then $GW2 (failback $HOLD, probe 172.16.1.100/icmp)"
expect_error "a backup that is the via is refused" "is the route's via" admin network route add "$NET" 172.17.0.0/16 via $GW1 via $GW1
expect_error "a probe outside the subnet is refused" "not inside the route's dest" admin network route add "$NET" 172.17.0.0/16 via $GW1 via $GW2 --probe 10.0.0.1/icmp

node() { local n=$1; shift; GATE_SOCKET="$WORK/$n.sock" "$GATE" "$@"; }
GW_ENV=() # the gateways' environment (the fake EC2 API's address, later)
up() {
	local envs=()
	[ "$1" = droplet ] || envs=("${GW_ENV[@]}")
	# Each start truncates the node's log: keep what the last run said.
	[ ! -s "$WORK/$1.log" ] || cat "$WORK/$1.log" >>"$WORK/$1.earlier.log"
	start "$1" "$1" env "${envs[@]}" "$GATE" up --state "$WORK/$1" --socket "$WORK/$1.sock" --hostname "$1"
	wait_for 20 node "$1" status || { cat "$WORK/$1.log"; exit 1; }
}
for n in gw1 gw2 droplet; do up $n; done
check "gw1 joins as the primary" node gw1 join "$(admin token create "$NET" --allow --address $GW1)" --serve 172.16.0.0/16 --lan eth1 --masquerade-lan
check "gw2 joins as the backup" node gw2 join "$(admin token create "$NET" --allow --address $GW2)" --serve 172.16.0.0/16 --lan eth1 --masquerade-lan
check "the droplet joins" node droplet join "$(admin token create "$NET" --allow)"
active() { node droplet networks --json | jq -r '.[0].failover[0].active // empty'; }
is_active() { [ "$(active)" = "$1" ]; }
via_kernel() { ip -n "$(ns droplet)" route show 172.16.0.0/16 | grep -q "via $1 "; }
check "the droplet reaches the VPC host" wait_for 20 in_ns droplet ping -c1 -W1 172.16.1.100
check "through gw1" wait_for 10 is_active $GW1
check "the kernel route goes via gw1" via_kernel $GW1
node droplet networks | sed 's/^/        /'
active_here() { [ "$(node "$1" networks --json | jq -r '.[0].failover[0].active_here // false')" = "$2" ]; }
serves() { node "$1" networks --json | jq -e '.[0].failover[0].serving and .[0].failover[0].state=="works"'; }
check "gw1 says it serves the route and it works" wait_for 5 serves gw1

# trial KIND FAIL RESTORE: measure the gap while FAIL breaks gw1, check the
# droplet moved to gw2, then RESTORE and check it moved back after the
# hold. Appends the gap (ms) to $WORK/KIND.
trial() {
	local kind=$1 failcmd=$2 restorecmd=$3
	ip netns exec "$(ns droplet)" "$WORK/gap" -to 172.16.1.100:7000 -every 10ms -d 60s >"$WORK/gap.json" 2>"$WORK/gap.err" &
	local gp=$!
	sleep 1
	eval "$failcmd"
	local moved=ok
	wait_for 10 is_active $GW2 || moved=
	wait_for 10 in_ns droplet ping -c1 -W1 172.16.1.100 || moved=
	sleep 0.5
	kill -TERM $gp; wait $gp || true
	local ms; ms=$(jq -r .longest_gap_ms "$WORK/gap.json")
	if [ -n "$moved" ]; then pass "$kind: the droplet moved to gw2; longest gap ${ms} ms"; else fail "$kind: the droplet did not move to gw2"; node droplet networks | sed 's/^/        /'; fi
	check "$kind: gw2 knows it is the active gateway" wait_for 5 active_here gw2 true
	echo "$ms" >>"$WORK/$kind"
	eval "$restorecmd"
	check "$kind: back on gw1 after the hold" wait_for 30 is_active $GW1
	check "$kind: the VPC host answers through gw1" wait_for 10 in_ns droplet ping -c1 -W1 172.16.1.100
	check "$kind: gw2 knows it is the backup again" wait_for 5 active_here gw2 false
}
kill9() { local pid; pid=$(eval echo "\${PID_$1:-}"); kill -KILL "$pid"; wait "$pid" 2>/dev/null || true; eval "PID_$1="; }
# gone, back: gw1 as an instance that stops, as a whole, and starts again:
# its process killed and its cables cut (at the bridges' ends, so that its
# own links, addresses and routes stay as they were).
gone() { kill9 gw1; ip -n "$(ns inet)" link set p-gw1 down; ip -n "$(ns lan)" link set p-gw1 down; }
back() { ip -n "$(ns inet)" link set p-gw1 up; ip -n "$(ns lan)" link set p-gw1 up; up gw1; }

now_ms() { date +%s%3N; }
# broken KIND T0 FILE: what gap -stream -redial saw (FILE), counted from
# T0 (Unix ms), appended to $WORK/KIND-broke and $WORK/KIND-redial.
broken() {
	local kind=$1 t0=$2 out=$3 why
	why=$(jq -r '.broke // ""' "$out" 2>/dev/null || true)
	if [ -z "$why" ]; then
		note "$kind: the connection was not broken ($(jq -c . "$out" 2>/dev/null || cat "$out"))"
		echo '"kept"' >>"$WORK/$kind-outcome"
		return
	fi
	local b r; b=$(jq -r ".broke_at - $t0 | floor" "$out"); r=$(jq -r "if .redialed_at then .redialed_at - $t0 | floor else empty end" "$out")
	note "$kind: the connection broke ${b} ms after gw1 failed ($why); a new one connected at ${r:-never} ms"
	echo "$b" >>"$WORK/$kind-broke"
	[ -z "$r" ] || echo "$r" >>"$WORK/$kind-redial"
	jq -c '.broke | if test("reset") then "reset" elif test("timeout") then "stalled" else . end' "$out" >>"$WORK/$kind-outcome"
}
# masq_tcp: gw1 is killed under an open TCP connection through it, the
# gateways masquerading into the LAN.
masq_tcp() {
	ip netns exec "$(ns droplet)" "$WORK/gap" -stream 172.16.1.100:7001 -redial -every 10ms -d 8s >"$WORK/masq-tcp.out" 2>&1 &
	local sp=$! t0
	sleep 2
	t0=$(now_ms)
	kill9 gw1
	wait $sp || true
	broken masq_tcp "$t0" "$WORK/masq-tcp.out"
	up gw1
	check "masquerade, TCP: back on gw1 after the hold" wait_for 30 is_active $GW1
}

for i in $(seq "$TRIALS"); do
	say "trial $i: gw1 is killed under an open TCP connection, masquerading"
	masq_tcp
	say "trial $i: gw1's process is killed"
	trial kill "kill9 gw1" "up gw1"
	say "trial $i: gw1 is gone as a whole"
	trial gone gone back
	say "trial $i: gw1's LAN link goes down"
	trial lan "ip -n $(ns gw1) link set eth1 down" "ip -n $(ns gw1) link set eth1 up"
	say "trial $i: gw1's probe target stops answering it"
	trial probe "in_ns vpchost nft -f - <<<'table ip probe { chain probe { type filter hook input priority 0; ip saddr 172.16.1.10 icmp type echo-request drop; }; }'" \
		"in_ns vpchost nft delete table ip probe"
	say "trial $i: gw1's process is killed with the controller down"
	stop ctl
	check "the controller stopped, its port closes" wait_for 10 sh -c "! ip netns exec $(ns ctl) nft list table inet gate | grep -q 8443"
	trial ctldown "kill9 gw1" "up gw1"
	ctl_start
	wait_for 20 admin network list
done

say "without masquerade: the VPC's route table follows the active gateway, and a TCP connection survives"
# The gateways now forward without masquerade: the VPC host sees the
# droplet's own overlay address and routes the overlay by its route table
# to the active gateway, which replaces the route when it takes over
# (gate join --aws-route-table). AWS here is fakeaws: each gateway's
# instance metadata (IMDSv2, its instance ID, a role) on 169.254.169.254
# in its own namespace, and EC2's API on the VPC host, where a route to an
# instance becomes the host's kernel route via that instance.
(cd "$ROOT" && go build -o "$WORK/fakeaws" ./scripts/fakeaws)
for g in "gw1 i-0000000000000000a" "gw2 i-0000000000000000b"; do
	set -- $g
	in_ns "$1" ip addr add 169.254.169.254/32 dev lo
	start "imds_$1" "$1" "$WORK/fakeaws" -imds -instance "$2"
done
start ec2 vpchost "$WORK/fakeaws" -ec2 172.16.1.100:8080 -instances i-0000000000000000a=172.16.1.10,i-0000000000000000b=172.16.1.11
GW_ENV=(AWS_ENDPOINT_URL_EC2=http://172.16.1.100:8080)
for g in gw1 gw2; do
	check "$g leaves" node $g leave "$NET"
	stop $g
	# The gateways' way to the internet (web plays it), which they NAT
	# the VPC's hosts to as its NAT instances.
	in_ns $g ip route add default via 198.51.100.50
	up $g
done
RTB=rtb-0123456789abcdef0
check "gw1 joins again, without masquerade into the LAN, as the NAT instance, with the VPC's route table" \
	node gw1 join "$(admin token create "$NET" --allow --address $GW1)" --serve 172.16.0.0/16 --lan eth1 --masquerade-internet --aws-route-table $RTB
check "gw2 joins again, likewise" node gw2 join "$(admin token create "$NET" --allow --address $GW2)" --serve 172.16.0.0/16 --lan eth1 --masquerade-internet --aws-route-table $RTB
vpc_route() { ip -n "$(ns vpchost)" route show "$2" | grep -q "via $1 "; }
check "gw1, active, points the route table at itself" wait_for 20 vpc_route 172.16.1.10 $NET_CIDR
check "and the VPC's default route (the NAT-instance job)" wait_for 20 vpc_route 172.16.1.10 default
check "the VPC host reaches the internet through gw1" wait_for 10 in_ns vpchost ping -c1 -W1 198.51.100.50
check "and says so" sh -c "GATE_SOCKET=$WORK/gw1.sock $GATE networks | grep -q 'route tables pointed here: $RTB $NET_CIDR'"
check "the droplet reaches the VPC host through gw1, unmasqueraded" wait_for 20 is_active $GW1
check "the VPC host sees the droplet's overlay address" wait_for 20 in_ns droplet ping -c1 -W1 172.16.1.100
# stream KIND ACTION: a 12 s TCP stream from the droplet, ACTION 3 s in.
stream() {
	local kind=$1 action=$2
	ip netns exec "$(ns droplet)" "$WORK/gap" -stream 172.16.1.100:7001 -every 10ms -d 12s >"$WORK/stream-$kind.out" 2>&1 &
	local sp=$!
	sleep 3
	eval "$action"
	wait $sp || true
	sleep 0.5
	local sent; sent=$(jq -r .sha256 "$WORK/stream-$kind.out" 2>/dev/null || true)
	if [ -n "$sent" ] && grep -q "\"sha256\":\"$sent\"" "$WORK/sink.log"; then
		pass "$kind: the TCP connection carried its stream whole ($(jq -r .bytes "$WORK/stream-$kind.out") bytes, sha256 ${sent:0:12}...)"
		echo 1 >>"$WORK/survived"
	else
		fail "$kind: the TCP connection did not survive"; sed 's/^/        /' "$WORK/stream-$kind.out"; tail -3 "$WORK/sink.log" | sed 's/^/        /'
		echo 0 >>"$WORK/survived"
	fi
}
# nat_start, nat_end: the VPC host's own traffic to the internet through
# the NAT instance across the same failover: a datagram every 10 ms (the
# longest gap) and a TCP connection (reset or kept, and when a new one
# connects).
nat_start() {
	ip netns exec "$(ns vpchost)" "$WORK/gap" -to 198.51.100.50:7000 -every 10ms -d 60s >"$WORK/nat-udp.json" 2>"$WORK/nat-udp.err" &
	NAT_UDP=$!
	ip netns exec "$(ns vpchost)" "$WORK/gap" -stream 198.51.100.50:7001 -redial -every 10ms -d 8s >"$WORK/nat-tcp.out" 2>&1 &
	NAT_TCP=$!
}
nat_end() {
	local t0=$1 ms
	wait $NAT_TCP || true
	check "NAT instance: the VPC host reaches the internet through gw2" wait_for 10 in_ns vpchost ping -c1 -W1 198.51.100.50
	kill -TERM $NAT_UDP; wait $NAT_UDP || true
	ms=$(jq -r .longest_gap_ms "$WORK/nat-udp.json")
	note "NAT instance: the VPC host's datagrams to the internet stopped for ${ms} ms"
	echo "$ms" >>"$WORK/nat_udp"
	broken nat_tcp "$t0" "$WORK/nat-tcp.out"
}
for i in $(seq "$TRIALS"); do
	nat_start
	stream failover "T0=\$(now_ms); gone; wait_for 10 is_active $GW2"
	nat_end "$T0"
	check "the route table follows gw2" wait_for 10 vpc_route 172.16.1.11 $NET_CIDR
	check "and the default route" wait_for 10 vpc_route 172.16.1.11 default
	stream failback "back; wait_for 20 is_active $GW1"
	check "the route table follows gw1 back" wait_for 10 vpc_route 172.16.1.10 $NET_CIDR
done
note "EC2 calls: $(wc -l <"$WORK/ec2.log")"
sed 's/^/        /' "$WORK/ec2.log" | tail -4

say "failover times"
json='{}'
for kind in kill gone lan probe ctldown masq_tcp-broke masq_tcp-redial nat_udp nat_tcp-broke nat_tcp-redial; do
	[ -s "$WORK/$kind" ] || continue
	json=$(jq --arg k "$kind" --slurpfile v <(jq -s . "$WORK/$kind") '.[$k] = ($v[0] | sort | {trials: length, p50_ms: .[(length - 1) / 2 | floor], p99_ms: .[(length * 0.99 | ceil) - 1], max_ms: .[-1], all_ms: .})' <<<"$json")
done
for kind in masq_tcp nat_tcp; do
	[ -s "$WORK/$kind-outcome" ] || continue
	json=$(jq --arg k "$kind-outcome" --slurpfile v <(jq -s . "$WORK/$kind-outcome") '.[$k] = ($v[0] | group_by(.) | map({key: .[0], value: length}) | from_entries)' <<<"$json")
done
if [ -s "$WORK/survived" ]; then
	json=$(jq --slurpfile v <(jq -s . "$WORK/survived") '.tcp_survived = {trials: ($v[0] | length), survived: ($v[0] | add)}' <<<"$json")
fi
echo "$json" | jq -c .
[ -z "${OUT:-}" ] || { mkdir -p "$(dirname "$OUT")"; echo "$json" >"$OUT"; }
summary
