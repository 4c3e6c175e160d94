package xmpp

// Fuzz targets for the XMPP door's parsers beyond the stream intake
// (FuzzStanzaIntake) and SCRAM (FuzzSCRAMServer):
//
//   - FuzzJID: addresses (parseJID, RFC 7622 through mellium.im/xmpp/jid):
//     a parsed address prints as a JID that parses to the same address.
//   - FuzzStoredXML: what the door keeps in the store and reads back
//     (parseStored for private XML and vCards, decodeExtra and
//     parseFragment for a message's other children): an element read
//     back serialises to XML that reads back the same (the door writes
//     what it read, so a round trip must be stable).
//
// Seeds are in testdata/fuzz/<target>/; found inputs are kept there.

import (
	"testing"
)

func FuzzJID(f *testing.F) {
	for _, s := range []string{"alice@box.test", "alice@box.test/phone", "box.test", "rooms.box.test/nick with space",
		"Ålice@BOX.test/Ω", "@box.test", "a@b@c", "a@[::1]/r", "a@1.2.3.4", "/r", "a@b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseJID(s)
		if err != nil {
			return
		}
		if a.Domain == "" {
			t.Fatalf("%q parsed with no domain: %+v", s, a)
		}
		b, err := parseJID(a.String())
		if err != nil {
			t.Fatalf("%q -> %q, which does not parse: %v", s, a.String(), err)
		}
		if b != a {
			t.Fatalf("%q -> %+v -> %q -> %+v", s, a, a.String(), b)
		}
	})
}

func FuzzStoredXML(f *testing.F) {
	for _, s := range []string{
		`<query xmlns='jabber:iq:private'><x xmlns='urn:test'>a &amp; b</x></query>`,
		`<vCard xmlns='vcard-temp'><FN>Alice</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>AAAA</BINVAL></PHOTO></vCard>`,
		`<active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/>`,
		`{"t":"chat","id":"x","x":"<thread>t1</thread>"}`,
		`<a xmlns:p='urn:p' p:attr='1' xml:lang='en'>text<b/>more</a>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if el, err := parseStored([]byte(s)); err == nil {
			out := el.String()
			again, err := parseStored([]byte(out))
			if err != nil {
				t.Fatalf("%q read back as %q, which does not parse: %v", s, out, err)
			}
			if again.String() != out {
				t.Fatalf("unstable round trip:\n%q\n%q", out, again.String())
			}
		}
		x := decodeExtra(s)
		for _, frag := range []string{s, x.X} {
			kids := parseFragment(frag)
			var out string
			for _, k := range kids {
				out += string(k.Bytes(nsClient))
			}
			if len(kids) == 0 {
				continue
			}
			var again string
			for _, k := range parseFragment(out) {
				again += string(k.Bytes(nsClient))
			}
			if again != out {
				t.Fatalf("fragment %q: unstable round trip:\n%q\n%q", frag, out, again)
			}
		}
	})
}
