package chat

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Account invitations (XEP-0401 Easy User Onboarding on XMPP; the
// command line's `chatbox invite`): a random token that lets whoever
// holds it create one account (or a few: Uses) while it lasts, even when
// the box's registration is closed. An invitation may name the account
// the new one and its creator become contacts with, and may reserve the
// new account's name.

// DefaultInviteTTL is how long an invitation lasts unless told otherwise.
const DefaultInviteTTL = 7 * 24 * time.Hour

// Bounds of an invitation.
const (
	MaxInviteTTL  = 366 * 24 * time.Hour
	MaxInviteUses = 1000
	// maxTokenBytes bounds a token looked up: anything longer is no token.
	maxTokenBytes = 64
)

// AccountInvite is an invitation to create an account on the box.
type AccountInvite struct {
	// Token is the secret that redeems it: 128 random bits, 26 characters
	// of a-z and 2-7 (safe in URLs and XMPP URIs as is).
	Token string
	// Creator is the account that made it, "" for the box (the command
	// line). Invitations go with their creator's account.
	Creator string
	// Contact is the account the new one becomes a mutual contact of
	// (the inviter, XEP-0401), "" for none.
	Contact string
	// Account, if set, is the only name the new account may take.
	Account string
	Created time.Time
	Expires time.Time
	// Uses is how many accounts it may still create.
	Uses int
}

// InviteRequest says what invitation to make.
type InviteRequest struct {
	Creator string        // account making it; "" for the box
	Contact string        // mutual contact of the new account; "" for none
	Account string        // reserved name of the new account; "" for any
	TTL     time.Duration // 0: DefaultInviteTTL
	Uses    int           // 0: one account
}

// InviteStore keeps account invitations.
type InviteStore interface {
	// CreateAccountInvite stores a new invitation: ErrExists if the token
	// is taken, ErrNotFound if its Creator or Contact is not an account.
	// Expired invitations may be forgotten meanwhile.
	CreateAccountInvite(ctx context.Context, inv AccountInvite) error
	// AccountInvite returns the invitation if it is valid at now (not
	// expired, uses left), or ErrNotFound.
	AccountInvite(ctx context.Context, token string, now time.Time) (AccountInvite, error)
	// AccountInvites lists the invitations valid at now, oldest first.
	AccountInvites(ctx context.Context, now time.Time) ([]AccountInvite, error)
	// RedeemAccountInvite atomically takes one use of an invitation valid
	// at now and creates the account with it: ErrNotFound if the
	// invitation is not valid, ErrForbidden if it reserves another name,
	// ErrExists if the name is taken (the use is then not taken). It
	// returns the invitation as it was before.
	RedeemAccountInvite(ctx context.Context, token string, now time.Time, a Account, c Credentials) (AccountInvite, error)
	// DeleteAccountInvite forgets an invitation, or ErrNotFound.
	DeleteAccountInvite(ctx context.Context, token string) error
}

// CreateAccountInvite makes an invitation to create an account. The
// creator (if any) and the contact must be accounts; a reserved name must
// be valid and free.
func (c *Core) CreateAccountInvite(ctx context.Context, r InviteRequest) (AccountInvite, error) {
	switch {
	case r.TTL == 0:
		r.TTL = DefaultInviteTTL
	case r.TTL < time.Minute || r.TTL > MaxInviteTTL:
		return AccountInvite{}, fmt.Errorf("an invitation lasts from a minute to %d days, not %s", MaxInviteTTL/(24*time.Hour), r.TTL)
	}
	switch {
	case r.Uses == 0:
		r.Uses = 1
	case r.Uses < 0 || r.Uses > MaxInviteUses:
		return AccountInvite{}, fmt.Errorf("an invitation creates 1 to %d accounts, not %d", MaxInviteUses, r.Uses)
	}
	inv := AccountInvite{
		Token:   newID(),
		Creator: Fold(r.Creator),
		Contact: Fold(r.Contact),
		Account: Fold(r.Account),
		Created: c.now().UTC(),
		Uses:    r.Uses,
	}
	inv.Expires = inv.Created.Add(r.TTL)
	if inv.Account != "" {
		if err := ValidName(inv.Account); err != nil {
			return AccountInvite{}, err
		}
		if _, _, err := c.store.Account(ctx, inv.Account); err == nil {
			return AccountInvite{}, fmt.Errorf("the name %s is taken: %w", inv.Account, ErrExists)
		} else if !errors.Is(err, ErrNotFound) {
			return AccountInvite{}, err
		}
	}
	if err := c.store.CreateAccountInvite(ctx, inv); err != nil {
		return AccountInvite{}, fmt.Errorf("create invitation: %w", err)
	}
	return inv, nil
}

// AccountInvite returns a valid invitation (not expired, uses left), or
// ErrNotFound.
func (c *Core) AccountInvite(ctx context.Context, token string) (AccountInvite, error) {
	if token == "" || len(token) > maxTokenBytes {
		return AccountInvite{}, fmt.Errorf("invitation: %w", ErrNotFound)
	}
	return c.store.AccountInvite(ctx, token, c.now().UTC())
}

// AccountInvites lists the valid invitations, oldest first.
func (c *Core) AccountInvites(ctx context.Context) ([]AccountInvite, error) {
	return c.store.AccountInvites(ctx, c.now().UTC())
}

// RevokeAccountInvite cancels an invitation, or ErrNotFound.
func (c *Core) RevokeAccountInvite(ctx context.Context, token string) error {
	if token == "" || len(token) > maxTokenBytes {
		return fmt.Errorf("invitation: %w", ErrNotFound)
	}
	return c.store.DeleteAccountInvite(ctx, token)
}

// RedeemAccountInvite creates an account with an invitation, taking one
// of its uses in the same transaction: ErrNotFound if the invitation is
// not valid (unknown, expired, used up), ErrBadName or ErrWeakPassword as
// CreateAccount, ErrForbidden if the invitation is for another name,
// ErrExists if the name is taken (the invitation keeps its use). It
// returns the new account and the invitation as it was, whose Contact the
// door makes a mutual contact of the new account.
func (c *Core) RedeemAccountInvite(ctx context.Context, token, name, password string) (Account, AccountInvite, error) {
	name = Fold(name)
	if err := ValidName(name); err != nil {
		return Account{}, AccountInvite{}, err
	}
	inv, err := c.AccountInvite(ctx, token)
	if err != nil {
		return Account{}, AccountInvite{}, err
	}
	if inv.Account != "" && inv.Account != name {
		return Account{}, AccountInvite{}, fmt.Errorf("this invitation is for the name %s: %w", inv.Account, ErrForbidden)
	}
	cred, err := NewCredentials(password, c.opts.Iterations)
	if err != nil {
		return Account{}, AccountInvite{}, err
	}
	a := Account{Name: name, Created: c.now().UTC()}
	inv, err = c.store.RedeemAccountInvite(ctx, token, a.Created, a, cred)
	if err != nil {
		return Account{}, AccountInvite{}, err
	}
	c.publish(Event{Type: EventAccountCreated, Account: name})
	return a, inv, nil
}
