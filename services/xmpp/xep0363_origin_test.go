package xmpp

import (
	"crypto/tls"
	"net/http"
	"testing"
)

func TestWebOrigin(t *testing.T) {
	for _, c := range []struct {
		host string
		tls  bool
		want string
	}{
		{"chatbox.local", false, "http://chatbox.local"},
		{"chatbox.local:8443", true, "https://chatbox.local:8443"},
		{"[::1]:80", false, "http://[::1]:80"},
		{"", false, ""},
		{"evil.example/path", false, ""},
		{"user@evil.example", false, ""},
		{"a.example?x=1", false, ""},
		{"a.example#f", false, ""},
	} {
		r := &http.Request{Host: c.host}
		if c.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if got := webOrigin(r); got != c.want {
			t.Errorf("webOrigin(Host %q, TLS %v) = %q, want %q", c.host, c.tls, got, c.want)
		}
	}
	for _, c := range []struct{ u, origin, want string }{
		{"https://box.test:5443/upload/abc/cat%20pic.png", "http://chatbox.local", "http://chatbox.local/upload/abc/cat%20pic.png"},
		{"https://box.test:5443/other/abc", "http://chatbox.local", "https://box.test:5443/other/abc"},
	} {
		if got := onOrigin(c.u, c.origin); got != c.want {
			t.Errorf("onOrigin(%q, %q) = %q, want %q", c.u, c.origin, got, c.want)
		}
	}
}
