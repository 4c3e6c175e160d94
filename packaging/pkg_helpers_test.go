package packaging

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// dist is where make deb and make openwrt leave the packages.
const dist = "../dist"

// pkgVersions are the versions the packages of this tree carry: Debian
// and opkg form, apk form (scripts/pkgversion, run once).
var pkgVersions = sync.OnceValues(func() ([2]string, error) {
	var v [2]string
	for i, args := range [][]string{{"run", "../scripts/pkgversion"}, {"run", "../scripts/pkgversion", "-apk"}} {
		out, err := exec.Command("go", args...).Output()
		if err != nil {
			return v, fmt.Errorf("scripts/pkgversion: %w", err)
		}
		v[i] = strings.TrimSpace(string(out))
	}
	return v, nil
})

func pkgVersion(t *testing.T, apk bool) string {
	t.Helper()
	v, err := pkgVersions()
	if err != nil {
		t.Fatal(err)
	}
	if apk {
		return v[1]
	}
	return v[0]
}

// packageFile finds dist/NAME; without it the test is skipped (make test
// on a machine that did not run make deb/openwrt), unless
// CHATBOX_REQUIRE_PACKAGES is set (CI builds them first) or the install
// test was asked for: then it fails.
func packageFile(t *testing.T, name, make string) string {
	t.Helper()
	p := filepath.Join(dist, name)
	if _, err := os.Stat(p); err != nil {
		msg := fmt.Sprintf("%s not built for this tree's version: run make %s first", p, make)
		if os.Getenv("CHATBOX_REQUIRE_PACKAGES") != "" || os.Getenv(optInEnv) != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// tarEntry is one file of a package's data archive.
type tarEntry struct {
	Mode  int64
	Owner string // uid:gid
	Body  []byte // regular files only
	Type  byte
}

// readTar reads an uncompressed tar archive into a map by clean path
// ("/usr/bin/chatbox"); folders end with "/".
func readTar(t *testing.T, r io.Reader) map[string]tarEntry {
	t.Helper()
	out := map[string]tarEntry{}
	tr := tar.NewReader(r)
	for range 10000 {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading the package's archive: %v", err)
		}
		name := "/" + strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/")
		e := tarEntry{Mode: h.Mode & 0o7777, Owner: fmt.Sprintf("%d:%d", h.Uid, h.Gid), Type: h.Typeflag}
		if h.Typeflag == tar.TypeReg {
			if e.Body, err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
		if h.Typeflag == tar.TypeDir && !strings.HasSuffix(name, "/") {
			name += "/"
		}
		out[name] = e
	}
	t.Fatal("more than 10000 entries in a package")
	return nil
}

// checkBinary: body is a static Linux executable for machine (MIPS:
// little-endian).
func checkBinary(t *testing.T, what string, body []byte, machine elf.Machine) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s: not an ELF file: %v", what, err)
	}
	defer f.Close()
	if f.Machine != machine || f.Type != elf.ET_EXEC {
		t.Errorf("%s: %v %v, want %v executable", what, f.Machine, f.Type, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s is dynamically linked (%v)", what, p.Type)
		}
	}
	if machine == elf.EM_MIPS {
		if f.ByteOrder.String() != "LittleEndian" {
			t.Errorf("%s: %v, want little-endian (mipsel)", what, f.ByteOrder)
		}
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
