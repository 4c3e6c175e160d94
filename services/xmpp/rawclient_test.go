package xmpp

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"testing"
	"time"
)

// rawClient is an XMPP client written by hand (direct TLS, SASL PLAIN,
// bind), for tests that need what a library hides: not reading at all,
// sending malformed XML, or reading the stream's own elements.
type rawClient struct {
	t   *testing.T
	nc  net.Conn
	rd  *streamReader
	jid string
}

// rawConnect opens a direct-TLS stream and reads the first features.
func (b *box) rawConnect(t *testing.T) (*rawClient, *Element) {
	t.Helper()
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: waitLimit}, "tcp", b.xmppTLS, b.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &rawClient{t: t, nc: nc}
	f := c.open()
	return c, f
}

// open sends a stream header and returns the features.
func (c *rawClient) open() *Element {
	c.t.Helper()
	c.write(`<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="` + boxDomain + `" version="1.0">`)
	c.rd = newStreamReader(c.nc, 1<<24, 64, nil)
	c.nc.SetReadDeadline(time.Now().Add(waitLimit))
	if _, err := c.rd.Header(); err != nil {
		c.t.Fatalf("stream header: %v", err)
	}
	return c.next()
}

func (c *rawClient) write(s string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(waitLimit))
	if _, err := c.nc.Write([]byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next reads the next top-level element (bounded by waitLimit).
func (c *rawClient) next() *Element {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(waitLimit))
	el, err := c.rd.Next()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return el
}

// rawLogin logs user in with PLAIN over direct TLS and binds a resource.
func (b *box) rawLogin(t *testing.T, user string) *rawClient {
	t.Helper()
	c, _ := b.rawConnect(t)
	auth := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password(user)))
	c.write(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">` + auth + `</auth>`)
	if el := c.next(); !el.Is(nsSASL, "success") {
		t.Fatalf("PLAIN: %s", el)
	}
	c.open()
	c.write(`<iq type="set" id="bind"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></iq>`)
	el := c.next()
	c.jid = el.Child(nsBind, "bind").ChildText(nsBind, "jid")
	if c.jid == "" {
		t.Fatalf("bind: %s", el)
	}
	return c
}

func (c *rawClient) String() string { return fmt.Sprintf("raw client %s", c.jid) }
