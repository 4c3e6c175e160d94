package webadmin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"chatbox/services/chat"
)

// TokensFile holds the API tokens' SHA-256 hashes (never the tokens), mode
// 0600, in the data directory.
const TokensFile = "webadmin-tokens.json"

const (
	maxTokens   = 32
	tokenPrefix = "cbx_"
)

// apiToken is one API token as stored.
type apiToken struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	SHA256  string    `json:"sha256"` // hex of the token's hash
	Created time.Time `json:"created"`
}

// tokenStore keeps the API tokens, hashed, in TokensFile.
type tokenStore struct {
	path string
	mu   sync.Mutex
	list []apiToken
}

func newTokenStore(dir string) *tokenStore {
	ts := &tokenStore{path: filepath.Join(dir, TokensFile)}
	if b, err := os.ReadFile(ts.path); err == nil {
		json.Unmarshal(b, &ts.list)
	}
	return ts
}

func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

func (ts *tokenStore) save(list []apiToken) error {
	if list == nil {
		list = []apiToken{}
	}
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(ts.path, 0o600, b)
}

// create makes a token named name; it returns the token, shown once.
func (ts *tokenStore) create(name string, now time.Time) (string, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.list) >= maxTokens {
		return "", fmt.Errorf("at most %d tokens; revoke one first", maxTokens)
	}
	tok := tokenPrefix + randomToken()
	t := apiToken{ID: hex.EncodeToString(randomBytes(6)), Name: name, SHA256: hashToken(tok), Created: now.UTC()}
	list := append(slices.Clone(ts.list), t)
	if err := ts.save(list); err != nil {
		return "", err
	}
	ts.list = list
	return tok, nil
}

// revoke removes the token with id; false if there is none.
func (ts *tokenStore) revoke(id string) (bool, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	i := slices.IndexFunc(ts.list, func(t apiToken) bool { return t.ID == id })
	if i < 0 {
		return false, nil
	}
	list := slices.Delete(slices.Clone(ts.list), i, i+1)
	if err := ts.save(list); err != nil {
		return false, err
	}
	ts.list = list
	return true, nil
}

// valid reports whether tok is a live token (comparing every hash in
// constant time).
func (ts *tokenStore) valid(tok string) bool {
	if !strings.HasPrefix(tok, tokenPrefix) || len(tok) > 128 {
		return false
	}
	h := []byte(hashToken(tok))
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ok := 0
	for _, t := range ts.list {
		ok |= subtle.ConstantTimeCompare(h, []byte(t.SHA256))
	}
	return ok == 1
}

func (ts *tokenStore) all() []apiToken {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return slices.Clone(ts.list)
}

// checkTokenName returns what is wrong with a token's label, "" if
// nothing.
func checkTokenName(n string) string {
	switch {
	case n == "":
		return "give the token a name (what uses it)"
	case utf8.RuneCountInString(n) > 64:
		return "at most 64 characters"
	case !utf8.ValidString(n) || strings.IndexFunc(n, unicode.IsControl) >= 0:
		return "letters, digits, spaces and punctuation only"
	}
	return ""
}

// The API tokens page.

type tokensData struct {
	Tokens []apiToken
	New    string // the token just made, shown once
}

func (s *Server) tokenRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/tokens", s.admin(s.tokensPage))
	mux.HandleFunc("POST /admin/tokens/create", s.admin(s.tokenCreate))
	mux.HandleFunc("POST /admin/tokens/revoke", s.admin(s.tokenRevoke))
	s.apiRoutes(mux)
	mux.HandleFunc("/metrics", s.metrics)
}

func (s *Server) renderTokens(w http.ResponseWriter, p *page, status int, fresh string) {
	p.Title, p.Section, p.Data = "API tokens", "tokens", tokensData{Tokens: s.tokens.all(), New: fresh}
	s.render(w, status, "tokens", p)
}

func (s *Server) tokensPage(w http.ResponseWriter, r *http.Request, p *page) {
	if r.URL.Query().Get("done") == "revoked" {
		p.Flash = "API token revoked."
	}
	s.renderTokens(w, p, http.StatusOK, "")
}

func (s *Server) tokenCreate(w http.ResponseWriter, r *http.Request, p *page) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	p.Form["name"] = name
	if msg := checkTokenName(name); msg != "" {
		p.Errors["name"] = msg
		s.renderTokens(w, p, http.StatusBadRequest, "")
		return
	}
	tok, err := s.tokens.create(name, s.cfg.Now())
	if err != nil {
		p.Errors["name"] = err.Error()
		s.renderTokens(w, p, http.StatusConflict, "")
		return
	}
	s.log.Info("web admin: API token created", "name", name)
	p.Form = map[string]string{}
	s.renderTokens(w, p, http.StatusOK, tok)
}

func (s *Server) tokenRevoke(w http.ResponseWriter, r *http.Request, p *page) {
	ok, err := s.tokens.revoke(r.PostFormValue("id"))
	if err != nil {
		s.serverError(w, "tokens", err)
		return
	}
	if !ok {
		p.Problem = "id: no such token"
		s.renderTokens(w, p, http.StatusNotFound, "")
		return
	}
	s.log.Info("web admin: API token revoked")
	http.Redirect(w, r, "/admin/tokens?done=revoked", http.StatusSeeOther)
}

// The JSON API.

// apiError is the API's error body.
type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		json.NewEncoder(w).Encode(v)
	}
}

func fail(w http.ResponseWriter, status int, field, msg string) {
	writeJSON(w, status, apiError{Error: msg, Field: field})
}

// bearer returns the request's bearer token, "" if none.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return ""
	}
	return strings.TrimSpace(h[7:])
}

// api requires a valid API token (a session cookie is not enough: the API
// has no CSRF token) and dispatches on the method.
func (s *Server) api(methods map[string]http.HandlerFunc) http.HandlerFunc {
	var allow []string
	for m := range methods {
		allow = append(allow, m)
	}
	slices.Sort(allow)
	return func(w http.ResponseWriter, r *http.Request) {
		tok := bearer(r)
		if tok == "" || !s.tokens.valid(tok) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="chatbox"`)
			msg := "give an API token: Authorization: Bearer <token>"
			if tok != "" {
				msg = "unknown or revoked API token"
				s.log.Warn("web admin API: bad token", "addr", remoteAddr(r))
			}
			fail(w, http.StatusUnauthorized, "", msg)
			return
		}
		h, ok := methods[r.Method]
		if !ok {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			fail(w, http.StatusMethodNotAllowed, "", r.Method+" not allowed here; use "+strings.Join(allow, " or "))
			return
		}
		h(w, r)
	}
}

// decode reads a JSON body into v: 415 if it is not JSON, 413 if too big,
// 400 naming the field if malformed. It reports whether v was read.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		fail(w, http.StatusUnsupportedMediaType, "", "send JSON (Content-Type: application/json)")
		return false
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	} else if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("more than one JSON value")
		}
	}
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		fail(w, http.StatusRequestEntityTooLarge, "", "the body is over 64 KiB")
	case errors.As(err, &typeErr):
		fail(w, http.StatusBadRequest, typeErr.Field, typeErr.Field+": want a "+typeErr.Type.String())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		fail(w, http.StatusBadRequest, f, f+": unknown field")
	default:
		fail(w, http.StatusBadRequest, "", "bad JSON: "+err.Error())
	}
	return false
}

func (s *Server) apiRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/api/v1/status", s.api(map[string]http.HandlerFunc{"GET": s.apiStatus}))
	mux.HandleFunc("/api/v1/accounts", s.api(map[string]http.HandlerFunc{"GET": s.apiAccounts, "POST": s.apiAccountCreate}))
	mux.HandleFunc("/api/v1/accounts/{name}", s.api(map[string]http.HandlerFunc{"DELETE": s.apiAccountDelete}))
	mux.HandleFunc("/api/v1/accounts/{name}/password", s.api(map[string]http.HandlerFunc{"POST": s.apiAccountPassword}))
	mux.HandleFunc("/api/v1/accounts/{name}/admin", s.api(map[string]http.HandlerFunc{"POST": s.apiAccountAdmin}))
	mux.HandleFunc("/api/v1/rooms", s.api(map[string]http.HandlerFunc{"GET": s.apiRooms, "POST": s.apiRoomCreate}))
	mux.HandleFunc("/api/v1/rooms/{name}", s.api(map[string]http.HandlerFunc{"DELETE": s.apiRoomDelete, "PATCH": s.apiRoomEdit}))
	mux.HandleFunc("/api/v1/invites", s.api(map[string]http.HandlerFunc{"GET": s.apiInvites, "POST": s.apiInviteCreate}))
	mux.HandleFunc("/api/v1/invites/{token}", s.api(map[string]http.HandlerFunc{"DELETE": s.apiInviteRevoke}))
	mux.HandleFunc("/api/v1/pairing", s.api(map[string]http.HandlerFunc{"POST": s.apiPairing}))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		fail(w, http.StatusNotFound, "", "no such API path")
	})
}

func (s *Server) apiServerError(w http.ResponseWriter, what string, err error) {
	s.log.Error("web admin API", "call", what, "err", err)
	fail(w, http.StatusInternalServerError, "", "internal error")
}

type apiStatusBody struct {
	State         string         `json:"state"`
	UptimeSeconds int64          `json:"uptime_seconds"`
	Version       string         `json:"version"`
	Domain        string         `json:"domain"`
	Pairing       bool           `json:"pairing"`
	Sessions      map[string]int `json:"sessions"`
	Accounts      int            `json:"accounts"`
	Rooms         int            `json:"rooms"`
}

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	core := s.box.Core()
	accts, err := core.Accounts(ctx)
	if err != nil {
		s.apiServerError(w, "status", err)
		return
	}
	rooms, err := core.Rooms(ctx)
	if err != nil {
		s.apiServerError(w, "status", err)
		return
	}
	writeJSON(w, http.StatusOK, apiStatusBody{State: s.box.State(), UptimeSeconds: int64(s.box.Uptime() / time.Second),
		Version: s.cfg.Version, Domain: s.cfg.Domain, Pairing: s.box.PairingOpen(),
		Sessions: core.SessionCount(), Accounts: len(accts), Rooms: len(rooms)})
}

type apiAccount struct {
	Name     string         `json:"name"`
	Admin    bool           `json:"admin"`
	Created  time.Time      `json:"created"`
	Sessions map[string]int `json:"sessions"`
}

func doorMap(refs []chat.SessionRef) map[string]int {
	m := map[string]int{}
	for _, r := range refs {
		m[r.Door]++
	}
	return m
}

func (s *Server) apiAccounts(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	core := s.box.Core()
	accts, err := core.Accounts(ctx)
	if err != nil {
		s.apiServerError(w, "accounts", err)
		return
	}
	out := []apiAccount{}
	for _, a := range accts {
		out = append(out, apiAccount{Name: a.Name, Admin: a.Admin, Created: a.Created, Sessions: doorMap(core.Sessions(a.Name))})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiAccountCreate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name     string `json:"name"`
		Password string `json:"password"`
		Admin    bool   `json:"admin"`
	}
	if !decode(w, r, &req) {
		return
	}
	name, msg := checkName(req.Name)
	if msg != "" {
		fail(w, http.StatusBadRequest, "name", msg)
		return
	}
	if msg := checkPassword(req.Password); msg != "" {
		fail(w, http.StatusBadRequest, "password", msg)
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	err := s.box.Core().CreateAccount(ctx, name, req.Password, req.Admin)
	switch {
	case err == nil:
		s.log.Info("web admin API: account created", "account", name, "admin", req.Admin)
		writeJSON(w, http.StatusCreated, apiAccount{Name: name, Admin: req.Admin, Created: s.cfg.Now().UTC(), Sessions: map[string]int{}})
	case errors.Is(err, chat.ErrExists):
		fail(w, http.StatusConflict, "name", "that name is taken")
	case errors.Is(err, chat.ErrBadName):
		fail(w, http.StatusBadRequest, "name", nameRule+" (and not a reserved name)")
	case errors.Is(err, chat.ErrWeakPassword):
		fail(w, http.StatusBadRequest, "password", "not acceptable: "+err.Error())
	default:
		s.apiServerError(w, "account create", err)
	}
}

// pathName reads the path's account or room name; a bad one is answered
// (400) and "" returned.
func pathName(w http.ResponseWriter, r *http.Request) string {
	name, msg := checkName(r.PathValue("name"))
	if msg != "" {
		fail(w, http.StatusBadRequest, "name", msg)
		return ""
	}
	return name
}

// accountResult answers a change to an account.
func (s *Server) accountResult(w http.ResponseWriter, what, name string, err error) {
	switch {
	case err == nil:
		s.log.Info("web admin API: "+what, "account", name)
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, chat.ErrNotFound):
		fail(w, http.StatusNotFound, "name", "no such account")
	case errors.Is(err, chat.ErrWeakPassword):
		fail(w, http.StatusBadRequest, "password", "not acceptable: "+err.Error())
	default:
		s.apiServerError(w, what, err)
	}
}

func (s *Server) apiAccountPassword(w http.ResponseWriter, r *http.Request) {
	name := pathName(w, r)
	if name == "" {
		return
	}
	var req struct {
		Password string `json:"password"`
	}
	if !decode(w, r, &req) {
		return
	}
	if msg := checkPassword(req.Password); msg != "" {
		fail(w, http.StatusBadRequest, "password", msg)
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	s.accountResult(w, "password changed", name, s.box.Core().SetPassword(ctx, name, req.Password))
}

func (s *Server) apiAccountAdmin(w http.ResponseWriter, r *http.Request) {
	name := pathName(w, r)
	if name == "" {
		return
	}
	var req struct {
		Admin *bool `json:"admin"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.Admin == nil {
		fail(w, http.StatusBadRequest, "admin", "give admin: true or false")
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	s.accountResult(w, "admin flag set", name, s.box.Core().SetAdmin(ctx, name, *req.Admin))
}

func (s *Server) apiAccountDelete(w http.ResponseWriter, r *http.Request) {
	name := pathName(w, r)
	if name == "" {
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	s.accountResult(w, "account deleted", name, s.box.Core().DeleteAccount(ctx, name))
}

type apiOccupant struct {
	Nick     string         `json:"nick"`
	Account  string         `json:"account"`
	Sessions map[string]int `json:"sessions"`
}

type apiRoom struct {
	Name      string        `json:"name"`
	Topic     string        `json:"topic"`
	Occupants []apiOccupant `json:"occupants"`
}

func (s *Server) apiRooms(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	core := s.box.Core()
	rooms, err := core.Rooms(ctx)
	if err != nil {
		s.apiServerError(w, "rooms", err)
		return
	}
	out := []apiRoom{}
	for _, rm := range rooms {
		row := apiRoom{Name: rm.Name, Topic: rm.Topic, Occupants: []apiOccupant{}}
		if _, occs, err := core.RoomInfo(ctx, rm.Name); err == nil {
			for _, o := range occs {
				row.Occupants = append(row.Occupants, apiOccupant{Nick: o.Nick, Account: o.Account, Sessions: doorMap(o.Sessions)})
			}
			slices.SortFunc(row.Occupants, func(a, b apiOccupant) int { return strings.Compare(a.Nick, b.Nick) })
		}
		out = append(out, row)
	}
	slices.SortFunc(out, func(a, b apiRoom) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiRoomCreate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if !decode(w, r, &req) {
		return
	}
	name, msg := checkName(req.Name)
	if msg != "" {
		fail(w, http.StatusBadRequest, "name", msg)
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	err := s.box.Core().CreateRoom(ctx, name, "", chat.DefaultRoomSettings())
	switch {
	case err == nil:
		s.log.Info("web admin API: room created", "room", name)
		writeJSON(w, http.StatusCreated, apiRoom{Name: name, Occupants: []apiOccupant{}})
	case errors.Is(err, chat.ErrExists):
		fail(w, http.StatusConflict, "name", "a room with that name exists")
	case errors.Is(err, chat.ErrBadName):
		fail(w, http.StatusBadRequest, "name", nameRule+" (and not a reserved name)")
	default:
		s.apiServerError(w, "room create", err)
	}
}

func (s *Server) apiRoomDelete(w http.ResponseWriter, r *http.Request) {
	name := pathName(w, r)
	if name == "" {
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	err := s.box.Core().DestroyRoom(ctx, nil, name, "deleted by the box's admin")
	switch {
	case err == nil:
		s.log.Info("web admin API: room deleted", "room", name)
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, chat.ErrNotFound), errors.Is(err, chat.ErrNoSuchRoom):
		fail(w, http.StatusNotFound, "name", "no such room")
	default:
		s.apiServerError(w, "room delete", err)
	}
}

type apiInvite struct {
	Token   string    `json:"token"`
	URI     string    `json:"uri"`
	Account string    `json:"account"`
	Uses    int       `json:"uses"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

func (s *Server) apiInviteOf(inv chat.AccountInvite) apiInvite {
	return apiInvite{Token: inv.Token, URI: s.cfg.InviteURI(inv), Account: inv.Account, Uses: inv.Uses, Created: inv.Created, Expires: inv.Expires}
}

func (s *Server) apiInvites(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	invs, err := s.box.Core().AccountInvites(ctx)
	if err != nil {
		s.apiServerError(w, "invites", err)
		return
	}
	out := []apiInvite{}
	for _, inv := range invs {
		out = append(out, s.apiInviteOf(inv))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiInviteCreate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Uses    int    `json:"uses"`
		Days    int    `json:"days"`
		Account string `json:"account"`
	}
	if !decode(w, r, &req) {
		return
	}
	itoa := func(n int) string {
		if n == 0 {
			return ""
		}
		return strconv.Itoa(n)
	}
	ir, errs := checkInvite(itoa(req.Uses), itoa(req.Days), req.Account)
	for _, f := range []string{"uses", "days", "account"} {
		if msg, ok := errs[f]; ok {
			fail(w, http.StatusBadRequest, f, msg)
			return
		}
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	inv, err := s.box.Core().CreateAccountInvite(ctx, ir)
	switch {
	case err == nil:
		s.log.Info("web admin API: invitation created", "uses", inv.Uses, "expires", inv.Expires)
		writeJSON(w, http.StatusCreated, s.apiInviteOf(inv))
	case errors.Is(err, chat.ErrExists):
		fail(w, http.StatusConflict, "account", "that name is taken already")
	case errors.Is(err, chat.ErrBadName):
		fail(w, http.StatusBadRequest, "account", nameRule+" (and not a reserved name)")
	default:
		s.apiServerError(w, "invite create", err)
	}
}

func (s *Server) apiInviteRevoke(w http.ResponseWriter, r *http.Request) {
	tok := r.PathValue("token")
	if tok == "" || len(tok) > 64 {
		fail(w, http.StatusBadRequest, "token", "no such invitation")
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	err := s.box.Core().RevokeAccountInvite(ctx, tok)
	switch {
	case err == nil:
		s.log.Info("web admin API: invitation revoked")
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, chat.ErrNotFound):
		fail(w, http.StatusNotFound, "token", "no such invitation (used up, expired or cancelled)")
	default:
		s.apiServerError(w, "invite revoke", err)
	}
}

func (s *Server) apiPairing(w http.ResponseWriter, r *http.Request) {
	if err := s.box.OpenPairing(0); err != nil {
		fail(w, http.StatusConflict, "", "could not open registration: "+err.Error())
		return
	}
	s.log.Info("web admin API: pairing window opened")
	writeJSON(w, http.StatusOK, map[string]bool{"pairing": true})
}
