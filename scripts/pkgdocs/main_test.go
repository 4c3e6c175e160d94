package main

import (
	"strings"
	"testing"
	"time"
)

const sampleHelp = `chatbox — a private chat server in a box

Usage:
  chatbox [flags]                    run the server
  chatbox [flags] user admin NAME yes|no
                                     make an account an admin
  chatbox version                    print the version

Flags (anywhere on the line):
  --config FILE      settings file
`

func TestManPage(t *testing.T) {
	var b strings.Builder
	if err := manPage(&b, sampleHelp, "1.2.3+git4", time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		`.TH CHATBOX 1 "2026-12-01" "chatbox 1.2.3+git4" "User Commands"`,
		"chatbox \\- a private chat server in a box\n",
		".SH SYNOPSIS\n.B chatbox\n.RI \"[flags]\"\n.br\n",
		".SH COMMANDS\n.TP\n.B \"chatbox [flags]\"\nrun the server\n",
		".TP\n.B \"chatbox [flags] user admin NAME yes|no\"\nmake an account an admin\n",
		".SH OPTIONS\n.TP\n.B \"\\-\\-config FILE\"\nsettings file\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("man page lacks %q:\n%s", want, got)
		}
	}
	for _, bad := range []string{"", "no dash here\n\nUsage:\n  x  y\n", "chatbox — x\n\nFlags:\n  --a  b\n", "chatbox — x\n\nUsage:\n      orphan\n"} {
		if err := manPage(&b, bad, "1", time.Now()); err == nil {
			t.Errorf("help %q accepted", bad)
		}
	}
}

func TestEscape(t *testing.T) {
	if got := escape("github.com/BurntSushi/toml"); got != "github.com/!burnt!sushi/toml" {
		t.Errorf("escape: %q", got)
	}
	if got := roff(".hidden -x \\ y"); got != `\&.hidden \-x \e y` {
		t.Errorf("roff: %q", got)
	}
}
