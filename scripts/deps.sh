#!/usr/bin/env bash
# Installs the Debian packages that building and testing the agent need, only when missing.
# Safe to run repeatedly; `make run` and `make test` call it first. Works on Debian 12 (bookworm)
# and 13 (trixie): where their package names differ, an entry lists alternatives "a|b", and the
# first one the archive offers is installed (one already installed satisfies the entry).
set -euo pipefail

packages=(
  build-essential cmake pkg-config ccache git
  libpoco-dev libgit2-dev libssh2-1-dev libtomlplusplus-dev libsimdjson-dev libseccomp-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  # the sanitizer and libFuzzer runtimes of the default clang: clang 19 on 13, clang 14 on 12
  clang "libclang-rt-dev|libclang-rt-14-dev"
  influxdb curl prometheus wrk
  iproute2 libsystemd-dev systemd
  openssh-server # the tests start their own sshd: only the binary is needed
  dpkg-dev file patchelf debootstrap
  chromium # the status page test drives it headless (tests/integration/StatusPageTest.cpp)
)

# (grep without -q: with pipefail, a grep that stops early would fail the pipe through SIGPIPE)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep "install ok installed" >/dev/null; }
# The archive has a version of $1 to install (apt-cache policy says nothing of unknown names).
offered() { apt-cache policy "$1" 2>/dev/null | grep '^  Candidate: [^(]' >/dev/null; }

missing=() # entries none of whose alternatives is installed
for entry in "${packages[@]}"; do
  satisfied=
  IFS='|' read -ra alternatives <<<"$entry"
  for p in "${alternatives[@]}"; do installed "$p" && satisfied=1 && break; done
  [[ -n $satisfied ]] || missing+=("$entry")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: these packages are missing and installing them needs root: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq

install=() unavailable=()
for entry in "${missing[@]}"; do
  chosen=
  IFS='|' read -ra alternatives <<<"$entry"
  for p in "${alternatives[@]}"; do offered "$p" && chosen=$p && break; done
  if [[ -n $chosen ]]; then install+=("$chosen"); else unavailable+=("$entry"); fi
done
if [ ${#unavailable[@]} -gt 0 ]; then
  echo "deps: the archive offers none of: ${unavailable[*]} (is apt's archive reachable?)" >&2
  exit 1
fi

# Installing must not start services on this machine (or in a build root): the postinst scripts
# of openssh-server and influxdb start their daemons through invoke-rc.d or deb-systemd-invoke,
# which ask /usr/sbin/policy-rc.d first; 101 means "not allowed". Only a policy we created is
# removed again.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\n# deps.sh: no service starts while it installs packages\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 0755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
echo "deps: installing ${install[*]}"
apt-get install -y -qq --no-install-recommends "${install[@]}"
