package chat

import (
	"math"
	"sync/atomic"
	"time"
)

// Delivery latency: how long a live message takes from the core accepting
// it (Message.Time, set as Send stores it) to a door writing it to a
// client's connection. Doors call Delivered after the write; the web
// admin shows the histogram on /metrics. Messages read from history or
// the offline queue are not counted: only DelMessage deliveries are.

// latencyBounds are the histogram's upper bounds (Prometheus "le").
var latencyBounds = [...]time.Duration{
	500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second, 5 * time.Second,
}

// latencyHistogram counts observations per bucket with atomics: a door's
// writer pays two atomic adds per message, never a lock.
type latencyHistogram struct {
	buckets [len(latencyBounds) + 1]atomic.Uint64 // the last: above every bound
	sum     atomic.Int64                          // nanoseconds
}

// LatencyHistogram is the delivery latency so far.
type LatencyHistogram struct {
	Bounds     []time.Duration // upper bounds, ascending
	Cumulative []uint64        // deliveries at most Bounds[i] (Prometheus buckets)
	Count      uint64          // every delivery (the "+Inf" bucket)
	Sum        time.Duration
}

// Delivered records that a door wrote m, delivered live, to a
// connection: the delivery latency histogram counts now - m.Time. It is
// cheap (no lock) and safe from any goroutine.
func (c *Core) Delivered(m *Message) {
	t := c.Tally()
	t.Add(m)
	c.Record(&t)
}

// DeliveryTally counts the messages of one write (or one batch of
// deliveries) for the latency histogram, which Record then adds in one
// go: two atomic adds per message on counters every door's writers share
// made their cache line travel between processors for every delivery.
type DeliveryTally struct {
	atSec  int64 // when the tally's messages were written, Unix seconds
	atNsec int   // and nanoseconds (since)
	counts [len(latencyBounds) + 1]uint32
	sum    int64
	any    bool
}

// Tally starts a tally of messages written now.
func (c *Core) Tally() DeliveryTally {
	at := c.now()
	return DeliveryTally{atSec: at.Unix(), atNsec: at.Nanosecond()}
}

// since is the tally's time minus t, at least 0: at.Sub(t) without
// Sub's slow path (a message's time carries no monotonic reading; with
// the round trip it checks for overflow, Sub was 3 % of a busy room's
// CPU). Times centuries apart read as the longest duration.
func (t *DeliveryTally) since(m time.Time) time.Duration {
	s := t.atSec - m.Unix()
	switch {
	case s < 0:
		return 0
	case s > 1<<32:
		return time.Duration(math.MaxInt64)
	}
	return max(time.Duration(s)*time.Second+time.Duration(t.atNsec-m.Nanosecond()), 0)
}

// Add counts m (a live message: one with a Time) as written at the
// tally's time.
func (t *DeliveryTally) Add(m *Message) {
	if m == nil || m.Time.IsZero() {
		return
	}
	d := t.since(m.Time)
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	t.counts[i]++
	t.sum += int64(d)
	t.any = true
}

// Record adds a tally to the histogram.
func (c *Core) Record(t *DeliveryTally) {
	if !t.any {
		return
	}
	for i, n := range t.counts {
		if n > 0 {
			c.latency.buckets[i].Add(uint64(n))
		}
	}
	c.latency.sum.Add(t.sum)
}

// DeliveryLatency is the histogram of delivery latencies since the core
// started (see Delivered).
func (c *Core) DeliveryLatency() LatencyHistogram {
	h := LatencyHistogram{Bounds: latencyBounds[:], Cumulative: make([]uint64, len(latencyBounds))}
	var n uint64
	for i := range len(c.latency.buckets) {
		n += c.latency.buckets[i].Load()
		if i < len(latencyBounds) {
			h.Cumulative[i] = n
		}
	}
	h.Count = n
	h.Sum = time.Duration(c.latency.sum.Load())
	return h
}
