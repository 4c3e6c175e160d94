package webadmin

import (
	"context"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"chatbox/services/chat"
)

// openSession connects account through door, in room if not "".
func openSession(t *testing.T, core *chat.Core, account, door, room string) *chat.Session {
	t.Helper()
	ctx := context.Background()
	s, err := core.Open(ctx, chat.SessionInfo{Account: account, Door: door, Resource: account}, chat.SinkFunc(func(chat.Delivery) {}))
	if err != nil {
		t.Fatal(err)
	}
	if room != "" {
		if _, err := core.Join(ctx, s, room, account, ""); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// refusals checks what every admin POST must refuse: no session (to the
// login page) and a bad CSRF token (403).
func refusals(t *testing.T, f *fixture, b *browser, path string, kv ...string) {
	t.Helper()
	wantRedirect(t, f.browser().post(path, kv...), "/admin/login")
	want(t, b.post(path, append(kv, "csrf", "forged")...), http.StatusForbidden, "security token")
	want(t, b.post(path, append(kv, "csrf", "")...), http.StatusForbidden)
}

func TestDashboard(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	ctx := context.Background()
	core := f.box.core
	core.CreateAccount(ctx, "alice", "password-alice", false)
	core.CreateAccount(ctx, "bob", "password-bob", false)
	openSession(t, core, "alice", "irc", "")
	openSession(t, core, "alice", "xmpp", "")
	openSession(t, core, "bob", "xmpp", "")
	for i := range 25 {
		f.box.publish(Event{Kind: "service.ready", Detail: "door" + string(rune('a'+i))})
	}
	f.box.publish(Event{Kind: "state", Detail: "a failure"})
	deadline := time.Now().Add(5 * time.Second)
	for evs := f.srv.events.newestFirst(); len(evs) == 0 || evs[0].Detail != "a failure"; evs = f.srv.events.newestFirst() {
		if time.Now().After(deadline) {
			t.Fatal("the events did not arrive")
		}
		time.Sleep(5 * time.Millisecond)
	}
	wantRedirect(t, f.browser().get("/admin/"), "/admin/login")
	r := b.get("/admin/")
	want(t, r, http.StatusOK, "ready", "1d 2h3m0s", "v9.9", "box.test", "Memory", "Disk free", "Accounts", "a failure", "by invitation or button A")
	if !regexp.MustCompile(`<dt>Accounts</dt><dd><a href="/admin/people">2</a>`).MatchString(r.body) ||
		!regexp.MustCompile(`<dt>Rooms</dt><dd><a href="/admin/rooms">1</a>`).MatchString(r.body) ||
		!strings.Contains(r.body, "3 sessions") ||
		!strings.Contains(r.body, "<dt>irc</dt><dd>1</dd>") || !strings.Contains(r.body, "<dt>xmpp</dt><dd>2</dd>") {
		t.Fatalf("counts:\n%s", r.body)
	}
	if n := strings.Count(r.body, "<li><time>"); n != 20 {
		t.Fatalf("%d events shown, want the last 20", n)
	}
	if strings.Contains(r.body, "doora<") || !strings.Contains(r.body, "doory") {
		t.Fatal("not the newest events")
	}
}

func TestRing(t *testing.T) {
	r := newRing(3)
	if len(r.newestFirst()) != 0 {
		t.Fatal("not empty")
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		r.add(Event{Kind: k})
	}
	var got []string
	for _, e := range r.newestFirst() {
		got = append(got, e.Kind)
	}
	if strings.Join(got, "") != "dcb" {
		t.Fatalf("got %v", got)
	}
}

func TestPeopleAccounts(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	ctx := context.Background()
	core := f.box.core
	wantRedirect(t, f.browser().get("/admin/people"), "/admin/login")
	want(t, b.get("/admin/people"), http.StatusOK, "No accounts yet", "New account", "Invitations", "Open registration")

	refusals(t, f, b, "/admin/people/create", "name", "alice", "password", "password-alice")
	want(t, b.post("/admin/people/create", "name", "1alice", "password", "password-alice"), http.StatusBadRequest, `id="name-err">name: &#34;1alice&#34; must start with a letter a-z`)
	want(t, b.post("/admin/people/create", "name", "alice", "password", "short"), http.StatusBadRequest, "password: at least 8 characters", `value="alice"`)
	want(t, b.post("/admin/people/create", "name", "", "password", ""), http.StatusBadRequest, "name: ", "password: ")
	r := b.post("/admin/people/create", "name", "Alice", "password", "password-alice")
	wantRedirect(t, r, "/admin/people?done=created&name=alice")
	want(t, b.get(r.location), http.StatusOK, "Account alice created.", `href="/admin/people/edit?name=alice"`)
	want(t, b.post("/admin/people/create", "name", "alice", "password", "password-alice"), http.StatusBadRequest, "name: that name is taken")
	want(t, b.post("/admin/people/create", "name", "nickserv", "password", "password-alice"), http.StatusBadRequest, "name: &#34;nickserv&#34; is reserved")
	wantRedirect(t, b.post("/admin/people/create", "name", "bob", "password", "password-bob", "admin", "yes"), "/admin/people?done=created&name=bob")
	if a, err := core.Account(ctx, "bob"); err != nil || !a.Admin {
		t.Fatalf("bob: %v %v", a, err)
	}
	// A forged flash says nothing.
	if r := b.get("/admin/people?done=<script>&name=<b>"); strings.Contains(r.body, "<script>") || strings.Contains(r.body, "<b>") {
		t.Fatal("flash reflects the query")
	}

	// Online sessions per door.
	openSession(t, core, "alice", "irc", "")
	openSession(t, core, "alice", "irc", "")
	openSession(t, core, "alice", "xmpp", "")
	r = b.get("/admin/people")
	want(t, r, http.StatusOK, "irc 2", "xmpp 1", "offline")
	want(t, b.get("/admin/people/edit?name=alice"), http.StatusOK, "alice", "New password", "Make admin", "irc 2")
	want(t, b.get("/admin/people/edit?name=nobody"), http.StatusNotFound, "name: no such account")
	want(t, b.get("/admin/people/edit?name=../x"), http.StatusNotFound, "name: no such account")

	// Password.
	refusals(t, f, b, "/admin/people/password", "name", "alice", "password", "new-password-1")
	want(t, b.post("/admin/people/password", "name", "alice", "password", "short"), http.StatusBadRequest, "password: at least 8 characters")
	want(t, b.post("/admin/people/password", "name", "nobody", "password", "new-password-1"), http.StatusNotFound, "name: no such account")
	want(t, b.post("/admin/people/password", "name", "", "password", "new-password-1"), http.StatusBadRequest, "name: no such account")
	wantRedirect(t, b.post("/admin/people/password", "name", "alice", "password", "new-password-1"), "/admin/people?done=password&name=alice")
	if _, err := core.Authenticate(ctx, "alice", "new-password-1", "127.0.0.1", "test"); err != nil {
		t.Fatalf("new password: %v", err)
	}

	// Admin.
	refusals(t, f, b, "/admin/people/admin", "name", "alice", "admin", "yes")
	want(t, b.post("/admin/people/admin", "name", "alice", "admin", "maybe"), http.StatusBadRequest, "admin: yes or no")
	want(t, b.post("/admin/people/admin", "name", "nobody", "admin", "yes"), http.StatusNotFound, "name: no such account")
	wantRedirect(t, b.post("/admin/people/admin", "name", "alice", "admin", "yes"), "/admin/people?done=admin&name=alice")
	want(t, b.get("/admin/people/edit?name=alice"), http.StatusOK, "Remove admin rights")
	wantRedirect(t, b.post("/admin/people/admin", "name", "alice", "admin", "no"), "/admin/people?done=unadmin&name=alice")
	if a, _ := core.Account(ctx, "alice"); a.Admin {
		t.Fatal("alice still admin")
	}

	// Delete.
	want(t, b.get("/admin/people/delete?name=alice"), http.StatusOK, "Delete alice?", "direct messages are deleted", "in rooms stays", "3 open sessions end now")
	want(t, b.get("/admin/people/delete?name=nobody"), http.StatusNotFound, "name: no such account")
	refusals(t, f, b, "/admin/people/delete", "name", "alice", "confirm", "yes")
	want(t, b.post("/admin/people/delete", "name", "alice"), http.StatusBadRequest, "confirm: tick the box")
	want(t, b.post("/admin/people/delete", "name", "nobody", "confirm", "yes"), http.StatusNotFound, "name: no such account")
	wantRedirect(t, b.post("/admin/people/delete", "name", "alice", "confirm", "yes"), "/admin/people?done=deleted&name=alice")
	if _, err := core.Account(ctx, "alice"); err == nil {
		t.Fatal("alice still there")
	}
	if strings.Contains(b.get("/admin/people").body, "edit?name=alice") {
		t.Fatal("alice still listed")
	}
}

var tokenRe = regexp.MustCompile(`preauth=([a-z2-7]+)`)

func TestPeopleInvites(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	ctx := context.Background()
	b.get("/admin/people")
	refusals(t, f, b, "/admin/people/invite", "uses", "1")
	want(t, b.post("/admin/people/invite", "uses", "0"), http.StatusBadRequest, "uses: a number of accounts from 1 to 1000")
	want(t, b.post("/admin/people/invite", "uses", "x"), http.StatusBadRequest, "uses: ")
	want(t, b.post("/admin/people/invite", "days", "400"), http.StatusBadRequest, "days: a number of days from 1 to 366")
	want(t, b.post("/admin/people/invite", "account", "-x"), http.StatusBadRequest, "account: ")
	f.box.core.CreateAccount(ctx, "taken", "password-taken", false)
	want(t, b.post("/admin/people/invite", "account", "taken"), http.StatusBadRequest, "account: that name is taken")

	r := b.post("/admin/people/invite", "uses", "3", "days", "2", "account", "")
	want(t, r, http.StatusOK, "xmpp:box.test?register;preauth=", "<svg", `class="qr"`, "up to 3 accounts")
	tok := tokenRe.FindStringSubmatch(r.body)[1]
	invs, _ := f.box.core.AccountInvites(ctx)
	if len(invs) != 1 || invs[0].Token != tok || invs[0].Uses != 3 || invs[0].Expires.Sub(invs[0].Created) != 48*time.Hour {
		t.Fatalf("invites %+v", invs)
	}
	// The IRC settings to type, with the NickServ command that redeems
	// the token (the admin page was reached on loopback: loopback
	// listeners are shown).
	want(t, r, http.StatusOK, "<code>6697</code>, with TLS", "<code>6667</code> without",
		"/msg NickServ REGISTER your-password "+tok)
	want(t, b.get("/admin/people"), http.StatusOK, "preauth="+tok)
	refusals(t, f, b, "/admin/people/invite/revoke", "token", tok)
	want(t, b.post("/admin/people/invite/revoke", "token", ""), http.StatusBadRequest, "token: no such invitation")
	want(t, b.post("/admin/people/invite/revoke", "token", "aaaa"), http.StatusNotFound, "token: no such invitation")
	wantRedirect(t, b.post("/admin/people/invite/revoke", "token", tok), "/admin/people?done=revoked&name=")
	if invs, _ := f.box.core.AccountInvites(ctx); len(invs) != 0 {
		t.Fatalf("still %v", invs)
	}
}

func TestPeoplePairing(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	b.get("/admin/people")
	refusals(t, f, b, "/admin/people/pairing")
	if f.box.opened != 0 {
		t.Fatal("opened by a refused request")
	}
	r := b.post("/admin/people/pairing")
	wantRedirect(t, r, "/admin/people?done=pairing&name=")
	if !f.box.PairingOpen() || f.box.opened != 1 {
		t.Fatal("pairing not opened")
	}
	want(t, b.get(r.location), http.StatusOK, "Registration is open now")
}

func TestRooms(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	ctx := context.Background()
	core := f.box.core
	core.CreateAccount(ctx, "alice", "password-alice", false)
	core.CreateAccount(ctx, "bob", "password-bob", false)
	openSession(t, core, "alice", "irc", "general")
	openSession(t, core, "bob", "xmpp", "general")
	wantRedirect(t, f.browser().get("/admin/rooms"), "/admin/login")
	r := b.get("/admin/rooms")
	want(t, r, http.StatusOK, "general", "#general on IRC", "general@rooms.box.test", "2 here", "alice <span class=\"tag\">irc</span>", "bob <span class=\"tag\">xmpp</span>")

	refusals(t, f, b, "/admin/rooms/create", "name", "kitchen")
	want(t, b.post("/admin/rooms/create", "name", "no spaces"), http.StatusBadRequest, `id="name-err">name: &#34;no spaces&#34; may hold only a-z`)
	want(t, b.post("/admin/rooms/create", "name", "general"), http.StatusBadRequest, "name: a room with that name exists")
	wantRedirect(t, b.post("/admin/rooms/create", "name", "Kitchen"), "/admin/rooms?done=room-created&name=kitchen")
	want(t, b.get("/admin/rooms?done=room-created&name=kitchen"), http.StatusOK, "Room kitchen created.", "Nobody here now")

	want(t, b.get("/admin/rooms/delete?name=general"), http.StatusOK, "Delete room general?", "all its history", "The 2 people in it now are sent out")
	want(t, b.get("/admin/rooms/delete?name=nowhere"), http.StatusNotFound, "name: no such room")
	refusals(t, f, b, "/admin/rooms/delete", "name", "kitchen", "confirm", "yes")
	want(t, b.post("/admin/rooms/delete", "name", "kitchen"), http.StatusBadRequest, "confirm: tick the box")
	want(t, b.post("/admin/rooms/delete", "name", "no such", "confirm", "yes"), http.StatusBadRequest, "name: no such room")
	want(t, b.post("/admin/rooms/delete", "name", "nowhere", "confirm", "yes"), http.StatusNotFound, "name: no such room")
	wantRedirect(t, b.post("/admin/rooms/delete", "name", "general", "confirm", "yes"), "/admin/rooms?done=room-deleted&name=general")
	rooms, _ := core.Rooms(ctx)
	if len(rooms) != 1 || rooms[0].Name != "kitchen" {
		t.Fatalf("rooms %v", rooms)
	}
}

func TestQRCode(t *testing.T) {
	svg := string(qrSVG("xmpp:box.test?register;preauth=abcdefghijklmnopqrstuvwxyz"))
	if !strings.HasPrefix(svg, "<svg") || !strings.Contains(svg, "M4 4h1v1h-1z") { // finder pattern's corner
		t.Fatalf("svg %.200s", svg)
	}
	if qrSVG(strings.Repeat("x", 5000)) != "" {
		t.Fatal("too long a text made a code")
	}
}

// TestDashboardLive: the live part (also served alone for htmx) shows the
// LED panel, messages since local midnight (cached a while), the CPU's
// hottest thermal zone, and htmx's attributes; without a session the
// fragment answers 401 with htmx's redirect to the login page.
func TestDashboardLive(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	ctx := context.Background()
	now := f.clock.now() // 09:00 UTC, the fixture's zone
	for i, at := range []time.Time{now.Add(-9*time.Hour - time.Second), now.Add(-8 * time.Hour), now.Add(-time.Minute), now} {
		m := &chat.Message{ID: "m" + string(rune('a'+i)), Room: "general", From: "alice", Time: at, Body: "hi"}
		if err := f.box.store.AppendMessage(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
	}
	zones := t.TempDir()
	for name, v := range map[string]string{"thermal_zone0": "45000\n", "thermal_zone1": "51234\n", "thermal_zone2": "garbage"} {
		os.MkdirAll(filepath.Join(zones, name), 0o700)
		os.WriteFile(filepath.Join(zones, name, "temp"), []byte(v), 0o600)
	}
	f.srv.thermal = filepath.Join(zones, "thermal_zone*", "temp")
	f.clock.add(31 * time.Second) // past the count setUp's dashboard cached
	f.box.mu.Lock()
	f.box.panel = &Panel{Backend: "sim", LEDs: []LED{
		{Name: "status", Pattern: "double blink", Meaning: "pairing", Blinks: true},
		{Name: "activity", Pattern: "off", Meaning: "idle"},
		{Name: "wan", Pattern: "on", Meaning: "federation up", Lit: true}}}
	f.box.mu.Unlock()

	r := b.get("/admin/")
	want(t, r, http.StatusOK, `<div id="live" hx-get="/admin/live" hx-trigger="every 5s" hx-swap="outerHTML">`,
		`<dd id="messages-today">3</dd>`, `<dd id="cpu-temp">51.2 °C</dd>`,
		`<span class="led led-status blinks" aria-hidden="true"></span> <strong>status</strong> double blink <span class="muted">(pairing)</span>`,
		`<span class="led led-wan lit" aria-hidden="true"></span>`, "Simulated")
	live := b.get("/admin/live")
	want(t, live, http.StatusOK, `<div id="live"`, `<dd id="messages-today">3</dd>`, "double blink")
	if strings.Contains(live.body, "<html") || strings.Contains(live.body, "<nav") {
		t.Fatalf("the fragment is a whole page:\n%s", live.body)
	}
	// The count is cached for 30 s, then read again.
	f.box.store.AppendMessage(ctx, &chat.Message{ID: "late", Room: "general", From: "alice", Time: now, Body: "hi"}, nil)
	want(t, b.get("/admin/live"), http.StatusOK, `<dd id="messages-today">3</dd>`)
	f.clock.add(30 * time.Second)
	want(t, b.get("/admin/live"), http.StatusOK, `<dd id="messages-today">4</dd>`)

	// No sensor, no panel: neither is shown.
	f.srv.thermal = filepath.Join(t.TempDir(), "none*")
	f.box.mu.Lock()
	f.box.panel = nil
	f.box.mu.Unlock()
	live = b.get("/admin/live")
	if strings.Contains(live.body, "cpu-temp") || strings.Contains(live.body, "Front panel") {
		t.Fatalf("absent sensor or panel shown:\n%s", live.body)
	}

	// Refusals: no session (a browser is sent to the login page, htmx is
	// told to go there).
	wantRedirect(t, f.browser().get("/admin/live"), "/admin/login")
	req, _ := http.NewRequest("GET", f.web.URL+"/admin/live", nil)
	req.Header.Set("HX-Request", "true")
	r = f.browser().do(req)
	if r.status != http.StatusUnauthorized || r.header.Get("HX-Redirect") != "/admin/login" {
		t.Fatalf("htmx without a session: %d, HX-Redirect %q", r.status, r.header.Get("HX-Redirect"))
	}
}

// TestHTMXLinkedWhenEmbedded: the layout loads htmx (with its inline
// styles off, for the strict CSP) exactly when the build embedded it.
func TestHTMXLinkedWhenEmbedded(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	r := b.get("/admin/")
	_, err := fs.Stat(assets, htmxFile)
	linked := regexp.MustCompile(`<script src="/admin/static/vendor/htmx.min.js\?v=[0-9a-f]{12}" defer></script>`).MatchString(r.body) &&
		strings.Contains(r.body, `"includeIndicatorStyles":false`)
	if linked != (err == nil) {
		t.Fatalf("htmx embedded: %v, linked: %v", err == nil, linked)
	}
	if err == nil {
		want(t, b.get("/admin/static/vendor/htmx.min.js"), http.StatusOK, "htmx")
	}
	csp := r.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self';") || !strings.Contains(csp, "connect-src 'self';") || strings.Contains(csp, "unsafe") {
		t.Fatalf("CSP %q", csp)
	}
}

// TestAssetCaching: pages link static files with their content's hash and
// those URLs may be cached for good; pages themselves are never stored.
func TestAssetCaching(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	r := b.get("/admin/")
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("page Cache-Control %q", cc)
	}
	m := regexp.MustCompile(`href="(/admin/static/style.css\?v=[0-9a-f]{12})"`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no versioned stylesheet:\n%s", r.body)
	}
	css := b.get(m[1])
	if css.status != http.StatusOK || css.header.Get("Cache-Control") != "public, max-age=31536000, immutable" || !strings.Contains(css.body, ".card") {
		t.Fatalf("versioned asset: %d %q", css.status, css.header.Get("Cache-Control"))
	}
	if cc := b.get("/admin/static/style.css").header.Get("Cache-Control"); cc != "no-cache" {
		t.Fatalf("unversioned asset Cache-Control %q", cc)
	}
}

func TestInviteIRCPorts(t *testing.T) {
	for _, c := range []struct {
		listen []string
		local  bool
		want   string
	}{
		{[]string{"127.0.0.1:6697"}, false, ""},
		{[]string{"127.0.0.1:6697"}, true, "6697"},
		{[]string{"[::1]:6697", "0.0.0.0:7000"}, false, "7000"},
		{[]string{"localhost:6697", ":6698"}, false, "6698"},
		{[]string{"127.0.0.1:0"}, true, ""},
		{nil, true, ""},
	} {
		if got := reachablePort(c.listen, c.local); got != c.want {
			t.Errorf("reachablePort(%q, local=%v) = %q, want %q", c.listen, c.local, got, c.want)
		}
	}
}
