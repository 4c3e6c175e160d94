package xmpp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ergochat/irc-go/ircmsg"
)

// End-to-end tests of XEP-0363 HTTP File Upload: the box hosts
// upload.<domain> over XMPP and serves the files itself over HTTPS
// (services/upload); clients PUT and GET with net/http trusting the
// box's CA, as an app would.

const uploadDomain = "upload." + boxDomain

// httpClient is an HTTPS client that trusts the box's CA and reaches
// box.test at the box's upload listener.
func (b *box) httpClient(t *testing.T) *http.Client {
	t.Helper()
	if b.uploadAddr == "" {
		t.Fatalf("the box did not log its upload listener; log:\n%s", b.logText())
	}
	_, upPort, _ := net.SplitHostPort(b.uploadAddr)
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: b.ca, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil || host != boxDomain || port != upPort {
				return nil, fmt.Errorf("the test reaches only %s:%s, not %s", boxDomain, upPort, addr)
			}
			return (&net.Dialer{}).DialContext(ctx, network, b.uploadAddr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Timeout: waitLimit, Transport: tr}
}

// slotRequest asks upload.box.test for a slot and returns the response.
func slotRequest(c *client, name string, size int64, ctype string) *Element {
	c.t.Helper()
	var esc bytes.Buffer
	xml.EscapeText(&esc, []byte(name))
	id := randomID()
	ct := ""
	if ctype != "" {
		ct = ` content-type="` + ctype + `"`
	}
	c.send(`<iq type="get" id="%s" to="%s"><request xmlns="urn:xmpp:http:upload:0" filename="%s" size="%d"%s/></iq>`,
		id, uploadDomain, esc.String(), size, ct)
	return c.expectID(id)
}

// uploadSlot is a parsed <slot/>.
type uploadSlot struct {
	put, get string
	headers  map[string]string
}

func parseSlot(t *testing.T, r *Element) uploadSlot {
	t.Helper()
	sl := r.Child(nsUpload, "slot")
	if r.Get("type") != "result" || r.Get("from") != uploadDomain || sl == nil {
		t.Fatalf("slot request: %s", r)
	}
	put, get := sl.Child(nsUpload, "put"), sl.Child(nsUpload, "get")
	if put == nil || get == nil || len(sl.Kids()) != 2 || len(get.Kids()) != 0 {
		t.Fatalf("slot %s", sl)
	}
	out := uploadSlot{put: put.Get("url"), get: get.Get("url"), headers: map[string]string{}}
	for _, h := range put.Kids() {
		if !h.Is(nsUpload, "header") || h.Get("name") == "" {
			t.Fatalf("bad <put/> child in %s", sl)
		}
		out.headers[h.Get("name")] = h.Text()
	}
	return out
}

// httpPut uploads body to the slot and returns the status.
func httpPut(t *testing.T, hc *http.Client, sl uploadSlot, body []byte, ctype string) int {
	t.Helper()
	req, err := http.NewRequest("PUT", sl.put, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range sl.headers {
		req.Header.Set(k, v)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", sl.put, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// httpGet fetches a URL.
func httpGet(t *testing.T, hc *http.Client, u string) (*http.Response, []byte) {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp, b
}

// uploadErr checks a slot request's error: type, condition and the text
// holding want.
func uploadErr(t *testing.T, r *Element, typ, cond, want string) *Element {
	t.Helper()
	e := r.Child(nsClient, "error")
	if r.Get("type") != "error" || e == nil || e.Get("type") != typ || e.Child(nsStanzaErr, cond) == nil ||
		!strings.Contains(e.ChildText(nsStanzaErr, "text"), want) {
		t.Fatalf("want a %s/%s error saying %q, got %s", typ, cond, want, r)
	}
	return e
}

// TestUploadDiscovery: the domain lists upload.box.test, whose
// disco#info says what it is and how large a file may be (XEP-0363 §3).
func TestUploadDiscovery(t *testing.T) {
	b := startBox(t, []string{"alice"})
	alice := b.login(t, "alice", "")
	items := alice.iq(`<iq type="get" id="{id}" to="box.test"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`)
	var jids []string
	for _, it := range items.Child(nsDiscoItems, "query").Kids() {
		jids = append(jids, it.Get("jid"))
	}
	if !slices.Contains(jids, uploadDomain) {
		t.Fatalf("disco#items of the domain %v lack %s", jids, uploadDomain)
	}
	info := alice.iq(`<iq type="get" id="{id}" to="` + uploadDomain + `"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	want := `<query xmlns="http://jabber.org/protocol/disco#info">` +
		`<identity category="store" type="file" name="File upload"/>` +
		`<feature var="http://jabber.org/protocol/disco#info"/>` +
		`<feature var="http://jabber.org/protocol/disco#items"/>` +
		`<feature var="urn:xmpp:http:upload:0"/>` +
		`<x xmlns="jabber:x:data" type="result">` +
		`<field var="FORM_TYPE" type="hidden"><value>urn:xmpp:http:upload:0</value></field>` +
		`<field var="max-file-size"><value>104857600</value></field></x></query>`
	if got := info.Child(nsDiscoInfo, "query").String(); got != want {
		t.Fatalf("disco#info of %s:\n got %s\nwant %s", uploadDomain, got, want)
	}
	if info.Get("from") != uploadDomain {
		t.Fatalf("disco#info from %q", info.Get("from"))
	}
	its := alice.iq(`<iq type="get" id="{id}" to="` + uploadDomain + `"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`)
	if q := its.Child(nsDiscoItems, "query"); q == nil || len(q.Kids()) != 0 {
		t.Fatalf("disco#items of %s: %s", uploadDomain, its)
	}
	alice.iqErr(`<iq type="get" id="{id}" to="`+uploadDomain+`"><query xmlns="jabber:iq:version"/></iq>`, "service-unavailable")
	alice.iqErr(`<iq type="set" id="{id}" to="`+uploadDomain+`"><request xmlns="urn:xmpp:http:upload:0" filename="a" size="1"/></iq>`, "bad-request")
}

// TestUploadOff: with upload.listen empty there is no upload service.
func TestUploadOff(t *testing.T) {
	b := startBox(t, []string{"alice"}, "upload.listen=[]")
	if b.uploadAddr != "" {
		t.Fatalf("upload listener %s with upload.listen=[]", b.uploadAddr)
	}
	alice := b.login(t, "alice", "")
	items := alice.iq(`<iq type="get" id="{id}" to="box.test"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`)
	for _, it := range items.Child(nsDiscoItems, "query").Kids() {
		if it.Get("jid") == uploadDomain {
			t.Fatalf("%s listed with file sharing off: %s", uploadDomain, items)
		}
	}
	alice.iqErr(`<iq type="get" id="{id}" to="`+uploadDomain+`"><request xmlns="urn:xmpp:http:upload:0" filename="a" size="1"/></iq>`, "remote-server-not-found")
}

// TestUploadPutGetAndShare: a slot over XMPP, the file PUT and fetched
// back over HTTPS, and the link sent to someone on IRC, who can open it.
func TestUploadPutGetAndShare(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	alice := b.login(t, "alice", "")
	alice.send(`<presence/>`)
	hc := b.httpClient(t)
	body := make([]byte, 100_000)
	rand.Read(body)

	sl := parseSlot(t, slotRequest(alice, "rock&roll/très cool.jpg", int64(len(body)), "image/jpeg"))
	_, port, _ := net.SplitHostPort(b.uploadAddr)
	prefix := "https://" + boxDomain + ":" + port + "/upload/"
	if !strings.HasPrefix(sl.put, prefix) || !strings.HasSuffix(sl.put, "/tr%C3%A8s%20cool.jpg") || sl.get != sl.put {
		t.Fatalf("slot URLs put %s get %s, want %s<id>/tr%%C3%%A8s%%20cool.jpg", sl.put, sl.get, prefix)
	}
	if len(sl.headers) != 1 || !strings.HasPrefix(sl.headers["Authorization"], "Bearer ") {
		t.Fatalf("slot headers %v", sl.headers)
	}
	// Without the header, or with the wrong size, the PUT is refused.
	if code := httpPut(t, hc, uploadSlot{put: sl.put}, body, "image/jpeg"); code != http.StatusForbidden {
		t.Fatalf("PUT without Authorization: %d", code)
	}
	if code := httpPut(t, hc, sl, body[:10], "image/jpeg"); code != http.StatusBadRequest {
		t.Fatalf("PUT of the wrong size: %d", code)
	}
	if code := httpPut(t, hc, sl, body, "image/jpeg"); code != http.StatusCreated {
		t.Fatalf("PUT: %d; log:\n%s", code, b.logText())
	}
	if code := httpPut(t, hc, sl, body, "image/jpeg"); code != http.StatusConflict {
		t.Fatalf("second PUT: %d", code)
	}
	resp, got := httpGet(t, hc, sl.get)
	if resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("GET: %d, %d bytes (identical: %v)", resp.StatusCode, len(got), bytes.Equal(got, body))
	}
	for k, v := range map[string]string{"Content-Type": "image/jpeg", "Content-Length": "100000",
		"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox",
		"Content-Disposition": "inline; filename*=utf-8''tr%C3%A8s%20cool.jpg", "Access-Control-Allow-Origin": "*"} {
		if g := resp.Header.Get(k); g != v {
			t.Errorf("GET %s: %q, want %q", k, g, v)
		}
	}

	// The link, sent as a message with an out-of-band URL (XEP-0066, as
	// apps do), reaches bob on IRC as text he can open.
	bob := b.ircLogin(t, "bob")
	alice.send(`<message to="bob@box.test" type="chat"><body>%s</body><x xmlns="jabber:x:oob"><url>%s</url></x></message>`, sl.get, sl.get)
	m := bob.expect("the link", func(m ircmsg.Message) bool { return m.Command == "PRIVMSG" })
	if m.Nick() != "alice" || len(m.Params) != 2 || m.Params[1] != sl.get {
		t.Fatalf("bob got %v from %s, want the link %s", m.Params, m.Source, sl.get)
	}
	resp, got = httpGet(t, b.httpClient(t), m.Params[1])
	if resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("bob's GET: %d", resp.StatusCode)
	}
}

// TestUploadLimits: too large is not-acceptable with the largest size
// (XEP-0363 §6), over quota is resource-constraint saying what is left,
// a malformed request is bad-request.
func TestUploadLimits(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"}, "upload.max_file_bytes=1000", "upload.quota_bytes=1500")
	alice := b.login(t, "alice", "")
	hc := b.httpClient(t)

	info := alice.iq(`<iq type="get" id="{id}" to="` + uploadDomain + `"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	if !strings.Contains(info.String(), `<field var="max-file-size"><value>1000</value></field>`) {
		t.Fatalf("disco#info %s", info)
	}

	r := slotRequest(alice, "big.bin", 1001, "")
	e := uploadErr(t, r, "modify", "not-acceptable", "1000 bytes")
	ftl := e.Child(nsUpload, "file-too-large")
	if ftl == nil || ftl.String() != `<file-too-large xmlns="urn:xmpp:http:upload:0"><max-file-size>1000</max-file-size></file-too-large>` {
		t.Fatalf("too large: %s", r)
	}
	if r.Get("from") != uploadDomain || r.Get("to") != alice.jid {
		t.Fatalf("error addresses: %s", r)
	}

	sl := parseSlot(t, slotRequest(alice, "a.bin", 1000, "application/octet-stream"))
	if code := httpPut(t, hc, sl, make([]byte, 1000), "application/octet-stream"); code != http.StatusCreated {
		t.Fatalf("PUT: %d", code)
	}
	r = slotRequest(alice, "b.bin", 600, "")
	uploadErr(t, r, "wait", "resource-constraint", "500 bytes")
	// 500 bytes still fit; bob has his own quota.
	parseSlot(t, slotRequest(alice, "c.bin", 500, ""))
	bob := b.login(t, "bob", "")
	parseSlot(t, slotRequest(bob, "d.bin", 1000, ""))

	for _, bad := range []string{
		`<request xmlns="urn:xmpp:http:upload:0" size="10"/>`,
		`<request xmlns="urn:xmpp:http:upload:0" filename="a" size="ten"/>`,
		`<request xmlns="urn:xmpp:http:upload:0" filename="a"/>`,
		`<request xmlns="urn:xmpp:http:upload:0" filename="a" size="-1"/>`,
		`<request xmlns="urn:xmpp:http:upload:0" filename="a" size="1" content-type="not a type"/>`,
	} {
		alice.iqErr(`<iq type="get" id="{id}" to="`+uploadDomain+`">`+bad+`</iq>`, "bad-request")
	}
}
