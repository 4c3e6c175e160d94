package hw

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// level is one write to a pin: when (since the fake clock's start) and
// what.
type level struct {
	at time.Duration
	l  gpio.Level
}

func (l level) String() string { return fmt.Sprintf("%s@%s", l.l, l.at) }

// recPin is a simulated pin that records every write with its time.
type recPin struct {
	*SimPin
	clock *fakeClock
	mu    sync.Mutex
	log   []level
}

func newRecPin(c *fakeClock) *recPin {
	return &recPin{SimPin: NewSim(c, nil).leds[LEDStatus], clock: c}
}

func (p *recPin) Out(l gpio.Level) error {
	p.mu.Lock()
	p.log = append(p.log, level{p.clock.elapsed(), l})
	p.mu.Unlock()
	return p.SimPin.Out(l)
}

// take returns and forgets what was recorded.
func (p *recPin) take() []level {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.log
	p.log = nil
	return l
}

// expected is what pat should write from time start for rounds rounds:
// one write per change of level.
func expected(pat Pattern, start time.Duration, rounds int) []level {
	var out []level
	at := start
	for r := 0; r < rounds; r++ {
		for _, s := range pat.Steps {
			l := gpio.Level(s.On)
			if len(out) == 0 || out[len(out)-1].l != l {
				out = append(out, level{at, l})
			}
			if s.For <= 0 {
				return out
			}
			at += s.For
		}
		if !pat.Repeat {
			return out
		}
	}
	return out
}

var allPatterns = []Pattern{StatusBooting, StatusReady, StatusDegraded, StatusPairing, StatusShuttingDown,
	FactoryResetConfirm, ActivityIdle, ActivityFlash, WANOff, WANConnected, WANRetrying}

func TestPatternTiming(t *testing.T) {
	for _, pat := range allPatterns {
		t.Run(pat.String(), func(t *testing.T) {
			c := newFakeClock()
			pin := newRecPin(c)
			p := NewPlayer("status", pin, false, c)
			p.Play(pat)
			rounds := 3
			c.Advance(time.Duration(rounds)*pat.Period() - time.Nanosecond) // not the 4th round's start
			got := pin.take()
			if want := expected(pat, 0, rounds); !slices.Equal(got, want) {
				t.Fatalf("wrote %v, want %v", got, want)
			}
			if p.Describe() != "status: "+pat.String() {
				t.Fatalf("Describe %q", p.Describe())
			}
		})
	}
}

func TestPatternTimingByHand(t *testing.T) {
	c := newFakeClock()
	pin := newRecPin(c)
	p := NewPlayer("status", pin, false, c)
	p.Play(StatusPairing)
	c.Advance(1999 * ms)
	want := []level{{0, true}, {120 * ms, false}, {240 * ms, true}, {360 * ms, false},
		{1000 * ms, true}, {1120 * ms, false}, {1240 * ms, true}, {1360 * ms, false}}
	if got := pin.take(); !slices.Equal(got, want) {
		t.Fatalf("double blink wrote %v, want %v", got, want)
	}
}

func TestPatternsAreDistinct(t *testing.T) {
	status := []Pattern{StatusBooting, StatusReady, StatusDegraded, StatusPairing, StatusShuttingDown, FactoryResetConfirm}
	looks := map[string]bool{}
	for _, p := range status {
		if looks[p.Name] {
			t.Errorf("two status patterns look like %q", p.Name)
		}
		looks[p.Name] = true
		if p.Repeat && p.Period() <= 0 {
			t.Errorf("%s repeats with a step of no length", p)
		}
	}
	if ActivityFlash.Repeat || ActivityFlash.Period() < 250*ms {
		t.Errorf("activity flash must not repeat and must last at least 250 ms (4 flashes a second), got %s", ActivityFlash.Period())
	}
	if !strings.Contains(FactoryResetConfirm.Meaning, "factory reset") {
		t.Errorf("reset pattern says %q", FactoryResetConfirm.Meaning)
	}
}

func TestPlayerReplaceAndActiveLow(t *testing.T) {
	c := newFakeClock()
	pin := newRecPin(c)
	p := NewPlayer("status", pin, true, c)
	p.Play(StatusBooting)
	c.Advance(700 * ms)
	p.Play(StatusBooting) // the same pattern: goes on undisturbed
	c.Advance(200 * ms)
	p.Play(StatusReady)
	c.Advance(10 * time.Second) // the old pattern's timer does nothing
	want := []level{{0, gpio.Low}, {500 * ms, gpio.High}, {900 * ms, gpio.Low}}
	if got := pin.take(); !slices.Equal(got, want) {
		t.Fatalf("active-low wrote %v, want %v", got, want)
	}
	if !p.Lit() || !p.Pattern().Equal(StatusReady) {
		t.Fatalf("lit %v, pattern %s", p.Lit(), p.Pattern())
	}
	p.stop()
	if got := pin.take(); !slices.Equal(got, []level{{10900 * ms, gpio.High}}) || p.Lit() {
		t.Fatalf("stop wrote %v", got)
	}
}

func TestPlayerWithoutPin(t *testing.T) {
	c := newFakeClock()
	p := NewPlayer("wan", nil, false, c)
	p.Play(WANRetrying)
	c.Advance(time.Second)
	if p.Err() != nil || p.Describe() != "wan: blink (federation retrying)" {
		t.Fatal(p.Err(), p.Describe())
	}
}

// flashes counts the flashes in a record.
func flashes(ls []level) (n int, starts []time.Duration) {
	for _, l := range ls {
		if l.l == gpio.High {
			n++
			starts = append(starts, l.at)
		}
	}
	return n, starts
}

func TestFlasherCoalesces(t *testing.T) {
	c := newFakeClock()
	pin := newRecPin(c)
	f := NewFlasher(NewPlayer("activity", pin, false, c), ActivityFlash, ActivityIdle)
	pin.take()
	// A burst: one flash now, one after it, no more.
	for range 100 {
		f.Flash()
	}
	c.Advance(2 * time.Second)
	if n, starts := flashes(pin.take()); n != 2 || starts[1]-starts[0] != ActivityFlash.Period() {
		t.Fatalf("a burst of 100 gave %d flashes at %v", n, starts)
	}
	// A steady stream of 10 a second: never more than 4 flashes a second.
	start := c.elapsed()
	for range 50 {
		f.Flash()
		c.Advance(100 * ms)
	}
	c.Advance(time.Second)
	n, starts := flashes(pin.take())
	if n < 15 || n > 21 {
		t.Fatalf("5 s of 10 messages a second gave %d flashes (%v)", n, starts)
	}
	for i := 1; i < len(starts); i++ {
		if gap := starts[i] - starts[i-1]; gap < 250*ms {
			t.Fatalf("flashes %s apart at %s", gap, starts[i]-start)
		}
	}
	if !pin.SimPin.pat.Equal(ActivityIdle) {
		t.Fatalf("after the stream the LED shows %s", pin.SimPin.pat)
	}
	// Show overrides flashes until Clear.
	f.Show(FactoryResetConfirm)
	f.Flash()
	c.Advance(100 * ms)
	if pat := pin.SimPin.pat; !pat.Equal(FactoryResetConfirm) {
		t.Fatalf("during Show the LED shows %s", pat)
	}
	f.Clear()
	pin.take()
	f.Flash()
	c.Advance(time.Second)
	if n, _ := flashes(pin.take()); n != 1 {
		t.Fatalf("%d flashes after Clear", n)
	}
}
