//go:build linux

package netpoll

import (
	"testing"
	"time"
)

// TestParker: one resume per Park — from the poller when bytes come,
// from the timer (timedOut) when they do not, from Wake — and none after
// Unpark.
func TestParker(t *testing.T) {
	p := newPoller(t)
	srv, cli := tcpPair(t)
	resumed := make(chan bool, 10)
	k, err := p.NewParker(srv, func(timedOut bool) { resumed <- timedOut })
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	expect := func(want bool, what string) {
		t.Helper()
		select {
		case got := <-resumed:
			if got != want {
				t.Fatalf("%s: resumed with timedOut=%v", what, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no resume", what)
		}
		select {
		case <-resumed:
			t.Fatalf("%s: resumed twice", what)
		case <-time.After(100 * time.Millisecond):
		}
		if k.Parked() {
			t.Fatalf("%s: still parked after the resume", what)
		}
	}
	park := func(wait time.Duration) {
		t.Helper()
		if ok, err := k.Park(wait); !ok {
			t.Fatalf("Park: %v", err)
		}
	}

	park(time.Hour)
	cli.Write([]byte("x"))
	expect(false, "bytes came")
	k.Read(make([]byte, 8))

	park(50 * time.Millisecond)
	expect(true, "the deadline came")

	park(time.Hour)
	k.Wake()
	expect(false, "Wake")

	park(time.Hour)
	if !k.Unpark() {
		t.Fatal("Unpark of a parked reader failed")
	}
	k.Wake()
	cli.Write([]byte("y"))
	select {
	case <-resumed:
		t.Fatal("resumed after Unpark")
	case <-time.After(200 * time.Millisecond):
	}
}
