package chat

import (
	"context"
	"fmt"
	"time"
)

// DataItem is one document a door keeps for an account (see DataStore).
type DataItem struct {
	Key     string
	Value   []byte
	Updated time.Time
}

// DataStore keeps per-account documents that a door needs across sessions
// and that the core does not interpret: the XMPP roster, blocklist, PEP
// nodes and items, private XML. A document lives under (account,
// collection, key); a collection lists in order of last write, oldest
// first. Documents go with their account.
type DataStore interface {
	// PutData stores value under key, replacing (and moving to the end of
	// the collection) any document there. ErrNotFound if there is no such
	// account.
	PutData(ctx context.Context, account, collection, key string, value []byte, at time.Time) error
	// Data returns one document, or ErrNotFound.
	Data(ctx context.Context, account, collection, key string) (DataItem, error)
	// ListData returns a collection's documents, oldest write first.
	ListData(ctx context.Context, account, collection string) ([]DataItem, error)
	// DeleteData removes one document, or ErrNotFound.
	DeleteData(ctx context.Context, account, collection, key string) error
	// DeleteCollection removes every document of a collection.
	DeleteCollection(ctx context.Context, account, collection string) error
}

// MaxDataBytes bounds one stored document.
const MaxDataBytes = 1 << 20

// PutData keeps a door's document for account (see DataStore).
func (c *Core) PutData(ctx context.Context, account, collection, key string, value []byte) error {
	if len(value) > MaxDataBytes {
		return fmt.Errorf("document of %d bytes: %w", len(value), ErrTooLong)
	}
	if IsGuest(account) {
		return fmt.Errorf("store for a guest: %w", ErrForbidden)
	}
	return c.store.PutData(ctx, account, collection, key, value, c.now())
}

// Data returns a door's document for account, or ErrNotFound.
func (c *Core) Data(ctx context.Context, account, collection, key string) (DataItem, error) {
	return c.store.Data(ctx, account, collection, key)
}

// ListData returns a collection of account's documents, oldest write first.
func (c *Core) ListData(ctx context.Context, account, collection string) ([]DataItem, error) {
	return c.store.ListData(ctx, account, collection)
}

// DeleteData removes one of account's documents, or ErrNotFound.
func (c *Core) DeleteData(ctx context.Context, account, collection, key string) error {
	return c.store.DeleteData(ctx, account, collection, key)
}

// DeleteCollection removes a collection of account's documents.
func (c *Core) DeleteCollection(ctx context.Context, account, collection string) error {
	return c.store.DeleteCollection(ctx, account, collection)
}
