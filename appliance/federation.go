package appliance

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"

	"chatbox/services/mdns"
	"chatbox/services/xmpp"
	"chatbox/webadmin"
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
		Enabled:      true,
		Listen:       c.Listen,
		TLSListen:    c.TLSListen,
		Hosts:        FederationPairs(c.Hosts),
		Pinned:       FederationPairs(c.Pinned),
		Allow:        c.Allow,
		Block:        c.Block,
		Secret:       secret,
		QueueTimeout: c.QueueTimeout,
		// Per remote domain (services/xmpp s2s_limits.go).
		StanzasPerSecond: float64(c.StanzasPerSecond),
		StanzaBurst:      2 * c.StanzasPerSecond,
		RemoteOccupants:  c.RemoteOccupants,
		OnState:          b.federationState(),
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

// The web admin's Federation page (webadmin.FederationAPI): the peers
// the XMPP door holds for approval, approved (pinned) and blocked, and
// the owner's decisions, applied to the running door at once and saved
// to federation.pinned / federation.block through the settings editor's
// path (SaveSettings), so that they hold after a restart.

var _ webadmin.FederationAPI = webBox{}

func (w webBox) fedDoor() (*xmpp.Server, error) {
	door := w.Box.xmppDoor.Load()
	if door == nil || !w.Box.cfg.Federation.Enabled {
		return nil, webadmin.ErrFederationOff
	}
	return door, nil
}

// FederationPeers lists the peers by state and domain.
func (w webBox) FederationPeers() ([]webadmin.FederationPeer, error) {
	door, err := w.fedDoor()
	if err != nil {
		return nil, err
	}
	var out []webadmin.FederationPeer
	for _, p := range door.FederationPeers() {
		out = append(out, webadmin.FederationPeer(p))
	}
	return out, nil
}

// ApproveFederationPeer pins the peer's certificate now and in the
// settings.
func (w webBox) ApproveFederationPeer(domain, fingerprint string) (string, error) {
	door, err := w.fedDoor()
	if err != nil {
		return "", err
	}
	pin, err := door.ApproveFederationPeer(domain, fingerprint)
	if err != nil {
		return "", webadmin.FederationError(err.Error())
	}
	domain = strings.ToLower(strings.TrimSpace(domain))
	err = w.Box.saveFederationLists(func(pinned, block []string) ([]string, []string) {
		pinned = slices.DeleteFunc(pinned, func(e string) bool { return pairDomain(e) == domain })
		block = slices.DeleteFunc(block, func(d string) bool { return strings.EqualFold(strings.TrimSpace(d), domain) })
		return append(pinned, domain+"="+pin), block
	})
	if err != nil {
		return pin, fmt.Errorf("%s is approved until the box restarts, but the settings file was not saved: %w", domain, err)
	}
	w.Box.log.Info("federation: peer approved by the web admin; pin saved", "peer", domain, "file", w.Box.SettingsPath())
	return pin, nil
}

// RejectFederationPeer blocks the peer now and in the settings.
func (w webBox) RejectFederationPeer(domain string) error {
	door, err := w.fedDoor()
	if err != nil {
		return err
	}
	if err := door.RejectFederationPeer(domain); err != nil {
		return webadmin.FederationError(err.Error())
	}
	domain = strings.ToLower(strings.TrimSpace(domain))
	err = w.Box.saveFederationLists(func(pinned, block []string) ([]string, []string) {
		pinned = slices.DeleteFunc(pinned, func(e string) bool { return pairDomain(e) == domain })
		if !slices.ContainsFunc(block, func(d string) bool { return strings.EqualFold(strings.TrimSpace(d), domain) }) {
			block = append(block, domain)
		}
		return pinned, block
	})
	if err != nil {
		return fmt.Errorf("%s is blocked until the box restarts, but the settings file was not saved: %w", domain, err)
	}
	w.Box.log.Info("federation: peer blocked by the web admin; saved", "peer", domain, "file", w.Box.SettingsPath())
	return nil
}

func pairDomain(entry string) string {
	d, _, _ := strings.Cut(entry, "=")
	return strings.ToLower(strings.TrimSpace(d))
}

// saveFederationLists rewrites federation.pinned and federation.block of
// the settings file with edit's result, as the settings editor saves.
func (b *Box) saveFederationLists(edit func(pinned, block []string) ([]string, []string)) error {
	b.fedSave.Lock()
	defer b.fedSave.Unlock()
	path, host := b.SettingsPath(), osHostname()
	cfg, _, err := loadSettingsFile(path, host)
	if err != nil {
		return err
	}
	pinned, block := edit(slices.Clone(cfg.Federation.Pinned), slices.Clone(cfg.Federation.Block))
	err = SaveSettings(path, host, map[string]string{
		"federation.pinned": formValue(reflect.ValueOf(pinned)),
		"federation.block":  formValue(reflect.ValueOf(block)),
	})
	if p, ok := err.(SettingsProblems); ok {
		return fmt.Errorf("the settings refuse it: %v", p.Error())
	}
	return err
}
