package webadmin

import (
	"net/http"
	"strconv"
)

// The TLS page: the fingerprint of the box's certificate authority and its
// certificate to download, with how to trust it on each platform.

type tlsData struct {
	Fingerprint string
	HasCA       bool // false: the owner's certificate, nothing to install
	Domain      string
}

func (s *Server) tlsRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/tls", s.admin(s.tlsPage))
	mux.HandleFunc("GET /admin/tls/ca.pem", s.admin(s.tlsCA))
}

func (s *Server) tlsPage(w http.ResponseWriter, r *http.Request, p *page) {
	p.Title, p.Section = "Certificate", "tls"
	p.Data = tlsData{Fingerprint: s.box.CAFingerprint(), HasCA: len(s.box.CACertPEM()) > 0, Domain: s.cfg.Domain}
	s.render(w, http.StatusOK, "tls", p)
}

// tlsCA serves the CA certificate as a file to save or open.
func (s *Server) tlsCA(w http.ResponseWriter, r *http.Request, p *page) {
	pem := s.box.CACertPEM()
	if len(pem) == 0 {
		p.Problem = "This box serves a certificate from its settings (tls.cert_file): it has no certificate authority of its own to install."
		p.Title, p.Section = "Certificate", "tls"
		p.Data = tlsData{Fingerprint: s.box.CAFingerprint(), Domain: s.cfg.Domain}
		s.render(w, http.StatusNotFound, "tls", p)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/x-pem-file")
	h.Set("Content-Disposition", `attachment; filename="chatbox-ca.pem"`)
	h.Set("Content-Length", strconv.Itoa(len(pem)))
	w.Write(pem)
}
