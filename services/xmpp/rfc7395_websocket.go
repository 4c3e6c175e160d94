package xmpp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"chatbox/internal/wsconn"
)

// This file is XMPP over WebSocket (RFC 7395), served on the web
// listener at /xmpp-websocket with the subprotocol "xmpp". A WebSocket
// is one more kind of c2s connection (kindWebSocket): wsconn presents it
// as a net.Conn, and wsFramer turns the framing into the byte stream the
// TCP reader already parses (an <open/> becomes a stream header, <close/>
// the stream's end tag, every other message goes through as is) and the
// door's output back into one message per top-level element. So SASL,
// binding, routing, stream management, the stanza size and depth bounds,
// the rate limit, the login time-out and the output queue are the TCP
// ones. Differences: no STARTTLS (TLS is the HTTP listener's business),
// so no channel binding (-PLUS) and no EXTERNAL; PLAIN is offered only
// when the web listener is HTTPS or the client is on loopback (SCRAM
// always). Each message must be one complete element (§3.3.3): anything
// else is a stream error. Binary messages (1003), invalid UTF-8 (1007)
// and messages over xmpp.max_stanza_bytes (policy-violation, then 1009)
// end the connection. Whitespace keepalives are neither sent nor needed
// (§3.7: the door pings, XEP-0199). The "see-other-uri" redirect is not
// used. Any Origin is accepted: authentication is in the stream, no
// cookie is involved.

const (
	nsFraming = "urn:ietf:params:xml:ns:xmpp-framing"
	// WebSocketPath is where the web listener mounts ServeWebSocket.
	WebSocketPath = "/xmpp-websocket"
)

// ServeWebSocket serves one client over RFC 7395; it returns when the
// connection has ended. Mount it on the web listener at WebSocketPath.
func (s *Server) ServeWebSocket(w http.ResponseWriter, r *http.Request) {
	remote := wsconn.TCPAddr(r.RemoteAddr)
	ip := remoteIP(remote)
	s.mu.Lock()
	serving := s.serving
	tooMany := s.perAddr[ip] >= s.cfg.ConnectionsPerAddress
	if serving && !tooMany {
		s.perAddr[ip]++
		s.wg.Add(1)
	}
	s.mu.Unlock()
	switch {
	case !serving:
		http.Error(w, "the XMPP service is not running now: try again in a moment", http.StatusServiceUnavailable)
		return
	case tooMany:
		http.Error(w, "too many connections from your address: close some first", http.StatusTooManyRequests)
		return
	}
	defer func() {
		s.mu.Lock()
		if s.perAddr[ip]--; s.perAddr[ip] <= 0 {
			delete(s.perAddr, ip)
		}
		s.mu.Unlock()
		s.wg.Done()
	}()
	// The web server's request deadlines would cut the session.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"xmpp"}, InsecureSkipVerify: true})
	if err != nil {
		s.log.Debug("websocket handshake failed", "addr", ip, "err", err)
		return // Accept answered the request
	}
	if ws.Subprotocol() != "xmpp" {
		ws.Close(websocket.StatusPolicyViolation, "ask for the xmpp subprotocol (RFC 7395)")
		return
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	nc := wsconn.New(ws, &wsFramer{max: s.cfg.MaxStanzaBytes}, int64(s.cfg.MaxStanzaBytes), local, remote)
	c := newConn(s, nc, ip, kindWebSocket)
	c.secure = r.TLS != nil || net.ParseIP(ip).IsLoopback()
	c.webOrigin = webOrigin(r)
	s.mu.Lock()
	s.conns[c] = struct{}{}
	stopped := !s.serving // shutdown may have listed its connections before this one
	s.mu.Unlock()
	if stopped {
		nc.Close()
	}
	c.run()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// wsFramer is RFC 7395's framing over the door's byte stream.
type wsFramer struct {
	max int

	// Output: what the door wrote and was not sent yet.
	buf     []byte
	scan    int // where the next tag is looked for
	elStart int // start of the top-level element being collected, -1 none
	depth   int
}

func (f *wsFramer) Type() websocket.MessageType { return websocket.MessageText }

// In checks one client message and turns it into stream bytes.
func (f *wsFramer) In(typ websocket.MessageType, msg []byte, tooBig bool) ([]byte, error) {
	switch {
	case tooBig:
		text := fmt.Sprintf("stanza larger than %d bytes", f.max)
		return nil, &wsconn.ProtocolError{Status: websocket.StatusMessageTooBig, Reason: text,
			Err: streamErr("policy-violation", "%s", text)}
	case typ != websocket.MessageText:
		text := "XMPP over WebSocket is sent in text messages (RFC 7395)"
		return nil, &wsconn.ProtocolError{Status: websocket.StatusUnsupportedData, Reason: text,
			Err: streamErr("bad-format", "%s", text)}
	case !utf8.Valid(msg):
		text := "a message is not valid UTF-8"
		return nil, &wsconn.ProtocolError{Status: websocket.StatusInvalidFramePayloadData, Reason: text,
			Err: streamErr("unsupported-encoding", "%s: XMPP is UTF-8 only", text)}
	}
	root, err := frameRoot(msg)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, nil // only whitespace: nothing to read
	}
	if ns := rawNS(*root); root.Name.Space == "" && ns == nsFraming {
		switch root.Name.Local {
		case "open":
			return openToHeader(*root), nil
		case "close":
			return []byte("</stream:stream>"), nil
		}
		return nil, streamErr("bad-format", "<%s/> is not an RFC 7395 framing element", root.Name.Local)
	}
	return msg, nil
}

// frameRoot checks that msg is one complete XML element (RFC 7395
// §3.3.3) and returns its start tag (nil for a message of whitespace).
func frameRoot(msg []byte) (*xml.StartElement, error) {
	d := xml.NewDecoder(bytes.NewReader(msg))
	d.Strict = true
	var root *xml.StartElement
	depth, done := 0, false
	for {
		t, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			if depth > 0 {
				return nil, streamErr("not-well-formed", "a message must hold one complete element (RFC 7395 §3.3.3)")
			}
			return root, nil
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) && strings.Contains(se.Msg, "entity") {
				return nil, streamErr("restricted-xml", "%s", se.Msg)
			}
			return nil, streamErr("not-well-formed", "%v", err)
		}
		switch t := t.(type) {
		case xml.StartElement:
			if done {
				return nil, streamErr("not-well-formed", "one element per message (RFC 7395 §3.3.3)")
			}
			if depth == 0 {
				st := t.Copy()
				root = &st
			}
			depth++
		case xml.EndElement:
			depth--
			if depth < 0 {
				return nil, streamErr("not-well-formed", "an end tag without a start")
			}
			if depth == 0 {
				done = true
			}
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return nil, streamErr("bad-format", "text outside an element")
			}
		case xml.ProcInst:
			if t.Target != "xml" || root != nil {
				return nil, streamErr("restricted-xml", "processing instructions are not allowed in XMPP")
			}
		case xml.Comment:
			return nil, streamErr("restricted-xml", "comments are not allowed in XMPP")
		case xml.Directive:
			return nil, streamErr("restricted-xml", "DTDs and other directives are not allowed in XMPP")
		}
	}
}

// rawNS is the default namespace a raw start tag declares.
func rawNS(st xml.StartElement) string {
	for _, a := range st.Attr {
		if a.Name.Space == "" && a.Name.Local == "xmlns" {
			return a.Value
		}
	}
	return ""
}

// openToHeader rewrites <open/> as the stream header the reader expects.
func openToHeader(st xml.StartElement) []byte {
	var b strings.Builder
	b.WriteString(`<stream:stream xmlns="` + nsClient + `" xmlns:stream="` + nsStream + `"`)
	for _, a := range st.Attr {
		name := a.Name.Local
		switch {
		case a.Name.Space == "" && (name == "to" || name == "from" || name == "version" || name == "id"):
		case a.Name.Space == "xml" && name == "lang":
			name = "xml:lang"
		default:
			continue
		}
		b.WriteString(" " + name + `="`)
		escape(&b, a.Value)
		b.WriteByte('"')
	}
	b.WriteByte('>')
	return []byte(b.String())
}

// Out splits the door's output into messages. The door writes only what
// its own serializer made (element.go, stream.go): '<' and '>' never
// appear in text or attribute values, so tags are found by bytes.
func (f *wsFramer) Out(p []byte) [][]byte {
	if f.buf == nil {
		f.elStart = -1
	}
	f.buf = append(f.buf, p...)
	var msgs [][]byte
	for {
		lt := bytes.IndexByte(f.buf[f.scan:], '<')
		if lt < 0 {
			if f.elStart < 0 {
				f.scan = len(f.buf) // whitespace between elements
			}
			break
		}
		i := f.scan + lt
		gt := bytes.IndexByte(f.buf[i:], '>')
		if gt < 0 {
			f.scan = i
			break
		}
		next := i + gt + 1
		tag := f.buf[i:next]
		f.scan = next
		switch {
		case bytes.HasPrefix(tag, []byte("<?")):
		case f.elStart < 0 && bytes.HasPrefix(tag, []byte("<stream:stream ")):
			msgs = append(msgs, headerToOpen(tag))
		case f.elStart < 0 && string(tag) == "</stream:stream>":
			msgs = append(msgs, []byte(`<close xmlns="`+nsFraming+`"/>`))
		case tag[1] == '/':
			if f.elStart < 0 {
				continue // not the door's output: nothing to close
			}
			f.depth--
			if f.depth <= 0 {
				msgs = append(msgs, framed(f.buf[f.elStart:next]))
				f.elStart, f.depth = -1, 0
			}
		default:
			if f.elStart < 0 {
				f.elStart = i
			}
			if tag[len(tag)-2] != '/' {
				f.depth++
			} else if f.depth == 0 {
				msgs = append(msgs, framed(f.buf[f.elStart:next]))
				f.elStart = -1
			}
		}
	}
	// Keep only the unsent tail.
	keep := f.scan
	if f.elStart >= 0 {
		keep = f.elStart
		f.elStart = 0
	}
	f.scan -= keep
	f.buf = append(f.buf[:0], f.buf[keep:]...)
	return msgs
}

// framed makes a top-level element a standalone document: the namespace
// declarations the stream header made are repeated on it.
func framed(el []byte) []byte {
	end := bytes.IndexAny(el, " />")
	name := el[1:end]
	var decl string
	switch {
	case bytes.HasPrefix(name, []byte("stream:")):
		decl = ` xmlns:stream="` + nsStream + `"`
	case !bytes.Contains(el[:bytes.IndexByte(el, '>')], []byte(` xmlns="`)):
		decl = ` xmlns="` + nsClient + `"`
	}
	out := make([]byte, 0, len(el)+len(decl))
	out = append(out, el[:end]...)
	out = append(out, decl...)
	return append(out, el[end:]...)
}

// headerToOpen rewrites the door's stream header as <open/>.
func headerToOpen(tag []byte) []byte {
	d := xml.NewDecoder(bytes.NewReader(tag))
	t, err := d.RawToken()
	st, ok := t.(xml.StartElement)
	var b strings.Builder
	b.WriteString(`<open xmlns="` + nsFraming + `"`)
	if err == nil && ok {
		for _, a := range st.Attr {
			name := a.Name.Local
			switch {
			case a.Name.Space == "" && (name == "from" || name == "to" || name == "id" || name == "version"):
			case a.Name.Space == "xml" && name == "lang":
				name = "xml:lang"
			default:
				continue
			}
			b.WriteString(" " + name + `="`)
			escape(&b, a.Value)
			b.WriteByte('"')
		}
	}
	b.WriteString("/>")
	return []byte(b.String())
}
