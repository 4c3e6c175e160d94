package xmpp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"chatbox/services/chat"
)

// XEP-0049 Private XML Storage (jabber:iq:private): an account stores
// XML fragments on the server and gets them back, one document per
// namespace (a set may carry several elements; those of one namespace
// are kept together and replace what that namespace held). Only the
// account itself may get or set its data (forbidden otherwise); the
// reserved namespaces (jabber:*, http://jabber.org/*, vcard-temp) are
// refused with not-acceptable, a query without a child element likewise
// (§2.3). Documents are kept through the core ("private" collection,
// keyed by namespace).
//
// privateGet and privateSet serve other features (XEP-0048/XEP-0402
// bookmarks compatibility); privateSetHooks see what clients store.

const nsPrivate = "jabber:iq:private"

func registerPrivate(f *features, s *Server) {
	f.accountIQ[nsPrivate] = s.privateIQ
	f.serverFeatures = append(f.serverFeatures, nsPrivate)
}

// privateReserved says whether a namespace may not be stored (§2.3).
func privateReserved(ns string) bool {
	return ns == "" || strings.HasPrefix(ns, "jabber:") || strings.HasPrefix(ns, "http://jabber.org/") || ns == nsVCard
}

func (s *Server) privateIQ(ss *session, iq *Element) {
	if to := iq.Get("to"); to != "" && to != ss.bare {
		ss.replyErr(iq, "forbidden", "private XML storage holds only your own data")
		return
	}
	q := iq.First()
	kids := q.Kids()
	if len(kids) == 0 {
		ss.replyErr(iq, "not-acceptable", "say which namespace: put an element of it inside <query/>")
		return
	}
	for _, k := range kids {
		if privateReserved(k.Space) {
			ss.replyErr(iq, "not-acceptable", "the namespace '"+k.Space+"' is reserved and cannot be stored")
			return
		}
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	switch iq.Get("type") {
	case "get":
		if len(kids) != 1 {
			ss.replyErr(iq, "bad-request", "ask for one namespace at a time")
			return
		}
		els, err := s.privateGetAll(ctx, ss.account, kids[0].Space)
		switch {
		case errors.Is(err, chat.ErrNotFound):
			// Nothing stored: the query comes back as asked (§2.3).
			ss.result(iq, El(nsPrivate, "query").Add(El(kids[0].Space, kids[0].Local)))
		case err != nil:
			s.log.Error("read private XML", "account", ss.account, "err", err)
			ss.replyErr(iq, "internal-server-error", "the stored data could not be read; try again")
		default:
			ss.result(iq, El(nsPrivate, "query").Add(discoKids(els)...))
		}
	case "set":
		byNS := map[string][]*Element{}
		var order []string
		for _, k := range kids {
			if byNS[k.Space] == nil {
				order = append(order, k.Space)
			}
			byNS[k.Space] = append(byNS[k.Space], k)
		}
		for _, ns := range order {
			if err := s.privatePut(ctx, ss.account, ns, byNS[ns]); err != nil {
				if errors.Is(err, chat.ErrTooLong) {
					ss.replyErr(iq, "not-acceptable", fmt.Sprintf("too much to store: at most %d bytes per namespace", chat.MaxDataBytes))
					return
				}
				s.log.Error("store private XML", "account", ss.account, "err", err)
				ss.replyErr(iq, "internal-server-error", "the data could not be stored; try again")
				return
			}
		}
		ss.result(iq, nil)
		for _, k := range kids {
			for _, h := range s.features.privateSetHooks {
				h(ss, k)
			}
		}
	default:
		ss.replyErr(iq, "bad-request", "")
	}
}

// privateGetAll returns the elements stored for a namespace, or an error
// wrapping chat.ErrNotFound.
func (s *Server) privateGetAll(ctx context.Context, account, ns string) ([]*Element, error) {
	item, err := s.core.Data(ctx, account, "private", ns)
	if err != nil {
		return nil, err
	}
	q, err := parseStored(item.Value)
	if err != nil {
		return nil, fmt.Errorf("private XML of %s in %s: %w", account, ns, err)
	}
	return q.Kids(), nil
}

// privatePut stores the elements of one namespace, wrapped in a query.
func (s *Server) privatePut(ctx context.Context, account, ns string, els []*Element) error {
	q := El(nsPrivate, "query")
	for _, e := range els {
		q.Add(e.Clone())
	}
	return s.core.PutData(ctx, account, "private", ns, []byte(q.String()))
}

// privateGet returns the (first) element account stored in namespace ns,
// or an error wrapping chat.ErrNotFound.
func (s *Server) privateGet(ctx context.Context, account, ns string) (*Element, error) {
	els, err := s.privateGetAll(ctx, account, ns)
	if err != nil {
		return nil, err
	}
	if len(els) == 0 {
		return nil, fmt.Errorf("private XML of %s in %s: %w", account, ns, chat.ErrNotFound)
	}
	return els[0], nil
}

// privateSet stores el as account's document for el's namespace, as a
// client's set would, but without running privateSetHooks (a feature
// mirroring its data here must not be mirrored back).
func (s *Server) privateSet(ctx context.Context, account string, el *Element) error {
	if privateReserved(el.Space) {
		return fmt.Errorf("private XML: the namespace %q is reserved", el.Space)
	}
	return s.privatePut(ctx, account, el.Space, []*Element{el})
}

// parseStored parses an element the door stored (private XML, vCards).
func parseStored(b []byte) (*Element, error) {
	rd := newStreamReader(bytes.NewReader(b), len(b)+1, 1000, nil)
	el, err := rd.Next()
	if err != nil {
		return nil, fmt.Errorf("parse stored XML: %w", err)
	}
	return el, nil
}
