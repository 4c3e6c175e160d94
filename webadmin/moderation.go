package webadmin

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"chatbox/services/chat"
)

// Moderation for events (issue 11): lock a room (rooms page, with the
// room's other buttons), and kick or wipe one guest (the event page lists
// the guests online). JSON API: POST /api/v1/rooms/{name}/lock
// {"locked": bool}, GET /api/v1/event/guests, POST
// /api/v1/event/guests/{name}/kick and .../wipe (README).

func (s *Server) moderationRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /admin/rooms/lock", s.admin(s.roomLock))
	mux.HandleFunc("POST /admin/event/guests/kick", s.admin(s.guestKick))
	mux.HandleFunc("POST /admin/event/guests/wipe", s.admin(s.guestWipe))
	mux.HandleFunc("/api/v1/rooms/{name}/lock", s.api(map[string]http.HandlerFunc{"POST": s.apiRoomLock}))
	mux.HandleFunc("/api/v1/event/guests", s.api(map[string]http.HandlerFunc{"GET": s.apiGuests}))
	mux.HandleFunc("/api/v1/event/guests/{name}/kick", s.api(map[string]http.HandlerFunc{"POST": s.apiGuestKick}))
	mux.HandleFunc("/api/v1/event/guests/{name}/wipe", s.api(map[string]http.HandlerFunc{"POST": s.apiGuestWipe}))
}

func (s *Server) roomLock(w http.ResponseWriter, r *http.Request, p *page) {
	name := r.PostFormValue("name")
	locked := r.PostFormValue("locked") == "on"
	ctx, cancel := reqCtx(r)
	defer cancel()
	if err := s.box.Core().LockRoom(ctx, name, locked); err != nil {
		if errors.Is(err, chat.ErrNoSuchRoom) {
			http.Error(w, "No room "+name+": reload the rooms page.", http.StatusNotFound)
			return
		}
		s.serverError(w, "lock room", err)
		return
	}
	s.log.Warn("web admin: room lock", "room", name, "locked", locked, "addr", remoteAddr(r))
	http.Redirect(w, r, "/admin/rooms?done=room-saved&name="+url.QueryEscape(chat.Fold(name)), http.StatusSeeOther)
}

// guestName is the guest a form or URL names: its name, with or
// without the pseudo-account's prefix.
func guestName(v string) string {
	if chat.IsGuest(v) {
		return v
	}
	return chat.GuestPrefix + v
}

func (s *Server) guestKick(w http.ResponseWriter, r *http.Request, p *page) {
	acct := guestName(r.PostFormValue("guest"))
	ctx, cancel := reqCtx(r)
	defer cancel()
	n, err := s.box.Core().KickGuest(ctx, acct, "kicked by the box's admin")
	if err != nil && !errors.Is(err, chat.ErrNoSuchOccupant) {
		s.serverError(w, "kick guest", err)
		return
	}
	s.log.Warn("web admin: guest kicked", "guest", acct, "rooms", n, "addr", remoteAddr(r))
	http.Redirect(w, r, "/admin/event?done=kicked&n="+strconv.Itoa(n), http.StatusSeeOther)
}

func (s *Server) guestWipe(w http.ResponseWriter, r *http.Request, p *page) {
	acct := guestName(r.PostFormValue("guest"))
	ctx, cancel := reqCtx(r)
	defer cancel()
	n, err := s.box.Core().WipeGuest(ctx, acct, "removed by the box's admin")
	if err != nil {
		s.serverError(w, "wipe guest", err)
		return
	}
	s.log.Warn("web admin: guest's messages wiped", "guest", acct, "messages", n, "addr", remoteAddr(r))
	http.Redirect(w, r, "/admin/event?done=wiped&n="+strconv.Itoa(n), http.StatusSeeOther)
}

func (s *Server) apiRoomLock(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Locked *bool `json:"locked"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.Locked == nil {
		fail(w, http.StatusBadRequest, "locked", `give "locked": true or false`)
		return
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	name := r.PathValue("name")
	if err := s.box.Core().LockRoom(ctx, name, *req.Locked); err != nil {
		if errors.Is(err, chat.ErrNoSuchRoom) {
			fail(w, http.StatusNotFound, "name", "no room "+name)
			return
		}
		s.apiServerError(w, "lock room", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"room": chat.Fold(name), "locked": *req.Locked})
}

func (s *Server) apiGuests(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"guests": s.box.Core().Guests()})
}

func (s *Server) apiGuestKick(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	n, err := s.box.Core().KickGuest(ctx, guestName(r.PathValue("name")), "kicked by the box's admin")
	switch {
	case errors.Is(err, chat.ErrNoSuchOccupant), errors.Is(err, chat.ErrNotFound):
		fail(w, http.StatusNotFound, "name", err.Error())
	case err != nil:
		s.apiServerError(w, "kick guest", err)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"kicked_from_rooms": n})
	}
}

func (s *Server) apiGuestWipe(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	n, err := s.box.Core().WipeGuest(ctx, guestName(r.PathValue("name")), "removed by the box's admin")
	switch {
	case errors.Is(err, chat.ErrNotFound):
		fail(w, http.StatusNotFound, "name", err.Error())
	case err != nil:
		s.apiServerError(w, "wipe guest", err)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"messages_deleted": n})
	}
}
