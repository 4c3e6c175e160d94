package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestStmtsKeepsAndBounds checks the kept statements: a query text is
// prepared once and answers like the database, texts beyond maxStmts
// and bad SQL go to the database (which reports the error), and after
// Close queries still run.
func TestStmtsKeepsAndBounds(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	c := newStmts(s.db)
	if _, err := c.ExecContext(ctx, `CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := c.ExecContext(ctx, `INSERT INTO t (k, v) VALUES (?, ?)`, i, fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.m); n != 2 {
		t.Fatalf("%d statements kept after two texts, want 2", n)
	}
	var v string
	if err := c.QueryRowContext(ctx, `SELECT v FROM t WHERE k = ?`, 2).Scan(&v); err != nil || v != "v2" {
		t.Fatalf("QueryRow: %q, %v", v, err)
	}
	rows, err := c.QueryContext(ctx, `SELECT k FROM t ORDER BY k`)
	if err != nil {
		t.Fatal(err)
	}
	var ks []int
	for rows.Next() {
		var k int
		rows.Scan(&k)
		ks = append(ks, k)
	}
	if rows.Close(); fmt.Sprint(ks) != "[0 1 2]" {
		t.Fatalf("Query: %v", ks)
	}

	if _, err := c.QueryContext(ctx, `SELECT nonsense FROM nowhere`); err == nil || !strings.Contains(err.Error(), "nowhere") {
		t.Fatalf("bad SQL: err %v, want the database's error naming the table", err)
	}
	for i := len(c.m); i < maxStmts+10; i++ {
		var n int
		if err := c.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) + %d FROM t`, i)).Scan(&n); err != nil || n != 3+i {
			t.Fatalf("query %d: %d, %v", i, n, err)
		}
	}
	if n := len(c.m); n != maxStmts {
		t.Fatalf("%d statements kept, want the bound %d", n, maxStmts)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRowContext(ctx, `SELECT v FROM t WHERE k = ?`, 1).Scan(&v); err != nil || v != "v1" {
		t.Fatalf("after Close: %q, %v", v, err)
	}
}
