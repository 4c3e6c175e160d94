package webadmin

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"chatbox/services/chat"
	"chatbox/services/store"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeBox is the appliance as the web admin sees it, over a real core.
type fakeBox struct {
	core  *chat.Core
	store *store.Store
	clock *clock

	mu       sync.Mutex
	state    string
	pairing  bool
	opened   int
	subs     map[chan Event]struct{}
	panel    *Panel
	staged   [][]byte // archives StageRestore took
	stageErr error
	restarts int

	settingsFake // settings, certificate and backup (settings_test.go)
}

func (f *fakeBox) Core() *chat.Core { return f.core }

func (f *fakeBox) MessagesSince(ctx context.Context, t time.Time) (int, error) {
	return f.store.CountMessagesSince(ctx, t)
}

func (f *fakeBox) Panel() (Panel, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panel == nil {
		return Panel{}, false
	}
	return *f.panel, true
}

// StageRestore keeps the archive and counts a restart, or fails with
// stageErr.
func (f *fakeBox) StageRestore(_ context.Context, r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stageErr != nil {
		return f.stageErr
	}
	f.staged = append(f.staged, data)
	f.restarts++
	return nil
}

func (f *fakeBox) Restart() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restarts++
	return nil
}

func (f *fakeBox) State() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

func (f *fakeBox) Uptime() time.Duration { return 26*time.Hour + 3*time.Minute }

func (f *fakeBox) Subscribe(buffer int) (<-chan Event, func()) {
	ch := make(chan Event, buffer)
	f.mu.Lock()
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.subs, ch)
			f.mu.Unlock()
			close(ch)
		})
	}
}

func (f *fakeBox) publish(ev Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ev.Time.IsZero() {
		ev.Time = f.clock.now()
	}
	ev.State = f.state
	for ch := range f.subs {
		ch <- ev
	}
}

func (f *fakeBox) OpenPairing(time.Duration) error {
	f.mu.Lock()
	f.pairing = true
	f.opened++
	f.state = "pairing"
	f.mu.Unlock()
	f.publish(Event{Kind: EventPairingOpened, Detail: "5m"})
	return nil
}

func (f *fakeBox) PairingOpen() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pairing
}

type fixture struct {
	t     *testing.T
	srv   *Server
	box   *fakeBox
	clock *clock
	dir   string
	web   *httptest.Server
	logs  *strings.Builder
}

type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// newFixture is a web admin over a fresh core, not set up yet, with its
// setup code made.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, dir+"/chat.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	core, err := chat.New(chat.Options{Store: st, Iterations: 64, Limits: chat.Limits{FailedLoginsPerMinute: 100}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := core.CreateRoom(ctx, "general", "", chat.DefaultRoomSettings()); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	box := &fakeBox{core: core, store: st, clock: clk, state: "ready", subs: map[chan Event]struct{}{}}
	logs := &strings.Builder{}
	log := slog.New(slog.NewTextHandler(&syncWriter{b: logs}, nil))
	s := New(Config{DataDir: dir, Name: "testbox", Domain: "box.test", Version: "v9.9", Now: clk.now,
		IRCTLSListen: []string{"127.0.0.1:6697"}, IRCPlainListen: []string{"127.0.0.1:6667"}}, box, log)
	stop := s.Watch()
	t.Cleanup(stop)
	if err := s.auth.startSetup(log); err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(s.Handler())
	t.Cleanup(web.Close)
	return &fixture{t: t, srv: s, box: box, clock: clk, dir: dir, web: web, logs: logs}
}

// browser is one client with its cookies; it does not follow redirects.
type browser struct {
	f    *fixture
	c    *http.Client
	csrf string // the last form token seen
}

func (f *fixture) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{f: f, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type reply struct {
	status   int
	location string
	body     string
	header   http.Header
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(req *http.Request) reply {
	b.f.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfRe.FindSubmatch(body); m != nil {
		b.csrf = string(m[1])
	}
	return reply{resp.StatusCode, resp.Header.Get("Location"), string(body), resp.Header}
}

func (b *browser) get(path string) reply {
	b.f.t.Helper()
	req, _ := http.NewRequest("GET", b.f.web.URL+path, nil)
	return b.do(req)
}

// post sends a form; "csrf" is added from the last page unless given.
func (b *browser) post(path string, kv ...string) reply {
	b.f.t.Helper()
	form := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		form.Set(kv[i], kv[i+1])
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest("POST", b.f.web.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (f *fixture) code() string {
	f.srv.auth.mu.Lock()
	defer f.srv.auth.mu.Unlock()
	return f.srv.auth.code
}

const adminPassword = "correct horse"

// setUp claims the box with the setup code; the browser is logged in.
func (f *fixture) setUp() *browser {
	f.t.Helper()
	b := f.browser()
	b.get("/admin/setup")
	r := b.post("/admin/setup", "name", "Kitchen box", "password", adminPassword, "password2", adminPassword, "code", f.code())
	if r.status != http.StatusSeeOther || r.location != "/admin/" {
		f.t.Fatalf("setup: %d %s\n%s", r.status, r.location, r.body)
	}
	b.get("/admin/") // picks up the session's token
	return b
}

func want(t *testing.T, r reply, status int, contains ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (location %q)\n%s", r.status, status, r.location, r.body)
	}
	for _, c := range contains {
		if !strings.Contains(r.body, c) {
			t.Fatalf("body lacks %q:\n%s", c, r.body)
		}
	}
}

func wantRedirect(t *testing.T, r reply, to string) {
	t.Helper()
	if r.status != http.StatusSeeOther || r.location != to {
		t.Fatalf("got %d to %q, want 303 to %q\n%s", r.status, r.location, to, r.body)
	}
}
