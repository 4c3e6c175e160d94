package webadmin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "box.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"box.test"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// TestServeHTTPS: Serve listens (over TLS when asked), logs where and the
// setup code, reports ready and stops when its context ends.
func TestServeHTTPS(t *testing.T) {
	f := newFixture(t)
	out := &syncWriter{b: &strings.Builder{}}
	s := New(Config{Listen: "127.0.0.1:0", HTTPS: true, TLS: selfSigned(t), DataDir: t.TempDir()}, f.box,
		slog.New(slog.NewTextHandler(out, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	out.mu.Lock()
	text := out.b.String()
	out.mu.Unlock()
	m := regexp.MustCompile(`msg=listening door=web addr=(\S+)`).FindStringSubmatch(text)
	if m == nil || !strings.Contains(text, `msg="web admin setup code" code=`) {
		t.Fatalf("log:\n%s", text)
	}
	client := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Get("https://" + m[1] + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/setup" {
		t.Fatalf("GET /: %s %q", resp.Status, resp.Header.Get("Location"))
	}
	if resp, err := http.Get("http://" + m[1] + "/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP on the HTTPS port: %s", resp.Status)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	// Without a TLS configuration HTTPS is refused.
	bad := New(Config{Listen: "127.0.0.1:0", HTTPS: true, DataDir: t.TempDir()}, f.box, nil)
	if err := bad.Serve(context.Background(), func() {}); err == nil {
		t.Fatal("HTTPS without TLS served")
	}
}

func TestMountsServedBeforeSetup(t *testing.T) {
	f := newFixture(t)
	mounted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "mounted "+r.URL.Path)
	})
	s := New(Config{DataDir: t.TempDir(), Domain: "box.test",
		Mounts: map[string]http.Handler{"/xmpp-websocket": mounted}}, f.box, nil)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/xmpp-websocket", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "mounted /xmpp-websocket" {
		t.Fatalf("mounted path before setup: %d %q, want the mounted handler's answer", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/xmpp-websocket/x", nil))
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("a path under the mount: %d, want the setup redirect (mounts are exact paths)", rec.Code)
	}
}

// TestMountPrefixAndHome: a mount key ending in "/" serves every path
// under it (the longest wins, an exact key first); "/" is Config.Home, or
// a redirect to the admin pages without one.
func TestMountPrefixAndHome(t *testing.T) {
	f := newFixture(t)
	named := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name+" "+r.URL.Path) })
	}
	s := New(Config{DataDir: t.TempDir(), Domain: "box.test", Home: named("home"), Mounts: map[string]http.Handler{
		"/chat/": named("chat"), "/chat/ws/": named("ws"), "/chat/exact": named("exact")}}, f.box, nil)
	for path, wantBody := range map[string]string{
		"/":               "home /",
		"/chat/":          "chat /chat/",
		"/chat/room/x":    "chat /chat/room/x",
		"/chat/ws/1":      "ws /chat/ws/1",
		"/chat/exact":     "exact /chat/exact",
		"/chat/exactly/y": "chat /chat/exactly/y",
	} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusOK || rec.Body.String() != wantBody {
			t.Errorf("GET %s: %d %q, want 200 %q", path, rec.Code, rec.Body.String(), wantBody)
		}
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/chat", nil))
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/admin/setup" {
		t.Errorf("GET /chat (not under the prefix): %d %q, want the setup redirect", rec.Code, rec.Header().Get("Location"))
	}
	// Without Home, "/" leads to the admin pages once the box is set up.
	b := f.setUp()
	r := b.get("/")
	wantRedirect(t, r, "/admin/")
	want(t, b.get("/admin/"), http.StatusOK, "Dashboard")
}
