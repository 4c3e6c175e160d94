package xmpp

import (
	"context"
	"encoding/xml"
	"errors"
	"slices"
	"sort"

	"chatbox/services/chat"
)

// XEP-0030 Service Discovery: the server answers disco#info and
// disco#items for its domain (identity server/im; the features every
// feature file registered; items: the services hosted here, built-in
// ones and connected XEP-0114 components) and, on an account's behalf,
// for the account's bare JID (identity account/registered plus any a
// feature adds, such as XEP-0163's pubsub/pep; the features registered
// for accounts; items from the accountItems hooks, such as PEP nodes).
// Queries to a full JID are routed to that client. A query with a node
// is answered only for nodes the server knows: the XEP-0115 caps node
// of the domain (xep0115_caps.go) and what the hooks claim; any other
// node is item-not-found. The domain's answer (and its caps node's)
// carries XEP-0128 extended information: the XEP-0157 contact addresses
// form, listing the box admins as admin-addresses when there are any.

const (
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
	// nsServerInfo is the XEP-0157 FORM_TYPE.
	nsServerInfo = "http://jabber.org/network/serverinfo"
)

// discoIdentity is one <identity/> of a disco#info answer.
type discoIdentity struct {
	Category, Type, Name, Lang string
}

func (id discoIdentity) element() *Element {
	e := El(nsDiscoInfo, "identity", "category", id.Category, "type", id.Type, "name", id.Name)
	if id.Lang != "" {
		e.Attr = append(e.Attr, xml.Attr{Name: xml.Name{Space: nsXML, Local: "lang"}, Value: id.Lang})
	}
	return e
}

// serverIdentity is what the domain is (XEP-0030 registry: server/im).
var serverIdentity = discoIdentity{Category: "server", Type: "im", Name: "chatbox"}

func registerDisco(f *features, s *Server) {
	f.serverIQ[nsDiscoInfo] = s.discoInfoServer
	f.serverIQ[nsDiscoItems] = s.discoItemsServer
	f.accountIQ[nsDiscoInfo] = s.discoInfoAccount
	f.accountIQ[nsDiscoItems] = s.discoItemsAccount
	f.serverFeatures = append(f.serverFeatures, nsDiscoInfo, nsDiscoItems)
	f.accountFeatures = append(f.accountFeatures, nsDiscoInfo, nsDiscoItems)
}

// serverDisco returns the domain's identities and features, sorted and
// without duplicates, and its XEP-0128 extended information forms: what
// disco#info answers and what the XEP-0115 ver string is computed over.
func (s *Server) serverDisco(ctx context.Context) ([]discoIdentity, []string, []*Element) {
	var forms []*Element
	if f := s.contactAddresses(ctx); f != nil {
		forms = append(forms, f)
	}
	return []discoIdentity{serverIdentity}, sortedSet(s.features.serverFeatures), forms
}

// contactAddresses is the XEP-0157 form: admin-addresses lists an xmpp:
// URI per box admin (account names need no escaping in a URI), sorted.
// It is nil when there is no admin, or the store cannot say: XEP-0157
// lets a service list no address.
func (s *Server) contactAddresses(ctx context.Context) *Element {
	names, err := s.core.Admins(ctx) // for every login: the stream features' caps cover it
	if err != nil {
		s.log.Error("list accounts for the contact addresses", "err", err)
		return nil
	}
	var admins []string
	for _, n := range names {
		admins = append(admins, "xmpp:"+n+"@"+s.cfg.Domain)
	}
	if len(admins) == 0 {
		return nil
	}
	return xdataForm("result", nsServerInfo, "",
		xdataField("admin-addresses", "list-multi", "", sortedSet(admins)...))
}

// accountDisco returns an account's bare JID identities and features.
func (s *Server) accountDisco() ([]discoIdentity, []string) {
	ids := append([]discoIdentity{{Category: "account", Type: "registered"}}, s.features.accountIdentities...)
	sortIdentities(ids)
	return ids, sortedSet(s.features.accountFeatures)
}

func sortedSet(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

// sortIdentities sorts by category, type, xml:lang and name (XEP-0115
// §5.1 sorts by the first three).
func sortIdentities(ids []discoIdentity) {
	sort.SliceStable(ids, func(i, j int) bool { return identityLess(ids[i], ids[j]) })
}

func identityLess(a, b discoIdentity) bool {
	if a.Category != b.Category {
		return a.Category < b.Category
	}
	if a.Type != b.Type {
		return a.Type < b.Type
	}
	if a.Lang != b.Lang {
		return a.Lang < b.Lang
	}
	return a.Name < b.Name
}

// discoInfoElement is a disco#info <query/> with identities, features
// and XEP-0128 extended information forms.
func discoInfoElement(node string, ids []discoIdentity, feats []string, forms ...*Element) *Element {
	q := El(nsDiscoInfo, "query", "node", node)
	for _, id := range ids {
		q.Add(id.element())
	}
	for _, v := range feats {
		q.Add(El(nsDiscoInfo, "feature", "var", v))
	}
	for _, f := range forms {
		q.Add(f)
	}
	return q
}

// discoGet checks that iq is a disco get; it answers the error if not.
func discoGet(ss *session, iq *Element) bool {
	if iq.Get("type") != "get" {
		ss.replyErr(iq, "bad-request", "service discovery queries are IQ gets")
		return false
	}
	return true
}

func (s *Server) discoInfoServer(ss *session, iq *Element) {
	if !discoGet(ss, iq) {
		return
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	// One read for both: the caps node checked is the ver of the answer.
	ids, feats, forms := s.serverDisco(ctx)
	node := iq.First().Get("node")
	if node != "" && node != s.capsNode()+"#"+capsVerString(ids, feats, forms) {
		ss.replyErr(iq, "item-not-found", "this server has no disco node "+node)
		return
	}
	ss.result(iq, discoInfoElement(node, ids, feats, forms...))
}

func (s *Server) discoItemsServer(ss *session, iq *Element) {
	if !discoGet(ss, iq) {
		return
	}
	node := iq.First().Get("node")
	items, known := s.hookedDiscoItems(ss, "", node)
	if node == "" {
		known = true
		for _, d := range s.hostedDomains() {
			items = append(items, El(nsDiscoItems, "item", "jid", d))
		}
	}
	if !known {
		ss.replyErr(iq, "item-not-found", "this server has no disco node "+node)
		return
	}
	ss.result(iq, El(nsDiscoItems, "query", "node", node).Add(discoKids(items)...))
}

// hostedDomains lists the services hosted here: built-in ones
// (features.domains) and the components connected now, sorted.
func (s *Server) hostedDomains() []string {
	var out []string
	for d := range s.features.domains {
		out = append(out, d)
	}
	s.mu.Lock()
	for d := range s.components {
		out = append(out, d)
	}
	s.mu.Unlock()
	return sortedSet(out)
}

// hookedDiscoItems asks the discoItems hooks about a node of the domain
// (account "") or of an account's bare JID; known is true if one of them
// knows the node.
func (s *Server) hookedDiscoItems(ss *session, account, node string) (items []*Element, known bool) {
	for _, h := range s.features.discoItems {
		if it, ok := h(ss, account, node); ok {
			items = append(items, it...)
			known = true
		}
	}
	return items, known
}

// discoAccount resolves the bare JID an account query is for; it answers
// the error and returns "" if there is no such account.
func (s *Server) discoAccount(ss *session, iq *Element) string {
	account := ss.account
	if to := iq.Get("to"); to != "" {
		a, err := parseJID(to)
		if err != nil {
			ss.replyErr(iq, "jid-malformed", "")
			return ""
		}
		account = a.Local
	}
	if account == ss.account {
		return account
	}
	if !s.accountOnBox(ss, account) {
		// RFC 6121 §8.5.1: an IQ to an account that does not exist.
		ss.replyErr(iq, "service-unavailable", "")
		return ""
	}
	return account
}

// accountOnBox says whether an account exists (false on store errors:
// the caller answers as if it did not).
func (s *Server) accountOnBox(ss *session, account string) bool {
	ctx, cancel := ss.ctx()
	defer cancel()
	_, err := s.core.Account(ctx, account)
	if err != nil && !errors.Is(err, chat.ErrNotFound) {
		s.log.Error("look up account", "account", account, "err", err)
	}
	return err == nil
}

func (s *Server) discoInfoAccount(ss *session, iq *Element) {
	if !discoGet(ss, iq) {
		return
	}
	account := s.discoAccount(ss, iq)
	if account == "" {
		return
	}
	node := iq.First().Get("node")
	if node != "" {
		ss.replyErr(iq, "item-not-found", "this account has no disco node "+node)
		return
	}
	ids, feats := s.accountDisco()
	ss.result(iq, discoInfoElement("", ids, feats))
}

func (s *Server) discoItemsAccount(ss *session, iq *Element) {
	if !discoGet(ss, iq) {
		return
	}
	account := s.discoAccount(ss, iq)
	if account == "" {
		return
	}
	node := iq.First().Get("node")
	items, known := s.hookedDiscoItems(ss, account, node)
	if !known && node != "" {
		ss.replyErr(iq, "item-not-found", "this account has no disco node "+node)
		return
	}
	ss.result(iq, El(nsDiscoItems, "query", "node", node).Add(discoKids(items)...))
}

func discoKids(els []*Element) []any {
	out := make([]any, len(els))
	for i, e := range els {
		out[i] = e
	}
	return out
}
