package irc_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
)

// clientCert makes a self-signed TLS client certificate.
func clientCert(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestSASLExternal: a client certificate registered with NickServ CERT
// ADD logs the account in with SASL EXTERNAL; another certificate does
// not.
func TestSASLExternal(t *testing.T) {
	b := startBox(t, []string{"alice"})
	cert := clientCert(t, "alice's laptop")

	ev := b.evConfig("alice")
	ev.TLSConfig.Certificates = []tls.Certificate{cert}
	c := b.evConnect(t, "alice-password", ev)
	c.send("PRIVMSG NickServ :CERT ADD")
	c.expect("NickServ's confirmation", func(m ircmsg.Message) bool {
		return m.Command == "NOTICE" && strings.Contains(lastParam(m), "Certificate added")
	})
	c.quit("bye")

	ev = b.evConfig("alice")
	ev.TLSConfig.Certificates = []tls.Certificate{cert}
	ev.SASLMech, ev.SASLLogin, ev.SASLPassword = "EXTERNAL", "", ""
	c = b.evConnect(t, "alice-external", ev)
	if got := c.ev.CurrentNick(); got != "alice" {
		t.Fatalf("logged in with EXTERNAL as %q, want alice", got)
	}
	c.quit("bye")

	// A certificate nobody registered is refused.
	ev = b.evConfig("alice")
	ev.TLSConfig.Certificates = []tls.Certificate{clientCert(t, "stranger")}
	ev.SASLMech, ev.SASLLogin, ev.SASLPassword = "EXTERNAL", "", ""
	stranger := b.evClient(t, "stranger", ev)
	if err := stranger.connect(); err == nil {
		t.Fatal("an unregistered certificate logged in with SASL EXTERNAL")
	}
}
