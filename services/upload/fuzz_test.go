package upload

// Fuzz target for what file sharing takes from a request's URL and an
// uploader's slot request into the file system and the response headers
// (XEP-0363 §4; RFC 6266 Content-Disposition):
//
//   - FuzzNames: an id from a URL is accepted (validID) only if it names a
//     file inside the upload directory, never a path; the download's
//     Content-Disposition (disposition, from the uploader's file name and
//     type) is one header value that parses back to the same file name,
//     inline only for pictures, sound and video (never SVG).
//
// Seeds are in testdata/fuzz/FuzzNames/; found inputs are kept there.

import (
	"mime"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzNames(f *testing.F) {
	f.Add("abcdefghijklmnopqrstuvwxyz", "photo.jpg", "image/jpeg")
	f.Add("../../../../etc/passwd/aaaa", "a\r\nSet-Cookie: x=1", "text/html")
	f.Add("aaaaaaaaaaaaaaaaaaaaaaaaa/", "draw.svg", "image/svg+xml; charset=utf-8")
	f.Add("22222222222222222222222222", "名前 \"quoted\".png", "IMAGE/PNG")
	f.Fuzz(func(t *testing.T, id, name, ctype string) {
		if validID(id) {
			dir := "/srv/uploads"
			p := filepath.Join(dir, id)
			if filepath.Dir(p) != dir || filepath.Base(p) != id || strings.ContainsAny(id, `/\.`) {
				t.Fatalf("id %q accepted: it is not one file in the directory (%s)", id, p)
			}
		}
		d := disposition(ctype, name)
		if strings.ContainsAny(d, "\r\n\x00") {
			t.Fatalf("Content-Disposition %q breaks the header", d)
		}
		kind, params, err := mime.ParseMediaType(d)
		if err != nil {
			t.Fatalf("Content-Disposition %q does not parse: %v", d, err)
		}
		if fn, ok := params["filename"]; ok && fn != name {
			t.Fatalf("Content-Disposition %q names %q, want %q", d, fn, name)
		}
		if kind == "inline" {
			mt, _, _ := mime.ParseMediaType(ctype)
			top, _, _ := strings.Cut(mt, "/")
			if mt == "image/svg+xml" || (top != "image" && top != "audio" && top != "video") {
				t.Fatalf("%q shown inline (%q)", ctype, d)
			}
		}
	})
}
