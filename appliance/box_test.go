package appliance

import (
	"context"
	"strings"
	"testing"
	"time"

	"chatbox/services/chat"
)

func TestBoxRunAndStop(t *testing.T) {
	cfg := Defaults("testhost")
	cfg.DataDir = t.TempDir()
	cfg.IRC.TLSListen = []string{"127.0.0.1:0"}
	cfg.IRC.PlainListen = []string{"127.0.0.1:0"}
	cfg.XMPP.Listen = []string{"127.0.0.1:0"}
	cfg.XMPP.TLSListen = []string{"127.0.0.1:0"}
	cfg.Calls.Listen = []string{"127.0.0.1:0"}
	cfg.Upload.Listen = []string{"127.0.0.1:0"}
	cfg.Web.Listen = "127.0.0.1:0"
	j := &journal{}
	svc := &fakeService{name: "door", journal: j, failNow: make(chan error)}
	ctx := context.Background()
	box, err := Open(ctx, Options{Config: cfg, Services: []Service{svc}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, Options{Config: cfg}); err == nil || !strings.Contains(err.Error(), "in use by another chatbox") {
		t.Fatalf("second box on the same data: %v", err)
	}
	rooms, err := box.Core().Rooms(ctx)
	if err != nil || len(rooms) != 1 || rooms[0].Name != "general" {
		t.Fatalf("default rooms: %v %v", rooms, err)
	}
	if box.TLS().CAFingerprint == "" {
		t.Fatal("no CA fingerprint")
	}
	events, stop := box.Subscribe(64)
	defer stop()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- box.Run(runCtx, 5*time.Second) }()
	waitState(t, events, StateReady)
	// Chat events reach the box's observers.
	if err := box.Core().CreateAccount(ctx, "alice", "password-alice", false); err != nil {
		t.Fatal(err)
	}
	for ev := range events {
		if ev.Kind == string(chat.EventAccountCreated) {
			break
		}
	}
	cancel()
	waitState(t, events, StateShuttingDown)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := j.String(); got != "[start door stop door]" { // after irc's start, before its stop
		t.Fatalf("journal %s", got)
	}
	// The data directory is free again and the data is there.
	box2, err := Open(ctx, Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer box2.Close()
	if a, err := box2.Core().Account(ctx, "alice"); err != nil || a.Name != "alice" {
		t.Fatalf("account after restart: %v %v", a, err)
	}
}
