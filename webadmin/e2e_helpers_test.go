package webadmin_test

// The web admin's end-to-end harness: the real chatbox binary
// (internal/testbox) with every door on loopback and ephemeral ports, a
// cookie-keeping HTTP client that fills the admin's forms as a browser
// does, and small XMPP (mellium) and IRC (ircmsg) clients for the
// accounts the admin made. Every wait is bounded.

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"mellium.im/sasl"
	mxmpp "mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"chatbox/internal/testbox"
)

const (
	e2eDomain = "box.test"
	e2eWait   = 20 * time.Second
)

// The binary is built once, on first use, and removed at the end.
var built struct {
	once    sync.Once
	bin     string
	err     error
	cleanup func()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.cleanup != nil {
		built.cleanup()
	}
	os.Exit(code)
}

func chatboxBin(t *testing.T) string {
	t.Helper()
	built.once.Do(func() { built.bin, built.cleanup, built.err = testbox.Build("../cmd/chatbox") })
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

var (
	webListenRe  = regexp.MustCompile(`msg=listening door=web addr=(\S+)`)
	ircListenRe  = regexp.MustCompile(`msg=listening door=irc addr=(\S+)`)
	xmppListenRe = regexp.MustCompile(`msg=listening door=xmpp addr=(\S+) kind=c2s-starttls`)
	setupCodeRe  = regexp.MustCompile(`msg="web admin setup code" code=(\S+)`)
)

// e2eBox is a running chatbox and what it logged: each start's web
// address (a restart listens on a new ephemeral port), the setup code,
// the doors' addresses and how many times it was ready.
type e2eBox struct {
	*testbox.Proc
	mu     sync.Mutex
	webs   []string
	code   string
	irc    string
	xmpp   string
	ready  int
	readyC chan struct{} // a value per "chatbox ready" after the first
}

func startE2EBox(t *testing.T) *e2eBox {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	b := &e2eBox{Proc: testbox.New(chatboxBin(t), data), readyC: make(chan struct{}, 4)}
	b.Start(t, []string{
		"--set", "domain=" + e2eDomain,
		"--set", "irc.plain_listen=127.0.0.1:0",
		"--set", "irc.tls_listen=[]",
		"--set", "xmpp.listen=127.0.0.1:0",
		"--set", "xmpp.tls_listen=[]",
		"--set", "web.listen=127.0.0.1:0",
		"--set", "upload.listen=[]",
		"--set", "calls.listen=[]",
		"--set", "hw.backend=sim",
	}, func(line string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		if m := webListenRe.FindStringSubmatch(line); m != nil {
			b.webs = append(b.webs, m[1])
		}
		if m := setupCodeRe.FindStringSubmatch(line); m != nil {
			b.code = m[1]
		}
		if m := ircListenRe.FindStringSubmatch(line); m != nil {
			b.irc = m[1]
		}
		if m := xmppListenRe.FindStringSubmatch(line); m != nil {
			b.xmpp = m[1]
		}
		if strings.Contains(line, `msg="chatbox ready"`) {
			b.ready++
			if b.ready > 1 {
				b.readyC <- struct{}{}
			}
		}
	})
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.webs) == 0 || b.code == "" || b.irc == "" || b.xmpp == "" {
		t.Fatalf("chatbox did not log its web admin, setup code, IRC and XMPP listeners; log:\n%s", b.LogText())
	}
	return b
}

// web is the web admin's base URL of the latest start.
func (b *e2eBox) web() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return "http://" + b.webs[len(b.webs)-1]
}

func (b *e2eBox) setupCode() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.code
}

// waitRestarted waits for the box to be ready again after a restart.
func (b *e2eBox) waitRestarted(t *testing.T) {
	t.Helper()
	select {
	case <-b.readyC:
	case <-time.After(60 * time.Second):
		t.Fatalf("the box was not ready again within a minute; log:\n%s", b.LogText())
	}
}

// admin is an HTTP client with cookies that does not follow redirects.
type admin struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func newAdmin(t *testing.T, base string) *admin {
	jar, _ := cookiejar.New(nil)
	return &admin{t: t, base: base, c: &http.Client{Jar: jar, Timeout: e2eWait,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status   int
	location string
	body     string
}

func (a *admin) do(req *http.Request) page {
	a.t.Helper()
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfRe.FindSubmatch(body); m != nil {
		a.csrf = string(m[1])
	}
	return page{resp.StatusCode, resp.Header.Get("Location"), string(body)}
}

func (a *admin) get(path string) page {
	a.t.Helper()
	req, _ := http.NewRequest("GET", a.base+path, nil)
	return a.do(req)
}

// post sends a form with the last page's CSRF token.
func (a *admin) post(path string, kv ...string) page {
	a.t.Helper()
	form := url.Values{"csrf": {a.csrf}}
	for i := 0; i+1 < len(kv); i += 2 {
		form.Set(kv[i], kv[i+1])
	}
	req, _ := http.NewRequest("POST", a.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return a.do(req)
}

// upload posts the backup form: the token, then the file.
func (a *admin) upload(path, name string, data []byte) page {
	a.t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		mw.WriteField("csrf", a.csrf)
		fw, _ := mw.CreateFormFile("backup", name)
		fw.Write(data)
		pw.CloseWithError(mw.Close())
	}()
	req, _ := http.NewRequest("POST", a.base+path, pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return a.do(req)
}

func (a *admin) want(p page, status int, contains ...string) {
	a.t.Helper()
	if p.status != status {
		a.t.Fatalf("status %d, want %d (location %q)\n%s", p.status, status, p.location, p.body)
	}
	for _, c := range contains {
		if !strings.Contains(p.body, c) {
			a.t.Fatalf("page lacks %q:\n%s", c, p.body)
		}
	}
}

func (a *admin) wantRedirect(p page, to string) {
	a.t.Helper()
	if p.status != http.StatusSeeOther || p.location != to {
		a.t.Fatalf("got %d to %q, want 303 to %q\n%s", p.status, p.location, to, p.body)
	}
}

// setUp claims the box with its setup code; the client is logged in.
func (a *admin) setUp(code, password string) {
	a.t.Helper()
	a.get("/admin/setup")
	a.wantRedirect(a.post("/admin/setup", "name", "Test box", "password", password, "password2", password, "code", code), "/admin/")
	a.get("/admin/")
}

func (a *admin) login(password string) {
	a.t.Helper()
	a.get("/admin/login")
	a.wantRedirect(a.post("/admin/login", "password", password), "/admin/")
	a.get("/admin/")
}

// xmppLogin logs account in over XMPP (STARTTLS trusting the box's CA,
// SCRAM, resource binding) and closes the session.
func xmppLogin(t *testing.T, b *e2eBox, account, password string) string {
	t.Helper()
	b.mu.Lock()
	addr := b.xmpp
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	nc, err := net.DialTimeout("tcp", addr, e2eWait)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	tc := &tls.Config{ServerName: e2eDomain, RootCAs: b.CA(t), MinVersion: tls.VersionTLS12}
	s, err := mxmpp.NewClientSession(ctx, jid.MustParse(account+"@"+e2eDomain), nc,
		mxmpp.StartTLS(tc), mxmpp.SASL("", password, sasl.ScramSha256Plus, sasl.ScramSha256), mxmpp.BindResource())
	if err != nil {
		t.Fatalf("XMPP login as %s: %v", account, err)
	}
	bound := s.LocalAddr().String()
	s.Close()
	return bound
}

// ircClient is a raw IRC connection.
type ircClient struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

// ircLogin connects and logs account in with PASS account:password; it
// returns once the server welcomed it (001) and said it is logged in (900).
func ircLogin(t *testing.T, b *e2eBox, account, password string) *ircClient {
	t.Helper()
	b.mu.Lock()
	addr := b.irc
	b.mu.Unlock()
	nc, err := net.DialTimeout("tcp", addr, e2eWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &ircClient{t: t, nc: nc, r: bufio.NewReader(nc)}
	c.send("PASS " + account + ":" + password)
	c.send("NICK " + account)
	c.send("USER " + account + " 0 * :" + account)
	welcomed, loggedIn := false, false
	c.expect("001 and 900", func(m ircmsg.Message) bool {
		switch m.Command {
		case "001":
			welcomed = true
		case "900":
			loggedIn = len(m.Params) >= 3 && m.Params[2] == account
		}
		return welcomed && loggedIn
	})
	return c
}

func (c *ircClient) send(line string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(e2eWait))
	if _, err := io.WriteString(c.nc, line+"\r\n"); err != nil {
		c.t.Fatal(err)
	}
}

// expect reads lines (answering PING) until match says so.
func (c *ircClient) expect(what string, match func(ircmsg.Message) bool) ircmsg.Message {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(e2eWait))
	var seen []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("IRC: waiting for %s: %v; got:\n%s", what, err, strings.Join(seen, ""))
		}
		seen = append(seen, line)
		m, err := ircmsg.ParseLine(strings.TrimRight(line, "\r\n"))
		if err != nil {
			continue
		}
		if m.Command == "PING" {
			c.send("PONG :" + strings.Join(m.Params, " "))
			continue
		}
		if m.Command == "ERROR" {
			c.t.Fatalf("IRC: waiting for %s: %s", what, line)
		}
		if match(m) {
			return m
		}
	}
}

// metricValue is a sample's value in a Prometheus text body.
func metricValue(body, sample string) (string, error) {
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, sample+" "); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("no %s", sample)
}
