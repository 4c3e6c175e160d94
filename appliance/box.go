// Package appliance is the box as a whole: it loads the settings, owns the
// store and the chat core, starts and stops the services in order, holds
// the box's state (booting, ready, degraded, pairing, shutting down) and
// publishes events that hw and webadmin observe.
package appliance

import (
	"chatbox/internal/memtrim"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme/autocert"

	"chatbox/services/chat"
	"chatbox/services/irc"
	"chatbox/services/mdns"
	"chatbox/services/store"
	"chatbox/services/xmpp"
)

// DBFile is the database's name inside the data directory.
const DBFile = "chatbox.db"

// Options open a Box.
type Options struct {
	Config     Config
	ConfigPath string // the settings file in use, "" for built-in defaults
	Log        *slog.Logger
	Now        func() time.Time
	// Services run after the built-in ones, in order (tests, extensions).
	Services []Service
	// Version is the running chatbox's version, shown to clients.
	Version string
	// WaitNetwork, if set, is what mDNS waits for before its first
	// announcement (mdns.Config.WaitNetwork): the SD image's boot.
	WaitNetwork func(ctx context.Context)
}

// Box is a running chatbox.
type Box struct {
	cfg        Config
	configPath string
	log        *slog.Logger
	hub        *hub
	sup        *supervisor
	lock       *dirLock
	store      *store.Store
	core       *chat.Core
	tls        atomic.Pointer[BoxTLS]
	services   []Service
	version    string
	waitNet    func(ctx context.Context)
	started    time.Time
	stopEvents func()
	actions    actions   // pairing window, Shutdown (pairing.go)
	panel      panelView // the front panel, for the web admin (panel.go)

	// xmppDoor is the XMPP door of this run, for the web admin's
	// Federation page (federation.go).
	xmppDoor  atomic.Pointer[xmpp.Server]
	fedSave   sync.Mutex        // one edit of federation.pinned/block at a time
	acme      *autocert.Manager // tls.acme (acme.go)
	acmeCerts sync.Map          // name -> *tls.Certificate obtained (acme.go)
}

// Open prepares the box: data directory, lock, certificate, store, core,
// default rooms. Nothing listens until Run.
func Open(ctx context.Context, o Options) (*Box, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Config = o.Config.OnLAN()
	b := &Box{cfg: o.Config, configPath: o.ConfigPath, log: o.Log, hub: newHub(o.Now), started: o.Now(), version: o.Version, waitNet: o.WaitNetwork}
	b.sup = newSupervisor(o.Log, b.hub)
	b.sup.pairingOpen = b.PairingOpen
	dir := o.Config.DataDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w (choose another with --data)", dir, err)
	}
	lock, err := lockDataDir(dir)
	if err != nil {
		return nil, err
	}
	b.lock = lock
	ok := false
	defer func() {
		if !ok {
			b.closeStore()
			b.lock.Unlock()
		}
	}()
	if err := applyFactoryReset(dir, o.Log); err != nil {
		return nil, err
	}
	if err := applyPendingRestore(dir, o.Log); err != nil {
		return nil, err
	}
	var boxTLS *BoxTLS
	if o.Config.TLS.CertFile != "" {
		boxTLS, err = LoadTLSFiles(o.Config.TLS.CertFile, o.Config.TLS.KeyFile)
	} else {
		boxTLS, err = LoadOrCreateTLS(filepath.Join(dir, "tls"), o.Config.Domain, o.Config.TLS.ExtraNames, o.Now(), o.Log)
	}
	if err != nil {
		return nil, err
	}
	b.tls.Store(boxTLS)
	if boxTLS.CA != nil {
		b.log.Info("certificate authority", "sha256", boxTLS.CAFingerprint)
	} else {
		b.log.Info("certificate from the settings", "sha256", boxTLS.CAFingerprint)
	}
	if o.Config.TLS.ACME {
		if b.acme, err = newACME(o.Config, o.Log); err != nil { // acme.go
			return nil, err
		}
	}
	b.store, b.core, err = OpenCore(ctx, o.Config, o.Log)
	if err != nil {
		return nil, err
	}
	rooms := o.Config.Rooms.Default
	if o.Config.Event.Enabled {
		rooms = append(slices.Clone(rooms), o.Config.Event.Rooms...)
	}
	for _, name := range rooms {
		err := b.core.CreateRoom(ctx, name, "", chat.DefaultRoomSettings())
		if err != nil && !errors.Is(err, chat.ErrExists) {
			return nil, fmt.Errorf("create default room %q: %w", name, err)
		}
	}
	b.services = append(b.builtinServices(), o.Services...)
	ok = true
	return b, nil
}

// OpenCore opens the store in cfg's data directory and a chat core over it,
// without taking the box's lock: the command-line tools use it while the
// server runs (SQLite arbitrates).
func OpenCore(ctx context.Context, cfg Config, log *slog.Logger) (*store.Store, *chat.Core, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create data directory %s: %w (choose another with --data)", cfg.DataDir, err)
	}
	st, err := store.Open(ctx, filepath.Join(cfg.DataDir, DBFile), log)
	if err != nil {
		return nil, nil, err
	}
	core, err := chat.New(chat.Options{
		Store: st,
		Log:   log,
		Limits: chat.Limits{
			MessagesPerSecond:     float64(cfg.Limits.MessagesPerSecond),
			MessageBurst:          cfg.Limits.MessageBurst,
			FailedLoginsPerMinute: cfg.Limits.FailedLoginsPerMinute,
			MaxMessageBytes:       cfg.Limits.MaxMessageBytes,
			SessionsPerAccount:    cfg.Limits.SessionsPerAccount,
		},
		UsersMayCreateRooms: cfg.Rooms.UsersMayCreate,
		DefaultHistory:      cfg.Rooms.DefaultHistory,
		MaxRoomsPerSession:  cfg.Rooms.MaxRoomsPerUser,
		Event: chat.EventOptions{Enabled: cfg.Event.Enabled, Welcome: cfg.Event.Welcome,
			Rooms: cfg.Event.Rooms, GuestMessagesPerMinute: cfg.Event.GuestMessagesPerMinute},
	})
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, core, nil
}

// builtinServices are the services the settings switch on, in start
// order. Federation registers here when it is built.
func (b *Box) builtinServices() []Service {
	var svcs []Service
	if c := b.cfg.IRC; len(c.TLSListen)+len(c.PlainListen) > 0 {
		svcs = append(svcs, irc.New(irc.Config{
			TLSListen:             c.TLSListen,
			PlainListen:           c.PlainListen,
			TLS:                   b.ServerTLSConfig(),
			ServerName:            b.cfg.Domain,
			Network:               b.cfg.Name,
			Version:               b.version,
			MOTD:                  c.MOTD,
			ConnectionsPerAddress: b.cfg.Limits.ConnectionsPerAddress,
			LinesPerSecond:        float64(b.cfg.Limits.MessagesPerSecond),
			LineBurst:             b.cfg.Limits.MessageBurst,
			HistoryOnJoin:         b.cfg.Rooms.DefaultHistory,
			RegistrationOpen:      b.registrationOpen,
			Guests:                b.cfg.GuestsAllowed(),
			RegistrationTimeout:   b.cfg.Limits.LoginTimeout,
		}, b.core, b.log))
	}
	calls := b.callsService() // before XMPP, which announces it (XEP-0215)
	if calls != nil {
		svcs = append(svcs, calls)
	}
	uploads := b.uploadService() // before XMPP, which hands out its slots (XEP-0363)
	if uploads != nil {
		svcs = append(svcs, uploads)
	}
	if c := b.cfg.XMPP; len(c.Listen)+len(c.TLSListen) > 0 {
		fed, err := b.federationConfig() // appliance/federation.go
		if err != nil {
			b.log.Error("federation: dialback keys will not survive a restart", "err", err)
		}
		door := xmpp.New(xmpp.Config{
			Domain:                b.cfg.Domain,
			Listen:                c.Listen,
			TLSListen:             c.TLSListen,
			TLS:                   b.ServerTLSConfig(),
			AllowPlaintext:        c.AllowPlaintext,
			ComponentListen:       c.ComponentListen,
			Components:            c.ComponentSecrets(),
			MaxStanzaBytes:        c.MaxStanzaBytes,
			ConnectionsPerAddress: b.cfg.Limits.ConnectionsPerAddress,
			StanzasPerSecond:      float64(b.cfg.Limits.MessagesPerSecond) * 2,
			StanzaBurst:           b.cfg.Limits.MessageBurst * 5,
			RegistrationOpen:      b.registrationOpen,
			InvitesOpen:           func() bool { return b.cfg.Registration.Policy != "closed" }, // invite or open
			Version:               b.version,
			Calls:                 callServices(calls),
			Uploads:               uploader(uploads),
			Guests:                b.cfg.GuestsAllowed(),
			Federation:            fed,
			AuthTimeout:           b.cfg.Limits.LoginTimeout,
		}, b.core, b.log)
		b.xmppDoor.Store(door)
		svcs = append(svcs, door)
	}
	if web := b.webService(svcs); web != nil {
		svcs = append(svcs, web)
	}
	l := b.cfg
	// Only doors that exist are announced (federation when it runs: it
	// is part of the XMPP door).
	anns := mdns.Build(mdns.Listeners{IRCTLS: l.IRC.TLSListen, IRCPlain: l.IRC.PlainListen,
		XMPP: l.XMPP.Listen, XMPPTLS: l.XMPP.TLSListen, Web: l.Web.Listen, WebHTTPS: l.Web.HTTPS,
		Federation: l.Federation.Listen, FederationEnabled: l.Federation.Enabled && len(l.XMPP.Listen)+len(l.XMPP.TLSListen) > 0})
	if len(anns) > 0 { // loopback-only listeners (the built-in defaults) are not announced
		host, _ := os.Hostname()
		svcs = append(svcs, mdns.New(mdns.Config{
			Instance: l.Name, Host: host, Domain: l.Domain, Version: b.version,
			Announcements: anns, Interfaces: l.MDNS.Interfaces,
			RegistrationOpen: b.registrationOpen, Log: b.log, WaitNetwork: b.waitNet,
		}))
	}
	return svcs
}

// registrationOpen says whether new accounts may be made from a chat
// client now.
func (b *Box) registrationOpen() bool {
	return b.cfg.Registration.Policy == "open" || b.PairingOpen()
}

// Core is the chat core.
func (b *Box) Core() *chat.Core { return b.core }

// TLS is the box's certificate material now (it is renewed while the box
// runs).
func (b *Box) TLS() *BoxTLS { return b.tls.Load() }

// ServerTLSConfig is a TLS configuration for the doors that always serves
// the current certificate.
func (b *Box) ServerTLSConfig() *tls.Config {
	if b.acme != nil { // acme.go
		return b.acmeTLSConfig()
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return &b.tls.Load().Cert, nil
		},
	}
}

// Config is the settings the box runs with.
func (b *Box) Config() Config { return b.cfg }

// State is the box's state now.
func (b *Box) State() State { return b.hub.State() }

// Uptime is how long the box has been open.
func (b *Box) Uptime() time.Duration { return time.Since(b.started) }

// Subscribe returns the box's events (state changes, service failures and
// the chat's events) and a function that ends the subscription.
func (b *Box) Subscribe(buffer int) (<-chan Event, func()) { return b.hub.Subscribe(buffer) }

// Run starts the services in order, reports ready, and runs until ctx is
// done; then it stops accepting, tells every session the box is going
// down, stops the services in reverse order and closes the store, all
// within stopTimeout.
func (b *Box) Run(ctx context.Context, stopTimeout time.Duration) error {
	ctx, endActions := b.runActions(ctx) // Shutdown cancels ctx
	defer endActions()
	chatEvents, stop := b.core.Events().Subscribe(256)
	b.stopEvents = stop
	go func() {
		for ev := range chatEvents {
			b.hub.publish(Event{Kind: string(ev.Type), Detail: ev.Room})
		}
	}()
	// The chores end before the store closes (and before Run returns:
	// the certificate renewal writes in the data directory).
	maintCtx, stopMaint := context.WithCancel(ctx)
	var chores sync.WaitGroup
	defer chores.Wait()
	defer stopMaint()
	chores.Go(func() { b.maintain(maintCtx, 24*time.Hour) })
	if b.acme != nil {
		chores.Go(func() { b.acmeObtain(maintCtx) }) // acme.go
	}
	if b.cfg.Event.Enabled && b.cfg.Event.History > 0 {
		chores.Go(func() { b.eventSweep(maintCtx, time.Minute) })
	}
	// Once quiet after a burst, the heap's free pages go back to the
	// system (the board's memory is shared with its other daemons);
	// while clients connect fast, the heap is collected more often.
	chores.Go(func() { (&memtrim.Trimmer{Log: b.log, Population: b.core.Population}).Run(maintCtx) })
	err := b.sup.start(ctx, b.services)
	if err == nil {
		b.hub.setState(StateReady, "")
		b.log.Info("chatbox ready", "domain", b.cfg.Domain, "data", b.cfg.DataDir, "services", len(b.services))
		chores.Go(func() { b.checkStore(maintCtx, storeCheckDelay) }) // storecheck.go
		<-ctx.Done()
	}
	stopMaint()
	chores.Wait()
	b.hub.setState(StateShuttingDown, "")
	b.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	b.core.Shutdown("the server is shutting down")
	stopErr := b.sup.stop(sctx)
	closeErr := b.Close()
	if err != nil {
		return err
	}
	return errors.Join(stopErr, closeErr)
}

// maintain runs the daily chores until ctx ends: history retention and
// renewal of the box's own server certificate.
func (b *Box) maintain(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if days := b.cfg.History.RetentionDays; days > 0 {
			if _, err := b.core.PruneHistory(ctx, time.Duration(days)*24*time.Hour); err != nil && ctx.Err() == nil {
				b.log.Error("history retention", "err", err)
			}
		}
		if b.cfg.TLS.CertFile == "" {
			t, err := LoadOrCreateTLS(filepath.Join(b.cfg.DataDir, "tls"), b.cfg.Domain, b.cfg.TLS.ExtraNames, time.Now(), b.log)
			if err != nil {
				b.log.Error("certificate renewal", "err", err)
			} else {
				b.tls.Store(t)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (b *Box) closeStore() error {
	if b.store == nil {
		return nil
	}
	err := b.store.Close()
	b.store = nil
	return err
}

// Close flushes and closes the store and releases the data directory.
// Run calls it; call it yourself only for a Box that never ran.
func (b *Box) Close() error {
	if b.stopEvents != nil {
		b.stopEvents()
		b.stopEvents = nil
	}
	err := b.closeStore()
	b.lock.Unlock()
	return err
}
