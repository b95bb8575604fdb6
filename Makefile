# Gate's build. `make help` lists the targets.
SHELL := /bin/bash
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO ?= go
export CGO_ENABLED := 0
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN := bin/gate
# Debian packages the tests and scenarios use.
DEBS := iproute2 nftables iputils-ping netcat-openbsd jq procps tmux dosfstools mtools genisoimage dnsmasq-base util-linux postgresql chromium
TOOLS := ip nft ping nc jq sysctl tmux mkfs.vfat mcopy genisoimage dnsmasq unshare nsenter psql chromium

.PHONY: all build run seed test unit deps lint fuzz clean help bench bench-tools faults crashtest attack failover replicas web-tools web-test web-screenshots

all: build ## build bin/gate (static)

build: ## build the static gate binary
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./appliance

run: run-image ## the main job: build the appliance image and boot it in QEMU, console in this terminal (quit: Ctrl-a x)

seed: deps build ## the seed scenario in network namespaces, through the real CLI (root)
	scripts/seed.sh

test: deps build lint bench-tools image crashtest web-tools ## all tests: lint, unit and kernel tests (root, in namespaces), QEMU boots, a bench smoke run, the seed scenario, a faults slice
	$(GO) test -count=1 ./...
	scripts/boot-test.sh direct
	scripts/boot-test.sh all
	scripts/net-test.sh all
	scripts/net-test.sh nocloud
	scripts/tui-test.sh
	scripts/console-qemu-test.sh
	BENCH_SMOKE=1 OUT=out/bench-smoke scripts/bench.sh
	scripts/seed.sh
	SHOTS=out/web scripts/web-test.sh
	TRIALS=1 OUT=out/failover-smoke.json scripts/failover.sh
	TRIALS=3 OUT=out/replicas-smoke.json scripts/replicas.sh
	CTL_TRIALS=15 DAEMON_TRIALS=3 OUT=out/faults-smoke scripts/fault-test.sh

unit: ## tests only, no scenario
	$(GO) test -count=1 ./...

deps: ## install the Debian packages the tests need (root)
	@missing=""; for t in $(TOOLS); do command -v $$t >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
		echo "installing $(DEBS)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBS) >/dev/null; \
	fi

BENCH_DEBS := iperf3 wireguard-tools
bench-tools: deps ## build what make bench compares against (upstream wireguard-go, same version as Gate embeds) and its tools
	@command -v iperf3 >/dev/null && command -v wg >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BENCH_DEBS) >/dev/null; }
	@# The unpatched upstream module at the version third_party/wireguard-go
	@# is based on: "go install pkg@version" ignores go.mod's replace.
	GOBIN=$(CURDIR)/bin/upstream $(GO) install -trimpath golang.zx2c4.com/wireguard@$$($(GO) list -m -f '{{.Version}}' golang.zx2c4.com/wireguard)
	mv bin/upstream/wireguard bin/wireguard-go && rmdir bin/upstream
	$(GO) build -trimpath -o bin/tcprr ./scripts/tcprr
	$(GO) build -trimpath -o bin/hiccup ./scripts/hiccup
	$(GO) build -trimpath -o bin/ctlbench ./scripts/ctlbench

bench: build bench-tools image crashtest ## benchmarks: Gate vs upstream wireguard-go vs the plain path; table + out/bench/bench.json; then make faults, make failover, make replicas and the web console's page cost (root)
	scripts/bench.sh
	scripts/fault-test.sh
	TRIALS=$(FAILOVER_TRIALS) OUT=out/failover.json scripts/failover.sh
	TRIALS=$(REPLICA_TRIALS) OUT=out/replicas.json scripts/replicas.sh
	set -o pipefail; $(GO) test -run '^$$' -bench MembersPage -benchtime 50x ./services/webconsole/ | grep -E '^(Benchmark|ok)'

FAILOVER_TRIALS ?= 20
failover: deps build ## two gateways for one subnet: gw1 killed, its LAN cut, its probe failing, killed with the controller down, FAILOVER_TRIALS=20 times each; p50/p99 to out/failover.json (root)
	mkdir -p out
	TRIALS=$(FAILOVER_TRIALS) OUT=out/failover.json scripts/failover.sh

REPLICA_TRIALS ?= 100
replicas: deps build ## the controller as two replicas on one PostgreSQL: one killed -9 during admin writes and joins, REPLICA_TRIALS=100 times; lost acknowledged writes, member move p50/p99, the longest gap in member traffic to out/replicas.json (root)
	mkdir -p out
	TRIALS=$(REPLICA_TRIALS) OUT=out/replicas.json scripts/replicas.sh

web-tools: ## bin/webdrive, the browser-driving admin of scripts/web-test.sh
	$(GO) build -trimpath -o bin/webdrive ./scripts/webdrive

web-test: deps build web-tools ## the seed scenario with its admin in the web console (headless Chromium), the gates in namespaces; screenshots to out/web (root)
	mkdir -p out/web
	SHOTS=out/web scripts/web-test.sh

web-screenshots: deps build web-tools ## make the README's web console screenshots (services/webconsole/screenshots) from a web-test run (root)
	mkdir -p services/webconsole/screenshots
	SHOTS=services/webconsole/screenshots scripts/web-test.sh
	rm -f services/webconsole/screenshots/{net,join,done}

crashtest: ## bin/crashtest, the controller's kill -9 and full-disk driver (scripts/crashtest)
	$(GO) build -trimpath -o bin/crashtest ./scripts/crashtest

CTL_TRIALS ?= 100
DAEMON_TRIALS ?= 10
faults: deps build crashtest ## kill -9 the controller mid-write (CTL_TRIALS=100) and the daemon mid-reconcile (DAEMON_TRIALS=10), full state partitions; tables + out/faults/*.json (root)
	CTL_TRIALS=$(CTL_TRIALS) DAEMON_TRIALS=$(DAEMON_TRIALS) scripts/fault-test.sh

lint: ## gofmt, go vet, staticcheck, third_party/ is upstream + its patch
	@files=$$(find . -name '*.go' -not -path './out/*'); test -z "$$(gofmt -l $$files)" || { gofmt -l $$files; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	scripts/check-third-party.sh

attack: deps ## the attack suite alone: every hostile-input test (TestAttack*: members, strangers, metadata and DHCP servers) (root)
	$(GO) test -count=1 -run Attack ./...

FUZZTIME ?= 30s
fuzz: ## run every fuzz target for FUZZTIME each
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep ^Fuzz); do \
			echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

clean: ## remove build outputs
	rm -rf bin out

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# --- image (issue 3) ---
# Debian packages for the kernel, the initramfs, the disk image and the QEMU
# boot tests.
IMAGE_DEBS := apt-utils dpkg kmod ca-certificates fdisk dosfstools mtools e2fsprogs \
	syslinux syslinux-common systemd-boot-efi qemu-utils qemu-system-x86 ovmf
IMAGE_TOOLS := dpkg depmod sfdisk mkfs.vfat mkfs.ext4 mcopy mmd syslinux qemu-img qemu-system-x86_64
IMAGE_FILES := /usr/lib/syslinux/mbr/gptmbr.bin /usr/lib/systemd/boot/efi/systemd-bootx64.efi \
	/usr/share/OVMF/OVMF_CODE_4M.fd /etc/ssl/certs/ca-certificates.crt
KERNEL_DIR := out/kernel
INITRD := out/initramfs.cpio.gz

.PHONY: image-deps kernel initramfs image boot-test net-test run-image

image-deps: ## install the Debian packages the image and its boot tests need (root)
	@missing=""; for t in $(IMAGE_TOOLS); do command -v $$t >/dev/null || missing=1; done; \
	for f in $(IMAGE_FILES); do [ -f $$f ] || missing=1; done; \
	if [ -n "$$missing" ]; then \
		echo "installing $(IMAGE_DEBS)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(IMAGE_DEBS) >/dev/null; \
	fi

kernel: image-deps ## Debian's cloud kernel and modules into out/kernel (resolved through linux-image-cloud-amd64, cached)
	scripts/fetch-kernel.sh $(KERNEL_DIR)

initramfs: build kernel ## out/initramfs.cpio.gz: gate as /init, kernel modules, CA certificates
	$(GO) run ./initramfs/cmd/mkinitramfs -init $(BIN) -kernel $(KERNEL_DIR) -version $(VERSION) -o $(INITRD)

image: initramfs ## out/gate.raw, gate.raw.gz (DigitalOcean), gate.qcow2, gate.vmdk (AWS), manifest.json
	$(GO) run ./image/cmd/mkimage -kernel $(KERNEL_DIR) -initrd $(INITRD) -version $(VERSION) -out out

boot-test: image ## boot in QEMU (TCG, no network): kernel+initrd, then the disk with BIOS and UEFI
	scripts/boot-test.sh direct
	scripts/boot-test.sh all

net-test: deps image ## QEMU with networking (taps into namespaces): DHCP from dnsmasq and renewal; two preseeded appliances, a controller, traffic over their tunnel, a reboot
	scripts/net-test.sh all

run-image: image ## boot the image in QEMU, serial console in this terminal (quit: Ctrl-a x)
	scripts/run-image.sh
# --- end image ---
