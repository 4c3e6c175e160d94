package webchat

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, method, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

var fakeDist = fstest.MapFS{
	"converse.min.js":  {Data: []byte("window.converse = {};")},
	"converse.min.css": {Data: []byte("body{}")},
	"emoji.json.gz":    {Data: gzipped(`{"smileys":{}}`)},
	"README.md":        {Data: []byte("how to build")},
}

var configRe = regexp.MustCompile(`<script type="application/json" id="chatbox-config">([^<]*)</script>`)

// TestPage: the page configures Converse for the box (domain, rooms,
// guest host) in a JSON data block, under a CSP without inline script.
func TestPage(t *testing.T) {
	h := newHandler(Config{Name: "Party <box>", Domain: "box.test", Rooms: []string{"general", "#Games"}, Guests: true}, fakeDist)
	for _, path := range []string{"/", "/chat/"} {
		res, body := get(t, h, "GET", path)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("GET %s: %d %s", path, res.StatusCode, res.Header.Get("Content-Type"))
		}
		policy := "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
			"img-src 'self' data: blob: https://box.test:*; media-src 'self' data: blob: https://box.test:*; " +
			"font-src 'self' data:; connect-src 'self' https://box.test:*; manifest-src 'self'; " +
			"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
		if got := res.Header.Get("Content-Security-Policy"); got != policy {
			t.Errorf("CSP %q", got)
		}
		if res.Header.Get("Cache-Control") != "no-store" || res.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("headers %v", res.Header)
		}
		m := configRe.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no config block in %s", body)
		}
		var cc clientConfig
		if err := json.Unmarshal([]byte(m[1]), &cc); err != nil {
			t.Fatalf("config %s: %v", m[1], err)
		}
		want := clientConfig{Domain: "box.test", MUCDomain: "rooms.box.test", GuestDomain: "guest.box.test",
			Rooms: []string{"general@rooms.box.test", "games@rooms.box.test"}, AssetsPath: "/chat/converse"}
		if jsonOf(cc) != jsonOf(want) {
			t.Errorf("config %s, want %s", jsonOf(cc), jsonOf(want))
		}
		for _, s := range []string{`<title>Party &lt;box&gt; — chat</title>`, `id="guest-form"`, `id="login-button"`,
			`<script type="module" src="/chat/converse/converse.min.js">`, `<script type="module" src="/chat/chatbox.js">`} {
			if !strings.Contains(body, s) {
				t.Errorf("page lacks %s:\n%s", s, body)
			}
		}
		if strings.Contains(body, "<script>") || strings.Contains(body, "http") {
			t.Errorf("inline script or an absolute URL in the page:\n%s", body)
		}
	}

	// Without guests: no guest form, no guest host.
	h = newHandler(Config{Domain: "box.test", Rooms: []string{"general"}}, fakeDist)
	_, body := get(t, h, "GET", "/chat/")
	if strings.Contains(body, "guest-form") || strings.Contains(body, "guestDomain") || !strings.Contains(body, "<title>box.test — chat</title>") {
		t.Errorf("page without guests:\n%s", body)
	}
}

// TestNotBuilt: without the Converse files, the page says how to build
// them and loads no script.
func TestNotBuilt(t *testing.T) {
	h := newHandler(Config{Domain: "box.test", Guests: true}, fstest.MapFS{"README.md": {Data: []byte("x")}})
	if h.Built() {
		t.Fatal("built without converse.min.js")
	}
	res, body := get(t, h, "GET", "/")
	if res.StatusCode != 200 || !strings.Contains(body, "make webchat-assets") || strings.Contains(body, "<script") {
		t.Fatalf("page without assets: %d\n%s", res.StatusCode, body)
	}
	if res, _ := get(t, h, "GET", "/chat/converse/converse.min.js"); res.StatusCode != 404 {
		t.Errorf("converse.min.js without assets: %d", res.StatusCode)
	}
	if got := strings.Join(h.Paths(), " "); got != "/chat/ /chat/chatbox.css /chat/chatbox.js" {
		t.Errorf("paths %q", got)
	}
}

// TestAssets: the Converse files and the page's own script and style are
// served with their types; anything else is 404, writes are 405.
func TestAssets(t *testing.T) {
	h := newHandler(Config{Domain: "box.test"}, fakeDist)
	for path, ct := range map[string]string{
		"/chat/converse/converse.min.js":  "text/javascript; charset=utf-8",
		"/chat/converse/converse.min.css": "text/css; charset=utf-8",
		"/chat/converse/emoji.json":       "application/json",
		"/chat/chatbox.js":                "text/javascript; charset=utf-8",
		"/chat/chatbox.css":               "text/css; charset=utf-8",
	} {
		res, body := get(t, h, "GET", path)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != ct || body == "" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: %d %q (%d bytes)", path, res.StatusCode, res.Header.Get("Content-Type"), len(body))
		}
	}
	if res, body := get(t, h, "HEAD", "/chat/chatbox.js"); res.StatusCode != 200 || body != "" {
		t.Errorf("HEAD: %d %q", res.StatusCode, body)
	}
	for _, path := range []string{"/chat/converse/README.md", "/chat/converse/", "/chat/nope.js", "/chat/converse/../webchat.go",
		"/chat/converse/%2e%2e/x", "/elsewhere", "/chat/static/chatbox.js"} {
		if res, _ := get(t, h, "GET", path); res.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", path, res.StatusCode)
		}
	}
	if res, _ := get(t, h, "POST", "/chat/"); res.StatusCode != 405 || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d %v", res.StatusCode, res.Header)
	}
	want := "/chat/ /chat/chatbox.css /chat/chatbox.js /chat/converse/converse.min.css /chat/converse/converse.min.js /chat/converse/emoji.json"
	if got := strings.Join(h.Paths(), " "); got != want {
		t.Errorf("paths %q, want %q", got, want)
	}
}

// TestGzipped: a file kept gzipped goes as it is to a browser that
// accepts gzip, decompressed to one that does not.
func TestGzipped(t *testing.T) {
	h := newHandler(Config{Domain: "box.test"}, fakeDist)
	for _, tc := range []struct {
		accept, encoding, body string
	}{
		{"gzip, deflate, br", "gzip", string(gzipped(`{"smileys":{}}`))},
		{"br;q=1.0, GZIP;q=0.5", "gzip", string(gzipped(`{"smileys":{}}`))},
		{"", "", `{"smileys":{}}`},
		{"gzip;q=0", "", `{"smileys":{}}`},
		{"deflate", "", `{"smileys":{}}`},
	} {
		req := httptest.NewRequest("GET", "/chat/converse/emoji.json", nil)
		if tc.accept != "" {
			req.Header.Set("Accept-Encoding", tc.accept)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		res := rec.Result()
		if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != tc.encoding || rec.Body.String() != tc.body ||
			res.Header.Get("Vary") != "Accept-Encoding" || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("Accept-Encoding %q: %d, encoding %q, %v, body %q", tc.accept, res.StatusCode, res.Header.Get("Content-Encoding"), res.Header, rec.Body.String())
		}
	}
	if res, _ := get(t, h, "GET", "/chat/converse/emoji.json.gz"); res.StatusCode != 404 {
		t.Errorf("the .gz name itself: %d", res.StatusCode)
	}
	// A damaged file is a server error, not a panic.
	h = newHandler(Config{Domain: "box.test"}, fstest.MapFS{"converse.min.js": {Data: []byte("x")}, "emoji.json.gz": {Data: []byte("not gzip")}})
	if res, _ := get(t, h, "GET", "/chat/converse/emoji.json"); res.StatusCode != 500 {
		t.Errorf("damaged gzip: %d", res.StatusCode)
	}
}

func gzipped(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
