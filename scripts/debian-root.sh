# Minimal Debian roots for the install tests (scripts/package-test.sh, scripts/release-test.sh);
# sourced, not run. A root is made once per release with debootstrap (minbase, from the archive
# this machine's apt uses) and cached as a tar; every use extracts a fresh copy, mounts what
# programs expect (/proc, /sys, /dev, /dev/pts, /dev/shm, /run) and removes it afterwards, never
# deleting through a mount that is still there.

# The first Debian archive apt is configured with (not the security one).
debian_mirror() {
  local uri
  uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | grep -m1 debian || true)
  [[ -n $uri ]] || uri=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | grep -m1 debian || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

# debian_root_cache SUITE TAR: debootstraps SUITE into TAR unless it is there (log: TAR.log).
# Fails, saying so, when the archive cannot be reached.
debian_root_cache() {
  local suite=$1 tar=$2 archive new
  [[ -f $tar ]] && return 0
  archive=$(debian_mirror)
  new=$tar.root
  echo "making a minimal Debian $suite root from $archive (once; cached in $tar)"
  rm -rf "$new"
  mkdir -p "$(dirname "$tar")"
  if ! debootstrap --variant=minbase "$suite" "$new" "$archive" >"$tar.log" 2>&1; then
    tail -n 5 "$tar.log" >&2
    rm -rf "$new"
    echo "debootstrap could not make a Debian $suite root from $archive (log: $tar.log): the Debian archive is needed" >&2
    return 1
  fi
  tar -C "$new" -cf "$tar.new" . && mv "$tar.new" "$tar"
  rm -rf "$new"
}

# debian_root_open TAR ROOT: a fresh copy of TAR at ROOT, with the usual mounts and the host's DNS.
debian_root_open() {
  local tar=$1 root=$2
  debian_root_close "$root" || return 1
  mkdir -p "$root"
  tar -C "$root" -xf "$tar"
  # The root a mount point of its own, as / is on a machine: `mount --make-rprivate /` (ip netns,
  # tests that unshare a mount namespace) fails with EINVAL on a plain directory.
  mount --bind "$root" "$root" && mount --make-private "$root"
  mount -t proc proc "$root/proc"
  # Private binds: where / is a shared mount (systemd), a mount made under the root's /dev would
  # otherwise appear on the host's /dev as well.
  mount --bind /sys "$root/sys" && mount --make-private "$root/sys"
  mount --bind /dev "$root/dev" && mount --make-private "$root/dev"
  mount --bind /dev/pts "$root/dev/pts" && mount --make-private "$root/dev/pts"
  mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
  # A fresh /run as at boot (ip netns keeps its namespaces in /run/netns, sshd wants /run/sshd).
  mount -t tmpfs -o mode=755 tmpfs "$root/run"
  cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  [[ -s $root/etc/hosts ]] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
}

# debian_root_mount ROOT DIR TARGET: DIR of the host at ROOT/TARGET (a cache that outlives the root).
debian_root_mount() {
  mkdir -p "$2" "$1/$3"
  mount --bind "$2" "$1/$3" && mount --make-private "$1/$3"
}

# debian_root_close ROOT: unmounts everything under ROOT (deepest first, also what programs in the
# root mounted, such as /run/netns/*), then deletes ROOT unless a mount is left.
debian_root_close() {
  local root=$1 mount
  [[ -e $root ]] || return 0
  root=$(realpath "$root")
  for mount in $(awk -v r="$root" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r); do
    umount "$mount" 2>/dev/null || umount -l "$mount" || true
  done
  if awk -v r="$root" '$2 == r || index($2, r "/") == 1 {found = 1} END {exit !found}' /proc/mounts; then
    echo "mounts under $root remain; not deleting it" >&2
    return 1
  fi
  rm -rf --one-file-system "$root"
}

# in_debian_root ROOT COMMAND...: COMMAND in ROOT with a clean environment (plus $ROOT_ENV words).
in_debian_root() {
  local root=$1; shift
  chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 ${ROOT_ENV:-} "$@"
}
