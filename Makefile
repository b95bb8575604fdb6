# Gate's build. `make help` lists the targets.
SHELL := /bin/bash
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO ?= go
export CGO_ENABLED := 0
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN := bin/gate
# Debian packages the tests and scenarios use.
DEBS := iproute2 nftables iputils-ping netcat-openbsd jq procps
TOOLS := ip nft ping nc jq sysctl

.PHONY: all build run seed test unit deps lint fuzz clean help

all: build ## build bin/gate (static)

build: ## build the static gate binary
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./appliance

run: deps build ## the main job: the seed scenario in network namespaces, step by step (root)
	VERBOSE=1 scripts/seed.sh

seed: deps build ## the seed scenario as a test (root)
	scripts/seed.sh

test: deps build lint ## all tests: lint, unit and kernel tests (root, in namespaces), the seed scenario
	$(GO) test -count=1 ./...
	scripts/seed.sh

unit: ## tests only, no scenario
	$(GO) test -count=1 ./...

deps: ## install the Debian packages the tests need (root)
	@missing=""; for t in $(TOOLS); do command -v $$t >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
		echo "installing $(DEBS)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBS) >/dev/null; \
	fi

lint: ## gofmt, go vet, staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

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
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'
