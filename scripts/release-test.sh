#!/usr/bin/env bash
# `make release-test` (part of `make test`): the agent built, tested, packaged and installed on
# another Debian release than this machine's (make picks the other supported one: bookworm <->
# trixie). Usage: scripts/release-test.sh RELEASE BUILD_DIR
#
#   debootstrap  a minbase root of RELEASE from the archive apt uses (cached as BUILD_DIR/RELEASE/
#                debian-root.tar; every run extracts a fresh copy), with this checkout cloned into
#                /src/agent: HEAD plus the uncommitted changes, untracked files too
#   deps         the project's scripts/deps.sh installs what it needs (.debs cached in BUILD_DIR)
#   build        Release with the tests, no benchmarks (ccache under BUILD_DIR/RELEASE/ccache)
#   tests        ctest -L 'unit|integration', then `agent once` on etc/agent.toml
#   asan         `make asan-test`: the unit tests under that release's AddressSanitizer and UBSan
#   package      `make package` in that root
#   install      the .deb installed with apt into a second fresh root of RELEASE, where `agent
#                check` and `agent once` run on the installed config
# Needs root (debootstrap, chroot, mount) and the Debian archive; fails, saying so, without them.
set -euo pipefail
cd "$(dirname "$0")/.."
release=${1:?usage: release-test.sh RELEASE BUILD_DIR}
build=$(realpath -m "${2:-build-release}")
dir=$build/$release
root=$dir/root            # where it is built and tested
install_root=$dir/install # where the .deb is installed
. scripts/debian-root.sh

phase=setup phase_start=$SECONDS timings=""
say() { echo "release-test $release: $*"; }
fail() { # message [log]
  [[ -z ${2:-} ]] || { echo "--- last lines of $2" >&2; tail -n 40 "$2" >&2; }
  echo "release-test $release: FAILED in phase $phase: $1" >&2
  exit 1
}
begin() { phase=$1 phase_start=$SECONDS; }
end() {
  timings+="${timings:+, }$phase $((SECONDS - phase_start)) s"
  say "$phase done in $((SECONDS - phase_start)) s"
}
# run LOG COMMAND...: COMMAND with its output appended to LOG, shown only when it fails.
run() { local log=$1; shift; "$@" >>"$log" 2>&1 || fail "$* (exit $?)" "$log"; }

cleanup() {
  debian_root_close "$root" || true
  debian_root_close "$install_root" || true
}
trap cleanup EXIT

[[ $(id -u) -eq 0 ]] || fail "needs root (debootstrap, chroot, mount)"
mkdir -p "$dir"
cleanup
rm -f "$dir"/{archive,deps,build,tests,once,asan,package,install,check}.log "$dir/uncommitted.patch"
archive=$(debian_mirror)
curl -fsS --max-time 30 -o /dev/null "$archive/dists/$release/InRelease" 2>"$dir/archive.log" ||
  fail "the Debian archive $archive cannot be reached ($(head -c 200 "$dir/archive.log")); this test needs it"

# --- debootstrap: a fresh root with the checkout in it -------------------------------------------
begin debootstrap
debian_root_cache "$release" "$dir/debian-root.tar" || fail "no $release root"
debian_root_open "$dir/debian-root.tar" "$root" || fail "cannot set up $root"
# dpkg need not sync every file of a root thrown away afterwards.
echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/release-test"
debian_root_mount "$root" "$dir/apt-archives" /var/cache/apt/archives
debian_root_mount "$root" "$dir/ccache" /var/cache/ccache
# What is on disk: HEAD, plus (in a local run) the changes not committed yet, new files included,
# taken through a throwaway index so that the checkout's own index is left alone. (safe.directory:
# make test runs as root, the checkout may belong to someone else.)
git() { command git -c safe.directory="$PWD" -c safe.directory="$PWD/.git" "$@"; }
head=$(git rev-parse HEAD)
index=$(mktemp)
cp "$(git rev-parse --git-path index)" "$index" 2>/dev/null || true
tree=$(GIT_INDEX_FILE=$index git add -A && GIT_INDEX_FILE=$index git write-tree)
rm -f "$index"
git clone -q "$PWD" "$root/src/agent"
git -C "$root/src/agent" checkout -q --detach "$head"
if [[ $tree != $(git rev-parse "$head^{tree}") ]]; then
  git diff --binary "$head" "$tree" >"$dir/uncommitted.patch"
  git -C "$root/src/agent" apply --binary "$dir/uncommitted.patch" || fail "applying the uncommitted changes"
  say "testing ${head:0:7} plus the uncommitted changes ($(git diff --shortstat "$head" "$tree" | sed 's/^ //'))"
else
  say "testing ${head:0:7}"
fi
end

ROOT_ENV="CCACHE_DIR=/var/cache/ccache CCACHE_BASEDIR=/src/agent"
in_root() { in_debian_root "$root" "$@"; }
in_src() { in_root bash -c "cd /src/agent && $1"; }
jobs=$(nproc)

# --- deps: the project's own script has to work on this release ----------------------------------
begin deps
run "$dir/deps.log" in_src "bash scripts/deps.sh"
end

begin build
in_root ccache -z >/dev/null
run "$dir/build.log" in_src "cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DAGENT_BUILD_TESTS=ON \
  -DAGENT_BUILD_BENCH=OFF && cmake --build build -j$jobs"
say "ccache$(in_root ccache -s 2>/dev/null | grep -m1 -Ei '^ *hits:' | tr -s ' ' || true)"
end

begin tests
run "$dir/tests.log" in_src "cd build && ctest --output-on-failure -j2 --timeout 600 -L 'unit|integration'"
# A test that skips here misses something the root lacks: worth a look.
say "$(grep -E 'tests passed|tests failed' "$dir/tests.log"), $(grep -c '\*\*\*Skipped' "$dir/tests.log" || true) skipped"
once=$(in_src "build/agent once -f etc/agent.toml" 2>"$dir/once.log") || fail "agent once on etc/agent.toml" "$dir/once.log"
grep -q '^net\.in,' <<<"$once" || fail "agent once on etc/agent.toml printed no interface figures"
end

# The sanitizers differ between releases (gcc 12 and 14): Debian 13's ASan finds what 12's does not.
begin asan
run "$dir/asan.log" in_src "make asan-test"
say "$(grep -E '^\[  PASSED  \]' "$dir/asan.log" | tail -n1)"
end

begin package
run "$dir/package.log" in_src "make package"
package=$root/src/agent/build-package
name=$(sed -n 's/^AGENT_PACKAGE_NAME:.*=//p' "$package/CMakeCache.txt")
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:.*=//p' "$package/CMakeCache.txt")
deb=${name}_${version}_$(dpkg --print-architecture).deb
[[ -f $package/package/$deb ]] || fail "make package made no $deb"
rm -rf "$dir/package"
cp -a "$package/package" "$dir/package"
modules=$(cd "$package/modules" && ls -- *.so)
debian_root_close "$root" || fail "cannot remove $root"
end

# --- install: the .deb on a root of the same release that has never seen the build ---------------
begin install
debian_root_open "$dir/debian-root.tar" "$install_root" || fail "cannot set up $install_root"
debian_root_mount "$install_root" "$dir/apt-archives" /var/cache/apt/archives
cp "$dir/package/$deb" "$install_root/tmp/"
in_install() { in_debian_root "$install_root" "$@"; }
run "$dir/install.log" in_install apt-get update -qq
run "$dir/install.log" in_install env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "/tmp/$deb"
depends=$(in_install dpkg-query -W -f='${Depends}' "$name")
grep -q libpoco <<<"$depends" && grep -q libgit2 <<<"$depends" || fail "Depends lack libpoco or libgit2: $depends"
in_install getent passwd "$name" >/dev/null || fail "no system user $name"
for module in $modules; do
  [[ -f $install_root/usr/lib/$name/modules/$module ]] || fail "module $module is not installed"
done
run "$dir/check.log" in_install agent check
once=$(in_install agent once 2>"$dir/once.log") || fail "agent once on the installed config" "$dir/once.log"
grep -q '^net\.in,' <<<"$once" || fail "agent once on the installed config printed no interface figures"
grep -q '^cpu\.idle,' <<<"$once" || fail "agent once on the installed config printed no host figures"
say "$(in_install agent version) installed; Depends: $depends"
end

say "ok ($timings)"
