#!/usr/bin/env bash
# Faults: Gate under kill -9 and a full state partition. Run as root:
#
#   scripts/fault-test.sh [all | controller-kill | controller-enospc | daemon-kill | daemon-enospc]
#
#   controller-kill     bin/crashtest: SIGKILL the controller mid-stream of
#                       writes CTL_TRIALS times; nothing acknowledged lost
#   controller-enospc   the controller's state on a full tmpfs: a write fails
#                       promptly with an error, the log names it, nothing
#                       acknowledged is lost after the space is freed
#   daemon-kill         in network namespaces: SIGKILL `gate up` right after
#                       a change on the controller, DAEMON_TRIALS times, at
#                       random delays; after a restart the kernel (addresses,
#                       routes, nftables, WireGuard peers) equals what a
#                       clean start gives
#   daemon-enospc       the daemon's state on a full tmpfs: it logs the
#                       cause, a join fails naming it, the kernel still
#                       follows the controller, the last good state parses
#                       and a restart after freeing the space loses nothing
#
# CTL_TRIALS (default 100), DAEMON_TRIALS (default 10), OUT (default
# out/faults: JSON results). `make faults` runs it all; `make test` a
# short slice. Tmpfs mounts live in mount namespaces of their own
# (unshare -m), so they go away with the processes that use them.
source "$(dirname "$0")/netns-lib.sh"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CTL_TRIALS=${CTL_TRIALS:-100}
DAEMON_TRIALS=${DAEMON_TRIALS:-10}
OUT=${OUT:-$ROOT/out/faults}
CRASHTEST=${CRASHTEST:-$ROOT/bin/crashtest}
WHAT=${1:-all}

trap cleanup EXIT
require_tools
for t in unshare nsenter mount umount; do
	command -v $t >/dev/null || { echo "missing tool: $t (util-linux)" >&2; exit 1; }
done
[ -x "$CRASHTEST" ] || { echo "no $CRASHTEST (make faults builds it)" >&2; exit 1; }
mkdir -p "$OUT"

want() { [ "$WHAT" = all ] || [ "$WHAT" = "$1" ]; }

# ---------------------------------------------------------------- controller
if want controller-kill; then
	say "controller: kill -9 during writes, $CTL_TRIALS trials"
	if "$CRASHTEST" -gate "$GATE" -trials "$CTL_TRIALS" -out "$OUT/controller-kill.json" 2>&1 | tee "$WORK/crashtest.out" | grep -v '^crashtest: .* trial [0-9]*: killed after' ; then
		pass "controller kill -9: $(jq -r '"\(.trials) trials, \(.writes_acked) writes acknowledged, lost \(.lost), \(.trial_ms.Mean|floor) ms a trial"' "$OUT/controller-kill.json")"
	else
		fail "controller kill -9 (see above)"
	fi
fi

if want controller-enospc; then
	say "controller: a full state partition"
	# The tmpfs exists only in this mount namespace; the controller's log
	# goes to /tmp, outside it.
	if unshare -m --propagation private sh -c '
		d=$(mktemp -d /tmp/gate-fullfs.XXXXXX) && mount -t tmpfs -o size=8m,mode=0700 gate-fullfs "$d" || exit 1
		"$1" -gate "$2" -enospc "$d" ${3:+-enospc-unnamed-ok}; rc=$?
		umount "$d"; rmdir "$d"; exit $rc' sh "$CRASHTEST" "$GATE" "${ENOSPC_UNNAMED_OK-}" 2>&1 | tee "$WORK/enospc-ctl.out"; then
		pass "controller on a full disk: $(grep -o 'on the full disk [0-9]* failed.*' "$WORK/enospc-ctl.out")"
	else
		fail "controller on a full disk"
	fi
fi

# ---------------------------------------------------------------- daemon
if want daemon-kill || want daemon-enospc; then
	say "topology: controller, a gateway node, a peer"
	for n in hub ctl node peer lan; do mkns $n; done
	bridge hub br0
	ip -n "$(ns hub)" addr add 10.77.0.254/24 dev br0
	i=1
	for n in ctl node peer; do
		link $n eth0 10.77.0.$i/24 hub "p-$n" -
		plug hub br0 "p-$n"
		[ $n = ctl ] || in_ns $n ip route add default via 10.77.0.254
		i=$((i + 1))
	done
	link node lan0 172.31.0.1/24 lan eth0 172.31.0.2/24
	in_ns node sysctl -qw net.ipv4.ip_forward=0

	start ctl ctl "$GATE" controller --state "$WORK/ctl" --listen 10.77.0.1:8443
	wait_for 20 test -s "$WORK/ctl/controller.url" || { cat "$WORK/ctl.log"; exit 1; }
	admin() { ip netns exec "$(ns ctl)" env GATE_CONTROLLER_STATE="$WORK/ctl" "$GATE" "$@"; }
	wait_for 20 admin network list
	NET=$(admin network create --name faults --cidr 10.200.0.0/24 --json | jq -r .id)
	IFACE=gate${NET:0:10}
	admin network route add "$NET" 172.31.0.0/16 via 10.200.0.11 >/dev/null
	admin network route add "$NET" 172.30.0.0/16 via 10.200.0.12 >/dev/null
	node() { local n=$1; shift; GATE_SOCKET="$WORK/$n.sock" "$GATE" "$@"; }

	start peer peer "$GATE" up --state "$WORK/peer" --socket "$WORK/peer.sock" --hostname peer
	wait_for 20 node peer status || { cat "$WORK/peer.log"; exit 1; }
	node peer join "$(admin token create "$NET" --allow --address 10.200.0.12)" >/dev/null
	PEER_NODE=$(node peer status --json | jq -r .node_id)
	note "network $NET, interface $IFACE, peer $PEER_NODE"
fi

# kstate: the node's kernel state for the network, normalised: the link,
# its addresses, Gate's routes (proto 241), forwarding, Gate's nftables
# table (counters zeroed) and the WireGuard device as the daemon reports
# it (peers: keys, allowed IPs, endpoints; not handshakes or counters).
kstate() {
	local sock=$1 n; n=$(ns node)
	echo "link $(ip -n "$n" -j link show dev "$IFACE" 2>&1 | jq -c '.[] | {mtu, up: (.flags | index("UP") != null)}' 2>&1)"
	# (not the IPv6 link-local address: the kernel makes a new one for every device)
	echo "addr $(ip -n "$n" -j addr show dev "$IFACE" 2>&1 | jq -c '[.[].addr_info[] | select(.scope != "link") | "\(.local)/\(.prefixlen)"] | sort' 2>&1)"
	ip -n "$n" route show table all proto 241 | sort | sed 's/^/route /'
	echo "forwarding $(ip netns exec "$n" sysctl -n net.ipv4.ip_forward)"
	ip netns exec "$n" nft list table inet gate 2>&1 | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/g; s/^/nft /'
	GATE_SOCKET=$sock "$GATE" networks --json | jq -c '.[] | {id, status, interface, listen_port, mtu, addresses, routes: (.routes | sort_by(.dest)),
		peers: ([(.peers // [])[] | {node_id, public_key, allowed_ips: (.allowed_ips | sort), endpoint}] | sort_by(.node_id))}' | sed 's/^/networks /'
}

# expected: what the controller says the node should have: its address,
# the routes not via itself, the peers allowed with an address.
expected() {
	local me=$1 show
	show=$(admin network show "$NET" --json)
	jq -c --arg me "$me" '
		(.members[] | select(.node_id == $me) | .addresses) as $mine |
		{addresses: [$mine[] | "\(.)/24"],
		 routes: [.routes[] | select(.via as $v | ($mine | index($v)) == null) | .dest] | sort,
		 peers: [.members[] | select(.node_id != $me and .state == "allowed" and (.addresses | length) > 0) | .node_id] | sort}' <<<"$show"
}

# converged SOCK WANT: the daemon's network is OK and matches WANT (from
# expected), and the kernel has its interface.
converged() {
	local sock=$1 want=$2 got
	got=$(GATE_SOCKET=$sock "$GATE" networks --json 2>/dev/null | jq -c --arg id "$NET" '.[] | select(.id == $id and .status == "OK") |
		{addresses, routes: [(.routes // [])[].dest] | sort, peers: [(.peers // [])[].node_id] | sort}')
	[ -n "$got" ] && [ "$want" = "$got" ] && ip -n "$(ns node)" link show dev "$IFACE" >/dev/null 2>&1
}

# settle SOCK NODE FILE: wait (up to 30 s) until the daemon converged on
# the controller's configuration and the kernel state is the same twice
# 300 ms apart; the state goes to FILE. Prints the ms until it first
# converged.
settle() {
	local sock=$1 me=$2 file=$3 t0 first="" prev="" want
	want=$(expected "$me")
	t0=$(date +%s%N)
	while [ $(($(date +%s%N) - t0)) -lt 30000000000 ]; do
		if converged "$sock" "$want"; then
			[ -n "$first" ] || first=$((($(date +%s%N) - t0) / 1000000))
			kstate "$sock" >"$file.now"
			if [ -n "$prev" ] && cmp -s "$file.now" "$prev"; then
				mv "$file.now" "$file"; rm -f "$prev"
				echo "$first"
				return 0
			fi
			mv "$file.now" "$file.prev"; prev=$file.prev
			sleep 0.3
		else
			sleep 0.02
		fi
	done
	{ echo "want: $want"; kstate "$sock"; } >"$file" 2>&1 || true
	return 1
}

if want daemon-kill; then
	say "daemon: kill -9 during a reconcile, $DAEMON_TRIALS trials"
	start gw node "$GATE" up --state "$WORK/node" --socket "$WORK/node.sock" --hostname node
	wait_for 20 node node status || { cat "$WORK/gw.log"; exit 1; }
	NODE=$(node node status --json | jq -r .node_id)
	check "node joins as a gateway for 172.31.0.0/16" node node join "$(admin token create "$NET" --allow --address 10.200.0.11)" --serve 172.31.0.0/16 --lan lan0
	settle "$WORK/node.sock" "$NODE" "$WORK/k-first" >/dev/null || { fail "node never converged"; cat "$WORK/k-first"; exit 1; }
	check "the node forwards and has Gate's table" grep -q "forwarding 1" "$WORK/k-first"
	check "and a peer" grep -q "$PEER_NODE" "$WORK/k-first"
	results=()
	node_ip=10.200.0.11
	extra=""
	for t in $(seq "$DAEMON_TRIALS"); do
		case $((t % 5)) in
		1) extra=10.$((100 + t)).0.0/16; change="route add $extra"; admin network route add "$NET" "$extra" via 10.200.0.12 >/dev/null ;;
		2) change="route del $extra"; admin network route del "$NET" "$extra" >/dev/null ;;
		3) change="deny the peer"; admin member deny "$NET" "$PEER_NODE" >/dev/null ;;
		4) change="allow the peer"; admin member allow "$NET" "$PEER_NODE" >/dev/null ;;
		0) if [ $node_ip = 10.200.0.11 ]; then node_ip=10.200.0.21; else node_ip=10.200.0.11; fi
		   change="the node's address to $node_ip"; admin member set-ip "$NET" "$NODE" $node_ip >/dev/null ;;
		esac
		delay_ms=$((RANDOM % 150))
		sleep "$(printf '0.%03d' $delay_ms)"
		kill -KILL "$PID_gw"; wait "$PID_gw" 2>/dev/null || true
		t0=$(date +%s%N)
		start gw node "$GATE" up --state "$WORK/node" --socket "$WORK/node.sock" --hostname node
		if ! conv_ms=$(settle "$WORK/node.sock" "$NODE" "$WORK/k-crash-$t"); then
			fail "trial $t ($change, killed after $delay_ms ms): no convergence after the restart"; sed 's/^/        /' "$WORK/k-crash-$t"
			continue
		fi
		# The reference: a clean stop (which tears down) and a clean start.
		stop gw
		torn=$(kstate "$WORK/node.sock" 2>/dev/null | grep -cE '^(nft table|route )' || true)
		[ "$torn" = 0 ] || fail "trial $t: a clean stop left $torn lines of Gate's table and routes"
		start gw node "$GATE" up --state "$WORK/node" --socket "$WORK/node.sock" --hostname node
		if ! clean_ms=$(settle "$WORK/node.sock" "$NODE" "$WORK/k-clean-$t"); then
			fail "trial $t: no convergence after a clean start"; continue
		fi
		if diff -u "$WORK/k-clean-$t" "$WORK/k-crash-$t" >"$WORK/k-diff-$t"; then
			pass "trial $t: $change, killed after $delay_ms ms: restart converged in $conv_ms ms to what a clean start gives ($clean_ms ms)"
			ok=true
		else
			fail "trial $t: $change, killed after $delay_ms ms: the kernel after the restart differs from a clean start"
			sed 's/^/        /' "$WORK/k-diff-$t" | head -40
			ok=false
		fi
		results+=("{\"trial\":$t,\"change\":\"$change\",\"kill_after_ms\":$delay_ms,\"converged_ms\":$conv_ms,\"clean_start_ms\":$clean_ms,\"same_as_clean\":$ok,\"seconds\":$(( ($(date +%s%N) - t0) / 1000000 ))e-3}")
	done
	printf '%s\n' "${results[@]}" | jq -s '{trials: length, same_as_clean: ([.[] | select(.same_as_clean)] | length),
		converged_ms: {mean: ([.[].converged_ms] | add / length | floor), max: ([.[].converged_ms] | max)},
		trial_s: {mean: ([.[].seconds] | add / length * 10 | floor / 10)}, runs: .}' >"$OUT/daemon-kill.json"
	jq -r '"daemon kill -9: \(.trials) trials, \(.same_as_clean) the same as a clean start; restart to converged \(.converged_ms.mean) ms mean, \(.converged_ms.max) max; \(.trial_s.mean) s a trial"' "$OUT/daemon-kill.json"
	echo "JSON: $OUT/daemon-kill.json"
	stop gw
	check "a clean stop leaves no interface" sh -c "! ip -n $(ns node) link show dev $IFACE 2>/dev/null"
	check "a clean stop leaves no table inet gate" sh -c "! ip netns exec $(ns node) nft list table inet gate 2>/dev/null"
	check "a clean stop after kill -9s puts forwarding back as found before the first start (0)" test "$(in_ns node sysctl -n net.ipv4.ip_forward)" = 0
fi

if want daemon-enospc; then
	say "daemon: a full state partition"
	# A holder process keeps a mount namespace with a 256 KiB tmpfs; the
	# daemon runs in it (nsenter), so it goes away with them.
	FS=$WORK/fullfs
	mkdir -p "$FS"
	unshare -m --propagation private sh -c 'mount -t tmpfs -o size=256k,mode=0700 gate-fullfs "$1" && touch "$1/.mounted" && exec sleep 3600' sh "$FS" &
	HOLDER=$!
	PIDS+=($HOLDER)
	wait_for 10 nsenter -t $HOLDER -m test -e "$FS/.mounted" || { fail "mounting the tmpfs"; exit 1; }
	inholder() { nsenter -t $HOLDER -m "$@"; }
	check "the host does not see the tmpfs" test ! -e "$FS/.mounted"
	start full node nsenter -t $HOLDER -m ip netns exec "$(ns node)" "$GATE" up --state "$FS/state" --socket "$WORK/full.sock" --hostname full
	wait_for 20 node full status || { cat "$WORK/full.log"; exit 1; }
	FULL=$(node full status --json | jq -r .node_id)
	check "join with the state on a 256 KiB tmpfs" node full join "$(admin token create "$NET" --allow --address 10.200.0.31)" --serve 172.31.0.0/16 --lan lan0
	settle "$WORK/full.sock" "$FULL" "$WORK/k-full-0" >/dev/null || fail "the node did not converge"
	inholder sh -c "cat /dev/zero >'$FS/filler' 2>/dev/null; df -k '$FS' | tail -1" | sed 's/^/   full: /'
	check "the state partition is full" sh -c "! nsenter -t $HOLDER -m sh -c 'echo x >$FS/probe' 2>/dev/null"
	admin network route add "$NET" 10.250.0.0/16 via 10.200.0.12 >/dev/null
	check "a change on the controller still reaches the kernel" wait_for 10 sh -c "ip -n $(ns node) route show 10.250.0.0/16 | grep -q $IFACE"
	check "the daemon logs why it could not save its state" wait_for 10 grep -qE "saving state: .*no space left on device" "$WORK/full.log"
	grep -m1 -E "saving state: .*no space" "$WORK/full.log" | sed 's/^/        /'
	OTHER=$(admin network create --name faults2 --cidr 10.201.0.0/24 --json | jq -r .id)
	t0=$(date +%s%N)
	expect_error "a join fails, naming the cause" "no space left on device" timeout 20 env GATE_SOCKET="$WORK/full.sock" "$GATE" join "$(admin token create "$OTHER" --allow)"
	note "the failing join answered in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
	check "the last good state parses" inholder jq -e ".networks | length == 1" "$FS/state/networks.json"
	check "no temporary files are left in the state directory" test -z "$(inholder find "$FS/state" -name '*.tmp*')"
	check "the network is still OK" sh -c "GATE_SOCKET=$WORK/full.sock $GATE networks --json | jq -e '.[0].status == \"OK\"'"
	# A crash on the full disk, then the space comes back.
	kill -KILL "$PID_full"; wait "$PID_full" 2>/dev/null || true
	inholder rm -f "$FS/filler"
	start full node nsenter -t $HOLDER -m ip netns exec "$(ns node)" "$GATE" up --state "$FS/state" --socket "$WORK/full.sock" --hostname full
	wait_for 20 node full status || { cat "$WORK/full.log"; exit 1; }
	check "after a crash and freeing the space: the same node" test "$(node full status --json | jq -r .node_id)" = "$FULL"
	if settle "$WORK/full.sock" "$FULL" "$WORK/k-full-1" >/dev/null && grep -q "route 10.250.0.0/16 .*dev $IFACE" "$WORK/k-full-1"; then
		pass "it converges, with the route added while the disk was full"
	else
		fail "it does not converge to the controller's configuration"; sed 's/^/        /' "$WORK/k-full-1"
	fi
	check "and saves it" wait_for 10 inholder grep -q 10.250.0.0/16 "$FS/state/networks.json"
	check "the state parses" inholder jq -e ".networks | length == 1" "$FS/state/networks.json"
	stop full
	admin network route del "$NET" 10.250.0.0/16 >/dev/null
fi

summary
