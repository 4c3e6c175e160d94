package appliance

import (
	"time"

	"chatbox/services/turn"
	"chatbox/services/xmpp"
)

// callsService is the STUN/TURN service the settings ask for (calls.*),
// or nil when calls.listen is empty.
func (b *Box) callsService() *turn.Server {
	c := b.cfg.Calls
	if len(c.Listen) == 0 {
		return nil
	}
	return turn.New(turn.Config{
		Listen:                c.Listen,
		RelayIP:               c.RelayIP,
		RelayMinPort:          c.RelayMinPort,
		RelayMaxPort:          c.RelayMaxPort,
		CredentialLifetime:    c.CredentialLifetime,
		Realm:                 b.cfg.Domain,
		ConnectionsPerAddress: b.cfg.Limits.ConnectionsPerAddress,
	}, b.log)
}

// xmppCalls tells the XMPP door (XEP-0215) where the STUN/TURN service is.
type xmppCalls struct{ s *turn.Server }

// callServices is what the XMPP door gets for s: nil (no XEP-0215) when
// calls are off.
func callServices(s *turn.Server) xmpp.CallServices {
	if s == nil {
		return nil
	}
	return xmppCalls{s}
}

// ExternalServices lists STUN then TURN on every listener and transport,
// TURN with fresh credentials for account.
func (x xmppCalls) ExternalServices(account string) []xmpp.ExternalService {
	svcs := x.s.Services()
	out := make([]xmpp.ExternalService, 0, 2*len(svcs))
	for _, sv := range svcs {
		out = append(out, xmpp.ExternalService{Type: "stun", Transport: sv.Transport, Host: sv.Host, Port: sv.Port})
	}
	user, pass, exp := x.s.Credentials(account, time.Now())
	for _, sv := range svcs {
		out = append(out, xmpp.ExternalService{Type: "turn", Transport: sv.Transport, Host: sv.Host, Port: sv.Port,
			Username: user, Password: pass, Expires: exp, Restricted: true})
	}
	return out
}
