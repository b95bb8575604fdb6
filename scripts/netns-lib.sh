# Shared helpers for Gate's namespace scenarios. Sourced, not run.
#
# Every namespace made here carries the run's prefix and is deleted on exit;
# traffic goes only between namespaces this run created.

set -euo pipefail

GATE=${GATE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/bin/gate}
RUN=${RUN:-g$$}                 # namespace prefix of this run
WORK=${WORK:-$(mktemp -d /tmp/gate-seed.XXXXXX)}
VERBOSE=${VERBOSE:-0}
PASSED=0
FAILED=0
NAMESPACES=()
PIDS=()

say()  { printf '\033[1m== %s\033[0m\n' "$*"; }
note() { printf '   %s\n' "$*"; }

pass() { PASSED=$((PASSED + 1)); printf '   ok   %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf '   FAIL %s\n' "$*"; }

# check DESC CMD...: CMD must succeed.
check() {
	local desc=$1; shift
	if "$@" >"$WORK/last.out" 2>&1; then pass "$desc"; else fail "$desc"; sed 's/^/        /' "$WORK/last.out" | tail -20; fi
}

# refute DESC CMD...: CMD must fail.
refute() {
	local desc=$1; shift
	if "$@" >"$WORK/last.out" 2>&1; then fail "$desc (it succeeded)"; sed 's/^/        /' "$WORK/last.out" | tail -20; else pass "$desc"; fi
}

# expect_error DESC PATTERN CMD...: CMD must fail with PATTERN in its output.
expect_error() {
	local desc=$1 pat=$2; shift 2
	if "$@" >"$WORK/last.out" 2>&1; then
		fail "$desc (it succeeded)"
	elif grep -qiE -- "$pat" "$WORK/last.out"; then
		pass "$desc: $(head -c 160 "$WORK/last.out" | tr '\n' ' ')"
	else
		fail "$desc (error does not match /$pat/)"; sed 's/^/        /' "$WORK/last.out"
	fi
}

# wait_for SECONDS CMD...: poll CMD every 100 ms until it succeeds.
wait_for() {
	local secs=$1; shift
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge $deadline ]; then
			"$@" # once more, with its output, for the log
			return 1
		fi
		sleep 0.1
	done
}

ns() { echo "$RUN-$1"; }
in_ns() { local n; n=$(ns "$1"); shift; ip netns exec "$n" "$@"; }

mkns() {
	local n; n=$(ns "$1")
	ip netns add "$n"
	NAMESPACES+=("$n")
	ip -n "$n" link set lo up
}

# link A IFA ADDRA B IFB ADDRB: a veth between namespaces A and B.
link() {
	ip link add "$2" netns "$(ns "$1")" type veth peer name "$5" netns "$(ns "$4")"
	ip -n "$(ns "$1")" link set "$2" up
	ip -n "$(ns "$4")" link set "$5" up
	[ "$3" = - ] || ip -n "$(ns "$1")" addr add "$3" dev "$2"
	[ "$6" = - ] || ip -n "$(ns "$4")" addr add "$6" dev "$5"
}

# bridge NS BR: a bridge inside namespace NS; plug NS BR IF attaches IF.
bridge() { ip -n "$(ns "$1")" link add "$2" type bridge; ip -n "$(ns "$1")" link set "$2" up; }
plug() { ip -n "$(ns "$1")" link set "$3" master "$2"; }

# start NAME NS CMD...: run CMD in the background inside NS, logging to WORK.
start() {
	local name=$1 n=$2; shift 2
	ip netns exec "$(ns "$n")" "$@" >"$WORK/$name.log" 2>&1 &
	PIDS+=($!)
	eval "PID_$name=$!"
}

stop() {
	local pid; pid=$(eval echo "\${PID_$1:-}")
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	eval "PID_$1="
}

# cleanup [RC]: ends what this run started and deletes its namespaces;
# keeps the logs when a check failed or RC (default: the last command's
# status) is not 0. Traps that do more first pass the status they saw:
# under set -e a trap that restores it with "(exit $rc)" exits right
# there, before cleaning up.
cleanup() {
	local rc=${1:-$?}
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	for n in "${NAMESPACES[@]}"; do ip netns del "$n" 2>/dev/null || true; done
	if [ "$FAILED" -ne 0 ] || [ $rc -ne 0 ]; then
		echo "logs kept in $WORK"
	else
		rm -rf "$WORK"
	fi
}

require_tools() {
	local missing=()
	for t in ip nft ping nc jq sha256sum timeout; do command -v "$t" >/dev/null || missing+=("$t"); done
	if [ ${#missing[@]} -ne 0 ]; then
		echo "missing tools: ${missing[*]} (make deps installs them)" >&2
		exit 1
	fi
	[ "$(id -u)" = 0 ] || { echo "this scenario needs root (network namespaces)" >&2; exit 1; }
	[ -x "$GATE" ] || { echo "no gate binary at $GATE (run make)" >&2; exit 1; }
}

summary() {
	echo
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
}
