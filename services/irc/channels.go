package irc

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"chatbox/services/chat"
)

// JOIN, PART, TOPIC and NAMES (Modern IRC) on the core's rooms: #name is
// the room name. The JOIN burst itself (JOIN, topic, names) is written
// when the core's join delivery reaches the writer (deliver.go), so it
// comes in order with everything else in the channel.

var channelCommands = map[string]command{
	"JOIN":  {fn: handleJoin, minParams: 1},
	"PART":  {fn: handlePart, minParams: 1},
	"TOPIC": {fn: handleTopic, minParams: 1},
	"NAMES": {fn: handleNames},
}

func handleJoin(r *request) {
	c := r.c
	s := c.session()
	ctx := context.Background()
	if r.msg.Params[0] == "0" {
		for room := range s.RoomsOf() {
			c.srv.core.Part(ctx, s, room, "Left all channels")
		}
		return
	}
	channels := strings.Split(r.msg.Params[0], ",")
	var keys []string
	if len(r.msg.Params) > 1 {
		keys = strings.Split(r.msg.Params[1], ",")
	}
	joined := false
	defer func() {
		// The JOIN burst comes in order through the core's delivery,
		// unlabelled; an ACK would claim there was no reply at all.
		if joined && len(r.lines) == 0 {
			r.done = true
		}
	}()
	for i, ch := range channels {
		room := roomOf(ch)
		if room == "" || chat.ValidName(room) != nil {
			r.numeric(ERR_NOSUCHCHANNEL, ch, "No such channel: channel names are # and 1-30 of a-z 0-9 _ - starting with a letter")
			continue
		}
		key := ""
		if i < len(keys) {
			key = keys[i]
		}
		res, err := c.srv.core.Join(ctx, s, room, c.currentNick(), key)
		if err != nil {
			joinError(r, ch, err)
			continue
		}
		if res.Already {
			continue
		}
		joined = true
	}
}

// replayOnJoin is the recent lines a client that will not ask for them
// with CHATHISTORY gets after its JOIN burst. It runs on the writer, right
// after the burst the core queued under its lock: every line committed
// since is either in this replay or queued after it, and the live copies
// of replayed lines are skipped (c.replayed), so the history comes once,
// in order, before anything newer.
func (c *conn) replayOnJoin(room string, caps capSet) []ircmsg.Message {
	if c.srv.cfg.HistoryOnJoin <= 0 || caps.has("draft/chathistory") {
		return nil
	}
	s := c.session()
	if s == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hist, err := c.srv.core.History(ctx, s, chat.HistoryQuery{Room: room, Limit: c.srv.cfg.HistoryOnJoin, Last: true})
	if err != nil {
		c.srv.log.Warn("history on join", "room", room, "err", err)
		return nil
	}
	var out []ircmsg.Message
	for i := range hist {
		m := &hist[i]
		out = append(out, c.messageLines(m, c.source(m.From, ""), channelOf(room), caps)...)
	}
	if c.replayed == nil {
		c.replayed = map[string]int64{}
	}
	if n := len(hist); n > 0 {
		c.replayed[room] = hist[n-1].Seq
	}
	return out
}

func joinError(r *request, ch string, err error) {
	switch {
	case errors.Is(err, chat.ErrNoSuchRoom), errors.Is(err, chat.ErrRoomCreateDenied):
		r.numeric(ERR_NOSUCHCHANNEL, ch, "No such channel (only the box's owner creates rooms here)")
	case errors.Is(err, chat.ErrBanned):
		r.numeric(ERR_BANNEDFROMCHAN, ch, "Cannot join channel (+b)")
	case errors.Is(err, chat.ErrInviteOnly):
		r.numeric(ERR_INVITEONLYCHAN, ch, "Cannot join channel (+i)")
	case errors.Is(err, chat.ErrRoomKey):
		r.numeric(ERR_BADCHANNELKEY, ch, "Cannot join channel (+k)")
	case errors.Is(err, chat.ErrRoomFull):
		r.numeric(ERR_CHANNELISFULL, ch, "Cannot join channel (+l)")
	case errors.Is(err, chat.ErrTooManyRooms):
		r.numeric(ERR_TOOMANYCHANNELS, ch, "You have joined too many channels")
	case errors.Is(err, chat.ErrNickInUse), errors.Is(err, chat.ErrNickReserved):
		r.numeric(ERR_NICKNAMEINUSE, ch, "Your nick is taken in that room: "+err.Error())
	default:
		r.c.srv.log.Error("join", "channel", ch, "err", err)
		r.fail("JOIN_ERROR", "Could not join: "+err.Error(), ch)
	}
}

func handlePart(r *request) {
	c := r.c
	reason := ""
	if len(r.msg.Params) > 1 {
		reason = r.msg.Params[1]
	}
	for _, ch := range strings.Split(r.msg.Params[0], ",") {
		room := roomOf(ch)
		if room == "" {
			r.numeric(ERR_NOSUCHCHANNEL, ch, "No such channel")
			continue
		}
		if err := c.srv.core.Part(context.Background(), c.session(), room, reason); err != nil {
			r.numeric(ERR_NOTONCHANNEL, ch, "You're not on that channel")
		}
	}
}

func handleTopic(r *request) {
	c := r.c
	ch := r.msg.Params[0]
	room := roomOf(ch)
	ctx := context.Background()
	info, _, err := c.srv.core.RoomInfo(ctx, room)
	if room == "" || err != nil {
		r.numeric(ERR_NOSUCHCHANNEL, ch, "No such channel")
		return
	}
	if len(r.msg.Params) < 2 {
		_, in := c.session().RoomsOf()[room]
		if info.Settings.Hidden && !in {
			r.numeric(ERR_NOTONCHANNEL, ch, "You're not on that channel")
			return
		}
		if info.Topic == "" {
			r.numeric(RPL_NOTOPIC, channelOf(room), "No topic is set")
			return
		}
		r.numeric(RPL_TOPIC, channelOf(room), info.Topic)
		by := info.TopicBy
		if by == "" {
			by = c.srv.cfg.ServerName
		}
		r.numeric(RPL_TOPICWHOTIME, channelOf(room), by, strconv.FormatInt(info.TopicAt.Unix(), 10))
		return
	}
	topic := r.msg.Params[1]
	if len(topic) > 390 {
		r.numeric(ERR_INPUTTOOLONG, "Topic too long: at most 390 bytes")
		return
	}
	if err := c.srv.core.SetTopic(ctx, c.session(), room, topic); err != nil {
		switch {
		case errors.Is(err, chat.ErrNotInRoom):
			r.numeric(ERR_NOTONCHANNEL, ch, "You're not on that channel")
		case errors.Is(err, chat.ErrForbidden):
			r.numeric(ERR_CHANOPRIVSNEEDED, ch, "You're not channel operator")
		default:
			r.fail("TOPIC_ERROR", err.Error(), ch)
		}
	}
}

func handleNames(r *request) {
	c := r.c
	if len(r.msg.Params) == 0 {
		r.numeric(RPL_ENDOFNAMES, "*", "End of /NAMES list.")
		return
	}
	ch := strings.Split(r.msg.Params[0], ",")[0]
	room := roomOf(ch)
	info, occ, err := c.srv.core.RoomInfo(context.Background(), room)
	_, in := c.session().RoomsOf()[room]
	if room == "" || err != nil || (info.Settings.Hidden && !in) {
		r.numeric(RPL_ENDOFNAMES, ch, "End of /NAMES list.")
		return
	}
	for _, m := range c.namesLines(room, info.Settings, occ, c.capsCopy()) {
		r.send(m)
	}
}
