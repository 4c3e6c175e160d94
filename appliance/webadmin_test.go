package appliance

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"chatbox/webadmin"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWebAdminService: with web.listen set, the box serves the web admin,
// logs where and the setup code, and the web admin sees the box's events
// through the adapter.
func TestWebAdminService(t *testing.T) {
	cfg := quietConfig(t)
	cfg.Web.Listen = "127.0.0.1:0"
	logs := &lockedBuffer{}
	box, _, _ := runningBox(t, Options{Config: cfg, Log: slog.New(slog.NewTextHandler(logs, nil))})
	m := regexp.MustCompile(`msg=listening door=web addr=(\S+)`).FindStringSubmatch(logs.String())
	code := regexp.MustCompile(`msg="web admin setup code" code=(\S+)`).FindStringSubmatch(logs.String())
	if m == nil || code == nil {
		t.Fatalf("log:\n%s", logs)
	}
	if got, err := webadmin.ReadSetupCode(cfg.DataDir); err != nil || got != code[1] {
		t.Fatalf("setup code file: %q %v, logged %q", got, err, code[1])
	}
	if fi, err := os.Stat(filepath.Join(cfg.DataDir, webadmin.SetupCodeFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("setup code file: %v %v", fi, err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get("http://" + m[1] + "/admin/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/setup" {
		t.Fatalf("GET /admin/: %s %q", resp.Status, resp.Header.Get("Location"))
	}
	// The listener's home page is the web chat, even before the setup.
	resp, err = client.Get("http://" + m[1] + "/")
	if err != nil {
		t.Fatal(err)
	}
	home, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(home), `id="chatbox-entry"`) {
		t.Fatalf("GET /: %s, want the web chat's page:\n%.300s", resp.Status, home)
	}
	// The adapter passes the box's state and events on.
	wb := webBox{box}
	if wb.State() != string(StateReady) {
		t.Fatalf("state %q", wb.State())
	}
	ch, stop := wb.Subscribe(8)
	defer stop()
	if err := box.OpenPairing(time.Minute); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev := <-ch:
			if ev.Kind == webadmin.EventPairingOpened && ev.State == string(StatePairing) {
				return
			}
		case <-deadline:
			t.Fatal("no pairing event through the adapter")
		}
	}
}

// TestWebAdminEventNames: the web admin's name for the pairing event is the
// box's.
func TestWebAdminEventNames(t *testing.T) {
	if EventPairingOpened != webadmin.EventPairingOpened {
		t.Fatal("pairing event names differ")
	}
}
