#!/usr/bin/env bash
# Builds Tributary's release artifacts: static, stripped, version-stamped
# edge-agent and hub binaries for linux/amd64, linux/arm64 and linux/arm/v7
# (cgo on, for go-sqlite3), packed into reproducible tarballs.
#
#   scripts/release.sh VERSION
#       Writes dist/tributary_<VERSION>_linux_{amd64,arm64,armv7}.tar.gz and
#       dist/SHA256SUMS, replacing whatever dist/ held. A leading "v" is dropped.
#       Each tarball holds tributary_<VERSION>_linux_<arch>/ with edge-agent,
#       hub, README.md, LICENSE and deploy/ (install.sh, systemd units, env
#       examples, the install guide). In a git checkout the release is built
#       from a clean export of HEAD, so that it is exactly the stamped commit:
#       uncommitted changes are left out.
#
#   scripts/release.sh build OUTDIR ARCH CMD...
#       Builds only the binaries of the work tree, with the same flags, to
#       OUTDIR/ARCH/CMD. ARCH is amd64, arm64 or armv7; CMD is edge-agent or
#       hub. The version stamped is $VERSION (default "dev").
#
# Environment: SOURCE_DATE_EPOCH (default: the commit time of HEAD) fixes the
# tarballs' timestamps; CC_amd64, CC_arm64, CC_armv7 override the C compilers.
# The cross compilers come from `make arm-setup`.
set -euo pipefail

cd "$(dirname "$0")/.."

module=github.com/tributary-edge/tributary
arches=(amd64 arm64 armv7)
# osusergo and netgo keep glibc's NSS (getpwnam, getaddrinfo) out of the static
# binary, which would otherwise need the build machine's shared libraries at run
# time; sqlite_omit_load_extension drops SQLite's dlopen for the same reason.
tags=osusergo,netgo,sqlite_omit_load_extension

die() {
	echo "release: $*" >&2
	exit 1
}

# target_env ARCH prints the environment for `go build` for ARCH, one VAR=value
# per line. The host's own architecture uses the native gcc.
target_env() {
	local arch=$1 goarch goarm="" cross cc_override
	case "$arch" in
	amd64) goarch=amd64 cross=x86_64-linux-gnu-gcc ;;
	arm64) goarch=arm64 cross=aarch64-linux-gnu-gcc ;;
	armv7) goarch=arm goarm=7 cross=arm-linux-gnueabihf-gcc ;;
	*) die "unknown architecture \"$arch\" (want one of: ${arches[*]})" ;;
	esac
	cc_override="CC_$arch"
	local cc=${!cc_override:-}
	if [ -z "$cc" ]; then
		if [ "$goarch" = "$(go env GOHOSTARCH)" ] && [ "$(go env GOHOSTOS)" = linux ]; then
			cc=gcc
		else
			cc=$cross
		fi
	fi
	command -v "$cc" >/dev/null || die "C compiler $cc for $arch not found; run \`make arm-setup\`"
	echo "GOOS=linux"
	echo "GOARCH=$goarch"
	echo "GOARM=$goarm"
	echo "CC=$cc"
	echo "CGO_ENABLED=1"
}

# file_pattern ARCH prints the extended regexp that file(1) prints for an ARCH binary.
file_pattern() {
	case "$1" in
	amd64) echo 'ELF 64-bit LSB executable, x86-64' ;;
	arm64) echo 'ELF 64-bit LSB executable, ARM aarch64' ;;
	armv7) echo 'ELF 32-bit LSB executable, ARM, EABI5' ;;
	esac
}

# check_binary ARCH PATH fails unless PATH is a static executable for ARCH.
check_binary() {
	local arch=$1 bin=$2 desc
	command -v file >/dev/null || die "file(1) not found; run \`make arm-setup\`"
	desc=$(file -b "$bin")
	echo "$desc" | grep -Eq "^$(file_pattern "$arch")" ||
		die "$bin: built for the wrong architecture: $desc"
	echo "$desc" | grep -q 'statically linked' ||
		die "$bin: not statically linked: $desc"
}

# build SRC OUTDIR ARCH VERSION COMMIT CMD... builds each CMD of the source
# tree SRC for ARCH into OUTDIR.
build() {
	local src=$1 out=$2 arch=$3 version=$4 commit=$5
	shift 5
	local pkgs=() cmd
	for cmd in "$@"; do
		[ -d "$src/cmd/$cmd" ] || die "no command cmd/$cmd"
		pkgs+=("./cmd/$cmd")
	done
	mkdir -p "$out"
	out=$(cd "$out" && pwd)
	local ldflags="-s -w"
	ldflags+=" -X $module/internal/version.Version=$version"
	ldflags+=" -X $module/internal/version.Commit=$commit"
	ldflags+=' -linkmode external -extldflags "-static"'
	local goenv log
	goenv=$(target_env "$arch") || exit 1
	log=$(mktemp)
	echo "release: building $* for linux/$arch"
	# shellcheck disable=SC2086 # goenv is VAR=value words without spaces
	if ! (cd "$src" && env $goenv go build -trimpath -tags "$tags" -ldflags "$ldflags" \
		-o "$out/" "${pkgs[@]}") >"$log" 2>&1; then
		cat "$log" >&2
		rm -f "$log"
		die "build for $arch failed"
	fi
	# glibc warns, and the link still succeeds, when a static binary would need
	# shared libraries at run time (getaddrinfo, getpwnam, dlopen). Such a
	# binary breaks on musl or another glibc, so treat the warning as an error.
	if grep -q 'statically linked applications requires at runtime' "$log"; then
		cat "$log" >&2
		rm -f "$log"
		die "build for $arch links glibc functions that need shared libraries at run time"
	fi
	cat "$log"
	rm -f "$log"
	for cmd in "$@"; do
		check_binary "$arch" "$out/$cmd"
	done
}

commit_id() {
	git rev-parse --short HEAD 2>/dev/null || echo unknown
}

if [ "${1:-}" = build ]; then
	[ $# -ge 4 ] || die "usage: scripts/release.sh build OUTDIR ARCH CMD..."
	out=$2 arch=$3
	shift 3
	build . "$out/$arch" "$arch" "${VERSION:-dev}" "$(commit_id)" "$@"
	exit 0
fi

[ $# -eq 1 ] || die "usage: scripts/release.sh VERSION (for example 1.2.3)"
version=${1#v}
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$ ]] ||
	die "version \"$1\" is not of the form x.y.z (e.g. \`make release VERSION=1.2.3\`)"
commit=$(commit_id)
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)
fi
[[ "$SOURCE_DATE_EPOCH" =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH \"$SOURCE_DATE_EPOCH\" is not a Unix time"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)

src=.
if [ "$commit" != unknown ]; then
	src=$work/src
	mkdir -p "$src"
	git archive --format=tar HEAD | tar -x -C "$src"
	if [ -n "$(git status --porcelain 2>/dev/null)" ]; then
		echo "release: note: uncommitted changes and untracked files are left out; building commit $commit" >&2
	fi
fi
for f in README.md LICENSE deploy/arm/install.sh; do
	[ -f "$src/$f" ] || die "$f is missing (or not committed); it goes into every tarball"
done

rm -rf dist
mkdir -p dist
for arch in "${arches[@]}"; do
	name="tributary_${version}_linux_${arch}"
	top="$work/stage/$name"
	build "$src" "$top" "$arch" "$version" "$commit" edge-agent hub
	install -m 0644 "$src/README.md" "$src/LICENSE" "$top/"
	mkdir -p "$top/deploy"
	# Everything in deploy/arm/ that belongs on a device: the build-machine
	# setup script and Go test files stay behind.
	for f in "$src"/deploy/arm/*; do
		case "$(basename "$f")" in
		setup.sh | *.go) continue ;;
		esac
		if [ -x "$f" ]; then
			install -m 0755 "$f" "$top/deploy/"
		else
			install -m 0644 "$f" "$top/deploy/"
		fi
	done
	chmod 0755 "$top/edge-agent" "$top/hub"
	tar --sort=name --format=gnu --owner=0 --group=0 --numeric-owner \
		--mtime="@$SOURCE_DATE_EPOCH" --mode='u+rwX,go+rX,go-w' \
		-C "$work/stage" -cf - "$name" | gzip -9n >"dist/$name.tar.gz"
done

(cd dist && sha256sum tributary_"${version}"_linux_*.tar.gz >SHA256SUMS)

echo
echo "release: tributary $version (commit $commit) in $(($(date +%s) - start))s"
size() {
	stat -c %s "$1" | awk '{ printf "%d (%.1f MiB)", $1, $1 / 1048576 }'
}
printf '%-6s  %-24s  %-24s  %-24s\n' arch edge-agent hub tarball
for arch in "${arches[@]}"; do
	name="tributary_${version}_linux_${arch}"
	printf '%-6s  %-24s  %-24s  %-24s\n' "$arch" \
		"$(size "$work/stage/$name/edge-agent")" \
		"$(size "$work/stage/$name/hub")" \
		"$(size "dist/$name.tar.gz")"
done
echo
cat dist/SHA256SUMS
