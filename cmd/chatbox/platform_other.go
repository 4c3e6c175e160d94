//go:build !gokrazy

package main

import (
	"context"
	"log/slog"
)

// seedSettings is empty off gokrazy: no settings file is copied into the
// data directory (see platform_gokrazy.go).
const seedSettings = ""

// networkWaiter is nil off gokrazy: mDNS announces at once and follows
// address changes by itself.
func networkWaiter(*slog.Logger) func(ctx context.Context) { return nil }
