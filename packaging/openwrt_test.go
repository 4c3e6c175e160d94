package packaging

import (
	"bytes"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// openwrtArches: OpenWrt's package architecture and the binary's machine.
var openwrtArches = map[string]elf.Machine{
	"mipsel_24kc":     elf.EM_MIPS,
	"aarch64_generic": elf.EM_AARCH64,
	"arm_cortex-a7":   elf.EM_ARM,
}

// openwrtFiles is every file the OpenWrt packages install, with its mode.
var openwrtFiles = map[string]int64{
	"/usr/bin/chatbox":          0o755,
	"/etc/init.d/chatbox":       0o755,
	"/etc/config/chatbox":       0o600,
	"/etc/chatbox/chatbox.toml": 0o600,
}

// checkOpenwrtData checks the installed files of an OpenWrt package.
func checkOpenwrtData(t *testing.T, data map[string]tarEntry, machine elf.Machine) {
	t.Helper()
	for name, e := range data {
		if strings.HasSuffix(name, "/") {
			continue
		}
		want, ok := openwrtFiles[name]
		if !ok {
			t.Errorf("unexpected file %s", name)
			continue
		}
		if e.Mode != want || e.Owner != "0:0" {
			t.Errorf("%s: mode %o owner %s, want %o 0:0", name, e.Mode, e.Owner, want)
		}
	}
	for name := range openwrtFiles {
		if _, ok := data[name]; !ok {
			t.Errorf("missing %s", name)
		}
	}
	checkBinary(t, "/usr/bin/chatbox", data["/usr/bin/chatbox"].Body, machine)
	init := string(data["/etc/init.d/chatbox"].Body)
	for _, want := range []string{
		"#!/bin/sh /etc/rc.common", "USE_PROCD=1", "procd_set_param respawn",
		`procd_set_param command "$PROG" --config "$config" --data "$data"`,
		"config_get data main data_dir /etc/chatbox/data",
	} {
		if !strings.Contains(init, want) {
			t.Errorf("init script lacks %q", want)
		}
	}
	if !strings.Contains(string(data["/etc/config/chatbox"].Body), "option data_dir '/etc/chatbox/data'") {
		t.Error("/etc/config/chatbox does not put the data on the flash overlay by default")
	}
	if string(data["/etc/chatbox/chatbox.toml"].Body) != readFile(t, "chatbox.toml") {
		t.Error("/etc/chatbox/chatbox.toml is not packaging/chatbox.toml")
	}
}

// TestIPK opens the .ipk packages (opkg, OpenWrt 24.10): a gzip tar of
// debian-binary, control.tar.gz and data.tar.gz; checks the control
// fields, conffiles, scripts and files.
func TestIPK(t *testing.T) {
	version := pkgVersion(t, false)
	for arch, machine := range openwrtArches {
		t.Run(arch, func(t *testing.T) {
			outer := readTar(t, gunzipReader(t, readPkg(t, "chatbox_"+version+"_"+arch+".ipk")))
			if len(outer) != 3 || string(outer["/debian-binary"].Body) != "2.0\n" {
				t.Fatalf("outer archive: %d members, debian-binary %q", len(outer), outer["/debian-binary"].Body)
			}
			ctrl := readTar(t, gunzipReader(t, outer["/control.tar.gz"].Body))
			control := string(ctrl["/control"].Body)
			for k, v := range map[string]string{"Package": "chatbox", "Version": version, "Architecture": arch, "Section": "net"} {
				if !regexp.MustCompile(`(?m)^` + k + `: ` + regexp.QuoteMeta(v) + `$`).MatchString(control) {
					t.Errorf("control has no %s: %s:\n%s", k, v, control)
				}
			}
			if strings.Contains(control, "Depends:") {
				t.Errorf("a static binary depends on nothing:\n%s", control)
			}
			if got := string(ctrl["/conffiles"].Body); got != "/etc/chatbox/chatbox.toml\n/etc/config/chatbox\n" {
				t.Errorf("conffiles %q", got)
			}
			for _, s := range []string{"/postinst", "/prerm"} {
				if ctrl[s].Mode != 0o755 || !strings.Contains(string(ctrl[s].Body), `[ -n "${IPKG_INSTROOT}" ] && exit 0`) {
					t.Errorf("%s: mode %o:\n%s", s, ctrl[s].Mode, ctrl[s].Body)
				}
			}
			checkOpenwrtData(t, readTar(t, gunzipReader(t, outer["/data.tar.gz"].Body)), machine)
		})
	}
}

// TestAPK opens the .apk packages: Alpine's v2 format (gzip streams of a
// control tar with .PKGINFO and the data tar), which is what nfpm makes;
// OpenWrt 25's apk-tools 3 installs it with --allow-untrusted.
func TestAPK(t *testing.T) {
	version := pkgVersion(t, true) + "-r0"
	for arch, machine := range openwrtArches {
		t.Run(arch, func(t *testing.T) {
			all := readTar(t, gunzipReader(t, readPkg(t, "chatbox_"+version+"_"+arch+".apk")))
			info := string(all["/.PKGINFO"].Body)
			for k, v := range map[string]string{"pkgname": "chatbox", "pkgver": version, "arch": arch} {
				if !regexp.MustCompile(`(?m)^` + k + ` = ` + regexp.QuoteMeta(v) + `$`).MatchString(info) {
					t.Errorf(".PKGINFO has no %s = %s:\n%s", k, v, info)
				}
			}
			for _, l := range strings.Split(strings.TrimSpace(info), "\n") {
				if !regexp.MustCompile(`^[a-z_]+ = \S`).MatchString(l) {
					t.Errorf(".PKGINFO line %q is not key = value", l)
				}
			}
			for _, s := range []string{"/.post-install", "/.pre-deinstall"} {
				if all[s].Mode != 0o755 || !strings.Contains(string(all[s].Body), "/etc/init.d/chatbox") {
					t.Errorf("%s: mode %o:\n%s", s, all[s].Mode, all[s].Body)
				}
			}
			data := map[string]tarEntry{}
			for name, e := range all {
				if !strings.HasPrefix(name, "/.") {
					data[name] = e
				}
			}
			checkOpenwrtData(t, data, machine)
		})
	}
}

func readPkg(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(packageFile(t, name, "openwrt"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gunzipReader reads gzip (every member, as apk concatenates them) with
// the gzip program: Go's decompressor under the race detector (make
// test) takes minutes for these 9 MB packages.
func gunzipReader(t *testing.T, b []byte) io.Reader {
	t.Helper()
	cmd := exec.Command("gzip", "-dc")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gzip -dc: %v (not gzip?)", err)
	}
	return bytes.NewReader(out)
}
