package xmpp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/sasl"

	"chatbox/services/chat"
)

const scramTestPassword = "correct horse battery"

var (
	scramTestCredsOnce sync.Once
	scramTestCredsVal  chat.Credentials
	scramTestCredsErr  error
)

// scramTestCreds derives alice's credentials once for all tests.
func scramTestCreds(tb testing.TB) chat.Credentials {
	tb.Helper()
	scramTestCredsOnce.Do(func() {
		scramTestCredsVal, scramTestCredsErr = chat.NewCredentials(scramTestPassword, 4096)
	})
	if scramTestCredsErr != nil {
		tb.Fatalf("NewCredentials: %v", scramTestCredsErr)
	}
	return scramTestCredsVal
}

// scramTestLookup knows one account, alice, and records the names asked.
func scramTestLookup(tb testing.TB, mech string, asked *[]string) func(string) (chat.SCRAMKeys, error) {
	cred := scramTestCreds(tb)
	return func(name string) (chat.SCRAMKeys, error) {
		if asked != nil {
			*asked = append(*asked, name)
		}
		if name != "alice" {
			return chat.SCRAMKeys{}, chat.ErrBadPassword
		}
		if strings.HasPrefix(mech, "SCRAM-SHA-1") {
			return cred.SHA1, nil
		}
		return cred.SHA256, nil
	}
}

func scramTestServer(t *testing.T, mech string, cb channelBinding, plusAdvertised bool) *scramServer {
	t.Helper()
	s, err := newSCRAMServer(mech, scramTestLookup(t, mech, nil), cb, plusAdvertised, []byte("test secret"))
	if err != nil {
		t.Fatalf("newSCRAMServer(%s): %v", mech, err)
	}
	return s
}

func scramCreds(user, password, authzid string) sasl.Option {
	return sasl.Credentials(func() ([]byte, []byte, []byte) {
		return []byte(user), []byte(password), []byte(authzid)
	})
}

// scramRun plays a mellium client against s and returns the server's
// error, or the client's error verifying the server signature.
func scramRun(t *testing.T, s *scramServer, mech sasl.Mechanism, opts ...sasl.Option) error {
	t.Helper()
	c := sasl.NewClient(mech, opts...)
	_, first, err := c.Step(nil)
	if err != nil {
		t.Fatalf("client first: %v", err)
	}
	out, done, err := s.Step(first)
	if err != nil {
		if !done {
			t.Errorf("server failed at the first step with done=false")
		}
		return err
	}
	if done {
		t.Fatalf("server done after the first message")
	}
	_, final, err := c.Step(out)
	if err != nil {
		t.Fatalf("client final: %v", err)
	}
	out, done, err = s.Step(final)
	if err != nil {
		if !done {
			t.Errorf("server failed at the final step with done=false")
		}
		return err
	}
	if !done {
		t.Fatalf("server not done after the final message")
	}
	if !bytes.HasPrefix(out, []byte("v=")) {
		t.Fatalf("server-final = %q, want v=...", out)
	}
	if _, _, err := c.Step(out); err != nil {
		return fmt.Errorf("client rejects the server signature: %w", err)
	}
	return nil
}

func scramCondition(t *testing.T, err error, want string) {
	t.Helper()
	var se *saslError
	if !errors.As(err, &se) {
		t.Fatalf("error = %v (%T), want *saslError %s", err, err, want)
	}
	if se.Condition != want {
		t.Fatalf("condition = %q (%v), want %q", se.Condition, se, want)
	}
}

// scramTLSPair makes a real TLS connection over net.Pipe with a
// self-signed certificate and returns both ends' connection states.
func scramTLSPair(t *testing.T, version uint16) (client, server tls.ConnectionState) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)

	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	sc := tls.Server(a, &tls.Config{
		Certificates:           []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}},
		MinVersion:             version,
		MaxVersion:             version,
		SessionTicketsDisabled: true,
	})
	cc := tls.Client(b, &tls.Config{
		RootCAs:    roots,
		ServerName: "localhost",
		MinVersion: version,
		MaxVersion: version,
	})
	errc := make(chan error, 1)
	go func() { errc <- sc.Handshake() }()
	if err := cc.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	return cc.ConnectionState(), sc.ConnectionState()
}

// scramCB is the channel binding a server door would build from its TLS
// connection state.
func scramCB(cs tls.ConnectionState) channelBinding {
	return func(cbType string) ([]byte, bool) {
		switch cbType {
		case "tls-exporter":
			if cs.Version < tls.VersionTLS13 {
				return nil, false
			}
			b, err := cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
			return b, err == nil
		case "tls-unique":
			if cs.Version >= tls.VersionTLS13 || len(cs.TLSUnique) == 0 {
				return nil, false
			}
			return cs.TLSUnique, true
		}
		return nil, false
	}
}

func TestSCRAMSuccess(t *testing.T) {
	cli13, srv13 := scramTLSPair(t, tls.VersionTLS13)
	cli12, srv12 := scramTLSPair(t, tls.VersionTLS12)
	for _, tc := range []struct {
		name string
		mech sasl.Mechanism
		cli  *tls.ConnectionState
		srv  *tls.ConnectionState
	}{
		{"SHA-256", sasl.ScramSha256, nil, nil},
		{"SHA-1", sasl.ScramSha1, nil, nil},
		{"SHA-256 over TLS", sasl.ScramSha256, &cli13, &srv13},
		{"SHA-256-PLUS tls-exporter", sasl.ScramSha256Plus, &cli13, &srv13},
		{"SHA-1-PLUS tls-exporter", sasl.ScramSha1Plus, &cli13, &srv13},
		{"SHA-256-PLUS tls-unique", sasl.ScramSha256Plus, &cli12, &srv12},
		{"SHA-1-PLUS tls-unique", sasl.ScramSha1Plus, &cli12, &srv12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cb channelBinding
			opts := []sasl.Option{scramCreds("alice", scramTestPassword, "")}
			if tc.srv != nil {
				cb = scramCB(*tc.srv)
				opts = append(opts, sasl.TLSState(*tc.cli), sasl.RemoteMechanisms(tc.mech.Name))
			}
			s := scramTestServer(t, tc.mech.Name, cb, tc.srv != nil)
			if err := scramRun(t, s, tc.mech, opts...); err != nil {
				t.Fatalf("exchange failed: %v", err)
			}
			if s.Username() != "alice" || s.Authzid() != "" {
				t.Errorf("Username, Authzid = %q, %q; want alice, empty", s.Username(), s.Authzid())
			}
			// Nothing is accepted after success.
			out, done, err := s.Step([]byte("c=biws"))
			if out != nil || !done {
				t.Errorf("Step after success = %q, %v", out, done)
			}
			scramCondition(t, err, "malformed-request")
		})
	}
}

func TestSCRAMPrepareUsernameAndAuthzid(t *testing.T) {
	var asked []string
	s, err := newSCRAMServer("SCRAM-SHA-256", scramTestLookup(t, "SCRAM-SHA-256", &asked), nil, false, []byte("test secret"))
	if err != nil {
		t.Fatal(err)
	}
	// The case-folded name is the account; the authzid is passed up as sent.
	if err := scramRun(t, s, sasl.ScramSha256, scramCreds("ALICE", scramTestPassword, "alice@chatbox.local")); err != nil {
		t.Fatalf("exchange failed: %v", err)
	}
	if len(asked) != 1 || asked[0] != "alice" {
		t.Errorf("lookup asked for %q, want [alice]", asked)
	}
	if s.Username() != "alice" || s.Authzid() != "alice@chatbox.local" {
		t.Errorf("Username, Authzid = %q, %q", s.Username(), s.Authzid())
	}

	// saslname escapes in both the authzid and the username.
	asked = nil
	s, _ = newSCRAMServer("SCRAM-SHA-256", scramTestLookup(t, "SCRAM-SHA-256", &asked), nil, false, []byte("test secret"))
	out, done, err := s.Step([]byte("n,a=x=2Cy=3Dz,n=Al=2Cice=3D,r=abc"))
	if err != nil || done || len(out) == 0 {
		t.Fatalf("Step = %q, %v, %v", out, done, err)
	}
	if s.Authzid() != "x,y=z" || s.Username() != "al,ice=" {
		t.Errorf("Username, Authzid = %q, %q; want al,ice= and x,y=z", s.Username(), s.Authzid())
	}
	if len(asked) != 1 || asked[0] != "al,ice=" {
		t.Errorf("lookup asked for %q", asked)
	}
}

func TestSCRAMEmptyInitialResponse(t *testing.T) {
	s := scramTestServer(t, "SCRAM-SHA-256", nil, false)
	out, done, err := s.Step(nil)
	if err != nil || done || out == nil || len(out) != 0 {
		t.Fatalf("Step(empty) = %q (nil %v), %v, %v; want empty challenge", out, out == nil, done, err)
	}
	if err := scramRun(t, s, sasl.ScramSha256, scramCreds("alice", scramTestPassword, "")); err != nil {
		t.Fatalf("exchange after an empty initial response failed: %v", err)
	}

	// Only one empty message is allowed.
	s = scramTestServer(t, "SCRAM-SHA-256", nil, false)
	s.Step(nil)
	_, done, err = s.Step(nil)
	if !done {
		t.Error("second empty message: not done")
	}
	scramCondition(t, err, "malformed-request")
}

func TestSCRAMWrongPassword(t *testing.T) {
	for _, mech := range []sasl.Mechanism{sasl.ScramSha256, sasl.ScramSha1} {
		s := scramTestServer(t, mech.Name, nil, false)
		err := scramRun(t, s, mech, scramCreds("alice", "wrong horse battery", ""))
		scramCondition(t, err, "not-authorized")
		_, done, err := s.Step([]byte("n,,n=alice,r=abc"))
		if !done {
			t.Error("Step after failure: not done")
		}
		scramCondition(t, err, "malformed-request")
	}
}

// scramServerFirst sends a client-first message and parses the reply.
func scramServerFirst(t *testing.T, s *scramServer, first string) (nonce, salt, iter string) {
	t.Helper()
	out, done, err := s.Step([]byte(first))
	if err != nil || done {
		t.Fatalf("Step(%q) = %q, %v, %v", first, out, done, err)
	}
	for _, f := range strings.Split(string(out), ",") {
		switch {
		case strings.HasPrefix(f, "r="):
			nonce = f[2:]
		case strings.HasPrefix(f, "s="):
			salt = f[2:]
		case strings.HasPrefix(f, "i="):
			iter = f[2:]
		}
	}
	if nonce == "" || salt == "" || iter == "" {
		t.Fatalf("server-first %q lacks r=, s= or i=", out)
	}
	return nonce, salt, iter
}

func TestSCRAMServerFirst(t *testing.T) {
	s := scramTestServer(t, "SCRAM-SHA-256", nil, false)
	nonce, salt, iter := scramServerFirst(t, s, "n,,n=alice,r=clientnonce")
	snonce, ok := strings.CutPrefix(nonce, "clientnonce")
	if !ok {
		t.Fatalf("nonce %q does not start with the client nonce", nonce)
	}
	if len(snonce) < 24 || strings.ContainsAny(snonce, ", ") {
		t.Errorf("server nonce %q: want at least 24 printable characters without commas", snonce)
	}
	cred := scramTestCreds(t)
	if want := fmt.Sprint(cred.SHA256.Iterations); iter != want {
		t.Errorf("i=%s, want %s", iter, want)
	}
	if salt == "" {
		t.Error("no salt")
	}
	// Two exchanges get different server nonces.
	nonce2, _, _ := scramServerFirst(t, scramTestServer(t, "SCRAM-SHA-256", nil, false), "n,,n=alice,r=clientnonce")
	if nonce2 == nonce {
		t.Error("server nonce repeated")
	}
}

func TestSCRAMUnknownUser(t *testing.T) {
	for _, mech := range []sasl.Mechanism{sasl.ScramSha256, sasl.ScramSha1} {
		t.Run(mech.Name, func(t *testing.T) {
			// The full exchange runs and fails only at the proof.
			s := scramTestServer(t, mech.Name, nil, false)
			err := scramRun(t, s, mech, scramCreds("bob", scramTestPassword, ""))
			scramCondition(t, err, "not-authorized")
			if s.Username() != "bob" {
				t.Errorf("Username = %q", s.Username())
			}

			// The fake salt is stable per name, differs between names and
			// between secrets, and looks like a real one.
			_, salt1, iter1 := scramServerFirst(t, scramTestServer(t, mech.Name, nil, false), "n,,n=bob,r=one")
			_, salt2, iter2 := scramServerFirst(t, scramTestServer(t, mech.Name, nil, false), "n,,n=Bob,r=two")
			_, salt3, _ := scramServerFirst(t, scramTestServer(t, mech.Name, nil, false), "n,,n=carol,r=three")
			other, err := newSCRAMServer(mech.Name, scramTestLookup(t, mech.Name, nil), nil, false, []byte("other secret"))
			if err != nil {
				t.Fatal(err)
			}
			_, salt4, _ := scramServerFirst(t, other, "n,,n=bob,r=four")
			_, realSalt, realIter := scramServerFirst(t, scramTestServer(t, mech.Name, nil, false), "n,,n=alice,r=five")
			if salt1 != salt2 || iter1 != iter2 {
				t.Errorf("fake salt not stable: %s/%s vs %s/%s", salt1, iter1, salt2, iter2)
			}
			if salt1 == salt3 || salt1 == salt4 {
				t.Errorf("fake salts repeat across names or secrets: %s %s %s", salt1, salt3, salt4)
			}
			if len(salt1) != len(realSalt) || iter1 != realIter {
				t.Errorf("fake salt %s i=%s does not look like a real one (%s i=%s)", salt1, iter1, realSalt, realIter)
			}
		})
	}
}

func TestSCRAMLookupError(t *testing.T) {
	lookup := func(string) (chat.SCRAMKeys, error) {
		return chat.SCRAMKeys{}, &saslError{Condition: "temporary-auth-failure", Text: "too many attempts"}
	}
	s, err := newSCRAMServer("SCRAM-SHA-256", lookup, nil, false, []byte("test secret"))
	if err != nil {
		t.Fatal(err)
	}
	_, done, err := s.Step([]byte("n,,n=alice,r=abc"))
	if !done {
		t.Error("not done")
	}
	scramCondition(t, err, "temporary-auth-failure")

	// Keys for the wrong hash are treated like an unknown account.
	cred := scramTestCreds(t)
	s, _ = newSCRAMServer("SCRAM-SHA-1", func(string) (chat.SCRAMKeys, error) { return cred.SHA256, nil }, nil, false, []byte("test secret"))
	scramCondition(t, scramRun(t, s, sasl.ScramSha1, scramCreds("alice", scramTestPassword, "")), "not-authorized")
}

func TestSCRAMBadMechanism(t *testing.T) {
	for _, mech := range []string{"", "PLAIN", "SCRAM-SHA-512", "SCRAM-SHA-256-plus", "-PLUS"} {
		s, err := newSCRAMServer(mech, scramTestLookup(t, mech, nil), nil, false, []byte("test secret"))
		if s != nil {
			t.Errorf("newSCRAMServer(%q) made a server", mech)
		}
		scramCondition(t, err, "invalid-mechanism")
	}
}

func TestSCRAMChannelBindingTampered(t *testing.T) {
	cli, srv := scramTLSPair(t, tls.VersionTLS13)
	cli2, _ := scramTLSPair(t, tls.VersionTLS13)
	good := scramCB(srv)
	flipped := func(cbType string) ([]byte, bool) {
		b, ok := good(cbType)
		if !ok {
			return nil, false
		}
		b = bytes.Clone(b)
		b[0] ^= 1
		return b, true
	}
	for _, mech := range []sasl.Mechanism{sasl.ScramSha256Plus, sasl.ScramSha1Plus} {
		// The server's binding data differs from the client's.
		s := scramTestServer(t, mech.Name, flipped, true)
		err := scramRun(t, s, mech, scramCreds("alice", scramTestPassword, ""), sasl.TLSState(cli), sasl.RemoteMechanisms(mech.Name))
		scramCondition(t, err, "not-authorized")

		// The client is on another TLS connection (a relayed exchange).
		s = scramTestServer(t, mech.Name, good, true)
		err = scramRun(t, s, mech, scramCreds("alice", scramTestPassword, ""), sasl.TLSState(cli2), sasl.RemoteMechanisms(mech.Name))
		scramCondition(t, err, "not-authorized")
	}

	// A c= that names another gs2 header fails too, even with the right nonce.
	s := scramTestServer(t, "SCRAM-SHA-256", nil, false)
	nonce, _, _ := scramServerFirst(t, s, "n,,n=alice,r=abc")
	_, _, err := s.Step([]byte("c=eSws,r=" + nonce + ",p=" + strings.Repeat("A", 43) + "="))
	scramCondition(t, err, "not-authorized")
}

func TestSCRAMDowngrade(t *testing.T) {
	cli, _ := scramTLSPair(t, tls.VersionTLS13)
	// Mellium sends "y" when it can bind but is told the server cannot
	// (no -PLUS in the remote mechanisms) yet runs the plain mechanism.
	for _, mech := range []sasl.Mechanism{sasl.ScramSha256Plus, sasl.ScramSha1Plus} {
		plain := strings.TrimSuffix(mech.Name, "-PLUS")
		opts := []sasl.Option{scramCreds("alice", scramTestPassword, ""), sasl.TLSState(cli), sasl.RemoteMechanisms(plain)}
		c := sasl.NewClient(mech, opts...)
		_, first, err := c.Step(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(first, []byte("y,")) {
			t.Fatalf("client-first %q does not use flag y", first)
		}

		// The server did advertise -PLUS: someone stripped it.
		s := scramTestServer(t, plain, nil, true)
		_, done, err := s.Step(first)
		if !done {
			t.Error("not done")
		}
		scramCondition(t, err, "not-authorized")

		// The server did not advertise -PLUS: "y" is fine.
		s = scramTestServer(t, plain, nil, false)
		if err := scramRun(t, s, mech, opts...); err != nil {
			t.Fatalf("y without -PLUS advertised: %v", err)
		}
	}
}

func TestSCRAMMalformedFirst(t *testing.T) {
	_, srv := scramTLSPair(t, tls.VersionTLS13)
	cb := scramCB(srv)
	for _, tc := range []struct {
		mech string
		cb   channelBinding
		in   string
		cond string
		text string // part of the text, if any
	}{
		{"SCRAM-SHA-256", nil, "x", "malformed-request", ""},
		{"SCRAM-SHA-256", nil, "n,", "malformed-request", ""},
		{"SCRAM-SHA-256", nil, "n,,", "malformed-request", ""},
		{"SCRAM-SHA-256", nil, "q,,n=alice,r=abc", "malformed-request", ""},
		{"SCRAM-SHA-256", nil, "N,,n=alice,r=abc", "malformed-request", ""},
		{"SCRAM-SHA-256", nil, "n,n=alice,r=abc", "malformed-request", ""},
		{"SCRAM-SHA-256", nil, "n,,n=alice", "malformed-request", ""},
		{"SCRAM-SHA-256", nil, "n,,r=abc,n=alice", "malformed-request", ""},
		{"SCRAM-SHA-256", nil, "n,,n=alice,r=", "malformed-request", ""},
		{"SCRAM-SHA-256", nil, "n,,n=alice,r=a b", "malformed-request", ""},
		{"SCRAM-SHA-256", nil, "n,,n=alice,r=a\x7f", "malformed-request", ""},
		{"SCRAM-SHA-256", nil, "n,,n=,r=abc", "malformed-request", ""},
		{"SCRAM-SHA-256", nil, "n,,m=ext,n=alice,r=abc", "malformed-request", "mandatory extension"},
		{"SCRAM-SHA-256", nil, "n,,n=alice,r=abc,bogus", "malformed-request", ""},
		{"SCRAM-SHA-256", nil, "n,,n=alice,r=abc,", "malformed-request", ""},
		{"SCRAM-SHA-256", nil, "n,,n=al=2cice,r=abc", "malformed-request", "escape"},
		{"SCRAM-SHA-256", nil, "n,,n=al=ice,r=abc", "malformed-request", "escape"},
		{"SCRAM-SHA-256", nil, "n,,n=alice=,r=abc", "malformed-request", "escape"},
		{"SCRAM-SHA-256", nil, "n,,n=alice=2,r=abc", "malformed-request", "escape"},
		{"SCRAM-SHA-256", nil, "n,a=,n=alice,r=abc", "malformed-request", ""},
		{"SCRAM-SHA-256", nil, "n,b=x,n=alice,r=abc", "malformed-request", ""},
		{"SCRAM-SHA-256", nil, "n,a=x=41,n=alice,r=abc", "malformed-request", "escape"},
		{"SCRAM-SHA-256", nil, "n,,n=ali\xffce,r=abc", "malformed-request", ""},
		{"SCRAM-SHA-256", nil, "n,,n=ali\x00ce,r=abc", "malformed-request", ""},
		{"SCRAM-SHA-256", nil, "n,,n=alice,r=abc" + strings.Repeat("x", 4096), "malformed-request", "too long"},
		// Channel binding flag and mechanism must agree.
		{"SCRAM-SHA-256", cb, "p=tls-exporter,,n=alice,r=abc", "malformed-request", ""},
		{"SCRAM-SHA-1", cb, "p=tls-exporter,,n=alice,r=abc", "malformed-request", ""},
		{"SCRAM-SHA-256-PLUS", cb, "n,,n=alice,r=abc", "malformed-request", ""},
		{"SCRAM-SHA-256-PLUS", cb, "y,,n=alice,r=abc", "malformed-request", ""},
		{"SCRAM-SHA-1-PLUS", cb, "n,,n=alice,r=abc", "malformed-request", ""},
		{"SCRAM-SHA-256-PLUS", cb, "p=,,n=alice,r=abc", "malformed-request", ""},
		{"SCRAM-SHA-256-PLUS", cb, "p=tls_exporter,,n=alice,r=abc", "malformed-request", ""},
		// Binding types the connection cannot give.
		{"SCRAM-SHA-256-PLUS", cb, "p=tls-unique,,n=alice,r=abc", "malformed-request", "tls-unique"},
		{"SCRAM-SHA-256-PLUS", cb, "p=tls-server-end-point,,n=alice,r=abc", "malformed-request", "tls-server-end-point"},
		{"SCRAM-SHA-256-PLUS", nil, "p=tls-exporter,,n=alice,r=abc", "malformed-request", "tls-exporter"},
		// Names PRECIS refuses fail without saying more.
		{"SCRAM-SHA-256", nil, "n,,n=al ice,r=abc", "not-authorized", ""},
		{"SCRAM-SHA-256", nil, "n,,n=\u2163,r=abc", "not-authorized", ""},
		{"SCRAM-SHA-256", nil, "n,,n=\u00a0,r=abc", "not-authorized", ""},
	} {
		s := scramTestServer(t, tc.mech, tc.cb, tc.cb != nil)
		out, done, err := s.Step([]byte(tc.in))
		if out != nil || !done {
			t.Errorf("%s %q: out %q done %v", tc.mech, tc.in, out, done)
		}
		var se *saslError
		if !errors.As(err, &se) || se.Condition != tc.cond || !strings.Contains(se.Text, tc.text) {
			t.Errorf("%s %q: error %v, want %s containing %q", tc.mech, tc.in, err, tc.cond, tc.text)
		}
		if tc.cond == "not-authorized" && se != nil && se.Text != "" {
			t.Errorf("%s %q: not-authorized says %q", tc.mech, tc.in, se.Text)
		}
	}
}

func TestSCRAMMalformedFinal(t *testing.T) {
	proof := strings.Repeat("A", 43) + "=" // 32 zero bytes
	for _, tc := range []struct {
		in   string // %r is the combined nonce
		cond string
	}{
		{"", "malformed-request"},
		{"c=biws,r=%r", "malformed-request"},
		{"c=biws,r=%r,p=", "malformed-request"},
		{"c=biws,r=%r,p=!!!!", "malformed-request"},
		{"c=biws,r=%r,p=AAAA", "malformed-request"},
		{"c=biws,r=%r,p=" + proof + ",x=y", "malformed-request"},
		{"r=%r,c=biws,p=" + proof, "malformed-request"},
		{"c=biws,p=" + proof, "malformed-request"},
		{"c=bi*s,r=%r,p=" + proof, "malformed-request"},
		{"c=biws,r=%r,bogus,p=" + proof, "malformed-request"},
		{"c=biws,r=%r," + strings.Repeat("x=y,", 1100) + "p=" + proof, "malformed-request"},
		// Well-formed but wrong.
		{"c=biws,r=%rX,p=" + proof, "not-authorized"},
		{"c=biws,r=other,p=" + proof, "not-authorized"},
		{"c=biws,r=%r,p=" + proof, "not-authorized"},
		{"c=biws,r=%r,x=ext,p=" + proof, "not-authorized"},
	} {
		s := scramTestServer(t, "SCRAM-SHA-256", nil, false)
		nonce, _, _ := scramServerFirst(t, s, "n,,n=alice,r=abc")
		in := strings.ReplaceAll(tc.in, "%r", nonce)
		out, done, err := s.Step([]byte(in))
		if out != nil || !done {
			t.Errorf("%q: out %q done %v", tc.in, out, done)
		}
		var se *saslError
		if !errors.As(err, &se) || se.Condition != tc.cond {
			t.Errorf("%q: error %v, want %s", tc.in, err, tc.cond)
		}
	}
}

// scramManualFinal computes a client-final message for withoutProof the
// way a client with the password would, so that tests can send a valid
// proof over attributes no real client would send.
func scramManualFinal(t *testing.T, newHash func() hash.Hash, password, clientFirstBare, serverFirst, withoutProof string) (final, serverSig string) {
	t.Helper()
	var salt []byte
	iter := 0
	for _, f := range strings.Split(serverFirst, ",") {
		switch {
		case strings.HasPrefix(f, "s="):
			salt, _ = base64.StdEncoding.DecodeString(f[2:])
		case strings.HasPrefix(f, "i="):
			iter, _ = strconv.Atoi(f[2:])
		}
	}
	salted, err := pbkdf2.Key(newHash, password, salt, iter, newHash().Size())
	if err != nil {
		t.Fatal(err)
	}
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(newHash, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	h := newHash()
	h.Write(clientKey)
	authMessage := clientFirstBare + "," + serverFirst + "," + withoutProof
	proof := make([]byte, len(clientKey))
	subtle.XORBytes(proof, clientKey, mac(h.Sum(nil), authMessage))
	serverSig = base64.StdEncoding.EncodeToString(mac(mac(salted, "Server Key"), authMessage))
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), serverSig
}

func TestSCRAMManualClient(t *testing.T) {
	for _, tc := range []struct {
		name, mech, first string
		newHash           func() hash.Hash
		password          string
		withoutProof      string // %r is the combined nonce
		cond, text        string // "" for success
	}{
		{"SHA-256", "SCRAM-SHA-256", "n,,n=alice,r=abc", sha256.New, scramTestPassword, "c=biws,r=%r", "", ""},
		{"SHA-1", "SCRAM-SHA-1", "n,,n=alice,r=abc", sha1.New, scramTestPassword, "c=biws,r=%r", "", ""},
		{"extension in final", "SCRAM-SHA-256", "n,,n=alice,r=abc", sha256.New, scramTestPassword, "c=biws,r=%r,x=ext", "", ""},
		{"extension in first", "SCRAM-SHA-256", "n,,n=alice,r=abc,x=ext", sha256.New, scramTestPassword, "c=biws,r=%r", "", ""},
		{"authzid", "SCRAM-SHA-256", "n,a=admin,n=alice,r=abc", sha256.New, scramTestPassword, "c=bixhPWFkbWluLA==,r=%r", "", ""},
		{"wrong hash", "SCRAM-SHA-256", "n,,n=alice,r=abc", sha1.New, scramTestPassword, "c=biws,r=%r", "malformed-request", ""},
		{"wrong password", "SCRAM-SHA-256", "n,,n=alice,r=abc", sha256.New, "battery horse correct", "c=biws,r=%r", "not-authorized", ""},
		{"valid proof over another nonce", "SCRAM-SHA-256", "n,,n=alice,r=abc", sha256.New, scramTestPassword, "c=biws,r=%rx", "not-authorized", "nonce"},
		{"valid proof over the client nonce", "SCRAM-SHA-256", "n,,n=alice,r=abc", sha256.New, scramTestPassword, "c=biws,r=abc", "not-authorized", "nonce"},
		{"valid proof over another gs2 header", "SCRAM-SHA-256", "n,,n=alice,r=abc", sha256.New, scramTestPassword, "c=eSws,r=%r", "not-authorized", "channel binding"},
		{"valid proof, authzid dropped from c=", "SCRAM-SHA-256", "n,a=admin,n=alice,r=abc", sha256.New, scramTestPassword, "c=biws,r=%r", "not-authorized", "channel binding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := scramTestServer(t, tc.mech, nil, false)
			out, _, err := s.Step([]byte(tc.first))
			if err != nil {
				t.Fatal(err)
			}
			nonce, _, _ := strings.Cut(strings.TrimPrefix(string(out), "r="), ",")
			bare := tc.first[strings.Index(tc.first, "n="):]
			if strings.HasPrefix(tc.first, "n,a=") {
				bare = tc.first[strings.Index(tc.first, ",n=")+1:]
			}
			final, sig := scramManualFinal(t, tc.newHash, tc.password, bare, string(out), strings.ReplaceAll(tc.withoutProof, "%r", nonce))
			out, done, err := s.Step([]byte(final))
			if !done {
				t.Error("not done")
			}
			if tc.cond == "" {
				if err != nil {
					t.Fatalf("failed: %v", err)
				}
				if string(out) != "v="+sig {
					t.Fatalf("server-final %q, want v=%s", out, sig)
				}
				return
			}
			var se *saslError
			if !errors.As(err, &se) || se.Condition != tc.cond || !strings.Contains(se.Text, tc.text) {
				t.Fatalf("error %v, want %s containing %q", err, tc.cond, tc.text)
			}
		})
	}
}

func TestSCRAMErrorString(t *testing.T) {
	if got := (&saslError{Condition: "not-authorized"}).Error(); !strings.Contains(got, "not-authorized") {
		t.Errorf("Error() = %q", got)
	}
	if got := (&saslError{Condition: "aborted", Text: "bye"}).Error(); !strings.Contains(got, "aborted") || !strings.Contains(got, "bye") {
		t.Errorf("Error() = %q", got)
	}
}

// FuzzSCRAMServer feeds arbitrary client-first and client-final messages
// to every mechanism: no input may panic, errors are well formed, and
// nothing succeeds without the proof (which the fuzzer cannot know, as it
// depends on the random server nonce). "%r" in the final message is
// replaced by the combined nonce so that the proof check is reached.
func FuzzSCRAMServer(f *testing.F) {
	f.Add([]byte("n,,n=alice,r=abc"), []byte("c=biws,r=%r,p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="))
	f.Add([]byte("n,,n=bob,r=abc"), []byte("c=biws,r=%r,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA="))
	f.Add([]byte("p=tls-exporter,a=x=2Cy,n=alice,r=abc,x=1"), []byte("c=cD10bHMtZXhwb3J0ZXIsYT14PTJDeSwAAQID,r=%r,p=AAAA"))
	f.Add([]byte("y,,n=al=3Dice,r=abc"), []byte("c=eSws,r=%r,p=AAAA"))
	f.Add([]byte(""), []byte("n,,n=alice,r=abc"))
	f.Add([]byte("n,,m=x,n=alice,r=abc"), []byte(""))

	cred := scramTestCreds(f)
	lookup := func(mech string) func(string) (chat.SCRAMKeys, error) {
		return func(name string) (chat.SCRAMKeys, error) {
			switch name {
			case "alice":
				if strings.HasPrefix(mech, "SCRAM-SHA-1") {
					return cred.SHA1, nil
				}
				return cred.SHA256, nil
			case "error":
				return chat.SCRAMKeys{}, &saslError{Condition: "temporary-auth-failure"}
			}
			return chat.SCRAMKeys{}, chat.ErrBadPassword
		}
	}
	cb := func(cbType string) ([]byte, bool) {
		if cbType == "tls-exporter" {
			return []byte{0, 1, 2, 3}, true
		}
		return nil, false
	}
	conditions := map[string]bool{
		"not-authorized": true, "malformed-request": true, "temporary-auth-failure": true,
	}
	check := func(t *testing.T, step string, out []byte, done bool, err error) {
		if err == nil {
			return
		}
		var se *saslError
		if !errors.As(err, &se) || !conditions[se.Condition] {
			t.Fatalf("%s: error %v (%T) is not a known *saslError", step, err, err)
		}
		if out != nil || !done {
			t.Fatalf("%s: failure with out %q done %v", step, out, done)
		}
	}

	f.Fuzz(func(t *testing.T, first, final []byte) {
		for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"} {
			for _, plusAdvertised := range []bool{false, true} {
				s, err := newSCRAMServer(mech, lookup(mech), cb, plusAdvertised, []byte("fuzz"))
				if err != nil {
					t.Fatal(err)
				}
				out, done, err := s.Step(first)
				check(t, "first", out, done, err)
				if err != nil {
					continue
				}
				if done {
					t.Fatalf("success after one message %q", first)
				}
				in := final
				if len(out) > 0 {
					nonce, _, _ := strings.Cut(strings.TrimPrefix(string(out), "r="), ",")
					in = bytes.ReplaceAll(final, []byte("%r"), []byte(nonce))
				}
				out, done, err = s.Step(in)
				check(t, "final", out, done, err)
				if err == nil && done {
					t.Fatalf("%s: success without the proof: %q then %q", mech, first, in)
				}
				if err != nil {
					out, done, err = s.Step(in)
					if out != nil || !done || err == nil {
						t.Fatalf("Step after failure = %q, %v, %v", out, done, err)
					}
				}
			}
		}
	})
}
