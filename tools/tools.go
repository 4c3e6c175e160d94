//go:build tools

// Package tools pins the build tools chatbox's Makefile runs (go run
// -modfile or from this module), so packaging is reproducible: nfpm makes
// the Debian and OpenWrt packages.
package tools

import _ "github.com/goreleaser/nfpm/v2/cmd/nfpm"
