#!/usr/bin/env bash
# `make package`: the Debian packages (agent, agent-dev) and a self-contained tarball, built from
# a Release tree configured for /usr ($1, default build-package), then a compatibility report.
#
#   <build>/package/agent_<version>_<arch>.deb       the agent, modules, config, unit, scripts
#   <build>/package/agent-dev_<version>_<arch>.deb   SDK headers, libagent_sdk.so, CMake config
#   <build>/package/agent-<version>-linux-<arch>.tar.gz
#       bin/agent, lib/ (libagent_sdk and every non-glibc library the agent and the modules need,
#       found through $ORIGIN-relative RUNPATHs), lib/agent/modules/, etc/agent.toml, ./agent (run
#       script), COMPATIBILITY (the report below)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-package}
jobs=$(nproc)

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
  -DAGENT_BUILD_TESTS=OFF -DAGENT_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"$jobs"

out=$build/package
rm -rf "$out"
mkdir -p "$out"
echo "package: Debian packages"
(cd "$build" && cpack -G DEB >/dev/null)
rm -rf "$out/_CPack_Packages"

name=$(sed -n 's/^CPACK_PACKAGE_NAME:.*=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
name=${name:-agent}
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:.*=//p' "$build/CMakeCache.txt")
arch=$(dpkg --print-architecture)

# --- the self-contained tarball ----------------------------------------------------------------
echo "package: self-contained tarball"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
DESTDIR=$stage/install cmake --install "$build" --component runtime --strip >/dev/null
top=$name-$version-linux-$arch
root=$stage/$top
mkdir -p "$root/bin" "$root/lib/$name" "$root/etc"
cp -a "$stage/install/usr/bin/agent" "$root/bin/"
cp -a "$stage/install/usr/lib/$name/modules" "$root/lib/$name/"
cp -a "$stage/install"/usr/lib/*/libagent_sdk.so.* "$root/lib/"
cp "$build/packaging/tarball/agent.toml" "$root/etc/agent.toml"
cp README.md packaging/copyright "$root/"

# glibc's own libraries come from the target system, whose glibc must be new enough (the report
# says how new); everything else the binaries need is shipped: the C++ runtime included.
glibc_sonames='^(ld-linux.*|libc|libm|libmvec|libpthread|libdl|librt|libresolv|libutil|libanl|libnsl|libBrokenLocale|libc_malloc_debug|libthread_db|libnss_[a-z]+)\.so(\.[0-9]+)*$'
binaries=("$root/bin/agent" "$root"/lib/"$name"/modules/*.so "$root"/lib/libagent_sdk.so.*)
for binary in "${binaries[@]}"; do
  # ldd names every library of the closure; libagent_sdk is ours and already in lib/.
  while read -r soname arrow path _; do
    [[ $arrow == "=>" ]] || continue
    [[ $soname =~ $glibc_sonames ]] && continue
    [[ -e $root/lib/$soname ]] && continue
    if [[ $path == "not" ]]; then
      echo "package: $binary needs $soname, which is not on this machine" >&2
      exit 1
    fi
    cp -L "$path" "$root/lib/$soname"
  done < <(LD_LIBRARY_PATH=$root/lib ldd "$binary")
done
chmod u+w "$root"/lib/*.so*
for library in "$root"/lib/*.so*; do [[ -L $library ]] || patchelf --set-rpath '$ORIGIN' "$library"; done
patchelf --set-rpath '$ORIGIN/../lib' "$root/bin/agent"
for module in "$root"/lib/"$name"/modules/*.so; do patchelf --set-rpath '$ORIGIN/../..' "$module"; done

cat >"$root/agent" <<'SCRIPT'
#!/bin/sh
# Runs the bundled agent from wherever this folder is (a symlink to this script works too).
# The agent runs in this folder, so the relative paths of etc/agent.toml (./var/..., the modules
# in ./lib/agent/modules) stay inside it; -f <file> or $AGENT_CONFIG choose another config.
here=$(dirname "$(readlink -f "$0")")
cd "$here" || exit 1
AGENT_CONFIG=${AGENT_CONFIG:-$here/etc/agent.toml}
export AGENT_CONFIG
exec "$here/bin/agent" "$@"
SCRIPT
chmod 0755 "$root/agent"

report() { bash scripts/compat-report.sh "$@"; }
report "$root" >"$root/COMPATIBILITY"
tar -C "$stage" -czf "$out/$top.tar.gz" "$top"

# --- the report ---------------------------------------------------------------------------------
debroot=$stage/deb
mkdir -p "$debroot"
dpkg-deb -x "$out/${name}_${version}_${arch}.deb" "$debroot"
echo
echo "== artifacts ($out)"
(cd "$out" && ls -l --time-style=+ ./*.deb ./*.tar.gz | awk '{print "  " $5 "\t" $NF}')
echo
echo "== compatibility: the .deb (libraries from the system, per its Depends)"
report "$debroot"
echo
echo "== compatibility: the tarball (everything but glibc shipped)"
cat "$root/COMPATIBILITY"
