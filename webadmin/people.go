package webadmin

import (
	"context"
	"errors"
	"html/template"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"chatbox/services/chat"
)

type personRow struct {
	Name    string
	Admin   bool
	Created time.Time
	Doors   []doorCount
	Online  int
}

type inviteRow struct {
	Token   string
	URI     string
	QR      template.HTML
	Account string
	Uses    int
	Created time.Time
	Expires time.Time
}

type peopleData struct {
	People  []personRow
	Invites []inviteRow
	Pairing bool
	Domain  string
}

const nameRule = "1 to 30 characters a-z, 0-9, _ or -, starting with a letter"

// checkName folds a form's account or room name and checks it; msg says
// what is wrong with it, "" if nothing.
func checkName(raw string) (name, msg string) {
	name = chat.Fold(strings.TrimSpace(raw))
	if err := chat.ValidName(name); err != nil {
		return name, strings.TrimPrefix(err.Error(), chat.ErrBadName.Error()+": ")
	}
	return name, ""
}

func (s *Server) peopleRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/people", s.admin(s.peoplePage))
	mux.HandleFunc("POST /admin/people/create", s.admin(s.peopleCreate))
	mux.HandleFunc("GET /admin/people/edit", s.admin(s.personPage))
	mux.HandleFunc("POST /admin/people/password", s.admin(s.peoplePassword))
	mux.HandleFunc("POST /admin/people/admin", s.admin(s.peopleAdmin))
	mux.HandleFunc("GET /admin/people/delete", s.admin(s.peopleDeletePage))
	mux.HandleFunc("POST /admin/people/delete", s.admin(s.peopleDelete))
	mux.HandleFunc("POST /admin/people/invite", s.admin(s.inviteCreate))
	mux.HandleFunc("POST /admin/people/invite/revoke", s.admin(s.inviteRevoke))
	mux.HandleFunc("POST /admin/people/pairing", s.admin(s.pairingOpen))
}

func reqCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 15*time.Second)
}

// doorsOf counts an account's open sessions per door.
func doorsOf(refs []chat.SessionRef) ([]doorCount, int) {
	m := map[string]int{}
	for _, r := range refs {
		m[r.Door]++
	}
	var out []doorCount
	for d, n := range m {
		out = append(out, doorCount{d, n})
	}
	slices.SortFunc(out, func(a, b doorCount) int { return strings.Compare(a.Door, b.Door) })
	return out, len(refs)
}

func (s *Server) peopleData(ctx context.Context) (peopleData, error) {
	core := s.box.Core()
	d := peopleData{Pairing: s.box.PairingOpen(), Domain: s.cfg.Domain}
	accts, err := core.Accounts(ctx)
	if err != nil {
		return d, err
	}
	for _, a := range accts {
		doors, n := doorsOf(core.Sessions(a.Name))
		d.People = append(d.People, personRow{Name: a.Name, Admin: a.Admin, Created: a.Created, Doors: doors, Online: n})
	}
	invs, err := core.AccountInvites(ctx)
	if err != nil {
		return d, err
	}
	for _, inv := range invs {
		d.Invites = append(d.Invites, s.inviteRow(inv, false))
	}
	return d, nil
}

func (s *Server) inviteRow(inv chat.AccountInvite, withQR bool) inviteRow {
	row := inviteRow{Token: inv.Token, URI: s.cfg.InviteURI(inv), Account: inv.Account, Uses: inv.Uses, Created: inv.Created, Expires: inv.Expires}
	if withQR {
		row.QR = qrSVG(row.URI)
	}
	return row
}

// renderPeople shows the people page with status (and the form's errors).
func (s *Server) renderPeople(w http.ResponseWriter, r *http.Request, p *page, status int) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	d, err := s.peopleData(ctx)
	if err != nil {
		s.serverError(w, "people", err)
		return
	}
	p.Title, p.Section, p.Data = "People", "people", d
	s.render(w, status, "people", p)
}

func (s *Server) serverError(w http.ResponseWriter, what string, err error) {
	s.log.Error("web admin", "page", what, "err", err)
	http.Error(w, "internal error: "+err.Error(), http.StatusInternalServerError)
}

func (s *Server) peoplePage(w http.ResponseWriter, r *http.Request, p *page) {
	p.Flash = flashMessage(r.URL.Query().Get("done"), r.URL.Query().Get("name"))
	s.renderPeople(w, r, p, http.StatusOK)
}

// flashMessage turns a redirect's ?done=…&name=… into a sentence (from a
// fixed list, so a link cannot make the page say anything else).
func flashMessage(done, name string) string {
	if chat.ValidName(name) != nil {
		name = ""
	}
	switch done {
	case "created":
		return "Account " + name + " created."
	case "password":
		return "Password of " + name + " changed."
	case "admin":
		return name + " is now an admin of the box."
	case "unadmin":
		return name + " is no longer an admin of the box."
	case "deleted":
		return "Account " + name + " deleted."
	case "revoked":
		return "Invitation cancelled."
	case "pairing":
		return "Registration is open: anyone on the network may create an account until the window closes."
	case "room-created":
		return "Room " + name + " created."
	case "room-deleted":
		return "Room " + name + " deleted."
	case "room-saved":
		return "Room " + name + " saved."
	}
	return ""
}

func done(w http.ResponseWriter, r *http.Request, path, what, name string) {
	http.Redirect(w, r, path+"?done="+what+"&name="+name, http.StatusSeeOther)
}

// checkPassword returns what is wrong with a new account password.
func checkPassword(pw string) string {
	switch {
	case utf8.RuneCountInString(pw) < chat.MinPasswordLength:
		return "at least 8 characters"
	case len(pw) > 1024:
		return "at most 1024 bytes"
	}
	return ""
}

func (s *Server) peopleCreate(w http.ResponseWriter, r *http.Request, p *page) {
	name, msg := checkName(r.PostFormValue("name"))
	pw := r.PostFormValue("password")
	p.Form["name"] = name
	if msg != "" {
		p.Errors["name"] = msg
	}
	if msg := checkPassword(pw); msg != "" {
		p.Errors["password"] = msg
	}
	admin := r.PostFormValue("admin") == "yes"
	if len(p.Errors) == 0 {
		ctx, cancel := reqCtx(r)
		defer cancel()
		err := s.box.Core().CreateAccount(ctx, name, pw, admin)
		switch {
		case err == nil:
			s.log.Info("web admin: account created", "account", name, "admin", admin)
			done(w, r, "/admin/people", "created", name)
			return
		case errors.Is(err, chat.ErrExists):
			p.Errors["name"] = "that name is taken"
		case errors.Is(err, chat.ErrBadName):
			p.Errors["name"] = nameRule + " (and not a reserved name)"
		case errors.Is(err, chat.ErrWeakPassword):
			p.Errors["password"] = "not acceptable: " + err.Error()
		default:
			s.serverError(w, "people", err)
			return
		}
	}
	s.renderPeople(w, r, p, http.StatusBadRequest)
}

// personData is the page of one account.
type personData struct {
	Person personRow
}

func (s *Server) person(ctx context.Context, name string) (personRow, error) {
	name, msg := checkName(name)
	if msg != "" {
		return personRow{}, chat.ErrNotFound
	}
	core := s.box.Core()
	a, err := core.Account(ctx, name)
	if err != nil {
		return personRow{}, err
	}
	doors, n := doorsOf(core.Sessions(a.Name))
	return personRow{Name: a.Name, Admin: a.Admin, Created: a.Created, Doors: doors, Online: n}, nil
}

// renderPerson shows one account's page; a missing account is a 404.
func (s *Server) renderPerson(w http.ResponseWriter, r *http.Request, p *page, name string, status int, tmpl string) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	pr, err := s.person(ctx, name)
	if errors.Is(err, chat.ErrNotFound) {
		p.Problem = "name: no such account"
		s.renderPeople(w, r, p, http.StatusNotFound)
		return
	}
	if err != nil {
		s.serverError(w, "person", err)
		return
	}
	p.Title, p.Section, p.Data = pr.Name, "people", personData{Person: pr}
	s.render(w, status, tmpl, p)
}

func (s *Server) personPage(w http.ResponseWriter, r *http.Request, p *page) {
	s.renderPerson(w, r, p, r.URL.Query().Get("name"), http.StatusOK, "person")
}

// formAccount reads the form's account name; a bad or unknown one is
// answered (400 or 404) and "" returned.
func (s *Server) formAccount(w http.ResponseWriter, r *http.Request, p *page) string {
	name, msg := checkName(r.PostFormValue("name"))
	if msg != "" {
		p.Problem = "name: no such account (" + msg + ")"
		s.renderPeople(w, r, p, http.StatusBadRequest)
		return ""
	}
	return name
}

func (s *Server) peoplePassword(w http.ResponseWriter, r *http.Request, p *page) {
	name := s.formAccount(w, r, p)
	if name == "" {
		return
	}
	pw := r.PostFormValue("password")
	if msg := checkPassword(pw); msg != "" {
		p.Errors["password"] = msg
		s.renderPerson(w, r, p, name, http.StatusBadRequest, "person")
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	err := s.box.Core().SetPassword(ctx, name, pw)
	switch {
	case err == nil:
		s.log.Info("web admin: password changed", "account", name)
		done(w, r, "/admin/people", "password", name)
	case errors.Is(err, chat.ErrNotFound):
		p.Problem = "name: no such account"
		s.renderPeople(w, r, p, http.StatusNotFound)
	case errors.Is(err, chat.ErrWeakPassword):
		p.Errors["password"] = "not acceptable: " + err.Error()
		s.renderPerson(w, r, p, name, http.StatusBadRequest, "person")
	default:
		s.serverError(w, "password", err)
	}
}

func (s *Server) peopleAdmin(w http.ResponseWriter, r *http.Request, p *page) {
	name := s.formAccount(w, r, p)
	if name == "" {
		return
	}
	var admin bool
	switch r.PostFormValue("admin") {
	case "yes":
		admin = true
	case "no":
	default:
		p.Errors["admin"] = "yes or no"
		s.renderPerson(w, r, p, name, http.StatusBadRequest, "person")
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	err := s.box.Core().SetAdmin(ctx, name, admin)
	switch {
	case err == nil:
		s.log.Info("web admin: admin flag", "account", name, "admin", admin)
		what := "admin"
		if !admin {
			what = "unadmin"
		}
		done(w, r, "/admin/people", what, name)
	case errors.Is(err, chat.ErrNotFound):
		p.Problem = "name: no such account"
		s.renderPeople(w, r, p, http.StatusNotFound)
	default:
		s.serverError(w, "admin", err)
	}
}

func (s *Server) peopleDeletePage(w http.ResponseWriter, r *http.Request, p *page) {
	s.renderPerson(w, r, p, r.URL.Query().Get("name"), http.StatusOK, "person_delete")
}

func (s *Server) peopleDelete(w http.ResponseWriter, r *http.Request, p *page) {
	name := s.formAccount(w, r, p)
	if name == "" {
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		p.Errors["confirm"] = "tick the box to confirm"
		s.renderPerson(w, r, p, name, http.StatusBadRequest, "person_delete")
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	err := s.box.Core().DeleteAccount(ctx, name)
	switch {
	case err == nil:
		s.log.Info("web admin: account deleted", "account", name)
		done(w, r, "/admin/people", "deleted", name)
	case errors.Is(err, chat.ErrNotFound):
		p.Problem = "name: no such account"
		s.renderPeople(w, r, p, http.StatusNotFound)
	default:
		s.serverError(w, "delete", err)
	}
}

// inviteData is the page showing a new invitation.
type inviteData struct {
	Invite inviteRow
	IRC    ircSettings
}

// ircSettings is what an IRC user types to use an invitation: the box's
// address as the admin reached it, the IRC ports, and the NickServ
// command that redeems the token.
type ircSettings struct {
	Host      string
	TLSPort   string
	PlainPort string
	Nick      string
	Token     string
}

func (s *Server) ircSettings(r *http.Request, inv chat.AccountInvite) ircSettings {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "" {
		host = s.cfg.Domain
	}
	nick := inv.Account
	if nick == "" {
		nick = "yourname"
	}
	local := host == "localhost"
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		local = true
	}
	return ircSettings{Host: host, TLSPort: reachablePort(s.cfg.IRCTLSListen, local),
		PlainPort: reachablePort(s.cfg.IRCPlainListen, local), Nick: nick, Token: inv.Token}
}

// reachablePort is the port of the first listener that the invited
// person can reach: one on another address than loopback, or any when
// the admin page itself was reached on loopback. "" when none is.
func reachablePort(listen []string, local bool) string {
	for _, a := range listen {
		host, port, err := net.SplitHostPort(a)
		if err != nil || port == "0" {
			continue
		}
		ip, err := netip.ParseAddr(host)
		if !local && (host == "localhost" || err == nil && ip.IsLoopback()) {
			continue
		}
		return port
	}
	return ""
}

// checkInvite reads an invitation's uses, days and account ("" for the
// defaults); errs maps a field to what is wrong with it.
func checkInvite(uses, days, account string) (req chat.InviteRequest, errs map[string]string) {
	req = chat.InviteRequest{Uses: 1, TTL: chat.DefaultInviteTTL}
	errs = map[string]string{}
	if v := strings.TrimSpace(uses); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > chat.MaxInviteUses {
			errs["uses"] = "a number of accounts from 1 to " + strconv.Itoa(chat.MaxInviteUses)
		}
		req.Uses = n
	}
	maxDays := int(chat.MaxInviteTTL / (24 * time.Hour))
	if v := strings.TrimSpace(days); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxDays {
			errs["days"] = "a number of days from 1 to " + strconv.Itoa(maxDays)
		}
		req.TTL = time.Duration(n) * 24 * time.Hour
	}
	if v := strings.TrimSpace(account); v != "" {
		name, msg := checkName(v)
		if msg != "" {
			errs["account"] = msg + " (or empty for any name)"
		}
		req.Account = name
	}
	return req, errs
}

func (s *Server) inviteCreate(w http.ResponseWriter, r *http.Request, p *page) {
	req, errs := checkInvite(r.PostFormValue("uses"), r.PostFormValue("days"), r.PostFormValue("account"))
	for k, v := range errs {
		p.Errors[k] = v
	}
	for _, k := range []string{"uses", "days", "account"} {
		p.Form[k] = r.PostFormValue(k)
	}
	if len(p.Errors) > 0 {
		s.renderPeople(w, r, p, http.StatusBadRequest)
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	inv, err := s.box.Core().CreateAccountInvite(ctx, req)
	switch {
	case err == nil:
	case errors.Is(err, chat.ErrExists):
		p.Errors["account"] = "that name is taken already"
	case errors.Is(err, chat.ErrBadName):
		p.Errors["account"] = nameRule + " (and not a reserved name)"
	default:
		s.serverError(w, "invite", err)
		return
	}
	if len(p.Errors) > 0 {
		s.renderPeople(w, r, p, http.StatusBadRequest)
		return
	}
	s.log.Info("web admin: invitation created", "uses", inv.Uses, "expires", inv.Expires)
	p.Title, p.Section, p.Data = "Invitation", "people", inviteData{Invite: s.inviteRow(inv, true), IRC: s.ircSettings(r, inv)}
	s.render(w, http.StatusOK, "invite", p)
}

func (s *Server) inviteRevoke(w http.ResponseWriter, r *http.Request, p *page) {
	tok := r.PostFormValue("token")
	if tok == "" || len(tok) > 64 {
		p.Problem = "token: no such invitation"
		s.renderPeople(w, r, p, http.StatusBadRequest)
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	err := s.box.Core().RevokeAccountInvite(ctx, tok)
	switch {
	case err == nil:
		s.log.Info("web admin: invitation revoked")
		done(w, r, "/admin/people", "revoked", "")
	case errors.Is(err, chat.ErrNotFound):
		p.Problem = "token: no such invitation (used up, expired or cancelled)"
		s.renderPeople(w, r, p, http.StatusNotFound)
	default:
		s.serverError(w, "revoke", err)
	}
}

func (s *Server) pairingOpen(w http.ResponseWriter, r *http.Request, p *page) {
	if err := s.box.OpenPairing(0); err != nil {
		p.Problem = "Could not open registration: " + err.Error()
		s.renderPeople(w, r, p, http.StatusConflict)
		return
	}
	s.log.Info("web admin: pairing window opened")
	done(w, r, "/admin/people", "pairing", "")
}
