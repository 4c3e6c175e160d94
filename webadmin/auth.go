package webadmin

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"chatbox/services/chat"
)

// Files the web admin keeps in the data directory.
const (
	// AdminFile holds the admin credential (salted keys, never the
	// password) and the box's display name, mode 0600.
	AdminFile = "webadmin.json"
	// SetupCodeFile holds the one-time setup code while the box waits to
	// be set up (chatbox setup-code prints it), mode 0600.
	SetupCodeFile = "webadmin-setup-code"
)

const (
	sessionTTL    = 12 * time.Hour
	maxSessions   = 256
	setupTTL      = time.Hour
	maxSetupLoads = 256
	cookieName    = "chatbox_admin"
	// MinAdminPassword is the admin password's minimum length.
	MinAdminPassword = 8
)

// adminRecord is AdminFile's content.
type adminRecord struct {
	Name        string           `json:"name"`
	Credentials chat.Credentials `json:"credentials"`
	Created     time.Time        `json:"created"`
}

// session is one logged-in browser.
type session struct {
	csrf    string
	expires time.Time
}

// setupLoad is one load of the setup page: its form token and whether the
// pairing window was open then.
type setupLoad struct {
	loaded      time.Time
	pairingOpen bool
	browser     string // the form cookie's value the token is bound to
}

// auth holds the admin credential, the browser sessions, the setup code
// and the failed-login counts.
type auth struct {
	dir   string
	now   func() time.Time
	limit int

	mu       sync.Mutex
	admin    *adminRecord
	code     string
	sessions map[string]*session
	loads    map[string]setupLoad
	failures map[string]*failures
}

type failures struct {
	since time.Time
	n     int
}

func newAuth(dir string, now func() time.Time, limit int) *auth {
	a := &auth{dir: dir, now: now, limit: limit, sessions: map[string]*session{},
		loads: map[string]setupLoad{}, failures: map[string]*failures{}}
	a.admin, _ = readAdmin(dir)
	return a
}

func readAdmin(dir string) (*adminRecord, error) {
	b, err := os.ReadFile(filepath.Join(dir, AdminFile))
	if err != nil {
		return nil, err
	}
	var r adminRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", AdminFile, err)
	}
	if len(r.Credentials.SHA256.StoredKey) == 0 {
		return nil, fmt.Errorf("%s: no credential", AdminFile)
	}
	return &r, nil
}

// configured reports whether the admin password is set.
func (a *auth) configured() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.admin != nil
}

func (a *auth) name() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.admin == nil {
		return ""
	}
	return a.admin.Name
}

// startSetup makes a new setup code if the box is not set up yet, writes it
// to SetupCodeFile and logs it.
func (a *auth) startSetup(log *slog.Logger) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.admin == nil {
		if r, err := readAdmin(a.dir); err == nil {
			a.admin = r
		}
	}
	if a.admin != nil {
		os.Remove(filepath.Join(a.dir, SetupCodeFile))
		return nil
	}
	code := newSetupCode()
	err := writeFileAtomic(filepath.Join(a.dir, SetupCodeFile), 0o600, []byte(code+"\n"))
	if err != nil {
		return err
	}
	a.code = code
	log.Info("web admin setup code", "code", code)
	return nil
}

// newSetupCode is 10 characters of base32 (50 bits), easy to type.
func newSetupCode() string {
	return strings.ToLower(base32.StdEncoding.EncodeToString(randomBytes(10))[:10])
}

// ReadSetupCode returns the setup code the running box wrote in dataDir,
// for the setup-code command.
func ReadSetupCode(dataDir string) (string, error) {
	if _, err := readAdmin(dataDir); err == nil {
		return "", errors.New("the web admin is already set up (its password is set)")
	}
	b, err := os.ReadFile(filepath.Join(dataDir, SetupCodeFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", errors.New("no setup code: start the box (with the web admin on) first")
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported systems
	}
	return b
}

func randomToken() string { return base64.RawURLEncoding.EncodeToString(randomBytes(32)) }

// newSetupLoad records a load of the setup page and returns its token.
func (a *auth) newSetupLoad(pairingOpen bool, browser string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	for k, l := range a.loads {
		if now.Sub(l.loaded) > setupTTL || len(a.loads) >= maxSetupLoads {
			delete(a.loads, k)
		}
	}
	t := randomToken()
	a.loads[t] = setupLoad{loaded: now, pairingOpen: pairingOpen, browser: browser}
	return t
}

func (a *auth) setupLoad(token string) (setupLoad, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, ok := a.loads[token]
	if !ok || a.now().Sub(l.loaded) > setupTTL {
		return setupLoad{}, false
	}
	return l, true
}

// codeMatches checks a setup code in constant time.
func (a *auth) codeMatches(code string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	code = strings.ToLower(strings.TrimSpace(code))
	return a.code != "" && subtle.ConstantTimeCompare([]byte(code), []byte(a.code)) == 1
}

// setAdmin stores the admin credential (atomically, mode 0600) and ends
// the setup: the code is removed and forgotten. It fails if another setup
// won the race.
func (a *auth) setAdmin(name, password string) error {
	creds, err := chat.NewCredentials(password, chat.DefaultIterations)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.admin != nil {
		return errors.New("the web admin is already set up")
	}
	r := &adminRecord{Name: name, Credentials: creds, Created: a.now().UTC()}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(a.dir, AdminFile), 0o600, b); err != nil {
		return err
	}
	a.admin = r
	a.code = ""
	a.loads = map[string]setupLoad{}
	os.Remove(filepath.Join(a.dir, SetupCodeFile))
	return nil
}

// checkPassword verifies the admin password.
func (a *auth) checkPassword(password string) bool {
	a.mu.Lock()
	r := a.admin
	a.mu.Unlock()
	return r != nil && chat.VerifyPassword(r.Credentials, password)
}

// allowed says whether addr may try a password or a setup code now.
func (a *auth) allowed(addr string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.failures[addr]
	if f == nil || a.now().Sub(f.since) >= time.Minute {
		return true
	}
	return f.n < a.limit
}

// failed counts a failed attempt from addr.
func (a *auth) failed(addr string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if len(a.failures) > 4096 {
		for k, f := range a.failures {
			if now.Sub(f.since) >= time.Minute {
				delete(a.failures, k)
			}
		}
	}
	f := a.failures[addr]
	if f == nil || now.Sub(f.since) >= time.Minute {
		f = &failures{since: now}
		a.failures[addr] = f
	}
	f.n++
}

// newSession starts a browser session; it returns its id.
func (a *auth) newSession() (string, *session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	for id, s := range a.sessions {
		if now.After(s.expires) {
			delete(a.sessions, id)
		}
	}
	for len(a.sessions) >= maxSessions { // drop the oldest
		var oldest string
		for id, s := range a.sessions {
			if oldest == "" || s.expires.Before(a.sessions[oldest].expires) {
				oldest = id
			}
		}
		delete(a.sessions, oldest)
	}
	id := randomToken()
	s := &session{csrf: randomToken(), expires: now.Add(sessionTTL)}
	a.sessions[id] = s
	return id, s
}

// session returns the live session with id.
func (a *auth) session(id string) (*session, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[id]
	if !ok {
		return nil, false
	}
	if a.now().After(s.expires) {
		delete(a.sessions, id)
		return nil, false
	}
	return s, true
}

func (a *auth) endSession(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.sessions, id)
}

// writeFileAtomic writes data by temp file, fsync and rename.
func writeFileAtomic(dest string, mode os.FileMode, data []byte) error {
	dir := filepath.Dir(dest)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dest)+".tmp-")
	if err != nil {
		return fmt.Errorf("write %s: %w", dest, err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(mode)
	if err == nil {
		_, err = io.Copy(tmp, strings.NewReader(string(data)))
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dest)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", dest, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
