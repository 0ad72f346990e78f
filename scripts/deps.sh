#!/usr/bin/env bash
# Installs the Debian packages that building and testing the agent need, only when missing.
# Safe to run repeatedly; `make run` and `make test` call it first.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ccache git
  libpoco-dev libgit2-dev libtomlplusplus-dev libsimdjson-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  influxdb curl prometheus wrk
  iproute2 libsystemd-dev systemd
  dpkg-dev file patchelf debootstrap
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: these packages are missing and installing them needs root: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
