#!/usr/bin/env bash
# Measures the edge agent's footprint and the uplink's bytes on the wire, the
# figures README.md and docs/memory.md quote (bench/uplink.go does the work):
#
#   scripts/edge-memory.sh [BENCH FLAGS]
#       amd64: bytes per event for zstd, none and the peer (50,000 bench
#       events), then the agent's resident set connected and idle, while a
#       1 GiB backlog drains, and a minute after the drain.
#   scripts/edge-memory.sh arm64 [BENCH FLAGS]
#       the same, then the arm64 agent idle under qemu-aarch64 (cross-built as
#       the release is; `make arm-setup` installs the compilers and qemu).
#
# BENCH FLAGS go to every run: --uplink-backlog 256MiB, --uplink-rest 2m,
# --uplink-args "--memory-limit 0", --uplink-env GOGC=50 (see go run ./bench --help).
# It takes about 6 minutes on 2 cores, more under qemu; nothing is left behind.
set -euo pipefail
cd "$(dirname "$0")/.."

arm=false
if [ "${1:-}" = arm64 ]; then
	arm=true
	shift
fi

make build
go run ./bench --bin bin --only uplink "$@"

if $arm; then
	qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
	[ -n "$qemu" ] || { echo "edge-memory: qemu-aarch64 not found; run \`make arm-setup\`" >&2; exit 1; }
	VERSION=dev scripts/release.sh build bin/smoke arm64 edge-agent
	go run ./bench --bin bin --only uplink --uplink-events 0 --uplink-backlog 0 \
		--uplink-edge bin/smoke/arm64/edge-agent --uplink-qemu "$qemu" "$@"
fi
