# chatbox — build, run, test, lint, cross-compile.
GO          ?= go
VERSION     ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
DIST        := dist

# The binary is static: no cgo, ever (the tests may use it for -race).
export CGO_ENABLED := 0

.PHONY: all build run test lint cross clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/chatbox ./cmd/chatbox

# Run with the built-in defaults: everything on localhost, data in ./chatbox-data.
run:
	$(GO) run ./cmd/chatbox

# Every test: unit, end-to-end (real binary on loopback), fuzz seeds,
# under the race detector.
test:
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m ./...

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

clean:
	rm -rf bin $(DIST)

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
