package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procSample is what /proc tells about the server at one moment.
type procSample struct {
	rssKB      int64         // VmRSS, /proc/PID/status
	peakKB     int64         // VmHWM, the peak RSS so far
	cpu        time.Duration // utime+stime, /proc/PID/stat
	writeBytes int64         // write_bytes, /proc/PID/io (-1: unreadable)
	// threads is each thread's time on a CPU, to the nanosecond
	// (/proc/PID/task/TID/schedstat); nil if unreadable.
	threads map[int]time.Duration
}

// cpuSince is the process's CPU time from a to s: to the nanosecond if
// every thread of a is still there in s (a thread's time ends with it;
// one started since counts whole), else the clock ticks of utime+stime
// (10 ms: a send phase of 100 ms, 10 ticks, was ±10 % from that alone).
func (s procSample) cpuSince(a procSample) time.Duration {
	if s.threads == nil || a.threads == nil {
		return s.cpu - a.cpu
	}
	var d time.Duration
	for tid, t := range s.threads {
		d += t - a.threads[tid]
	}
	for tid := range a.threads {
		if _, ok := s.threads[tid]; !ok {
			return s.cpu - a.cpu
		}
	}
	return d
}

// readThreads reads the CPU time of each of dir's threads.
func readThreads(dir string) map[int]time.Duration {
	tasks, err := os.ReadDir(dir + "/task")
	if err != nil {
		return nil
	}
	m := make(map[int]time.Duration, len(tasks))
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(dir + "/task/" + t.Name() + "/schedstat")
		if err != nil {
			continue // ended since the listing
		}
		ns, ok := parseSchedstat(b)
		if !ok {
			return nil
		}
		m[tid] = ns
	}
	return m
}

// parseSchedstat reads the first field of a schedstat line: the time on
// a CPU, nanoseconds.
func parseSchedstat(b []byte) (time.Duration, bool) {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseInt(f[0], 10, 64)
	return time.Duration(v), err == nil && v >= 0
}

// clockTick is USER_HZ, the unit of utime and stime: 100 on every Linux
// architecture chatbox targets (sysconf would need cgo).
const clockTick = 10 * time.Millisecond

// readProc samples process pid.
func readProc(pid int) (procSample, error) {
	var s procSample
	dir := "/proc/" + strconv.Itoa(pid)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return s, err
	}
	if s.rssKB, err = parseStatusRSS(status); err != nil {
		return s, fmt.Errorf("%s/status: %w", dir, err)
	}
	s.peakKB, _ = procField(status, "VmHWM:")
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return s, err
	}
	if s.cpu, err = parseStatCPU(stat); err != nil {
		return s, fmt.Errorf("%s/stat: %w", dir, err)
	}
	s.threads = readThreads(dir)
	s.writeBytes = -1
	if io, err := os.ReadFile(dir + "/io"); err == nil { // another user's process: not readable
		if v, ok := procField(io, "write_bytes:"); ok {
			s.writeBytes = v
		}
	}
	return s, nil
}

// parseStatusRSS finds "VmRSS:   1234 kB".
func parseStatusRSS(b []byte) (int64, error) {
	v, ok := procField(b, "VmRSS:")
	if !ok {
		return 0, fmt.Errorf("no VmRSS line")
	}
	return v, nil
}

// procField returns the first number on the line that starts with key.
func procField(b []byte, key string) (int64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), key)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, false
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		return v, err == nil
	}
	return 0, false
}

// parseStatCPU returns utime+stime from /proc/PID/stat (fields 14 and 15;
// the command name, field 2, may hold spaces and parentheses).
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name")
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want 13 or more", len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("utime %q stime %q", f[11], f[12])
	}
	return time.Duration(ut+st) * clockTick, nil
}

// selfCPU is this process's user+system time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// settled samples process pid once it has finished its work: the last
// join returns before the server has sent every member the others'
// presence (an XMPP room's join is N² stanzas), and memory measured then
// counts those queues; a server may also tidy up once idle (chatbox
// gives its free heap back). It waits until the process used at most one
// CPU tick (10 ms, 1%) over a whole second, or 15 s have passed,
// whichever first.
func settled(ctx context.Context, pid int) (procSample, error) {
	const (
		step   = 200 * time.Millisecond
		window = 5 // steps: one second
		bound  = 15 * time.Second
	)
	s, err := readProc(pid)
	var busy [window]time.Duration
	for i := range busy {
		busy[i] = time.Hour // not yet seen
	}
	for end := time.Now().Add(bound); err == nil && time.Now().Before(end); {
		select {
		case <-ctx.Done():
			return s, nil
		case <-time.After(step):
		}
		var next procSample
		if next, err = readProc(pid); err != nil {
			break
		}
		copy(busy[:], busy[1:])
		busy[window-1] = next.cpuSince(s)
		s = next
		var sum time.Duration
		for _, b := range busy {
			sum += b
		}
		if sum <= clockTick {
			break
		}
	}
	return s, err
}

// saveSmaps copies the server's /proc/PID/smaps to NAME.smaps in the
// --smaps folder, if one was given: the memory samples' mappings, to
// tell the Go heap from the runtime's own memory, SQLite's and the code.
func saveSmaps(o options, name string) error {
	if o.smaps == "" || o.pid <= 0 {
		return nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(o.pid) + "/smaps")
	if err != nil {
		return fmt.Errorf("--smaps: %w", err)
	}
	if err := os.WriteFile(filepath.Join(o.smaps, name+".smaps"), b, 0o644); err != nil {
		return fmt.Errorf("--smaps: %w", err)
	}
	return nil
}
