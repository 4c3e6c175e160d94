package xmpp

import (
	"testing"
	"time"
)

// TestCapsVerString checks the verification string against XEP-0115
// §5.2 (simple generation example) and §5.3's identity ordering.
func TestCapsVerString(t *testing.T) {
	ids := []discoIdentity{{Category: "client", Type: "pc", Name: "Exodus 0.9.1"}}
	feats := []string{"http://jabber.org/protocol/muc", "http://jabber.org/protocol/disco#info",
		"http://jabber.org/protocol/disco#items", "http://jabber.org/protocol/caps"}
	if got, want := capsVerString(ids, feats), "QgayPKawpkPSDYmwT/WM94uAlu0="; got != want {
		t.Fatalf("ver %s, want %s", got, want)
	}
	// Order of input does not matter; duplicates are one feature.
	feats = append([]string{"http://jabber.org/protocol/caps"}, feats...)
	if got := capsVerString(ids, feats); got != "QgayPKawpkPSDYmwT/WM94uAlu0=" {
		t.Fatalf("ver with a duplicate feature %s", got)
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
