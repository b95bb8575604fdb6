#!/usr/bin/env bash
# The seed scenario of DESIGN.md, for real, in network namespaces, through
# the gate command line only:
#
#   vpchost 172.16.10.105 -- vpc router (VPC route table, IGW 1:1 NAT) -- awsgw (gate up, gateway, 192.168.254.11)
#                                     |                                       \\ WireGuard over the "internet"
#   controller 198.51.100.10 ---- internet bridge ---- droplet 198.51.100.20 (gate up) -- private segment -- foreign host
#                                     |---- stranger (gate up, never allowed), web 198.51.100.80
#
# It prints what it checks and exits non-zero if anything fails. Run as root:
#   make seed          (or: scripts/seed.sh after make)
source "$(dirname "$0")/netns-lib.sh"
source "$(dirname "$0")/seed-topology.sh"
trap cleanup EXIT
require_tools

NET_CIDR=192.168.254.0/24
GW_IP=192.168.254.11
CTL=198.51.100.10:8443

say "topology"
seed_topology
note "namespaces: ${NAMESPACES[*]}"

say "controller"
start ctl ctl "$GATE" controller --state "$WORK/ctl" --listen $CTL
wait_for 20 test -s "$WORK/ctl/controller.url" || { cat "$WORK/ctl.log"; exit 1; }
admin() { ip netns exec "$(ns ctl)" env GATE_CONTROLLER_STATE="$WORK/ctl" "$GATE" "$@"; }
wait_for 20 admin network list
CONTROLLER=$(cat "$WORK/ctl/controller.url")
note "controller: $CONTROLLER"
check "admin token file is 0600" test "$(stat -c %a "$WORK/ctl/admin-token")" = 600

NET=$(admin network create --name aws-do --cidr $NET_CIDR --json | jq -r .id)
note "network $NET"
check "managed route 172.16.0.0/16 via $GW_IP" admin network route add "$NET" 172.16.0.0/16 via $GW_IP
JOIN="gate://$CTL/$NET?pin=$(sed 's/.*pin=//' <<<"$CONTROLLER")"

say "bad input is refused and changes nothing"
before=$(admin network show "$NET" --json | jq -S 'del(.members[].last_seen)')
expect_error "CIDR that is not a network address" "not a network address" admin network create --name x --cidr 192.168.254.1/24
expect_error "overlapping CIDR" "overlap" admin network create --name x --cidr 192.168.254.128/25
expect_error "malformed CIDR" "not a CIDR" admin network create --name x --cidr 192.168.254.0/33
expect_error "route via an address outside the network" "$NET_CIDR|outside|inside" admin network route add "$NET" 10.0.0.0/8 via 10.1.1.1
expect_error "route overlapping the network" "overlap" admin network route add "$NET" 192.168.254.0/25 via $GW_IP
expect_error "unknown network" "not found" admin network show 0123456789abcdef
expect_error "admin call without the token" "401|unauthorized|token" ip netns exec "$(ns ctl)" env GATE_TOKEN=wrong-token "$GATE" network list --controller "$CONTROLLER"
check "network unchanged" test "$before" = "$(admin network show "$NET" --json | jq -S 'del(.members[].last_seen)')"

say "members start"
for n in awsgw droplet stranger; do
	start "$n" "$n" "$GATE" up --state "$WORK/$n" --socket "$WORK/$n.sock" --hostname "$n"
done
node() { local n=$1; shift; GATE_SOCKET="$WORK/$n.sock" "$GATE" "$@"; }
for n in awsgw droplet stranger; do wait_for 20 node $n status || { cat "$WORK/$n.log"; exit 1; }; done
for n in awsgw droplet stranger; do
	check "$n: keys are 0600" test "$(stat -c %a "$WORK/$n/identity.key")$(stat -c %a "$WORK/$n/wireguard.key")" = 600600
done
GW_NODE=$(node awsgw status --json | jq -r .node_id)
DROPLET_NODE=$(node droplet status --json | jq -r .node_id)
STRANGER_NODE=$(node stranger status --json | jq -r .node_id)
note "nodes: awsgw $GW_NODE, droplet $DROPLET_NODE, stranger $STRANGER_NODE"

say "the AWS gate joins, waits, is allowed with its static address"
expect_error "join an unknown network ID" "not found" node awsgw join "gate://$CTL/0123456789abcdef?pin=$(sed 's/.*pin=//' <<<"$CONTROLLER")"
check "nothing joined after the refusal" test "$(node awsgw networks --json)" = "[]"
check "join (gateway for 172.16.0.0/16, NAT instance)" node awsgw join "$JOIN" --serve 172.16.0.0/16 --masquerade-internet
check "status REQUESTING_CONFIGURATION" test "$(node awsgw networks --json | jq -r '.[0].status')" = REQUESTING_CONFIGURATION
member_state() { admin member list "$NET" --json | jq -e --arg n "$1" --arg s "$2" '.[] | select(.node_id==$n and .state==$s)'; }
check "controller lists it pending" member_state "$GW_NODE" pending
check "allow" admin member allow "$NET" "$GW_NODE"
check "static address $GW_IP" admin member set-ip "$NET" "$GW_NODE" $GW_IP
check "gate is OK with $GW_IP" wait_for 5 sh -c "GATE_SOCKET=$WORK/awsgw.sock $GATE networks --json | jq -e '.[0].status==\"OK\" and .[0].addresses==[\"$GW_IP/24\"]'"
GW_IF=$(node awsgw networks --json | jq -r '.[0].interface')
check "gate has no route via itself" sh -c "! ip -n $(ns awsgw) route show 172.16.0.0/16 | grep -q $GW_IF"
check "gate firewall is strict (gateway)" test "$(node awsgw status --json | jq -r .firewall)" = strict
check "gate forwards" test "$(in_ns awsgw sysctl -n net.ipv4.ip_forward)" = 1

say "the droplet joins with a pre-allowed single-use token"
TOKEN_JOIN=$(admin token create "$NET" --allow)
t0=$(date +%s%N)
check "join" node droplet join "$TOKEN_JOIN"
check "droplet OK" wait_for 5 sh -c "GATE_SOCKET=$WORK/droplet.sock $GATE networks --json | jq -e '.[0].status==\"OK\"'"
wait_for 20 in_ns droplet ping -c1 -W1 $GW_IP && t1=$(date +%s%N) || t1=0
DROPLET_IP=$(node droplet networks --json | jq -r '.[0].addresses[0]' | cut -d/ -f1)
DO_IF=$(node droplet networks --json | jq -r '.[0].interface')
note "droplet address $DROPLET_IP on $DO_IF"
[ "$t1" != 0 ] && JOIN_MS=$(( (t1 - t0) / 1000000 )) && note "join -> first ping: ${JOIN_MS} ms"
check "managed route on the droplet" sh -c "ip -n $(ns droplet) route show 172.16.0.0/16 | grep -q 'via $GW_IP dev $DO_IF'"
ip -n "$(ns droplet)" route show 172.16.0.0/16 | sed 's/^/        /'
expect_error "the used single-use token is refused" "already used" node stranger join "$TOKEN_JOIN"
EXPIRED=$(admin token create "$NET" --allow --expires 1s)
sleep 1.5
expect_error "an expired token is refused" "expired" node stranger join "$EXPIRED"
expect_error "a malformed join string is refused" "join string|pin" node stranger join "gate://$CTL/$NET?pin=sha256:1234"
expect_error "a join string with the wrong pin is refused" "pin" node stranger join "gate://$CTL/$NET?pin=sha256:$(printf '0%.0s' $(seq 64))"
check "nothing joined on the stranger" test "$(node stranger networks --json)" = "[]"

say "traffic both ways"
check "VPC host pings the droplet ($DROPLET_IP)" in_ns vpchost ping -c3 -i0.2 -W2 "$DROPLET_IP"
check "droplet pings the VPC host (172.16.10.105)" in_ns droplet ping -c3 -i0.2 -W2 172.16.10.105
head -c 10M /dev/urandom >"$WORK/blob"
want=$(sha256sum <"$WORK/blob" | cut -d' ' -f1)
in_ns vpchost timeout 30 nc -l 172.16.10.105 5001 >"$WORK/blob.recv" &
listener=$!
sleep 0.3
check "10 MB TCP droplet -> VPC host" in_ns droplet timeout 30 nc -N 172.16.10.105 5001 <"$WORK/blob"
wait "$listener" || true
check "checksum matches" test "$(sha256sum <"$WORK/blob.recv" | cut -d' ' -f1)" = "$want"
in_ns droplet timeout 30 nc -l "$DROPLET_IP" 5002 >"$WORK/blob.recv2" &
listener=$!
sleep 0.3
check "10 MB TCP VPC host -> droplet" in_ns vpchost timeout 30 nc -N "$DROPLET_IP" 5002 <"$WORK/blob"
wait "$listener" || true
check "checksum matches" test "$(sha256sum <"$WORK/blob.recv2" | cut -d' ' -f1)" = "$want"

say "the gate is the VPC's NAT instance"
in_ns web timeout 10 nc -lnv 198.51.100.80 5003 >"$WORK/web.out" 2>&1 &
listener=$!
sleep 0.3
check "VPC host reaches the internet through the gate" sh -c "echo hi | ip netns exec $(ns vpchost) timeout 10 nc -N 198.51.100.80 5003"
wait "$listener" || true
check "the internet sees the gate's elastic IP" grep -q "198.51.100.11" "$WORK/web.out"

say "outsiders reach nothing"
check "stranger joins by network ID and waits" node stranger join "$NET" --controller "$CONTROLLER"
check "stranger stays REQUESTING_CONFIGURATION" test "$(node stranger networks --json | jq -r '.[0].status')" = REQUESTING_CONFIGURATION
refute "stranger cannot reach the gate's overlay address" in_ns stranger ping -c2 -W1 $GW_IP
refute "stranger cannot reach the VPC host" in_ns stranger ping -c2 -W1 172.16.10.105
check "the gate has no peer for the stranger" test "$(node awsgw networks --json | jq '[.[0].peers[] | select(.node_id=="'"$STRANGER_NODE"'")] | length')" = 0
refute "foreign host cannot reach the droplet's overlay address" in_ns foreign ping -c2 -W1 "$DROPLET_IP"
refute "foreign host cannot reach the gate through the droplet" in_ns foreign ping -c2 -W1 $GW_IP
refute "foreign host cannot reach the VPC through the droplet" in_ns foreign ping -c2 -W1 172.16.10.105
check "admin denies the stranger" admin member deny "$NET" "$STRANGER_NODE"
check "stranger sees ACCESS_DENIED" wait_for 5 sh -c "GATE_SOCKET=$WORK/stranger.sock $GATE networks --json | jq -e '.[0].status==\"ACCESS_DENIED\"'"

say "changes reach members within a second"
t0=$(date +%s%N)
admin network route add "$NET" 10.99.0.0/16 via $GW_IP >/dev/null
if wait_for 10 sh -c "ip -n $(ns droplet) route show 10.99.0.0/16 | grep -q $DO_IF"; then
	ROUTE_MS=$(( ($(date +%s%N) - t0) / 1000000 )); pass "new route on the droplet after ${ROUTE_MS} ms"
else fail "new route never reached the droplet"; fi
admin network route del "$NET" 10.99.0.0/16 >/dev/null
check "deleted route leaves the droplet" wait_for 10 sh -c "! ip -n $(ns droplet) route show 10.99.0.0/16 | grep -q ."

say "who may reach what"
check "tag the gate gw" admin member tag "$NET" "$GW_NODE" gw
check "tag the droplet web" admin member tag "$NET" "$DROPLET_NODE" web
default_rule() { local out; out=$(admin policy show "$NET") && [[ $out == *"allow from any to any"* ]]; }
check "the network starts with one rule that lets everything through" default_rule
# tcp_open NS ADDR PORT: a TCP connection from NS to a listener the VPC
# host opens on PORT (nc), within 3 s.
tcp_open() {
	in_ns vpchost timeout 5 nc -l 172.16.10.105 "$3" >/dev/null 2>&1 &
	local l=$!
	sleep 0.3
	local rc=0
	echo hi | in_ns "$1" timeout 3 nc -N -w 2 "$2" "$3" >/dev/null 2>&1 || rc=1
	kill $l 2>/dev/null; wait $l 2>/dev/null
	return $rc
}
check "before any rule: the droplet opens tcp/5005 on the VPC host" tcp_open droplet 172.16.10.105 5005
t0=$(date +%s%N)
check "deny from tag:web to the VPC on tcp/5005, first" admin policy add "$NET" --at 1 deny from tag:web to 172.16.0.0/16 on tcp/5005 '#' no app port from the web tier
if wait_for 10 sh -c "ip netns exec $(ns awsgw) nft list table inet gate | grep -q 5005"; then
	RULE_MS=$(( ($(date +%s%N) - t0) / 1000000 )); pass "the rule is in the gate's kernel after ${RULE_MS} ms"
else fail "the rule never reached the gate's kernel"; fi
refute "the droplet cannot open tcp/5005 on the VPC host" tcp_open droplet 172.16.10.105 5005
check "the droplet still opens tcp/5006" tcp_open droplet 172.16.10.105 5006
check "and still pings the VPC host" in_ns droplet ping -c2 -i0.2 -W2 172.16.10.105
names_rule() { local out; out=$(admin policy test "$NET" --from "$DROPLET_NODE" --to 172.16.10.105:5005/tcp) && echo "$out" && [[ $out == *"DENY: rule 1"* ]]; }
check "policy test names the rule" names_rule
check "the gate counts what rule 1 dropped" sh -c "GATE_SOCKET=$WORK/awsgw.sock $GATE networks --json | jq -e '[.[0].rules[] | select(.chain==\"forward\" and .rule==1 and .packets>0)] | length == 1'"
node awsgw networks | sed -n '/rules enforced/,$p' | sed 's/^/        /'
# Deny by default: only the gate may be reached, and only by ping.
printf 'allow from members to tag:gw on icmp\n' >"$WORK/rules"
check "rules replaced: only ping to the gate" admin policy set "$NET" "$WORK/rules"
check "the droplet pings the gate" wait_for 5 in_ns droplet ping -c1 -W1 $GW_IP
refute "the VPC host cannot reach the droplet (the droplet enforces)" wait_for 3 in_ns vpchost ping -c1 -W1 "$DROPLET_IP"
refute "the droplet cannot reach the VPC host (the gate enforces)" in_ns droplet ping -c2 -W1 172.16.10.105
printf 'allow from any to any\n' >"$WORK/rules"
check "back to the default rule" admin policy set "$NET" "$WORK/rules"
check "traffic flows again" wait_for 5 in_ns droplet ping -c1 -W1 172.16.10.105

say "controller restart loses nothing"
members() { admin member list "$NET" --json | jq -S '[.[] | {node_id, state, addresses}]'; }
nets() { admin network list --json | jq -S '[.[] | del(.revision)]'; }
m_before=$(members); n_before=$(nets)
stop ctl
start ctl ctl "$GATE" controller --state "$WORK/ctl" --listen $CTL
wait_for 20 admin network list
check "members and addresses survive" test "$m_before" = "$(members)"
check "networks and routes survive" test "$n_before" = "$(nets)"

say "offline first: the controller is down"
stop ctl
check "traffic keeps flowing" in_ns droplet ping -c3 -i0.2 -W2 172.16.10.105
stop droplet
start droplet droplet "$GATE" up --state "$WORK/droplet" --socket "$WORK/droplet.sock" --hostname droplet
wait_for 20 node droplet status
check "a restarted droplet applies its last configuration" wait_for 20 in_ns droplet ping -c1 -W1 172.16.10.105
check "and says it is offline" test "$(node droplet status --json | jq -r .online)" = false
start ctl ctl "$GATE" controller --state "$WORK/ctl" --listen $CTL
check "back online when the controller returns" wait_for 40 sh -c "GATE_SOCKET=$WORK/droplet.sock $GATE status --json | jq -e .online"

say "leave removes what Gate made, and nothing else"
check "droplet leaves" node droplet leave "$NET"
check "interface gone" sh -c "! ip -n $(ns droplet) link show $DO_IF 2>/dev/null"
check "managed route gone" sh -c "! ip -n $(ns droplet) route show 172.16.0.0/16 | grep -q ."
check "Gate's nftables table gone" sh -c "! ip netns exec $(ns droplet) nft list table inet gate 2>/dev/null"
check "droplet's own addresses untouched" sh -c "ip -n $(ns droplet) addr show eth1 | grep -q 10.10.0.2/16"
check "droplet's forwarding left as found" test "$(in_ns droplet sysctl -n net.ipv4.ip_forward)" = 1
check "controller forgot the droplet" sh -c "! (ip netns exec $(ns ctl) env GATE_CONTROLLER_STATE=$WORK/ctl $GATE member list $NET --json | jq -e '.[] | select(.node_id==\"$DROPLET_NODE\")')"
check "gate leaves" node awsgw leave "$NET"
check "gate's table gone" sh -c "! ip netns exec $(ns awsgw) nft list table inet gate 2>/dev/null"
check "gate's forwarding switched back off" test "$(in_ns awsgw sysctl -n net.ipv4.ip_forward)" = 0
check "the VPC's NAT table is untouched" in_ns vpc nft list table ip igw

say "figures"
echo "{\"join_to_first_ping_ms\": ${JOIN_MS:-null}, \"route_change_ms\": ${ROUTE_MS:-null}, \"rule_change_ms\": ${RULE_MS:-null}}" | tee "$WORK/figures.json"
summary
