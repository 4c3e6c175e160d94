package appliance

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"

	"chatbox"
)

// A settings editor (the web admin's): every setting with its value as a
// form shows it and its help from chatbox.example.toml, and a save that
// checks the values with the loader and rewrites the settings file.

// EditableSetting is one setting as a form shows it.
type EditableSetting struct {
	Key   string // dotted, e.g. "limits.message_burst"
	Value string // as typed in a form: text as is, other values in TOML
	Help  string // the comment above the key in chatbox.example.toml
}

// SettingsPath is the file the settings are saved to: the one the box
// was started with, else <data>/chatbox.toml (read at the next start
// when no --config is given).
func (b *Box) SettingsPath() string {
	if b.configPath != "" {
		return b.configPath
	}
	return filepath.Join(b.cfg.DataDir, dataDirSettings)
}

// leafSettingKeys lists every setting's dotted key (no tables), in the
// order Config declares them.
func leafSettingKeys() []string {
	var out []string
	for _, k := range settingKeys(reflect.TypeFor[Config](), "") {
		if t, _, ok := lookupSetting(strings.Split(k, ".")); ok && !isTable(t) {
			out = append(out, k)
		}
	}
	return out
}

var (
	exampleTable = regexp.MustCompile(`^\s*\[([a-z_.]+)\]\s*(#.*)?$`)
	exampleKey   = regexp.MustCompile(`^\s*#?\s*([a-z_]+)\s*=`)
)

// settingsHelp reads the comment block above each key of an example
// settings file, by dotted key.
func settingsHelp(text string) map[string]string {
	help := map[string]string{}
	var block []string
	table := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			block = nil
		case exampleTable.MatchString(line):
			table = exampleTable.FindStringSubmatch(line)[1] + "."
			block = nil
		case exampleKey.MatchString(line):
			key := table + exampleKey.FindStringSubmatch(line)[1]
			if _, seen := help[key]; !seen && len(block) > 0 {
				help[key] = strings.Join(block, " ")
			}
		case strings.HasPrefix(trimmed, "#"):
			block = append(block, strings.TrimSpace(strings.TrimPrefix(trimmed, "#")))
		}
	}
	return help
}

// formValue writes a setting's value as the form shows it; applySet reads
// it back.
func formValue(v reflect.Value) string {
	switch {
	case v.Type() == durationType:
		return formatDuration(time.Duration(v.Int()))
	case v.Kind() == reflect.String:
		return v.String()
	case v.Type() == stringListType && v.Len() == 0:
		return "[]"
	}
	return renderTOML(v)
}

// settingValue returns the field of cfg at the dotted key.
func settingValue(cfg *Config, key string) reflect.Value {
	v := reflect.ValueOf(cfg).Elem()
	for _, k := range strings.Split(key, ".") {
		f, _ := fieldByName(v.Type(), k)
		v = v.FieldByIndex(f.Index)
	}
	return v
}

// loadSettingsFile loads the settings file at path as the next start
// would (built-in defaults if there is no file) and returns the parsed
// file too (nil without one).
func loadSettingsFile(path, hostname string) (Config, *settingsFile, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return Defaults(hostname), nil, nil
	}
	cfg, err := Load(path, nil, hostname)
	if err != nil {
		return Config{}, nil, err
	}
	f, err := readSettingsFile(path)
	return cfg, f, err
}

// EditableSettings lists every setting of the file at path with its value
// (the default where the file does not set it) and help.
func EditableSettings(path, hostname string) ([]EditableSetting, error) {
	cfg, _, err := loadSettingsFile(path, hostname)
	if err != nil {
		return nil, err
	}
	help := settingsHelp(chatbox.ExampleSettings)
	var out []EditableSetting
	for _, k := range leafSettingKeys() {
		out = append(out, EditableSetting{Key: k, Value: formValue(settingValue(&cfg, k)), Help: help[k]})
	}
	return out, nil
}

// SettingsProblems is SaveSettings' refusal: what is wrong, by dotted key.
type SettingsProblems map[string]string

func (p SettingsProblems) Error() string {
	var b strings.Builder
	for _, k := range leafSettingKeys() {
		if msg, ok := p[k]; ok {
			fmt.Fprintf(&b, "%s: %s\n", k, msg)
		}
	}
	for k, msg := range p {
		if _, err := lookupKey(k); err != nil {
			fmt.Fprintf(&b, "%s: %s\n", k, msg)
		}
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func lookupKey(key string) (reflect.Type, error) {
	t, _, ok := lookupSetting(strings.Split(key, "."))
	if !ok || isTable(t) {
		return nil, errors.New("no such setting")
	}
	return t, nil
}

// SaveSettings sets the settings in values (dotted key → value as a form
// shows it; keys left out keep theirs), checks the result as a start
// would (Load and Validate), and rewrites the file at path atomically. A
// refusal is SettingsProblems, naming each bad key. The file keeps every
// key it set and gains those that now differ from their default; its
// comments are not kept (chatbox.example.toml has them all).
func SaveSettings(path, hostname string, values map[string]string) error {
	cfg, old, err := loadSettingsFile(path, hostname)
	if err != nil {
		return fmt.Errorf("the settings file does not load, fix it by hand first: %w", err)
	}
	probs := SettingsProblems{}
	changed := map[string]bool{}
	for k, v := range values {
		if _, err := lookupKey(k); err != nil {
			probs[k] = "no such setting"
			continue
		}
		if strings.ContainsAny(v, "\r\n") {
			probs[k] = "one line only"
			continue
		}
		if formValue(settingValue(&cfg, k)) == strings.TrimSpace(v) {
			continue
		}
		set := k + "=" + v
		if _, err := applySet(&cfg, set); err != nil {
			msg := strings.ReplaceAll(strings.TrimPrefix(err.Error(), "--set "+set+": "), "\n--set "+set+": ", "; ")
			probs[k] = strings.TrimPrefix(msg, k+": ")
			continue
		}
		changed[k] = true
	}
	if len(probs) > 0 {
		return probs
	}
	if err := cfg.Validate(); err != nil {
		list := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			list = j.Unwrap()
		}
		for _, e := range list {
			var se *SettingError
			if errors.As(e, &se) {
				probs[se.Key] = se.Problem
			} else {
				probs[""] = e.Error()
			}
		}
		return probs
	}
	defaults := Defaults(hostname)
	text := renderSettings(&cfg, func(k string) bool {
		if changed[k] || (old != nil && old.md.IsDefined(strings.Split(k, ".")...)) {
			return true
		}
		return formValue(settingValue(&cfg, k)) != formValue(settingValue(&defaults, k))
	})
	// What is written must load as what was checked.
	check, err := os.CreateTemp(filepath.Dir(path), ".chatbox.toml.check-")
	if err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	defer os.Remove(check.Name())
	_, err = check.WriteString(text)
	if cerr := check.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	if got, err := Load(check.Name(), nil, hostname); err != nil || !reflect.DeepEqual(got, cfg) {
		return fmt.Errorf("save settings: the file written does not load as checked (%v)", err)
	}
	return writeFileAtomic(path, 0o600, func(w io.Writer) error {
		_, err := io.WriteString(w, text)
		return err
	})
}

// renderSettings writes the settings of cfg that keep says to keep as a
// settings file.
func renderSettings(cfg *Config, keep func(key string) bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# chatbox settings, saved by the web admin on %s.\n# Every setting, its default and what it does: chatbox.example.toml.\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"))
	table := ""
	for _, k := range leafSettingKeys() {
		if !keep(k) {
			continue
		}
		tbl, name := "", k
		if i := strings.LastIndexByte(k, '.'); i >= 0 {
			tbl, name = k[:i], k[i+1:]
		}
		if tbl != table {
			fmt.Fprintf(&b, "\n[%s]\n", tbl)
			table = tbl
		}
		fmt.Fprintf(&b, "%s = %s\n", name, renderTOML(settingValue(cfg, k)))
	}
	return b.String()
}
