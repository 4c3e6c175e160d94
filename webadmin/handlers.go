package webadmin

import (
	"bytes"
	"crypto/subtle"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// page is what every template gets.
type page struct {
	Title    string
	Section  string // nav highlight
	Box      string // the box's display name
	CSRF     string
	LoggedIn bool
	Errors   map[string]string // field -> message
	Form     map[string]string // the values sent back
	Flash    string
	Problem  string // a refusal that is not about the form shown ("name: no such account")
	Data     any
}

const formCookie = "chatbox_form"

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	static, err := fs.Sub(assets, "static")
	if err != nil {
		panic(err)
	}
	mux.Handle("GET /admin/static/", http.StripPrefix("/admin/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /admin/setup", s.setupPage)
	mux.HandleFunc("POST /admin/setup", s.setupPost)
	mux.HandleFunc("GET /admin/login", s.loginPage)
	mux.HandleFunc("POST /admin/login", s.loginPost)
	mux.HandleFunc("POST /admin/logout", s.admin(s.logoutPost))
	mux.HandleFunc("GET /admin/{$}", s.admin(s.dashboard))
	mux.HandleFunc("GET /admin/live", s.admin(s.liveFragment))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/admin/", http.StatusSeeOther)
	})
	s.peopleRoutes(mux)
	s.roomRoutes(mux)
	s.eventRoutes(mux)
	s.boxRoutes(mux)
	s.tokenRoutes(mux)
	s.federationRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if !s.auth.configured() {
			http.Redirect(w, r, "/admin/setup", http.StatusSeeOther)
			return
		}
		http.NotFound(w, r)
	})
	return mux
}

// ServeHTTP adds the security headers and sends every page to /setup
// until the admin password is set.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m := s.mount(r.URL.Path); m != nil {
		m.ServeHTTP(w, r)
		return
	}
	if r.URL.Path == "/" && s.cfg.Home != nil {
		s.cfg.Home.ServeHTTP(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	switch {
	case !strings.HasPrefix(r.URL.Path, "/admin/static/"):
		h.Set("Cache-Control", "no-store")
	case r.URL.Query().Get("v") != "":
		// The pages link assets with their content's hash (asset): a
		// new build changes the URL, so the browser may keep them.
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	default:
		h.Set("Cache-Control", "no-cache")
	}
	if !s.auth.configured() && r.URL.Path != "/admin/setup" && !strings.HasPrefix(r.URL.Path, "/admin/static/") {
		http.Redirect(w, r, "/admin/setup", http.StatusSeeOther)
		return
	}
	limit := int64(64 << 10)
	if r.URL.Path == backupCheckPath {
		limit = maxBackupUpload // the restore check's upload (backup.go)
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	s.mux.ServeHTTP(w, r)
}

// mount is the handler Mounts gives path: its exact key, else the longest
// key ending in "/" that prefixes it; nil for none.
func (s *Server) mount(path string) http.Handler {
	if m, ok := s.cfg.Mounts[path]; ok {
		return m
	}
	var best string
	var h http.Handler
	for k, m := range s.cfg.Mounts {
		if strings.HasSuffix(k, "/") && strings.HasPrefix(path, k) && len(k) > len(best) {
			best, h = k, m
		}
	}
	return h
}

// render writes a page.
func (s *Server) render(w http.ResponseWriter, status int, name string, p *page) {
	t, ok := s.pages[name]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	if p.Box == "" {
		p.Box = s.boxName()
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", p); err != nil {
		s.log.Error("web admin page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (s *Server) boxName() string {
	if n := s.auth.name(); n != "" {
		return n
	}
	if s.cfg.Name != "" {
		return s.cfg.Name
	}
	return "chatbox"
}

// adminHandler is a handler for a logged-in admin.
type adminHandler func(w http.ResponseWriter, r *http.Request, p *page)

// admin requires a session (else: to /login) and, on POST, the session's
// CSRF token (else 403).
func (s *Server) admin(h adminHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(cookieName)
		var sess *session
		ok := false
		if err == nil {
			sess, ok = s.auth.session(c.Value)
		}
		if !ok {
			if r.Header.Get("HX-Request") == "true" {
				// htmx would swap the login page into the live part:
				// have it load the login page instead.
				w.Header().Set("HX-Redirect", "/admin/login")
				http.Error(w, "unauthorized: log in again", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				http.Error(w, "bad form", http.StatusBadRequest)
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(sess.csrf)) != 1 {
				http.Error(w, "forbidden: the form's security token is missing or stale; reload the page", http.StatusForbidden)
				return
			}
		}
		h(w, r, &page{CSRF: sess.csrf, LoggedIn: true, Errors: map[string]string{}, Form: map[string]string{}})
	}
}

// remoteAddr is the client's address without the port.
func remoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// anonymous forms (setup, login) carry a token that is bound to a random
// value in a cookie of the browser, so that another site cannot post them
// (double submit). The cookie is kept across page loads (a second tab, or
// the browser's own /favicon.ico going to the setup page, must not void
// the form already shown); each load gets its own token.
func (s *Server) formBrowser(w http.ResponseWriter, r *http.Request) string {
	v := ""
	if c, err := r.Cookie(formCookie); err == nil && len(c.Value) >= 32 && len(c.Value) <= 64 {
		v = c.Value
	} else {
		v = randomToken()
	}
	http.SetCookie(w, &http.Cookie{Name: formCookie, Value: v, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.cfg.HTTPS, MaxAge: int(setupTTL / time.Second)})
	return v
}

// formTokenOK returns the form's token and its load if the token is one
// this browser was given.
func (s *Server) formTokenOK(r *http.Request) (string, setupLoad, bool) {
	c, err := r.Cookie(formCookie)
	t := r.PostFormValue("csrf")
	if err != nil || t == "" {
		return "", setupLoad{}, false
	}
	load, known := s.auth.setupLoad(t)
	if !known || subtle.ConstantTimeCompare([]byte(c.Value), []byte(load.browser)) != 1 {
		return "", setupLoad{}, false
	}
	return t, load, true
}

func (s *Server) setupPage(w http.ResponseWriter, r *http.Request) {
	if s.auth.configured() {
		http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
		return
	}
	s.renderSetup(w, r, http.StatusOK, map[string]string{"name": s.boxName()}, map[string]string{})
}

func (s *Server) renderSetup(w http.ResponseWriter, r *http.Request, status int, form, errs map[string]string) {
	tok := s.auth.newSetupLoad(s.box.PairingOpen(), s.formBrowser(w, r))
	s.render(w, status, "setup", &page{Title: "Set up", CSRF: tok, Form: form, Errors: errs})
}

func (s *Server) setupPost(w http.ResponseWriter, r *http.Request) {
	if s.auth.configured() {
		http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	_, load, ok := s.formTokenOK(r)
	if !ok {
		http.Error(w, "forbidden: the form's security token is missing or stale; reload the page", http.StatusForbidden)
		return
	}
	addr := remoteAddr(r)
	form := map[string]string{"name": strings.TrimSpace(r.PostFormValue("name")), "code": r.PostFormValue("code")}
	errs := map[string]string{}
	if !s.auth.allowed(addr) {
		errs["code"] = "too many wrong attempts from your address; wait a minute"
		s.renderSetup(w, r, http.StatusTooManyRequests, form, errs)
		return
	}
	if msg := checkDisplayName(form["name"]); msg != "" {
		errs["name"] = msg
	}
	pw := r.PostFormValue("password")
	if utf8.RuneCountInString(pw) < MinAdminPassword {
		errs["password"] = "at least 8 characters"
	} else if len(pw) > 1024 {
		errs["password"] = "at most 1024 bytes"
	} else if pw != r.PostFormValue("password2") {
		errs["password2"] = "the two passwords differ"
	}
	if len(errs) > 0 {
		s.renderSetup(w, r, http.StatusBadRequest, form, errs)
		return
	}
	code := strings.TrimSpace(form["code"])
	pressed := s.box.PairingOpen() && (!load.pairingOpen || s.lastPairing().After(load.loaded))
	switch {
	case code != "" && s.auth.codeMatches(code):
	case code == "" && pressed:
	case code != "":
		s.auth.failed(addr)
		errs["code"] = "wrong setup code"
	default:
		errs["code"] = "give the setup code, or press button A on the box and then send this form"
	}
	if len(errs) > 0 {
		s.renderSetup(w, r, http.StatusForbidden, form, errs)
		return
	}
	if err := s.auth.setAdmin(form["name"], pw); err != nil {
		s.log.Error("web admin setup", "err", err)
		http.Error(w, "could not store the admin password: "+err.Error(), http.StatusInternalServerError)
		return
	}
	// The name goes to the settings file too (the `name` setting: mDNS,
	// the IRC network), so that it outlives the web admin's own record.
	if err := s.box.SaveSettings(map[string]string{"name": form["name"]}); err != nil {
		s.log.Warn("web admin setup: the box's name is not saved in the settings file; set it on the settings page", "err", err)
	}
	how := "setup code"
	if code == "" {
		how = "button A"
	}
	s.log.Info("web admin set up", "addr", addr, "proof", how)
	s.startSession(w)
	http.Redirect(w, r, "/admin/", http.StatusSeeOther)
}

// checkDisplayName returns what is wrong with a box name, "" if nothing.
func checkDisplayName(n string) string {
	switch {
	case n == "":
		return "give the box a name"
	case utf8.RuneCountInString(n) > 64:
		return "at most 64 characters"
	case !utf8.ValidString(n) || strings.IndexFunc(n, unicode.IsControl) >= 0:
		return "letters, digits, spaces and punctuation only"
	}
	return ""
}

func (s *Server) startSession(w http.ResponseWriter) {
	id, _ := s.auth.newSession()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.cfg.HTTPS, MaxAge: int(sessionTTL / time.Second)})
	http.SetCookie(w, &http.Cookie{Name: formCookie, Value: "", Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.cfg.HTTPS, MaxAge: -1})
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		if _, ok := s.auth.session(c.Value); ok {
			http.Redirect(w, r, "/admin/", http.StatusSeeOther)
			return
		}
	}
	s.renderLogin(w, r, http.StatusOK, map[string]string{})
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, errs map[string]string) {
	tok := s.auth.newSetupLoad(false, s.formBrowser(w, r))
	s.render(w, status, "login", &page{Title: "Log in", CSRF: tok, Errors: errs})
}

func (s *Server) loginPost(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	if _, _, ok := s.formTokenOK(r); !ok {
		http.Error(w, "forbidden: the form's security token is missing or stale; reload the page", http.StatusForbidden)
		return
	}
	addr := remoteAddr(r)
	if !s.auth.allowed(addr) {
		s.log.Warn("web admin login refused: too many failures", "addr", addr)
		s.renderLogin(w, r, http.StatusTooManyRequests, map[string]string{"password": "too many failed logins from your address; wait a minute"})
		return
	}
	pw := r.PostFormValue("password")
	if pw == "" {
		s.renderLogin(w, r, http.StatusBadRequest, map[string]string{"password": "give the admin password"})
		return
	}
	if len(pw) > 1024 || !s.auth.checkPassword(pw) {
		s.auth.failed(addr)
		s.log.Warn("web admin login failed", "addr", addr)
		s.renderLogin(w, r, http.StatusUnauthorized, map[string]string{"password": "wrong password"})
		return
	}
	s.log.Info("web admin login", "addr", addr)
	s.startSession(w)
	http.Redirect(w, r, "/admin/", http.StatusSeeOther)
}

func (s *Server) logoutPost(w http.ResponseWriter, r *http.Request, _ *page) {
	if c, err := r.Cookie(cookieName); err == nil {
		s.auth.endSession(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.cfg.HTTPS, MaxAge: -1})
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
}
