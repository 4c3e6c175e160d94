package webadmin

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"time"
)

// The backup page: download the archive `chatbox backup` makes, and check
// an archive before restoring it. The box cannot restore while it runs
// (a restore takes the data directory's lock, which the running server
// holds), so the page stops after the check and says which command to
// run with the server stopped.

// backupCheckPath takes the uploaded archive; ServeHTTP lets its body be
// up to maxBackupUpload bytes (every other request: 64 KiB).
const backupCheckPath = "/admin/backup/check"

// maxBackupUpload bounds an uploaded backup (a variable for the tests).
var maxBackupUpload int64 = 2 << 30

// backupTime bounds a download or an upload and its check; the server's
// own 30 s timeouts are lifted for these requests.
const backupTime = 30 * time.Minute

type backupData struct {
	Checked bool // an archive was checked and is sound
	File    string
	Limit   string
}

func (s *Server) backupRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/backup", s.admin(s.backupPage))
	mux.HandleFunc("GET /admin/backup/download", s.admin(s.backupDownload))
	mux.HandleFunc("POST "+backupCheckPath, s.backupCheck)
}

func (s *Server) renderBackup(w http.ResponseWriter, p *page, status int, d backupData) {
	d.Limit = humanBytes(uint64(maxBackupUpload))
	p.Title, p.Section, p.Data = "Backup", "backup", d
	s.render(w, status, "backup", p)
}

func (s *Server) backupPage(w http.ResponseWriter, r *http.Request, p *page) {
	s.renderBackup(w, p, http.StatusOK, backupData{})
}

// lazyWriter sends the download's headers with its first byte, so that a
// backup failing before it writes anything can still answer an error.
type lazyWriter struct {
	w       http.ResponseWriter
	name    string
	started bool
}

func (l *lazyWriter) Write(b []byte) (int, error) {
	if !l.started {
		l.started = true
		h := l.w.Header()
		h.Set("Content-Type", "application/gzip")
		h.Set("Content-Disposition", `attachment; filename="`+l.name+`"`)
		l.w.WriteHeader(http.StatusOK)
	}
	return l.w.Write(b)
}

func (s *Server) backupDownload(w http.ResponseWriter, r *http.Request, p *page) {
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Now().Add(backupTime))
	ctx, cancel := context.WithTimeout(r.Context(), backupTime)
	defer cancel()
	lw := &lazyWriter{w: w, name: "chatbox-backup-" + s.cfg.Now().UTC().Format("20060102-1504") + ".tgz"}
	err := s.box.Backup(ctx, lw)
	switch {
	case err == nil:
		s.log.Info("web admin: backup downloaded", "addr", remoteAddr(r))
	case !lw.started:
		s.log.Error("web admin: backup", "err", err)
		p.Problem = "The backup failed: " + err.Error()
		s.renderBackup(w, p, http.StatusInternalServerError, backupData{})
	default:
		// Half an archive was sent: break the connection so that the
		// browser reports a failed download, not a short file.
		s.log.Error("web admin: backup broke off", "err", err)
		panic(http.ErrAbortHandler)
	}
}

// backupCheck reads a multipart upload as a stream: the "csrf" field
// first (the form puts it first), then the "backup" file, which goes
// straight to the box's check without being stored.
func (s *Server) backupCheck(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(cookieName)
	var sess *session
	ok := false
	if err == nil {
		sess, ok = s.auth.session(c.Value)
	}
	if !ok {
		http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
		return
	}
	p := &page{CSRF: sess.csrf, LoggedIn: true, Errors: map[string]string{}, Form: map[string]string{}}
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(backupTime))
	rc.SetWriteDeadline(time.Now().Add(backupTime))
	forbidden := func() {
		http.Error(w, "forbidden: the form's security token is missing or stale; reload the page", http.StatusForbidden)
	}
	mr, err := r.MultipartReader()
	if err != nil {
		forbidden() // not the page's form (which sends its token first)
		return
	}
	part, err := mr.NextPart()
	if err != nil || part.FormName() != "csrf" {
		forbidden()
		return
	}
	tok, err := io.ReadAll(io.LimitReader(part, 256))
	if err != nil || subtle.ConstantTimeCompare(tok, []byte(sess.csrf)) != 1 {
		forbidden()
		return
	}
	tooBig := func(err error) bool {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			p.Errors["backup"] = "the file is larger than " + humanBytes(uint64(maxBackupUpload)) + "; restore it on the box with the command below"
			s.renderBackup(w, p, http.StatusRequestEntityTooLarge, backupData{})
			return true
		}
		return false
	}
	part, err = mr.NextPart()
	for err == nil && part.FormName() != "backup" {
		part, err = mr.NextPart()
	}
	if err != nil || part.FileName() == "" {
		if err != nil && tooBig(err) {
			return
		}
		p.Errors["backup"] = "choose a backup file (.tgz, as downloaded above)"
		s.renderBackup(w, p, http.StatusBadRequest, backupData{})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), backupTime)
	defer cancel()
	name := part.FileName()
	upload := &readErr{r: part}
	if err := s.box.CheckBackup(ctx, upload); err != nil {
		if tooBig(upload.err) || tooBig(err) {
			return
		}
		s.log.Warn("web admin: backup check failed", "file", name, "err", err)
		p.Errors["backup"] = err.Error()
		s.renderBackup(w, p, http.StatusBadRequest, backupData{File: name})
		return
	}
	s.log.Info("web admin: backup checked", "file", name)
	s.renderBackup(w, p, http.StatusOK, backupData{Checked: true, File: name})
}

// readErr remembers the error its reader gave (the box's check may not
// pass it on as such).
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}
