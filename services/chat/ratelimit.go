package chat

import (
	"sync"
	"time"
)

// limiter is a set of token buckets keyed by a string (an account, an
// address). A bucket holds up to burst tokens and refills at rate per
// second; a full bucket is forgotten when the map grows, so the map stays
// bounded by the keys that are actually busy.
type limiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// pruneAt is the map size past which full buckets are dropped.
const pruneAt = 4096

func newLimiter(rate, burst float64, now func() time.Time) *limiter {
	if burst < 1 {
		burst = 1
	}
	return &limiter{rate: rate, burst: burst, now: now, buckets: map[string]*bucket{}}
}

// refill brings b up to date; the caller holds l.mu.
func (l *limiter) refill(b *bucket, t time.Time) {
	if d := t.Sub(b.last).Seconds(); d > 0 {
		b.tokens = min(l.burst, b.tokens+d*l.rate)
	}
	b.last = t
}

func (l *limiter) get(key string, t time.Time) *bucket {
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= pruneAt {
			l.prune(t)
		}
		b = &bucket{tokens: l.burst, last: t}
		l.buckets[key] = b
		return b
	}
	l.refill(b, t)
	return b
}

func (l *limiter) prune(t time.Time) {
	for k, b := range l.buckets {
		l.refill(b, t)
		if b.tokens >= l.burst {
			delete(l.buckets, k)
		}
	}
}

// Allow takes one token for key if there is one.
func (l *limiter) Allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.get(key, l.now())
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Blocked reports whether key has no token left, without taking one.
func (l *limiter) Blocked(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.get(key, l.now()).tokens < 1
}

// Take removes one token for key, if any is left.
func (l *limiter) Take(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.get(key, l.now()); b.tokens >= 1 {
		b.tokens--
	}
}
