package upload

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The HTTP side: PUT /upload/<id>/<name> with the slot's Authorization
// header stores a file; GET and HEAD of the same URL serve it to anyone
// until it expires; OPTIONS answers CORS preflights of web clients.

// Handler serves the uploads (Serve runs it over HTTPS; tests use it
// directly).
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /upload/{id}/{name}", s.put)
	mux.HandleFunc("GET /upload/{id}/{name}", s.get) // and HEAD
	mux.HandleFunc("OPTIONS /upload/{id}/{name}", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, PUT, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Web clients (XEP-0363 §8) upload and show files cross-origin.
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Expose-Headers", "Content-Disposition, ETag")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
		mux.ServeHTTP(w, r)
	})
}

// fail answers an HTTP error with a sentence saying what to do.
func fail(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

// transferTime is how long moving n bytes may take.
func (s *Service) transferTime(n int64) time.Duration {
	return time.Minute + time.Duration(n/s.cfg.MinRate)*time.Second
}

func (s *Service) put(w http.ResponseWriter, r *http.Request) {
	id, name := r.PathValue("id"), r.PathValue("name")
	if !validID(id) {
		fail(w, http.StatusNotFound, "no such upload slot")
		return
	}
	auth, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	now := s.cfg.Now()
	s.mu.Lock()
	sl := s.slots[id]
	code, msg := 0, ""
	switch {
	case sl == nil && s.files[id] != nil:
		code, msg = http.StatusConflict, "this slot was used already: ask for a new slot to upload another file"
	case sl == nil:
		code, msg = http.StatusForbidden, "this upload slot is unknown or expired (slots last 5 minutes): ask for a new one"
	case !hmac.Equal([]byte(auth), []byte(sl.token)):
		code, msg = http.StatusForbidden, "the Authorization header is missing or wrong: send the header the slot came with"
	case sl.busy:
		code, msg = http.StatusConflict, "this slot is being uploaded to already"
	case !now.Before(sl.expires):
		delete(s.slots, id)
		code, msg = http.StatusForbidden, "this upload slot expired (slots last 5 minutes): ask for a new one"
	case name != sl.name:
		code, msg = http.StatusForbidden, "the URL does not match the slot: PUT to the URL the slot gave"
	case r.ContentLength > sl.size:
		code, msg = http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is %d bytes, the slot is for %d", r.ContentLength, sl.size)
	case r.ContentLength < 0:
		code, msg = http.StatusBadRequest, fmt.Sprintf("send a Content-Length of %d (the slot's size)", sl.size)
	case r.ContentLength != sl.size:
		code, msg = http.StatusBadRequest, fmt.Sprintf("the body is %d bytes, the slot is for %d", r.ContentLength, sl.size)
	case sl.ctype != "" && r.Header.Get("Content-Type") != "" && !sameType(sl.ctype, r.Header.Get("Content-Type")):
		code, msg = http.StatusBadRequest, fmt.Sprintf("the Content-Type is %q, the slot is for %q", r.Header.Get("Content-Type"), sl.ctype)
	case sl.ctype == "" && r.Header.Get("Content-Type") != "" && !validType(r.Header.Get("Content-Type")):
		code, msg = http.StatusBadRequest, fmt.Sprintf("the Content-Type %q is not a MIME type", r.Header.Get("Content-Type"))
	case s.active[sl.account] >= s.cfg.UploadsPerAccount || s.activeTotal >= s.cfg.MaxUploads:
		w.Header().Set("Retry-After", "10")
		code, msg = http.StatusTooManyRequests, "too many uploads at once: try again when one has finished"
	}
	if code != 0 {
		s.mu.Unlock()
		fail(w, code, msg)
		return
	}
	sl.busy = true
	s.active[sl.account]++
	s.activeTotal++
	s.mu.Unlock()
	done := false
	defer func() {
		s.mu.Lock()
		if s.active[sl.account]--; s.active[sl.account] <= 0 {
			delete(s.active, sl.account)
		}
		s.activeTotal--
		if !done {
			sl.busy = false // the client may try again while the slot lasts
		}
		s.mu.Unlock()
	}()

	http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.transferTime(sl.size)))
	m := &fileMeta{ID: id, Name: sl.name, Account: sl.account, Size: sl.size,
		Type: typeFor(sl.ctype, r.Header.Get("Content-Type"), sl.name)}
	if code, public, err := s.store(m, http.MaxBytesReader(w, r.Body, sl.size)); err != nil {
		if code >= 500 {
			s.log.Error("store upload", "id", id, "account", sl.account, "err", err)
		} else {
			s.log.Debug("upload broken off", "id", id, "account", sl.account, "err", err)
		}
		fail(w, code, public)
		return
	}
	now = s.cfg.Now()
	m.Uploaded, m.Expires = now, now.Add(s.cfg.Expire)
	if err := s.writeMeta(m); err != nil {
		s.remove(id)
		s.log.Error("store upload metadata", "id", id, "account", sl.account, "err", err)
		fail(w, diskStatus(err), "the box could not store the file: "+diskReason(err))
		return
	}
	s.mu.Lock()
	delete(s.slots, id)
	s.files[id] = m
	done = true
	s.mu.Unlock()
	s.log.Info("file uploaded", "id", id, "account", m.Account, "bytes", m.Size, "type", m.Type)
	w.Header().Set("Location", r.URL.Path)
	w.WriteHeader(http.StatusCreated)
}

// store writes the body to a temporary file and renames it into place.
// On failure it gives the HTTP status, what to tell the client, and the
// cause to log.
func (s *Service) store(m *fileMeta, body io.Reader) (code int, public string, err error) {
	diskErr := func(err error) (int, string, error) {
		return diskStatus(err), "the box could not store the file: " + diskReason(err), err
	}
	f, err := os.CreateTemp(s.cfg.Dir, tmpPrefix+m.ID+"-*")
	if err != nil {
		return diskErr(err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	fw := &errWriter{w: f}
	n, err := io.Copy(fw, io.LimitReader(body, m.Size+1))
	switch {
	case fw.err != nil:
		return diskErr(fw.err)
	case err != nil:
		err = fmt.Errorf("the upload broke off after %d of %d bytes: %w", n, m.Size, err)
		return http.StatusBadRequest, err.Error(), err
	case n != m.Size:
		err = fmt.Errorf("the body was %d bytes, the slot is for %d", n, m.Size)
		return http.StatusBadRequest, err.Error(), err
	}
	if err := f.Sync(); err != nil {
		return diskErr(err)
	}
	if err := f.Close(); err != nil {
		return diskErr(err)
	}
	if err := os.Rename(tmp, s.dataPath(m.ID)); err != nil {
		return diskErr(err)
	}
	ok = true
	return 0, "", nil
}

// errWriter remembers its writer's error, to tell disk errors from the
// client's.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}

// diskStatus is 507 Insufficient Storage for a full disk, else 500.
func diskStatus(err error) int {
	if errors.Is(err, syscall.ENOSPC) {
		return http.StatusInsufficientStorage
	}
	return http.StatusInternalServerError
}

func diskReason(err error) string {
	if errors.Is(err, syscall.ENOSPC) {
		return "its disk is full; tell the box's owner"
	}
	return "a disk error; tell the box's owner (the box's log says more)"
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) {
	id, name := r.PathValue("id"), r.PathValue("name")
	now := s.cfg.Now()
	s.mu.Lock()
	m := s.files[id]
	s.mu.Unlock()
	if m == nil || m.Name != name || !now.Before(m.Expires) {
		fail(w, http.StatusNotFound, "no such file: it may have expired")
		return
	}
	f, err := os.Open(s.dataPath(id))
	if err != nil {
		s.log.Error("open upload", "id", id, "err", err)
		if errors.Is(err, os.ErrNotExist) {
			fail(w, http.StatusNotFound, "no such file: it may have expired")
		} else {
			fail(w, http.StatusInternalServerError, "the box could not read the file")
		}
		return
	}
	defer f.Close()
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.transferTime(m.Size)))
	h := w.Header()
	h.Set("Content-Type", m.Type)
	h.Set("Content-Disposition", disposition(m.Type, m.Name))
	h.Set("ETag", `"`+id+`"`)
	h.Set("Cache-Control", "private, max-age="+strconv.FormatInt(int64(m.Expires.Sub(now)/time.Second), 10))
	http.ServeContent(w, r, "", m.Uploaded, f)
}

// disposition shows pictures, sound and video inline and has anything
// else downloaded (SVG too: it can hold scripts).
func disposition(ctype, name string) string {
	d := "attachment"
	mt, _, _ := mime.ParseMediaType(ctype)
	top, _, _ := strings.Cut(mt, "/")
	if (top == "image" || top == "audio" || top == "video") && mt != "image/svg+xml" {
		d = "inline"
	}
	if v := mime.FormatMediaType(d, map[string]string{"filename": name}); v != "" {
		return v
	}
	return d
}
