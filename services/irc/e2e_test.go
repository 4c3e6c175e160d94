// End-to-end tests of the IRC door: the real chatbox binary, run on
// loopback, spoken to by raw clients and by irc-go's ircevent. They check
// the door against Modern IRC (https://modern.ircdocs.horse) and the
// IRCv3 specifications it offers: capability negotiation 302, SASL 3.2
// PLAIN, message-tags, server-time, echo-message, labeled-response,
// batch, draft/chathistory, draft/multiline, monitor, away-notify and
// bot mode; plus the door's own rules (nick == account, memos, bounds,
// flood control, sendq).
//
// Left out: the 30-second login countdown for a client squatting an
// account's nick (there is no setting to shorten it; the other path, the
// owner logging in, is tested), XMPP (no XMPP door yet) and STARTTLS
// (not offered).
package irc_test

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
)

// join makes c join channel and waits for the end of its NAMES; it
// returns the lines of the join burst.
func join(c *client, channel string, key ...string) []ircmsg.Message {
	c.t.Helper()
	c.send(strings.TrimSpace("JOIN " + channel + " " + strings.Join(key, ",")))
	got := c.collect("RPL_ENDOFNAMES for "+channel, isLine("366", c.name, channel))
	if !hasLine(got, isFrom(c.name, "JOIN", channel)) {
		c.t.Fatalf("%s: no JOIN %s echoed before the names; lines:\n%s", c.name, channel, lines(got))
	}
	return got
}

// names returns the sorted entries (prefixes included) of the
// RPL_NAMREPLY lines for channel among ms.
func names(ms []ircmsg.Message, channel string) []string {
	var out []string
	for _, m := range ms {
		if m.Command == "353" && len(m.Params) >= 4 && m.Params[2] == channel {
			out = append(out, strings.Fields(m.Params[3])...)
		}
	}
	slices.Sort(out)
	return out
}

func isEndOfMOTD(m ircmsg.Message) bool { return m.Command == "376" || m.Command == "422" }

func noticeContaining(text string) func(ircmsg.Message) bool {
	return func(m ircmsg.Message) bool {
		return m.Command == "NOTICE" && strings.Contains(strings.ToLower(lastParam(m)), strings.ToLower(text))
	}
}

// --- 1. registration ---

func TestRegistration(t *testing.T) {
	t.Parallel()
	b := startBox(t, []string{"alice", "bob", "carol", "dave", "erin"})

	t.Run("SASL PLAIN over TLS trusting the box CA", func(t *testing.T) {
		ev := b.evConfig("alice", "server-time", "message-tags")
		ev.Nick = "AliceOnTLS" // the server gives her the account's nick
		c := b.evConnect(t, "alice", ev)
		burst := c.collect("the end of the MOTD", isEndOfMOTD)
		if w := c.expectIn(burst, "RPL_WELCOME", isLine("001")); w.Params[0] != "alice" {
			t.Errorf("RPL_WELCOME to %q, want the account's nick alice", w.Params[0])
		}
		if l := c.expectIn(burst, "RPL_LOGGEDIN", isLine("900")); len(l.Params) < 3 || l.Params[2] != "alice" {
			t.Errorf("RPL_LOGGEDIN %v does not name account alice", l.Params)
		}
		c.expectIn(burst, "RPL_SASLSUCCESS", isLine("903"))
		if n := c.ev.CurrentNick(); n != "alice" {
			t.Errorf("ircevent's nick is %q, want alice", n)
		}
		is := c.ev.ISupport()
		for k, want := range map[string]string{"CASEMAPPING": "ascii", "CHANTYPES": "#", "UTF8ONLY": "",
			"PREFIX": "(qaov)~&@+", "BOT": "B", "NETWORK": "chatbox"} {
			if v, ok := is[k]; !ok || v != want {
				t.Errorf("ISUPPORT %s=%q (present %v), want %q; all: %v", k, v, ok, want, is)
			}
		}
		for _, k := range []string{"CHANMODES", "NICKLEN", "MONITOR", "CHATHISTORY", "MSGREFTYPES"} {
			if _, ok := is[k]; !ok {
				t.Errorf("ISUPPORT lacks %s; all: %v", k, is)
			}
		}
		// It is the box's CA that makes the certificate trusted.
		if conn, err := tls.Dial("tcp", b.tlsAddr, &tls.Config{ServerName: "localhost"}); err == nil {
			conn.Close()
			t.Errorf("the box's certificate is trusted without its CA")
		}
	})

	t.Run("PASS account:password over plain text", func(t *testing.T) {
		c := b.dial(t, "bob", false)
		c.send("PASS bob:" + password("bob"))
		c.send("NICK bobby") // the account's nick wins
		c.send("USER bob 0 * :Bob")
		got := c.collect("RPL_WELCOME", isLine("001"))
		if w := got[len(got)-1]; w.Params[0] != "bob" {
			t.Errorf("RPL_WELCOME to %q, want bob", w.Params[0])
		}
		got = append(got, c.sync()...)
		if !hasLine(got, isLine("900", "bob")) {
			t.Errorf("no RPL_LOGGEDIN (900) after logging in with PASS (Modern IRC: sent whenever the account is set, by SASL or otherwise); lines:\n%s", lines(got))
		}
		join(c, "#general")
	})

	t.Run("PASS password with the account's nick", func(t *testing.T) {
		c := b.dial(t, "carol", false)
		c.send("PASS " + password("carol"))
		c.send("NICK carol")
		c.send("USER carol 0 * :Carol")
		c.expectLine("001", "carol")
		c.sync()
		join(c, "#general")
	})

	t.Run("PASS password with the nick another connection of the account holds", func(t *testing.T) {
		// carol is connected above; a second PASS login shares her nick.
		c := b.dial(t, "carol", false)
		c.send("PASS " + password("carol"))
		c.send("NICK carol")
		c.send("USER carol 0 * :Carol")
		c.expectLine("001", "carol")
		c.sync()
		// A wrong password for a held nick is refused, not parked.
		d := b.dial(t, "carol", false)
		d.send("PASS wrong-password")
		d.send("NICK carol")
		d.send("USER carol 0 * :Carol")
		d.expectLine("464")
	})

	t.Run("NICK after SASL", func(t *testing.T) {
		// Clients may authenticate before sending NICK and USER.
		c := b.dial(t, "dave", false)
		c.send("CAP LS 302")
		c.collect("the end of CAP LS", isCapLSEnd)
		c.send("CAP REQ :sasl")
		c.expect("CAP ACK", isCap("ACK"))
		c.send("AUTHENTICATE PLAIN")
		c.expectLine("AUTHENTICATE", "+")
		c.send("AUTHENTICATE " + saslPlain("dave", password("dave")))
		c.expectNumeric("903")
		c.send("CAP END")
		c.send("NICK dave")
		c.send("USER dave 0 * :Dave")
		c.expectLine("001", "dave")
	})

	t.Run("labelled SASL", func(t *testing.T) {
		// labeled-response: the last AUTHENTICATE's replies, 900 and 903,
		// come as one labelled batch.
		c := b.dial(t, "erin", false)
		c.send("CAP LS 302")
		c.collect("the end of CAP LS", isCapLSEnd)
		c.send("CAP REQ :sasl labeled-response batch message-tags")
		c.expect("CAP ACK", isCap("ACK"))
		c.send("AUTHENTICATE PLAIN")
		c.expectLine("AUTHENTICATE", "+")
		c.send("@label=sasl1 AUTHENTICATE " + saslPlain("erin", password("erin")))
		start := c.expect("the labelled batch", isLine("BATCH"))
		if _, label := start.GetTag("label"); label != "sasl1" || len(start.Params) < 2 || start.Params[1] != "labeled-response" {
			t.Fatalf("batch start %v %v", start.AllTags(), start.Params)
		}
		ref := strings.TrimPrefix(start.Params[0], "+")
		var in []string
		for _, m := range c.collect("the end of the batch", isLine("BATCH", "-"+ref)) {
			if _, b := m.GetTag("batch"); b == ref {
				in = append(in, m.Command)
			}
		}
		if strings.Join(in, " ") != "900 903" {
			t.Fatalf("labelled SASL reply %v, want 900 903", in)
		}
		c.send("CAP END")
		c.send("NICK erin")
		c.send("USER erin 0 * :Erin")
		c.expectLine("001", "erin")
	})

	t.Run("wrong password", func(t *testing.T) {
		// SASL: 904, and the client may try again.
		c := b.dial(t, "alice", false)
		c.send("CAP LS 302")
		c.send("NICK alice")
		c.send("USER alice 0 * :Alice")
		c.collect("the end of CAP LS", isCapLSEnd)
		c.send("CAP REQ :sasl")
		c.expect("CAP ACK", isCap("ACK"))
		c.send("AUTHENTICATE PLAIN")
		c.expectLine("AUTHENTICATE", "+")
		c.send("AUTHENTICATE " + saslPlain("alice", "not-her-password"))
		c.expectNumeric("904")
		c.send("AUTHENTICATE PLAIN")
		c.expectLine("AUTHENTICATE", "+")
		c.send("AUTHENTICATE " + saslPlain("alice", password("alice")))
		c.expectNumeric("903")
		c.send("CAP END")
		c.expectLine("001", "alice")

		// PASS: ERR_PASSWDMISMATCH, ERROR, and the connection closes.
		p := b.dial(t, "bob", false)
		p.send("PASS bob:not-his-password")
		p.send("NICK bob")
		p.send("USER bob 0 * :Bob")
		p.expectNumeric("464")
		p.expectLine("ERROR")
		if rest := p.expectClosed(); hasLine(rest, isLine("001")) {
			t.Errorf("registered after a wrong password:\n%s", lines(rest))
		}
	})

	t.Run("CAP LS 302", func(t *testing.T) {
		c := b.dial(t, "caps", false)
		c.send("CAP LS 302")
		caps := map[string]string{}
		for _, m := range c.collect("the end of CAP LS", isCapLSEnd) {
			if m.Command != "CAP" || len(m.Params) < 3 || m.Params[1] != "LS" {
				continue
			}
			for _, tok := range strings.Fields(lastParam(m)) {
				k, v, _ := strings.Cut(tok, "=")
				caps[k] = v
			}
		}
		for _, want := range []string{"sasl", "server-time", "message-tags", "echo-message", "labeled-response",
			"batch", "away-notify", "account-tag", "account-notify", "extended-join", "multi-prefix", "cap-notify",
			"userhost-in-names", "invite-notify", "setname", "chghost", "draft/chathistory", "draft/multiline"} {
			if _, ok := caps[want]; !ok {
				t.Errorf("CAP LS 302 does not offer %s; offers %v", want, caps)
			}
		}
		if !strings.Contains(caps["sasl"], "PLAIN") {
			t.Errorf("sasl=%q: PLAIN not listed", caps["sasl"])
		}
		if v, ok := caps["draft/multiline"]; ok && !strings.Contains(v, "max-bytes=") {
			t.Errorf("draft/multiline=%q: the spec requires max-bytes", v)
		}
		// Before version 302, capabilities carry no values.
		c.send("CAP LS")
		for _, m := range c.collect("the end of CAP LS", isCapLSEnd) {
			if m.Command == "CAP" && strings.Contains(lastParam(m), "=") {
				t.Errorf("CAP LS (301) with values: %v", m.Params)
			}
		}
	})
}

// expectIn finds the line match accepts among ms, failing the test if
// none does.
func (c *client) expectIn(ms []ircmsg.Message, what string, match func(ircmsg.Message) bool) ircmsg.Message {
	c.t.Helper()
	for _, m := range ms {
		if match(m) {
			return m
		}
	}
	c.t.Fatalf("%s: no %s among:\n%s", c.name, what, lines(ms))
	return ircmsg.Message{}
}

// --- 2. nick protection ---

func TestNickProtection(t *testing.T) {
	t.Parallel()
	b := startBox(t, []string{"alice", "bob", "carol"})

	// An unidentified client takes alice's nick: it is told to log in.
	squatter := b.dial(t, "squatter", false)
	squatter.register("alice", "")
	squatter.expectIn(squatter.welcome, "RPL_WELCOME as alice", isLine("001", "alice"))
	squatter.expectIn(squatter.welcome, "the notice that alice is a registered account", noticeContaining("registered account"))
	// Until it logs in, it may not use the chat.
	squatter.send("JOIN #general")
	squatter.expect("the notice to log in first", noticeContaining("log in"))

	// The real alice logs in with SASL: the squatter becomes a guest.
	alice := b.evLogin(t, "alice")
	alice.expect("RPL_WELCOME as alice", isLine("001", "alice"))
	ren := squatter.expect("NICK to a guest nick", isFrom("alice", "NICK"))
	guest := ren.Params[0]
	if !strings.HasPrefix(guest, "Guest") {
		t.Fatalf("the squatter was renamed to %q, want Guest…", guest)
	}
	join(alice, "#general")

	// NickServ IDENTIFY logs the guest in to bob: NICK, 900, a notice.
	squatter.name = "bob"
	squatter.send("PRIVMSG NickServ :IDENTIFY bob " + password("bob"))
	got := squatter.collect("RPL_LOGGEDIN", isLine("900"))
	if l := got[len(got)-1]; len(l.Params) < 3 || l.Params[0] != "bob" || l.Params[2] != "bob" {
		t.Errorf("RPL_LOGGEDIN %v, want it to bob for account bob", l.Params)
	}
	squatter.expectIn(got, "NICK "+guest+" -> bob", isFrom(guest, "NICK", "bob"))
	squatter.expect("NickServ's notice", func(m ircmsg.Message) bool {
		return m.Command == "NOTICE" && m.Nick() == "NickServ" && strings.Contains(lastParam(m), "logged in as bob")
	})
	join(squatter, "#general")
	alice.expect("bob's JOIN", isFrom("bob", "JOIN", "#general"))

	// IDENTIFY with the nick as the account: a wrong password first.
	carol := b.dial(t, "carol", false)
	carol.register("carol", "")
	carol.send("PRIVMSG NickServ :IDENTIFY wrong-password")
	carol.expect("NickServ's refusal", func(m ircmsg.Message) bool {
		return m.Command == "NOTICE" && m.Nick() == "NickServ" && strings.Contains(strings.ToLower(lastParam(m)), "invalid")
	})
	carol.send("PRIVMSG NickServ :IDENTIFY " + password("carol"))
	carol.expectLine("900", "carol", carol.welcomePrefix(), "carol")
	join(carol, "#general")

	// A nick that is no account's gets no countdown.
	zed := b.dial(t, "zed", false)
	zed.register("zed", "")
	if hasLine(zed.welcome, noticeContaining("registered account")) {
		t.Errorf("zed is no account, yet was told to log in within a delay:\n%s", lines(zed.welcome))
	}
}

// welcomePrefix is nick!user@host as RPL_WELCOME's text gives it, after
// logging in: the client's account is its user.
func (c *client) welcomePrefix() string {
	return c.name + "!" + c.name + "@" + ircHost
}

// --- 3. channels ---

func TestChannelMessages(t *testing.T) {
	t.Parallel()
	b := startBox(t, []string{"alice", "bob", "carol"})
	alice := b.evLogin(t, "alice", "message-tags", "server-time", "echo-message", "labeled-response", "batch", "multi-prefix")
	bob := b.login(t, "bob", "message-tags", "server-time")
	carol := b.login(t, "carol")

	join(alice, "#general")
	join(bob, "#general")
	alice.expect("bob's JOIN", isFrom("bob", "JOIN", "#general"))
	join(carol, "#general")
	alice.expect("carol's JOIN", isFrom("carol", "JOIN", "#general"))
	bob.expect("carol's JOIN", isFrom("carol", "JOIN", "#general"))

	// A message reaches the others with msgid and time; alice gets the
	// echo with the same msgid.
	before := time.Now().Add(-time.Second)
	alice.send("PRIVMSG #general :hello, world")
	echo := alice.expect("the echo", isFrom("alice", "PRIVMSG", "#general", "hello, world"))
	got := bob.expect("alice's message", isFrom("alice", "PRIVMSG", "#general", "hello, world"))
	if got.Source != "alice!alice@"+ircHost {
		t.Errorf("source %q, want alice!alice@%s", got.Source, ircHost)
	}
	if id := tag(t, got, "msgid"); id == "" || tag(t, echo, "msgid") != id {
		t.Errorf("msgid %q, echo's %q: want the same, not empty", id, tag(t, echo, "msgid"))
	}
	if at := serverTime(t, got); at.Before(before) || at.After(time.Now().Add(time.Second)) {
		t.Errorf("server-time %s is not now", at)
	}
	plain := carol.expect("alice's message", isFrom("alice", "PRIVMSG", "#general", "hello, world"))
	if len(plain.AllTags()) != 0 {
		t.Errorf("carol asked for no tags, got %v", plain.AllTags())
	}
	// CTCP ACTION passes as such.
	alice.send("PRIVMSG #general :\x01ACTION waves\x01")
	bob.expect("alice's ACTION", isFrom("alice", "PRIVMSG", "#general", "\x01ACTION waves\x01"))

	// labeled-response: the echo carries the label; a command without
	// a reply gets ACK.
	lr := alice.labeled("PRIVMSG", "#general", "labeled hello")
	if lr.Command != "PRIVMSG" || lastParam(lr.Message) != "labeled hello" {
		t.Errorf("labeled PRIVMSG answered %s %v, want its echo", lr.Command, lr.Params)
	}
	bob.expect("the labeled message", isFrom("alice", "PRIVMSG", "#general", "labeled hello"))
	if ack := alice.labeled("PONG", "nothing"); ack.Command != "ACK" {
		t.Errorf("labeled PONG answered %s %v, want ACK", ack.Command, ack.Params)
	}

	// A new room's creator owns it: she sets its topic, others may not.
	burst := join(alice, "#newroom")
	if n := names(burst, "#newroom"); !slices.Equal(n, []string{"~@alice"}) {
		t.Errorf("NAMES of alice's new room (multi-prefix) %v, want [~@alice]", n)
	}
	join(bob, "#newroom")
	alice.expect("bob's JOIN", isFrom("bob", "JOIN", "#newroom"))
	alice.send("TOPIC #newroom :Fresh paint")
	alice.expect("the TOPIC", isFrom("alice", "TOPIC", "#newroom", "Fresh paint"))
	bob.expect("the TOPIC", isFrom("alice", "TOPIC", "#newroom", "Fresh paint"))
	bob.send("TOPIC #newroom :Mine now")
	bob.expectLine("482", "bob", "#newroom")
	bob.send("TOPIC #newroom")
	bob.expectLine("332", "bob", "#newroom", "Fresh paint")
	bob.expectLine("333", "bob", "#newroom")
	bob.send("NAMES #newroom")
	if n := names(bob.collect("RPL_ENDOFNAMES", isLine("366", "bob", "#newroom")), "#newroom"); !slices.Equal(n, []string{"bob", "~alice"}) {
		t.Errorf("NAMES #newroom for bob (no multi-prefix) %v, want [bob ~alice]", n)
	}

	// PART and QUIT are seen by the others.
	join(carol, "#newroom")
	bob.expect("carol's JOIN", isFrom("carol", "JOIN", "#newroom"))
	carol.send("PART #newroom :see you")
	carol.expect("her own PART", isFrom("carol", "PART", "#newroom"))
	bob.expect("carol's PART", isFrom("carol", "PART", "#newroom", "see you"))
	alice.expect("carol's PART", isFrom("carol", "PART", "#newroom", "see you"))
	bob.quit("gone fishing")
	q := alice.expect("bob's QUIT", isFrom("bob", "QUIT"))
	if !strings.Contains(lastParam(q), "gone fishing") {
		t.Errorf("bob's QUIT reason %q lacks his message", lastParam(q))
	}
	carol.expect("bob's QUIT", isFrom("bob", "QUIT"))
}

func TestChannelOperators(t *testing.T) {
	t.Parallel()
	b := startBox(t, []string{"alice", "bob", "carol", "root"})
	b.cli(t, "", "user", "admin", "root", "yes")
	alice := b.login(t, "alice", "multi-prefix")
	bob := b.login(t, "bob")
	carol := b.login(t, "carol")
	join(alice, "#ops") // alice creates #ops: she owns it
	join(bob, "#ops")
	alice.expect("bob's JOIN", isFrom("bob", "JOIN", "#ops"))
	both := []*client{alice, bob}
	// Each subtest drives the clients with its own t.
	use := func(t *testing.T) {
		for _, c := range []*client{alice, bob, carol} {
			c.t = t
		}
	}
	seen := func(cs []*client, what string, match func(ircmsg.Message) bool) {
		t.Helper()
		for _, c := range cs {
			c.expect(what, match)
		}
	}

	t.Run("moderated", func(t *testing.T) {
		use(t)
		alice.send("MODE #ops +m")
		seen(both, "MODE +m", isFrom("alice", "MODE", "#ops", "+m"))
		bob.send("PRIVMSG #ops :may I speak?")
		bob.expectLine("404", "bob", "#ops")
		alice.send("MODE #ops +v bob")
		seen(both, "MODE +v bob", isFrom("alice", "MODE", "#ops", "+v", "bob"))
		bob.send("PRIVMSG #ops :thank you")
		alice.expect("bob's message", isFrom("bob", "PRIVMSG", "#ops", "thank you"))
		alice.send("MODE #ops -m")
		seen(both, "MODE -m", isFrom("alice", "MODE", "#ops", "-m"))
		// A non-operator cannot change modes.
		bob.send("MODE #ops +i")
		bob.expectLine("482", "bob", "#ops")
		alice.send("NAMES #ops")
		if n := names(alice.collect("RPL_ENDOFNAMES", isLine("366", "alice", "#ops")), "#ops"); !slices.Equal(n, []string{"+bob", "~@alice"}) {
			t.Errorf("NAMES #ops %v, want [+bob ~@alice]", n)
		}
		alice.send("MODE #ops")
		if m := alice.expectNumeric("324"); m.Params[1] != "#ops" || !strings.Contains(m.Params[2], "n") || !strings.Contains(m.Params[2], "t") {
			t.Errorf("RPL_CHANNELMODEIS %v, want #ops +nt (the defaults)", m.Params)
		}
	})

	t.Run("key", func(t *testing.T) {
		use(t)
		alice.send("MODE #ops +k sesame")
		seen(both, "MODE +k", isFrom("alice", "MODE", "#ops", "+k", "sesame"))
		carol.send("JOIN #ops")
		carol.expectLine("475", "carol", "#ops")
		join(carol, "#ops", "sesame")
		alice.expect("carol's JOIN", isFrom("carol", "JOIN", "#ops"))
		alice.send("MODE #ops -k sesame")
		seen(both, "MODE -k", isFrom("alice", "MODE", "#ops", "-k"))
		carol.send("PART #ops")
		alice.expect("carol's PART", isFrom("carol", "PART", "#ops"))
	})

	t.Run("invite only", func(t *testing.T) {
		use(t)
		alice.send("MODE #ops +i")
		seen(both, "MODE +i", isFrom("alice", "MODE", "#ops", "+i"))
		carol.send("JOIN #ops")
		carol.expectLine("473", "carol", "#ops")
		alice.send("INVITE carol #ops")
		alice.expectLine("341", "alice", "carol", "#ops")
		carol.expect("the INVITE", isFrom("alice", "INVITE", "carol", "#ops"))
		join(carol, "#ops")
		alice.expect("carol's JOIN", isFrom("carol", "JOIN", "#ops"))
		alice.send("MODE #ops -i")
		seen(both, "MODE -i", isFrom("alice", "MODE", "#ops", "-i"))
	})

	t.Run("kick and ban", func(t *testing.T) {
		use(t)
		alice.send("MODE #ops +b carol!*@*")
		seen(both, "MODE +b", isFrom("alice", "MODE", "#ops", "+b", "carol!*@*"))
		alice.send("KICK #ops carol :behave")
		for _, c := range []*client{alice, bob, carol} {
			c.expect("the KICK", isFrom("alice", "KICK", "#ops", "carol", "behave"))
		}
		carol.send("JOIN #ops")
		carol.expectLine("474", "carol", "#ops")
		alice.send("MODE #ops +b")
		list := alice.collect("RPL_ENDOFBANLIST", isLine("368", "alice", "#ops"))
		alice.expectIn(list, "carol!*@* in the ban list", isLine("367", "alice", "#ops", "carol!*@*"))
		alice.send("MODE #ops -b carol!*@*")
		seen(both, "MODE -b", isFrom("alice", "MODE", "#ops", "-b", "carol!*@*"))
		join(carol, "#ops")
		// Only operators kick.
		bob.send("KICK #ops carol")
		bob.expectLine("482", "bob", "#ops")
	})

	t.Run("KILL", func(t *testing.T) {
		use(t)
		alice.send("KILL carol :not an operator")
		alice.expectNumeric("481")
		root := b.login(t, "root")
		root.expectIn(root.welcome, "RPL_YOUREOPER", isLine("381", "root"))
		root.send("KILL bob :spamming")
		errLine := bob.expect("ERROR", isLine("ERROR"))
		if !strings.Contains(lastParam(errLine), "spamming") {
			t.Errorf("bob's ERROR %q does not give the kill reason", lastParam(errLine))
		}
		bob.expectClosed()
		q := alice.expect("bob's QUIT", isFrom("bob", "QUIT"))
		if !strings.Contains(lastParam(q), "spamming") {
			t.Errorf("bob's QUIT %q does not give the kill reason", lastParam(q))
		}
	})
}

// --- 4. memos ---

func TestMemos(t *testing.T) {
	t.Parallel()
	b := startBox(t, []string{"alice", "bob"})
	alice := b.login(t, "alice", "echo-message")
	alice.send("PRIVMSG bob :first memo")
	alice.send("PRIVMSG bob :second memo")
	// The echoes say the memos are stored.
	alice.expect("the echo", isFrom("alice", "PRIVMSG", "bob", "first memo"))
	alice.expect("the echo", isFrom("alice", "PRIVMSG", "bob", "second memo"))
	sent := time.Now()

	bob := b.login(t, "bob", "server-time", "message-tags")
	memos := privmsgs(bob.welcome)
	if len(memos) != 2 || lastParam(memos[0]) != "first memo" || lastParam(memos[1]) != "second memo" {
		t.Fatalf("bob got %d memos, want first memo, second memo in order; lines:\n%s", len(memos), lines(bob.welcome))
	}
	for _, m := range memos {
		if !strings.HasPrefix(m.Source, "alice!alice@") || m.Params[0] != "bob" {
			t.Errorf("memo %s PRIVMSG %v, want from alice to bob", m.Source, m.Params)
		}
		if at := serverTime(t, m); at.After(sent) {
			t.Errorf("memo time %s is after it was sent (%s): want the time it was written", at, sent)
		}
		tag(t, m, "msgid")
	}
	bob.quit("bye")

	// Delivered once: the next connection gets nothing.
	again := b.login(t, "bob", "server-time")
	if ms := privmsgs(again.welcome); len(ms) != 0 {
		t.Errorf("memos delivered again on reconnecting:\n%s", lines(ms))
	}
	// Now bob is online: a message is delivered at once.
	alice.send("PRIVMSG bob :live")
	again.expect("the live message", isFrom("alice", "PRIVMSG", "bob", "live"))
}

// --- 5. chathistory ---

// historyBatch sends a CHATHISTORY command and returns the PRIVMSGs of
// the chathistory batch that answers it.
func historyBatch(c *client, command string) []ircmsg.Message {
	c.t.Helper()
	c.send(command)
	start := c.expect("BATCH +… chathistory", func(m ircmsg.Message) bool {
		return m.Command == "BATCH" && len(m.Params) >= 2 && strings.HasPrefix(m.Params[0], "+") && m.Params[1] == "chathistory"
	})
	ref := start.Params[0][1:]
	body := c.collect("BATCH -"+ref, isLine("BATCH", "-"+ref))
	var out []ircmsg.Message
	for _, m := range body[:len(body)-1] {
		if _, id := m.GetTag("batch"); id != ref {
			c.t.Fatalf("%s: line inside batch %s without its batch tag: %s %v", c.name, ref, m.Command, m.Params)
		}
		if m.Command == "PRIVMSG" {
			out = append(out, m)
		}
	}
	return out
}

func TestChatHistory(t *testing.T) {
	t.Parallel()
	b := startBox(t, []string{"alice", "bob", "carol"},
		"rooms.default_history=5", "limits.messages_per_second=1000", "limits.message_burst=1000")
	alice := b.login(t, "alice")
	join(alice, "#general")
	var want []string
	for i := 1; i <= 30; i++ {
		want = append(want, fmt.Sprintf("history line %02d", i))
		alice.send("PRIVMSG #general :" + want[i-1])
	}
	if got := alice.sync(); hasLine(got, func(m ircmsg.Message) bool { return m.Command >= "400" && m.Command < "600" || m.Command == "FAIL" }) {
		t.Fatalf("sending failed:\n%s", lines(got))
	}

	// Paging back from the latest with draft/chathistory.
	bob := b.login(t, "bob", "batch", "server-time", "message-tags", "draft/chathistory")
	if ms := privmsgs(join(bob, "#general")); len(ms) != 0 {
		t.Errorf("a draft/chathistory client got %d lines replayed on join", len(ms))
	}
	if ms := privmsgs(bob.sync()); len(ms) != 0 {
		t.Errorf("a draft/chathistory client got %d lines replayed on join:\n%s", len(ms), lines(ms))
	}
	var got []string
	seen := map[string]bool{}
	page := historyBatch(bob, "CHATHISTORY LATEST #general * 10")
	for i := 0; len(page) > 0; i++ {
		if i > 10 {
			t.Fatalf("more than 10 pages of 10 for 30 lines")
		}
		var texts []string
		for _, m := range page {
			id := tag(t, m, "msgid")
			if seen[id] {
				t.Errorf("msgid %s (%q) came twice", id, lastParam(m))
			}
			seen[id] = true
			serverTime(t, m)
			if !strings.HasPrefix(m.Source, "alice!alice@") || m.Params[0] != "#general" {
				t.Errorf("history line %s PRIVMSG %v, want from alice to #general", m.Source, m.Params)
			}
			texts = append(texts, lastParam(m))
		}
		got = append(texts, got...)
		page = historyBatch(bob, "CHATHISTORY BEFORE #general msgid="+tag(t, page[0], "msgid")+" 10")
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged history:\n%q\nwant:\n%q", got, want)
	}

	// Without chathistory: the last rooms.default_history lines on join.
	carol := b.login(t, "carol")
	replay := privmsgs(append(join(carol, "#general"), carol.sync()...))
	var texts []string
	for _, m := range replay {
		texts = append(texts, lastParam(m))
	}
	if !slices.Equal(texts, want[25:]) {
		t.Errorf("history on join %q, want the last 5: %q", texts, want[25:])
	}
}

func TestMultiline(t *testing.T) {
	t.Parallel()
	b := startBox(t, []string{"alice", "bob", "carol"})
	alice := b.login(t, "alice", "batch", "draft/multiline", "message-tags", "echo-message")
	bob := b.login(t, "bob", "batch", "draft/multiline", "message-tags")
	carol := b.login(t, "carol")
	for _, c := range []*client{alice, bob, carol} {
		join(c, "#general")
	}
	alice.send("BATCH +ml1 draft/multiline #general")
	alice.send("@batch=ml1 PRIVMSG #general :first line")
	alice.send("@batch=ml1 PRIVMSG #general :second line,")
	alice.send("@batch=ml1;draft/multiline-concat PRIVMSG #general : continued")
	alice.send("BATCH -ml1")
	want := "first line\nsecond line, continued"

	// A draft/multiline client gets the batch whole.
	start := bob.expect("BATCH +… draft/multiline", func(m ircmsg.Message) bool {
		return m.Command == "BATCH" && len(m.Params) >= 3 && strings.HasPrefix(m.Params[0], "+") && m.Params[1] == "draft/multiline" && m.Params[2] == "#general"
	})
	if start.Nick() != "alice" {
		t.Errorf("multiline batch from %q, want alice", start.Source)
	}
	tag(t, start, "msgid")
	ref := start.Params[0][1:]
	body := bob.collect("BATCH -"+ref, isLine("BATCH", "-"+ref))
	text := ""
	for i, m := range body[:len(body)-1] {
		if m.Command != "PRIVMSG" || m.Params[0] != "#general" {
			t.Fatalf("in the multiline batch: %s %v", m.Command, m.Params)
		}
		if i > 0 && !m.HasTag("draft/multiline-concat") {
			text += "\n"
		}
		text += lastParam(m)
	}
	if text != want {
		t.Errorf("multiline message %q, want %q", text, want)
	}
	// The sender's echo is a batch too.
	alice.expect("the echoed batch", func(m ircmsg.Message) bool {
		return m.Command == "BATCH" && len(m.Params) >= 2 && m.Params[1] == "draft/multiline"
	})
	// A client without it gets plain lines with the same text.
	text = ""
	for len(text) < len(strings.ReplaceAll(want, "\n", "")) {
		text += lastParam(carol.expect("a line of the multiline message", isFrom("alice", "PRIVMSG", "#general")))
	}
	if text != strings.ReplaceAll(want, "\n", "") {
		t.Errorf("carol got %q, want the lines of %q", text, want)
	}
}

// --- 6. bounds and flood control ---

func TestInputBounds(t *testing.T) {
	t.Parallel()
	b := startBox(t, []string{"alice", "bob"})
	alice := b.login(t, "alice")
	bob := b.login(t, "bob")
	join(alice, "#general")
	join(bob, "#general")

	// A line over 512 bytes: 417, and the connection stays usable.
	alice.send("PRIVMSG #general :" + strings.Repeat("x", 600))
	alice.expectLine("417", "alice")
	// Not UTF-8: FAIL INVALID_UTF8, the connection stays usable.
	alice.send("PRIVMSG #general :caf\xe9 au lait")
	alice.expect("FAIL INVALID_UTF8", func(m ircmsg.Message) bool {
		return m.Command == "FAIL" && len(m.Params) >= 2 && m.Params[1] == "INVALID_UTF8"
	})
	alice.send("PRIVMSG #general :still here")
	got := bob.expect("alice's next message", isFrom("alice", "PRIVMSG", "#general"))
	if lastParam(got) != "still here" {
		t.Errorf("bob got %q first: the long or invalid line was delivered", lastParam(got))
	}

	// A line that never ends: ERROR and the connection closes.
	big := b.dial(t, "big", false)
	if _, err := big.nc.Write([]byte(strings.Repeat("y", 9000))); err != nil {
		t.Fatalf("write 9000 bytes: %v", err)
	}
	big.expectLine("ERROR")
	big.expectClosed()
}

// flood sends n numbered PRIVMSGs back to back from one client and
// checks the other receives all of them, in order.
func flood(t *testing.T, from, to *client, n int) {
	t.Helper()
	var sb strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&sb, "PRIVMSG #general :flood %03d\r\n", i)
	}
	from.send(strings.TrimSuffix(sb.String(), "\r\n")) // one write
	for i := 1; i <= n; i++ {
		m := to.expect(fmt.Sprintf("flood line %d of %d", i, n), isFrom(from.name, "PRIVMSG", "#general"))
		if want := fmt.Sprintf("flood %03d", i); lastParam(m) != want {
			t.Fatalf("got %q, want %q: lost or out of order", lastParam(m), want)
		}
	}
	if got := from.sync(); hasLine(got, func(m ircmsg.Message) bool { return m.Command == "FAIL" || m.Command >= "400" && m.Command < "600" }) {
		t.Errorf("the flooding client got errors:\n%s", lines(got))
	}
}

func TestFlood(t *testing.T) {
	t.Parallel()
	t.Run("200 lines, high limits", func(t *testing.T) {
		t.Parallel()
		b := startBox(t, []string{"alice", "bob"}, "limits.messages_per_second=1000", "limits.message_burst=1000")
		alice, bob := b.login(t, "alice"), b.login(t, "bob")
		join(alice, "#general")
		join(bob, "#general")
		flood(t, alice, bob, 200)
	})
	t.Run("40 lines, default limits", func(t *testing.T) {
		t.Parallel()
		b := startBox(t, []string{"alice", "bob"})
		alice, bob := b.login(t, "alice"), b.login(t, "bob")
		join(alice, "#general")
		join(bob, "#general")
		flood(t, alice, bob, 40) // twice the burst: slowed down, none lost
	})
}

func TestConnectionsPerAddress(t *testing.T) {
	t.Parallel()
	b := startBox(t, nil, "limits.connections_per_address=3")
	for i := 1; i <= 3; i++ {
		c := b.dial(t, fmt.Sprintf("conn%d", i), false)
		c.send("PING :here")
		c.expectLine("PONG")
	}
	fourth := b.dial(t, "conn4", false)
	if e := fourth.expectLine("ERROR"); !strings.Contains(strings.ToLower(lastParam(e)), "too many connections") {
		t.Errorf("ERROR %q does not say why", lastParam(e))
	}
	fourth.expectClosed()
}

// --- 7. a client that does not read ---

func TestSlowReader(t *testing.T) {
	t.Parallel()
	flooders := []string{"fa", "fb", "fc", "fd"}
	b := startBox(t, append([]string{"observer", "slow"}, flooders...),
		"limits.messages_per_second=100000", "limits.message_burst=100000")
	observer := b.login(t, "observer")
	join(observer, "#general")
	slow := b.login(t, "slow")
	join(slow, "#general")
	observer.expect("slow's JOIN", isFrom("slow", "JOIN", "#general"))
	var fs []*client
	for _, name := range flooders {
		f := b.login(t, name)
		join(f, "#general")
		f.in.setDiscard(true) // it only sends
		fs = append(fs, f)
	}
	slow.stopReading()

	// Four clients send 400-byte lines until the slow one is dropped.
	// Its sendq is 1 MiB, but the kernels hold more on loopback (64 KiB
	// segments make the server's socket buffer grow to megabytes): it
	// goes after about 10000 lines (4 MB). At most 24000 lines, 9.6 MB.
	// The senders keep at most `window` lines ahead of what the observer
	// received, so that they stop soon after the slow one is gone.
	const perFlooder, window = 6000, 1000
	pad := strings.Repeat("z", 380)
	var (
		mu       sync.Mutex
		progress = sync.NewCond(&mu)
		observed int  // lines the observer received (mu)
		written  int  // lines the senders wrote (mu)
		stopped  bool // (mu)
	)
	stop := func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		progress.Broadcast()
	}
	t.Cleanup(stop)
	sent := make([]int, len(fs))
	errs := make([]error, len(fs))
	var wg sync.WaitGroup
	for i, f := range fs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 1; n <= perFlooder; n++ {
				mu.Lock()
				for written-observed >= window && !stopped {
					progress.Wait()
				}
				if stopped {
					mu.Unlock()
					return
				}
				written++
				mu.Unlock()
				if err := f.write(fmt.Sprintf("PRIVMSG #general :%s %05d %s", f.name, n, pad)); err != nil {
					errs[i] = err
					return
				}
				sent[i] = n
			}
		}()
	}
	next := map[string]int{}
	check := func(m ircmsg.Message) {
		t.Helper()
		var who string
		var n int
		if _, err := fmt.Sscanf(lastParam(m), "%s %d", &who, &n); err != nil {
			t.Fatalf("unexpected message %q", abbrev(lastParam(m)))
		}
		if next[who]+1 != n {
			t.Fatalf("observer got %s's line %d after %d: lost or out of order", who, n, next[who])
		}
		next[who] = n
		mu.Lock()
		observed++
		mu.Unlock()
		progress.Broadcast()
	}
	for {
		m, err := observer.await("flood lines and slow's QUIT", func(m ircmsg.Message) bool {
			return m.Command == "PRIVMSG" || m.Command == "QUIT"
		})
		if err != nil {
			stop()
			wg.Wait()
			t.Fatalf("the client that does not read was not dropped after %v lines: %v", sent, err)
		}
		if m.Command == "QUIT" {
			if m.Nick() != "slow" {
				t.Fatalf("%s quit: %v", m.Nick(), m.Params)
			}
			break
		}
		check(m)
	}
	mu.Lock()
	droppedAfter := observed
	mu.Unlock()
	stop()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s could not send: %v", flooders[i], err)
		}
	}
	// The observer gets every line that was sent.
	for i, name := range flooders {
		for next[name] < sent[i] {
			check(observer.expect(fmt.Sprintf("%s's line %d", name, next[name]+1), isLine("PRIVMSG", "#general")))
		}
	}
	// The slow client's connection was closed: it reads what the
	// kernels still hold for it, then the end.
	slow.readAgain()
	slow.expectClosed()
	// The senders are still connected.
	for _, f := range fs {
		f.in.setDiscard(false)
		f.sync()
	}
	t.Logf("the slow reader was dropped after %d lines of 400 bytes; %d lines sent in all", droppedAfter, observed)
}

// --- 8. queries ---

func TestQueries(t *testing.T) {
	t.Parallel()
	b := startBox(t, []string{"alice", "bob", "carol", "helperbot"})

	t.Run("WHO WHOIS LIST", func(t *testing.T) {
		alice := b.login(t, "alice")
		bob := b.login(t, "bob")
		join(alice, "#general")
		join(bob, "#general")
		alice.send("TOPIC #general")
		alice.sync()

		alice.send("WHO #general")
		who := alice.collect("RPL_ENDOFWHO", isLine("315", "alice", "#general"))
		for _, nick := range []string{"alice", "bob"} {
			m := alice.expectIn(who, "RPL_WHOREPLY for "+nick, func(m ircmsg.Message) bool {
				return m.Command == "352" && len(m.Params) >= 8 && m.Params[5] == nick
			})
			if m.Params[1] != "#general" || m.Params[2] != nick || m.Params[3] != ircHost || !strings.HasPrefix(m.Params[6], "H") {
				t.Errorf("RPL_WHOREPLY %v, want #general %s %s … %s H…", m.Params, nick, ircHost, nick)
			}
		}

		alice.send("WHOIS bob")
		whois := alice.collect("RPL_ENDOFWHOIS", isLine("318", "alice", "bob"))
		if m := alice.expectIn(whois, "RPL_WHOISUSER", isLine("311", "alice", "bob")); m.Params[2] != "bob" || m.Params[3] != ircHost {
			t.Errorf("RPL_WHOISUSER %v, want bob bob %s", m.Params, ircHost)
		}
		alice.expectIn(whois, "RPL_WHOISACCOUNT", isLine("330", "alice", "bob", "bob"))
		if m := alice.expectIn(whois, "RPL_WHOISCHANNELS", isLine("319", "alice", "bob")); !strings.Contains(lastParam(m), "#general") {
			t.Errorf("RPL_WHOISCHANNELS %v lacks #general", m.Params)
		}
		alice.send("WHOIS nobody")
		alice.expectLine("401", "alice", "nobody")

		alice.send("LIST")
		list := alice.collect("RPL_LISTEND", isLine("323", "alice"))
		if m := alice.expectIn(list, "RPL_LIST #general", isLine("322", "alice", "#general")); m.Params[2] != "2" {
			t.Errorf("RPL_LIST %v: want 2 users in #general", m.Params)
		}
	})

	t.Run("MONITOR", func(t *testing.T) {
		alice := b.login(t, "alice")
		alice.send("MONITOR + carol")
		if m := alice.expectNumeric("731"); !strings.EqualFold(lastParam(m), "carol") {
			t.Errorf("RPL_MONOFFLINE %v, want carol", m.Params)
		}
		carol := b.login(t, "carol")
		if m := alice.expectNumeric("730"); lastParam(m) != "carol!carol@"+ircHost {
			t.Errorf("RPL_MONONLINE %v, want carol!carol@%s", m.Params, ircHost)
		}
		alice.send("MONITOR L")
		alice.expectLine("732", "alice", "carol")
		alice.expectNumeric("733")
		carol.quit("bye")
		alice.expectLine("731", "alice", "carol")
	})

	t.Run("AWAY with away-notify", func(t *testing.T) {
		alice := b.login(t, "alice")
		bob := b.login(t, "bob")
		carol := b.login(t, "carol", "away-notify")
		for _, c := range []*client{alice, bob, carol} {
			join(c, "#general")
		}
		bob.send("AWAY :out for lunch")
		bob.expectNumeric("306")
		carol.expect("bob's AWAY", isFrom("bob", "AWAY", "out for lunch"))
		alice.send("PRIVMSG bob :are you there?")
		alice.expectLine("301", "alice", "bob", "out for lunch")
		alice.send("WHOIS bob")
		whois := alice.collect("RPL_ENDOFWHOIS", isLine("318", "alice", "bob"))
		alice.expectIn(whois, "RPL_AWAY in WHOIS", isLine("301", "alice", "bob", "out for lunch"))
		bob.send("AWAY")
		bob.expectNumeric("305")
		back := carol.expect("bob's AWAY (back)", isFrom("bob", "AWAY"))
		if len(back.Params) != 0 {
			t.Errorf("AWAY on return with parameters %v", back.Params)
		}
		if got := alice.sync(); hasLine(got, isFrom("bob", "AWAY")) {
			t.Errorf("alice did not ask for away-notify but got AWAY lines")
		}
	})

	t.Run("bot mode", func(t *testing.T) {
		alice := b.login(t, "alice")
		bot := b.login(t, "helperbot")
		bot.send("MODE helperbot +B")
		if m := bot.expect("MODE helperbot +B", isLine("MODE", "helperbot")); !strings.Contains(m.Params[1], "B") {
			t.Errorf("MODE reply %v lacks +B", m.Params)
		}
		alice.send("WHOIS helperbot")
		whois := alice.collect("RPL_ENDOFWHOIS", isLine("318", "alice", "helperbot"))
		alice.expectIn(whois, "RPL_WHOISBOT", isLine("335", "alice", "helperbot"))
	})
}

// --- 9. one account, two connections ---

func TestMultiSession(t *testing.T) {
	t.Parallel()
	b := startBox(t, []string{"alice", "bob"})
	one := b.login(t, "alice", "echo-message")
	two := b.login(t, "alice")
	bob := b.login(t, "bob")
	for _, c := range []*client{one, two} {
		c.expectIn(c.welcome, "RPL_WELCOME as alice", isLine("001", "alice"))
	}

	// A direct message reaches both connections.
	bob.send("PRIVMSG alice :hello both")
	one.expect("bob's message", isFrom("bob", "PRIVMSG", "alice", "hello both"))
	two.expect("bob's message", isFrom("bob", "PRIVMSG", "alice", "hello both"))

	// What alice sends on one appears on the other, as sent by her.
	one.send("PRIVMSG bob :sent from one")
	bob.expect("alice's message", isFrom("alice", "PRIVMSG", "bob", "sent from one"))
	one.expect("the echo", isFrom("alice", "PRIVMSG", "bob", "sent from one"))
	two.expect("the copy of alice's message", isFrom("alice", "PRIVMSG", "bob", "sent from one"))

	// In a channel too; alice is one member.
	join(one, "#general")
	burst := join(two, "#general")
	join(bob, "#general")
	if n := names(burst, "#general"); !slices.Equal(n, []string{"alice"}) {
		t.Errorf("NAMES after alice's second join %v, want [alice]", n)
	}
	one.send("PRIVMSG #general :in the channel")
	bob.expect("alice's message", isFrom("alice", "PRIVMSG", "#general", "in the channel"))
	two.expect("alice's message from her other connection", isFrom("alice", "PRIVMSG", "#general", "in the channel"))
	// One connection leaving does not make alice leave.
	one.quit("one of two")
	bob.send("PRIVMSG #general :still with us?")
	got := bob.sync()
	if hasLine(got, isFrom("alice", "QUIT")) || hasLine(got, isFrom("alice", "PART")) {
		t.Errorf("bob saw alice leave while her second connection stays:\n%s", lines(got))
	}
	two.expect("bob's message", isFrom("bob", "PRIVMSG", "#general", "still with us?"))
}
