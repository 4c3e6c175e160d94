package webadmin

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The dashboard: a page whose live part (state, the LED panel, sessions,
// messages today, load and temperature, the last events) is also served
// alone at /admin/live, which htmx fetches every few seconds when the
// browser runs it (without JavaScript the page shows the same, as of its
// load).

// liveEvery is how often the dashboard's live part refreshes (htmx).
const liveEvery = "5s"

// dashboardData is what the dashboard shows.
type dashboardData struct {
	Version  string
	Domain   string
	Accounts int
	Rooms    int
	HeapUsed uint64
	MemSys   uint64
	Disk     *diskSpace
	Live     liveData
}

// liveData is the dashboard's live part.
type liveData struct {
	Every         string
	State         string
	Uptime        string
	Pairing       bool
	Policy        string
	Doors         []doorCount
	Sessions      int
	MessagesToday int // -1: unknown
	Load          string
	Temp          string // "47.2 °C"; "" without a sensor
	Panel         *Panel
	Events        []Event
}

type doorCount struct {
	Door  string
	Count int
}

type diskSpace struct {
	Free, Total uint64
}

// todayCache keeps "messages today" for a while: counting reads the
// whole message table.
type todayCache struct {
	mu    sync.Mutex
	at    time.Time
	since time.Time
	n     int
}

const todayTTL = 30 * time.Second

// messagesToday counts the messages since local midnight, -1 if the
// count fails.
func (s *Server) messagesToday(ctx context.Context) int {
	now := s.cfg.Now()
	y, m, d := now.Date()
	midnight := time.Date(y, m, d, 0, 0, 0, 0, now.Location())
	c := &s.today
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.since.Equal(midnight) && now.Sub(c.at) < todayTTL && !c.at.IsZero() {
		return c.n
	}
	n, err := s.box.MessagesSince(ctx, midnight)
	if err != nil {
		s.log.Warn("web admin: count today's messages", "err", err)
		return -1
	}
	c.at, c.since, c.n = now, midnight, n
	return n
}

func (s *Server) live(ctx context.Context) liveData {
	d := liveData{
		Every:         liveEvery,
		State:         s.box.State(),
		Uptime:        roundDuration(s.box.Uptime()),
		Pairing:       s.box.PairingOpen(),
		Policy:        s.cfg.Registration,
		Events:        s.events.newestFirst(),
		MessagesToday: s.messagesToday(ctx),
		Temp:          cpuTemp(s.thermal),
	}
	for door, n := range s.box.Core().SessionCount() {
		d.Doors = append(d.Doors, doorCount{door, n})
		d.Sessions += n
	}
	slices.SortFunc(d.Doors, func(a, b doorCount) int { return strings.Compare(a.Door, b.Door) })
	if p, ok := s.box.Panel(); ok {
		d.Panel = &p
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			d.Load = strings.Join(f[:3], " ")
		}
	}
	return d
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request, p *page) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	core := s.box.Core()
	d := dashboardData{
		Version: s.cfg.Version,
		Domain:  s.cfg.Domain,
		Live:    s.live(ctx),
	}
	if accts, err := core.Accounts(ctx); err == nil {
		d.Accounts = len(accts)
	} else {
		p.Flash = "accounts: " + err.Error()
	}
	if rooms, err := core.Rooms(ctx); err == nil {
		d.Rooms = len(rooms)
	} else {
		p.Flash = "rooms: " + err.Error()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	d.HeapUsed, d.MemSys = ms.HeapAlloc, ms.Sys
	if free, total, ok := diskFree(s.cfg.DataDir); ok {
		d.Disk = &diskSpace{Free: free, Total: total}
	}
	p.Title, p.Section, p.Data = "Dashboard", "dashboard", d
	s.render(w, http.StatusOK, "dashboard", p)
}

// liveFragment is the dashboard's live part alone (htmx swaps it in).
func (s *Server) liveFragment(w http.ResponseWriter, r *http.Request, p *page) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	var buf bytes.Buffer
	if err := s.pages["dashboard"].ExecuteTemplate(&buf, "live", s.live(ctx)); err != nil {
		s.log.Error("web admin: live fragment", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

// cpuTemp reads the hottest of the thermal zones matching glob
// (/sys/class/thermal/thermal_zone*/temp: millidegrees Celsius), "" when
// there is none.
func cpuTemp(glob string) string {
	files, _ := filepath.Glob(glob)
	best, found := 0, false
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || v <= -50000 || v >= 200000 { // a broken sensor's reading
			continue
		}
		if !found || v > best {
			best, found = v, true
		}
	}
	if !found {
		return ""
	}
	return fmt.Sprintf("%.1f °C", float64(best)/1000)
}

// roundDuration shows a duration to the second, days spelled out.
func roundDuration(d time.Duration) string {
	d = d.Round(time.Second)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	if days > 0 {
		return fmt.Sprintf("%dd %s", days, d)
	}
	return d.String()
}
