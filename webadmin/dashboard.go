package webadmin

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// dashboardData is what the dashboard shows.
type dashboardData struct {
	State    string
	Uptime   string
	Version  string
	Domain   string
	Doors    []doorCount
	Sessions int
	Accounts int
	Rooms    int
	Pairing  bool
	Policy   string
	HeapUsed uint64
	MemSys   uint64
	Disk     *diskSpace
	Load     string
	Events   []Event
}

type doorCount struct {
	Door  string
	Count int
}

type diskSpace struct {
	Free, Total uint64
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request, p *page) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	core := s.box.Core()
	d := dashboardData{
		State:   s.box.State(),
		Uptime:  roundDuration(s.box.Uptime()),
		Version: s.cfg.Version,
		Domain:  s.cfg.Domain,
		Pairing: s.box.PairingOpen(),
		Policy:  s.cfg.Registration,
		Events:  s.events.newestFirst(),
	}
	for door, n := range core.SessionCount() {
		d.Doors = append(d.Doors, doorCount{door, n})
		d.Sessions += n
	}
	slices.SortFunc(d.Doors, func(a, b doorCount) int { return strings.Compare(a.Door, b.Door) })
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
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			d.Load = strings.Join(f[:3], " ")
		}
	}
	p.Title, p.Section, p.Data = "Dashboard", "dashboard", d
	s.render(w, http.StatusOK, "dashboard", p)
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
