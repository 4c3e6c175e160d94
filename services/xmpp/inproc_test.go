package xmpp

import (
	"context"
	"path/filepath"
	"testing"

	"chatbox/services/chat"
	"chatbox/services/store"
)

// startInproc serves an XMPP door in this process over a real core and
// store in a temporary directory (for tests that need settings the
// binary does not expose, such as short timeouts), with the accounts
// made (password(name)). cfg.Listen defaults to one ephemeral loopback
// port; TLS is off unless cfg.TLS is set.
func startInproc(t testing.TB, cfg Config, accounts ...string) (*Server, *chat.Core) {
	t.Helper()
	return startInprocLimits(t, cfg, chat.Limits{}, accounts...)
}

// startInprocLimits is startInproc with the core's limits (zero fields:
// the core's defaults), for benchmarks that send faster than an account
// may.
func startInprocLimits(t testing.TB, cfg Config, limits chat.Limits, accounts ...string) (*Server, *chat.Core) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "chat.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	core, err := chat.New(chat.Options{Store: st, Iterations: 4096, Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accounts {
		if err := core.CreateAccount(ctx, a, password(a), false); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.Domain == "" {
		cfg.Domain = boxDomain
	}
	if len(cfg.Listen)+len(cfg.TLSListen) == 0 {
		cfg.Listen = []string{"127.0.0.1:0"}
	}
	srv := New(cfg, core, nil)
	sctx, cancel := context.WithCancel(ctx)
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(sctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-errc:
		cancel()
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("serve: %v", err)
		}
		st.Close()
	})
	return srv, core
}
