package irc

// Unit tests for the MODE parsers (modes.go) and the K-line masks
// (oper.go). The commands end to end are tested with the other door
// tests.

import (
	"reflect"
	"strings"
	"testing"
)

func TestModeParseChannel(t *testing.T) {
	type ch = modeChange
	tests := []struct {
		name    string
		modes   string
		args    []string
		changes []modeChange
		lists   string
		unknown string
		missing []modeChange
		excess  []modeChange
	}{
		{name: "flags", modes: "+imnpst",
			changes: []ch{{true, 'i', ""}, {true, 'm', ""}, {true, 'n', ""}, {true, 'p', ""}, {true, 's', ""}, {true, 't', ""}}},
		{name: "no sign means plus", modes: "m",
			changes: []ch{{true, 'm', ""}}},
		{name: "mixed signs", modes: "+m-t+s", changes: []ch{{true, 'm', ""}, {false, 't', ""}, {true, 's', ""}}},
		{name: "arguments in order", modes: "+o-v+k", args: []string{"alice", "bob", "sesame"},
			changes: []ch{{true, 'o', "alice"}, {false, 'v', "bob"}, {true, 'k', "sesame"}}},
		{name: "flags between argument modes", modes: "+oi-lv", args: []string{"alice", "bob"},
			changes: []ch{{true, 'o', "alice"}, {true, 'i', ""}, {false, 'l', ""}, {false, 'v', "bob"}}},
		{name: "limit", modes: "+l", args: []string{"25"}, changes: []ch{{true, 'l', "25"}}},
		{name: "minus l takes no argument", modes: "-lo", args: []string{"alice"},
			changes: []ch{{false, 'l', ""}, {false, 'o', "alice"}}},
		{name: "minus k with its argument", modes: "-k", args: []string{"sesame"}, changes: []ch{{false, 'k', "sesame"}}},
		{name: "minus k without argument", modes: "-k", changes: []ch{{false, 'k', ""}}},
		{name: "list queries", modes: "bI", lists: "bI"},
		{name: "list query once", modes: "+b-b", lists: "b"},
		{name: "list changes", modes: "+b-e+I", args: []string{"troll!*@*", "x!*@*", "friend"},
			changes: []ch{{true, 'b', "troll!*@*"}, {false, 'e', "x!*@*"}, {true, 'I', "friend"}}},
		{name: "list change then query", modes: "+bb", args: []string{"troll"},
			changes: []ch{{true, 'b', "troll"}}, lists: "b"},
		{name: "missing member argument", modes: "+ov", args: []string{"alice"},
			changes: []ch{{true, 'o', "alice"}}, missing: []ch{{true, 'v', ""}}},
		{name: "missing key and limit", modes: "+kl",
			missing: []ch{{true, 'k', ""}, {true, 'l', ""}}},
		{name: "unknown flags, each once", modes: "+xmyx", changes: []ch{{true, 'm', ""}}, unknown: "xy"},
		{name: "unknown flags take no argument", modes: "+zo", args: []string{"alice"},
			changes: []ch{{true, 'o', "alice"}}, unknown: "z"},
		{name: "user-only flags are unknown here", modes: "+Bw", unknown: "Bw"},
		{name: "non-ASCII flag", modes: "+é", unknown: "é"},
		{name: "four argument modes at most", modes: "+ooooo", args: []string{"a", "b", "c", "d", "e"},
			changes: []ch{{true, 'o', "a"}, {true, 'o', "b"}, {true, 'o', "c"}, {true, 'o', "d"}},
			excess:  []ch{{true, 'o', "e"}}},
		{name: "flags do not count toward the four", modes: "+vvvvimnt", args: []string{"a", "b", "c", "d"},
			changes: []ch{{true, 'v', "a"}, {true, 'v', "b"}, {true, 'v', "c"}, {true, 'v', "d"},
				{true, 'i', ""}, {true, 'm', ""}, {true, 'n', ""}, {true, 't', ""}}},
		{name: "too many with mixed kinds", modes: "+kl-ob+v", args: []string{"key", "10", "a", "m!*@*", "b"},
			changes: []ch{{true, 'k', "key"}, {true, 'l', "10"}, {false, 'o', "a"}, {false, 'b', "m!*@*"}},
			excess:  []ch{{true, 'v', "b"}}},
		{name: "extra arguments ignored", modes: "+m", args: []string{"stray"}, changes: []ch{{true, 'm', ""}}},
		{name: "signs only", modes: "+-+"},
		{name: "empty", modes: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := parseChannelModes(tt.modes, tt.args)
			if !reflect.DeepEqual(p.changes, tt.changes) {
				t.Errorf("changes = %v, want %v", p.changes, tt.changes)
			}
			if string(p.lists) != tt.lists {
				t.Errorf("lists = %q, want %q", p.lists, tt.lists)
			}
			if string(p.unknown) != tt.unknown {
				t.Errorf("unknown = %q, want %q", string(p.unknown), tt.unknown)
			}
			if !reflect.DeepEqual(p.missing, tt.missing) {
				t.Errorf("missing = %v, want %v", p.missing, tt.missing)
			}
			if !reflect.DeepEqual(p.excess, tt.excess) {
				t.Errorf("excess = %v, want %v", p.excess, tt.excess)
			}
		})
	}
}

func TestModeRender(t *testing.T) {
	tests := []struct {
		changes []modeChange
		want    string
	}{
		{nil, ""},
		{[]modeChange{{true, 'm', ""}}, "+m"},
		{[]modeChange{{true, 'o', "a"}, {true, 'v', "b"}, {false, 'b', "x!*@*"}, {false, 'i', ""}, {true, 'k', "key"}}, "+ov-bi+k a b x!*@* key"},
	}
	for _, tt := range tests {
		if got := strings.Join(renderModes(tt.changes), " "); got != tt.want {
			t.Errorf("renderModes(%v) = %q, want %q", tt.changes, got, tt.want)
		}
	}
	// What parses renders back the same.
	p := parseChannelModes("+o-v+b", []string{"a", "b", "c!*@*"})
	if got := strings.Join(renderModes(p.changes), " "); got != "+o-v+b a b c!*@*" {
		t.Errorf("round trip = %q", got)
	}
}

func TestModeParseUser(t *testing.T) {
	tests := []struct {
		modes   string
		changes []modeChange
		unknown bool
	}{
		{"+i", []modeChange{{add: true, mode: 'i'}}, false},
		{"+iw-B", []modeChange{{add: true, mode: 'i'}, {add: true, mode: 'w'}, {add: false, mode: 'B'}}, false},
		{"-o", []modeChange{{add: false, mode: 'o'}}, false},
		{"B", []modeChange{{add: true, mode: 'B'}}, false},
		{"+ix", []modeChange{{add: true, mode: 'i'}}, true},
		{"+m", nil, true},
		{"", nil, false},
	}
	for _, tt := range tests {
		changes, unknown := parseUserModes(tt.modes)
		if !reflect.DeepEqual(changes, tt.changes) || unknown != tt.unknown {
			t.Errorf("parseUserModes(%q) = %v, %v; want %v, %v", tt.modes, changes, unknown, tt.changes, tt.unknown)
		}
	}
}

func TestModeCanonMask(t *testing.T) {
	for in, want := range map[string]string{
		"troll":            "troll!*@*",
		"troll!*@*":        "troll!*@*",
		"troll!u":          "troll!u@*",
		"u@host":           "*!u@host",
		"*@irc.box.lan":    "*!*@irc.box.lan",
		"!@":               "*!*@*",
		"a!b@c":            "a!b@c",
		"*!*@xmpp.box.lan": "*!*@xmpp.box.lan",
	} {
		if got := canonMask(in); got != want {
			t.Errorf("canonMask(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestModeValidKey(t *testing.T) {
	for k, want := range map[string]bool{
		"sesame":                true,
		"":                      false,
		"a b":                   false,
		"a,b":                   false,
		":x":                    false,
		"a:b":                   true,
		strings.Repeat("k", 32): true,
		strings.Repeat("k", 33): false,
		"tab\there":             false,
		"naïve":                 true,
		"\x7f":                  false,
	} {
		if got := validKey(k); got != want {
			t.Errorf("validKey(%q) = %v, want %v", k, got, want)
		}
	}
}

func TestOperKlineMasks(t *testing.T) {
	good := map[string]string{
		"192.0.2.7":           "192.0.2.7",
		"*@192.0.2.7":         "192.0.2.7",
		"*!*@192.0.2.7":       "192.0.2.7",
		"192.0.2.99/24":       "192.0.2.0/24",
		"192.0.2.7/32":        "192.0.2.7",
		"::ffff:192.0.2.7":    "192.0.2.7",
		"::ffff:10.0.0.0/104": "10.0.0.0/8",
		"2001:db8::1":         "2001:db8::1",
		"2001:DB8:1::5/48":    "2001:db8:1::/48",
	}
	for in, want := range good {
		got, err := parseKlineMask(in)
		if err != nil || got != want {
			t.Errorf("parseKlineMask(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "host.example", "user@192.0.2.7", "192.0.2.0/33", "1.2.3"} {
		if got, err := parseKlineMask(bad); err == nil {
			t.Errorf("parseKlineMask(%q) = %q, want an error", bad, got)
		}
	}
	covers := []struct {
		mask, ip string
		want     bool
	}{
		{"192.0.2.7", "192.0.2.7", true},
		{"192.0.2.7", "192.0.2.8", false},
		{"192.0.2.0/24", "192.0.2.200", true},
		{"192.0.2.0/24", "192.0.3.1", false},
		{"192.0.2.0/24", "::ffff:192.0.2.9", true},
		{"2001:db8::/32", "2001:db8:5::1", true},
		{"2001:db8::/32", "2001:db9::1", false},
		{"192.0.2.0/24", "2001:db8::1", false},
		{"127.0.0.1", "not-an-ip", false},
	}
	for _, tt := range covers {
		if got := klineCovers(tt.mask, tt.ip); got != tt.want {
			t.Errorf("klineCovers(%q, %q) = %v, want %v", tt.mask, tt.ip, got, tt.want)
		}
	}
	s := &Server{klines: map[string]string{"10.1.0.0/16": "range", "192.0.2.7": "one"}}
	if why, ok := s.klinedLocked("10.1.2.3"); !ok || why != "range" {
		t.Errorf("klinedLocked(10.1.2.3) = %q, %v", why, ok)
	}
	if why, ok := s.klinedLocked("192.0.2.7"); !ok || why != "one" {
		t.Errorf("klinedLocked(192.0.2.7) = %q, %v", why, ok)
	}
	if _, ok := s.klinedLocked("10.2.0.1"); ok {
		t.Error("10.2.0.1 is banned")
	}
}

func TestModeTruncateAtRune(t *testing.T) {
	if got := truncateAtRune("héllo", 2); got != "h" {
		t.Errorf("cut inside a character: %q", got)
	}
	if got := truncateAtRune("hello", 10); got != "hello" {
		t.Errorf("short text changed: %q", got)
	}
	if got := truncateAtRune("hello", 3); got != "hel" {
		t.Errorf("got %q", got)
	}
}
