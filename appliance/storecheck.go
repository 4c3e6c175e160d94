package appliance

import (
	"context"
	"time"
)

// storeCheckDelay is how long after the box is ready it reads its whole
// database once to look for damage (store.QuickCheck): Open does not, so
// that a large history does not delay the start, and the first minute's
// clients do not wait behind the read.
const storeCheckDelay = time.Minute

// checkStore runs the store's quick check once, after delay, unless ctx
// ends first; damage is logged as an error with what to do.
func (b *Box) checkStore(ctx context.Context, delay time.Duration) {
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	start := time.Now()
	if err := b.store.QuickCheck(ctx); err != nil {
		if ctx.Err() == nil {
			b.log.Error("database check", "err", err)
		}
		return
	}
	b.log.Info("database check passed", "took", time.Since(start).Round(time.Millisecond))
}
