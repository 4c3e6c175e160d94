package packaging

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// debFiles is every path the Debian package installs, with its mode.
var debFiles = map[string]int64{
	"/etc/":                               0o755,
	"/etc/chatbox/":                       0o755,
	"/etc/chatbox/chatbox.toml":           0o644,
	"/lib/":                               0o755,
	"/lib/systemd/":                       0o755,
	"/lib/systemd/system/":                0o755,
	"/lib/systemd/system/chatbox.service": 0o644,
	"/usr/":                               0o755,
	"/usr/bin/":                           0o755,
	"/usr/bin/chatbox":                    0o755,
	"/usr/share/":                         0o755,
	"/usr/share/doc/":                     0o755,
	"/usr/share/doc/chatbox/":             0o755,
	"/usr/share/doc/chatbox/changelog.gz": 0o644,
	"/usr/share/doc/chatbox/chatbox.example.toml": 0o644,
	"/usr/share/doc/chatbox/copyright":            0o644,
	"/usr/share/lintian/":                         0o755,
	"/usr/share/lintian/overrides/":               0o755,
	"/usr/share/lintian/overrides/chatbox":        0o644,
	"/usr/share/man/":                             0o755,
	"/usr/share/man/man1/":                        0o755,
	"/usr/share/man/man1/chatbox.1.gz":            0o644,
}

// TestDebPackages opens the three .deb files make deb built (dpkg-deb)
// and checks their control fields, conffiles, maintainer scripts, files,
// owners and modes, the binary's architecture, the systemd unit's
// hardening and the generated documents.
func TestDebPackages(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb is not installed (apt-get install -y dpkg)")
	}
	version := pkgVersion(t, false)
	for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "armhf": elf.EM_ARM} {
		t.Run(arch, func(t *testing.T) {
			deb := packageFile(t, "chatbox_"+version+"_"+arch+".deb", "deb")
			field := func(name string) string {
				out, err := exec.Command("dpkg-deb", "--field", deb, name).Output()
				if err != nil {
					t.Fatalf("dpkg-deb --field %s: %v", name, err)
				}
				return strings.TrimSpace(string(out))
			}
			for name, want := range map[string]string{
				"Package": "chatbox", "Version": version, "Architecture": arch, "Section": "net",
				"Priority": "optional", "Depends": "", "Pre-Depends": "",
			} {
				if got := field(name); got != want {
					t.Errorf("%s: %q, want %q", name, got, want)
				}
			}
			if !strings.HasPrefix(field("Description"), "private chat server in a box (XMPP and IRC)\n") {
				t.Errorf("Description: %q", field("Description"))
			}

			ctrl := tarOf(t, "--ctrl-tarfile", deb)
			if got := string(ctrl["/conffiles"].Body); got != "/etc/chatbox/chatbox.toml\n" {
				t.Errorf("conffiles: %q, want the settings file", got)
			}
			for _, s := range []string{"/postinst", "/prerm", "/postrm"} {
				if ctrl[s].Mode != 0o755 {
					t.Errorf("maintainer script %s: mode %o, want 755", s, ctrl[s].Mode)
				}
			}
			for _, want := range []string{"useradd --system", "install -d -o chatbox -g chatbox -m 0750 /var/lib/chatbox", "deb-systemd-invoke $_dh_action 'chatbox.service'"} {
				if !bytes.Contains(ctrl["/postinst"].Body, []byte(want)) {
					t.Errorf("postinst does not %q", want)
				}
			}
			if !bytes.Contains(ctrl["/postrm"].Body, []byte("rm -rf /var/lib/chatbox")) {
				t.Error("postrm does not delete the data on purge")
			}

			data := tarOf(t, "--fsys-tarfile", deb)
			for name, e := range data {
				want, ok := debFiles[name]
				if !ok {
					t.Errorf("unexpected file %s", name)
					continue
				}
				if e.Mode != want || e.Owner != "0:0" {
					t.Errorf("%s: mode %o owner %s, want %o 0:0", name, e.Mode, e.Owner, want)
				}
			}
			for name := range debFiles {
				if _, ok := data[name]; !ok {
					t.Errorf("missing %s", name)
				}
			}
			checkBinary(t, arch+" /usr/bin/chatbox", data["/usr/bin/chatbox"].Body, machine)

			unit := string(data["/lib/systemd/system/chatbox.service"].Body)
			for _, want := range []string{
				"Type=notify", "WatchdogSec=30", "ExecStart=/usr/bin/chatbox --config /etc/chatbox/chatbox.toml",
				"User=chatbox", "StateDirectory=chatbox", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
				"CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "NoNewPrivileges=yes", "ProtectSystem=strict",
				"ProtectHome=yes", "PrivateTmp=yes", "MemoryDenyWriteExecute=yes", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
				"WantedBy=multi-user.target",
			} {
				if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).MatchString(unit) {
					t.Errorf("chatbox.service lacks the line %q", want)
				}
			}
			man := gunzip(t, data["/usr/share/man/man1/chatbox.1.gz"].Body)
			for _, want := range []string{".TH CHATBOX 1 ", `chatbox \- a private chat server`, ".SH OPTIONS", `user add NAME`, `\-\-config FILE`} {
				if !strings.Contains(man, want) {
					t.Errorf("man page lacks %q", want)
				}
			}
			if cl := gunzip(t, data["/usr/share/doc/chatbox/changelog.gz"].Body); !strings.HasPrefix(cl, "chatbox ("+version+") unstable; urgency=medium\n") {
				t.Errorf("changelog.gz starts %q", cl)
			}
			cr := string(data["/usr/share/doc/chatbox/copyright"].Body)
			for _, want := range []string{"Go standard library go1.", "github.com/ncruces/go-sqlite3 ", "/usr/share/common-licenses/Apache-2.0"} {
				if !strings.Contains(cr, want) {
					t.Errorf("copyright lacks %q", want)
				}
			}
			if got, want := string(data["/etc/chatbox/chatbox.toml"].Body), readFile(t, "chatbox.toml"); got != want {
				t.Error("/etc/chatbox/chatbox.toml is not packaging/chatbox.toml")
			}
		})
	}
}

func tarOf(t *testing.T, flag, deb string) map[string]tarEntry {
	t.Helper()
	out, err := exec.Command("dpkg-deb", flag, deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb %s %s: %v", flag, deb, err)
	}
	return readTar(t, bytes.NewReader(out))
}

func gunzip(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
