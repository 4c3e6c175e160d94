package xmpp

import (
	"encoding/xml"
	"strconv"
	"strings"
)

// Namespaces the door speaks.
const (
	nsClient    = "jabber:client"
	nsComponent = "jabber:component:accept"
	nsStream    = "http://etherx.jabber.org/streams"
	nsStreamErr = "urn:ietf:params:xml:ns:xmpp-streams"
	nsStanzaErr = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsTLS       = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL      = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind      = "urn:ietf:params:xml:ns:xmpp-bind"
	nsSession   = "urn:ietf:params:xml:ns:xmpp-session"
	nsXML       = "http://www.w3.org/XML/1998/namespace"
)

// Element is one XML element of a stanza, with its namespace resolved.
// Nodes keeps element and character data children in document order
// (each is a *Element or a string), so that a stanza relayed to another
// client is the stanza the sender wrote.
type Element struct {
	Space, Local string
	Attr         []xml.Attr // namespace declarations are not kept; Name.Space is a URI
	Nodes        []any

	// pre is the prepared form this Element was made from (rendered.go),
	// wire its bytes once made; nil for an Element built or read as usual.
	pre  *prepared
	wire []byte
}

// El makes an element with attributes given as name, value pairs.
func El(space, local string, attrs ...string) *Element {
	e := &Element{Space: space, Local: local}
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i+1] != "" {
			e.Attr = append(e.Attr, xml.Attr{Name: xml.Name{Local: attrs[i]}, Value: attrs[i+1]})
		}
	}
	return e
}

// Add appends children (*Element or string; nil elements are skipped)
// and returns e.
func (e *Element) Add(kids ...any) *Element {
	e.unprepare()
	for _, k := range kids {
		switch k := k.(type) {
		case *Element:
			if k != nil {
				e.Nodes = append(e.Nodes, k)
			}
		case string:
			if k != "" {
				e.Nodes = append(e.Nodes, k)
			}
		}
	}
	return e
}

// Is reports whether e is space:local.
func (e *Element) Is(space, local string) bool {
	return e != nil && e.Space == space && e.Local == local
}

// Get returns an attribute without namespace, or "".
func (e *Element) Get(name string) string {
	if e == nil {
		return ""
	}
	for _, a := range e.Attr {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// Lang is xml:lang, or "".
func (e *Element) Lang() string {
	for _, a := range e.Attr {
		if a.Name.Space == nsXML && a.Name.Local == "lang" {
			return a.Value
		}
	}
	return ""
}

// Set sets (or with value "" removes) an attribute without namespace.
func (e *Element) Set(name, value string) *Element {
	if name == "to" {
		e.wire = nil // the prepared form writes the current to
	} else {
		e.unprepare()
	}
	for i, a := range e.Attr {
		if a.Name.Space == "" && a.Name.Local == name {
			if value == "" {
				e.Attr = append(e.Attr[:i], e.Attr[i+1:]...)
			} else {
				e.Attr[i].Value = value
			}
			return e
		}
	}
	if value != "" {
		e.Attr = append(e.Attr, xml.Attr{Name: xml.Name{Local: name}, Value: value})
	}
	return e
}

// Kids returns the child elements.
func (e *Element) Kids() []*Element {
	if e == nil {
		return nil
	}
	var out []*Element
	for _, n := range e.Nodes {
		if k, ok := n.(*Element); ok {
			out = append(out, k)
		}
	}
	return out
}

// First returns the first child element, or nil.
func (e *Element) First() *Element {
	if e == nil {
		return nil
	}
	for _, n := range e.Nodes {
		if k, ok := n.(*Element); ok {
			return k
		}
	}
	return nil
}

// Child returns the first child space:local (space "" matches any), or nil.
func (e *Element) Child(space, local string) *Element {
	if e == nil {
		return nil
	}
	for _, n := range e.Nodes {
		if k, ok := n.(*Element); ok && k.Local == local && (space == "" || k.Space == space) {
			return k
		}
	}
	return nil
}

// ChildrenNS returns the child elements in namespace space.
func (e *Element) ChildrenNS(space string) []*Element {
	var out []*Element
	for _, k := range e.Kids() {
		if k.Space == space {
			out = append(out, k)
		}
	}
	return out
}

// Remove drops the children for which drop is true.
func (e *Element) Remove(drop func(*Element) bool) {
	e.unprepare()
	n := e.Nodes[:0]
	for _, x := range e.Nodes {
		if k, ok := x.(*Element); ok && drop(k) {
			continue
		}
		n = append(n, x)
	}
	for i := len(n); i < len(e.Nodes); i++ {
		e.Nodes[i] = nil
	}
	e.Nodes = n
}

// Text is the character data directly inside e.
func (e *Element) Text() string {
	if e == nil {
		return ""
	}
	var b strings.Builder
	for _, n := range e.Nodes {
		if s, ok := n.(string); ok {
			b.WriteString(s)
		}
	}
	return b.String()
}

// ChildText is the text of the first child space:local, or "".
func (e *Element) ChildText(space, local string) string {
	return e.Child(space, local).Text()
}

// Clone copies e deeply.
func (e *Element) Clone() *Element {
	if e == nil {
		return nil
	}
	c := &Element{Space: e.Space, Local: e.Local, Attr: append([]xml.Attr(nil), e.Attr...)}
	c.Nodes = make([]any, len(e.Nodes))
	for i, n := range e.Nodes {
		if k, ok := n.(*Element); ok {
			c.Nodes[i] = k.Clone()
		} else {
			c.Nodes[i] = n
		}
	}
	return c
}

// String serializes e with its own default namespace declared.
func (e *Element) String() string {
	var b strings.Builder
	e.write(&b, "")
	return b.String()
}

// Bytes serializes e in a stream whose default namespace is parent.
func (e *Element) Bytes(parent string) []byte {
	if e.pre != nil && parent == nsClient && e.Space == nsClient && e.Get("to") != "" {
		return e.wireBytes()
	}
	var b strings.Builder
	e.write(&b, parent)
	return []byte(b.String())
}

// write serializes e; parent is the default namespace in scope.
// Attribute namespaces other than xml: get local prefixes.
func (e *Element) write(b *strings.Builder, parent string) {
	b.WriteByte('<')
	b.WriteString(e.Local)
	if e.Space != parent {
		b.WriteString(` xmlns="`)
		escape(b, e.Space)
		b.WriteByte('"')
	}
	prefixes := 0
	for _, a := range e.Attr {
		b.WriteByte(' ')
		switch a.Name.Space {
		case "":
		case nsXML:
			b.WriteString("xml:")
		default:
			prefixes++
			p := "a" + strconv.Itoa(prefixes)
			b.WriteString("xmlns:" + p + `="`)
			escape(b, a.Name.Space)
			b.WriteString(`" ` + p + ":")
		}
		b.WriteString(a.Name.Local)
		b.WriteString(`="`)
		escape(b, a.Value)
		b.WriteByte('"')
	}
	if len(e.Nodes) == 0 {
		b.WriteString("/>")
		return
	}
	b.WriteByte('>')
	for _, n := range e.Nodes {
		switch n := n.(type) {
		case *Element:
			n.write(b, e.Space)
		case string:
			escape(b, n)
		}
	}
	b.WriteString("</")
	b.WriteString(e.Local)
	b.WriteByte('>')
}

// escape writes s as XML character data or attribute value.
func escape(b *strings.Builder, s string) {
	last := 0
	for i := 0; i < len(s); i++ {
		if r := xmlEscaped(s[i]); r != "" {
			b.WriteString(s[last:i])
			b.WriteString(r)
			last = i + 1
		}
	}
	b.WriteString(s[last:])
}

// xmlEscaped is what byte c becomes in XML character data or an
// attribute value, "" when it stays itself.
func xmlEscaped(c byte) string {
	switch c {
	case '<':
		return "&lt;"
	case '>':
		return "&gt;"
	case '&':
		return "&amp;"
	case '"':
		return "&quot;"
	case '\'':
		return "&apos;"
	case '\r':
		return "&#xD;"
	}
	return ""
}

// renamespace moves e and its descendants from namespace from to to (a
// stanza passing between jabber:client and jabber:component:accept).
func renamespace(e *Element, from, to string) *Element {
	if e.Space == from {
		e.Space = to
	}
	for _, k := range e.Kids() {
		renamespace(k, from, to)
	}
	return e
}
