//go:build gokrazy

// This file is built only into the SD image: gokrazy's build (gok) always
// sets the build tag "gokrazy", so the normal binary neither imports
// github.com/gokrazy/gokrazy nor grows.

package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/gokrazy/gokrazy"
)

// seedSettings is the settings file the SD image ships on its read-only
// root file system (image/build.sh puts it there). At first start it is
// copied to <data>/chatbox.toml on /perm, where the web admin can edit it.
const seedSettings = "/etc/chatbox/chatbox.toml"

// netWait bounds the wait for a default route: a box on a LAN without a
// router (no gateway) is announced all the same after it.
const netWait = 30 * time.Second

// networkWaiter returns what mDNS waits for before its first announcement:
// at boot, gokrazy starts chatbox before DHCP has configured an address.
func networkWaiter(log *slog.Logger) func(ctx context.Context) {
	return func(ctx context.Context) {
		done := make(chan struct{})
		go func() {
			// WaitFor takes no context; if the route never comes this
			// goroutine stays blocked, once per process.
			gokrazy.WaitFor("net-route")
			close(done)
		}()
		t := time.NewTimer(netWait)
		defer t.Stop()
		select {
		case <-done:
			log.Info("network is up (default route); announcing on the LAN")
		case <-t.C:
			log.Warn("no default route after waiting; announcing on the LAN anyway", "waited", netWait)
		case <-ctx.Done():
		}
	}
}
