package irc

import (
	"bytes"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/ergochat/irc-go/ircreader"

	"chatbox/internal/wsconn"
)

// This file is IRC over WebSocket (IRCv3 "websocket" extension,
// https://ircv3.net/specs/extensions/websocket), served on the web
// listener at /irc-websocket. Subprotocols text.ircv3.net (text
// messages, UTF-8) and binary.ircv3.net (binary messages); a client
// asking for neither gets text. One IRC line per message, without CR LF
// (a trailing one is tolerated and removed; CR or LF inside a message
// ends the connection with 1008). The connection is served by the same
// conn as a TCP one (wsconn presents it as a net.Conn, wsLines frames
// it), so registration, SASL, flood control, the sendq and the ping
// time-outs are the TCP ones. A message longer than a line may be gets
// 417 and the connection ends (1009), as a TCP line over the reader's
// buffer does. In text mode a binary message (1003) or invalid UTF-8
// (1007) ends it; in binary mode, non-UTF-8 lines get FAIL INVALID_UTF8
// as on TCP. Left out: WebSocket-level pings (the IRC PING is used) and
// per-message compression. Any Origin is accepted: authentication is in
// the protocol, no cookie is involved.

// WebSocketPath is where the web listener mounts ServeWebSocket.
const WebSocketPath = "/irc-websocket"

// wsNetConn is a WebSocket connection and whether its HTTP listener is
// HTTPS (the client is then shown as secure, user mode +Z).
type wsNetConn struct {
	*wsconn.Conn
	tls bool
}

// ServeWebSocket serves one IRC client over WebSocket; it returns when
// the connection has ended. Mount it on the web listener at
// WebSocketPath.
func (s *Server) ServeWebSocket(w http.ResponseWriter, r *http.Request) {
	remote := wsconn.TCPAddr(r.RemoteAddr)
	ip := remoteIP(remote)
	s.mu.Lock()
	serving := s.serving
	reason, banned := s.klinedLocked(ip)
	tooMany := s.perAddr[ip] >= s.cfg.ConnectionsPerAddress
	if serving && !banned && !tooMany {
		s.perAddr[ip]++
		s.wg.Add(1) // held while the connection is served: Serve waits for it
	}
	s.mu.Unlock()
	switch {
	case !serving:
		http.Error(w, "the IRC service is not running now: try again in a moment", http.StatusServiceUnavailable)
		return
	case banned:
		http.Error(w, "You are banned from this server: "+reason, http.StatusForbidden)
		return
	case tooMany:
		http.Error(w, "too many connections from your address: close some first", http.StatusTooManyRequests)
		return
	}
	defer s.wg.Done()
	rc := http.NewResponseController(w) // the web server's deadlines would cut the session
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols: []string{"text.ircv3.net", "binary.ircv3.net"}, InsecureSkipVerify: true})
	if err != nil {
		s.log.Debug("websocket handshake failed", "addr", ip, "err", err)
		s.release(ip)
		return // Accept answered the request
	}
	f := &wsLines{typ: websocket.MessageText}
	if ws.Subprotocol() == "binary.ircv3.net" {
		f.typ = websocket.MessageBinary
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	nc := &wsNetConn{Conn: wsconn.New(ws, f, maxReadLine-2, local, remote), tls: r.TLS != nil}
	done := make(chan struct{})
	s.serveConn(nc, ip, done)
	s.mu.Lock()
	stopped := !s.serving // shutdown may have listed its connections before this one
	s.mu.Unlock()
	if stopped {
		nc.Close()
	}
	<-done
}

// release gives back a connection slot taken for an address that was
// not served after all.
func (s *Server) release(ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perAddr[ip]--; s.perAddr[ip] <= 0 {
		delete(s.perAddr, ip)
	}
}

// wsLines frames IRC lines as WebSocket messages.
type wsLines struct {
	typ websocket.MessageType
	buf []byte // output not yet sent (an incomplete line)
}

func (f *wsLines) Type() websocket.MessageType { return f.typ }

// In turns one message into a line for the IRC reader.
func (f *wsLines) In(typ websocket.MessageType, msg []byte, tooBig bool) ([]byte, error) {
	text := f.typ == websocket.MessageText
	switch {
	case tooBig:
		return nil, &wsconn.ProtocolError{Status: websocket.StatusMessageTooBig, Reason: "Input line too long", Err: ircreader.ErrReadQ}
	case text && typ != websocket.MessageText:
		return nil, &wsconn.ProtocolError{Status: websocket.StatusUnsupportedData,
			Reason: "Binary message on a text.ircv3.net connection: send text messages"}
	case text && !utf8.Valid(msg):
		return nil, &wsconn.ProtocolError{Status: websocket.StatusInvalidFramePayloadData,
			Reason: "Invalid UTF-8 in a text message"}
	}
	msg = bytes.TrimRight(msg, "\r\n")
	if bytes.ContainsAny(msg, "\r\n") {
		return nil, &wsconn.ProtocolError{Status: websocket.StatusPolicyViolation,
			Reason: "One IRC line per WebSocket message, without CR or LF"}
	}
	if len(msg) == 0 {
		return nil, nil
	}
	return append(msg, '\r', '\n'), nil
}

// Out splits the door's output into lines, one message each.
func (f *wsLines) Out(p []byte) [][]byte {
	f.buf = append(f.buf, p...)
	var msgs [][]byte
	for {
		i := bytes.IndexByte(f.buf, '\n')
		if i < 0 {
			break
		}
		line := bytes.TrimRight(f.buf[:i], "\r")
		if f.typ == websocket.MessageText && !utf8.Valid(line) {
			line = []byte(strings.ToValidUTF8(string(line), "\uFFFD"))
		} else {
			line = bytes.Clone(line)
		}
		msgs = append(msgs, line)
		f.buf = f.buf[i+1:]
	}
	f.buf = append([]byte(nil), f.buf...)
	return msgs
}
