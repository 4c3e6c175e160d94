package appliance

import (
	"context"
	"time"
)

// eventSweep deletes messages older than event.history every `every`
// while the event is on (event mode, issue 11), so what guests said does
// not outlive the time the owner chose.
func (b *Box) eventSweep(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := b.core.PruneHistory(ctx, b.cfg.Event.History); err != nil && ctx.Err() == nil {
			b.log.Error("event history sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// CloseGuests disconnects every guest on both doors and refuses new ones
// until the web admin re-opens guest access (the front panel's button A
// held 2 s). It returns how many guest sessions it ended.
func (b *Box) CloseGuests() int {
	return b.core.CloseGuests("the box's owner closed guest access")
}
