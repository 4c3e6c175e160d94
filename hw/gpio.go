package hw

import (
	"errors"
	"fmt"

	"chatbox/appliance"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// ErrNoGPIO is OpenGPIO's error on a machine without GPIO pins.
var ErrNoGPIO = errors.New("no GPIO pins found")

// OpenGPIO loads the board's drivers (periph's host.Init) and looks up the
// pins cfg names (gpioreg.ByName: "GPIO17", or an alias such as "P1_11").
// It is the only code in hw that knows a board exists.
func OpenGPIO(cfg appliance.HWConfig) (Pins, error) {
	state, err := host.Init()
	if err != nil {
		return Pins{}, fmt.Errorf("%w: %v", ErrNoGPIO, err)
	}
	if len(gpioreg.All()) == 0 {
		var why []error
		for _, f := range state.Failed {
			why = append(why, errors.New(f.String()))
		}
		if len(why) > 0 {
			return Pins{}, fmt.Errorf("%w (%v)", ErrNoGPIO, errors.Join(why...))
		}
		return Pins{}, ErrNoGPIO
	}
	used := map[string]string{} // real pin name → setting
	var errs []error
	lookup := func(key, name string) gpio.PinIO {
		if name == "" {
			return nil
		}
		p := gpioreg.ByName(name)
		if p == nil {
			errs = append(errs, fmt.Errorf("hw.%s: this board has no pin %q", key, name))
			return nil
		}
		real := p
		if r, ok := p.(gpio.RealPin); ok {
			real = r.Real()
		}
		if other, ok := used[real.Name()]; ok {
			errs = append(errs, fmt.Errorf("hw.%s: pin %q is already used by hw.%s", key, name, other))
			return nil
		}
		used[real.Name()] = key
		return p
	}
	pins := Pins{LEDActiveLow: cfg.LEDActiveLow, ButtonActiveLow: cfg.ButtonActiveLow}
	// A nil gpio.PinIO converts to a nil PinOut or PinIn: not connected.
	pins.Status = lookup("status_led", cfg.StatusLED)
	pins.Activity = lookup("activity_led", cfg.ActivityLED)
	pins.WAN = lookup("wan_led", cfg.WANLED)
	pins.A = lookup("button_a", cfg.ButtonA)
	pins.B = lookup("button_b", cfg.ButtonB)
	if len(errs) > 0 {
		return Pins{}, errors.Join(errs...)
	}
	return pins, nil
}
