// Package memtrim gives the Go heap's free memory back to the operating
// system once the box goes quiet after a burst of work.
//
// After a burst (a hundred clients joining a room, a history import) the
// Go runtime keeps the pages the burst freed: up to the heap goal, twice
// the live heap at GOGC=100, returned only slowly by its background
// scavenger — and, once the work stops, no collection runs at all, so
// the burst's garbage keeps its pages too. On a 512 MB board shared with
// other daemons an idle chat box should hold about its live data, not
// its last peak. A Trimmer samples runtime/metrics every Interval; once
// the heap has allocated less than QuietBytes in each of two samples in
// a row (the box is idle) while more than MinFree bytes could be given
// back (garbage since the last collection, plus free pages not yet
// released) or were allocated since the last trim, it collects twice
// (the second frees what sync.Pools kept through the first) and gives
// every free page back to the system (debug.FreeOSMemory). The second
// test is there because the first reads low after a burst that ended
// just after a collection: what that collection found live (pooled
// buffers, a finished login's state) died since, unseen (200 XMPP
// joins: 0.5 MB read as spare, 1.7 MB given back). That happens once
// per burst: afterwards there is nothing to give back until the next one. During a
// burst it does nothing, so it costs no throughput; the peak is the
// runtime's as before.
//
// While the population (Population: the sessions and room memberships)
// grows fast — a join storm, a reconnect after a Wi-Fi outage — it sets
// GOGC to GrowthGCPercent (50), and back to the GOGC in effect two calm
// samples later: the collector does not move objects, so what lasts of a
// storm (each client's state) pins every page it was made on, and
// collecting more often keeps it on fewer pages.
//
// Left out: no memory limit (GOMEMLIMIT), and a GOGC of GrowthGCPercent
// or less, or off, is left alone: the owner's call (the Go environment
// variables apply).
package memtrim

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Defaults for a Trimmer's zero fields.
const (
	DefaultInterval   = 250 * time.Millisecond
	DefaultQuietBytes = 256 << 10
	DefaultMinFree    = 1 << 20
	// DefaultGrowthPopulation is the population's growth between two
	// samples (64 sessions a second at the default interval) that counts
	// as connecting fast.
	DefaultGrowthPopulation = 16
	DefaultGrowthGCPercent  = 50
)

// Sample is what a Trimmer looks at.
type Sample struct {
	Allocs uint64 // bytes allocated on the heap since the start
	// Spare is what a collection and a scavenge would give back: heap
	// objects beyond those live at the last collection (garbage, or
	// new), plus heap pages free and not yet returned to the system.
	Spare uint64
}

// freeAll collects twice and gives every free page back: sync.Pool
// keeps what was put in it through one collection (its victim cache),
// so the buffers the burst's connections lent each other (write queues,
// read buffers) are freed only by the second.
func freeAll() {
	runtime.GC()
	debug.FreeOSMemory()
}

// Trimmer returns free heap memory to the system when the process goes
// quiet. Its zero value uses the defaults; Run it in a goroutine.
type Trimmer struct {
	Interval   time.Duration
	QuietBytes uint64
	MinFree    uint64
	// Population, if set, counts what memory grows with (chatbox: the
	// sessions and the rooms' occupants); a growth by
	// GrowthPopulation (DefaultGrowthPopulation if 0) between samples
	// makes the Trimmer use GrowthGCPercent (DefaultGrowthGCPercent if
	// 0; negative: never).
	Population       func() int
	GrowthPopulation int
	GrowthGCPercent  int
	Log              *slog.Logger

	// Read, Free, GCPercent and SetGCPercent are the runtime's
	// (ReadSample, debug.FreeOSMemory, /gc/gogc:percent,
	// debug.SetGCPercent) unless a test sets them.
	Read         func() Sample
	Free         func()
	GCPercent    func() int
	SetGCPercent func(int) int

	last    Sample
	trimmed uint64 // Allocs at the last trim (or the first sample)
	pop     int    // Population at the last sample
	quiet   int    // samples in a row with less than QuietBytes allocated
	primed  bool
	tight   bool // GrowthGCPercent in effect
	base    int  // the GOGC in effect before
	calm    int  // samples in a row without fast growth, while tight
}

// gcPercent is the GOGC in effect (-1: off).
func (t *Trimmer) gcPercent() int {
	if t.GCPercent != nil {
		return t.GCPercent()
	}
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return -1 // unknown: left alone
	}
	if v := s[0].Value.Uint64(); v > 0 {
		return int(v)
	}
	return -1 // off reads as 0
}

func (t *Trimmer) setGCPercent(p int) int {
	if t.SetGCPercent != nil {
		return t.SetGCPercent(p)
	}
	return debug.SetGCPercent(p)
}

// pace tightens the GC target while sessions come fast, and restores it
// once they have not for two samples.
func (t *Trimmer) pace(growing bool) {
	pct := t.GrowthGCPercent
	if pct == 0 {
		pct = DefaultGrowthGCPercent
	}
	switch {
	case pct < 0:
	case growing && !t.tight:
		base := t.gcPercent()
		if base < 0 || base <= pct {
			return // already as tight, or off: the owner's
		}
		t.setGCPercent(pct)
		t.tight, t.base, t.calm = true, base, 0
		if t.Log != nil {
			t.Log.Debug("clients connecting fast: collecting more often", "gc_percent", pct, "was", base)
		}
	case growing:
		t.calm = 0
	case t.tight:
		if t.calm++; t.calm >= 2 {
			t.loosen()
		}
	}
}

// loosen restores the GC target pace changed.
func (t *Trimmer) loosen() {
	if t.tight {
		t.setGCPercent(t.base)
		t.tight = false
		if t.Log != nil {
			t.Log.Debug("clients no longer connecting fast: usual collection pace", "gc_percent", t.base)
		}
	}
}

// ReadSample reads the runtime's heap metrics.
func ReadSample() Sample {
	s := []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	metrics.Read(s)
	var v [4]uint64
	for i := range s {
		if s[i].Value.Kind() == metrics.KindUint64 {
			v[i] = s[i].Value.Uint64()
		}
	}
	out := Sample{Allocs: v[0], Spare: v[1]}
	if v[2] > v[3] {
		out.Spare += v[2] - v[3]
	}
	return out
}

// Run samples every Interval until ctx ends.
func (t *Trimmer) Run(ctx context.Context) {
	every := t.Interval
	if every <= 0 {
		every = DefaultInterval
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	defer t.loosen()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.Step()
		}
	}
}

// Step takes one sample and trims if the process has been quiet for two
// samples with enough free memory, or enough allocated since the last
// trim; it reports whether it trimmed.
func (t *Trimmer) Step() bool {
	read, free := t.Read, t.Free
	if read == nil {
		read = ReadSample
	}
	if free == nil {
		free = freeAll
	}
	quietBytes, minFree := t.QuietBytes, t.MinFree
	if quietBytes == 0 {
		quietBytes = DefaultQuietBytes
	}
	if minFree == 0 {
		minFree = DefaultMinFree
	}
	s := read()
	if t.Population != nil {
		pop := t.Population()
		grow := t.GrowthPopulation
		if grow <= 0 {
			grow = DefaultGrowthPopulation
		}
		if t.primed {
			t.pace(pop-t.pop >= grow)
		}
		t.pop = pop
	}
	if !t.primed {
		t.last, t.trimmed, t.primed = s, s.Allocs, true
		return false
	}
	allocated := s.Allocs - t.last.Allocs
	t.last = s
	if allocated >= quietBytes {
		t.quiet = 0
		return false
	}
	t.quiet++
	if t.quiet < 2 || s.Spare < minFree && s.Allocs-t.trimmed < minFree {
		return false
	}
	start := time.Now()
	free()
	after := read()
	t.last, t.trimmed = after, after.Allocs
	t.quiet = 0
	if t.Log != nil {
		t.Log.Debug("returned idle heap memory to the system",
			"spare_before_kb", s.Spare>>10, "spare_after_kb", after.Spare>>10, "took", time.Since(start).Round(time.Microsecond))
	}
	return true
}
