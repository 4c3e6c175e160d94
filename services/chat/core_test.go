package chat_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"chatbox/services/chat"
	"chatbox/services/store"
)

// recorder is a Sink that keeps what it receives.
type recorder struct {
	mu sync.Mutex
	d  []chat.Delivery
}

func (r *recorder) Deliver(d chat.Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.d = append(r.d, d)
}

func (r *recorder) take() []chat.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.d
	r.d = nil
	return d
}

func (r *recorder) messages() []chat.Message {
	var out []chat.Message
	for _, d := range r.take() {
		if d.Kind == chat.DelMessage {
			out = append(out, *d.Message)
		}
	}
	return out
}

func (r *recorder) kinds() []chat.DeliveryKind {
	var out []chat.DeliveryKind
	for _, d := range r.take() {
		out = append(out, d.Kind)
	}
	return out
}

type fixture struct {
	t    *testing.T
	ctx  context.Context
	core *chat.Core
	st   *store.Store
	now  time.Time
}

func newFixture(t *testing.T, mutate func(*chat.Options)) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir()+"/chat.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, ctx: ctx, st: st, now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	var mu sync.Mutex
	o := chat.Options{
		Store: st,
		Now: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			f.now = f.now.Add(time.Millisecond)
			return f.now
		},
		Limits:              chat.Limits{MessagesPerSecond: 1000, MessageBurst: 1000},
		UsersMayCreateRooms: true,
		DefaultHistory:      5,
		Iterations:          1,
	}
	if mutate != nil {
		mutate(&o)
	}
	f.core, err = chat.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) account(names ...string) {
	f.t.Helper()
	for _, n := range names {
		if err := f.core.CreateAccount(f.ctx, n, "password-"+n, false); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *fixture) open(account, door string) (*chat.Session, *recorder) {
	f.t.Helper()
	rec := &recorder{}
	s, err := f.core.Open(f.ctx, chat.SessionInfo{Account: account, Door: door, Resource: door, Addr: "127.0.0.1"}, rec)
	if err != nil {
		f.t.Fatal(err)
	}
	return s, rec
}

func TestAccounts(t *testing.T) {
	f := newFixture(t, nil)
	if err := f.core.CreateAccount(f.ctx, "Alice", "hunter22hunter", false); err != nil {
		t.Fatal(err)
	}
	if err := f.core.CreateAccount(f.ctx, "alice", "hunter22hunter", false); !errors.Is(err, chat.ErrExists) {
		t.Fatalf("duplicate account: %v", err)
	}
	if err := f.core.CreateAccount(f.ctx, "1bad", "hunter22hunter", false); !errors.Is(err, chat.ErrBadName) {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := f.core.Authenticate(f.ctx, "ALICE", "hunter22hunter", "a", "irc"); err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	if _, err := f.core.Authenticate(f.ctx, "alice", "wrong-password", "a", "irc"); !errors.Is(err, chat.ErrBadPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := f.core.Authenticate(f.ctx, "nobody", "wrong-password", "a", "irc"); !errors.Is(err, chat.ErrBadPassword) {
		t.Fatalf("unknown account must look like a wrong password: %v", err)
	}
	if err := f.core.SetPassword(f.ctx, "alice", "new-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.Authenticate(f.ctx, "alice", "new-password", "b", "xmpp"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	s, rec := f.open("alice", "irc")
	if err := f.core.DeleteAccount(f.ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if k := rec.kinds(); len(k) != 1 || k[0] != chat.DelDisconnect {
		t.Fatalf("deleted account's session got %v, want a disconnect", k)
	}
	s.Close("bye")
	if _, err := f.core.Authenticate(f.ctx, "alice", "new-password", "b", "xmpp"); !errors.Is(err, chat.ErrBadPassword) {
		t.Fatalf("deleted account still logs in: %v", err)
	}
}

func TestLoginThrottle(t *testing.T) {
	f := newFixture(t, func(o *chat.Options) { o.Limits.FailedLoginsPerMinute = 3 })
	f.account("alice")
	for range 3 {
		f.core.Authenticate(f.ctx, "alice", "nope-nope-nope", "10.0.0.9", "irc")
	}
	if _, err := f.core.Authenticate(f.ctx, "alice", "password-alice", "10.0.0.9", "irc"); !errors.Is(err, chat.ErrTooManyAttempts) {
		t.Fatalf("4th attempt from a throttled address: %v", err)
	}
	if _, err := f.core.Authenticate(f.ctx, "alice", "password-alice", "10.0.0.10", "irc"); err != nil {
		t.Fatalf("another address is throttled too: %v", err)
	}
	f.now = f.now.Add(30 * time.Second)
	if _, err := f.core.Authenticate(f.ctx, "alice", "password-alice", "10.0.0.9", "irc"); err != nil {
		t.Fatalf("throttle did not lift after 30 s: %v", err)
	}
}

func TestDirectRoutingToEverySession(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice", "bob")
	a1, r1 := f.open("alice", "irc")
	_, r2 := f.open("alice", "xmpp")
	b1, rb1 := f.open("bob", "xmpp")
	_, rb2 := f.open("bob", "irc")
	_ = a1
	m, err := f.core.SendDirect(f.ctx, b1, "Alice", chat.KindNormal, "hello alice", "")
	if err != nil {
		t.Fatal(err)
	}
	if m.Seq == 0 || m.ID == "" || m.To != "alice" || m.From != "bob" {
		t.Fatalf("returned message %+v", m)
	}
	for i, r := range []*recorder{r1, r2} {
		got := r.messages()
		if len(got) != 1 || got[0].ID != m.ID || got[0].Body != "hello alice" {
			t.Fatalf("alice session %d got %+v", i, got)
		}
	}
	d := rb1.take()
	if len(d) != 1 || !d[0].Echo {
		t.Fatalf("sender session got %+v, want one echo", d)
	}
	d = rb2.take()
	if len(d) != 1 || !d[0].Carbon {
		t.Fatalf("sender's other session got %+v, want one carbon", d)
	}
	if q, _ := f.core.Offline(f.ctx, a1, 10); len(q) != 0 {
		t.Fatalf("online recipient got an offline copy: %v", q)
	}
	if _, err := f.core.SendDirect(f.ctx, b1, "nobody", chat.KindNormal, "x", ""); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("to unknown account: %v", err)
	}
}

func TestOfflineQueue(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice", "bob")
	b, _ := f.open("bob", "irc")
	var ids []string
	for i := range 5 {
		m, err := f.core.SendDirect(f.ctx, b, "alice", chat.KindNormal, fmt.Sprintf("msg %d", i), "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	a, rec := f.open("alice", "xmpp")
	if got := rec.messages(); len(got) != 0 {
		t.Fatalf("queued messages pushed on open: %v", got)
	}
	q, err := f.core.Offline(f.ctx, a, 3)
	if err != nil || len(q) != 3 {
		t.Fatalf("offline page: %v %v", q, err)
	}
	for i, m := range q {
		if m.ID != ids[i] {
			t.Fatalf("offline order: %d is %s, want %s", i, m.ID, ids[i])
		}
	}
	if err := f.core.AckOffline(f.ctx, a, q[2].Seq); err != nil {
		t.Fatal(err)
	}
	q, _ = f.core.Offline(f.ctx, a, 10)
	if len(q) != 2 || q[0].ID != ids[3] {
		t.Fatalf("after ack: %v", q)
	}
	f.core.AckOffline(f.ctx, a, q[1].Seq)
	if q, _ = f.core.Offline(f.ctx, a, 10); len(q) != 0 {
		t.Fatalf("queue not empty after acks: %v", q)
	}
	if _, err := f.core.SendDirect(f.ctx, b, "alice", chat.KindNormal, "live", ""); err != nil {
		t.Fatal(err)
	}
	if q, _ = f.core.Offline(f.ctx, a, 10); len(q) != 0 {
		t.Fatalf("message to an online account queued: %v", q)
	}
}

func TestRoomRoutingAcrossDoors(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice", "bob", "carol")
	a, ra := f.open("alice", "irc")
	b, rb := f.open("bob", "xmpp")
	c, rc := f.open("carol", "xmpp")
	res, err := f.core.Join(f.ctx, a, "General", "", "")
	if err != nil || !res.Created || res.Self.Affiliation != chat.AffOwner || res.Self.Role != chat.RoleModerator {
		t.Fatalf("first join: %+v %v", res, err)
	}
	if d := ra.take(); len(d) != 1 || d[0].Kind != chat.DelJoin || !d[0].Echo || d[0].RoomInfo == nil || len(d[0].Occupants) != 1 {
		t.Fatalf("joiner's own join: %+v", d)
	}
	if _, err := f.core.Join(f.ctx, b, "general", "bobby", ""); err != nil {
		t.Fatal(err)
	}
	if k := ra.kinds(); len(k) != 1 || k[0] != chat.DelJoin {
		t.Fatalf("alice saw %v, want bob's join", k)
	}
	if _, err := f.core.Join(f.ctx, c, "general", "bobby", ""); !errors.Is(err, chat.ErrNickInUse) {
		t.Fatalf("nick collision: %v", err)
	}
	if _, err := f.core.Join(f.ctx, c, "general", "Alice", ""); !errors.Is(err, chat.ErrNickReserved) {
		t.Fatalf("another account's name as nick: %v", err)
	}
	if _, err := f.core.Join(f.ctx, c, "general", "", ""); err != nil {
		t.Fatal(err)
	}
	ra.take()
	rb.take()
	rc.take()
	m, err := f.core.SendRoom(f.ctx, b, "general", chat.KindAction, "waves", "")
	if err != nil {
		t.Fatal(err)
	}
	if m.FromNick != "bobby" || m.Room != "general" {
		t.Fatalf("message %+v", m)
	}
	for name, r := range map[string]*recorder{"alice": ra, "bob": rb, "carol": rc} {
		got := r.messages()
		if len(got) != 1 || got[0].ID != m.ID || got[0].Kind != chat.KindAction {
			t.Fatalf("%s got %+v", name, got)
		}
	}
	// A second session of bob joining under the same nick shares the occupant.
	b2, rb2 := f.open("bob", "irc")
	res, err = f.core.Join(f.ctx, b2, "general", "bobby", "")
	if err != nil || len(res.Self.Sessions) != 2 {
		t.Fatalf("second session join: %+v %v", res.Self, err)
	}
	if ds := rb2.take(); len(ds) == 0 || ds[len(ds)-1].Kind != chat.DelJoin || !ds[len(ds)-1].Echo || ds[len(ds)-1].HistoryLimit != 5 {
		t.Fatalf("second session's join deliveries %+v: want the echo join with HistoryLimit 5 (DefaultHistory)", ds)
	}
	if k := ra.kinds(); len(k) != 0 {
		t.Fatalf("second session of an occupant announced again: %v", k)
	}
	b.Close("gone")
	if k := ra.kinds(); len(k) != 0 {
		t.Fatalf("closing one of two sessions made the occupant leave: %v", k)
	}
	b2.Close("gone too")
	d := ra.take()
	if len(d) != 1 || d[0].Kind != chat.DelQuit || d[0].Occupant.Nick != "bobby" {
		t.Fatalf("quit: %+v", d)
	}
	rb2.take()
	// Not an occupant: cannot speak in a +n room.
	if err := f.core.Part(f.ctx, c, "general", "bye"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.SendRoom(f.ctx, c, "general", chat.KindNormal, "hi", ""); !errors.Is(err, chat.ErrNotInRoom) {
		t.Fatalf("outsider spoke: %v", err)
	}
}

func TestModeration(t *testing.T) {
	f := newFixture(t, nil)
	f.account("owner", "mod", "user", "troll")
	o, _ := f.open("owner", "irc")
	m, _ := f.open("mod", "xmpp")
	u, ru := f.open("user", "irc")
	tr, rt := f.open("troll", "irc")
	for _, s := range []*chat.Session{o, m, u, tr} {
		if _, err := f.core.Join(f.ctx, s, "den", "", ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.core.Kick(f.ctx, u, "den", "troll", "no"); !errors.Is(err, chat.ErrForbidden) {
		t.Fatalf("participant kicked: %v", err)
	}
	if err := f.core.SetRole(f.ctx, o, "den", "mod", chat.RoleModerator, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.core.SetTopic(f.ctx, u, "den", "mine"); !errors.Is(err, chat.ErrForbidden) {
		t.Fatalf("participant changed a locked topic: %v", err)
	}
	if err := f.core.SetTopic(f.ctx, m, "den", "Welcome"); err != nil {
		t.Fatal(err)
	}
	info, _, _ := f.core.RoomInfo(f.ctx, "den")
	if info.Topic != "Welcome" || info.TopicBy != "mod" {
		t.Fatalf("topic %q by %q", info.Topic, info.TopicBy)
	}
	ru.take()
	rt.take()
	// Moderated: participants without voice become visitors.
	if _, err := f.core.UpdateSettings(f.ctx, m, "den", func(s *chat.RoomSettings) error { s.Moderated = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.SendRoom(f.ctx, u, "den", chat.KindNormal, "hello?", ""); !errors.Is(err, chat.ErrModerated) {
		t.Fatalf("visitor spoke: %v", err)
	}
	if err := f.core.SetRole(f.ctx, m, "den", "user", chat.RoleParticipant, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.SendRoom(f.ctx, u, "den", chat.KindNormal, "thanks", ""); err != nil {
		t.Fatalf("voiced user: %v", err)
	}
	// Kick by a moderator; the kicked session is told and is out.
	if err := f.core.Kick(f.ctx, m, "den", "troll", "behave"); err != nil {
		t.Fatal(err)
	}
	var kicked bool
	for _, d := range rt.take() {
		kicked = kicked || (d.Kind == chat.DelKick && d.Reason == "behave" && d.Actor == "mod")
	}
	if !kicked || len(tr.RoomsOf()) != 0 {
		t.Fatalf("kick not seen by the target, or target still in: %v", tr.RoomsOf())
	}
	// A ban mask keeps it out; an exception lets it in.
	if err := f.core.AddMask(f.ctx, m, "den", chat.ListBan, "troll", "spam"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.Join(f.ctx, tr, "den", "", ""); !errors.Is(err, chat.ErrBanned) {
		t.Fatalf("banned join: %v", err)
	}
	if err := f.core.AddMask(f.ctx, m, "den", chat.ListBanExcept, "tr*", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.Join(f.ctx, tr, "den", "", ""); err != nil {
		t.Fatalf("excepted join: %v", err)
	}
	// Outcast affiliation removes and keeps out; only admins+ may set it.
	if err := f.core.SetAffiliation(f.ctx, m, "den", "troll", chat.AffOutcast, ""); !errors.Is(err, chat.ErrForbidden) {
		t.Fatalf("moderator without affiliation set outcast: %v", err)
	}
	if err := f.core.SetAffiliation(f.ctx, o, "den", "troll", chat.AffOutcast, "out"); err != nil {
		t.Fatal(err)
	}
	if len(tr.RoomsOf()) != 0 {
		t.Fatal("outcast still in the room")
	}
	if _, err := f.core.Join(f.ctx, tr, "den", "", ""); !errors.Is(err, chat.ErrBanned) {
		t.Fatalf("outcast join: %v", err)
	}
	// Members-only with password and invitations.
	if _, err := f.core.UpdateSettings(f.ctx, o, "den", func(s *chat.RoomSettings) error {
		s.MembersOnly, s.Password = true, "sesame"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.account("guest")
	g, rg := f.open("guest", "xmpp")
	if _, err := f.core.Join(f.ctx, g, "den", "", "sesame"); !errors.Is(err, chat.ErrInviteOnly) {
		t.Fatalf("uninvited join: %v", err)
	}
	if err := f.core.Invite(f.ctx, o, "den", "guest"); err != nil {
		t.Fatal(err)
	}
	if k := rg.kinds(); len(k) != 1 || k[0] != chat.DelInvite {
		t.Fatalf("invitee saw %v", k)
	}
	if _, err := f.core.Join(f.ctx, g, "den", "", "wrong"); !errors.Is(err, chat.ErrRoomKey) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := f.core.Join(f.ctx, g, "den", "", "sesame"); err != nil {
		t.Fatalf("invited join with key: %v", err)
	}
	// Everything above survives a restart of the core (it is stored).
	core2, _ := chat.New(chat.Options{Store: f.st})
	room, _, err := core2.RoomInfo(f.ctx, "den")
	if err != nil || !room.Settings.Moderated || room.Affiliations["troll"] != chat.AffOutcast || len(room.Masks) != 2 || room.Topic != "Welcome" {
		t.Fatalf("room after restart: %+v %v", room, err)
	}
}

func TestHistoryPaging(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice", "bob", "eve")
	a, _ := f.open("alice", "irc")
	b, _ := f.open("bob", "xmpp")
	e, _ := f.open("eve", "xmpp")
	f.core.Join(f.ctx, a, "general", "", "")
	var all []string
	for i := range 23 {
		if _, err := f.core.SendDirect(f.ctx, a, "bob", chat.KindNormal, "dm", ""); err != nil {
			t.Fatal(err)
		}
		s := a
		if i%2 == 1 {
			s = b
		}
		if i == 5 {
			f.core.Join(f.ctx, b, "general", "", "")
		}
		m, err := f.core.SendRoom(f.ctx, s, "general", chat.KindNormal, fmt.Sprint(i), "")
		if s == b && i < 5 {
			if !errors.Is(err, chat.ErrNotInRoom) {
				t.Fatalf("bob outside the room: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, m.ID)
	}
	// Forwards in pages of 4.
	var got []string
	var after int64
	for {
		page, err := f.core.History(f.ctx, e, chat.HistoryQuery{Room: "general", AfterSeq: after, Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			got = append(got, m.ID)
		}
		after = page[len(page)-1].Seq
	}
	if fmt.Sprint(got) != fmt.Sprint(all) {
		t.Fatalf("forward paging:\n got %v\nwant %v", got, all)
	}
	// Backwards in pages of 5.
	got = nil
	var before int64
	for {
		page, err := f.core.History(f.ctx, e, chat.HistoryQuery{Room: "general", BeforeSeq: before, Limit: 5, Last: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		var ids []string
		for _, m := range page {
			ids = append(ids, m.ID)
		}
		got = append(ids, got...)
		before = page[0].Seq
	}
	if fmt.Sprint(got) != fmt.Sprint(all) {
		t.Fatalf("backward paging:\n got %v\nwant %v", got, all)
	}
	// Direct conversations are visible to their two parties only, both ways.
	dm, err := f.core.History(f.ctx, b, chat.HistoryQuery{Peer: "alice", Limit: 100})
	if err != nil || len(dm) != 23 {
		t.Fatalf("bob's conversation with alice: %d %v", len(dm), err)
	}
	dm, _ = f.core.History(f.ctx, e, chat.HistoryQuery{Peer: "alice", Limit: 100})
	if len(dm) != 0 {
		t.Fatalf("eve sees alice's direct messages: %v", dm)
	}
	// Members-only rooms keep their history from outsiders.
	f.core.UpdateSettings(f.ctx, a, "general", func(s *chat.RoomSettings) error { s.MembersOnly = true; return nil })
	if _, err := f.core.History(f.ctx, e, chat.HistoryQuery{Room: "general"}); !errors.Is(err, chat.ErrForbidden) {
		t.Fatalf("outsider read a members-only room: %v", err)
	}
}

func TestRateLimitAndBounds(t *testing.T) {
	f := newFixture(t, func(o *chat.Options) {
		o.Limits = chat.Limits{MessagesPerSecond: 1, MessageBurst: 3, MaxMessageBytes: 10}
	})
	f.account("alice", "bob")
	a, _ := f.open("alice", "irc")
	for i := range 3 {
		if _, err := f.core.SendDirect(f.ctx, a, "bob", chat.KindNormal, "hi", ""); err != nil {
			t.Fatalf("message %d within burst: %v", i, err)
		}
	}
	if _, err := f.core.SendDirect(f.ctx, a, "bob", chat.KindNormal, "hi", ""); !errors.Is(err, chat.ErrRateLimited) {
		t.Fatalf("over the burst: %v", err)
	}
	f.now = f.now.Add(2 * time.Second)
	if _, err := f.core.SendDirect(f.ctx, a, "bob", chat.KindNormal, "again", ""); err != nil {
		t.Fatalf("after refill: %v", err)
	}
	if _, err := f.core.SendDirect(f.ctx, a, "bob", chat.KindNormal, "far too long a line", ""); !errors.Is(err, chat.ErrTooLong) {
		t.Fatalf("too long: %v", err)
	}
	var bob *chat.Session
	for range 10 {
		bob, _ = f.open("bob", "irc")
	}
	for i := range 50 {
		if _, err := f.core.Join(f.ctx, bob, fmt.Sprintf("room%d", i), "", ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.core.Join(f.ctx, bob, "onetoomany", "", ""); !errors.Is(err, chat.ErrTooManyRooms) {
		t.Fatalf("51st room: %v", err)
	}
	if _, err := f.core.Open(f.ctx, chat.SessionInfo{Account: "bob", Door: "irc"}, &recorder{}); !errors.Is(err, chat.ErrTooManySessions) {
		t.Fatalf("11th session: %v", err)
	}
}

func TestPresence(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice", "bob", "carol")
	a1, _ := f.open("alice", "irc")
	a2, _ := f.open("alice", "xmpp")
	b, rb := f.open("bob", "xmpp")
	c, rc := f.open("carol", "irc")
	now := b.Watch("alice")
	if now["alice"].Show != chat.ShowOffline {
		t.Fatalf("alice before any presence: %v", now)
	}
	a1.SetPresence(chat.Presence{Show: chat.ShowAway, Status: "lunch"})
	a2.SetPresence(chat.Presence{Show: chat.ShowAvailable})
	if p := f.core.AccountPresence("alice"); p.Show != chat.ShowAvailable {
		t.Fatalf("aggregate %v, want available", p)
	}
	d := rb.take()
	if len(d) != 2 || d[1].Account.Show != chat.ShowAvailable || d[0].Presence.Status != "lunch" {
		t.Fatalf("watcher got %+v", d)
	}
	if k := rc.kinds(); len(k) != 0 {
		t.Fatalf("unrelated session got %v", k)
	}
	f.core.Join(f.ctx, a1, "general", "", "")
	f.core.Join(f.ctx, c, "general", "", "")
	rc.take()
	a2.Close("bye")
	if p := f.core.AccountPresence("alice"); p.Show != chat.ShowAway || p.Status != "lunch" {
		t.Fatalf("aggregate after close %v", p)
	}
	d = rc.take()
	if len(d) != 1 || d[0].Kind != chat.DelPresence || d[0].Account.Show != chat.ShowAway {
		t.Fatalf("room mate got %+v", d)
	}
}

func TestEvents(t *testing.T) {
	f := newFixture(t, nil)
	ch, stop := f.core.Events().Subscribe(16)
	defer stop()
	f.account("alice")
	a, _ := f.open("alice", "irc")
	f.core.Join(f.ctx, a, "general", "", "")
	f.core.SendRoom(f.ctx, a, "general", chat.KindNormal, "hi", "")
	var types []chat.EventType
	for len(types) < 4 {
		select {
		case ev := <-ch:
			types = append(types, ev.Type)
		case <-time.After(5 * time.Second):
			t.Fatalf("events so far %v", types)
		}
	}
	want := []chat.EventType{chat.EventAccountCreated, chat.EventSessionOpened, chat.EventRoomCreated, chat.EventMessage}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", types, want)
	}
}

func TestPruneHistoryKeepsQueued(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice", "bob")
	a, _ := f.open("alice", "irc")
	f.core.Join(f.ctx, a, "general", "", "")
	old, _ := f.core.SendRoom(f.ctx, a, "general", chat.KindNormal, "old news", "")
	queued, _ := f.core.SendDirect(f.ctx, a, "bob", chat.KindNormal, "waiting for bob", "")
	f.now = f.now.Add(48 * time.Hour)
	fresh, _ := f.core.SendRoom(f.ctx, a, "general", chat.KindNormal, "fresh", "")
	n, err := f.core.PruneHistory(f.ctx, 24*time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want 1", n, err)
	}
	if _, err := f.st.MessageByID(f.ctx, old.ID); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("old room message kept: %v", err)
	}
	for _, id := range []string{queued.ID, fresh.ID} {
		if _, err := f.st.MessageByID(f.ctx, id); err != nil {
			t.Fatalf("message %s lost: %v", id, err)
		}
	}
	// Seqs are never reused after a prune.
	m, _ := f.core.SendRoom(f.ctx, a, "general", chat.KindNormal, "after", "")
	if m.Seq <= fresh.Seq {
		t.Fatalf("seq %d reused (fresh was %d)", m.Seq, fresh.Seq)
	}
}

func TestCertificateLogin(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice", "bob")
	der := []byte("a certificate, as DER")
	fp := chat.CertFingerprint(der)
	if err := f.core.AddCertificate(f.ctx, "alice", strings.ToUpper(fp)); err != nil {
		t.Fatal(err)
	}
	if err := f.core.AddCertificate(f.ctx, "bob", fp); !errors.Is(err, chat.ErrExists) {
		t.Fatalf("one certificate for two accounts: %v", err)
	}
	if err := f.core.AddCertificate(f.ctx, "bob", "not-hex"); !errors.Is(err, chat.ErrBadName) {
		t.Fatalf("bad fingerprint: %v", err)
	}
	a, err := f.core.AuthenticateCertificate(f.ctx, der, "", "a", "irc")
	if err != nil || a.Name != "alice" {
		t.Fatalf("certificate login: %v %v", a, err)
	}
	if _, err := f.core.AuthenticateCertificate(f.ctx, der, "bob", "a", "irc"); !errors.Is(err, chat.ErrBadPassword) {
		t.Fatalf("certificate used for another account: %v", err)
	}
	if _, err := f.core.AuthenticateCertificate(f.ctx, []byte("other"), "", "a", "irc"); !errors.Is(err, chat.ErrBadPassword) {
		t.Fatalf("unknown certificate: %v", err)
	}
	if fps, _ := f.core.Certificates(f.ctx, "alice"); len(fps) != 1 || fps[0] != fp {
		t.Fatalf("certificates %v", fps)
	}
	if err := f.core.RemoveCertificate(f.ctx, "alice", fp); err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.AuthenticateCertificate(f.ctx, der, "", "a", "irc"); !errors.Is(err, chat.ErrBadPassword) {
		t.Fatalf("removed certificate still logs in: %v", err)
	}
}

func TestGuests(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice")
	a, ra := f.open("alice", "irc")
	f.core.Join(f.ctx, a, "general", "", "")
	ra.take()
	if _, err := f.core.OpenGuest(f.ctx, "Alice", chat.SessionInfo{Door: "irc"}, &recorder{}); !errors.Is(err, chat.ErrNickReserved) {
		t.Fatalf("guest with an account's name: %v", err)
	}
	rg := &recorder{}
	g, err := f.core.OpenGuest(f.ctx, "Visitor", chat.SessionInfo{Door: "irc"}, rg)
	if err != nil {
		t.Fatal(err)
	}
	if !chat.IsGuest(g.Account()) || g.Account() != "~visitor" {
		t.Fatalf("guest account %q", g.Account())
	}
	if _, err := f.core.OpenGuest(f.ctx, "visitor", chat.SessionInfo{Door: "xmpp"}, &recorder{}); !errors.Is(err, chat.ErrNickInUse) {
		t.Fatalf("two guests with one nick: %v", err)
	}
	if _, err := f.core.Join(f.ctx, g, "newroom", "Visitor", ""); !errors.Is(err, chat.ErrNoSuchRoom) {
		t.Fatalf("guest created a room: %v", err)
	}
	res, err := f.core.Join(f.ctx, g, "general", "Visitor", "")
	if err != nil || res.Self.Account != "~visitor" {
		t.Fatalf("guest join: %+v %v", res.Self, err)
	}
	m, err := f.core.SendRoom(f.ctx, g, "general", chat.KindNormal, "hello all", "")
	if err != nil || m.From != "~visitor" || m.FromNick != "Visitor" {
		t.Fatalf("guest message %+v %v", m, err)
	}
	if got := ra.messages(); len(got) != 1 || got[0].ID != m.ID {
		t.Fatalf("alice got %+v", got)
	}
	if _, err := f.core.SendDirect(f.ctx, g, "alice", chat.KindNormal, "psst", ""); !errors.Is(err, chat.ErrForbidden) {
		t.Fatalf("guest sent a direct message: %v", err)
	}
	if _, err := f.core.SendDirect(f.ctx, a, "~visitor", chat.KindNormal, "psst", ""); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("direct message to a guest: %v", err)
	}
	f.core.UpdateSettings(f.ctx, nil, "general", func(s *chat.RoomSettings) error { s.MembersOnly = true; return nil })
	g.Close("bye")
	g2, _ := f.core.OpenGuest(f.ctx, "visitor", chat.SessionInfo{Door: "irc"}, &recorder{})
	if _, err := f.core.Join(f.ctx, g2, "general", "visitor", ""); !errors.Is(err, chat.ErrInviteOnly) {
		t.Fatalf("guest joined a members-only room: %v", err)
	}
}

// TestBoxAdminFromNextLogin: a box admin may enter a members-only room
// with a key without either; SetAdmin takes effect at the account's next
// login (the session keeps what its login found).
func TestBoxAdminFromNextLogin(t *testing.T) {
	f := newFixture(t, nil)
	f.account("owner", "root")
	o, _ := f.open("owner", "irc")
	if _, err := f.core.Join(f.ctx, o, "vault", "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.UpdateSettings(f.ctx, o, "vault", func(s *chat.RoomSettings) error {
		s.MembersOnly, s.Password = true, "sesame"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	before, _ := f.open("root", "xmpp")
	if err := f.core.SetAdmin(f.ctx, "root", true); err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.Join(f.ctx, before, "vault", "", ""); !errors.Is(err, chat.ErrInviteOnly) {
		t.Fatalf("join from a session opened before SetAdmin: %v, want %v", err, chat.ErrInviteOnly)
	}
	after, _ := f.open("root", "irc")
	if _, err := f.core.Join(f.ctx, after, "vault", "", ""); err != nil {
		t.Fatalf("join from a box admin's session: %v", err)
	}
	if err := f.core.SetAdmin(f.ctx, "root", false); err != nil {
		t.Fatal(err)
	}
	later, _ := f.open("root", "web")
	if _, err := f.core.Join(f.ctx, later, "vault", "", ""); !errors.Is(err, chat.ErrInviteOnly) {
		t.Fatalf("join after SetAdmin false: %v, want %v", err, chat.ErrInviteOnly)
	}
}

// TestPopulation counts the open sessions and the rooms' occupants.
func TestPopulation(t *testing.T) {
	f := newFixture(t, nil)
	f.account("ann", "bob")
	if n := f.core.Population(); n != 0 {
		t.Fatalf("population of an empty box %d", n)
	}
	a, _ := f.open("ann", "irc")
	b, _ := f.open("bob", "xmpp")
	for _, s := range []*chat.Session{a, b} {
		for _, room := range []string{"one", "two"} {
			if _, err := f.core.Join(f.ctx, s, room, "", ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := f.core.Population(); n != 6 {
		t.Fatalf("2 sessions in 2 rooms each: population %d, want 6", n)
	}
	if err := f.core.Part(f.ctx, a, "one", ""); err != nil {
		t.Fatal(err)
	}
	b.Close("bye")
	if n := f.core.Population(); n != 2 {
		t.Fatalf("after a part and a close: population %d, want 2", n)
	}
}
