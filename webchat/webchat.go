// Package webchat is the box's web chat: Converse.js (an XMPP client
// from npm, pinned in webchat/package-lock.json) configured for the box
// and served from the binary. It talks to the XMPP door over WebSocket
// (RFC 7395, /xmpp-websocket on the same listener), joins the box's
// rooms, and lets account holders log in with their account and, when
// registration.guests is on, guests join with only a nickname (SASL
// ANONYMOUS, XEP-0175, on guest.<domain>).
//
// The page is mobile-first and makes no request outside the box: a
// strict Content-Security-Policy (script-src 'self', no inline script:
// the settings are a JSON data block read by chatbox.js), the emoji,
// fonts and sounds served from the embedded assets, Converse's provider
// lists and sponsor logos switched off. The Converse files are copied into
// dist/ by `make webchat-assets`; a build without them still compiles and
// its page says how to build them.
//
// Left out: registering an account from the page (the box's invitations
// do that), OMEMO (its WebAssembly and worker are not shipped), and
// locales other than English.
package webchat

import (
	"bytes"
	"compress/gzip"
	"embed"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Prefix is where the web chat's page and assets are served; the page is
// also served at "/" when the web listener's home is the web chat.
const Prefix = "/chat/"

// conversePath is where the Converse.js files are, under Prefix.
const conversePath = Prefix + "converse/"

//go:embed dist
var distFS embed.FS

//go:embed static
var staticFS embed.FS

// Config is what the page tells Converse about the box.
type Config struct {
	Name   string   // the box's display name (title)
	Domain string   // the XMPP domain: accounts are user@Domain
	Rooms  []string // rooms joined on login (names, without '#')
	Guests bool     // guests may join with a nickname (guest.<Domain>)
	Log    *slog.Logger
}

// Handler serves the web chat.
type Handler struct {
	cfg       Config
	assets    fs.FS // the Converse files (dist/ without README.md), or nil
	static    fs.FS
	page      *template.Template
	pageState pageData
	policy    string
}

// clientConfig is the JSON data block chatbox.js reads.
type clientConfig struct {
	Domain      string   `json:"domain"`
	MUCDomain   string   `json:"mucDomain"`
	GuestDomain string   `json:"guestDomain,omitempty"`
	Rooms       []string `json:"rooms"` // room JIDs
	AssetsPath  string   `json:"assetsPath"`
}

type pageData struct {
	Name     string
	Domain   string
	Built    bool
	Guests   bool
	Rooms    []string
	Client   clientConfig
	Converse string // the Converse files' URL prefix
}

// New is the web chat for the box; the Converse files are the ones
// embedded at build time.
func New(cfg Config) *Handler {
	sub, _ := fs.Sub(distFS, "dist")
	return newHandler(cfg, sub)
}

func newHandler(cfg Config, dist fs.FS) *Handler {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	static, _ := fs.Sub(staticFS, "static")
	h := &Handler{cfg: cfg, static: static, page: template.Must(template.New("page").Parse(pageHTML))}
	if _, _, err := readAsset(dist, "converse.min.js"); err == nil {
		h.assets = dist
	}
	muc := "rooms." + cfg.Domain
	cc := clientConfig{Domain: cfg.Domain, MUCDomain: muc, Rooms: []string{}, AssetsPath: strings.TrimSuffix(conversePath, "/")}
	for _, r := range cfg.Rooms {
		cc.Rooms = append(cc.Rooms, strings.ToLower(strings.TrimPrefix(r, "#"))+"@"+muc)
	}
	if cfg.Guests {
		cc.GuestDomain = "guest." + cfg.Domain
	}
	name := cfg.Name
	if name == "" {
		name = cfg.Domain
	}
	h.policy = pagePolicy(cfg.Domain)
	h.pageState = pageData{Name: name, Domain: cfg.Domain, Built: h.assets != nil, Guests: cfg.Guests, Rooms: cfg.Rooms, Client: cc, Converse: conversePath}
	return h
}

// Built reports whether the Converse files are in this build.
func (h *Handler) Built() bool { return h.assets != nil }

// Paths are the exact paths the handler serves (Prefix, its own script
// and style, every Converse file), for listeners that mount by path.
func (h *Handler) Paths() []string {
	out := []string{Prefix}
	add := func(fsys fs.FS, prefix string) {
		fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && p != "README.md" {
				out = append(out, prefix+strings.TrimSuffix(p, ".gz"))
			}
			return nil
		})
	}
	add(h.static, Prefix)
	if h.assets != nil {
		add(h.assets, conversePath)
	}
	sort.Strings(out[1:])
	return out
}

// pagePolicy is the page's CSP: what Converse needs and nothing more.
// Its templates set style attributes, hence style-src 'unsafe-inline'
// (no script runs inline, none is evaluated). connect-src 'self' covers
// ws(s):// to this host; https://<domain>:* is the box's file sharing
// (XEP-0363 slots are on the upload listener, another port).
func pagePolicy(domain string) string {
	files := "https://" + domain + ":*"
	return "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
		"img-src 'self' data: blob: " + files + "; media-src 'self' data: blob: " + files + "; " +
		"font-src 'self' data:; connect-src 'self' " + files + "; manifest-src 'self'; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the web chat only answers GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	switch p := r.URL.Path; {
	case p == "/" || p == Prefix:
		h.servePage(w)
	case strings.HasPrefix(p, conversePath) && h.assets != nil:
		h.serveFile(w, r, h.assets, strings.TrimPrefix(p, conversePath), "public, max-age=86400")
	case strings.HasPrefix(p, Prefix) && !strings.HasPrefix(p, conversePath):
		h.serveFile(w, r, h.static, strings.TrimPrefix(p, Prefix), "no-cache")
	default:
		http.Error(w, "no such file in the web chat", http.StatusNotFound)
	}
}

func (h *Handler) servePage(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", h.policy)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Type", "text/html; charset=utf-8")
	if err := h.page.Execute(w, h.pageState); err != nil {
		h.cfg.Log.Warn("web chat page", "err", err)
	}
}

func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, fsys fs.FS, name, cache string) {
	if name == "" || name == "README.md" || strings.HasSuffix(name, ".gz") || !fs.ValidPath(name) {
		http.Error(w, "no such file in the web chat", http.StatusNotFound)
		return
	}
	data, gzipped, err := readAsset(fsys, name)
	if err != nil {
		http.Error(w, "no such file in the web chat", http.StatusNotFound)
		return
	}
	hd := w.Header()
	if gzipped {
		hd.Set("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			hd.Set("Content-Encoding", "gzip")
		} else if data, err = gunzip(data); err != nil {
			h.cfg.Log.Error("web chat: a gzipped file does not decompress; rebuild with make webchat-assets", "file", name, "err", err)
			http.Error(w, "this file of the web chat is damaged in this build", http.StatusInternalServerError)
			return
		}
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = http.DetectContentType(data)
	}
	hd.Set("Content-Type", ct)
	hd.Set("Cache-Control", cache)
	hd.Set("Content-Length", strconv.Itoa(len(data)))
	hd.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	if r.Method == http.MethodHead {
		return
	}
	w.Write(data)
}

// readAsset reads name, or name.gz (then gzipped is true).
func readAsset(fsys fs.FS, name string) (data []byte, gzipped bool, err error) {
	data, err = fs.ReadFile(fsys, name)
	if err == nil {
		return data, false, nil
	}
	data, err = fs.ReadFile(fsys, name+".gz")
	return data, err == nil, err
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip
// (a q=0 refuses it).
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
				q := strings.ReplaceAll(params, " ", "")
				return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
			}
		}
	}
	return false
}

func gunzip(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(zr, 64<<20))
}
