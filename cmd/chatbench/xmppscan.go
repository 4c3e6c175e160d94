package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"time"
	"unicode/utf8"
)

// The XMPP receive path (the join's too). encoding/xml builds tokens,
// attribute slices and strings for every stanza, which made the tool
// cost three times the server's CPU per delivery. So readLoop scans the
// stream's bytes itself: stanzaReader buffers them, scanner finds where
// each top-level element ends (tags, depth and quoted attribute values
// only), fastReader.groupchat reads a room message's body straight from
// those bytes and fastReader.roomPresence drops another occupant's
// presence (a 1,000-member room's joins send a million of them; join
// reads through the same loop). Anything else — iq, our own presence,
// errors, other messages, comments, CDATA, an element the fast reader
// does not fully understand or is too big to buffer — goes to the
// xml.Decoder, which reads the very same bytes through
// stanzaReader.ReadByte: it keeps the stream's namespace context and
// behaves (limits and errors too) as before.

// stanzaReader is the stream after the last restart. The xml.Decoder
// reads it a byte at a time (it is an io.ByteReader, so the decoder
// buffers nothing of its own); readLoop's scanner looks at buf[r:w]
// directly and drops the stanzas it handled.
type stanzaReader struct {
	src    io.Reader
	buf    []byte
	r, w   int
	err    error // src's, once buf[r:w] is spent
	served int64 // bytes handed out by ReadByte/Read
	// idle, if set, is called before a read that may wait: what was read
	// so far has been handled (the member's counts go to the run's).
	idle func()
}

const (
	scanBufSize = 16 << 10
	// maxScan bounds one element the scanner buffers; a longer one is
	// the decoder's, with its limits (maxText etc.).
	maxScan = 256 << 10
)

func newStanzaReader(src io.Reader) *stanzaReader {
	return &stanzaReader{src: src, buf: make([]byte, scanBufSize)}
}

// fill reads once from src into the buffer (growing it, up to maxScan
// plus one read, when it holds only unfinished data).
func (s *stanzaReader) fill() error {
	if s.err != nil {
		return s.err
	}
	if s.idle != nil {
		s.idle()
	}
	if s.r > 0 && s.r == s.w {
		s.r, s.w = 0, 0
	}
	if s.w == len(s.buf) {
		if s.r > 0 {
			s.w = copy(s.buf, s.buf[s.r:s.w])
			s.r = 0
		} else {
			nb := make([]byte, 2*len(s.buf))
			copy(nb, s.buf[:s.w])
			s.buf = nb
		}
	}
	for range 100 {
		n, err := s.src.Read(s.buf[s.w:])
		s.w += n
		if n > 0 {
			if err != nil {
				s.err = err
			}
			return nil
		}
		if err != nil {
			s.err = err
			return err
		}
	}
	s.err = io.ErrNoProgress
	return s.err
}

func (s *stanzaReader) ReadByte() (byte, error) {
	if s.r == s.w {
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	b := s.buf[s.r]
	s.r++
	s.served++
	return b, nil
}

func (s *stanzaReader) Read(p []byte) (int, error) {
	if s.r == s.w {
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.buf[s.r:s.w])
	s.r += n
	s.served += int64(n)
	return n, nil
}

// scanner finds the end of the next top-level element in a buffer that
// grows at its end; its state carries over between calls, so a stanza
// split over many reads is scanned once.
type scanner struct {
	pos   int // next byte to look at
	start int // the element's '<', or -1 before it
	depth int
	nodes int
	state uint8
	quote byte
	end   bool // the tag being scanned is an end tag
}

const (
	scText  = iota // character data (or between elements)
	scLT           // just after '<'
	scTag          // in a tag, outside quotes
	scQuote        // in a quoted attribute value
)

type scanResult int

const (
	scanMore     scanResult = iota // need more bytes
	scanElement                    // b[start:pos] is one whole element
	scanDecoder                    // let the decoder read from start
	scanSkipOnly                   // only whitespace so far: drop b[:pos]
)

func (sc *scanner) reset() { *sc = scanner{start: -1} }

// scan looks at b (the unconsumed buffer, which only grows at its end
// between calls until the scanner is reset).
func (sc *scanner) scan(b []byte) scanResult {
	i := sc.pos
	for i < len(b) {
		switch sc.state {
		case scText:
			if sc.start < 0 {
				c := b[i]
				if c == ' ' || c == '\n' || c == '\t' || c == '\r' {
					i++
					continue
				}
				if c != '<' {
					// Text between stanzas: not XMPP; the decoder's.
					sc.start, sc.pos = i, i
					return scanDecoder
				}
				sc.start = i
				i++
				sc.state = scLT
				continue
			}
			k := bytes.IndexByte(b[i:], '<')
			if k < 0 {
				i = len(b)
				continue
			}
			i += k + 1
			sc.state = scLT
		case scLT:
			switch b[i] {
			case '!', '?': // comment, CDATA, PI: the decoder's
				sc.pos = i
				return scanDecoder
			case '/':
				sc.end = true
				i++
			default:
				sc.end = false
				sc.nodes++
			}
			sc.state = scTag
		case scTag:
			for i < len(b) && !tagStop[b[i]] {
				i++
			}
			if i == len(b) {
				continue
			}
			if c := b[i]; c != '>' {
				sc.quote = c
				sc.state = scQuote
				i++
				continue
			}
			// A tag's '>': a '/' just before it is outside quotes
			// (inside, the closing quote would be there).
			selfClosing := !sc.end && b[i-1] == '/'
			i++
			sc.state = scText
			switch {
			case sc.end:
				sc.depth--
			case !selfClosing:
				sc.depth++
			}
			if sc.depth <= 0 {
				sc.pos = i
				return scanElement
			}
			if sc.depth > maxDepth || sc.nodes > maxNodes {
				sc.pos = i
				return scanDecoder // its error
			}
		case scQuote:
			k := bytes.IndexByte(b[i:], sc.quote)
			if k < 0 {
				i = len(b)
				continue
			}
			i += k + 1
			sc.state = scTag
		}
	}
	sc.pos = i
	if sc.start < 0 {
		return scanSkipOnly
	}
	if i-sc.start > maxScan {
		return scanDecoder
	}
	return scanMore
}

// fastReader is the fast path's context: the room's bare JID, our nick
// in it and the stream's default namespace (that of an unprefixed
// <message/>).
type fastReader struct {
	room    []byte
	nick    []byte // our occupant JID is room/nick
	rootNS  string
	scratch []byte // the body's decoded text
	dropped int    // presences roomPresence dropped (for tests)
}

// stanzaHead is what a top-level start tag says: its first unprefixed
// type and from (decoded), its xmlns.
type stanzaHead struct {
	typ, from, xmlns           []byte
	gotType, gotFrom, gotXMLNS bool
	selfClosing                bool
}

// head reads the start tag of an element named tag ("<message"). Like
// the rest of the fast path it is strict: a prefixed attribute whose
// local name is type or from (which could mean type or from, with a
// prefix bound to "") makes it fail.
func (p *xparse) head(tag string) (h stanzaHead, ok bool) {
	if !p.lit(tag) {
		return h, false
	}
	if p.i < len(p.b) && (isNameByte(p.b[p.i]) || p.b[p.i] >= utf8.RuneSelf) {
		return h, false // <messagefoo
	}
	for {
		p.space()
		c, ok := p.next()
		if !ok {
			return h, false
		}
		if c == '/' {
			if c, ok = p.next(); !ok || c != '>' {
				return h, false
			}
			h.selfClosing = true
			return h, true
		}
		if c == '>' {
			return h, true
		}
		p.i--
		name, val, ok := p.attr()
		if !ok {
			return h, false
		}
		switch string(name) {
		case "type":
			if !h.gotType {
				h.typ, h.gotType = val, true
			}
		case "from":
			if !h.gotFrom {
				h.from, h.gotFrom = val, true
			}
		case "xmlns":
			h.xmlns, h.gotXMLNS = val, true
		default:
			if k := bytes.IndexByte(name, ':'); k >= 0 {
				if l := string(name[k+1:]); l == "type" || l == "from" {
					return h, false
				}
			}
		}
	}
}

// content modes: what content looks for besides checking the element.
const (
	wantBody = 1 << iota // the text of the first <body/> child in jabber:client
	noSelf               // fail on a <status code='110'/> anywhere
)

// content reads the rest of an element whose start tag p has just read
// (name is its raw name, ns the default namespace inside it) up to its
// end, which must be the end of p.b, checking it as encoding/xml and
// readTree would: names matched by their raw bytes, text, entities,
// depth, nodes. With wantBody it returns the text of the first <body/>
// child in jabber:client, as elem.child would find it (found: there was
// one). ok is false for anything it does not fully check (comments,
// CDATA, a prefixed <body>, CR, ...): then the decoder reads the
// element.
func (f *fastReader) content(p *xparse, name []byte, ns string, mode int) (body []byte, found, ok bool) {
	el := p.b
	var stack [maxDepth][]byte
	stack[0] = name
	depth := 1
	nodes := 1
	text := 0
	body = f.scratch[:0]
	inBody := false
	for {
		// Character data up to the next '<'.
		k := bytes.IndexByte(el[p.i:], '<')
		if k < 0 {
			return nil, false, false
		}
		if k > 0 {
			run := el[p.i : p.i+k]
			if text += len(run); text > maxText {
				return nil, false, false
			}
			keep := inBody && depth == 2
			var ok bool
			if keep {
				body, ok = appendText(body, run, true)
			} else {
				_, ok = appendText(nil, run, false)
			}
			if !ok || bytes.Contains(run, []byte("]]>")) {
				return nil, false, false
			}
			p.i += k
		}
		p.i++ // '<'
		c, ok := p.next()
		if !ok {
			return nil, false, false
		}
		switch c {
		case '!', '?':
			return nil, false, false
		case '/':
			name, ok := p.name()
			if !ok || !bytes.Equal(name, stack[depth-1]) {
				return nil, false, false
			}
			p.space()
			if c, ok := p.next(); !ok || c != '>' {
				return nil, false, false
			}
			depth--
			if depth == 1 && inBody {
				inBody, found = false, true
			}
			if depth == 0 {
				if p.i != len(el) {
					return nil, false, false
				}
				f.scratch = body[:0]
				return body, found, true
			}
			continue
		}
		p.i--
		name, ok := p.name()
		if !ok {
			return nil, false, false
		}
		if nodes++; nodes > maxNodes || depth >= maxDepth {
			return nil, false, false
		}
		local := name
		if k := bytes.IndexByte(name, ':'); k >= 0 {
			local = name[k+1:]
		}
		candidate := false
		if mode&wantBody != 0 && depth == 1 && !found {
			if len(local) != len(name) && string(local) == "body" {
				return nil, false, false // <p:body/>: which namespace is the decoder's business
			}
			candidate = string(name) == "body"
		}
		status := mode&noSelf != 0 && string(local) == "status"
		bodyNS, gotBodyNS := []byte(nil), false
		selfClosing := false
		for {
			p.space()
			c, ok := p.next()
			if !ok {
				return nil, false, false
			}
			if c == '/' {
				if c, ok = p.next(); !ok || c != '>' {
					return nil, false, false
				}
				selfClosing = true
				break
			}
			if c == '>' {
				break
			}
			p.i--
			an, av, ok := p.attr()
			if !ok {
				return nil, false, false
			}
			if candidate && string(an) == "xmlns" {
				bodyNS, gotBodyNS = av, true
			}
			if status && string(av) == "110" {
				// Any attribute, prefixed or not: a self-presence
				// (or a nick the server changed) is join's to see.
				return nil, false, false
			}
		}
		if candidate {
			bns := ns
			if gotBodyNS {
				bns = string(bodyNS)
			}
			candidate = bns == "jabber:client"
		}
		if selfClosing {
			if candidate {
				found = true
			}
			continue
		}
		if candidate {
			inBody = true
		}
		stack[depth] = name
		depth++
	}
}

// groupchat reads el, one whole top-level element, and returns the
// body's text if el is a groupchat message from the room with a body
// in jabber:client, exactly as encoding/xml (readTree, elem.get and
// elem.child) would see it. It is strict: anything it does not fully
// check (names outside ASCII, a prefixed <body>, CR, comments, bad
// entities, ...) makes it return false, and the decoder then reads
// el.
func (f *fastReader) groupchat(el []byte) ([]byte, bool) {
	p := &xparse{b: el}
	h, ok := p.head("<message")
	if !ok || h.selfClosing || string(h.typ) != "groupchat" {
		return nil, false
	}
	if !bytes.EqualFold(bareJIDBytes(h.from), f.room) {
		return nil, false
	}
	ns := f.rootNS
	if h.gotXMLNS {
		ns = string(h.xmlns)
	}
	body, found, ok := f.content(p, el[1:len("<message")], ns, wantBody)
	return body, ok && found
}

// roomPresence reports whether el, one whole top-level element, is a
// presence the client ignores: another occupant's (from the room, not
// from room/nick, whatever the case), available or unavailable, in
// jabber:client, well formed as encoding/xml would see it, and without
// a <status code='110'/> (join's mark of the self-presence). Neither
// readLoop (handle) nor join does anything with such a presence but
// note it; anything else (errors, our own presence, what it does not
// fully check) is the decoder's, as before.
func (f *fastReader) roomPresence(el []byte) bool {
	p := &xparse{b: el}
	h, ok := p.head("<presence")
	if !ok {
		return false
	}
	if h.gotType && string(h.typ) != "unavailable" {
		return false
	}
	bare := bareJIDBytes(h.from)
	if !h.gotFrom || !bytes.EqualFold(bare, f.room) {
		return false
	}
	if len(bare) < len(h.from) && bytes.EqualFold(h.from[len(bare)+1:], f.nick) {
		return false // ours
	}
	if h.gotXMLNS && string(h.xmlns) != "jabber:client" || !h.gotXMLNS && f.rootNS != "jabber:client" {
		return false
	}
	if h.selfClosing {
		ok = p.i == len(el)
	} else {
		_, _, ok = f.content(p, el[1:len("<presence")], "jabber:client", noSelf)
	}
	if ok {
		f.dropped++
	}
	return ok
}

func bareJIDBytes(j []byte) []byte {
	if k := bytes.IndexByte(j, '/'); k >= 0 {
		return j[:k]
	}
	return j
}

// xparse reads one element's bytes for the fast path.
type xparse struct {
	b []byte
	i int
}

func (p *xparse) lit(s string) bool {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

func (p *xparse) next() (byte, bool) {
	if p.i >= len(p.b) {
		return 0, false
	}
	c := p.b[p.i]
	p.i++
	return c, true
}

func (p *xparse) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// Byte classes: tagStop ends a stretch of a tag (outside quotes);
// nameByte is an ASCII name byte; plainText is a byte of text that
// needs no second look (not '&', CR, other controls or non-ASCII).
var tagStop, nameByte, plainText [256]bool

func init() {
	for _, c := range []byte(`>'"`) {
		tagStop[c] = true
	}
	for c := range 256 {
		b := byte(c)
		nameByte[c] = 'A' <= b && b <= 'Z' || 'a' <= b && b <= 'z' || '0' <= b && b <= '9' ||
			b == '_' || b == ':' || b == '.' || b == '-'
		plainText[c] = b >= 0x20 && b < utf8.RuneSelf && b != '&' || b == '\t' || b == '\n'
	}
}

func isNameByte(c byte) bool { return nameByte[c] }

// name reads an XML name, ASCII only (a name with other bytes is the
// decoder's), with at most one ':' (more is an error to the decoder).
func (p *xparse) name() ([]byte, bool) {
	s, colons := p.i, 0
	for p.i < len(p.b) && nameByte[p.b[p.i]] {
		if p.b[p.i] == ':' {
			colons++
		}
		p.i++
	}
	if p.i == s || p.i < len(p.b) && p.b[p.i] >= utf8.RuneSelf {
		return nil, false
	}
	n := p.b[s:p.i]
	if c := n[0]; '0' <= c && c <= '9' || c == '.' || c == '-' || colons > 1 {
		return nil, false
	}
	return n, true
}

// attr reads name = 'value' (or "value") and returns the value's
// decoded text.
func (p *xparse) attr() (name, val []byte, ok bool) {
	if name, ok = p.name(); !ok {
		return nil, nil, false
	}
	p.space()
	if c, ok := p.next(); !ok || c != '=' {
		return nil, nil, false
	}
	p.space()
	q, ok := p.next()
	if !ok || q != '\'' && q != '"' {
		return nil, nil, false
	}
	k := bytes.IndexByte(p.b[p.i:], q)
	if k < 0 {
		return nil, nil, false
	}
	raw := p.b[p.i : p.i+k]
	p.i += k + 1
	if bytes.IndexByte(raw, '<') >= 0 {
		return nil, nil, false
	}
	if bytes.IndexByte(raw, '&') < 0 {
		// The common case: no copy.
		if !validText(raw) {
			return nil, nil, false
		}
		return name, raw, true
	}
	val, ok = appendText(nil, raw, true) // rare: a copy
	return name, val, ok
}

// validText reports whether s (without '&') is text the decoder takes
// as is: valid UTF-8 of XML characters, and no CR (which it rewrites).
func validText(s []byte) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if plainText[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && n == 1 || !inCharRange(r) {
			return false
		}
		i += n
	}
	return true
}

func inCharRange(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// appendText decodes s (character data, or an attribute value's)
// onto dst if keep, checking it as the decoder does:
// the five predefined entities and character references, valid XML
// characters; false for anything else (and for CR).
func appendText(dst, s []byte, keep bool) ([]byte, bool) {
	for len(s) > 0 {
		k := bytes.IndexByte(s, '&')
		if k < 0 {
			k = len(s)
		}
		if !validText(s[:k]) {
			return dst, false
		}
		if keep {
			dst = append(dst, s[:k]...)
		}
		s = s[k:]
		if len(s) == 0 {
			break
		}
		semi := bytes.IndexByte(s, ';')
		if semi < 0 {
			return dst, false
		}
		ent := s[1:semi]
		s = s[semi+1:]
		var r rune
		switch string(ent) {
		case "lt":
			r = '<'
		case "gt":
			r = '>'
		case "amp":
			r = '&'
		case "apos":
			r = '\''
		case "quot":
			r = '"'
		default:
			if len(ent) < 2 || ent[0] != '#' {
				return dst, false
			}
			digits, base := ent[1:], rune(10)
			if digits[0] == 'x' {
				digits, base = digits[1:], 16
			}
			if len(digits) == 0 {
				return dst, false
			}
			for _, c := range digits {
				var d rune
				switch {
				case '0' <= c && c <= '9':
					d = rune(c - '0')
				case base == 16 && 'a' <= c && c <= 'f':
					d = rune(c-'a') + 10
				case base == 16 && 'A' <= c && c <= 'F':
					d = rune(c-'A') + 10
				default:
					return dst, false
				}
				if r = r*base + d; r > utf8.MaxRune {
					return dst, false
				}
			}
			if !inCharRange(r) {
				return dst, false
			}
		}
		if keep {
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst, true
}

// receive is readLoop's loop: room bodies to onBody, other occupants'
// presences dropped (fastReader.roomPresence), every other top-level
// element (decoded as before) to onElem, with the time the read that
// completed it returned. It returns the error that ended the stream
// (errStreamClosed for its end).
func receive(in *stanzaReader, dec *xml.Decoder, f *fastReader, onBody func([]byte, time.Time), onElem func(*elem, time.Time)) error {
	return scanLoop(in, dec, func(el []byte, now time.Time) bool {
		if body, ok := f.groupchat(el); ok {
			onBody(body, now)
			return true
		}
		return f.roomPresence(el)
	}, func(el *elem, now time.Time) bool {
		onElem(el, now)
		return false
	})
}

// scanLoop reads the stream's top-level elements. Each whole element
// the scanner finds goes to fast first, with the time the read that
// completed it returned; if fast did not handle it, the decoder reads
// it and onElem gets it, as it does everything the scanner leaves to
// the decoder. scanLoop returns nil once onElem returns true (the
// reader is then at the end of that element, and another scanLoop can
// carry on), else the error that ended the stream (errStreamClosed for
// its end).
func scanLoop(in *stanzaReader, dec *xml.Decoder, fast func(el []byte, now time.Time) bool, onElem func(*elem, time.Time) bool) error {
	var sc scanner
	sc.reset()
	now := time.Now()
	slow := func() (bool, error) {
		el, err := readElem(dec)
		if err != nil {
			return false, err
		}
		return onElem(el, time.Now()), nil
	}
	for {
		if dec.InputOffset() != in.served {
			// The decoder holds a byte back (never after a whole
			// element): let it read everything, as before.
			for {
				if done, err := slow(); err != nil || done {
					return err
				}
			}
		}
		var res scanResult
		if in.r == in.w {
			res = scanMore
		} else {
			res = sc.scan(in.buf[in.r:in.w])
		}
		switch res {
		case scanMore:
			// Keep the scanned bytes: fill moves them, not their offsets
			// from in.r.
			if err := in.fill(); err != nil {
				// The end, or a read error: the decoder names it as
				// before ("unexpected EOF" and the like).
				in.r += max(sc.start, 0)
				sc.reset()
				if done, err := slow(); err != nil || done {
					return err
				}
				continue
			}
			now = time.Now()
		case scanSkipOnly:
			in.r += sc.pos
			sc.reset()
		case scanElement:
			el := in.buf[in.r+sc.start : in.r+sc.pos]
			if fast(el, now) {
				in.r += sc.pos
				sc.reset()
				continue
			}
			in.r += sc.start
			want := in.served + int64(len(el))
			sc.reset()
			e, err := readElem(dec)
			if err != nil {
				return err
			}
			if in.served != want {
				// The decoder disagreed on where el ends (not well
				// formed XML, which it did not mind?): carry on from
				// where it stopped.
				now = time.Now()
			}
			if onElem(e, now) {
				return nil
			}
		case scanDecoder:
			in.r += max(sc.start, 0)
			sc.reset()
			if done, err := slow(); err != nil || done {
				return err
			}
		}
	}
}
