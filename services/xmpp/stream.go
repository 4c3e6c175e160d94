package xmpp

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// This file reads the XML stream (RFC 6120 §4, §11): the stream header
// and then one top-level element (stanza or nonza) at a time, within
// bounds on its size and depth. XMPP's restricted XML (§11.1) is
// enforced: no DTD, no comments, no processing instructions after the XML
// declaration, no entities beyond the five predefined ones.

// streamError is a stream-level error (RFC 6120 §4.9): the door sends it
// and closes the stream.
type streamError struct {
	Condition string // a urn:ietf:params:xml:ns:xmpp-streams element name
	Text      string
}

func (e *streamError) Error() string {
	if e.Text == "" {
		return "stream error: " + e.Condition
	}
	return "stream error: " + e.Condition + ": " + e.Text
}

func streamErr(cond, format string, args ...any) *streamError {
	return &streamError{Condition: cond, Text: fmt.Sprintf(format, args...)}
}

// errTooBig ends a stanza larger than the door accepts.
var errTooBig = errors.New("stanza too large")

// readBuffer is the size of the buffers the stream's input is read
// into. They come from readPool when input is there and go back once it
// is consumed: a connection waiting for its next stanza holds none (over
// TLS the records are buffered below anyway); a larger stanza takes a
// few reads.
const readBuffer = 1024

var readPool = sync.Pool{New: func() any { b := make([]byte, readBuffer); return &b }}

// inBuf is a buffered byte reader, as bufio.Reader's ReadByte, whose
// buffer is borrowed from readPool only while it holds unread input.
type inBuf struct {
	r        io.Reader
	buf      *[]byte // nil while there is nothing buffered
	pos, end int
	one      [1]byte // the byte wait read
	has1     bool
	err      error // a read error, returned once the bytes before it are
}

func (b *inBuf) ReadByte() (byte, error) {
	if b.has1 {
		b.has1 = false
		return b.one[0], nil
	}
	if b.pos == b.end {
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	c := (*b.buf)[b.pos]
	b.pos++
	if b.pos == b.end {
		readPool.Put(b.buf)
		b.buf, b.pos, b.end = nil, 0, 0
	}
	return c, nil
}

// fill reads into a borrowed buffer (b is empty).
func (b *inBuf) fill() error {
	if err := b.err; err != nil {
		b.err = nil
		return err
	}
	bp := readPool.Get().(*[]byte)
	for range 100 {
		n, err := b.r.Read(*bp)
		if n > 0 {
			b.buf, b.pos, b.end, b.err = bp, 0, n, err
			return nil
		}
		if err != nil {
			readPool.Put(bp)
			return err
		}
	}
	readPool.Put(bp)
	return io.ErrNoProgress
}

// wait returns once input is there or a read fails (with the error): an
// empty reader reads one byte, into no buffer of the pool's.
func (b *inBuf) wait() error {
	if b.has1 || b.pos < b.end || b.err != nil {
		return nil
	}
	for range 100 {
		n, err := b.r.Read(b.one[:])
		if n > 0 {
			b.has1, b.err = true, err
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// readSome reads what r has at once (r's read deadline has passed):
// true if it got a byte or an error other than the deadline's, kept for
// ReadByte; false if r has nothing.
func (b *inBuf) readSome(r io.Reader) bool {
	n, err := r.Read(b.one[:])
	if n > 0 {
		b.has1, b.err = true, err
		return true
	}
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	b.err = err
	return true
}

// budgetReader counts the bytes of the element being read and fails once
// it passes the budget; it calls idle when a read times out (the
// connection's read deadline passed), and goes on reading if idle says so.
type budgetReader struct {
	r      *inBuf
	left   int
	budget int
	idle   func() bool // nil: a timeout is an error
	n      int64       // bytes read
	// capture, when set, keeps the bytes read (a stream header's) up to
	// maxHeaderCopy; past that it is cut to nil.
	capture *[]byte
}

// maxHeaderCopy bounds the stream header a stream reader keeps to make
// its decoder anew (streamReader.rest): a longer one is not kept, and
// the decoder is not let go.
const maxHeaderCopy = 1024

func (b *budgetReader) ReadByte() (byte, error) {
	if b.left <= 0 {
		return 0, errTooBig
	}
	for {
		c, err := b.r.ReadByte()
		if err == nil {
			b.left--
			b.n++
			if b.capture != nil {
				if len(*b.capture) >= maxHeaderCopy {
					*b.capture = nil
					b.capture = nil
				} else {
					*b.capture = append(*b.capture, c)
				}
			}
			return c, nil
		}
		if b.timedOut(err) {
			continue
		}
		return 0, err
	}
}

// timedOut says whether err is a read timeout that idle lets pass.
func (b *budgetReader) timedOut(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && b.idle != nil && b.idle()
}

// wait waits for input between elements. It is called with little on
// the goroutine's stack (not from inside the XML decoder), so that an
// idle connection's reader keeps a small stack: the runtime shrinks a
// goroutine's stack only while less than a quarter of it is in use. A
// read error is kept for the next ReadByte.
func (b *budgetReader) wait() {
	for {
		err := b.r.wait()
		if err == nil {
			return
		}
		if !b.timedOut(err) {
			b.r.err = err
			return
		}
	}
}

func (b *budgetReader) Read(p []byte) (int, error) { return readOne(b, p) }

// readOne is Read for a byte reader that the XML decoder reads byte by
// byte (it uses ReadByte; Read is there for io.Reader).
func readOne(r io.ByteReader, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	p[0] = c
	return 1, nil
}

// streamReader reads one XML stream.
//
// Between stanzas an idle client's reader may let its XML decoder go
// (rest: its namespace tables, token buffer and stack are about 1.2 KB a
// connection); the next stanza makes a decoder anew (revive) from the
// stream header's bytes as the client sent them, which Header keeps, so
// that the prefixes and namespaces the header declared, and the stream
// element its end tag closes, are the same as before.
type streamReader struct {
	br       *budgetReader
	dec      *xml.Decoder // nil while rested
	maxDepth int
	header   bool
	base     int64    // br.n when dec started, less the replayed header
	head     []byte   // the header's bytes (Header), nil if longer than maxHeaderCopy
	headNS   []string // the namespaces the header declares (Header), in scope for every element
}

// newStreamReader reads a stream from r; no element may be larger than
// maxBytes nor nested deeper than maxDepth.
func newStreamReader(r io.Reader, maxBytes, maxDepth int, idle func() bool) *streamReader {
	br := &budgetReader{r: &inBuf{r: r}, left: maxBytes, budget: maxBytes, idle: idle}
	return br.streamReader(maxDepth)
}

// streamReader reads a (restarted) stream from b's bytes.
func (b *budgetReader) streamReader(maxDepth int) *streamReader {
	d := xml.NewDecoder(b)
	d.Strict = true
	return &streamReader{br: b, dec: d, maxDepth: maxDepth, base: b.n}
}

// drained reports whether nothing of the stream is buffered: not in its
// reader, nor read ahead by the XML decoder.
func (s *streamReader) drained() bool {
	b := s.br.r
	return !b.has1 && b.pos == b.end && b.err == nil && (s.dec == nil || s.dec.InputOffset() == s.br.n-s.base)
}

// rest lets the decoder go if the stream is between stanzas with nothing
// buffered (drained) and its header was kept; Next revives it.
func (s *streamReader) rest() {
	if s.dec != nil && s.header && s.head != nil && s.drained() {
		s.dec = nil
	}
}

// revive makes the decoder anew after rest: it reads the kept header,
// then the stream's bytes.
func (s *streamReader) revive() error {
	d := xml.NewDecoder(&replayReader{head: s.head, br: s.br})
	d.Strict = true
	for {
		t, err := d.Token()
		if err != nil { // the same bytes parsed before: cannot happen
			return streamErr("internal-server-error", "reading the stream header again: %v", err)
		}
		if _, ok := t.(xml.StartElement); ok {
			break
		}
	}
	s.dec = d
	s.base = s.br.n - int64(len(s.head))
	return nil
}

// replayReader gives a revived decoder the kept header, then the stream.
type replayReader struct {
	head []byte
	br   *budgetReader
}

func (r *replayReader) ReadByte() (byte, error) {
	if len(r.head) > 0 {
		c := r.head[0]
		r.head = r.head[1:]
		return c, nil
	}
	return r.br.ReadByte()
}

func (r *replayReader) Read(p []byte) (int, error) { return readOne(r, p) }

// token returns the next token, with XMPP's restrictions applied.
func (s *streamReader) token() (xml.Token, error) {
	t, err := s.dec.Token()
	if err != nil {
		return nil, s.mapErr(err)
	}
	switch t := t.(type) {
	case xml.Comment:
		return nil, streamErr("restricted-xml", "comments are not allowed in XMPP")
	case xml.Directive:
		return nil, streamErr("restricted-xml", "DTDs and other directives are not allowed in XMPP")
	case xml.ProcInst:
		if t.Target == "xml" && !s.header {
			return t, nil
		}
		return nil, streamErr("restricted-xml", "processing instructions are not allowed in XMPP")
	}
	return t, nil
}

func (s *streamReader) mapErr(err error) error {
	var se *xml.SyntaxError
	switch {
	case errors.Is(err, errTooBig):
		return streamErr("policy-violation", "stanza larger than %d bytes", s.br.budget)
	case errors.As(err, &se):
		if strings.Contains(se.Msg, "entity") {
			return streamErr("restricted-xml", "%s", se.Msg)
		}
		if strings.Contains(se.Msg, "unexpected EOF") {
			return io.ErrUnexpectedEOF
		}
		return streamErr("not-well-formed", "%s", se.Msg)
	case strings.HasPrefix(err.Error(), "xml: "):
		// The XML declaration's checks (version, encoding) fail with
		// plain errors.
		if strings.Contains(err.Error(), "encoding") {
			return streamErr("unsupported-encoding", "%s: XMPP is UTF-8 only", err)
		}
		return streamErr("not-well-formed", "%s", err)
	}
	return err
}

// Header reads up to the opening <stream:stream> and returns it.
func (s *streamReader) Header() (xml.StartElement, error) {
	s.head = make([]byte, 0, 256)
	s.br.capture = &s.head
	defer func() {
		s.br.capture = nil
		if s.head != nil {
			s.head = slices.Clip(s.head)
		}
	}()
	for {
		t, err := s.token()
		if err != nil {
			return xml.StartElement{}, err
		}
		switch t := t.(type) {
		case xml.ProcInst:
			continue
		case xml.CharData:
			if len(strings.TrimSpace(string(t))) == 0 {
				continue
			}
			return xml.StartElement{}, streamErr("not-well-formed", "text before the stream header")
		case xml.StartElement:
			s.header = true
			ns, err := declare(nil, t.Attr)
			if err != nil {
				return t, err
			}
			s.headNS = internNS(ns)
			if t.Name.Local != "stream" {
				return t, streamErr("invalid-namespace", "expected <stream:stream>, got <%s>", t.Name.Local)
			}
			if t.Name.Space != nsStream {
				return t, streamErr("invalid-namespace", "the stream element must be in %s", nsStream)
			}
			s.br.left = s.br.budget
			return t, nil
		default:
			return xml.StartElement{}, streamErr("not-well-formed", "expected a stream header")
		}
	}
}

// canonicalHead replaces the header bytes Header kept by the shortest
// header that makes a revived decoder the same: the stream element under
// the same prefix, with the same namespace declarations in the same
// order, nothing else (to, from, id, version and xml:lang are read from
// start once, by the door). Clients' headers mostly differ only in what
// is dropped, so the result is shared through headers: one copy for every
// connection rather than ~250 bytes each. A header whose element prefix
// is not declared exactly once on it keeps its own bytes.
func (s *streamReader) canonicalHead(start xml.StartElement, headers *headerCache) {
	if s.head == nil || headers == nil {
		return
	}
	name, n := "", 0
	for _, a := range start.Attr {
		switch {
		case a.Name.Space == "xmlns" && a.Value == start.Name.Space:
			name, n = a.Name.Local+":"+start.Name.Local, n+1
		case a.Name.Space == "" && a.Name.Local == "xmlns" && a.Value == start.Name.Space:
			name, n = start.Name.Local, n+1
		}
	}
	if n != 1 {
		return
	}
	var b strings.Builder
	b.WriteString("<" + name)
	for _, a := range start.Attr {
		switch {
		case a.Name.Space == "xmlns":
			b.WriteString(" xmlns:" + a.Name.Local + "='")
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			b.WriteString(" xmlns='")
		default:
			continue
		}
		xml.EscapeText(&b, []byte(a.Value))
		b.WriteString("'")
	}
	if n := len(s.head); n >= 2 && s.head[n-2] == '/' && s.head[n-1] == '>' {
		b.WriteString("/>") // a stream ended as it began: the same for the revived decoder
	} else {
		b.WriteString(">")
	}
	s.head = headers.intern(b.String())
}

// headerCache holds the canonical stream headers in use (canonicalHead):
// a few, shared by every connection; it stops taking new ones at
// maxHeaders (a stream whose header is not in it keeps its own).
type headerCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

const maxHeaders = 64

func (h *headerCache) intern(head string) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	if b, ok := h.m[head]; ok {
		return b
	}
	b := []byte(head)
	if len(h.m) < maxHeaders {
		if h.m == nil {
			h.m = map[string][]byte{}
		}
		h.m[head] = b
	}
	return b
}

// Next reads the next top-level element of the stream. It returns io.EOF
// when the peer closed the stream (</stream:stream>). Whitespace between
// elements (keepalives) is skipped.
func (s *streamReader) Next() (*Element, error) {
	s.br.left = s.br.budget
	if s.dec == nil {
		s.br.wait()
		if err := s.revive(); err != nil {
			return nil, err
		}
	} else if s.dec.InputOffset() == s.br.n-s.base {
		// The decoder holds no byte it read ahead: wait here rather
		// than deep inside it.
		s.br.wait()
	}
	for {
		t, err := s.token()
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.CharData:
			if len(strings.TrimSpace(string(t))) != 0 {
				return nil, streamErr("bad-format", "text between stanzas")
			}
			s.br.left = s.br.budget
		case xml.EndElement:
			return nil, io.EOF
		case xml.StartElement:
			if t.Name.Space == nsStream && t.Name.Local == "stream" {
				return nil, streamErr("invalid-xml", "a stream cannot be opened inside a stream")
			}
			return s.element(t, 1, s.headNS)
		}
	}
}

// element reads the rest of the element start opens; scope holds the
// namespaces declared around it (the header's, its ancestors').
func (s *streamReader) element(start xml.StartElement, depth int, scope []string) (*Element, error) {
	if depth > s.maxDepth {
		return nil, streamErr("policy-violation", "elements nested deeper than %d", s.maxDepth)
	}
	if !ncName(start.Name.Local) {
		return nil, streamErr("not-well-formed", "element name %q is not a name XML namespaces allow (a letter or _ first, no colon after the prefix)", start.Name.Local)
	}
	scope, err := declare(scope, start.Attr)
	if err != nil {
		return nil, err
	}
	if !bound(start.Name.Space, scope) {
		return nil, streamErr("not-well-formed", "the prefix %s: of <%s:%s> is not declared (xmlns:%s=\"...\")", start.Name.Space, start.Name.Space, start.Name.Local, start.Name.Space)
	}
	e := &Element{Space: start.Name.Space, Local: start.Name.Local}
	for i, a := range start.Attr {
		for _, b := range start.Attr[:i] {
			if a.Name == b.Name {
				return nil, streamErr("not-well-formed", "attribute %s given twice", a.Name.Local)
			}
		}
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		if !ncName(a.Name.Local) {
			return nil, streamErr("not-well-formed", "attribute name %q is not a name XML namespaces allow (a letter or _ first, no colon after the prefix)", a.Name.Local)
		}
		if !bound(a.Name.Space, scope) {
			return nil, streamErr("not-well-formed", "the prefix %s: of attribute %s:%s is not declared (xmlns:%s=\"...\")", a.Name.Space, a.Name.Space, a.Name.Local, a.Name.Space)
		}
		e.Attr = append(e.Attr, a)
	}
	for {
		t, err := s.token()
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.StartElement:
			k, err := s.element(t, depth+1, scope)
			if err != nil {
				return nil, err
			}
			e.Nodes = append(e.Nodes, k)
		case xml.CharData:
			if n := len(e.Nodes); n > 0 {
				if prev, ok := e.Nodes[n-1].(string); ok {
					e.Nodes[n-1] = prev + string(t)
					continue
				}
			}
			e.Nodes = append(e.Nodes, string(t))
		case xml.EndElement:
			return e, nil
		}
	}
}

// declare returns scope with the namespaces attrs declare (xmlns="u",
// xmlns:p="u") added. A prefix declared empty (xmlns:p="") is an error of
// Namespaces in XML 1.0 (§3; only 1.1 allows it).
func declare(scope []string, attrs []xml.Attr) ([]string, error) {
	for _, a := range attrs {
		switch {
		case a.Name.Space == "xmlns":
			if a.Value == "" {
				return nil, streamErr("not-well-formed", "xmlns:%s=\"\": a prefix cannot be declared empty", a.Name.Local)
			}
		case a.Name.Space == "" && a.Name.Local == "xmlns" && a.Value != "":
		default:
			continue // not a declaration, or xmlns="" (no default namespace: "" is always bound)
		}
		if !slices.Contains(scope, a.Value) {
			scope = append(scope[:len(scope):len(scope)], a.Value)
		}
	}
	return scope, nil
}

// internNS replaces the namespaces of a header's scope that the stream
// protocols use by their constants, so that a connection keeps no
// strings of its own for them (the scope lives as long as the stream).
func internNS(scope []string) []string {
	for i, v := range scope {
		for _, c := range [...]string{nsClient, nsServer, nsComponent, nsStream, nsDialback, nsFraming} {
			if v == c {
				scope[i] = c
				break
			}
		}
	}
	return scope
}

// bound reports whether space, the namespace encoding/xml gave a name,
// is one declared in scope. encoding/xml leaves a prefix that no
// declaration binds as the name's namespace (<a:b/> is in "a"), which
// Namespaces in XML (§5, "Namespace constraint: Prefix Declared") and
// so RFC 6120 (§4.9.3.12, not-well-formed) refuse; an unprefixed name is
// in the default namespace, declared or none (""), and the xml: prefix
// is bound by definition.
func bound(space string, scope []string) bool {
	if space == "" || space == nsXML {
		return true
	}
	for i := len(scope) - 1; i >= 0; i-- {
		if scope[i] == space {
			return true
		}
	}
	return false
}

// ncName reports whether local, the local part of a name the decoder
// read, is an NCName (Namespaces in XML 1.0 §3): encoding/xml checks the
// whole qualified name, so "a:0x" or "a:-x" pass it with a local part no
// name may start with, which the door could not write back out. A
// non-ASCII first character is rare enough to be checked by the decoder
// itself (its tables are XML's).
func ncName(local string) bool {
	if local == "" || strings.IndexByte(local, ':') >= 0 {
		return false
	}
	c := local[0]
	if c < utf8.RuneSelf {
		return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_'
	}
	t, err := xml.NewDecoder(strings.NewReader("<" + local + "/>")).Token()
	if err != nil {
		return false
	}
	st, ok := t.(xml.StartElement)
	return ok && st.Name.Space == "" && st.Name.Local == local
}

// streamHeader is the opening tag the door sends (RFC 6120 §4.7).
func streamHeader(ns, from, to, id, lang string) string {
	var b strings.Builder
	b.WriteString(`<?xml version='1.0'?><stream:stream xmlns="`)
	escape(&b, ns)
	b.WriteString(`" xmlns:stream="http://etherx.jabber.org/streams" version="1.0"`)
	for _, a := range [][2]string{{"from", from}, {"to", to}, {"id", id}} {
		if a[1] != "" {
			b.WriteString(" " + a[0] + `="`)
			escape(&b, a[1])
			b.WriteByte('"')
		}
	}
	if lang != "" {
		b.WriteString(` xml:lang="`)
		escape(&b, lang)
		b.WriteByte('"')
	}
	b.WriteByte('>')
	return b.String()
}

// streamErrorXML is a stream error element, ready to send.
func streamErrorXML(e *streamError) string {
	x := El(nsStream, "error").Add(El(nsStreamErr, e.Condition))
	if e.Text != "" {
		// The text may quote the client's bytes (a parser's message):
		// keep it well-formed XML.
		text := strings.Map(func(r rune) rune {
			if r == utf8.RuneError || (r < 0x20 && r != '\t' && r != '\n' && r != '\r') {
				return '\uFFFD'
			}
			return r
		}, e.Text)
		x.Add(El(nsStreamErr, "text").Add(text))
	}
	return string(streamElement(x, nsClient))
}

// streamElement serializes an element of the stream namespace with the
// stream: prefix the header declares; its children are written in a
// scope whose default namespace is def (jabber:client).
func streamElement(e *Element, def string) []byte {
	var b strings.Builder
	b.WriteString("<stream:" + e.Local + ">")
	for _, n := range e.Nodes {
		switch n := n.(type) {
		case *Element:
			n.write(&b, def)
		case string:
			escape(&b, n)
		}
	}
	b.WriteString("</stream:" + e.Local + ">")
	return []byte(b.String())
}
