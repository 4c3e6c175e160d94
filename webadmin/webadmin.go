// Package webadmin is the box's web admin: server-rendered pages (no
// JavaScript) to set the box up, watch it and manage people and rooms.
// It observes the appliance's state and calls its actions through BoxAPI,
// which the appliance implements; it never touches the store.
package webadmin

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"chatbox/services/chat"
)

// assets are the templates and static files; static/vendor holds what
// `make build` copies from node_modules (htmx), and only its README
// without that: the pages work either way.
//
//go:embed templates/*.html static/*
var assets embed.FS

// htmxFile is htmx in assets, when the build put it there.
const htmxFile = "static/vendor/htmx.min.js"

// Event is something the box tells its observers: a state change, a
// service failure, or a chat event.
type Event struct {
	Time   time.Time
	Kind   string // "state", "service.failed", "pairing.opened", a chat event type…
	State  string
	Detail string
}

// EventPairingOpened is the event kind the box publishes when its pairing
// window opens (button A, or the web admin).
const EventPairingOpened = "pairing.opened"

// BoxAPI is what the web admin needs of the appliance.
type BoxAPI interface {
	// Core is the chat core (accounts, rooms, sessions).
	Core() *chat.Core
	// State is the box's state: booting, ready, degraded, pairing,
	// shutting-down.
	State() string
	Uptime() time.Duration
	// Subscribe returns the box's events and a function that ends the
	// subscription (it closes the channel).
	Subscribe(buffer int) (<-chan Event, func())
	// OpenPairing opens the registration window for d (d <= 0: the
	// box's setting).
	OpenPairing(d time.Duration) error
	PairingOpen() bool

	// CACertPEM is the box's CA certificate in PEM, for devices to trust;
	// nil when the owner provided the certificate (no CA of the box's).
	CACertPEM() []byte
	// CAFingerprint is the SHA-256 fingerprint of the CA (of the
	// server certificate without one), "AB:01:…".
	CAFingerprint() string

	// Settings returns the settings file saved to and every setting in
	// it with its value (the default where it sets none) and help.
	Settings() (path string, list []Setting, err error)
	// SaveSettings checks values (key → value as the form shows it) as a
	// start would and writes the settings file; a refusal is a
	// SettingsError naming each bad key. Saved settings take effect at
	// the next start.
	SaveSettings(values map[string]string) error

	// Backup writes the archive `chatbox backup` makes to w.
	Backup(ctx context.Context, w io.Writer) error
	// CheckBackup checks an archive the way a restore would, and its
	// settings file, without restoring anything.
	CheckBackup(ctx context.Context, r io.Reader) error
	// StageRestore checks an archive as CheckBackup does, keeps it as
	// the pending restore and restarts the box, which puts it in place
	// as it starts again. Once it returns nil the restart is under way.
	StageRestore(ctx context.Context, r io.Reader) error
	// Restart stops the services and starts them again in the same
	// process (saved settings apply).
	Restart() error

	// Panel is the front panel now (the LEDs); ok is false when the box
	// has none running.
	Panel() (p Panel, ok bool)
	// MessagesSince counts the messages stored since t (rooms and
	// direct).
	MessagesSince(ctx context.Context, t time.Time) (int, error)
}

// Panel is the box's front panel as the dashboard shows it.
type Panel struct {
	Backend string // "gpio" or "sim" (simulated: no LEDs on this machine)
	LEDs    []LED
}

// LED is one front-panel LED.
type LED struct {
	Name    string // "status", "activity", "wan"
	Pattern string // how it looks: "double blink"
	Meaning string // what it says: "pairing"
	Blinks  bool   // the pattern repeats
	Lit     bool   // lit at this instant
}

// Setting is one setting as the settings page shows it.
type Setting struct {
	Key   string // dotted: "limits.message_burst"
	Value string // text as is, other values as written in TOML
	Help  string
}

// SettingsError is SaveSettings' refusal: the problem with each key.
type SettingsError map[string]string

func (e SettingsError) Error() string {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s; ", k, e[k])
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// Config sets the web admin up.
type Config struct {
	Listen string      // host:port
	HTTPS  bool        // serve TLS with TLS
	TLS    *tls.Config // required when HTTPS
	// DataDir holds the admin credential, the setup code and the API
	// tokens.
	DataDir string
	// Database is the chat database's file, whose size /metrics shows
	// ("" for none).
	Database string
	// Name is the box's display name until the setup gives one.
	Name    string
	Domain  string
	Version string
	// Registration is the registration policy: closed, invite or open.
	Registration string
	// InviteURI turns an invitation into the link an XMPP app opens.
	InviteURI func(chat.AccountInvite) string
	// IRCTLSListen and IRCPlainListen are the IRC door's listeners,
	// whose ports an invitation shows IRC users.
	IRCTLSListen, IRCPlainListen []string
	// XMPPListen and XMPPTLSListen are the XMPP door's listeners, whose
	// ports the event poster shows.
	XMPPListen, XMPPTLSListen []string
	// LoginsPerMinute bounds failed logins (and setup attempts) per
	// remote address; default 5.
	LoginsPerMinute int
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Mounts are other services served on the web admin's listener,
	// by exact path ("/xmpp-websocket", "/.well-known/host-meta"), or by
	// prefix for a key ending in "/" ("/chat/": the longest such key
	// wins, an exact key before any): the doors' WebSocket endpoints and
	// the like. They are public (they do their own authentication),
	// reachable before the setup, and get none of the admin pages'
	// headers or body limits.
	Mounts map[string]http.Handler
	// Home serves "/" (issue 11's web chat); nil redirects "/" to the
	// admin pages, under /admin/. Like a mount it is public and gets
	// none of the admin pages' headers.
	Home http.Handler
}

// Server is the web admin service.
type Server struct {
	cfg   Config
	box   BoxAPI
	log   *slog.Logger
	pages map[string]*template.Template
	mux   *http.ServeMux

	auth     *auth
	tokens   *tokenStore
	messages atomic.Uint64 // chat messages seen (EventMessage), for /metrics
	events   *ring
	today    todayCache    // "messages today" (dashboard.go)
	thermal  string        // the CPU temperature files, a glob
	restore  restoreUpload // the checked archive waiting for "apply" (backup.go)
	mu       sync.Mutex
	pairedAt time.Time // the last pairing.opened event seen
}

// New makes the web admin; it listens when served.
func New(cfg Config, box BoxAPI, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LoginsPerMinute <= 0 {
		cfg.LoginsPerMinute = 5
	}
	if cfg.InviteURI == nil {
		cfg.InviteURI = func(inv chat.AccountInvite) string {
			return "xmpp:" + cfg.Domain + "?register;preauth=" + inv.Token
		}
	}
	s := &Server{cfg: cfg, box: box, log: log, events: newRing(20),
		thermal: "/sys/class/thermal/thermal_zone*/temp"}
	s.auth = newAuth(cfg.DataDir, cfg.Now, cfg.LoginsPerMinute)
	s.tokens = newTokenStore(cfg.DataDir)
	s.pages = parsePages()
	s.mux = s.routes()
	return s
}

// Name is the service's name.
func (s *Server) Name() string { return "web" }

// Handler is the web admin's HTTP handler (tests; Serve uses it).
func (s *Server) Handler() http.Handler { return s }

// Serve listens and serves until ctx is done.
func (s *Server) Serve(ctx context.Context, ready func()) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return err
	}
	if s.cfg.HTTPS {
		if s.cfg.TLS == nil {
			ln.Close()
			return errors.New("web.https needs a TLS configuration")
		}
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	stop := s.Watch()
	defer stop()
	if err := s.auth.startSetup(s.log); err != nil {
		ln.Close()
		return err
	}
	s.dropUpload() // a checked archive from before is not restored by this run's form
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	scheme := "http"
	if s.cfg.HTTPS {
		scheme = "https"
	}
	s.log.Info("listening", "door", "web", "addr", ln.Addr().String(), "url", scheme+"://"+ln.Addr().String()+"/admin/")
	ready()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	<-done
	return nil
}

// Watch subscribes to the box's events (the dashboard's list, the setup
// page's button press) until the returned function is called. Serve calls
// it; tests that use Handler alone may.
func (s *Server) Watch() func() {
	ch, stop := s.box.Subscribe(64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range ch {
			if ev.Time.IsZero() {
				ev.Time = s.cfg.Now()
			}
			if ev.Kind == string(chat.EventMessage) {
				s.messages.Add(1)
			}
			s.events.add(ev)
			if ev.Kind == EventPairingOpened {
				s.mu.Lock()
				s.pairedAt = ev.Time
				s.mu.Unlock()
			}
		}
	}()
	return func() {
		stop()
		<-done
	}
}

func (s *Server) lastPairing() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pairedAt
}

// parsePages builds one template per page: the layout and the page's
// "content".
func parsePages() map[string]*template.Template {
	_, err := fs.Stat(assets, htmxFile)
	hasHTMX := err == nil
	versions := map[string]string{}
	fs.WalkDir(assets, "static", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := assets.ReadFile(path); err == nil {
				sum := sha256.Sum256(b)
				versions[strings.TrimPrefix(path, "static/")] = hex.EncodeToString(sum[:6])
			}
		}
		return nil
	})
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.Local().Format("2006-01-02 15:04:05")
		},
		"bytes": humanBytes,
		// htmx says whether the pages may load htmx (embedded).
		"htmx": func() bool { return hasHTMX },
		// asset is a static file's URL with its content's hash, which
		// lets browsers cache it for good.
		"asset": func(name string) string {
			if v, ok := versions[name]; ok {
				return "/admin/static/" + name + "?v=" + v
			}
			return "/admin/static/" + name
		},
		// err shows a field's error, naming the field, or nothing.
		"err": func(errs map[string]string, field string) template.HTML {
			msg, ok := errs[field]
			if !ok {
				return ""
			}
			return template.HTML(`<p class="err" id="` + field + `-err">` + template.HTMLEscapeString(field) + ": " + template.HTMLEscapeString(msg) + "</p>")
		},
	}
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html"))
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t := template.Must(template.Must(layout.Clone()).ParseFS(assets, n))
		pages[n[len("templates/"):len(n)-len(".html")]] = t
	}
	return pages
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// ring keeps the last n events.
type ring struct {
	mu   sync.Mutex
	buf  []Event
	next int
	full bool
}

func newRing(n int) *ring { return &ring{buf: make([]Event, n)} }

func (r *ring) add(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf[r.next] = ev
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
}

// newestFirst returns the events kept, newest first.
func (r *ring) newestFirst() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.buf)
	}
	out := make([]Event, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}
