package xmpp

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
)

// TestConnectionsPerAddress: connections past the bound get a
// policy-violation stream error.
func TestConnectionsPerAddress(t *testing.T) {
	b := startBox(t, nil, "limits.connections_per_address=2")
	b.rawConnect(t)
	b.rawConnect(t)
	nc, err := net.DialTimeout("tcp", b.xmppAddr, waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(waitLimit))
	rd := newStreamReader(nc, 1<<20, 16, nil)
	if _, err := rd.Header(); err != nil {
		t.Fatal(err)
	}
	el, err := rd.Next()
	if err != nil || !el.Is(nsStream, "error") || el.Child(nsStreamErr, "policy-violation") == nil {
		t.Fatalf("third connection: %v %v", el, err)
	}
}

// TestFailedLoginsPerAddress: after the bound, even the right password
// is refused for a while, with temporary-auth-failure.
func TestFailedLoginsPerAddress(t *testing.T) {
	b := startBox(t, []string{"alice"}, "limits.failed_logins_per_minute=3")
	for i := 0; i < 3; i++ {
		if _, err := b.tryLogin(t, "alice", "", loginOpts{mechs: []sasl.Mechanism{sasl.ScramSha256}, password: "wrong-password"}); err == nil {
			t.Fatal("wrong password accepted")
		}
	}
	_, err := b.tryLogin(t, "alice", "")
	if err == nil || !strings.Contains(err.Error(), "too many failed logins") {
		t.Fatalf("login after 3 failures: %v", err)
	}
}

// TestSlowReaderDisconnected: a client that does not read is cut off once
// its queue overflows; the sender and others carry on.
func TestSlowReaderDisconnected(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	slow := b.rawLogin(t, "alice")
	slow.write(`<presence/>`)
	bob := b.login(t, "bob", "")
	big := strings.Repeat("x", 200<<10)
	for i := 0; i < 100; i++ {
		bob.send(`<message to="%s" type="chat"><x xmlns="urn:test:bulk">%s</x></message>`, slow.jid, big)
	}
	bob.iq(`<iq type="get" id="{id}" to="box.test"><ping xmlns="urn:xmpp:ping"/></iq>`)
	// The slow client's connection ends: drain what is buffered.
	slow.nc.SetReadDeadline(time.Now().Add(waitLimit))
	_, err := io.Copy(io.Discard, slow.nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the slow reader was not disconnected")
	}
	if !strings.Contains(b.logText(), "client too slow") {
		t.Fatal("no log line for the disconnection")
	}
	bob.iq(`<iq type="get" id="{id}" to="box.test"><ping xmlns="urn:xmpp:ping"/></iq>`)
}
