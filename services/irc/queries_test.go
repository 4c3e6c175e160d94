package irc

// Unit tests of the pure pieces of queries.go: wildcard and WHO mask
// matching, WHOX field parsing, ELIST filters, line packing.

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMatchGlob(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"", "", true},
		{"", "a", false},
		{"alice", "alice", true},
		{"Alice", "aLICE", true},
		{"al?ce", "alice", true},
		{"al?ce", "allce", true},
		{"al?ce", "alce", false},
		{"a*e", "alice", true},
		{"a*e", "alicex", false},
		{"*ice", "alice", true},
		{"*li*", "alice", true},
		{"*x*", "alice", false},
		{"a**e", "ae", true},
		{"*!*@irc.box.lan", "alice!alice@irc.box.lan", true},
		{"*!*@xmpp.*", "alice!alice@irc.box.lan", false},
		{"#gen*", "#general", true},
		{"#g?neral", "#général", false},
		{"#g?n?ral", "#général", true}, // '?' is one character, not one byte
		{"[a]", "[a]", true},           // no character classes
		{"a/b*", "a/bc", true},         // '/' is nothing special
	}
	for _, c := range cases {
		if got := matchGlob(c.pattern, c.s); got != c.want {
			t.Errorf("matchGlob(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

func TestExpandMask(t *testing.T) {
	cases := map[string]string{
		"alice":          "alice!*@*",
		"alice!bob":      "alice!bob@*",
		"alice!bob@host": "alice!bob@host",
		"bob@host":       "*!bob@host",
		"@host":          "*!*@host",
		"alice!":         "alice!*@*",
		"!@":             "*!*@*",
		"*":              "*!*@*",
	}
	for in, want := range cases {
		if got := canonMask(in); got != want {
			t.Errorf("canonMask(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWhoMatches(t *testing.T) {
	u := &ircUser{nick: "alice", user: "alice", host: "xmpp.box.lan", realname: "Alice Liddell", account: "alice"}
	guest := &ircUser{nick: "Guest10001", user: "~g", host: "irc.box.lan", realname: "someone"}
	cases := []struct {
		mask string
		u    *ircUser
		want bool
	}{
		{"al*", u, true},
		{"*liddell", u, true},   // real name
		{"xmpp.*", u, true},     // host
		{"*!*@xmpp.*", u, true}, // full mask
		{"*!*@irc.*", u, false}, // full mask, other door
		{"bob*", u, false},      //
		{"*!~g@*", guest, true}, // user part
		{"guest*", guest, true}, // nick, case-insensitively
		{"*!alice@*", guest, false},
	}
	for _, c := range cases {
		if got := whoMatches(c.mask, c.u); got != c.want {
			t.Errorf("whoMatches(%q, %s) = %v, want %v", c.mask, c.u.nick, got, c.want)
		}
	}
}

func TestParseWhoQuery(t *testing.T) {
	cases := []struct {
		arg  string
		want whoQuery
	}{
		{"", whoQuery{fields: "cuhsnf"}},
		{"o", whoQuery{fields: "cuhsnf", opersOnly: true}},
		{"%cuhsnfar", whoQuery{fields: "cuhsnfar", whox: true, token: "0"}},
		// Fields come back in the protocol's order whatever the order asked.
		{"%rant,42", whoQuery{fields: "tnar", whox: true, token: "42"}},
		{"%TCUIHSNFDLAOR,999", whoQuery{fields: "tcuihsnfdlaor", whox: true, token: "999"}},
		{"o%n", whoQuery{fields: "n", whox: true, token: "0", opersOnly: true}},
		{"%n,1234", whoQuery{fields: "n", whox: true, token: "0"}}, // tokens are at most 3 digits
		{"%tn,abc", whoQuery{fields: "tn", whox: true, token: "0"}},
		{"%tn,", whoQuery{fields: "tn", whox: true, token: "0"}},
		{"%xyzn", whoQuery{fields: "n", whox: true, token: "0"}}, // unknown fields ignored
	}
	for _, c := range cases {
		if got := parseWhoQuery(c.arg); got != c.want {
			t.Errorf("parseWhoQuery(%q) = %+v, want %+v", c.arg, got, c.want)
		}
	}
}

func TestParseListFilter(t *testing.T) {
	unset := listFilter{usersAbove: -1, usersBelow: -1, createdAbove: -1, createdBelow: -1, topicAbove: -1, topicBelow: -1}
	with := func(change func(*listFilter)) listFilter {
		f := unset
		change(&f)
		return f
	}
	cases := []struct {
		arg  string
		want listFilter
	}{
		{"", unset},
		{" , ", unset},
		{">5", with(func(f *listFilter) { f.usersAbove = 5 })},
		{"<10,>2", with(func(f *listFilter) { f.usersBelow, f.usersAbove = 10, 2 })},
		{"C>60,C<120", with(func(f *listFilter) { f.createdAbove, f.createdBelow = 60, 120 })},
		{"t<5,T>1", with(func(f *listFilter) { f.topicBelow, f.topicAbove = 5, 1 })},
		{"#General,#dev", with(func(f *listFilter) { f.masks = []string{"#general", "#dev"} })},
		{"*chat*", with(func(f *listFilter) { f.masks = []string{"*chat*"} })},
		{"foo*", with(func(f *listFilter) { f.masks = []string{"#foo*"} })},
		{"!*test*,>0", with(func(f *listFilter) { f.notMasks = []string{"*test*"}; f.usersAbove = 0 })},
	}
	for _, c := range cases {
		got, err := parseListFilter(c.arg)
		if err != nil {
			t.Errorf("parseListFilter(%q): %v", c.arg, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseListFilter(%q) = %+v, want %+v", c.arg, got, c.want)
		}
	}
	for _, bad := range []string{">", "<x", "C>", "T<-1", "!", ">99999999999"} {
		_, err := parseListFilter(bad)
		if err == nil {
			t.Errorf("parseListFilter(%q) accepted a bad condition", bad)
			continue
		}
		if !strings.Contains(err.Error(), bad) {
			t.Errorf("parseListFilter(%q) error %q does not name the condition", bad, err)
		}
	}
}

func TestListFilterMatch(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	general := listRoom{name: "general", users: 5, created: now.Add(-48 * time.Hour), topicAt: now.Add(-30 * time.Minute), hasTopic: true}
	fresh := listRoom{name: "test-fresh", users: 1, created: now.Add(-10 * time.Minute)}
	cases := []struct {
		arg  string
		room listRoom
		want bool
	}{
		{"", general, true},
		{"", fresh, true},
		{">4", general, true},
		{">5", general, false}, // more than 5: strictly
		{"<5", general, false},
		{"<6", general, true},
		{"#general", general, true},
		{"#GENERAL", general, true},
		{"#general", fresh, false},
		{"#general,#test-fresh", fresh, true},
		{"*test*", fresh, true},
		{"!*test*", fresh, false},
		{"!*test*", general, true},
		{"*e*,!*fresh", fresh, false},
		{"C<60", fresh, true}, // created less than an hour ago
		{"C<60", general, false},
		{"C>60", general, true},
		{"C>60", fresh, false},
		{"T<60", general, true}, // topic set less than an hour ago
		{"T>60", general, false},
		{"T>10", general, true},
		{"T<60", fresh, false}, // no topic: no topic-time condition holds
		{"T>0", fresh, false},
		{">0,C>1000,T<31,#gen*", general, true},
		{">0,C>1000,T<29,#gen*", general, false},
	}
	for _, c := range cases {
		f, err := parseListFilter(c.arg)
		if err != nil {
			t.Fatalf("parseListFilter(%q): %v", c.arg, err)
		}
		if got := f.match(c.room, now); got != c.want {
			t.Errorf("LIST %q on #%s = %v, want %v", c.arg, c.room.name, got, c.want)
		}
	}
}

func TestJoinLines(t *testing.T) {
	if got := joinLines(nil, ",", 10); got != nil {
		t.Errorf("joinLines(nil) = %q, want nil", got)
	}
	got := joinLines([]string{"aaaa", "bbbb", "cccc", "dddddddddddddd", "e"}, ",", 10)
	want := []string{"aaaa,bbbb", "cccc", "dddddddddddddd", "e"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("joinLines = %q, want %q", got, want)
	}
	for _, line := range joinLines(strings.Fields(strings.Repeat("nick ", 300)), " ", listLineMax) {
		if len(line) > listLineMax {
			t.Errorf("line of %d bytes exceeds %d", len(line), listLineMax)
		}
	}
}

func TestTruncateUTF8(t *testing.T) {
	if got := truncateUTF8("héllo", 2); got != "h" {
		t.Errorf("truncateUTF8 cut inside a character: %q", got)
	}
	if got := truncateUTF8("héllo", 3); got != "hé" {
		t.Errorf("truncateUTF8 = %q, want %q", got, "hé")
	}
	if got := truncateUTF8("short", 10); got != "short" {
		t.Errorf("truncateUTF8 changed a short string: %q", got)
	}
}

func TestSafeParam(t *testing.T) {
	for in, want := range map[string]string{"alice": "alice", "": "*", ":x": "*", "a b": "*", "#room": "#room"} {
		if got := safeParam(in); got != want {
			t.Errorf("safeParam(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestQueryCommandsAccess(t *testing.T) {
	// Before login only the harmless server queries are allowed.
	for name, cmd := range queryCommands {
		harmless := name == "VERSION" || name == "TIME" || name == "INFO"
		if cmd.unidentified != harmless {
			t.Errorf("%s: unidentified = %v, want %v", name, cmd.unidentified, harmless)
		}
		if cmd.preReg {
			t.Errorf("%s is allowed before registration", name)
		}
	}
}
