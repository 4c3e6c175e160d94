//go:build tools

// Package gok pins gokrazy's gok tool for make image (image/build.sh
// installs it from this module, so its version and go.sum are the
// repository's). The proxy serves no @latest for github.com/gokrazy/tools;
// change the pseudo-version with go get github.com/gokrazy/tools@VERSION.
package gok

import _ "github.com/gokrazy/tools/cmd/gok"
