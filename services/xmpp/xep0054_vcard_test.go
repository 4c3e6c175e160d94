package xmpp

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"chatbox/services/chat"
)

func TestPhotoOf(t *testing.T) {
	card, err := parseStored([]byte(`<vCard xmlns="vcard-temp"><FN>A</FN><PHOTO><TYPE> image/png </TYPE><BINVAL>aGVs
bG8=</BINVAL></PHOTO></vCard>`))
	if err != nil {
		t.Fatal(err)
	}
	mime, data, err := photoOf(card)
	if err != nil || mime != "image/png" || !bytes.Equal(data, []byte("hello")) {
		t.Fatalf("photo %q %q %v", mime, data, err)
	}
	if h := photoHash(data); h != "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d" {
		t.Fatalf("hash %s", h)
	}
	if _, data, err := photoOf(El(nsVCard, "vCard")); data != nil || err != nil {
		t.Fatalf("no photo: %q %v", data, err)
	}
	bad := El(nsVCard, "vCard").Add(El(nsVCard, "PHOTO").Add(El(nsVCard, "BINVAL").Add("%%%")))
	if _, _, err := photoOf(bad); err != errBadPhoto {
		t.Fatalf("bad base64: %v", err)
	}
	// What is stored comes back the same.
	again, err := parseStored([]byte(card.String()))
	if err != nil || again.String() != card.String() {
		t.Fatalf("round trip %s -> %v %v", card, again, err)
	}
}

func TestPrivateReserved(t *testing.T) {
	for ns, want := range map[string]bool{
		"jabber:iq:roster": true, "http://jabber.org/protocol/muc": true, "vcard-temp": true,
		"storage:bookmarks": false, "exodus:prefs": false, "urn:xmpp:bookmarks:1": false,
	} {
		if privateReserved(ns) != want {
			t.Errorf("%s reserved: %v", ns, !want)
		}
	}
}

// TestVCardPhotoAPI: the avatar and private storage functions other
// features use (XEP-0398 conversion, bookmarks compatibility).
func TestVCardPhotoAPI(t *testing.T) {
	srv, _ := startInproc(t, Config{}, "alice")
	ctx := context.Background()
	if _, _, err := srv.vcardPhoto(ctx, "alice"); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("photo before any vCard: %v", err)
	}
	img := []byte("\x89PNG fake image")
	if err := srv.setVCardPhoto(ctx, "alice", "image/png", img); err != nil {
		t.Fatal(err)
	}
	mime, data, err := srv.vcardPhoto(ctx, "alice")
	if err != nil || mime != "image/png" || !bytes.Equal(data, img) {
		t.Fatalf("photo %q %q %v", mime, data, err)
	}
	if h, ok := srv.features.avatars.get("alice"); !ok || h != photoHash(img) {
		t.Fatalf("cached hash %q %v", h, ok)
	}
	// The rest of the vCard stays when the photo changes.
	card, _ := srv.vcard(ctx, "alice")
	card.Add(El(nsVCard, "FN").Add("Alice"))
	srv.features.avatars.writeMu.Lock()
	err = srv.storeVCard(ctx, "alice", card)
	srv.features.avatars.writeMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.setVCardPhoto(ctx, "alice", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.vcardPhoto(ctx, "alice"); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("photo after removal: %v", err)
	}
	if card, _ := srv.vcard(ctx, "alice"); card.ChildText(nsVCard, "FN") != "Alice" {
		t.Fatalf("vCard after photo removal: %s", card)
	}
	if h, _ := srv.features.avatars.get("alice"); h != "" {
		t.Fatalf("cached hash after removal %q", h)
	}

	if _, err := srv.privateGet(ctx, "alice", "storage:bookmarks"); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("private before set: %v", err)
	}
	bm := El("storage:bookmarks", "storage").Add(El("storage:bookmarks", "conference", "jid", "room@rooms.box.test"))
	if err := srv.privateSet(ctx, "alice", bm); err != nil {
		t.Fatal(err)
	}
	got, err := srv.privateGet(ctx, "alice", "storage:bookmarks")
	if err != nil || got.String() != bm.String() {
		t.Fatalf("private %v %v", got, err)
	}
	if err := srv.privateSet(ctx, "alice", El("jabber:iq:roster", "query")); err == nil {
		t.Fatal("a reserved namespace was stored")
	}
}
