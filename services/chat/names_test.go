package chat

import (
	"errors"
	"regexp"
	"testing"
)

func TestValidName(t *testing.T) {
	good := []string{"a", "alice", "bob-2", "x_y", "a234567890123456789012345678901"[:30]}
	for _, n := range good {
		if err := ValidName(n); err != nil {
			t.Errorf("ValidName(%q) = %v, want nil", n, err)
		}
	}
	bad := []string{"", "1abc", "-abc", "_x", "Alice", "al ice", "al@ice", "é", "#general", "nickserv",
		"a2345678901234567890123456789012"}
	for _, n := range bad {
		if err := ValidName(n); !errors.Is(err, ErrBadName) {
			t.Errorf("ValidName(%q) = %v, want ErrBadName", n, err)
		}
	}
	if Fold("Alice") != "alice" {
		t.Errorf("Fold")
	}
}

var nameRule = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,29}$`)

// FuzzValidName checks ValidName against the documented rule.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{"alice", "", "a-b_c9", "1x", "nickserv", "ÄLICE", "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidName(name)
		if (err == nil) != (nameRule.MatchString(name) && !reservedNames[name]) {
			t.Fatalf("ValidName(%q) = %v disagrees with the rule", name, err)
		}
		if err == nil && Fold(name) != name {
			t.Fatalf("valid name %q is not folded", name)
		}
	})
}
