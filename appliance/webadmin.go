package appliance

import (
	"context"
	"io"
	"os"
	"path/filepath"

	"chatbox/services/chat"
	"chatbox/services/xmpp"
	"chatbox/webadmin"
)

// webService is the web admin, if the settings switch it on; it also
// serves the doors' WebSocket endpoints (doorMounts).
func (b *Box) webService(doors []Service) Service {
	c := b.cfg.Web
	if c.Listen == "" {
		return nil
	}
	domain := b.cfg.Domain
	webChat := webChatHandler(b.cfg, b.log)
	return webadmin.New(webadmin.Config{
		Listen:          c.Listen,
		HTTPS:           c.HTTPS,
		TLS:             b.ServerTLSConfig(),
		DataDir:         b.cfg.DataDir,
		Database:        filepath.Join(b.cfg.DataDir, DBFile),
		Name:            b.cfg.Name,
		Domain:          domain,
		Version:         b.version,
		Registration:    b.cfg.Registration.Policy,
		InviteURI:       func(inv chat.AccountInvite) string { return xmpp.InviteURI(domain, inv) },
		IRCTLSListen:    b.cfg.IRC.TLSListen,
		XMPPListen:      b.cfg.XMPP.Listen,
		XMPPTLSListen:   b.cfg.XMPP.TLSListen,
		IRCPlainListen:  b.cfg.IRC.PlainListen,
		LoginsPerMinute: b.cfg.Limits.FailedLoginsPerMinute,
		Mounts:          webChatMounts(doorMounts(doors), webChat),
		Home:            webChat, // the web chat is the listener's home page
	}, webBox{b}, b.log)
}

// webBox is the Box as the web admin sees it (webadmin.BoxAPI): the web
// admin cannot import this package, so states and events are passed as
// its own types.
type webBox struct{ *Box }

func (w webBox) State() string { return string(w.Box.State()) }

func (w webBox) Subscribe(buffer int) (<-chan webadmin.Event, func()) {
	in, stop := w.Box.Subscribe(buffer)
	out := make(chan webadmin.Event, max(buffer, 1))
	go func() {
		defer close(out)
		for ev := range in {
			select { // a slow observer misses events, as on the box's hub
			case out <- webadmin.Event{Time: ev.Time, Kind: ev.Kind, State: string(ev.State), Detail: ev.Detail}:
			default:
			}
		}
	}()
	return out, stop
}

var _ webadmin.BoxAPI = webBox{}

// CACertPEM is the box's CA certificate for devices to trust (nil with a
// certificate from the settings).
func (w webBox) CACertPEM() []byte { return w.Box.TLS().CAPEM() }

// CAFingerprint is the fingerprint the web admin's TLS page shows.
func (w webBox) CAFingerprint() string { return w.Box.TLS().CAFingerprint }

func (w webBox) Settings() (string, []webadmin.Setting, error) {
	path := w.Box.SettingsPath()
	list, err := EditableSettings(path, osHostname())
	if err != nil {
		return path, nil, err
	}
	out := make([]webadmin.Setting, len(list))
	for i, s := range list {
		out[i] = webadmin.Setting{Key: s.Key, Value: s.Value, Help: s.Help}
	}
	return path, out, nil
}

func (w webBox) SaveSettings(values map[string]string) error {
	err := SaveSettings(w.Box.SettingsPath(), osHostname(), values)
	if p, ok := err.(SettingsProblems); ok {
		return webadmin.SettingsError(p)
	}
	if err == nil {
		w.Box.log.Info("settings saved by the web admin; they apply at the next start", "file", w.Box.SettingsPath())
	}
	return err
}

func (w webBox) CheckBackup(ctx context.Context, r io.Reader) error {
	return CheckBackup(ctx, w.Box.cfg, r, osHostname(), w.Box.log)
}

// StageRestore stages the archive and restarts the box (Box.StageRestore).
func (w webBox) StageRestore(ctx context.Context, r io.Reader) error {
	return w.Box.StageRestore(ctx, r, osHostname())
}

// Restart restarts the box in the same process (Box.Restart).
func (w webBox) Restart() error {
	w.Box.Restart("web admin")
	return nil
}

// Panel is the front panel as the web admin shows it.
func (w webBox) Panel() (webadmin.Panel, bool) {
	st, ok := w.Box.Panel()
	if !ok {
		return webadmin.Panel{}, false
	}
	p := webadmin.Panel{Backend: st.Backend}
	for _, l := range st.LEDs {
		p.LEDs = append(p.LEDs, webadmin.LED{Name: l.Name, Pattern: l.Pattern, Meaning: l.Meaning, Blinks: l.Blinks, Lit: l.Lit})
	}
	return p, true
}

// osHostname is the host's name, from which the default domain comes.
func osHostname() string {
	h, _ := os.Hostname()
	return h
}
