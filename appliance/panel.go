package appliance

import "sync"

// LED is one front-panel LED as the box's observers (the web admin) see
// it: the pattern it plays, what that says, and whether it is lit now.
type LED struct {
	Name    string // "status", "activity", "wan"
	Pattern string // how it looks: "double blink"
	Meaning string // what it says: "pairing"
	Blinks  bool   // the pattern repeats (it is not a steady level)
	Lit     bool
}

// PanelState is the front panel as it is now.
type PanelState struct {
	Backend string // "gpio" or "sim"
	LEDs    []LED
}

// panelView holds the function that reads the running panel: the panel
// (hw) imports this package, so it registers itself (SetPanel).
type panelView struct {
	mu   sync.Mutex
	read func() PanelState
}

// SetPanel tells the box how to read its front panel (hw.Panel.State);
// nil forgets it.
func (b *Box) SetPanel(read func() PanelState) {
	b.panel.mu.Lock()
	b.panel.read = read
	b.panel.mu.Unlock()
}

// Panel is the front panel now; ok is false when no panel was set.
func (b *Box) Panel() (PanelState, bool) {
	b.panel.mu.Lock()
	read := b.panel.read
	b.panel.mu.Unlock()
	if read == nil {
		return PanelState{}, false
	}
	return read(), true
}
