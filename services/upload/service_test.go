package upload

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// clock is a settable time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// logBuf collects a service's log.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newTestService is a service over a temporary directory, as if it were
// serving on box.test:5443, with its handler behind an httptest server.
func newTestService(t *testing.T, mod func(*Config)) (*Service, *clock, *httptest.Server, *logBuf) {
	t.Helper()
	clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	cfg := Config{Domain: "Box.Test", Dir: t.TempDir(), MaxFileBytes: 1000, QuotaBytes: 3000,
		Expire: 24 * time.Hour, Now: clk.Now}
	if mod != nil {
		mod(&cfg)
	}
	logs := &logBuf{}
	s := New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err := s.load(); err != nil {
		t.Fatal(err)
	}
	s.base = "https://box.test:5443"
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return s, clk, srv, logs
}

// local turns a slot URL into the test server's.
func local(srv *httptest.Server, u string) string {
	p, err := url.Parse(u)
	if err != nil {
		panic(err)
	}
	return srv.URL + p.EscapedPath()
}

func put(t *testing.T, srv *httptest.Server, sl Slot, body []byte, ctype string, mod ...func(*http.Request)) (int, string) {
	t.Helper()
	req, err := http.NewRequest("PUT", local(srv, sl.PutURL), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range sl.Headers {
		req.Header.Set(k, v)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for _, m := range mod {
		m(req)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(t *testing.T, srv *httptest.Server, method, u string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, local(srv, u), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func mustSlot(t *testing.T, s *Service, account, name string, size int64, ctype string) Slot {
	t.Helper()
	sl, err := s.Slot(context.Background(), account, name, size, ctype)
	if err != nil {
		t.Fatalf("slot %s %d %s: %v", name, size, ctype, err)
	}
	return sl
}

func TestSlotPutGetHead(t *testing.T) {
	s, _, srv, _ := newTestService(t, nil)
	body := []byte("\xff\xd8\xff\xe0 a jpeg")
	sl := mustSlot(t, s, "alice", "très cool.jpg", int64(len(body)), "image/jpeg")
	if !strings.HasPrefix(sl.PutURL, "https://box.test:5443/upload/") || !strings.HasSuffix(sl.PutURL, "/tr%C3%A8s%20cool.jpg") {
		t.Fatalf("put URL %s", sl.PutURL)
	}
	if sl.GetURL != sl.PutURL {
		t.Fatalf("get URL %s, put URL %s", sl.GetURL, sl.PutURL)
	}
	if len(sl.Headers) != 1 || !strings.HasPrefix(sl.Headers["Authorization"], "Bearer ") {
		t.Fatalf("headers %v", sl.Headers)
	}
	if code, msg := put(t, srv, sl, body, "image/jpeg"); code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", code, msg)
	}

	resp, got := get(t, srv, "GET", sl.GetURL)
	if resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("GET: %d %q", resp.StatusCode, got)
	}
	want := map[string]string{
		"Content-Type":                "image/jpeg",
		"Content-Length":              "11",
		"Etag":                        `"` + strings.Split(sl.GetURL, "/")[4] + `"`,
		"Last-Modified":               "Sun, 01 Mar 2026 12:00:00 GMT",
		"X-Content-Type-Options":      "nosniff",
		"Content-Security-Policy":     "default-src 'none'; sandbox",
		"Content-Disposition":         "inline; filename*=utf-8''tr%C3%A8s%20cool.jpg",
		"Access-Control-Allow-Origin": "*",
	}
	for k, v := range want {
		if g := resp.Header.Get(k); g != v {
			t.Errorf("GET %s: %q, want %q", k, g, v)
		}
	}
	resp, got = get(t, srv, "HEAD", sl.GetURL)
	if resp.StatusCode != 200 || len(got) != 0 || resp.Header.Get("Content-Length") != "11" || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("HEAD: %d %q %v", resp.StatusCode, got, resp.Header)
	}
	resp, _ = get(t, srv, "GET", sl.GetURL, "If-None-Match", resp.Header.Get("Etag"))
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("conditional GET: %d", resp.StatusCode)
	}
	resp, got = get(t, srv, "GET", sl.GetURL, "Range", "bytes=4-")
	if resp.StatusCode != http.StatusPartialContent || string(got) != " a jpeg" {
		t.Fatalf("range GET: %d %q", resp.StatusCode, got)
	}
	resp, _ = get(t, srv, "OPTIONS", sl.PutURL, "Origin", "https://web.example", "Access-Control-Request-Method", "PUT")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		resp.Header.Get("Access-Control-Allow-Methods") != "GET, HEAD, PUT, OPTIONS" ||
		resp.Header.Get("Access-Control-Allow-Headers") != "Authorization, Content-Type" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}

	// The sidecar.
	id := strings.Split(sl.GetURL, "/")[4]
	b, err := os.ReadFile(filepath.Join(s.cfg.Dir, id+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m fileMeta
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	wantMeta := fileMeta{ID: id, Name: "très cool.jpg", Account: "alice", Size: 11, Type: "image/jpeg",
		Uploaded: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Expires: time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)}
	if m != wantMeta {
		t.Fatalf("sidecar %+v, want %+v", m, wantMeta)
	}
	if data, _ := os.ReadFile(filepath.Join(s.cfg.Dir, id)); !bytes.Equal(data, body) {
		t.Fatalf("file on disk %q", data)
	}

	// Unknown ids and names are 404.
	for _, u := range []string{
		strings.Replace(sl.GetURL, id, "aaaaaaaaaaaaaaaaaaaaaaaaaa", 1),
		strings.Replace(sl.GetURL, "cool", "hot", 1),
		"https://box.test:5443/upload/../" + id,
		"https://box.test:5443/",
	} {
		if resp, _ := get(t, srv, "GET", u); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", u, resp.StatusCode)
		}
	}
}

func TestContentTypesAndDisposition(t *testing.T) {
	s, _, srv, _ := newTestService(t, nil)
	for _, tc := range []struct {
		name, slotType, putType, wantType, wantDisp string
	}{
		{"page.html", "text/html", "text/html", "text/html", `attachment; filename=page.html`},
		{"drawing.svg", "image/svg+xml", "", "image/svg+xml", `attachment; filename=drawing.svg`},
		{"song.ogg", "", "Audio/Ogg", "audio/ogg", `inline; filename=song.ogg`},
		{"clip.mp4", "video/mp4", "", "video/mp4", `inline; filename=clip.mp4`},
		{"notes.txt", "", "", "text/plain; charset=utf-8", `attachment; filename=notes.txt`},
		{"blob", "", "", "application/octet-stream", `attachment; filename=blob`},
		{"a.png", "IMAGE/PNG", "image/png", "image/png", `inline; filename=a.png`},
	} {
		sl := mustSlot(t, s, "alice", tc.name, 3, tc.slotType)
		if code, msg := put(t, srv, sl, []byte("abc"), tc.putType); code != http.StatusCreated {
			t.Fatalf("%s: PUT %d %s", tc.name, code, msg)
		}
		resp, _ := get(t, srv, "GET", sl.GetURL)
		if g := resp.Header.Get("Content-Type"); g != tc.wantType {
			t.Errorf("%s: type %q, want %q", tc.name, g, tc.wantType)
		}
		if g := resp.Header.Get("Content-Disposition"); g != tc.wantDisp {
			t.Errorf("%s: disposition %q, want %q", tc.name, g, tc.wantDisp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Content-Security-Policy") != "default-src 'none'; sandbox" {
			t.Errorf("%s: headers %v", tc.name, resp.Header)
		}
	}
	if _, err := s.Slot(context.Background(), "alice", "x", 3, "not a type"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad content type: %v", err)
	}
}

func TestPutRejected(t *testing.T) {
	s, clk, srv, _ := newTestService(t, nil)
	body := []byte("0123456789")
	sl := mustSlot(t, s, "alice", "a.txt", 10, "text/plain")
	for _, tc := range []struct {
		what string
		body []byte
		typ  string
		mod  func(*http.Request)
		code int
	}{
		{"no token", body, "text/plain", func(r *http.Request) { r.Header.Del("Authorization") }, 403},
		{"wrong token", body, "text/plain", func(r *http.Request) { r.Header.Set("Authorization", "Bearer AAAA") }, 403},
		{"token in the wrong header", body, "text/plain", func(r *http.Request) {
			r.Header.Set("Cookie", r.Header.Get("Authorization"))
			r.Header.Del("Authorization")
		}, 403},
		{"smaller body", body[:9], "text/plain", nil, 400},
		{"larger body", append(body, 'x'), "text/plain", nil, 413},
		{"other type", body, "image/png", nil, 400},
		{"other name", body, "text/plain", func(r *http.Request) { r.URL.Path = strings.Replace(r.URL.Path, "a.txt", "b.txt", 1) }, 403},
		{"chunked", body, "text/plain", func(r *http.Request) { r.ContentLength = -1; r.Body = io.NopCloser(bytes.NewReader(body)) }, 400},
	} {
		var mods []func(*http.Request)
		if tc.mod != nil {
			mods = append(mods, tc.mod)
		}
		if code, msg := put(t, srv, sl, tc.body, tc.typ, mods...); code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.what, code, msg, tc.code)
		}
	}
	// The slot still works after the rejected tries (a charset does not
	// change the type), once.
	if code, msg := put(t, srv, sl, body, "Text/Plain; charset=utf-8"); code != 201 {
		t.Fatalf("PUT: %d %s", code, msg)
	}
	if code, msg := put(t, srv, sl, body, "text/plain"); code != http.StatusConflict {
		t.Fatalf("PUT again: %d %s, want 409", code, msg)
	}
	// An expired slot.
	sl2 := mustSlot(t, s, "alice", "b.txt", 10, "")
	clk.advance(5*time.Minute + time.Second)
	if code, msg := put(t, srv, sl2, body, ""); code != 403 || !strings.Contains(msg, "expired") {
		t.Fatalf("PUT to an expired slot: %d %s", code, msg)
	}
	if code, _ := put(t, srv, sl2, body, ""); code != 403 {
		t.Fatalf("PUT to a forgotten slot: %d", code)
	}
	// A slot of another service (another secret) does not open this one.
	other := New(s.cfg, nil)
	other.base = s.base
	sl3 := mustSlot(t, other, "alice", "c.txt", 10, "")
	if code, _ := put(t, srv, sl3, body, ""); code != 403 {
		t.Fatalf("PUT with a foreign slot: %d", code)
	}
	sl4 := mustSlot(t, s, "alice", "c.txt", 10, "")
	sl4.Headers = sl3.Headers
	if code, _ := put(t, srv, sl4, body, ""); code != 403 {
		t.Fatalf("PUT with another slot's token: %d", code)
	}
}

func TestTooLargeAndQuota(t *testing.T) {
	s, clk, srv, _ := newTestService(t, nil) // max 1000, quota 3000
	ctx := context.Background()
	_, err := s.Slot(ctx, "alice", "big.bin", 1001, "")
	var tl *TooLargeError
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &tl) || tl.MaxBytes() != 1000 {
		t.Fatalf("too large: %v", err)
	}
	if !strings.Contains(err.Error(), "1000 bytes") {
		t.Fatalf("too large says %q", err)
	}
	// Unused slots reserve space.
	a := mustSlot(t, s, "alice", "a", 1000, "")
	mustSlot(t, s, "alice", "b", 1000, "")
	if code, _ := put(t, srv, a, make([]byte, 1000), ""); code != 201 {
		t.Fatalf("PUT a: %d", code)
	}
	if got := s.Usage("alice"); got != 2000 {
		t.Fatalf("usage %d, want 2000", got)
	}
	mustSlot(t, s, "alice", "c", 900, "")
	_, err = s.Slot(ctx, "alice", "d", 101, "")
	var qe *QuotaError
	if !errors.Is(err, ErrQuota) || !errors.As(err, &qe) || qe.RemainingBytes() != 100 {
		t.Fatalf("over quota: %v", err)
	}
	if !strings.Contains(err.Error(), "100 bytes") {
		t.Fatalf("quota error says %q", err)
	}
	// Others have their own quota.
	mustSlot(t, s, "bob", "d", 1000, "")
	// Expired slots free their space; expired files too.
	clk.advance(6 * time.Minute)
	if got := s.Usage("alice"); got != 1000 {
		t.Fatalf("usage after the slots expired: %d, want 1000", got)
	}
	clk.advance(24 * time.Hour)
	if got := s.Usage("alice"); got != 0 {
		t.Fatalf("usage after the file expired: %d, want 0", got)
	}
	for _, bad := range []struct {
		account, name string
		size          int64
	}{{"", "a", 1}, {"alice", "", 1}, {"alice", "  ", 1}, {"alice", "a", -1}} {
		if _, err := s.Slot(ctx, bad.account, bad.name, bad.size, ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("slot %q %q %d: %v, want ErrInvalid", bad.account, bad.name, bad.size, err)
		}
	}
}

func TestSlotsBounded(t *testing.T) {
	s, _, _, _ := newTestService(t, func(c *Config) { c.SlotsPerAccount = 2 })
	mustSlot(t, s, "alice", "a", 1, "")
	mustSlot(t, s, "alice", "b", 1, "")
	if _, err := s.Slot(context.Background(), "alice", "c", 1, ""); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("third slot: %v", err)
	}
	s.base = ""
	if _, err := s.Slot(context.Background(), "bob", "c", 1, ""); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("slot while not serving: %v", err)
	}
}

func TestConcurrentUploadsBounded(t *testing.T) {
	s, _, srv, _ := newTestService(t, func(c *Config) { c.UploadsPerAccount = 1 })
	a := mustSlot(t, s, "alice", "a", 10, "")
	b := mustSlot(t, s, "alice", "b", 10, "")
	c := mustSlot(t, s, "bob", "c", 10, "")
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("PUT", local(srv, a.PutURL), pr)
	req.ContentLength = 10
	req.Header.Set("Authorization", a.Headers["Authorization"])
	first := make(chan int, 1)
	go func() {
		resp, err := srv.Client().Do(req)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	pw.Write([]byte("01234"))
	// Wait until the server runs the first upload.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		s.mu.Lock()
		n := s.active["alice"]
		s.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first upload did not start")
		}
	}
	if code, msg := put(t, srv, b, make([]byte, 10), ""); code != http.StatusTooManyRequests {
		t.Fatalf("second upload of alice's: %d %s, want 429", code, msg)
	}
	if code, msg := put(t, srv, a, make([]byte, 10), ""); code != http.StatusConflict {
		t.Fatalf("second PUT to the busy slot: %d %s, want 409", code, msg)
	}
	if code, msg := put(t, srv, c, make([]byte, 10), ""); code != 201 {
		t.Fatalf("bob's upload: %d %s", code, msg)
	}
	pw.Write([]byte("56789"))
	pw.Close()
	if code := <-first; code != 201 {
		t.Fatalf("first upload: %d", code)
	}
	if code, msg := put(t, srv, b, make([]byte, 10), ""); code != 201 {
		t.Fatalf("alice's second upload after the first: %d %s", code, msg)
	}
}

func TestBrokenUploadFreesSlot(t *testing.T) {
	s, _, srv, _ := newTestService(t, nil)
	a := mustSlot(t, s, "alice", "a", 10, "")
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(local(srv, a.PutURL))
	io.WriteString(conn, "PUT "+u.EscapedPath()+" HTTP/1.1\r\nHost: x\r\nAuthorization: "+a.Headers["Authorization"]+"\r\nContent-Length: 10\r\n\r\n01234")
	conn.Close()
	// The server sees the body end early; the slot is free again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, msg := put(t, srv, a, []byte("0123456789"), "")
		if code == 201 {
			break
		}
		if code != http.StatusConflict || time.Now().After(deadline) {
			t.Fatalf("PUT after a broken one: %d %s", code, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ents, _ := os.ReadDir(s.cfg.Dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("leftover %s", e.Name())
		}
	}
}

func TestDiskError(t *testing.T) {
	s, _, srv, logs := newTestService(t, nil)
	a := mustSlot(t, s, "alice", "a", 3, "")
	if err := os.RemoveAll(s.cfg.Dir); err != nil {
		t.Fatal(err)
	}
	code, msg := put(t, srv, a, []byte("abc"), "")
	if code != http.StatusInternalServerError || !strings.Contains(msg, "could not store") {
		t.Fatalf("PUT with the directory gone: %d %s", code, msg)
	}
	if !strings.Contains(logs.String(), `msg="store upload"`) || !strings.Contains(logs.String(), "no such file or directory") {
		t.Fatalf("the cause is not logged:\n%s", logs)
	}
	if diskStatus(&os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}) != http.StatusInsufficientStorage {
		t.Fatal("ENOSPC is not 507")
	}
}

func TestExpirySweep(t *testing.T) {
	s, clk, srv, _ := newTestService(t, nil)
	a := mustSlot(t, s, "alice", "a.txt", 3, "")
	if code, _ := put(t, srv, a, []byte("abc"), ""); code != 201 {
		t.Fatal(code)
	}
	clk.advance(12 * time.Hour)
	b := mustSlot(t, s, "alice", "b.txt", 3, "")
	if code, _ := put(t, srv, b, []byte("def"), ""); code != 201 {
		t.Fatal(code)
	}
	idA, idB := strings.Split(a.GetURL, "/")[4], strings.Split(b.GetURL, "/")[4]
	clk.advance(12 * time.Hour) // a expires now
	// Leftovers: an old temporary file, a fresh one, a file without
	// sidecar, and a file that is not ours.
	dir := s.cfg.Dir
	old := clk.Now().Add(-2 * time.Hour)
	for name, t0 := range map[string]time.Time{
		".put-" + newID() + "-1": old, ".put-" + newID() + "-2": clk.Now(), newID(): old, "README": old,
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, t0, t0); err != nil {
			t.Fatal(err)
		}
	}
	if resp, _ := get(t, srv, "GET", a.GetURL); resp.StatusCode != 404 {
		t.Fatalf("GET of an expired file before the sweep: %d", resp.StatusCode)
	}
	s.sweep()
	var names []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := map[string]bool{idB: true, idB + ".json": true, "README": true}
	fresh := 0
	for _, n := range names {
		if strings.HasSuffix(n, "-2") {
			fresh++
			continue
		}
		if !want[n] {
			t.Errorf("%s left after the sweep (want only %s and a fresh temporary file)", n, idB)
		}
		delete(want, n)
	}
	if len(want) != 0 || fresh != 1 {
		t.Fatalf("after the sweep: %v", names)
	}
	if _, err := os.Stat(filepath.Join(dir, idA)); !os.IsNotExist(err) {
		t.Fatalf("expired file still there: %v", err)
	}
	if resp, body := get(t, srv, "GET", b.GetURL); resp.StatusCode != 200 || string(body) != "def" {
		t.Fatalf("GET b: %d %q", resp.StatusCode, body)
	}
}

func TestIndexRebuiltAtStart(t *testing.T) {
	s, clk, srv, _ := newTestService(t, nil)
	a := mustSlot(t, s, "alice", "a.txt", 3, "")
	if code, _ := put(t, srv, a, []byte("abc"), ""); code != 201 {
		t.Fatal(code)
	}
	b := mustSlot(t, s, "alice", "b.txt", 3, "")
	if code, _ := put(t, srv, b, []byte("def"), ""); code != 201 {
		t.Fatal(code)
	}
	idB := strings.Split(b.GetURL, "/")[4]
	// b's file is cut short behind the service's back.
	if err := os.WriteFile(filepath.Join(s.cfg.Dir, idB), []byte("d"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := s.cfg
	cfg.Now = clk.Now
	s2 := New(cfg, nil)
	if err := s2.load(); err != nil {
		t.Fatal(err)
	}
	s2.base = s.base
	if got := s2.Usage("alice"); got != 3 {
		t.Fatalf("usage after restart: %d, want 3", got)
	}
	srv2 := httptest.NewServer(s2.Handler())
	defer srv2.Close()
	if resp, body := get(t, srv2, "GET", a.GetURL); resp.StatusCode != 200 || string(body) != "abc" {
		t.Fatalf("GET a after restart: %d %q", resp.StatusCode, body)
	}
	if resp, _ := get(t, srv2, "GET", b.GetURL); resp.StatusCode != 404 {
		t.Fatalf("GET of the broken file: %d", resp.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(s.cfg.Dir, idB+".json")); !os.IsNotExist(err) {
		t.Fatalf("broken file's sidecar kept: %v", err)
	}
	// A slot of the old run is void.
	c := mustSlot(t, s, "alice", "c.txt", 3, "")
	if code, _ := put(t, srv2, c, []byte("ghi"), ""); code != 403 {
		t.Fatalf("PUT with a slot of the previous run: %d", code)
	}
}

func TestSanitizeName(t *testing.T) {
	long := strings.Repeat("é", 100) + ".jpeg"
	for in, want := range map[string]string{
		"photo.jpg":                   "photo.jpg",
		"très cool.jpg":               "très cool.jpg",
		"../../etc/passwd":            "passwd",
		`C:\Users\me\doc.pdf`:         "doc.pdf",
		"..":                          "file",
		".htaccess":                   "htaccess",
		"":                            "file",
		"a/b/":                        "file",
		"rock&roll?.mp3":              "rock_roll_.mp3",
		"100%.png":                    "100_.png",
		"evil\u202egnp.exe":           "evil_gnp.exe",
		"tab\tnew\nline\x00.txt":      "tab_new_line_.txt",
		"\"quoted\" 'name'.txt":       "_quoted_ _name_.txt",
		"bad\xffutf8.txt":             "badutf8.txt",
		"日本語のファイル.txt":                "日本語のファイル.txt",
		"name (1) [2] a+b_c-d.tar.gz": "name (1) [2] a+b_c-d.tar.gz",
		" spaced . ":                  "spaced",
		long:                          strings.Repeat("é", 61) + ".jpeg",
	} {
		got := SanitizeName(in)
		if got != want {
			t.Errorf("SanitizeName(%q) = %q, want %q", in, got, want)
		}
		if SanitizeName(got) != got {
			t.Errorf("SanitizeName(%q) is not stable", got)
		}
		if len(got) > maxNameBytes {
			t.Errorf("SanitizeName(%q) is %d bytes", in, len(got))
		}
	}
}

// selfSigned is a certificate for box.test.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "box.test"},
		DNSNames: []string{"box.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

func TestServeHTTPS(t *testing.T) {
	tc, pool := selfSigned(t)
	logs := &logBuf{}
	s := New(Config{Listen: []string{"127.0.0.1:0"}, TLS: tc, Domain: "box.test", Dir: filepath.Join(t.TempDir(), "uploads")},
		slog.New(slog.NewTextHandler(logs, nil)))
	if _, err := s.Slot(context.Background(), "alice", "a", 1, ""); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("slot before Serve: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	addr := s.Addrs()[0]
	if !strings.Contains(logs.String(), "msg=listening door=upload addr="+addr) {
		t.Fatalf("no listening line in the log:\n%s", logs)
	}
	_, port, _ := net.SplitHostPort(addr)
	sl := mustSlot(t, s, "alice", "hello.txt", 5, "text/plain")
	if !strings.HasPrefix(sl.PutURL, "https://box.test:"+port+"/upload/") {
		t.Fatalf("URL %s for %s", sl.PutURL, addr)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}}
	req, _ := http.NewRequest("PUT", sl.PutURL, strings.NewReader("hello"))
	req.Header.Set("Authorization", sl.Headers["Authorization"])
	req.Header.Set("Content-Type", "text/plain")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("PUT over HTTPS: %d", resp.StatusCode)
	}
	resp, err = client.Get(sl.GetURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello" || resp.Proto != "HTTP/1.1" {
		t.Fatalf("GET over HTTPS: %s %q", resp.Proto, body)
	}
	client.CloseIdleConnections()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := s.Slot(context.Background(), "alice", "a", 1, ""); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("slot after Serve: %v", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("still listening after Serve returned")
	}
}
