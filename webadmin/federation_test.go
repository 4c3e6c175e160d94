package webadmin

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// The fake box's federation (FederationAPI): one peer pending, one
// approved, one blocked; decisions are checked, not kept (the real
// behaviour is tested end to end in services/xmpp).
const fakePin = "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

func (b *fakeBox) FederationPeers() ([]FederationPeer, error) {
	return []FederationPeer{
		{Domain: "pending.local", State: "pending", Fingerprint: fakePin, Addr: "10.0.0.7:5269", Since: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)},
		{Domain: "friend.local", State: "approved", Fingerprint: fakePin},
		{Domain: "pest.local", State: "blocked"},
	}, nil
}

func (b *fakeBox) ApproveFederationPeer(domain, fp string) (string, error) {
	if domain != "pending.local" || fp != "" && fp != fakePin {
		return "", FederationError("not awaiting approval with that certificate")
	}
	return fakePin, nil
}

func (b *fakeBox) RejectFederationPeer(domain string) error {
	if domain == "" {
		return FederationError("name the domain to block")
	}
	return nil
}

func TestFederationPage(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	wantRedirect(t, f.browser().get("/admin/federation"), "/admin/login")
	r := b.get("/admin/federation")
	want(t, r, http.StatusOK, "pending.local", fakePin, "10.0.0.7:5269", "friend.local", "pest.local",
		`action="/admin/federation/approve"`, `action="/admin/federation/reject"`)
	// The approved table lists friend.local, not pending.local.
	approved := r.body[strings.Index(r.body, "<h2>Approved</h2>"):]
	if !strings.Contains(approved, "friend.local") || strings.Contains(approved, "pending.local") {
		t.Fatalf("approved section:\n%s", approved)
	}
	refusals(t, f, b, "/admin/federation/approve", "domain", "pending.local", "fingerprint", fakePin)
	refusals(t, f, b, "/admin/federation/reject", "domain", "pending.local")
	b.get("/admin/federation")
	wantRedirect(t, b.post("/admin/federation/approve", "domain", "pending.local", "fingerprint", fakePin), "/admin/federation?done=approved")
	want(t, b.get("/admin/federation?done=approved"), http.StatusOK, "Server approved")
	want(t, b.post("/admin/federation/approve", "domain", "other.local", "fingerprint", fakePin), http.StatusConflict, "other.local: not awaiting approval")
	wantRedirect(t, b.post("/admin/federation/reject", "domain", "pending.local"), "/admin/federation?done=rejected")
}

func TestFederationAPI(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	tok := newToken(t, b, "fed")
	st, body, _ := f.call("GET", "/api/v1/federation/peers", "", "")
	wantErr(t, st, body, http.StatusUnauthorized, "")
	st, _, list := f.call("GET", "/api/v1/federation/peers", tok, "")
	if st != http.StatusOK || len(list) != 3 {
		t.Fatalf("GET peers: %d %v", st, list)
	}
	if p := list[0].(map[string]any); p["domain"] != "pending.local" || p["state"] != "pending" || p["fingerprint"] != fakePin ||
		p["addr"] != "10.0.0.7:5269" || p["since"] != "2026-12-01T08:00:00Z" {
		t.Fatalf("first peer %v", p)
	}
	if p := list[2].(map[string]any); p["domain"] != "pest.local" || p["since"] != nil || p["fingerprint"] != nil {
		t.Fatalf("blocked peer %v (want no since, no fingerprint)", p)
	}
	st, body, _ = f.call("POST", "/api/v1/federation/peers", tok, `{"domain":"pending.local","action":"approve"}`)
	if st != http.StatusOK || body["state"] != "approved" || body["fingerprint"] != fakePin {
		t.Fatalf("approve: %d %v", st, body)
	}
	st, body, _ = f.call("POST", "/api/v1/federation/peers", tok, `{"domain":"Pest.local ","action":"reject"}`)
	if st != http.StatusOK || body["state"] != "blocked" || body["domain"] != "pest.local" {
		t.Fatalf("reject: %d %v", st, body)
	}
	st, body, _ = f.call("POST", "/api/v1/federation/peers", tok, `{"domain":"pending.local","action":"approve","fingerprint":"sha256:ff"}`)
	wantErr(t, st, body, http.StatusConflict, "fingerprint")
	st, body, _ = f.call("POST", "/api/v1/federation/peers", tok, `{"domain":"pending.local","action":"maybe"}`)
	wantErr(t, st, body, http.StatusBadRequest, "action")
	st, body, _ = f.call("POST", "/api/v1/federation/peers", tok, `{"action":"reject"}`)
	wantErr(t, st, body, http.StatusBadRequest, "domain")
	st, body, _ = f.call("POST", "/api/v1/federation/peers", tok, `{"domain":"x.local","action":"reject","extra":1}`)
	wantErr(t, st, body, http.StatusBadRequest, "extra")
	st, body, _ = f.call("DELETE", "/api/v1/federation/peers", tok, "")
	wantErr(t, st, body, http.StatusMethodNotAllowed, "")
}
