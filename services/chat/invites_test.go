package chat_test

import (
	"errors"
	"testing"
	"time"

	"chatbox/services/chat"
)

// TestAccountInvites: the core's side of invitations: defaults and
// bounds, redemption with the account rules (names, passwords, a
// reserved name), expiry on the core's clock, revocation.
func TestAccountInvites(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice")

	inv, err := f.core.CreateAccountInvite(f.ctx, chat.InviteRequest{Creator: "Alice", Contact: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Token) != 26 || inv.Uses != 1 || inv.Creator != "alice" || inv.Expires.Sub(inv.Created) != chat.DefaultInviteTTL {
		t.Fatalf("invitation with defaults: %+v", inv)
	}
	for _, r := range []chat.InviteRequest{
		{TTL: time.Second}, {TTL: 400 * 24 * time.Hour}, {Uses: -1}, {Uses: chat.MaxInviteUses + 1},
	} {
		if _, err := f.core.CreateAccountInvite(f.ctx, r); err == nil {
			t.Errorf("invitation %+v accepted", r)
		}
	}
	if _, err := f.core.CreateAccountInvite(f.ctx, chat.InviteRequest{Creator: "nobody"}); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("invitation by no account: %v, want ErrNotFound", err)
	}
	if _, err := f.core.CreateAccountInvite(f.ctx, chat.InviteRequest{Account: "alice"}); !errors.Is(err, chat.ErrExists) {
		t.Errorf("invitation reserving a taken name: %v, want ErrExists", err)
	}
	if _, err := f.core.CreateAccountInvite(f.ctx, chat.InviteRequest{Account: "9lives"}); !errors.Is(err, chat.ErrBadName) {
		t.Errorf("invitation reserving a bad name: %v, want ErrBadName", err)
	}

	if _, _, err := f.core.RedeemAccountInvite(f.ctx, inv.Token, "9lives", "long-enough"); !errors.Is(err, chat.ErrBadName) {
		t.Errorf("redeem with a bad name: %v", err)
	}
	if _, _, err := f.core.RedeemAccountInvite(f.ctx, inv.Token, "bob", "short"); !errors.Is(err, chat.ErrWeakPassword) {
		t.Errorf("redeem with a weak password: %v", err)
	}
	if _, _, err := f.core.RedeemAccountInvite(f.ctx, "garbage", "bob", "long-enough"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("redeem garbage: %v", err)
	}
	a, used, err := f.core.RedeemAccountInvite(f.ctx, inv.Token, "Bob", "long-enough")
	if err != nil || a.Name != "bob" || used.Contact != "alice" {
		t.Fatalf("redeem: %+v %+v %v", a, used, err)
	}
	if _, err := f.core.Authenticate(f.ctx, "bob", "long-enough", "127.0.0.1", "test"); err != nil {
		t.Fatalf("the new account does not log in: %v", err)
	}
	if _, err := f.core.AccountInvite(f.ctx, inv.Token); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("used invitation still valid: %v", err)
	}

	// A reserved name, and expiry on the core's clock.
	res, err := f.core.CreateAccountInvite(f.ctx, chat.InviteRequest{Account: "carol", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.core.RedeemAccountInvite(f.ctx, res.Token, "dave", "long-enough"); !errors.Is(err, chat.ErrForbidden) {
		t.Errorf("redeem a reserved invitation under another name: %v", err)
	}
	if list, err := f.core.AccountInvites(f.ctx); err != nil || len(list) != 1 || list[0].Account != "carol" {
		t.Fatalf("AccountInvites = %+v, %v", list, err)
	}
	f.now = f.now.Add(2 * time.Hour)
	if _, _, err := f.core.RedeemAccountInvite(f.ctx, res.Token, "carol", "long-enough"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("redeem an expired invitation: %v", err)
	}

	rev, _ := f.core.CreateAccountInvite(f.ctx, chat.InviteRequest{Uses: 3})
	if err := f.core.RevokeAccountInvite(f.ctx, rev.Token); err != nil {
		t.Fatal(err)
	}
	if err := f.core.RevokeAccountInvite(f.ctx, rev.Token); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("revoke twice: %v", err)
	}
}
