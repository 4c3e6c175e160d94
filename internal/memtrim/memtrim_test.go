package memtrim

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// TestStepOnlyWhenQuietWithFreeMemory drives Step with made-up samples:
// it trims once quiet, with enough free or enough allocated since the
// last trim.
func TestStepOnlyWhenQuietWithFreeMemory(t *testing.T) {
	var cur Sample
	frees := 0
	tr := &Trimmer{
		QuietBytes: 1000, MinFree: 5000,
		Read: func() Sample { return cur },
		Free: func() { frees++; cur.Spare = 0 },
	}
	steps := []struct {
		alloc, free uint64
		want        bool
	}{
		{0, 0, false},         // primes
		{50_000, 9000, false}, // busy
		{500, 9000, false},    // quiet once
		{500, 9000, true},     // quiet twice, enough free: trim
		{0, 0, false},         // nothing free
		{100, 0, false},       // quiet, nothing free, little allocated
		{100, 0, false},       // still: 200 bytes since the trim
		{90_000, 1000, false}, // a burst, its garbage unseen by the last collection
		{10, 1000, false},     // quiet once
		{2000, 1000, false},   // busy again: the count starts over
		{10, 1000, false},     // quiet once
		{10, 1000, true},      // quiet twice: little reads as free, but 92 kB came since the trim
		{10, 4000, false},     // quiet once
		{10, 4000, false},     // quiet twice, below MinFree either way
		{10, 6000, true},      // free over MinFree
	}
	for i, s := range steps {
		cur.Allocs += s.alloc
		cur.Spare = s.free
		if got := tr.Step(); got != s.want {
			t.Fatalf("step %d (%+v): trimmed %v, want %v", i, s, got, s.want)
		}
	}
	if frees != 3 {
		t.Fatalf("Free called %d times, want 3", frees)
	}
}

// TestTrimReturnsRealMemory frees a real burst's garbage: once the
// process is quiet, the heap's free memory goes back to the system.
func TestTrimReturnsRealMemory(t *testing.T) {
	const minFree = 1 << 20
	burst := make([][]byte, 0, 64)
	for range 64 {
		burst = append(burst, make([]byte, 1<<20))
	}
	runtime.KeepAlive(burst)
	burst = nil
	// No collection since: the burst is garbage the runtime keeps.
	before := ReadSample()
	if before.Spare < minFree {
		t.Fatalf("a 64 MB burst left %d bytes spare", before.Spare)
	}
	tr := &Trimmer{MinFree: minFree, QuietBytes: 4 << 20}
	trimmed := false
	for range 5 {
		if tr.Step() {
			trimmed = true
			break
		}
	}
	if !trimmed {
		t.Fatalf("no trim in 5 quiet steps with %d bytes free", before.Spare)
	}
	if after := ReadSample(); after.Spare >= minFree {
		t.Fatalf("after the trim %d bytes are still free (before: %d)", after.Spare, before.Spare)
	}
}

// TestRunEndsWithContext: Run returns once its context ends.
func TestRunEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	steps := make(chan struct{}, 100)
	tr := &Trimmer{Interval: time.Millisecond, Read: func() Sample {
		select {
		case steps <- struct{}{}:
		default:
		}
		return Sample{}
	}}
	done := make(chan struct{})
	go func() { tr.Run(ctx); close(done) }()
	<-steps
	<-steps
	cancel()
	<-done
}

// TestPaceWhileConnecting: while the population grows fast the GC
// target is GrowthGCPercent; two samples without such growth bring the
// one in effect before back; a target already as low, or off, is left.
func TestPaceWhileConnecting(t *testing.T) {
	pop, pct := 0, 100
	var sets []int
	tr := &Trimmer{
		Read:         func() Sample { return Sample{} },
		Free:         func() {},
		Population:   func() int { return pop },
		GCPercent:    func() int { return pct },
		SetGCPercent: func(p int) int { old := pct; pct = p; sets = append(sets, p); return old },
	}
	steps := []struct {
		grow int
		want int
	}{
		{0, 100},  // primes
		{10, 100}, // slow
		{40, 50},  // fast: tighter
		{100, 50}, // still
		{5, 50},   // calm once
		{30, 50},  // fast again: the count starts over
		{0, 50},   // calm once
		{0, 100},  // calm twice: back
		{0, 100},
	}
	for i, s := range steps {
		pop += s.grow
		tr.Step()
		if pct != s.want {
			t.Fatalf("step %d (+%d sessions): GC percent %d, want %d (calls %v)", i, s.grow, pct, s.want, sets)
		}
	}
	if len(sets) != 2 {
		t.Errorf("SetGCPercent calls %v, want [50 100]", sets)
	}
	for _, own := range []int{30, -1} {
		pct, sets, pop = own, nil, 0
		tr := &Trimmer{Read: func() Sample { return Sample{} }, Free: func() {}, Population: func() int { return pop },
			GCPercent:    func() int { return pct },
			SetGCPercent: func(p int) int { old := pct; pct = p; sets = append(sets, p); return old }}
		for range 4 {
			pop += 100
			tr.Step()
			if pct != own || len(sets) != 0 {
				t.Fatalf("GOGC %d: now %d, SetGCPercent calls %v; want it left alone", own, pct, sets)
			}
		}
	}
}

// TestGCPercentReadsRuntime: the GOGC in effect is read without being
// changed (-1 when off).
func TestGCPercentReadsRuntime(t *testing.T) {
	old := debug.SetGCPercent(73)
	defer debug.SetGCPercent(old)
	if got := (&Trimmer{}).gcPercent(); got != 73 {
		t.Fatalf("gcPercent %d, want 73", got)
	}
	debug.SetGCPercent(-1)
	if got := (&Trimmer{}).gcPercent(); got != -1 {
		t.Fatalf("gcPercent with GC off %d, want -1", got)
	}
}
