package webadmin

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"chatbox/services/chat"
)

// Editing a room from the web admin (page and API): its topic and the
// settings an owner changes most (members-only, moderated, history sent
// on join). The box itself is the actor, as for an IRC operator's MODE
// or an XMPP owner's room configuration: occupants of both doors see
// the change as it happens.

// maxRoomHistory bounds the history sent on join, as the XMPP door's
// muc#roomconfig_historylength does.
const maxRoomHistory = 1000

// roomEdit is a checked edit; nil fields are left as they are.
type roomEdit struct {
	Topic       *string
	MembersOnly *bool
	Moderated   *bool
	MaxHistory  *int
}

// checkTopic says what is wrong with a topic ("" if nothing).
func checkTopic(topic string) string {
	switch {
	case !utf8.ValidString(topic):
		return "not valid UTF-8"
	case len(topic) > chat.MaxTopicBytes:
		return "at most " + strconv.Itoa(chat.MaxTopicBytes) + " bytes"
	case strings.ContainsAny(topic, "\r\n\x00"):
		return "one line, without control characters"
	}
	return ""
}

// checkHistory reads a history length; msg says what is wrong.
func checkHistory(v string) (n int, msg string) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 || n > maxRoomHistory {
		return 0, "a number of messages from 0 (the box's default) to " + strconv.Itoa(maxRoomHistory)
	}
	return n, ""
}

// applyRoomEdit changes the room: the topic (if it differs) and the
// settings, each through the core with the box as the actor.
func (s *Server) applyRoomEdit(ctx context.Context, name string, e roomEdit) error {
	core := s.box.Core()
	rm, _, err := core.RoomInfo(ctx, name)
	if err != nil {
		return err
	}
	if e.Topic != nil && *e.Topic != rm.Topic {
		if err := core.SetTopic(ctx, nil, name, *e.Topic); err != nil {
			return err
		}
	}
	if e.MembersOnly == nil && e.Moderated == nil && e.MaxHistory == nil {
		return nil
	}
	_, err = core.UpdateSettings(ctx, nil, name, func(st *chat.RoomSettings) error {
		if e.MembersOnly != nil {
			st.MembersOnly = *e.MembersOnly
		}
		if e.Moderated != nil {
			st.Moderated = *e.Moderated
		}
		if e.MaxHistory != nil {
			st.MaxHistory = *e.MaxHistory
		}
		return nil
	})
	return err
}

func noSuchRoom(err error) bool {
	return errors.Is(err, chat.ErrNotFound) || errors.Is(err, chat.ErrNoSuchRoom)
}

type roomEditData struct {
	Room     roomRow
	Settings chat.RoomSettings
	Domain   string
}

func (s *Server) renderRoomEdit(w http.ResponseWriter, r *http.Request, p *page, name string, status int) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	rm, _, err := s.box.Core().RoomInfo(ctx, name)
	if noSuchRoom(err) {
		p.Problem = "name: no such room"
		s.renderRooms(w, r, p, http.StatusNotFound)
		return
	}
	if err != nil {
		s.serverError(w, "room", err)
		return
	}
	if _, ok := p.Form["topic"]; !ok {
		p.Form["topic"] = rm.Topic
		p.Form["history"] = strconv.Itoa(rm.Settings.MaxHistory)
	}
	p.Title, p.Section, p.Data = "Edit "+rm.Name, "rooms", roomEditData{Room: roomRow{Name: rm.Name, Topic: rm.Topic}, Settings: rm.Settings, Domain: s.cfg.Domain}
	s.render(w, status, "room_edit", p)
}

func (s *Server) roomEditPage(w http.ResponseWriter, r *http.Request, p *page) {
	name, msg := checkName(r.URL.Query().Get("name"))
	if msg != "" {
		p.Problem = "name: no such room"
		s.renderRooms(w, r, p, http.StatusNotFound)
		return
	}
	s.renderRoomEdit(w, r, p, name, http.StatusOK)
}

func (s *Server) roomEditPost(w http.ResponseWriter, r *http.Request, p *page) {
	name, msg := checkName(r.PostFormValue("name"))
	if msg != "" {
		p.Problem = "name: no such room (" + msg + ")"
		s.renderRooms(w, r, p, http.StatusBadRequest)
		return
	}
	topic := r.PostFormValue("topic")
	p.Form["topic"], p.Form["history"] = topic, r.PostFormValue("history")
	if m := checkTopic(topic); m != "" {
		p.Errors["topic"] = m
	}
	hist, m := checkHistory(r.PostFormValue("history"))
	if m != "" {
		p.Errors["history"] = m
	}
	if len(p.Errors) > 0 {
		s.renderRoomEdit(w, r, p, name, http.StatusBadRequest)
		return
	}
	membersOnly, moderated := r.PostFormValue("members_only") == "yes", r.PostFormValue("moderated") == "yes"
	ctx, cancel := reqCtx(r)
	defer cancel()
	err := s.applyRoomEdit(ctx, name, roomEdit{Topic: &topic, MembersOnly: &membersOnly, Moderated: &moderated, MaxHistory: &hist})
	switch {
	case err == nil:
		s.log.Info("web admin: room changed", "room", name)
		done(w, r, "/admin/rooms", "room-saved", name)
	case noSuchRoom(err):
		p.Problem = "name: no such room"
		s.renderRooms(w, r, p, http.StatusNotFound)
	default:
		s.serverError(w, "room edit", err)
	}
}

// apiRoomEdit: PATCH /api/v1/rooms/{name} with any of topic,
// members_only, moderated, max_history.
func (s *Server) apiRoomEdit(w http.ResponseWriter, r *http.Request) {
	name := pathName(w, r)
	if name == "" {
		return
	}
	var req struct {
		Topic       *string `json:"topic"`
		MembersOnly *bool   `json:"members_only"`
		Moderated   *bool   `json:"moderated"`
		MaxHistory  *int    `json:"max_history"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.Topic != nil {
		if m := checkTopic(*req.Topic); m != "" {
			fail(w, http.StatusBadRequest, "topic", m)
			return
		}
	}
	if req.MaxHistory != nil {
		if _, m := checkHistory(strconv.Itoa(*req.MaxHistory)); m != "" {
			fail(w, http.StatusBadRequest, "max_history", m)
			return
		}
	}
	ctx, cancel := reqCtx(r)
	defer cancel()
	err := s.applyRoomEdit(ctx, name, roomEdit{Topic: req.Topic, MembersOnly: req.MembersOnly, Moderated: req.Moderated, MaxHistory: req.MaxHistory})
	switch {
	case err == nil:
	case noSuchRoom(err):
		fail(w, http.StatusNotFound, "name", "no such room")
		return
	default:
		s.apiServerError(w, "room edit", err)
		return
	}
	s.log.Info("web admin API: room changed", "room", name)
	rm, _, err := s.box.Core().RoomInfo(ctx, name)
	if err != nil {
		s.apiServerError(w, "room", err)
		return
	}
	writeJSON(w, http.StatusOK, apiRoomSettings{Name: rm.Name, Topic: rm.Topic, MembersOnly: rm.Settings.MembersOnly,
		Moderated: rm.Settings.Moderated, MaxHistory: rm.Settings.MaxHistory})
}

type apiRoomSettings struct {
	Name        string `json:"name"`
	Topic       string `json:"topic"`
	MembersOnly bool   `json:"members_only"`
	Moderated   bool   `json:"moderated"`
	MaxHistory  int    `json:"max_history"`
}
