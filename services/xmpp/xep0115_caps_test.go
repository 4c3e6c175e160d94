package xmpp

import (
	"testing"
	"time"
)

// TestCapsVerString checks the verification string against XEP-0115
// §5.2 (simple generation example).
func TestCapsVerString(t *testing.T) {
	ids := []discoIdentity{{Category: "client", Type: "pc", Name: "Exodus 0.9.1"}}
	feats := []string{"http://jabber.org/protocol/muc", "http://jabber.org/protocol/disco#info",
		"http://jabber.org/protocol/disco#items", "http://jabber.org/protocol/caps"}
	if got, want := capsVerString(ids, feats, nil), "QgayPKawpkPSDYmwT/WM94uAlu0="; got != want {
		t.Fatalf("ver %s, want %s", got, want)
	}
	// Order of input does not matter; duplicates are one feature.
	feats = append([]string{"http://jabber.org/protocol/caps"}, feats...)
	if got := capsVerString(ids, feats, nil); got != "QgayPKawpkPSDYmwT/WM94uAlu0=" {
		t.Fatalf("ver with a duplicate feature %s", got)
	}
}

// TestCapsVerStringComplex is XEP-0115 §5.3 (complex generation
// example): two identities told apart by xml:lang and an extended
// information form, its fields and values given out of order here.
func TestCapsVerStringComplex(t *testing.T) {
	ids := []discoIdentity{
		{Category: "client", Type: "pc", Lang: "en", Name: "Psi 0.11"},
		{Category: "client", Type: "pc", Lang: "el", Name: "Ψ 0.11"},
	}
	feats := []string{"http://jabber.org/protocol/caps", "http://jabber.org/protocol/disco#info",
		"http://jabber.org/protocol/disco#items", "http://jabber.org/protocol/muc"}
	form := xdataForm("result", "urn:xmpp:dataforms:softwareinfo", "",
		xdataField("software_version", "", "", "0.11"),
		xdataField("os", "", "", "Mac"),
		xdataField("ip_version", "text-multi", "", "ipv6", "ipv4"),
		xdataField("os_version", "", "", "10.5.1"),
		xdataField("software", "", "", "Psi"))
	const want = "q07IKJEyjvHSyhy//CH0CxmKi8w="
	if got := capsVerString(ids, feats, []*Element{form}); got != want {
		t.Fatalf("ver %s, want %s", got, want)
	}
	// A form without FORM_TYPE is ignored (§5.4); a form changes the ver.
	noType := xdataForm("result", "", "", xdataField("os", "", "", "Mac"))
	if got := capsVerString(ids, feats, []*Element{noType, form}); got != want {
		t.Fatalf("ver with an untyped form %s, want %s", got, want)
	}
	if got := capsVerString(ids, feats, nil); got == want {
		t.Fatal("the form does not count")
	}
	// Forms are sorted by FORM_TYPE whatever their order.
	other := xdataForm("result", "urn:example:a", "", xdataField("x", "", "", "1"))
	if capsVerString(ids, feats, []*Element{form, other}) != capsVerString(ids, feats, []*Element{other, form}) {
		t.Fatal("form order changes the ver")
	}
}

func TestEntityTime(t *testing.T) {
	at := time.Date(2006, 12, 19, 11, 58, 35, 123e6, time.FixedZone("CST", -6*3600))
	tzo, utc := entityTime(at)
	if tzo != "-06:00" || utc != "2006-12-19T17:58:35.123Z" {
		t.Fatalf("tzo %q utc %q", tzo, utc)
	}
	if tzo, _ := entityTime(at.UTC()); tzo != "+00:00" {
		t.Fatalf("UTC tzo %q", tzo)
	}
}
