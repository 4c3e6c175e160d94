package irc

import (
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/coder/websocket"

	"chatbox/internal/wsconn"
)

// FuzzWebSocketLines drives the IRCv3 WebSocket intake (wsLines.In) on
// both subprotocols with one message (seeds in
// testdata/fuzz/FuzzWebSocketLines), and the output side (Out) with the
// same bytes as the door's output. Checked: no panic; a refusal is a
// ProtocolError with a close status; what is let through is one line
// ending in CRLF with no other CR or LF; a text message is valid UTF-8;
// Out gives one message per complete line, none holding CR or LF, UTF-8
// on the text subprotocol, and keeps an incomplete tail for later.
func FuzzWebSocketLines(f *testing.F) {
	f.Add([]byte("PRIVMSG #general :hello\r\n"), true, false)
	f.Fuzz(func(t *testing.T, msg []byte, text, binaryMsg bool) {
		typ := websocket.MessageBinary
		if text {
			typ = websocket.MessageText
		}
		mtyp := websocket.MessageText
		if binaryMsg {
			mtyp = websocket.MessageBinary
		}
		f := &wsLines{typ: typ}
		max := maxReadLine - 2
		tooBig := len(msg) > max
		part := msg
		if tooBig {
			part = part[:max]
		}
		b, err := f.In(mtyp, part, tooBig)
		if err != nil {
			var pe *wsconn.ProtocolError
			if !errors.As(err, &pe) || pe.Status == 0 || pe.Reason == "" {
				t.Fatalf("refusal %v (%T) without a status", err, err)
			}
		} else if b != nil {
			if !bytes.HasSuffix(b, []byte("\r\n")) || bytes.ContainsAny(b[:len(b)-2], "\r\n") {
				t.Fatalf("%q let through as %q", msg, b)
			}
			if text && !utf8.Valid(b) {
				t.Fatalf("invalid UTF-8 let through on text: %q", b)
			}
		}
		out := &wsLines{typ: typ}
		msgs := out.Out(msg)
		if n := bytes.Count(msg, []byte("\n")); len(msgs) != n {
			t.Fatalf("%d lines went out as %d messages", n, len(msgs))
		}
		for _, m := range msgs {
			if bytes.ContainsAny(m, "\n") || bytes.HasSuffix(m, []byte("\r")) {
				t.Fatalf("message %q keeps its line end", m)
			}
			if text && !utf8.Valid(m) {
				t.Fatalf("invalid UTF-8 sent on text: %q", m)
			}
		}
		if tail := msg[bytes.LastIndexByte(msg, '\n')+1:]; !bytes.Equal(out.buf, tail) {
			t.Fatalf("kept %q, want %q", out.buf, tail)
		}
	})
}
