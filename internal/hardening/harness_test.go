package hardening

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"chatbox/internal/testbox"
)

const (
	// waitLimit bounds every wait for an answer: a hang detector, not a
	// timing assertion.
	waitLimit = 20 * time.Second
	boxDomain = "box.test"
)

var chatboxBin string

func TestMain(m *testing.M) {
	bin, cleanup, err := testbox.Build("../../cmd/chatbox")
	if err != nil {
		fmt.Fprintln(os.Stderr, "hardening:", err)
		os.Exit(2)
	}
	chatboxBin = bin
	code := m.Run()
	cleanup()
	os.Exit(code)
}

func password(account string) string { return "password-" + account }

// box is one running chatbox and the addresses it logged.
type box struct {
	*testbox.Proc
	ircPlain, ircTLS   string
	xmppPlain, xmppTLS string
	ca                 *x509.CertPool
}

var listenRe = regexp.MustCompile(`msg=listening door=(xmpp|irc) addr=(\S+) (?:kind=(\S+)|tls=(\S+))`)

// startBox makes the accounts with the CLI and starts a server on
// loopback ports with the settings (key=value) given; data, if not
// empty, is the data directory to use (it may hold a previous run's).
func startBox(t *testing.T, data string, accounts []string, settings ...string) *box {
	t.Helper()
	fresh := data == ""
	if fresh {
		data = filepath.Join(t.TempDir(), "data")
	}
	b := &box{Proc: testbox.New(chatboxBin, data)}
	if fresh {
		for _, a := range accounts {
			b.CLI(t, password(a)+"\n", "user", "add", a)
		}
	}
	args := []string{
		"--set", "domain=" + boxDomain,
		"--set", "irc.plain_listen=127.0.0.1:0",
		"--set", "irc.tls_listen=127.0.0.1:0",
		"--set", "xmpp.listen=127.0.0.1:0",
		"--set", "xmpp.tls_listen=127.0.0.1:0",
		"--set", "web.listen=",
		"--set", "upload.listen=[]",
		"--set", "calls.listen=[]",
	}
	for _, s := range settings {
		args = append(args, "--set", s)
	}
	b.Start(t, args, func(line string) {
		m := listenRe.FindStringSubmatch(line)
		switch {
		case m == nil:
		case m[1] == "irc" && m[4] == "true":
			b.ircTLS = m[2]
		case m[1] == "irc":
			b.ircPlain = m[2]
		case m[3] == "c2s-starttls":
			b.xmppPlain = m[2]
		case m[3] == "c2s-directtls":
			b.xmppTLS = m[2]
		}
	})
	var ok bool
	b.Locked(func() { ok = b.ircPlain != "" && b.ircTLS != "" && b.xmppPlain != "" && b.xmppTLS != "" })
	if !ok {
		t.Fatalf("chatbox did not log its four listeners; log:\n%s", b.LogText())
	}
	b.ca = b.CA(t)
	return b
}

func (b *box) tlsConfig() *tls.Config {
	return &tls.Config{ServerName: boxDomain, RootCAs: b.ca, MinVersion: tls.VersionTLS12}
}

// dialFrom connects to addr from the loopback address src ("" for the
// default): attackers come from 127.0.0.x of their own so that the
// per-address bounds they hit are not the well-behaved clients'.
func dialFrom(src, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: waitLimit}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	return d.Dial("tcp", addr)
}

// rawConn is a connection whose incoming bytes a goroutine collects, so
// that a test can wait (bounded) for a pattern in them.
type rawConn struct {
	nc     net.Conn
	mu     sync.Mutex
	buf    []byte
	pos    int   // where the next wait starts looking
	err    error // why reading ended (io.EOF: the server closed)
	ended  chan struct{}
	notify chan struct{}
}

func newRawConn(nc net.Conn) *rawConn {
	c := &rawConn{nc: nc, ended: make(chan struct{}), notify: make(chan struct{}, 1)}
	go func() {
		defer close(c.ended)
		p := make([]byte, 16<<10)
		for {
			n, err := nc.Read(p)
			c.mu.Lock()
			c.buf = append(c.buf, p[:n]...)
			if err != nil {
				c.err = err
			}
			c.mu.Unlock()
			select {
			case c.notify <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return c
}

func (c *rawConn) write(s string) error {
	c.nc.SetWriteDeadline(time.Now().Add(waitLimit))
	_, err := io.WriteString(c.nc, s)
	return err
}

// waitFor waits for re to match what arrived after the previous match,
// and returns the match.
func (c *rawConn) waitFor(re *regexp.Regexp) ([]byte, error) {
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		loc := re.FindIndex(c.buf[c.pos:])
		var m []byte
		if loc != nil {
			m = bytes.Clone(c.buf[c.pos+loc[0] : c.pos+loc[1]])
			c.pos += loc[1]
		}
		err := c.err
		c.mu.Unlock()
		if m != nil {
			return m, nil
		}
		if err != nil {
			return nil, fmt.Errorf("connection ended (%v) before %q arrived; got:\n%s", err, re, c.tail())
		}
		select {
		case <-c.notify:
		case <-deadline.C:
			return nil, fmt.Errorf("no %q within %v; got:\n%s", re, waitLimit, c.tail())
		}
	}
}

// waitClosed waits until the server has closed the connection (EOF or
// reset) and returns everything it sent.
func (c *rawConn) waitClosed(limit time.Duration) (string, error) {
	select {
	case <-c.ended:
	case <-time.After(limit):
		return "", fmt.Errorf("the server did not close the connection within %v; got:\n%s", limit, c.tail())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var ne net.Error
	if errors.As(c.err, &ne) && ne.Timeout() {
		return "", fmt.Errorf("read deadline, not a close: %v", c.err)
	}
	return string(c.buf), nil
}

func (c *rawConn) tail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.buf
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func (c *rawConn) close() {
	c.nc.Close()
	<-c.ended
}

// ircClient logs account in over plain IRC (PASS account:password, with
// the capabilities caps, if any) and waits for the welcome.
func ircClient(t *testing.T, addr, src, account, caps string) *rawConn {
	t.Helper()
	nc, err := dialFrom(src, addr)
	if err != nil {
		t.Fatal(err)
	}
	c := newRawConn(nc)
	t.Cleanup(c.close)
	login := ""
	if caps != "" {
		login = "CAP REQ :" + caps + "\r\n"
	}
	login += fmt.Sprintf("PASS %s:%s\r\nNICK %s\r\nUSER %s 0 * :%s\r\n", account, password(account), account, account, account)
	if caps != "" {
		login += "CAP END\r\n"
	}
	if err := c.write(login); err != nil {
		t.Fatal(err)
	}
	if _, err := c.waitFor(regexp.MustCompile(`(?m)^:\S+ 001 `)); err != nil {
		t.Fatalf("IRC login of %s: %v", account, err)
	}
	return c
}

// xmppClient logs account in over direct TLS (SASL PLAIN) and binds a
// resource.
func (b *box) xmppClient(t *testing.T, src, account string) *rawConn {
	t.Helper()
	c, err := b.xmppLogin(src, account, password(account))
	if err != nil {
		t.Fatalf("XMPP login of %s: %v", account, err)
	}
	t.Cleanup(c.close)
	return c
}

var (
	reFeatures = regexp.MustCompile(`</stream:features>`)
	reSuccess  = regexp.MustCompile(`<success[ />]`)
	reBound    = regexp.MustCompile(`<iq[^>]*id=["']bind1["'][^>]*type=["']result["']|<iq[^>]*type=["']result["'][^>]*id=["']bind1["']`)
)

func streamOpen() string {
	return `<?xml version='1.0'?><stream:stream to='` + boxDomain + `' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`
}

func (b *box) xmppLogin(src, account, pw string) (*rawConn, error) {
	nc, err := dialFrom(src, b.xmppTLS)
	if err != nil {
		return nil, err
	}
	c := newRawConn(tls.Client(nc, b.tlsConfig()))
	fail := func(err error) (*rawConn, error) {
		c.close()
		return nil, err
	}
	if err := c.write(streamOpen()); err != nil {
		return fail(err)
	}
	if _, err := c.waitFor(reFeatures); err != nil {
		return fail(err)
	}
	auth := base64.StdEncoding.EncodeToString([]byte("\x00" + account + "\x00" + pw))
	if err := c.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` + auth + `</auth>`); err != nil {
		return fail(err)
	}
	m, err := c.waitFor(regexp.MustCompile(`<success[ />]|(?s)<failure.*?</failure>`))
	if err != nil {
		return fail(err)
	}
	if !reSuccess.Match(m) {
		return fail(&saslFailure{string(m)})
	}
	if err := c.write(streamOpen()); err != nil {
		return fail(err)
	}
	if _, err := c.waitFor(reFeatures); err != nil {
		return fail(err)
	}
	if err := c.write(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`); err != nil {
		return fail(err)
	}
	if _, err := c.waitFor(reBound); err != nil {
		return fail(err)
	}
	return c, nil
}

// saslFailure is the server's SASL <failure/>.
type saslFailure struct{ xml string }

func (f *saslFailure) Error() string { return "SASL failure: " + f.xml }

// all is everything the connection received.
func (c *rawConn) all() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.buf)
}

// since returns what the connection received past its first off bytes,
// and how many bytes it has received.
func (c *rawConn) since(off int) (string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.buf[min(off, len(c.buf)):]), len(c.buf)
}

// waitCount waits until re matches n times in everything received.
func (c *rawConn) waitCount(re *regexp.Regexp, n int) error {
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		got := len(re.FindAllIndex(c.buf, n))
		err := c.err
		c.mu.Unlock()
		if got >= n {
			return nil
		}
		if err != nil {
			return fmt.Errorf("connection ended (%v) after %d of %d %q", err, got, n, re)
		}
		select {
		case <-c.notify:
		case <-deadline.C:
			return fmt.Errorf("%d of %d %q within %v; got:\n%s", got, n, re, waitLimit, c.tail())
		}
	}
}
