package hw

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// PressKind is how long a button was held.
type PressKind int

// Press kinds. A short press is reported when the button is released
// before Long; a long and a very long press are reported while the button
// is still held, the moment it has been held that long (so the LEDs can
// answer at once), and its release is then not reported.
const (
	ShortPress PressKind = iota + 1
	HoldPress            // held ButtonTiming.Hold (2 s): button A closes guest access
	LongPress
	VeryLongPress
)

func (k PressKind) String() string {
	switch k {
	case ShortPress:
		return "short press"
	case HoldPress:
		return "hold"
	case LongPress:
		return "long press"
	case VeryLongPress:
		return "very long press"
	}
	return fmt.Sprintf("PressKind(%d)", int(k))
}

// Press is one classified press of a button.
type Press struct {
	Button string
	Kind   PressKind
	Held   time.Duration // how long the button was held (so far, for long presses)
	At     time.Time     // when the press was classified
}

// ButtonTiming is how presses are told apart.
type ButtonTiming struct {
	// Debounce is how long a level must hold before it counts: the bounces
	// of a mechanical contact are shorter.
	Debounce time.Duration
	Long     time.Duration // held this long: a long press
	VeryLong time.Duration // held this long: a very long press
	// Hold, shorter than Long, is reported as a HoldPress; 0: never.
	Hold time.Duration
}

// DefaultButtonTiming suits a tactile switch: 30 ms, 5 s, 15 s.
func DefaultButtonTiming() ButtonTiming {
	return ButtonTiming{Debounce: 30 * time.Millisecond, Long: 5 * time.Second, VeryLong: 15 * time.Second}
}

// ignoredHold marks a hold that reports nothing, not even its release: a
// button found pressed when the panel started.
const ignoredHold PressKind = -1

// tracker debounces the levels it is told about and classifies presses.
// It is driven by edge (from whatever reads the pin) and by its own
// timers on the clock; it has no goroutine.
type tracker struct {
	name   string
	clock  Clock
	timing ButtonTiming
	emit   func(Press)

	mu      sync.Mutex
	raw     bool // last level seen: pressed?
	stable  bool // debounced level
	downAt  time.Time
	fired   PressKind // the longest press reported during this hold
	gen     uint64    // ends the debounce timers of an earlier level
	press   uint64    // ends the hold timers of an earlier press
	settle  Timer
	holds   []Timer
	stopped bool
}

func newTracker(name string, clock Clock, timing ButtonTiming, emit func(Press)) *tracker {
	return &tracker{name: name, clock: clock, timing: timing, emit: emit}
}

// start sets the level found when reading begins. A button already
// pressed then is ignored until it has been released.
func (t *tracker) start(pressed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.raw, t.stable = pressed, pressed
	if pressed {
		t.downAt = t.clock.Now()
		t.fired = ignoredHold
	}
}

// edge tells the tracker the pin's level now. A level that differs from
// the last one counts once it has held for the debounce time.
func (t *tracker) edge(pressed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped || pressed == t.raw {
		return
	}
	t.raw = pressed
	if t.settle != nil {
		t.settle.Stop()
	}
	t.gen++
	gen := t.gen
	t.settle = t.clock.AfterFunc(t.timing.Debounce, func() { t.settled(gen) })
}

// settled runs when the level has held for the debounce time.
func (t *tracker) settled(gen uint64) {
	t.mu.Lock()
	if gen != t.gen || t.stopped {
		t.mu.Unlock()
		return
	}
	t.settle = nil
	var out []Press
	if t.raw != t.stable {
		t.stable = t.raw
		now := t.clock.Now()
		t.stopHolds()
		if t.stable {
			t.downAt, t.fired = now, 0
			t.press++
			t.armHold(t.press, HoldPress, t.timing.Hold)
			t.armHold(t.press, LongPress, t.timing.Long)
			t.armHold(t.press, VeryLongPress, t.timing.VeryLong)
		} else if t.fired == 0 {
			out = append(out, Press{Button: t.name, Kind: ShortPress, Held: now.Sub(t.downAt), At: now})
		}
	}
	t.mu.Unlock()
	for _, p := range out {
		t.emit(p)
	}
}

// armHold times the report of kind while the button stays held. t.mu is
// held.
func (t *tracker) armHold(press uint64, kind PressKind, after time.Duration) {
	if after <= 0 {
		return
	}
	t.holds = append(t.holds, t.clock.AfterFunc(after, func() { t.held(press, kind) }))
}

// held runs when press has lasted long enough to be a press of kind.
// Bounces while held do not end the hold: only a settled release does.
func (t *tracker) held(press uint64, kind PressKind) {
	t.mu.Lock()
	if t.stopped || !t.stable || press != t.press || t.fired == ignoredHold || t.fired >= kind {
		t.mu.Unlock()
		return
	}
	t.fired = kind
	now := t.clock.Now()
	p := Press{Button: t.name, Kind: kind, Held: now.Sub(t.downAt), At: now}
	t.mu.Unlock()
	t.emit(p)
}

func (t *tracker) stopHolds() {
	for _, h := range t.holds {
		h.Stop()
	}
	t.holds = t.holds[:0]
}

func (t *tracker) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	if t.settle != nil {
		t.settle.Stop()
	}
	t.stopHolds()
}

// How a button's pin is read.
const (
	// edgeWait bounds each wait for an edge, so that a closed button
	// notices, and a missed edge is caught by reading the level.
	edgeWait = 500 * time.Millisecond
	// pollEvery is the reading rate for pins without edge detection:
	// 50 Hz, well above a finger's and below a CPU's notice.
	pollEvery = 20 * time.Millisecond
)

// Button reads one push button on a GPIO pin in its own goroutine. It
// asks the pin for edges (both ways) and waits for them with
// WaitForEdge; a driver that cannot detect edges is polled at 50 Hz
// instead (Mode says which). Every level read goes to a tracker, which
// debounces and classifies presses on the clock.
type Button struct {
	name      string
	pin       gpio.PinIn
	activeLow bool
	mode      string
	tr        *tracker
	log       *slog.Logger

	startOnce sync.Once
	stopOnce  sync.Once
	stopCh    chan struct{}
	done      chan struct{}
}

// NewButton configures pin as the input of button name: pulled up if
// activeLow (pressing connects it to ground), down otherwise. Presses go
// to emit, from the clock's or the reader's goroutine: emit must not
// block. Reading begins with Start.
func NewButton(name string, pin gpio.PinIn, activeLow bool, timing ButtonTiming, clock Clock, log *slog.Logger, emit func(Press)) (*Button, error) {
	if clock == nil {
		clock = RealClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pull := gpio.PullDown
	if activeLow {
		pull = gpio.PullUp
	}
	b := &Button{name: name, pin: pin, activeLow: activeLow, mode: "edges", log: log,
		tr: newTracker(name, clock, timing, emit), stopCh: make(chan struct{}), done: make(chan struct{})}
	if err := pin.In(pull, gpio.BothEdges); err != nil {
		if err2 := pin.In(pull, gpio.NoEdge); err2 != nil {
			return nil, fmt.Errorf("button %s on %s: %w", name, pin, err2)
		}
		b.mode = "polling"
		log.Info("button pin has no edge detection: polling it at 50 Hz", "button", name, "pin", pin.Name(), "err", err)
	}
	return b, nil
}

// Mode is "edges" or "polling".
func (b *Button) Mode() string { return b.mode }

func (b *Button) pressed() bool { return (b.pin.Read() == gpio.Low) == b.activeLow }

// Start begins reading the pin. A button held down at this moment is
// ignored until released (a stuck button, or a wrong
// hw.button_active_low, must not shut the box down at every start).
func (b *Button) Start() {
	b.startOnce.Do(func() {
		held := b.pressed()
		if held {
			b.log.Warn("button is pressed at start: ignored until released (check its wiring and hw.button_active_low)", "button", b.name)
		}
		b.tr.start(held)
		go b.read()
	})
}

func (b *Button) read() {
	defer close(b.done)
	var tick *time.Ticker
	if b.mode == "polling" {
		tick = time.NewTicker(pollEvery)
		defer tick.Stop()
	}
	for {
		select {
		case <-b.stopCh:
			return
		default:
		}
		if tick != nil {
			select {
			case <-b.stopCh:
				return
			case <-tick.C:
			}
		} else {
			b.pin.WaitForEdge(edgeWait)
		}
		// After an edge, and after a timeout too: the level is the
		// truth, whatever edges were merged or missed.
		b.tr.edge(b.pressed())
	}
}

// Stop ends reading and the tracker's timers; no press is reported after
// it returns.
func (b *Button) Stop() {
	b.stopOnce.Do(func() {
		close(b.stopCh)
		b.tr.stop()
		b.startOnce.Do(func() { close(b.done) }) // never started
		// Halt interrupts a WaitForEdge on drivers that can; others time
		// out within edgeWait.
		b.pin.Halt()
		<-b.done
	})
}
