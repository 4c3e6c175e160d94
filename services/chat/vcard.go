package chat

import (
	"context"
	"fmt"
)

// VCard returns account's profile document (for XMPP a vcard-temp
// vCard, XEP-0054), or ErrNotFound if it has none.
func (c *Core) VCard(ctx context.Context, account string) ([]byte, error) {
	return c.store.VCard(ctx, Fold(account))
}

// SetVCard replaces account's profile document. It is bounded like any
// stored document (MaxDataBytes); ErrNotFound if there is no such
// account.
func (c *Core) SetVCard(ctx context.Context, account string, data []byte) error {
	if len(data) > MaxDataBytes {
		return fmt.Errorf("profile of %d bytes: %w", len(data), ErrTooLong)
	}
	if IsGuest(account) {
		return fmt.Errorf("profile for a guest: %w", ErrForbidden)
	}
	return c.store.SetVCard(ctx, Fold(account), data)
}
