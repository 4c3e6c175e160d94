package hw

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"chatbox/appliance"
	"chatbox/services/chat"
)

// fakeBox is the appliance as the panel sees it; every action it is
// asked for goes to calls, in order.
type fakeBox struct {
	mu       sync.Mutex
	state    appliance.State
	pairing  bool
	events   chan appliance.Event
	calls    chan string
	resetErr error
	// seen is what the status LED showed when Shutdown or FactoryReset
	// was called.
	sim  *Sim
	seen []string
}

func newFakeBox(state appliance.State) *fakeBox {
	return &fakeBox{state: state, events: make(chan appliance.Event, 64), calls: make(chan string, 64)}
}

func (b *fakeBox) Subscribe(int) (<-chan appliance.Event, func()) { return b.events, func() {} }

func (b *fakeBox) State() appliance.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

func (b *fakeBox) setState(s appliance.State) {
	b.mu.Lock()
	b.state = s
	b.mu.Unlock()
	b.events <- appliance.Event{Kind: "state", State: s}
}

func (b *fakeBox) send(kind string) {
	b.events <- appliance.Event{Kind: kind, State: b.State()}
}

func (b *fakeBox) OpenPairing(d time.Duration) error {
	b.mu.Lock()
	b.pairing = true
	b.mu.Unlock()
	b.calls <- "open " + d.String()
	b.setState(appliance.StatePairing)
	return nil
}

func (b *fakeBox) ClosePairing() {
	b.mu.Lock()
	b.pairing = false
	b.mu.Unlock()
	b.calls <- "close"
	b.setState(appliance.StateReady)
}

func (b *fakeBox) PairingOpen() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pairing
}

func (b *fakeBox) look() {
	if b.sim != nil {
		b.mu.Lock()
		b.seen = append(b.seen, b.sim.LED(LEDStatus).Description)
		b.mu.Unlock()
	}
}

func (b *fakeBox) Shutdown(reason string) {
	b.look()
	b.calls <- "shutdown: " + reason
	b.setState(appliance.StateShuttingDown)
}

func (b *fakeBox) CloseGuests() int {
	b.calls <- "close guests"
	return 0
}

func (b *fakeBox) FactoryReset() error {
	b.look()
	b.calls <- "factory reset"
	return b.resetErr
}

// nextCall returns the next action the panel asked of the box.
func (b *fakeBox) nextCall(t *testing.T) string {
	t.Helper()
	select {
	case c := <-b.calls:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("the panel asked the box for nothing")
		return ""
	}
}

func (b *fakeBox) noCalls(t *testing.T) {
	t.Helper()
	select {
	case c := <-b.calls:
		t.Fatalf("unexpected %q", c)
	default:
	}
}

func testLog(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// panelRig is a panel on a simulated board with a fake clock.
type panelRig struct {
	t     *testing.T
	box   *fakeBox
	clock *fakeClock
	sim   *Sim
	panel *Panel
}

func newRig(t *testing.T, state appliance.State) *panelRig {
	t.Helper()
	r := &panelRig{t: t, box: newFakeBox(state), clock: newFakeClock()}
	r.panel = NewSimPanel(r.box, Options{Log: testLog(t), Clock: r.clock, PairingWindow: 2 * time.Minute})
	r.sim = r.panel.Sim()
	r.box.sim = r.sim
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.panel.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(10 * time.Second):
			t.Error("the panel did not stop")
		}
		for _, l := range r.sim.LEDs() {
			if l.Lit {
				t.Errorf("%s lit after the panel stopped", l.Name)
			}
		}
	})
	r.waitLED(LEDStatus, statusPattern(state))
	return r
}

// waitLED waits until LED name shows want.
func (r *panelRig) waitLED(name string, want Pattern) {
	r.t.Helper()
	waitLED(r.t, r.sim, name, want)
}

func waitLED(t *testing.T, sim *Sim, name string, want Pattern) {
	t.Helper()
	guard := time.After(10 * time.Second)
	for {
		changed := sim.Changed()
		got := sim.LED(name)
		if got.Pattern.Equal(want) {
			return
		}
		select {
		case <-changed:
		case <-guard:
			t.Fatalf("%s, want %s", got.Description, want)
		}
	}
}

// press holds button for d on the fake clock and lets it go; the press
// is reported (to the panel) by the time press returns.
func (r *panelRig) press(button string, d time.Duration) {
	r.sim.Hold(button)
	r.clock.Advance(d)
	r.sim.Release(button)
	r.clock.Advance(time.Second)
}

func TestPanelShowsTheBox(t *testing.T) {
	r := newRig(t, appliance.StateBooting)
	if d := r.sim.LED(LEDStatus).Description; d != "status: slow blink (booting)" {
		t.Fatalf("status %q", d)
	}
	for _, st := range []appliance.State{appliance.StateReady, appliance.StateDegraded, appliance.StatePairing, appliance.StateReady} {
		r.box.setState(st)
		r.waitLED(LEDStatus, statusPattern(st))
	}
	if d := r.sim.LED(LEDStatus).Description; d != "status: on (ready)" {
		t.Fatalf("status %q", d)
	}
	// Every event carries the state: a dropped state event heals.
	r.box.events <- appliance.Event{Kind: "service.failed", State: appliance.StateDegraded}
	r.waitLED(LEDStatus, StatusDegraded)

	// A message flashes the activity LED once.
	r.waitLED(LEDActivity, ActivityIdle)
	r.box.send(KindMessageDelivered)
	r.waitLED(LEDActivity, ActivityFlash)
	if !r.sim.LED(LEDActivity).Lit {
		t.Fatal("activity LED dark during its flash")
	}
	r.clock.Advance(ActivityFlash.Period())
	r.waitLED(LEDActivity, ActivityIdle)

	// The WAN LED follows federation.
	r.waitLED(LEDWAN, WANOff)
	for _, c := range []struct {
		kind string
		want Pattern
	}{
		{KindFederationRetrying, WANRetrying},
		{KindFederationConnected, WANConnected},
		{KindFederationDisabled, WANOff},
	} {
		r.box.send(c.kind)
		r.waitLED(LEDWAN, c.want)
	}
	r.box.noCalls(t)
}

func TestPanelButtonATogglesPairing(t *testing.T) {
	r := newRig(t, appliance.StateReady)
	r.press(ButtonA, 200*ms)
	if c := r.box.nextCall(t); c != "open 2m0s" {
		t.Fatalf("first press: %q", c)
	}
	r.waitLED(LEDStatus, StatusPairing)
	if d := r.sim.LED(LEDStatus).Description; d != "status: double blink (pairing)" {
		t.Fatalf("status %q", d)
	}
	// A bouncy press is one press: it closes the window, nothing more.
	r.sim.Hold(ButtonA)
	r.clock.Advance(3 * ms)
	r.sim.Release(ButtonA)
	r.clock.Advance(3 * ms)
	r.sim.Hold(ButtonA)
	r.clock.Advance(300 * ms)
	r.sim.Release(ButtonA)
	r.clock.Advance(4 * ms)
	r.sim.Hold(ButtonA)
	r.clock.Advance(4 * ms)
	r.sim.Release(ButtonA)
	r.clock.Advance(time.Second)
	if c := r.box.nextCall(t); c != "close" {
		t.Fatalf("second press: %q", c)
	}
	r.waitLED(LEDStatus, StatusReady)
	r.press(ButtonA, 100*ms)
	if c := r.box.nextCall(t); c != "open 2m0s" {
		t.Fatalf("third press: %q (a bounce counted as a press?)", c)
	}
}

func TestPanelButtonAHeldShutsDown(t *testing.T) {
	r := newRig(t, appliance.StateReady)
	r.sim.Hold(ButtonA)
	r.clock.Advance(5*time.Second + 30*ms)           // debounce + 5 s
	if c := r.box.nextCall(t); c != "close guests" { // at 2 s, on the way
		t.Fatalf("call %q", c)
	}
	if c := r.box.nextCall(t); c != "shutdown: button A held 5s" {
		t.Fatalf("call %q", c)
	}
	r.waitLED(LEDStatus, StatusShuttingDown)
	if r.box.seen[0] != "status: long on, short dips (shutting down)" {
		t.Fatalf("when Shutdown was called the status LED showed %q", r.box.seen[0])
	}
	// Letting go, and the last events of the box, change nothing.
	r.sim.Release(ButtonA)
	r.clock.Advance(time.Second)
	r.box.send(KindMessageDelivered)
	r.box.events <- appliance.Event{Kind: "service.ready", State: appliance.StateReady}
	r.box.send(KindMessageDelivered)
	r.clock.Advance(time.Second)
	r.waitLED(LEDStatus, StatusShuttingDown)
	r.box.noCalls(t)
}

func TestPanelButtonAHeld2sClosesGuests(t *testing.T) {
	r := newRig(t, appliance.StateReady)
	r.sim.Hold(ButtonA)
	r.clock.Advance(2*time.Second + 30*ms) // debounce + 2 s
	if c := r.box.nextCall(t); c != "close guests" {
		t.Fatalf("call %q", c)
	}
	// Let go before 5 s: no shutdown, no pairing (the release of a hold
	// is not a short press), the box stays ready.
	r.sim.Release(ButtonA)
	r.clock.Advance(5 * time.Second)
	r.waitLED(LEDStatus, StatusReady)
	r.box.noCalls(t)
	// A short press still toggles pairing.
	r.press(ButtonA, 200*ms)
	if c := r.box.nextCall(t); c != "open 2m0s" {
		t.Fatalf("short press after the hold: %q", c)
	}
}

// startReset holds B for 15 s and lets it go once every LED flickers.
func (r *panelRig) startReset() {
	r.t.Helper()
	r.sim.Hold(ButtonB)
	r.clock.Advance(15*time.Second + 30*ms)
	for _, led := range []string{LEDStatus, LEDActivity, LEDWAN} {
		r.waitLED(led, FactoryResetConfirm)
	}
	if d := r.sim.LED(LEDStatus).Description; !strings.Contains(d, "factory reset? press B again") {
		r.t.Fatalf("status %q", d)
	}
	r.sim.Release(ButtonB)
	r.clock.Advance(100 * ms)
}

func TestPanelFactoryResetConfirmed(t *testing.T) {
	r := newRig(t, appliance.StatePairing) // "at any time"
	r.startReset()
	r.box.noCalls(t) // a long hold alone erases nothing
	r.press(ButtonB, 200*ms)
	if c := r.box.nextCall(t); c != "factory reset" {
		t.Fatalf("call %q", c)
	}
	r.waitLED(LEDStatus, StatusShuttingDown)
	r.waitLED(LEDActivity, ActivityIdle)
}

func TestPanelFactoryResetRefused(t *testing.T) {
	r := newRig(t, appliance.StateReady)

	// Nothing within 10 s: nothing happens, the LEDs show the box again.
	r.startReset()
	r.clock.Advance(10 * time.Second)
	r.waitLED(LEDStatus, StatusReady)
	r.waitLED(LEDActivity, ActivityIdle)
	r.waitLED(LEDWAN, WANOff)
	// A press of B now is just a press.
	r.press(ButtonB, 200*ms)

	// Button A cancels, and does nothing else.
	r.startReset()
	r.press(ButtonA, 200*ms)
	r.waitLED(LEDStatus, StatusReady)
	r.press(ButtonB, 200*ms)

	// A long press of B while asked is no confirmation either.
	r.startReset()
	r.sim.Hold(ButtonB)
	r.clock.Advance(9 * time.Second)
	r.sim.Release(ButtonB)
	r.clock.Advance(2 * time.Second)
	r.waitLED(LEDStatus, StatusReady)

	// The panel took every press above in order; the first thing it
	// asked of the box is this pairing press.
	r.press(ButtonA, 200*ms)
	if c := r.box.nextCall(t); c != "open 2m0s" {
		t.Fatalf("call %q: a refused reset did something", c)
	}
}

func TestPanelFactoryResetFails(t *testing.T) {
	r := newRig(t, appliance.StateReady)
	r.box.resetErr = errors.New("disk full")
	r.startReset()
	r.press(ButtonB, 200*ms)
	if c := r.box.nextCall(t); c != "factory reset" {
		t.Fatalf("call %q", c)
	}
	r.waitLED(LEDStatus, StatusReady)
}

func TestNewBackends(t *testing.T) {
	cfg := appliance.Defaults("testhost").HW
	box := newFakeBox(appliance.StateReady)
	cfg.Backend = "sim"
	p, err := New(cfg, box, Options{})
	if err != nil || p.Backend() != "sim" || p.Sim() == nil {
		t.Fatalf("sim: %v %v", p, err)
	}
	cfg.Backend = "gpoi"
	if _, err := New(cfg, box, Options{}); err == nil || !strings.Contains(err.Error(), "hw.backend") {
		t.Fatalf("a wrong backend: %v", err)
	}
	for _, dev := range []string{"/dev/gpiochip0", "/dev/gpiomem", "/sys/class/gpio"} {
		if _, err := os.Stat(dev); err == nil {
			t.Skipf("this machine has GPIO (%s): the tests do not touch real pins", dev)
		}
	}
	cfg.Backend = "auto"
	p, err = New(cfg, box, Options{Log: testLog(t)})
	if err != nil {
		t.Fatalf("auto: %v", err)
	}
	t.Logf("auto chose %s", p.Backend())
	if p.Backend() == "sim" {
		cfg.Backend = "gpio"
		if _, err := New(cfg, box, Options{}); err == nil {
			t.Fatal("gpio without GPIO: no error")
		}
	}
}

// The simulated panel on the real clock, as `chatbox` runs it on a
// laptop: Press holds the button for real.
func TestSimPressRealClock(t *testing.T) {
	box := newFakeBox(appliance.StateReady)
	p := NewSimPanel(box, Options{Log: testLog(t)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	waitLED(t, p.Sim(), LEDStatus, StatusReady)
	p.Sim().Press(ButtonA, 300*ms)
	if c := box.nextCall(t); c != "open 0s" {
		t.Fatalf("call %q", c)
	}
	waitLED(t, p.Sim(), LEDStatus, StatusPairing)
	if got := strings.Join(p.Describe(), "; "); got != "status: double blink (pairing); activity: off (idle); wan: off (federation off)" {
		t.Fatalf("LEDs: %s", got)
	}
	st := p.State()
	want := appliance.PanelState{Backend: "sim", LEDs: []appliance.LED{
		{Name: "status", Pattern: "double blink", Meaning: "pairing", Blinks: true, Lit: st.LEDs[0].Lit},
		{Name: "activity", Pattern: "off", Meaning: "idle"},
		{Name: "wan", Pattern: "off", Meaning: "federation off"}}}
	if !reflect.DeepEqual(st, want) {
		t.Fatalf("State: %+v, want %+v", st, want)
	}
}

// The panel's name for a delivered message is the chat core's.
func TestKindMessageDelivered(t *testing.T) {
	if KindMessageDelivered != string(chat.EventMessage) {
		t.Fatalf("%q is not the core's %q", KindMessageDelivered, chat.EventMessage)
	}
}
