package appliance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// ACME (RFC 8555) for a box with a public name (tls.acme): the doors'
// certificate comes from an ACME CA through golang.org/x/crypto's
// autocert: one certificate per name asked for (the domain and its
// subdomains rooms., upload., guest.; nothing else is issued),
// TLS-ALPN-01 answered by the doors' listeners (the CA connects to port
// 443, so the web admin must listen there with https, or a port forward
// lead to a door), the account key and certificates kept in
// <data>/acme, renewal 30 days before expiry (autocert's). Certificates
// (ECDSA P-256) are obtained in the background as the box starts
// (acmeObtain), never during a handshake: until one is issued, or while
// the CA cannot be reached, the box's own certificate (its CA's) is
// served, so the box stays usable. A connection without a server name
// (or naming an IP address) gets the domain's. Left out: HTTP-01 and
// DNS-01, RSA certificates for clients without ECDSA, IP addresses (ACME
// CAs do not issue for them).

const acmeDirName = "acme"

// checkACME adds the problems of the tls.acme settings.
func checkACME(c *Config, bad func(key, format string, args ...any)) {
	switch {
	case c.TLS.CertFile != "":
		bad("tls.acme", "cannot be used with tls.cert_file: choose one source of certificates")
	case strings.HasSuffix(strings.ToLower(c.Domain), ".local") || !strings.Contains(c.Domain, "."):
		bad("tls.acme", "needs a public domain name (an ACME CA cannot check %q): set domain, or turn tls.acme off", c.Domain)
	}
	if d := c.TLS.ACMEDirectory; d != "" {
		if u, err := url.Parse(d); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("tls.acme_directory", "must be an https:// URL, such as https://acme-v02.api.letsencrypt.org/directory, got %q", d)
		}
	}
	if r := c.TLS.ACMERoots; r != "" {
		if _, err := os.Stat(r); err != nil {
			bad("tls.acme_roots", "cannot read %s: %v", r, err)
		}
	}
}

// newACME makes the certificate manager of the settings.
func newACME(cfg Config, log *slog.Logger) (*autocert.Manager, error) {
	dir := filepath.Join(cfg.DataDir, acmeDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tls.acme: create %s: %w (check the data directory's permissions)", dir, err)
	}
	client := &acme.Client{DirectoryURL: cfg.TLS.ACMEDirectory, UserAgent: "chatbox"}
	if client.DirectoryURL == "" {
		client.DirectoryURL = autocert.DefaultACMEDirectory
	}
	if cfg.TLS.ACMERoots != "" {
		pem, err := os.ReadFile(cfg.TLS.ACMERoots)
		if err != nil {
			return nil, fmt.Errorf("tls.acme_roots: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.acme_roots: %s holds no PEM certificate", cfg.TLS.ACMERoots)
		}
		client.HTTPClient = &http.Client{Timeout: time.Minute, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, Proxy: http.ProxyFromEnvironment}}
	}
	domain := strings.ToLower(cfg.Domain)
	log.Info("certificates from ACME", "directory", client.DirectoryURL, "domain", domain, "cache", dir)
	return &autocert.Manager{
		Prompt: autocert.AcceptTOS,
		Cache:  autocert.DirCache(dir),
		Email:  cfg.TLS.ACMEEmail,
		Client: client,
		HostPolicy: func(_ context.Context, host string) error {
			switch strings.ToLower(host) {
			case domain, "rooms." + domain, "upload." + domain, "guest." + domain:
				return nil
			}
			return fmt.Errorf("acme: %q is not a name of this box (%s)", host, domain)
		},
	}, nil
}

// acmeNames are the names the box gets certificates for.
func acmeNames(domain string) []string {
	d := strings.ToLower(domain)
	return []string{d, "rooms." + d, "upload." + d, "guest." + d}
}

// acmeHello asks the manager for an ECDSA P-256 certificate for name.
func acmeHello(name string) *tls.ClientHelloInfo {
	return &tls.ClientHelloInfo{ServerName: name,
		CipherSuites:      []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_AES_128_GCM_SHA256},
		SignatureSchemes:  []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
		SupportedCurves:   []tls.CurveID{tls.CurveP256},
		SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12}}
}

// acmeObtain gets (and every hour re-reads, picking up autocert's
// renewals) the certificate of each name, in the background: a handshake
// never waits for the CA. A failure is retried with back-off (10 s
// doubling to an hour).
func (b *Box) acmeObtain(ctx context.Context) {
	backoff := 10 * time.Second
	for {
		wait := time.Hour
		for _, name := range acmeNames(b.cfg.Domain) {
			// autocert bounds one issuance (5 minutes).
			cert, err := b.acme.GetCertificate(acmeHello(name))
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				b.log.Warn("ACME: no certificate yet; serving the box's own meanwhile", "name", name, "retry_in", backoff, "err", err)
				wait = backoff
				backoff = min(2*backoff, time.Hour)
				break
			}
			if old, _ := b.acmeCerts.Load(name); old != cert && cert.Leaf != nil {
				b.log.Info("ACME certificate ready", "name", name, "expires", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
			}
			b.acmeCerts.Store(name, cert)
		}
		if wait == time.Hour {
			backoff = 10 * time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// acmeTLSConfig serves the ACME certificate once obtained, else the
// box's own.
func (b *Box) acmeTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// A TLS-ALPN-01 challenge (the CA offers only acme-tls/1) is
		// answered with its own configuration: putting acme-tls/1 in
		// every door's protocols would make clients offering others fail.
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acme.ALPNProto {
				return &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{acme.ALPNProto}, GetCertificate: b.acme.GetCertificate}, nil
			}
			return nil, nil
		},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			name := strings.ToLower(hello.ServerName)
			if name == "" || net.ParseIP(name) != nil || name == "localhost" {
				name = strings.ToLower(b.cfg.Domain)
			}
			if c, ok := b.acmeCerts.Load(name); ok {
				return c.(*tls.Certificate), nil
			}
			return &b.tls.Load().Cert, nil
		},
	}
}
