package xmpp

import "chatbox/services/chat"

// This file is the registry of protocol features. Each feature lives in
// its own file (named for its RFC or XEP) and registers, in buildFeatures,
// the IQ payloads it answers and the disco#info features it adds; the
// stream and routing code only dispatch.

// iqHandler answers one IQ (type get or set). It must send a result or
// an error to the session (ss.result / ss.replyErr).
type iqHandler func(ss *session, iq *Element)

// features holds what the feature files registered.
type features struct {
	// serverIQ answers IQs addressed to the domain, by payload namespace.
	serverIQ map[string]iqHandler
	// accountIQ answers IQs addressed to an account's bare JID (its own
	// or another's: check ss.account against the to address), by payload
	// namespace; they run on behalf of the account.
	accountIQ map[string]iqHandler
	// serverFeatures and accountFeatures are the disco#info vars of the
	// domain and of an account's bare JID; identities likewise.
	serverFeatures  []string
	accountFeatures []string
	// preAuthFeatures and boundFeatures add stream features before SASL
	// and after it (XEP-0077 register, XEP-0198 sm, XEP-0352 csi...).
	preAuthFeatures []func(*conn) *Element
	boundFeatures   []func(*conn) *Element
	// preAuthIQs answer IQs before authentication (XEP-0077), by payload
	// namespace; nonzas handles top-level elements of other namespaces
	// (XEP-0198, XEP-0352) at any stage after SASL, by namespace.
	preAuthIQs map[string]func(*conn, *Element)
	nonzas     map[string]func(*conn, *Element)
	// Hooks into a session's life.
	onBound           []func(*session)
	onInitialPresence []func(*session)
	onClosed          []func(*session)
	// outFilters see every stanza before it is sent to a client; false
	// drops it (XEP-0191 blocking, XEP-0352 CSI queueing). onWrite sees
	// what is written (XEP-0198 counting). onConnLost may keep a session
	// whose connection dropped (XEP-0198): true if it did.
	outFilters []func(ss *session, el *Element) bool
	onWrite    []func(ss *session, el *Element)
	// passRoom has one entry for each outFilter and onWrite: true when,
	// for that session now, it lets stanzas from room occupants through
	// unchanged and uncounted, so that a join's burst of presence may be
	// written as one block (sendBurst).
	passRoom   []func(ss *session) bool
	onConnLost []func(ss *session) bool
	// presenceHandlers see a presence stanza with a to address first
	// (subscriptions, probes); true means handled. presenceTargets list
	// who gets a session's broadcast presence besides its account;
	// presenceVisible says whether ss may see account's presence.
	presenceHandlers []func(ss *session, p *Element) bool
	presenceTargets  []func(ss *session) []string
	presenceVisible  []func(ss *session, account string) bool
	// reachFilters may stop a stanza from one session to another (XEP-0191).
	reachFilters []func(from, to *session, el *Element) bool
	// blocks says whether account blocked stanzas from a JID (XEP-0191,
	// xep0191_blocking.go); use Server.blockedBy.
	blocks func(account string, from address) bool
	// domains are services hosted here (MUC, upload), by domain.
	domains map[string]func(ss *session, el *Element)
	// rosters is the roster service, for presence subscriptions from
	// other servers (s2s_route.go).
	rosters *rosters
	// deliveries handle the core's other delivery kinds (rooms).
	deliveries map[chat.DeliveryKind][]func(ss *session, d *chat.Delivery) // d is shared: read only
	// roomIQ answers IQs to a room's bare JID by payload namespace
	// (XEP-0313 on a room's history).
	roomIQ map[string]func(ss *session, iq *Element, room string)
	// messageFilters see every message stanza a client sends before it is
	// routed; returning true means it was handled (e.g. consumed).
	messageFilters []func(ss *session, msg *Element) bool
	// accountIdentities are disco#info identities of an account's bare
	// JID besides account/registered (XEP-0163: pubsub/pep); discoItems
	// add disco#items of the domain (account "") or of an account's bare
	// JID for a node ("" is the top level): ok says the hook knows the
	// node (XEP-0030, xep0030_disco.go).
	accountIdentities []discoIdentity
	discoItems        []func(ss *session, account, node string) (items []*Element, ok bool)
	// privateSetHooks see each element a client stores in private XML
	// storage (XEP-0049), to mirror bookmarks (XEP-0048/XEP-0402).
	privateSetHooks []func(ss *session, el *Element)
	// avatars caches accounts' vCard photo hashes (XEP-0153).
	avatars *avatarHashes
	// iqResults see the results and errors clients send to the domain
	// (answers to the server's own queries, such as XEP-0163's caps
	// disco#info); true means taken.
	iqResults []func(ss *session, iq *Element) bool
	// remoteAccountIQ answers IQs from users of other servers to an
	// account's bare JID, by payload namespace (s2s_pep.go): the answer
	// (a result, or an error made with stanzaErrorReply) or nil.
	remoteAccountIQ map[string]remoteIQHandler
}

// buildFeatures registers every feature file.
func buildFeatures(s *Server) *features {
	f := &features{
		serverIQ:   map[string]iqHandler{},
		accountIQ:  map[string]iqHandler{},
		preAuthIQs: map[string]func(*conn, *Element){},
		nonzas:     map[string]func(*conn, *Element){},
		domains:    map[string]func(*session, *Element){},
		roomIQ:     map[string]func(*session, *Element, string){},
		deliveries: map[chat.DeliveryKind][]func(*session, *chat.Delivery){},
	}
	for _, register := range []func(*features, *Server){
		registerPing,
		registerMUC,
		registerCarbons,
		registerSM, // before registerPresence: unacknowledged messages are requeued before the session is seen to end
		registerPresence,
		registerBlocking,
		registerRoster,
		registerCSI,
		registerDisco,
		registerCaps,
		registerVersion,
		registerTime,
		registerLast,
		registerVCard,
		registerPrivate,
		registerRegister,
		registerPEP, // after registerVCard and registerPrivate (XEP-0398, XEP-0402 mirror them)
		registerMAM,
		registerOffline,
		registerExtDisco,
		registerUpload,
		registerCommands, // XEP-0050; its commands come from the feature files (XEP-0401)
		registerInvites,
		registerFederation, // s2s: remote messages kept for offline accounts
		registerModeration, // XEP-0425 notices of wiped messages
	} {
		register(f, s)
	}
	return f
}

// preAuthIQ answers an IQ before authentication; false if none may.
func (f *features) preAuthIQ(c *conn, iq *Element) bool {
	if p := iq.First(); p != nil {
		if h := f.preAuthIQs[p.Space]; h != nil {
			h(c, iq)
			return true
		}
	}
	return false
}

// handleUnbound handles a nonza after SASL but before bind (XEP-0198
// resume); false if nothing claims it.
func (f *features) handleUnbound(c *conn, el *Element) bool {
	if h := f.nonzas[el.Space]; h != nil && el.Space != nsClient {
		h(c, el)
		return true
	}
	return false
}
