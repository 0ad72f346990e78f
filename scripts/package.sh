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
# CPack warns for every module that it is a shared object without a soname: modules are not
# libraries, so that is right; the log is shown only when cpack fails.
(cd "$build" && cpack -G DEB >cpack.log 2>&1) || { tail -n 30 "$build/cpack.log" >&2; exit 1; }
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
# says how new); every other library the binaries need is shipped.
glibc_sonames='^(ld-linux.*|libc|libm|libmvec|libpthread|libdl|librt|libresolv|libutil|libanl|libnsl|libBrokenLocale|libc_malloc_debug|libthread_db|libnss_[a-z]+)\.so(\.[0-9]+)*$'
# The modules directory also holds helper executables of modules (source-exec-git).
ours=("$root/bin/agent" "$root"/lib/"$name"/modules/* "$root"/lib/libagent_sdk.so.*)
for binary in "${ours[@]}"; do
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

# "Version needs" of ELF files: one "<library> <version>" line per need.
version_needs() {
  readelf -V -W "$@" 2>/dev/null | awk '
    /^Version needs section/ { inside = 1; next }
    /^Version (definition|symbols) section/ { inside = 0 }
    inside && match($0, /File: [^ ]+/) { library = substr($0, RSTART + 6, RLENGTH - 6) }
    inside && match($0, /Name: [^ ]+/) { print library, substr($0, RSTART + 6, RLENGTH - 6) }'
}
highest_glibc() { version_needs "$@" | awk '$2 ~ /^GLIBC_[0-9.]+$/ {print $2}' | sort -V | tail -n1; }

# A shipped library that needs a newer glibc than our own binaries do (on Debian 12: libstdc++,
# libgcc_s, expat) would raise the tarball's floor for everyone. Such libraries, which most hosts
# have anyway, go to lib/fallback/<soname>/: the run script takes the host's copy when it has every
# symbol version the agent needs (listed in lib/fallback/NEEDS), and the shipped one otherwise.
floor=$(highest_glibc "${ours[@]}")
mkdir -p "$root/lib/fallback"
: >"$root/lib/fallback/NEEDS"
all_needs=$(version_needs "${ours[@]}" "$root"/lib/*.so*)
for library in "$root"/lib/*.so*; do
  [[ -L $library ]] && continue
  soname=$(basename "$library")
  [[ $soname == libagent_sdk.* ]] && continue
  needed=$(highest_glibc "$library")
  [[ -n $needed && $(printf '%s\n%s\n' "$floor" "$needed" | sort -V | tail -n1) != "$floor" ]] || continue
  mkdir -p "$root/lib/fallback/$soname"
  mv "$library" "$root/lib/fallback/$soname/"
  echo "$soname $(awk -v lib="$soname" '$1 == lib {print $2}' <<<"$all_needs" | sort -u -V | paste -sd' ' -)" \
    >>"$root/lib/fallback/NEEDS"
done

for library in "$root"/lib/*.so*; do [[ -L $library ]] || patchelf --set-rpath '$ORIGIN' "$library"; done
for library in "$root"/lib/fallback/*/*.so*; do [[ -e $library ]] && patchelf --set-rpath '$ORIGIN/../..' "$library"; done
patchelf --set-rpath '$ORIGIN/../lib' "$root/bin/agent"
for module in "$root"/lib/"$name"/modules/*; do patchelf --set-rpath '$ORIGIN/../..' "$module"; done

cat >"$root/agent" <<'SCRIPT'
#!/bin/sh
# Runs the bundled agent from wherever this folder is (a symlink to this script works too).
# The agent runs in this folder, so the relative paths of etc/agent.toml (./var/..., the modules
# in ./lib/agent/modules) stay inside it; -f <file> or $AGENT_CONFIG choose another config.
here=$(dirname "$(readlink -f "$0")")
cd "$here" || exit 1

# Each library of lib/fallback comes from the host when the host's copy has every symbol version
# listed in lib/fallback/NEEDS, else from lib/fallback (whose copies need a newer glibc).
ldconfig=$(command -v ldconfig || echo /sbin/ldconfig)
cache=$("$ldconfig" -p 2>/dev/null)
fallback=
while read -r soname versions; do
  host=$(printf '%s\n' "$cache" | awk -v s="$soname" -v arch="LDCONFIG_ARCH" '$1 == s && index($0, arch) {print $NF; exit}')
  use=
  if [ -z "$host" ]; then use=1; fi
  for version in $versions; do
    if [ -z "$use" ] && ! grep -qaF "$version" "$host"; then use=1; fi
  done
  if [ -n "$use" ]; then fallback=$fallback${fallback:+:}$here/lib/fallback/$soname; fi
done <"$here/lib/fallback/NEEDS"
if [ -n "$fallback" ]; then
  LD_LIBRARY_PATH=$fallback${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export LD_LIBRARY_PATH
fi

AGENT_CONFIG=${AGENT_CONFIG:-$here/etc/agent.toml}
export AGENT_CONFIG
exec "$here/bin/agent" "$@"
SCRIPT
# ldconfig's name for this machine's architecture, e.g. "(libc6,x86-64)".
ldconfig_arch=$(ldconfig -p | awk '$1 == "libc.so.6" {print $2; exit}')
sed -i "s/LDCONFIG_ARCH/$ldconfig_arch/" "$root/agent"
chmod 0755 "$root/agent"

report() { bash scripts/compat-report.sh "$@"; }
{
  echo "With the host's own copies of the libraries in lib/fallback ($(awk '{print $1}' "$root/lib/fallback/NEEDS" | paste -sd' ' -)):"
  EXCLUDE=lib/fallback report "$root"
  echo
  echo "Without them (the run script then takes the shipped ones):"
  report "$root"
} >"$root/COMPATIBILITY"
tar -C "$stage" -czf "$out/$top.tar.gz" "$top"

# --- the report ---------------------------------------------------------------------------------
debroot=$stage/deb
mkdir -p "$debroot"
dpkg-deb -x "$out/${name}_${version}_${arch}.deb" "$debroot"
echo
echo "== artifacts ($out)"
(cd "$out" && for file in *.deb *.tar.gz; do printf '  %-44s %6s KiB\n' "$file" $(($(stat -c %s "$file") / 1024)); done)
echo
echo "== compatibility: the .deb (libraries from the system, per its Depends)"
report "$debroot"
echo
echo "== compatibility: the tarball (everything but glibc shipped)"
cat "$root/COMPATIBILITY"
