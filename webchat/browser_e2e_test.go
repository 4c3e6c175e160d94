package webchat_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"mellium.im/sasl"
	"mellium.im/xmlstream"
	mxmpp "mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"chatbox/internal/testbox"
)

const (
	domain    = "box.test"
	waitLimit = 20 * time.Second
)

// browserResult is what browsertest/webchat.mjs prints.
type browserResult struct {
	OK              bool              `json:"ok"`
	Step            string            `json:"step"`
	Error           string            `json:"error"`
	Screenshots     map[string]string `json:"screenshots"`
	CSPViolations   []string          `json:"cspViolations"`
	ForeignRequests []string          `json:"foreignRequests"`
	Requests        int               `json:"requests"`
	FirstMessageMs  int               `json:"firstMessageMs"`
}

var listenRe = regexp.MustCompile(`msg=listening door=(xmpp|irc|web) addr=(\S+) (?:kind=(\S+)|tls=(\S+)|url=(\S+))`)

// TestBrowserE2E drives the web chat in a real browser (Debian's chromium
// through playwright-core, browsertest/webchat.mjs) against the real
// binary with guests on (event mode): a guest opens the page, joins
// #general with a nickname, sees the message already there, says
// something that an IRC client and an XMPP client in the room receive
// (IRC shows the guest by that nickname), and sees both of their
// replies; it shares an image (XEP-0363 through Converse: both clients
// get the link, which serves the file) and is kicked by the IRC client, a
// channel operator (the page shows it); then an account holder logs in through the same page and sees
// the room with that history, and speaks there under the account's
// name. The page makes no request beyond the box
// and no CSP violation. Screenshots go to build/screenshots/.
func TestBrowserE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("no %s (Debian's chromium package): %v", chromium, err)
	}
	if _, err := os.Stat("node_modules/playwright-core/package.json"); err != nil {
		t.Skipf("no playwright-core in webchat/node_modules (make webchat-assets installs it): %v", err)
	}
	if _, err := os.Stat("dist/converse.min.js.gz"); err != nil {
		t.Skipf("no Converse.js in webchat/dist (make webchat-assets copies it): %v", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skipf("no node: %v", err)
	}
	shots, err := filepath.Abs("../build/screenshots/webchat")
	if err != nil {
		t.Fatal(err)
	}
	bin, cleanup, err := testbox.Build("../cmd/chatbox")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)

	p := testbox.New(bin, filepath.Join(t.TempDir(), "data"))
	for _, a := range []string{"alice", "bob", "carl"} {
		p.CLI(t, "password-"+a+"\n", "user", "add", a)
	}
	p.CLI(t, "", "user", "admin", "bob", "yes") // an operator of every channel: kicks the guest
	var web, ircAddr, xmppAddr string
	p.Start(t, []string{
		"--set", "domain=" + domain,
		"--set", "irc.plain_listen=127.0.0.1:0",
		"--set", "irc.tls_listen=[]",
		"--set", "xmpp.listen=127.0.0.1:0",
		"--set", "xmpp.tls_listen=[]",
		"--set", "web.listen=127.0.0.1:0",
		"--set", "web.https=false",
		"--set", "upload.listen=127.0.0.1:0",
		"--set", "calls.listen=127.0.0.1:0",
		"--set", "registration.guests=true",
		"--set", "event.enabled=true", // guests share files in event mode
		"--set", `event.rooms=["general"]`,
	}, func(line string) {
		m := listenRe.FindStringSubmatch(line)
		switch {
		case m == nil:
		case m[1] == "web":
			// The logged url is the web admin's (/admin/); the web
			// chat is at the listener's root.
			web = "http://" + m[2]
		case m[1] == "irc":
			ircAddr = m[2]
		case m[3] == "c2s-starttls":
			xmppAddr = m[2]
		}
	})
	p.Locked(func() {
		if web == "" || ircAddr == "" || xmppAddr == "" {
			t.Fatalf("listeners not in the log (web %q, irc %q, xmpp %q):\n%s", web, ircAddr, xmppAddr, p.LogText())
		}
	})

	const (
		nick      = "zoe"
		firstText = "welcome to the party"
		guestText = "hello from the browser"
		ircReply  = "hi zoe, from IRC"
		xmppReply = "hi zoe, from XMPP"
		aliceText = "hello from alice's account"
		kickCue   = "did you all see my picture?"
	)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// bob on IRC and carl on XMPP are in #general and answer the guest.
	bob := ircJoin(t, ircAddr, "bob")
	carl := xmppJoin(t, ctx, xmppAddr, p.CA(t), "carl")
	bob.send("PRIVMSG #general :" + firstText)
	carl.waitBody(t, "general@rooms."+domain+"/bob", firstText)
	image := tinyPNG(t)
	upload := filepath.Join(t.TempDir(), "party.png")
	if err := os.WriteFile(upload, image, 0o644); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var ircGot, xmppGot, aliceFrom, ircLink, xmppLink string
	wg.Add(2)
	go func() {
		defer wg.Done()
		if m, ok := bob.waitFor(func(m ircmsg.Message) bool {
			return m.Command == "PRIVMSG" && len(m.Params) == 2 && m.Params[1] == guestText
		}); ok {
			ircGot = m.Source + " " + m.Params[0]
			bob.send("PRIVMSG #general :" + ircReply)
		}
		// The guest's image reaches IRC as its link; on the guest's
		// next line bob, an operator, kicks it by the nick IRC shows.
		if m, ok := bob.waitFor(func(m ircmsg.Message) bool {
			return m.Command == "PRIVMSG" && len(m.Params) == 2 && strings.Contains(m.Params[1], "/upload/")
		}); ok {
			ircLink = m.Params[1]
		}
		if _, ok := bob.waitFor(func(m ircmsg.Message) bool {
			return m.Command == "PRIVMSG" && len(m.Params) == 2 && m.Params[1] == kickCue
		}); ok {
			bob.send("KICK #general " + nick + " :that's enough, " + nick)
		}
	}()
	go func() {
		defer wg.Done()
		if from, ok := carl.waitFor(guestText); ok {
			xmppGot = from
			carl.say(ctx, xmppReply)
			carl.waitFunc(func(m groupMessage) bool {
				if strings.Contains(m.Body, "/upload/") {
					xmppLink = m.Body
					return true
				}
				return false
			})
			aliceFrom, _ = carl.waitFor(aliceText)
		}
	}()

	cmd := exec.CommandContext(ctx, node, "browsertest/webchat.mjs")
	cmd.Env = append(os.Environ(), "BASE_URL="+web, "NICK="+nick, "FIRST_TEXT="+firstText, "GUEST_TEXT="+guestText,
		"REPLIES="+ircReply+"|"+xmppReply, "ACCOUNT=alice", "ACCOUNT_PASSWORD=password-alice", "ACCOUNT_TEXT="+aliceText,
		"SHOTS_DIR="+shots, "CHROMIUM="+chromium, "UPLOAD_FILE="+upload, "FILES_HOST="+domain, "KICK_CUE="+kickCue)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	bob.close()
	carl.close()
	wg.Wait()
	var res browserResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || runErr != nil || !res.OK {
		t.Fatalf("browser script: %v (JSON: %v)\nstdout: %s\nstderr: %s\nserver log:\n%s", runErr, err, stdout.String(), stderr.String(), p.LogText())
	}
	t.Logf("browser result: %s", strings.TrimSpace(stdout.String()))
	os.WriteFile(filepath.Join(shots, "result.json"), stdout.Bytes(), 0o644)

	// IRC shows the XMPP guest by the nickname it typed (the web chat
	// binds it as resource, which names the guest).
	if ircGot != nick+"!guest@xmpp."+domain+" #general" {
		t.Errorf("IRC got the guest's message as %q, want from %s!guest@xmpp.%s in #general", ircGot, nick, domain)
	}
	// The image: IRC and XMPP got the same link, on the origin the
	// page came from (the web listener serves the uploads too: a phone
	// that accepted the page's certificate can upload), and it serves
	// the file.
	link := strings.TrimSpace(ircLink)
	if !strings.HasPrefix(link, web+"/upload/") || xmppLink != link {
		t.Errorf("the guest's image reached IRC as %q and XMPP as %q", ircLink, xmppLink)
	} else if got := fetchShared(t, p.CA(t), link); !bytes.Equal(got, image) {
		t.Errorf("%s serves %d bytes, want the %d the guest shared", link, len(got), len(image))
	}
	if xmppGot != "general@rooms."+domain+"/"+nick {
		t.Errorf("XMPP got the guest's message from %q", xmppGot)
	}
	if aliceFrom != "general@rooms."+domain+"/alice" {
		t.Errorf("XMPP got the account holder's message from %q, want under the account's name", aliceFrom)
	}
	for _, name := range []string{"entry", "guest-room", "guest-upload", "guest-kicked", "login", "account-room"} {
		data, err := os.ReadFile(res.Screenshots[name])
		if err != nil || !bytes.HasPrefix(data, []byte("\x89PNG")) {
			t.Errorf("screenshot %s: %q: %v", name, res.Screenshots[name], err)
		}
	}
	if len(res.CSPViolations) > 0 {
		t.Errorf("CSP violations: %q", res.CSPViolations)
	}
	if len(res.ForeignRequests) > 0 {
		t.Errorf("requests beyond the box: %q", res.ForeignRequests)
	}
	if res.FirstMessageMs <= 0 {
		t.Errorf("time to the first message shown: %d ms", res.FirstMessageMs)
	}
}

// ircClient is a raw IRC client (irc-go's parser) logged in by PASS.
type ircClient struct {
	t     *testing.T
	conn  net.Conn
	lines chan ircmsg.Message
}

func ircJoin(t *testing.T, addr, name string) *ircClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	c := &ircClient{t: t, conn: conn, lines: make(chan ircmsg.Message, 1000)}
	t.Cleanup(c.close)
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(conn)
		for sc.Scan() {
			if m, err := ircmsg.ParseLine(sc.Text()); err == nil {
				if m.Command == "PING" && len(m.Params) > 0 {
					c.send("PONG :" + m.Params[0])
				}
				select {
				case c.lines <- m:
				default: // the test reads far fewer lines than this
				}
			}
		}
	}()
	c.send("PASS password-" + name)
	c.send("NICK " + name)
	c.send("USER " + name + " 0 * :" + name)
	if _, ok := c.waitFor(func(m ircmsg.Message) bool { return m.Command == "001" }); !ok {
		t.Fatalf("IRC %s: no welcome", name)
	}
	c.send("JOIN #general")
	if _, ok := c.waitFor(func(m ircmsg.Message) bool { return m.Command == "366" }); !ok {
		t.Fatalf("IRC %s: not in #general", name)
	}
	return c
}

func (c *ircClient) send(line string) {
	c.conn.SetWriteDeadline(time.Now().Add(waitLimit))
	fmt.Fprintf(c.conn, "%s\r\n", line)
}

// waitFor returns the first line matching pred, or false after a minute
// (the browser's whole run) or when the connection ends.
func (c *ircClient) waitFor(pred func(ircmsg.Message) bool) (ircmsg.Message, bool) {
	deadline := time.After(time.Minute)
	for {
		select {
		case m, ok := <-c.lines:
			if !ok {
				return ircmsg.Message{}, false
			}
			if pred(m) {
				return m, true
			}
		case <-deadline:
			return ircmsg.Message{}, false
		}
	}
}

func (c *ircClient) close() { c.conn.Close() }

// xmppClient is a mellium client in the room general.
type xmppClient struct {
	s    *mxmpp.Session
	msgs chan groupMessage
}

type groupMessage struct {
	From string `xml:"from,attr"`
	Type string `xml:"type,attr"`
	Body string `xml:"body"`
}

func xmppJoin(t *testing.T, ctx context.Context, addr string, ca *x509.CertPool, name string) *xmppClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{ServerName: domain, RootCAs: ca, MinVersion: tls.VersionTLS12}
	s, err := mxmpp.NewClientSession(ctx, jid.MustParse(name+"@"+domain), conn,
		mxmpp.StartTLS(tc), mxmpp.SASL("", "password-"+name, sasl.ScramSha256), mxmpp.BindResource())
	if err != nil {
		t.Fatalf("XMPP login %s: %v", name, err)
	}
	c := &xmppClient{s: s, msgs: make(chan groupMessage, 1000)}
	t.Cleanup(c.close)
	go func() {
		defer close(c.msgs)
		if err := s.Serve(mxmpp.HandlerFunc(c.handle)); err != nil {
			t.Logf("XMPP %s: %v", name, err)
		}
	}()
	c.sendRaw(ctx, fmt.Sprintf(`<presence to="general@rooms.%s/%s"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="0"/></x></presence>`, domain, name))
	return c
}

// handle keeps the room messages.
func (c *xmppClient) handle(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	if start.Name.Local != "message" {
		return nil
	}
	var m groupMessage
	if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r)).Decode(&m); err != nil {
		return err
	}
	select {
	case c.msgs <- m:
	default:
	}
	return nil
}

func (c *xmppClient) sendRaw(ctx context.Context, x string) error {
	return c.s.Send(ctx, rawTokens{xml.NewDecoder(strings.NewReader(x))})
}

func (c *xmppClient) say(ctx context.Context, text string) {
	var b strings.Builder
	xml.EscapeText(&b, []byte(text))
	c.sendRaw(ctx, fmt.Sprintf(`<message to="general@rooms.%s" type="groupchat"><body>%s</body></message>`, domain, b.String()))
}

// waitFor returns the sender of the first room message with body text.
func (c *xmppClient) waitFor(text string) (string, bool) {
	deadline := time.After(time.Minute)
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				return "", false
			}
			if m.Type == "groupchat" && m.Body == text {
				return m.From, true
			}
		case <-deadline:
			return "", false
		}
	}
}

// waitFunc returns the first room message pred accepts, or false.
func (c *xmppClient) waitFunc(pred func(groupMessage) bool) (groupMessage, bool) {
	deadline := time.After(time.Minute)
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				return groupMessage{}, false
			}
			if m.Type == "groupchat" && pred(m) {
				return m, true
			}
		case <-deadline:
			return groupMessage{}, false
		}
	}
}

func (c *xmppClient) waitBody(t *testing.T, from, text string) {
	t.Helper()
	if got, ok := c.waitFor(text); !ok || got != from {
		t.Fatalf("XMPP: %q from %q: got it from %q (%v)", text, from, got, ok)
	}
}

func (c *xmppClient) close() { c.s.Close() }

// rawTokens reads XML text as tokens without resolving namespaces, so
// that mellium writes it out as written.
type rawTokens struct{ d *xml.Decoder }

func (r rawTokens) Token() (xml.Token, error) {
	t, err := r.d.RawToken()
	if err != nil {
		return nil, err
	}
	return xml.CopyToken(t), nil
}

// tinyPNG is a small valid PNG (16x16, one colour).
func tinyPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for i := range img.Pix {
		img.Pix[i] = 0xc0
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// fetchShared GETs a shared file's link from the box's file service
// (https://box.test:port, on loopback), trusting the box's CA.
func fetchShared(t *testing.T, ca *x509.CertPool, link string) []byte {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: domain, RootCAs: ca, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", u.Port()))
		},
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: waitLimit}).Get(link)
	if err != nil {
		t.Fatalf("GET %s: %v", link, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", link, resp.StatusCode, err)
	}
	return body
}
