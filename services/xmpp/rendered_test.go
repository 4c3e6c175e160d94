package xmpp

import (
	"testing"

	"chatbox/services/chat"
)

func preparedSample() *Element {
	return El(nsClient, "message", "from", "general@rooms.box.test/al&ce", "to", "first@box.test/r", "type", "groupchat", "id", "x1").Add(
		El(nsClient, "body").Add(`a <b> & "c"`),
		El("urn:xmpp:sid:0", "stanza-id", "id", "s1", "by", "general@rooms.box.test"))
}

// TestPreparedStanza: a stanza rendered once is, for each receiver, the
// bytes of the same stanza built for that receiver; changing one
// receiver's copy changes neither the others nor the template.
func TestPreparedStanza(t *testing.T) {
	p := prepare(preparedSample())
	for _, to := range []string{"bob@box.test/phone", `o'neil@box.test/a&b<c>"d"`} {
		want := string(preparedSample().Set("to", to).Bytes(nsClient))
		el := p.to(to)
		if got := string(el.Bytes(nsClient)); got != want {
			t.Fatalf("to %q:\n got %s\nwant %s", to, got, want)
		}
		if got := string(el.Bytes(nsClient)); got != want {
			t.Fatalf("second Bytes: %s", got)
		}
		if el.Get("to") != to || el.Child(nsClient, "body").Text() != `a <b> & "c"` {
			t.Fatalf("the receiver's element reads wrong: %s", el)
		}
	}
	// A change through the methods drops the prepared form.
	a, b := p.to("a@box.test/1"), p.to("b@box.test/2")
	a.Add(El("urn:xmpp:delay", "delay", "stamp", "2020-01-01T00:00:00Z"))
	a.Remove(func(k *Element) bool { return k.Local == "stanza-id" })
	wantA := preparedSample().Set("to", "a@box.test/1")
	wantA.Add(El("urn:xmpp:delay", "delay", "stamp", "2020-01-01T00:00:00Z"))
	wantA.Remove(func(k *Element) bool { return k.Local == "stanza-id" })
	if got, want := string(a.Bytes(nsClient)), string(wantA.Bytes(nsClient)); got != want {
		t.Fatalf("changed copy:\n got %s\nwant %s", got, want)
	}
	if got, want := string(b.Bytes(nsClient)), string(preparedSample().Set("to", "b@box.test/2").Bytes(nsClient)); got != want {
		t.Fatalf("the other copy changed:\n got %s\nwant %s", got, want)
	}
	// Set of another attribute, a changed to, a clone, another stream
	// namespace.
	c := p.to("c@box.test/3")
	c.Set("to", "d@box.test/4")
	if got, want := string(c.Bytes(nsClient)), string(preparedSample().Set("to", "d@box.test/4").Bytes(nsClient)); got != want {
		t.Fatalf("to changed:\n got %s\nwant %s", got, want)
	}
	c.Set("type", "chat")
	if got, want := string(c.Bytes(nsClient)), string(preparedSample().Set("to", "d@box.test/4").Set("type", "chat").Bytes(nsClient)); got != want {
		t.Fatalf("type changed:\n got %s\nwant %s", got, want)
	}
	d := p.to("e@box.test/5")
	if got, want := d.Clone().String(), preparedSample().Set("to", "e@box.test/5").String(); got != want {
		t.Fatalf("clone:\n got %s\nwant %s", got, want)
	}
	if got, want := string(d.Bytes(nsComponent)), string(preparedSample().Set("to", "e@box.test/5").Bytes(nsComponent)); got != want {
		t.Fatalf("component stream:\n got %s\nwant %s", got, want)
	}
}

// TestRendered: one rendering per fan-out and kind; none kept without a
// fan-out.
func TestRendered(t *testing.T) {
	builds := 0
	build := func() *Element { builds++; return preparedSample() }
	r1, r2 := &chat.Rendered{}, &chat.Rendered{}
	a := rendered(r1, "xmpp-message", build)
	if b := rendered(r1, "xmpp-message", build); b != a || builds != 1 {
		t.Fatalf("same fan-out rendered again (builds %d)", builds)
	}
	if c := rendered(r1, "xmpp-join", build); c == a || builds != 2 {
		t.Fatalf("another kind shared a rendering (builds %d)", builds)
	}
	if d := rendered(r2, "xmpp-message", build); d == a || builds != 3 {
		t.Fatalf("another fan-out shared a rendering (builds %d)", builds)
	}
	rendered(nil, "xmpp-message", build)
	rendered(nil, "xmpp-message", build)
	if builds != 5 {
		t.Fatalf("without a fan-out: builds %d", builds)
	}
}

// TestDeliveryIntern: the receivers of one fan-out share one copy of its
// delivery (the sender's echo its own); anything else is copied.
func TestDeliveryIntern(t *testing.T) {
	var in deliveryIntern
	shared := &chat.Rendered{}
	m := &chat.Message{Room: "general", Body: "hi"}
	d := chat.Delivery{Kind: chat.DelMessage, Room: "general", Message: m, Shared: shared, From: chat.SessionRef{ID: 7}}
	a, b := in.of(&d), in.of(&d)
	if a != b || a.Message != m {
		t.Fatal("one fan-out's deliveries not shared")
	}
	e := d
	e.Echo = true
	if x := in.of(&e); x == a || !x.Echo {
		t.Fatal("the echo shared the others' delivery")
	}
	if c := in.of(&d); c != a {
		t.Fatal("the echo in between ended the sharing")
	}
	m2 := &chat.Message{Room: "general", Body: "next"}
	d2 := d
	d2.Message, d2.Shared = m2, &chat.Rendered{}
	if c := in.of(&d2); c == a || c.Message != m2 {
		t.Fatal("the next fan-out got the last one's delivery")
	}
	solo := chat.Delivery{Kind: chat.DelMessage, Message: m}
	if x, y := in.of(&solo), in.of(&solo); x == y {
		t.Fatal("deliveries without a fan-out shared")
	}
	// A leave goes to everyone still in the room: a thousand clients
	// dropping at once are a million deliveries, one copy per leave.
	leave := chat.Delivery{Kind: chat.DelLeave, Room: "general", Occupant: chat.Occupant{Nick: "bob", Account: "bob"},
		Reason: "gone", Shared: &chat.Rendered{}}
	if x, y := in.of(&leave), in.of(&leave); x != y || x.Reason != "gone" || x.Kind != chat.DelLeave {
		t.Fatal("one leave's deliveries not shared")
	}
	next := leave
	next.Occupant.Nick, next.Shared = "carol", &chat.Rendered{}
	if x := in.of(&next); x.Occupant.Nick != "carol" {
		t.Fatal("the next leave got the last one's delivery")
	}
	// A quit: shared by the receivers it names the same rooms to.
	quit := chat.Delivery{Kind: chat.DelQuit, Rooms: []string{"general"}, GoneRooms: []string{"general"},
		Occupant: chat.Occupant{Nick: "dave", Account: "dave"}, Shared: &chat.Rendered{}}
	q1 := in.of(&quit)
	if q2 := in.of(&quit); q2 != q1 {
		t.Fatal("one quit's deliveries naming the same rooms not shared")
	}
	other := quit
	other.Rooms = []string{"general", "lobby"}
	if q3 := in.of(&other); q3 == q1 || len(q3.Rooms) != 2 {
		t.Fatal("a quit naming other rooms got another receiver's delivery")
	}
	pres := chat.Delivery{Kind: chat.DelPresence, Shared: &chat.Rendered{}}
	if x, y := in.of(&pres), in.of(&pres); x == y {
		t.Fatal("a presence change was shared (it is not a room's fan-out)")
	}
}

// TestSharedJoin: a join's receivers share the fan-out's one copy, kept
// in its Rendered (no comparing); the joiner's echo is its own, and so
// is the next join's.
func TestSharedJoin(t *testing.T) {
	s := New(Config{Domain: boxDomain}, nil, nil)
	join := chat.Delivery{Kind: chat.DelJoin, Room: "general", Occupant: chat.Occupant{Nick: "bob", Account: "bob"},
		AccountFirst: true, Shared: &chat.Rendered{}}
	a, b := s.shared(&join), s.shared(&join)
	if a != b || a == &join || a.Occupant.Nick != "bob" || !a.AccountFirst {
		t.Fatal("one join's deliveries not shared")
	}
	if kept := join.Shared.Value("xmpp-delivery", func() any { return nil }); kept != a {
		t.Fatal("the join's copy is not the fan-out's (kept in its Rendered)")
	}
	echo := join
	echo.Echo, echo.Shared = true, nil
	if x := s.shared(&echo); x == a || !x.Echo {
		t.Fatal("the joiner's echo shared the others' delivery")
	}
	next := join
	next.Occupant.Nick, next.Shared = "carol", &chat.Rendered{}
	if x := s.shared(&next); x == a || x.Occupant.Nick != "carol" {
		t.Fatal("the next join got the last one's delivery")
	}
}

// TestRoomPresenceRebuilds: an occupant's cached presence keeps only its
// bytes; a receiver that needs it as an Element (p.to: an output filter
// that does not let the room through, a WebSocket) gets the same stanza
// built again, byte for byte what the bytes say. The slot's presence is
// used only while what it was made from holds.
func TestRoomPresenceRebuilds(t *testing.T) {
	s := New(Config{Domain: boxDomain}, nil, nil)
	o := chat.Occupant{Nick: "al&ce", Account: "alice", Role: chat.RoleModerator, Affiliation: chat.AffOwner,
		Sessions: []chat.SessionRef{{ID: 7}}, Slot: &chat.Slot{}}
	pr := chat.Presence{Show: chat.ShowAway, Status: `out <for> "lunch"`}
	p := s.roomPresence("general", o, pr)
	if p.tmpl != nil || p.mk == nil || p.prefix == nil {
		t.Fatalf("cached presence: template kept %v, remade %v, bytes %v", p.tmpl != nil, p.mk != nil, p.prefix != nil)
	}
	if again := s.roomPresence("general", o, pr); again != p {
		t.Fatal("the same presence was not taken from the slot")
	}
	demoted := o
	demoted.Role = chat.RoleParticipant
	back := chat.Presence{Show: chat.ShowAvailable}
	for name, q := range map[string]*prepared{
		"another presence": s.roomPresence("general", o, back),
		"another role":     s.roomPresence("general", demoted, pr),
		"another room":     s.roomPresence("lobby", o, pr),
		"no slot":          s.roomPresence("general", chat.Occupant{Nick: o.Nick, Account: o.Account, Role: o.Role, Affiliation: o.Affiliation}, pr),
	} {
		if q == p {
			t.Errorf("%s: the slot's presence was used", name)
		}
	}
	if got, want := string(s.roomPresence("general", o, back).to("x@box.test/r").Bytes(nsClient)),
		string(s.occupantPresenceAs("general", o, back, "x@box.test/r").Bytes(nsClient)); got != want {
		t.Fatalf("after a presence change:\n got %s\nwant %s", got, want)
	}
	p = s.roomPresence("general", o, pr)
	for _, to := range []string{"bob@box.test/phone", `o'neil@box.test/a&b<c>"d"`} {
		want := string(s.occupantPresenceAs("general", o, pr, to).Bytes(nsClient))
		el := p.to(to)
		if got := string(el.Bytes(nsClient)); got != want {
			t.Fatalf("to %q, by its bytes:\n got %s\nwant %s", to, got, want)
		}
		el.Set("id", "changed") // drops the prepared form: written from the Element
		want = string(s.occupantPresenceAs("general", o, pr, to).Set("id", "changed").Bytes(nsClient))
		if got := string(el.Bytes(nsClient)); got != want {
			t.Fatalf("to %q, from the rebuilt Element:\n got %s\nwant %s", to, got, want)
		}
	}
}
