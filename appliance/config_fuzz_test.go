package appliance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary settings files and --set values to Load: it
// must never panic, and whatever it accepts must validate.
func FuzzLoad(f *testing.F) {
	example, _ := os.ReadFile(filepath.Join("..", "chatbox.example.toml"))
	f.Add(string(example), "web.listen=127.0.0.1:0")
	f.Add("domain = \"box.local\"\n[irc]\nplain_listen = [\"127.0.0.1:6667\"]\n", "irc.plain_listen=127.0.0.1:0")
	f.Add("[limits]\nmessage_burst = \"ten\"\n", "limits.message_burst=ten")
	f.Add("[registration]\npairing_window = 300\n", "registration.pairing_window=5m")
	f.Add("a.b.c = [1, [2, {x = 3}]]\n[[x]]\n", "=")
	f.Fuzz(func(t *testing.T, file, set string) {
		path := filepath.Join(t.TempDir(), "chatbox.toml")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		var sets []string
		if set != "" {
			sets = strings.Split(set, "\n")
		}
		cfg, err := Load(path, sets, "fuzzhost")
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Load accepted settings that do not validate: %v", err)
		}
	})
}
