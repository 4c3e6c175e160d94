//go:build !linux

package rounds

import "net"

// Writer is Linux only: elsewhere every connection writes from a
// goroutine of its own.
type Writer struct{}

// NewWriter returns nil: no connection is written without waiting.
func NewWriter(net.Conn) *Writer { return nil }

// TryWritev is never called (NewWriter returns nil).
func (w *Writer) TryWritev(bufs [][]byte) (int, error) { return 0, nil }

// Conn is Linux only.
type Conn struct{ net.Conn }

// NewConn returns nil: no connection is written without waiting.
func NewConn(net.Conn, int) *Conn { return nil }
