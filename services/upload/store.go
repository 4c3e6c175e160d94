package upload

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The files on disk: <id> holds the bytes, <id>.json its fileMeta.
// Uploads in progress write ".put-<id>-*" and sidecars ".meta-<id>-*",
// renamed into place when complete.

const (
	metaSuffix = ".json"
	tmpPrefix  = ".put-"
	metaTmp    = ".meta-"
	// leftoverAge is how old a file without sidecar or a temporary file
	// must be before the sweep deletes it (a PUT in progress writes its
	// temporary file at least every few minutes: its read deadline).
	leftoverAge = time.Hour
)

// fileMeta is a stored file's sidecar.
type fileMeta struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Account  string    `json:"account"`
	Size     int64     `json:"size"`
	Type     string    `json:"type"`
	Uploaded time.Time `json:"uploaded"`
	Expires  time.Time `json:"expires"`
}

func (s *Service) dataPath(id string) string { return filepath.Join(s.cfg.Dir, id) }
func (s *Service) metaPath(id string) string { return filepath.Join(s.cfg.Dir, id+metaSuffix) }

// load rebuilds the index of stored files from the sidecars. A sidecar
// that cannot be read, or whose file is missing or of another size, is
// logged and its file deleted.
func (s *Service) load() error {
	ents, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("upload: read %s: %w", s.cfg.Dir, err)
	}
	files := map[string]*fileMeta{}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), metaSuffix)
		if !ok || !validID(id) || !e.Type().IsRegular() {
			continue
		}
		m, err := s.readMeta(id)
		if err == nil {
			var st fs.FileInfo
			st, err = os.Stat(s.dataPath(id))
			if err == nil && st.Size() != m.Size {
				err = fmt.Errorf("the file is %d bytes, its sidecar says %d", st.Size(), m.Size)
			}
		}
		if err != nil {
			s.log.Warn("dropping a broken upload", "id", id, "err", err)
			s.remove(id)
			continue
		}
		files[id] = m
	}
	s.mu.Lock()
	s.files = files
	s.mu.Unlock()
	s.log.Debug("uploads loaded", "files", len(files))
	return nil
}

func (s *Service) readMeta(id string) (*fileMeta, error) {
	b, err := os.ReadFile(s.metaPath(id))
	if err != nil {
		return nil, err
	}
	var m fileMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("sidecar %s: %w", s.metaPath(id), err)
	}
	if m.ID != id || m.Account == "" || m.Size < 0 || m.Name != SanitizeName(m.Name) || m.Expires.IsZero() {
		return nil, fmt.Errorf("sidecar %s does not describe file %s", s.metaPath(id), id)
	}
	if _, ok := normType(m.Type); !ok {
		m.Type = "application/octet-stream"
	}
	return &m, nil
}

// writeMeta stores a sidecar atomically (temporary file, sync, rename).
func (s *Service) writeMeta(m *fileMeta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.cfg.Dir, metaTmp+m.ID+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.metaPath(m.ID))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(s.cfg.Dir)
	return nil
}

// syncDir makes renames in dir durable (best effort: not every system
// can sync a directory).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// remove deletes a stored file and its sidecar.
func (s *Service) remove(id string) {
	for _, p := range []string{s.dataPath(id), s.metaPath(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Error("delete upload", "path", p, "err", err)
		}
	}
}

// sweep deletes expired files, forgets expired slots and deletes what
// broken uploads left behind.
func (s *Service) sweep() {
	now := s.cfg.Now()
	var expired []*fileMeta
	s.mu.Lock()
	for id, m := range s.files {
		if !now.Before(m.Expires) {
			expired = append(expired, m)
			delete(s.files, id)
		}
	}
	s.pruneSlotsLocked(now)
	s.mu.Unlock()
	for _, m := range expired {
		s.remove(m.ID)
		s.log.Info("upload expired", "id", m.ID, "account", m.Account, "bytes", m.Size)
	}
	ents, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		s.log.Error("sweep uploads", "dir", s.cfg.Dir, "err", err)
		return
	}
	for _, e := range ents {
		name := e.Name()
		leftover := strings.HasPrefix(name, tmpPrefix) || strings.HasPrefix(name, metaTmp)
		if !leftover && validID(name) {
			s.mu.Lock()
			_, known := s.files[name]
			s.mu.Unlock()
			leftover = !known
		}
		if !leftover {
			continue
		}
		info, err := e.Info()
		if err != nil || now.Sub(info.ModTime()) < leftoverAge {
			continue
		}
		if err := os.Remove(filepath.Join(s.cfg.Dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Error("delete upload leftover", "path", name, "err", err)
		} else {
			s.log.Info("deleted upload leftover", "path", name)
		}
	}
}

// maxNameBytes bounds a file name.
const maxNameBytes = 128

// SanitizeName reduces a client's file name to a safe base name: the
// part after the last slash or backslash, letters, digits, marks, space
// and "-_.+()[]" kept, anything else (controls, quotes, percent signs,
// bidirectional overrides...) replaced by "_", no leading or trailing
// dots or spaces, at most 128 bytes keeping the extension; "file" if
// nothing is left.
func SanitizeName(name string) string {
	name = strings.ToValidUTF8(name, "")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	for _, r := range name {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), unicode.IsMark(r), r == ' ', strings.ContainsRune("-_.+()[]", r):
			b.WriteRune(r)
		default:
			b.WriteRune('_')
		}
	}
	name = strings.Trim(b.String(), " .")
	if len(name) > maxNameBytes {
		ext := path.Ext(name)
		if len(ext) > 16 {
			ext = ""
		}
		stem := name[:maxNameBytes-len(ext)]
		for !utf8.ValidString(stem) {
			stem = stem[:len(stem)-1]
		}
		name = strings.Trim(stem, " .") + ext
	}
	if name == "" {
		return "file"
	}
	return name
}

// normType checks a MIME type and writes it in canonical form.
func normType(t string) (string, bool) {
	if len(t) > 255 {
		return "", false
	}
	mt, params, err := mime.ParseMediaType(t)
	if err != nil {
		return "", false
	}
	top, sub, ok := strings.Cut(mt, "/")
	if !ok || top == "" || sub == "" || strings.Contains(sub, "/") {
		return "", false
	}
	out := mime.FormatMediaType(mt, params)
	return out, out != ""
}

// validType says whether t is a MIME type.
func validType(t string) bool {
	_, ok := normType(t)
	return ok
}

// sameType says whether two MIME types name the same media type
// (parameters such as charset aside).
func sameType(a, b string) bool {
	ma, _, err1 := mime.ParseMediaType(a)
	mb, _, err2 := mime.ParseMediaType(b)
	return err1 == nil && err2 == nil && ma == mb
}

// typeFor picks a stored file's type: the slot's, else the PUT's, else
// by extension, else application/octet-stream.
func typeFor(slotType, putType, name string) string {
	if slotType != "" {
		return slotType
	}
	if t, ok := normType(putType); ok && putType != "" {
		return t
	}
	if t, ok := normType(mime.TypeByExtension(path.Ext(name))); ok {
		return t
	}
	return "application/octet-stream"
}
