package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"chatbox/services/chat"
)

// TestDeleteMessagesFrom: exactly one sender's messages go (rooms and
// offline copies), they are returned without their text, and a new
// message never reuses a deleted seq.
func TestDeleteMessagesFrom(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "t.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateRoom(ctx, chat.Room{Name: "general"}); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	var ids []string
	for _, from := range []string{"~bob", "alice", "~bob", "~bobby", "~bob"} {
		m := benchMessage(r)
		m.From = from
		if err := s.AppendMessage(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
		if from == "~bob" {
			ids = append(ids, m.ID)
		}
	}
	if _, err := s.DeleteMessagesFrom(ctx, ""); err == nil {
		t.Fatal("an empty sender was accepted")
	}
	gone, err := s.DeleteMessagesFrom(ctx, "~bob")
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 3 {
		t.Fatalf("deleted %d messages, want 3", len(gone))
	}
	for i, m := range gone {
		if m.ID != ids[i] || m.Room != "general" || m.From != "~bob" || m.Body != "" {
			t.Fatalf("deleted[%d] = %+v, want id %s in general from ~bob without body", i, m, ids[i])
		}
		if _, err := s.MessageByID(ctx, m.ID); !errors.Is(err, chat.ErrNotFound) {
			t.Fatalf("message %s still found: %v", m.ID, err)
		}
	}
	h, err := s.History(ctx, chat.HistoryQuery{Room: "general"})
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[0].From != "alice" || h[1].From != "~bobby" {
		t.Fatalf("history left: %+v, want alice's and ~bobby's", h)
	}
	m := benchMessage(r)
	if err := s.AppendMessage(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	if m.Seq <= gone[2].Seq {
		t.Fatalf("new seq %d reuses a deleted one (last deleted %d)", m.Seq, gone[2].Seq)
	}
	if again, err := s.DeleteMessagesFrom(ctx, "~bob"); err != nil || len(again) != 0 {
		t.Fatalf("second wipe: %d, %v; want 0, nil", len(again), err)
	}
}

// TestBoxState: a value survives reopening the store; a missing key is
// ErrNotFound.
func TestBoxState(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	s, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.BoxState(ctx, "event.guests_closed"); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("missing key: %v, want ErrNotFound", err)
	}
	for _, v := range []string{"false", "true"} {
		if err := s.SetBoxState(ctx, "event.guests_closed", v); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s, err = Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.BoxState(ctx, "event.guests_closed"); err != nil || v != "true" {
		t.Fatalf("after reopening: %q, %v; want true", v, err)
	}
}

// TestDeleteAffiliationsFromPrefix: guests' affiliations and bans of
// pseudo-accounts go, accounts' and other masks stay.
func TestDeleteAffiliationsFromPrefix(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "t.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateRoom(ctx, chat.Room{Name: "general"}); err != nil {
		t.Fatal(err)
	}
	for acct, aff := range map[string]chat.Affiliation{"~bob": chat.AffOutcast, "~eve": chat.AffMember, "alice": chat.AffOwner, "carol": chat.AffOutcast} {
		if err := s.SetAffiliation(ctx, "general", acct, aff); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []string{"~bob", "eve!*@*"} {
		if err := s.AddMask(ctx, "general", chat.MaskEntry{List: chat.ListBan, Mask: m, SetAt: at(0)}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteAffiliationsFromPrefix(ctx, "~")
	if err != nil || n != 3 {
		t.Fatalf("deleted %d, %v; want 3", n, err)
	}
	room, err := s.Room(ctx, "general")
	if err != nil {
		t.Fatal(err)
	}
	if len(room.Affiliations) != 2 || room.Affiliations["alice"] != chat.AffOwner || room.Affiliations["carol"] != chat.AffOutcast {
		t.Fatalf("affiliations left: %v", room.Affiliations)
	}
	if len(room.Masks) != 1 || room.Masks[0].Mask != "eve!*@*" {
		t.Fatalf("masks left: %+v", room.Masks)
	}
}
