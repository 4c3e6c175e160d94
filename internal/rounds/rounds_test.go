package rounds

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitLimit bounds every wait of these tests (a hang detector, not a
// timing assertion: what is waited for takes microseconds).
const waitLimit = 10 * time.Second

// flushLog records the Flush calls of logTasks, in the order they ran.
type flushLog struct {
	mu      sync.Mutex
	ids     []int
	flushed chan int // one send per Flush (buffered large enough)
	active  atomic.Int32
	overlap atomic.Bool // two Flushes of one shard ran at once
}

func newFlushLog(n int) *flushLog { return &flushLog{flushed: make(chan int, n)} }

type logTask struct {
	id  int
	log *flushLog
}

func (t *logTask) Flush() {
	if t.log.active.Add(1) > 1 {
		t.log.overlap.Store(true)
	}
	t.log.mu.Lock()
	t.log.ids = append(t.log.ids, t.id)
	t.log.mu.Unlock()
	t.log.active.Add(-1)
	t.log.flushed <- t.id
}

func (l *flushLog) waitN(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(waitLimit)
	for i := range n {
		select {
		case <-l.flushed:
		case <-timeout:
			t.Fatalf("only %d of %d Flushes ran", i, n)
		}
	}
}

func (l *flushLog) got() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ids)
}

// gateTask blocks in Flush until its gate is closed, after saying it
// started.
type gateTask struct {
	started chan struct{}
	gate    chan struct{}
	calls   atomic.Int32
}

func newGateTask() *gateTask {
	return &gateTask{started: make(chan struct{}, 16), gate: make(chan struct{})}
}

func (g *gateTask) Flush() {
	g.calls.Add(1)
	g.started <- struct{}{}
	<-g.gate
}

func waitChan(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(waitLimit):
		t.Fatalf("no %s", what)
	}
}

// shardRunning reports whether shard i has a goroutine.
func (r *Rounds) shardRunning(i int) bool {
	s := &r.shards[i]
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

// waitIdle waits until shard i's goroutine has ended.
func waitIdle(t *testing.T, r *Rounds, i int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for r.shardRunning(i) {
		if time.Now().After(deadline) {
			t.Fatalf("shard %d still running with nothing pending", i)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFlushOncePerAddInOrder: every Add makes exactly one Flush, in the
// order of the Adds, one at a time, including tasks added while a round
// is running (they go to the next round, after it).
func TestFlushOncePerAddInOrder(t *testing.T) {
	r := New(1, 0)
	log := newFlushLog(1000)
	g := newGateTask()
	r.Add(0, g) // holds the first round
	waitChan(t, g.started, "first Flush")
	var want []int
	for i := range 500 {
		r.Add(0, &logTask{id: i, log: log})
		want = append(want, i)
	}
	if n := len(log.got()); n != 0 {
		t.Fatalf("%d tasks added during a round were flushed before it ended", n)
	}
	close(g.gate)
	log.waitN(t, 500)
	// A task is added again once its Flush has run.
	again := &logTask{id: 1000, log: log}
	for range 3 {
		r.Add(0, again)
		want = append(want, 1000)
		log.waitN(t, 1)
	}
	if got := log.got(); !slices.Equal(got, want) {
		t.Fatalf("Flush order %v…, want %v…", got[:min(len(got), 20)], want[:20])
	}
	if g.calls.Load() != 1 {
		t.Fatalf("gate task flushed %d times, added once", g.calls.Load())
	}
	if log.overlap.Load() {
		t.Fatal("two Flushes of one shard ran at once")
	}
	waitIdle(t, r, 0)
	select {
	case id := <-log.flushed:
		t.Fatalf("an extra Flush of task %d", id)
	default:
	}
}

// TestShardRunsOnlyWhilePending: a shard's goroutine ends once nothing is
// pending (keeping no list), and the next Add starts one again.
func TestShardRunsOnlyWhilePending(t *testing.T) {
	r := New(2, 0)
	if r.shardRunning(0) || r.shardRunning(1) {
		t.Fatal("a new Rounds runs goroutines")
	}
	log := newFlushLog(10)
	for round := range 3 {
		r.Add(1, &logTask{id: round, log: log})
		log.waitN(t, 1)
		waitIdle(t, r, 1)
		s := &r.shards[1]
		s.mu.Lock()
		pending, spare := len(s.pending), s.spare
		s.mu.Unlock()
		if pending != 0 || spare != nil {
			t.Fatalf("idle shard keeps %d pending, spare %v", pending, spare)
		}
		if r.shardRunning(0) {
			t.Fatal("shard 0 started with nothing added to it")
		}
	}
	if got := log.got(); !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("flushed %v", got)
	}
}

// TestShardsIndependent: a shard whose Flush is slow does not hold up
// another shard's tasks.
func TestShardsIndependent(t *testing.T) {
	r := New(2, 0)
	g := newGateTask()
	defer close(g.gate)
	r.Add(0, g)
	waitChan(t, g.started, "shard 0's Flush")
	log := newFlushLog(10)
	r.Add(1, &logTask{id: 7, log: log})
	log.waitN(t, 1) // would time out if shard 1 waited for shard 0
	// Shard indexes wrap: 3 is shard 1.
	r.Add(3, &logTask{id: 8, log: log})
	log.waitN(t, 1)
	if got := log.got(); !slices.Equal(got, []int{7, 8}) {
		t.Fatalf("flushed %v", got)
	}
}

// TestShardRoundRobin: Shard hands out shards in turn; New makes at
// least one.
func TestShardRoundRobin(t *testing.T) {
	r := New(3, 0)
	var got []int
	for range 7 {
		got = append(got, r.Shard())
	}
	if want := []int{0, 1, 2, 0, 1, 2, 0}; !slices.Equal(got, want) {
		t.Fatalf("Shard() gave %v, want %v", got, want)
	}
	for _, n := range []int{0, -4} {
		r := New(n, 0)
		if len(r.shards) != 1 || r.Shard() != 0 || r.Shard() != 0 {
			t.Fatalf("New(%d) has %d shards", n, len(r.shards))
		}
		log := newFlushLog(1)
		r.Add(5, &logTask{log: log})
		log.waitN(t, 1)
	}
}

// selfAdder adds itself again from its own Flush until it has been
// flushed want times, as a connection that is sent more while written.
type selfAdder struct {
	r     *Rounds
	shard int
	n     atomic.Int32
	want  int32
	done  chan struct{}
}

func (a *selfAdder) Flush() {
	switch n := a.n.Add(1); {
	case n < a.want:
		a.r.Add(a.shard, a)
	case n == a.want:
		close(a.done)
	}
}

// TestConcurrentAddsWithCoalesce: many tasks, added from many goroutines
// and re-added from their own Flush, over shards that coalesce; each is
// flushed exactly as many times as it was added, and every shard ends
// idle.
func TestConcurrentAddsWithCoalesce(t *testing.T) {
	r := New(4, 100*time.Microsecond)
	var tasks []*selfAdder
	var wg sync.WaitGroup
	for range 64 {
		a := &selfAdder{r: r, shard: r.Shard(), want: 20, done: make(chan struct{})}
		tasks = append(tasks, a)
		wg.Go(func() { r.Add(a.shard, a) })
	}
	wg.Wait()
	for _, a := range tasks {
		waitChan(t, a.done, "all Flushes of a task")
	}
	for i := range 4 {
		waitIdle(t, r, i)
	}
	for i, a := range tasks {
		if n := a.n.Load(); n != a.want {
			t.Fatalf("task %d flushed %d times, added %d", i, n, a.want)
		}
	}
}
