package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"chatbox/services/chat"
)

func invite(token, creator string, uses int, expires time.Time) chat.AccountInvite {
	return chat.AccountInvite{Token: token, Creator: creator, Contact: creator, Created: at(0), Expires: expires, Uses: uses}
}

// TestAccountInvites: an invitation is created, found while valid,
// listed, redeemed (each redemption creates the account and takes a
// use; the last use deletes it), refused once expired or for another
// name, revoked, and goes with its creator.
func TestAccountInvites(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	mustCreateAccount(t, s, "alice")

	two := invite("tok-two", "alice", 2, at(100))
	if err := s.CreateAccountInvite(ctx, two); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccountInvite(ctx, two); !errors.Is(err, chat.ErrExists) {
		t.Fatalf("same token again: %v, want ErrExists", err)
	}
	if err := s.CreateAccountInvite(ctx, invite("tok-ghost", "ghost", 1, at(100))); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("creator that is no account: %v, want ErrNotFound", err)
	}
	box := chat.AccountInvite{Token: "tok-box", Account: "reserved", Created: at(1), Expires: at(50), Uses: 1}
	if err := s.CreateAccountInvite(ctx, box); err != nil {
		t.Fatal(err)
	}

	got, err := s.AccountInvite(ctx, "tok-two", at(10))
	if err != nil || !reflect.DeepEqual(got, two) {
		t.Fatalf("AccountInvite = %+v, %v; want %+v", got, err, two)
	}
	list, err := s.AccountInvites(ctx, at(10))
	if err != nil || len(list) != 2 || list[0].Token != "tok-two" || !reflect.DeepEqual(list[1], box) {
		t.Fatalf("AccountInvites = %+v, %v", list, err)
	}

	// Expiry: not found, not listed, not redeemable.
	if _, err := s.AccountInvite(ctx, "tok-box", at(50)); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("expired invitation: %v, want ErrNotFound", err)
	}
	if list, _ := s.AccountInvites(ctx, at(60)); len(list) != 1 {
		t.Fatalf("expired invitation listed: %+v", list)
	}
	if _, err := s.RedeemAccountInvite(ctx, "tok-box", at(60), chat.Account{Name: "reserved", Created: at(60)}, creds(2)); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("redeem expired: %v, want ErrNotFound", err)
	}
	// A reserved name: another name is refused and takes no use.
	if _, err := s.RedeemAccountInvite(ctx, "tok-box", at(20), chat.Account{Name: "other", Created: at(20)}, creds(2)); !errors.Is(err, chat.ErrForbidden) {
		t.Fatalf("redeem for another name: %v, want ErrForbidden", err)
	}
	if _, _, err := s.Account(ctx, "other"); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("account made by a refused redemption: %v", err)
	}

	// Redemption: the account exists, a use is gone; a taken name costs
	// no use; the last use removes the invitation.
	inv, err := s.RedeemAccountInvite(ctx, "tok-two", at(20), chat.Account{Name: "bob", Created: at(20)}, creds(3))
	if err != nil || inv.Uses != 2 || inv.Contact != "alice" {
		t.Fatalf("redeem: %+v, %v", inv, err)
	}
	if a, c, err := s.Account(ctx, "bob"); err != nil || !a.Created.Equal(at(20)) || !reflect.DeepEqual(c, creds(3)) {
		t.Fatalf("redeemed account: %+v %v", a, err)
	}
	if got, _ := s.AccountInvite(ctx, "tok-two", at(20)); got.Uses != 1 {
		t.Fatalf("uses after one redemption: %d, want 1", got.Uses)
	}
	if _, err := s.RedeemAccountInvite(ctx, "tok-two", at(21), chat.Account{Name: "bob", Created: at(21)}, creds(3)); !errors.Is(err, chat.ErrExists) {
		t.Fatalf("redeem with a taken name: %v, want ErrExists", err)
	}
	if got, _ := s.AccountInvite(ctx, "tok-two", at(21)); got.Uses != 1 {
		t.Fatalf("a refused redemption took a use: %d left", got.Uses)
	}
	if _, err := s.RedeemAccountInvite(ctx, "tok-two", at(22), chat.Account{Name: "carol", Created: at(22)}, creds(4)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RedeemAccountInvite(ctx, "tok-two", at(23), chat.Account{Name: "dave", Created: at(23)}, creds(4)); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("redeem a used-up invitation: %v, want ErrNotFound", err)
	}
	if n := count(t, s, `SELECT count(*) FROM account_invites WHERE token = 'tok-two'`); n != 0 {
		t.Fatalf("used-up invitation still stored")
	}

	// Revocation.
	if err := s.CreateAccountInvite(ctx, invite("tok-rev", "alice", 1, at(100))); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAccountInvite(ctx, "tok-rev"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAccountInvite(ctx, "tok-rev"); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("revoke twice: %v, want ErrNotFound", err)
	}
	if _, err := s.AccountInvite(ctx, "tok-rev", at(30)); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("revoked invitation: %v", err)
	}

	// Creating an invitation forgets the expired ones; deleting the
	// creator deletes its invitations.
	if err := s.CreateAccountInvite(ctx, chat.AccountInvite{Token: "tok-late", Creator: "alice", Created: at(60), Expires: at(200), Uses: 1}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM account_invites WHERE token = 'tok-box'`); n != 0 {
		t.Fatalf("expired invitation kept after a new one was made")
	}
	if err := s.DeleteAccount(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM account_invites`); n != 0 {
		t.Fatalf("%d invitations left after their creator was deleted", n)
	}
}

// TestAccountInviteConcurrentRedeem: many clients redeem the last use of
// one invitation at once, from two Stores on the same file; exactly one
// account is created.
func TestAccountInviteConcurrentRedeem(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	other := openTest(t, s.Path())
	if err := s.CreateAccountInvite(ctx, chat.AccountInvite{Token: "once", Created: at(0), Expires: at(100), Uses: 1}); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := s
			if i%2 == 1 {
				st = other
			}
			_, errs[i] = st.RedeemAccountInvite(ctx, "once", at(1), chat.Account{Name: fmt.Sprintf("user%d", i), Created: at(1)}, creds(1))
		}()
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, chat.ErrNotFound):
			t.Errorf("redemption %d: %v, want success or ErrNotFound", i, err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d redemptions succeeded, want 1", ok)
	}
	if got := count(t, s, `SELECT count(*) FROM accounts`); got != 1 {
		t.Fatalf("%d accounts created, want 1", got)
	}
}
