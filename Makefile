# chatbox — build, run, test, lint, cross-compile.
GO          ?= go
VERSION     ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
DIST        := dist

# The binary is static: no cgo, ever (the tests may use it for -race).
export CGO_ENABLED := 0

.PHONY: all build run test lint cross clean webchat-assets

all: build

build: webchat-assets
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/chatbox ./cmd/chatbox

# Run with the built-in defaults: everything on localhost, data in ./chatbox-data.
run: webchat-assets
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
	rm -rf bin $(DIST)
