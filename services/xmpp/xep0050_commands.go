package xmpp

import (
	"sync"
)

// XEP-0050 Ad-Hoc Commands, as much as the server's own commands need:
// the domain lists the commands the asker may run (disco#items of node
// http://jabber.org/protocol/commands, §2.2) and runs them (§3): a
// command answers its first execute either with its result (status
// completed) or with a data form (status executing, the one action
// "complete"), which the client then submits (execute or complete, with
// the sessionid) or cancels. A form submitted with the first execute is
// taken at once. A session lasts until it completes or is canceled; a
// resource keeps at most maxAdhocSessions (the oldest is dropped).
//
// The commands are listed in adhocCommands: XEP-0401's invitations
// (xep0401_invites.go). Left out: multi-stage navigation (prev/next),
// disco#info of a command node (§2.3), commands offered by clients
// (requests to full JIDs are routed to them as any IQ) and <note/>s.

const nsCommands = "http://jabber.org/protocol/commands"

// maxAdhocSessions bounds the command sessions one resource has open.
const maxAdhocSessions = 8

// adhocCommand is one command the server offers.
type adhocCommand struct {
	node, name string
	// may says whether the session's account may see and run it.
	may func(ss *session) bool
	// run runs the command: form is the submitted data form, nil on the
	// first execute of a command that asks for one.
	run func(ss *session, form *Element) adhocStep
}

// adhocStep is what a stage of a command answers: a form to fill (next
// is true) or the completed result (form may be nil), or an error.
type adhocStep struct {
	form *Element
	next bool
	// cond and text are a stanza error instead.
	cond, text string
}

func adhocError(cond, text string) adhocStep { return adhocStep{cond: cond, text: text} }

// adhocSessions are a resource's open command sessions: sessionid → node.
type adhocSessions struct {
	mu    sync.Mutex
	nodes map[string]string
	order []string
}

func adhocState(ss *session) *adhocSessions {
	return ss.state("xep0050", func() any { return &adhocSessions{nodes: map[string]string{}} }).(*adhocSessions)
}

func (a *adhocSessions) open(id, node string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.order) >= maxAdhocSessions {
		delete(a.nodes, a.order[0])
		a.order = a.order[1:]
	}
	a.nodes[id] = node
	a.order = append(a.order, id)
}

// take ends a session and returns its node ("" if there is none).
func (a *adhocSessions) take(id string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	node, ok := a.nodes[id]
	if !ok {
		return ""
	}
	delete(a.nodes, id)
	for i, o := range a.order {
		if o == id {
			a.order = append(a.order[:i], a.order[i+1:]...)
			break
		}
	}
	return node
}

func registerCommands(f *features, s *Server) {
	cmds := s.adhocCommands()
	byNode := map[string]*adhocCommand{}
	for i := range cmds {
		byNode[cmds[i].node] = &cmds[i]
	}
	f.serverFeatures = append(f.serverFeatures, nsCommands)
	f.serverIQ[nsCommands] = func(ss *session, iq *Element) { s.runCommand(ss, iq, byNode) }
	f.discoItems = append(f.discoItems, func(ss *session, account, node string) ([]*Element, bool) {
		if account != "" || node != nsCommands {
			return nil, false
		}
		var items []*Element
		for _, c := range cmds {
			if c.may(ss) {
				items = append(items, El(nsDiscoItems, "item", "jid", s.cfg.Domain, "node", c.node, "name", c.name))
			}
		}
		return items, true
	})
}

// adhocCommands are the commands the server offers, in the order they
// are listed.
func (s *Server) adhocCommands() []adhocCommand {
	return s.inviteCommands()
}

// commandError answers a command request with a stanza error and, if
// given, a XEP-0050 §4.6 specific condition.
func commandError(ss *session, iq *Element, cond, specific, text string) {
	var extra []*Element
	if specific != "" {
		extra = append(extra, El(nsCommands, specific))
	}
	r := stanzaErrorReply(iq, "", cond, text, extra...)
	r.Set("to", ss.full)
	ss.send(r)
}

// runCommand answers a command request (§3, §4).
func (s *Server) runCommand(ss *session, iq *Element, byNode map[string]*adhocCommand) {
	if iq.Get("type") != "set" {
		commandError(ss, iq, "bad-request", "", "commands are run with an IQ set")
		return
	}
	req := iq.First()
	if !req.Is(nsCommands, "command") {
		commandError(ss, iq, "bad-request", "", "the payload must be a <command/>")
		return
	}
	node := req.Get("node")
	cmd := byNode[node]
	if cmd == nil {
		commandError(ss, iq, "item-not-found", "", "this server has no command "+node+": list them with disco#items of node "+nsCommands)
		return
	}
	if !cmd.may(ss) {
		commandError(ss, iq, "forbidden", "", "you may not run "+node+" on this server")
		return
	}
	action := req.Get("action")
	switch action {
	case "", "execute", "complete", "next", "cancel":
	case "prev":
		commandError(ss, iq, "bad-request", "bad-action", "this command has no previous stage")
		return
	default:
		commandError(ss, iq, "bad-request", "malformed-action", "unknown action "+action)
		return
	}
	sessions := adhocState(ss)
	form := req.Child(nsXData, "x")
	if form != nil && form.Get("type") == "cancel" {
		action = "cancel"
	}
	id := req.Get("sessionid")
	if id != "" {
		if sessions.take(id) != node {
			commandError(ss, iq, "bad-request", "bad-sessionid", "no such command session: execute the command again")
			return
		}
	} else {
		id = randomID()
	}
	if action == "cancel" {
		ss.result(iq, El(nsCommands, "command", "node", node, "sessionid", id, "status", "canceled"))
		return
	}
	if form != nil && form.Get("type") != "submit" {
		commandError(ss, iq, "bad-request", "bad-payload", "submit the form with type submit")
		return
	}
	if form == nil && req.Get("sessionid") != "" {
		commandError(ss, iq, "bad-request", "bad-payload", "fill in the form and submit it")
		return
	}
	step := cmd.run(ss, form)
	if step.cond != "" {
		commandError(ss, iq, step.cond, "", step.text)
		return
	}
	out := El(nsCommands, "command", "node", node, "sessionid", id)
	if step.next {
		sessions.open(id, node)
		out.Set("status", "executing")
		out.Add(El(nsCommands, "actions", "execute", "complete").Add(El(nsCommands, "complete")))
	} else {
		out.Set("status", "completed")
	}
	ss.result(iq, out.Add(step.form))
}
