package webadmin

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"chatbox/services/chat"
)

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	tok := newToken(t, b, "prometheus")
	f.srv.cfg.Database = filepath.Join(f.dir, "chat.db")
	core := f.box.core
	core.CreateAccount(context.Background(), "alice", "password-alice", false)
	openSession(t, core, "alice", "irc", "")
	openSession(t, core, "alice", "xmpp", "")
	openSession(t, core, "alice", `we"ird`, "")
	// Two deliveries 2 s old (the core's clock is the real one: they fall
	// between the 1 s and 5 s bounds whatever the machine's speed).
	core.Delivered(&chat.Message{Time: time.Now().Add(-2 * time.Second)})
	core.Delivered(&chat.Message{Time: time.Now().Add(-2 * time.Second)})
	f.box.publish(Event{Kind: string(chat.EventMessage), Detail: "general"})
	f.box.publish(Event{Kind: string(chat.EventMessage)})
	f.box.publish(Event{Kind: "service.ready"})
	deadline := time.Now().Add(5 * time.Second)
	for f.srv.messages.Load() != 2 {
		if time.Now().After(deadline) {
			t.Fatal("messages not counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	get := func(token string, viaBrowser bool) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", f.web.URL+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		c := http.DefaultClient
		if viaBrowser {
			c = b.c
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	}
	if st, _, _ := get("", false); st != http.StatusUnauthorized {
		t.Fatal(st)
	}
	if st, _, _ := get("cbx_forged", false); st != http.StatusUnauthorized {
		t.Fatal(st)
	}
	// a forged token is refused even with a good session
	if st, _, _ := get("cbx_forged", true); st != http.StatusUnauthorized {
		t.Fatal(st)
	}
	st, ct, body := get(tok, false)
	if st != http.StatusOK || !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatal(st, ct, body)
	}
	for _, line := range []string{
		"# TYPE chatbox_sessions gauge",
		`chatbox_sessions{door="irc"} 1`,
		`chatbox_sessions{door="xmpp"} 1`,
		`chatbox_sessions{door="we\"ird"} 1`,
		"chatbox_accounts 1",
		"chatbox_rooms 1",
		"# TYPE chatbox_messages_total counter",
		"chatbox_messages_total 2",
		"chatbox_up 1",
		"chatbox_uptime_seconds 93780",
		"# TYPE chatbox_delivery_latency_seconds histogram",
		`chatbox_delivery_latency_seconds_bucket{le="0.0005"} 0`,
		`chatbox_delivery_latency_seconds_bucket{le="1"} 0`,
		`chatbox_delivery_latency_seconds_bucket{le="5"} 2`,
		`chatbox_delivery_latency_seconds_bucket{le="+Inf"} 2`,
		"chatbox_delivery_latency_seconds_count 2",
	} {
		if !strings.Contains(body, line+"\n") {
			t.Fatalf("no %q in\n%s", line, body)
		}
	}
	for _, re := range []string{`(?m)^go_goroutines [1-9]\d*$`, `(?m)^go_memstats_heap_inuse_bytes [1-9]\d*$`,
		`(?m)^go_memstats_sys_bytes [1-9]\d*$`, `(?m)^chatbox_store_bytes [1-9]\d*$`,
		`(?m)^chatbox_delivery_latency_seconds_sum 4\.\d+$`} {
		if !regexp.MustCompile(re).MatchString(body) {
			t.Fatalf("no %s in\n%s", re, body)
		}
	}
	// every sample line is name{labels} value, and each metric has HELP and TYPE
	sample := regexp.MustCompile(`^[a-z_]+(\{(door|le)="(?:[^"\\]|\\.)*"\})? -?\d+(\.\d+)?$`)
	for _, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		if !strings.HasPrefix(l, "# HELP ") && !strings.HasPrefix(l, "# TYPE ") && !sample.MatchString(l) {
			t.Fatalf("bad line %q", l)
		}
	}
	// the admin's browser may read it too
	if st, _, body := get("", true); st != http.StatusOK || !strings.Contains(body, "chatbox_accounts 1") {
		t.Fatal(st, body)
	}
	if st, _, _ := get(tok, false); st != http.StatusOK {
		t.Fatal(st)
	}
	// POST is not allowed
	req, _ := http.NewRequest("POST", f.web.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatal(resp.StatusCode)
	}
	// no database file: no store size
	f.srv.cfg.Database = filepath.Join(f.dir, "missing.db")
	if _, _, body := get(tok, false); strings.Contains(body, "chatbox_store_bytes") {
		t.Fatal(body)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "chat.db")); err != nil {
		t.Fatal(err)
	}
}

func TestLabelValue(t *testing.T) {
	if got := labelValue("a\\b\"c\nd"); got != `a\\b\"c\nd` {
		t.Fatal(got)
	}
}
