// Package hw is the box's front panel: three LEDs (status, activity, WAN)
// and two buttons (A, B) on GPIO pins through periph.io, or simulated on
// machines without GPIO.
//
// The panel observes the appliance (its state and events) and turns what
// it sees into blink patterns; a button press becomes an appliance action
// (open the pairing window, shut down safely, factory reset). It knows
// nothing of chat. The layers are apart the periph way: patterns are data
// (pattern.go), a Player drives any gpio.PinOut, a Button reads any
// gpio.PinIn; only gpio.go knows the board, and sim.go stands in for it.
//
// Buttons:
//   - A, short press: open the pairing window (registration open for
//     registration.pairing_window); again: close it.
//   - A, held 2 s: close guest access at once (event mode): every guest
//     is disconnected and new guests are refused until the web admin
//     re-opens it; the activity LED flashes to show it was done. Holding
//     on to 5 s goes on to the shutdown.
//   - A, held 5 s: shut down safely; the status LED shows
//     StatusShuttingDown first.
//   - B, held 15 s (in any state): every LED flickers
//     (FactoryResetConfirm); a short press of B within 10 s confirms and
//     the box erases its data (Box.FactoryReset). Pressing A, or nothing,
//     cancels: nothing is erased. Nothing else on the panel erases
//     anything.
package hw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"chatbox/appliance"

	"periph.io/x/conn/v3/gpio"
)

// Box is what the panel needs of the appliance: its state and events to
// show, and the actions the buttons take. *appliance.Box implements it.
type Box interface {
	Subscribe(buffer int) (<-chan appliance.Event, func())
	State() appliance.State
	// OpenPairing opens the registration window for d (d <= 0: the
	// box's registration.pairing_window).
	OpenPairing(d time.Duration) error
	ClosePairing()
	PairingOpen() bool
	// Shutdown asks the running box to stop.
	Shutdown(reason string)
	// FactoryReset erases the box's data (now or at its next start) and
	// stops it.
	FactoryReset() error
	// CloseGuests disconnects every guest and refuses new ones (event
	// mode); it returns how many sessions it ended.
	CloseGuests() int
}

// LED and button names.
const (
	LEDStatus   = "status"
	LEDActivity = "activity"
	LEDWAN      = "wan"
	ButtonA     = "A"
	ButtonB     = "B"
)

// Event kinds the panel shows, besides the box state every event carries.
// KindMessageDelivered is the chat core's "message delivered" event as the
// box passes it on; the federation kinds are what the XMPP server-to-server
// door is to publish through the box (the WAN LED is dark until it does).
const (
	KindMessageDelivered       = "message.delivered"
	KindFederationConnected    = "federation.connected"    // at least one server-to-server link is up
	KindFederationRetrying     = "federation.retrying"     // links down, reconnecting with back-off
	KindFederationDisconnected = "federation.disconnected" // enabled, no link and none wanted now
	KindFederationDisabled     = "federation.disabled"
)

// Pins are the panel's LEDs and buttons; a nil pin is not connected.
type Pins struct {
	Status, Activity, WAN gpio.PinOut
	A, B                  gpio.PinIn
	LEDActiveLow          bool // an LED lights when its pin is low
	ButtonActiveLow       bool // a pressed button pulls its pin low
}

// Timing is the panel's timing; zero fields take the defaults.
type Timing struct {
	Debounce      time.Duration // 30 ms
	GuestsHold    time.Duration // A held this long closes guest access: 2 s
	LongPress     time.Duration // A held this long shuts down: 5 s
	VeryLongPress time.Duration // B held this long asks for a factory reset: 15 s
	ResetConfirm  time.Duration // the time to confirm a factory reset: 10 s
}

func (t Timing) withDefaults() Timing {
	d := DefaultButtonTiming()
	if t.Debounce <= 0 {
		t.Debounce = d.Debounce
	}
	if t.LongPress <= 0 {
		t.LongPress = d.Long
	}
	if t.GuestsHold <= 0 || t.GuestsHold >= t.LongPress {
		t.GuestsHold = min(2*time.Second, t.LongPress/2)
	}
	if t.VeryLongPress <= 0 {
		t.VeryLongPress = d.VeryLong
	}
	if t.ResetConfirm <= 0 {
		t.ResetConfirm = 10 * time.Second
	}
	return t
}

// Options set up a Panel.
type Options struct {
	Log   *slog.Logger
	Clock Clock // nil: the real clock
	// PairingWindow is how long button A opens registration; 0 lets the
	// box decide (its registration.pairing_window).
	PairingWindow time.Duration
	Timing        Timing
}

// Panel shows the box on the LEDs and turns button presses into box
// actions. Make one with New (from the settings) or NewPanel (from pins),
// then Run it.
type Panel struct {
	box      Box
	log      *slog.Logger
	clock    Clock
	timing   Timing
	window   time.Duration
	backend  string
	sim      *Sim
	status   *Player
	wan      *Player
	activity *Flasher
	leds     []*Player
	buttons  []*Button

	presses  chan Press
	timeouts chan uint64
	done     chan struct{}
	runOnce  sync.Once

	// Owned by Run's goroutine.
	state      appliance.State
	wanPat     Pattern
	stopping   bool // shutdown or reset under way: the status LED says so whatever comes
	confirming bool
	confirmAt  time.Time
	confirmGen uint64
}

// NewPanel builds a panel for box on pins: LEDs dark, buttons configured
// as inputs (pulled up if active-low). Nothing shows or reads until Run.
func NewPanel(box Box, pins Pins, o Options) (*Panel, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	p := &Panel{box: box, log: o.Log, clock: o.Clock, timing: o.Timing.withDefaults(), window: o.PairingWindow,
		backend: "gpio", presses: make(chan Press, 16), timeouts: make(chan uint64, 1), done: make(chan struct{}),
		wanPat: WANOff}
	p.status = NewPlayer(LEDStatus, pins.Status, pins.LEDActiveLow, p.clock)
	act := NewPlayer(LEDActivity, pins.Activity, pins.LEDActiveLow, p.clock)
	p.wan = NewPlayer(LEDWAN, pins.WAN, pins.LEDActiveLow, p.clock)
	p.leds = []*Player{p.status, act, p.wan}
	for _, l := range p.leds {
		l.Play(Off)
		if err := l.Err(); err != nil {
			return nil, fmt.Errorf("%s LED: %w", l.Name(), err)
		}
	}
	p.activity = NewFlasher(act, ActivityFlash, ActivityIdle)
	bt := ButtonTiming{Debounce: p.timing.Debounce, Long: p.timing.LongPress, VeryLong: p.timing.VeryLongPress, Hold: p.timing.GuestsHold}
	for _, b := range []struct {
		name string
		pin  gpio.PinIn
	}{{ButtonA, pins.A}, {ButtonB, pins.B}} {
		if b.pin == nil {
			continue
		}
		btn, err := NewButton(b.name, b.pin, pins.ButtonActiveLow, bt, p.clock, p.log, p.pressed)
		if err != nil {
			return nil, err
		}
		p.buttons = append(p.buttons, btn)
	}
	return p, nil
}

// NewSimPanel builds a panel for box on a new simulated panel (Sim).
func NewSimPanel(box Box, o Options) *Panel {
	sim := NewSim(o.Clock, o.Log)
	p, err := NewPanel(box, sim.Pins(), o)
	if err != nil {
		panic("hw: simulated pins failed: " + err.Error()) // they cannot
	}
	p.backend, p.sim = "sim", sim
	return p
}

// New builds the panel the settings ask for: hw.backend "gpio" (the
// board's pins, or an error), "sim", or "auto" (GPIO if the board has the
// configured pins and they work, otherwise the simulated panel, with a log
// line saying why).
func New(cfg appliance.HWConfig, box Box, o Options) (*Panel, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	switch cfg.Backend {
	case "sim":
		o.Log.Info("front panel simulated (hw.backend = \"sim\")")
		return NewSimPanel(box, o), nil
	case "gpio", "auto", "":
	default:
		return nil, fmt.Errorf("hw.backend: must be \"auto\", \"gpio\" or \"sim\", got %q", cfg.Backend)
	}
	pins, err := OpenGPIO(cfg)
	var p *Panel
	if err == nil {
		p, err = NewPanel(box, pins, o)
	}
	switch {
	case err == nil:
		o.Log.Info("front panel on GPIO", "status_led", cfg.StatusLED, "activity_led", cfg.ActivityLED,
			"wan_led", cfg.WANLED, "button_a", cfg.ButtonA, "button_b", cfg.ButtonB)
		return p, nil
	case cfg.Backend == "gpio":
		return nil, fmt.Errorf("front panel (hw.backend = \"gpio\"): %w", err)
	case errors.Is(err, ErrNoGPIO):
		o.Log.Info("no GPIO on this machine: front panel simulated", "reason", err)
	default:
		o.Log.Warn("GPIO unusable: front panel simulated (set hw.backend = \"gpio\" to make this an error)", "err", err)
	}
	return NewSimPanel(box, o), nil
}

// Backend is "gpio" or "sim".
func (p *Panel) Backend() string { return p.backend }

// Sim is the simulated panel, or nil on GPIO.
func (p *Panel) Sim() *Sim { return p.sim }

// Describe is what every LED shows: "status: on (ready)" and so on.
func (p *Panel) Describe() []string {
	out := make([]string, len(p.leds))
	for i, l := range p.leds {
		out[i] = l.Describe()
	}
	return out
}

// State is the panel as it is now, for the web admin (register it with
// Box.SetPanel): the backend and each LED's pattern and level.
func (p *Panel) State() appliance.PanelState {
	st := appliance.PanelState{Backend: p.backend}
	for _, l := range p.leds {
		pat := l.Pattern()
		st.LEDs = append(st.LEDs, appliance.LED{Name: l.Name(), Pattern: pat.Name, Meaning: pat.Meaning,
			Blinks: pat.Repeat, Lit: l.Lit()})
	}
	return st
}

// pressed takes a button's press (from its tracker's goroutine) to Run.
func (p *Panel) pressed(pr Press) {
	select {
	case p.presses <- pr:
	case <-p.done:
	default:
		p.log.Warn("button press dropped: the panel is busy", "button", pr.Button, "press", pr.Kind)
	}
}

// Run shows the box on the LEDs and acts on the buttons until ctx is
// done; then it stops reading the buttons and darkens every LED. Run it
// once, from when the box is open until it has stopped (after Box.Run
// returns), so the shutdown shows to the end.
func (p *Panel) Run(ctx context.Context) error {
	first := false
	p.runOnce.Do(func() { first = true })
	if !first {
		return errors.New("hw: panel already ran")
	}
	events, unsubscribe := p.box.Subscribe(64)
	defer unsubscribe()
	for _, b := range p.buttons {
		b.Start()
	}
	defer func() {
		close(p.done)
		for _, b := range p.buttons {
			b.Stop()
		}
		p.activity.Show(Off)
		for _, l := range p.leds {
			l.stop()
		}
	}()
	p.state = p.box.State()
	p.show()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			p.event(ev)
		case pr := <-p.presses:
			p.press(pr)
		case gen := <-p.timeouts:
			if p.confirming && gen == p.confirmGen {
				p.endConfirm("no second press of button B within " + p.timing.ResetConfirm.String())
			}
		}
	}
}

// statusPattern is the status LED's pattern for state s.
func statusPattern(s appliance.State) Pattern {
	switch s {
	case appliance.StateReady:
		return StatusReady
	case appliance.StateDegraded:
		return StatusDegraded
	case appliance.StatePairing:
		return StatusPairing
	case appliance.StateShuttingDown:
		return StatusShuttingDown
	}
	return StatusBooting
}

// show puts the box's state on the LEDs, unless a factory reset is being
// confirmed (that pattern wins) or the box is stopping.
func (p *Panel) show() {
	if p.confirming {
		return
	}
	if p.stopping {
		p.status.Play(StatusShuttingDown)
	} else {
		p.status.Play(statusPattern(p.state))
	}
	p.wan.Play(p.wanPat)
}

func (p *Panel) event(ev appliance.Event) {
	if ev.State != "" {
		p.state = ev.State // every event carries the state: a dropped state event heals
	}
	switch ev.Kind {
	case KindMessageDelivered:
		p.activity.Flash()
	case KindFederationConnected:
		p.wanPat = WANConnected
	case KindFederationRetrying:
		p.wanPat = WANRetrying
	case KindFederationDisconnected, KindFederationDisabled:
		p.wanPat = WANOff
	}
	p.show()
}

func (p *Panel) press(pr Press) {
	p.log.Debug("button", "button", pr.Button, "press", pr.Kind.String(), "held", pr.Held.Round(time.Millisecond))
	if p.confirming {
		switch {
		case pr.Button == ButtonB && pr.Kind == ShortPress:
			if pr.At.Sub(p.confirmAt) > p.timing.ResetConfirm {
				p.endConfirm("button B pressed too late")
				return
			}
			p.confirmReset()
		case pr.Button == ButtonA:
			p.endConfirm("cancelled with button A")
		}
		return
	}
	switch {
	case pr.Button == ButtonA && pr.Kind == ShortPress:
		p.togglePairing()
	case pr.Button == ButtonA && pr.Kind == HoldPress:
		n := p.box.CloseGuests()
		p.activity.Flash()
		p.log.Info("button A held: guest access closed", "held", p.timing.GuestsHold, "guests_disconnected", n)
	case pr.Button == ButtonA && pr.Kind == LongPress:
		p.stopping = true
		p.show() // the shutdown pattern first, then the box stops
		p.log.Info("button A held: shutting down")
		p.box.Shutdown("button A held " + p.timing.LongPress.String())
	case pr.Button == ButtonB && pr.Kind == VeryLongPress:
		p.startConfirm()
	}
}

func (p *Panel) togglePairing() {
	if p.box.PairingOpen() {
		p.box.ClosePairing()
		p.log.Info("button A: pairing window closed")
		return
	}
	if err := p.box.OpenPairing(p.window); err != nil {
		p.log.Warn("button A: cannot open the pairing window", "err", err)
		return
	}
	p.log.Info("button A: pairing window open")
}

func (p *Panel) startConfirm() {
	p.confirming = true
	p.confirmAt = p.clock.Now()
	p.confirmGen++
	gen := p.confirmGen
	p.clock.AfterFunc(p.timing.ResetConfirm, func() {
		select {
		case p.timeouts <- gen:
		case <-p.done:
		}
	})
	p.log.Warn("button B held: press B again within " + p.timing.ResetConfirm.String() + " to erase everything on the box (press A or wait to cancel)")
	p.status.Play(FactoryResetConfirm)
	p.activity.Show(FactoryResetConfirm)
	p.wan.Play(FactoryResetConfirm)
}

// endConfirm is the refusal path: nothing is erased, the LEDs show the box
// again.
func (p *Panel) endConfirm(why string) {
	p.confirming = false
	p.confirmGen++
	p.log.Info("factory reset not confirmed: nothing erased", "why", why)
	p.activity.Clear()
	p.show()
}

func (p *Panel) confirmReset() {
	p.confirming = false
	p.confirmGen++
	p.stopping = true
	p.log.Warn("factory reset confirmed with button B")
	p.activity.Clear()
	p.show()
	if err := p.box.FactoryReset(); err != nil {
		p.stopping = false
		p.log.Error("factory reset failed", "err", err)
		p.show()
	}
}
