// Package upload is the box's file sharing: XEP-0363 HTTP File Upload
// served by the box itself over HTTPS, so that photos and files sent
// from XMPP apps stay on the box (no Internet needed) and people on IRC
// get a link they can open.
//
// The XMPP door asks for a slot (Service.Slot) on behalf of an account;
// the slot is a PUT URL, a GET URL and the headers the PUT must carry.
// The slot is authorized by an HMAC token sent as "Authorization: Bearer
// <token>" (XEP-0363 §5 lets the service name the Authorization header),
// so that the PUT URL stays the same as the GET URL and no secret ends up
// in a link or a log. A slot is good for one PUT within SlotLifetime (5
// minutes) and only for the size and content type it was asked for;
// slots are kept in memory, so a restart voids the ones not yet used.
//
// Files live in Config.Dir as <id> (the bytes) beside <id>.json (who
// uploaded it, its name, size, type, upload and expiry times). The id is
// 128 random bits: the GET URL is a capability, anyone who has the link
// can download the file until it expires (XEP-0363 §1: the link is meant
// to be shared). The quota (per account, files not yet expired plus
// slots not yet used) is computed from the sidecars, rebuilt at start. A
// sweep at start and every hour deletes expired files and leftovers of
// broken uploads.
//
// Left out: deleting a file before it expires (XEP-0363 has no protocol
// for it), the old urn:xmpp:http:upload namespace (v0.2), HTTP/2.
package upload

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config sets the file sharing service.
type Config struct {
	// Listen are the HTTPS addresses; the URLs handed out use the port
	// of the first one.
	Listen []string
	TLS    *tls.Config // the box's certificate
	// Domain is the host name in the URLs (the box's domain: its
	// certificate names it).
	Domain string
	// Dir holds the files (<data>/uploads).
	Dir string
	// MaxFileBytes bounds one file; QuotaBytes what one account may have
	// stored at once; Expire is how long a file is kept.
	MaxFileBytes int64
	QuotaBytes   int64
	Expire       time.Duration
	// SlotLifetime is how long a slot may wait for its PUT (5 minutes).
	SlotLifetime time.Duration
	// UploadsPerAccount bounds the PUTs one account runs at once (2);
	// MaxUploads all of them (16); SlotsPerAccount the slots one account
	// may hold unused (32).
	UploadsPerAccount int
	MaxUploads        int
	SlotsPerAccount   int
	// SweepEvery is how often expired files are deleted (1 hour).
	SweepEvery time.Duration
	// MinRate is the slowest transfer, in bytes per second, that a PUT
	// or GET is given time for (32 KiB/s), on top of a minute.
	MinRate int64
	Now     func() time.Time
}

func (c *Config) defaults() {
	if c.MaxFileBytes <= 0 {
		c.MaxFileBytes = 100 << 20
	}
	if c.QuotaBytes <= 0 {
		c.QuotaBytes = 1 << 30
	}
	if c.Expire <= 0 {
		c.Expire = 30 * 24 * time.Hour
	}
	if c.SlotLifetime <= 0 {
		c.SlotLifetime = 5 * time.Minute
	}
	if c.UploadsPerAccount <= 0 {
		c.UploadsPerAccount = 2
	}
	if c.MaxUploads <= 0 {
		c.MaxUploads = 16
	}
	if c.SlotsPerAccount <= 0 {
		c.SlotsPerAccount = 32
	}
	if c.SweepEvery <= 0 {
		c.SweepEvery = time.Hour
	}
	if c.MinRate <= 0 {
		c.MinRate = 32 << 10
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Domain = strings.ToLower(strings.TrimSuffix(c.Domain, "."))
}

// Slot is where a client puts one file and where it is fetched from.
type Slot struct {
	PutURL, GetURL string
	// Headers must be sent with the PUT.
	Headers map[string]string
}

// Errors of Slot; test with errors.Is, or errors.As to the error types
// for the details.
var (
	ErrTooLarge    = errors.New("upload: file too large")
	ErrQuota       = errors.New("upload: quota exceeded")
	ErrInvalid     = errors.New("upload: invalid request")
	ErrUnavailable = errors.New("upload: try again later")
)

// TooLargeError says a file is larger than the box takes.
type TooLargeError struct{ Size, Max int64 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("the file is %s, larger than the %s (%d bytes) this box takes: send a smaller file",
		human(e.Size), human(e.Max), e.Max)
}

// MaxBytes is the largest file the box takes.
func (e *TooLargeError) MaxBytes() int64 { return e.Max }

// Is makes errors.Is(err, ErrTooLarge) true.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// QuotaError says an account has not enough space left for a file.
type QuotaError struct{ Size, Remaining, Quota int64 }

func (e *QuotaError) Error() string {
	return fmt.Sprintf("not enough space left for your files: %s (%d bytes) of your %s are free and this file is %s; files are deleted some time after they were shared, or ask the box's owner for more (upload.quota_bytes)",
		human(e.Remaining), e.Remaining, human(e.Quota), human(e.Size))
}

// RemainingBytes is what the account may still upload.
func (e *QuotaError) RemainingBytes() int64 { return e.Remaining }

// Is makes errors.Is(err, ErrQuota) true.
func (e *QuotaError) Is(target error) bool { return target == ErrQuota }

// InvalidError says a slot request is malformed.
type InvalidError struct{ Reason string }

func (e *InvalidError) Error() string { return e.Reason }

// BadRequest marks the error as the client's.
func (e *InvalidError) BadRequest() bool { return true }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// BusyError says the service cannot give a slot now (not running yet,
// too many unused slots).
type BusyError struct{ Reason string }

func (e *BusyError) Error() string { return e.Reason }

// Temporary marks the error as one to retry later.
func (e *BusyError) Temporary() bool { return true }

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *BusyError) Is(target error) bool { return target == ErrUnavailable }

// Service is the file sharing service. It is a service the appliance
// runs.
type Service struct {
	cfg    Config
	log    *slog.Logger
	secret []byte // signs slot tokens; per run

	mu          sync.Mutex
	files       map[string]*fileMeta // stored files, by id
	slots       map[string]*slot     // slots not used yet, by id
	active      map[string]int       // account -> PUTs in progress
	activeTotal int
	base        string // "https://domain:port" while serving, else ""
	addrs       []string
}

// slot is a slot handed out and not used yet.
type slot struct {
	id, name, account, ctype string
	size                     int64
	expires                  time.Time
	token                    string
	busy                     bool // a PUT is in progress
}

// New makes the service; nothing listens until Serve.
func New(cfg Config, log *slog.Logger) *Service {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	return &Service{cfg: cfg, log: log.With("door", "upload"), secret: secret,
		files: map[string]*fileMeta{}, slots: map[string]*slot{}, active: map[string]int{}}
}

// Name names the service.
func (s *Service) Name() string { return "upload" }

// MaxFileBytes is the largest file the service takes.
func (s *Service) MaxFileBytes() int64 { return s.cfg.MaxFileBytes }

// Addrs returns the addresses the service listens on (after Serve is
// ready).
func (s *Service) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.addrs...)
}

// Serve loads the stored files' index, deletes expired files, listens on
// every configured address, calls ready, and serves until ctx is done;
// then it stops taking requests and lets the running ones finish (a few
// seconds at most).
func (s *Service) Serve(ctx context.Context, ready func()) error {
	if s.cfg.TLS == nil {
		return errors.New("upload: no certificate to serve HTTPS with")
	}
	if len(s.cfg.Listen) == 0 {
		return errors.New("upload: no address to listen on (set upload.listen)")
	}
	if err := os.MkdirAll(s.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("upload: create %s: %w (is the data directory writable?)", s.cfg.Dir, err)
	}
	if err := s.load(); err != nil {
		return err
	}
	s.sweep()
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	for _, a := range s.cfg.Listen {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			closeAll()
			return fmt.Errorf("upload: listen on %s: %w (is another server using the port? change upload.listen)", a, err)
		}
		lns = append(lns, ln)
		s.log.Info("listening", "addr", ln.Addr().String())
	}
	_, port, _ := net.SplitHostPort(lns[0].Addr().String())
	host := s.cfg.Domain
	if port != "443" {
		host = net.JoinHostPort(host, port)
	}
	s.mu.Lock()
	s.base = "https://" + host
	s.addrs = nil
	for _, ln := range lns {
		s.addrs = append(s.addrs, ln.Addr().String())
	}
	s.mu.Unlock()

	tc := s.cfg.TLS.Clone()
	tc.NextProtos = []string{"http/1.1"}
	var protos http.Protocols
	protos.SetHTTP1(true)
	srv := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         tc,
		Protocols:         &protos,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		// Handshake failures of scanners and bad clients are noise.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, len(lns))
	for _, ln := range lns {
		go func() {
			err := srv.ServeTLS(ln, "", "")
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			errc <- err
		}()
	}
	sweepCtx, stopSweep := context.WithCancel(ctx)
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		t := time.NewTicker(s.cfg.SweepEvery)
		defer t.Stop()
		for {
			select {
			case <-sweepCtx.Done():
				return
			case <-t.C:
				s.sweep()
			}
		}
	}()
	ready()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		if err != nil {
			err = fmt.Errorf("upload: serve: %w", err)
		} else {
			err = errors.New("upload: a listener closed")
		}
	}
	s.mu.Lock()
	s.base = ""
	s.mu.Unlock()
	stopSweep()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if srv.Shutdown(sctx) != nil {
		srv.Close()
	}
	cancel()
	closeAll()
	<-swept
	return err
}

// Slot reserves room for one file of account's and returns where to put
// it. filename is reduced to a safe base name; contentType, if given,
// must be a MIME type and the PUT must carry the same.
func (s *Service) Slot(ctx context.Context, account, filename string, size int64, contentType string) (Slot, error) {
	if err := ctx.Err(); err != nil {
		return Slot{}, err
	}
	if account == "" {
		return Slot{}, &InvalidError{"only accounts may share files"}
	}
	if size < 0 {
		return Slot{}, &InvalidError{"the file size must not be negative"}
	}
	if size > s.cfg.MaxFileBytes {
		return Slot{}, &TooLargeError{Size: size, Max: s.cfg.MaxFileBytes}
	}
	if strings.TrimSpace(filename) == "" {
		return Slot{}, &InvalidError{"the file needs a name"}
	}
	ctype := ""
	if strings.TrimSpace(contentType) != "" {
		var ok bool
		if ctype, ok = normType(contentType); !ok {
			return Slot{}, &InvalidError{fmt.Sprintf("%q is not a MIME type (such as image/jpeg)", contentType)}
		}
	}
	name := SanitizeName(filename)
	id := newID()
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.base == "" {
		return Slot{}, &BusyError{"file sharing is not running now: try again in a minute"}
	}
	s.pruneSlotsLocked(now)
	used, pending := s.usageLocked(account, now)
	if pending >= s.cfg.SlotsPerAccount {
		return Slot{}, &BusyError{fmt.Sprintf("you have %d uploads waiting to start: finish them or wait %s", pending, s.cfg.SlotLifetime)}
	}
	if used+size > s.cfg.QuotaBytes {
		return Slot{}, &QuotaError{Size: size, Remaining: max(0, s.cfg.QuotaBytes-used), Quota: s.cfg.QuotaBytes}
	}
	sl := &slot{id: id, name: name, account: account, ctype: ctype, size: size, expires: now.Add(s.cfg.SlotLifetime)}
	sl.token = s.token(sl)
	s.slots[id] = sl
	u := s.base + "/upload/" + id + "/" + url.PathEscape(name)
	return Slot{PutURL: u, GetURL: u, Headers: map[string]string{"Authorization": "Bearer " + sl.token}}, nil
}

// Usage is what account has stored (files not expired) plus what its
// unused slots reserve, in bytes.
func (s *Service) Usage(account string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	used, _ := s.usageLocked(account, s.cfg.Now())
	return used
}

// usageLocked is account's stored and reserved bytes and its number of
// unused slots.
func (s *Service) usageLocked(account string, now time.Time) (used int64, slots int) {
	for _, m := range s.files {
		if m.Account == account && now.Before(m.Expires) {
			used += m.Size
		}
	}
	for _, sl := range s.slots {
		if sl.account == account && (sl.busy || now.Before(sl.expires)) {
			used += sl.size
			slots++
		}
	}
	return used, slots
}

// pruneSlotsLocked forgets expired slots that no PUT is using.
func (s *Service) pruneSlotsLocked(now time.Time) {
	for id, sl := range s.slots {
		if !sl.busy && !now.Before(sl.expires) {
			delete(s.slots, id)
		}
	}
}

// token signs everything a slot allows.
func (s *Service) token(sl *slot) string {
	m := hmac.New(sha256.New, s.secret)
	for _, f := range []string{"chatbox-upload-put", sl.id, sl.name, strconv.FormatInt(sl.size, 10), sl.ctype, sl.account,
		strconv.FormatInt(sl.expires.Unix(), 10)} {
		m.Write([]byte(f))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID is 128 random bits as 26 lower-case letters and digits.
func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return idEncoding.EncodeToString(b)
}

// validID says whether s is an id newID could have made.
func validID(s string) bool {
	if len(s) != 26 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '2' && r <= '7') {
			return false
		}
	}
	return true
}

// human writes a byte count for people.
func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
