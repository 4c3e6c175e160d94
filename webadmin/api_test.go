package webadmin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var newTokenRe = regexp.MustCompile(`<code id="new-token">([^<]+)</code>`)

// newToken makes an API token through the tokens page.
func newToken(t *testing.T, b *browser, name string) string {
	t.Helper()
	b.get("/admin/tokens")
	r := b.post("/admin/tokens/create", "name", name)
	want(t, r, http.StatusOK, "shown only this once", name)
	m := newTokenRe.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no token shown:\n%s", r.body)
	}
	return m[1]
}

// call sends an API request with token (none if ""), a JSON body if body
// is not "" and returns the status and the decoded body.
func (f *fixture) call(method, path, token, body string) (int, map[string]any, []any) {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, f.web.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return f.send(req)
}

func (f *fixture) send(req *http.Request) (int, map[string]any, []any) {
	f.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 && resp.Header.Get("Content-Type") != "application/json" {
		f.t.Fatalf("%s %s: Content-Type %q: %s", req.Method, req.URL, resp.Header.Get("Content-Type"), raw)
	}
	var obj map[string]any
	var list []any
	if len(raw) > 0 && raw[0] == '[' {
		json.Unmarshal(raw, &list)
	} else if len(raw) > 0 {
		if err := json.Unmarshal(raw, &obj); err != nil {
			f.t.Fatalf("%s: %v", raw, err)
		}
	}
	return resp.StatusCode, obj, list
}

// wantErr checks an API error's status and field.
func wantErr(t *testing.T, status int, body map[string]any, wantStatus int, field string) {
	t.Helper()
	if status != wantStatus || body["error"] == nil || body["error"] == "" {
		t.Fatalf("status %d %v, want %d with an error", status, body, wantStatus)
	}
	if f, _ := body["field"].(string); f != field {
		t.Fatalf("field %q (%v), want %q", f, body, field)
	}
}

func TestTokensPage(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	refusals(t, f, b, "/admin/tokens/create", "name", "x")
	refusals(t, f, b, "/admin/tokens/revoke", "id", "x")
	wantRedirect(t, f.browser().get("/admin/tokens"), "/admin/login")
	want(t, b.get("/admin/tokens"), http.StatusOK, "No tokens", "API tokens")
	r := b.post("/admin/tokens/create", "name", "")
	want(t, r, http.StatusBadRequest, `id="name-err"`)
	want(t, b.post("/admin/tokens/create", "name", strings.Repeat("x", 65)), http.StatusBadRequest, "at most 64")
	want(t, b.post("/admin/tokens/create", "name", "a\x01b"), http.StatusBadRequest, "letters, digits")
	tok := newToken(t, b, "grafana")
	if !strings.HasPrefix(tok, tokenPrefix) {
		t.Fatal(tok)
	}
	r = b.get("/admin/tokens")
	want(t, r, http.StatusOK, "grafana")
	if strings.Contains(r.body, tok) {
		t.Fatal("the token is shown again")
	}
	// stored hashed, 0600
	raw, err := os.ReadFile(filepath.Join(f.dir, TokensFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), tok) || !strings.Contains(string(raw), hashToken(tok)) {
		t.Fatalf("not stored hashed: %s", raw)
	}
	if fi, _ := os.Stat(filepath.Join(f.dir, TokensFile)); fi.Mode().Perm() != 0o600 {
		t.Fatal(fi.Mode())
	}
	// a new server reads them back
	if !newTokenStore(f.dir).valid(tok) {
		t.Fatal("not kept")
	}
	if st, _, _ := f.call("GET", "/api/v1/status", tok, ""); st != http.StatusOK {
		t.Fatal(st)
	}
	id := f.srv.tokens.all()[0].ID
	want(t, b.post("/admin/tokens/revoke", "id", "nope"), http.StatusNotFound, "id: no such token")
	wantRedirect(t, b.post("/admin/tokens/revoke", "id", id), "/admin/tokens?done=revoked")
	want(t, b.get("/admin/tokens?done=revoked"), http.StatusOK, "API token revoked.")
	st, body, _ := f.call("GET", "/api/v1/status", tok, "")
	wantErr(t, st, body, http.StatusUnauthorized, "")
	for i := range maxTokens {
		if _, err := f.srv.tokens.create("t"+string(rune('a'+i)), f.clock.now()); err != nil {
			t.Fatal(err)
		}
	}
	want(t, b.post("/admin/tokens/create", "name", "one too many"), http.StatusConflict, "at most 32")
}

func TestAPIRefusals(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	tok := newToken(t, b, "script")
	paths := []struct{ method, path string }{
		{"GET", "/api/v1/status"}, {"GET", "/api/v1/accounts"}, {"POST", "/api/v1/accounts"},
		{"POST", "/api/v1/accounts/alice/password"}, {"POST", "/api/v1/accounts/alice/admin"},
		{"DELETE", "/api/v1/accounts/alice"}, {"GET", "/api/v1/rooms"}, {"POST", "/api/v1/rooms"},
		{"DELETE", "/api/v1/rooms/general"}, {"GET", "/api/v1/invites"}, {"POST", "/api/v1/invites"},
		{"DELETE", "/api/v1/invites/abc"}, {"POST", "/api/v1/pairing"},
	}
	for _, p := range paths {
		for _, bad := range []string{"", "cbx_forged", "nonsense"} {
			st, body, _ := f.call(p.method, p.path, bad, `{}`)
			wantErr(t, st, body, http.StatusUnauthorized, "")
		}
		// a logged-in browser's cookie is not enough
		req, _ := http.NewRequest(p.method, f.web.URL+p.path, strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("%s %s with a cookie: %d", p.method, p.path, resp.StatusCode)
		}
	}
	if f.box.opened != 0 {
		t.Fatal("pairing opened without a token")
	}
	// wrong methods
	for _, p := range []struct{ method, path, allow string }{
		{"POST", "/api/v1/status", "GET"}, {"PUT", "/api/v1/accounts", "GET, POST"},
		{"GET", "/api/v1/accounts/alice", "DELETE"}, {"GET", "/api/v1/accounts/alice/password", "POST"},
		{"GET", "/api/v1/pairing", "POST"}, {"PUT", "/api/v1/rooms/general", "DELETE, PATCH"},
		{"DELETE", "/api/v1/invites", "GET, POST"},
	} {
		req, _ := http.NewRequest(p.method, f.web.URL+p.path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != p.allow {
			t.Fatalf("%s %s: %d Allow %q", p.method, p.path, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	st, body, _ := f.call("GET", "/api/v1/nothing", tok, "")
	wantErr(t, st, body, http.StatusNotFound, "")
	// not JSON
	req, _ := http.NewRequest("POST", f.web.URL+"/api/v1/rooms", strings.NewReader("name=x"))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	st, body, _ = f.send(req)
	wantErr(t, st, body, http.StatusUnsupportedMediaType, "")
	req, _ = http.NewRequest("POST", f.web.URL+"/api/v1/rooms", strings.NewReader(`{"name":"x"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	st, body, _ = f.send(req)
	wantErr(t, st, body, http.StatusUnsupportedMediaType, "")
	// bad JSON
	for _, c := range []struct{ body, field string }{
		{`{"name":`, ""}, {`not json`, ""}, {`{"name":"a"} {"name":"b"}`, ""},
		{`{"name":7}`, "name"}, {`{"name":"x","color":"red"}`, "color"},
	} {
		st, body, _ := f.call("POST", "/api/v1/rooms", tok, c.body)
		wantErr(t, st, body, http.StatusBadRequest, c.field)
	}
	// too big
	big := `{"name":"` + strings.Repeat("a", 70<<10) + `"}`
	st, body, _ = f.call("POST", "/api/v1/rooms", tok, big)
	wantErr(t, st, body, http.StatusRequestEntityTooLarge, "")
}

func TestAPIStatus(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	tok := newToken(t, b, "status")
	core := f.box.core
	core.CreateAccount(context.Background(), "alice", "password-alice", false)
	openSession(t, core, "alice", "irc", "")
	openSession(t, core, "alice", "xmpp", "general")
	// the header's scheme is case-insensitive
	req, _ := http.NewRequest("GET", f.web.URL+"/api/v1/status", nil)
	req.Header.Set("Authorization", "bearer "+tok)
	st, body, _ := f.send(req)
	if st != http.StatusOK || body["state"] != "ready" || body["version"] != "v9.9" || body["uptime_seconds"] != float64(26*3600+180) ||
		body["accounts"] != float64(1) || body["rooms"] != float64(1) || body["pairing"] != false {
		t.Fatalf("%d %v", st, body)
	}
	if s := body["sessions"].(map[string]any); s["irc"] != float64(1) || s["xmpp"] != float64(1) {
		t.Fatal(body)
	}
}

func TestAPIAccounts(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	tok := newToken(t, b, "accounts")
	core := f.box.core
	ctx := context.Background()
	st, _, list := f.call("GET", "/api/v1/accounts", tok, "")
	if st != http.StatusOK || list == nil || len(list) != 0 {
		t.Fatal(st, list)
	}
	st, body, _ := f.call("POST", "/api/v1/accounts", tok, `{"name":"Alice","password":"password-alice","admin":true}`)
	if st != http.StatusCreated || body["name"] != "alice" || body["admin"] != true {
		t.Fatal(st, body)
	}
	if a, err := core.Account(ctx, "alice"); err != nil || !a.Admin {
		t.Fatal(a, err)
	}
	for _, c := range []struct {
		body   string
		status int
		field  string
	}{
		{`{"name":"alice","password":"password-alice"}`, http.StatusConflict, "name"},
		{`{"name":"9lives","password":"password-x"}`, http.StatusBadRequest, "name"},
		{`{"name":"","password":"password-x"}`, http.StatusBadRequest, "name"},
		{`{"name":"bob","password":"short"}`, http.StatusBadRequest, "password"},
		{`{"name":"bob","password":"password-bob","admin":"yes"}`, http.StatusBadRequest, "admin"},
	} {
		st, body, _ := f.call("POST", "/api/v1/accounts", tok, c.body)
		wantErr(t, st, body, c.status, c.field)
	}
	openSession(t, core, "alice", "irc", "")
	st, _, list = f.call("GET", "/api/v1/accounts", tok, "")
	if st != http.StatusOK || len(list) != 1 {
		t.Fatal(st, list)
	}
	a := list[0].(map[string]any)
	if a["name"] != "alice" || a["admin"] != true || a["sessions"].(map[string]any)["irc"] != float64(1) {
		t.Fatal(a)
	}

	// password
	st, _, _ = f.call("POST", "/api/v1/accounts/alice/password", tok, `{"password":"a new password"}`)
	if st != http.StatusNoContent {
		t.Fatal(st)
	}
	if _, err := core.Authenticate(ctx, "alice", "a new password", "127.0.0.1", "test"); err != nil {
		t.Fatal(err)
	}
	st, body, _ = f.call("POST", "/api/v1/accounts/alice/password", tok, `{"password":"short"}`)
	wantErr(t, st, body, http.StatusBadRequest, "password")
	st, body, _ = f.call("POST", "/api/v1/accounts/nobody/password", tok, `{"password":"a new password"}`)
	wantErr(t, st, body, http.StatusNotFound, "name")
	st, body, _ = f.call("POST", "/api/v1/accounts/_bad/password", tok, `{"password":"a new password"}`)
	wantErr(t, st, body, http.StatusBadRequest, "name")
	st, body, _ = f.call("POST", "/api/v1/accounts/alice/password", tok, `{"pw":"a new password"}`)
	wantErr(t, st, body, http.StatusBadRequest, "pw")

	// admin flag
	st, _, _ = f.call("POST", "/api/v1/accounts/alice/admin", tok, `{"admin":false}`)
	if a, _ := core.Account(ctx, "alice"); st != http.StatusNoContent || a.Admin {
		t.Fatal(st, a)
	}
	st, body, _ = f.call("POST", "/api/v1/accounts/alice/admin", tok, `{}`)
	wantErr(t, st, body, http.StatusBadRequest, "admin")
	st, body, _ = f.call("POST", "/api/v1/accounts/alice/admin", tok, `{"admin":"yes"}`)
	wantErr(t, st, body, http.StatusBadRequest, "admin")
	st, body, _ = f.call("POST", "/api/v1/accounts/nobody/admin", tok, `{"admin":true}`)
	wantErr(t, st, body, http.StatusNotFound, "name")

	// delete
	st, body, _ = f.call("DELETE", "/api/v1/accounts/nobody", tok, "")
	wantErr(t, st, body, http.StatusNotFound, "name")
	st, body, _ = f.call("DELETE", "/api/v1/accounts/-x", tok, "")
	wantErr(t, st, body, http.StatusBadRequest, "name")
	st, _, _ = f.call("DELETE", "/api/v1/accounts/alice", tok, "")
	if _, err := core.Account(ctx, "alice"); st != http.StatusNoContent || err == nil {
		t.Fatal(st, err)
	}
}

func TestAPIRooms(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	tok := newToken(t, b, "rooms")
	core := f.box.core
	ctx := context.Background()
	core.CreateAccount(ctx, "alice", "password-alice", false)
	openSession(t, core, "alice", "irc", "general")
	st, _, list := f.call("GET", "/api/v1/rooms", tok, "")
	if st != http.StatusOK || len(list) != 1 {
		t.Fatal(st, list)
	}
	rm := list[0].(map[string]any)
	occ := rm["occupants"].([]any)
	if rm["name"] != "general" || len(occ) != 1 || occ[0].(map[string]any)["account"] != "alice" {
		t.Fatal(rm)
	}
	st, body, _ := f.call("POST", "/api/v1/rooms", tok, `{"name":"Kitchen"}`)
	if st != http.StatusCreated || body["name"] != "kitchen" {
		t.Fatal(st, body)
	}
	st, body, _ = f.call("POST", "/api/v1/rooms", tok, `{"name":"kitchen"}`)
	wantErr(t, st, body, http.StatusConflict, "name")
	st, body, _ = f.call("POST", "/api/v1/rooms", tok, `{"name":"no spaces"}`)
	wantErr(t, st, body, http.StatusBadRequest, "name")
	st, body, _ = f.call("POST", "/api/v1/rooms", tok, `{}`)
	wantErr(t, st, body, http.StatusBadRequest, "name")
	st, _, list = f.call("GET", "/api/v1/rooms", tok, "")
	if st != http.StatusOK || len(list) != 2 || list[1].(map[string]any)["name"] != "kitchen" {
		t.Fatal(st, list)
	}
	st, body, _ = f.call("DELETE", "/api/v1/rooms/nowhere", tok, "")
	wantErr(t, st, body, http.StatusNotFound, "name")
	st, body, _ = f.call("DELETE", "/api/v1/rooms/_x", tok, "")
	wantErr(t, st, body, http.StatusBadRequest, "name")
	st, _, _ = f.call("DELETE", "/api/v1/rooms/kitchen", tok, "")
	if st != http.StatusNoContent {
		t.Fatal(st)
	}
	if rooms, _ := core.Rooms(ctx); len(rooms) != 1 {
		t.Fatal(rooms)
	}
}

func TestAPIInvites(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	tok := newToken(t, b, "invites")
	core := f.box.core
	ctx := context.Background()
	core.CreateAccount(ctx, "alice", "password-alice", false)
	st, _, list := f.call("GET", "/api/v1/invites", tok, "")
	if st != http.StatusOK || list == nil || len(list) != 0 {
		t.Fatal(st, list)
	}
	st, body, _ := f.call("POST", "/api/v1/invites", tok, `{}`)
	if st != http.StatusCreated || body["uses"] != float64(1) || !strings.Contains(body["uri"].(string), body["token"].(string)) {
		t.Fatal(st, body)
	}
	st, body, _ = f.call("POST", "/api/v1/invites", tok, `{"uses":3,"days":2,"account":"Carol"}`)
	if st != http.StatusCreated || body["uses"] != float64(3) || body["account"] != "carol" {
		t.Fatal(st, body)
	}
	second := body["token"].(string)
	for _, c := range []struct {
		body   string
		status int
		field  string
	}{
		{`{"uses":-1}`, http.StatusBadRequest, "uses"},
		{`{"uses":100000}`, http.StatusBadRequest, "uses"},
		{`{"days":1000}`, http.StatusBadRequest, "days"},
		{`{"days":"two"}`, http.StatusBadRequest, "days"},
		{`{"account":"9x"}`, http.StatusBadRequest, "account"},
		{`{"account":"alice"}`, http.StatusConflict, "account"},
	} {
		st, body, _ := f.call("POST", "/api/v1/invites", tok, c.body)
		wantErr(t, st, body, c.status, c.field)
	}
	st, _, list = f.call("GET", "/api/v1/invites", tok, "")
	if st != http.StatusOK || len(list) != 2 {
		t.Fatal(st, list)
	}
	st, _, _ = f.call("DELETE", "/api/v1/invites/"+second, tok, "")
	if st != http.StatusNoContent {
		t.Fatal(st)
	}
	st, body, _ = f.call("DELETE", "/api/v1/invites/"+second, tok, "")
	wantErr(t, st, body, http.StatusNotFound, "token")
	st, body, _ = f.call("DELETE", "/api/v1/invites/"+strings.Repeat("x", 65), tok, "")
	wantErr(t, st, body, http.StatusBadRequest, "token")
	if invs, _ := core.AccountInvites(ctx); len(invs) != 1 {
		t.Fatal(invs)
	}
}

func TestAPIPairing(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	tok := newToken(t, b, "pairing")
	st, body, _ := f.call("POST", "/api/v1/pairing", tok, "")
	if st != http.StatusOK || body["pairing"] != true || f.box.opened != 1 || !f.box.PairingOpen() {
		t.Fatal(st, body, f.box.opened)
	}
}
