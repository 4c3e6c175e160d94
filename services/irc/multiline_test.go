package irc

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ergochat/irc-go/ircmsg"

	"chatbox/services/chat"
)

func TestMultilineCapValue(t *testing.T) {
	want := "max-bytes=" + strconv.Itoa(multilineMaxBytes) + ",max-lines=" + strconv.Itoa(multilineMaxLines)
	if multilineCapValue != want {
		t.Fatalf("multilineCapValue = %q, want %q", multilineCapValue, want)
	}
	if supportedCaps()["draft/multiline"] != multilineCapValue {
		t.Fatal("draft/multiline is not offered with its limits")
	}
	if _, ok := supportedCaps()["draft/chathistory"]; !ok {
		t.Fatal("draft/chathistory is not offered")
	}
}

func TestMultilineBatchJoin(t *testing.T) {
	b := &mlBatch{target: "#Chan"}
	for _, l := range []struct {
		text   string
		concat bool
	}{{"hello", false}, {"", false}, {"how is ", false}, {"everyone?", true}} {
		if f := b.add("PRIVMSG", "#chan", l.text, l.concat); f != nil {
			t.Fatalf("add(%q): %+v", l.text, f)
		}
	}
	body, f := b.body()
	if f != nil || body != "hello\n\nhow is everyone?" {
		t.Fatalf("body = %q, %+v", body, f)
	}
	if b.bytes != len(body) {
		t.Fatalf("bytes = %d, want %d", b.bytes, len(body))
	}
}

func TestMultilineBatchRules(t *testing.T) {
	code := func(f *batchFail) string {
		if f == nil {
			return ""
		}
		return f.code
	}
	t.Run("max-lines", func(t *testing.T) {
		b := &mlBatch{target: "#a"}
		for i := 0; i < multilineMaxLines; i++ {
			if f := b.add("PRIVMSG", "#a", "x", false); f != nil {
				t.Fatalf("line %d: %+v", i+1, f)
			}
		}
		f := b.add("PRIVMSG", "#a", "x", false)
		if code(f) != "MULTILINE_MAX_LINES" || f.context[0] != strconv.Itoa(multilineMaxLines) {
			t.Fatalf("line %d: %+v", multilineMaxLines+1, f)
		}
		if f := b.add("PRIVMSG", "#a", "x", false); f != nil {
			t.Fatalf("a failed batch fails once, got %+v", f)
		}
		if _, f := b.body(); code(f) != "MULTILINE_MAX_LINES" {
			t.Fatalf("body of a failed batch: %+v", f)
		}
	})
	t.Run("max-bytes counts the newlines", func(t *testing.T) {
		b := &mlBatch{target: "#a"}
		half := strings.Repeat("x", multilineMaxBytes/2)
		if f := b.add("PRIVMSG", "#a", half, false); f != nil {
			t.Fatal(f)
		}
		if f := b.add("PRIVMSG", "#a", half[1:], true); f != nil {
			t.Fatal(f) // concat: no newline, exactly max-bytes - 1
		}
		if f := b.add("PRIVMSG", "#a", "", false); f != nil {
			t.Fatal(f) // a blank line adds its newline: exactly max-bytes
		}
		if f := b.add("PRIVMSG", "#a", "", false); code(f) != "MULTILINE_MAX_BYTES" || f.context[0] != strconv.Itoa(multilineMaxBytes) {
			t.Fatalf("one byte over: %+v", f)
		}
	})
	for _, tc := range []struct {
		name  string
		lines [][3]string // verb, target, text ("+" prefix: concat)
		code  string
	}{
		{"mixed verbs", [][3]string{{"PRIVMSG", "#a", "x"}, {"NOTICE", "#a", "y"}}, "MULTILINE_INVALID"},
		{"other command", [][3]string{{"TAGMSG", "#a", ""}}, "MULTILINE_INVALID"},
		{"wrong target", [][3]string{{"PRIVMSG", "#b", "x"}}, "MULTILINE_INVALID_TARGET"},
		{"concat blank", [][3]string{{"PRIVMSG", "#a", "hello "}, {"PRIVMSG", "#a", "+"}, {"PRIVMSG", "#a", "there"}}, "MULTILINE_INVALID"},
		{"blank only", [][3]string{{"PRIVMSG", "#a", ""}, {"PRIVMSG", "#a", " "}}, "MULTILINE_INVALID"},
		{"empty", nil, "MULTILINE_INVALID"},
		{"case-insensitive target", [][3]string{{"NOTICE", "#A", "x"}}, ""},
	} {
		b := &mlBatch{target: "#a"}
		var f *batchFail
		for _, l := range tc.lines {
			text, concat := l[2], false
			if strings.HasPrefix(text, "+") {
				text, concat = text[1:], true
			}
			if f = b.add(l[0], l[1], text, concat); f != nil {
				break
			}
		}
		if f == nil {
			_, f = b.body()
		}
		if code(f) != tc.code {
			t.Errorf("%s: got %+v, want %s", tc.name, f, tc.code)
		}
	}
}

func TestSplitLine(t *testing.T) {
	words := strings.Repeat("word ", 40) // 200 bytes
	parts := splitLine(words, 64)
	for i, p := range parts {
		if len(p) > 64 {
			t.Fatalf("part %d is %d bytes", i, len(p))
		}
		if i < len(parts)-1 && !strings.HasSuffix(p, " ") {
			t.Fatalf("part %d = %q: not cut after a space", i, p)
		}
	}
	if strings.Join(parts, "") != words {
		t.Fatal("pieces do not join back")
	}
	runes := strings.Repeat("é", 100) // no space: cut at character boundaries
	parts = splitLine(runes, 63)
	for i, p := range parts {
		if len(p) > 63 || !utf8.ValidString(p) {
			t.Fatalf("part %d = %q", i, p)
		}
	}
	if strings.Join(parts, "") != runes {
		t.Fatal("pieces do not join back")
	}
}

func testConn() *conn {
	s := New(Config{ServerName: "box.test", Now: time.Now}, nil, nil)
	return &conn{srv: s, caps: capSet{}}
}

func caps(names ...string) capSet {
	c := capSet{}
	for _, n := range names {
		c[n] = true
	}
	return c
}

// joinPieces rebuilds a message from a multiline batch's lines.
func joinPieces(lines []ircmsg.Message) string {
	var sb strings.Builder
	for i, l := range lines {
		if i > 0 && !l.HasTag(concatTag) {
			sb.WriteByte('\n')
		}
		sb.WriteString(l.Params[1])
	}
	return sb.String()
}

func TestMessageLinesShapes(t *testing.T) {
	c := testConn()
	m := &chat.Message{ID: "m1", Time: time.Now(), From: "bob", Room: "general", Kind: chat.KindNormal, Body: "hello\n\nworld"}
	src := "bob!bob@irc.box.test"
	full := caps("batch", "draft/multiline", "message-tags", "server-time", "account-tag")

	// With the cap: one batch, tags on BATCH +.
	lines := c.messageLines(m, src, "#general", full)
	if len(lines) != 5 {
		t.Fatalf("multiline: %d lines, want 5", len(lines))
	}
	open, end := lines[0], lines[4]
	if open.Command != "BATCH" || open.Params[1] != "draft/multiline" || open.Params[2] != "#general" || open.Source != src {
		t.Fatalf("opening = %+v", open)
	}
	id := open.Params[0][1:]
	if _, msgid := open.GetTag("msgid"); msgid != "m1" || !open.HasTag("time") || !open.HasTag("account") {
		t.Fatalf("opening tags = %v", open.AllTags())
	}
	if end.Command != "BATCH" || end.Params[0] != "-"+id {
		t.Fatalf("closing = %+v", end)
	}
	for _, l := range lines[1:4] {
		if _, b := l.GetTag("batch"); b != id || l.Command != "PRIVMSG" || l.Params[0] != "#general" || l.HasTag("msgid") {
			t.Fatalf("inner line = %+v %v", l, l.AllTags())
		}
	}
	if got := joinPieces(lines[1:4]); got != m.Body {
		t.Fatalf("batch joins to %q", got)
	}
	if b, _ := lines[2].LineBytes(); !strings.HasSuffix(string(b), "PRIVMSG #general :\r\n") {
		t.Fatalf("blank line = %q", b)
	}

	// Without multiline (or without batch): separate lines, msgid on the
	// first only, no blank line.
	for _, cs := range []capSet{caps("message-tags", "server-time"), caps("draft/multiline", "message-tags", "server-time")} {
		lines = c.messageLines(m, src, "#general", cs)
		if len(lines) != 3 {
			t.Fatalf("fallback: %d lines", len(lines))
		}
		for i, l := range lines {
			if l.Command != "PRIVMSG" || l.HasTag("batch") || l.HasTag("msgid") != (i == 0) || !l.HasTag("time") {
				t.Fatalf("fallback line %d = %+v %v", i, l, l.AllTags())
			}
		}
		if lines[1].Params[1] != " " {
			t.Fatalf("blank fallback line = %q", lines[1].Params[1])
		}
	}

	// One short line: no batch even with the cap.
	m1 := *m
	m1.Body = "hi"
	lines = c.messageLines(&m1, src, "#general", full)
	if len(lines) != 1 || lines[0].Command != "PRIVMSG" || !lines[0].HasTag("msgid") {
		t.Fatalf("single line = %+v", lines)
	}

	// A long line: pieces that fit, concat on the continuations.
	long := *m
	long.Body = strings.Repeat("lorem ipsum ", 100)
	lines = c.messageLines(&long, src, "#general", full)
	if len(lines) < 5 || lines[0].Command != "BATCH" {
		t.Fatalf("long line: %d lines", len(lines))
	}
	for i, l := range lines[1 : len(lines)-1] {
		if l.HasTag(concatTag) != (i > 0) {
			t.Fatalf("piece %d concat = %v", i, l.HasTag(concatTag))
		}
		if b, _ := l.LineBytesStrict(false, 0); len(b)-tagsLen(b) > maxLineBody {
			t.Fatalf("piece %d is %d bytes", i, len(b))
		}
	}
	if got := joinPieces(lines[1 : len(lines)-1]); got != long.Body {
		t.Fatal("long line does not join back")
	}
	lines = c.messageLines(&long, src, "#general", caps("message-tags"))
	for _, l := range lines {
		if l.Command != "PRIVMSG" || l.HasTag(concatTag) {
			t.Fatalf("long line fallback = %+v", l)
		}
	}

	// An action: framed once around the whole multiline message.
	act := *m
	act.Kind, act.Body = chat.KindAction, "waves\nand leaves"
	lines = c.messageLines(&act, src, "#general", full)
	if len(lines) != 4 || lines[1].Params[1] != "\x01ACTION waves" || lines[2].Params[1] != "and leaves\x01" {
		t.Fatalf("action batch = %+v", lines)
	}
	lines = c.messageLines(&act, src, "#general", caps())
	if len(lines) != 2 || lines[1].Params[1] != "\x01ACTION and leaves\x01" {
		t.Fatalf("action fallback = %+v", lines)
	}

	// NOTICE keeps its verb in the batch.
	n := *m
	n.Kind = chat.KindNotice
	lines = c.messageLines(&n, src, "#general", full)
	if lines[1].Command != "NOTICE" {
		t.Fatalf("notice batch = %+v", lines[1])
	}
}

// tagsLen is the length of a serialised line's tag section.
func tagsLen(b []byte) int {
	if len(b) == 0 || b[0] != '@' {
		return 0
	}
	return strings.IndexByte(string(b), ' ') + 1
}

// pipeConn is a connection whose client end the test writes to.
func pipeConn(t *testing.T) (*conn, net.Conn) {
	t.Helper()
	srv, cli := net.Pipe()
	s := New(Config{ServerName: "box.test"}, nil, nil)
	c := newConn(s, srv, "127.0.0.1")
	c.caps = caps("batch", "draft/multiline")
	t.Cleanup(func() { cli.Close(); srv.Close() })
	return c, cli
}

func writeLines(cli net.Conn, lines ...string) {
	go func() {
		for _, l := range lines {
			if _, err := cli.Write([]byte(l + "\r\n")); err != nil {
				return
			}
		}
	}()
}

// queued returns the lines queued for the client.
func queued(c *conn) []string {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	var out []string
	for it := range c.queue.All() {
		out = append(out, strings.TrimSpace(string(it.line)))
	}
	return out
}

func TestReadBatch(t *testing.T) {
	c, cli := pipeConn(t)
	writeLines(cli,
		"@batch=x PRIVMSG #a hello",
		"@batch=x PRIVMSG #a :",
		"BATCH +y draft/multiline #a", // refused: one batch at a time
		"@batch=y PRIVMSG #a :skipped",
		"BATCH -y",
		"@batch=x privmsg #A :how is ",
		"@batch=x;draft/multiline-concat PRIVMSG #a :everyone?",
		"BATCH -x",
	)
	b := &mlBatch{target: "#a"}
	if closed, _ := c.readBatch("x", b); !closed {
		t.Fatal("batch not closed")
	}
	body, f := b.body()
	if f != nil || body != "hello\n\nhow is everyone?" {
		t.Fatalf("body = %q, %+v", body, f)
	}
	q := queued(c)
	if len(q) != 1 || !strings.Contains(q[0], "FAIL BATCH MULTILINE_INVALID y") {
		t.Fatalf("replies = %q", q)
	}
}

func TestReadBatchTooLong(t *testing.T) {
	c, cli := pipeConn(t)
	var lines []string
	for i := 0; i <= multilineMaxLines; i++ {
		lines = append(lines, "@batch=x PRIVMSG #a :line")
	}
	writeLines(cli, append(lines, "BATCH -x")...)
	b := &mlBatch{target: "#a"}
	if closed, _ := c.readBatch("x", b); !closed {
		t.Fatal("batch not closed")
	}
	if _, f := b.body(); f == nil || f.code != "MULTILINE_MAX_LINES" {
		t.Fatalf("body: %+v", f)
	}
	if q := queued(c); len(q) != 0 {
		t.Fatalf("replies before the batch's end = %q", q) // handleBatch reports b.failed once
	}
}

func TestReadBatchConnectionLost(t *testing.T) {
	c, cli := pipeConn(t)
	writeLines(cli, "@batch=x PRIVMSG #a :hello")
	go func() {
		// Close once the line was taken: the pipe's Write returns then.
		cli.Write([]byte("@batch=x PRIVMSG #a :again\r\n"))
		cli.Close()
	}()
	if closed, timedOut := c.readBatch("x", &mlBatch{target: "#a"}); closed || timedOut {
		t.Fatalf("a batch cut by the connection's end: closed %v, timed out %v", closed, timedOut)
	}
	if !c.isDead() {
		t.Fatal("connection not marked dead")
	}
}
