package webadmin_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestRestoreFromBrowserE2E runs the real binary: the admin downloads a
// backup, makes another account, checks the backup and restores it from
// the backup page; the box restarts in the same process (new web port),
// and the account made after the backup is gone while the admin password
// stays.
func TestRestoreFromBrowserE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	b := startE2EBox(t)
	const pw = "admin password 1"
	a := newAdmin(t, b.web())
	a.setUp(b.setupCode(), pw)
	a.get("/admin/people")
	a.wantRedirect(a.post("/admin/people/create", "name", "dave", "password", "password-dave"), "/admin/people?done=created&name=dave")
	backup := a.get("/admin/backup/download")
	if backup.status != http.StatusOK || len(backup.body) < 100 {
		t.Fatalf("backup download: %d, %d bytes", backup.status, len(backup.body))
	}
	a.get("/admin/people")
	a.wantRedirect(a.post("/admin/people/create", "name", "erin", "password", "password-erin"), "/admin/people?done=created&name=erin")

	// A file that is not a backup: refused, nothing to restore.
	a.get("/admin/backup")
	a.want(a.upload("/admin/backup/check", "notes.txt", []byte("not a backup")), http.StatusBadRequest, `id="backup-err"`, "not a chatbox backup")
	// The backup: checked, then restored.
	checked := a.upload("/admin/backup/check", "box.tgz", []byte(backup.body))
	a.want(checked, http.StatusOK, "box.tgz is a sound backup", "Restore box.tgz now")
	token := regexp.MustCompile(`name="upload" value="([^"]+)"`).FindStringSubmatch(checked.body)
	if token == nil {
		t.Fatalf("no restore form:\n%s", checked.body)
	}
	a.want(a.post("/admin/backup/restore", "upload", token[1]), http.StatusOK, "box.tgz is being restored")
	b.waitRestarted(t)
	if log := b.LogText(); !strings.Contains(log, `msg="restore staged: the box restarts to put it in place"`) ||
		!strings.Contains(log, "finishing a pending restore") || !strings.Contains(log, `msg="chatbox stopped" reason=restart`) {
		t.Fatalf("the log does not show the restore's steps:\n%s", log)
	}

	// The same process serves again, restored; the admin logs in again.
	a2 := newAdmin(t, b.web())
	a2.wantRedirect(a2.get("/admin/"), "/admin/login")
	a2.login(pw)
	people := a2.get("/admin/people")
	a2.want(people, http.StatusOK, ">dave<")
	if strings.Contains(people.body, ">erin<") {
		t.Fatalf("erin, made after the backup, survived the restore:\n%s", people.body)
	}
	if out := b.CLI(t, "", "user", "list"); !strings.Contains(out, "dave") || strings.Contains(out, "erin") {
		t.Fatalf("user list after the restore:\n%s", out)
	}
}
