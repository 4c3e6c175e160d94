package chat

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Event mode (issue 11: LAN parties): guests are let in on both doors,
// confined to the event's rooms, greeted by a welcome when they join one,
// held to a tighter rate limit than accounts; the owner can close guest
// access at once (every guest session ends, new guests are refused) and
// end the event (guests' messages are wiped from history). How long
// history is kept while the event runs is the appliance's periodic sweep
// (PruneHistory). Not in the core: the switch itself, which is a setting
// read at start.

// EventOptions set event mode (Options.Event).
type EventOptions struct {
	Enabled bool
	// Welcome is shown to a guest when it joins an event room (the doors
	// render it: an IRC NOTICE from the server to the channel, an XMPP
	// groupchat message from the room's bare JID after the subject).
	// Empty: no welcome.
	Welcome string
	// Rooms are the only rooms guests may join (folded names); empty:
	// every room a guest could join without event mode.
	Rooms []string
	// GuestMessagesPerMinute bounds what one guest sends (sustained);
	// 0: the accounts' limit. The burst is a quarter of it, at least 1.
	GuestMessagesPerMinute int
}

// ErrGuestsClosed refuses a guest while guest access is closed.
var ErrGuestsClosed = errors.New("guest access is closed")

// eventState is the live part of event mode, under Core.mu.
type eventState struct {
	closed   bool                              // CloseGuests called and not re-opened
	endHooks []func(ctx context.Context) error // OnEventEnd
}

// OnEventEnd adds what else EndEvent removes, outside the core (the
// appliance: files guests shared). Hooks run in order after the guests'
// messages are deleted; the first error ends EndEvent with it.
func (c *Core) OnEventEnd(hook func(ctx context.Context) error) {
	c.mu.Lock()
	c.event.endHooks = append(c.event.endHooks, hook)
	c.mu.Unlock()
}

func normalizeEvent(e EventOptions) EventOptions {
	rooms := make([]string, 0, len(e.Rooms))
	for _, r := range e.Rooms {
		if f := Fold(roomOfName(r)); f != "" && !slices.Contains(rooms, f) {
			rooms = append(rooms, f)
		}
	}
	e.Rooms = rooms
	return e
}

// roomOfName drops an IRC channel's '#', so "#general" and "general"
// name the same room in settings.
func roomOfName(s string) string {
	if len(s) > 0 && s[0] == '#' {
		return s[1:]
	}
	return s
}

// Event returns event mode's settings.
func (c *Core) Event() EventOptions {
	e := c.opts.Event
	e.Rooms = slices.Clone(e.Rooms)
	return e
}

// GuestsClosed reports whether guest access is closed (CloseGuests).
func (c *Core) GuestsClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.event.closed
}

// CloseGuests ends every guest session (the doors disconnect them with
// reason) and refuses new guests until OpenGuests. It returns how many
// sessions it ended.
func (c *Core) CloseGuests(reason string) int {
	if reason == "" {
		reason = "guest access is closed"
	}
	c.mu.Lock()
	c.event.closed = true
	n := 0
	for _, s := range c.sessions {
		if s.info.Guest && !s.closed {
			s.sink.Deliver(Delivery{Kind: DelDisconnect, Reason: reason})
			n++
		}
	}
	c.mu.Unlock()
	c.saveGuestsClosed(true)
	c.publish(Event{Type: EventGuestsClosed})
	c.log.Info("guest access closed", "sessions", n)
	return n
}

// OpenGuests lets guests in again after CloseGuests. Both are saved in
// the store (StateStore), so a restart keeps guest access as it was.
func (c *Core) OpenGuests() {
	c.mu.Lock()
	c.event.closed = false
	c.mu.Unlock()
	c.saveGuestsClosed(false)
	c.publish(Event{Type: EventGuestsOpened})
	c.log.Info("guest access open")
}

// EndEvent ends the event: guest access closes (as CloseGuests) and every
// message a guest wrote is deleted from history. Guests have no stored
// account, vCard or private data (the core refuses them those), so their
// messages and their room affiliations (bans of guests) are all there is
// to remove. It returns how many messages it deleted.
func (c *Core) EndEvent(ctx context.Context) (int64, error) {
	c.CloseGuests("the event has ended")
	w, ok := c.store.(GuestMessageWiper)
	if !ok {
		return 0, errors.New("end event: this store cannot delete guests' messages")
	}
	n, err := w.DeleteMessagesFromPrefix(ctx, GuestPrefix)
	if err != nil {
		return 0, fmt.Errorf("end event: delete guests' messages: %w", err)
	}
	bans, err := c.forgetGuestAffiliations(ctx)
	if err != nil {
		return n, fmt.Errorf("end event: delete guests' room affiliations: %w", err)
	}
	c.mu.Lock()
	hooks := slices.Clone(c.event.endHooks)
	c.mu.Unlock()
	for _, h := range hooks {
		if err := h(ctx); err != nil {
			return n, fmt.Errorf("end event: %w", err)
		}
	}
	c.log.Info("event ended", "guest_messages_deleted", n, "guest_affiliations_deleted", bans)
	return n, nil
}

// GuestMessageWiper is a store that can delete every message written by
// accounts whose name starts with a prefix (GuestPrefix). The SQLite store
// implements it.
type GuestMessageWiper interface {
	DeleteMessagesFromPrefix(ctx context.Context, prefix string) (int64, error)
}

// eventAllowsJoin refuses a guest an event room list does not name, and
// a newcomer to a locked room (lock.go).
func (c *Core) eventAllowsJoin(ctx context.Context, s *Session, room string) error {
	if err := c.lockAllowsJoin(ctx, s, room); err != nil {
		return err
	}
	e := c.opts.Event
	if !e.Enabled || !s.info.Guest || len(e.Rooms) == 0 || slices.Contains(e.Rooms, room) {
		return nil
	}
	return fmt.Errorf("%w: guests may join only the event's rooms (%s)", ErrForbidden, roomList(e.Rooms))
}

func roomList(rooms []string) string {
	out := ""
	for i, r := range rooms {
		if i > 0 {
			out += ", "
		}
		out += "#" + r
	}
	return out
}

// eventWelcome is the welcome a session gets on joining room.
func (c *Core) eventWelcome(s *Session, room string) string {
	e := c.opts.Event
	if !e.Enabled || !s.info.Guest || e.Welcome == "" {
		return ""
	}
	if len(e.Rooms) > 0 && !slices.Contains(e.Rooms, room) {
		return ""
	}
	return e.Welcome
}

// guestAllowed applies the event's guest rate limit.
func (c *Core) guestAllowed(s *Session) bool {
	if c.guestLimit == nil || !s.info.Guest {
		return true
	}
	return c.guestLimit.Allow(s.info.Account)
}
