#!/usr/bin/env bash
# Prints which glibc and libstdc++ a tree of binaries needs: the highest GLIBC_x.y and GLIBCXX_x.y.z
# symbol versions that any ELF file under $1 references (readelf's "Version needs" section), the
# files that need them, and which common distributions' glibc is new enough.
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

glibc=$(highest GLIBC)
echo "needs glibc symbols up to:     $glibc"
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
# glibc and libstdc++ (GLIBCXX_) of the default toolchain of some distributions still in use.
ok=() old=()
while read -r distro distro_glibc distro_cxx; do
  if at_least "$version" "$distro_glibc" && { [[ -n $shipped_cxx || ! $cxx =~ ^[0-9.]+$ ]] || at_least "$cxx" "$distro_cxx"; }; then
    ok+=("$distro")
  else
    old+=("$distro")
  fi
done <<'TABLE'
Debian-10 2.28 3.4.25
Debian-11 2.31 3.4.28
Debian-12 2.36 3.4.30
Ubuntu-18.04 2.27 3.4.25
Ubuntu-20.04 2.31 3.4.28
Ubuntu-22.04 2.35 3.4.30
Ubuntu-24.04 2.39 3.4.33
RHEL-8 2.28 3.4.25
RHEL-9 2.34 3.4.29
TABLE
echo "new enough:                    ${ok[*]:-none of the listed}"
echo "too old:                       ${old[*]:-none of the listed}"
