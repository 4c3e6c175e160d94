package webadmin

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// The settings page: every key of the settings file with its value and
// its help from chatbox.example.toml. A save is checked by the box as a
// start would check it and takes effect at the next start.

type settingsSection struct {
	Name     string // "" for the top-level keys
	Settings []settingRow
}

type settingRow struct {
	Key   string // the form field: "limits.message_burst"
	Name  string // "message_burst"
	Value string
	Help  string
}

type settingsData struct {
	Path     string
	Sections []settingsSection
}

// boxRoutes adds the pages about the box itself: settings, certificate,
// backup.
func (s *Server) boxRoutes(mux *http.ServeMux) {
	s.settingsRoutes(mux)
	s.tlsRoutes(mux)
	s.backupRoutes(mux)
}

func (s *Server) settingsRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/settings", s.admin(s.settingsPage))
	mux.HandleFunc("POST /admin/settings", s.admin(s.settingsSave))
}

// renderSettings shows the settings; p.Form holds values sent back.
func (s *Server) renderSettings(w http.ResponseWriter, p *page, status int) {
	path, list, err := s.box.Settings()
	if err != nil {
		s.log.Error("web admin: settings", "err", err)
		p.Title, p.Section = "Settings", "settings"
		p.Problem = "The settings file does not load, so it cannot be edited here; fix it by hand (chatbox check-config names each mistake): " + err.Error()
		s.render(w, http.StatusInternalServerError, "settings", p)
		return
	}
	d := settingsData{Path: path}
	for _, st := range list {
		table, name := "", st.Key
		if i := strings.LastIndexByte(st.Key, '.'); i >= 0 {
			table, name = st.Key[:i], st.Key[i+1:]
		}
		if len(d.Sections) == 0 || d.Sections[len(d.Sections)-1].Name != table {
			d.Sections = append(d.Sections, settingsSection{Name: table})
		}
		value := st.Value
		if v, ok := p.Form[st.Key]; ok {
			value = v
		}
		sec := &d.Sections[len(d.Sections)-1]
		sec.Settings = append(sec.Settings, settingRow{Key: st.Key, Name: name, Value: value, Help: st.Help})
	}
	p.Title, p.Section, p.Data = "Settings", "settings", d
	s.render(w, status, "settings", p)
}

func (s *Server) settingsPage(w http.ResponseWriter, r *http.Request, p *page) {
	if r.URL.Query().Get("done") == "saved" {
		p.Flash = "Settings saved. They take effect at the next start: restart the box."
	}
	s.renderSettings(w, p, http.StatusOK)
}

func (s *Server) settingsSave(w http.ResponseWriter, r *http.Request, p *page) {
	_, list, err := s.box.Settings()
	if err != nil {
		s.renderSettings(w, p, http.StatusInternalServerError)
		return
	}
	values := map[string]string{}
	for _, st := range list {
		if v, ok := r.PostForm[st.Key]; ok && len(v) > 0 {
			values[st.Key] = v[0]
			p.Form[st.Key] = v[0]
		}
	}
	err = s.box.SaveSettings(values)
	var bad SettingsError
	switch {
	case err == nil:
		s.log.Info("web admin: settings saved", "keys", len(values))
		http.Redirect(w, r, "/admin/settings?done=saved", http.StatusSeeOther)
	case errors.As(err, &bad):
		n := 0
		for k, msg := range bad {
			if k != "" {
				p.Errors[k] = msg
				n++
			}
		}
		p.Problem = "Nothing was saved: " + strconv.Itoa(n) + " setting(s) need a change (marked below)."
		if msg, ok := bad[""]; ok {
			p.Problem = "Nothing was saved: " + msg
		}
		s.renderSettings(w, p, http.StatusBadRequest)
	default:
		s.serverError(w, "settings", err)
	}
}
