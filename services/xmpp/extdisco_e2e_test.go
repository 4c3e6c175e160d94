package xmpp

// End-to-end tests of XEP-0215 External Service Discovery with the box's
// STUN/TURN service (services/turn): the services a client is told about
// are the ones the box runs, and the TURN credentials it gets relay media.

import (
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"chatbox/services/chat"

	pturn "github.com/pion/turn/v4"
)

var callsListenRe = regexp.MustCompile(`msg=listening door=calls addr=(\S+) transport=(udp|tcp)`)

// callsAddrs returns the STUN/TURN listeners the box logged, by transport.
func (b *box) callsAddrs(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range callsListenRe.FindAllStringSubmatch(b.logText(), -1) {
		out[m[2]] = m[1]
	}
	if out["udp"] == "" || out["tcp"] == "" {
		t.Fatalf("the box did not log its calls listeners; log:\n%s", b.logText())
	}
	return out
}

// extServices returns the <service/> children of a services or
// credentials payload.
func extServices(t *testing.T, r *Element, local string) []*Element {
	t.Helper()
	q := r.Child(nsExtDisco, local)
	if q == nil {
		t.Fatalf("no <%s xmlns='%s'/> in %s", local, nsExtDisco, r)
	}
	var out []*Element
	for _, k := range q.Kids() {
		if !k.Is(nsExtDisco, "service") {
			t.Fatalf("unexpected child %s in %s", k, r)
		}
		out = append(out, k)
	}
	return out
}

// checkTURN checks one TURN <service/>: credentials for account that
// expire in about a day.
func checkTURN(t *testing.T, s *Element, account string) {
	t.Helper()
	if !regexp.MustCompile(`^[0-9]+:`+account+`$`).MatchString(s.Get("username")) || s.Get("password") == "" || s.Get("restricted") != "1" {
		t.Errorf("turn service %s: want username <expiry>:%s, a password and restricted='1'", s, account)
	}
	exp, err := time.Parse("2006-01-02T15:04:05Z", s.Get("expires"))
	if err != nil {
		t.Errorf("turn service %s: expires is not a XEP-0082 UTC dateTime: %v", s, err)
	} else if d := time.Until(exp); d < 23*time.Hour || d > 24*time.Hour+time.Minute {
		t.Errorf("turn service %s: credentials expire in %v, want the default 24h", s, d)
	}
	if ts, _, _ := strings.Cut(s.Get("username"), ":"); ts != strconv.FormatInt(exp.Unix(), 10) {
		t.Errorf("turn service %s: the username's expiry %s is not the expires attribute (%d)", s, ts, exp.Unix())
	}
}

// TestExtDiscoServices: the domain advertises urn:xmpp:extdisco:2; a
// client asking for <services/> gets STUN and TURN over UDP and TCP at
// the box's calls listener, TURN with credentials; type filters;
// <credentials/> returns fresh credentials for a named service and
// item-not-found for an unknown one.
func TestExtDiscoServices(t *testing.T) {
	b := startBox(t, []string{"alice"})
	addrs := b.callsAddrs(t)
	host, port, _ := net.SplitHostPort(addrs["udp"])
	if _, tcpPort, _ := net.SplitHostPort(addrs["tcp"]); tcpPort != port || host != "127.0.0.1" {
		t.Fatalf("calls listeners %v: want UDP and TCP on one 127.0.0.1 port", addrs)
	}
	alice := b.login(t, "alice", "")

	info := alice.iq(`<iq type="get" id="{id}" to="box.test"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	if feats := discoFeatures(t, info); !slices.Contains(feats, nsExtDisco) {
		t.Fatalf("disco#info of the domain lacks %s: %v", nsExtDisco, feats)
	}

	r := alice.iq(`<iq type="get" id="{id}" to="box.test"><services xmlns="urn:xmpp:extdisco:2"/></iq>`)
	if r.Get("from") != boxDomain || r.Get("to") != alice.jid {
		t.Fatalf("addresses of %s", r)
	}
	svcs := extServices(t, r, "services")
	var got []string
	for _, s := range svcs {
		got = append(got, s.Get("type")+"/"+s.Get("transport")+"/"+s.Get("host")+":"+s.Get("port"))
		switch s.Get("type") {
		case "stun":
			if s.Get("username") != "" || s.Get("password") != "" || s.Get("restricted") != "" || s.Get("expires") != "" {
				t.Errorf("stun service with credentials: %s", s)
			}
		case "turn":
			checkTURN(t, s, "alice")
		}
	}
	hp := "127.0.0.1:" + port
	want := []string{"stun/udp/" + hp, "stun/tcp/" + hp, "turn/udp/" + hp, "turn/tcp/" + hp}
	if !slices.Equal(got, want) {
		t.Fatalf("services %v, want %v (in %s)", got, want, r)
	}

	// Selected by type: the type is echoed, only those services come.
	r = alice.iq(`<iq type="get" id="{id}" to="box.test"><services xmlns="urn:xmpp:extdisco:2" type="turn"/></iq>`)
	if r.Child(nsExtDisco, "services").Get("type") != "turn" {
		t.Errorf("the services result does not echo type='turn': %s", r)
	}
	if turn := extServices(t, r, "services"); len(turn) != 2 || turn[0].Get("type") != "turn" || turn[1].Get("type") != "turn" {
		t.Errorf("type='turn' returned %s, want the two TURN services", r)
	}
	r = alice.iq(`<iq type="get" id="{id}" to="box.test"><services xmlns="urn:xmpp:extdisco:2" type="ftp"/></iq>`)
	if s := extServices(t, r, "services"); len(s) != 0 {
		t.Errorf("type='ftp' returned %s, want no services", r)
	}

	// Credentials for one service, by host, type and port (and transport).
	r = alice.iq(`<iq type="get" id="{id}" to="box.test"><credentials xmlns="urn:xmpp:extdisco:2"><service host="127.0.0.1" type="turn" port="` + port + `" transport="udp"/></credentials></iq>`)
	creds := extServices(t, r, "credentials")
	if len(creds) != 1 || creds[0].Get("host") != "127.0.0.1" || creds[0].Get("port") != port || creds[0].Get("transport") != "udp" || creds[0].Get("type") != "turn" {
		t.Fatalf("credentials %s, want the TURN/UDP service", r)
	}
	checkTURN(t, creds[0], "alice")
	r = alice.iq(`<iq type="get" id="{id}" to="box.test"><credentials xmlns="urn:xmpp:extdisco:2"><service host="127.0.0.1" type="turn"/></credentials></iq>`)
	if creds := extServices(t, r, "credentials"); len(creds) != 2 {
		t.Errorf("credentials by host and type %s, want TURN over UDP and TCP", r)
	}
	alice.iqErr(`<iq type="get" id="{id}" to="box.test"><credentials xmlns="urn:xmpp:extdisco:2"><service host="turn.example" type="turn"/></credentials></iq>`, "item-not-found")
	alice.iqErr(`<iq type="get" id="{id}" to="box.test"><credentials xmlns="urn:xmpp:extdisco:2"><service type="turn"/></credentials></iq>`, "bad-request")
	alice.iqErr(`<iq type="set" id="{id}" to="box.test"><services xmlns="urn:xmpp:extdisco:2"/></iq>`, "bad-request")
}

// TestExtDiscoRelaysACall: with the credentials XEP-0215 hands out, a
// TURN client (pion, as apps use) allocates a relay on the running box,
// over UDP and over TCP, and exchanges packets with a UDP peer through
// it.
func TestExtDiscoRelaysACall(t *testing.T) {
	b := startBox(t, []string{"alice"})
	alice := b.login(t, "alice", "")
	r := alice.iq(`<iq type="get" id="{id}" to="box.test"><services xmlns="urn:xmpp:extdisco:2" type="turn"/></iq>`)
	for _, s := range extServices(t, r, "services") {
		t.Run(s.Get("transport"), func(t *testing.T) {
			addr := net.JoinHostPort(s.Get("host"), s.Get("port"))
			var conn net.PacketConn
			if s.Get("transport") == "tcp" {
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				conn = pturn.NewSTUNConn(nc)
			} else {
				pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				conn = pc
			}
			defer conn.Close()
			c, err := pturn.NewClient(&pturn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn,
				Username: s.Get("username"), Password: s.Get("password"), RTO: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Listen(); err != nil {
				t.Fatal(err)
			}
			if _, err := c.SendBindingRequest(); err != nil {
				t.Fatalf("STUN binding at %s: %v", addr, err)
			}
			relay, err := c.Allocate()
			if err != nil {
				t.Fatalf("TURN allocation at %s with the XEP-0215 credentials: %v", addr, err)
			}
			defer relay.Close()
			ra := relay.LocalAddr().(*net.UDPAddr)
			if !ra.IP.Equal(net.IPv4(127, 0, 0, 1)) || ra.Port < 49152 || ra.Port > 49407 {
				t.Errorf("relay %v, want 127.0.0.1 in the default port range 49152-49407", ra)
			}
			peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			if _, err := relay.WriteTo([]byte("ring ring"), peer.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1500)
			peer.SetReadDeadline(time.Now().Add(waitLimit))
			n, from, err := peer.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "ring ring" || from.String() != ra.String() {
				t.Fatalf("peer got %q from %v (%v), want %q from the relay %v", buf[:n], from, err, "ring ring", ra)
			}
			if _, err := peer.WriteTo([]byte("hello?"), from); err != nil {
				t.Fatal(err)
			}
			relay.SetReadDeadline(time.Now().Add(waitLimit))
			n, from, err = relay.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "hello?" || from.String() != peer.LocalAddr().String() {
				t.Fatalf("client got %q from %v (%v), want %q from the peer %v", buf[:n], from, err, "hello?", peer.LocalAddr())
			}
		})
	}
	// Forged credentials are refused by the running box.
	addr := net.JoinHostPort("127.0.0.1", extServices(t, r, "services")[0].Get("port"))
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c, err := pturn.NewClient(&pturn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Conn: pc,
		Username: strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10) + ":alice", Password: "forged", RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	if relay, err := c.Allocate(); err == nil {
		relay.Close()
		t.Fatal("the box relayed with forged credentials")
	}
}

// TestExtDiscoOff: with calls.listen empty, the box neither advertises
// nor answers XEP-0215.
func TestExtDiscoOff(t *testing.T) {
	b := startBox(t, []string{"alice"}, "calls.listen=[]")
	alice := b.login(t, "alice", "")
	info := alice.iq(`<iq type="get" id="{id}" to="box.test"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	if slices.Contains(discoFeatures(t, info), nsExtDisco) {
		t.Errorf("disco#info advertises %s with calls off", nsExtDisco)
	}
	alice.iqErr(`<iq type="get" id="{id}" to="box.test"><services xmlns="urn:xmpp:extdisco:2"/></iq>`, "service-unavailable")
}

type fakeCalls []ExternalService

func (f fakeCalls) ExternalServices(string) []ExternalService { return f }

// TestExtDiscoGuestsGetNoTURN: a guest's list keeps the STUN services
// only; the <service/> element carries XEP-0215's attributes.
func TestExtDiscoGuestsGetNoTURN(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	calls := fakeCalls{
		{Type: "stun", Transport: "udp", Host: "192.0.2.1", Port: 3478},
		{Type: "turn", Transport: "udp", Host: "192.0.2.1", Port: 3478, Username: "1:x", Password: "p", Expires: exp, Restricted: true},
	}
	if got := servicesFor(calls, chat.GuestPrefix+"visitor"); len(got) != 1 || got[0].Type != "stun" {
		t.Errorf("a guest's services %+v, want the STUN one only", got)
	}
	if got := servicesFor(calls, "alice"); len(got) != 2 {
		t.Errorf("an account's services %+v, want both", got)
	}
	want := `<service xmlns="urn:xmpp:extdisco:2" type="turn" host="192.0.2.1" port="3478" transport="udp" username="1:x" password="p" expires="2030-01-02T03:04:05Z" restricted="1"/>`
	if got := extServiceEl(calls[1]).String(); got != want {
		t.Errorf("turn service element\n%s\nwant\n%s", got, want)
	}
}
