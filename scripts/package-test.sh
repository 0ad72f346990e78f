#!/usr/bin/env bash
# `make package-test`: what `make package` made, installed the way an operator installs it, on a
# minimal Debian root that has never seen the build (debootstrap, minbase, from the archive this
# machine's apt uses; scripts/debian-root.sh). The pristine root is cached as
# $1/package-test/debian-root.tar.
#
#   1. the tarball, unpacked into the pristine root's /opt: its libraries resolve inside the tarball
#      (the root has no Poco, no libgit2), `agent check` and `agent once` work from any directory;
#   2. the .deb with apt (Depends from the archive): user, directories, conffile, unit, `agent
#      check`/`once` on the installed config, then `agent run` as the service runs it (its own user,
#      only CAP_SETUID/CAP_SETGID/CAP_KILL); systemd-analyze verify on the unit;
#   3. reinstall and remove keep the spool and an edited config; purge deletes them;
#   4. the -dev package builds examples/source-example out of tree, and the agent loads it.
# Needs root (chroot, mounts). Without the archive it fails, saying so.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-package}
out=$build/package
test_dir=$(realpath -m "$build/package-test")
cache=$test_dir/debian-root.tar
root=$test_dir/root

say() { echo "package-test: $*"; }
fail() { echo "package-test: FAIL: $*" >&2; exit 1; }
check() { # description, command...
  local what=$1; shift
  if "$@"; then say "ok: $what"; else fail "$what"; fi
}

[[ $(id -u) -eq 0 ]] || fail "needs root (debootstrap, chroot, mount)"
name=$(sed -n 's/^AGENT_PACKAGE_NAME:.*=//p' "$build/CMakeCache.txt")
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:.*=//p' "$build/CMakeCache.txt")
arch=$(dpkg --print-architecture)
deb=$out/${name}_${version}_${arch}.deb
dev_deb=$out/${name}-dev_${version}_${arch}.deb
tarball=$out/$name-$version-linux-$arch.tar.gz
for file in "$deb" "$dev_deb" "$tarball"; do [[ -f $file ]] || fail "$file is missing: run make package"; done

# --- the root ----------------------------------------------------------------------------------
. scripts/debian-root.sh
trap 'debian_root_close "$root" || true' EXIT
debian_root_close "$root" || fail "cannot remove the last run's $root"
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
debian_root_cache "$suite" "$cache" || fail "this test needs the Debian archive"
debian_root_open "$cache" "$root" || fail "cannot set up $root"
in_root() { in_debian_root "$root" "$@"; }
has() { grep -q -- "$2" <<<"$1"; }
# Waits up to 30 s until FILE has a line matching PATTERN, or the process PID is gone.
wait_for_line() { # PID PATTERN FILE
  local _
  for _ in $(seq 1 300); do
    grep -q -- "$2" "$3" 2>/dev/null && return 0
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
}

# --- 1. the tarball, in the pristine root --------------------------------------------------------
top=$name-$version-linux-$arch
mkdir -p "$root/opt"
tar -C "$root/opt" -xzf "$tarball"
check "the pristine root has no Poco (so the tarball must bring its own)" \
  bash -c "! ls '$root'/usr/lib/*/libPocoFoundation.so* >/dev/null 2>&1"
# The libraries the running agent really mapped: the tarball's, glibc, and the C++ runtime from
# the host (minbase has libstdc++6, which apt needs) or from lib/fallback (expat: minbase has none).
chroot "$root" "/opt/$top/agent" run >"$test_dir/tarball-run.log" 2>&1 &
agent_pid=$!
wait_for_line "$agent_pid" " started: pid " "$root/opt/$top/var/log/agent.log"
# (read from outside the root: the paths start with the root's own)
mapped=$(awk '$6 ~ /\.so/ {print $6}' "/proc/$agent_pid/maps" 2>/dev/null | sed "s|^$root||" | sort -u)
kill -TERM "$agent_pid" 2>/dev/null || true
status=0
wait "$agent_pid" || status=$?
check "tarball: agent run starts and stops cleanly" test "$status" -eq 0 -a -n "$mapped"
foreign=$(grep -v "^/opt/$top/lib/" <<<"$mapped" |
  grep -Ev '/(libc|libm|libpthread|libdl|librt|libresolv|ld-linux[^/]*|libstdc\+\+|libgcc_s)\.so[^/]*$' || true)
check "tarball: every library but glibc and the C++ runtime was mapped from the tarball${foreign:+ (not: $foreign)}" test -z "$foreign"
check "tarball: Poco came from the tarball" grep -q "^/opt/$top/lib/libPocoFoundation" <<<"$mapped"
check "tarball: expat, absent from the root, came from lib/fallback" grep -q "^/opt/$top/lib/fallback/libexpat" <<<"$mapped"
version_line=$(in_root "/opt/$top/agent" version)
check "tarball: agent version names $version and the module ABI ($version_line)" has "$version_line" "agent $version .*module ABI"
check "tarball: agent check on its own config" in_root "/opt/$top/agent" check
once=$(in_root /bin/sh -c "cd /tmp && /opt/$top/agent once")
check "tarball: agent once from another directory prints interface figures" has "$once" '^net\.in,'
# The git helper is a program of its own: its libgit2 (absent from the root) must come from the
# tarball too. Called without arguments it prints its usage and exits 2, having loaded them all.
helper_status=0
in_root "/opt/$top/lib/$name/modules/source-exec-git" >/dev/null 2>"$test_dir/helper.log" || helper_status=$?
check "tarball: the git helper runs with the tarball's libraries (exit $helper_status: $(head -c 120 "$test_dir/helper.log"))" \
  bash -c "[[ $helper_status -eq 2 ]] && grep -q '^usage: source-exec-git' '$test_dir/helper.log'"
ln -s "/opt/$top/agent" "$root/usr/local/bin/agent-tarball"
check "tarball: the run script works through a symlink" in_root agent-tarball check

# --- 2. the .deb, with its dependencies from the archive ---------------------------------------
cp "$deb" "$dev_deb" "$root/tmp/"
say "apt-get install ./$(basename "$deb") (dependencies from the archive)"
in_root apt-get update -qq >"$test_dir/apt.log" 2>&1 || { tail -n 5 "$test_dir/apt.log" >&2; fail "apt-get update in the root (the archive is needed)"; }
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "/tmp/$(basename "$deb")" >>"$test_dir/apt.log" 2>&1 ||
  { tail -n 20 "$test_dir/apt.log" >&2; fail "installing the .deb"; }
depends=$(in_root dpkg-query -W -f='${Depends}' "$name")
say "Depends: $depends"
check "Depends were computed from the binaries (libpoco, libgit2)" bash -c "grep -q libpoco <<<'$depends' && grep -q libgit2 <<<'$depends'"
user_line=$(in_root getent passwd "$name" || true)
check "system user $name with no login shell ($user_line)" has "$user_line" "^$name:x:[0-9]*:[0-9]*:.*:/var/lib/$name:/usr/sbin/nologin$"
owner() { in_root stat -c '%U:%G %a' "$1"; }
check "state directory owned by $name" test "$(owner /var/lib/$name/state)" = "$name:$name 750"
check "plugins directory owned by $name, readable by pluginsuser" test "$(owner /var/lib/$name/plugins)" = "$name:$name 755"
check "log directory owned by $name" test "$(owner /var/log/$name)" = "$name:adm 750"
conffiles=$(in_root dpkg-query -W -f='${Conffiles}' "$name")
check "/etc/$name/agent.toml is a conffile" has "$conffiles" "/etc/$name/agent.toml"
check "the systemd unit is installed" test -f "$root/lib/systemd/system/$name.service"
for module in "$build"/modules/*.so; do
  [[ -e $module ]] || continue
  check "module $(basename "$module") installed" test -f "$root/usr/lib/$name/modules/$(basename "$module")"
done
check "the git helper is installed next to the modules" test -x "$root/usr/lib/$name/modules/source-exec-git"
check "the link that keeps the Go agent's socket path is declared" \
  grep -q "^L /run/monitor-agent.sock .* /run/$name/monitor-agent.sock$" "$root/usr/lib/tmpfiles.d/$name.conf"
argus_example=/usr/share/doc/$name/examples/argus.toml
check "the Argus-only example is installed" test -f "$root$argus_example"
check "agent check passes the Argus-only example (no sink needed)" \
  in_root env MASTER_ENDPOINT=127.0.0.1:9 AGENT_ENV=prod AGENT_USER=ops AGENT_INSTANCE=1 agent check -f "$argus_example"
check "agent check on the installed config" in_root agent check
once=$(in_root agent once)
check "agent once prints interface figures" has "$once" '^net\.in,'
if [[ -f $root/usr/lib/$name/modules/source-host.so ]]; then
  check "agent once prints host figures" has "$once" '^cpu\.idle,'
fi

# systemd-analyze reads the unit as systemd would, in the root where its binary and user exist
# (and systemd's own units, which a minbase root lacks: systemd is not a dependency of the agent).
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >>"$test_dir/apt.log" 2>&1 ||
  { tail -n 20 "$test_dir/apt.log" >&2; fail "installing systemd in the root"; }
verify=$(systemd-analyze verify --root="$root" "/lib/systemd/system/$name.service" 2>&1 || echo "exit status $?")
check "systemd-analyze verify passes on the unit${verify:+: $verify}" test -z "$verify"

# The service's way: its own user, only the unit's three capabilities, the unit's RuntimeDirectory.
install -d -o "$(in_root id -u "$name")" -g "$(in_root id -g "$name")" "$root/run/$name"
metrics=/var/lib/$name/metrics.lp
rm -f "$root$metrics"
chroot "$root" setpriv --reuid="$name" --regid="$name" --init-groups \
  --inh-caps=+setuid,+setgid,+kill --ambient-caps=+setuid,+setgid,+kill \
  /usr/bin/agent run -f "/etc/$name/agent.toml" >"$test_dir/run.log" 2>&1 &
agent_pid=$!
wait_for_line "$agent_pid" '^net\.in,' "$root$metrics"
check "agent run as $name writes metrics to $metrics" grep -q '^net\.in,' "$root$metrics"
kill -TERM "$agent_pid"
status=0
wait "$agent_pid" || status=$?
check "agent run as $name stops cleanly on SIGTERM" test "$status" -eq 0
started=$(grep -c " started: pid " "$root/var/log/$name/agent.log" || true)
check "agent run as $name logged its start in /var/log/$name" test "$started" -ge 1

# --- 3. upgrade, remove, purge --------------------------------------------------------------------
spool_marker=/var/lib/$name/state/spool/marker
mkdir -p "$(dirname "$root$spool_marker")"
echo undelivered >"$root$spool_marker"
echo "# edited by the operator" >>"$root/etc/$name/agent.toml"
in_root env DEBIAN_FRONTEND=noninteractive dpkg --force-confold -i "/tmp/$(basename "$deb")" >>"$test_dir/apt.log" 2>&1 ||
  fail "reinstalling the .deb"
check "a reinstall keeps the spool" test -f "$root$spool_marker"
check "a reinstall keeps the edited config" grep -q "edited by the operator" "$root/etc/$name/agent.toml"
in_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq "$name" >>"$test_dir/apt.log" 2>&1 || fail "apt-get remove"
check "remove deletes the agent" test ! -e "$root/usr/bin/agent"
check "remove keeps the spool" test -f "$root$spool_marker"
check "remove keeps the config" test -f "$root/etc/$name/agent.toml"
in_root dpkg --purge "$name" >>"$test_dir/apt.log" 2>&1 || fail "dpkg --purge"
check "purge deletes the state and the spool" test ! -e "$root/var/lib/$name"
check "purge deletes the log" test ! -e "$root/var/log/$name"
check "purge deletes the config" test ! -e "$root/etc/$name/agent.toml"

# --- 4. the -dev package: a module built out of tree against it ---------------------------------
sdk=$test_dir/sdk
rm -rf "$sdk"
dpkg-deb -x "$deb" "$sdk"
dpkg-deb -x "$dev_deb" "$sdk"
check "the -dev package has the SDK headers and CMake config" \
  test -f "$sdk/usr/include/agent/Module.h" -a -n "$(find "$sdk/usr/lib" -name AgentSDKConfig.cmake)"
cmake -S examples/source-example -B "$sdk/example-build" -DCMAKE_PREFIX_PATH="$sdk/usr" >"$test_dir/sdk.log" 2>&1 &&
  cmake --build "$sdk/example-build" >>"$test_dir/sdk.log" 2>&1 || { tail -n 20 "$test_dir/sdk.log" >&2; fail "building source-example against the -dev package"; }
check "source-example built against the -dev package" test -f "$sdk/example-build/source-example.so"
cat >"$sdk/example.toml" <<TOML
[agent]
hostname = "sdk-test"
statedir = "$sdk/state"
pidfile = "$sdk/agent.pid"
[modules]
dir = "$sdk/example-build"
load = ["source-example"]
[log]
logdir = "$sdk/log"
TOML
example=$("$sdk/usr/bin/agent" once -f "$sdk/example.toml" 2>&1 || true)
check "the packaged agent loads the out-of-tree module" has "$example" "^example"
rm -rf "$sdk"
say "all passed"
