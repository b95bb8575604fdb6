#!/usr/bin/env bash
# fetch-kernel.sh: get Debian's cloud kernel into out/kernel/ for the image.
#
# The exact package is resolved through the metapackage linux-image-cloud-amd64
# at build time and never pinned: Debian removes a superseded ABI package from
# its archive, so a hard pin would break a later build. The version used is
# recorded in out/kernel/VERSION (kernel release, e.g. 6.1.0-56-cloud-amd64)
# and out/kernel/PACKAGE (package name and version), which the image manifest
# copies.
#
# The package ships no modules.dep, so `depmod -b` makes one. The result is
# cached: a second run with the same resolved package does nothing.
#
# Usage: scripts/fetch-kernel.sh [OUTDIR]   (default out/kernel)
set -euo pipefail

out=${1:-out/kernel}
meta=linux-image-cloud-amd64

need() { command -v "$1" >/dev/null || { echo "fetch-kernel: $1 not found (make kernel installs it)" >&2; exit 1; }; }
need apt-get; need apt-cache; need dpkg; need depmod

resolve() {
	apt-cache depends "$meta" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

pkg=$(resolve)
if [ -z "$pkg" ]; then
	# No package lists yet (fresh machine): read them once.
	apt-get update -qq
	pkg=$(resolve)
fi
[ -n "$pkg" ] || { echo "fetch-kernel: cannot resolve $meta to a kernel package" >&2; exit 1; }
release=${pkg#linux-image-}
pkgver=$(apt-cache policy "$pkg" | awk '/Candidate:/ { print $2 }')

if [ -f "$out/PACKAGE" ] && [ "$(cat "$out/PACKAGE")" = "$pkg $pkgver" ] &&
	[ -f "$out/vmlinuz" ] && [ -f "$out/lib/modules/$release/modules.dep" ]; then
	echo "fetch-kernel: $pkg $pkgver (cached in $out)"
	exit 0
fi

echo "fetch-kernel: $meta -> $pkg $pkgver"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# As root, apt drops to the _apt user, which cannot write into our
# private temporary directory: download as root there instead.
(cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$pkgver")
deb=$(ls "$tmp"/*.deb)
dpkg -x "$deb" "$tmp/root"

# Debian puts modules under /lib/modules (bookworm) or /usr/lib/modules
# (trixie and later, merged /usr).
moddir=""
for d in "$tmp/root/lib/modules/$release" "$tmp/root/usr/lib/modules/$release"; do
	[ -d "$d" ] && moddir=$d
done
[ -n "$moddir" ] || { echo "fetch-kernel: no modules for $release in $deb" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out/lib/modules"
cp "$tmp/root/boot/vmlinuz-$release" "$out/vmlinuz"
cp "$tmp/root/boot/config-$release" "$out/config"
cp -a "$moddir" "$out/lib/modules/$release"
depmod -b "$out" "$release"
echo "$release" >"$out/VERSION"
echo "$pkg $pkgver" >"$out/PACKAGE"
echo "fetch-kernel: $release in $out ($(du -sh "$out/vmlinuz" | cut -f1) vmlinuz, $(find "$out/lib/modules" -name '*.ko*' | wc -l) modules)"
