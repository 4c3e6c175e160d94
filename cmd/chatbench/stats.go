package main

import (
	"math"
	"math/bits"
	"slices"
	"sync/atomic"
	"time"
)

// histogram counts durations in microseconds, log-linear: exact below
// 128 µs, then 64 buckets per power of two (a quantile is within 1/64,
// about 1.6 %, of the true value). It is safe for concurrent Record and
// costs one atomic add per sample, so every delivery of a large run is
// counted without keeping the samples.
type histogram struct {
	counts   [histBuckets]atomic.Int64
	n        atomic.Int64
	min, max atomic.Int64 // µs; min is valid once n > 0
}

const (
	subBits     = 6
	histBuckets = (64 - subBits) << subBits
)

func newHistogram() *histogram {
	h := &histogram{}
	h.min.Store(math.MaxInt64)
	return h
}

// bucketOf returns the bucket of v µs.
func bucketOf(v uint64) int {
	if v < 1<<(subBits+1) {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1 // v>>e is in [64, 128)
	return (e+1)<<subBits + int(v>>e) - 1<<subBits
}

// bucketRange returns the smallest value of bucket b and its width.
func bucketRange(b int) (low, width uint64) {
	if b < 1<<(subBits+1) {
		return uint64(b), 1
	}
	e := b>>subBits - 1
	m := uint64(b&(1<<subBits-1) + 1<<subBits)
	return m << e, 1 << e
}

// recordMicros counts samples of v µs (each ≥ 0): one atomic add per
// sample for its bucket, one each for the count, the least and the
// largest.
func (h *histogram) recordMicros(vs []int64) {
	lo, hi := vs[0], vs[0]
	for _, v := range vs {
		h.counts[bucketOf(uint64(v))].Add(1)
		lo, hi = min(lo, v), max(hi, v)
	}
	h.n.Add(int64(len(vs)))
	for cur := h.min.Load(); lo < cur && !h.min.CompareAndSwap(cur, lo); cur = h.min.Load() {
	}
	for cur := h.max.Load(); hi > cur && !h.max.CompareAndSwap(cur, hi); cur = h.max.Load() {
	}
}

// Record counts one duration (negative ones count as 0).
func (h *histogram) Record(d time.Duration) {
	v := max(d.Microseconds(), 0)
	h.counts[bucketOf(uint64(v))].Add(1)
	h.n.Add(1)
	for cur := h.min.Load(); v < cur && !h.min.CompareAndSwap(cur, v); cur = h.min.Load() {
	}
	for cur := h.max.Load(); v > cur && !h.max.CompareAndSwap(cur, v); cur = h.max.Load() {
	}
}

// Count is the number of samples.
func (h *histogram) Count() int64 { return h.n.Load() }

// Max is the largest sample (0 with none).
func (h *histogram) Max() time.Duration {
	if h.n.Load() == 0 {
		return 0
	}
	return time.Duration(h.max.Load()) * time.Microsecond
}

// Quantile returns the q-quantile (0 < q <= 1) by nearest rank: the
// middle of the bucket holding it, kept within the smallest and largest
// sample. 0 with no samples. Call it once recording has stopped.
func (h *histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := max(int64(math.Ceil(q*float64(n))), 1)
	var seen int64
	for b := range h.counts {
		seen += h.counts[b].Load()
		if seen >= rank {
			low, width := bucketRange(b)
			v := int64(low + width/2)
			v = min(max(v, h.min.Load()), h.max.Load())
			return time.Duration(v) * time.Microsecond
		}
	}
	return h.Max()
}

// percentile returns the p-th percentile (0 < p <= 100) of durations by
// nearest rank; ds need not be sorted (it is sorted in place). 0 if empty.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(math.Ceil(p/100*float64(len(ds)))) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// perSecond is count/elapsed, 0 when elapsed is not positive.
func perSecond(count int64, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return float64(count) / elapsed.Seconds()
}

// bitset records which messages a receiver has seen (duplicates).
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

// set marks i and reports whether it was already marked.
func (b bitset) set(i int) bool {
	w, m := i/64, uint64(1)<<(i%64)
	was := b[w]&m != 0
	b[w] |= m
	return was
}
