package hw

import (
	"slices"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// pressLog collects presses as a tracker reports them.
type pressLog struct {
	mu sync.Mutex
	ps []Press
	ch chan Press
}

func newPressLog() *pressLog { return &pressLog{ch: make(chan Press, 64)} }

func (l *pressLog) emit(p Press) {
	l.mu.Lock()
	l.ps = append(l.ps, p)
	l.mu.Unlock()
	l.ch <- p
}

// take returns the presses reported so far as "kind held" strings.
func (l *pressLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, p := range l.ps {
		out = append(out, p.Button+" "+p.Kind.String()+" "+p.Held.String())
	}
	l.ps = nil
	for len(l.ch) > 0 {
		<-l.ch
	}
	return out
}

var testTiming = DefaultButtonTiming() // 30 ms, 5 s, 15 s

func newTestTracker() (*tracker, *fakeClock, *pressLog) {
	c := newFakeClock()
	l := newPressLog()
	tr := newTracker("A", c, testTiming, l.emit)
	tr.start(false)
	return tr, c, l
}

// levels feeds the tracker a level every step.
func levels(tr *tracker, c *fakeClock, step time.Duration, ls ...bool) {
	for _, l := range ls {
		tr.edge(l)
		c.Advance(step)
	}
}

func TestDebounce(t *testing.T) {
	tr, c, l := newTestTracker()
	// A bouncy press: five edges in 8 ms, then down.
	levels(tr, c, 2*ms, true, false, true, false, true)
	c.Advance(500 * ms)
	// A bounce while held, shorter than the debounce time: still held.
	levels(tr, c, 5*ms, false, true)
	c.Advance(500 * ms)
	// A bouncy release.
	levels(tr, c, 3*ms, false, true, false, true, false)
	c.Advance(time.Second)
	if got := l.take(); !slices.Equal(got, []string{"A short press 1.024s"}) {
		t.Fatalf("presses %v", got)
	}
	// A glitch shorter than the debounce time is no press.
	levels(tr, c, 10*ms, true, false)
	c.Advance(time.Second)
	if got := l.take(); len(got) != 0 {
		t.Fatalf("a glitch made %v", got)
	}
}

func TestPressKinds(t *testing.T) {
	tests := []struct {
		name string
		hold time.Duration
		want []string
	}{
		{"short", 200 * ms, []string{"A short press 200ms"}},
		{"just short of long", 5*time.Second - ms, []string{"A short press 4.999s"}},
		{"long", 5 * time.Second, []string{"A long press 5s"}},
		{"long, released late", 9 * time.Second, []string{"A long press 5s"}},
		{"very long", 15 * time.Second, []string{"A long press 5s", "A very long press 15s"}},
		{"held for ever", time.Hour, []string{"A long press 5s", "A very long press 15s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, c, l := newTestTracker()
			tr.edge(true)
			c.Advance(tt.hold)
			tr.edge(false)
			c.Advance(time.Second)
			if got := l.take(); !slices.Equal(got, tt.want) {
				t.Fatalf("presses %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLongPressReportedWhileHeld(t *testing.T) {
	tr, c, l := newTestTracker()
	tr.edge(true)
	c.Advance(5*time.Second + 30*ms - ms)
	if got := l.take(); len(got) != 0 {
		t.Fatalf("early: %v", got)
	}
	c.Advance(ms)
	if got := l.take(); !slices.Equal(got, []string{"A long press 5s"}) {
		t.Fatalf("at 5 s held: %v", got)
	}
}

func TestHeldAtStartIsIgnoredUntilReleased(t *testing.T) {
	c := newFakeClock()
	l := newPressLog()
	tr := newTracker("A", c, testTiming, l.emit)
	tr.start(true) // stuck, or wired the other way round
	c.Advance(time.Minute)
	tr.edge(false)
	c.Advance(time.Second)
	if got := l.take(); len(got) != 0 {
		t.Fatalf("a button held at start made %v", got)
	}
	tr.edge(true)
	c.Advance(100 * ms)
	tr.edge(false)
	c.Advance(100 * ms)
	if got := l.take(); !slices.Equal(got, []string{"A short press 100ms"}) {
		t.Fatalf("then %v", got)
	}
}

func TestTrackerStop(t *testing.T) {
	tr, c, l := newTestTracker()
	tr.edge(true)
	c.Advance(time.Second)
	tr.stop()
	c.Advance(time.Minute)
	tr.edge(false)
	c.Advance(time.Second)
	if got := l.take(); len(got) != 0 {
		t.Fatalf("after stop: %v", got)
	}
}

// The reader goroutine on a simulated pin: edges are waited for, and a
// press made while the clock stands still is timed from where it was
// made.
func TestButtonOnSimPin(t *testing.T) {
	c := newFakeClock()
	sim := NewSim(c, nil)
	pin := sim.buttons[ButtonA]
	l := newPressLog()
	b, err := NewButton(ButtonA, pin, true, testTiming, c, nil, l.emit)
	if err != nil {
		t.Fatal(err)
	}
	if b.Mode() != "edges" || pin.Pull() != gpio.PullUp {
		t.Fatalf("mode %s, pull %s", b.Mode(), pin.Pull())
	}
	b.Start()
	defer b.Stop()
	// Bouncy, then held 6 s: one long press.
	for _, lv := range []gpio.Level{gpio.Low, gpio.High, gpio.Low, gpio.High, gpio.Low} {
		pin.Drive(lv)
		c.Advance(ms)
	}
	c.Advance(6 * time.Second)
	pin.Drive(gpio.High)
	c.Advance(time.Second)
	// A short press.
	pin.Drive(gpio.Low)
	c.Advance(300 * ms)
	pin.Drive(gpio.High)
	c.Advance(100 * ms)
	if got := l.take(); !slices.Equal(got, []string{"A long press 5s", "A short press 300ms"}) {
		t.Fatalf("presses %v", got)
	}
	b.Stop()
	pin.Drive(gpio.Low) // no reader any more: returns at once
	c.Advance(time.Minute)
	if got := l.take(); len(got) != 0 {
		t.Fatalf("after Stop: %v", got)
	}
}

// noEdgePin refuses edge detection, so the button polls it.
type noEdgePin struct{ *SimPin }

func (p noEdgePin) In(pull gpio.Pull, edge gpio.Edge) error {
	if edge != gpio.NoEdge {
		return errNoEdges
	}
	return p.SimPin.In(pull, edge)
}

var errNoEdges = gpio.INVALID.In(gpio.PullNoChange, gpio.NoEdge)

func TestButtonPolling(t *testing.T) {
	sim := NewSim(nil, nil)
	l := newPressLog()
	b, err := NewButton(ButtonB, noEdgePin{sim.buttons[ButtonB]}, true, testTiming, nil, nil, l.emit)
	if err != nil {
		t.Fatal(err)
	}
	if b.Mode() != "polling" {
		t.Fatalf("mode %s", b.Mode())
	}
	b.Start()
	defer b.Stop()
	sim.buttons[ButtonB].Drive(gpio.Low) // no edges: returns at once
	// Wait for the polling reader to see it down and the debounce to
	// settle (the guard only ends a hung test).
	waitUntil(t, func() bool {
		b.tr.mu.Lock()
		defer b.tr.mu.Unlock()
		return b.tr.stable
	})
	sim.buttons[ButtonB].Drive(gpio.High)
	select {
	case p := <-l.ch:
		if p.Kind != ShortPress || p.Button != ButtonB {
			t.Fatalf("press %+v", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no press")
	}
}

// waitUntil waits for cond, checking it every few milliseconds; the
// guard only ends a hung test.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	guard := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-guard:
			t.Fatal("condition never met")
		case <-time.After(5 * ms):
		}
	}
}
