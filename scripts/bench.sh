#!/usr/bin/env bash
# make bench: Gate's dataplane side by side with the upstream wireguard-go
# command and the plain routed path, in one run, on this machine.
#
#   hostA 10.1.0.2 -- gwA -- wan (198.51.100.0/24) -- gwB -- hostB 10.2.0.2
#
# For each dataplane on the gateways it measures TCP throughput hostA ->
# hostB (iperf3, 1 and STREAMS streams, REPS repetitions, median), and
# both ways at once (iperf3 --bidir, one stream each way, the sum), CPU time
# of the gateway processes per Gbit/s, their RSS idle / under load / after,
# and latency through the path (ping and TCP request/response p50/p99).
# Prints a table and writes out/bench/bench.json.
#
# Knobs: CONTROLLER_SIZES ("1000 10000"), CONTROLLER_LIMIT_SIZES ("10000",
# run again with gate controller --memory-limit CONTROLLER_LIMIT, default 0:
# without the controller's default limit, to show what it costs),
# CONTROLLER_PG_SIZES ("1000 10000": the same runs with the controller on a
# PostgreSQL that ctlbench starts, fsync on, then with CONTROLLER_REPLICAS,
# default 2, replicas on it and the members split between them),
# DURATION (s, default 10), REPS (3), STREAMS (4), SETTLE (30 s,
# the wait before "RSS after"), VARIANTS ("plain upstream gate gate-full
# gate-256m": Gate's dataplane, with its full gateway ruleset, and with the
# appliance's 256 MiB memory limit; also "gate-p1": Gate with GOMAXPROCS=1,
# a lever measured for the README, not a default; "gate-gcN": Gate with
# GOGC=N (off: no GC), another; "gate-bN": Gate with N
# packet buffers per device, gate up --buffers N, 0 for unbounded;
# "gate-pin": each gateway on a core of its own (taskset); the options
# combine: "gate-full-p1"),
# BOOT_BENCH (1: also image sizes and boot time, scripts/bench-boot.sh).
# PERF=1: a CPU profile (perf record) of each gateway during the first
# 1-stream run, its top symbols printed, the data in out/bench/perf-*.
# BENCH_SMOKE=1 runs a tiny configuration (the test suite uses it).
source "$(dirname "$0")/netns-lib.sh"
trap cleanup EXIT
require_tools
for t in iperf3 wg; do command -v $t >/dev/null || { echo "missing $t (make bench-tools installs it)" >&2; exit 1; }; done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/out/bench}
mkdir -p "$OUT"
if [ "${BENCH_SMOKE:-0}" = 1 ]; then
	DURATION=${DURATION:-1} REPS=${REPS:-1} SETTLE=${SETTLE:-1} PINGS=${PINGS:-20} RR=${RR:-50}
	CONTROLLER_SIZES=${CONTROLLER_SIZES-50}
	CONTROLLER_LIMIT_SIZES=${CONTROLLER_LIMIT_SIZES-50}
	# One PostgreSQL run, with replicas: a few seconds.
	CONTROLLER_PG_SIZES=${CONTROLLER_PG_SIZES-50}
	CONTROLLER_PG_SINGLE=${CONTROLLER_PG_SINGLE:-0}
fi
CONTROLLER_SIZES=${CONTROLLER_SIZES-1000 10000}
# The same with gate controller --memory-limit $CONTROLLER_LIMIT (0: none).
CONTROLLER_LIMIT_SIZES=${CONTROLLER_LIMIT_SIZES-10000}
CONTROLLER_LIMIT=${CONTROLLER_LIMIT:-0}
CONTROLLER_PG_SIZES=${CONTROLLER_PG_SIZES-1000 10000}
CONTROLLER_REPLICAS=${CONTROLLER_REPLICAS:-2}
# 0: only the run with replicas on PostgreSQL, not the one with a single
# controller there (the smoke run).
CONTROLLER_PG_SINGLE=${CONTROLLER_PG_SINGLE:-1}
CTLBENCH=${CTLBENCH:-$ROOT/bin/ctlbench}
DURATION=${DURATION:-10}
REPS=${REPS:-3}
STREAMS=${STREAMS:-4}
SETTLE=${SETTLE:-30}
PINGS=${PINGS:-200}
RR=${RR:-2000}
VARIANTS=${VARIANTS:-plain upstream gate gate-full gate-256m}
WGGO=${WGGO:-$ROOT/bin/wireguard-go}
TCPRR=${TCPRR:-$ROOT/bin/tcprr}
HICCUP=${HICCUP:-$ROOT/bin/hiccup}
for b in "$TCPRR" "$HICCUP"; do [ -x "$b" ] || { echo "missing $b (make bench-tools builds it)" >&2; exit 1; }; done
if [ "${PERF:-0}" = 1 ]; then
	command -v perf >/dev/null || { echo "PERF=1 needs perf (apt-get install linux-perf)" >&2; exit 1; }
	# perf needs symbols: an unstripped build of the same source.
	(cd "$ROOT" && go build -trimpath -o "$WORK/gate-sym" ./appliance) || { echo "building an unstripped gate failed" >&2; exit 1; }
	GATE=$WORK/gate-sym
fi
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
: >"$WORK/control.jsonl"

say "topology"
for n in ha ga gb hb; do mkns $n; done
link ha eth0 10.1.0.2/24 ga lan 10.1.0.1/24
link ga wan 198.51.100.1/24 gb wan 198.51.100.2/24
link gb lan 10.2.0.1/24 hb eth0 10.2.0.2/24
in_ns ha ip route add default via 10.1.0.1
in_ns hb ip route add default via 10.2.0.1
for g in ga gb; do in_ns $g sysctl -qw net.ipv4.ip_forward=1; done

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "null"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
cpu_ticks() { local s=0 p; for p in "$@"; do s=$((s + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $s; }
rss_kb() { local s=0 p; for p in "$@"; do s=$((s + $(awk '/^VmRSS/ {print $2}' /proc/$p/status))); done; echo $s; }
busy_ticks() { awk '/^cpu / {print $2+$3+$4+$7+$8}' /proc/stat; }
busy_ticks_all() { awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat; }
HZ=$(getconf CLK_TCK)
# UDP datagrams the gateways' kernels dropped for want of socket buffer
# space (RcvbufErrors + SndbufErrors, both gateways): nonzero means the
# socket buffers are a bottleneck.
udp_buf_errors() {
	local n s=0
	for n in ga gb; do
		s=$((s + $(in_ns $n cat /proc/net/snmp | awk '/^Udp:/ {if (!h) {for (i=1; i<=NF; i++) c[$i]=i; h=1} else print $c["RcvbufErrors"] + $c["SndbufErrors"]}')))
	done
	echo $s
}

# GW_PIDS: the gateway processes measure is measuring (none for the
# plain path).
GW_PIDS=()
# polled CMD...: runs CMD and prints its output; while it runs, the peak
# RSS of GW_PIDS goes to $WORK/peak, every half second.
polled() {
	"$@" &
	local cmd=$! r
	while kill -0 $cmd 2>/dev/null; do
		if [ ${#GW_PIDS[@]} -gt 0 ]; then
			r=$(rss_kb "${GW_PIDS[@]}")
			[ "$r" -gt "$(cat "$WORK/peak" 2>/dev/null || echo 0)" ] && echo "$r" >"$WORK/peak"
		fi
		sleep 0.5
	done
	wait $cmd
}

# measure VARIANT PIDS...: throughput, CPU, RSS and latency through the path.
measure() {
	local variant=$1; shift
	GW_PIDS=("$@")
	rm -f "$WORK/peak"
	local idle_rss=null peak=0 cpu_per_gbit=null sys_per_gbit=null
	wait_for 20 in_ns ha ping -c1 -W1 10.2.0.2 || { fail "$variant: no path hostA -> hostB"; return; }
	# Idle: every dataplane has carried the same few pings, then rests.
	in_ns ha ping -c5 -i0.2 -q 10.2.0.2 >/dev/null
	sleep 2
	[ ${#GW_PIDS[@]} -gt 0 ] && idle_rss=$(rss_kb "${GW_PIDS[@]}")
	local cpu0 busy0 bits=0 udp0
	udp0=$(udp_buf_errors)
	[ ${#GW_PIDS[@]} -gt 0 ] && cpu0=$(cpu_ticks "${GW_PIDS[@]}")
	busy0=$(busy_ticks)
	for streams in 1 "$STREAMS"; do
		for rep in $(seq "$REPS"); do
			in_ns hb iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
			local srv=$!
			sleep 0.3
			# PERF=1: a CPU profile of each gateway during the first run.
			if [ "${PERF:-0}" = 1 ] && [ "$rep" = 1 ] && [ "$streams" = 1 ] && [ ${#GW_PIDS[@]} -gt 0 ]; then
				local p i=0
				for p in "${GW_PIDS[@]}"; do
					i=$((i + 1))
					perf record -q -F 499 -g -p "$p" -o "$OUT/perf-$variant-$i.data" -- sleep "$DURATION" >/dev/null 2>&1 &
				done
			fi
			local json
			json=$(polled in_ns ha iperf3 -c 10.2.0.2 -p 5201 -t "$DURATION" -P "$streams" -J 2>/dev/null)
			wait $srv 2>/dev/null || true
			local bps
			bps=$(jq -r '.end.sum_received.bits_per_second // empty' <<<"$json")
			if [ -z "$bps" ]; then fail "$variant: iperf3 ($streams streams) gave no result"; continue; fi
			echo "$bps" >>"$WORK/$variant.$streams"
			bits=$(awk -v a="$bits" -v b="$bps" -v d="$DURATION" 'BEGIN {printf "%.0f", a + b*d}')
		done
	done
	local busy1 cpu1
	busy1=$(busy_ticks)
	sys_per_gbit=$(awk -v t=$((busy1 - busy0)) -v hz="$HZ" -v bits="$bits" 'BEGIN {printf "%.3f", (t/hz) / (bits/1e9)}')
	if [ ${#GW_PIDS[@]} -gt 0 ]; then
		cpu1=$(cpu_ticks "${GW_PIDS[@]}")
		cpu_per_gbit=$(awk -v t=$((cpu1 - cpu0)) -v hz="$HZ" -v bits="$bits" 'BEGIN {printf "%.3f", (t/hz) / (bits/1e9)}')
	fi
	# Both ways at once: one stream each way (iperf3 --bidir), the sum.
	# Not in the CPU figures above. A dataplane that stalls fails here
	# instead of hanging the run.
	: >"$WORK/$variant.bidir"
	for rep in $(seq "$REPS"); do
		in_ns hb iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
		local srv=$! json
		sleep 0.3
		json=$(polled in_ns ha timeout $((DURATION + 30)) iperf3 -c 10.2.0.2 -p 5201 -t "$DURATION" --bidir -J 2>/dev/null) || true
		kill $srv 2>/dev/null || true
		wait $srv 2>/dev/null || true
		local bps
		bps=$(jq -r '(.end.sum_received.bits_per_second + .end.sum_received_bidir_reverse.bits_per_second) // empty' <<<"$json" 2>/dev/null || true)
		if [ -z "$bps" ]; then fail "$variant: iperf3 --bidir gave no result (traffic stalled?)"; continue; fi
		echo "$bps" >>"$WORK/$variant.bidir"
	done
	# RSS under load: the peak over all the runs above, one way and both.
	peak=null
	[ ${#GW_PIDS[@]} -gt 0 ] && peak=$(cat "$WORK/peak" 2>/dev/null || echo null)
	rm -f "$WORK/peak"
	local udp_drops=$(($(udp_buf_errors) - udp0))
	# While the pings run, scripts/hiccup records how late a thread that
	# sleeps 1 ms at a time wakes up: the stalls every program on the
	# machine sees (a VM's host stopping its vCPUs), to read the p99 against.
	"$HICCUP" -d 300s >"$WORK/hiccup.json" &
	local hic=$!
	local lat
	# Each ping's time is kept in $OUT/ping-VARIANT.txt (ping -D: with
	# its timestamp), to see when the slow ones came.
	lat=$(in_ns ha ping -D -c "$PINGS" -i 0.01 -W1 10.2.0.2 | tee "$OUT/ping-$variant.txt" | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | sort -n |
		awk '{a[NR]=$1} END {if (NR==0) print "null null"; else print a[int((NR-1)*0.5)+1], a[int((NR-1)*0.99)+1]}')
	kill -INT $hic 2>/dev/null || true
	wait $hic 2>/dev/null || true
	local hiccup
	hiccup=$(jq -c . "$WORK/hiccup.json" 2>/dev/null || echo null)
	[ -n "$hiccup" ] || hiccup=null
	in_ns hb "$TCPRR" -listen 10.2.0.2:5202 &
	local rrsrv=$!
	local rr
	rr=$(in_ns ha "$TCPRR" -connect 10.2.0.2:5202 -n "$RR" || echo '{}')
	wait $rrsrv 2>/dev/null || true
	if [ "${PERF:-0}" = 1 ] && [ ${#GW_PIDS[@]} -gt 0 ]; then
		wait_for 10 test -s "$OUT/perf-$variant-${#GW_PIDS[@]}.data" || true
		sleep 1
		local f
		for f in "$OUT"/perf-"$variant"-*.data; do
			echo "--- $variant: top of $(basename "$f") (perf report --no-children --sort symbol)"
			perf report -i "$f" --no-children --sort symbol --stdio -g none 2>/dev/null | grep '%' | head -15 || true
		done
	fi
	local after_rss=null
	if [ ${#GW_PIDS[@]} -gt 0 ]; then sleep "$SETTLE"; after_rss=$(rss_kb "${GW_PIDS[@]}"); fi
	local m1 m4 all1 all4 mb allb
	m1=$(median <"$WORK/$variant.1"); m4=$(median <"$WORK/$variant.$STREAMS")
	all1=$(paste -sd, "$WORK/$variant.1"); all4=$(paste -sd, "$WORK/$variant.$STREAMS")
	mb=$(median <"$WORK/$variant.bidir"); allb=$(paste -sd, "$WORK/$variant.bidir")
	jq -nc --arg v "$variant" --argjson m1 "$m1" --argjson m4 "$m4" --argjson r1 "[$all1]" --argjson r4 "[$all4]" \
		--argjson mb "$mb" --argjson rb "[$allb]" \
		--argjson cpu "$cpu_per_gbit" --argjson sys "$sys_per_gbit" --argjson idle "$idle_rss" --argjson peak "$peak" --argjson after "$after_rss" \
		--arg lat "$lat" --argjson rr "$rr" --argjson streams "$STREAMS" --argjson udp "$udp_drops" --argjson hiccup "$hiccup" \
		'{variant:$v, streams:$streams, tcp_1_bps:$m1, tcp_n_bps:$m4, tcp_1_reps:$r1, tcp_n_reps:$r4,
		  tcp_bidir_bps:$mb, tcp_bidir_reps:$rb, udp_buffer_drops:$udp,
		  gw_cpu_s_per_gbit:$cpu, system_cpu_s_per_gbit:$sys, rss_kb:{idle:$idle, load_peak:$peak, after:$after},
		  ping_ms:{p50:($lat|split(" ")[0]|tonumber? // null), p99:($lat|split(" ")[1]|tonumber? // null)}, tcp_rr_us:$rr,
		  machine_hiccup_us:$hiccup}' >>"$RESULTS"
	pass "$variant: $(awk -v a="$m1" 'BEGIN {printf "%.2f", a/1e9}') Gbit/s (1 stream), $(awk -v a="$m4" 'BEGIN {printf "%.2f", a/1e9}') Gbit/s ($STREAMS), $(awk -v a="$mb" 'BEGIN {printf "%.2f", a/1e9}') Gbit/s both ways"
}

plain() {
	say "plain routed path"
	in_ns ga ip route add 10.2.0.0/24 via 198.51.100.2
	in_ns gb ip route add 10.1.0.0/24 via 198.51.100.1
	measure plain
	in_ns ga ip route del 10.2.0.0/24
	in_ns gb ip route del 10.1.0.0/24
}

upstream() {
	say "upstream wireguard-go command ($("$WGGO" --version 2>&1 | head -1))"
	local ka kb
	ka=$(wg genkey); kb=$(wg genkey)
	start wga ga env WG_PROCESS_FOREGROUND=1 "$WGGO" -f wga
	start wgb gb env WG_PROCESS_FOREGROUND=1 "$WGGO" -f wgb
	wait_for 10 test -S /var/run/wireguard/wga.sock
	wait_for 10 test -S /var/run/wireguard/wgb.sock
	in_ns ga wg set wga private-key <(echo "$ka") listen-port 51820 peer "$(echo "$kb" | wg pubkey)" endpoint 198.51.100.2:51820 allowed-ips 10.255.0.2/32,10.2.0.0/24
	in_ns gb wg set wgb private-key <(echo "$kb") listen-port 51820 peer "$(echo "$ka" | wg pubkey)" endpoint 198.51.100.1:51820 allowed-ips 10.255.0.1/32,10.1.0.0/24
	in_ns ga ip addr add 10.255.0.1/24 dev wga; in_ns ga ip link set wga mtu 1420 up
	in_ns gb ip addr add 10.255.0.2/24 dev wgb; in_ns gb ip link set wgb mtu 1420 up
	in_ns ga ip route add 10.2.0.0/24 dev wga
	in_ns gb ip route add 10.1.0.0/24 dev wgb
	measure upstream "$PID_wga" "$PID_wgb"
	stop wga; stop wgb
}

# gate MODE: Gate's dataplane on both gateways, driven by a controller.
# "gate": gateway role, firewall guard (forward rules, no deny-by-default);
# "gate-full": the full gateway ruleset (strict input and forward, masquerade
# to the internet, MSS clamp), as an appliance runs it.
gate_variant() {
	local variant=$1 fw=guard extra=() mem=() envs=() extra_up=() pin=0 opt
	# The options after "gate" combine: gate-full-p1 is the full ruleset
	# with GOMAXPROCS=1.
	for opt in $(echo "${variant#gate}" | tr '-' ' '); do
		case $opt in
		# full: the appliance's whole ruleset.
		full) fw=strict extra=(--masquerade-internet) ;;
		# 256m: the appliance's memory limit, to show what it costs and saves.
		256m) mem=(--memory-limit 256MiB) ;;
		# p1: one P per gateway process, fewer thread hand-offs.
		p1) envs+=(GOMAXPROCS=1) ;;
		# gcN: GOGC=N for each gateway (off: no GC), a GC tuning lever.
		gc*) envs+=(GOGC="${opt#gc}") ;;
		# pin: CPU placement, each gateway process on a core of its own
		# (gwA on CPU 0, gwB on CPU 1, taskset; Go then runs one P).
		pin) pin=1 ;;
		# bN: another bound on the dataplane's packet buffers.
		b[0-9]*) extra_up=(--buffers "${opt#b}") ;;
		*) fail "unknown option $opt in variant $variant"; return ;;
		esac
	done
	say "Gate ($variant)"
	start ctl ga "$GATE" controller --state "$WORK/ctl-$variant" --listen 198.51.100.1:8443
	wait_for 20 test -s "$WORK/ctl-$variant/controller.url"
	admin() { ip netns exec "$(ns ga)" env GATE_CONTROLLER_STATE="$WORK/ctl-$variant" "$GATE" "$@"; }
	wait_for 20 admin network list
	local net
	net=$(admin network create --name bench --cidr 10.255.0.0/24 --json | jq -r .id)
	admin network route add "$net" 10.1.0.0/24 via 10.255.0.1 >/dev/null
	admin network route add "$net" 10.2.0.0/24 via 10.255.0.2 >/dev/null
	local cpu=0 place=()
	for g in ga gb; do
		[ "$pin" = 1 ] && place=(taskset -c $cpu) && cpu=$((cpu + 1))
		start "gate_$g" $g "${place[@]}" env "${envs[@]}" "$GATE" up --state "$WORK/$variant-$g" --socket "$WORK/$variant-$g.sock" --firewall $fw --allow-input tcp/8443 "${mem[@]}" "${extra_up[@]}"
		wait_for 20 env GATE_SOCKET="$WORK/$variant-$g.sock" "$GATE" status
	done
	in_ns ga ip route add default via 198.51.100.2 2>/dev/null || true
	GATE_SOCKET="$WORK/$variant-ga.sock" "$GATE" join "$(admin token create "$net" --allow --address 10.255.0.1)" --serve 10.1.0.0/24 --lan lan "${extra[@]}" >/dev/null
	local t0 t1=0 what
	if [ "$variant" = gate ]; then
		# A pre-allowed token: join -> first packet through the tunnel.
		what=join_to_first_packet_ms
		t0=$(date +%s%N)
		GATE_SOCKET="$WORK/$variant-gb.sock" "$GATE" join "$(admin token create "$net" --allow --address 10.255.0.2)" --serve 10.2.0.0/24 --lan lan "${extra[@]}" >/dev/null
	else
		# A join that waits for the admin (its token only promises the
		# address, a route's next hop, which the pool keeps free); the
		# admin's allow -> first packet.
		what=allow_to_first_packet_ms
		GATE_SOCKET="$WORK/$variant-gb.sock" "$GATE" join "$(admin token create "$net" --address 10.255.0.2)" --serve 10.2.0.0/24 --lan lan "${extra[@]}" >/dev/null
		local node
		node=$(GATE_SOCKET="$WORK/$variant-gb.sock" "$GATE" status --json | jq -r .node_id)
		t0=$(date +%s%N)
		admin member allow "$net" "$node" >/dev/null # it has 10.255.0.2 from its token
	fi
	wait_for 20 in_ns ha ping -c1 -W0.2 10.2.0.2 && t1=$(date +%s%N)
	local first_ms=$(( (t1 - t0) / 1000000 ))
	note "${what%_ms}: $first_ms ms"
	measure "$variant" "$PID_gate_ga" "$PID_gate_gb"
	# A route change on the controller -> in the other gateway's kernel.
	t0=$(date +%s%N)
	admin network route add "$net" 10.3.0.0/24 via 10.255.0.2 >/dev/null
	local route_ms=null
	wait_for 10 sh -c "ip -n $(ns ga) route show 10.3.0.0/24 | grep -q ." && route_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	note "route change -> every member's kernel: $route_ms ms"
	jq -nc --arg v "$variant" --arg what "$what" --argjson first "$first_ms" --argjson route "$route_ms" \
		'{variant:$v, ($what):$first, route_change_ms:$route}' >>"$WORK/control.jsonl"
	stop gate_ga; stop gate_gb; stop ctl
	in_ns ga ip route del default 2>/dev/null || true
}

# How busy the machine is before we start: other load lowers tunnel figures
# by a quarter, so a dirty run is flagged in the table and the JSON.
idle0=$(busy_ticks_all)
sleep 2
idle1=$(busy_ticks_all)
BACKGROUND=$(awk -v a="$idle0" -v b="$idle1" 'BEGIN {split(a,x," "); split(b,y," "); printf "%.3f", (y[1]-x[1])/((y[2]-x[2]) > 0 ? (y[2]-x[2]) : 1)}')
DIRTY=$(awk -v b="$BACKGROUND" 'BEGIN {print (b > 0.10) ? "true" : "false"}')
note "machine busy before the run: $(awk -v b="$BACKGROUND" 'BEGIN {printf "%.0f%%", b*100}')$( [ "$DIRTY" = true ] && echo ' (DIRTY: other load; figures will be low)')"

say "crypto-bound limit (ChaCha20-Poly1305, 1420-byte packets, one core)"
(cd "$ROOT" && go test -run '^$' -bench ChaCha20Poly1305 -benchtime "${CRYPTO_BENCHTIME:-2s}" -count "$REPS" ./services/tunnel/) >"$WORK/crypto.txt" 2>&1 || { cat "$WORK/crypto.txt"; fail "crypto benchmark"; }
seal=$(awk '/Seal/ {print $(NF-1)}' "$WORK/crypto.txt" | median)
open=$(awk '/Open/ {print $(NF-1)}' "$WORK/crypto.txt" | median)
note "seal $seal MB/s, open $open MB/s per core"

for v in $VARIANTS; do
	case $v in
	plain) plain ;;
	upstream) upstream ;;
	gate|gate-*) gate_variant "$v" ;;
	*) fail "unknown variant $v" ;;
	esac
done

say "results ($(nproc) cores, $(uname -r), DURATION=${DURATION}s REPS=$REPS)"
load=$(cut -d' ' -f1-3 /proc/loadavg)
jq -s --argjson seal "${seal:-null}" --argjson open "${open:-null}" --arg load "$load" --arg kernel "$(uname -r)" \
	--argjson cores "$(nproc)" --argjson duration "$DURATION" --argjson reps "$REPS" \
	--argjson background "$BACKGROUND" --argjson dirty "$DIRTY" '
	(map(select(.variant=="upstream"))[0].tcp_1_bps) as $up |
	(map(select(.variant=="plain"))[0].tcp_1_bps) as $plain |
	{machine:{cores:$cores, kernel:$kernel, loadavg_at_end:$load, busy_before:$background, dirty:$dirty}, duration_s:$duration, reps:$reps,
	 crypto_mb_s:{seal:$seal, open:$open},
	 crypto_bound_bps: (if $seal and $open then (1/(1/$seal + 1/$open)) * 8e6 else null end),
	 variants: map(. + {vs_upstream: (if $up then .tcp_1_bps/$up else null end), vs_plain: (if $plain then .tcp_1_bps/$plain else null end)})}' \
	"$RESULTS" >"$OUT/bench.json.tmp"
jq --slurpfile control "$WORK/control.jsonl" '. + {control_plane: $control}' "$OUT/bench.json.tmp" >"$OUT/bench.json"
rm -f "$OUT/bench.json.tmp"
jq -r '
	["variant","Gbit/s 1","Gbit/s N","both ways","x upstream","x plain","gw CPU s/Gbit","sys CPU s/Gbit","RSS idle MiB","RSS load MiB","RSS after MiB","ping p50/p99 ms","TCP RR p50/p99 us","hiccup p99/max ms","UDP buf drops"],
	(.variants[] | [.variant, (.tcp_1_bps/1e9*100|round/100), (.tcp_n_bps/1e9*100|round/100),
		(.tcp_bidir_bps // "-" | if type=="number" then (./1e9*100|round/100) else . end),
		(.vs_upstream // "-" | if type=="number" then (.*100|round/100) else . end),
		(.vs_plain // "-" | if type=="number" then (.*100|round/100) else . end),
		(.gw_cpu_s_per_gbit // "-"), .system_cpu_s_per_gbit,
		(.rss_kb.idle // "-" | if type=="number" then (./1024|round) else . end),
		(.rss_kb.load_peak // "-" | if type=="number" then (./1024|round) else . end),
		(.rss_kb.after // "-" | if type=="number" then (./1024|round) else . end),
		"\(.ping_ms.p50)/\(.ping_ms.p99)", "\(.tcp_rr_us.p50_us // "-")/\(.tcp_rr_us.p99_us // "-")",
		(.machine_hiccup_us // {} | "\((.p99_us // 0)/1000*100|round/100)/\((.max_us // 0)/1000*100|round/100)"),
		(.udp_buffer_drops // "-")]) | @tsv' "$OUT/bench.json" | column -t -s $'\t'
jq -r '.control_plane[] | "\(.variant): " + ([to_entries[] | select(.key != "variant") | "\(.key)=\(.value)"] | join("  "))' "$OUT/bench.json"
echo "crypto-bound limit: $(jq -r '(.crypto_bound_bps // 0)/1e9*100|round/100' "$OUT/bench.json") Gbit/s per core (seal+open of every packet on one core)"
if [ "${BOOT_BENCH:-1}" = 1 ]; then
	say "image size and boot time (QEMU TCG)"
	if REPS=$REPS OUT="$OUT" "$ROOT/scripts/bench-boot.sh"; then pass "boot benchmark"; else fail "boot benchmark"; fi
fi
[ "$DIRTY" = true ] && echo "DIRTY RUN: the machine was $(awk -v b="$BACKGROUND" 'BEGIN {printf "%.0f%%", b*100}') busy before it started"
echo "JSON: $OUT/bench.json"

# --- controller scale (issue 6, item 5) ---
# N simulated members (API clients with their own identities and TLS
# connections, no dataplane) join one auto-allow network and hold
# long-polls; scripts/ctlbench measures the join storm, the controller's
# RSS, and the bytes and time one change takes to reach all. It runs in a
# namespace of its own, on its loopback.
if [ -n "$CONTROLLER_SIZES" ]; then
	say "controller scale: ${CONTROLLER_SIZES// /, } members"
	note "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
	mkns ctl
	if in_ns ctl "$CTLBENCH" -gate "$GATE" -n "${CONTROLLER_SIZES// /,}" -out "$OUT/controller.json" -workdir "$WORK/ctlbench"; then
		pass "controller scale (${CONTROLLER_SIZES// /, } members)"
	else
		fail "controller scale (${CONTROLLER_SIZES// /, } members)"
	fi
	if [ -n "$CONTROLLER_LIMIT_SIZES" ]; then
		say "controller scale with --memory-limit $CONTROLLER_LIMIT: ${CONTROLLER_LIMIT_SIZES// /, } members"
		if in_ns ctl "$CTLBENCH" -gate "$GATE" -n "${CONTROLLER_LIMIT_SIZES// /,}" -ctl-arg=--memory-limit -ctl-arg="$CONTROLLER_LIMIT" \
			-out "$OUT/controller-limit.json" -workdir "$WORK/ctlbench-limit"; then
			pass "controller scale with --memory-limit $CONTROLLER_LIMIT"
		else
			fail "controller scale with --memory-limit $CONTROLLER_LIMIT"
		fi
	fi
fi
# The controller on PostgreSQL (issue 17): the same runs with the
# database in a PostgreSQL that ctlbench starts for each (its own
# directory on disk, fsync and synchronous_commit on, as in production;
# stopped and removed after), then with CONTROLLER_REPLICAS controller
# processes on it, the members split between them and every change made
# through the first (ctlbench reports each replica's members apart).
if [ -n "$CONTROLLER_PG_SIZES" ]; then
	[ -e "/run/netns/$(ns ctl)" ] || mkns ctl
	pg_runs=("replicas:-replicas $CONTROLLER_REPLICAS")
	[ "$CONTROLLER_PG_SINGLE" = 1 ] && pg_runs=("single:-replicas 1" "${pg_runs[@]}")
	for run in "${pg_runs[@]}"; do
		name=${run%%:*} args=${run#*:}
		json=$OUT/controller-postgres.json
		[ "$name" = replicas ] && json=$OUT/controller-postgres-replicas.json
		say "controller scale on PostgreSQL ($args): ${CONTROLLER_PG_SIZES// /, } members"
		note "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
		# shellcheck disable=SC2086 # args is two words
		if in_ns ctl "$CTLBENCH" -gate "$GATE" -db postgres $args -n "${CONTROLLER_PG_SIZES// /,}" -out "$json" -workdir "$WORK/ctlbench-pg-$name"; then
			pass "controller scale on PostgreSQL ($args)"
		else
			fail "controller scale on PostgreSQL ($args)"
		fi
	done
fi
summary
