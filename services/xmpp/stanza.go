package xmpp

import (
	"crypto/rand"
	"fmt"
	"strings"

	"mellium.im/xmpp/jid"
)

// Stanza errors (RFC 6120 §8.3).

// errorTypes gives each defined condition its usual error type.
var errorTypes = map[string]string{
	"bad-request": "modify", "conflict": "cancel", "feature-not-implemented": "cancel",
	"forbidden": "auth", "gone": "cancel", "internal-server-error": "cancel",
	"item-not-found": "cancel", "jid-malformed": "modify", "not-acceptable": "modify",
	"not-allowed": "cancel", "not-authorized": "auth", "policy-violation": "modify",
	"recipient-unavailable": "wait", "redirect": "modify", "registration-required": "auth",
	"remote-server-not-found": "cancel", "remote-server-timeout": "wait",
	"resource-constraint": "wait", "service-unavailable": "cancel",
	"subscription-required": "auth", "undefined-condition": "cancel", "unexpected-request": "wait",
}

// errorEl is an <error/> element; typ "" takes the condition's usual type.
func errorEl(typ, cond, text string, extra ...*Element) *Element {
	if typ == "" {
		typ = errorTypes[cond]
		if typ == "" {
			typ = "cancel"
		}
	}
	e := El(nsClient, "error", "type", typ).Add(El(nsStanzaErr, cond))
	if text != "" {
		e.Add(El(nsStanzaErr, "text", "xml:lang", "").Add(text))
	}
	for _, x := range extra {
		e.Add(x)
	}
	return e
}

// stanzaErrorReply answers st with an error: same name and id, addresses
// swapped, type error (RFC 6120 §8.3.1).
func stanzaErrorReply(st *Element, typ, cond, text string, extra ...*Element) *Element {
	r := El(nsClient, st.Local, "id", st.Get("id"), "type", "error", "from", st.Get("to"), "to", st.Get("from"))
	if st.Local != "iq" {
		// A message or presence error may carry the original payload.
		for _, k := range st.Kids() {
			if k.Is(nsClient, "body") {
				r.Add(k.Clone())
			}
		}
	}
	return r.Add(errorEl(typ, cond, text, extra...))
}

// address is a parsed JID, split the way routing needs it.
type address struct {
	Local, Domain, Resource string
}

func (a address) Bare() string {
	if a.Local == "" {
		return a.Domain
	}
	return a.Local + "@" + a.Domain
}

func (a address) String() string {
	if a.Resource == "" {
		return a.Bare()
	}
	return a.Bare() + "/" + a.Resource
}

// parseJID parses and prepares a JID (RFC 7622).
func parseJID(s string) (address, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return address{}, err
	}
	a := address{Local: j.Localpart(), Domain: strings.ToLower(j.Domainpart()), Resource: j.Resourcepart()}
	// jid.Parse removes one trailing dot and takes what is left: ".."
	// would be the domain ".", which no JID can name (found by FuzzJID).
	if strings.HasPrefix(a.Domain, ".") || strings.HasSuffix(a.Domain, ".") || strings.Contains(a.Domain, "..") {
		return address{}, fmt.Errorf("the domainpart %q has an empty label", a.Domain)
	}
	return a, nil
}

func randRead(b []byte) { rand.Read(b) }

// randomID is a random identifier for ids and resources.
func randomID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 12)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
