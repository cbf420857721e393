#!/usr/bin/env bash
# Installs what cross-compiling Tributary for linux/arm64 and linux/arm/v7 needs
# on a Debian or Ubuntu build machine: the Debian cross compilers and C libraries
# (cgo builds go-sqlite3), qemu-user to run the ARM binaries, and file(1).
# Idempotent: installs only the packages that are missing, and runs
# `apt-get update` at most once, only when something has to be installed.
set -euo pipefail

packages=(
	gcc-aarch64-linux-gnu
	gcc-arm-linux-gnueabihf
	libc6-dev-arm64-cross
	libc6-dev-armhf-cross
	file
)

installed() {
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

# Either qemu package will do: the smoke test runs qemu-aarch64(-static) and
# qemu-arm(-static) explicitly and does not rely on binfmt_misc.
if ! installed qemu-user-static && ! installed qemu-user; then
	packages+=(qemu-user-static)
fi

missing=()
for p in "${packages[@]}"; do
	installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "arm-setup: cross toolchain and qemu already installed"
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "arm-setup: missing ${missing[*]}, and apt-get is not available; install them by hand" >&2
	exit 1
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "arm-setup: missing ${missing[*]}; run as root to install them" >&2
		exit 1
	fi
	sudo=(sudo)
fi

echo "arm-setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update
"${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"

for tool in aarch64-linux-gnu-gcc arm-linux-gnueabihf-gcc file; do
	command -v "$tool" >/dev/null || { echo "arm-setup: $tool still missing after install" >&2; exit 1; }
done
echo "arm-setup: done"
