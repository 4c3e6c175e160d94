package xmpp

import (
	"bytes"
	"strings"
	"testing"
)

// BenchmarkStanzaIntake measures the XML stream intake: one typical chat
// message (body, chat state, receipt request, origin id) read from the
// stream into an Element, per iteration.
func BenchmarkStanzaIntake(b *testing.B) {
	stanza := `<message to="bob@box.test" type="chat" id="5f3a9c"><body>Are we still on for lunch at noon? I can bring the cake.</body>` +
		`<active xmlns="http://jabber.org/protocol/chatstates"/><request xmlns="urn:xmpp:receipts"/>` +
		`<origin-id xmlns="urn:xmpp:sid:0" id="5f3a9c"/></message>`
	const batch = 1000
	in := `<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams">` + strings.Repeat(stanza, batch)
	b.SetBytes(int64(len(stanza)))
	b.ReportAllocs()
	var r *streamReader
	for i := 0; i < b.N; i++ {
		if i%batch == 0 {
			b.StopTimer()
			r = newStreamReader(strings.NewReader(in), 1<<16, 48, nil)
			if _, err := r.Header(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		el, err := r.Next()
		if err != nil || el.Local != "message" {
			b.Fatalf("%v %v", el, err)
		}
	}
}

// BenchmarkStanzaWrite measures serializing that message for a
// recipient, as the writer does for every delivery.
func BenchmarkStanzaWrite(b *testing.B) {
	el := El(nsClient, "message", "from", "alice@box.test/phone", "to", "bob@box.test/laptop", "type", "chat", "id", "5f3a9c").Add(
		El(nsClient, "body").Add("Are we still on for lunch at noon? I can bring the cake & the <plates>."),
		El(nsChatStates, "active"),
		El("urn:xmpp:sid:0", "stanza-id", "id", "mh24hvnxa7supktk7qguyf7nq4", "by", "bob@box.test"))
	b.ReportAllocs()
	var n int
	for i := 0; i < b.N; i++ {
		n += len(el.Bytes(nsClient))
	}
	if n == 0 || !bytes.Contains(el.Bytes(nsClient), []byte("&lt;plates&gt;")) {
		b.Fatal("not serialized")
	}
}
