#!/usr/bin/env bash
# Installs a Tributary service on this machine from an unpacked release tarball
# (or from a source tree after `make build`). Run as root:
#
#   sudo ./deploy/install.sh                  edge agent: tributary-edge-agent.service
#   sudo ./deploy/install.sh --hub            hub: tributary-hub.service
#   sudo ./deploy/install.sh --uninstall      stop and remove the service and binary;
#                                             keeps the env file and the buffered data
#   sudo ./deploy/install.sh --uninstall --purge
#                                             also delete the env file, the data and,
#                                             when no Tributary unit is left, the user
#
# Other options:
#   --no-start   install and enable, but do not (re)start now
#   --root DIR   install into the root file system of an image mounted at DIR;
#                nothing is started, the service is enabled for the next boot
#
# Installing creates the system user "tributary", copies the binary to
# /usr/local/bin, the unit to /etc/systemd/system and the env example to
# /etc/tributary/<binary>.env (only when that file does not exist yet), then
# enables the service and restarts it. Running it again is safe: it is how an
# upgrade is done, and it never touches the env file or the data.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
component=edge-agent
action=install
purge=no
start=yes
root=

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

die() {
	echo "install: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case "$1" in
	--hub) component=hub ;;
	--edge-agent) component=edge-agent ;;
	--uninstall) action=uninstall ;;
	--purge) purge=yes ;;
	--no-start) start=no ;;
	--root)
		[ $# -ge 2 ] || die "--root needs a directory"
		root=$(cd "$2" && pwd) || die "--root $2: no such directory"
		[ "$root" = / ] && root=
		shift
		;;
	--root=*)
		root=$(cd "${1#--root=}" && pwd) || die "$1: no such directory"
		[ "$root" = / ] && root=
		;;
	-h | --help)
		usage
		exit 0
		;;
	*) die "unknown option \"$1\" (see --help)" ;;
	esac
	shift
done
[ "$purge" = no ] || [ "$action" = uninstall ] || die "--purge goes with --uninstall"
[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0 $*)"

user=tributary
case "$component" in
edge-agent) unit=tributary-edge-agent.service state=tributary-edge ;;
hub) unit=tributary-hub.service state=tributary-hub ;;
esac
bin_path=/usr/local/bin/$component
unit_path=/etc/systemd/system/$unit
env_path=/etc/tributary/$component.env

# systemd is usable when this is a live install on a machine booted with it.
live_systemd() {
	[ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null
}

systemctl_root() {
	if [ -n "$root" ]; then
		systemctl --root="$root" "$@"
	else
		systemctl "$@"
	fi
}

user_exists() {
	if [ -n "$root" ]; then
		grep -q "^$user:" "$root/etc/passwd" 2>/dev/null
	else
		id -u "$user" >/dev/null 2>&1
	fi
}

find_binary() {
	local c
	# The tarball has the binaries beside deploy/; a source tree has them in bin/.
	for c in "$here/../$component" "$here/../../bin/$component"; do
		if [ -f "$c" ]; then
			echo "$c"
			return 0
		fi
	done
	die "no $component binary beside $here (expected ../$component from the release tarball)"
}

do_install() {
	local src
	src=$(find_binary)
	# A tarball for another architecture fails here with a clear message
	# instead of a service that restarts forever with "Exec format error".
	if [ -z "$root" ]; then
		"$src" --version >/dev/null 2>&1 ||
			die "$src does not run on this machine ($(uname -m)); download the tarball for this architecture (arm64 for 64-bit Raspberry Pi OS, armv7 for 32-bit)"
	fi
	for f in "$unit" "$component.env.example"; do
		[ -f "$here/$f" ] || die "$here/$f is missing"
	done

	if ! user_exists; then
		echo "install: creating system user $user"
		local group=(--user-group)
		[ -z "$(group_id)" ] || group=(--gid "$user")
		useradd ${root:+--root "$root"} --system "${group[@]}" --no-create-home \
			--home-dir /nonexistent --shell /usr/sbin/nologin \
			--comment "Tributary services" "$user"
	fi

	# Copy then rename, so that a running service never sees a half-written binary.
	install -d -m 0755 "$root/usr/local/bin" "$root/etc/systemd/system"
	install -m 0755 "$src" "$root$bin_path.new"
	mv -f "$root$bin_path.new" "$root$bin_path"
	install -m 0644 "$here/$unit" "$root$unit_path"

	install -d -m 0755 "$root/etc/tributary"
	if [ -e "$root$env_path" ]; then
		echo "install: keeping $env_path"
	else
		# Root-owned, readable by the service's group only: it may hold credentials.
		install -m 0640 -g "$(group_id)" "$here/$component.env.example" "$root$env_path"
		echo "install: wrote $env_path; edit it, then: systemctl restart $unit"
	fi

	if [ -n "$root" ]; then
		systemctl_root enable "$unit"
		echo "install: $unit enabled in $root for the next boot"
	elif live_systemd; then
		systemctl daemon-reload
		systemctl enable "$unit"
		if [ "$start" = yes ]; then
			# restart, not start: after an upgrade the new binary must run.
			systemctl restart "$unit"
			echo "install: $unit running; see: systemctl status $unit"
		else
			echo "install: $unit enabled, not (re)started; when ready: systemctl restart $unit"
		fi
	else
		echo "install: systemd is not running here; files are installed, start $bin_path yourself" >&2
	fi
	echo "install: $("$src" --version 2>/dev/null || basename "$src") installed"
}

group_id() {
	if [ -n "$root" ]; then
		awk -F: -v u="$user" '$1 == u { print $3 }' "$root/etc/group"
	else
		getent group "$user" | cut -d: -f3
	fi
}

do_uninstall() {
	if live_systemd; then
		systemctl disable --now "$unit" 2>/dev/null || true
	elif [ -n "$root" ] && [ -e "$root$unit_path" ]; then
		systemctl_root disable "$unit" || true
	fi
	rm -f "$root$unit_path" "$root$bin_path" "$root$bin_path.new"
	if live_systemd; then
		systemctl daemon-reload
	fi
	echo "install: removed $unit and $bin_path"

	if [ "$purge" = no ]; then
		echo "install: kept $env_path and /var/lib/$state (buffered data); --uninstall --purge deletes them"
		return 0
	fi
	rm -f "$root$env_path"
	rmdir "$root/etc/tributary" 2>/dev/null || true
	# StateDirectory is /var/lib/<name>; with DynamicUser it would be under private/.
	rm -rf "$root/var/lib/$state" "$root/var/lib/private/$state"
	echo "install: deleted $env_path and /var/lib/$state"
	if user_exists && ! ls "$root"/etc/systemd/system/tributary-*.service >/dev/null 2>&1; then
		userdel ${root:+--root "$root"} "$user" 2>/dev/null || true
		# userdel keeps the group where login.defs lacks USERGROUPS_ENAB.
		groupdel ${root:+--root "$root"} "$user" 2>/dev/null || true
		echo "install: deleted user $user"
	fi
}

case "$action" in
install) do_install ;;
uninstall) do_uninstall ;;
esac
