package webadmin

import (
	"errors"
	"net/http"
	"strings"
	"time"
)

// The Federation page and API: peer servers on the LAN that the box met
// and holds until the owner approves them (their certificate is then
// pinned, in federation.pinned) or rejects them (federation.block); the
// approved and blocked ones. The box applies a decision at once, without
// a restart (services/xmpp s2s_trust.go), and saves it to the settings.

// FederationPeer is a peer server as the Federation page shows it.
type FederationPeer struct {
	Domain      string    `json:"domain"`
	State       string    `json:"state"` // pending, approved or blocked
	Fingerprint string    `json:"fingerprint,omitempty"`
	Addr        string    `json:"addr,omitempty"`
	Since       time.Time `json:"since,omitzero"`
}

// FederationAPI is what the Federation page needs of the box; a BoxAPI
// that does not have it has no Federation page (404).
type FederationAPI interface {
	// FederationPeers lists the peers; ErrFederationOff when federation
	// does not run.
	FederationPeers() ([]FederationPeer, error)
	// ApproveFederationPeer pins the peer's certificate (fingerprint ""
	// means the one it showed) and returns the pin; a FederationError
	// says why it cannot.
	ApproveFederationPeer(domain, fingerprint string) (string, error)
	// RejectFederationPeer blocks the domain.
	RejectFederationPeer(domain string) error
}

// ErrFederationOff is FederationAPI's answer when federation is off.
var ErrFederationOff = errors.New("federation is off: turn federation.enabled on in the settings and restart")

// FederationError is a decision the box refuses (the owner's mistake).
type FederationError string

func (e FederationError) Error() string { return string(e) }

func (s *Server) federationAPI() (FederationAPI, bool) {
	f, ok := s.box.(FederationAPI)
	return f, ok
}

func (s *Server) federationRoutes(mux *http.ServeMux) {
	if _, ok := s.federationAPI(); !ok {
		return
	}
	mux.HandleFunc("GET /admin/federation", s.admin(s.federationPage))
	mux.HandleFunc("POST /admin/federation/approve", s.admin(s.federationDecide))
	mux.HandleFunc("POST /admin/federation/reject", s.admin(s.federationDecide))
	mux.HandleFunc("/api/v1/federation/peers", s.api(map[string]http.HandlerFunc{"GET": s.apiFederationPeers, "POST": s.apiFederationDecide}))
}

type federationData struct {
	Off                        string
	Pending, Approved, Blocked []FederationPeer
}

func (s *Server) renderFederation(w http.ResponseWriter, p *page, status int) {
	f, _ := s.federationAPI()
	d := federationData{}
	peers, err := f.FederationPeers()
	switch {
	case errors.Is(err, ErrFederationOff):
		d.Off = err.Error()
	case err != nil:
		s.serverError(w, "federation", err)
		return
	}
	for _, pr := range peers {
		switch pr.State {
		case "pending":
			d.Pending = append(d.Pending, pr)
		case "approved":
			d.Approved = append(d.Approved, pr)
		case "blocked":
			d.Blocked = append(d.Blocked, pr)
		}
	}
	p.Title, p.Section, p.Data = "Federation", "federation", d
	s.render(w, status, "federation", p)
}

func (s *Server) federationPage(w http.ResponseWriter, r *http.Request, p *page) {
	switch r.URL.Query().Get("done") {
	case "approved":
		p.Flash = "Server approved: its certificate is pinned, and it is connected to now."
	case "rejected":
		p.Flash = "Server blocked: what waited for it was returned to its senders."
	}
	s.renderFederation(w, p, http.StatusOK)
}

func (s *Server) federationDecide(w http.ResponseWriter, r *http.Request, p *page) {
	f, _ := s.federationAPI()
	domain := strings.TrimSpace(r.PostFormValue("domain"))
	approve := strings.HasSuffix(r.URL.Path, "/approve")
	var err error
	if approve {
		_, err = f.ApproveFederationPeer(domain, r.PostFormValue("fingerprint"))
	} else {
		err = f.RejectFederationPeer(domain)
	}
	var fe FederationError
	switch {
	case err == nil:
		done := "rejected"
		if approve {
			done = "approved"
		}
		s.log.Info("web admin: federation peer "+done, "peer", domain)
		http.Redirect(w, r, "/admin/federation?done="+done, http.StatusSeeOther)
	case errors.As(err, &fe), errors.Is(err, ErrFederationOff):
		p.Problem = domain + ": " + err.Error()
		s.renderFederation(w, p, http.StatusConflict)
	default:
		s.serverError(w, "federation", err)
	}
}

func (s *Server) apiFederationPeers(w http.ResponseWriter, r *http.Request) {
	f, _ := s.federationAPI()
	peers, err := f.FederationPeers()
	switch {
	case errors.Is(err, ErrFederationOff):
		fail(w, http.StatusConflict, "", err.Error())
	case err != nil:
		s.apiServerError(w, "federation peers", err)
	default:
		if peers == nil {
			peers = []FederationPeer{}
		}
		writeJSON(w, http.StatusOK, peers)
	}
}

// apiFederationDecide takes {"domain", "action": "approve"|"reject",
// "fingerprint"} and answers with the peer as it is now.
func (s *Server) apiFederationDecide(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Domain      string `json:"domain"`
		Action      string `json:"action"`
		Fingerprint string `json:"fingerprint"`
	}
	if !decode(w, r, &req) {
		return
	}
	req.Domain = strings.ToLower(strings.TrimSpace(req.Domain))
	if req.Domain == "" {
		fail(w, http.StatusBadRequest, "domain", "name the peer's domain")
		return
	}
	f, _ := s.federationAPI()
	var out FederationPeer
	var err error
	switch req.Action {
	case "approve":
		var pin string
		pin, err = f.ApproveFederationPeer(req.Domain, req.Fingerprint)
		out = FederationPeer{Domain: req.Domain, State: "approved", Fingerprint: pin}
	case "reject":
		err = f.RejectFederationPeer(req.Domain)
		out = FederationPeer{Domain: req.Domain, State: "blocked"}
	default:
		fail(w, http.StatusBadRequest, "action", `action: "approve" or "reject"`)
		return
	}
	var fe FederationError
	switch {
	case err == nil:
		s.log.Info("web admin API: federation peer "+out.State, "peer", req.Domain)
		writeJSON(w, http.StatusOK, out)
	case errors.Is(err, ErrFederationOff):
		fail(w, http.StatusConflict, "", err.Error())
	case errors.As(err, &fe):
		fail(w, http.StatusConflict, "fingerprint", err.Error())
	default:
		s.apiServerError(w, "federation decide", err)
	}
}
