package mdns

import (
	"context"
	"testing"
	"time"
)

// Serve waits for WaitNetwork before anything else, and a stop during the
// wait ends Serve without announcing.
func TestServeWaitsForNetwork(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	entered := make(chan struct{})
	calls := 0
	svc := New(Config{
		Instance: "chatbox", Host: "chatbox",
		Announcements: []Announcement{{Service: "_ircs._tcp", Port: 6697}},
		WaitNetwork: func(wctx context.Context) {
			calls++
			close(entered)
			<-wctx.Done()
		},
	})
	readyc := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- svc.Serve(ctx, func() { close(readyc) }) }()
	deadline := time.After(10 * time.Second)
	select {
	case <-readyc:
	case <-deadline:
		t.Fatal("Serve did not report ready before waiting for the network")
	}
	select {
	case <-entered:
	case <-deadline:
		t.Fatal("WaitNetwork was not called")
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Serve = %v, want nil after a stop during the wait", err)
		}
	case <-deadline:
		t.Fatal("Serve did not return after its context ended during the wait")
	}
	if calls != 1 {
		t.Fatalf("WaitNetwork called %d times, want 1", calls)
	}
}
