package irc

// Fuzz targets for the IRC door's parsers and its line splitter, one
// function at a time with its own invariants (FuzzClientLines drives whole
// connections):
//
//   - FuzzMessageLines: a stored message rendered as IRC lines
//     (conn.messageLines: splitBody, splitLine, draft/multiline batches,
//     CTCP ACTION framing) never truncates (Modern IRC's 512-byte line):
//     every line serialises within 512 bytes, and the pieces put back
//     together are the body.
//   - FuzzModeStrings: MODE modestrings (parseChannelModes,
//     parseUserModes) and their arguments: every change applied takes an
//     argument from the line, at most maxModeArgs of them, and renders
//     back (renderModes) as a line that parses.
//   - FuzzHistoryParams: CHATHISTORY references and limits
//     (parseMsgRef, parseHistoryTime, parseHistoryLimit): times are kept
//     within the store's range, limits within 1..chathistoryMax.
//   - FuzzQueryArgs: KLINE masks, WHO queries and LIST filters
//     (parseKlineMask, parseWhoQuery, parseListFilter): a KLINE key is
//     canonical (parsing it again gives it back).
//
// Seeds are in testdata/fuzz/<target>/; found inputs are kept there.

import (
	"net"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"chatbox/services/chat"
)

func FuzzMessageLines(f *testing.F) {
	for _, s := range []string{"hello", "a\nb\r\nc", "", "\n\n", strings.Repeat("é", 400), strings.Repeat("word ", 200),
		strings.Repeat("x", 1000) + "\n" + strings.Repeat("日本", 300)} {
		f.Add(s, uint8(0), false)
	}
	d := newFuzzDoor(f, fuzzDoorOptions{})
	nc, peer := net.Pipe()
	f.Cleanup(func() { nc.Close(); peer.Close() })
	c := newConn(d.srv, nc, "127.0.0.1")
	c.nick = "bob"
	source := strings.Repeat("a", 30) + "!" + strings.Repeat("a", 30) + "@xmpp." + fuzzServerName
	target := "#" + strings.Repeat("r", 30)
	f.Fuzz(func(t *testing.T, body string, flags uint8, action bool) {
		// The bodies the core stores: UTF-8 without NUL or a lone CR
		// (XML and the IRC door both refuse those).
		if !utf8.ValidString(body) || strings.ContainsRune(body, 0) || strings.Contains(strings.ReplaceAll(body, "\r\n", ""), "\r") {
			t.Skip()
		}
		caps := capSet{}
		if flags&1 != 0 {
			caps = caps.with("batch", "draft/multiline")
		}
		if flags&2 != 0 {
			caps = caps.with("server-time", "message-tags", "account-tag")
		}
		kind := chat.KindNormal
		if action {
			kind = chat.KindAction
		}
		m := &chat.Message{ID: "mh24hvnxa7supktk7qguyf7nq4", Time: time.Now(), From: "alice", Room: "r", Kind: kind, Body: body}
		var lines []string
		var concat []bool
		batched := false
		for _, msg := range c.messageLines(m, source, target, caps) {
			b, err := msg.LineBytesStrict(false, maxLineBody)
			if err != nil {
				t.Fatalf("line does not fit: %v: %q", err, b)
			}
			if len(b)-len(tagsOf(b)) > maxLineBody {
				t.Fatalf("line of %d bytes: %q", len(b), b)
			}
			if msg.Command == "BATCH" {
				batched = true
				continue
			}
			text := msg.Params[len(msg.Params)-1]
			lines = append(lines, text)
			isConcat, _ := msg.GetTag(concatTag)
			concat = append(concat, isConcat)
		}
		want := strings.ReplaceAll(body, "\r\n", "\n")
		if action {
			if len(lines) == 0 {
				t.Fatal("no lines")
			}
			if batched {
				lines[0] = strings.TrimPrefix(lines[0], "\x01ACTION ")
				lines[len(lines)-1] = strings.TrimSuffix(lines[len(lines)-1], "\x01")
			} else {
				for i, l := range lines {
					if !strings.HasPrefix(l, "\x01ACTION ") || !strings.HasSuffix(l, "\x01") {
						t.Fatalf("line %d not an ACTION: %q", i, l)
					}
					lines[i] = l[len("\x01ACTION ") : len(l)-1]
				}
			}
		}
		var got strings.Builder
		for i, l := range lines {
			if i > 0 && !concat[i] {
				got.WriteByte('\n')
			}
			got.WriteString(l)
		}
		g := got.String()
		if !batched {
			// Without a batch a cut line and a new line look the same, and
			// a blank line is sent as one space: compare the text, and
			// that there are at least as many lines as the body has.
			bodyLines := strings.Split(want, "\n")
			if len(lines) < len(bodyLines) {
				t.Fatalf("%d lines for a body of %d", len(lines), len(bodyLines))
			}
			for i, l := range bodyLines {
				if l == "" {
					bodyLines[i] = " "
				}
			}
			g, want = strings.Join(lines, ""), strings.Join(bodyLines, "")
		}
		if g != want {
			t.Fatalf("pieces put together:\n%q\nwant\n%q", g, want)
		}
	})
}

// tagsOf is the tag section of a serialised line ("@...; "), if any.
func tagsOf(line []byte) []byte {
	if len(line) == 0 || line[0] != '@' {
		return nil
	}
	if i := strings.IndexByte(string(line), ' '); i >= 0 {
		return line[:i+1]
	}
	return line
}

func FuzzModeStrings(f *testing.F) {
	for _, s := range []string{"+o alice", "+b", "-k key", "+lk 10 key", "+beI a!b@c", "+ovqa a b c d e", "+imnpst", "+x-y", "iwBoZ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			t.Skip()
		}
		args := fields[1:]
		p := parseChannelModes(fields[0], args)
		withArg := 0
		for _, ch := range p.changes {
			if ch.arg != "" {
				withArg++
				if !slices.Contains(args, ch.arg) {
					t.Fatalf("change %+v takes an argument the line does not have", ch)
				}
			}
		}
		if withArg > maxModeArgs {
			t.Fatalf("%d changes with arguments, more than %d", withArg, maxModeArgs)
		}
		if len(p.changes) > 0 {
			out := renderModes(p.changes)
			again := parseChannelModes(out[0], out[1:])
			if len(again.changes) != len(p.changes) {
				t.Fatalf("%q rendered as %q parses to %d changes, want %d", line, out, len(again.changes), len(p.changes))
			}
		}
		changes, _ := parseUserModes(fields[0])
		if len(changes) > utf8.RuneCountInString(fields[0]) {
			t.Fatalf("%d user mode changes from %q", len(changes), fields[0])
		}
	})
}

func FuzzHistoryParams(f *testing.F) {
	for _, s := range []string{"*", "msgid=abc", "timestamp=2026-12-01T09:30:00.000Z", "timestamp=0001-01-01T00:00:00Z",
		"timestamp=9999-12-31T23:59:59.999999999+14:00", "timestamp=", "100", "-1", "0", "99999999999999999999"} {
		f.Add(s)
	}
	lo := time.Date(1700, 1, 1, 0, 0, 0, 0, time.UTC)
	hi := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		if ref, ok := parseMsgRef(s, true); ok {
			switch {
			case ref.star:
				if s != "*" {
					t.Fatalf("%q parsed as *", s)
				}
			case ref.msgid != "":
				if s != "msgid="+ref.msgid {
					t.Fatalf("%q parsed as msgid %q", s, ref.msgid)
				}
			case ref.ts.Before(lo) || ref.ts.After(hi) || ref.ts.Location() != time.UTC:
				t.Fatalf("%q parsed as %v, outside %v..%v UTC", s, ref.ts, lo, hi)
			}
		}
		if n, ok := parseHistoryLimit(s); ok && (n < 1 || n > chathistoryMax) {
			t.Fatalf("limit %q parsed as %d", s, n)
		}
	})
}

func FuzzQueryArgs(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "*@10.0.0.0/8", "*!*@::ffff:1.2.3.4/120", "2001:db8::/48", "*", "#chan%cuhnf,42",
		"alice o", ">10,<100", "C>5,T<3,!#a*", "#a*,#b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if key, err := parseKlineMask(s); err == nil {
			again, err := parseKlineMask(key)
			if err != nil || again != key {
				t.Fatalf("KLINE %q -> %q -> %q, %v", s, key, again, err)
			}
		}
		q := parseWhoQuery(s)
		if q.fields == "" {
			t.Fatalf("WHO %q: no fields", s)
		}
		parseListFilter(s)
	})
}
