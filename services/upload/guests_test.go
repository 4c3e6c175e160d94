package upload

import (
	"net/http"
	"os"
	"testing"
)

// TestDeleteFilesFromPrefix: the guests' files go (404, gone from disk),
// an account's stay, an unused guest slot no longer takes a PUT.
func TestDeleteFilesFromPrefix(t *testing.T) {
	s, _, srv, _ := newTestService(t, nil)
	body := []byte("\x89PNG a picture")
	var guest, alice Slot
	for _, acct := range []string{"~zoe", "alice"} {
		sl := mustSlot(t, s, acct, "pic.png", int64(len(body)), "image/png")
		if code, msg := put(t, srv, sl, body, "image/png"); code != http.StatusCreated {
			t.Fatalf("PUT for %s: %d %s", acct, code, msg)
		}
		if acct == "alice" {
			alice = sl
		} else {
			guest = sl
		}
	}
	pending := mustSlot(t, s, "~zoe", "later.png", int64(len(body)), "image/png")
	if n := s.DeleteFilesFromPrefix(""); n != 0 {
		t.Fatalf("an empty prefix deleted %d files", n)
	}
	if n := s.DeleteFilesFromPrefix("~"); n != 1 {
		t.Fatalf("deleted %d files, want 1", n)
	}
	if resp, _ := get(t, srv, "GET", guest.GetURL); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the guest's file: %d, want 404", resp.StatusCode)
	}
	if resp, got := get(t, srv, "GET", alice.GetURL); resp.StatusCode != 200 || string(got) != string(body) {
		t.Fatalf("alice's file: %d %q", resp.StatusCode, got)
	}
	if code, _ := put(t, srv, pending, body, "image/png"); code/100 == 2 {
		t.Fatalf("a guest's slot took a PUT after the event: %d", code)
	}
	ents, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 { // alice's file and its sidecar
		t.Fatalf("%d entries left in the upload directory, want 2", len(ents))
	}
}
