package appliance

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"chatbox/services/mdns"
	"chatbox/services/xmpp"
)

// federationSecretFile keeps the key of the box's dialback keys (XEP-0185)
// in the data directory, so that keys handed out before a restart still
// verify after it.
const federationSecretFile = "federation.key"

// federationConfig is the XMPP door's federation from the settings.
func (b *Box) federationConfig() (xmpp.Federation, error) {
	c := b.cfg.Federation
	if !c.Enabled {
		return xmpp.Federation{}, nil
	}
	// Without the file the door makes a secret for this run.
	secret, err := loadOrCreateSecret(filepath.Join(b.cfg.DataDir, federationSecretFile))
	return xmpp.Federation{
		Enabled:         true,
		Listen:          c.Listen,
		TLSListen:       c.TLSListen,
		Hosts:           FederationPairs(c.Hosts),
		Pinned:          FederationPairs(c.Pinned),
		Allow:           c.Allow,
		Block:           c.Block,
		Secret:          secret,
		QueueTimeout:    c.QueueTimeout,
		RemoteOccupants: c.RemoteOccupants,
		OnState:         b.federationState(),
		// LAN peers (.local) are found by mDNS on the announcing interfaces.
		LookupLocal: func(ctx context.Context, domain string) ([]string, error) {
			return mdns.LookupServer(ctx, domain, b.cfg.MDNS.Interfaces)
		},
	}, err
}

// loadOrCreateSecret reads a 32-byte secret, making it on first use.
func loadOrCreateSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) >= 32 {
		return b, nil
	}
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("federation: read %s: %w (check the data directory's permissions)", path, err)
	}
	b = make([]byte, 32)
	rand.Read(b)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("federation: write %s: %w (check the data directory's permissions)", path, err)
	}
	return b, nil
}

// federationState publishes the state of the links to other servers when
// it changes (the WAN LED follows the hw package's federation.* events).
func (b *Box) federationState() func(int) {
	var mu sync.Mutex
	last := -2
	return func(st int) {
		mu.Lock()
		defer mu.Unlock()
		if st == last {
			return
		}
		last = st
		kind := "federation.disconnected"
		switch st {
		case 1:
			kind = "federation.connected"
		case 0:
			kind = "federation.retrying"
		}
		b.hub.publish(Event{Kind: kind})
	}
}
