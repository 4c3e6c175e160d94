package xmpp

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
)

// TestVCard: XEP-0054 get and set of one's own vCard, get of another
// account's, refusals; XEP-0153: the photo's hash in the account's
// presence.
func TestVCard(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	alice1 := b.login(t, "alice", "")
	alice2 := b.login(t, "alice", "")
	bob := b.login(t, "bob", "")

	// No vCard yet: one's own is empty, another's item-not-found.
	r := alice1.iq(`<iq type="get" id="{id}"><vCard xmlns="vcard-temp"/></iq>`)
	if v := r.Child(nsVCard, "vCard"); v == nil || len(v.Nodes) != 0 {
		t.Fatalf("empty own vCard: %s", r)
	}
	bob.iqErr(`<iq type="get" id="{id}" to="alice@box.test"><vCard xmlns="vcard-temp"/></iq>`, "item-not-found")

	photo := bytes.Repeat([]byte("\x89PNG\r\n\x1a\nnot really a png"), 40)
	b64 := base64.StdEncoding.EncodeToString(photo)
	wrapped := b64[:60] + "\n" + b64[60:] // clients wrap BINVAL lines
	sum := sha1.Sum(photo)
	hash := hex.EncodeToString(sum[:])
	alice1.iq(`<iq type="set" id="{id}"><vCard xmlns="vcard-temp"><FN>Alice Liddell</FN><NICKNAME>alice</NICKNAME>` +
		`<PHOTO><TYPE>image/png</TYPE><BINVAL>` + wrapped + `</BINVAL></PHOTO></vCard></iq>`)

	check := func(r *Element) {
		t.Helper()
		v := r.Child(nsVCard, "vCard")
		if v.ChildText(nsVCard, "FN") != "Alice Liddell" || v.ChildText(nsVCard, "NICKNAME") != "alice" {
			t.Fatalf("vCard %s", r)
		}
		p := v.Child(nsVCard, "PHOTO")
		got, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(p.ChildText(nsVCard, "BINVAL"), "\n", ""))
		if err != nil || !bytes.Equal(got, photo) || p.ChildText(nsVCard, "TYPE") != "image/png" {
			t.Fatalf("photo in %s: %v", r, err)
		}
	}
	check(alice2.iq(`<iq type="get" id="{id}"><vCard xmlns="vcard-temp"/></iq>`))
	check(alice2.iq(`<iq type="get" id="{id}" to="alice@box.test"><vCard xmlns="vcard-temp"/></iq>`))
	r = bob.iq(`<iq type="get" id="{id}" to="alice@box.test"><vCard xmlns="vcard-temp"/></iq>`)
	if r.Get("from") != "alice@box.test" {
		t.Fatalf("answered from %q", r.Get("from"))
	}
	check(r)

	bob.iqErr(`<iq type="set" id="{id}" to="alice@box.test"><vCard xmlns="vcard-temp"><FN>Mallory</FN></vCard></iq>`, "forbidden")
	bob.iqErr(`<iq type="get" id="{id}" to="nobody@box.test"><vCard xmlns="vcard-temp"/></iq>`, "service-unavailable")
	bob.iqErr(`<iq type="set" id="{id}"><vCard xmlns="vcard-temp"><PHOTO><TYPE>image/png</TYPE><BINVAL>!!not base64!!</BINVAL></PHOTO></vCard></iq>`, "bad-request")
	check(bob.iq(`<iq type="get" id="{id}" to="alice@box.test"><vCard xmlns="vcard-temp"/></iq>`))

	// XEP-0153: alice's presence carries the photo hash, to her own
	// resources and in directed presence.
	photoIn := func(p *Element) []string {
		var out []string
		for _, x := range p.Kids() {
			if x.Is(nsVCardUpdate, "x") {
				out = append(out, x.ChildText(nsVCardUpdate, "photo"))
			}
		}
		return out
	}
	fromAlice2 := func(status string) func(*Element) bool {
		return func(e *Element) bool {
			return e.Local == "presence" && e.Get("from") == alice2.jid && e.ChildText(nsClient, "status") == status
		}
	}
	// Presence goes to available resources only: alice1 and bob say
	// they are.
	for _, c := range []*client{alice1, bob} {
		c.send(`<presence/>`)
		c.expect("its own presence", func(e *Element) bool { return e.Local == "presence" && e.Get("from") == c.jid })
	}
	alice2.send(`<presence><status>one</status></presence>`)
	if p := alice1.expect("alice2's presence", fromAlice2("one")); !slices.Equal(photoIn(p), []string{hash}) {
		t.Fatalf("presence %s: want photo %s", p, hash)
	}
	alice2.send(`<presence to="bob@box.test"><status>two</status></presence>`)
	if p := bob.expect("alice2's directed presence", fromAlice2("two")); !slices.Equal(photoIn(p), []string{hash}) {
		t.Fatalf("directed presence %s: want photo %s", p, hash)
	}
	// A client's own update element is left as it is.
	alice2.send(`<presence><status>three</status><x xmlns="vcard-temp:x:update"><photo>0123</photo></x></presence>`)
	if p := alice1.expect("alice2's presence", fromAlice2("three")); !slices.Equal(photoIn(p), []string{"0123"}) {
		t.Fatalf("presence %s: the client's photo element was changed", p)
	}
	// Without a photo, nothing is added.
	alice1.iq(`<iq type="set" id="{id}"><vCard xmlns="vcard-temp"><FN>Alice Liddell</FN></vCard></iq>`)
	alice2.send(`<presence><status>four</status></presence>`)
	if p := alice1.expect("alice2's presence", fromAlice2("four")); len(photoIn(p)) != 0 {
		t.Fatalf("presence %s: an update element without a photo", p)
	}
}
