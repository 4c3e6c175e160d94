package webadmin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
)

// browserResult is what browsertest/admin.mjs prints.
type browserResult struct {
	OK                    bool              `json:"ok"`
	Step                  string            `json:"step"`
	Error                 string            `json:"error"`
	Screenshots           map[string]string `json:"screenshots"`
	CSPViolations         []string          `json:"cspViolations"`
	ConsoleErrors         []string          `json:"consoleErrors"`
	HTMX                  any               `json:"htmx"` // its version, or false
	LiveRefreshed         bool              `json:"liveRefreshed"`
	LEDPanel              []string          `json:"ledPanel"`
	State                 string            `json:"state"`
	Invite                string            `json:"invite"`
	DashboardWeight       pageWeight        `json:"dashboardBytes"`       // cache off: a first visit
	DashboardWeightCached pageWeight        `json:"dashboardBytesCached"` // the assets cached
}

type pageWeight struct{ HTML, CSS, JS, Total int }

// TestBrowserE2E drives the web admin in a real browser (Debian's
// chromium through playwright-core, browsertest/admin.mjs) against the
// real binary: first-run setup with the logged setup code, logout and
// login, an account, an invitation and a room made from the pages, a
// screenshot of every main page (build/screenshots/), the dashboard's
// page weight and htmx refreshing its live part under the strict CSP.
// Then the account the browser made logs in over XMPP and over IRC, where
// it gets a message from another account in the room the browser made,
// and /metrics counts that delivery in its latency histogram.
func TestBrowserE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("no %s (Debian's chromium package; .ci/run installs it): %v", chromium, err)
	}
	if _, err := os.Stat("../node_modules/playwright-core/package.json"); err != nil {
		t.Skipf("no playwright-core in node_modules (npm ci at the repository's root; .ci/run does it): %v", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skipf("no node: %v", err)
	}
	shots, err := filepath.Abs("../build/screenshots")
	if err != nil {
		t.Fatal(err)
	}
	const (
		adminPW   = "browser admin pw"
		account   = "carol"
		accountPW = "password-carol"
		room      = "garden"
	)
	b := startE2EBox(t)
	b.CLI(t, "password-bob\n", "user", "add", "bob") // the other side of the IRC conversation

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "browsertest/admin.mjs")
	cmd.Env = append(os.Environ(), "BASE_URL="+b.web(), "SETUP_CODE="+b.setupCode(), "ADMIN_PASSWORD="+adminPW,
		"ACCOUNT="+account, "ACCOUNT_PASSWORD="+accountPW, "ROOM="+room, "SHOTS_DIR="+shots, "CHROMIUM="+chromium)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var res browserResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || runErr != nil || !res.OK {
		t.Fatalf("browser script: %v (JSON: %v)\nstdout: %s\nstderr: %s\nserver log:\n%s", runErr, err, stdout.String(), stderr.String(), b.LogText())
	}
	t.Logf("browser result: %s", strings.TrimSpace(stdout.String()))
	os.WriteFile(filepath.Join(shots, "result.json"), stdout.Bytes(), 0o644)

	for _, name := range []string{"setup", "login", "dashboard", "people", "invite", "rooms", "settings", "certificate", "backup", "tokens"} {
		p := res.Screenshots[name]
		data, err := os.ReadFile(p)
		if err != nil || !bytes.HasPrefix(data, []byte("\x89PNG")) {
			t.Errorf("screenshot %s: %q: %v", name, p, err)
		}
	}
	if len(res.CSPViolations) > 0 {
		t.Errorf("CSP violations: %q", res.CSPViolations)
	}
	if v, _ := res.HTMX.(string); !strings.HasPrefix(v, "2.0.") || !res.LiveRefreshed {
		t.Errorf("htmx %v, live part refreshed %v: want htmx 2.0.x refreshing the dashboard", res.HTMX, res.LiveRefreshed)
	}
	if len(res.LEDPanel) != 3 || !strings.Contains(res.LEDPanel[0], "status") || res.State != "ready" {
		t.Errorf("LED panel %q, state %q", res.LEDPanel, res.State)
	}
	if !strings.HasPrefix(res.Invite, "xmpp:"+e2eDomain+"?register;preauth=") {
		t.Errorf("invitation %q", res.Invite)
	}
	if len(res.ConsoleErrors) > 0 {
		t.Errorf("console errors: %q", res.ConsoleErrors)
	}
	if w := res.DashboardWeight; w.HTML <= 0 || w.CSS <= 0 || w.JS <= 0 || w.Total != w.HTML+w.CSS+w.JS {
		t.Errorf("dashboard weight %+v", w)
	}
	if w := res.DashboardWeightCached; w.HTML <= 0 || w.CSS != 0 || w.JS != 0 {
		t.Errorf("dashboard weight with the assets cached %+v: want the HTML alone", w)
	}

	// The account the browser made, over both doors.
	if bound := xmppLogin(t, b, account, accountPW); !strings.HasPrefix(bound, account+"@"+e2eDomain+"/") {
		t.Errorf("XMPP bound %q", bound)
	}
	carol := ircLogin(t, b, account, accountPW)
	carol.send("JOIN #" + room)
	carol.expect("366 for #"+room, func(m ircmsg.Message) bool { return m.Command == "366" })
	bob := ircLogin(t, b, "bob", "password-bob")
	bob.send("JOIN #" + room)
	bob.expect("366 for #"+room, func(m ircmsg.Message) bool { return m.Command == "366" })
	bob.send("PRIVMSG #" + room + " :hello from the web admin's test")
	carol.expect("bob's message", func(m ircmsg.Message) bool {
		return m.Command == "PRIVMSG" && strings.HasPrefix(m.Source, "bob!") && len(m.Params) == 2 && m.Params[1] == "hello from the web admin's test"
	})

	// The delivery is in the latency histogram; the sessions are counted.
	a := newAdmin(t, b.web())
	a.login(adminPW)
	m := a.get("/metrics")
	if m.status != http.StatusOK {
		t.Fatalf("/metrics: %d\n%s", m.status, m.body)
	}
	if v, err := metricValue(m.body, "chatbox_delivery_latency_seconds_count"); err != nil || mustInt(t, v) < 1 {
		t.Errorf("delivery latency count %q (%v), want at least 1:\n%s", v, err, m.body)
	}
	if v, err := metricValue(m.body, `chatbox_sessions{door="irc"}`); err != nil || v != "2" {
		t.Errorf("IRC sessions %q (%v):\n%s", v, err, m.body)
	}
	a.want(a.get("/admin/rooms"), http.StatusOK, room, account, "bob")
}

func mustInt(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q is not a count", s)
	}
	return n
}
