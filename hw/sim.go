package hw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/pin"
)

// SimPin is a simulated GPIO pin (gpio.PinIO): an LED whose level and
// pattern can be read, or a button that can be driven. It detects edges
// both ways; WaitForEdge waits in real time, only to let its reader
// notice a stop.
//
// It is written for the simulated panel rather than taken from periph's
// gpiotest: a button press here returns only once the reader has taken
// the new level (so a test's fake clock starts the press where it
// should), and it needs no clock library.
type SimPin struct {
	name string
	num  int
	sim  *Sim

	mu      sync.Mutex
	level   gpio.Level
	pull    gpio.Pull
	edges   bool          // In asked for edge detection, and no Halt since
	notify  chan struct{} // a level change not yet taken by WaitForEdge
	entered chan struct{} // closed at each entry to WaitForEdge
	halt    chan struct{} // closed by Halt
	seq     uint64        // level changes made by Drive
	taken   uint64        // changes a WaitForEdge has returned for
	handled uint64        // changes the reader has handled (it waits again)
	pat     Pattern
	shown   bool
}

var _ gpio.PinIO = (*SimPin)(nil)

func newSimPin(name string, num int, sim *Sim, level gpio.Level) *SimPin {
	return &SimPin{name: name, num: num, sim: sim, level: level,
		notify: make(chan struct{}, 1), entered: make(chan struct{}), halt: make(chan struct{})}
}

// String implements conn.Resource.
func (p *SimPin) String() string { return fmt.Sprintf("%s(sim)", p.name) }

// Halt implements conn.Resource: it ends edge detection and any
// WaitForEdge.
func (p *SimPin) Halt() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.edges = false
	close(p.halt)
	p.halt = make(chan struct{})
	return nil
}

// Name implements pin.Pin.
func (p *SimPin) Name() string { return p.name }

// Number implements pin.Pin.
func (p *SimPin) Number() int { return p.num }

// Function implements pin.Pin.
func (p *SimPin) Function() string { return string(p.Func()) }

// Func implements pin.PinFunc.
func (p *SimPin) Func() pin.Func {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		return gpio.OUT
	}
	return gpio.IN
}

// In implements gpio.PinIn.
func (p *SimPin) In(pull gpio.Pull, edge gpio.Edge) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pull = pull
	p.edges = edge != gpio.NoEdge
	select {
	case <-p.notify:
	default:
	}
	p.taken, p.handled = p.seq, p.seq
	return nil
}

// Read implements gpio.PinIn.
func (p *SimPin) Read() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.level
}

// WaitForEdge implements gpio.PinIn. Entering it tells Drive that the
// reader handled every change it was given.
func (p *SimPin) WaitForEdge(timeout time.Duration) bool {
	p.mu.Lock()
	p.handled = p.taken
	close(p.entered)
	p.entered = make(chan struct{})
	notify, halt, edges := p.notify, p.halt, p.edges
	p.mu.Unlock()
	var expire <-chan time.Time
	if timeout >= 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expire = t.C
	}
	if !edges {
		notify = nil
	}
	select {
	case <-notify:
		p.mu.Lock()
		p.taken = p.seq
		p.mu.Unlock()
		return true
	case <-expire:
	case <-halt:
	}
	return false
}

// Pull implements gpio.PinIn.
func (p *SimPin) Pull() gpio.Pull {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pull
}

// DefaultPull implements gpio.PinIn.
func (p *SimPin) DefaultPull() gpio.Pull { return gpio.Float }

// Out implements gpio.PinOut.
func (p *SimPin) Out(l gpio.Level) error {
	p.mu.Lock()
	changed := p.level != l
	p.level = l
	p.mu.Unlock()
	if changed {
		p.sim.changed()
	}
	return nil
}

// PWM implements gpio.PinOut; the simulated LEDs have none.
func (p *SimPin) PWM(gpio.Duty, physic.Frequency) error {
	return errors.New("hw: simulated pins have no PWM")
}

// showing is told the pattern a Player shows on the pin.
func (p *SimPin) showing(pat Pattern) {
	p.mu.Lock()
	changed := !p.shown || !p.pat.Equal(pat)
	p.pat, p.shown = pat, true
	p.mu.Unlock()
	if changed {
		// The simulated panel is visible in the log: the status and WAN
		// LEDs at info, the activity flashes (one per message) at debug.
		level := slog.LevelInfo
		if p.name == "activity" {
			level = slog.LevelDebug
		}
		p.sim.log.Log(context.Background(), level, "panel led", "led", p.name, "shows", pat.String())
		p.sim.changed()
	}
}

// Drive sets the level, as a button or the wire would. If a reader waits
// for edges on the pin, Drive returns once it has taken the new level and
// is waiting again (or after 10 s of real time, if it never comes).
func (p *SimPin) Drive(l gpio.Level) {
	p.mu.Lock()
	if p.level == l {
		p.mu.Unlock()
		return
	}
	p.level = l
	p.seq++
	mine := p.seq
	select {
	case p.notify <- struct{}{}:
	default:
	}
	p.mu.Unlock()
	guard := time.NewTimer(10 * time.Second)
	defer guard.Stop()
	for {
		p.mu.Lock()
		if !p.edges || p.handled >= mine {
			p.mu.Unlock()
			return
		}
		entered, halt := p.entered, p.halt
		p.mu.Unlock()
		select {
		case <-entered:
		case <-halt:
			return
		case <-guard.C:
			p.sim.log.Warn("simulated button: nobody read the pin", "pin", p.name)
			return
		}
	}
}

// LEDState is a simulated LED as someone looking at the box sees it.
type LEDState struct {
	Name        string
	Lit         bool
	Pattern     Pattern
	Description string // "status: double blink (pairing)"
}

func (s LEDState) String() string {
	state := "dark"
	if s.Lit {
		state = "lit"
	}
	return s.Description + ", " + state + " now"
}

// Sim is the simulated front panel for machines without GPIO (laptops,
// CI): its LEDs can be looked at (LED, Changed) and its buttons pressed
// (Press, Hold, Release). LEDs are wired active-high, buttons active-low,
// as the defaults describe a real box. Pattern changes are logged at
// debug level.
type Sim struct {
	clock   Clock
	log     *slog.Logger
	leds    map[string]*SimPin
	buttons map[string]*SimPin

	mu      sync.Mutex
	changes chan struct{}
}

// NewSim returns a simulated panel: LEDs LEDStatus, LEDActivity and LEDWAN,
// buttons ButtonA and ButtonB. A nil clock is the real one.
func NewSim(clock Clock, log *slog.Logger) *Sim {
	if clock == nil {
		clock = RealClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sim{clock: clock, log: log, leds: map[string]*SimPin{}, buttons: map[string]*SimPin{}, changes: make(chan struct{})}
	for i, n := range []string{LEDStatus, LEDActivity, LEDWAN} {
		s.leds[n] = newSimPin(n, i+1, s, gpio.Low)
	}
	for i, n := range []string{ButtonA, ButtonB} {
		s.buttons[n] = newSimPin("button "+n, i+4, s, gpio.High) // pulled up, released
	}
	return s
}

// Pins are the simulated panel's pins, to build a Panel on.
func (s *Sim) Pins() Pins {
	return Pins{
		Status: s.leds[LEDStatus], Activity: s.leds[LEDActivity], WAN: s.leds[LEDWAN],
		A: s.buttons[ButtonA], B: s.buttons[ButtonB], ButtonActiveLow: true,
	}
}

func (s *Sim) changed() {
	s.mu.Lock()
	close(s.changes)
	s.changes = make(chan struct{})
	s.mu.Unlock()
}

// Changed returns a channel closed at the next change of an LED's level or
// pattern.
func (s *Sim) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changes
}

// LED is the state of the LED called name (LEDStatus, LEDActivity,
// LEDWAN).
func (s *Sim) LED(name string) LEDState {
	p, ok := s.leds[name]
	if !ok {
		return LEDState{Name: name, Description: name + ": no such LED"}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	desc := "not driven"
	if p.shown {
		desc = p.pat.String()
	}
	return LEDState{Name: name, Lit: p.level == gpio.High, Pattern: p.pat, Description: name + ": " + desc}
}

// LEDs are the states of every LED: status, activity, wan.
func (s *Sim) LEDs() []LEDState {
	return []LEDState{s.LED(LEDStatus), s.LED(LEDActivity), s.LED(LEDWAN)}
}

func (s *Sim) button(name string) *SimPin {
	p, ok := s.buttons[name]
	if !ok {
		panic("hw: no simulated button " + name)
	}
	return p
}

// Hold presses button name (ButtonA or ButtonB) and keeps it down.
func (s *Sim) Hold(name string) {
	s.log.Debug("button held", "button", name)
	s.button(name).Drive(gpio.Low)
}

// Release lets button name go.
func (s *Sim) Release(name string) {
	s.log.Debug("button released", "button", name)
	s.button(name).Drive(gpio.High)
}

// Press holds button name for d on the sim's clock, then releases it. A
// press shorter than the debounce time (30 ms) is a bounce, not a press;
// 5 s of button A is a shutdown, 15 s of button B asks for a factory
// reset.
func (s *Sim) Press(name string, d time.Duration) {
	s.Hold(name)
	sleep(s.clock, d)
	s.Release(name)
}
