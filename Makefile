# chatbox — build, run, test, lint, cross-compile.
GO          ?= go
VERSION     ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
DIST        := dist

# The binary is static: no cgo, ever (the tests may use it for -race).
export CGO_ENABLED := 0

.PHONY: all build run test lint cross clean assets webchat-assets deb deb-test openwrt bench bench-smoke fuzz test-cross

all: build

# The web admin's htmx comes from npm (package.json, pinned in
# package-lock.json), copied where the binary embeds it; a plain go build
# without it still serves working pages, without the live parts.
HTMX := webadmin/static/vendor/htmx.min.js
NPM  ?= npm
node_modules/.package-lock.json: package.json package-lock.json
	$(NPM) ci --ignore-scripts --no-audit --no-fund
$(HTMX): node_modules/.package-lock.json
	cp node_modules/htmx.org/dist/htmx.min.js $@
assets: $(HTMX)

build: $(HTMX) webchat-assets
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/chatbox ./cmd/chatbox

# Run with the built-in defaults: everything on localhost, data in ./chatbox-data.
run: $(HTMX) webchat-assets
	$(GO) run ./cmd/chatbox

# Every test: unit, end-to-end (real binary on loopback), fuzz seeds,
# under the race detector.
test: $(HTMX) webchat-assets
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m ./...

# Go benchmarks of the hot paths, BENCHCOUNT runs each (for benchstat:
# `make bench > old.txt`, change, `make bench > new.txt`, `benchstat old.txt
# new.txt`); the history benchmark on a 1,000,000-message store.
BENCHCOUNT ?= 6
BENCHTIME  ?= 1s
bench:
	CHATBOX_BENCH_MESSAGES=$${CHATBOX_BENCH_MESSAGES:-1000000} \
	  $(GO) test -run '^$$' -bench . -benchmem -count $(BENCHCOUNT) -benchtime $(BENCHTIME) ./...

# Every benchmark once, so they never rot (CI).
bench-smoke:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

# Every fuzz target (func Fuzz* in a _test.go file), one after the other,
# FUZZTIME each (`make fuzz FUZZTIME=10m` for a long run). A failing input
# is written to the package's testdata/fuzz/<target>/: keep it, it becomes
# a regression test in `make test`. Inputs are not minimized
# (FUZZMINIMIZE=0): go's minimizer, which also shrinks every new
# interesting input, can outlast a short FUZZTIME and fail the run with
# "context deadline exceeded"; `make fuzz FUZZMINIMIZE=60s` turns it on.
# A run that ends with only that message (no failing input) is tried once
# more (scripts/fuzz-all).
# FUZZ_INTAKE are the targets fed what a client or a peer sends (IRC
# lines, XMPP client and server streams, both doors' WebSocket frames):
# FUZZTIME_INTAKE each (CI: 30 s, the rest 8 s).
FUZZTIME ?= 30s
FUZZTIME_INTAKE ?= $(FUZZTIME)
FUZZ_INTAKE := FuzzClientLines FuzzMessageLines FuzzWebSocketLines FuzzStanzaIntake FuzzStreamRest FuzzS2SIntake FuzzWebSocketFrames
FUZZMINIMIZE ?= 0
fuzz:
	GO=$(GO) FUZZ_INTAKE="$(FUZZ_INTAKE)" FUZZTIME_INTAKE=$(FUZZTIME_INTAKE) scripts/fuzz-all $(FUZZTIME) $(FUZZMINIMIZE)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Five static binaries; prints each one's size and checks it links nothing.
TARGETS := linux/amd64 linux/arm64 linux/arm/6 linux/arm/7 linux/mipsle/softfloat
cross:
	@mkdir -p $(DIST)
	@set -e; for t in $(TARGETS); do \
	  os=$${t%%/*}; rest=$${t#*/}; arch=$${rest%%/*}; variant=$${rest#$$arch}; variant=$${variant#/}; \
	  out=$(DIST)/chatbox-$$os-$$arch$${variant:+-$$variant}; \
	  case $$arch in arm) export GOARM=$$variant;; mipsle) export GOMIPS=$$variant;; esac; \
	  GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$out ./cmd/chatbox; \
	  unset GOARM GOMIPS; \
	done
	$(GO) run ./scripts/checkstatic $(DIST)/chatbox-*

# Debian packages (amd64, arm64, armhf) in dist/, checked by lintian;
# nfpm is pinned in tools/go.mod. See packaging/build.sh.
deb:
	packaging/build.sh deb

# Installs the amd64 package into a throw-away Debian root (debootstrap,
# cached in packaging/.cache) and starts it there. Needs root; the first
# run downloads and installs Debian (about 7 minutes), later ones 20 s.
deb-test:
	DEB_ARCHES=amd64 packaging/build.sh deb
	CHATBOX_DEB_TEST=1 $(GO) test -count=1 -timeout 30m -v -run 'TestDebInstall' ./packaging/

# OpenWrt packages (.ipk for 24.10, .apk for 25.x) for mipsel_24kc,
# aarch64_generic and arm_cortex-a7 in dist/.
openwrt:
	packaging/build.sh openwrt

# The unit tests on 32-bit targets under qemu-user (Debian package
# qemu-user-static): 64-bit atomics' alignment, int overflow, endianness
# (mipsle is little-endian too, but its alignment rules are strict).
# End-to-end tests are skipped (CHATBOX_E2E=off; and the TestEndToEnd of
# cmd/chatbench and services/mdns, which build or re-execute binaries of
# their own): the binaries they run cannot run beside the emulated tests
# without binfmt_misc.
CROSS_TEST := arm/6/qemu-arm-static mipsle/softfloat/qemu-mipsel-static
test-cross:
	@set -e; for t in $(CROSS_TEST); do \
	  arch=$${t%%/*}; rest=$${t#*/}; variant=$${rest%%/*}; qemu=$${rest#*/}; \
	  command -v $$qemu >/dev/null || { echo "$$qemu missing: apt-get install qemu-user-static"; exit 1; }; \
	  echo "== linux/$$arch $$variant under $$qemu"; \
	  case $$arch in arm) export GOARM=$$variant;; mipsle) export GOMIPS=$$variant;; esac; \
	  CHATBOX_E2E=off GOOS=linux GOARCH=$$arch $(GO) test -count=1 -timeout 30m -skip '^TestEndToEnd$$' -exec $$qemu ./...; \
	  unset GOARM GOMIPS; \
	done

# The web chat's Converse.js files (pinned in webchat/package-lock.json),
# copied into webchat/dist/ for go:embed: the script, its style, emoji
# data, images, fonts and sounds; no other locale than English, no OMEMO.
# The script, style and emoji data are kept gzipped (served as they are).
CONVERSE := webchat/node_modules/converse.js/dist
webchat-assets: webchat/dist/.built
webchat/dist/.built: webchat/package.json webchat/package-lock.json
	cd webchat && npm ci --ignore-scripts --no-audit --no-fund
	find webchat/dist -mindepth 1 ! -name README.md -delete
	cp $(CONVERSE)/converse.min.css $(CONVERSE)/emoji.json $(CONVERSE)/../LICENSE webchat/dist/
	cp -r $(CONVERSE)/images $(CONVERSE)/webfonts webchat/dist/
	mkdir -p webchat/dist/sounds && cp $(CONVERSE)/sounds/*.ogg $(CONVERSE)/sounds/*.mp3 webchat/dist/sounds/
	cp $(CONVERSE)/converse.min.js webchat/dist/
	gzip -9n webchat/dist/converse.min.js webchat/dist/converse.min.css webchat/dist/emoji.json
	touch $@

clean:
	rm -rf bin $(DIST) build $(HTMX)

# The Raspberry Pi SD image (gokrazy; Pi 3, 4, 5, Zero 2 W):
# dist/image/chatbox-rpi.img.xz and its .sha256. See image/build.sh for
# the password of gokrazy's web UI (IMAGE_PASSWORD_FILE) and the size.
.PHONY: image image-qemu image-test
image:
	VERSION=$(VERSION) bash image/build.sh rpi

# The same instance for qemu-system-aarch64 (kernel.arm64, no Pi firmware).
image-qemu:
	VERSION=$(VERSION) bash image/build.sh qemu

# Boots the image in QEMU: IRC and XMPP answer, /perm survives a reboot,
# A/B update with gok update and back (image/imagetest).
image-test: image-qemu
	CHATBOX_IMAGE_TEST=1 $(GO) test -count=1 -timeout 30m -v -run TestQEMUBoot ./image/imagetest/
