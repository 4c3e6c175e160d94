package appliance

import (
	"chatbox/services/chat"
	"chatbox/services/xmpp"
	"chatbox/webadmin"
)

// webService is the web admin, if the settings switch it on.
func (b *Box) webService() Service {
	c := b.cfg.Web
	if c.Listen == "" {
		return nil
	}
	domain := b.cfg.Domain
	return webadmin.New(webadmin.Config{
		Listen:          c.Listen,
		HTTPS:           c.HTTPS,
		TLS:             b.ServerTLSConfig(),
		DataDir:         b.cfg.DataDir,
		Name:            b.cfg.Name,
		Domain:          domain,
		Version:         b.version,
		Registration:    b.cfg.Registration.Policy,
		InviteURI:       func(inv chat.AccountInvite) string { return xmpp.InviteURI(domain, inv) },
		LoginsPerMinute: b.cfg.Limits.FailedLoginsPerMinute,
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
