# Tributary. `make demo` runs a hub and three simulated edges (`make demo
# CLUSTER=3`: three hubs in one cluster); `make test` runs every test. See
# README.md.
GO        ?= go
VERSION   ?= dev
COMMIT    := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X github.com/tributary-edge/tributary/internal/version.Version=$(VERSION) -X github.com/tributary-edge/tributary/internal/version.Commit=$(COMMIT)
export CGO_ENABLED = 1

.PHONY: build test bench fuzz demo clean
FUZZTIME ?= 60s
CLUSTER  ?= 1

build:
	@mkdir -p bin
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

test: build
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

# End-to-end throughput against JetStream publishing in the same run, query
# figures over 1,000,000 stored events, and a 3-hub cluster beside a single hub
# (throughput and failover time).
bench: build
	$(GO) run ./bench --bin bin

demo: build
	CLUSTER='$(CLUSTER)' ./scripts/demo.sh

# Each fuzz target for FUZZTIME (go test -fuzz runs one target at a time);
# see scripts/fuzz.sh.
fuzz:
	GO='$(GO)' ./scripts/fuzz.sh '$(FUZZTIME)'

clean:
	rm -rf bin dist demo-data

# Release artifacts and the ARM checks; see deploy/arm/README.md.
.PHONY: release arm-setup arm-smoke

# make release VERSION=x.y.z: static binaries for linux/amd64, arm64 and arm/v7
# in dist/tributary_<version>_linux_<arch>.tar.gz, plus dist/SHA256SUMS.
release:
	scripts/release.sh '$(VERSION)'

# Installs the Debian cross compilers, qemu-user and file(1) when missing.
arm-setup:
	deploy/arm/setup.sh

# Cross-builds the ARM edge agents and an amd64 hub, checks each binary, and
# runs the ARM agents under qemu-user against the hub (see deploy/smoke_test.go).
arm-smoke:
	VERSION='$(VERSION)' scripts/release.sh build bin/smoke arm64 edge-agent
	VERSION='$(VERSION)' scripts/release.sh build bin/smoke armv7 edge-agent
	VERSION='$(VERSION)' scripts/release.sh build bin/smoke amd64 hub
	TRIBUTARY_SMOKE_BIN='$(CURDIR)/bin/smoke' TRIBUTARY_SMOKE_VERSION='$(VERSION)' \
		$(GO) test -count=1 -timeout 10m -v -run 'TestARMSmoke' ./deploy/
