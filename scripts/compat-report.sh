#!/usr/bin/env bash
# Prints which glibc and libstdc++ a tree of binaries needs: the highest GLIBC_x.y and GLIBCXX_x.y.z
# symbol versions that any ELF file under $1 references (readelf's "Version needs" section), the
# files that need them, the minimum Linux kernel, and which common distributions are new enough.
# Usage: [EXCLUDE=SUBDIR] scripts/compat-report.sh DIR   (EXCLUDE: a folder under DIR to leave out)
set -euo pipefail
dir=${1:?usage: compat-report.sh DIR}

# One line per need: "<version> <file>".
needs() {
  local file
  while IFS= read -r -d '' file; do
    [[ $(head -c4 "$file" | od -An -c | tr -d ' ') == 177ELF ]] || continue
    readelf -V -W "$file" 2>/dev/null | awk -v file="${file#"$dir"/}" '
      /^Version needs section/ { inside = 1; next }
      /^Version (definition|symbols) section/ { inside = 0 }
      inside && match($0, /Name: (GLIBC|GLIBCXX|CXXABI)_[0-9.]+/) {
        print substr($0, RSTART + 6, RLENGTH - 6), file
      }'
  done < <(find "$dir" -type f ${EXCLUDE:+-not -path "$dir/$EXCLUDE/*"} -print0)
}

all=$(needs)
highest() { # $1: prefix; prints "<version> <files...>"
  local best
  best=$(grep -E "^$1_[0-9]" <<<"$all" | awk '{print $1}' | sort -u -V | tail -n1)
  [[ -n $best ]] || { echo "none"; return; }
  echo "$best ($(grep -E "^$best " <<<"$all" | awk '{print $2}' | sort -u | head -n3 | paste -sd, -))"
}

# The kernel is not in the binaries: 4.18 is what the agent is tested down to. Newer calls
# (close_range from 5.9, pidfd_open from 5.3) are used when there; the plugin runner falls back
# without them.
kernel=4.18
glibc=$(highest GLIBC)
echo "needs glibc symbols up to:     $glibc"
echo "needs Linux kernel:            $kernel or newer (close_range, pidfd_open used when present)"
if [[ -n $(find "$dir" -name 'libstdc++.so.6' ${EXCLUDE:+-not -path "$dir/$EXCLUDE/*"}) ]]; then
  echo "needs libstdc++ symbols up to: $(highest GLIBCXX) — met by the shipped libstdc++.so.6"
else
  echo "needs libstdc++ symbols up to: $(highest GLIBCXX) — from the system's libstdc++6"
fi

version=${glibc%% *}
version=${version#GLIBC_}
[[ $version =~ ^[0-9]+\.[0-9]+$ ]] || exit 0
cxx=$(highest GLIBCXX)
cxx=${cxx%% *}
cxx=${cxx#GLIBCXX_}
shipped_cxx=$(find "$dir" -name 'libstdc++.so.6' ${EXCLUDE:+-not -path "$dir/$EXCLUDE/*"})
at_least() { [[ $(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1) == "$1" ]]; } # $1 <= $2
# glibc, libstdc++ (GLIBCXX_) of the default toolchain and the release kernel of some
# distributions still in use.
ok=() old=()
while read -r distro distro_glibc distro_cxx distro_kernel; do
  if at_least "$version" "$distro_glibc" && at_least "$kernel" "$distro_kernel" &&
    { [[ -n $shipped_cxx || ! $cxx =~ ^[0-9.]+$ ]] || at_least "$cxx" "$distro_cxx"; }; then
    ok+=("$distro")
  else
    old+=("$distro")
  fi
done <<'TABLE'
Debian-10 2.28 3.4.25 4.19
Debian-11 2.31 3.4.28 5.10
Debian-12 2.36 3.4.30 6.1
Debian-13 2.41 3.4.33 6.12
Ubuntu-18.04 2.27 3.4.25 4.15
Ubuntu-20.04 2.31 3.4.28 5.4
Ubuntu-22.04 2.35 3.4.30 5.15
Ubuntu-24.04 2.39 3.4.33 6.8
RHEL-8 2.28 3.4.25 4.18
RHEL-9 2.34 3.4.29 5.14
TABLE
echo "new enough:                    ${ok[*]:-none of the listed}"
echo "too old:                       ${old[*]:-none of the listed}"
