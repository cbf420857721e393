# Tributary. `make demo` runs a hub and three simulated edges; `make test` runs
# every test. See README.md.
GO        ?= go
VERSION   ?= dev
COMMIT    := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X github.com/tributary-edge/tributary/internal/version.Version=$(VERSION) -X github.com/tributary-edge/tributary/internal/version.Commit=$(COMMIT)
export CGO_ENABLED = 1

.PHONY: build test bench fuzz demo clean
FUZZTIME ?= 60s

build:
	@mkdir -p bin
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

test: build
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

# End-to-end throughput against JetStream publishing in the same run, and query
# figures over 1,000,000 stored events.
bench: build
	$(GO) run ./bench --bin bin

demo: build
	./scripts/demo.sh

# Each fuzz target for FUZZTIME (go test -fuzz runs one target at a time).
fuzz:
	@set -e; for t in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$t/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "fuzz $$t $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$t; \
	  done; done

clean:
	rm -rf bin dist demo-data
