#!/usr/bin/env bash
# image/build.sh TARGET — build the chatbox gokrazy appliance image.
#
#   TARGET rpi   Raspberry Pi 3, 4, 5, Zero 2 W (kernel.rpi, Pi firmware,
#                rpi-eeprom): dist/image/chatbox-rpi.img.xz + .sha256
#   TARGET qemu  the same instance with kernel.arm64 and no Pi firmware,
#                for qemu-system-aarch64 (make image-test):
#                dist/image/chatbox-qemu.img (raw, not compressed)
#
# Every input is pinned in the repository: gok by image/gok/go.mod+go.sum,
# gokrazy's init, kernels, firmware and EEPROM by image/gokrazy/builddir/,
# chatbox by the repository's own go.mod+go.sum. The chatbox binary inside
# is built with -trimpath and a fixed version string, so two builds of the
# same commit carry the same binary (image/build.sh prints its SHA-256).
#
# Environment:
#   IMAGE_PASSWORD_FILE  file holding the password of gokrazy's web UI and
#                        update endpoint (letters, digits, . _ - only);
#                        unset: one is generated into
#                        dist/image/gokrazy-password.txt (kept and reused
#                        by later builds) and printed
#   IMAGE_BYTES          size of the image, i.e. of the smallest card it is
#                        meant for; /perm fills what gokrazy's 1.1 GB of
#                        boot and root partitions leave
#   IMAGE_HTTP_PORT      port of gokrazy's web UI (default 8080: chatbox's
#                        web admin keeps 80 and 443)
#   VERSION              chatbox's version string (default: git describe)
#   OUT                  output directory (default dist/image)
#   GOK_UPDATE_URL       instead of writing an image, send the build to a
#                        running box with gok update (A/B: the inactive root
#                        partition, then a reboot into it), e.g.
#                        http://gokrazy:PASSWORD@chatbox.local:8080/
set -euo pipefail

target=${1:-}
case $target in
  rpi)
    kernel=github.com/gokrazy/kernel.rpi
    firmware=github.com/gokrazy/firmware
    eeprom=github.com/gokrazy/rpi-eeprom
    serial=serial0,115200
    # ntp: a Pi has no real-time clock, and TLS needs the time.
    gokrazy_pkgs='"github.com/gokrazy/gokrazy/cmd/dhcp", "github.com/gokrazy/gokrazy/cmd/ntp", "github.com/gokrazy/gokrazy/cmd/randomd"'
    default_bytes=3670016000 # 3500 MiB: fits every card sold as 4 GB or more
    ;;
  qemu)
    kernel=github.com/gokrazy/kernel.arm64
    firmware=
    eeprom=
    serial=ttyAMA0,115200
    # No ntp: the test VM has an RTC and no way out (QEMU restrict=on).
    gokrazy_pkgs='"github.com/gokrazy/gokrazy/cmd/dhcp", "github.com/gokrazy/gokrazy/cmd/randomd"'
    default_bytes=2147483648
    ;;
  *)
    echo "usage: image/build.sh rpi|qemu" >&2
    exit 2
    ;;
esac

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
out=${OUT:-dist/image}
mkdir -p "$out"
out=$(cd "$out" && pwd)
version=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
bytes=${IMAGE_BYTES:-$default_bytes}
http_port=${IMAGE_HTTP_PORT:-8080}

for tool in mkfs.ext4 xz unsquashfs sha256sum; do
  if ! command -v "$tool" >/dev/null && ! [ -x "/sbin/$tool" ] && ! [ -x "/usr/sbin/$tool" ]; then
    echo "image/build.sh: $tool is missing: apt-get install -y e2fsprogs xz-utils squashfs-tools" >&2
    exit 1
  fi
done
export PATH=$PATH:/sbin:/usr/sbin

# The password of gokrazy's web UI and update endpoint.
if [ -n "${IMAGE_PASSWORD_FILE:-}" ]; then
  pwfile=$IMAGE_PASSWORD_FILE
else
  pwfile=$out/gokrazy-password.txt
  if ! [ -s "$pwfile" ]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr '+/' '._' >"$pwfile")
    echo "image/build.sh: generated the password of gokrazy's web UI and updates: $pwfile"
  fi
fi
password=$(head -n1 "$pwfile" | tr -d '\r\n')
if ! [[ $password =~ ^[A-Za-z0-9._-]{12,}$ ]]; then
  echo "image/build.sh: the password in $pwfile must be 12 or more letters, digits, '.', '_' or '-'" >&2
  exit 1
fi

# gok, pinned by image/gok/go.mod.
bin=$repo/build/image/bin
(cd image/gok && GOBIN=$bin GOFLAGS=-mod=readonly go install github.com/gokrazy/tools/cmd/gok)

# The instance: a fresh copy of the pinned build directories, a go.mod
# that builds chatbox from this working tree, and the settings file.
work=$repo/build/image/$target
update_url=${GOK_UPDATE_URL:-}
[ -z "$update_url" ] || work=$repo/build/image/$target-update
rm -rf "$work"
inst=$work/chatbox
mkdir -p "$inst/builddir/chatbox" "$work/etc-chatbox"
cp -r image/gokrazy/builddir/. "$inst/builddir/"
cat >"$inst/builddir/chatbox/go.mod" <<GOMOD
module gokrazy/build/chatbox

go 1.26

require chatbox v0.0.0-00010101000000-000000000000

replace chatbox => $repo
GOMOD
cp go.sum "$inst/builddir/chatbox/go.sum"
# The settings of the Debian package, with the data on /perm.
if ! grep -q '^data_dir = "/var/lib/chatbox"$' packaging/chatbox.toml; then
  echo "image/build.sh: packaging/chatbox.toml no longer sets data_dir = \"/var/lib/chatbox\"; update the rewrite below" >&2
  exit 1
fi
# The web admin takes 443 (gokrazy's own web UI is on $http_port).
sed 's|^data_dir = "/var/lib/chatbox"$|data_dir = "/perm/chatbox"|; s|/etc/chatbox/chatbox.toml|/perm/chatbox/chatbox.toml on the SD image|' \
  packaging/chatbox.toml >"$work/etc-chatbox/chatbox.toml"
sed -i '/^\[web\]$/a # On the SD image the web admin has the standard HTTPS port: https://chatbox.local/\nlisten = ":443"' \
  "$work/etc-chatbox/chatbox.toml"
go run ./cmd/chatbox check-config "$work/etc-chatbox/chatbox.toml" >/dev/null

optional() { # a JSON field only when set ("" disables the package)
  printf '"%s": "%s",' "$1" "$2"
}
cat >"$inst/config.json" <<JSON
{
  "Hostname": "chatbox",
  "Update": {
    "HTTPPort": "$http_port",
    "HTTPPassword": "$password",
    "UseTLS": "off"
  },
  "Environment": ["GOOS=linux", "GOARCH=arm64"],
  "Packages": ["chatbox/cmd/chatbox"],
  "PackageConfig": {
    "chatbox/cmd/chatbox": {
      "GoBuildFlags": ["-trimpath", "-ldflags=-s -w -buildid= -X main.version=$version"],
      "CommandLineFlags": ["--data=/perm/chatbox"],
      "ExtraFilePaths": {"/etc/chatbox": "$work/etc-chatbox"}
    }
  },
  "SerialConsole": "$serial",
  "GokrazyPackages": [$gokrazy_pkgs],
  $(optional KernelPackage "$kernel")
  $(optional FirmwarePackage "$firmware")
  $(optional EEPROMPackage "$eeprom")
  "InternalCompatibilityFlags": {"Update": "$update_url"}
}
JSON
jq . "$inst/config.json" >/dev/null

gok() { # gok with an empty home (it reads defaults there) but Go's caches
  local gomodcache gocache gopath
  gomodcache=$(go env GOMODCACHE) gocache=$(go env GOCACHE) gopath=$(go env GOPATH)
  mkdir -p "$work/home"
  XDG_CONFIG_HOME=$work/config HOME=$work/home GOMODCACHE=$gomodcache GOCACHE=$gocache GOPATH=$gopath \
    GOFLAGS=-buildvcs=false CGO_ENABLED=0 "$bin/gok" --parent_dir "$work" -i chatbox "$@"
}

if [ -n "$update_url" ]; then
  echo "image/build.sh: updating the box at ${update_url%%:*}://…@${update_url#*@} to chatbox $version ($target)"
  log=$work/gok.log
  gok update >"$log" 2>&1 || { cat "$log" >&2; echo "image/build.sh: gok update failed (log: $log)" >&2; exit 1; }
  echo "image/build.sh: update sent; the box reboots into it"
  exit 0
fi

img=$out/chatbox-$target.img
rm -f "$img" "$img.xz" "$img.xz.sha256"
log=$work/gok.log
echo "image/build.sh: building $img ($target, chatbox $version, $bytes bytes)"
gok overwrite --full "$img" --target_storage_bytes="$bytes" >"$log" 2>&1 ||
  { cat "$log" >&2; echo "image/build.sh: gok overwrite failed (log: $log)" >&2; exit 1; }
echo "$version" >"$out/chatbox-$target.version"

# /perm: gok prints where the ext4 goes; make it now, so the card works at
# first boot. Fixed UUID, hash seed and time: the same inputs give the same
# file system.
mkfs_line=$(grep -o 'mkfs.ext4 -F -E offset=[0-9]* [^ ]* [0-9]*' "$log" || true)
if [ -z "$mkfs_line" ]; then
  cat "$log" >&2
  echo "image/build.sh: gok did not print where /perm goes (its output changed?)" >&2
  exit 1
fi
read -r _ _ _ offset_arg _ perm_kb <<<"$mkfs_line"
offset=${offset_arg#offset=}
E2FSPROGS_FAKE_TIME=1 mkfs.ext4 -q -F -L perm -U 63686174-626f-4000-8000-7065726d0000 \
  -E "offset=$offset,hash_seed=63686174-626f-4000-8000-7065726d0000,root_owner=0:0" "$img" "${perm_kb}k"

# The chatbox binary inside (root file system A, 100 MiB after the boot
# partition), for the reproducibility check.
root_offset=$(sed -n 's/.*offset=\([0-9]*\).*/\1/p' <<<"$mkfs_line")
root_offset=$((root_offset - 1100 * 1024 * 1024 + 100 * 1024 * 1024))
rm -rf "$work/root"
unsquashfs -q -n -o "$root_offset" -d "$work/root" "$img" user/chatbox >/dev/null
bin_sum=$(sha256sum "$work/root/user/chatbox" | cut -d' ' -f1)
bin_size=$(stat -c %s "$work/root/user/chatbox")
echo "$bin_sum  user/chatbox" >"$out/chatbox-$target.chatbox.sha256"

if [ "$target" = rpi ]; then
  xz -T0 -6 -f "$img"
  (cd "$out" && sha256sum "chatbox-$target.img.xz" >"chatbox-$target.img.xz.sha256")
  size=$(stat -c %s "$img.xz")
  echo "image/build.sh: $img.xz: $size bytes compressed ($bytes bytes flashed)"
  echo "image/build.sh: SHA-256 $(cut -d' ' -f1 "$img.xz.sha256")"
else
  echo "image/build.sh: $img: $bytes bytes ($(du -k "$img" | cut -f1) KiB on disk, sparse)"
fi
echo "image/build.sh: chatbox binary inside: $bin_size bytes, SHA-256 $bin_sum"
echo "image/build.sh: gokrazy web UI: http://chatbox.local:$http_port/ (user gokrazy, password in $pwfile)"
