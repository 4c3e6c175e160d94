// Command pkgdocs writes the documents the packages ship, from the built
// binary, so they never disagree with it:
//
//	pkgdocs man BIN VERSION DATE > chatbox.1          the man page, from BIN --help
//	pkgdocs copyright BIN > copyright                 chatbox's notice and the license of every module linked into BIN
//	pkgdocs changelog VERSION DATE COMMIT > changelog  a Debian-format changelog entry for this build
//
// DATE is the commit's date (git log -1 --format=%cI) so that two builds of
// one commit give the same bytes.
package main

import (
	"bufio"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pkgdocs:", err)
		os.Exit(1)
	}
}

func run(args []string, w io.Writer) error {
	use := errors.New("usage: pkgdocs man BIN VERSION DATE | copyright BIN | changelog VERSION DATE COMMIT")
	if len(args) == 0 {
		return use
	}
	switch {
	case args[0] == "man" && len(args) == 4:
		help, err := exec.Command(args[1], "--help").Output()
		if err != nil {
			return fmt.Errorf("%s --help: %w", args[1], err)
		}
		date, err := time.Parse(time.RFC3339, args[3])
		if err != nil {
			return fmt.Errorf("date %q: give it as git log -1 --format=%%cI does", args[3])
		}
		return manPage(w, string(help), args[2], date)
	case args[0] == "copyright" && len(args) == 2:
		return copyright(w, args[1])
	case args[0] == "changelog" && len(args) == 4:
		date, err := time.Parse(time.RFC3339, args[2])
		if err != nil {
			return fmt.Errorf("date %q: give it as git log -1 --format=%%cI does", args[2])
		}
		_, err = fmt.Fprintf(w, "chatbox (%s) unstable; urgency=medium\n\n  * Built from git commit %s.\n\n -- %s  %s\n",
			args[1], args[3], Maintainer, date.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
		return err
	}
	return use
}

// Maintainer is who the packages name.
const Maintainer = "chatbox developers <dev@chatbox.invalid>"

// roff escapes text for a man page: backslashes, leading dots and quotes,
// hyphens (as real minus signs in flags).
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	s = strings.ReplaceAll(s, "—", `\(em`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

var twoSpaces = regexp.MustCompile(`\s{2,}`)

// manPage turns chatbox's usage text into chatbox(1): the first line is
// the name, each "Usage:" entry (two-space indent, the command, two or more
// spaces, what it does; longer ones continue on a deeper-indented line)
// becomes a tagged paragraph, as does each flag.
func manPage(w io.Writer, help, version string, date time.Time) error {
	lines := strings.Split(strings.TrimRight(help, "\n"), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "chatbox ") {
		return fmt.Errorf("--help does not start with \"chatbox — what it is\": %q", lines[0])
	}
	_, summary, ok := strings.Cut(lines[0], " — ")
	if !ok {
		return fmt.Errorf("--help's first line has no \" — \" before the summary: %q", lines[0])
	}
	type entry struct{ tag, text string }
	sections := map[string][]entry{}
	var order []string
	sec := ""
	for _, l := range lines[1:] {
		switch {
		case strings.TrimSpace(l) == "":
		case !strings.HasPrefix(l, " ") && strings.HasSuffix(l, ":"):
			sec = strings.TrimSuffix(l, ":")
			if i := strings.Index(sec, " ("); i > 0 {
				sec = sec[:i]
			}
			order = append(order, sec)
		case sec == "":
			return fmt.Errorf("--help: text before any section: %q", l)
		case strings.HasPrefix(l, "    "): // continues the entry above
			es := sections[sec]
			if len(es) == 0 {
				return fmt.Errorf("--help: continuation line with no entry above: %q", l)
			}
			es[len(es)-1].text = strings.TrimSpace(es[len(es)-1].text + " " + strings.TrimSpace(l))
		default:
			parts := twoSpaces.Split(strings.TrimSpace(l), 2)
			e := entry{tag: parts[0]}
			if len(parts) == 2 {
				e.text = parts[1]
			}
			sections[sec] = append(sections[sec], e)
		}
	}
	if len(sections["Usage"]) == 0 {
		return errors.New("--help has no Usage: section")
	}
	bw := bufio.NewWriter(w)
	p := func(format string, a ...any) { fmt.Fprintf(bw, format+"\n", a...) }
	p(`.\" Generated from chatbox --help by scripts/pkgdocs; do not edit.`)
	p(`.TH CHATBOX 1 "%s" "chatbox %s" "User Commands"`, date.UTC().Format("2006-01-02"), roff(version))
	p(".SH NAME")
	p(`chatbox \- %s`, roff(summary))
	p(".SH SYNOPSIS")
	for i, e := range sections["Usage"] {
		if i > 0 {
			p(".br")
		}
		p(`.B chatbox`)
		if rest := strings.TrimPrefix(e.tag, "chatbox"); strings.TrimSpace(rest) != "" {
			fmt.Fprintf(bw, ".RI \"%s\"\n", roff(strings.TrimSpace(rest)))
		}
	}
	p(".SH DESCRIPTION")
	p("Run with no command, chatbox serves with its settings until SIGTERM or SIGINT.")
	p("Its commands manage accounts, rooms, invitations, backups and the certificate,")
	p("also while the server runs.")
	for _, sec := range order {
		name := map[string]string{"Usage": "COMMANDS", "Flags": "OPTIONS"}[sec]
		if name == "" {
			name = strings.ToUpper(sec)
		}
		p(".SH %s", name)
		for _, e := range sections[sec] {
			p(".TP")
			p(`.B "%s"`, roff(e.tag))
			p("%s", roff(e.text))
		}
	}
	p(".SH FILES")
	p(".TP")
	p(".I /etc/chatbox/chatbox.toml")
	p("the settings of the packaged service; every key is described in")
	p(".IR /usr/share/doc/chatbox/chatbox.example.toml .")
	p(".TP")
	p(".I /var/lib/chatbox")
	p("accounts, history, certificates and shared files (the service's data directory).")
	p(".SH ENVIRONMENT")
	p(".TP")
	p(".B CHATBOX_CONFIG, CHATBOX_DATA")
	p("the settings file and the data directory, when no flag gives them.")
	p(".TP")
	p(".B NOTIFY_SOCKET, WATCHDOG_USEC")
	p("set by systemd: chatbox reports readiness and sends watchdog pings.")
	p(".SH SEE ALSO")
	p(".BR systemctl (1),")
	p(".BR journalctl (1)")
	return bw.Flush()
}

// copyright writes chatbox's notice and, for the Go standard library and
// every module linked into bin, its license text from the module cache.
func copyright(w io.Writer, bin string) error {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("read the modules linked into %s: %w", bin, err)
	}
	cache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return fmt.Errorf("go env GOMODCACHE: %w", err)
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, `chatbox, a private chat server in a box

Copyright: the chatbox developers <dev@chatbox.invalid>.
The chatbox sources carry no license statement yet; the package is built
from them as they stand.

/usr/bin/chatbox is one statically linked Go program. It contains the Go
standard library (%s) and the Go modules listed below, each under the
license that follows its name.
`, bi.GoVersion)
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return fmt.Errorf("go env GOROOT: %w", err)
	}
	if err := license(bw, "Go standard library "+bi.GoVersion, strings.TrimSpace(string(goroot))); err != nil {
		return err
	}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		dir := filepath.Join(strings.TrimSpace(string(cache)), escape(d.Path)+"@"+d.Version)
		if err := license(bw, d.Path+" "+d.Version, dir); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func license(w io.Writer, name, dir string) error {
	for _, f := range []string{"LICENSE", "LICENSE.md", "LICENSE.txt", "COPYING", "LICENCE"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			continue
		}
		fmt.Fprintf(w, "\n-------------------------------------------------------------------------\n%s\n\n", name)
		text := string(b)
		if strings.Contains(text, "Apache License") && strings.Contains(text, "Version 2.0") && strings.Contains(text, "TERMS AND CONDITIONS") {
			// Debian ships this one: point to it (Debian policy 12.5).
			fmt.Fprintf(w, "  Apache License, Version 2.0. On Debian systems, its complete text is in\n  /usr/share/common-licenses/Apache-2.0.\n")
			return nil
		}
		for _, l := range strings.Split(strings.TrimRight(strings.ReplaceAll(text, "\r", ""), "\n"), "\n") {
			fmt.Fprintf(w, "  %s\n", strings.TrimRight(l, " \t"))
		}
		return nil
	}
	return fmt.Errorf("no license file for %s in %s (go mod download it first)", name, dir)
}

// escape is the module cache's case encoding: an upper-case letter is "!"
// and its lower case.
func escape(path string) string {
	var b strings.Builder
	for _, r := range path {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
