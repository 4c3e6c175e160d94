package webadmin

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEveryPageGoesToSetupFirst(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	for _, p := range []string{"/", "/admin/people", "/admin/rooms", "/admin/login", "/nope", "/admin/people/edit?name=a"} {
		wantRedirect(t, b.get(p), "/admin/setup")
	}
	wantRedirect(t, b.post("/admin/people/create", "name", "alice", "password", "password-1"), "/admin/setup")
	r := b.get("/admin/static/style.css")
	if r.status != http.StatusOK || !strings.Contains(r.header.Get("Content-Type"), "text/css") {
		t.Fatalf("style: %d %s", r.status, r.header.Get("Content-Type"))
	}
	want(t, b.get("/admin/setup"), http.StatusOK, "press button A", "setup code", `name="code"`, "testbox")
	if !strings.Contains(f.logs.String(), `msg="web admin setup code" code=`+f.code()) {
		t.Fatalf("setup code not logged:\n%s", f.logs)
	}
	fi, err := os.Stat(filepath.Join(f.dir, SetupCodeFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("setup code file: %v %v", fi, err)
	}
	if c, err := ReadSetupCode(f.dir); err != nil || c != f.code() || len(c) < 8 {
		t.Fatalf("ReadSetupCode = %q, %v; code %q", c, err, f.code())
	}
}

func TestSetupWithCode(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.get("/admin/setup")
	code := f.code()
	good := []string{"name", "Kitchen box", "password", adminPassword, "password2", adminPassword, "code", code}
	with := func(kv ...string) []string {
		out := append([]string(nil), good...)
		for i := 0; i < len(kv); i += 2 {
			for j := 0; j < len(out); j += 2 {
				if out[j] == kv[i] {
					out[j+1] = kv[i+1]
				}
			}
		}
		return out
	}
	// Refusals.
	want(t, b.post("/admin/setup", append(with(), "csrf", "forged")...), http.StatusForbidden, "security token")
	b.get("/admin/setup")
	want(t, b.post("/admin/setup", with("password", "short", "password2", "short")...), http.StatusBadRequest, "password: at least 8 characters")
	want(t, b.post("/admin/setup", with("password2", "something else")...), http.StatusBadRequest, "password2: the two passwords differ")
	want(t, b.post("/admin/setup", with("name", "")...), http.StatusBadRequest, "name: give the box a name")
	want(t, b.post("/admin/setup", with("name", "a\x01b")...), http.StatusBadRequest, "name: ")
	want(t, b.post("/admin/setup", with("code", "wrongcode1")...), http.StatusForbidden, "code: wrong setup code")
	want(t, b.post("/admin/setup", with("code", "")...), http.StatusForbidden, "code: give the setup code, or press button A")
	// Another site cannot post the form: the token must match the cookie.
	other := f.browser()
	want(t, other.post("/admin/setup", append(with(), "csrf", b.csrf)...), http.StatusForbidden, "security token")

	r := b.post("/admin/setup", good...)
	wantRedirect(t, r, "/admin/")
	var ck string
	for _, c := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, cookieName+"=") {
			ck = c
		}
	}
	for _, attr := range []string{cookieName + "=", "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(ck, attr) {
			t.Fatalf("session cookie %q lacks %s", ck, attr)
		}
	}
	if strings.Contains(ck, "Secure") {
		t.Fatalf("Secure cookie over plain HTTP: %q", ck)
	}
	want(t, b.get("/admin/"), http.StatusOK, "Kitchen box", "Dashboard")
	// The credential is stored hashed, privately; the code is gone.
	fi, err := os.Stat(filepath.Join(f.dir, AdminFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin file: %v %v", fi, err)
	}
	data, _ := os.ReadFile(filepath.Join(f.dir, AdminFile))
	if strings.Contains(string(data), adminPassword) || !strings.Contains(string(data), "Kitchen box") {
		t.Fatalf("admin file holds:\n%s", data)
	}
	if _, err := os.Stat(filepath.Join(f.dir, SetupCodeFile)); !os.IsNotExist(err) {
		t.Fatalf("setup code file still there: %v", err)
	}
	if _, err := ReadSetupCode(f.dir); err == nil || !strings.Contains(err.Error(), "already set up") {
		t.Fatalf("ReadSetupCode after setup: %v", err)
	}
	// Setup is over: the page sends to the login, a second claim fails.
	wantRedirect(t, f.browser().get("/admin/setup"), "/admin/login")
	wantRedirect(t, f.browser().post("/admin/setup", good...), "/admin/login")
	// A restarted web admin reads the credential back.
	s2 := New(Config{DataDir: f.dir, Now: f.clock.now}, f.box, nil)
	if !s2.auth.configured() || s2.boxName() != "Kitchen box" || !s2.auth.checkPassword(adminPassword) {
		t.Fatal("a new web admin does not see the stored admin")
	}
}

func TestSetupWithButtonA(t *testing.T) {
	f := newFixture(t)
	form := []string{"name", "Box", "password", adminPassword, "password2", adminPassword, "code", ""}
	// The window was already open when the page was loaded: not a proof.
	f.box.OpenPairing(0)
	b := f.browser()
	b.get("/admin/setup")
	want(t, b.post("/admin/setup", form...), http.StatusForbidden, "code: ")
	// Pressed again after the page was loaded: proof.
	f.clock.add(time.Second)
	loaded := f.clock.now()
	f.clock.add(time.Second)
	f.box.OpenPairing(0)
	deadline := time.Now().Add(5 * time.Second)
	for !f.srv.lastPairing().After(loaded) {
		if time.Now().After(deadline) {
			t.Fatal("the pairing event did not arrive")
		}
		time.Sleep(5 * time.Millisecond)
	}
	wantRedirect(t, b.post("/admin/setup", form...), "/admin/")
	if !strings.Contains(f.logs.String(), "proof=\"button A\"") {
		t.Fatalf("log:\n%s", f.logs)
	}
}

func TestSetupButtonPressedAfterLoad(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.get("/admin/setup") // the window is closed now
	f.box.OpenPairing(0)
	wantRedirect(t, b.post("/admin/setup", "name", "Box", "password", adminPassword, "password2", adminPassword), "/admin/")
}

func TestSetupCodeThrottled(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.get("/admin/setup")
	form := []string{"name", "Box", "password", adminPassword, "password2", adminPassword}
	for range 5 {
		want(t, b.post("/admin/setup", append(form, "code", "guess")...), http.StatusForbidden, "code: wrong setup code")
	}
	want(t, b.post("/admin/setup", append(form, "code", f.code())...), http.StatusTooManyRequests, "code: too many wrong attempts")
	f.clock.add(time.Minute)
	wantRedirect(t, b.post("/admin/setup", append(form, "code", f.code())...), "/admin/")
}

func TestLoginLogout(t *testing.T) {
	f := newFixture(t)
	f.setUp()
	b := f.browser()
	wantRedirect(t, b.get("/admin/"), "/admin/login")
	want(t, b.get("/admin/login"), http.StatusOK, `type="password"`)
	want(t, b.post("/admin/login", "password", adminPassword, "csrf", "forged"), http.StatusForbidden)
	b.get("/admin/login")
	want(t, b.post("/admin/login", "password", ""), http.StatusBadRequest, "password: give the admin password")
	want(t, b.post("/admin/login", "password", "wrong password"), http.StatusUnauthorized, "password: wrong password")
	r := b.post("/admin/login", "password", adminPassword)
	wantRedirect(t, r, "/admin/")
	want(t, b.get("/admin/"), http.StatusOK, "Dashboard")
	// Logging out needs the session's token.
	want(t, b.post("/admin/logout", "csrf", "forged"), http.StatusForbidden)
	wantRedirect(t, b.post("/admin/logout"), "/admin/login")
	wantRedirect(t, b.get("/admin/"), "/admin/login")
	// Sessions end after 12 hours.
	b.get("/admin/login")
	wantRedirect(t, b.post("/admin/login", "password", adminPassword), "/admin/")
	f.clock.add(11 * time.Hour)
	want(t, b.get("/admin/"), http.StatusOK)
	f.clock.add(2 * time.Hour)
	wantRedirect(t, b.get("/admin/"), "/admin/login")
}

func TestLoginThrottled(t *testing.T) {
	f := newFixture(t)
	f.setUp()
	b := f.browser()
	b.get("/admin/login")
	for range 5 {
		want(t, b.post("/admin/login", "password", "wrong password"), http.StatusUnauthorized)
	}
	want(t, b.post("/admin/login", "password", adminPassword), http.StatusTooManyRequests, "password: too many failed logins")
	f.clock.add(61 * time.Second)
	wantRedirect(t, b.post("/admin/login", "password", adminPassword), "/admin/")
}

func TestSecureCookieAndHeaders(t *testing.T) {
	f := newFixture(t)
	f.srv.cfg.HTTPS = true
	f.setUp()
	b := f.browser()
	r := b.get("/admin/login")
	if !strings.Contains(r.header.Get("Content-Security-Policy"), "default-src 'none'") ||
		r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("headers: %v", r.header)
	}
	// Over HTTPS the cookies are Secure (checked on the handler: the
	// test server is plain HTTP, where a client would not send them back).
	rec := httptest.NewRecorder()
	f.srv.startSession(rec)
	if ck := rec.Header().Get("Set-Cookie"); !strings.HasPrefix(ck, cookieName+"=") || !strings.Contains(ck, "Secure") {
		t.Fatalf("cookie under HTTPS: %q", ck)
	}
	if ck := r.header.Get("Set-Cookie"); !strings.Contains(ck, "Secure") {
		t.Fatalf("form cookie under HTTPS: %q", ck)
	}
}

func TestSessionIDsAreRandom(t *testing.T) {
	a := newAuth(t.TempDir(), time.Now, 5)
	id1, s1 := a.newSession()
	id2, s2 := a.newSession()
	if id1 == id2 || s1.csrf == s2.csrf || len(id1) < 43 {
		t.Fatalf("ids %q %q", id1, id2)
	}
}

// TestSetupSavesName: the name given at setup is saved as the `name`
// setting, so that it survives (mDNS, the IRC network read it).
func TestSetupSavesName(t *testing.T) {
	f := newFixture(t)
	f.setUp()
	n, saved := f.box.lockedSaved()
	if n != 1 || len(saved) != 1 || saved["name"] != "Kitchen box" {
		t.Fatalf("%d saves: %v; want name = Kitchen box once", n, saved)
	}
}

// TestFormTokenSurvivesAnotherLoad: a second load of the setup page in
// the same browser (another tab, the browser's /favicon.ico sent to the
// setup page) leaves the first form valid; a token is refused with
// another browser's cookie.
func TestFormTokenSurvivesAnotherLoad(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.get("/admin/setup")
	first := b.csrf
	wantRedirect(t, b.get("/favicon.ico"), "/admin/setup")
	b.get("/admin/setup")
	if b.csrf == first {
		t.Fatal("two loads, one token")
	}
	other := f.browser()
	other.get("/admin/setup")
	want(t, other.post("/admin/setup", "csrf", first, "name", "Box", "password", adminPassword, "password2", adminPassword, "code", f.code()),
		http.StatusForbidden, "security token")
	wantRedirect(t, b.post("/admin/setup", "csrf", first, "name", "Box", "password", adminPassword, "password2", adminPassword, "code", f.code()), "/admin/")
}
