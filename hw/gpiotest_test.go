package hw

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"chatbox/appliance"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// The tests in this file give the panel periph's own fake pins
// (gpiotest.Pin), through the constructors the GPIO backend uses
// (NewPanel with Pins, NewButton), and drive time with the package's
// fake clock: every timing below is exact, none is measured by sleeping.
// Waiting in real time only happens for another goroutine (the panel's
// Run, a button's reader) to take what it was handed, under a guard
// that ends a hung test.

// ledPin is a gpiotest pin for an LED that also records every level
// written to it, and when, on the panel's clock. Its level is
// gpiotest's (Read, L).
type ledPin struct {
	*gpiotest.Pin
	clock *fakeClock
	mu    sync.Mutex
	rec   []level
}

func newLEDPin(name string, num int, c *fakeClock) *ledPin {
	return &ledPin{Pin: &gpiotest.Pin{N: name, Num: num, Fn: "Out"}, clock: c}
}

// Out implements gpio.PinOut: gpiotest's Out, recorded.
func (p *ledPin) Out(l gpio.Level) error {
	p.mu.Lock()
	p.rec = append(p.rec, level{p.clock.elapsed(), l})
	p.mu.Unlock()
	return p.Pin.Out(l)
}

func (p *ledPin) record() []level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.rec)
}

// buttonPin is a gpiotest pin for a button, with an unbuffered
// EdgesChan. gpiotest.Pin (v3.7.3) is used as it is, except Halt:
//
//   - An edge is a level sent on EdgesChan; WaitForEdge sets the pin's
//     level (L) to it. Unbuffered, a send returns once the reader has the
//     level, and a second send of the same level once it has handled the
//     first and waits again (set): so the fake clock starts the debounce
//     where the test put the edge.
//   - Its Clock is left nil: WaitForEdge then sets it to clockwork's real
//     clock itself, without the pin's lock. That is safe only because a
//     Button calls WaitForEdge from its one reader goroutine, and nothing
//     else touches Clock. Its timeouts (edgeWait, 500 ms) are real time;
//     after one the reader reads L, which only WaitForEdge changes, so
//     it learns nothing new and the fake timeline is not disturbed.
//   - Its Halt does nothing, where a real driver's ends a WaitForEdge
//     (Button.Stop relies on that). This one hands a waiting reader the
//     level it already has, so Stop need not wait out edgeWait.
type buttonPin struct{ *gpiotest.Pin }

func newButtonPin(name string, num int) buttonPin {
	return buttonPin{&gpiotest.Pin{N: name, Num: num, Fn: "In", EdgesChan: make(chan gpio.Level)}}
}

// Halt implements conn.Resource: it wakes a reader waiting for an edge.
func (p buttonPin) Halt() error {
	select {
	case p.EdgesChan <- p.Read():
	default: // nobody waits: the reader sees it is stopped within edgeWait
	}
	return p.Pin.Halt()
}

// set puts level l on the pin as the wire would, and returns once the
// button's reader has handled it.
func (p buttonPin) set(t *testing.T, l gpio.Level) {
	t.Helper()
	for range 2 {
		select {
		case p.EdgesChan <- l:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: nobody reads the pin", p)
		}
	}
}

// run is an LED lit or dark for d.
type run struct {
	lit bool
	d   time.Duration
}

func (r run) String() string {
	if r.lit {
		return "lit " + r.d.String()
	}
	return "dark " + r.d.String()
}

func lit(d time.Duration) run  { return run{true, d} }
func dark(d time.Duration) run { return run{false, d} }

// cycle repeats rs until they last total, cutting the last run short.
func cycle(total time.Duration, rs ...run) []run {
	var out []run
	for left := total; left > 0; {
		for _, r := range rs {
			if left <= 0 {
				break
			}
			r.d = min(r.d, left)
			left -= r.d
			out = append(out, r)
		}
	}
	return out
}

// shown is what an LED whose pin was written rec (lit at level on)
// showed from at to end: the level it had at at (the last write at or
// before at), then a run per later write, each lasting until the next.
// Writes at end or later are left out.
func shown(rec []level, on gpio.Level, at, end time.Duration) []run {
	var cur bool
	start := at
	var out []run
	for _, w := range rec {
		if w.at <= at {
			cur = w.l == on
			continue
		}
		if w.at >= end {
			break
		}
		out = append(out, run{cur, w.at - start})
		cur, start = w.l == on, w.at
	}
	return append(out, run{cur, end - start})
}

// gpioRig is a panel built by NewPanel on gpiotest pins, as the GPIO
// backend builds it, with a fake clock. Buttons are active-low (the
// default wiring), so gpiotest's pull-up leaves them released.
type gpioRig struct {
	t                     *testing.T
	clock                 *fakeClock
	box                   *fakeBox
	panel                 *Panel
	status, activity, wan *ledPin
	a, b                  buttonPin
	on, off               gpio.Level // an LED's lit and dark levels

	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
	stopAt   time.Duration
	fed      bool // the last federation event sync sent: connected
	synced   chan struct{}
}

// syncButton is a button the panel does not have: its presses change
// nothing, whatever the panel is doing (barrier).
const syncButton = "sync"

// syncHandler is the panel's log handler: it passes records on, and
// tells synced when the panel takes a press of syncButton (Panel.press
// logs every press it takes, at debug level, as "button").
type syncHandler struct {
	slog.Handler
	synced chan<- struct{}
}

func (h syncHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h syncHandler) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Message == "button" {
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "button" && a.Value.String() == syncButton {
				h.synced <- struct{}{}
				return false
			}
			return true
		})
	}
	if !h.Handler.Enabled(ctx, rec.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, rec)
}

func (h syncHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return syncHandler{h.Handler.WithAttrs(as), h.synced}
}

func (h syncHandler) WithGroup(name string) slog.Handler {
	return syncHandler{h.Handler.WithGroup(name), h.synced}
}

func newGPIORig(t *testing.T, state appliance.State, ledActiveLow bool) *gpioRig {
	t.Helper()
	c := newFakeClock()
	r := &gpioRig{t: t, clock: c, box: newFakeBox(state), on: gpio.High, off: gpio.Low,
		status: newLEDPin("GPIO17", 17, c), activity: newLEDPin("GPIO27", 27, c), wan: newLEDPin("GPIO22", 22, c),
		a: newButtonPin("GPIO5", 5), b: newButtonPin("GPIO6", 6), done: make(chan error, 1), synced: make(chan struct{}, 1)}
	if ledActiveLow {
		r.on, r.off = gpio.Low, gpio.High
	}
	pins := Pins{Status: r.status, Activity: r.activity, WAN: r.wan, A: r.a, B: r.b,
		LEDActiveLow: ledActiveLow, ButtonActiveLow: true}
	log := slog.New(syncHandler{testLog(t).Handler(), r.synced})
	p, err := NewPanel(r.box, pins, Options{Log: log, Clock: c, PairingWindow: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	r.panel = p
	if p.Backend() != "gpio" || p.Sim() != nil {
		t.Fatalf("backend %q", p.Backend())
	}
	// NewPanel darkens every LED at once and sets the buttons up as
	// pulled-up inputs with edge detection.
	for _, l := range []*ledPin{r.status, r.activity, r.wan} {
		if got := l.record(); !slices.Equal(got, []level{{0, r.off}}) {
			t.Fatalf("%s: NewPanel wrote %v", l, got)
		}
	}
	for _, b := range []buttonPin{r.a, r.b} {
		if b.Pull() != gpio.PullUp || b.Read() != gpio.High {
			t.Fatalf("%s: pull %s, level %s", b, b.Pull(), b.Read())
		}
	}
	for _, btn := range p.buttons {
		if btn.Mode() != "edges" {
			t.Fatalf("button %s: %s", btn.name, btn.Mode())
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- p.Run(ctx) }()
	t.Cleanup(r.stop)
	r.waitShows(LEDStatus, statusPattern(state))
	r.waitShows(LEDWAN, WANOff)
	r.waitShows(LEDActivity, ActivityIdle)
	return r
}

// stop ends Run and checks that every LED is dark and stays so.
func (r *gpioRig) stop() {
	r.stopOnce.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				r.t.Error(err)
			}
		case <-time.After(10 * time.Second):
			r.t.Error("the panel did not stop")
			return
		}
		r.stopAt = r.clock.elapsed()
		r.clock.Advance(10 * time.Second) // what the patterns had timed does nothing
		for _, l := range []*ledPin{r.status, r.activity, r.wan} {
			if got := shown(l.record(), r.on, r.stopAt, r.stopAt+10*time.Second); !slices.Equal(got, []run{dark(10 * time.Second)}) {
				r.t.Errorf("%s after the panel stopped: %v", l, got)
			}
			if l.Read() != r.off {
				r.t.Errorf("%s at %s after the panel stopped", l, l.Read())
			}
		}
		for _, l := range r.panel.leds {
			if !l.Pattern().Equal(Off) {
				r.t.Errorf("after the panel stopped: %s", l.Describe())
			}
		}
	})
}

func (r *gpioRig) led(name string) *Player {
	for _, l := range r.panel.leds {
		if l.Name() == name {
			return l
		}
	}
	r.t.Fatalf("no LED %s", name)
	return nil
}

// waitShows waits until LED name shows pat (the panel's Run goroutine
// took what it was handed). The fake clock stands still meanwhile.
func (r *gpioRig) waitShows(name string, pat Pattern) {
	r.t.Helper()
	l := r.led(name)
	guard := time.After(10 * time.Second)
	for !l.Pattern().Equal(pat) {
		select {
		case <-guard:
			r.t.Fatalf("%s, want %s", l.Describe(), pat)
		case <-time.After(ms):
		}
	}
}

// barrier returns once Run has handled every press reported before: it
// reports a press of syncButton after them and waits for Run to take it.
func (r *gpioRig) barrier() {
	r.t.Helper()
	r.panel.pressed(Press{Button: syncButton, Kind: ShortPress, At: r.clock.Now()})
	select {
	case <-r.synced:
	case <-time.After(10 * time.Second):
		r.t.Fatal("the panel takes no presses")
	}
}

// sync returns once Run has handled every event sent before: it sends a
// federation event (connected and disconnected in turn) and waits for
// the WAN LED to show it.
func (r *gpioRig) sync() {
	r.t.Helper()
	r.fed = !r.fed
	if r.fed {
		r.box.send(KindFederationConnected)
		r.waitShows(LEDWAN, WANConnected)
	} else {
		r.box.send(KindFederationDisconnected)
		r.waitShows(LEDWAN, WANOff)
	}
}

// check compares what LED pin showed from at to end with want.
func (r *gpioRig) check(pin *ledPin, at, end time.Duration, want []run) {
	r.t.Helper()
	if got := shown(pin.record(), r.on, at, end); !slices.Equal(got, want) {
		r.t.Errorf("%s from %s to %s:\n got %v\nwant %v", pin, at, end, got, want)
	}
}

// The status LED's pattern for each state the box starts in, on active-
// high and active-low LEDs; every LED dark once the panel stops.
func TestGPIOTestStatusPatterns(t *testing.T) {
	const d = 3 * time.Second
	tests := []struct {
		state appliance.State
		want  []run
	}{
		{appliance.StateBooting, cycle(d, lit(500*ms), dark(500*ms))},
		{appliance.StateReady, []run{lit(d)}},
		{appliance.StateDegraded, cycle(d, lit(100*ms), dark(100*ms))},
		{appliance.StatePairing, cycle(d, lit(120*ms), dark(120*ms), lit(120*ms), dark(640*ms))},
	}
	for _, activeLow := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/activeLow=%v", tt.state, activeLow), func(t *testing.T) {
				r := newGPIORig(t, tt.state, activeLow)
				r.clock.Advance(d - 1)
				// The pin's level is the one asked: lit is low on an
				// active-low LED.
				if last := tt.want[len(tt.want)-1]; (r.status.Read() == gpio.High) != (last.lit != activeLow) {
					t.Fatalf("status pin at %s, showing %s (active-low %v)", r.status.Read(), last, activeLow)
				}
				r.clock.Advance(1)
				r.check(r.status, 0, d, tt.want)
				r.check(r.activity, 0, d, []run{dark(d)})
				r.check(r.wan, 0, d, []run{dark(d)})
				// Off: the panel stops, every LED goes dark at once and
				// stays so (stop checks it).
				r.stop()
				if r.stopAt != d {
					t.Fatalf("stopped at %s", r.stopAt)
				}
			})
		}
	}
}

// A new state starts its pattern from its first step at once.
func TestGPIOTestStatusFollowsTheBox(t *testing.T) {
	r := newGPIORig(t, appliance.StateBooting, false)
	r.clock.Advance(1200 * ms) // in the second lit half-second
	r.box.setState(appliance.StateReady)
	r.waitShows(LEDStatus, StatusReady)
	r.clock.Advance(800 * ms)
	r.box.setState(appliance.StateDegraded)
	r.waitShows(LEDStatus, StatusDegraded)
	r.clock.Advance(350 * ms) // in a dark tenth
	r.box.setState(appliance.StatePairing)
	r.waitShows(LEDStatus, StatusPairing)
	r.clock.Advance(time.Second)
	r.check(r.status, 0, 3350*ms, []run{
		lit(500 * ms), dark(500 * ms), // booting
		lit(1100 * ms),                               // booting from 1 s, ready from 1.2 s, degraded from 2 s
		dark(100 * ms), lit(100 * ms), dark(50 * ms), // degraded until 2.35 s
		lit(120 * ms), dark(120 * ms), lit(120 * ms), dark(640 * ms), // pairing
	})
}

// One flash per message, at most one more after the flash showing,
// never more than 4 a second.
func TestGPIOTestActivityFlashCoalesces(t *testing.T) {
	r := newGPIORig(t, appliance.StateReady, false)
	// A burst of five at 0: a flash now and one after it.
	for range 5 {
		r.box.send(KindMessageDelivered)
	}
	r.sync()
	r.clock.Advance(time.Second)
	// One at 1 s, then one 100 ms into its flash: the second follows the
	// first's 250 ms.
	r.box.send(KindMessageDelivered)
	r.sync()
	r.clock.Advance(100 * ms)
	r.box.send(KindMessageDelivered)
	r.sync()
	r.clock.Advance(900 * ms)
	// Ten a second for a second, from 2 s: a flash every 250 ms.
	for range 10 {
		r.box.send(KindMessageDelivered)
		r.sync()
		r.clock.Advance(100 * ms)
	}
	r.clock.Advance(time.Second)
	flash := []run{lit(60 * ms), dark(190 * ms)}
	want := slices.Concat(flash, []run{lit(60 * ms), dark(690 * ms)}, // 0 s
		flash, []run{lit(60 * ms), dark(690 * ms)}, // 1 s
		flash, flash, flash, flash, []run{lit(60 * ms), dark(940 * ms)}) // 2 s to 4 s
	r.check(r.activity, 0, 4*time.Second, want)
	if n, _ := flashes(r.activity.record()); n != 9 {
		t.Fatalf("%d flashes for 17 messages", n)
	}
}

// The WAN LED blinks while federation retries, and starts its blink
// over when it retries again.
func TestGPIOTestWANRetryBlink(t *testing.T) {
	r := newGPIORig(t, appliance.StateReady, false)
	r.box.send(KindFederationRetrying)
	r.waitShows(LEDWAN, WANRetrying)
	r.clock.Advance(2 * time.Second)
	r.box.send(KindFederationConnected)
	r.waitShows(LEDWAN, WANConnected)
	r.clock.Advance(time.Second)
	r.box.send(KindFederationDisabled)
	r.waitShows(LEDWAN, WANOff)
	r.clock.Advance(time.Second)
	r.box.send(KindFederationRetrying)
	r.waitShows(LEDWAN, WANRetrying)
	r.clock.Advance(time.Second)
	r.check(r.wan, 0, 5*time.Second, slices.Concat(
		cycle(2*time.Second, lit(250*ms), dark(250*ms)),
		[]run{lit(time.Second), dark(time.Second)}, // lit again at 2 s, then connected; off at 3 s
		cycle(time.Second, lit(250*ms), dark(250*ms))))
	r.check(r.status, 0, 5*time.Second, []run{lit(5 * time.Second)})
}

// gpioButton is a Button (NewButton, as the panel makes it) on a
// gpiotest pin, with a fake clock.
type gpioButton struct {
	t        *testing.T
	pin      buttonPin
	clock    *fakeClock
	log      *pressLog
	down, up gpio.Level
}

func newGPIOButton(t *testing.T, activeLow bool) *gpioButton {
	t.Helper()
	g := &gpioButton{t: t, pin: newButtonPin("GPIO6", 6), clock: newFakeClock(), log: newPressLog(),
		down: gpio.High, up: gpio.Low}
	pull := gpio.PullDown
	if activeLow {
		g.down, g.up, pull = gpio.Low, gpio.High, gpio.PullUp
	}
	b, err := NewButton(ButtonB, g.pin, activeLow, DefaultButtonTiming(), g.clock, testLog(t), g.log.emit)
	if err != nil {
		t.Fatal(err)
	}
	// gpiotest's In applies the pull: the button reads released.
	if b.Mode() != "edges" || g.pin.Pull() != pull || g.pin.Read() != g.up {
		t.Fatalf("mode %s, pull %s, level %s", b.Mode(), g.pin.Pull(), g.pin.Read())
	}
	b.Start()
	t.Cleanup(b.Stop)
	return g
}

// levels puts each level on the pin in turn, step apart.
func (g *gpioButton) levels(step time.Duration, ls ...gpio.Level) {
	g.t.Helper()
	for i, l := range ls {
		if i > 0 {
			g.clock.Advance(step)
		}
		g.pin.set(g.t, l)
	}
}

// presses returns and forgets the presses reported so far, with when
// they were (since the fake clock's start).
func (g *gpioButton) presses() []string {
	g.log.mu.Lock()
	defer g.log.mu.Unlock()
	var out []string
	for _, p := range g.log.ps {
		out = append(out, fmt.Sprintf("%s %s %s at %s", p.Button, p.Kind, p.Held, p.At.Sub(epoch)))
	}
	g.log.ps = nil
	for len(g.log.ch) > 0 {
		<-g.log.ch
	}
	return out
}

func (g *gpioButton) want(want ...string) {
	g.t.Helper()
	if got := g.presses(); !slices.Equal(got, want) {
		g.t.Fatalf("at %s: presses %q, want %q", g.clock.elapsed(), got, want)
	}
}

func TestGPIOTestButtonDebounce(t *testing.T) {
	for _, activeLow := range []bool{true, false} {
		t.Run(fmt.Sprintf("activeLow=%v", activeLow), func(t *testing.T) {
			g := newGPIOButton(t, activeLow)
			down, up := g.down, g.up
			// A bouncy press, 2 ms bounces from 0: down for good at 8 ms,
			// pressed once that held 30 ms (38 ms).
			g.levels(2*ms, down, up, down, up, down)
			// A 5 ms bounce while held, at 500 ms: still the same press.
			g.clock.Advance(492 * ms)
			g.levels(5*ms, up, down)
			// A bouncy release, 3 ms bounces from 1 s: up for good at
			// 1.012 s, released at 1.042 s.
			g.clock.Advance(495 * ms)
			g.levels(3*ms, up, down, up, down, up)
			g.clock.Advance(30*ms - 1)
			g.want()
			g.clock.Advance(1)
			g.want("B short press 1.004s at 1.042s")
			// A 10 ms glitch is no press.
			g.clock.Advance(time.Second)
			g.levels(10*ms, down, up)
			g.clock.Advance(time.Second)
			g.want()
			// Nor is a press shorter than the debounce time.
			g.levels(29*ms, down, up)
			g.clock.Advance(time.Second)
			g.want()
		})
	}
}

func TestGPIOTestButtonPresses(t *testing.T) {
	for _, activeLow := range []bool{true, false} {
		t.Run(fmt.Sprintf("activeLow=%v", activeLow), func(t *testing.T) {
			t.Run("short", func(t *testing.T) {
				g := newGPIOButton(t, activeLow)
				g.levels(200*ms, g.down, g.up) // reported once the release held 30 ms
				g.clock.Advance(30*ms - 1)
				g.want()
				g.clock.Advance(1)
				g.want("B short press 200ms at 230ms")
			})
			t.Run("long", func(t *testing.T) {
				g := newGPIOButton(t, activeLow)
				g.pin.set(t, g.down)
				g.clock.Advance(5*time.Second + 30*ms - 1)
				g.want()
				g.clock.Advance(1) // reported while held, 5 s after the press settled
				g.want("B long press 5s at 5.03s")
				if g.pin.Read() != g.down {
					t.Fatal("released")
				}
				g.clock.Advance(4 * time.Second)
				g.pin.set(t, g.up) // the release of a long press is not reported
				g.clock.Advance(time.Second)
				g.want()
				// The next press is a press of its own.
				g.levels(100*ms, g.down, g.up)
				g.clock.Advance(30 * ms)
				g.want("B short press 100ms at 10.16s")
			})
			t.Run("very long", func(t *testing.T) {
				g := newGPIOButton(t, activeLow)
				g.pin.set(t, g.down)
				g.clock.Advance(15*time.Second + 30*ms - 1)
				g.want("B long press 5s at 5.03s")
				g.clock.Advance(1)
				g.want("B very long press 15s at 15.03s")
				g.clock.Advance(time.Minute)
				g.pin.set(t, g.up)
				g.clock.Advance(time.Second)
				g.want()
			})
		})
	}
}

// A gpiotest pin without EdgesChan refuses edge detection: the button
// polls it, and presses are the same.
func TestGPIOTestButtonPolling(t *testing.T) {
	c := newFakeClock()
	pin := &gpiotest.Pin{N: "GPIO6", Num: 6}
	l := newPressLog()
	b, err := NewButton(ButtonB, pin, true, DefaultButtonTiming(), c, testLog(t), l.emit)
	if err != nil {
		t.Fatal(err)
	}
	if b.Mode() != "polling" {
		t.Fatalf("mode %s", b.Mode())
	}
	b.Start()
	defer b.Stop()
	// set puts l on the pin and waits for the poller to see it.
	set := func(lv gpio.Level) {
		pin.Lock()
		pin.L = lv
		pin.Unlock()
		waitUntil(t, func() bool {
			b.tr.mu.Lock()
			defer b.tr.mu.Unlock()
			return b.tr.raw == (lv == gpio.Low)
		})
	}
	set(gpio.Low)
	c.Advance(300 * ms)
	set(gpio.High)
	c.Advance(30 * ms)
	if got := l.take(); !slices.Equal(got, []string{"B short press 300ms"}) {
		t.Fatalf("presses %v", got)
	}
}

// press holds button for d on the fake clock and lets it go; the press
// is reported when the release has settled (30 ms later), and the clock
// stops there until the panel has handled it.
func (r *gpioRig) press(b buttonPin, d time.Duration) {
	r.t.Helper()
	b.set(r.t, gpio.Low)
	r.clock.Advance(d)
	b.set(r.t, gpio.High)
	r.clock.Advance(30 * ms)
	r.barrier()
}

// startReset holds B for 15 s: once the hold has settled and lasted
// 15 s (15.03 s after the press), every LED flickers; the long press
// at 5 s does nothing. It lets B go then and returns when the reset was
// asked, the clock still at that moment.
func (r *gpioRig) startReset() (asked time.Duration) {
	r.t.Helper()
	r.b.set(r.t, gpio.Low)
	for _, d := range []time.Duration{5*time.Second + 30*ms, 10*time.Second - 1} {
		r.clock.Advance(d)
		r.barrier()
		for _, name := range []string{LEDStatus, LEDActivity, LEDWAN} {
			if l := r.led(name); l.Pattern().Equal(FactoryResetConfirm) {
				r.t.Fatalf("asked early, B held %s: %s", r.clock.elapsed(), l.Describe())
			}
		}
	}
	r.clock.Advance(1)
	for _, name := range []string{LEDStatus, LEDActivity, LEDWAN} {
		r.waitShows(name, FactoryResetConfirm)
	}
	r.b.set(r.t, gpio.High) // letting go of the long press is no press
	r.box.noCalls(r.t)      // a long hold alone erases nothing
	return r.clock.elapsed()
}

// B held 15 s, then a short press of B within 10 s: the LEDs flicker,
// then the box is reset, the status LED saying it stops.
func TestGPIOTestFactoryResetConfirmed(t *testing.T) {
	for _, after := range []time.Duration{2 * time.Second, 9700 * ms} {
		t.Run("pressed after "+after.String(), func(t *testing.T) {
			r := newGPIORig(t, appliance.StateReady, false)
			asked := r.startReset()
			if asked != 15*time.Second+30*ms {
				t.Fatalf("asked at %s", asked)
			}
			r.clock.Advance(after)
			r.press(r.b, 200*ms) // B short press, reported 230 ms after it began
			if c := r.box.nextCall(t); c != "factory reset" {
				t.Fatalf("call %q", c)
			}
			pressed := r.clock.elapsed()
			if pressed-asked >= 10*time.Second {
				t.Fatalf("the test pressed too late: %s", pressed-asked)
			}
			// The box was asked to reset once the LEDs had moved on.
			for name, pat := range map[string]Pattern{LEDStatus: StatusShuttingDown, LEDActivity: ActivityIdle, LEDWAN: WANOff} {
				if l := r.led(name); !l.Pattern().Equal(pat) {
					t.Errorf("%s, want %s", l.Describe(), pat)
				}
			}
			r.clock.Advance(3 * time.Second)
			end := pressed + 3*time.Second
			flicker := cycle(pressed-asked, lit(50*ms), dark(50*ms))
			for _, l := range []*ledPin{r.status, r.activity, r.wan} {
				r.check(l, asked, pressed, flicker)
			}
			lastLit := flicker[len(flicker)-1].lit
			if !lastLit {
				t.Fatalf("the test presses while the LEDs are dark: %v", flicker[len(flicker)-1])
			}
			r.check(r.status, pressed, end, cycle(3*time.Second, dark(250*ms), lit(1500*ms)))
			r.check(r.activity, pressed, end, []run{dark(3 * time.Second)})
			r.check(r.wan, pressed, end, []run{dark(3 * time.Second)})
			r.box.noCalls(t)
		})
	}
}

// B held 15 s, then no second press within 10 s, or a press of A:
// nothing is erased, and the LEDs show the box again.
func TestGPIOTestFactoryResetRefused(t *testing.T) {
	r := newGPIORig(t, appliance.StatePairing, false) // a reset may be asked in any state
	r.box.send(KindFederationRetrying)
	r.waitShows(LEDWAN, WANRetrying)

	// No second press.
	asked := r.startReset()
	r.clock.Advance(10*time.Second - 1)
	for _, name := range []string{LEDStatus, LEDActivity, LEDWAN} {
		if l := r.led(name); !l.Pattern().Equal(FactoryResetConfirm) {
			t.Fatalf("before 10 s: %s", l.Describe())
		}
	}
	r.clock.Advance(1)
	timedOut := asked + 10*time.Second
	r.waitShows(LEDStatus, StatusPairing)
	r.waitShows(LEDActivity, ActivityIdle)
	r.waitShows(LEDWAN, WANRetrying)
	r.box.noCalls(t)
	r.clock.Advance(2 * time.Second)
	end := timedOut + 2*time.Second
	for _, l := range []*ledPin{r.status, r.activity, r.wan} {
		r.check(l, asked, timedOut, cycle(10*time.Second, lit(50*ms), dark(50*ms)))
	}
	// The patterns start over at the refusal (the flicker's last step
	// falls on that instant too: shown takes the level the instant
	// ends with).
	r.check(r.status, timedOut, end, cycle(2*time.Second, lit(120*ms), dark(120*ms), lit(120*ms), dark(640*ms)))
	r.check(r.activity, timedOut, end, []run{dark(2 * time.Second)})
	r.check(r.wan, timedOut, end, cycle(2*time.Second, lit(250*ms), dark(250*ms)))

	// A press of B now is just a press.
	r.press(r.b, 200*ms)

	// Button A cancels, and does nothing else.
	r.startReset()
	r.clock.Advance(time.Second)
	r.press(r.a, 200*ms)
	cancelled := r.clock.elapsed()
	r.waitShows(LEDStatus, StatusPairing)
	r.waitShows(LEDActivity, ActivityIdle)
	r.waitShows(LEDWAN, WANRetrying)
	r.clock.Advance(10 * time.Second) // the confirmation's time runs out: nothing more
	r.check(r.status, cancelled, cancelled+10*time.Second,
		cycle(10*time.Second, lit(120*ms), dark(120*ms), lit(120*ms), dark(640*ms)))
	r.check(r.activity, cancelled, cancelled+10*time.Second, []run{dark(10 * time.Second)})

	// A long press of B while asked is no confirmation either.
	r.startReset()
	r.clock.Advance(100 * ms) // the release settles
	r.b.set(t, gpio.Low)
	r.clock.Advance(9 * time.Second) // a long press at 5 s: ignored
	r.b.set(t, gpio.High)
	r.clock.Advance(2 * time.Second)
	r.waitShows(LEDStatus, StatusPairing)

	// The panel took every press above in order; the first thing it
	// asked of the box is this pairing press.
	r.box.noCalls(t)
	r.press(r.a, 200*ms)
	if c := r.box.nextCall(t); c != "open 2m0s" {
		t.Fatalf("call %q: a refused reset did something", c)
	}
}

// Button A on the panel: a short press opens the pairing window, 2 s
// held closes guest access, 5 s held shuts the box down, the status LED saying so first.
func TestGPIOTestPanelButtonA(t *testing.T) {
	r := newGPIORig(t, appliance.StateReady, true)
	r.press(r.a, 200*ms)
	if c := r.box.nextCall(t); c != "open 2m0s" {
		t.Fatalf("call %q", c)
	}
	r.waitShows(LEDStatus, StatusPairing)
	opened := r.clock.elapsed()
	r.a.set(t, gpio.Low)
	r.clock.Advance(5*time.Second + 30*ms)
	if c := r.box.nextCall(t); c != "close guests" { // held 2 s, on the way to 5 s
		t.Fatalf("call %q", c)
	}
	if c := r.box.nextCall(t); c != "shutdown: button A held 5s" {
		t.Fatalf("call %q", c)
	}
	held := r.clock.elapsed()
	r.waitShows(LEDStatus, StatusShuttingDown)
	r.a.set(t, gpio.High)
	r.clock.Advance(3 * time.Second)
	r.check(r.status, opened, held, cycle(held-opened, lit(120*ms), dark(120*ms), lit(120*ms), dark(640*ms)))
	r.check(r.status, held, held+3*time.Second, cycle(3*time.Second, dark(250*ms), lit(1500*ms)))
	if r.status.Read() != gpio.Low { // active-low: lit is low
		t.Fatalf("status pin %s while lit", r.status.Read())
	}
	r.box.noCalls(t)
}
