package xmpp

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"chatbox/services/chat"
)

// XEP-0045 Multi-User Chat, administration: the muc#admin protocol
// (kick, voice, moderator, affiliations: owner, admin, member, outcast,
// and their lists; §8-§10) and the muc#owner protocol (room configuration
// with the muc#roomconfig form, destruction; §10). Both act through the
// core, so an IRC KICK, +b, +m or TOPIC and their XMPP counterparts are
// the same act, and their permission rules are the core's (owners and
// admins of a room, and box admins); the configuration form is for the
// room's owners, as XEP-0045 says.

// isRoomOwner says whether the session's account owns the room (or is a
// box admin).
func (s *Server) isRoomOwner(ctx context.Context, ss *session, room string) (bool, error) {
	r, _, err := s.core.RoomInfo(ctx, room)
	if err != nil {
		return false, err
	}
	if r.Affiliations[ss.account] == chat.AffOwner {
		return true, nil
	}
	a, err := s.core.Account(ctx, ss.account)
	return err == nil && a.Admin, nil
}

// mucAdmin runs the muc#admin protocol.
func (s *Server) mucAdmin(ss *session, iq *Element, room string) {
	ctx, cancel := ss.ctx()
	defer cancel()
	q := iq.First()
	items := q.ChildrenNS(nsMUCAdmin)
	if len(items) == 0 {
		ss.replyErr(iq, "bad-request", "name at least one item")
		return
	}
	if iq.Get("type") == "get" {
		s.mucAdminList(ctx, ss, iq, room, items[0])
		return
	}
	r, occ, err := s.core.RoomInfo(ctx, room)
	if err != nil {
		ss.replyErr(iq, "item-not-found", "no room "+room+" here")
		return
	}
	for _, it := range items {
		reason := it.ChildText(nsMUCAdmin, "reason")
		switch {
		case it.Get("role") != "" && it.Get("nick") != "":
			role := chat.Role(it.Get("role"))
			switch role {
			case chat.RoleNone, chat.RoleVisitor, chat.RoleParticipant, chat.RoleModerator:
			default:
				ss.replyErr(iq, "bad-request", "unknown role "+string(role))
				return
			}
			nick := it.Get("nick")
			var target *chat.Occupant
			for i := range occ {
				if foldNick(occ[i].Nick) == foldNick(nick) {
					target = &occ[i]
				}
			}
			if target == nil {
				ss.replyErr(iq, "item-not-found", "nobody is called "+nick+" in that room")
				return
			}
			var err error
			switch role {
			case chat.RoleNone:
				err = s.core.Kick(ctx, ss.core, room, nick, reason)
			case chat.RoleParticipant:
				if target.Role == chat.RoleModerator {
					err = s.core.SetRole(ctx, ss.core, room, nick, chat.RoleParticipant, reason)
				} else {
					err = s.core.SetVoice(ctx, ss.core, room, nick, true)
				}
			case chat.RoleVisitor:
				if target.Role == chat.RoleModerator {
					err = s.core.SetRole(ctx, ss.core, room, nick, chat.RoleVisitor, reason)
				} else {
					err = s.core.SetVoice(ctx, ss.core, room, nick, false)
				}
			default:
				err = s.core.SetRole(ctx, ss.core, room, nick, role, reason)
			}
			if err != nil {
				ss.replyErr(iq, mucAdminCondition(err), err.Error())
				return
			}
		case it.Get("affiliation") != "" && it.Get("jid") != "":
			aff := chat.Affiliation(it.Get("affiliation"))
			if !aff.Valid() {
				ss.replyErr(iq, "bad-request", "unknown affiliation "+string(aff))
				return
			}
			a, err := parseJID(it.Get("jid"))
			if err == nil && a.Local != "" && strings.EqualFold(a.Domain, s.guestDomain()) { // xep0175_anonymous.go
				if err := s.mucGuestAffiliation(ctx, ss, room, a, aff, reason); err != nil {
					ss.replyErr(iq, mucAdminCondition(err), err.Error())
					return
				}
				continue
			}
			remote := err == nil && a.Local != "" && s.fed != nil && s.isRemote(a.Domain) // s2s: a remote user (xep0045_s2s_muc.go)
			if err != nil || (a.Domain != s.cfg.Domain && !remote) || a.Local == "" {
				ss.replyErr(iq, "not-acceptable", "affiliations name accounts of this server (name@"+s.cfg.Domain+") or, with federation, users of other servers")
				return
			}
			acct := chat.Fold(a.Local)
			if remote {
				acct = strings.ToLower(address{Local: a.Local, Domain: a.Domain}.Bare())
				a.Local = acct
			}
			was := r.Affiliations[acct]
			if err := s.core.SetAffiliation(ctx, ss.core, room, a.Local, aff, reason); err != nil {
				ss.replyErr(iq, mucAdminCondition(err), err.Error())
				return
			}
			// An outcast is IRC's +b on the account name, and the reverse:
			// both doors then show the same ban list.
			switch {
			case aff == chat.AffOutcast:
				if err := s.core.AddMask(ctx, ss.core, room, chat.ListBan, acct, reason); err != nil && !errors.Is(err, chat.ErrExists) {
					s.log.Warn("ban mask for an outcast", "room", room, "account", a.Local, "err", err)
				}
			case was == chat.AffOutcast || hasBanMask(r, acct):
				for _, m := range r.Masks {
					if m.List != chat.ListBan || (maskAccount(m.Mask) != acct && !strings.EqualFold(m.Mask, acct)) {
						continue
					}
					if err := s.core.RemoveMask(ctx, ss.core, room, chat.ListBan, m.Mask); err != nil && !errors.Is(err, chat.ErrNotFound) {
						s.log.Warn("lift the ban mask of a former outcast", "room", room, "account", a.Local, "err", err)
					}
				}
			}
		default:
			ss.replyErr(iq, "bad-request", "an item needs nick and role, or jid and affiliation")
			return
		}
	}
	ss.result(iq, nil)
}

// hasBanMask says whether the room bans account by name (IRC +b).
func hasBanMask(r chat.Room, account string) bool {
	for _, m := range r.Masks {
		if m.List == chat.ListBan && maskAccount(m.Mask) == account {
			return true
		}
	}
	return false
}

// maskAccount is the account a ban mask names outright ("bob", or IRC's
// completed "bob!*@*"), or "".
func maskAccount(mask string) string {
	name := chat.Fold(strings.TrimSuffix(mask, "!*@*"))
	if chat.ValidName(name) != nil {
		return ""
	}
	return name
}

func mucAdminCondition(err error) string {
	if errors.Is(err, chat.ErrForbidden) {
		return "not-allowed"
	}
	return mucCondition(err)
}

// mucAdminList answers a list request by affiliation or role (§9.5,
// §8.5): moderators and admins may read them.
func (s *Server) mucAdminList(ctx context.Context, ss *session, iq *Element, room string, it *Element) {
	r, occ, err := s.core.RoomInfo(ctx, room)
	if err != nil {
		ss.replyErr(iq, "item-not-found", "no room "+room+" here")
		return
	}
	mine := r.Affiliations[ss.account]
	moderator := false
	for _, o := range occ {
		if o.Account == ss.account && o.Role == chat.RoleModerator {
			moderator = true
		}
	}
	if a, err := s.core.Account(ctx, ss.account); err == nil && a.Admin {
		moderator = true
	}
	if !moderator && mine != chat.AffOwner && mine != chat.AffAdmin {
		ss.replyErr(iq, "forbidden", "only moderators may list a room's affiliations and roles")
		return
	}
	res := El(nsMUCAdmin, "query")
	if aff := chat.Affiliation(it.Get("affiliation")); aff != "" {
		if !aff.Valid() || aff == chat.AffNone {
			ss.replyErr(iq, "bad-request", "ask for owner, admin, member or outcast")
			return
		}
		listed := map[string]bool{}
		for acct, a := range r.Affiliations {
			if a == aff {
				listed[acct] = true
				res.Add(El(nsMUCAdmin, "item", "affiliation", string(a), "jid", s.accountJID(acct)))
			}
		}
		if aff == chat.AffOutcast {
			// IRC bans of a plain account name are outcasts too.
			for _, m := range r.Masks {
				acct := maskAccount(m.Mask)
				if m.List == chat.ListBan && acct != "" && !listed[acct] {
					listed[acct] = true
					item := El(nsMUCAdmin, "item", "affiliation", "outcast", "jid", acct+"@"+s.cfg.Domain)
					if m.Reason != "" {
						item.Add(El(nsMUCAdmin, "reason").Add(m.Reason))
					}
					res.Add(item)
				}
			}
		}
		ss.result(iq, res)
		return
	}
	role := chat.Role(it.Get("role"))
	for _, o := range occ {
		if orRole(o.Role) == role {
			item := El(nsMUCAdmin, "item", "role", string(role), "nick", o.Nick, "affiliation", string(orNone(o.Affiliation)))
			if !chat.IsGuest(o.Account) {
				item.Set("jid", s.accountJID(o.Account))
			}
			res.Add(item)
		}
	}
	ss.result(iq, res)
}

// mucOwner runs the muc#owner protocol: configuration and destruction.
func (s *Server) mucOwner(ss *session, iq *Element, room string) {
	ctx, cancel := ss.ctx()
	defer cancel()
	owner, err := s.isRoomOwner(ctx, ss, room)
	if err != nil {
		ss.replyErr(iq, "item-not-found", "no room "+room+" here")
		return
	}
	if !owner {
		ss.replyErr(iq, "forbidden", "only the room's owners may configure or destroy it")
		return
	}
	q := iq.First()
	if d := q.Child(nsMUCOwner, "destroy"); d != nil && iq.Get("type") == "set" {
		if err := s.core.DestroyRoom(ctx, ss.core, room, d.ChildText(nsMUCOwner, "reason")); err != nil {
			ss.replyErr(iq, mucAdminCondition(err), err.Error())
			return
		}
		ss.result(iq, nil)
		return
	}
	if iq.Get("type") == "get" {
		r, _, err := s.core.RoomInfo(ctx, room)
		if err != nil {
			ss.replyErr(iq, "item-not-found", "")
			return
		}
		ss.result(iq, El(nsMUCOwner, "query").Add(roomConfigForm(r)))
		return
	}
	x := q.Child(nsXData, "x")
	switch {
	case x == nil:
		ss.replyErr(iq, "bad-request", "send the muc#roomconfig form, or destroy")
	case x.Get("type") == "cancel":
		ss.result(iq, nil)
	case x.Get("type") == "submit":
		vals := xdataValues(x)
		if _, err := s.core.UpdateSettings(ctx, ss.core, room, func(st *chat.RoomSettings) error {
			return applyRoomConfig(st, vals)
		}); err != nil {
			var bad *configError
			if errors.As(err, &bad) {
				ss.replyErr(iq, "not-acceptable", bad.Error())
				return
			}
			ss.replyErr(iq, mucAdminCondition(err), err.Error())
			return
		}
		ss.result(iq, nil)
	default:
		ss.replyErr(iq, "bad-request", "the form must be of type submit or cancel")
	}
}

// roomConfigForm is the muc#roomconfig form (XEP-0045 §15.5.3) with the
// room's settings.
func roomConfigForm(r chat.Room) *Element {
	st := r.Settings
	max := "none"
	if st.MaxUsers > 0 {
		max = strconv.Itoa(st.MaxUsers)
	}
	maxField := xdataField("muc#roomconfig_maxusers", "list-single", "Maximum occupants", max)
	for _, o := range []string{"10", "20", "30", "50", "100", "none"} {
		maxField.Add(El(nsXData, "option", "label", o).Add(El(nsXData, "value").Add(o)))
	}
	whois := xdataField("muc#roomconfig_whois", "list-single", "Who may see occupants' addresses", "anyone")
	whois.Add(El(nsXData, "option", "label", "Anyone").Add(El(nsXData, "value").Add("anyone")))
	return xdataForm("form", "http://jabber.org/protocol/muc#roomconfig", "Configuration of "+r.Name,
		xdataField("muc#roomconfig_roomname", "text-single", "Name", r.Name),
		xdataField("muc#roomconfig_roomdesc", "text-single", "Description", st.Description),
		xdataField("muc#roomconfig_persistentroom", "boolean", "Keep the room when everyone leaves", boolValue(st.Persistent)),
		xdataField("muc#roomconfig_publicroom", "boolean", "List the room publicly", boolValue(!st.Hidden)),
		xdataField("muc#roomconfig_membersonly", "boolean", "Members only", boolValue(st.MembersOnly)),
		xdataField("muc#roomconfig_moderatedroom", "boolean", "Only occupants with voice may speak", boolValue(st.Moderated)),
		xdataField("muc#roomconfig_passwordprotectedroom", "boolean", "Password protected", boolValue(st.Password != "")),
		xdataField("muc#roomconfig_roomsecret", "text-private", "Password", st.Password),
		maxField,
		xdataField("muc#roomconfig_changesubject", "boolean", "Occupants may change the subject", boolValue(!st.TopicLocked)),
		xdataField("muc#roomconfig_allowinvites", "boolean", "Occupants may invite others", boolValue(st.AnyoneInvite)),
		xdataField("muc#roomconfig_historylength", "text-single", "Messages sent on join (0: the box's default)", strconv.Itoa(st.MaxHistory)),
		xdataField("muc#roomconfig_enablelogging", "boolean", "History is kept", "1"),
		whois)
}

// configError is a configuration value the room cannot take.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

// applyRoomConfig applies a submitted muc#roomconfig form; fields not
// sent keep their value.
func applyRoomConfig(st *chat.RoomSettings, v map[string][]string) error {
	has := func(k string) bool { _, ok := v[k]; return ok }
	one := func(k string) string {
		if len(v[k]) == 0 {
			return ""
		}
		return v[k][0]
	}
	if has("muc#roomconfig_roomdesc") {
		st.Description = one("muc#roomconfig_roomdesc")
	}
	if has("muc#roomconfig_persistentroom") {
		st.Persistent = xdataBool(v["muc#roomconfig_persistentroom"])
	}
	if has("muc#roomconfig_publicroom") {
		st.Hidden = !xdataBool(v["muc#roomconfig_publicroom"])
	}
	if has("muc#roomconfig_membersonly") {
		st.MembersOnly = xdataBool(v["muc#roomconfig_membersonly"])
	}
	if has("muc#roomconfig_moderatedroom") {
		st.Moderated = xdataBool(v["muc#roomconfig_moderatedroom"])
	}
	if has("muc#roomconfig_roomsecret") {
		st.Password = one("muc#roomconfig_roomsecret")
	}
	if has("muc#roomconfig_passwordprotectedroom") && !xdataBool(v["muc#roomconfig_passwordprotectedroom"]) {
		st.Password = ""
	}
	if has("muc#roomconfig_maxusers") {
		switch m := one("muc#roomconfig_maxusers"); m {
		case "", "none", "0":
			st.MaxUsers = 0
		default:
			n, err := strconv.Atoi(m)
			if err != nil || n < 0 {
				return &configError{"muc#roomconfig_maxusers must be a number or none"}
			}
			st.MaxUsers = n
		}
	}
	if has("muc#roomconfig_changesubject") {
		st.TopicLocked = !xdataBool(v["muc#roomconfig_changesubject"])
	}
	if has("muc#roomconfig_allowinvites") {
		st.AnyoneInvite = xdataBool(v["muc#roomconfig_allowinvites"])
	}
	if has("muc#roomconfig_historylength") {
		n, err := strconv.Atoi(one("muc#roomconfig_historylength"))
		if err != nil || n < 0 || n > 1000 {
			return &configError{"muc#roomconfig_historylength must be a number from 0 to 1000"}
		}
		st.MaxHistory = n
	}
	if has("muc#roomconfig_whois") && one("muc#roomconfig_whois") != "anyone" {
		return &configError{"rooms here show occupants' addresses to everyone (as IRC does); muc#roomconfig_whois can only be anyone"}
	}
	return nil
}
