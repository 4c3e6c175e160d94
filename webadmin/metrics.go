package webadmin

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// metrics serves /metrics in the Prometheus text format, to an API token
// (Authorization: Bearer) or a logged-in admin's browser.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	ok := false
	if tok := bearer(r); tok != "" {
		ok = s.tokens.valid(tok)
	} else if c, err := r.Cookie(cookieName); err == nil {
		_, ok = s.auth.session(c.Value)
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="chatbox"`)
		http.Error(w, "unauthorized: give an API token (Authorization: Bearer <token>) or log in", http.StatusUnauthorized)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	core := s.box.Core()
	var b strings.Builder
	metric := func(name, kind, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
	}
	metric("chatbox_up", "gauge", "1 while the box is ready, 0 otherwise (booting, degraded, shutting down…).")
	up := 0
	if st := s.box.State(); st == "ready" || st == "pairing" {
		up = 1
	}
	fmt.Fprintf(&b, "chatbox_up %d\n", up)
	metric("chatbox_uptime_seconds", "gauge", "Seconds since the box started.")
	fmt.Fprintf(&b, "chatbox_uptime_seconds %d\n", int64(s.box.Uptime()/time.Second))
	metric("chatbox_sessions", "gauge", "Open chat sessions per door.")
	counts := core.SessionCount()
	doors := make([]string, 0, len(counts))
	for d := range counts {
		doors = append(doors, d)
	}
	slices.Sort(doors)
	for _, d := range doors {
		fmt.Fprintf(&b, "chatbox_sessions{door=\"%s\"} %d\n", labelValue(d), counts[d])
	}
	if accts, err := core.Accounts(ctx); err == nil {
		metric("chatbox_accounts", "gauge", "Accounts on the box.")
		fmt.Fprintf(&b, "chatbox_accounts %d\n", len(accts))
	}
	if rooms, err := core.Rooms(ctx); err == nil {
		metric("chatbox_rooms", "gauge", "Rooms on the box.")
		fmt.Fprintf(&b, "chatbox_rooms %d\n", len(rooms))
	}
	metric("chatbox_messages_total", "counter", "Chat messages stored and routed since the web admin started.")
	fmt.Fprintf(&b, "chatbox_messages_total %d\n", s.messages.Load())
	lat := core.DeliveryLatency()
	metric("chatbox_delivery_latency_seconds", "histogram", "Time from the core accepting a message to a door writing it to a client's connection (live deliveries only).")
	for i, le := range lat.Bounds {
		fmt.Fprintf(&b, "chatbox_delivery_latency_seconds_bucket{le=\"%s\"} %d\n", strconv.FormatFloat(le.Seconds(), 'g', -1, 64), lat.Cumulative[i])
	}
	fmt.Fprintf(&b, "chatbox_delivery_latency_seconds_bucket{le=\"+Inf\"} %d\n", lat.Count)
	fmt.Fprintf(&b, "chatbox_delivery_latency_seconds_sum %s\n", strconv.FormatFloat(lat.Sum.Seconds(), 'g', -1, 64))
	fmt.Fprintf(&b, "chatbox_delivery_latency_seconds_count %d\n", lat.Count)
	if s.cfg.Database != "" {
		var size int64
		found := false
		for _, suffix := range []string{"", "-wal"} {
			if fi, err := os.Stat(s.cfg.Database + suffix); err == nil {
				size += fi.Size()
				found = true
			}
		}
		if found {
			metric("chatbox_store_bytes", "gauge", "Size of the chat database file and its write-ahead log.")
			fmt.Fprintf(&b, "chatbox_store_bytes %d\n", size)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	metric("go_goroutines", "gauge", "Number of goroutines that currently exist.")
	fmt.Fprintf(&b, "go_goroutines %d\n", runtime.NumGoroutine())
	metric("go_memstats_heap_inuse_bytes", "gauge", "Number of heap bytes that are in use.")
	fmt.Fprintf(&b, "go_memstats_heap_inuse_bytes %d\n", ms.HeapInuse)
	metric("go_memstats_sys_bytes", "gauge", "Number of bytes obtained from the OS.")
	fmt.Fprintf(&b, "go_memstats_sys_bytes %d\n", ms.Sys)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write([]byte(b.String()))
}

// labelValue escapes a Prometheus label value.
func labelValue(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}
