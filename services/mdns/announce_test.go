package mdns

import (
	"slices"
	"testing"
)

func TestReachable(t *testing.T) {
	for _, c := range []struct {
		addr string
		port int
		ok   bool
	}{
		{"0.0.0.0:6697", 6697, true},
		{"[::]:5222", 5222, true},
		{":6667", 6667, true},
		{"192.168.1.10:8080", 8080, true},
		{"10.0.0.1:5223", 5223, true},
		{"[fe80::1%eth0]:5222", 5222, true},
		{"[2001:db8::1]:443", 443, true},
		{"chatbox.lan:6697", 6697, true},
		{"127.0.0.1:6697", 0, false},
		{"127.1.2.3:6697", 0, false},
		{"[::1]:5222", 0, false},
		{"[::ffff:127.0.0.1]:5222", 0, false},
		{"localhost:8080", 0, false},
		{"LocalHost.:8080", 0, false},
		{"foo.localhost:8080", 0, false},
		{"0.0.0.0:0", 0, false},
		{"0.0.0.0:70000", 0, false},
		{"0.0.0.0", 0, false},
		{"", 0, false},
		{"0.0.0.0:http", 0, false},
	} {
		port, ok := Reachable(c.addr)
		if port != c.port || ok != c.ok {
			t.Errorf("Reachable(%q) = %d, %v; want %d, %v", c.addr, port, ok, c.port, c.ok)
		}
	}
}

func TestBuild(t *testing.T) {
	got := Build(Listeners{
		IRCTLS:     []string{"127.0.0.1:6697", "0.0.0.0:6697", "[::]:7000"},
		IRCPlain:   []string{"127.0.0.1:6667"},
		XMPP:       []string{"[::]:5222"},
		XMPPTLS:    []string{"192.168.1.2:5223"},
		Federation: []string{"0.0.0.0:5269"}, // federation off
		Web:        "0.0.0.0:8080",
	})
	want := []Announcement{
		{ServiceIRCTLS, 6697},
		{ServiceXMPPClient, 5222},
		{ServiceXMPPSTLS, 5223},
		{ServiceHTTP, 8080},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Build = %v; want %v", got, want)
	}

	got = Build(Listeners{
		IRCPlain:          []string{":6667"},
		Federation:        []string{"0.0.0.0:5269"},
		FederationEnabled: true,
		Web:               "0.0.0.0:8443",
		WebHTTPS:          true,
	})
	want = []Announcement{{ServiceIRC, 6667}, {ServiceXMPPServer, 5269}, {ServiceHTTPS, 8443}}
	if !slices.Equal(got, want) {
		t.Errorf("Build = %v; want %v", got, want)
	}

	// The built-in defaults listen on loopback only: nothing to announce.
	if got := Build(Listeners{
		IRCTLS: []string{"127.0.0.1:6697"}, IRCPlain: []string{"127.0.0.1:6667"},
		XMPP: []string{"127.0.0.1:5222"}, XMPPTLS: []string{"127.0.0.1:5223"},
		Federation: []string{"127.0.0.1:5269"}, FederationEnabled: true, Web: "127.0.0.1:8080",
	}); len(got) != 0 {
		t.Errorf("Build(loopback only) = %v; want nothing", got)
	}
	if got := Build(Listeners{}); len(got) != 0 {
		t.Errorf("Build(nothing) = %v", got)
	}
}

func TestTXT(t *testing.T) {
	got := txtFor(ServiceIRCTLS, "chat.example", "1.2.3", false)
	want := []string{"domain=chat.example", "version=1.2.3", "registration=closed"}
	if !slices.Equal(got, want) {
		t.Errorf("txt = %v; want %v", got, want)
	}
	for _, svc := range []string{ServiceHTTP, ServiceHTTPS} {
		got = txtFor(svc, "d", "v", true)
		want = []string{"domain=d", "version=v", "registration=open", "path=/admin/"}
		if !slices.Equal(got, want) {
			t.Errorf("txt(%s) = %v; want %v", svc, got, want)
		}
	}
}

func TestLabels(t *testing.T) {
	for in, want := range map[string]string{
		"chatbox": "chatbox", "chatbox.local.": "chatbox", "ChatBox.local": "chatbox",
		"pilocal": "pilocal", "my box": "my-box", "": "chatbox", "box.lan": "box",
	} {
		if got := hostLabel(in); got != want {
			t.Errorf("hostLabel(%q) = %q; want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"chatbox": "chatbox", "Our Chat": "Our Chat", "a.b": "a-b", " ": "chatbox",
	} {
		if got := instanceLabel(in); got != want {
			t.Errorf("instanceLabel(%q) = %q; want %q", in, got, want)
		}
	}
}
