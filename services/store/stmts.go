package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// maxStmts bounds the prepared statements a Store keeps: the queries it
// runs are a few dozen texts (the history filter makes some of them from
// parts); a text beyond the bound is prepared for each call, as before.
const maxStmts = 128

// stmts runs the Store's queries through statements prepared once and
// kept, by query text, instead of compiling the SQL anew for every call
// (database/sql prepares a kept statement once per connection, on first
// use). A login reads the account and the admins; compiling those was
// about half of what each read cost.
type stmts struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func newStmts(db *sql.DB) *stmts { return &stmts{db: db, m: map[string]*sql.Stmt{}} }

// get returns query's kept statement, preparing it the first time; nil
// when the bound is reached or it cannot be prepared (the caller then
// runs the query on the database, which reports the error).
func (c *stmts) get(ctx context.Context, query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st
	}
	if c.m == nil || len(c.m) >= maxStmts {
		return nil
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.m[query] = st
	return st
}

// QueryContext is sql.DB.QueryContext through a kept statement.
func (c *stmts) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := c.get(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.db.QueryContext(ctx, query, args...)
}

// QueryRowContext is sql.DB.QueryRowContext through a kept statement.
func (c *stmts) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := c.get(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.db.QueryRowContext(ctx, query, args...)
}

// ExecContext is sql.DB.ExecContext through a kept statement.
func (c *stmts) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := c.get(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return c.db.ExecContext(ctx, query, args...)
}

// Close closes the kept statements; later calls go to the database
// directly.
func (c *stmts) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, st := range c.m {
		errs = append(errs, st.Close())
	}
	c.m = nil
	return errors.Join(errs...)
}
