package appliance

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const tlsDomain = "box.local"

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newTLS makes the box's certificate in a fresh folder.
func newTLS(t *testing.T, now time.Time, extra ...string) (*BoxTLS, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data", "tls")
	b, err := LoadOrCreateTLS(dir, tlsDomain, extra, now, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return b, dir
}

func reload(t *testing.T, dir, domain string, now time.Time, extra ...string) *BoxTLS {
	t.Helper()
	b, err := LoadOrCreateTLS(dir, domain, extra, now, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTLSFirstStartCreatesFiles(t *testing.T) {
	now := time.Now()
	b, dir := newTLS(t, now)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("%s has mode %o, want 700", dir, perm)
	}
	for name, want := range map[string]os.FileMode{
		caCertFile: 0o644, caKeyFile: 0o600, serverCertFile: 0o644, serverKeyFile: 0o600,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != want {
			t.Errorf("%s has mode %o, want %o", name, perm, want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Errorf("%s holds %d files, want 4 (no temporary files left)", dir, len(entries))
	}

	ca := b.CA
	if !ca.IsCA || ca.MaxPathLen != 0 || !ca.MaxPathLenZero || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA constraints wrong: IsCA %v MaxPathLen %d KeyUsage %b", ca.IsCA, ca.MaxPathLen, ca.KeyUsage)
	}
	if ca.Subject.CommonName != "chatbox CA "+tlsDomain || ca.Subject.SerialNumber == "" {
		t.Errorf("CA subject = %v", ca.Subject)
	}
	if ca.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("CA key is %v", ca.PublicKeyAlgorithm)
	}
	if years := ca.NotAfter.Sub(now).Hours() / 24 / 365; years < 9.9 || years > 10.1 {
		t.Errorf("CA valid for %.1f years", years)
	}
	leaf := b.Cert.Leaf
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d > 825*24*time.Hour || d < 365*24*time.Hour {
		t.Errorf("leaf valid for %v", d)
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		t.Errorf("leaf ExtKeyUsage = %v", leaf.ExtKeyUsage)
	}
	if leaf.IsCA {
		t.Error("leaf is a CA")
	}
	wantDNS := []string{tlsDomain, "rooms." + tlsDomain, "upload." + tlsDomain, "guest." + tlsDomain, "localhost"}
	if !slices.Equal(leaf.DNSNames, wantDNS) {
		t.Errorf("DNS names = %v, want %v", leaf.DNSNames, wantDNS)
	}
	if len(leaf.IPAddresses) != 2 || !leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || !leaf.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("IP addresses = %v", leaf.IPAddresses)
	}
	if len(b.Cert.Certificate) != 2 {
		t.Errorf("chain has %d certificates, want leaf and CA", len(b.Cert.Certificate))
	}
	if b.CAFingerprint != Fingerprint(ca.Raw) {
		t.Errorf("CAFingerprint = %s", b.CAFingerprint)
	}

	// server.pem is the leaf, then the CA.
	data, err := os.ReadFile(filepath.Join(dir, serverCertFile))
	if err != nil {
		t.Fatal(err)
	}
	var ders [][]byte
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		ders = append(ders, block.Bytes)
	}
	if len(ders) != 2 || !slices.Equal(ders[0], leaf.Raw) || !slices.Equal(ders[1], ca.Raw) {
		t.Errorf("server.pem holds %d certificates, want the leaf then the CA", len(ders))
	}
	if pemCA := b.CAPEM(); !strings.Contains(string(pemCA), "BEGIN CERTIFICATE") {
		t.Errorf("CAPEM = %q", pemCA)
	}
}

func TestTLSSecondStartReuses(t *testing.T) {
	now := time.Now()
	first, dir := newTLS(t, now)
	second := reload(t, dir, tlsDomain, now.Add(24*time.Hour))
	if !second.CA.Equal(first.CA) {
		t.Error("CA changed")
	}
	if second.Cert.Leaf.SerialNumber.Cmp(first.Cert.Leaf.SerialNumber) != 0 {
		t.Error("server certificate was re-issued")
	}
	if second.CAFingerprint != first.CAFingerprint {
		t.Error("fingerprint changed")
	}
}

func TestTLSNamesChangeReissuesWithSameCA(t *testing.T) {
	now := time.Now()
	first, dir := newTLS(t, now)
	second := reload(t, dir, "chat.example.org", now)
	if !second.CA.Equal(first.CA) {
		t.Fatal("CA changed with the domain")
	}
	if second.Cert.Leaf.SerialNumber.Cmp(first.Cert.Leaf.SerialNumber) == 0 {
		t.Fatal("server certificate not re-issued for the new domain")
	}
	if err := second.Cert.Leaf.VerifyHostname("rooms.chat.example.org"); err != nil {
		t.Error(err)
	}
	if err := second.Cert.Leaf.VerifyHostname(tlsDomain); err == nil {
		t.Error("new certificate still names the old domain")
	}

	third := reload(t, dir, "chat.example.org", now, "192.168.1.20", "Chat.Home.Lan.", "fe80::1%eth0", "")
	if third.Cert.Leaf.SerialNumber.Cmp(second.Cert.Leaf.SerialNumber) == 0 {
		t.Fatal("server certificate not re-issued for extra names")
	}
	for _, h := range []string{"192.168.1.20", "chat.home.lan", "fe80::1", "chat.example.org"} {
		if err := third.Cert.Leaf.VerifyHostname(h); err != nil {
			t.Error(err)
		}
	}
	// Same names in another order and case: nothing to do.
	fourth := reload(t, dir, "chat.example.org", now, "chat.home.lan", "fe80::1", "192.168.1.20")
	if fourth.Cert.Leaf.SerialNumber.Cmp(third.Cert.Leaf.SerialNumber) != 0 {
		t.Error("re-issued for the same names")
	}
	// A name dropped: re-issued without it.
	fifth := reload(t, dir, "chat.example.org", now, "chat.home.lan")
	if fifth.Cert.Leaf.VerifyHostname("192.168.1.20") == nil {
		t.Error("dropped extra name still in the certificate")
	}
	if !fifth.CA.Equal(first.CA) {
		t.Error("CA changed")
	}
}

func TestTLSNearExpiryReissues(t *testing.T) {
	now := time.Now()
	first, dir := newTLS(t, now)
	// 40 days before expiry: kept.
	later := first.Cert.Leaf.NotAfter.Add(-40 * 24 * time.Hour)
	kept := reload(t, dir, tlsDomain, later)
	if kept.Cert.Leaf.SerialNumber.Cmp(first.Cert.Leaf.SerialNumber) != 0 {
		t.Fatal("re-issued 40 days before expiry")
	}
	// 10 days before expiry: re-issued, same CA, valid from then on.
	later = first.Cert.Leaf.NotAfter.Add(-10 * 24 * time.Hour)
	renewed := reload(t, dir, tlsDomain, later)
	if renewed.Cert.Leaf.SerialNumber.Cmp(first.Cert.Leaf.SerialNumber) == 0 {
		t.Fatal("not re-issued 10 days before expiry")
	}
	if !renewed.CA.Equal(first.CA) {
		t.Error("CA changed")
	}
	if !renewed.Cert.Leaf.NotAfter.After(later.Add(365 * 24 * time.Hour)) {
		t.Errorf("renewed certificate expires %v", renewed.Cert.Leaf.NotAfter)
	}
	verify(t, renewed, tlsDomain, later)
}

func TestTLSWrongClock(t *testing.T) {
	b, _ := newTLS(t, time.Unix(0, 0)) // a Pi without network or RTC
	floor := clockFloor()
	if b.CA.NotBefore.Before(floor.Add(-2*time.Hour)) || b.CA.NotAfter.Before(floor.AddDate(9, 0, 0)) {
		t.Errorf("CA dated from the wrong clock: %v to %v", b.CA.NotBefore, b.CA.NotAfter)
	}
	if b.Cert.Leaf.NotBefore.Before(floor.Add(-2 * time.Hour)) {
		t.Errorf("leaf dated from the wrong clock: %v", b.Cert.Leaf.NotBefore)
	}
}

// verify checks that the leaf chains to the CA for host at time at.
func verify(t *testing.T, b *BoxTLS, host string, at time.Time) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(b.CA)
	_, err := b.Cert.Leaf.Verify(x509.VerifyOptions{
		DNSName:     host,
		Roots:       roots,
		CurrentTime: at,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		t.Errorf("verify for %s: %v", host, err)
	}
}

func TestTLSVerifies(t *testing.T) {
	now := time.Now()
	b, _ := newTLS(t, now, "192.168.1.20")
	for _, h := range []string{tlsDomain, "rooms." + tlsDomain, "upload." + tlsDomain, "guest." + tlsDomain, "localhost", "127.0.0.1", "::1", "192.168.1.20"} {
		verify(t, b, h, now)
	}
	// XMPP servers present it as a client certificate too.
	roots := x509.NewCertPool()
	roots.AddCert(b.CA)
	if _, err := b.Cert.Leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("verify as client: %v", err)
	}
	if err := b.Cert.Leaf.VerifyHostname("evil.example"); err == nil {
		t.Error("certificate valid for evil.example")
	}
}

func TestTLSHandshake(t *testing.T) {
	b, _ := newTLS(t, time.Now())
	roots := x509.NewCertPool()
	roots.AddCert(b.CA)
	for _, name := range []string{tlsDomain, "rooms." + tlsDomain} {
		serverConn, clientConn := net.Pipe()
		server := tls.Server(serverConn, b.ServerConfig())
		client := tls.Client(clientConn, &tls.Config{RootCAs: roots, ServerName: name})
		done := make(chan error, 1)
		go func() { done <- server.Handshake() }()
		if err := client.Handshake(); err != nil {
			t.Fatalf("client handshake for %s: %v", name, err)
		}
		if err := <-done; err != nil {
			t.Fatalf("server handshake: %v", err)
		}
		if v := client.ConnectionState().Version; v < tls.VersionTLS12 {
			t.Errorf("TLS version %x", v)
		}
		// Close the pipe itself: a TLS close_notify would wait for a
		// reader that is not there.
		clientConn.Close()
		serverConn.Close()
	}
	if cfg := b.ServerConfig(); cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x", cfg.MinVersion)
	}
}

func TestTLSCorruptCA(t *testing.T) {
	_, dir := newTLS(t, time.Now())
	tests := []struct {
		file, data string
		want       string
	}{
		{caCertFile, "garbage", "ca.pem is not a readable certificate"},
		{caKeyFile, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "ca-key.pem is not a readable private key"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(dir, tt.file)
			old, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(path, old, 0o600)
			if err := os.WriteFile(path, []byte(tt.data), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = LoadOrCreateTLS(dir, tlsDomain, nil, time.Now(), testLogger(t))
			if err == nil {
				t.Fatal("corrupt file accepted")
			}
			msg := err.Error()
			wantContains(t, msg, path, tt.want, "delete it and restart", "new certificate authority", "trust the new fingerprint")
		})
	}
	// The CA key of another CA.
	_, otherDir := newTLS(t, time.Now())
	key, err := os.ReadFile(filepath.Join(otherDir, caKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, caKeyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadOrCreateTLS(dir, tlsDomain, nil, time.Now(), testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "ca-key.pem is not the key of ca.pem") {
		t.Errorf("mismatched CA key: %v", err)
	}
	// No CA key at all.
	os.Remove(filepath.Join(dir, caKeyFile))
	_, err = LoadOrCreateTLS(dir, tlsDomain, nil, time.Now(), testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "ca-key.pem is missing") {
		t.Errorf("missing CA key: %v", err)
	}
}

func TestTLSExpiredCA(t *testing.T) {
	b, dir := newTLS(t, time.Now())
	_, err := LoadOrCreateTLS(dir, tlsDomain, nil, b.CA.NotAfter.Add(time.Hour), testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "ca.pem expired on") {
		t.Errorf("expired CA: %v", err)
	}
}

func TestTLSCorruptServerFilesAreReissued(t *testing.T) {
	now := time.Now()
	first, dir := newTLS(t, now)
	for _, f := range []string{serverCertFile, serverKeyFile} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
		b := reload(t, dir, tlsDomain, now)
		if !b.CA.Equal(first.CA) {
			t.Fatal("CA changed")
		}
		verify(t, b, tlsDomain, now)
	}
	// A key left by a crash between writing the new key and certificate.
	_, otherDir := newTLS(t, now)
	key, _ := os.ReadFile(filepath.Join(otherDir, serverKeyFile))
	os.WriteFile(filepath.Join(dir, serverKeyFile), key, 0o600)
	b := reload(t, dir, tlsDomain, now)
	verify(t, b, tlsDomain, now)
}

func TestTLSInterruptedFirstStart(t *testing.T) {
	// A CA key without its certificate: no device can trust it yet, so
	// a new CA is made.
	dir := filepath.Join(t.TempDir(), "tls")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, caKeyFile), []byte("half"), 0o600)
	b := reload(t, dir, tlsDomain, time.Now())
	verify(t, b, tlsDomain, time.Now())
}

func TestTLSBadDomain(t *testing.T) {
	_, err := LoadOrCreateTLS(t.TempDir(), "", nil, time.Now(), nil)
	if err == nil {
		t.Error("empty domain accepted")
	}
	_, err = LoadOrCreateTLS(t.TempDir(), tlsDomain, []string{"not a name"}, time.Now(), nil)
	if err == nil {
		t.Error("bad extra name accepted")
	}
}

func TestLoadTLSFiles(t *testing.T) {
	b, dir := newTLS(t, time.Now())
	own, err := LoadTLSFiles(filepath.Join(dir, serverCertFile), filepath.Join(dir, serverKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if own.CA != nil {
		t.Error("owner's certificate has a CA")
	}
	if own.CAFingerprint != Fingerprint(b.Cert.Leaf.Raw) {
		t.Errorf("fingerprint %s is not the leaf's", own.CAFingerprint)
	}
	if own.Cert.Leaf == nil || len(own.Cert.Certificate) != 2 {
		t.Errorf("chain not loaded")
	}
	if own.CAPEM() != nil {
		t.Error("CAPEM without a CA")
	}
	_, err = LoadTLSFiles(filepath.Join(dir, "missing.pem"), filepath.Join(dir, serverKeyFile))
	if err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("missing file: %v", err)
	}
}

func TestFingerprint(t *testing.T) {
	fp := Fingerprint([]byte("hello"))
	if !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(fp) {
		t.Errorf("Fingerprint = %s", fp)
	}
	// sha256("hello") = 2cf24dba...
	if !strings.HasPrefix(fp, "2C:F2:4D:BA:") {
		t.Errorf("Fingerprint = %s", fp)
	}
}
