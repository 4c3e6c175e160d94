package xmpp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"mellium.im/sasl"
)

// Interoperability with an independent server: Prosody (Debian's
// prosody package; .ci/run installs it), configured by the test in a
// temporary directory, listening only on a loopback address of its own,
// run as nobody when the test runs as root, and stopped by its PID.
// Prosody finds servers in DNS, which tests never use: a small module
// written by the test (mod_testhosts) maps chatbox.test and its
// subdomains to the box's federation address in Prosody's resolver, as
// the box's own host map points at Prosody. The two authenticate with
// dialback (their certificates are self-signed).

const prosodyModule = `-- Test-only: route s2s for mapped domains without DNS.
local basic = require "net.resolvers.basic";
local service = require "net.resolvers.service";
local map = module:get_option("test_s2s_hosts", {});
if not service.test_hosts_patched then
	service.test_hosts_patched = true;
	local orig = service.new;
	service.new = function(hostname, svc, conn_type, extra)
		local target = map[hostname];
		if not target then
			local parent = hostname:match("^[^.]+%.(.+)$");
			target = parent and map[parent];
		end
		if target and svc == "xmpp-server" then
			return basic.new(target[1], target[2], conn_type, extra);
		elseif target then
			return { next = function(_, cb) cb(nil); end };
		end
		return orig(hostname, svc, conn_type, extra);
	end
end
`

type prosodyServer struct {
	cmd     *exec.Cmd
	mu      sync.Mutex
	log     bytes.Buffer
	exited  chan struct{}
	stopped bool
}

func (p *prosodyServer) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.Write(b)
}

func (p *prosodyServer) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// startProsody runs Prosody for domain with the given users (name →
// password) on c2s and s2s (host:port on the same host), mapping peers
// to host, port.
// prosodyBidi, given to startProsody, loads mod_s2s_bidi (XEP-0288).
type prosodyBidi bool

func startProsody(t *testing.T, domain, c2s, s2s string, users map[string]string, peers map[string]string, bidi ...prosodyBidi) *prosodyServer {
	t.Helper()
	bin, err := exec.LookPath("prosody")
	if err != nil {
		t.Skip("prosody is not installed (apt-get install prosody; .ci/run installs it): the interoperability test needs it")
	}
	ip, c2sPort, _ := net.SplitHostPort(c2s)
	_, s2sPort, _ := net.SplitHostPort(s2s)
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		os.Chmod(d, 0o755)
	}
	data := filepath.Join(dir, "data")
	plugins := filepath.Join(dir, "plugins")
	accounts := filepath.Join(data, escapeProsody(domain), "accounts")
	for _, d := range []string{plugins, accounts} {
		if err := os.MkdirAll(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{data, filepath.Join(data, escapeProsody(domain)), accounts} {
		os.Chmod(d, 0o777)
	}
	for name, pw := range users {
		body := fmt.Sprintf("return {\n\t[\"password\"] = %q;\n};\n", pw)
		if err := os.WriteFile(filepath.Join(accounts, name+".dat"), []byte(body), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, domain, certFile, keyFile)
	if err := os.WriteFile(filepath.Join(plugins, "mod_testhosts.lua"), []byte(prosodyModule), 0o644); err != nil {
		t.Fatal(err)
	}
	var hosts bytes.Buffer
	for d, addr := range peers {
		h, port, _ := net.SplitHostPort(addr)
		fmt.Fprintf(&hosts, "\t[%q] = { %q, %s };\n", d, h, port)
	}
	bidiOn, bidiOff := "", `, "s2s_bidi"`
	if len(bidi) > 0 && bidi[0] {
		bidiOn, bidiOff = `, "s2s_bidi"`, ""
	}
	cfg := fmt.Sprintf(`-- written by chatbox's federation interop test
pidfile = %[2]q .. "/prosody.pid"
data_path = %[2]q
plugin_paths = { %[3]q }
log = { { levels = { min = "debug" }, to = "console" } }
interfaces = { %[4]q }
c2s_ports = { %[9]s }
s2s_ports = { %[10]s }
c2s_direct_tls_ports = { }
s2s_direct_tls_ports = { }
http_ports = { }
https_ports = { }
modules_enabled = { "roster", "saslauth", "tls", "dialback", "disco", "ping", "testhosts"%[11]s }
modules_disabled = { "http", "bosh", "websocket", "offline"%[12]s }
authentication = "internal_plain"
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = false
allow_registration = false
test_s2s_hosts = {
%[5]s}
VirtualHost %[6]q
	ssl = { certificate = %[7]q; key = %[8]q; }
`, dir, data, plugins, ip, hosts.String(), domain, certFile, keyFile, c2sPort, s2sPort, bidiOn, bidiOff)
	cfgFile := filepath.Join(dir, "prosody.cfg.lua")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &prosodyServer{exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "--config", cfgFile, "-F")
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.Dir = dir
	if os.Getuid() == 0 {
		// Unprivileged: nobody, which can read the files above.
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start prosody: %v", err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.stop(t) })
	// Ready when its c2s port answers.
	deadline := time.Now().Add(waitLimit)
	for {
		nc, err := net.DialTimeout("tcp", c2s, time.Second)
		if err == nil {
			nc.Close()
			break
		}
		select {
		case <-p.exited:
			t.Fatalf("prosody exited before it listened; its log:\n%s", p.logText())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("prosody did not listen on %s within %s; its log:\n%s", c2s, waitLimit, p.logText())
		}
	}
	return p
}

// stop ends Prosody by its PID (SIGTERM, then SIGKILL after a bound).
func (p *prosodyServer) stop(t *testing.T) {
	if p.stopped {
		return
	}
	p.stopped = true
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(waitLimit):
		p.cmd.Process.Kill()
		<-p.exited
	}
	if t.Failed() {
		t.Logf("prosody log:\n%s", p.logText())
	}
}

// escapeProsody is Prosody's data path encoding of a host name.
func escapeProsody(s string) string {
	var b bytes.Buffer
	for _, c := range []byte(s) {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02x", c)
		}
	}
	return b.String()
}

func writeSelfSigned(t *testing.T, domain, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o644)
}

// boxWithProsody starts a box (chatbox.test, account alice) and Prosody
// (prosody.test, user dave) federated with each other on loopback by host
// maps, and logs dave in with his initial presence sent. Without Prosody
// installed the test is skipped.
func boxWithProsody(t *testing.T, bidi ...prosodyBidi) (*box, *client) {
	t.Helper()
	if _, err := exec.LookPath("prosody"); err != nil {
		t.Skip("prosody is not installed (apt-get install prosody; .ci/run installs it): the interoperability test needs it")
	}
	boxS2S, prosodyS2S := randomListen(), randomListen()
	prosodyHost, _, _ := net.SplitHostPort(prosodyS2S)
	prosodyC2S := net.JoinHostPort(prosodyHost, strconv.Itoa(20000+int(time.Now().UnixNano()%40000)))
	cb := startFedBox(t, filepath.Join(t.TempDir(), "box"), []string{"alice"}, []string{
		"domain=chatbox.test",
		"federation.enabled=true",
		"federation.listen=" + boxS2S,
		"federation.hosts=prosody.test=" + prosodyS2S,
	})
	startProsody(t, "prosody.test", prosodyC2S, prosodyS2S, map[string]string{"dave": "password-dave"},
		map[string]string{"chatbox.test": boxS2S}, bidi...)
	prosodyBox := &box{xmppAddr: prosodyC2S, domain: "prosody.test"}
	dave := prosodyBox.login(t, "dave", "", loginOpts{mechs: []sasl.Mechanism{sasl.Plain},
		tls: &tls.Config{ServerName: "prosody.test", InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}})
	dave.send(`<presence/>`)
	return cb, dave
}

func TestFederationProsodyInterop(t *testing.T) {
	cb, dave := boxWithProsody(t)
	alice := cb.login(t, "alice", "")
	alice.send(`<presence/>`)

	alice.send(`<message to="dave@prosody.test" type="chat" id="pm1"><body>hello prosody</body></message>`)
	m := dave.expect("alice's message through Prosody", isMsg("hello prosody"))
	if m.Get("from") != alice.jid || m.Get("id") != "pm1" {
		t.Fatalf("dave got %s; want it from %s with id pm1", m, alice.jid)
	}
	dave.send(`<message to="alice@chatbox.test" type="chat" id="pm2"><body>hello chatbox</body></message>`)
	m = alice.expect("dave's message from Prosody", isMsg("hello chatbox"))
	if m.Get("from") != dave.jid || m.Get("to") != "alice@chatbox.test" && m.Get("to") != alice.jid {
		t.Fatalf("alice got %s; want it from %s", m, dave.jid)
	}

	// dave joins a room of the box.
	dave.send(`<presence to="general@rooms.chatbox.test/dave"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)
	self := dave.expect("self-presence in general", func(e *Element) bool {
		return e.Local == "presence" && e.Get("from") == "general@rooms.chatbox.test/dave" && e.Child(nsMUCUser, "x") != nil && hasStatus(e, "110")
	})
	if self.Get("type") != "" {
		t.Fatalf("joining got %s; want an available self-presence", self)
	}
	alice.send(`<presence to="general@rooms.chatbox.test/alice"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)
	alice.expect("dave in the room", func(e *Element) bool {
		return e.Local == "presence" && e.Get("from") == "general@rooms.chatbox.test/dave"
	})
	dave.send(`<message to="general@rooms.chatbox.test" type="groupchat" id="g1"><body>hi room</body></message>`)
	alice.expect("dave's groupchat", func(e *Element) bool {
		b, _ := bodyOf(e)
		return e.Local == "message" && e.Get("type") == "groupchat" && e.Get("from") == "general@rooms.chatbox.test/dave" && b == "hi room"
	})
	alice.send(`<message to="general@rooms.chatbox.test" type="groupchat" id="g2"><body>welcome dave</body></message>`)
	dave.expect("alice's groupchat", func(e *Element) bool {
		b, _ := bodyOf(e)
		return e.Local == "message" && e.Get("type") == "groupchat" && e.Get("from") == "general@rooms.chatbox.test/alice" && b == "welcome dave"
	})
}
