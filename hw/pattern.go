package hw

import (
	"slices"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// Step is one part of a blink pattern: the LED lit or dark for For. A
// step with For 0 holds its level for good (it ends the pattern there).
type Step struct {
	On  bool
	For time.Duration
}

// Pattern is a blink pattern as data: steps played in order, from the
// first again if Repeat. A pattern that does not repeat keeps the level of
// its last step once it has played.
type Pattern struct {
	Name    string // how it looks: "double blink"
	Meaning string // what it says: "pairing"
	Steps   []Step
	Repeat  bool
}

// String is how the pattern looks and what it says: "double blink
// (pairing)".
func (p Pattern) String() string {
	if p.Meaning == "" {
		return p.Name
	}
	return p.Name + " (" + p.Meaning + ")"
}

// Period is how long one round of the pattern lasts; 0 for a pattern
// that holds a level for good.
func (p Pattern) Period() time.Duration {
	var d time.Duration
	for _, s := range p.Steps {
		if s.For <= 0 {
			return 0
		}
		d += s.For
	}
	return d
}

// Equal reports whether p and q are the same pattern.
func (p Pattern) Equal(q Pattern) bool {
	return p.Name == q.Name && p.Meaning == q.Meaning && p.Repeat == q.Repeat && slices.Equal(p.Steps, q.Steps)
}

func solid(name, meaning string, on bool) Pattern {
	return Pattern{Name: name, Meaning: meaning, Steps: []Step{{On: on}}}
}

func blink(name, meaning string, on, off time.Duration) Pattern {
	return Pattern{Name: name, Meaning: meaning, Steps: []Step{{true, on}, {false, off}}, Repeat: true}
}

const ms = time.Millisecond

// The status LED's patterns, one per box state; every one is told apart
// from the others at a glance.
var (
	StatusBooting  = blink("slow blink", "booting", 500*ms, 500*ms)
	StatusReady    = solid("on", "ready", true)
	StatusDegraded = blink("fast blink", "degraded", 100*ms, 100*ms)
	StatusPairing  = Pattern{Name: "double blink", Meaning: "pairing", Repeat: true,
		Steps: []Step{{true, 120 * ms}, {false, 120 * ms}, {true, 120 * ms}, {false, 640 * ms}}}
	// StatusShuttingDown starts dark, so that someone holding button A
	// sees at once that the box took the press, then stays mostly lit:
	// unlike any other pattern.
	StatusShuttingDown = Pattern{Name: "long on, short dips", Meaning: "shutting down", Repeat: true,
		Steps: []Step{{false, 250 * ms}, {true, 1500 * ms}}}
)

// FactoryResetConfirm flickers every LED while the box waits for the
// second press of button B that confirms a factory reset.
var FactoryResetConfirm = blink("flicker", "factory reset? press B again to erase everything, A or nothing to cancel", 50*ms, 50*ms)

// The activity LED's patterns. ActivityFlash is one flash per delivered
// message; its dark tail makes flashes at most 4 a second (Flasher).
var (
	ActivityIdle  = solid("off", "idle", false)
	ActivityFlash = Pattern{Name: "flash", Meaning: "message delivered",
		Steps: []Step{{true, 60 * ms}, {false, 190 * ms}}}
)

// The WAN LED's patterns, following XMPP federation.
var (
	WANOff       = solid("off", "federation off", false)
	WANConnected = solid("on", "federation connected", true)
	WANRetrying  = blink("blink", "federation retrying", 250*ms, 250*ms)
)

// Off is a dark LED (the panel stopped).
var Off = solid("off", "", false)

// patternSink is what a pin may implement to learn what it shows (the
// simulated LEDs describe themselves with it).
type patternSink interface{ showing(Pattern) }

// Player plays patterns on one LED with timers (no goroutine of its own,
// no busy loop). Play replaces the pattern at any time. A nil pin plays
// to nothing (an LED not connected).
type Player struct {
	name    string
	pin     gpio.PinOut
	on, off gpio.Level
	clock   Clock

	mu     sync.Mutex
	pat    Pattern
	step   int
	lit    bool
	set    bool // the pin has been written once
	gen    uint64
	timer  Timer
	done   func()
	outErr error
}

// NewPlayer returns a player for the LED on pin (lit when the pin is high,
// or low if activeLow), dark until the first Play.
func NewPlayer(name string, pin gpio.PinOut, activeLow bool, clock Clock) *Player {
	if clock == nil {
		clock = RealClock{}
	}
	p := &Player{name: name, pin: pin, on: gpio.High, off: gpio.Low, clock: clock}
	if activeLow {
		p.on, p.off = gpio.Low, gpio.High
	}
	return p
}

// Name is the LED's name ("status").
func (p *Player) Name() string { return p.name }

// Play shows pat from its first step, unless pat is already showing.
func (p *Player) Play(pat Pattern) { p.play(pat, nil, false) }

// play shows pat; done is called (without the player's lock) when a
// pattern that does not repeat has played to its end, unless another
// pattern replaced it first. With restart the pattern starts over even if
// it is showing.
func (p *Player) play(pat Pattern, done func(), restart bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !restart && p.done == nil && done == nil && p.pat.Equal(pat) && p.gen > 0 {
		return
	}
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.gen++
	p.pat, p.step, p.done = pat, 0, done
	p.apply()
	// Told once its first step shows: a watcher of the simulated panel
	// that sees the new pattern sees its level too (told before, the
	// activity flash was once read dark under CI's load).
	if s, ok := p.pin.(patternSink); ok {
		s.showing(pat)
	}
}

// apply shows the current step and times the next one. p.mu is held.
func (p *Player) apply() {
	var s Step
	if len(p.pat.Steps) > 0 {
		s = p.pat.Steps[p.step]
	}
	p.write(s.On)
	if s.For <= 0 {
		return // held for good
	}
	gen := p.gen
	p.timer = p.clock.AfterFunc(s.For, func() { p.next(gen) })
}

// next moves to the following step, if the pattern playing is still the
// one that timed it.
func (p *Player) next(gen uint64) {
	p.mu.Lock()
	if gen != p.gen {
		p.mu.Unlock()
		return
	}
	p.timer = nil
	p.step++
	if p.step >= len(p.pat.Steps) {
		if !p.pat.Repeat {
			p.step = len(p.pat.Steps) - 1
			done := p.done
			p.done = nil
			p.mu.Unlock()
			if done != nil {
				done()
			}
			return
		}
		p.step = 0
	}
	p.apply()
	p.mu.Unlock()
}

func (p *Player) write(on bool) {
	if p.set && p.lit == on {
		return
	}
	p.lit, p.set = on, true
	if p.pin == nil {
		return
	}
	l := p.off
	if on {
		l = p.on
	}
	if err := p.pin.Out(l); err != nil && p.outErr == nil {
		p.outErr = err // the panel reports it (Err)
	}
}

// Pattern is the pattern showing.
func (p *Player) Pattern() Pattern {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pat
}

// Lit reports whether the LED is lit now.
func (p *Player) Lit() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lit
}

// Describe is the LED's name and pattern: "status: double blink (pairing)".
func (p *Player) Describe() string {
	return p.name + ": " + p.Pattern().String()
}

// Err is the first error writing the pin, if any.
func (p *Player) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.outErr
}

// stop ends the pattern and darkens the LED for good.
func (p *Player) stop() {
	p.play(Off, nil, false)
}

// Flasher flashes an LED once per event, coalescing events that come
// faster than the flash pattern's period: however many events arrive
// while a flash plays, at most one more flash follows it. It never
// queues more than that.
type Flasher struct {
	p     *Player
	flash Pattern
	idle  Pattern

	mu       sync.Mutex
	busy     bool
	pending  bool
	override bool
	gen      uint64
}

// NewFlasher flashes flash (a pattern that does not repeat; its period
// bounds the flash rate) on p, showing idle in between.
func NewFlasher(p *Player, flash, idle Pattern) *Flasher {
	f := &Flasher{p: p, flash: flash, idle: idle}
	p.Play(idle)
	return f
}

// Flash flashes the LED once, now or after the flash playing.
func (f *Flasher) Flash() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.override {
		return
	}
	if f.busy {
		f.pending = true
		return
	}
	f.start()
}

// start plays one flash. f.mu is held.
func (f *Flasher) start() {
	f.busy = true
	f.gen++
	gen := f.gen
	f.p.play(f.flash, func() { f.finished(gen) }, true)
}

func (f *Flasher) finished(gen uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if gen != f.gen {
		return
	}
	f.busy = false
	if f.pending {
		f.pending = false
		f.start()
		return
	}
	f.p.Play(f.idle)
}

// Show plays pat instead of flashes until Clear; flashes asked for
// meanwhile are dropped.
func (f *Flasher) Show(pat Pattern) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.override, f.busy, f.pending = true, false, false
	f.gen++
	f.p.Play(pat)
}

// Clear ends Show: the LED is idle and flashes again.
func (f *Flasher) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.override = false
	f.gen++
	f.p.Play(f.idle)
}
