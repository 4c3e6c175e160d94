package xmpp

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

// TestFederationLocalLookup: a .local peer not in the host map is found
// by Federation.LookupLocal (mDNS in the box; a table here), and its
// subdomains go where it goes.
func TestFederationLocalLookup(t *testing.T) {
	aAddr, bAddr := randomListen(), randomListen()
	var mu sync.Mutex
	var asked []string
	lookup := func(table map[string]string) func(context.Context, string) ([]string, error) {
		return func(_ context.Context, domain string) ([]string, error) {
			mu.Lock()
			asked = append(asked, domain)
			mu.Unlock()
			for d, a := range table {
				if domain == d || strings.HasSuffix(domain, "."+d) {
					return []string{a}, nil
				}
			}
			return nil, errors.New("no server for " + domain + " answered")
		}
	}
	a := inprocFed(t, "a.local", aAddr, Federation{Allow: []string{"b.local"}, LookupLocal: lookup(map[string]string{"b.local": bAddr})}, "alice")
	b := inprocFed(t, "b.local", bAddr, Federation{Allow: []string{"a.local"}, LookupLocal: lookup(map[string]string{"a.local": aAddr})}, "bob")
	alice, bob := plainLogin(t, a, "alice"), plainLogin(t, b, "bob")
	alice.write(`<message to="bob@b.local" type="chat" id="m1"><body>found you</body></message>`)
	bob.expectRaw("alice's message", isMsg("found you"))
	bob.write(`<message to="` + alice.jid + `" type="chat" id="m2"><body>and you</body></message>`)
	alice.expectRaw("bob's message", isMsg("and you"))
	mu.Lock()
	got := strings.Join(asked, ",")
	mu.Unlock()
	if !strings.Contains(got, "b.local") || !strings.Contains(got, "a.local") {
		t.Fatalf("mDNS lookups %q; want b.local (by a) and a.local (by b)", got)
	}
	// The resolver step itself: subdomains and unknown names.
	if r := a.fed.resolve(context.Background(), "rooms.b.local"); len(r) != 1 || r[0].addr != bAddr || r[0].direct {
		t.Errorf("rooms.b.local resolves to %v; want %s (STARTTLS)", r, bAddr)
	}
	if r := a.fed.resolve(context.Background(), "c.local"); len(r) != 0 {
		t.Errorf("c.local resolves to %v; want nothing (never DNS for .local)", r)
	}
}
