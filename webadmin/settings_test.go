package webadmin

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// settingsFake is the appliance's settings, certificate and backups as the
// fake box gives them; its zero value is a box with a CA and default
// settings.
type settingsFake struct {
	smu     sync.Mutex
	noCA    bool
	saved   map[string]string // the values saved, by key
	saves   int
	backErr error // Backup fails…
	partial bool  // …after writing part of the archive
	checked []byte
	broken  error // Settings fails
}

const fakeCA = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
const fakeFingerprint = "AB:CD:EF:01"

func (f *settingsFake) CACertPEM() []byte {
	f.smu.Lock()
	defer f.smu.Unlock()
	if f.noCA {
		return nil
	}
	return []byte(fakeCA)
}

func (f *settingsFake) CAFingerprint() string { return fakeFingerprint }

var fakeSettings = []Setting{
	{Key: "name", Value: "chatbox", Help: "The box's display name."},
	{Key: "irc.plain_listen", Value: `["127.0.0.1:6667"]`, Help: "Plain-text IRC <listeners>."},
	{Key: "limits.message_burst", Value: "20", Help: "Messages in a burst."},
	{Key: "event.enabled", Value: "false", Help: "Event mode."},
	{Key: "event.welcome", Value: "Hello guests", Help: "Shown to guests."},
	{Key: "event.rooms", Value: `["general"]`, Help: "Guests' rooms."},
}

func (f *settingsFake) Settings() (string, []Setting, error) {
	f.smu.Lock()
	defer f.smu.Unlock()
	if f.broken != nil {
		return "/data/chatbox.toml", nil, f.broken
	}
	out := make([]Setting, len(fakeSettings))
	for i, s := range fakeSettings {
		if v, ok := f.saved[s.Key]; ok {
			s.Value = v
		}
		out[i] = s
	}
	return "/data/chatbox.toml", out, nil
}

// SaveSettings refuses an empty name and a message_burst that is not a
// number, as the appliance's loader would.
func (f *settingsFake) SaveSettings(values map[string]string) error {
	bad := SettingsError{}
	if v, ok := values["name"]; ok && v == "" {
		bad["name"] = "must not be empty"
	}
	if v, ok := values["limits.message_burst"]; ok && !regexp.MustCompile(`^[0-9]+$`).MatchString(v) {
		bad["limits.message_burst"] = `expected an integer, got "` + v + `"`
	}
	if len(bad) > 0 {
		return bad
	}
	f.smu.Lock()
	defer f.smu.Unlock()
	if f.saved == nil {
		f.saved = map[string]string{}
	}
	maps.Copy(f.saved, values)
	f.saves++
	return nil
}

func (f *settingsFake) lockedSaved() (int, map[string]string) {
	f.smu.Lock()
	defer f.smu.Unlock()
	return f.saves, maps.Clone(f.saved)
}

func (f *settingsFake) Backup(_ context.Context, w io.Writer) error {
	f.smu.Lock()
	backErr, partial := f.backErr, f.partial
	f.smu.Unlock()
	if backErr != nil && !partial {
		return backErr
	}
	if _, err := io.WriteString(w, "fake archive"); err != nil {
		return err
	}
	return backErr
}

// CheckBackup accepts any archive but one reading "bad".
func (f *settingsFake) CheckBackup(_ context.Context, r io.Reader) error {
	data, err := io.ReadAll(r)
	f.smu.Lock()
	f.checked = data
	f.smu.Unlock()
	if err != nil {
		return err
	}
	if string(data) == "bad" {
		return errors.New("restore: the file holds no database; is it a chatbox backup?")
	}
	return nil
}

func TestTLSPage(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	wantRedirect(t, f.browser().get("/admin/tls"), "/admin/login")
	wantRedirect(t, f.browser().get("/admin/tls/ca.pem"), "/admin/login")
	want(t, b.get("/admin/tls"), http.StatusOK, fakeFingerprint, `href="/admin/tls/ca.pem"`, "Conversations", "iPhone", "Windows", "macOS", "Linux")
	r := b.get("/admin/tls/ca.pem")
	want(t, r, http.StatusOK, fakeCA)
	if ct, cd := r.header.Get("Content-Type"), r.header.Get("Content-Disposition"); ct != "application/x-pem-file" || !strings.HasPrefix(cd, "attachment;") {
		t.Fatalf("served as %q, %q", ct, cd)
	}
	// A certificate from the settings: nothing to download.
	f.box.smu.Lock()
	f.box.noCA = true
	f.box.smu.Unlock()
	r = b.get("/admin/tls")
	want(t, r, http.StatusOK, fakeFingerprint, "tls.cert_file")
	if strings.Contains(r.body, "/admin/tls/ca.pem") {
		t.Fatal("a download offered without a CA")
	}
	want(t, b.get("/admin/tls/ca.pem"), http.StatusNotFound, "no certificate authority")
}

func TestSettingsPage(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	wantRedirect(t, f.browser().get("/admin/settings"), "/admin/login")
	r := b.get("/admin/settings")
	want(t, r, http.StatusOK, "/data/chatbox.toml", "next start", "restart the box",
		`name="limits.message_burst" value="20"`, `value="[&#34;127.0.0.1:6667&#34;]"`,
		"Plain-text IRC &lt;listeners&gt;.", "[limits]", "General")
	if !strings.Contains(r.body, `<button class="danger" id="restart">Restart now</button>`) {
		t.Fatal("no restart button")
	}
}

func TestSettingsSave(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	b.get("/admin/settings")
	base, _ := f.box.lockedSaved() // the setup saved the name
	refusals(t, f, b, "/admin/settings", "limits.message_burst", "30")
	if n, _ := f.box.lockedSaved(); n != base {
		t.Fatal("saved by a refused request")
	}

	// A bad value: 400, the key named next to its field, the values sent
	// kept, nothing saved.
	r := b.post("/admin/settings", "name", "Kitchen", "limits.message_burst", "ten", "irc.plain_listen", "[]")
	want(t, r, http.StatusBadRequest, `id="limits.message_burst-err"`, `limits.message_burst: expected an integer, got &#34;ten&#34;`,
		`name="limits.message_burst" value="ten"`, `name="name" value="Kitchen"`, "Nothing was saved")
	if n, _ := f.box.lockedSaved(); n != base {
		t.Fatal("saved despite a refusal")
	}
	r = b.post("/admin/settings", "name", "", "limits.message_burst", "x")
	want(t, r, http.StatusBadRequest, `id="name-err"`, `id="limits.message_burst-err"`, "2 setting(s)")

	// A good save: back to the page, which says when it applies; keys
	// the page does not know are not passed on.
	wantRedirect(t, b.post("/admin/settings", "name", "Kitchen", "limits.message_burst", "30", "csrf2", "x", "bogus.key", "1"), "/admin/settings?done=saved")
	n, saved := f.box.lockedSaved()
	if n != base+1 || saved["limits.message_burst"] != "30" || saved["name"] != "Kitchen" {
		t.Fatalf("saved %v", saved)
	}
	if _, ok := saved["bogus.key"]; ok {
		t.Fatal("an unknown key passed on")
	}
	want(t, b.get("/admin/settings?done=saved"), http.StatusOK, "Settings saved", "next start", `name="limits.message_burst" value="30"`)

	// A settings file broken by hand: said so, nothing to edit or save.
	f.box.smu.Lock()
	f.box.broken = errors.New("chatbox.toml:3: syntax error")
	f.box.smu.Unlock()
	r = b.get("/admin/settings")
	want(t, r, http.StatusInternalServerError, "does not load", "chatbox.toml:3: syntax error")
	if strings.Contains(r.body, `name="limits.message_burst"`) {
		t.Fatal("fields shown for a broken file")
	}
	want(t, b.post("/admin/settings", "name", "x"), http.StatusInternalServerError, "does not load")
	if n, _ := f.box.lockedSaved(); n != base+1 {
		t.Fatal("saved over a broken file")
	}
}
