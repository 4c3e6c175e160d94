package main

import (
	"strings"
	"testing"
)

func TestSplitFlags(t *testing.T) {
	g, rest, err := splitFlags([]string{"--data", "d", "user", "--set=a=1", "add", "-config=c.toml", "--set", "b=2", "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if g.data != "d" || g.config != "c.toml" || strings.Join(g.sets, ",") != "a=1,b=2" || strings.Join(rest, " ") != "user add bob" {
		t.Fatalf("got %+v %v", g, rest)
	}
	if _, _, err := splitFlags([]string{"--data"}); err == nil {
		t.Fatal("missing value accepted")
	}
	if _, rest, _ := splitFlags([]string{"user", "add", "--", "--odd"}); strings.Join(rest, " ") != "user add --odd" {
		t.Fatalf("-- not honoured: %v", rest)
	}
}

// FuzzSplitFlags: any command line is either refused or split so that
// every argument lands somewhere exactly once.
func FuzzSplitFlags(f *testing.F) {
	f.Add("--data\x00d\x00user\x00add\x00bob")
	f.Add("--set=x=1\x00--\x00-z")
	f.Add("-h")
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, "\x00")
		g, rest, err := splitFlags(args)
		if err != nil {
			return
		}
		n := len(rest) + len(g.sets)
		if g.data != "" || g.config != "" {
			n++
		}
		if n > len(args) {
			t.Fatalf("%q split into more parts than it has: %+v %v", args, g, rest)
		}
	})
}
