//go:build !linux

package netpoll

import (
	"log/slog"
	"net"
)

// Poller is unavailable here: New fails.
type Poller struct{}

// Reg is unavailable here.
type Reg struct{}

// New reports ErrUnsupported.
func New(*slog.Logger) (*Poller, error) { return nil, ErrUnsupported }

func (p *Poller) Close() error { return nil }

func (p *Poller) Register(net.Conn, func()) (*Reg, error) { return nil, ErrUnsupported }

func (r *Reg) Arm() error { return ErrUnsupported }

func (r *Reg) Close() {}

func (r *Reg) Read([]byte) (int, error) { return 0, ErrUnsupported }
