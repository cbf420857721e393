# Tributary. `make demo` runs a hub and three simulated edges; `make test` runs
# every test. See README.md.
GO        ?= go
VERSION   ?= dev
COMMIT    := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X github.com/tributary-edge/tributary/internal/version.Version=$(VERSION) -X github.com/tributary-edge/tributary/internal/version.Commit=$(COMMIT)
export CGO_ENABLED = 1

.PHONY: build test bench fuzz demo clean

build:
	@mkdir -p bin
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

test: build
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

clean:
	rm -rf bin dist demo-data
