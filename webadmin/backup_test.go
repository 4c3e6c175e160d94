package webadmin

import (
	"bytes"
	"errors"
	"io/fs"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// upload posts the backup form: the fields in the order given, then
// (unless file is "") the file.
func (b *browser) upload(path string, fields []string, file, content string) reply {
	b.f.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for i := 0; i+1 < len(fields); i += 2 {
		mw.WriteField(fields[i], fields[i+1])
	}
	if file != "" {
		fw, _ := mw.CreateFormFile("backup", file)
		fw.Write([]byte(content))
	}
	mw.Close()
	req, _ := http.NewRequest("POST", b.f.web.URL+path, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return b.do(req)
}

func (f *settingsFake) lockedChecked() string {
	f.smu.Lock()
	defer f.smu.Unlock()
	return string(f.checked)
}

func TestBackupPage(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	wantRedirect(t, f.browser().get("/admin/backup"), "/admin/login")
	r := b.get("/admin/backup")
	want(t, r, http.StatusOK, `href="/admin/backup/download"`, `enctype="multipart/form-data"`, "chatbox restore", "checked first", "2.0 GiB")
	// The token comes before the file, as the check reads them in order.
	if strings.Index(r.body, `name="csrf"`) > strings.Index(r.body, `name="backup"`) {
		t.Fatal("the form's token comes after its file")
	}
}

func TestBackupDownload(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	wantRedirect(t, f.browser().get("/admin/backup/download"), "/admin/login")
	r := b.get("/admin/backup/download")
	want(t, r, http.StatusOK, "fake archive")
	if ct, cd := r.header.Get("Content-Type"), r.header.Get("Content-Disposition"); ct != "application/gzip" ||
		cd != `attachment; filename="chatbox-backup-20261201-0900.tgz"` {
		t.Fatalf("served as %q, %q", ct, cd)
	}
	// Failing before a byte is sent: an error page.
	f.box.smu.Lock()
	f.box.backErr = errors.New("disk full")
	f.box.smu.Unlock()
	want(t, b.get("/admin/backup/download"), http.StatusInternalServerError, "The backup failed: disk full")
	// Failing midway: the connection breaks, no short file passes as whole.
	f.box.smu.Lock()
	f.box.partial = true
	f.box.smu.Unlock()
	req, _ := http.NewRequest("GET", f.web.URL+"/admin/backup/download", nil)
	resp, err := b.c.Do(req)
	if err == nil {
		var buf bytes.Buffer
		_, err = buf.ReadFrom(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("a broken backup downloaded as if whole")
	}
}

func TestBackupCheck(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	b.get("/admin/backup")
	csrf := b.csrf

	// Refusals: no session, no or a wrong token, the token after the
	// file, not a multipart form.
	wantRedirect(t, f.browser().upload(backupCheckPath, []string{"csrf", csrf}, "box.tgz", "good"), "/admin/login")
	want(t, b.upload(backupCheckPath, nil, "box.tgz", "good"), http.StatusForbidden, "security token")
	want(t, b.upload(backupCheckPath, []string{"csrf", "forged"}, "box.tgz", "good"), http.StatusForbidden, "security token")
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("backup", "box.tgz")
	fw.Write([]byte("good"))
	mw.WriteField("csrf", csrf)
	mw.Close()
	req, _ := http.NewRequest("POST", f.web.URL+backupCheckPath, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	want(t, b.do(req), http.StatusForbidden)
	want(t, b.post(backupCheckPath, "csrf", csrf), http.StatusForbidden)
	if f.box.lockedChecked() != "" {
		t.Fatal("a refused upload was checked")
	}

	// No file: 400 naming the field.
	want(t, b.upload(backupCheckPath, []string{"csrf", csrf}, "", ""), http.StatusBadRequest, `id="backup-err"`, "choose a backup file")
	// A bad archive: the check's answer next to the field.
	want(t, b.upload(backupCheckPath, []string{"csrf", csrf}, "old.tgz", "bad"), http.StatusBadRequest,
		`id="backup-err"`, "holds no database")
	// A sound one: said so, and how to restore it; nothing is restored.
	r := b.upload(backupCheckPath, []string{"csrf", csrf}, "box.tgz", "good archive")
	want(t, r, http.StatusOK, `id="check-ok"`, "box.tgz is a sound backup", `action="/admin/backup/restore"`, "Restore box.tgz now")
	if got := f.box.lockedChecked(); got != "good archive" {
		t.Fatalf("checked %q", got)
	}

	// Larger than the bound: 413 naming the field.
	defer func(n int64) { maxBackupUpload = n }(maxBackupUpload)
	maxBackupUpload = 1 << 10
	want(t, b.upload(backupCheckPath, []string{"csrf", csrf}, "big.tgz", strings.Repeat("x", 4<<10)), http.StatusRequestEntityTooLarge,
		`id="backup-err"`, "larger than 1.0 KiB")
	// Other requests keep their small bound.
	want(t, b.post("/admin/settings", "name", strings.Repeat("x", 100<<10)), http.StatusBadRequest)
}

func (f *fakeBox) lockedStaged() ([][]byte, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.staged), f.restarts
}

var uploadRe = regexp.MustCompile(`name="upload" value="([^"]+)"`)

// TestBackupRestore: a checked archive is kept for the restore form; the
// restore hands exactly it to the box (which restarts), once.
func TestBackupRestore(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	b.get("/admin/backup")
	csrf := b.csrf
	kept := filepath.Join(f.dir, restoreUploadFile)

	// Nothing checked yet: refused, nothing staged.
	want(t, b.post("/admin/backup/restore", "upload", "x"), http.StatusConflict, `id="backup-err"`, "check the file again")
	r := b.upload(backupCheckPath, []string{"csrf", csrf}, "box.tgz", "good archive")
	want(t, r, http.StatusOK, "Restore box.tgz now")
	m := uploadRe.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no restore form:\n%s", r.body)
	}
	if data, err := os.ReadFile(kept); err != nil || string(data) != "good archive" {
		t.Fatalf("kept upload: %q %v", data, err)
	}
	// Refusals: no session, a bad CSRF token, another upload's token.
	wantRedirect(t, f.browser().post("/admin/backup/restore", "upload", m[1]), "/admin/login")
	want(t, b.post("/admin/backup/restore", "upload", m[1], "csrf", "forged"), http.StatusForbidden, "security token")
	want(t, b.post("/admin/backup/restore", "upload", "stale"), http.StatusConflict, "check the file again")
	if staged, _ := f.box.lockedStaged(); len(staged) != 0 {
		t.Fatalf("refused restores staged %q", staged)
	}
	// The box refuses it: the reason next to the field, the upload kept.
	f.box.mu.Lock()
	f.box.stageErr = errors.New("restore: the settings in the file do not load: name: must not be empty")
	f.box.mu.Unlock()
	want(t, b.post("/admin/backup/restore", "upload", m[1]), http.StatusBadRequest, `id="backup-err"`, "name: must not be empty")
	f.box.mu.Lock()
	f.box.stageErr = nil
	f.box.mu.Unlock()
	// Restored: the page says the box restarts, and the upload is gone.
	r = b.post("/admin/backup/restore", "upload", m[1])
	want(t, r, http.StatusOK, `id="restarting"`, "box.tgz is being restored", `http-equiv="refresh"`)
	staged, restarts := f.box.lockedStaged()
	if len(staged) != 1 || string(staged[0]) != "good archive" || restarts != 1 {
		t.Fatalf("staged %q, %d restarts; want the checked archive once", staged, restarts)
	}
	if _, err := os.Stat(kept); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the kept upload stays after the restore: %v", err)
	}
	want(t, b.post("/admin/backup/restore", "upload", m[1]), http.StatusConflict, "check the file again")

	// A failed check drops the archive an earlier check kept.
	r = b.upload(backupCheckPath, []string{"csrf", csrf}, "box.tgz", "good archive")
	m = uploadRe.FindStringSubmatch(r.body)
	want(t, b.upload(backupCheckPath, []string{"csrf", csrf}, "old.tgz", "bad"), http.StatusBadRequest)
	if _, err := os.Stat(kept); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a failed check left the previous upload: %v", err)
	}
	want(t, b.post("/admin/backup/restore", "upload", m[1]), http.StatusConflict)
}

func TestRestartButton(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	want(t, b.get("/admin/settings"), http.StatusOK, `action="/admin/restart"`, "Restart now")
	wantRedirect(t, f.browser().post("/admin/restart"), "/admin/login")
	want(t, b.post("/admin/restart", "csrf", "forged"), http.StatusForbidden, "security token")
	if _, n := f.box.lockedStaged(); n != 0 {
		t.Fatalf("%d restarts after refusals", n)
	}
	want(t, b.post("/admin/restart"), http.StatusOK, `id="restarting"`, "saved settings", `content="10;url=/admin/login"`)
	if _, n := f.box.lockedStaged(); n != 1 {
		t.Fatalf("%d restarts, want 1", n)
	}
}
