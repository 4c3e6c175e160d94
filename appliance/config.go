package appliance

import (
	"net"
	"strings"
	"time"
)

// Config is the box's settings: one TOML file, every key documented in
// chatbox.example.toml at the repository root, defaults built in
// (Defaults). Listener lists name host:port addresses; an empty list turns
// that listener off.
type Config struct {
	// Domain is the XMPP domain and the name in the certificate.
	// Default: the host's name + ".local".
	Domain string `toml:"domain"`
	// Name is the box's display name (web admin, mDNS instance name).
	Name string `toml:"name"`
	// DataDir holds the database, certificates and uploads.
	// --data and CHATBOX_DATA override it. Default "./chatbox-data".
	DataDir string `toml:"data_dir"`
	// LAN moves every loopback listener (except plain-text IRC) to all
	// interfaces: see OnLAN.
	LAN bool `toml:"lan"`

	Log          LogConfig          `toml:"log"`
	TLS          TLSConfig          `toml:"tls"`
	XMPP         XMPPConfig         `toml:"xmpp"`
	IRC          IRCConfig          `toml:"irc"`
	Web          WebConfig          `toml:"web"`
	Federation   FederationConfig   `toml:"federation"`
	Registration RegistrationConfig `toml:"registration"`
	Rooms        RoomsConfig        `toml:"rooms"`
	Limits       LimitsConfig       `toml:"limits"`
	History      HistoryConfig      `toml:"history"`
	Event        EventConfig        `toml:"event"`
	Upload       UploadConfig       `toml:"upload"`
	Calls        CallsConfig        `toml:"calls"`
	HW           HWConfig           `toml:"hw"`
	MDNS         MDNSConfig         `toml:"mdns"`
}

// LogConfig sets logging.
type LogConfig struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
}

// TLSConfig chooses the certificate. With CertFile and KeyFile empty the
// box uses its own CA (made on first start in <data>/tls).
type TLSConfig struct {
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// ExtraNames are more DNS names or IP addresses for the box's own
	// server certificate.
	ExtraNames []string `toml:"extra_names"`
	// ACME gets the certificate from an ACME CA (Let's Encrypt) for a box
	// with a public name (acme.go); AcmeEmail is the account's contact,
	// AcmeDirectory the CA's directory URL, AcmeRoots a PEM file of CAs
	// trusted for that URL (empty: the system's).
	ACME          bool   `toml:"acme"`
	ACMEEmail     string `toml:"acme_email"`
	ACMEDirectory string `toml:"acme_directory"`
	ACMERoots     string `toml:"acme_roots"`
}

// XMPPConfig sets the XMPP client door.
type XMPPConfig struct {
	Listen         []string `toml:"listen"`          // c2s with STARTTLS (5222)
	TLSListen      []string `toml:"tls_listen"`      // c2s direct TLS, XEP-0368 (5223)
	AllowPlaintext bool     `toml:"allow_plaintext"` // allow c2s without STARTTLS
	MaxStanzaBytes int      `toml:"max_stanza_bytes"`
	// ComponentListen is where XEP-0114 components (bots, gateways)
	// connect; Components lists each one as "domain=secret".
	ComponentListen []string `toml:"component_listen"`
	Components      []string `toml:"components"`
}

// IRCConfig sets the IRC door.
type IRCConfig struct {
	TLSListen   []string `toml:"tls_listen"`   // 6697
	PlainListen []string `toml:"plain_listen"` // 6667
	MOTD        string   `toml:"motd"`
}

// WebConfig sets the web admin.
type WebConfig struct {
	Listen string `toml:"listen"` // "" turns the web admin off
	HTTPS  bool   `toml:"https"`
}

// FederationConfig sets XMPP server-to-server.
type FederationConfig struct {
	Enabled bool     `toml:"enabled"`
	Listen  []string `toml:"listen"` // 5269, used only when Enabled
	// TLSListen takes other servers with direct TLS (XEP-0368, 5270).
	TLSListen []string `toml:"tls_listen"`
	// Hosts are "domain=host:port": where to reach a server, before DNS.
	Hosts []string `toml:"hosts"`
	// Pinned are "domain=sha256:hex": a server's certificate (or its CA)
	// trusted for that domain without a public CA.
	Pinned []string `toml:"pinned"`
	// Allow, when not empty, are the only domains to federate with;
	// Block are domains never to federate with.
	Allow []string `toml:"allow"`
	Block []string `toml:"block"`
	// RemoteOccupants lets users of other servers join the box's rooms.
	RemoteOccupants bool `toml:"remote_occupants"`
	// QueueTimeout is how long a stanza waits for an unreachable server
	// before it is returned to its sender as undeliverable.
	QueueTimeout time.Duration `toml:"queue_timeout"`
	// StanzasPerSecond is how many stanzas one other server may send a
	// second (a burst of twice as many); more are dropped, and their
	// senders told policy-violation.
	StanzasPerSecond int `toml:"stanzas_per_second"`
}

// FederationPairs splits "domain=value" entries (hosts, pinned) into a
// map by lower-case domain.
func FederationPairs(entries []string) map[string]string {
	m := map[string]string{}
	for _, e := range entries {
		d, v, ok := strings.Cut(e, "=")
		if ok {
			m[strings.ToLower(strings.TrimSpace(d))] = strings.TrimSpace(v)
		}
	}
	return m
}

// RegistrationConfig sets who may create an account.
type RegistrationConfig struct {
	Policy        string        `toml:"policy"` // closed, invite or open
	PairingWindow time.Duration `toml:"pairing_window"`
	// Guests lets people without an account join rooms and speak there
	// (IRC clients that do not log in; XMPP SASL ANONYMOUS on
	// guest.<domain>), with a nick that is no account's.
	Guests bool `toml:"guests"`
}

// RoomsConfig sets rooms.
type RoomsConfig struct {
	Default         []string `toml:"default"`            // created at start if missing
	UsersMayCreate  bool     `toml:"users_may_create"`   // joining a missing room creates it
	DefaultHistory  int      `toml:"default_history"`    // lines sent on join
	MaxRoomsPerUser int      `toml:"max_rooms_per_user"` // rooms one session may be in
}

// LimitsConfig bounds every input.
type LimitsConfig struct {
	ConnectionsPerAddress int `toml:"connections_per_address"`
	MessagesPerSecond     int `toml:"messages_per_second"` // per account, sustained
	MessageBurst          int `toml:"message_burst"`
	FailedLoginsPerMinute int `toml:"failed_logins_per_minute"` // per address
	MaxMessageBytes       int `toml:"max_message_bytes"`
	SessionsPerAccount    int `toml:"sessions_per_account"`
	// LoginTimeout: a connection must have logged in (IRC: registered;
	// XMPP: authenticated and bound) this long after it connected.
	LoginTimeout time.Duration `toml:"login_timeout"`
}

// MDNSConfig sets LAN discovery: every listener reachable beyond
// loopback is announced with DNS-SD over mDNS, and the box answers
// <hostname>.local.
type MDNSConfig struct {
	// Interfaces to announce on; empty: every up, non-loopback interface
	// with multicast.
	Interfaces []string `toml:"interfaces"`
}

// UploadConfig sets file sharing (XEP-0363 HTTP File Upload): the box
// serves uploaded files itself over HTTPS, from <data>/uploads.
type UploadConfig struct {
	Listen       []string      `toml:"listen"`         // HTTPS; empty turns file sharing off
	MaxFileBytes int64         `toml:"max_file_bytes"` // largest single file
	QuotaBytes   int64         `toml:"quota_bytes"`    // per account, files not yet expired
	Expire       time.Duration `toml:"expire"`         // files are deleted this long after upload
}

// CallsConfig sets the STUN/TURN service that lets XMPP apps make audio
// and video calls on a LAN without the Internet (XEP-0215 tells them
// where it is).
type CallsConfig struct {
	Listen []string `toml:"listen"` // UDP and TCP; empty turns STUN/TURN off
	// RelayIP is the address relayed media flows through; "" picks the
	// box's first non-loopback IPv4 address (loopback if none).
	RelayIP      string `toml:"relay_ip"`
	RelayMinPort int    `toml:"relay_min_port"`
	RelayMaxPort int    `toml:"relay_max_port"`
	// CredentialLifetime is how long the TURN credentials handed to an
	// app stay valid.
	CredentialLifetime time.Duration `toml:"credential_lifetime"`
}

// HistoryConfig sets what is kept.
type HistoryConfig struct {
	// RetentionDays is how long history is kept; 0 keeps everything.
	// Direct messages waiting for an offline recipient are always kept.
	RetentionDays int `toml:"retention_days"`
}

// EventConfig sets event mode (a LAN party, a meeting): guests on both
// doors (whatever registration.guests says), confined to Rooms, greeted
// by Welcome, held to GuestMessagesPerMinute; history kept for History
// only. Settings take effect at the next start; closing guest access and
// ending the event are live (web admin, API, button A held 2 s).
type EventConfig struct {
	Enabled bool   `toml:"enabled"`
	Welcome string `toml:"welcome"`
	// Rooms are the rooms guests may join (created at start if missing).
	Rooms []string `toml:"rooms"`
	// History is how long messages are kept while the event runs; older
	// ones are deleted by a sweep every minute. 0 keeps them (then
	// history.retention_days applies).
	History                time.Duration `toml:"history"`
	GuestMessagesPerMinute int           `toml:"guest_messages_per_minute"`
}

// GuestsAllowed says whether the doors admit guests: registration.guests
// or event mode.
func (c Config) GuestsAllowed() bool { return c.Registration.Guests || c.Event.Enabled }

// HWConfig sets the box's front panel (package hw): three LEDs and two
// buttons on GPIO pins, named as the board's GPIO driver names them
// ("GPIO17" on a Raspberry Pi). An empty pin name means "not connected".
type HWConfig struct {
	// Backend is "auto" (GPIO if this board has the pins, else the
	// simulated panel), "gpio" (GPIO or fail) or "sim" (simulated).
	Backend     string `toml:"backend"`
	StatusLED   string `toml:"status_led"`
	ActivityLED string `toml:"activity_led"`
	WANLED      string `toml:"wan_led"`
	ButtonA     string `toml:"button_a"` // pairing; held 2 s: close guest access; 5 s: shut down
	ButtonB     string `toml:"button_b"` // held 15 s: factory reset (asks first)
	// LEDActiveLow: the LEDs light when their pin is low (wired from 3.3 V
	// to the pin) instead of high (wired from the pin to ground).
	LEDActiveLow bool `toml:"led_active_low"`
	// ButtonActiveLow: a pressed button pulls its pin to ground (the
	// board's pull-up holds it high otherwise); false: a pressed button
	// pulls it to 3.3 V (pull-down).
	ButtonActiveLow bool `toml:"button_active_low"`
}

// OnLAN returns the settings as the box listens: with LAN set, every
// listener on 127.0.0.1 or localhost moves to all interfaces (":port"),
// except plain-text IRC, which stays on loopback unless the owner named
// another address.
func (c Config) OnLAN() Config {
	if !c.LAN {
		return c
	}
	widen := func(addrs []string) []string {
		out := make([]string, len(addrs))
		for i, a := range addrs {
			out[i] = widenAddr(a)
		}
		return out
	}
	c.XMPP.Listen = widen(c.XMPP.Listen)
	c.XMPP.TLSListen = widen(c.XMPP.TLSListen)
	c.IRC.TLSListen = widen(c.IRC.TLSListen)
	c.Federation.Listen = widen(c.Federation.Listen)
	c.Federation.TLSListen = widen(c.Federation.TLSListen)
	c.Upload.Listen = widen(c.Upload.Listen)
	c.Calls.Listen = widen(c.Calls.Listen)
	if c.Web.Listen != "" {
		c.Web.Listen = widenAddr(c.Web.Listen)
	}
	return c
}

func widenAddr(a string) string {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return a
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return ":" + port
	}
	return a
}

// Defaults returns the built-in settings for a host called hostname.
func Defaults(hostname string) Config {
	return Config{
		Domain:  defaultDomain(hostname),
		Name:    "chatbox",
		DataDir: "chatbox-data",
		Log:     LogConfig{Level: "info", Format: "text"},
		XMPP: XMPPConfig{
			Listen:         []string{"127.0.0.1:5222"},
			TLSListen:      []string{"127.0.0.1:5223"},
			MaxStanzaBytes: 256 << 10,
		},
		IRC: IRCConfig{
			TLSListen:   []string{"127.0.0.1:6697"},
			PlainListen: []string{"127.0.0.1:6667"},
			MOTD:        "Welcome to chatbox.",
		},
		Web:          WebConfig{Listen: "127.0.0.1:8080"},
		Federation:   FederationConfig{Listen: []string{"127.0.0.1:5269"}, QueueTimeout: 2 * time.Minute, RemoteOccupants: true, StanzasPerSecond: 50},
		Registration: RegistrationConfig{Policy: "closed", PairingWindow: 5 * time.Minute},
		Rooms: RoomsConfig{
			Default:         []string{"general"},
			UsersMayCreate:  true,
			DefaultHistory:  20,
			MaxRoomsPerUser: 50,
		},
		Limits: LimitsConfig{
			ConnectionsPerAddress: 20,
			MessagesPerSecond:     5,
			MessageBurst:          20,
			FailedLoginsPerMinute: 10,
			MaxMessageBytes:       64 << 10,
			SessionsPerAccount:    10,
			LoginTimeout:          time.Minute,
		},
		Event: EventConfig{
			Welcome:                "Welcome! Be kind; what you write here is deleted when the event ends.",
			Rooms:                  []string{"general"},
			History:                24 * time.Hour,
			GuestMessagesPerMinute: 20,
		},
		Upload: UploadConfig{
			Listen:       []string{"127.0.0.1:5443"},
			MaxFileBytes: 100 << 20,
			QuotaBytes:   1 << 30,
			Expire:       30 * 24 * time.Hour,
		},
		Calls: CallsConfig{
			Listen:             []string{"127.0.0.1:3478"},
			RelayMinPort:       49152,
			RelayMaxPort:       49407,
			CredentialLifetime: 24 * time.Hour,
		},
		HW: HWConfig{
			Backend:         "auto",
			StatusLED:       "GPIO17", // header pin 11
			ActivityLED:     "GPIO27", // header pin 13
			WANLED:          "GPIO22", // header pin 15
			ButtonA:         "GPIO23", // header pin 16
			ButtonB:         "GPIO24", // header pin 18
			ButtonActiveLow: true,
		},
	}
}

// ComponentSecrets maps each XMPP component's domain to its secret
// (xmpp.components, checked by Validate).
func (x XMPPConfig) ComponentSecrets() map[string]string {
	m := map[string]string{}
	for _, c := range x.Components {
		d, sec, _ := strings.Cut(c, "=")
		m[strings.ToLower(strings.TrimSpace(d))] = sec
	}
	return m
}
