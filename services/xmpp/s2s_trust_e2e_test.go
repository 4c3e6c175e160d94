package xmpp

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Trust on first contact end to end: two real boxes, a.local and
// b.local, pointed at each other by the host map, trusting nothing. The
// first message holds each as pending on the other; the owners approve
// through the web admin (a's by its JSON API, b's by the Federation
// page's form); the message that waited is delivered without a restart;
// the pin is in the settings file and survives a restart.

var (
	fedWebRe   = regexp.MustCompile(`msg=listening door=web addr=(\S+)`)
	fedCodeRe  = regexp.MustCompile(`msg="web admin setup code" code=(\S+)`)
	fedCSRFRe  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	fedTokenRe = regexp.MustCompile(`<code id="new-token">([^<]+)</code>`)
)

// webAdmin is a logged-in web admin session with an API token.
type webAdmin struct {
	t     *testing.T
	base  string
	c     *http.Client
	csrf  string
	token string
}

// claimWebAdmin sets up b's web admin with its setup code and makes an
// API token.
func claimWebAdmin(t *testing.T, b *box) *webAdmin {
	t.Helper()
	log := b.logText()
	web, code := fedWebRe.FindStringSubmatch(log), fedCodeRe.FindStringSubmatch(log)
	if web == nil || code == nil {
		t.Fatalf("no web admin address or setup code in the log:\n%s", log)
	}
	jar, _ := cookiejar.New(nil)
	a := &webAdmin{t: t, base: "http://" + web[1], c: &http.Client{Jar: jar, Timeout: waitLimit,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	a.page("GET", "/admin/setup", nil)
	if st, _ := a.page("POST", "/admin/setup", url.Values{"name": {"Box"}, "password": {"correct horse battery"},
		"password2": {"correct horse battery"}, "code": {code[1]}}); st != http.StatusSeeOther {
		t.Fatalf("setup: status %d", st)
	}
	a.page("GET", "/admin/tokens", nil)
	_, body := a.page("POST", "/admin/tokens/create", url.Values{"name": {"test"}})
	m := fedTokenRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no API token made:\n%s", body)
	}
	a.token = m[1]
	return a
}

// page sends a browser request (a POST with the last page's CSRF token).
func (a *webAdmin) page(method, path string, form url.Values) (int, string) {
	a.t.Helper()
	var body io.Reader
	if form != nil {
		form.Set("csrf", a.csrf)
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, a.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := fedCSRFRe.FindSubmatch(b); m != nil {
		a.csrf = string(m[1])
	}
	return resp.StatusCode, string(b)
}

// api calls the JSON API and decodes the answer into out.
func (a *webAdmin) api(method, path, body string, out any) int {
	a.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, a.base+path, r)
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// waitAPIPeer waits (bounded) until the API lists domain in state.
func (a *webAdmin) waitAPIPeer(domain, state string) FederationPeer {
	a.t.Helper()
	deadline := time.Now().Add(waitLimit)
	var peers []FederationPeer
	for time.Now().Before(deadline) {
		peers = nil
		if st := a.api("GET", "/api/v1/federation/peers", "", &peers); st != http.StatusOK {
			a.t.Fatalf("GET /api/v1/federation/peers: %d", st)
		}
		for _, p := range peers {
			if p.Domain == domain && p.State == state {
				return p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.t.Fatalf("%s not %s within %s: %+v", domain, state, waitLimit, peers)
	return FederationPeer{}
}

func TestFederationFirstContactE2E(t *testing.T) {
	a := &fedNode{domain: "a.local", s2s: randomListen()}
	b := &fedNode{domain: "b.local", s2s: randomListen()}
	for _, n := range []struct{ me, other *fedNode }{{a, b}, {b, a}} {
		n.me.settings = []string{
			"domain=" + n.me.domain,
			"federation.enabled=true",
			"federation.listen=" + n.me.s2s,
			"federation.hosts=" + n.other.domain + "=" + n.other.s2s,
			"web.listen=127.0.0.1:0",
			"hw.backend=sim",
		}
	}
	a.box = startFedBox(t, filepath.Join(t.TempDir(), "a"), []string{"alice"}, a.settings)
	b.box = startFedBox(t, filepath.Join(t.TempDir(), "b"), []string{"bob"}, b.settings)
	adminA, adminB := claimWebAdmin(t, a.box), claimWebAdmin(t, b.box)
	alice, bob := a.login(t, "alice", "phone"), b.login(t, "bob", "phone")

	alice.send(`<message to="bob@b.local" type="chat" id="m1"><body>knock knock</body></message>`)
	pb := adminA.waitAPIPeer("b.local", "pending")
	if !strings.HasPrefix(pb.Fingerprint, "sha256:") || len(pb.Fingerprint) != 71 || pb.Addr != b.s2s {
		t.Fatalf("pending b.local on a: %+v; want a SHA-256 fingerprint at %s", pb, b.s2s)
	}
	// a's owner approves by the API, with a wrong fingerprint first.
	var apiErr struct{ Error, Field string }
	if st := adminA.api("POST", "/api/v1/federation/peers", `{"domain":"b.local","action":"approve","fingerprint":"sha256:`+strings.Repeat("ab", 32)+`"}`, &apiErr); st != http.StatusConflict || !strings.Contains(apiErr.Error, "check it again") {
		t.Fatalf("approve with another fingerprint: %d %+v; want 409", st, apiErr)
	}
	var approved FederationPeer
	if st := adminA.api("POST", "/api/v1/federation/peers", `{"domain":"b.local","action":"approve","fingerprint":"`+pb.Fingerprint+`"}`, &approved); st != http.StatusOK || approved.State != "approved" || approved.Fingerprint != pb.Fingerprint {
		t.Fatalf("approve b.local: %d %+v", st, approved)
	}
	// b's owner sees a.local on the Federation page and approves it there.
	pa := adminB.waitAPIPeer("a.local", "pending")
	st, page := adminB.page("GET", "/admin/federation", nil)
	if st != http.StatusOK || !strings.Contains(page, "a.local") || !strings.Contains(page, pa.Fingerprint) {
		t.Fatalf("Federation page: %d, want a.local and %s:\n%s", st, pa.Fingerprint, page)
	}
	if st, _ := adminB.page("POST", "/admin/federation/approve", url.Values{"domain": {"a.local"}, "fingerprint": {pa.Fingerprint}}); st != http.StatusSeeOther {
		t.Fatalf("approve on the page: status %d", st)
	}
	m := bob.expect("the message that waited", isMsg("knock knock"))
	if m.Get("from") != alice.jid {
		t.Fatalf("bob got %s", m)
	}
	bob.send(`<message to="%s" type="chat" id="m2"><body>who is there?</body></message>`, alice.jid)
	alice.expect("bob's answer", isMsg("who is there?"))

	// The pin is in a's settings file and holds after a restart.
	saved, err := os.ReadFile(filepath.Join(a.data, "chatbox.toml"))
	if err != nil || !strings.Contains(string(saved), `"b.local=`+pb.Fingerprint+`"`) {
		t.Fatalf("a's settings file (%v) lacks the pin b.local=%s:\n%s", err, pb.Fingerprint, saved)
	}
	a.restart(t)
	adminA = claimWebAdminAgain(t, a.box, adminA)
	if p := adminA.waitAPIPeer("b.local", "approved"); p.Fingerprint != pb.Fingerprint {
		t.Fatalf("after the restart b.local is pinned to %s, want %s", p.Fingerprint, pb.Fingerprint)
	}
	alice = a.login(t, "alice", "phone")
	alice.send(`<message to="bob@b.local" type="chat" id="m3"><body>still friends</body></message>`)
	bob.expect("the message after a's restart", isMsg("still friends"))
}

// claimWebAdminAgain points an admin at the restarted box's web address
// (its token is kept in the data directory).
func claimWebAdminAgain(t *testing.T, b *box, old *webAdmin) *webAdmin {
	t.Helper()
	all := fedWebRe.FindAllStringSubmatch(b.logText(), -1)
	if all == nil {
		t.Fatalf("no web admin address in the log")
	}
	return &webAdmin{t: t, base: "http://" + all[len(all)-1][1], c: old.c, token: old.token}
}
