package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// fakeService records starts and stops into a shared journal and fails
// on demand.
type fakeService struct {
	name     string
	journal  *journal
	failNow  chan error // a value sent here makes Serve return it
	startErr error      // returned before ready
}

type journal struct {
	mu      sync.Mutex
	entries []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, s)
}

func (j *journal) String() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return fmt.Sprint(j.entries)
}

func (f *fakeService) Name() string { return f.name }

func (f *fakeService) Serve(ctx context.Context, ready func()) error {
	f.journal.add("start " + f.name)
	if f.startErr != nil {
		return f.startErr
	}
	ready()
	select {
	case <-ctx.Done():
		f.journal.add("stop " + f.name)
		return nil
	case err := <-f.failNow:
		f.journal.add("fail " + f.name)
		return err
	}
}

func waitState(t *testing.T, events <-chan Event, want State) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Kind == "state" && ev.State == want {
				return
			}
		case <-timeout:
			t.Fatalf("state %s never reached", want)
		}
	}
}

func TestSupervisorOrderAndRestart(t *testing.T) {
	h := newHub(time.Now)
	h.setState(StateReady, "")
	events, stop := h.Subscribe(64)
	defer stop()
	sv := newSupervisor(slog.New(slog.DiscardHandler), h)
	sv.minBackoff = time.Millisecond
	j := &journal{}
	a := &fakeService{name: "a", journal: j, failNow: make(chan error)}
	b := &fakeService{name: "b", journal: j, failNow: make(chan error)}
	if err := sv.start(context.Background(), []Service{a, b}); err != nil {
		t.Fatal(err)
	}
	if got := j.String(); got != "[start a start b]" {
		t.Fatalf("start order %s", got)
	}
	a.failNow <- errors.New("boom")
	waitState(t, events, StateDegraded)
	waitState(t, events, StateReady) // restarted and ready again
	if err := sv.stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := j.String(); got != "[start a start b fail a start a stop b stop a]" {
		t.Fatalf("journal %s", got)
	}
}

func TestSupervisorStartFailure(t *testing.T) {
	h := newHub(time.Now)
	sv := newSupervisor(slog.New(slog.DiscardHandler), h)
	j := &journal{}
	a := &fakeService{name: "a", journal: j, failNow: make(chan error)}
	b := &fakeService{name: "b", journal: j, startErr: errors.New("address already in use")}
	err := sv.start(context.Background(), []Service{a, b})
	if err == nil || err.Error() != "start b: address already in use" {
		t.Fatalf("start error %v", err)
	}
	sv.stop(context.Background())
	if got := j.String(); got != "[start a start b stop a]" {
		t.Fatalf("journal %s", got)
	}
}
