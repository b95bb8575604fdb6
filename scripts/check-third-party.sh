#!/usr/bin/env bash
# Checks that third_party/wireguard-go is the upstream module at the version
# go.mod requires plus exactly third_party/wireguard-go.patch, nothing else.
# With -update it rewrites the patch file from the tree (after a deliberate
# change to the copy). make lint runs the check.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
mod=golang.zx2c4.com/wireguard
ver=$(go list -m -f '{{.Version}}' "$mod")
dir=$(GOFLAGS=-mod=mod go mod download -json "$mod@$ver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$dir" ] || { echo "check-third-party: could not download $mod@$ver" >&2; exit 1; }
got=$(cd "$(dirname "$dir")" && diff -ruN "$(basename "$dir")" "$ROOT/third_party/wireguard-go" |
	sed -e "s|^--- $(basename "$dir")/\([^[:space:]]*\).*|--- a/\1|" -e "s|^+++ $ROOT/third_party/wireguard-go/\([^[:space:]]*\).*|+++ b/\1|" -e '/^diff -ruN /d' || true)
if [ "${1:-}" = -update ]; then
	printf '%s\n' "$got" >third_party/wireguard-go.patch
	echo "check-third-party: wrote third_party/wireguard-go.patch"
	exit 0
fi
if ! diff -u third_party/wireguard-go.patch <(printf '%s\n' "$got"); then
	echo "check-third-party: third_party/wireguard-go differs from $mod@$ver + third_party/wireguard-go.patch (see above)" >&2
	exit 1
fi
echo "check-third-party: third_party/wireguard-go = $mod@$ver + wireguard-go.patch ($(grep -c '^+++ ' third_party/wireguard-go.patch) file)"
