package webadmin

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"chatbox/services/chat"
)

type occupantRow struct {
	Nick    string
	Account string
	Doors   []doorCount
}

type roomRow struct {
	Name      string
	Topic     string
	Occupants []occupantRow
	Locked    bool // moderation.go
}

type roomsData struct {
	Rooms  []roomRow
	Domain string
}

func (s *Server) roomRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/rooms", s.admin(s.roomsPage))
	mux.HandleFunc("POST /admin/rooms/create", s.admin(s.roomCreate))
	mux.HandleFunc("GET /admin/rooms/edit", s.admin(s.roomEditPage))
	mux.HandleFunc("POST /admin/rooms/edit", s.admin(s.roomEditPost))
	mux.HandleFunc("GET /admin/rooms/delete", s.admin(s.roomDeletePage))
	mux.HandleFunc("POST /admin/rooms/delete", s.admin(s.roomDelete))
}

func (s *Server) renderRooms(w http.ResponseWriter, r *http.Request, p *page, status int) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	core := s.box.Core()
	rooms, err := core.Rooms(ctx)
	if err != nil {
		s.serverError(w, "rooms", err)
		return
	}
	d := roomsData{Domain: s.cfg.Domain}
	for _, rm := range rooms {
		row := roomRow{Name: rm.Name, Topic: rm.Topic, Locked: rm.Settings.Locked}
		if _, occs, err := core.RoomInfo(ctx, rm.Name); err == nil {
			for _, o := range occs {
				doors, _ := doorsOf(o.Sessions)
				row.Occupants = append(row.Occupants, occupantRow{Nick: o.Nick, Account: o.Account, Doors: doors})
			}
			slices.SortFunc(row.Occupants, func(a, b occupantRow) int { return strings.Compare(a.Nick, b.Nick) })
		}
		d.Rooms = append(d.Rooms, row)
	}
	slices.SortFunc(d.Rooms, func(a, b roomRow) int { return strings.Compare(a.Name, b.Name) })
	p.Title, p.Section, p.Data = "Rooms", "rooms", d
	s.render(w, status, "rooms", p)
}

func (s *Server) roomsPage(w http.ResponseWriter, r *http.Request, p *page) {
	p.Flash = flashMessage(r.URL.Query().Get("done"), r.URL.Query().Get("name"))
	s.renderRooms(w, r, p, http.StatusOK)
}

func (s *Server) roomCreate(w http.ResponseWriter, r *http.Request, p *page) {
	name, msg := checkName(r.PostFormValue("name"))
	p.Form["name"] = name
	if msg != "" {
		p.Errors["name"] = msg
		s.renderRooms(w, r, p, http.StatusBadRequest)
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	err := s.box.Core().CreateRoom(ctx, name, "", chat.DefaultRoomSettings())
	switch {
	case err == nil:
		s.log.Info("web admin: room created", "room", name)
		done(w, r, "/admin/rooms", "room-created", name)
		return
	case errors.Is(err, chat.ErrExists):
		p.Errors["name"] = "a room with that name exists"
	case errors.Is(err, chat.ErrBadName):
		p.Errors["name"] = nameRule + " (and not a reserved name)"
	default:
		s.serverError(w, "rooms", err)
		return
	}
	s.renderRooms(w, r, p, http.StatusBadRequest)
}

type roomDeleteData struct {
	Room   roomRow
	Domain string
}

// renderRoomDelete shows the confirmation page for deleting a room.
func (s *Server) renderRoomDelete(w http.ResponseWriter, r *http.Request, p *page, name string, status int) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	name, msg := checkName(name)
	if msg != "" {
		p.Problem = "name: no such room"
		s.renderRooms(w, r, p, http.StatusNotFound)
		return
	}
	rm, occs, err := s.box.Core().RoomInfo(ctx, name)
	if errors.Is(err, chat.ErrNotFound) || errors.Is(err, chat.ErrNoSuchRoom) {
		p.Problem = "name: no such room"
		s.renderRooms(w, r, p, http.StatusNotFound)
		return
	}
	if err != nil {
		s.serverError(w, "room", err)
		return
	}
	row := roomRow{Name: rm.Name, Topic: rm.Topic}
	for _, o := range occs {
		doors, _ := doorsOf(o.Sessions)
		row.Occupants = append(row.Occupants, occupantRow{Nick: o.Nick, Account: o.Account, Doors: doors})
	}
	p.Title, p.Section, p.Data = "Delete "+rm.Name, "rooms", roomDeleteData{Room: row, Domain: s.cfg.Domain}
	s.render(w, status, "room_delete", p)
}

func (s *Server) roomDeletePage(w http.ResponseWriter, r *http.Request, p *page) {
	s.renderRoomDelete(w, r, p, r.URL.Query().Get("name"), http.StatusOK)
}

func (s *Server) roomDelete(w http.ResponseWriter, r *http.Request, p *page) {
	name, msg := checkName(r.PostFormValue("name"))
	if msg != "" {
		p.Problem = "name: no such room (" + msg + ")"
		s.renderRooms(w, r, p, http.StatusBadRequest)
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		p.Errors["confirm"] = "tick the box to confirm"
		s.renderRoomDelete(w, r, p, name, http.StatusBadRequest)
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	err := s.box.Core().DestroyRoom(ctx, nil, name, "deleted by the box's admin")
	switch {
	case err == nil:
		s.log.Info("web admin: room deleted", "room", name)
		done(w, r, "/admin/rooms", "room-deleted", name)
	case errors.Is(err, chat.ErrNotFound), errors.Is(err, chat.ErrNoSuchRoom):
		p.Problem = "name: no such room"
		s.renderRooms(w, r, p, http.StatusNotFound)
	default:
		s.serverError(w, "room delete", err)
	}
}
