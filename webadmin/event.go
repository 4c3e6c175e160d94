package webadmin

import (
	"html/template"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"chatbox/services/chat"
)

// The Event page (issue 11, event mode for LAN parties): the switch, the
// welcome and the guests' rooms (saved to the settings file through
// SaveSettings, so they take effect at the next start, with a "Restart
// now" button), closing and re-opening guest access and ending the event
// (live, on the core), and a printable poster. JSON API: /api/v1/event
// (README).

type eventData struct {
	Running      bool // event mode in the running box
	GuestsClosed bool
	Enabled      bool // as saved
	Welcome      string
	Rooms        string // "general, games"
	Saved        bool   // just saved: offer a restart
	Guests       []chat.GuestInfo
}

func (s *Server) eventRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/event", s.admin(s.eventPage))
	mux.HandleFunc("POST /admin/event", s.admin(s.eventSave))
	mux.HandleFunc("POST /admin/event/close", s.admin(s.eventClose))
	mux.HandleFunc("POST /admin/event/open", s.admin(s.eventOpen))
	mux.HandleFunc("POST /admin/event/end", s.admin(s.eventEnd))
	mux.HandleFunc("GET /admin/event/poster", s.admin(s.eventPoster))
	mux.HandleFunc("/api/v1/event", s.api(map[string]http.HandlerFunc{"GET": s.apiEvent, "POST": s.apiEventSave}))
	mux.HandleFunc("/api/v1/event/close-guests", s.api(map[string]http.HandlerFunc{"POST": s.apiEventClose}))
	mux.HandleFunc("/api/v1/event/open-guests", s.api(map[string]http.HandlerFunc{"POST": s.apiEventOpen}))
	mux.HandleFunc("/api/v1/event/end", s.api(map[string]http.HandlerFunc{"POST": s.apiEventEnd}))
	s.moderationRoutes(mux) // moderation.go
}

// savedEvent reads the event's settings as saved (the next start's).
func (s *Server) savedEvent() (enabled bool, welcome string, rooms []string, err error) {
	_, list, err := s.box.Settings()
	if err != nil {
		return false, "", nil, err
	}
	for _, st := range list {
		switch st.Key {
		case "event.enabled":
			enabled = st.Value == "true"
		case "event.welcome":
			welcome = st.Value
		case "event.rooms":
			rooms = parseRoomList(st.Value)
		}
	}
	return enabled, welcome, rooms, nil
}

// parseRoomList reads rooms as the settings show them (["a", "b"]) or as
// people type them ("#a, b c").
func parseRoomList(v string) []string {
	v = strings.TrimSpace(v)
	v = strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' }) {
		f = strings.TrimPrefix(strings.Trim(f, `"'`), "#")
		if f != "" {
			out = append(out, strings.ToLower(f))
		}
	}
	return out
}

// eventValues checks the form's rooms and welcome and turns them into
// settings values; errs maps a field to what is wrong.
func eventValues(enabled bool, welcome string, rooms []string) (map[string]string, map[string]string) {
	errs := map[string]string{}
	if len(rooms) == 0 {
		errs["rooms"] = "name at least one room guests may join"
	}
	quoted := make([]string, 0, len(rooms))
	for _, r := range rooms {
		if err := chat.ValidName(r); err != nil {
			errs["rooms"] = r + ": " + err.Error()
			break
		}
		quoted = append(quoted, `"`+r+`"`)
	}
	if len(welcome) > 2000 {
		errs["welcome"] = "at most 2000 bytes, got " + strconv.Itoa(len(welcome))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return map[string]string{
		"event.enabled": strconv.FormatBool(enabled),
		"event.welcome": welcome,
		"event.rooms":   "[" + strings.Join(quoted, ", ") + "]",
	}, nil
}

func (s *Server) renderEvent(w http.ResponseWriter, r *http.Request, p *page, status int) {
	enabled, welcome, rooms, err := s.savedEvent()
	if err != nil {
		s.serverError(w, "event", err)
		return
	}
	core := s.box.Core()
	d := eventData{Running: core.Event().Enabled, GuestsClosed: core.GuestsClosed(), Enabled: enabled,
		Welcome: welcome, Rooms: strings.Join(rooms, ", "), Saved: r.URL.Query().Get("done") == "saved", Guests: core.Guests()}
	if v, ok := p.Form["welcome"]; ok {
		d.Welcome = v
	}
	if v, ok := p.Form["rooms"]; ok {
		d.Rooms = v
	}
	if _, ok := p.Form["rooms"]; ok {
		d.Enabled = p.Form["enabled"] == "on"
	}
	p.Title, p.Section, p.Data = "Event", "event", d
	s.render(w, status, "event", p)
}

func (s *Server) eventPage(w http.ResponseWriter, r *http.Request, p *page) {
	switch r.URL.Query().Get("done") {
	case "saved":
		p.Flash = "Event settings saved. They take effect at the next start: restart the box."
	case "closed":
		p.Flash = "Guest access is closed: every guest was disconnected and new guests are refused."
	case "opened":
		p.Flash = "Guest access is open again."
	case "kicked":
		p.Flash = "The guest was kicked from " + r.URL.Query().Get("n") + " room(s)."
	case "wiped":
		p.Flash = "The guest's messages were deleted from every history (" + r.URL.Query().Get("n") + "). Those already shown them keep seeing them, except XMPP apps that honour retractions."
	case "ended":
		p.Flash = "The event has ended: guests were disconnected and their messages deleted (" + r.URL.Query().Get("n") + "). Turn event mode off below when you are done."
	}
	s.renderEvent(w, r, p, http.StatusOK)
}

func (s *Server) eventSave(w http.ResponseWriter, r *http.Request, p *page) {
	welcome, roomsText := r.PostForm.Get("welcome"), r.PostForm.Get("rooms")
	p.Form["welcome"], p.Form["rooms"], p.Form["enabled"] = welcome, roomsText, r.PostForm.Get("enabled")
	values, errs := eventValues(r.PostForm.Get("enabled") == "on", strings.ReplaceAll(welcome, "\r\n", "\n"), parseRoomList(roomsText))
	if len(errs) == 0 {
		errs = settingsErrors(s.box.SaveSettings(values))
	}
	if len(errs) > 0 {
		for k, v := range errs {
			p.Errors[k] = v
		}
		p.Problem = "Nothing was saved: see the marked fields."
		s.renderEvent(w, r, p, http.StatusBadRequest)
		return
	}
	s.log.Info("web admin: event settings saved", "enabled", values["event.enabled"])
	http.Redirect(w, r, "/admin/event?done=saved", http.StatusSeeOther)
}

// settingsErrors maps a SaveSettings refusal onto the event form's
// fields; nil if err is nil.
func settingsErrors(err error) map[string]string {
	if err == nil {
		return nil
	}
	out := map[string]string{}
	bad, ok := err.(SettingsError)
	if !ok {
		out["enabled"] = err.Error()
		return out
	}
	for k, v := range bad {
		switch k {
		case "event.welcome":
			out["welcome"] = v
		case "event.rooms":
			out["rooms"] = v
		default:
			out["enabled"] = strings.TrimSpace(k + " " + v)
		}
	}
	return out
}

func (s *Server) eventClose(w http.ResponseWriter, r *http.Request, p *page) {
	n := s.box.Core().CloseGuests("the box's owner closed guest access")
	s.log.Warn("web admin: guest access closed", "sessions", n, "addr", remoteAddr(r))
	http.Redirect(w, r, "/admin/event?done=closed", http.StatusSeeOther)
}

func (s *Server) eventOpen(w http.ResponseWriter, r *http.Request, p *page) {
	s.box.Core().OpenGuests()
	s.log.Info("web admin: guest access opened", "addr", remoteAddr(r))
	http.Redirect(w, r, "/admin/event?done=opened", http.StatusSeeOther)
}

func (s *Server) eventEnd(w http.ResponseWriter, r *http.Request, p *page) {
	if r.PostForm.Get("confirm") != "end" {
		p.Errors["confirm"] = `type "end" to confirm: guests' messages are deleted for good`
		p.Problem = "The event was not ended."
		s.renderEvent(w, r, p, http.StatusBadRequest)
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	n, err := s.box.Core().EndEvent(ctx)
	if err != nil {
		s.serverError(w, "end event", err)
		return
	}
	s.log.Warn("web admin: event ended", "messages_deleted", n, "addr", remoteAddr(r))
	http.Redirect(w, r, "/admin/event?done=ended&n="+strconv.FormatInt(n, 10)+"+messages", http.StatusSeeOther)
}

type posterData struct {
	ChatURL   string
	QR        template.HTML
	Domain    string
	GuestHost string
	XMPPPort  string
	Host      string // what IRC and XMPP apps connect to
	IRCTLS    string
	IRCPlain  string
	Rooms     []string
}

// eventPoster is a page to print: a QR code to the web chat at the
// address the admin used, and how to connect with apps.
func (s *Server) eventPoster(w http.ResponseWriter, r *http.Request, p *page) {
	_, _, rooms, err := s.savedEvent()
	if err != nil {
		s.serverError(w, "event poster", err)
		return
	}
	scheme := "http"
	if r.TLS != nil || s.cfg.HTTPS {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		host = s.cfg.Domain
	}
	bare := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		bare = h
	}
	irc := s.ircSettings(r, chat.AccountInvite{})
	local := irc.Host == "localhost" || strings.HasPrefix(irc.Host, "127.") || irc.Host == "::1"
	d := posterData{ChatURL: scheme + "://" + host + "/", Domain: s.cfg.Domain, GuestHost: "guest." + s.cfg.Domain,
		XMPPPort: reachablePort(s.cfg.XMPPListen, local), Host: bare, IRCTLS: irc.TLSPort, IRCPlain: irc.PlainPort, Rooms: rooms}
	d.QR = qrSVG(d.ChatURL)
	p.Title, p.Section, p.Data = "Poster", "poster", d
	s.render(w, http.StatusOK, "event_poster", p)
}

// The JSON API.

type apiEventBody struct {
	Running      bool     `json:"running"`
	GuestsClosed bool     `json:"guests_closed"`
	Enabled      bool     `json:"enabled"`
	Welcome      string   `json:"welcome"`
	Rooms        []string `json:"rooms"`
}

func (s *Server) apiEvent(w http.ResponseWriter, r *http.Request) {
	enabled, welcome, rooms, err := s.savedEvent()
	if err != nil {
		s.apiServerError(w, "event", err)
		return
	}
	core := s.box.Core()
	if rooms == nil {
		rooms = []string{}
	}
	writeJSON(w, http.StatusOK, apiEventBody{Running: core.Event().Enabled, GuestsClosed: core.GuestsClosed(),
		Enabled: enabled, Welcome: welcome, Rooms: rooms})
}

type apiEventSave struct {
	Enabled *bool     `json:"enabled"`
	Welcome *string   `json:"welcome"`
	Rooms   *[]string `json:"rooms"`
	Restart bool      `json:"restart"`
}

func (s *Server) apiEventSave(w http.ResponseWriter, r *http.Request) {
	var req apiEventSave
	if !decode(w, r, &req) {
		return
	}
	enabled, welcome, rooms, err := s.savedEvent()
	if err != nil {
		s.apiServerError(w, "event", err)
		return
	}
	if req.Enabled != nil {
		enabled = *req.Enabled
	}
	if req.Welcome != nil {
		welcome = *req.Welcome
	}
	if req.Rooms != nil {
		rooms = parseRoomList(strings.Join(*req.Rooms, ","))
	}
	values, errs := eventValues(enabled, welcome, rooms)
	if len(errs) == 0 {
		errs = settingsErrors(s.box.SaveSettings(values))
	}
	if len(errs) > 0 {
		keys := make([]string, 0, len(errs))
		for k := range errs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		fail(w, http.StatusBadRequest, keys[0], keys[0]+": "+errs[keys[0]])
		return
	}
	s.log.Info("web admin API: event settings saved", "enabled", enabled)
	if req.Restart {
		if err := s.box.Restart(); err != nil {
			s.apiServerError(w, "restart", err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"saved": true, "restarting": req.Restart})
}

func (s *Server) apiEventClose(w http.ResponseWriter, r *http.Request) {
	n := s.box.Core().CloseGuests("the box's owner closed guest access")
	s.log.Warn("web admin API: guest access closed", "sessions", n)
	writeJSON(w, http.StatusOK, map[string]any{"guests_closed": true, "disconnected": n})
}

func (s *Server) apiEventOpen(w http.ResponseWriter, r *http.Request) {
	s.box.Core().OpenGuests()
	writeJSON(w, http.StatusOK, map[string]any{"guests_closed": false})
}

func (s *Server) apiEventEnd(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	n, err := s.box.Core().EndEvent(ctx)
	if err != nil {
		s.apiServerError(w, "end event", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ended": true, "messages_deleted": n})
}
