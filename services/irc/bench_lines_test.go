package irc

// Benchmarks of the IRC door's per-line hot paths, without the network:
//
//   - BenchmarkLineParse: one client line (IRCv3 tags, PRIVMSG to a
//     channel) through ircmsg.ParseLineStrict, as handleLine does.
//   - BenchmarkLineSerialise: one server line built and serialised with
//     LineBytesStrict, as the writer does for every line.
//   - BenchmarkDeliveryTranslate: one room message the core routed,
//     turned into this client's lines and serialised (conn.translate in
//     the writer): the door's cost per member when a room message fans
//     out, for a client with and without the IRCv3 tags; "shared" is the
//     writer's path for a room fan-out (conn.writeDelivery with the
//     fan-out's chat.Rendered): after the first receiver of a variant,
//     a receiver costs a lookup and a copy.
//
// benchstat compares them by name across runs (`make bench`).

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"chatbox/services/chat"
)

const benchClientLine = "@label=a1b2;+draft/reply=9f8e7d6c5b4a3921 PRIVMSG #general :Are we still on for lunch at noon? I can bring the cake."

func BenchmarkLineParse(b *testing.B) {
	b.SetBytes(int64(len(benchClientLine)))
	b.ReportAllocs()
	for b.Loop() {
		msg, err := ircmsg.ParseLineStrict(benchClientLine, true, maxLineBody)
		if err != nil || msg.Command != "PRIVMSG" || len(msg.Params) != 2 {
			b.Fatalf("parse: %v %v", msg, err)
		}
	}
}

func BenchmarkLineSerialise(b *testing.B) {
	tags := map[string]string{"time": "2026-12-01T09:30:00.000Z", "msgid": "mh24hvnxa7supktk7qguyf7nq4", "account": "alice"}
	var n int
	b.ReportAllocs()
	for b.Loop() {
		m := ircmsg.MakeMessage(tags, "alice!alice@irc.box.test", "PRIVMSG", "#general", "Are we still on for lunch at noon? I can bring the cake.")
		line, err := m.LineBytesStrict(false, maxLineBody)
		if err != nil {
			b.Fatal(err)
		}
		n = len(line)
	}
	b.SetBytes(int64(n))
}

func BenchmarkDeliveryTranslate(b *testing.B) {
	d := newFuzzDoor(b, fuzzDoorOptions{})
	msg := &chat.Message{ID: "mh24hvnxa7supktk7qguyf7nq4", Seq: 42, Time: time.Now(), From: "alice", FromNick: "alice",
		Room: "general", Kind: chat.KindNormal, Body: "Are we still on for lunch at noon? I can bring the cake."}
	del := &chat.Delivery{Kind: chat.DelMessage, Message: msg, From: chat.SessionRef{Account: "alice", Door: "irc"}}
	for _, bc := range []struct {
		name string
		caps capSet
	}{
		{"plain", capSet{}},
		{"tags", capSet{}.with("server-time", "message-tags", "account-tag", "batch", "draft/multiline")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			nc, peer := net.Pipe() // never read or written: translate only
			defer nc.Close()
			defer peer.Close()
			c := newConn(d.srv, nc, "127.0.0.1")
			c.caps = bc.caps
			c.nick = "bob"
			var out bytes.Buffer
			v := c.view()
			b.ReportAllocs()
			for b.Loop() {
				out.Reset()
				for _, m := range c.translate(del, &v) {
					line, err := m.LineBytesStrict(false, maxLineBody)
					if err != nil {
						b.Fatal(err)
					}
					out.Write(line)
				}
			}
			if !bytes.Contains(out.Bytes(), []byte(" PRIVMSG #general :Are we still on")) {
				b.Fatalf("translated to %q", out.String())
			}
		})
	}
	b.Run("shared", func(b *testing.B) {
		nc, peer := net.Pipe()
		defer nc.Close()
		defer peer.Close()
		c := newConn(d.srv, nc, "127.0.0.1")
		c.caps = capSet{}.with("server-time", "message-tags", "account-tag")
		c.nick = "bob"
		shared := *del
		shared.Shared = &chat.Rendered{}
		var out bytes.Buffer
		v := c.view()
		b.ReportAllocs()
		for b.Loop() {
			out.Reset()
			c.writeDelivery(&out, &shared, &v)
		}
		if !bytes.Contains(out.Bytes(), []byte(" PRIVMSG #general :Are we still on")) {
			b.Fatalf("wrote %q", out.String())
		}
	})
}
