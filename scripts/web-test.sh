#!/usr/bin/env bash
# The seed scenario with its admin in a browser: the controller serves its
# web console, scripts/webdrive (headless Chromium) creates the network,
# sees the AWS gate appear pending, allows it, sets its static address,
# adds the route through it and makes the droplet's join token, all on the
# pages; this script runs the gates in network namespaces (seed-topology)
# and checks the kernels: the droplet has the route, and the VPC host and
# the droplet reach each other. The screenshots land in $SHOTS.
#
#   make web-test          (or: scripts/web-test.sh after make)
source "$(dirname "$0")/netns-lib.sh"
source "$(dirname "$0")/seed-topology.sh"
trap cleanup EXIT
require_tools
command -v chromium >/dev/null || { echo "no chromium (make deps installs it)" >&2; exit 1; }
WEBDRIVE=${WEBDRIVE:-$(dirname "$GATE")/webdrive}
[ -x "$WEBDRIVE" ] || { echo "no webdrive at $WEBDRIVE (make web-tools)" >&2; exit 1; }
SHOTS=${SHOTS:-$WORK/shots}
mkdir -p "$SHOTS"

NET_CIDR=192.168.254.0/24
GW_IP=192.168.254.11
CTL=198.51.100.10:8443

say "topology"
seed_topology

say "controller, its web console on the controller's loopback"
start ctl ctl "$GATE" controller --state "$WORK/ctl" --listen $CTL --web 127.0.0.1:8444
wait_for 20 test -s "$WORK/ctl/controller.url" || { cat "$WORK/ctl.log"; exit 1; }
admin() { ip netns exec "$(ns ctl)" env GATE_CONTROLLER_STATE="$WORK/ctl" "$GATE" "$@"; }
wait_for 20 admin network list
CONTROLLER=$(cat "$WORK/ctl/controller.url")
check "console answers on loopback" in_ns ctl sh -c "nc -z 127.0.0.1 8444"
refute "console is not on the controller's public address" in_ns droplet nc -z -w 2 198.51.100.10 8444

say "the gates start"
for n in awsgw droplet; do
	start "$n" "$n" "$GATE" up --state "$WORK/$n" --socket "$WORK/$n.sock" --hostname "$n"
done
node() { local n=$1; shift; GATE_SOCKET="$WORK/$n.sock" "$GATE" "$@"; }
for n in awsgw droplet; do wait_for 20 node $n status || { cat "$WORK/$n.log"; exit 1; }; done

say "the admin, in the browser"
start webdrive ctl "$WEBDRIVE" -console http://127.0.0.1:8444 -token-file "$WORK/ctl/admin-token" -dir "$SHOTS" \
	-cidr $NET_CIDR -gw-ip $GW_IP -serve 172.16.0.0/16
check "the browser creates the network" wait_for 60 test -s "$SHOTS/net"
NET=$(cat "$SHOTS/net")
note "network $NET"
check "the AWS gate joins by network ID (gateway for 172.16.0.0/16, NAT instance)" \
	node awsgw join "gate://$CTL/$NET?pin=$(sed 's/.*pin=//' <<<"$CONTROLLER")" --serve 172.16.0.0/16 --masquerade-internet
check "the browser allows it and gives it $GW_IP" wait_for 90 sh -c "GATE_SOCKET=$WORK/awsgw.sock $GATE networks --json | jq -e '.[0].status==\"OK\" and .[0].addresses==[\"$GW_IP/24\"]'"
check "the browser makes the droplet's token" wait_for 60 test -s "$SHOTS/join"
check "the droplet joins with it" node droplet join "$(cat "$SHOTS/join")"
check "droplet OK" wait_for 20 sh -c "GATE_SOCKET=$WORK/droplet.sock $GATE networks --json | jq -e '.[0].status==\"OK\"'"
check "the browser sees the droplet join, live" wait_for 120 test -s "$SHOTS/done"
if ! wait "$PID_webdrive"; then fail "webdrive failed"; sed 's/^/        /' "$WORK/webdrive.log"; fi
PID_webdrive=

say "the kernels"
DO_IF=$(node droplet networks --json | jq -r '.[0].interface')
DROPLET_IP=$(node droplet networks --json | jq -r '.[0].addresses[0]' | cut -d/ -f1)
check "the route made in the browser is in the droplet's kernel" sh -c "ip -n $(ns droplet) route show 172.16.0.0/16 | grep -q 'via $GW_IP dev $DO_IF'"
check "droplet pings the VPC host (172.16.10.105)" in_ns droplet ping -c3 -i0.2 -W2 172.16.10.105
check "VPC host pings the droplet ($DROPLET_IP)" in_ns vpchost ping -c3 -i0.2 -W2 "$DROPLET_IP"

say "the audit log has every change, from the web console"
AUDIT=$(admin audit --json)
for a in network.create member.allow member.address route.add token.create admin_token.create session.signin; do
	check "$a, via the web" jq -e --arg a "$a" '[.[] | select(.action==$a and .via=="web" and .outcome=="ok")] | length == 1' <<<"$AUDIT"
done
note "screenshots in $SHOTS: $(cd "$SHOTS" && ls *.png | tr '\n' ' ')"
summary
