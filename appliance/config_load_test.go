package appliance

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

const testHost = "testbox"

// writeSettings writes text as chatbox.toml in a fresh folder and returns
// its path.
func writeSettings(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chatbox.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadErr loads and returns the error text, failing if there is none.
func loadErr(t *testing.T, path string, sets ...string) string {
	t.Helper()
	cfg, err := Load(path, sets, testHost)
	if err == nil {
		t.Fatalf("Load succeeded, want an error (config %+v)", cfg)
	}
	if !reflect.DeepEqual(cfg, Config{}) {
		t.Errorf("Load returned a config with its error")
	}
	return err.Error()
}

func wantContains(t *testing.T, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("error %q\ndoes not contain %q", got, w)
		}
	}
}

func TestLoadDefaultsWithoutFile(t *testing.T) {
	cfg, err := Load("", nil, testHost)
	if err != nil {
		t.Fatal(err)
	}
	if want := Defaults(testHost); !reflect.DeepEqual(cfg, want) {
		t.Errorf("Load(\"\") = %+v\nwant %+v", cfg, want)
	}
	if cfg.Domain != "testbox.local" {
		t.Errorf("domain = %q", cfg.Domain)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestLoadFileOverrides(t *testing.T) {
	path := writeSettings(t, `
domain = "chat.example.org"
name = "Kitchen"

[irc]
plain_listen = []
motd = "hi"

[xmpp]
listen = ["0.0.0.0:5222", "[::]:5222"]

[limits]
message_burst = 7

[registration]
policy = "invite"
pairing_window = "90s"

[federation]
enabled = true
`)
	cfg, err := Load(path, nil, testHost)
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults(testHost)
	want.Domain = "chat.example.org"
	want.Name = "Kitchen"
	want.IRC.PlainListen = nil
	want.IRC.MOTD = "hi"
	want.XMPP.Listen = []string{"0.0.0.0:5222", "[::]:5222"}
	want.Limits.MessageBurst = 7
	want.Registration.Policy = "invite"
	want.Registration.PairingWindow = 90 * time.Second
	want.Federation.Enabled = true
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestLoadUnknownKey(t *testing.T) {
	path := writeSettings(t, `name = "x"

[irc]
motd = "hello"
listn = ["0.0.0.0:6697"]
`)
	msg := loadErr(t, path)
	want := path + `:5: unknown key "irc.listn" (did you mean "irc.tls_listen"? see chatbox.example.toml)`
	if msg != want {
		t.Errorf("error\n%s\nwant\n%s", msg, want)
	}
}

func TestLoadUnknownKeys(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"unknown table", "a = 1\n\n[limit]\nmessage_burst = 3\n",
			`chatbox.toml:3: unknown key "limit" (did you mean "limits"?`},
		{"implicit table", "\n\nlimit.message_burst = 3\n",
			`chatbox.toml:3: unknown key "limit" (did you mean "limits"?`},
		{"wrong table", "[irc]\n\npairing_window = \"1m\"\n",
			`chatbox.toml:3: unknown key "irc.pairing_window" (did you mean "registration.pairing_window"?`},
		{"top level", "# hi\nmessage_burst = 3\n",
			`chatbox.toml:2: unknown key "message_burst" (did you mean "limits.message_burst"?`},
		{"case", "[IRC]\nmotd = \"x\"\n",
			`chatbox.toml:1: unknown key "IRC" (did you mean "irc"?`},
		{"nothing near", "[irc]\nzzzzzzzz = 1\n",
			`chatbox.toml:2: unknown key "irc.zzzzzzzz" (see chatbox.example.toml for every key)`},
		{"inline table", "irc = { motd = \"x\", foo = 1 }\n",
			`unknown key "irc.foo"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantContains(t, loadErr(t, writeSettings(t, tt.text)), tt.want)
		})
	}
}

func TestLoadWrongTypes(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"string for int", "[limits]\n\nmessage_burst = \"ten\"\n",
			`chatbox.toml:3: limits.message_burst: expected an integer, got "ten"`},
		{"float for int", "[limits]\nmessage_burst = 2.0\n",
			`chatbox.toml:2: limits.message_burst: expected an integer, got 2.0`},
		{"bare word", "[limits]\nmessage_burst = ten\n",
			`chatbox.toml:2: expected value but found "ten" instead (limits.message_burst expects an integer, like message_burst = 20)`},
		{"unquoted address", "[web]\nlisten = 0.0.0.0:8080\n",
			`chatbox.toml:2: `},
		{"string for list", "[irc]\nplain_listen = \"0.0.0.0:6667\"\n",
			`chatbox.toml:2: irc.plain_listen: expected a list of strings such as ["a", "b"], got "0.0.0.0:6667"`},
		{"number in list", "[irc]\nplain_listen = [\"0.0.0.0:6667\",\n 6668]\n",
			`chatbox.toml:2: irc.plain_listen: expected a list of strings such as ["a", "b"], but item 2 is 6668`},
		{"int for bool", "[federation]\nenabled = 1\n",
			`chatbox.toml:2: federation.enabled: expected true or false, got 1`},
		{"string for bool", "[federation]\nenabled = \"yes\"\n",
			`chatbox.toml:2: federation.enabled: expected true or false, got "yes"`},
		{"int for duration", "[registration]\npairing_window = 300\n",
			`chatbox.toml:2: registration.pairing_window: expected a duration in quotes such as "5m" or "1h30m", got 300`},
		{"bad duration", "[registration]\npairing_window = \"5 minutes\"\n",
			`chatbox.toml:2: registration.pairing_window: expected a duration in quotes such as "5m" or "1h30m", got "5 minutes"`},
		{"value for table", "irc = 3\n",
			`chatbox.toml:1: irc: expected a table (a [section]), got 3`},
		{"array of tables", "[[irc]]\nmotd = \"x\"\n",
			`chatbox.toml:1: irc: expected a table (a [section]), got a list of tables`},
		{"syntax", "name = \"x\n",
			`chatbox.toml:1: `},
		{"duplicate", "name = \"x\"\nname = \"y\"\n",
			`chatbox.toml:2: Key 'name' has already been defined.`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantContains(t, loadErr(t, writeSettings(t, tt.text)), tt.want)
		})
	}
}

func TestLoadReportsEveryProblemInFileOrder(t *testing.T) {
	path := writeSettings(t, `[limits]
message_burst = "ten"
bogus = 1
[irc]
motd = 5
`)
	lines := strings.Split(loadErr(t, path), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 problems, got %q", lines)
	}
	for i, n := range []string{":2: ", ":3: ", ":5: "} {
		wantContains(t, lines[i], "chatbox.toml"+n)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.toml")
	wantContains(t, loadErr(t, path), "nope.toml", "no such file")
}

func TestLoadSet(t *testing.T) {
	tests := []struct {
		set   string
		check func(c Config) bool
	}{
		{`web.listen="127.0.0.1:0"`, func(c Config) bool { return c.Web.Listen == "127.0.0.1:0" }},
		{`web.listen=127.0.0.1:0`, func(c Config) bool { return c.Web.Listen == "127.0.0.1:0" }},
		{`web.listen=`, func(c Config) bool { return c.Web.Listen == "" }},
		{`irc.motd=Hello there # friends`, func(c Config) bool { return c.IRC.MOTD == "Hello there # friends" }},
		{`name=2024`, func(c Config) bool { return c.Name == "2024" }},
		{`limits.message_burst=50`, func(c Config) bool { return c.Limits.MessageBurst == 50 }},
		{` limits.message_burst = 51 `, func(c Config) bool { return c.Limits.MessageBurst == 51 }},
		{`federation.enabled=true`, func(c Config) bool { return c.Federation.Enabled }},
		{`registration.pairing_window=10m`, func(c Config) bool { return c.Registration.PairingWindow == 10*time.Minute }},
		{`registration.pairing_window="1h30m"`, func(c Config) bool { return c.Registration.PairingWindow == 90*time.Minute }},
		{`irc.plain_listen=["127.0.0.1:0", "[::1]:0"]`, func(c Config) bool {
			return reflect.DeepEqual(c.IRC.PlainListen, []string{"127.0.0.1:0", "[::1]:0"})
		}},
		{`irc.plain_listen=127.0.0.1:0`, func(c Config) bool {
			return reflect.DeepEqual(c.IRC.PlainListen, []string{"127.0.0.1:0"})
		}},
		{`irc.plain_listen=[::1]:0`, func(c Config) bool {
			return reflect.DeepEqual(c.IRC.PlainListen, []string{"[::1]:0"})
		}},
		{`irc.plain_listen=`, func(c Config) bool { return c.IRC.PlainListen == nil }},
		{`irc.plain_listen=[]`, func(c Config) bool { return c.IRC.PlainListen == nil }},
		{`tls.extra_names=192.168.1.20`, func(c Config) bool {
			return reflect.DeepEqual(c.TLS.ExtraNames, []string{"192.168.1.20"})
		}},
		{`rooms = { default = ["a", "b"] }`, func(c Config) bool {
			return reflect.DeepEqual(c.Rooms.Default, []string{"a", "b"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.set, func(t *testing.T) {
			cfg, err := Load("", []string{tt.set}, testHost)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("--set %s gave %+v", tt.set, cfg)
			}
		})
	}
}

func TestLoadSetOverridesFile(t *testing.T) {
	path := writeSettings(t, "[limits]\nmessage_burst = 7\nmessages_per_second = 3\n")
	cfg, err := Load(path, []string{"limits.message_burst=9", "limits.message_burst=11"}, testHost)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Limits.MessageBurst != 11 || cfg.Limits.MessagesPerSecond != 3 {
		t.Errorf("limits = %+v", cfg.Limits)
	}
}

func TestLoadSetErrors(t *testing.T) {
	tests := []struct{ set, want string }{
		{"irc.foo=1", `--set irc.foo=1: unknown key "irc.foo" (see chatbox.example.toml for every key)`},
		{"irc.mot=1", `--set irc.mot=1: unknown key "irc.mot" (did you mean "irc.motd"? see chatbox.example.toml)`},
		{"limits.message_burst=ten", `--set limits.message_burst=ten: limits.message_burst: expected an integer, got "ten"`},
		{"federation.enabled=yes", `--set federation.enabled=yes: federation.enabled: expected true or false, got "yes"`},
		{"registration.pairing_window=300", `--set registration.pairing_window=300: registration.pairing_window: expected a duration in quotes such as "5m" or "1h30m", got 300`},
		{"irc.plain_listen=[1]", `--set irc.plain_listen=[1]: irc.plain_listen: expected a list of strings such as ["a", "b"], but item 1 is 1`},
		{"irc", `--set irc: expected key=value`},
		{"=1", `--set =1: expected key=value`},
		{"a b=1", `--set a b=1: cannot read key "a b"`},
	}
	for _, tt := range tests {
		t.Run(tt.set, func(t *testing.T) {
			got := loadErr(t, "", tt.set)
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("error\n%s\nwant prefix\n%s", got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   string
	}{
		{"empty domain", func(c *Config) { c.Domain = "" }, "domain: must be a DNS name"},
		{"bad domain", func(c *Config) { c.Domain = "my_box.local" }, `domain: must be a DNS name such as "chatbox.local"`},
		{"upper domain", func(c *Config) { c.Domain = "Box.local" }, "domain: "},
		{"dash domain", func(c *Config) { c.Domain = "-box.local" }, "domain: "},
		{"empty label", func(c *Config) { c.Domain = "box..local" }, "domain: "},
		{"empty name", func(c *Config) { c.Name = "" }, "name: must not be empty"},
		{"empty data", func(c *Config) { c.DataDir = "" }, "data_dir: "},
		{"log level", func(c *Config) { c.Log.Level = "verbose" }, `log.level: must be one of "debug", "info", "warn" or "error", got "verbose"`},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, `log.format: must be one of "text" or "json", got "xml"`},
		{"cert without key", func(c *Config) { c.TLS.CertFile = "a.pem" }, "tls.key_file: must be set when tls.cert_file is"},
		{"key without cert", func(c *Config) { c.TLS.KeyFile = "a.pem" }, "tls.cert_file: must be set when tls.key_file is"},
		{"extra name", func(c *Config) { c.TLS.ExtraNames = []string{"10.0.0.1", "bad name"} }, `tls.extra_names: "bad name" is neither`},
		{"no port", func(c *Config) { c.XMPP.Listen = []string{"0.0.0.0"} }, `xmpp.listen: "0.0.0.0" is not a listen address`},
		{"named port", func(c *Config) { c.XMPP.TLSListen = []string{":xmpp"} }, `xmpp.tls_listen: ":xmpp" is not a listen address`},
		{"big port", func(c *Config) { c.IRC.TLSListen = []string{"0.0.0.0:70000"} }, `irc.tls_listen: "0.0.0.0:70000" is not a listen address: write host:port`},
		{"bad host", func(c *Config) { c.IRC.PlainListen = []string{"a b:1"} }, `irc.plain_listen: "a b:1" is not a listen address`},
		{"web", func(c *Config) { c.Web.Listen = "8080" }, `web.listen: "8080" is not a listen address`},
		{"federation", func(c *Config) { c.Federation.Listen = []string{"x"} }, `federation.listen: "x" is not`},
		{"same port twice", func(c *Config) { c.IRC.PlainListen = []string{"127.0.0.1:5222"} }, `irc.plain_listen: "127.0.0.1:5222" is already used by xmpp.listen`},
		{"stanza", func(c *Config) { c.XMPP.MaxStanzaBytes = 100 }, "xmpp.max_stanza_bytes: must be at least 10000"},
		{"policy", func(c *Config) { c.Registration.Policy = "public" }, `registration.policy: must be one of "closed", "invite" or "open", got "public"`},
		{"pairing", func(c *Config) { c.Registration.PairingWindow = 0 }, `registration.pairing_window: must be longer than 0`},
		{"room", func(c *Config) { c.Rooms.Default = []string{"general", "Bad Room"} }, `rooms.default: invalid name: "Bad Room" must start with a letter`},
		{"room twice", func(c *Config) { c.Rooms.Default = []string{"a", "a"} }, `rooms.default: "a" is listed twice`},
		{"history", func(c *Config) { c.Rooms.DefaultHistory = -1 }, "rooms.default_history: must be at least 0, got -1"},
		{"rooms per user", func(c *Config) { c.Rooms.MaxRoomsPerUser = 0 }, "rooms.max_rooms_per_user: must be at least 1, got 0"},
		{"connections", func(c *Config) { c.Limits.ConnectionsPerAddress = 0 }, "limits.connections_per_address: must be at least 1, got 0"},
		{"rate", func(c *Config) { c.Limits.MessagesPerSecond = 0 }, "limits.messages_per_second: must be at least 1, got 0"},
		{"burst", func(c *Config) { c.Limits.MessageBurst = 0 }, "limits.message_burst: must be at least 1, got 0"},
		{"logins", func(c *Config) { c.Limits.FailedLoginsPerMinute = -3 }, "limits.failed_logins_per_minute: must be at least 1, got -3"},
		{"message bytes", func(c *Config) { c.Limits.MaxMessageBytes = 0 }, "limits.max_message_bytes: must be at least 1, got 0"},
		{"sessions", func(c *Config) { c.Limits.SessionsPerAccount = 0 }, "limits.sessions_per_account: must be at least 1, got 0"},
		{"retention", func(c *Config) { c.History.RetentionDays = -1 }, "history.retention_days: must be at least 0, got -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults(testHost)
			tt.change(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			wantContains(t, err.Error(), tt.want)
			var se *SettingError
			if !errors.As(err, &se) {
				t.Errorf("%v is not a *SettingError", err)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	c := Defaults(testHost)
	c.Domain = "localhost"
	c.XMPP.Listen = []string{"[::]:5222", ":5200", "localhost:0", "127.0.0.1:0"}
	c.IRC.PlainListen = nil
	c.Web.Listen = ""
	c.TLS.ExtraNames = []string{"192.168.1.20", "fe80::1", "chat.example.org"}
	c.Federation.Listen = []string{"127.0.0.1:5222"} // not used while disabled
	c.Rooms.Default = nil
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

func TestValidateErrorsFromFileAndSetAreLocated(t *testing.T) {
	path := writeSettings(t, "[limits]\n\nmessage_burst = 0\nmessages_per_second = 0\n")
	msg := loadErr(t, path, "limits.messages_per_second=0", "log.level=loud")
	wantContains(t, msg,
		path+":3: limits.message_burst: must be at least 1, got 0",
		"--set limits.messages_per_second=0: limits.messages_per_second: must be at least 1, got 0",
		`--set log.level=loud: log.level: must be one of`)
}

func TestCheckConfigFile(t *testing.T) {
	if err := CheckConfigFile(writeSettings(t, "name = \"ok\"\n"), testHost); err != nil {
		t.Error(err)
	}
	if err := CheckConfigFile(writeSettings(t, "nmae = \"ok\"\n"), testHost); err == nil {
		t.Error("CheckConfigFile accepted an unknown key")
	}
}

const examplePath = "../" + exampleFile

func TestExampleFileIsTheDefaults(t *testing.T) {
	cfg, err := Load(examplePath, nil, testHost)
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults(testHost)
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("%s loads as\n%+v\nbut Defaults are\n%+v", exampleFile, cfg, want)
	}
}

// exampleKeys returns the dotted keys the example file sets or shows in a
// comment ("# domain = ..."), by the [table] they are under.
func exampleKeys(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		table = regexp.MustCompile(`^\s*\[([a-z_.]+)\]\s*(#.*)?$`)
		key   = regexp.MustCompile(`^\s*#?\s*([a-z_]+)\s*=`)
		keys  = map[string]bool{}
		where = ""
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := table.FindStringSubmatch(line); m != nil {
			where = m[1] + "."
			keys[m[1]] = true
			continue
		}
		if m := key.FindStringSubmatch(line); m != nil {
			keys[where+m[1]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestExampleFileDocumentsEveryKey(t *testing.T) {
	documented := exampleKeys(t)
	all := settingKeys(reflect.TypeFor[Config](), "")
	if len(all) < 10 {
		t.Fatalf("only %d keys found in Config", len(all))
	}
	for _, k := range all {
		if !documented[k] {
			t.Errorf("%s does not show %q: add it, its default and what it does", exampleFile, k)
		}
	}
	// Every key has a comment line just above it.
	text, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(text), "\n")
	for i, l := range lines {
		if i > 0 && regexp.MustCompile(`^[a-z_]+\s*=`).MatchString(l) {
			prev := strings.TrimSpace(lines[i-1])
			if !strings.HasPrefix(prev, "#") && !regexp.MustCompile(`^[a-z_]+\s*=`).MatchString(prev) {
				t.Errorf("%s:%d: %q has no comment", exampleFile, i+1, l)
			}
		}
	}
}

func TestDefaultDomain(t *testing.T) {
	tests := []struct{ host, want string }{
		{"raspberrypi", "raspberrypi.local"},
		{"RaspberryPi", "raspberrypi.local"},
		{"box.home.lan", "box.local"},
		{"My_Laptop", "my-laptop.local"},
		{"Zoë's MacBook Pro", "zo-s-macbook-pro.local"},
		{" -box- ", "box.local"},
		{"", "chatbox.local"},
		{"---", "chatbox.local"},
		{".hidden", "chatbox.local"},
		{"été", "t.local"},
		{strings.Repeat("a", 70), strings.Repeat("a", 63) + ".local"},
	}
	for _, tt := range tests {
		got := defaultDomain(tt.host)
		if got != tt.want {
			t.Errorf("defaultDomain(%q) = %q, want %q", tt.host, got, tt.want)
		}
		if checkDNSName(got) != "" {
			t.Errorf("defaultDomain(%q) = %q is not a valid domain", tt.host, got)
		}
	}
}

func TestSuggestKey(t *testing.T) {
	tests := []struct{ key, want string }{
		{"irc.listn", "irc.tls_listen"},
		{"irc.plainlisten", "irc.plain_listen"},
		{"xmpp.listne", "xmpp.listen"},
		{"limits.burst", "limits.message_burst"},
		{"registraton", "registration"},
		{"web.foo", ""},
	}
	for _, tt := range tests {
		if got := suggestKey(strings.Split(tt.key, ".")); got != tt.want {
			t.Errorf("suggestKey(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestOnLAN(t *testing.T) {
	c := Defaults("h")
	if got := c.OnLAN(); got.IRC.TLSListen[0] != "127.0.0.1:6697" {
		t.Fatalf("lan off moved a listener: %v", got.IRC.TLSListen)
	}
	c.LAN = true
	c.XMPP.Listen = []string{"localhost:5222", "192.168.1.5:5222"}
	got := c.OnLAN()
	if got.IRC.TLSListen[0] != ":6697" || got.Web.Listen != ":8080" || got.XMPP.TLSListen[0] != ":5223" {
		t.Fatalf("lan on: %v %v %v", got.IRC.TLSListen, got.Web.Listen, got.XMPP.TLSListen)
	}
	if got.XMPP.Listen[0] != ":5222" || got.XMPP.Listen[1] != "192.168.1.5:5222" {
		t.Fatalf("named addresses must stay: %v", got.XMPP.Listen)
	}
	if got.IRC.PlainListen[0] != "127.0.0.1:6667" {
		t.Fatalf("plain-text IRC left loopback: %v", got.IRC.PlainListen)
	}
}
