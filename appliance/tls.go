package appliance

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Files of the box's own certificate authority and server certificate, in
// <data>/tls.
const (
	caCertFile     = "ca.pem"
	caKeyFile      = "ca-key.pem"
	serverCertFile = "server.pem"     // leaf, then the CA
	serverKeyFile  = "server-key.pem" // key of the leaf
)

const (
	// caValidityYears is how long the box's CA is valid.
	caValidityYears = 10
	// leafValidity is how long a server certificate is valid: under the
	// 825 days Apple devices accept for any TLS server certificate.
	leafValidity = 800 * 24 * time.Hour
	// maxLeafValidity is Apple's limit; a longer-lived leaf is re-issued.
	maxLeafValidity = 825 * 24 * time.Hour
	// renewBefore is how long before it expires a server certificate is
	// re-issued.
	renewBefore = 30 * 24 * time.Hour
	// clockSkew backdates NotBefore, for clients whose clock is a little
	// behind the box's.
	clockSkew = time.Hour
)

// clockFloor returns a date this code was written after. A Raspberry Pi
// has no battery-backed clock: started without network it may believe it
// is 1970. Certificates dated from such a clock would be expired for every
// client and a CA made then would expire in 1980, so an earlier time is
// taken as this date.
func clockFloor() time.Time { return time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC) }

// BoxTLS is the certificate the box serves on every TLS door.
type BoxTLS struct {
	// CA is the box's own certificate authority, which devices are asked
	// to trust; nil when the owner provided the certificate.
	CA *x509.Certificate
	// Cert is the server certificate with its chain and key.
	Cert tls.Certificate
	// CAFingerprint is the SHA-256 fingerprint of CA (of the server
	// certificate itself when CA is nil), as Fingerprint writes it; the web
	// admin shows it so people can check what their device asks them to
	// trust.
	CAFingerprint string
}

// ServerConfig returns a new TLS server configuration serving the box's
// certificate, TLS 1.2 or newer.
func (b *BoxTLS) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{b.Cert},
	}
}

// CAPEM returns the CA certificate in PEM, for devices to download and
// trust, or nil when the box has no CA of its own.
func (b *BoxTLS) CAPEM() []byte {
	if b.CA == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.CA.Raw})
}

// Fingerprint returns the SHA-256 fingerprint of a DER certificate as
// upper-case hex pairs joined by colons ("AB:01:...").
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	parts := make([]string, len(sum))
	for i := range parts {
		parts[i] = h[2*i : 2*i+2]
	}
	return strings.Join(parts, ":")
}

// LoadTLSFiles loads a certificate chain and key the owner provided (PEM;
// tls.cert_file and tls.key_file). The fingerprint is the leaf's.
func LoadTLSFiles(certFile, keyFile string) (*BoxTLS, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: load certificate %s and key %s: %w", certFile, keyFile, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls: certificate %s: %w", certFile, err)
		}
	}
	return &BoxTLS{Cert: pair, CAFingerprint: Fingerprint(pair.Leaf.Raw)}, nil
}

// LoadOrCreateTLS returns the box's own certificate, kept in dir
// (<data>/tls, made 0700 if missing).
//
// On first use it makes a small certificate authority (ECDSA P-256, valid
// 10 years) and a server certificate signed by it for domain,
// rooms.<domain>, upload.<domain>, guest.<domain>, localhost, 127.0.0.1,
// ::1 and extraNames (IP addresses or DNS names), valid 800 days, for
// server and client authentication (XMPP servers present it to each
// other). Later calls reuse both; the server certificate alone is re-issued
// by the same CA when it is missing or unreadable, expires within 30 days,
// or no longer names exactly those names. now dates everything; a clock
// before 2026 is taken as 2026 (see clockFloor).
//
// The CA is never replaced silently, since every device that trusts it
// would have to trust a new one: an unreadable or expired CA is an error
// saying which file is wrong and that deleting dir makes a new CA.
func LoadOrCreateTLS(dir, domain string, extraNames []string, now time.Time, log *slog.Logger) (*BoxTLS, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if msg := checkDNSName(domain); msg != "" {
		return nil, fmt.Errorf("tls: domain %q: %s", domain, msg)
	}
	names, err := certNames(domain, extraNames)
	if err != nil {
		return nil, err
	}
	if floor := clockFloor(); now.Before(floor) {
		log.Warn("the system clock is wrong; dating certificates from a later time", "clock", now, "using", floor)
		now = floor
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tls: create %s: %w", dir, err)
	}
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
	}

	ca, caKey, err := loadOrCreateCA(dir, domain, now, log)
	if err != nil {
		return nil, err
	}
	if left := ca.NotAfter.Sub(now); left < 365*24*time.Hour {
		log.Warn("the box's certificate authority expires soon; to make a new one, delete the tls folder and restart (devices will then have to trust the new fingerprint)",
			"dir", dir, "expires", ca.NotAfter)
	}

	leaf, leafKey, reason := loadLeaf(dir, ca, names, now)
	if reason != "" {
		leaf, leafKey, err = issueLeaf(dir, ca, caKey, domain, names, now)
		if err != nil {
			return nil, err
		}
		log.Info("issued the box's server certificate", "reason", reason,
			"names", names.String(), "expires", leaf.NotAfter, "sha256", Fingerprint(leaf.Raw))
	}
	return &BoxTLS{
		CA: ca,
		Cert: tls.Certificate{
			Certificate: [][]byte{leaf.Raw, ca.Raw},
			PrivateKey:  leafKey,
			Leaf:        leaf,
		},
		CAFingerprint: Fingerprint(ca.Raw),
	}, nil
}

// san is the names a server certificate is for.
type san struct {
	dns []string
	ips []netip.Addr
}

func (s san) String() string {
	all := slices.Clone(s.dns)
	for _, ip := range s.ips {
		all = append(all, ip.String())
	}
	return strings.Join(all, ",")
}

// equal reports whether s names exactly what cert names.
func (s san) equal(cert *x509.Certificate) bool {
	dns := make([]string, len(cert.DNSNames))
	for i, n := range cert.DNSNames {
		dns[i] = strings.ToLower(n)
	}
	var ips []netip.Addr
	for _, ip := range cert.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			ips = append(ips, a.Unmap())
		}
	}
	slices.Sort(dns)
	slices.SortFunc(ips, netip.Addr.Compare)
	want := slices.Clone(s.dns)
	slices.Sort(want)
	wantIPs := slices.Clone(s.ips)
	slices.SortFunc(wantIPs, netip.Addr.Compare)
	return slices.Equal(slices.Compact(dns), want) && slices.Equal(slices.Compact(ips), wantIPs)
}

// certNames lists the names the server certificate must carry.
func certNames(domain string, extraNames []string) (san, error) {
	s := san{
		dns: []string{domain, "rooms." + domain, "upload." + domain, "guest." + domain, "localhost"},
		ips: []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()},
	}
	for _, n := range extraNames {
		n = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), ".")
		if n == "" {
			continue
		}
		if ip, err := netip.ParseAddr(n); err == nil {
			ip = ip.WithZone("").Unmap() // a certificate cannot name a zone
			if !slices.Contains(s.ips, ip) {
				s.ips = append(s.ips, ip)
			}
			continue
		}
		if msg := checkDNSName(n); msg != "" {
			return san{}, fmt.Errorf("tls: extra name %q is neither an IP address nor a DNS name: %s", n, msg)
		}
		if !slices.Contains(s.dns, n) {
			s.dns = append(s.dns, n)
		}
	}
	return s, nil
}

// corruptError says that file in dir cannot be used and what to do.
func corruptError(dir, file, problem string) error {
	return fmt.Errorf("tls: %s %s. Restore the folder %s from a backup, or delete it and restart: "+
		"the box then makes a new certificate authority, and every device that trusted the old one "+
		"will have to trust the new fingerprint", filepath.Join(dir, file), problem, dir)
}

// loadOrCreateCA loads the CA from dir, or makes one if there is none.
func loadOrCreateCA(dir, domain string, now time.Time, log *slog.Logger) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, caCertFile))
	if errors.Is(err, fs.ErrNotExist) {
		// No CA certificate was ever written, so no device can trust
		// this CA yet: a key left by an interrupted first start is
		// replaced too.
		return createCA(dir, domain, now, log)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("tls: %w", err)
	}
	ca, err := parseCert(certPEM)
	if err != nil {
		return nil, nil, corruptError(dir, caCertFile, "is not a readable certificate ("+err.Error()+")")
	}
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, nil, corruptError(dir, caCertFile, "is not a certificate authority")
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, caKeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, corruptError(dir, caKeyFile, "is missing (the box cannot issue certificates without it)")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("tls: %w", err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, nil, corruptError(dir, caKeyFile, "is not a readable private key ("+err.Error()+")")
	}
	if !samePublicKey(ca.PublicKey, key.Public()) {
		return nil, nil, corruptError(dir, caKeyFile, "is not the key of "+caCertFile)
	}
	if now.After(ca.NotAfter) {
		return nil, nil, corruptError(dir, caCertFile, "expired on "+ca.NotAfter.Format(time.DateOnly))
	}
	return ca, key, nil
}

// createCA makes the box's CA and writes it to dir.
func createCA(dir, domain string, now time.Time, log *slog.Logger) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: make CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   "chatbox CA " + domain,
			Organization: []string{"chatbox"},
			// Two CAs of one box (after the tls folder was deleted)
			// must not share a name, or devices that trusted the
			// first one confuse them.
			SerialNumber: serial.Text(16),
		},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.AddDate(caValidityYears, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: make CA: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: make CA: %w", err)
	}
	// The key first: a CA certificate without its key is an error at
	// the next start, a key without certificate is simply replaced.
	if err := writeKey(filepath.Join(dir, caKeyFile), key); err != nil {
		return nil, nil, err
	}
	if err := writeTLSFile(filepath.Join(dir, caCertFile), pemCerts(ca), 0o644); err != nil {
		return nil, nil, err
	}
	log.Info("made the box's certificate authority", "dir", dir, "sha256", Fingerprint(ca.Raw), "expires", ca.NotAfter)
	return ca, key, nil
}

// loadLeaf loads the server certificate from dir; when it cannot be used
// as is, it returns why it must be re-issued.
func loadLeaf(dir string, ca *x509.Certificate, names san, now time.Time) (*x509.Certificate, crypto.Signer, string) {
	certPEM, err := os.ReadFile(filepath.Join(dir, serverCertFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, "no server certificate yet"
	}
	if err != nil {
		return nil, nil, serverCertFile + ": " + err.Error()
	}
	leaf, err := parseCert(certPEM)
	if err != nil {
		return nil, nil, serverCertFile + " is unreadable: " + err.Error()
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, serverKeyFile))
	if err != nil {
		return nil, nil, serverKeyFile + ": " + err.Error()
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, nil, serverKeyFile + " is unreadable: " + err.Error()
	}
	switch {
	case !samePublicKey(leaf.PublicKey, key.Public()):
		return nil, nil, serverKeyFile + " is not the key of " + serverCertFile
	case leaf.CheckSignatureFrom(ca) != nil:
		return nil, nil, "it was not issued by the box's certificate authority"
	case now.Add(renewBefore).After(leaf.NotAfter):
		return nil, nil, "it expires on " + leaf.NotAfter.Format(time.DateOnly)
	case leaf.NotAfter.Sub(leaf.NotBefore) > maxLeafValidity:
		return nil, nil, "it is valid for longer than Apple devices accept"
	case !names.equal(leaf):
		return nil, nil, "the names it is for changed (domain or tls.extra_names)"
	}
	return leaf, key, ""
}

// issueLeaf makes a new server certificate signed by ca and writes it,
// with its key, to dir.
func issueLeaf(dir string, ca *x509.Certificate, caKey crypto.Signer, domain string, names san, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: make server key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	notBefore := now.Add(-clockSkew)
	notAfter := notBefore.Add(leafValidity)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	if notBefore.Before(ca.NotBefore) {
		notBefore = ca.NotBefore
	}
	ips := make([]net.IP, len(names.ips))
	for i, ip := range names.ips {
		ips[i] = net.IP(ip.AsSlice())
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: domain},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		DNSNames:              names.dns,
		IPAddresses:           ips,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: issue server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: issue server certificate: %w", err)
	}
	// The key first: a crash in between leaves a key that does not match
	// the old certificate, which the next start re-issues.
	if err := writeKey(filepath.Join(dir, serverKeyFile), key); err != nil {
		return nil, nil, err
	}
	if err := writeTLSFile(filepath.Join(dir, serverCertFile), pemCerts(leaf, ca), 0o644); err != nil {
		return nil, nil, err
	}
	return leaf, key, nil
}

// randomSerial returns a random 128-bit certificate serial number.
func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("tls: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil // never 0
}

// pemCerts encodes certificates as consecutive PEM blocks.
func pemCerts(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// parseCert parses the first PEM certificate in data.
func parseCert(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM data")
	}
	if block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("found %q where a CERTIFICATE was expected", block.Type)
	}
	return x509.ParseCertificate(block.Bytes)
}

// parseKey parses a PEM private key (PKCS #8, or SEC 1 for EC keys).
func parseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM data")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("found %q where a PRIVATE KEY was expected", block.Type)
	}
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
	return signer, nil
}

// samePublicKey reports whether a and b are the same public key.
func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// writeKey writes key as a PKCS #8 PEM file readable by the owner only.
func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("tls: %s: %w", path, err)
	}
	return writeTLSFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// writeTLSFile writes a PEM file atomically (see writeFileAtomic).
func writeTLSFile(path string, data []byte, perm os.FileMode) error {
	if err := writeFileAtomic(path, perm, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	return nil
}
