package xmpp

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"chatbox/services/chat"
)

// XEP-0363 HTTP File Upload: when the box shares files (Config.Uploads,
// the upload service), the door hosts upload.<domain>, listed in the
// domain's disco#items. Its disco#info is identity store/file, feature
// urn:xmpp:http:upload:0 and the XEP-0128 form giving max-file-size
// (§3); a <request/> (§4) from an account gets a <slot/> with the PUT
// URL, the Authorization header the PUT must carry (§5) and the GET URL.
// Errors per §6: too large is not-acceptable with <file-too-large/> and
// <max-file-size/>, over quota is resource-constraint (type wait) saying
// how much is left, a malformed request is bad-request. The HTTP side is
// services/upload's. Left out: the pre-:0 namespaces (urn:xmpp:http:upload,
// eu:siacs:conversations:http:upload) and the optional <retry/> stamp.

const (
	nsUpload    = "urn:xmpp:http:upload:0"
	uploadXData = "jabber:x:data"
)

// Uploader hands out upload slots (services/upload, adapted by the
// appliance). Its errors are classified by the interfaces below.
type Uploader interface {
	Slot(ctx context.Context, account, filename string, size int64, contentType string) (UploadSlot, error)
	MaxFileBytes() int64
}

// UploadSlot is where a client puts a file and where it is fetched from.
type UploadSlot struct {
	PutURL, GetURL string
	Headers        map[string]string // sent with the PUT
}

// Errors an Uploader returns are matched with errors.As to these.
type (
	// UploadTooLarge is a file larger than the service takes.
	UploadTooLarge interface {
		error
		MaxBytes() int64
	}
	// UploadOverQuota is an account without space for the file.
	UploadOverQuota interface {
		error
		RemainingBytes() int64
	}
	// UploadBadRequest is a malformed request.
	UploadBadRequest interface {
		error
		BadRequest() bool
	}
	// UploadTemporary is a refusal to retry later.
	UploadTemporary interface {
		error
		Temporary() bool
	}
)

// uploadIdentity is the upload service's disco identity (XEP-0363 §3).
var uploadIdentity = discoIdentity{Category: "store", Type: "file", Name: "File upload"}

func registerUpload(f *features, s *Server) {
	if s.cfg.Uploads == nil {
		return
	}
	f.domains[s.uploadDomain()] = s.uploadService
}

// uploadDomain is the upload service's JID.
func (s *Server) uploadDomain() string { return "upload." + strings.ToLower(s.cfg.Domain) }

// uploadService answers what clients send to upload.<domain>.
func (s *Server) uploadService(ss *session, el *Element) {
	typ := el.Get("type")
	if typ == "error" || typ == "result" {
		return
	}
	switch el.Local {
	case "iq":
	case "message":
		ss.replyErr(el, "service-unavailable", "the file upload service takes no messages")
		return
	default:
		return // presence: the service has none to share
	}
	p := el.First()
	switch {
	case p.Is(nsDiscoInfo, "query"):
		if !discoGet(ss, el) {
			return
		}
		if node := p.Get("node"); node != "" {
			ss.replyErr(el, "item-not-found", "the upload service has no disco node "+node)
			return
		}
		q := discoInfoElement("", []discoIdentity{uploadIdentity}, []string{nsDiscoInfo, nsDiscoItems, nsUpload})
		q.Add(El(uploadXData, "x", "type", "result").Add(
			El(uploadXData, "field", "var", "FORM_TYPE", "type", "hidden").Add(El(uploadXData, "value").Add(nsUpload)),
			El(uploadXData, "field", "var", "max-file-size").Add(
				El(uploadXData, "value").Add(strconv.FormatInt(s.cfg.Uploads.MaxFileBytes(), 10)))))
		ss.result(el, q)
	case p.Is(nsDiscoItems, "query"):
		if !discoGet(ss, el) {
			return
		}
		if node := p.Get("node"); node != "" {
			ss.replyErr(el, "item-not-found", "the upload service has no disco node "+node)
			return
		}
		ss.result(el, El(nsDiscoItems, "query"))
	case p.Is(nsPing, "ping"):
		ss.result(el, nil)
	case p.Is(nsUpload, "request"):
		s.uploadRequest(ss, el, p)
	default:
		ss.replyErr(el, "service-unavailable", "")
	}
}

// uploadRequest answers a slot request (XEP-0363 §4).
func (s *Server) uploadRequest(ss *session, iq, req *Element) {
	if iq.Get("type") != "get" {
		ss.replyErr(iq, "bad-request", "a slot request is an IQ get")
		return
	}
	if ss.account == "" || (chat.IsGuest(ss.account) && !s.guestMayUpload()) {
		ss.replyErr(iq, "forbidden", "only accounts of this box may share files")
		return
	}
	name := req.Get("filename")
	size, err := strconv.ParseInt(req.Get("size"), 10, 64)
	switch {
	case strings.TrimSpace(name) == "":
		ss.replyErr(iq, "bad-request", "the request needs a filename")
		return
	case err != nil || size < 0:
		ss.replyErr(iq, "bad-request", "the request needs the file's size in bytes")
		return
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	slot, err := s.cfg.Uploads.Slot(ctx, ss.account, name, size, req.Get("content-type"))
	if err != nil {
		s.uploadError(ss, iq, err)
		return
	}
	if c := ss.conn(); c != nil && c.webOrigin != "" {
		slot.PutURL, slot.GetURL = onOrigin(slot.PutURL, c.webOrigin), onOrigin(slot.GetURL, c.webOrigin)
	}
	put := El(nsUpload, "put", "url", slot.PutURL)
	for _, k := range headerNames(slot.Headers) {
		switch k {
		case "Authorization", "Cookie", "Expires": // the only ones §4 allows
			v := strings.NewReplacer("\r", "", "\n", "").Replace(slot.Headers[k])
			put.Add(El(nsUpload, "header", "name", k).Add(v))
		}
	}
	ss.result(iq, El(nsUpload, "slot").Add(put, El(nsUpload, "get", "url", slot.GetURL)))
}

// uploadError answers a refused slot request (XEP-0363 §6).
func (s *Server) uploadError(ss *session, iq *Element, err error) {
	var (
		tooLarge UploadTooLarge
		quota    UploadOverQuota
		bad      UploadBadRequest
		temp     UploadTemporary
		r        *Element
	)
	switch {
	case errors.As(err, &tooLarge):
		r = stanzaErrorReply(iq, "modify", "not-acceptable", err.Error(),
			El(nsUpload, "file-too-large").Add(El(nsUpload, "max-file-size").Add(strconv.FormatInt(tooLarge.MaxBytes(), 10))))
	case errors.As(err, &quota):
		r = stanzaErrorReply(iq, "wait", "resource-constraint", err.Error())
	case errors.As(err, &bad) && bad.BadRequest():
		r = stanzaErrorReply(iq, "modify", "bad-request", err.Error())
	case errors.As(err, &temp) && temp.Temporary():
		r = stanzaErrorReply(iq, "wait", "resource-constraint", err.Error())
	default:
		s.log.Error("upload slot", "account", ss.account, "err", err)
		r = stanzaErrorReply(iq, "wait", "internal-server-error", "the box could not prepare the upload: try again later")
	}
	r.Set("to", ss.full)
	ss.send(r)
}

func headerNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return sortedSet(out)
}

// A client on a WebSocket (a browser: the web chat) gets its slot on the
// origin its page and WebSocket came from, where the web listener serves
// the upload service's paths too (appliance/websocket.go): the browser
// has already accepted that origin's certificate (the box's own CA, which
// a phone does not trust), and a PUT to the same origin needs no CORS.
// Other room members get that link as well: it is the name the box was
// reached by.

// webOrigin is the scheme://host of a WebSocket's HTTP request, "" when
// the Host header is not a plain host[:port].
func webOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u, err := url.Parse(scheme + "://" + r.Host)
	if err != nil || r.Host == "" || u.Host != r.Host || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return ""
	}
	return scheme + "://" + r.Host
}

// onOrigin is link u (the upload service's own) moved to origin.
func onOrigin(u, origin string) string {
	p, err := url.Parse(u)
	if err != nil || !strings.HasPrefix(p.EscapedPath(), "/upload/") {
		return u
	}
	return origin + p.EscapedPath()
}
