// Package mdns announces the box's listeners on the LAN with DNS-SD over
// multicast DNS (RFC 6762, RFC 6763), and answers A/AAAA questions for the
// box's own host name (<host>.local), so that a phone finds the box's chat
// services and a browser opens http://<host>.local with no avahi on the
// machine.
//
// Service discovery is github.com/grandcat/zeroconf (one server per
// service type); the host name is github.com/pion/mdns/v2 restricted to
// address records. Both share UDP port 5353 with each other and with any
// other responder on the machine (SO_REUSEADDR). See Service for how this
// package closes the gaps of those libraries.
package mdns

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/grandcat/zeroconf"
)

// Config is what the box tells the announcer.
type Config struct {
	// Instance is the DNS-SD instance name users see ("chatbox"): the
	// box's display name.
	Instance string
	// Host is the host label: the box answers <Host>.local and the SRV
	// records point there. A trailing ".local" is dropped.
	Host string
	// Domain and Version go into every TXT record (domain=, version=).
	Domain  string
	Version string
	// Announcements are the services to announce (Build makes them from
	// the listen addresses). Empty: only the host name is answered.
	Announcements []Announcement
	// Interfaces names the network interfaces to announce on; empty
	// means every interface that is up, not loopback and multicast.
	// A named interface that does not exist (yet) is waited for.
	Interfaces []string
	// RegistrationOpen says whether registration is open now (TXT
	// registration=open|closed); nil means closed.
	RegistrationOpen func() bool
	Log              *slog.Logger
	// InterfacePoll is how often interfaces and addresses are checked
	// (default 10 s); RegistrationPoll how often RegistrationOpen is
	// (default 2 s).
	InterfacePoll    time.Duration
	RegistrationPoll time.Duration
	// WaitNetwork, if set, is called once before the first announcement
	// and should return when the network is up or ctx ends (on gokrazy:
	// gokrazy.WaitFor("net-route"), see cmd/chatbox). Address changes
	// after that are picked up by the interface poll as always.
	WaitNetwork func(ctx context.Context)
}

// Service is the appliance service "mdns".
//
// What it adds to zeroconf v1.0.0:
//   - addresses: services are registered with RegisterProxy and no IP
//     list, so every answer carries the addresses of the interface the
//     question came in on (never loopback); the interface set and the
//     addresses are polled, and on any change every server is shut down
//     (goodbye packets, sockets closed: no leak) before new ones are made,
//     which re-announces with the new addresses;
//   - early boot: no interface or no address is not an error; Serve is
//     ready at once and keeps trying with back-off;
//   - host name: zeroconf never answers A/AAAA for <host>.local; a pion
//     responder restricted to A/AAAA does, with the interface's own
//     address;
//   - goodbyes: Serve shuts every server down when ctx ends;
//   - host name suffix: the domain is passed as "local." so RegisterProxy
//     always appends ".local." to the bare host label (its own suffix test
//     would otherwise leave a host such as "pilocal" unqualified).
type Service struct {
	cfg Config
	log *slog.Logger
}

// New makes the service; see Config for the fields.
func New(cfg Config) *Service {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.InterfacePoll <= 0 {
		cfg.InterfacePoll = 10 * time.Second
	}
	if cfg.RegistrationPoll <= 0 {
		cfg.RegistrationPoll = 2 * time.Second
	}
	cfg.Instance = instanceLabel(cfg.Instance)
	cfg.Host = hostLabel(cfg.Host)
	return &Service{cfg: cfg, log: cfg.Log.With("service", "mdns")}
}

// Name is "mdns".
func (s *Service) Name() string { return "mdns" }

// Serve announces until ctx ends, then says goodbye. It is ready at once:
// a box without network yet still boots, and is announced once an
// interface with an address appears.
func (s *Service) Serve(ctx context.Context, ready func()) error {
	ready()
	if s.cfg.WaitNetwork != nil {
		s.cfg.WaitNetwork(ctx)
		if ctx.Err() != nil {
			return nil
		}
	}
	var (
		cur     *responder
		curKey  string
		backoff = time.Second
		waiting bool
	)
	defer func() {
		if cur != nil {
			cur.shutdown()
			s.log.Info("mdns stopped; goodbye sent")
		}
	}()
	regOpen := s.registrationOpen()
	ifTimer := time.NewTimer(0)
	defer ifTimer.Stop()
	regTick := time.NewTicker(s.cfg.RegistrationPoll)
	defer regTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-regTick.C:
			if open := s.registrationOpen(); open != regOpen {
				regOpen = open
				if cur != nil {
					cur.setRegistration(s.cfg, regOpen)
				}
			}
		case <-ifTimer.C:
			ifs, key := s.interfaces()
			wait := s.cfg.InterfacePoll
			if key != curKey || cur == nil {
				if cur != nil {
					cur.shutdown()
					cur, curKey = nil, ""
					s.log.Info("network changed; announcing again")
				}
				switch r, err := s.start(ifs, regOpen); {
				case len(ifs) == 0:
					if !waiting {
						s.log.Info("no usable network interface yet; waiting", "interfaces", s.cfg.Interfaces)
						waiting = true
					}
					wait, backoff = backoff, min(2*backoff, s.cfg.InterfacePoll)
				case err != nil:
					s.log.Warn("cannot announce yet; retrying", "err", err, "in", backoff)
					wait, backoff = backoff, min(2*backoff, s.cfg.InterfacePoll)
				default:
					cur, curKey, backoff, waiting = r, key, time.Second, false
					s.log.Info("announcing", "instance", s.cfg.Instance, "host", s.cfg.Host+".local",
						"services", len(s.cfg.Announcements), "interfaces", ifaceNames(ifs))
				}
			}
			ifTimer.Reset(wait)
		}
	}
}

func (s *Service) registrationOpen() bool {
	return s.cfg.RegistrationOpen != nil && s.cfg.RegistrationOpen()
}

// responder is one generation of servers, for one set of interfaces and
// addresses.
type responder struct {
	servers []*zeroconf.Server
	anns    []Announcement
	host    *hostResponder
}

func (s *Service) start(ifs []net.Interface, regOpen bool) (*responder, error) {
	if len(ifs) == 0 {
		return nil, nil
	}
	r := &responder{}
	for _, a := range s.cfg.Announcements {
		txt := txtFor(a.Service, s.cfg.Domain, s.cfg.Version, regOpen)
		// No IP list: zeroconf then answers with the addresses of the
		// interface each question came in on. Never pass an empty ifs:
		// zeroconf reads it as "every interface".
		srv, err := zeroconf.RegisterProxy(s.cfg.Instance, a.Service, "local.", a.Port, s.cfg.Host, nil, txt, ifs)
		if err != nil {
			r.shutdown()
			return nil, fmt.Errorf("register %s: %w", a.Service, err)
		}
		r.servers = append(r.servers, srv)
		r.anns = append(r.anns, a)
	}
	h, err := startHostResponder(s.cfg.Host, ifs)
	if err != nil {
		r.shutdown()
		return nil, fmt.Errorf("host name %s.local: %w", s.cfg.Host, err)
	}
	r.host = h
	return r, nil
}

func (r *responder) setRegistration(cfg Config, open bool) {
	for i, srv := range r.servers {
		srv.SetText(txtFor(r.anns[i].Service, cfg.Domain, cfg.Version, open))
	}
}

// shutdown sends the goodbyes (TTL 0) and closes every socket.
func (r *responder) shutdown() {
	if r == nil {
		return
	}
	for _, srv := range r.servers {
		srv.Shutdown()
	}
	r.servers = nil
	if r.host != nil {
		r.host.close()
		r.host = nil
	}
}

// instanceLabel makes a DNS-SD instance name zeroconf can carry: it
// formats names as text, so a dot or backslash would split the label.
func instanceLabel(s string) string {
	s = strings.TrimSpace(strings.NewReplacer(".", "-", "\\", "-").Replace(s))
	if len(s) > 63 {
		s = s[:63]
	}
	if s == "" {
		s = "chatbox"
	}
	return s
}

// hostLabel makes a host label: letters, digits and hyphens, lower case.
func hostLabel(s string) string {
	s = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
	s = strings.TrimSuffix(s, ".local")
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i]
	}
	var b strings.Builder
	for _, c := range s {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	s = strings.Trim(b.String(), "-")
	if len(s) > 63 {
		s = s[:63]
	}
	if s == "" {
		s = "chatbox"
	}
	return s
}
