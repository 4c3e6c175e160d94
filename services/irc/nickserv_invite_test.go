package irc_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/ergochat/irc-go/ircmsg"
)

// TestNickServRegisterWithInvitation: with registration closed, an
// invitation from the owner lets an IRC user make their nick an account
// (NickServ REGISTER password token); a wrong token, a second use and
// plain REGISTER are refused.
func TestNickServRegisterWithInvitation(t *testing.T) {
	t.Parallel()
	b := startBox(t, nil, "registration.policy=invite")
	out := b.cli(t, "", "invite", "--uses", "1")
	m := regexp.MustCompile(`token: ([a-z2-7]{26})`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no token in the invite command's output:\n%s", out)
	}
	token := m[1]

	notice := func(sub string) func(ircmsg.Message) bool {
		return func(m ircmsg.Message) bool {
			return m.Command == "NOTICE" && m.Nick() == "NickServ" && strings.Contains(lastParam(m), sub)
		}
	}

	dora := b.dial(t, "dora", false)
	dora.register("dora", "")
	dora.send("PRIVMSG NickServ :REGISTER s3cret-pass-dora")
	dora.expect("the refusal of REGISTER without an invitation", notice("Registration is closed"))
	dora.send("PRIVMSG NickServ :REGISTER s3cret-pass-dora aaaaaaaaaaaaaaaaaaaaaaaaaa")
	dora.expect("the refusal of a wrong invitation", notice("not valid"))
	dora.send("PRIVMSG NickServ :REGISTER s3cret-pass-dora " + token)
	dora.expect("NickServ's notice", notice("Account dora registered"))
	dora.expect("RPL_LOGGEDIN as dora", isLine("900", "dora"))
	join(dora, "#general")

	// The invitation is used up.
	emil := b.dial(t, "emil", false)
	emil.register("emil", "")
	emil.send("PRIVMSG NickServ :REGISTER s3cret-pass-emil " + token)
	emil.expect("the refusal of a used invitation", notice("not valid"))

	// The new account logs in with its password from a new connection.
	again := b.dial(t, "dora", false)
	again.register("dora2", "")
	again.send("PRIVMSG NickServ :IDENTIFY dora s3cret-pass-dora")
	again.expect("RPL_LOGGEDIN as dora", isLine("900"))
}
