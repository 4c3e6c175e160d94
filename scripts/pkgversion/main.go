// Command pkgversion prints the package version of the source tree, made
// from `git describe` so that Debian, opkg and apk accept and order it:
//
//	pkgversion          Debian and opkg: 1.2.3, 1.2.3+git4.gabc1234, 0.0.0+git42.gabc1234, ...+dirty
//	pkgversion -apk     apk: 1.2.3, 1.2.3_git4, 0.0.0_git42 (apk versions cannot carry the hash)
//
// A tag is vX.Y.Z (or X.Y.Z); without one the version is 0.0.0 plus the
// number of commits, so every later build sorts after an earlier one.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

func main() {
	apk := flag.Bool("apk", false, "print the apk form")
	flag.Parse()
	desc, err := git("describe", "--tags", "--long", "--always", "--dirty", "--match", "v[0-9]*")
	if err != nil {
		fmt.Fprintln(os.Stderr, "pkgversion: git describe:", err, "(run it in a git clone of chatbox)")
		os.Exit(1)
	}
	count, err := git("rev-list", "--count", "HEAD")
	if err != nil {
		fmt.Fprintln(os.Stderr, "pkgversion: git rev-list:", err)
		os.Exit(1)
	}
	deb, apkv, err := versions(desc, count)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pkgversion:", err)
		os.Exit(1)
	}
	if *apk {
		fmt.Println(apkv)
	} else {
		fmt.Println(deb)
	}
}

func git(args ...string) (string, error) {
	out, err := exec.Command("git", args...).Output()
	return strings.TrimSpace(string(out)), err
}

var (
	tagged   = regexp.MustCompile(`^v?([0-9]+(?:\.[0-9]+)*)-([0-9]+)-(g[0-9a-f]+)(-dirty)?$`)
	untagged = regexp.MustCompile(`^([0-9a-f]+)(-dirty)?$`)
)

// versions turns `git describe --tags --long --always --dirty` and the
// commit count into the Debian/opkg and the apk version.
func versions(desc, count string) (deb, apk string, err error) {
	if !regexp.MustCompile(`^[0-9]+$`).MatchString(count) {
		return "", "", fmt.Errorf("commit count %q is not a number", count)
	}
	var base, n, hash, dirty string
	if m := tagged.FindStringSubmatch(desc); m != nil {
		base, n, hash, dirty = m[1], m[2], m[3], m[4]
	} else if m := untagged.FindStringSubmatch(desc); m != nil {
		base, n, hash, dirty = "0.0.0", count, "g"+m[1], m[2]
	} else {
		return "", "", fmt.Errorf("git describe said %q: tag releases vX.Y.Z", desc)
	}
	deb, apk = base, base
	if n != "0" || base == "0.0.0" {
		deb += "+git" + n + "." + hash
		apk += "_git" + n
	}
	if dirty != "" {
		if n == "0" && base != "0.0.0" {
			deb += "+dirty"
		} else {
			deb += ".dirty"
		}
	}
	return deb, apk, nil
}
