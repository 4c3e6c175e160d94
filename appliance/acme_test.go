package appliance

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestACMEWithPebble: a box with tls.acme gets its certificate from a
// local ACME CA (pebble, Debian's package, on loopback, validating
// nothing: PEBBLE_VA_ALWAYS_VALID) in the background, serves its own
// until then, and then the CA's for its names; the account and the
// certificate are kept in <data>/acme. Skipped without pebble (.ci/run
// installs it).
func TestACMEWithPebble(t *testing.T) {
	bin, err := exec.LookPath("pebble")
	if err != nil {
		t.Skip("pebble is not installed (apt-get install pebble; .ci/run installs it)")
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "pebble-cert.pem"), filepath.Join(dir, "pebble-key.pem")
	writeACMETestCert(t, certFile, keyFile, "127.0.0.1")
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a free port for pebble's API
	if err != nil {
		t.Fatal(err)
	}
	apiAddr := ln.Addr().String()
	ln.Close()
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mgmtAddr := mln.Addr().String()
	mln.Close()
	cfgFile := filepath.Join(dir, "pebble.json")
	os.WriteFile(cfgFile, fmt.Appendf(nil, `{"pebble": {"listenAddress": %q, "managementListenAddress": %q,
  "certificate": %q, "privateKey": %q, "httpPort": 1, "tlsPort": 1, "ocspResponderURL": "", "externalAccountBindingRequired": false}}`,
		apiAddr, mgmtAddr, certFile, keyFile), 0o644)
	var plog bytes.Buffer
	var plogMu sync.Mutex
	cmd := exec.Command(bin, "-config", cfgFile)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_ALWAYS_VALID=1", "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	w := acmeWriterFunc(func(b []byte) (int, error) { plogMu.Lock(); defer plogMu.Unlock(); return plog.Write(b) })
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			plogMu.Lock()
			t.Logf("pebble log:\n%s", plog.String())
			plogMu.Unlock()
		}
	})
	// pebble's directory answers once it is up.
	pool := x509.NewCertPool()
	pemBytes, _ := os.ReadFile(certFile)
	pool.AppendCertsFromPEM(pemBytes)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	acmeWaitFor(t, "pebble's directory", func() bool {
		resp, err := hc.Get("https://" + apiAddr + "/dir")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	cfg := Defaults("testhost")
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Domain = "chat.example.org"
	cfg.TLS.ACME = true
	cfg.TLS.ACMEEmail = "owner@example.org"
	cfg.TLS.ACMEDirectory = "https://" + apiAddr + "/dir"
	cfg.TLS.ACMERoots = certFile
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	box, err := Open(ctx, Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); box.Close() })
	leaf := func(name string) *x509.Certificate {
		t.Helper()
		c, s := net.Pipe()
		defer c.Close()
		defer s.Close()
		go tls.Server(s, box.ServerTLSConfig()).Handshake()
		tc := tls.Client(c, &tls.Config{ServerName: name, InsecureSkipVerify: true})
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			t.Fatalf("handshake for %s: %v", name, err)
		}
		return tc.ConnectionState().PeerCertificates[0]
	}
	// Before: the box's own certificate, from its CA.
	if own := leaf("chat.example.org"); !strings.Contains(own.Issuer.CommonName, "chat.example.org") || strings.Contains(own.Issuer.CommonName, "Pebble") {
		t.Fatalf("before ACME the box served a certificate from %q; want its own CA's", own.Issuer.CommonName)
	}
	go box.acmeObtain(ctx)
	acmeWaitFor(t, "the ACME certificates", func() bool {
		for _, n := range acmeNames(cfg.Domain) {
			if _, ok := box.acmeCerts.Load(n); !ok {
				return false
			}
		}
		return true
	})
	// pebble's root, from its management API, verifies what is served.
	resp, err := hc.Get("https://" + mgmtAddr + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	rootPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble's root: %s", rootPEM)
	}
	for _, name := range []string{"chat.example.org", "rooms.chat.example.org", ""} {
		c, s := net.Pipe()
		go tls.Server(s, box.ServerTLSConfig()).Handshake()
		tc := tls.Client(c, &tls.Config{ServerName: name, RootCAs: roots, InsecureSkipVerify: name == ""})
		c.SetDeadline(time.Now().Add(10 * time.Second))
		err := tc.Handshake()
		if err == nil && name == "" {
			_, err = tc.ConnectionState().PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: cfg.Domain, Roots: roots,
				Intermediates: acmeCertPool(tc.ConnectionState().PeerCertificates[1:])})
		}
		c.Close()
		s.Close()
		if err != nil {
			t.Fatalf("%q: the served certificate does not verify with pebble's root for the name: %v", name, err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(cfg.DataDir, acmeDirName)); len(ents) < 2 {
		t.Fatalf("%s holds %d files; want the account key and the certificates", filepath.Join(cfg.DataDir, acmeDirName), len(ents))
	}
}

func acmeCertPool(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

type acmeWriterFunc func([]byte) (int, error)

func (f acmeWriterFunc) Write(b []byte) (int, error) { return f(b) }

// acmeWaitFor polls cond (bounded: a minute).
func acmeWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s within a minute", what)
}

// writeACMETestCert writes a self-signed certificate for ip and its key.
func writeACMETestCert(t *testing.T, certFile, keyFile, ip string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pebble test"},
		IPAddresses: []net.IP{net.ParseIP(ip)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
}

func TestACMESettings(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(*Config)
		key  string // the refused setting, "" if accepted
	}{
		{"public domain", func(c *Config) { c.Domain = "chat.example.org" }, ""},
		{"LAN domain", func(c *Config) { c.Domain = "kitchen.local" }, "tls.acme"},
		{"with cert_file", func(c *Config) {
			c.Domain, c.TLS.CertFile, c.TLS.KeyFile = "chat.example.org", "/etc/ssl/c.pem", "/etc/ssl/k.pem"
		}, "tls.acme"},
		{"plain directory", func(c *Config) { c.Domain, c.TLS.ACMEDirectory = "chat.example.org", "http://ca.example/dir" }, "tls.acme_directory"},
		{"missing roots", func(c *Config) { c.Domain, c.TLS.ACMERoots = "chat.example.org", "/nonexistent/roots.pem" }, "tls.acme_roots"},
	} {
		cfg := Defaults("testhost")
		cfg.DataDir = t.TempDir()
		cfg.TLS.ACME = true
		c.set(&cfg)
		err := cfg.Validate()
		switch {
		case c.key == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.key != "" && (err == nil || !strings.Contains(err.Error(), c.key)):
			t.Errorf("%s: %v; want %s refused", c.name, err, c.key)
		}
	}
}
