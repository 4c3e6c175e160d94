package xmpp

import (
	"strconv"
	"time"

	"chatbox/services/chat"
)

// XEP-0215 External Service Discovery (urn:xmpp:extdisco:2): the server
// tells its apps where the box's STUN/TURN service is, so that they can
// make audio and video calls on a LAN without the Internet
// (Conversations, Dino, Monal ask for it before a call).
//
// Implemented, on IQs to the domain, only when Config.Calls is set:
//   - <services/> lists every service (STUN and TURN, each over UDP and
//     TCP), or those of the requested 'type'; TURN entries carry fresh
//     time-limited credentials (username, password, expires, and
//     restricted='1': they are needed);
//   - <credentials><service host='…' type='…' [port] [transport]/>
//     returns fresh credentials for the matching services
//     (<item-not-found/> if none matches);
//   - the feature urn:xmpp:extdisco:2 in the domain's disco#info.
//
// Guests (chat.IsGuest) see STUN only and get <forbidden/> for TURN
// credentials: relaying costs the box bandwidth, which accounts only may
// use.
//
// Left out: pushes of updated services (the services do not change
// while the box runs; apps ask again before each call) and the older
// urn:xmpp:extdisco:1.

const nsExtDisco = "urn:xmpp:extdisco:2"

// CallServices tells the XMPP door where the box's external call
// services are (the appliance adapts the STUN/TURN service to it).
type CallServices interface {
	// ExternalServices lists the services for account, with fresh
	// credentials where they are needed.
	ExternalServices(account string) []ExternalService
}

// ExternalService is one XEP-0215 <service/>.
type ExternalService struct {
	Type, Transport, Host string // "stun" or "turn"; "udp" or "tcp"; an IP or name
	Port                  int
	Username, Password    string
	Expires               time.Time // zero: no credentials
	Restricted            bool      // credentials are needed
}

func registerExtDisco(f *features, s *Server) {
	calls := s.cfg.Calls
	if calls == nil {
		return
	}
	f.serverIQ[nsExtDisco] = func(ss *session, iq *Element) {
		if iq.Get("type") != "get" {
			ss.replyErr(iq, "bad-request", "external services are asked with an IQ get")
			return
		}
		q := iq.First()
		switch q.Local {
		case "services":
			typ := q.Get("type")
			out := El(nsExtDisco, "services")
			if typ != "" {
				out.Set("type", typ)
			}
			for _, sv := range servicesFor(calls, ss.account) {
				if typ == "" || sv.Type == typ {
					out.Add(extServiceEl(sv))
				}
			}
			ss.result(iq, out)
		case "credentials":
			want := q.Child(nsExtDisco, "service")
			if want == nil || want.Get("host") == "" || want.Get("type") == "" {
				ss.replyErr(iq, "bad-request", "name the service: <credentials><service host='…' type='…'/></credentials>")
				return
			}
			port := 0
			if p := want.Get("port"); p != "" {
				n, err := strconv.Atoi(p)
				if err != nil || n <= 0 || n > 65535 {
					ss.replyErr(iq, "bad-request", "port must be a port number")
					return
				}
				port = n
			}
			if chat.IsGuest(ss.account) && want.Get("type") == "turn" {
				ss.replyErr(iq, "forbidden", "guests cannot relay calls through the box: log in with an account")
				return
			}
			out := El(nsExtDisco, "credentials")
			found := false
			for _, sv := range servicesFor(calls, ss.account) {
				if sv.Host == want.Get("host") && sv.Type == want.Get("type") &&
					(port == 0 || sv.Port == port) &&
					(want.Get("transport") == "" || sv.Transport == want.Get("transport")) {
					out.Add(extServiceEl(sv))
					found = true
				}
			}
			if !found {
				ss.replyErr(iq, "item-not-found", "this server knows no such service: ask <services/> for the list")
				return
			}
			ss.result(iq, out)
		default:
			ss.replyErr(iq, "bad-request", "ask <services/> or <credentials/>")
		}
	}
	f.serverFeatures = append(f.serverFeatures, nsExtDisco)
}

// servicesFor lists the services account may use: guests get no
// credentials, so no TURN.
func servicesFor(calls CallServices, account string) []ExternalService {
	all := calls.ExternalServices(account)
	if !chat.IsGuest(account) {
		return all
	}
	var out []ExternalService
	for _, sv := range all {
		if !sv.Restricted && sv.Username == "" {
			out = append(out, sv)
		}
	}
	return out
}

// extServiceEl is the <service/> element of sv.
func extServiceEl(sv ExternalService) *Element {
	el := El(nsExtDisco, "service", "type", sv.Type, "host", sv.Host, "port", strconv.Itoa(sv.Port))
	if sv.Transport != "" {
		el.Set("transport", sv.Transport)
	}
	if sv.Username != "" {
		el.Set("username", sv.Username)
		el.Set("password", sv.Password)
	}
	if !sv.Expires.IsZero() {
		el.Set("expires", sv.Expires.UTC().Format("2006-01-02T15:04:05Z"))
	}
	if sv.Restricted {
		el.Set("restricted", "1")
	}
	return el
}
