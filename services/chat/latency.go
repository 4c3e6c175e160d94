package chat

import (
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

func (h *latencyHistogram) observe(d time.Duration) {
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sum.Add(int64(d))
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
	if m == nil || m.Time.IsZero() {
		return
	}
	c.DeliveredAt(m, c.now())
}

// DeliveryClock is the time Delivered takes for now: a door that writes
// many messages at once reads it once, for DeliveredAt.
func (c *Core) DeliveryClock() time.Time { return c.now() }

// DeliveredAt is Delivered for a write made at at (a DeliveryClock time).
func (c *Core) DeliveredAt(m *Message, at time.Time) {
	if m == nil || m.Time.IsZero() {
		return
	}
	c.latency.observe(max(at.Sub(m.Time), 0))
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
