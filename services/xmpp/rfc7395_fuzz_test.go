package xmpp

import (
	"bytes"
	"errors"
	"testing"

	"github.com/coder/websocket"
)

// FuzzWebSocketFrames drives the RFC 7395 intake (wsFramer.In) with a
// sequence of messages (split at 0x1e; one starting with 0x1f is a
// binary message), seeds in testdata/fuzz/FuzzWebSocketFrames. Checked:
// no panic; a refusal is a stream error; what is let through is the
// message itself, a stream header made of <open/>, or the stream's end
// tag; and every element the door's reader then reads goes back out
// (wsFramer.Out) as exactly one message that parses alone to the same
// element.
func FuzzWebSocketFrames(f *testing.F) {
	f.Add([]byte(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="box.test" version="1.0"/>` + "\x1e" +
		`<message xmlns="jabber:client" to="a@box.test"><body>hi</body></message>` + "\x1e" +
		`<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>`))
	const max = 4096
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &wsFramer{max: max}
		var stream []byte
		for _, part := range bytes.Split(data, []byte{0x1e}) {
			typ := websocket.MessageText
			if len(part) > 0 && part[0] == 0x1f {
				typ, part = websocket.MessageBinary, part[1:]
			}
			tooBig := len(part) > max
			if tooBig {
				part = part[:max]
			}
			b, err := in.In(typ, part, tooBig)
			if err != nil {
				var se *streamError
				if !errors.As(err, &se) {
					t.Fatalf("refusal %v (%T) is no stream error", err, err)
				}
				break
			}
			switch {
			case b == nil, bytes.Equal(b, part), bytes.HasPrefix(b, []byte("<stream:stream ")) && bytes.HasSuffix(b, []byte(">")),
				string(b) == "</stream:stream>":
			default:
				t.Fatalf("message %q let through as %q", part, b)
			}
			stream = append(stream, b...)
		}
		rd := newStreamReader(bytes.NewReader(stream), max, 48, nil)
		if _, err := rd.Header(); err != nil {
			return
		}
		out := &wsFramer{}
		for range 1000 {
			el, err := rd.Next()
			if err != nil {
				return
			}
			want := el.Bytes(nsClient)
			msgs := out.Out(want)
			if len(msgs) != 1 {
				t.Fatalf("%q went out as %d messages: %q", want, len(msgs), msgs)
			}
			back := newStreamReader(bytes.NewReader(append([]byte(streamHeader(nsClient, "", "", "", "")), msgs[0]...)), 1<<20, 64, nil)
			if _, err := back.Header(); err != nil {
				t.Fatal(err)
			}
			el2, err := back.Next()
			if err != nil {
				t.Fatalf("message %q does not parse: %v", msgs[0], err)
			}
			if got := el2.Bytes(nsClient); !bytes.Equal(got, want) {
				t.Fatalf("round trip: %q became %q (message %q)", want, got, msgs[0])
			}
		}
	})
}
