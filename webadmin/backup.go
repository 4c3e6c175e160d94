package webadmin

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// The backup page: download the archive `chatbox backup` makes, and
// restore one in two steps: an upload is checked first (a dry run: the
// archive opens, its database passes the integrity check, its settings
// load) and kept in the data directory; then "Restore" hands it to the
// box, which stages it and restarts (in the same process) to put it in
// place before it opens the database again.

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
	Apply   string // the token of the checked archive kept for the restore
	Limit   string
}

// restoreUploadFile, in the data directory, is the last archive that
// passed the check, kept until it is restored, another is checked or the
// web admin starts again.
const restoreUploadFile = "webadmin-restore.tgz"

// restoreUpload is the checked archive waiting for "Restore".
type restoreUpload struct {
	mu    sync.Mutex
	token string // the restore form's; "" when none is kept
	name  string // the file's name as uploaded
}

func (s *Server) restorePath() string { return filepath.Join(s.cfg.DataDir, restoreUploadFile) }

// keepUpload records the checked archive at s.restorePath (already in
// place) and returns the restore form's token.
func (s *Server) keepUpload(name string) string {
	s.restore.mu.Lock()
	defer s.restore.mu.Unlock()
	s.restore.token, s.restore.name = randomToken(), name
	return s.restore.token
}

// dropUpload forgets and removes the kept archive.
func (s *Server) dropUpload() {
	s.restore.mu.Lock()
	defer s.restore.mu.Unlock()
	s.restore.token, s.restore.name = "", ""
	os.Remove(s.restorePath())
}

func (s *Server) backupRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/backup", s.admin(s.backupPage))
	mux.HandleFunc("GET /admin/backup/download", s.admin(s.backupDownload))
	mux.HandleFunc("POST "+backupCheckPath, s.backupCheck)
	mux.HandleFunc("POST /admin/backup/restore", s.admin(s.backupRestore))
	mux.HandleFunc("POST /admin/restart", s.admin(s.restartPost))
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
	// The upload is checked as it streams in and kept, for the restore.
	s.dropUpload()
	keep, err := os.CreateTemp(s.cfg.DataDir, "."+restoreUploadFile+".tmp-")
	if err != nil {
		s.serverError(w, "backup check", err)
		return
	}
	defer os.Remove(keep.Name())
	defer keep.Close()
	upload := &readErr{r: io.TeeReader(part, keep)}
	err = s.box.CheckBackup(ctx, upload)
	if err == nil {
		_, err = io.Copy(io.Discard, upload) // what the check did not need (gzip's trailer) is kept too
	}
	if err != nil {
		if tooBig(upload.err) || tooBig(err) {
			return
		}
		s.log.Warn("web admin: backup check failed", "file", name, "err", err)
		p.Errors["backup"] = err.Error()
		s.renderBackup(w, p, http.StatusBadRequest, backupData{File: name})
		return
	}
	if err := keep.Close(); err != nil {
		s.serverError(w, "backup check", err)
		return
	}
	if err := os.Rename(keep.Name(), s.restorePath()); err != nil {
		s.serverError(w, "backup check", err)
		return
	}
	s.log.Info("web admin: backup checked", "file", name)
	s.renderBackup(w, p, http.StatusOK, backupData{Checked: true, File: name, Apply: s.keepUpload(name)})
}

// backupRestore hands the checked archive to the box, which stages it and
// restarts; the page says so and reloads the login page after a while.
func (s *Server) backupRestore(w http.ResponseWriter, r *http.Request, p *page) {
	s.restore.mu.Lock()
	token, name := s.restore.token, s.restore.name
	s.restore.mu.Unlock()
	if token == "" || subtle.ConstantTimeCompare([]byte(r.PostFormValue("upload")), []byte(token)) != 1 {
		p.Errors["backup"] = "no checked backup to restore (the box restarted, or another file was checked since): check the file again"
		s.renderBackup(w, p, http.StatusConflict, backupData{})
		return
	}
	f, err := os.Open(s.restorePath())
	if err != nil {
		s.dropUpload()
		p.Errors["backup"] = "the checked backup is gone (" + err.Error() + "): check the file again"
		s.renderBackup(w, p, http.StatusConflict, backupData{})
		return
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(r.Context(), backupTime)
	defer cancel()
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Now().Add(backupTime))
	if err := s.box.StageRestore(ctx, f); err != nil {
		s.log.Warn("web admin: restore refused", "file", name, "err", err)
		p.Errors["backup"] = err.Error()
		s.renderBackup(w, p, http.StatusBadRequest, backupData{File: name})
		return
	}
	s.dropUpload()
	s.log.Warn("web admin: restore staged; the box restarts", "file", name, "addr", remoteAddr(r))
	p.Title, p.Section = "Restarting", "restarting"
	p.Data = restartData{Why: name + " is being restored: the box restarts and puts it in place as it starts."}
	s.render(w, http.StatusOK, "restarting", p)
}

type restartData struct{ Why string }

// restartPost restarts the box (saved settings apply).
func (s *Server) restartPost(w http.ResponseWriter, r *http.Request, p *page) {
	if err := s.box.Restart(); err != nil {
		s.serverError(w, "restart", err)
		return
	}
	s.log.Warn("web admin: restart", "addr", remoteAddr(r))
	p.Title, p.Section = "Restarting", "restarting"
	p.Data = restartData{Why: "The box restarts: its services stop and start again with the saved settings."}
	s.render(w, http.StatusOK, "restarting", p)
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
