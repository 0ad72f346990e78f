#!/usr/bin/env bash
# Prints which glibc and libstdc++ a tree of binaries needs: the highest GLIBC_x.y and GLIBCXX_x.y.z
# symbol versions that any ELF file under $1 references (readelf's "Version needs" section), the
# files that need them, and which common distributions' glibc is new enough.
# Usage: scripts/compat-report.sh DIR
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
  done < <(find "$dir" -type f -print0)
}

all=$(needs)
highest() { # $1: prefix; prints "<version> <files...>"
  local best
  best=$(grep -E "^$1_[0-9]" <<<"$all" | awk '{print $1}' | sort -u -V | tail -n1)
  [[ -n $best ]] || { echo "none"; return; }
  echo "$best ($(grep -E "^$best " <<<"$all" | awk '{print $2}' | sort -u | head -n3 | paste -sd, -))"
}

glibc=$(highest GLIBC)
echo "needs glibc symbols up to:     $glibc"
if [[ -e $dir/lib/libstdc++.so.6 ]]; then
  echo "needs libstdc++ symbols up to: $(highest GLIBCXX) — met by the shipped lib/libstdc++.so.6"
else
  echo "needs libstdc++ symbols up to: $(highest GLIBCXX) — from the system's libstdc++6"
fi

version=${glibc%% *}
version=${version#GLIBC_}
[[ $version =~ ^[0-9]+\.[0-9]+$ ]] || exit 0
# glibc of some distributions still in use (their release notes).
ok=() old=()
while read -r distro glibc_of_distro; do
  if [[ $(printf '%s\n%s\n' "$version" "$glibc_of_distro" | sort -V | head -n1) == "$version" ]]; then
    ok+=("$distro ($glibc_of_distro)")
  else
    old+=("$distro ($glibc_of_distro)")
  fi
done <<'TABLE'
Debian-10 2.28
Debian-11 2.31
Debian-12 2.36
Ubuntu-18.04 2.27
Ubuntu-20.04 2.31
Ubuntu-22.04 2.35
Ubuntu-24.04 2.39
RHEL-8 2.28
RHEL-9 2.34
TABLE
echo "runs with glibc >= $version:       ${ok[*]:-none of the listed}"
echo "too old:                       ${old[*]:-none of the listed}"
