package hardening

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"chatbox/services/chat"
	"chatbox/services/store"
)

// TestCrashSafety kills the real binary with SIGKILL in the middle of a
// message load, crashRounds times in a row on the same data directory,
// restarting it each time. Two senders write to #general as fast as the
// box takes it: alice on IRC (echo-message: the echo comes once the
// message is stored) and bob on XMPP (XEP-0198: <a h/> counts the
// stanzas handled). The kill comes once both have had ackTarget
// acknowledgements in the round, while more are in flight. Afterwards
// every acknowledged message must be in the room's history, read from
// the SQLite file through the store package, and PRAGMA integrity_check
// must pass.
func TestCrashSafety(t *testing.T) {
	const (
		crashRounds = 20
		ackTarget   = 20
		maxPerRound = 50000 // bounds each sender's round
	)
	data := filepath.Join(t.TempDir(), "data")
	settings := []string{
		"limits.messages_per_second=100000", "limits.message_burst=100000",
		"rooms.default_history=0",
	}
	acked := map[string]bool{} // bodies whose sender got an acknowledgement
	var total int
	for round := range crashRounds {
		dir := ""
		if round > 0 {
			dir = data
		}
		b := startBox(t, dir, []string{"alice", "bob"}, settings...)
		if round == 0 {
			data = b.Data
		}
		start := time.Now()
		irc := ircClient(t, b.ircPlain, "", "alice", "echo-message")
		irc.write("JOIN #general\r\n")
		if _, err := irc.waitFor(regexp.MustCompile(` 366 `)); err != nil {
			t.Fatalf("round %d: IRC join: %v", round, err)
		}
		x := b.xmppClient(t, "", "bob")
		x.write(`<presence to='general@rooms.box.test/bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		if _, err := x.waitFor(regexp.MustCompile(`<status code=["']110["']`)); err != nil {
			t.Fatalf("round %d: MUC join: %v", round, err)
		}
		x.write(`<enable xmlns='urn:xmpp:sm:3'/>`)
		if _, err := x.waitFor(regexp.MustCompile(`<enabled `)); err != nil {
			t.Fatalf("round %d: stream management: %v", round, err)
		}

		// The load: each sender writes until its connection fails.
		ircBody := func(i int) string { return fmt.Sprintf("irc-r%02d-%04d", round, i) }
		xmppBody := func(i int) string { return fmt.Sprintf("xmpp-r%02d-%04d", round, i) }
		sent := make(chan int, 2)
		go func() {
			i := 0
			for ; i < maxPerRound; i++ {
				if irc.write("PRIVMSG #general :"+ircBody(i)+"\r\n") != nil {
					break
				}
			}
			sent <- i
		}()
		smAck := regexp.MustCompile(`<a [^>]*h=["'](\d+)["']`)
		go func() {
			// As a client does, bob keeps at most 100 messages ahead of
			// the box's acknowledgements, and acknowledges the room's
			// messages it got (a lower bound of h is always right): the
			// box ends a stream that leaves 1,000 stanzas unacknowledged.
			off := len(x.all())
			h, got, acked := 0, 0, 0
			read := func() {
				more, n := x.since(off)
				off = n
				got += strings.Count(more, "</message>")
				for _, m := range smAck.FindAllStringSubmatch(more, -1) {
					h, _ = strconv.Atoi(m[1])
				}
			}
			ack := func() string {
				if got-acked < 50 {
					return ""
				}
				acked = got
				return `<a xmlns='urn:xmpp:sm:3' h='` + strconv.Itoa(got) + `'/>`
			}
			i := 0
		send:
			for ; i < maxPerRound; i++ {
				for read(); i-h >= 100; read() {
					if a := ack(); a != "" && x.write(a) != nil {
						break send
					}
					select {
					case <-x.ended:
						break send
					case <-time.After(time.Millisecond):
					}
				}
				s := `<message to='general@rooms.box.test' type='groupchat' id='m` + strconv.Itoa(i) + `'><body>` + xmppBody(i) + `</body></message>`
				if i%5 == 4 {
					s += `<r xmlns='urn:xmpp:sm:3'/>`
				}
				if x.write(s+ack()) != nil {
					break
				}
			}
			sent <- i
		}()
		ircEcho := regexp.MustCompile(`:alice![^ ]* PRIVMSG #general :?(irc-r` + fmt.Sprintf("%02d", round) + `-\d+)\r\n`)
		if err := irc.waitCount(ircEcho, ackTarget); err != nil {
			t.Fatalf("round %d: IRC acknowledgements: %v", round, err)
		}
		for h := 0; h < ackTarget; {
			m, err := x.waitFor(smAck)
			if err != nil {
				t.Fatalf("round %d: XMPP acknowledgements: %v", round, err)
			}
			h, _ = strconv.Atoi(smAck.FindStringSubmatch(string(m))[1])
		}
		b.Kill(t)
		<-sent
		<-sent
		// Every acknowledgement that arrived before the connections died.
		irc.close()
		x.close()
		var ircAcks, xmppAcks int
		for _, m := range ircEcho.FindAllStringSubmatch(irc.all(), -1) {
			acked[m[1]] = true
			ircAcks++
		}
		for _, m := range smAck.FindAllStringSubmatch(x.all(), -1) {
			h, _ := strconv.Atoi(m[1])
			xmppAcks = max(xmppAcks, h)
		}
		for i := range xmppAcks {
			acked[xmppBody(i)] = true
		}
		total += ircAcks + xmppAcks
		t.Logf("round %d: killed after %v with %d IRC and %d XMPP messages acknowledged", round, time.Since(start).Round(time.Millisecond), ircAcks, xmppAcks)
	}

	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(data, "chatbox.db"), nil)
	if err != nil {
		t.Fatalf("opening the database after the last kill: %v", err)
	}
	defer st.Close()
	if err := st.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	var after int64
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatal("history does not end")
		}
		page, err := st.History(ctx, chat.HistoryQuery{Room: "general", AfterSeq: after, Limit: store.DefaultLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			stored[m.Body] = true
		}
		after = page[len(page)-1].Seq
	}
	var lost []string
	for body := range acked {
		if !stored[body] {
			lost = append(lost, body)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged messages are not in the history, such as %q", len(lost), len(acked), lost[:min(len(lost), 10)])
	}
	t.Logf("%d rounds: %d acknowledged messages, all in the history (%d stored in all); integrity_check ok", crashRounds, total, len(stored))
}
