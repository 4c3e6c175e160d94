package appliance

import (
	"chatbox/services/chat"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// exampleFile is the file every settings error points the owner to.
const exampleFile = "chatbox.example.toml"

// fallbackDomain is the domain of a box whose host name gives nothing usable.
const fallbackDomain = "chatbox.local"

// defaultDomain turns the host's name into the box's default domain: the
// first label of hostname, lower-cased, with every run of characters not
// allowed in a DNS label (a-z, 0-9, '-') replaced by one '-', trimmed of
// leading and trailing '-', at most 63 characters, then ".local". A host
// name that leaves nothing gives "chatbox.local".
func defaultDomain(hostname string) string {
	label, _, _ := strings.Cut(strings.TrimSpace(hostname), ".")
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(label) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-")
	}
	if s == "" {
		return fallbackDomain
	}
	return s + ".local"
}

// SettingError is one problem with one setting, named by its dotted TOML
// key ("limits.message_burst"). Validate returns these (joined), so a
// caller such as the web admin can point at the field.
type SettingError struct {
	Key     string // dotted key, e.g. "irc.plain_listen"
	Problem string // what is wrong and what is expected
}

func (e *SettingError) Error() string { return e.Key + ": " + e.Problem }

// CheckConfigFile reads and validates the settings file at path the way
// the box would at start (`chatbox check-config FILE`), and returns every
// problem found, or nil.
func CheckConfigFile(path, hostname string) error {
	_, err := Load(path, nil, hostname)
	return err
}

// Load builds the box's settings: the built-in Defaults(hostname), then the
// TOML file at path (if path is not empty), then each of sets, a list of
// "key=value" overrides as given with --set (like `git -c`), and finally
// Validate.
//
// The file may only hold keys that Config knows, with values of the right
// type; every problem is reported, one per line, as
//
//	chatbox.toml:12: unknown key "irc.listn" (did you mean "irc.tls_listen"? see chatbox.example.toml)
//	chatbox.toml:3: limits.message_burst: expected an integer, got "ten"
//
// A --set value is read as a TOML value ("irc.plain_listen=[\"a:1\", \"b:2\"]",
// "limits.message_burst=50", "federation.enabled=true"); text that is not a
// TOML value is taken as a string ("web.listen=127.0.0.1:0",
// "registration.pairing_window=10m"), as is any value given for a string
// setting; for a list of strings a single value becomes a one-item list
// and an empty value an empty list. Problems are reported as
//
//	--set irc.foo=1: unknown key "irc.foo" (see chatbox.example.toml for every key)
//
// On error Load returns the zero Config and all problems joined.
func Load(path string, sets []string, hostname string) (Config, error) {
	cfg := Defaults(hostname)
	var file *settingsFile
	if path != "" {
		f, err := readSettingsFile(path)
		if err != nil {
			return Config{}, err
		}
		if probs := assignTable(reflect.ValueOf(&cfg).Elem(), f.raw, nil); len(probs) > 0 {
			return Config{}, f.errorf(probs)
		}
		file = f
	}
	setBy := map[string]string{} // leaf key → the --set that gave it
	var errs []error
	for _, s := range sets {
		keys, err := applySet(&cfg, s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, k := range keys {
			setBy[k] = s
		}
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, locateSettingErrors(err, file, setBy)
	}
	return cfg, nil
}

// locateSettingErrors prefixes each SettingError in err (as joined by
// Validate) with where the bad value came from: the --set that gave it,
// or the file and line.
func locateSettingErrors(err error, file *settingsFile, setBy map[string]string) error {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	out := make([]error, 0, len(list))
	for _, e := range list {
		var se *SettingError
		if !errors.As(e, &se) {
			out = append(out, e)
			continue
		}
		if s, ok := setBy[se.Key]; ok {
			out = append(out, fmt.Errorf("--set %s: %w", s, e))
			continue
		}
		if file != nil {
			key := strings.Split(se.Key, ".")
			if file.md.IsDefined(key...) {
				if line := file.line(key); line > 0 {
					out = append(out, fmt.Errorf("%s:%d: %w", file.path, line, e))
				} else {
					out = append(out, fmt.Errorf("%s: %w", file.path, e))
				}
				continue
			}
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// settingsFile is a parsed settings file, kept to say where a key is.
type settingsFile struct {
	path string
	text string
	raw  map[string]any
	md   toml.MetaData
}

// readSettingsFile reads and parses the TOML file at path, without
// applying it. A syntax error names the file and line.
func readSettingsFile(path string) (*settingsFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read settings: %w", err)
	}
	text := strings.TrimPrefix(string(data), "\ufeff") // editors on Windows add a BOM
	var raw map[string]any
	md, err := toml.Decode(text, &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d: %s", path, pe.Position.Line, parseErrorText(pe))
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &settingsFile{path: path, text: text, raw: raw, md: md}, nil
}

// parseErrorText explains a TOML syntax error; when it is about the value
// of a known setting it adds what that setting expects, with the default
// as an example.
func parseErrorText(pe toml.ParseError) string {
	msg := pe.Message
	if pe.LastKey == "" || strings.Contains(msg, "already been defined") {
		return msg
	}
	key := strings.Split(pe.LastKey, ".")
	t, def, ok := lookupSetting(key)
	if !ok || isTable(t) {
		return msg
	}
	return fmt.Sprintf("%s (%s expects %s, like %s = %s)",
		msg, pe.LastKey, expectation(t), key[len(key)-1], renderTOML(def))
}

// errorf turns problems found in the file into one error, a line each,
// ordered as in the file.
func (f *settingsFile) errorf(probs []problem) error {
	type located struct {
		line int
		msg  string
	}
	ls := make([]located, 0, len(probs))
	for _, p := range probs {
		ls = append(ls, located{line: f.line(p.key), msg: p.msg})
	}
	slices.SortStableFunc(ls, func(a, b located) int { return a.line - b.line })
	errs := make([]error, 0, len(ls))
	for _, l := range ls {
		if l.line > 0 {
			errs = append(errs, fmt.Errorf("%s:%d: %s", f.path, l.line, l.msg))
		} else {
			errs = append(errs, fmt.Errorf("%s: %s", f.path, l.msg))
		}
	}
	return errors.Join(errs...)
}

// line returns the line where key is defined in the file, or 0.
//
// toml v1.5 records every key's position but does not export it; it does
// report it in the ParseError it makes when an Unmarshaler fails. So the
// file is decoded once more into a struct built for this key alone, whose
// leaf is lineProbe: the error that comes back carries the key's exact
// line. A table only implied by a dotted key ("limit.burst = 1") has no
// position of its own; then the line of its first key is used.
func (f *settingsFile) line(key toml.Key) int {
	if l := probeLine(f.text, key); l > 0 {
		return l
	}
	for _, k := range f.md.Keys() {
		if len(k) > len(key) && slices.Equal(k[:len(key)], key) {
			if l := probeLine(f.text, k); l > 0 {
				return l
			}
		}
	}
	return 0
}

// errLineProbe is what lineProbe returns, to recognise its ParseError.
var errLineProbe = errors.New("chatbox: line probe")

// lineProbe is the leaf of the struct probeLine decodes into.
type lineProbe struct{}

// UnmarshalTOML fails on purpose so the decoder reports the key's position.
func (lineProbe) UnmarshalTOML(any) error { return errLineProbe }

// probeLine returns the line of key in text, or 0 if toml does not say.
func probeLine(text string, key toml.Key) int {
	if len(key) == 0 {
		return 0
	}
	t := reflect.TypeFor[lineProbe]()
	for i := len(key) - 1; i >= 0; i-- {
		if strings.ContainsAny(key[i], ",") { // a tag cannot name it
			return 0
		}
		t = reflect.StructOf([]reflect.StructField{{
			Name: "F",
			Type: t,
			Tag:  reflect.StructTag("toml:" + strconv.Quote(key[i])),
		}})
	}
	_, err := toml.Decode(text, reflect.New(t).Interface())
	var pe toml.ParseError
	if errors.As(err, &pe) && pe.Message == errLineProbe.Error() && pe.LastKey == key.String() {
		return pe.Position.Line
	}
	return 0
}

// applySet applies one --set "key=value" to cfg and returns the dotted
// leaf keys it set.
func applySet(cfg *Config, set string) ([]string, error) {
	keyText, value, ok := strings.Cut(set, "=")
	keyText, value = strings.TrimSpace(keyText), strings.TrimSpace(value)
	if !ok || keyText == "" {
		return nil, fmt.Errorf("--set %s: expected key=value, e.g. --set web.listen=0.0.0.0:8080", set)
	}
	var raw map[string]any
	if _, err := toml.Decode(keyText+" = "+value, &raw); err != nil {
		raw = nil
		if _, err := toml.Decode(keyText+" = "+tomlQuote(value), &raw); err != nil {
			var pe toml.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("--set %s: cannot read key %q: %s", set, keyText, pe.Message)
			}
			return nil, fmt.Errorf("--set %s: %w", set, err)
		}
	}
	coerceSetValue(raw, value)
	if probs := assignTable(reflect.ValueOf(cfg).Elem(), raw, nil); len(probs) > 0 {
		errs := make([]error, 0, len(probs))
		for _, p := range probs {
			errs = append(errs, fmt.Errorf("--set %s: %s", set, p.msg))
		}
		return nil, errors.Join(errs...)
	}
	return leafKeys(raw, nil), nil
}

// coerceSetValue adapts the value of a one-key --set document to the type
// of its setting: text for a string setting is taken as typed, and a list
// of strings accepts a single value or nothing.
func coerceSetValue(raw map[string]any, text string) {
	t := reflect.TypeFor[Config]()
	cur := raw
	for len(cur) == 1 {
		k := slices.Collect(maps.Keys(cur))[0]
		v := cur[k]
		f, ok := fieldByName(t, k)
		if !ok {
			return
		}
		switch {
		case isTable(f.Type):
			m, ok := v.(map[string]any)
			if !ok {
				return
			}
			cur, t = m, f.Type
			continue
		case f.Type.Kind() == reflect.String:
			if _, ok := v.(string); !ok {
				cur[k] = text
			}
		case f.Type == stringListType:
			switch v.(type) {
			case []any:
			case string:
				if text == "" {
					cur[k] = []any{}
				} else {
					cur[k] = []any{v}
				}
			default:
				cur[k] = []any{text}
			}
		}
		return
	}
}

// leafKeys lists the dotted keys of the values (not tables) in raw.
func leafKeys(raw map[string]any, prefix toml.Key) []string {
	var out []string
	for k, v := range raw {
		key := append(slices.Clone(prefix), k)
		if m, ok := v.(map[string]any); ok {
			out = append(out, leafKeys(m, key)...)
		} else {
			out = append(out, key.String())
		}
	}
	return out
}

// problem is one thing wrong with a settings document, by key.
type problem struct {
	key toml.Key
	msg string // the whole message, without location
}

var (
	durationType   = reflect.TypeFor[time.Duration]()
	stringListType = reflect.TypeFor[[]string]()
)

// isTable reports whether settings of type t are a TOML table.
func isTable(t reflect.Type) bool { return t.Kind() == reflect.Struct }

// tomlName returns the TOML key of a struct field, or "" if it has none.
func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	return name
}

// fieldByName finds the field of struct type t whose TOML key is name.
func fieldByName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); tomlName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// lookupSetting returns the type and default value of the setting at key.
func lookupSetting(key []string) (reflect.Type, reflect.Value, bool) {
	v := reflect.ValueOf(Defaults(""))
	for _, k := range key {
		if !isTable(v.Type()) {
			return nil, reflect.Value{}, false
		}
		f, ok := fieldByName(v.Type(), k)
		if !ok {
			return nil, reflect.Value{}, false
		}
		v = v.FieldByIndex(f.Index)
	}
	return v.Type(), v, true
}

// settingKeys lists every dotted key of struct type t, tables and values,
// in declaration order.
func settingKeys(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name := tomlName(f)
		if name == "" {
			continue
		}
		key := prefix + name
		out = append(out, key)
		if isTable(f.Type) {
			out = append(out, settingKeys(f.Type, key+".")...)
		}
	}
	return out
}

// assignTable sets the fields of the struct rv from the TOML table raw,
// checking every key and type; it returns what it could not set.
func assignTable(rv reflect.Value, raw map[string]any, path toml.Key) []problem {
	var probs []problem
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		key := append(slices.Clone(path), k)
		f, ok := fieldByName(rv.Type(), k)
		if !ok {
			probs = append(probs, problem{key: key, msg: unknownKeyText(key)})
			continue
		}
		probs = append(probs, assignValue(rv.FieldByIndex(f.Index), raw[k], key)...)
	}
	return probs
}

// assignValue sets rv from the TOML value v found at key.
func assignValue(rv reflect.Value, v any, key toml.Key) []problem {
	t := rv.Type()
	bad := func() []problem {
		return []problem{{key: key, msg: fmt.Sprintf("%s: expected %s, got %s", key, expectation(t), describeValue(v))}}
	}
	switch {
	case isTable(t):
		m, ok := v.(map[string]any)
		if !ok {
			return bad()
		}
		return assignTable(rv, m, key)
	case t == durationType:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return bad()
		}
		rv.SetInt(int64(d))
	case t.Kind() == reflect.String:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		rv.SetString(s)
	case t.Kind() == reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			return bad()
		}
		rv.SetBool(b)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		n, ok := v.(int64)
		if !ok {
			return bad()
		}
		if rv.OverflowInt(n) {
			return []problem{{key: key, msg: fmt.Sprintf("%s: %d is too large for this box", key, n)}}
		}
		rv.SetInt(n)
	case t == stringListType:
		list, ok := v.([]any)
		if !ok {
			return bad()
		}
		out := make([]string, 0, len(list))
		for i, item := range list {
			s, ok := item.(string)
			if !ok {
				return []problem{{key: key, msg: fmt.Sprintf("%s: expected %s, but item %d is %s",
					key, expectation(t), i+1, describeValue(item))}}
			}
			out = append(out, s)
		}
		if len(out) == 0 {
			out = nil // [] and no list at all mean the same
		}
		rv.Set(reflect.ValueOf(out))
	default:
		// A Config field of a type this loader does not handle: a bug
		// here, caught by the tests, never by the owner.
		return []problem{{key: key, msg: fmt.Sprintf("%s: settings of type %s are not supported", key, t)}}
	}
	return nil
}

// expectation says in words what a setting of type t takes.
func expectation(t reflect.Type) string {
	switch {
	case isTable(t):
		return "a table (a [section])"
	case t == durationType:
		return `a duration in quotes such as "5m" or "1h30m"`
	case t.Kind() == reflect.String:
		return "text in double quotes"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "an integer"
	case t == stringListType:
		return `a list of strings such as ["a", "b"]`
	}
	return t.String()
}

// describeValue renders a decoded TOML value for an error message.
func describeValue(v any) string {
	const max = 60
	var s string
	switch v := v.(type) {
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "a list of tables"
	case string:
		s = tomlQuote(v)
	case int64:
		s = strconv.FormatInt(v, 10)
	case float64:
		s = strconv.FormatFloat(v, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eEn") { // keep 20.0 from reading as 20
			s += ".0"
		}
	case bool:
		s = strconv.FormatBool(v)
	case time.Time:
		s = "the date " + v.Format(time.RFC3339Nano)
	case []any:
		parts := make([]string, len(v))
		for i, item := range v {
			parts[i] = describeValue(item)
		}
		s = "[" + strings.Join(parts, ", ") + "]"
	default:
		s = fmt.Sprint(v)
	}
	if len(s) > max {
		s = s[:max-3] + "..."
	}
	return s
}

// renderTOML writes a settings value the way it is written in the file.
func renderTOML(v reflect.Value) string {
	switch {
	case v.Type() == durationType:
		return tomlQuote(formatDuration(time.Duration(v.Int())))
	case v.Kind() == reflect.String:
		return tomlQuote(v.String())
	case v.Kind() == reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case v.Kind() >= reflect.Int && v.Kind() <= reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case v.Type() == stringListType:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = tomlQuote(v.Index(i).String())
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v.Interface())
}

// formatDuration writes d without the zero units time.Duration.String
// adds ("5m", not "5m0s").
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// tomlQuote writes s as a TOML basic string.
func tomlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// unknownKeyText says that key is not a setting, suggesting the nearest
// one.
func unknownKeyText(key toml.Key) string {
	if s := suggestKey(key); s != "" {
		return fmt.Sprintf("unknown key %q (did you mean %q? see %s)", key.String(), s, exampleFile)
	}
	return fmt.Sprintf("unknown key %q (see %s for every key)", key.String(), exampleFile)
}

// suggestKey returns the known key nearest to the unknown key, or "". It
// looks first at keys of the same table (a typo), comparing the last part
// with whole names and with their '_'-separated halves ("listn" is near
// "tls_listen"), then for the same name in another table ("[irc]
// pairing_window" means "registration.pairing_window").
func suggestKey(key toml.Key) string {
	last := strings.ToLower(key[len(key)-1])
	parent := strings.Join(key[:len(key)-1], ".")
	all := settingKeys(reflect.TypeFor[Config](), "")
	best, bestScore := "", 1+len(last)/3
	if bestScore < 2 {
		bestScore = 2
	}
	bestScore++ // scores below this are accepted
	for _, k := range all {
		p, name := "", k
		if i := strings.LastIndexByte(k, '.'); i >= 0 {
			p, name = k[:i], k[i+1:]
		}
		if p != parent {
			continue
		}
		if s := nameDistance(last, name); s < bestScore {
			best, bestScore = k, s
		}
	}
	if best != "" {
		return best
	}
	for _, k := range all {
		if k == last || strings.HasSuffix(k, "."+last) {
			return k
		}
	}
	return ""
}

// nameDistance scores how far a typed key name is from a known one: the
// edit distance, or one more than the distance to a '_'-separated prefix
// or suffix of the known name.
func nameDistance(typed, known string) int {
	best := levenshtein(typed, known)
	for i := range len(known) {
		if known[i] != '_' {
			continue
		}
		best = min(best, 1+levenshtein(typed, known[i+1:]), 1+levenshtein(typed, known[:i]))
	}
	return best
}

// levenshtein is the edit distance between a and b, in bytes.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Allowed values of the enumerated settings.
var (
	logLevels            = []string{"debug", "info", "warn", "error"}
	logFormats           = []string{"text", "json"}
	registrationPolicies = []string{"closed", "invite", "open"}
)

// minStanzaBytes is the smallest stanza every XMPP server must accept
// (RFC 6120, section 13.12).
const minStanzaBytes = 10000

// Validate checks every setting against its allowed values and returns all
// problems joined, each a *SettingError naming the key and what it
// expects, or nil.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &SettingError{Key: key, Problem: fmt.Sprintf(format, args...)})
	}

	if err := checkDNSName(c.Domain); err != "" {
		bad("domain", "must be a DNS name such as %q: %s, got %q", fallbackDomain, err, c.Domain)
	}
	if c.Name == "" {
		bad("name", "must not be empty")
	} else if len(c.Name) > 63 {
		bad("name", "must be at most 63 bytes (it names the box on the network), got %d", len(c.Name))
	}
	if c.DataDir == "" {
		bad("data_dir", `must name a folder, such as "chatbox-data"`)
	}
	if !slices.Contains(logLevels, c.Log.Level) {
		bad("log.level", "must be one of %s, got %q", quoteList(logLevels), c.Log.Level)
	}
	if !slices.Contains(logFormats, c.Log.Format) {
		bad("log.format", "must be one of %s, got %q", quoteList(logFormats), c.Log.Format)
	}

	if c.TLS.ACME { // acme.go
		checkACME(c, bad)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		if c.TLS.CertFile == "" {
			bad("tls.cert_file", "must be set when tls.key_file is (set both, or neither to use the box's own certificate)")
		} else {
			bad("tls.key_file", "must be set when tls.cert_file is (set both, or neither to use the box's own certificate)")
		}
	}
	for _, n := range c.TLS.ExtraNames {
		if _, err := netip.ParseAddr(n); err == nil {
			continue
		}
		if err := checkDNSName(n); err != "" {
			bad("tls.extra_names", "%q is neither an IP address nor a DNS name: %s", n, err)
		}
	}

	// Listeners: each address valid, and no two listeners on one address.
	used := map[string]string{}
	listen := func(key string, addrs ...string) {
		for _, a := range addrs {
			if msg := checkListenAddr(a); msg != "" {
				bad(key, "%q %s", a, msg)
				continue
			}
			host, port, _ := splitHostPort(a) // checked just above
			if port == "0" {
				continue
			}
			norm := net.JoinHostPort(strings.ToLower(host), port)
			if other, ok := used[norm]; ok {
				bad(key, "%q is already used by %s; each listener needs its own port", a, other)
				continue
			}
			used[norm] = key
		}
	}
	listen("xmpp.listen", c.XMPP.Listen...)
	listen("xmpp.tls_listen", c.XMPP.TLSListen...)
	listen("irc.tls_listen", c.IRC.TLSListen...)
	listen("irc.plain_listen", c.IRC.PlainListen...)
	listen("xmpp.component_listen", c.XMPP.ComponentListen...)
	listen("upload.listen", c.Upload.Listen...)
	listen("calls.listen", c.Calls.Listen...)
	if c.Web.Listen != "" {
		listen("web.listen", c.Web.Listen)
	}
	if c.Federation.Enabled {
		listen("federation.listen", c.Federation.Listen...)
		listen("federation.tls_listen", c.Federation.TLSListen...)
		if c.Federation.QueueTimeout <= 0 {
			bad("federation.queue_timeout", `must be longer than 0, such as "2m", got %q`, formatDuration(c.Federation.QueueTimeout))
		}
		if c.Federation.StanzasPerSecond <= 0 {
			bad("federation.stanzas_per_second", "must be at least 1, such as 50, got %d", c.Federation.StanzasPerSecond)
		}
	} else {
		for _, a := range c.Federation.Listen {
			if msg := checkListenAddr(a); msg != "" {
				bad("federation.listen", "%q %s", a, msg)
			}
		}
	}
	for _, h := range c.Federation.Hosts {
		d, addr, ok := strings.Cut(h, "=")
		if !ok || checkDNSName(strings.ToLower(strings.TrimSpace(d))) != "" {
			bad("federation.hosts", `%q must be "domain=host:port", such as "other.example=192.0.2.7:5269"`, h)
		} else if _, _, err := net.SplitHostPort(strings.TrimSpace(addr)); err != nil {
			bad("federation.hosts", "%q: %v", h, err)
		}
	}
	for _, pin := range c.Federation.Pinned {
		d, fp, ok := strings.Cut(pin, "=")
		fp = strings.ReplaceAll(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(fp)), "sha256:"), ":", "")
		if _, err := hex.DecodeString(fp); !ok || checkDNSName(strings.ToLower(strings.TrimSpace(d))) != "" || err != nil || len(fp) != 64 {
			bad("federation.pinned", `%q must be "domain=sha256:<64 hex digits>" (the server's certificate fingerprint)`, pin)
		}
	}
	for _, comp := range c.XMPP.Components {
		d, secret, ok := strings.Cut(comp, "=")
		d = strings.ToLower(strings.TrimSpace(d))
		switch {
		case !ok || secret == "":
			bad("xmpp.components", `%q must be "domain=secret"`, comp)
		case checkDNSName(d) != "":
			bad("xmpp.components", "%q: %s is not a DNS name: %s", comp, d, checkDNSName(d))
		case d == strings.ToLower(c.Domain):
			bad("xmpp.components", "%q: a component needs a domain of its own, not the box's %s (try bot.%s)", comp, d, c.Domain)
		case len(secret) < 16:
			bad("xmpp.components", "the secret of %s is too short: use at least 16 characters", d)
		}
	}
	if c.Upload.MaxFileBytes <= 0 {
		bad("upload.max_file_bytes", "must be more than 0, got %d", c.Upload.MaxFileBytes)
	}
	if c.Upload.QuotaBytes < c.Upload.MaxFileBytes {
		bad("upload.quota_bytes", "must be at least upload.max_file_bytes (%d), got %d", c.Upload.MaxFileBytes, c.Upload.QuotaBytes)
	}
	if c.Upload.Expire < time.Hour {
		bad("upload.expire", `must be at least "1h", got %q`, c.Upload.Expire)
	}
	if c.Calls.RelayIP != "" {
		if _, err := netip.ParseAddr(c.Calls.RelayIP); err != nil {
			bad("calls.relay_ip", "must be an IP address of this box, or empty to pick one, got %q", c.Calls.RelayIP)
		}
	}
	if c.Calls.RelayMinPort < 1024 || c.Calls.RelayMaxPort > 65535 || c.Calls.RelayMinPort > c.Calls.RelayMaxPort {
		bad("calls.relay_min_port", "the relay ports must be a range within 1024-65535, got %d-%d", c.Calls.RelayMinPort, c.Calls.RelayMaxPort)
	}
	if c.Calls.CredentialLifetime < time.Minute {
		bad("calls.credential_lifetime", `must be at least "1m", got %q`, c.Calls.CredentialLifetime)
	}
	if c.XMPP.MaxStanzaBytes < minStanzaBytes {
		bad("xmpp.max_stanza_bytes", "must be at least %d (the XMPP standard's minimum), got %d", minStanzaBytes, c.XMPP.MaxStanzaBytes)
	}

	if !slices.Contains(registrationPolicies, c.Registration.Policy) {
		bad("registration.policy", "must be one of %s, got %q", quoteList(registrationPolicies), c.Registration.Policy)
	}
	if backends := []string{"auto", "gpio", "sim"}; !slices.Contains(backends, c.HW.Backend) {
		bad("hw.backend", "must be one of %s, got %q", quoteList(backends), c.HW.Backend)
	}
	pins := map[string]string{}
	for _, p := range []struct{ key, pin string }{{"hw.status_led", c.HW.StatusLED}, {"hw.activity_led", c.HW.ActivityLED},
		{"hw.wan_led", c.HW.WANLED}, {"hw.button_a", c.HW.ButtonA}, {"hw.button_b", c.HW.ButtonB}} {
		if p.pin == "" {
			continue
		}
		if other, dup := pins[strings.ToUpper(p.pin)]; dup {
			bad(p.key, "pin %s is already used by %s", p.pin, other)
		}
		pins[strings.ToUpper(p.pin)] = p.key
	}
	if c.Registration.PairingWindow <= 0 {
		bad("registration.pairing_window", `must be longer than 0, such as "5m", got %q`, formatDuration(c.Registration.PairingWindow))
	}

	seen := map[string]bool{}
	for _, r := range c.Rooms.Default {
		switch {
		case chat.ValidName(r) != nil:
			bad("rooms.default", "%v", chat.ValidName(r))
		case seen[r]:
			bad("rooms.default", "%q is listed twice", r)
		}
		seen[r] = true
	}
	atLeast := func(key string, v, min int) {
		if v < min {
			bad(key, "must be at least %d, got %d", min, v)
		}
	}
	atLeast("rooms.default_history", c.Rooms.DefaultHistory, 0)
	atLeast("rooms.max_rooms_per_user", c.Rooms.MaxRoomsPerUser, 1)
	atLeast("limits.connections_per_address", c.Limits.ConnectionsPerAddress, 1)
	atLeast("limits.messages_per_second", c.Limits.MessagesPerSecond, 1)
	atLeast("limits.message_burst", c.Limits.MessageBurst, 1)
	atLeast("limits.failed_logins_per_minute", c.Limits.FailedLoginsPerMinute, 1)
	atLeast("limits.max_message_bytes", c.Limits.MaxMessageBytes, 1)
	atLeast("limits.sessions_per_account", c.Limits.SessionsPerAccount, 1)
	if c.Limits.LoginTimeout < time.Second {
		bad("limits.login_timeout", `must be at least 1s, such as "1m", got %q`, formatDuration(c.Limits.LoginTimeout))
	}
	atLeast("history.retention_days", c.History.RetentionDays, 0)
	atLeast("event.guest_messages_per_minute", c.Event.GuestMessagesPerMinute, 1)
	if c.Event.History != 0 && c.Event.History < time.Minute {
		bad("event.history", `must be 0 (keep) or at least "1m", got %q`, formatDuration(c.Event.History))
	}
	if len(c.Event.Welcome) > 2000 {
		bad("event.welcome", "must be at most 2000 bytes, got %d", len(c.Event.Welcome))
	}
	seen = map[string]bool{}
	for _, r := range c.Event.Rooms {
		switch {
		case chat.ValidName(r) != nil:
			bad("event.rooms", "%v", chat.ValidName(r))
		case seen[r]:
			bad("event.rooms", "%q is listed twice", r)
		}
		seen[r] = true
	}
	if c.Event.Enabled && len(c.Event.Rooms) == 0 {
		bad("event.rooms", "name at least one room guests may join while the event is on")
	}
	return errors.Join(errs...)
}

// quoteList writes "a", "b" or "c".
func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// checkDNSName returns what is wrong with s as a DNS name, or "".
func checkDNSName(s string) string {
	const rule = "lower-case letters a-z, digits and '-', in parts of 1 to 63 characters separated by dots"
	if s == "" {
		return "it is empty"
	}
	if len(s) > 253 {
		return "it is longer than 253 characters"
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 {
			return rule
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return "a part cannot start or end with '-'"
		}
		for i := range len(label) {
			c := label[i]
			if !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
				return rule
			}
		}
	}
	return ""
}

// splitHostPort is net.SplitHostPort requiring a numeric port 0-65535,
// which it returns without leading zeros.
func splitHostPort(addr string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(addr)
	if err != nil {
		return "", "", err
	}
	if port == "" || strings.TrimLeft(port, "0123456789") != "" {
		return "", "", fmt.Errorf("the port must be a number")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n > 65535 {
		return "", "", fmt.Errorf("the port must be between 0 and 65535")
	}
	return host, strconv.Itoa(n), nil
}

// checkListenAddr returns what is wrong with a listen address, or "".
func checkListenAddr(addr string) string {
	const want = `is not a listen address: write host:port, such as "0.0.0.0:5222" (every network), "127.0.0.1:5222" (this machine only) or "[::]:5222"`
	host, _, err := splitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("%s (%v)", want, err)
	}
	if host == "" {
		return ""
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return ""
	}
	if checkDNSName(strings.ToLower(host)) == "" {
		return ""
	}
	return fmt.Sprintf("%s (the host %q is neither an IP address nor a name)", want, host)
}
