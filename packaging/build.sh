#!/usr/bin/env bash
# Builds chatbox's packages into dist/ (make deb, make openwrt):
#   packaging/build.sh deb       .deb for amd64, arm64, armhf (DEB_ARCHES), then lintian
#   packaging/build.sh openwrt   .ipk (OpenWrt 24.10) and .apk for
#                                mipsel_24kc, aarch64_generic, arm_cortex-a7
# nfpm comes from tools/go.mod (pinned); versions from scripts/pkgversion;
# file times from the last commit, so one commit gives the same packages.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
DIST=${DIST:-dist}
export CGO_ENABLED=0

nfpm=bin/nfpm
if [ ! -x "$nfpm" ] || [ tools/go.sum -nt "$nfpm" ]; then
  echo "== building nfpm (tools/go.mod)"
  (cd tools && "$GO" build -o ../"$nfpm" github.com/goreleaser/nfpm/v2/cmd/nfpm)
fi

version=$("$GO" run ./scripts/pkgversion)
apk_version=$("$GO" run ./scripts/pkgversion -apk)
commit=$(git rev-parse --short=12 HEAD)
date=$(git log -1 --format=%cI)
export SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)
describe=$(git describe --always --dirty 2>/dev/null || echo dev)
ldflags="-s -w -X main.version=$describe"

# build GOARCH GOARM|GOMIPS OUT: one static binary.
build() {
  local arch=$1 variant=$2 out=$3
  mkdir -p "$(dirname "$out")"
  case $arch in
    arm) GOARM=$variant GOOS=linux GOARCH=arm "$GO" build -trimpath -ldflags "$ldflags" -o "$out" ./cmd/chatbox ;;
    mipsle) GOMIPS=$variant GOOS=linux GOARCH=mipsle "$GO" build -trimpath -ldflags "$ldflags" -o "$out" ./cmd/chatbox ;;
    *) GOOS=linux GOARCH=$arch "$GO" build -trimpath -ldflags "$ldflags" -o "$out" ./cmd/chatbox ;;
  esac
}

deb() {
  local doc=$DIST/pkg/doc host=$DIST/pkg/host/chatbox
  rm -f "$DIST"/chatbox_*.deb
  # The man page comes from this machine's binary's --help.
  "$GO" build -trimpath -ldflags "$ldflags" -o "$host" ./cmd/chatbox
  mkdir -p "$doc"
  "$GO" run ./scripts/pkgdocs man "$host" "$version" "$date" | gzip -9n > "$doc/chatbox.1.gz"
  "$GO" run ./scripts/pkgdocs changelog "$version" "$date" "$commit" | gzip -9n > "$doc/changelog.gz"
  "$GO" run ./scripts/pkgdocs copyright "$host" > "$doc/copyright"
  local a goarch variant b
  for a in ${DEB_ARCHES:-amd64 arm64 armhf}; do
    case $a in armhf) goarch=arm variant=7 ;; *) goarch=$a variant= ;; esac
    b=$DIST/pkg/deb-$a
    build "$goarch" "$variant" "$b/chatbox"
    cp "$doc"/* "$b"/
    touch -d "@$SOURCE_DATE_EPOCH" "$b"/* packaging/debian/*
    DEB_ARCH=$a PKG_VERSION=$version PKG_BUILD=$b "$nfpm" package -p deb -f packaging/nfpm-deb.yaml -t "$DIST/" >/dev/null
  done
  ls -l "$DIST"/chatbox_*.deb
  if command -v lintian >/dev/null; then
    echo "== lintian"
    # Errors fail the build; warnings are shown.
    lintian --fail-on error --no-tag-display-limit "$DIST"/chatbox_*.deb
  else
    echo "lintian not installed (apt-get install -y lintian): packages not checked" >&2
  fi
}

openwrt() {
  rm -f "$DIST"/chatbox_*.ipk "$DIST"/chatbox_*.apk
  local t oarch goarch variant b p v r
  for t in mipsel_24kc:mipsle:softfloat aarch64_generic:arm64: arm_cortex-a7:arm:7; do
    IFS=: read -r oarch goarch variant <<<"$t"
    b=$DIST/pkg/openwrt-$oarch
    build "$goarch" "$variant" "$b/chatbox"
    touch -d "@$SOURCE_DATE_EPOCH" "$b/chatbox" packaging/openwrt/*
    for p in ipk apk; do
      v=$version r=
      [ "$p" = apk ] && v=$apk_version r=0
      OPENWRT_ARCH=$oarch PKG_VERSION=$v PKG_RELEASE=$r PKG_BUILD=$b "$nfpm" package -p "$p" -f packaging/nfpm-openwrt.yaml -t "$DIST/" >/dev/null
    done
  done
  ls -l "$DIST"/chatbox_*.ipk "$DIST"/chatbox_*.apk
}

case ${1:-} in
  deb) deb ;;
  openwrt) openwrt ;;
  *) echo "usage: packaging/build.sh deb|openwrt" >&2; exit 2 ;;
esac
