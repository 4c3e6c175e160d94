package appliance

import (
	"strings"
	"testing"

	"chatbox/services/mdns"
)

// TestPackagedSettings: the settings file the package and the SD image
// ship loads, puts every listener but plain-text IRC on the network, and
// so every one of them is announced over mDNS.
func TestPackagedSettings(t *testing.T) {
	cfg, err := Load("../packaging/chatbox.toml", nil, "chatbox")
	if err != nil {
		t.Fatal(err)
	}
	on := cfg.OnLAN()
	for key, addrs := range map[string][]string{
		"xmpp.listen": on.XMPP.Listen, "xmpp.tls_listen": on.XMPP.TLSListen, "irc.tls_listen": on.IRC.TLSListen,
		"upload.listen": on.Upload.Listen, "calls.listen": on.Calls.Listen, "web.listen": {on.Web.Listen},
	} {
		for _, a := range addrs {
			if _, ok := mdns.Reachable(a); !ok {
				t.Errorf("%s = %q is not reachable from the network", key, a)
			}
		}
	}
	for _, a := range on.IRC.PlainListen {
		if !strings.HasPrefix(a, "127.0.0.1:") {
			t.Errorf("plain-text IRC listens on %q", a)
		}
	}
	anns := mdns.Build(mdns.Listeners{IRCTLS: on.IRC.TLSListen, IRCPlain: on.IRC.PlainListen,
		XMPP: on.XMPP.Listen, XMPPTLS: on.XMPP.TLSListen, Web: on.Web.Listen, WebHTTPS: on.Web.HTTPS})
	if len(anns) != 4 {
		t.Errorf("announced %v; want IRC over TLS, XMPP, XMPP over TLS and the web admin", anns)
	}
}
