package chat_test

// Benchmarks of the core's hot paths over a real store in a temporary
// directory (WAL, synchronous=FULL: every message costs its share of an
// fsync, as on the box):
//
//   - BenchmarkRoomRouting: one message to a room of 1,000 sessions:
//     stored (group commit), then handed to every member's Sink under the
//     core's lock. The sinks only count (the doors' own per-member cost is
//     services/irc BenchmarkDeliveryTranslate and services/xmpp
//     BenchmarkStanzaWrite). Sequential: one sender, one fsync per
//     message; parallel: 10 senders sharing fsyncs. ns/delivery is the
//     time per message divided by the members.
//   - BenchmarkOfflineQueue: push, one direct message to an account with
//     no session (stored and queued, one commit); drain, a page of 50
//     queued messages read and acknowledged, as a door does on login.

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"chatbox/services/chat"
	"chatbox/services/store"
)

// countSink counts the messages delivered to one session.
type countSink struct{ n *atomic.Int64 }

func (s countSink) Deliver(d chat.Delivery) {
	if d.Kind == chat.DelMessage {
		s.n.Add(1)
	}
}

func benchCore(b *testing.B) *chat.Core {
	b.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, b.TempDir()+"/chat.db", nil)
	if err != nil {
		b.Fatal(err)
	}
	core, err := chat.New(chat.Options{Store: st, Iterations: 1, UsersMayCreateRooms: true,
		Limits: chat.Limits{MessagesPerSecond: 1e9, MessageBurst: 1 << 30, SessionsPerAccount: 1 << 20}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		core.Shutdown("benchmark over")
		if err := st.Close(); err != nil {
			b.Error(err)
		}
	})
	return core
}

func BenchmarkRoomRouting(b *testing.B) {
	const members = 1000
	ctx := context.Background()
	// One room for both sub-benchmarks: making 1,000 accounts costs 1,000
	// commits.
	core := benchCore(b)
	var got atomic.Int64
	var sess []*chat.Session
	for i := range members {
		name := fmt.Sprintf("u%04d", i)
		if err := core.CreateAccount(ctx, name, "password-"+name, false); err != nil {
			b.Fatal(err)
		}
		s, err := core.Open(ctx, chat.SessionInfo{Account: name, Door: "bench", Resource: "r", Addr: "127.0.0.1"}, countSink{&got})
		if err != nil {
			b.Fatalf("open session %s: %v", name, err)
		}
		if _, err := core.Join(ctx, s, "general", name, ""); err != nil {
			b.Fatalf("join %s: %v", name, err)
		}
		sess = append(sess, s)
	}
	for _, senders := range []int{1, 10} {
		b.Run(fmt.Sprintf("members=%d/senders=%d", members, senders), func(b *testing.B) {
			got.Store(0)
			var sent atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			if senders == 1 {
				for b.Loop() {
					if _, err := core.SendRoom(ctx, sess[0], "general", chat.KindNormal, "Are we still on for lunch at noon?", ""); err != nil {
						b.Fatal(err)
					}
					sent.Add(1)
				}
			} else {
				// RunParallel runs parallelism x GOMAXPROCS goroutines.
				b.SetParallelism(max(1, senders/runtime.GOMAXPROCS(0)))
				var next atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					s := sess[int(next.Add(1)-1)%members]
					for pb.Next() {
						if _, err := core.SendRoom(ctx, s, "general", chat.KindNormal, "Are we still on for lunch at noon?", ""); err != nil {
							b.Error(err)
							return
						}
						sent.Add(1)
					}
				})
			}
			b.StopTimer()
			if want := sent.Load() * members; got.Load() != want {
				b.Fatalf("%d deliveries, want %d (%d messages x %d members)", got.Load(), want, sent.Load(), members)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(sent.Load()*members), "ns/delivery")
		})
	}
}

func BenchmarkOfflineQueue(b *testing.B) {
	ctx := context.Background()
	setup := func(b *testing.B) (*chat.Core, *chat.Session) {
		core := benchCore(b)
		for _, a := range []string{"alice", "bob"} {
			if err := core.CreateAccount(ctx, a, "password-"+a, false); err != nil {
				b.Fatal(err)
			}
		}
		s, err := core.Open(ctx, chat.SessionInfo{Account: "alice", Door: "bench", Resource: "r", Addr: "127.0.0.1"}, chat.SinkFunc(func(chat.Delivery) {}))
		if err != nil {
			b.Fatal(err)
		}
		return core, s
	}
	b.Run("push", func(b *testing.B) {
		core, alice := setup(b)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := core.SendDirect(ctx, alice, "bob", chat.KindNormal, "see you at noon", ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("drain50", func(b *testing.B) {
		const page = 50
		core, alice := setup(b)
		for range b.N * page {
			if _, err := core.SendDirect(ctx, alice, "bob", chat.KindNormal, "see you at noon", ""); err != nil {
				b.Fatal(err)
			}
		}
		bob, err := core.Open(ctx, chat.SessionInfo{Account: "bob", Door: "bench", Resource: "r", Addr: "127.0.0.1"}, chat.SinkFunc(func(chat.Delivery) {}))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			msgs, err := core.Offline(ctx, bob, page)
			if err != nil || len(msgs) != page {
				b.Fatalf("offline page: %d messages, %v", len(msgs), err)
			}
			if err := core.AckOffline(ctx, bob, msgs[len(msgs)-1].Seq); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if msgs, err := core.Offline(ctx, bob, page); err != nil || len(msgs) != 0 {
			b.Fatalf("queue not drained: %d left, %v", len(msgs), err)
		}
		b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*page), "ns/msg")
	})
}
