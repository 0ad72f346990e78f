#!/usr/bin/env bash
# What a clone or fetch costs now that each runs in the git helper process (source-exec-git):
# N clones of a small plugin repository over file://, N updates that find nothing new (the
# registry-driven check), next to `git clone --single-branch` of the same repository by the git
# CLI (also a process per clone). Prints milliseconds per operation; asserts nothing.
# Usage: bench/git_helper.sh [BUILD_DIR] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
n=${2:-100}
helper=$build/modules/source-exec-git
[[ -x $helper ]] || { echo "git_helper: $helper is not built" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

git() { command git -c user.name=bench -c user.email=bench@example.com -c init.defaultBranch=release "$@"; }
git init -q --bare "$work/plugin.git"
git init -q "$work/src"
for i in $(seq 1 20); do printf '#!/bin/sh\necho "[{\\"name\\": \\"x%d\\", \\"value\\": 1}]"\n' "$i" >"$work/src/file$i"; done
cp "$work/src/file1" "$work/src/plugin" && chmod +x "$work/src/plugin"
git -C "$work/src" add -A && git -C "$work/src" commit -qm plugin && git -C "$work/src" push -q "$work/plugin.git" release
url=file://$work/plugin.git

ms_per() { # start_ns count
  awk -v start="$1" -v now="$(date +%s%N)" -v n="$2" 'BEGIN { printf "%.1f", (now - start) / 1e6 / n }'
}
"$helper" clone "$url" release "$work/current" 10000 >/dev/null 2>&1

start=$(date +%s%N)
for i in $(seq 1 "$n"); do "$helper" clone "$url" release "$work/clone$i" 10000 >/dev/null 2>&1; done
echo "git_helper: clone through source-exec-git:       $(ms_per "$start" "$n") ms per clone ($n clones)"
rm -rf "$work"/clone*

start=$(date +%s%N)
for i in $(seq 1 "$n"); do "$helper" update "$url" release "$work/current" "$work/u" 10000 >/dev/null 2>&1; done
echo "git_helper: update finding nothing new:          $(ms_per "$start" "$n") ms per check ($n checks)"

start=$(date +%s%N)
for i in $(seq 1 "$n"); do git clone -q --single-branch --branch release "$url" "$work/g$i"; done
echo "git_helper: git clone --single-branch (git CLI): $(ms_per "$start" "$n") ms per clone ($n clones)"
