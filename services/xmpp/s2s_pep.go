package xmpp

import (
	"context"
	"encoding/json"
	"strings"
)

// XEP-0163 Personal Eventing Protocol with contacts on other servers, so
// that OMEMO (XEP-0384: the device list and bundles are PEP nodes) works
// between a local and a remote user:
//   - a notification of a local account's node that is not whitelist
//     (xep0163_pep.go broadcast) also goes to every remote contact with a
//     from or both subscription, as a headline to the contact's bare JID,
//     which its server delivers to each available resource (RFC 6121
//     §8.5.2.1.1);
//   - a remote user's pubsub items request (XEP-0060 §6.5) to a local
//     bare JID is answered under the node's access model, the remote
//     user's subscription read from the owner's roster (presence: from or
//     both; open: anyone; whitelist: the owner alone);
//   - disco#info on a local bare JID (XEP-0030) answers the account's
//     identities and features, so that remote clients find PEP.
//
// Left out: filtering remote notifications by the contact's entity
// capabilities (+notify), which would need disco#info queries to remote
// clients: the remote client gets every node's events and ignores those
// it does not want; the last published items to a remote contact that
// comes online (XEP-0163 §4.3.2); remote writes (publishing to a local
// account's node is for its owner only).

// remoteIQHandler answers an IQ a remote user (from, a full JID) sent to
// account's bare JID.
type remoteIQHandler func(ctx context.Context, iq *Element, account string, from address) *Element

// registerRemote hooks the PEP service to federation.
func (p *pepService) registerRemote(f *features) {
	if f.remoteAccountIQ == nil {
		f.remoteAccountIQ = map[string]remoteIQHandler{}
	}
	f.remoteAccountIQ[nsPubSub] = p.remoteIQ
	f.remoteAccountIQ[nsDiscoInfo] = p.remoteDisco
}

// remoteIQ answers a remote user's pubsub request to account's service:
// retrieving items only.
func (p *pepService) remoteIQ(ctx context.Context, iq *Element, account string, from address) *Element {
	op := iq.First().First()
	if iq.Get("type") != "get" || op == nil || op.Local != "items" || op.Space != nsPubSub {
		return stanzaErrorReply(iq, "", "forbidden", "only the owner may change its PEP nodes; others may only retrieve items")
	}
	node := op.Get("node")
	if node == "" {
		return stanzaErrorReply(iq, "", "bad-request", "name the node (PEP has no instant nodes)", El(nsPubSubErrors, "nodeid-required"))
	}
	reader := strings.ToLower(address{Local: from.Local, Domain: from.Domain}.Bare())
	res, perr := p.itemsFor(ctx, reader, account, node, op)
	if perr != nil {
		var extra []*Element
		if perr.app != "" {
			extra = append(extra, El(nsPubSubErrors, perr.app, "feature", perr.feature))
		}
		return stanzaErrorReply(iq, "", perr.cond, perr.text, extra...)
	}
	return El(nsClient, "iq", "type", "result", "id", iq.Get("id"), "from", iq.Get("to"), "to", iq.Get("from")).Add(res)
}

// remoteDisco answers disco#info on a local bare JID.
func (p *pepService) remoteDisco(ctx context.Context, iq *Element, account string, from address) *Element {
	if iq.Get("type") != "get" || iq.First().Get("node") != "" {
		return stanzaErrorReply(iq, "", "service-unavailable", "")
	}
	ids, feats := p.s.accountDisco()
	return El(nsClient, "iq", "type", "result", "id", iq.Get("id"), "from", iq.Get("to"), "to", iq.Get("from")).
		Add(discoInfoElement("", ids, feats))
}

// notifyRemote sends an event of account's node to its remote contacts
// with a from or both subscription.
func (p *pepService) notifyRemote(account string, event *Element) {
	if p.s.fed == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeoutStore)
	defer cancel()
	list, err := p.s.core.ListData(ctx, account, "roster")
	if err != nil {
		return
	}
	for _, it := range list {
		a, err := parseJID(it.Key)
		if err != nil || a.Local == "" || a.Resource != "" || !p.s.isRemote(a.Domain) {
			continue
		}
		var v struct {
			Subscription string `json:"subscription"`
		}
		if json.Unmarshal(it.Value, &v) != nil || !pepSub(v.Subscription).from() {
			continue
		}
		p.s.fedSend(El(nsClient, "message", "from", p.bare(account), "to", a.Bare(), "type", "headline", "id", randomID()).Add(event.Clone()))
	}
}
